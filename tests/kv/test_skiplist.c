/* test_skiplist.c — the skiplist against a sorted model, and lock-free
 * readers running while a writer inserts. */
#include "testutil.h"

#include "arena.h"
#include "coding.h"
#include "skiplist.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Test entries: 8-byte big-endian number || 8-byte check word derived
 * from it, so a reader that saw a half-written entry would notice. */
#define ENTRY_SIZE 16

static uint64_t check_word(uint64_t k)
{
    return (k * 0x9e3779b97f4a7c15ull) ^ 0x5bd1e995ull;
}

static uint64_t entry_number(const char *entry)
{
    return kv_decode_big_endian64(entry);
}

static bool entry_intact(const char *entry)
{
    return kv_decode_fixed64(entry + 8) == check_word(entry_number(entry));
}

static int compare_entries(const char *a, const char *b)
{
    uint64_t x = entry_number(a), y = entry_number(b);
    return x < y ? -1 : (x > y ? 1 : 0);
}

static void encode_entry(char *dst, uint64_t k)
{
    kv_encode_big_endian64(dst, k);
    kv_encode_fixed64(dst + 8, check_word(k));
}

static const char *new_entry(kv_arena *arena, uint64_t k)
{
    char *entry = kv_arena_allocate(arena, ENTRY_SIZE);
    encode_entry(entry, k);
    return entry;
}

/* Inserts number k, through kv_skiplist_insert (an entry allocated apart)
 * or, when `inline_key`, through allocate_key/insert_allocated (the entry
 * stored after its node). The two may be mixed in one list. */
static void insert_number(kv_skiplist *list, kv_arena *arena, uint64_t k, bool inline_key)
{
    if (!inline_key) {
        kv_skiplist_insert(list, new_entry(arena, k));
        return;
    }
    char *entry = kv_skiplist_allocate_key(list, ENTRY_SIZE);
    assert_int_equal((uintptr_t)entry % 8, 0);
    encode_entry(entry, k);
    kv_skiplist_insert_allocated(list, entry);
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

static void test_empty(void **state)
{
    (void)state;
    kv_arena arena;
    kv_arena_init(&arena);
    kv_skiplist *list = kv_skiplist_create(&arena, compare_entries);
    char key[ENTRY_SIZE];
    encode_entry(key, 10);
    assert_false(kv_skiplist_contains(list, key));
    assert_int_equal(kv_skiplist_count(list), 0);

    kv_skiplist_iter it;
    kv_skiplist_iter_init(&it, list);
    assert_false(kv_skiplist_iter_valid(&it));
    kv_skiplist_iter_seek_to_first(&it);
    assert_false(kv_skiplist_iter_valid(&it));
    kv_skiplist_iter_seek(&it, key);
    assert_false(kv_skiplist_iter_valid(&it));
    kv_skiplist_iter_seek_to_last(&it);
    assert_false(kv_skiplist_iter_valid(&it));
    kv_arena_destroy(&arena);
}

/* Random inserts, then every read operation compared with a sorted array. */
static void test_against_model(void **state)
{
    (void)state;
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(301));
    kv_arena arena;
    kv_arena_init(&arena);
    kv_skiplist *list = kv_skiplist_create(&arena, compare_entries);

    const size_t n = 20000;
    const uint64_t key_space = 100000;
    uint64_t *model = malloc(n * sizeof(*model));
    size_t count = 0;
    char probe[ENTRY_SIZE];
    while (count < n) {
        uint64_t k = kv_test_rng_uniform(&rng, key_space);
        encode_entry(probe, k);
        if (kv_skiplist_contains(list, probe))
            continue;
        insert_number(list, &arena, k, count % 2 == 1);
        model[count++] = k;
        assert_int_equal(kv_skiplist_count(list), count);
    }
    qsort(model, n, sizeof(*model), compare_u64);

    /* Full scans both ways. */
    kv_skiplist_iter it;
    kv_skiplist_iter_init(&it, list);
    size_t i = 0;
    for (kv_skiplist_iter_seek_to_first(&it); kv_skiplist_iter_valid(&it);
         kv_skiplist_iter_next(&it), i++) {
        assert_true(i < n);
        assert_int_equal(entry_number(kv_skiplist_iter_key(&it)), model[i]);
    }
    assert_int_equal(i, n);
    i = n;
    for (kv_skiplist_iter_seek_to_last(&it); kv_skiplist_iter_valid(&it);
         kv_skiplist_iter_prev(&it)) {
        assert_true(i > 0);
        assert_int_equal(entry_number(kv_skiplist_iter_key(&it)), model[--i]);
    }
    assert_int_equal(i, 0);

    /* Seeks, contains, and a few steps either way from each seek. */
    for (int round = 0; round < 5000; round++) {
        uint64_t target = kv_test_rng_uniform(&rng, key_space + 10);
        encode_entry(probe, target);
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (model[mid] < target)
                lo = mid + 1;
            else
                hi = mid;
        }
        assert_int_equal(kv_skiplist_contains(list, probe), lo < n && model[lo] == target);
        kv_skiplist_iter_seek(&it, probe);
        if (lo == n) {
            assert_false(kv_skiplist_iter_valid(&it));
            continue;
        }
        size_t pos = lo;
        for (int step = 0; step < 8; step++) {
            if (pos == SIZE_MAX || pos == n) {
                assert_false(kv_skiplist_iter_valid(&it));
                break;
            }
            assert_true(kv_skiplist_iter_valid(&it));
            assert_int_equal(entry_number(kv_skiplist_iter_key(&it)), model[pos]);
            if (kv_test_rng_uniform(&rng, 2)) {
                kv_skiplist_iter_next(&it);
                pos++;
            } else {
                kv_skiplist_iter_prev(&it);
                pos = pos == 0 ? SIZE_MAX : pos - 1;
            }
        }
    }
    free(model);
    kv_arena_destroy(&arena);
}

