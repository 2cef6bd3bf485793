/* test_memtable.c — internal keys, memtable gets at snapshots, the
 * memtable iterator against a sorted model, range tombstones, and readers
 * racing the writer. */
#include "testutil.h"

#include "coding.h"
#include "dbformat.h"
#include "memtable.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static kv_slice S(const char *s)
{
    return kv_slice_from_str(s);
}

/* ---- internal keys ---- */

static void test_ikey(void **state)
{
    (void)state;
    kv_buf a = {0}, b = {0};
    kv_ikey_append(&a, S("key"), 77, KV_TYPE_VALUE);
    assert_int_equal(a.size, 3 + 8);
    assert_int_equal(kv_decode_fixed64(a.data + 3), (77u << 8) | KV_TYPE_VALUE);
    kv_slice user_key;
    kv_seq seq;
    int type;
    assert_true(kv_ikey_parse(kv_buf_slice(&a), &user_key, &seq, &type));
    assert_true(kv_slice_equal(user_key, S("key")));
    assert_int_equal(seq, 77);
    assert_int_equal(type, KV_TYPE_VALUE);
    assert_true(kv_slice_equal(kv_ikey_user_key(kv_buf_slice(&a)), S("key")));

    kv_buf_clear(&a);
    kv_ikey_append(&a, S(""), KV_MAX_SEQUENCE, KV_TYPE_RANGE_DELETION);
    assert_true(kv_ikey_parse(kv_buf_slice(&a), &user_key, &seq, &type));
    assert_int_equal(user_key.size, 0);
    assert_int_equal(seq, KV_MAX_SEQUENCE);
    assert_int_equal(type, KV_TYPE_RANGE_DELETION);

    /* Too short, unknown type. */
    assert_false(kv_ikey_parse(kv_slice_make("1234567", 7), &user_key, &seq, &type));
    char bad[9] = "k";
    kv_encode_fixed64(bad + 1, (5u << 8) | 0x7);
    assert_false(kv_ikey_parse(kv_slice_make(bad, 9), &user_key, &seq, &type));

    /* Order: user key ascending, then sequence descending, then type
     * descending. */
    struct {
        const char *key;
        size_t len;
        kv_seq seq;
        int type;
    } sorted[] = {
        {"", 0, 1, KV_TYPE_VALUE},           {"a", 1, 9, KV_TYPE_VALUE},
        {"a", 1, 5, KV_TYPE_RANGE_DELETION}, {"a", 1, 5, KV_TYPE_VALUE},
        {"a", 1, 5, KV_TYPE_DELETION},       {"a", 1, 0, KV_TYPE_VALUE},
        {"a\x00", 2, 100, KV_TYPE_VALUE},    {"ab", 2, KV_MAX_SEQUENCE, KV_TYPE_VALUE},
        {"b", 1, 3, KV_TYPE_VALUE},          {"\xff", 1, 3, KV_TYPE_VALUE},
    };
    size_t n = sizeof(sorted) / sizeof(sorted[0]);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            kv_buf_clear(&a);
            kv_buf_clear(&b);
            kv_ikey_append(&a, kv_slice_make(sorted[i].key, sorted[i].len), sorted[i].seq,
                           sorted[i].type);
            kv_ikey_append(&b, kv_slice_make(sorted[j].key, sorted[j].len), sorted[j].seq,
                           sorted[j].type);
            int c = kv_ikey_compare(kv_buf_slice(&a), kv_buf_slice(&b));
            if (i < j)
                assert_true(c < 0);
            else if (i > j)
                assert_true(c > 0);
            else
                assert_int_equal(c, 0);
        }
    }
    kv_buf_free(&a);
    kv_buf_free(&b);
}

/* ---- gets ---- */

/* Looks key up at snapshot; returns the state and leaves the value in
 * *value. */
static int get(kv_memtable *mem, const char *key, kv_seq snapshot, kv_buf *value, kv_seq *seq)
{
    kv_lookup lookup = {.user_key = S(key), .snapshot = snapshot, .value = value};
    lookup.state = 12345; /* must be overwritten */
    kv_memtable_get(mem, &lookup);
    if (seq != NULL)
        *seq = lookup.seq;
    return lookup.state;
}

