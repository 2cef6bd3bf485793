/* test_merging_iterator.c — the merging iterator over memtable iterators
 * and over plain sorted arrays (with keys repeated across children),
 * driven by random seek/next/prev sequences and compared to a sorted
 * model; the empty iterator; status propagation. */
#include "testutil.h"

#include "dbformat.h"
#include "iterator.h"
#include "kv.h"
#include "memtable.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a test child: an iterator over a sorted array ---- */

typedef struct array_entry {
    char key[16];
    char value[48];
} array_entry;

typedef struct array_iter {
    kv_iter base;
    const array_entry *entries; /* sorted by key, bytewise, distinct */
    size_t count;
    size_t pos; /* count = invalid */
} array_iter;

static kv_slice entry_key(const array_entry *e)
{
    return kv_slice_from_str(e->key);
}

static bool array_valid(kv_iter *it)
{
    array_iter *a = (array_iter *)it;
    return a->pos < a->count;
}

static void array_seek_to_first(kv_iter *it)
{
    ((array_iter *)it)->pos = 0;
}

static void array_seek_to_last(kv_iter *it)
{
    array_iter *a = (array_iter *)it;
    a->pos = a->count ? a->count - 1 : 0;
}

static void array_seek(kv_iter *it, kv_slice target)
{
    array_iter *a = (array_iter *)it;
    a->pos = 0;
    while (a->pos < a->count && kv_slice_compare(entry_key(&a->entries[a->pos]), target) < 0)
        a->pos++;
}

static void array_next(kv_iter *it)
{
    array_iter *a = (array_iter *)it;
    assert_true(a->pos < a->count);
    a->pos++;
}

static void array_prev(kv_iter *it)
{
    array_iter *a = (array_iter *)it;
    assert_true(a->pos < a->count);
    a->pos = a->pos == 0 ? a->count : a->pos - 1;
}

static kv_slice array_key(kv_iter *it)
{
    array_iter *a = (array_iter *)it;
    assert_true(a->pos < a->count);
    return entry_key(&a->entries[a->pos]);
}

static kv_slice array_value(kv_iter *it)
{
    array_iter *a = (array_iter *)it;
    assert_true(a->pos < a->count);
    return kv_slice_from_str(a->entries[a->pos].value);
}

static int array_status(kv_iter *it)
{
    return 0;
}

static void array_destroy(kv_iter *it)
{
    free(it);
}

static const struct kv_iter_ops array_iter_ops = {
    array_valid, array_seek_to_first, array_seek_to_last, array_seek,   array_next,
    array_prev,  array_key,           array_value,        array_status, array_destroy,
};

static kv_iter *array_iter_create(const array_entry *entries, size_t count)
{
    array_iter *a = calloc(1, sizeof(*a));
    a->base.ops = &array_iter_ops;
    a->entries = entries;
    a->count = count;
    a->pos = count;
    return &a->base;
}

/* ---- the model ---- */

/* The merged stream: entries ordered by key, then child. */
typedef struct model_entry {
    kv_buf key;
    char value[48];
    size_t child;
} model_entry;

typedef struct model {
    model_entry *entries;
    size_t count;
    kv_compare_fn compare;
} model;

static kv_compare_fn model_compare;

static int compare_model_entries(const void *a, const void *b)
{
    const model_entry *x = a, *y = b;
    int c = model_compare(kv_buf_slice(&x->key), kv_buf_slice(&y->key));
    if (c != 0)
        return c;
    return x->child < y->child ? -1 : (x->child > y->child ? 1 : 0);
}

static void model_sort(model *m)
{
    model_compare = m->compare;
    qsort(m->entries, m->count, sizeof(*m->entries), compare_model_entries);
}

static void model_free(model *m)
{
    for (size_t i = 0; i < m->count; i++)
        kv_buf_free(&m->entries[i].key);
    free(m->entries);
}

