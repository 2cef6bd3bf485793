/* test_coding.c — encodings, slices, buffers, arena, error messages. */
#include "testutil.h"

#include "arena.h"
#include "coding.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_fixed(void **state)
{
    (void)state;
    kv_buf buf = {0};
    for (uint32_t v = 0; v < 100000; v += 7)
        kv_put_fixed32(&buf, v);
    kv_slice in = kv_buf_slice(&buf);
    for (uint32_t v = 0; v < 100000; v += 7) {
        uint32_t got;
        assert_true(kv_get_fixed32(&in, &got));
        assert_int_equal(got, v);
    }
    assert_int_equal(in.size, 0);
    char b[8];
    kv_encode_fixed64(b, 0x0102030405060708ull);
    assert_int_equal((unsigned char)b[0], 0x08); /* little endian */
    assert_int_equal(kv_decode_fixed64(b), 0x0102030405060708ull);
    kv_encode_big_endian64(b, 0x0102030405060708ull);
    assert_int_equal((unsigned char)b[0], 0x01);
    assert_int_equal(kv_decode_big_endian64(b), 0x0102030405060708ull);
    kv_buf_free(&buf);
}

static void test_varint(void **state)
{
    (void)state;
    kv_buf buf = {0};
    uint64_t values[200];
    size_t n = 0;
    for (int shift = 0; shift < 64; shift++) {
        uint64_t p = 1ull << shift;
        values[n++] = p - 1;
        values[n++] = p;
        values[n++] = p + 1;
    }
    values[n++] = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t before = buf.size;
        kv_put_varint64(&buf, values[i]);
        assert_int_equal(buf.size - before, (size_t)kv_varint_length(values[i]));
    }
    kv_slice in = kv_buf_slice(&buf);
    for (size_t i = 0; i < n; i++) {
        uint64_t got;
        assert_true(kv_get_varint64(&in, &got));
        assert_true(got == values[i]);
    }
    assert_int_equal(in.size, 0);

    kv_buf_clear(&buf);
    for (uint32_t v = 0; v < (1u << 20); v = v * 3 + 1)
        kv_put_varint32(&buf, v);
    kv_put_varint32(&buf, UINT32_MAX);
    in = kv_buf_slice(&buf);
    for (uint32_t v = 0; v < (1u << 20); v = v * 3 + 1) {
        uint32_t got;
        assert_true(kv_get_varint32(&in, &got));
        assert_int_equal(got, v);
    }
    uint32_t got32;
    assert_true(kv_get_varint32(&in, &got32));
    assert_int_equal(got32, UINT32_MAX);
    kv_buf_free(&buf);
}

static void test_varint_malformed(void **state)
{
    (void)state;
    /* truncated */
    char t[2] = {(char)0x80, (char)0x80};
    kv_slice in = kv_slice_make(t, 2);
    uint64_t v64;
    uint32_t v32;
    assert_false(kv_get_varint64(&in, &v64));
    in = kv_slice_make(t, 2);
    assert_false(kv_get_varint32(&in, &v32));
    /* overlong: 5 bytes whose value exceeds 32 bits */
    char o[5] = {(char)0xff, (char)0xff, (char)0xff, (char)0xff, 0x7f};
    in = kv_slice_make(o, 5);
    assert_false(kv_get_varint32(&in, &v32));
    /* 11-byte varint64 */
    char o64[11];
    memset(o64, 0xff, 10);
    o64[10] = 0;
    in = kv_slice_make(o64, 11);
    assert_false(kv_get_varint64(&in, &v64));
    in = kv_slice_make(NULL, 0);
    assert_false(kv_get_varint64(&in, &v64));
}