static void assert_value(kv_memtable *mem, const char *key, kv_seq snapshot, const char *expected,
                         kv_seq expected_seq)
{
    kv_buf value = {0};
    kv_seq seq = 0;
    assert_int_equal(get(mem, key, snapshot, &value, &seq), KV_LOOKUP_VALUE);
    assert_int_equal(seq, expected_seq);
    assert_true(kv_slice_equal(kv_buf_slice(&value), S(expected)));
    kv_buf_free(&value);
}

static void test_get_snapshots(void **state)
{
    (void)state;
    kv_memtable *mem = kv_memtable_create(7);
    assert_int_equal(kv_memtable_id(mem), 7);
    assert_int_equal(get(mem, "k1", 100, NULL, NULL), KV_LOOKUP_NONE);

    kv_memtable_add(mem, 1, KV_TYPE_VALUE, S("k1"), S("v1"));
    kv_memtable_add(mem, 5, KV_TYPE_VALUE, S("k1"), S("v5"));
    kv_memtable_add(mem, 8, KV_TYPE_DELETION, S("k1"), S(""));
    kv_memtable_add(mem, 9, KV_TYPE_VALUE, S("k1"), S("v9"));
    kv_memtable_add(mem, 3, KV_TYPE_VALUE, S("k"), S("short"));
    kv_memtable_add(mem, 4, KV_TYPE_VALUE, S("k10"), S("long"));
    kv_memtable_add(mem, 6, KV_TYPE_VALUE, S(""), S("empty key"));
    kv_memtable_add(mem, 7, KV_TYPE_VALUE, S("empty value"), S(""));
    kv_memtable_add(mem, 2, KV_TYPE_DELETION, S("gone"), S(""));

    assert_int_equal(get(mem, "k1", 0, NULL, NULL), KV_LOOKUP_NONE);
    assert_value(mem, "k1", 1, "v1", 1);
    assert_value(mem, "k1", 4, "v1", 1);
    assert_value(mem, "k1", 5, "v5", 5);
    assert_value(mem, "k1", 7, "v5", 5);
    kv_seq seq = 0;
    assert_int_equal(get(mem, "k1", 8, NULL, &seq), KV_LOOKUP_DELETED);
    assert_int_equal(seq, 8);
    assert_value(mem, "k1", 9, "v9", 9);
    assert_value(mem, "k1", KV_MAX_SEQUENCE, "v9", 9);

    /* Neighbours that share a prefix are different keys. */
    assert_value(mem, "k", 100, "short", 3);
    assert_value(mem, "k10", 100, "long", 4);
    assert_int_equal(get(mem, "k0", 100, NULL, NULL), KV_LOOKUP_NONE);
    assert_int_equal(get(mem, "k100", 100, NULL, NULL), KV_LOOKUP_NONE);
    assert_int_equal(get(mem, "k10", 3, NULL, NULL), KV_LOOKUP_NONE);
    assert_value(mem, "", 100, "empty key", 6);
    assert_value(mem, "empty value", 100, "", 7);
    assert_int_equal(get(mem, "gone", 100, NULL, NULL), KV_LOOKUP_DELETED);
    assert_int_equal(get(mem, "zzz", 100, NULL, NULL), KV_LOOKUP_NONE);

    /* A value found replaces what the buffer held. */
    kv_buf value = {0};
    kv_buf_set(&value, "old contents", 12);
    assert_int_equal(get(mem, "k1", 5, &value, NULL), KV_LOOKUP_VALUE);
    assert_true(kv_slice_equal(kv_buf_slice(&value), S("v5")));
    kv_buf_free(&value);

    /* Counters. */
    assert_int_equal(kv_memtable_num_entries(mem), 9);
    assert_int_equal(kv_memtable_num_deletes(mem), 2);
    assert_int_equal(kv_memtable_num_range_deletes(mem), 0);
    /* User key plus value bytes of the nine entries. */
    assert_int_equal(kv_memtable_data_size(mem), 4 + 4 + 2 + 4 + 6 + 7 + 9 + 11 + 4);
    assert_int_equal(kv_memtable_first_seq(mem), 1);
    assert_int_equal(kv_memtable_last_seq(mem), 9);
    assert_true(kv_memtable_memory_usage(mem) > 0);
    kv_memtable_set_next_log_number(mem, 42);
    assert_int_equal(kv_memtable_next_log_number(mem), 42);
    assert_null(kv_memtable_range_tombstones(mem));
    assert_int_equal(kv_memtable_max_covering_tombstone(mem, S("k1"), 100), 0);
    kv_memtable_unref(mem);
}