/* First position with key >= target. */
static size_t model_lower_bound(const model *m, kv_slice target)
{
    size_t lo = 0, hi = m->count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->compare(kv_buf_slice(&m->entries[mid].key), target) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void assert_at(kv_iter *it, const model *m, size_t pos)
{
    if (pos >= m->count) {
        assert_false(kv_iter_valid(it));
        return;
    }
    assert_true(kv_iter_valid(it));
    assert_true(kv_slice_equal(kv_iter_key(it), kv_buf_slice(&m->entries[pos].key)));
    assert_true(kv_slice_equal(kv_iter_value(it), kv_slice_from_str(m->entries[pos].value)));
}

/* Random operations on `it`, each checked against the model. make_target
 * writes a seek target into buf. */
static void drive(kv_iter *it, const model *m, kv_test_rng *rng, int ops,
                  void (*make_target)(kv_test_rng *rng, kv_buf *buf))
{
    size_t pos = m->count; /* invalid */
    kv_buf target = {0};
    assert_false(kv_iter_valid(it));
    for (int op = 0; op < ops; op++) {
        bool valid = pos < m->count;
        uint64_t choice = kv_test_rng_uniform(rng, 20);
        if (choice == 0) {
            kv_iter_seek_to_first(it);
            pos = 0;
        } else if (choice == 1) {
            kv_iter_seek_to_last(it);
            pos = m->count ? m->count - 1 : 0;
        } else if (choice <= 4 || !valid) {
            make_target(rng, &target);
            kv_iter_seek(it, kv_buf_slice(&target));
            pos = model_lower_bound(m, kv_buf_slice(&target));
        } else if (choice <= 12) {
            kv_iter_next(it);
            pos++;
        } else {
            kv_iter_prev(it);
            pos = pos == 0 ? m->count : pos - 1;
        }
        assert_at(it, m, pos);
        assert_int_equal(kv_iter_status(it), 0);
    }
    /* Full scans both ways from wherever we are. */
    size_t i = 0;
    for (kv_iter_seek_to_first(it); kv_iter_valid(it); kv_iter_next(it))
        assert_at(it, m, i++);
    assert_int_equal(i, m->count);
    for (kv_iter_seek_to_last(it); kv_iter_valid(it); kv_iter_prev(it))
        assert_at(it, m, --i);
    assert_int_equal(i, 0);
    kv_buf_free(&target);
}

/* ---- merging memtables ---- */

#define MEM_KEY_SPACE 200

static void make_user_key(char *buf, uint64_t k)
{
    snprintf(buf, 16, "user%03llu", (unsigned long long)k);
}

static void make_ikey_target(kv_test_rng *rng, kv_buf *buf)
{
    char key[16];
    make_user_key(key, kv_test_rng_uniform(rng, MEM_KEY_SPACE + 5));
    kv_buf_clear(buf);
    kv_ikey_append(buf, kv_slice_from_str(key), kv_test_rng_uniform(rng, 5000), KV_TYPE_FOR_SEEK);
}

static void test_memtables_against_model(void **state)
{
    (void)state;
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(341));
    int rounds = kv_test_long_mode() ? 300 : 40;
    for (int round = 0; round < rounds; round++) {
        size_t num_children = kv_test_rng_uniform(&rng, 7); /* 0..6 */
        size_t entries = kv_test_rng_uniform(&rng, 1500);
        kv_memtable *mems[6];
        for (size_t c = 0; c < num_children; c++)
            mems[c] = kv_memtable_create(c);
        model m = {calloc(entries + 1, sizeof(model_entry)), 0, kv_ikey_compare};
        for (size_t i = 0; num_children > 0 && i < entries; i++) {
            /* Unique sequences, so internal keys never repeat. */
            size_t c = kv_test_rng_uniform(&rng, num_children);
            char key[16];
            make_user_key(key, kv_test_rng_uniform(&rng, MEM_KEY_SPACE));
            int type = kv_test_rng_uniform(&rng, 4) == 0 ? KV_TYPE_DELETION : KV_TYPE_VALUE;
            model_entry *e = &m.entries[m.count++];
            if (type == KV_TYPE_VALUE)
                snprintf(e->value, sizeof(e->value), "v%zu", i);
            e->child = c;
            kv_ikey_append(&e->key, kv_slice_from_str(key), i + 1, type);
            kv_memtable_add(mems[c], i + 1, type, kv_slice_from_str(key),
                            kv_slice_from_str(e->value));
        }
        model_sort(&m);

        kv_iter *children[6];
        for (size_t c = 0; c < num_children; c++) {
            children[c] = kv_memtable_iter_create(mems[c]);
            kv_memtable_unref(mems[c]);
        }
        kv_iter *it = kv_merging_iter_create(kv_ikey_compare, children, num_children);
        drive(it, &m, &rng, 3000, make_ikey_target);
        kv_iter_destroy(it); /* destroys the children, which free the memtables */
        model_free(&m);
    }
}

