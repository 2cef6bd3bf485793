/* test_range_del.c — range tombstone fragmentation against a brute-force
 * model, snapshots, tombstone sets, and the cost of large inputs. */
#include "testutil.h"

#include "coding.h"
#include "range_del.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static kv_range_tombstone tomb(const char *begin, const char *end, kv_seq seq)
{
    kv_range_tombstone t = {kv_slice_from_str(begin), kv_slice_from_str(end), seq};
    return t;
}

static void assert_fragment(const kv_frag_tombstones *list, size_t i, const char *begin,
                            const char *end, const kv_seq *seqs, size_t num_seqs)
{
    assert_true(i < kv_frag_tombstones_count(list));
    const kv_tombstone_fragment *f = kv_frag_tombstones_get(list, i);
    assert_true(kv_slice_equal(f->begin, kv_slice_from_str(begin)));
    assert_true(kv_slice_equal(f->end, kv_slice_from_str(end)));
    assert_int_equal(f->num_seqs, num_seqs);
    for (size_t j = 0; j < num_seqs; j++)
        assert_int_equal(f->seqs[j], seqs[j]);
}

static kv_seq max_covering(const kv_frag_tombstones *list, const char *key, kv_seq snapshot)
{
    return kv_frag_tombstones_max_covering(list, kv_slice_from_str(key), snapshot);
}

static void test_overlap(void **state)
{
    (void)state;
    kv_range_tombstone in[] = {tomb("c", "g", 5), tomb("a", "e", 10)};
    kv_frag_tombstones *list = kv_frag_tombstones_build(in, 2, KV_MAX_SEQUENCE);
    assert_int_equal(kv_frag_tombstones_count(list), 3);
    assert_int_equal(kv_frag_tombstones_num_input(list), 2);
    assert_fragment(list, 0, "a", "c", (kv_seq[]){10}, 1);
    assert_fragment(list, 1, "c", "e", (kv_seq[]){10, 5}, 2);
    assert_fragment(list, 2, "e", "g", (kv_seq[]){5}, 1);

    assert_int_equal(max_covering(list, "", 100), 0);
    assert_int_equal(max_covering(list, "a", 100), 10);
    assert_int_equal(max_covering(list, "a", 10), 10);
    assert_int_equal(max_covering(list, "a", 9), 0);
    assert_int_equal(max_covering(list, "d", 100), 10);
    assert_int_equal(max_covering(list, "d", 9), 5);
    assert_int_equal(max_covering(list, "d", 4), 0);
    assert_int_equal(max_covering(list, "e", 100), 5);
    assert_int_equal(max_covering(list, "fzzz", 100), 5);
    assert_int_equal(max_covering(list, "g", 100), 0); /* end is exclusive */
    assert_int_equal(max_covering(list, "h", 100), 0);
    kv_frag_tombstones_unref(list);
}

static void test_merging_and_edges(void **state)
{
    (void)state;
    /* Contiguous, same sequence: one fragment. Same sequence twice
     * overlapping: the sequence is listed once. */
    kv_range_tombstone contiguous[] = {tomb("a", "c", 5), tomb("c", "e", 5), tomb("b", "d", 5)};
    kv_frag_tombstones *list = kv_frag_tombstones_build(contiguous, 3, KV_MAX_SEQUENCE);
    assert_int_equal(kv_frag_tombstones_count(list), 1);
    assert_fragment(list, 0, "a", "e", (kv_seq[]){5}, 1);
    kv_frag_tombstones_unref(list);

    /* A gap between equal-sequence ranges keeps them apart. */
    kv_range_tombstone gap[] = {tomb("a", "b", 5), tomb("c", "d", 5)};
    list = kv_frag_tombstones_build(gap, 2, KV_MAX_SEQUENCE);
    assert_int_equal(kv_frag_tombstones_count(list), 2);
    assert_fragment(list, 0, "a", "b", (kv_seq[]){5}, 1);
    assert_fragment(list, 1, "c", "d", (kv_seq[]){5}, 1);
    assert_int_equal(max_covering(list, "b", 100), 0);
    assert_int_equal(max_covering(list, "bz", 100), 0);
    kv_frag_tombstones_unref(list);

    /* Empty and inverted ranges are ignored; upper_seq drops newer ones. The
     * empty key is a valid begin. */
    kv_range_tombstone odd[] = {tomb("b", "b", 7), tomb("d", "c", 8), tomb("", "b", 3),
                                tomb("a", "z", 20)};
    list = kv_frag_tombstones_build(odd, 4, 10);
    assert_int_equal(kv_frag_tombstones_count(list), 1);
    assert_fragment(list, 0, "", "b", (kv_seq[]){3}, 1);
    assert_int_equal(max_covering(list, "", 100), 3);
    assert_int_equal(max_covering(list, "a", 100), 3);
    assert_int_equal(max_covering(list, "b", 100), 0);
    kv_frag_tombstones_unref(list);

    /* Nothing at all. */
    list = kv_frag_tombstones_build(NULL, 0, KV_MAX_SEQUENCE);
    assert_int_equal(kv_frag_tombstones_count(list), 0);
    assert_int_equal(max_covering(list, "a", 100), 0);
    kv_frag_tombstones_unref(list);

    /* The list copies the keys: the input may go away. */
    char begin[] = "k1", end[] = "k5";
    kv_range_tombstone copied = tomb(begin, end, 4);
    list = kv_frag_tombstones_build(&copied, 1, KV_MAX_SEQUENCE);
    memset(begin, 'x', 2);
    memset(end, 'x', 2);
    assert_fragment(list, 0, "k1", "k5", (kv_seq[]){4}, 1);
    /* References: the list lives until the last unref. */
    kv_frag_tombstones_ref(list);
    kv_frag_tombstones_unref(list);
    assert_int_equal(max_covering(list, "k3", 100), 4);
    kv_frag_tombstones_unref(list);
}