/* ---- concurrency ---- */

/* One writer inserts a random permutation of 0..num_keys-1 and raises
 * inserted[k] after each insert. A reader snapshots the flags at the start
 * of a pass; everything raised then must be visible during the pass, and
 * everything it sees must be sorted, intact and in range. */
typedef struct concurrent_state {
    kv_skiplist *list;
    uint64_t num_keys;
    atomic_uchar *inserted;
    atomic_bool writer_done;
    atomic_ulong errors;
    atomic_ulong passes;
    char first_error[200];
    pthread_mutex_t error_mutex;
    uint64_t seed;
} concurrent_state;

static void report(concurrent_state *cs, const char *what, uint64_t a, uint64_t b)
{
    if (atomic_fetch_add(&cs->errors, 1) == 0) {
        pthread_mutex_lock(&cs->error_mutex);
        snprintf(cs->first_error, sizeof(cs->first_error), "%s (%llu, %llu)", what,
                 (unsigned long long)a, (unsigned long long)b);
        pthread_mutex_unlock(&cs->error_mutex);
    }
}

/* Every key strictly between `from` and `to` (exclusive; from = UINT64_MAX
 * means "from the start", to = num_keys means "to the end") must have been
 * invisible at the start of the pass. */
static void check_gap(concurrent_state *cs, const unsigned char *before, uint64_t from, uint64_t to)
{
    uint64_t start = from == UINT64_MAX ? 0 : from + 1;
    for (uint64_t k = start; k < to; k++)
        if (before[k])
            report(cs, "key inserted before the pass is missing", k, to);
}

static void check_entry(concurrent_state *cs, const char *entry)
{
    if (!entry_intact(entry) || entry_number(entry) >= cs->num_keys)
        report(cs, "torn or foreign entry", entry_number(entry), 0);
}

static void reader_pass(concurrent_state *cs, unsigned char *before, kv_test_rng *rng)
{
    for (uint64_t k = 0; k < cs->num_keys; k++)
        before[k] = atomic_load_explicit(&cs->inserted[k], memory_order_acquire);

    kv_skiplist_iter it;
    kv_skiplist_iter_init(&it, cs->list);
    switch (kv_test_rng_uniform(rng, 3)) {
    case 0: { /* full forward scan */
        uint64_t last = UINT64_MAX;
        for (kv_skiplist_iter_seek_to_first(&it); kv_skiplist_iter_valid(&it);
             kv_skiplist_iter_next(&it)) {
            const char *entry = kv_skiplist_iter_key(&it);
            check_entry(cs, entry);
            uint64_t k = entry_number(entry);
            if (last != UINT64_MAX && k <= last)
                report(cs, "forward scan out of order", last, k);
            check_gap(cs, before, last, k);
            last = k;
        }
        check_gap(cs, before, last, cs->num_keys);
        break;
    }
    case 1: { /* backward walk from a seek, a bounded number of steps */
        uint64_t target = kv_test_rng_uniform(rng, cs->num_keys);
        char probe[ENTRY_SIZE];
        encode_entry(probe, target);
        kv_skiplist_iter_seek(&it, probe);
        uint64_t below_target = target == 0 ? UINT64_MAX : target - 1;
        bool from_last = false;
        if (!kv_skiplist_iter_valid(&it)) {
            check_gap(cs, before, below_target, cs->num_keys);
            kv_skiplist_iter_seek_to_last(&it);
            from_last = true;
        }
        if (!kv_skiplist_iter_valid(&it)) {
            check_gap(cs, before, UINT64_MAX, cs->num_keys);
            break;
        }
        check_entry(cs, kv_skiplist_iter_key(&it));
        uint64_t upper = entry_number(kv_skiplist_iter_key(&it));
        if (from_last) {
            check_gap(cs, before, upper, cs->num_keys);
        } else {
            if (below_target != UINT64_MAX && upper <= below_target)
                report(cs, "seek landed before its target", target, upper);
            check_gap(cs, before, below_target, upper);
        }
        for (int step = 0; step < 200; step++) {
            kv_skiplist_iter_prev(&it);
            if (!kv_skiplist_iter_valid(&it)) {
                check_gap(cs, before, UINT64_MAX, upper);
                break;
            }
            const char *entry = kv_skiplist_iter_key(&it);
            check_entry(cs, entry);
            uint64_t k = entry_number(entry);
            if (k >= upper)
                report(cs, "prev did not move backward", upper, k);
            check_gap(cs, before, k, upper);
            upper = k;
        }
        break;
    }
    default: { /* point checks */
        char probe[ENTRY_SIZE];
        for (int i = 0; i < 200; i++) {
            uint64_t k = kv_test_rng_uniform(rng, cs->num_keys);
            encode_entry(probe, k);
            bool found = kv_skiplist_contains(cs->list, probe);
            if (before[k] && !found)
                report(cs, "contains missed an inserted key", k, 0);
        }
        break;
    }
    }
    atomic_fetch_add(&cs->passes, 1);
}