/* ---- equal keys across children ---- */

#define ARRAY_KEY_SPACE 60

static void make_array_key(char *buf, uint64_t k)
{
    snprintf(buf, 16, "k%02llu", (unsigned long long)k);
}

static void make_array_target(kv_test_rng *rng, kv_buf *buf)
{
    char key[16];
    make_array_key(key, kv_test_rng_uniform(rng, ARRAY_KEY_SPACE + 2));
    if (kv_test_rng_uniform(rng, 3) == 0)
        strcat(key, "+"); /* between two keys */
    kv_buf_set(buf, key, strlen(key));
}

/* Children share keys: equal keys must come out in child order going
 * forward, and in reverse child order going backward, across any number of
 * direction changes. */
static void test_equal_keys_across_children(void **state)
{
    (void)state;
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(342));
    int rounds = kv_test_long_mode() ? 2000 : 300;
    for (int round = 0; round < rounds; round++) {
        size_t num_children = 1 + kv_test_rng_uniform(&rng, 5);
        array_entry *arrays[5];
        size_t counts[5];
        model m = {calloc(num_children * ARRAY_KEY_SPACE + 1, sizeof(model_entry)), 0,
                   kv_slice_compare};
        for (size_t c = 0; c < num_children; c++) {
            arrays[c] = calloc(ARRAY_KEY_SPACE, sizeof(array_entry));
            counts[c] = 0;
            uint64_t density = 1 + kv_test_rng_uniform(&rng, 4);
            for (uint64_t k = 0; k < ARRAY_KEY_SPACE; k++) {
                if (kv_test_rng_uniform(&rng, density) != 0)
                    continue;
                array_entry *e = &arrays[c][counts[c]++];
                make_array_key(e->key, k);
                snprintf(e->value, sizeof(e->value), "child%zu-%s", c, e->key);
                model_entry *me = &m.entries[m.count++];
                kv_buf_set(&me->key, e->key, strlen(e->key));
                strcpy(me->value, e->value);
                me->child = c;
            }
        }
        model_sort(&m);

        kv_iter *children[5];
        for (size_t c = 0; c < num_children; c++)
            children[c] = array_iter_create(arrays[c], counts[c]);
        kv_iter *it = kv_merging_iter_create(kv_slice_compare, children, num_children);
        drive(it, &m, &rng, 400, make_array_target);
        kv_iter_destroy(it);
        for (size_t c = 0; c < num_children; c++)
            free(arrays[c]);
        model_free(&m);
    }
}

