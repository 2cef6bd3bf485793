/* test_block.c — SST blocks: builder/iterator round trip, prefix
 * compression, restart intervals, seek/prev, malformed blocks. */
#include "testutil.h"

#include "block.h"
#include "coding.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct kv_pair {
    char key[48];
    size_t key_size;
    char value[64];
    size_t value_size;
} kv_pair;

/* n sorted, distinct keys with long shared prefixes and random values. */
static kv_pair *make_pairs(kv_test_rng *rng, size_t n)
{
    kv_pair *pairs = calloc(n, sizeof(*pairs));
    for (size_t i = 0; i < n; i++) {
        pairs[i].key_size = (size_t)snprintf(pairs[i].key, sizeof(pairs[i].key),
                                             "user/%04zu/file-%08zu", i / 37, i * 3);
        pairs[i].value_size = kv_test_rng_uniform(rng, sizeof(pairs[i].value) + 1);
        kv_test_rng_bytes(rng, pairs[i].value, pairs[i].value_size);
    }
    return pairs;
}

static kv_slice pair_key(const kv_pair *p)
{
    return kv_slice_make(p->key, p->key_size);
}
static kv_slice pair_value(const kv_pair *p)
{
    return kv_slice_make(p->value, p->value_size);
}

/* Builds a block of the pairs and parses it. */
static kv_block *build_block(const kv_pair *pairs, size_t n, int restart_interval, size_t *size_out)
{
    kv_block_builder b;
    kv_block_builder_init(&b, restart_interval);
    for (size_t i = 0; i < n; i++)
        kv_block_builder_add(&b, pair_key(&pairs[i]), pair_value(&pairs[i]));
    size_t estimate = kv_block_builder_size_estimate(&b);
    kv_slice contents = kv_block_builder_finish(&b);
    assert_int_equal(estimate, contents.size);
    kv_block *block;
    assert_int_equal(
        kv_block_create(kv_memdup(contents.data, contents.size), contents.size, "test", &block), 0);
    if (size_out)
        *size_out = contents.size;
    kv_block_builder_free(&b);
    return block;
}

static void assert_at(kv_iter *it, const kv_pair *p)
{
    assert_true(kv_iter_valid(it));
    assert_true(kv_slice_equal(kv_iter_key(it), pair_key(p)));
    assert_true(kv_slice_equal(kv_iter_value(it), pair_value(p)));
}

static void check_block(const kv_pair *pairs, size_t n, int restart_interval)
{
    kv_block *block = build_block(pairs, n, restart_interval, NULL);
    kv_iter *it = kv_block_iter_create(block, kv_slice_compare, NULL, NULL);

    size_t i = 0;
    for (kv_iter_seek_to_first(it); kv_iter_valid(it); kv_iter_next(it))
        assert_at(it, &pairs[i++]);
    assert_int_equal(i, n);
    assert_int_equal(kv_iter_status(it), 0);

    for (kv_iter_seek_to_last(it); kv_iter_valid(it); kv_iter_prev(it))
        assert_at(it, &pairs[--i]);
    assert_int_equal(i, 0);

    char probe[64];
    for (i = 0; i < n; i++) {
        kv_iter_seek(it, pair_key(&pairs[i]));
        assert_at(it, &pairs[i]);
        /* A key just after pairs[i] lands on pairs[i + 1]. */
        memcpy(probe, pairs[i].key, pairs[i].key_size);
        probe[pairs[i].key_size] = '\0';
        kv_iter_seek(it, kv_slice_make(probe, pairs[i].key_size + 1));
        if (i + 1 < n)
            assert_at(it, &pairs[i + 1]);
        else
            assert_false(kv_iter_valid(it));
        /* Mixing directions after a seek. */
        kv_iter_seek(it, pair_key(&pairs[i]));
        if (i > 0) {
            kv_iter_prev(it);
            assert_at(it, &pairs[i - 1]);
            kv_iter_next(it);
            assert_at(it, &pairs[i]);
        } else {
            kv_iter_prev(it);
            assert_false(kv_iter_valid(it));
        }
    }
    kv_iter_seek(it, kv_slice_from_str("a"));
    assert_at(it, &pairs[0]);
    kv_iter_seek(it, kv_slice_from_str("z"));
    assert_false(kv_iter_valid(it));
    assert_int_equal(kv_iter_status(it), 0);
    kv_iter_destroy(it);
    kv_block_destroy(block);
}

static void test_round_trip_restart_intervals(void **state)
{
    (void)state;
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(1));
    const size_t n = 500;
    kv_pair *pairs = make_pairs(&rng, n);
    const int intervals[] = {1, 2, 3, 16, 100, 1000};
    for (size_t k = 0; k < sizeof(intervals) / sizeof(intervals[0]); k++) {
        check_block(pairs, n, intervals[k]);
        check_block(pairs, 1, intervals[k]);
        check_block(pairs, 17, intervals[k]);
    }
    free(pairs);
}