static void test_length_prefixed(void **state)
{
    (void)state;
    kv_buf buf = {0};
    kv_put_length_prefixed(&buf, kv_slice_from_str(""));
    kv_put_length_prefixed(&buf, kv_slice_from_str("foo"));
    kv_put_length_prefixed(&buf, kv_slice_from_str("bar-baz"));
    kv_slice in = kv_buf_slice(&buf), v;
    assert_true(kv_get_length_prefixed(&in, &v));
    assert_int_equal(v.size, 0);
    assert_true(kv_get_length_prefixed(&in, &v));
    assert_true(kv_slice_equal(v, kv_slice_from_str("foo")));
    assert_true(kv_get_length_prefixed(&in, &v));
    assert_true(kv_slice_equal(v, kv_slice_from_str("bar-baz")));
    assert_false(kv_get_length_prefixed(&in, &v));
    /* length beyond the input */
    kv_buf_clear(&buf);
    kv_put_varint32(&buf, 10);
    kv_buf_append(&buf, "abc", 3);
    in = kv_buf_slice(&buf);
    assert_false(kv_get_length_prefixed(&in, &v));
    kv_buf_free(&buf);
}

static void test_slice_compare(void **state)
{
    (void)state;
    assert_true(kv_slice_compare(kv_slice_from_str("a"), kv_slice_from_str("b")) < 0);
    assert_true(kv_slice_compare(kv_slice_from_str("ab"), kv_slice_from_str("a")) > 0);
    assert_true(kv_slice_compare(kv_slice_from_str(""), kv_slice_from_str("")) == 0);
    assert_true(kv_slice_compare(kv_slice_make("\xff", 1), kv_slice_make("\x01", 1)) > 0);
    assert_true(kv_slice_equal(kv_slice_make(NULL, 0), kv_slice_from_str("")));
}

static void test_arena(void **state)
{
    (void)state;
    kv_arena arena;
    kv_arena_init(&arena);
    kv_test_rng rng;
    kv_test_rng_init(&rng, 301);
    size_t total = 0;
    char **ptrs = calloc(5000, sizeof(char *));
    size_t *sizes = calloc(5000, sizeof(size_t));
    for (int i = 0; i < 5000; i++) {
        size_t n = i % 500 == 0 ? 6000 : 1 + kv_test_rng_uniform(&rng, i % 10 ? 20 : 300);
        char *p = (i % 2) ? kv_arena_allocate_aligned(&arena, n) : kv_arena_allocate(&arena, n);
        if (i % 2)
            assert_int_equal((uintptr_t)p % 8, 0);
        memset(p, i & 0xff, n);
        ptrs[i] = p;
        sizes[i] = n;
        total += n;
        assert_true(kv_arena_memory_usage(&arena) >= total);
    }
    for (int i = 0; i < 5000; i++)
        for (size_t j = 0; j < sizes[i]; j++)
            assert_int_equal((unsigned char)ptrs[i][j], i & 0xff);
    assert_true(kv_arena_memory_usage(&arena) <= total * 11 / 10 + 64 * 1024);
    free(ptrs);
    free(sizes);
    kv_arena_destroy(&arena);
}

static void test_error_messages(void **state)
{
    (void)state;
    assert_int_equal(kv_error(KV_CORRUPTION, "%s: bad at offset %d", "000001.sst", 42),
                     KV_CORRUPTION);
    assert_string_equal(kv_errmsg(), "000001.sst: bad at offset 42");
    assert_int_equal(kv_error_wrap(KV_CORRUPTION, "open"), KV_CORRUPTION);
    assert_string_equal(kv_errmsg(), "open: 000001.sst: bad at offset 42");
    assert_int_equal(kv_error_errno(28 /* ENOSPC */, "write", "/x"), KV_NO_SPACE);
    assert_non_null(strstr(kv_errmsg(), "/x"));
    assert_int_equal(kv_error_errno(5 /* EIO */, "write", "/x"), KV_IO_ERROR);
    assert_string_equal(kv_strerror(KV_BUSY), "busy");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed),
        cmocka_unit_test(test_varint),
        cmocka_unit_test(test_varint_malformed),
        cmocka_unit_test(test_length_prefixed),
        cmocka_unit_test(test_slice_compare),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_error_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