/* A hand-checked case of the above. */
static void test_equal_keys_small(void **state)
{
    (void)state;
    static const array_entry a[] = {{"b", "a-b"}, {"c", "a-c"}};
    static const array_entry b[] = {{"a", "b-a"}, {"b", "b-b"}, {"d", "b-d"}};
    kv_iter *children[] = {array_iter_create(a, 2), array_iter_create(b, 3)};
    kv_iter *it = kv_merging_iter_create(kv_slice_compare, children, 2);
    const char *order[] = {"b-a", "a-b", "b-b", "a-c", "b-d"};

    kv_iter_seek_to_first(it);
    for (size_t i = 0; i < 5; i++, kv_iter_next(it))
        assert_true(kv_slice_equal(kv_iter_value(it), kv_slice_from_str(order[i])));
    assert_false(kv_iter_valid(it));
    kv_iter_seek_to_last(it);
    for (size_t i = 5; i-- > 0; kv_iter_prev(it))
        assert_true(kv_slice_equal(kv_iter_value(it), kv_slice_from_str(order[i])));
    assert_false(kv_iter_valid(it));

    /* Turn around between the two "b"s, both ways. */
    kv_iter_seek(it, kv_slice_from_str("b"));
    assert_true(kv_slice_equal(kv_iter_value(it), kv_slice_from_str("a-b")));
    kv_iter_next(it);
    assert_true(kv_slice_equal(kv_iter_value(it), kv_slice_from_str("b-b")));
    kv_iter_prev(it);
    assert_true(kv_slice_equal(kv_iter_value(it), kv_slice_from_str("a-b")));
    kv_iter_prev(it);
    assert_true(kv_slice_equal(kv_iter_value(it), kv_slice_from_str("b-a")));
    kv_iter_next(it);
    assert_true(kv_slice_equal(kv_iter_value(it), kv_slice_from_str("a-b")));
    kv_iter_next(it);
    assert_true(kv_slice_equal(kv_iter_value(it), kv_slice_from_str("b-b")));
    kv_iter_destroy(it);
}

/* ---- empty iterators and status ---- */

static void test_empty_and_status(void **state)
{
    (void)state;
    kv_iter *empty = kv_empty_iter_create(0);
    assert_false(kv_iter_valid(empty));
    kv_iter_seek_to_first(empty);
    assert_false(kv_iter_valid(empty));
    kv_iter_seek_to_last(empty);
    kv_iter_seek(empty, kv_slice_from_str("x"));
    assert_false(kv_iter_valid(empty));
    assert_int_equal(kv_iter_status(empty), 0);
    kv_iter_destroy(empty);
    kv_iter_destroy(NULL);

    kv_iter *failed = kv_empty_iter_create(KV_IO_ERROR);
    assert_false(kv_iter_valid(failed));
    assert_int_equal(kv_iter_status(failed), KV_IO_ERROR);
    kv_iter_destroy(failed);

    /* No children at all. */
    kv_iter *none = kv_merging_iter_create(kv_slice_compare, NULL, 0);
    kv_iter_seek_to_first(none);
    assert_false(kv_iter_valid(none));
    kv_iter_seek_to_last(none);
    assert_false(kv_iter_valid(none));
    assert_int_equal(kv_iter_status(none), 0);
    kv_iter_destroy(none);

    /* The good child's entries still come out; the status is the first
     * failing child's, in child order. */
    static const array_entry a[] = {{"a", "1"}, {"b", "2"}};
    kv_iter *children[] = {array_iter_create(a, 2), kv_empty_iter_create(0),
                           kv_empty_iter_create(KV_CORRUPTION), kv_empty_iter_create(KV_IO_ERROR)};
    kv_iter *it = kv_merging_iter_create(kv_slice_compare, children, 4);
    size_t count = 0;
    for (kv_iter_seek_to_first(it); kv_iter_valid(it); kv_iter_next(it))
        count++;
    assert_int_equal(count, 2);
    for (kv_iter_seek_to_last(it); kv_iter_valid(it); kv_iter_prev(it))
        count--;
    assert_int_equal(count, 0);
    kv_iter_seek(it, kv_slice_from_str("b"));
    assert_true(kv_iter_valid(it));
    kv_iter_prev(it); /* direction change with failed children around */
    assert_true(kv_slice_equal(kv_iter_key(it), kv_slice_from_str("a")));
    assert_int_equal(kv_iter_status(it), KV_CORRUPTION);
    kv_iter_destroy(it);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_status),
        cmocka_unit_test(test_equal_keys_small),
        cmocka_unit_test(test_equal_keys_across_children),
        cmocka_unit_test(test_memtables_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