static void test_prefix_compression(void **state)
{
    (void)state;
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(2));
    const size_t n = 200;
    kv_pair *pairs = make_pairs(&rng, n);
    size_t raw = 0;
    for (size_t i = 0; i < n; i++)
        raw += pairs[i].key_size + pairs[i].value_size;
    size_t whole, compressed;
    kv_block_destroy(build_block(pairs, n, 1, &whole));
    kv_block_destroy(build_block(pairs, n, 16, &compressed));
    /* Interval 1 stores every key whole: raw bytes + 3 header bytes + a
     * restart per entry. Interval 16 shares ~10+ bytes of each key. */
    assert_true(whole >= raw + 3 * n + 4 * n);
    assert_true(compressed + 10 * (n - n / 16) <= whole);
    free(pairs);
}

static void test_empty_block(void **state)
{
    (void)state;
    kv_block_builder b;
    kv_block_builder_init(&b, 16);
    assert_true(kv_block_builder_empty(&b));
    kv_slice contents = kv_block_builder_finish(&b);
    kv_block *block;
    assert_int_equal(
        kv_block_create(kv_memdup(contents.data, contents.size), contents.size, "empty", &block),
        0);
    kv_iter *it = kv_block_iter_create(block, kv_slice_compare, NULL, NULL);
    kv_iter_seek_to_first(it);
    assert_false(kv_iter_valid(it));
    kv_iter_seek_to_last(it);
    assert_false(kv_iter_valid(it));
    kv_iter_seek(it, kv_slice_from_str("x"));
    assert_false(kv_iter_valid(it));
    assert_int_equal(kv_iter_status(it), 0);
    kv_iter_destroy(it);
    kv_block_destroy(block);

    /* Reset makes the builder reusable. */
    kv_block_builder_reset(&b);
    kv_block_builder_add(&b, kv_slice_from_str("k"), kv_slice_from_str("v"));
    contents = kv_block_builder_finish(&b);
    assert_int_equal(
        kv_block_create(kv_memdup(contents.data, contents.size), contents.size, "one", &block), 0);
    it = kv_block_iter_create(block, kv_slice_compare, NULL, NULL);
    kv_iter_seek_to_first(it);
    assert_true(kv_iter_valid(it));
    assert_true(kv_slice_equal(kv_iter_key(it), kv_slice_from_str("k")));
    kv_iter_next(it);
    assert_false(kv_iter_valid(it));
    kv_iter_destroy(it);
    kv_block_destroy(block);
    kv_block_builder_free(&b);
}

static int release_calls;
static void count_release(void *arg)
{
    assert_ptr_equal(arg, &release_calls);
    release_calls++;
}

static void test_release_callback(void **state)
{
    (void)state;
    kv_test_rng rng;
    kv_test_rng_init(&rng, 3);
    kv_pair *pairs = make_pairs(&rng, 10);
    kv_block *block = build_block(pairs, 10, 4, NULL);
    release_calls = 0;
    kv_iter *it = kv_block_iter_create(block, kv_slice_compare, count_release, &release_calls);
    kv_iter_seek_to_first(it);
    assert_int_equal(release_calls, 0);
    kv_iter_destroy(it);
    assert_int_equal(release_calls, 1);
    kv_block_destroy(block);
    free(pairs);
}

/* kv_block_create on a copy of bytes; returns its status. */
static int create_raw(const char *bytes, size_t size)
{
    kv_block *block = NULL;
    int rc = kv_block_create(kv_memdup(bytes, size), size, "000042.sst", &block);
    kv_block_destroy(block);
    return rc;
}

static void test_malformed_trailer(void **state)
{
    (void)state;
    char buf[64] = {0};
    assert_int_equal(create_raw(buf, 0), KV_CORRUPTION);
    assert_int_equal(create_raw(buf, 3), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "000042.sst"));
    /* num_restarts larger than the block can hold. */
    kv_encode_fixed32(buf + 4, 2);
    assert_int_equal(create_raw(buf, 8), KV_CORRUPTION);
    kv_encode_fixed32(buf, 0xffffffffu);
    assert_int_equal(create_raw(buf, 4), KV_CORRUPTION);

    /* A real block, then damaged restart arrays. */
    kv_block_builder b;
    kv_block_builder_init(&b, 1);
    kv_block_builder_add(&b, kv_slice_from_str("a"), kv_slice_from_str("1"));
    kv_block_builder_add(&b, kv_slice_from_str("b"), kv_slice_from_str("2"));
    kv_slice contents = kv_block_builder_finish(&b);
    assert_int_equal(contents.size, 2 * 5 + 2 * 4 + 4);
    char copy[64];
    memcpy(copy, contents.data, contents.size);
    assert_int_equal(create_raw(copy, contents.size), 0);
    kv_encode_fixed32(copy + 10 + 4, 200); /* restart past the entries */
    assert_int_equal(create_raw(copy, contents.size), KV_CORRUPTION);
    kv_encode_fixed32(copy + 10 + 4, 0); /* not increasing */
    assert_int_equal(create_raw(copy, contents.size), KV_CORRUPTION);
    kv_encode_fixed32(copy + 10 + 4, 5);
    kv_encode_fixed32(copy + 10, 1); /* first restart must be 0 */
    assert_int_equal(create_raw(copy, contents.size), KV_CORRUPTION);
    kv_block_builder_free(&b);
}