/* ---- randomized, against brute force ---- */

/* Keys: strings of 0..3 letters from "abc", which includes the empty key
 * and keys that are prefixes of others. */
#define ALPHABET "abc"
#define MAX_KEY_LEN 3

typedef struct key_universe {
    char keys[64][MAX_KEY_LEN + 2];
    size_t count;
} key_universe;

static void universe_add(key_universe *u, const char *prefix, int depth)
{
    strcpy(u->keys[u->count++], prefix);
    if (depth == 0)
        return;
    size_t n = strlen(prefix);
    assert_true(n + 2 <= MAX_KEY_LEN + 2);
    for (const char *c = ALPHABET; *c; c++) {
        char next[MAX_KEY_LEN + 2];
        memcpy(next, prefix, n); /* not snprintf: -O3 warns it may truncate */
        next[n] = *c;
        next[n + 1] = '\0';
        universe_add(u, next, depth - 1);
    }
}

/* Longer probe keys (4 letters) fall strictly between universe keys. */
static void random_probe(kv_test_rng *rng, char *out)
{
    size_t len = kv_test_rng_uniform(rng, MAX_KEY_LEN + 2);
    for (size_t i = 0; i < len; i++)
        out[i] = ALPHABET[kv_test_rng_uniform(rng, 3)];
    out[len] = '\0';
}

static kv_seq brute_max_covering(const kv_range_tombstone *t, size_t n, kv_slice key,
                                 kv_seq snapshot, kv_seq upper_seq)
{
    kv_seq best = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i].seq <= snapshot && t[i].seq <= upper_seq && t[i].seq > best &&
            kv_slice_compare(t[i].begin, key) <= 0 && kv_slice_compare(key, t[i].end) < 0)
            best = t[i].seq;
    return best;
}

/* Does the list's structure hold: sorted, disjoint, non-empty fragments
 * with strictly descending sequences, maximally merged, each carrying
 * exactly the covering sequences of the brute-force model? */
static void check_structure(const kv_frag_tombstones *list, const kv_range_tombstone *t, size_t n,
                            kv_seq upper_seq)
{
    size_t count = kv_frag_tombstones_count(list);
    for (size_t i = 0; i < count; i++) {
        const kv_tombstone_fragment *f = kv_frag_tombstones_get(list, i);
        assert_true(kv_slice_compare(f->begin, f->end) < 0);
        assert_true(f->num_seqs > 0);
        for (size_t j = 1; j < f->num_seqs; j++)
            assert_true(f->seqs[j - 1] > f->seqs[j]);
        /* Exactly the model's covering set, at the fragment's begin. */
        size_t expected = 0;
        for (size_t k = 0; k < n; k++) {
            if (t[k].seq > upper_seq || kv_slice_compare(t[k].begin, f->begin) > 0 ||
                kv_slice_compare(f->begin, t[k].end) >= 0)
                continue;
            bool listed = false, first = true;
            for (size_t j = 0; j < f->num_seqs; j++)
                if (f->seqs[j] == t[k].seq)
                    listed = true;
            for (size_t m = 0; m < k; m++)
                if (t[m].seq == t[k].seq && t[m].seq <= upper_seq &&
                    kv_slice_compare(t[m].begin, f->begin) <= 0 &&
                    kv_slice_compare(f->begin, t[m].end) < 0)
                    first = false;
            assert_true(listed);
            expected += first;
        }
        assert_int_equal(f->num_seqs, expected);
        if (i == 0)
            continue;
        const kv_tombstone_fragment *prev = kv_frag_tombstones_get(list, i - 1);
        assert_true(kv_slice_compare(prev->end, f->begin) <= 0);
        if (kv_slice_equal(prev->end, f->begin) && prev->num_seqs == f->num_seqs)
            assert_true(memcmp(prev->seqs, f->seqs, f->num_seqs * sizeof(kv_seq)) != 0);
    }
}