/* Values up to 256 bytes are stored in the entry, longer ones apart: both
 * sides of the boundary read back through get and the iterator, and a
 * range tombstone's long end key (stored like a value) still bounds it. */
static void test_value_storage_boundary(void **state)
{
    (void)state;
    kv_memtable *mem = kv_memtable_create(1);
    const size_t sizes[] = {0, 1, 255, 256, 257, 4096};
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    char *values[N];
    for (size_t i = 0; i < N; i++) {
        values[i] = malloc(sizes[i] + 1);
        for (size_t j = 0; j < sizes[i]; j++)
            values[i][j] = (char)('a' + (i * 7 + j) % 26);
        char key[8];
        snprintf(key, sizeof(key), "k%zu", i);
        kv_memtable_add(mem, i + 1, KV_TYPE_VALUE, S(key), kv_slice_make(values[i], sizes[i]));
    }
    for (size_t i = 0; i < N; i++) {
        char key[8];
        snprintf(key, sizeof(key), "k%zu", i);
        kv_buf value = {0};
        assert_int_equal(get(mem, key, 100, &value, NULL), KV_LOOKUP_VALUE);
        assert_int_equal(value.size, sizes[i]);
        if (sizes[i] > 0)
            assert_memory_equal(value.data, values[i], sizes[i]);
        kv_buf_free(&value);
    }
    kv_iter *it = kv_memtable_iter_create(mem);
    size_t seen = 0;
    for (kv_iter_seek_to_first(it); kv_iter_valid(it); kv_iter_next(it), seen++) {
        kv_slice v = kv_iter_value(it);
        assert_int_equal(v.size, sizes[seen]);
        if (v.size > 0)
            assert_memory_equal(v.data, values[seen], v.size);
    }
    assert_int_equal(seen, N);
    kv_iter_destroy(it);

    char end[301];
    memset(end, 'm', 300);
    end[300] = '\0';
    kv_memtable_add(mem, 50, KV_TYPE_RANGE_DELETION, S("l"), S(end));
    assert_int_equal(kv_memtable_max_covering_tombstone(mem, S("m"), 100), 50);
    end[299] = 'l'; /* "mm...ml" sorts before the end key */
    assert_int_equal(kv_memtable_max_covering_tombstone(mem, S(end), 100), 50);
    end[299] = 'n'; /* past it */
    assert_int_equal(kv_memtable_max_covering_tombstone(mem, S(end), 100), 0);
    for (size_t i = 0; i < N; i++)
        free(values[i]);
    kv_memtable_unref(mem);
}