/* Walks the whole block forward, backward and by seeks; it must either see
 * entries or stop with KV_CORRUPTION, and never read out of bounds (run
 * under ASan). Returns the number of entries seen forward. */
static size_t walk_block(kv_block *block)
{
    kv_iter *it = kv_block_iter_create(block, kv_slice_compare, NULL, NULL);
    size_t count = 0;
    for (kv_iter_seek_to_first(it); kv_iter_valid(it) && count < 100000; kv_iter_next(it)) {
        kv_slice k = kv_iter_key(it), v = kv_iter_value(it);
        (void)k;
        (void)v;
        count++;
    }
    int status = kv_iter_status(it);
    assert_true(status == 0 || status == KV_CORRUPTION);
    kv_iter_destroy(it);
    it = kv_block_iter_create(block, kv_slice_compare, NULL, NULL);
    size_t steps = 0;
    for (kv_iter_seek_to_last(it); kv_iter_valid(it) && steps < 100000; kv_iter_prev(it))
        steps++;
    kv_iter_seek(it, kv_slice_from_str("user/0003"));
    status = kv_iter_status(it);
    assert_true(status == 0 || status == KV_CORRUPTION);
    kv_iter_destroy(it);
    return count;
}

static void test_malformed_entries(void **state)
{
    (void)state;
    kv_block_builder b;
    kv_block_builder_init(&b, 4);
    kv_block_builder_add(&b, kv_slice_from_str("apple"), kv_slice_from_str("1"));
    kv_block_builder_add(&b, kv_slice_from_str("apricot"), kv_slice_from_str("2"));
    kv_slice contents = kv_block_builder_finish(&b);
    /* Entry 2 starts at 3 + 5 + 1 = 9: shared=2 non_shared=5 value_len=1. */
    assert_int_equal(contents.data[9], 2);

    char copy[64];
    kv_block *block;
    struct {
        size_t offset;
        char byte;
    } damage[] = {
        {9, 9},          /* shared longer than the previous key */
        {10, 60},        /* non_shared past the end of the entries */
        {11, 60},        /* value past the end */
        {0, 1},          /* a restart entry that claims a shared prefix */
        {1, (char)0x80}, /* varint swallows the next byte */
    };
    for (size_t i = 0; i < sizeof(damage) / sizeof(damage[0]); i++) {
        memcpy(copy, contents.data, contents.size);
        copy[damage[i].offset] = damage[i].byte;
        assert_int_equal(
            kv_block_create(kv_memdup(copy, contents.size), contents.size, "t", &block), 0);
        kv_iter *it = kv_block_iter_create(block, kv_slice_compare, NULL, NULL);
        kv_iter_seek_to_first(it);
        while (kv_iter_valid(it))
            kv_iter_next(it);
        assert_int_equal(kv_iter_status(it), KV_CORRUPTION);
        kv_iter_seek_to_first(it); /* errors are sticky */
        assert_false(kv_iter_valid(it));
        kv_iter_destroy(it);
        kv_block_destroy(block);
    }
    kv_block_builder_free(&b);
}

/* Random byte damage anywhere in a block never makes the iterator read
 * outside it (ASan) and never hangs. */
static void test_random_damage(void **state)
{
    (void)state;
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(4));
    kv_pair *pairs = make_pairs(&rng, 100);
    kv_block_builder b;
    kv_block_builder_init(&b, 8);
    for (size_t i = 0; i < 100; i++)
        kv_block_builder_add(&b, pair_key(&pairs[i]), pair_value(&pairs[i]));
    kv_slice contents = kv_block_builder_finish(&b);
    int rounds = kv_test_long_mode() ? 20000 : 2000;
    for (int r = 0; r < rounds; r++) {
        char *copy = kv_memdup(contents.data, contents.size);
        int flips = 1 + (int)kv_test_rng_uniform(&rng, 4);
        for (int f = 0; f < flips; f++)
            copy[kv_test_rng_uniform(&rng, contents.size)] = (char)kv_test_rng_next(&rng);
        kv_block *block;
        if (kv_block_create(copy, contents.size, "t", &block) == 0) {
            walk_block(block);
            kv_block_destroy(block);
        }
    }
    kv_block_builder_free(&b);
    free(pairs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_restart_intervals),
        cmocka_unit_test(test_prefix_compression),
        cmocka_unit_test(test_empty_block),
        cmocka_unit_test(test_release_callback),
        cmocka_unit_test(test_malformed_trailer),
        cmocka_unit_test(test_malformed_entries),
        cmocka_unit_test(test_random_damage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
