/* test_bloom.c — the bloom filter: no false negatives, a false positive
 * rate near 1% at 10 bits/key, and malformed filters answering "maybe". */
#include "testutil.h"

#include "bloom.h"
#include "coding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static kv_slice int_key(uint32_t i, char *buf)
{
    kv_encode_fixed32(buf, i);
    return kv_slice_make(buf, 4);
}

static void build_int_filter(int bits_per_key, uint32_t first, size_t n, kv_buf *filter)
{
    uint32_t *hashes = malloc((n ? n : 1) * sizeof(*hashes));
    char buf[4];
    for (size_t i = 0; i < n; i++)
        hashes[i] = kv_bloom_hash(int_key(first + (uint32_t)i, buf));
    kv_bloom_build(bits_per_key, hashes, n, filter);
    free(hashes);
}

/* Fraction of 10000 keys never added that the filter claims. */
static double false_positive_rate(kv_slice filter)
{
    char buf[4];
    int hits = 0;
    for (uint32_t i = 0; i < 10000; i++)
        if (kv_bloom_may_match(filter, int_key(1000000000u + i, buf)))
            hits++;
    return hits / 10000.0;
}

static void test_empty_filter(void **state)
{
    (void)state;
    kv_buf filter = {0};
    kv_bloom_build(10, NULL, 0, &filter);
    assert_true(filter.size >= 2);
    assert_false(kv_bloom_may_match(kv_buf_slice(&filter), kv_slice_from_str("hello")));
    assert_false(kv_bloom_may_match(kv_buf_slice(&filter), kv_slice_from_str("")));
    kv_buf_free(&filter);
}

static void test_small(void **state)
{
    (void)state;
    const char *keys[] = {"hello", "world", "", "x"};
    uint32_t hashes[4];
    for (int i = 0; i < 4; i++)
        hashes[i] = kv_bloom_hash(kv_slice_from_str(keys[i]));
    kv_buf filter = {0};
    kv_bloom_build(10, hashes, 4, &filter);
    for (int i = 0; i < 4; i++)
        assert_true(kv_bloom_may_match(kv_buf_slice(&filter), kv_slice_from_str(keys[i])));
    assert_false(kv_bloom_may_match(kv_buf_slice(&filter), kv_slice_from_str("xx")));
    assert_false(kv_bloom_may_match(kv_buf_slice(&filter), kv_slice_from_str("foo")));
    kv_buf_free(&filter);
}

static void test_no_false_negatives_and_rate(void **state)
{
    (void)state;
    char buf[4];
    int mediocre = 0, good = 0;
    for (size_t n = 1; n <= 10000; n = n < 10 ? n + 1 : n * 10 / 3) {
        kv_buf filter = {0};
        build_int_filter(10, 0, n, &filter);
        assert_true(filter.size <= n * 10 / 8 + 40);
        for (uint32_t i = 0; i < n; i++)
            assert_true(kv_bloom_may_match(kv_buf_slice(&filter), int_key(i, buf)));
        double rate = false_positive_rate(kv_buf_slice(&filter));
        assert_true(rate <= 0.02);
        if (rate > 0.0125)
            mediocre++;
        else
            good++;
        kv_buf_free(&filter);
    }
    assert_true(mediocre * 5 <= good);
}

static void test_rate_10k_keys(void **state)
{
    (void)state;
    /* Random string keys, the way tables use it. */
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(7));
    const size_t n = 10000;
    char(*keys)[16] = malloc(n * sizeof(*keys));
    uint32_t *hashes = malloc(n * sizeof(*hashes));
    for (size_t i = 0; i < n; i++) {
        kv_test_rng_bytes(&rng, keys[i], sizeof(keys[i]));
        hashes[i] = kv_bloom_hash(kv_slice_make(keys[i], sizeof(keys[i])));
    }
    kv_buf filter = {0};
    kv_bloom_build(10, hashes, n, &filter);
    for (size_t i = 0; i < n; i++)
        assert_true(kv_bloom_may_match(kv_buf_slice(&filter), kv_slice_make(keys[i], 16)));
    int hits = 0;
    const int probes = 100000;
    for (int i = 0; i < probes; i++) {
        char probe[17];
        kv_test_rng_bytes(&rng, probe, sizeof(probe)); /* 17 bytes: never a key */
        if (kv_bloom_may_match(kv_buf_slice(&filter), kv_slice_make(probe, sizeof(probe))))
            hits++;
    }
    double rate = (double)hits / probes;
    print_message("false positive rate at 10 bits/key over 10k keys: %.3f%%\n", rate * 100);
    assert_true(rate > 0.002 && rate < 0.015);

    /* More bits, fewer false positives. */
    kv_buf dense = {0};
    kv_bloom_build(20, hashes, n, &dense);
    int dense_hits = 0;
    for (int i = 0; i < probes; i++) {
        char probe[17];
        kv_test_rng_bytes(&rng, probe, sizeof(probe));
        if (kv_bloom_may_match(kv_buf_slice(&dense), kv_slice_make(probe, sizeof(probe))))
            dense_hits++;
    }
    assert_true(dense_hits * 10 < hits);
    kv_buf_free(&dense);
    kv_buf_free(&filter);
    free(hashes);
    free(keys);
}

static void test_malformed_filter_says_maybe(void **state)
{
    (void)state;
    kv_slice key = kv_slice_from_str("anything");
    assert_true(kv_bloom_may_match(kv_slice_make(NULL, 0), key));
    assert_true(kv_bloom_may_match(kv_slice_make("\x06", 1), key));
    char zeros[9] = {0};
    zeros[8] = 0; /* k = 0: not a filter we wrote */
    assert_true(kv_bloom_may_match(kv_slice_make(zeros, 9), key));
    zeros[8] = 31; /* reserved probe counts */
    assert_true(kv_bloom_may_match(kv_slice_make(zeros, 9), key));
    zeros[8] = 6; /* a valid, empty filter */
    assert_false(kv_bloom_may_match(kv_slice_make(zeros, 9), key));
}

static void test_hash(void **state)
{
    (void)state;
    /* Stable across runs (it is stored in files), and sensitive to every
     * byte and to the length. */
    assert_int_equal(kv_bloom_hash(kv_slice_from_str("abc")),
                     kv_bloom_hash(kv_slice_make("abcd", 3)));
    assert_int_not_equal(kv_bloom_hash(kv_slice_from_str("abc")),
                         kv_bloom_hash(kv_slice_from_str("abd")));
    assert_int_not_equal(kv_bloom_hash(kv_slice_make("a\0", 1)),
                         kv_bloom_hash(kv_slice_make("a\0", 2)));
    assert_int_not_equal(kv_bloom_hash(kv_slice_from_str("")),
                         kv_bloom_hash(kv_slice_make("\0", 1)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_filter),
        cmocka_unit_test(test_small),
        cmocka_unit_test(test_no_false_negatives_and_rate),
        cmocka_unit_test(test_rate_10k_keys),
        cmocka_unit_test(test_malformed_filter_says_maybe),
        cmocka_unit_test(test_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