static void test_random_against_model(void **state)
{
    (void)state;
    key_universe universe = {0};
    universe_add(&universe, "", MAX_KEY_LEN);
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(311));
    int rounds = kv_test_long_mode() ? 20000 : 2000;
    kv_range_tombstone t[40];
    for (int round = 0; round < rounds; round++) {
        size_t n = kv_test_rng_uniform(&rng, 40);
        kv_seq max_seq = 1 + kv_test_rng_uniform(&rng, 50); /* small: duplicate seqs */
        for (size_t i = 0; i < n; i++) {
            t[i].begin =
                kv_slice_from_str(universe.keys[kv_test_rng_uniform(&rng, universe.count)]);
            t[i].end = kv_slice_from_str(universe.keys[kv_test_rng_uniform(&rng, universe.count)]);
            t[i].seq = 1 + kv_test_rng_uniform(&rng, max_seq);
        }
        kv_seq upper_seq = kv_test_rng_uniform(&rng, 4) == 0
                               ? kv_test_rng_uniform(&rng, max_seq + 1)
                               : KV_MAX_SEQUENCE;
        kv_frag_tombstones *list = kv_frag_tombstones_build(t, n, upper_seq);
        assert_int_equal(kv_frag_tombstones_num_input(list), n);
        check_structure(list, t, n, upper_seq);

        for (size_t k = 0; k < universe.count; k++) {
            kv_slice key = kv_slice_from_str(universe.keys[k]);
            kv_seq snapshot = kv_test_rng_uniform(&rng, max_seq + 2);
            assert_int_equal(kv_frag_tombstones_max_covering(list, key, snapshot),
                             brute_max_covering(t, n, key, snapshot, upper_seq));
            assert_int_equal(kv_frag_tombstones_max_covering(list, key, KV_MAX_SEQUENCE),
                             brute_max_covering(t, n, key, KV_MAX_SEQUENCE, upper_seq));
        }
        for (int probe = 0; probe < 20; probe++) {
            char key[MAX_KEY_LEN + 2];
            random_probe(&rng, key);
            kv_seq snapshot = kv_test_rng_uniform(&rng, max_seq + 2);
            assert_int_equal(max_covering(list, key, snapshot),
                             brute_max_covering(t, n, kv_slice_from_str(key), snapshot, upper_seq));
        }
        kv_frag_tombstones_unref(list);
    }
}

/* A set filled from a list rebuilds the same list; a set gathering several
 * lists equals the union of their inputs. */