static void test_empty_and_big(void **state)
{
    (void)state;
    kv_memtable *mem = kv_memtable_create(1);
    assert_int_equal(kv_memtable_num_entries(mem), 0);
    assert_int_equal(kv_memtable_first_seq(mem), 0);
    assert_int_equal(kv_memtable_last_seq(mem), 0);
    size_t empty_usage = kv_memtable_memory_usage(mem);

    /* Keys longer than the lookup's stack buffer, values over a block. */
    char *big_key = malloc(1001), *big_value = malloc(100000);
    memset(big_key, 'q', 1000);
    big_key[1000] = '\0';
    memset(big_value, 'v', 100000);
    kv_memtable_add(mem, 10, KV_TYPE_VALUE, S(big_key), kv_slice_make(big_value, 100000));
    big_key[999] = 'r';
    kv_memtable_add(mem, 11, KV_TYPE_VALUE, S(big_key), S("r"));
    assert_true(kv_memtable_memory_usage(mem) >= empty_usage + 100000);

    kv_buf value = {0};
    assert_int_equal(get(mem, big_key, 100, &value, NULL), KV_LOOKUP_VALUE);
    assert_true(kv_slice_equal(kv_buf_slice(&value), S("r")));
    big_key[999] = 'q';
    assert_int_equal(get(mem, big_key, 100, &value, NULL), KV_LOOKUP_VALUE);
    assert_int_equal(value.size, 100000);
    assert_memory_equal(value.data, big_value, 100000);
    big_key[999] = 'p';
    assert_int_equal(get(mem, big_key, 100, &value, NULL), KV_LOOKUP_NONE);

    /* References: the memtable lives until the last unref. */
    kv_memtable_ref(mem);
    kv_memtable_unref(mem);
    assert_int_equal(kv_memtable_num_entries(mem), 2);
    kv_buf_free(&value);
    free(big_key);
    free(big_value);
    kv_memtable_unref(mem);
}

/* ---- iterator against a model ---- */

typedef struct model_entry {
    kv_buf ikey;
    char value[48];
} model_entry;

static int compare_model(const void *a, const void *b)
{
    const model_entry *x = a, *y = b;
    return kv_ikey_compare(kv_buf_slice(&x->ikey), kv_buf_slice(&y->ikey));
}

static void assert_at(kv_iter *it, const model_entry *model, size_t n, size_t pos)
{
    if (pos >= n) {
        assert_false(kv_iter_valid(it));
        return;
    }
    assert_true(kv_iter_valid(it));
    assert_true(kv_slice_equal(kv_iter_key(it), kv_buf_slice(&model[pos].ikey)));
    assert_true(kv_slice_equal(kv_iter_value(it), S(model[pos].value)));
}

static void test_iterator_order(void **state)
{
    (void)state;
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(321));
    kv_memtable *mem = kv_memtable_create(1);
    const size_t n = 3000;
    model_entry *model = calloc(n, sizeof(*model));
    for (size_t i = 0; i < n; i++) {
        /* Few distinct user keys: many versions per key. */
        char key[16];
        snprintf(key, sizeof(key), "key%llu", (unsigned long long)kv_test_rng_uniform(&rng, 300));
        kv_seq seq = i + 1;
        int type = kv_test_rng_uniform(&rng, 5) == 0 ? KV_TYPE_DELETION : KV_TYPE_VALUE;
        if (type == KV_TYPE_VALUE)
            snprintf(model[i].value, sizeof(model[i].value), "value%zu", i);
        kv_ikey_append(&model[i].ikey, S(key), seq, type);
        kv_memtable_add(mem, seq, type, S(key), S(model[i].value));
        /* Range tombstones never show up in the iterator. */
        if (i % 100 == 0)
            kv_memtable_add(mem, 100000 + i, KV_TYPE_RANGE_DELETION, S("key1"), S("key5"));
    }
    qsort(model, n, sizeof(*model), compare_model);

    kv_iter *it = kv_memtable_iter_create(mem);
    kv_memtable_unref(mem); /* the iterator keeps it alive */
    assert_false(kv_iter_valid(it));
    assert_int_equal(kv_iter_status(it), 0);

    size_t pos = 0;
    for (kv_iter_seek_to_first(it); kv_iter_valid(it); kv_iter_next(it))
        assert_at(it, model, n, pos++);
    assert_int_equal(pos, n);
    pos = n;
    for (kv_iter_seek_to_last(it); kv_iter_valid(it); kv_iter_prev(it))
        assert_at(it, model, n, --pos);
    assert_int_equal(pos, 0);

    /* Seeks to random internal keys, then random steps. */
    kv_buf target = {0};
    for (int round = 0; round < 2000; round++) {
        char key[16];
        snprintf(key, sizeof(key), "key%llu", (unsigned long long)kv_test_rng_uniform(&rng, 310));
        kv_buf_clear(&target);
        kv_ikey_append(&target, S(key), kv_test_rng_uniform(&rng, n + 2), KV_TYPE_FOR_SEEK);
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (kv_ikey_compare(kv_buf_slice(&model[mid].ikey), kv_buf_slice(&target)) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        kv_iter_seek(it, kv_buf_slice(&target));
        pos = lo;
        for (int step = 0; step < 10 && pos < n; step++) {
            assert_at(it, model, n, pos);
            if (kv_test_rng_uniform(&rng, 2)) {
                kv_iter_next(it);
                pos++;
            } else {
                kv_iter_prev(it);
                pos = pos == 0 ? SIZE_MAX : pos - 1;
            }
        }
        assert_at(it, model, n, pos);
    }
    kv_buf_free(&target);
    kv_iter_destroy(it);
    for (size_t i = 0; i < n; i++)
        kv_buf_free(&model[i].ikey);
    free(model);
}

