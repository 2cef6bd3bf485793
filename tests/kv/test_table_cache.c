/* test_table_cache.c — open SST readers by number: lookups and iterators
 * through the cache, eviction, missing files, and a bounded number of open
 * descriptors however many tables are read. */
#include "testutil.h"

#include "dbformat.h"
#include "error.h"
#include "filename.h"
#include "table_builder.h"
#include "table_cache.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUM_TABLES 100
#define KEYS_PER_TABLE 50

static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void make_key(uint64_t table, int i, char *buf, size_t *size)
{
    *size = (size_t)snprintf(buf, 32, "t%03llu-k%04d", (unsigned long long)table, i);
}

/* Table n holds KEYS_PER_TABLE keys "tNNN-kIIII" -> "value-N-I" at seq n. */
static uint64_t write_numbered_table(const char *dir, uint64_t number)
{
    char *path = kv_table_file_name(dir, number);
    kv_writable *file;
    assert_int_equal(kv_env_new_writable(kv_env_posix(), path, 16384, &file), 0);
    kv_table_options options = {.block_size = 256,
                                .block_restart_interval = 4,
                                .bloom_bits_per_key = 10,
                                .compression = KV_COMPRESSION_SNAPPY};
    kv_table_builder *b = kv_table_builder_create(&options, file);
    kv_buf ikey = {0};
    for (int i = 0; i < KEYS_PER_TABLE; i++) {
        char key[32], value[32];
        size_t key_size;
        make_key(number, i, key, &key_size);
        int value_size =
            snprintf(value, sizeof(value), "value-%llu-%d", (unsigned long long)number, i);
        kv_buf_clear(&ikey);
        kv_ikey_append(&ikey, kv_slice_make(key, key_size), number, KV_TYPE_VALUE);
        assert_int_equal(
            kv_table_builder_add(b, kv_buf_slice(&ikey), kv_slice_make(value, (size_t)value_size)),
            0);
    }
    assert_int_equal(kv_table_builder_finish(b), 0);
    uint64_t size = kv_table_builder_file_size(b);
    kv_table_builder_destroy(b);
    assert_int_equal(kv_writable_close(file), 0);
    kv_buf_free(&ikey);
    free(path);
    return size;
}

typedef struct fixture {
    char *dir;
    uint64_t sizes[NUM_TABLES + 1];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->dir = kv_test_tmpdir("table_cache");
    for (uint64_t n = 1; n <= NUM_TABLES; n++)
        f->sizes[n] = write_numbered_table(f->dir, n);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kv_test_cleanup_dir(f->dir);
    free(f);
    return 0;
}

/* Walks table n's iterator, checking every entry. */
static void check_table_iter(kv_table_cache *tc, const fixture *f, uint64_t n)
{
    kv_iter *it = kv_table_cache_iter(tc, n, f->sizes[n], true);
    int i = 0;
    for (kv_iter_seek_to_first(it); kv_iter_valid(it); kv_iter_next(it), i++) {
        char key[32];
        size_t key_size;
        make_key(n, i, key, &key_size);
        assert_true(
            kv_slice_equal(kv_ikey_user_key(kv_iter_key(it)), kv_slice_make(key, key_size)));
    }
    assert_int_equal(kv_iter_status(it), 0);
    assert_int_equal(i, KEYS_PER_TABLE);
    kv_iter_destroy(it);
}

static void check_table_get(kv_table_cache *tc, const fixture *f, uint64_t n, int i)
{
    char key[32], expected[32];
    size_t key_size;
    make_key(n, i, key, &key_size);
    snprintf(expected, sizeof(expected), "value-%llu-%d", (unsigned long long)n, i);
    kv_buf value = {0};
    kv_lookup lookup = {
        .user_key = kv_slice_make(key, key_size), .snapshot = KV_MAX_SEQUENCE, .value = &value};
    assert_int_equal(kv_table_cache_get(tc, n, f->sizes[n], &lookup, true), 0);
    assert_int_equal(lookup.state, KV_LOOKUP_VALUE);
    assert_int_equal(lookup.seq, n);
    assert_true(kv_slice_equal(kv_buf_slice(&value), kv_slice_from_str(expected)));
    kv_buf_free(&value);
}