static void test_tombstone_set(void **state)
{
    (void)state;
    key_universe universe = {0};
    universe_add(&universe, "", MAX_KEY_LEN);
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(312));
    for (int round = 0; round < 300; round++) {
        kv_range_tombstone t[30];
        size_t n = kv_test_rng_uniform(&rng, 30);
        for (size_t i = 0; i < n; i++) {
            t[i].begin =
                kv_slice_from_str(universe.keys[kv_test_rng_uniform(&rng, universe.count)]);
            t[i].end = kv_slice_from_str(universe.keys[kv_test_rng_uniform(&rng, universe.count)]);
            t[i].seq = 1 + kv_test_rng_uniform(&rng, 20);
        }
        size_t half = n / 2;
        kv_frag_tombstones *a = kv_frag_tombstones_build(t, half, KV_MAX_SEQUENCE);
        kv_frag_tombstones *b = kv_frag_tombstones_build(t + half, n - half, KV_MAX_SEQUENCE);
        kv_frag_tombstones *all = kv_frag_tombstones_build(t, n, KV_MAX_SEQUENCE);

        kv_tombstone_set set = {0};
        kv_tombstone_set_add_list(&set, a);
        kv_tombstone_set_add_list(&set, NULL);
        kv_tombstone_set_add_list(&set, b);
        kv_frag_tombstones *merged =
            kv_frag_tombstones_build(set.items, set.count, KV_MAX_SEQUENCE);
        assert_int_equal(kv_frag_tombstones_count(merged), kv_frag_tombstones_count(all));
        for (size_t i = 0; i < kv_frag_tombstones_count(all); i++) {
            const kv_tombstone_fragment *x = kv_frag_tombstones_get(all, i);
            const kv_tombstone_fragment *y = kv_frag_tombstones_get(merged, i);
            assert_true(kv_slice_equal(x->begin, y->begin));
            assert_true(kv_slice_equal(x->end, y->end));
            assert_int_equal(x->num_seqs, y->num_seqs);
            assert_memory_equal(x->seqs, y->seqs, x->num_seqs * sizeof(kv_seq));
        }
        kv_tombstone_set_free(&set);
        assert_int_equal(set.count, 0);
        kv_frag_tombstones_unref(a);
        kv_frag_tombstones_unref(b);
        kv_frag_tombstones_unref(all);
        kv_frag_tombstones_unref(merged);
    }

    /* The set owns copies, including of empty keys given as {NULL, 0}. */
    kv_tombstone_set set = {0};
    char begin[] = "abc";
    kv_tombstone_set_add(&set, kv_slice_make(NULL, 0), kv_slice_from_str(begin), 9);
    begin[0] = 'z';
    assert_int_equal(set.count, 1);
    assert_int_equal(set.items[0].begin.size, 0);
    assert_true(kv_slice_equal(set.items[0].end, kv_slice_from_str("abc")));
    assert_int_equal(set.items[0].seq, 9);
    kv_tombstone_set_free(&set);
}

/* ---- scale ---- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 100k short tombstones over a million 8-byte big-endian keys: a sweep
 * builds this in milliseconds; anything quadratic takes minutes. */
static void test_many_tombstones(void **state)
{
    (void)state;
    const size_t n = 100000;
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(313));
    char *keys = malloc(n * 16);
    kv_range_tombstone *t = malloc(n * sizeof(*t));
    uint64_t *begins = malloc(n * sizeof(*begins)), *ends = malloc(n * sizeof(*ends));
    for (size_t i = 0; i < n; i++) {
        begins[i] = kv_test_rng_uniform(&rng, 1000000);
        ends[i] = begins[i] + 1 + kv_test_rng_uniform(&rng, 50);
        kv_encode_big_endian64(keys + 16 * i, begins[i]);
        kv_encode_big_endian64(keys + 16 * i + 8, ends[i]);
        t[i].begin = kv_slice_make(keys + 16 * i, 8);
        t[i].end = kv_slice_make(keys + 16 * i + 8, 8);
        t[i].seq = 1 + i;
    }
    double start = now_seconds();
    kv_frag_tombstones *list = kv_frag_tombstones_build(t, n, KV_MAX_SEQUENCE);
    double elapsed = now_seconds() - start;
#if defined(__SANITIZE_ADDRESS__)
    const double limit = 5.0; /* instrumented build */
#else
    const double limit = 1.0;
#endif
    if (elapsed > limit)
        fail_msg("building %zu tombstones took %.2f s", n, elapsed);
    assert_true(kv_frag_tombstones_count(list) > n / 2);

    for (int probe = 0; probe < 300; probe++) {
        uint64_t k = kv_test_rng_uniform(&rng, 1000060);
        kv_seq snapshot = kv_test_rng_uniform(&rng, n + 2);
        kv_seq expected = 0;
        for (size_t i = 0; i < n; i++)
            if (begins[i] <= k && k < ends[i] && t[i].seq <= snapshot && t[i].seq > expected)
                expected = t[i].seq;
        char key[8];
        kv_encode_big_endian64(key, k);
        assert_int_equal(kv_frag_tombstones_max_covering(list, kv_slice_make(key, 8), snapshot),
                         expected);
    }
    kv_frag_tombstones_unref(list);
    free(keys);
    free(t);
    free(begins);
    free(ends);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_merging_and_edges),
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_tombstone_set),
        cmocka_unit_test(test_many_tombstones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