/* ---- range tombstones ---- */

static void test_range_tombstones(void **state)
{
    (void)state;
    kv_memtable *mem = kv_memtable_create(1);
    kv_memtable_add(mem, 1, KV_TYPE_VALUE, S("b"), S("vb"));
    kv_memtable_add(mem, 2, KV_TYPE_RANGE_DELETION, S("a"), S("c"));
    kv_memtable_add(mem, 3, KV_TYPE_VALUE, S("b"), S("vb3"));
    kv_memtable_add(mem, 10, KV_TYPE_RANGE_DELETION, S("b"), S("f"));
    assert_int_equal(kv_memtable_num_range_deletes(mem), 2);
    assert_int_equal(kv_memtable_num_entries(mem), 4);
    assert_int_equal(kv_memtable_num_deletes(mem), 0);
    assert_int_equal(kv_memtable_last_seq(mem), 10);

    /* Gets ignore tombstones; the caller combines the two. */
    assert_value(mem, "b", 100, "vb3", 3);
    assert_int_equal(get(mem, "a", 100, NULL, NULL), KV_LOOKUP_NONE);

    assert_int_equal(kv_memtable_max_covering_tombstone(mem, S("a"), 100), 2);
    assert_int_equal(kv_memtable_max_covering_tombstone(mem, S("a"), 1), 0);
    assert_int_equal(kv_memtable_max_covering_tombstone(mem, S("b"), 100), 10);
    assert_int_equal(kv_memtable_max_covering_tombstone(mem, S("b"), 9), 2);
    assert_int_equal(kv_memtable_max_covering_tombstone(mem, S("c"), 9), 0);
    assert_int_equal(kv_memtable_max_covering_tombstone(mem, S("e"), 100), 10);
    assert_int_equal(kv_memtable_max_covering_tombstone(mem, S("f"), 100), 0);
    assert_int_equal(kv_memtable_max_covering_tombstone(mem, S(""), 100), 0);

    /* The fragmented list is cached until a tombstone is added. */
    kv_frag_tombstones *first = kv_memtable_range_tombstones(mem);
    kv_frag_tombstones *again = kv_memtable_range_tombstones(mem);
    assert_non_null(first);
    assert_ptr_equal(first, again);
    assert_int_equal(kv_frag_tombstones_num_input(first), 2);
    assert_int_equal(kv_frag_tombstones_count(first), 3);
    kv_frag_tombstones_unref(again);

    kv_memtable_add(mem, 11, KV_TYPE_VALUE, S("x"), S("point writes keep the cache"));
    again = kv_memtable_range_tombstones(mem);
    assert_ptr_equal(first, again);
    kv_frag_tombstones_unref(again);

    kv_memtable_add(mem, 12, KV_TYPE_RANGE_DELETION, S("d"), S("z"));
    kv_frag_tombstones *rebuilt = kv_memtable_range_tombstones(mem);
    assert_ptr_not_equal(first, rebuilt);
    assert_int_equal(kv_frag_tombstones_num_input(rebuilt), 3);
    /* The old list stays usable by whoever holds it. */
    assert_int_equal(kv_frag_tombstones_max_covering(first, S("x"), 100), 0);
    assert_int_equal(kv_frag_tombstones_max_covering(rebuilt, S("x"), 100), 12);
    kv_frag_tombstones_unref(first);
    kv_frag_tombstones_unref(rebuilt);
    assert_int_equal(kv_memtable_max_covering_tombstone(mem, S("e"), 100), 12);
    assert_int_equal(kv_memtable_max_covering_tombstone(mem, S("e"), 11), 10);

    /* The iterator shows point entries only. */
    kv_iter *it = kv_memtable_iter_create(mem);
    size_t count = 0;
    for (kv_iter_seek_to_first(it); kv_iter_valid(it); kv_iter_next(it)) {
        kv_seq seq;
        int type;
        assert_true(kv_ikey_parse(kv_iter_key(it), NULL, &seq, &type));
        assert_int_equal(type, KV_TYPE_VALUE);
        count++;
    }
    assert_int_equal(count, 3);
    kv_iter_destroy(it);
    kv_memtable_unref(mem); /* frees the cached list too (ASan checks) */
}