static void test_bounded_open_files(void **state)
{
    fixture *f = *state;
    kv_cache *block_cache = kv_cache_create(1 << 20, -1);
    kv_table_cache *tc = kv_table_cache_create(kv_env_posix(), f->dir, 10, block_cache);
    int baseline = count_open_fds();
    int peak = baseline;
    for (int round = 0; round < 3; round++) {
        for (uint64_t n = 1; n <= NUM_TABLES; n++) {
            check_table_iter(tc, f, n);
            check_table_get(tc, f, n, (int)(n % KEYS_PER_TABLE));
            int fds = count_open_fds();
            if (fds > peak)
                peak = fds;
            assert_true(fds <= baseline + 10);
        }
    }
    print_message("open descriptors: baseline %d, peak %d\n", baseline, peak);
    assert_true(peak > baseline); /* tables were really opened */
    kv_table_cache_destroy(tc);
    assert_int_equal(count_open_fds(), baseline);
    kv_cache_destroy(block_cache);
}

static void test_iterators_pin_tables(void **state)
{
    fixture *f = *state;
    kv_table_cache *tc = kv_table_cache_create(kv_env_posix(), f->dir, 10, NULL);
    int baseline = count_open_fds();
    /* 20 live iterators keep 20 tables open, past the capacity. */
    kv_iter *iters[20];
    for (int i = 0; i < 20; i++) {
        iters[i] = kv_table_cache_iter(tc, (uint64_t)i + 1, f->sizes[i + 1], true);
        kv_iter_seek_to_first(iters[i]);
    }
    assert_int_equal(count_open_fds(), baseline + 20);
    /* They stay usable while other tables come and go. */
    for (uint64_t n = 50; n <= NUM_TABLES; n++)
        check_table_get(tc, f, n, 3);
    for (int i = 0; i < 20; i++) {
        int count = 0;
        for (; kv_iter_valid(iters[i]); kv_iter_next(iters[i]))
            count++;
        assert_int_equal(count, KEYS_PER_TABLE);
        kv_iter_destroy(iters[i]);
    }
    /* Released tables are closed as new ones push them out. */
    for (uint64_t n = 30; n <= 45; n++)
        check_table_get(tc, f, n, 1);
    assert_true(count_open_fds() <= baseline + 10);
    kv_table_cache_destroy(tc);
    assert_int_equal(count_open_fds(), baseline);
}

static void test_find_evict_and_missing(void **state)
{
    fixture *f = *state;
    kv_table_cache *tc = kv_table_cache_create(kv_env_posix(), f->dir, 50, NULL);
    int baseline = count_open_fds();
    kv_cache_handle *h1, *h2;
    assert_int_equal(kv_table_cache_find(tc, 7, f->sizes[7], &h1), 0);
    assert_int_equal(kv_table_cache_find(tc, 7, f->sizes[7], &h2), 0);
    assert_ptr_equal(kv_table_cache_table(h1), kv_table_cache_table(h2));
    assert_int_equal(count_open_fds(), baseline + 1);
    kv_table_cache_release(tc, h1);
    kv_table_cache_release(tc, h2);
    kv_table_cache_evict(tc, 7);
    assert_int_equal(count_open_fds(), baseline);
    check_table_get(tc, f, 7, 0); /* reopened on demand */

    /* A missing file: an error from get, an empty iterator carrying it. */
    kv_lookup lookup = {.user_key = kv_slice_from_str("x"), .snapshot = KV_MAX_SEQUENCE};
    assert_true(kv_table_cache_get(tc, 999, 1000, &lookup, true) < 0);
    assert_non_null(strstr(kv_errmsg(), "000999.sst"));
    kv_iter *it = kv_table_cache_iter(tc, 999, 1000, true);
    kv_iter_seek_to_first(it);
    assert_false(kv_iter_valid(it));
    assert_true(kv_iter_status(it) < 0);
    kv_iter_destroy(it);

    /* A wrong size: the footer is not found there. */
    it = kv_table_cache_iter(tc, 8, f->sizes[8] - 1, true);
    assert_int_equal(kv_iter_status(it), KV_CORRUPTION);
    kv_iter_destroy(it);
    assert_int_equal(count_open_fds(), baseline + 1); /* only table 7 */
    kv_table_cache_destroy(tc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bounded_open_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iterators_pin_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_evict_and_missing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