static void *reader_thread(void *arg)
{
    concurrent_state *cs = arg;
    unsigned char *before = malloc(cs->num_keys);
    kv_test_rng rng;
    kv_test_rng_init(&rng, cs->seed ^ (uint64_t)(uintptr_t)&rng);
    bool last_pass = false;
    while (!last_pass) {
        /* One more pass after the writer finished sees everything. */
        last_pass = atomic_load(&cs->writer_done);
        reader_pass(cs, before, &rng);
    }
    free(before);
    return NULL;
}

static void run_concurrent(uint64_t num_keys, int num_readers)
{
    kv_arena arena;
    kv_arena_init(&arena);
    concurrent_state cs = {0};
    cs.list = kv_skiplist_create(&arena, compare_entries);
    cs.num_keys = num_keys;
    cs.inserted = calloc(num_keys, sizeof(*cs.inserted));
    cs.seed = kv_test_seed(302);
    pthread_mutex_init(&cs.error_mutex, NULL);

    /* A random permutation, so inserts land all over the list. */
    uint64_t *order = malloc(num_keys * sizeof(*order));
    kv_test_rng rng;
    kv_test_rng_init(&rng, cs.seed);
    for (uint64_t i = 0; i < num_keys; i++)
        order[i] = i;
    for (uint64_t i = num_keys - 1; i > 0; i--) {
        uint64_t j = kv_test_rng_uniform(&rng, i + 1);
        uint64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }

    pthread_t readers[4];
    assert_true(num_readers <= 4);
    for (int r = 0; r < num_readers; r++)
        assert_int_equal(pthread_create(&readers[r], NULL, reader_thread, &cs), 0);
    unsigned long passes_seen = 0;
    for (uint64_t i = 0; i < num_keys; i++) {
        insert_number(cs.list, &arena, order[i], i % 3 != 0);
        atomic_store_explicit(&cs.inserted[order[i]], 1, memory_order_release);
        /* Pace the writer so that many reader passes overlap inserts
         * (alone, the writer would finish before a reader got going). */
        if (i % 64 == 63) {
            while (atomic_load(&cs.passes) == passes_seen)
                sched_yield();
            passes_seen = atomic_load(&cs.passes);
        }
    }
    atomic_store(&cs.writer_done, true);
    for (int r = 0; r < num_readers; r++)
        pthread_join(readers[r], NULL);

    if (atomic_load(&cs.errors) != 0)
        fail_msg("%lu reader errors; first: %s", (unsigned long)atomic_load(&cs.errors),
                 cs.first_error);
    assert_true(atomic_load(&cs.passes) >= num_keys / 64);
    assert_int_equal(kv_skiplist_count(cs.list), num_keys);

    pthread_mutex_destroy(&cs.error_mutex);
    free(order);
    free(cs.inserted);
    kv_arena_destroy(&arena);
}

static void test_concurrent_one_reader(void **state)
{
    (void)state;
    run_concurrent(kv_test_long_mode() ? 200000 : 20000, 1);
}

static void test_concurrent_two_readers(void **state)
{
    (void)state;
    run_concurrent(kv_test_long_mode() ? 100000 : 10000, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_against_model),
        cmocka_unit_test(test_concurrent_one_reader),
        cmocka_unit_test(test_concurrent_two_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