/* ---- readers racing the writer ---- */

/* The writer adds, for i = 1..N, a value for key i at seq 2i and then a
 * tombstone [key i, key i + 1) at seq 2i + 1, and publishes i. Readers
 * check that everything published is visible through gets, the cached
 * tombstone list and the iterator. */
typedef struct race_state {
    kv_memtable *mem;
    uint64_t num_keys;
    _Atomic uint64_t published;
    atomic_bool done;
    atomic_ulong errors;
    atomic_ulong checks;
} race_state;

static void race_key(char *buf, uint64_t i)
{
    snprintf(buf, 16, "key%08llu", (unsigned long long)i);
}

static void *race_reader(void *arg)
{
    race_state *rs = arg;
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(322) + (uint64_t)(uintptr_t)&rng);
    kv_buf value = {0};
    bool last_round = false;
    while (!last_round) {
        last_round = atomic_load(&rs->done);
        uint64_t published = atomic_load_explicit(&rs->published, memory_order_acquire);
        if (published == 0)
            continue;
        uint64_t i = 1 + kv_test_rng_uniform(&rng, published);
        char key[16];
        race_key(key, i);
        kv_lookup lookup = {.user_key = S(key), .snapshot = KV_MAX_SEQUENCE, .value = &value};
        kv_memtable_get(rs->mem, &lookup);
        if (lookup.state != KV_LOOKUP_VALUE || lookup.seq != 2 * i ||
            !kv_slice_equal(kv_buf_slice(&value), S(key)))
            atomic_fetch_add(&rs->errors, 1);
        if (kv_memtable_max_covering_tombstone(rs->mem, S(key), KV_MAX_SEQUENCE) != 2 * i + 1)
            atomic_fetch_add(&rs->errors, 1);
        kv_frag_tombstones *list = kv_memtable_range_tombstones(rs->mem);
        if (list == NULL || kv_frag_tombstones_num_input(list) < published)
            atomic_fetch_add(&rs->errors, 1);
        kv_frag_tombstones_unref(list);

        if (kv_test_rng_uniform(&rng, 50) == 0) {
            /* A scan sees keys 1..published at least, in order. */
            kv_iter *it = kv_memtable_iter_create(rs->mem);
            uint64_t seen = 0;
            kv_buf last = {0};
            for (kv_iter_seek_to_first(it); kv_iter_valid(it); kv_iter_next(it)) {
                if (last.size > 0 && kv_ikey_compare(kv_buf_slice(&last), kv_iter_key(it)) >= 0)
                    atomic_fetch_add(&rs->errors, 1);
                kv_buf_set(&last, kv_iter_key(it).data, kv_iter_key(it).size);
                seen++;
            }
            if (seen < published)
                atomic_fetch_add(&rs->errors, 1);
            kv_buf_free(&last);
            kv_iter_destroy(it);
        }
        atomic_fetch_add(&rs->checks, 1);
    }
    kv_buf_free(&value);
    return NULL;
}

static void test_readers_race_writer(void **state)
{
    (void)state;
    race_state rs = {0};
    rs.mem = kv_memtable_create(1);
    rs.num_keys = kv_test_long_mode() ? 20000 : 3000;
    pthread_t readers[2];
    for (int r = 0; r < 2; r++)
        assert_int_equal(pthread_create(&readers[r], NULL, race_reader, &rs), 0);
    for (uint64_t i = 1; i <= rs.num_keys; i++) {
        char key[16], next[16];
        race_key(key, i);
        race_key(next, i + 1);
        kv_memtable_add(rs.mem, 2 * i, KV_TYPE_VALUE, S(key), S(key));
        kv_memtable_add(rs.mem, 2 * i + 1, KV_TYPE_RANGE_DELETION, S(key), S(next));
        atomic_store_explicit(&rs.published, i, memory_order_release);
        if (i % 16 == 0) {
            /* Let the readers in between the writes. */
            unsigned long before = atomic_load(&rs.checks);
            while (atomic_load(&rs.checks) == before)
                sched_yield();
        }
    }
    atomic_store(&rs.done, true);
    for (int r = 0; r < 2; r++)
        pthread_join(readers[r], NULL);
    assert_int_equal(atomic_load(&rs.errors), 0);
    assert_true(atomic_load(&rs.checks) >= rs.num_keys / 16);
    assert_int_equal(kv_memtable_num_range_deletes(rs.mem), rs.num_keys);
    kv_memtable_unref(rs.mem);
}

/* Point lookups between tombstone inserts (the range log path, and the
 * rebuilds past its bound) agree with a brute-force model at every
 * snapshot, for thousands of random tombstones. */
static void test_range_log_matches_model(void **state)
{
    (void)state;
    enum { N = 3000, KEYS = 500 };
    static struct {
        int begin, end;
        kv_seq seq;
    } model[N];
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(77));
    kv_memtable *mem = kv_memtable_create(1);
    for (int i = 0; i < N; i++) {
        int a = (int)kv_test_rng_uniform(&rng, KEYS), len = 1 + (int)kv_test_rng_uniform(&rng, 20);
        char begin[16], end[16];
        snprintf(begin, sizeof(begin), "k%05d", a);
        snprintf(end, sizeof(end), "k%05d", a + len);
        /* sequences mostly rise, as the write path gives them */
        model[i].seq = (kv_seq)(10 * i + 5);
        model[i].begin = a;
        model[i].end = a + len;
        kv_memtable_add(mem, model[i].seq, KV_TYPE_RANGE_DELETION, S(begin), S(end));
        for (int probe = 0; probe < 3; probe++) {
            int k = (int)kv_test_rng_uniform(&rng, KEYS + 20);
            kv_seq snapshot = kv_test_rng_uniform(&rng, 4) == 0
                                  ? (kv_seq)kv_test_rng_uniform(&rng, 10 * (i + 1) + 10)
                                  : KV_MAX_SEQUENCE;
            kv_seq expected = 0;
            for (int j = 0; j <= i; j++)
                if (model[j].begin <= k && k < model[j].end && model[j].seq <= snapshot &&
                    model[j].seq > expected)
                    expected = model[j].seq;
            char key[16];
            snprintf(key, sizeof(key), "k%05d", k);
            assert_int_equal(kv_memtable_max_covering_tombstone(mem, S(key), snapshot), expected);
        }
    }
    kv_memtable_unref(mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ikey),
        cmocka_unit_test(test_get_snapshots),
        cmocka_unit_test(test_empty_and_big),
        cmocka_unit_test(test_value_storage_boundary),
        cmocka_unit_test(test_iterator_order),
        cmocka_unit_test(test_range_tombstones),
        cmocka_unit_test(test_readers_race_writer),
        cmocka_unit_test(test_range_log_matches_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
