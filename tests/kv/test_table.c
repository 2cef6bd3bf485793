/* test_table.c — SST files: build and read back with snapshots and
 * deletions, point lookups with and without the filter, iteration both
 * ways, range tombstones, compression, the block cache, and damaged files
 * (flipped bytes, truncation, wrong magic) that must give KV_CORRUPTION
 * and never wrong data. */
#include "testutil.h"

#include "cache.h"
#include "coding.h"
#include "crc32c.h"
#include "env_fault.h"
#include "error.h"
#include "table.h"
#include "table_builder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <unistd.h>

/* ---- the model: what a table should contain ---- */

typedef struct model_entry {
    char user_key[16];
    size_t user_key_size;
    kv_seq seq;
    int type;
    kv_buf ikey;
    kv_buf value;
} model_entry;

typedef struct model {
    model_entry *entries; /* in internal key order */
    size_t count;
    size_t num_user_keys;
} model;

static void make_user_key(size_t i, char *buf, size_t *size)
{
    *size = (size_t)snprintf(buf, 16, "key%08zu", i * 2);
}

/* num_user_keys keys, each with 1-3 versions of distinct descending
 * sequences; about one version in five a deletion. compressible chooses
 * between repetitive and random values. */
static void model_build(model *m, kv_test_rng *rng, size_t num_user_keys, bool compressible)
{
    m->entries = calloc(num_user_keys * 3, sizeof(*m->entries));
    m->count = 0;
    m->num_user_keys = num_user_keys;
    for (size_t i = 0; i < num_user_keys; i++) {
        int versions = 1 + (int)kv_test_rng_uniform(rng, 3);
        kv_seq seq = 200000 + kv_test_rng_uniform(rng, 100000); /* > 3 * 50001 */
        for (int v = 0; v < versions; v++) {
            model_entry *e = &m->entries[m->count++];
            make_user_key(i, e->user_key, &e->user_key_size);
            e->seq = seq;
            seq -= 1 + kv_test_rng_uniform(rng, 50000);
            e->type = kv_test_rng_uniform(rng, 5) == 0 ? KV_TYPE_DELETION : KV_TYPE_VALUE;
            kv_ikey_append(&e->ikey, kv_slice_make(e->user_key, e->user_key_size), e->seq, e->type);
            if (e->type == KV_TYPE_VALUE) {
                size_t size = 10 + kv_test_rng_uniform(rng, 200);
                kv_buf_resize(&e->value, size);
                if (compressible) {
                    for (size_t b = 0; b < size; b++)
                        e->value.data[b] = (char)('a' + (i + b / 16) % 4);
                } else {
                    kv_test_rng_bytes(rng, e->value.data, size);
                }
            }
        }
    }
}

static void model_free(model *m)
{
    for (size_t i = 0; i < m->count; i++) {
        kv_buf_free(&m->entries[i].ikey);
        kv_buf_free(&m->entries[i].value);
    }
    free(m->entries);
}

/* Index of the first entry >= target, or m->count. */
static size_t model_lower_bound(const model *m, kv_slice target)
{
    size_t lo = 0, hi = m->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (kv_ikey_compare(kv_buf_slice(&m->entries[mid].ikey), target) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- building and opening ---- */

static kv_table_options default_options(void)
{
    kv_table_options o = {.block_size = 4096,
                          .block_restart_interval = 16,
                          .bloom_bits_per_key = 10,
                          .compression = KV_COMPRESSION_SNAPPY};
    return o;
}

typedef struct tombstone_spec {
    const char *begin, *end;
    kv_seq seq;
} tombstone_spec;

static char *table_path(const char *dir, const char *name)
{
    return kv_sprintf("%s/%s", dir, name);
}

/* Writes the model (and tombstones) as table `path`; returns its size.
 * *builder_out, when given, receives the finished builder (caller
 * destroys). */
static uint64_t write_table(const char *path, const kv_table_options *options, const model *m,
                            const tombstone_spec *tombstones, size_t num_tombstones,
                            kv_table_builder **builder_out)
{
    kv_writable *file;
    assert_int_equal(kv_env_new_writable(kv_env_posix(), path, 65536, &file), 0);
    kv_table_builder *b = kv_table_builder_create(options, file);
    /* Tombstones arrive interleaved with points and in no order. */
    size_t t = num_tombstones;
    for (size_t i = 0; m && i < m->count; i++) {
        if (t > 0 && i % 1000 == 0) {
            t--;
            kv_table_builder_add_range_tombstone(b, kv_slice_from_str(tombstones[t].begin),
                                                 kv_slice_from_str(tombstones[t].end),
                                                 tombstones[t].seq);
        }
        assert_int_equal(kv_table_builder_add(b, kv_buf_slice(&m->entries[i].ikey),
                                              kv_buf_slice(&m->entries[i].value)),
                         0);
    }
    while (t > 0) {
        t--;
        kv_table_builder_add_range_tombstone(b, kv_slice_from_str(tombstones[t].begin),
                                             kv_slice_from_str(tombstones[t].end),
                                             tombstones[t].seq);
    }
    assert_int_equal(kv_table_builder_finish(b), 0);
    uint64_t size = kv_table_builder_file_size(b);
    assert_int_equal(kv_writable_sync(file), 0);
    assert_int_equal(kv_writable_close(file), 0);
    uint64_t on_disk;
    assert_int_equal(kv_env_file_size(path, &on_disk), 0);
    assert_int_equal(on_disk, size);
    if (builder_out)
        *builder_out = b;
    else
        kv_table_builder_destroy(b);
    return size;
}

static int open_table(const char *path, uint64_t size, kv_cache *cache, kv_table **out)
{
    kv_random *file;
    int rc = kv_env_new_random(kv_env_posix(), path, &file);
    if (rc < 0)
        return rc;
    const char *slash = strrchr(path, '/');
    return kv_table_open(file, size, slash ? slash + 1 : path, cache, out);
}

/* ---- checks ---- */

static void check_iteration(kv_table *table, const model *m, bool fill_cache)
{
    kv_iter *it = kv_table_iter_create(table, fill_cache, NULL, NULL);
    size_t i = 0;
    for (kv_iter_seek_to_first(it); kv_iter_valid(it); kv_iter_next(it), i++) {
        assert_true(i < m->count);
        assert_true(kv_slice_equal(kv_iter_key(it), kv_buf_slice(&m->entries[i].ikey)));
        assert_true(kv_slice_equal(kv_iter_value(it), kv_buf_slice(&m->entries[i].value)));
    }
    assert_int_equal(kv_iter_status(it), 0);
    assert_int_equal(i, m->count);
    for (kv_iter_seek_to_last(it); kv_iter_valid(it); kv_iter_prev(it)) {
        assert_true(i > 0);
        i--;
        assert_true(kv_slice_equal(kv_iter_key(it), kv_buf_slice(&m->entries[i].ikey)));
    }
    assert_int_equal(i, 0);
    assert_int_equal(kv_iter_status(it), 0);
    kv_iter_destroy(it);
}

static void check_seeks(kv_table *table, const model *m, kv_test_rng *rng, int count)
{
    kv_iter *it = kv_table_iter_create(table, true, NULL, NULL);
    kv_buf target = {0};
    for (int n = 0; n < count; n++) {
        /* Existing user keys, keys between them (odd numbers), and beyond. */
        size_t k = kv_test_rng_uniform(rng, 2 * m->num_user_keys + 4);
        char user[16];
        size_t user_size = (size_t)snprintf(user, sizeof(user), "key%08zu", k);
        kv_seq snapshot =
            kv_test_rng_uniform(rng, 4) == 0 ? KV_MAX_SEQUENCE : kv_test_rng_uniform(rng, 320000);
        kv_buf_clear(&target);
        kv_ikey_append(&target, kv_slice_make(user, user_size), snapshot, KV_TYPE_FOR_SEEK);
        size_t expected = model_lower_bound(m, kv_buf_slice(&target));
        kv_iter_seek(it, kv_buf_slice(&target));
        if (expected == m->count) {
            assert_false(kv_iter_valid(it));
            continue;
        }
        assert_true(kv_iter_valid(it));
        assert_true(kv_slice_equal(kv_iter_key(it), kv_buf_slice(&m->entries[expected].ikey)));
        /* One step either way from a seek. */
        if (expected > 0) {
            kv_iter_prev(it);
            assert_true(
                kv_slice_equal(kv_iter_key(it), kv_buf_slice(&m->entries[expected - 1].ikey)));
            kv_iter_next(it);
        }
        kv_iter_next(it);
        if (expected + 1 < m->count)
            assert_true(
                kv_slice_equal(kv_iter_key(it), kv_buf_slice(&m->entries[expected + 1].ikey)));
        else
            assert_false(kv_iter_valid(it));
    }
    assert_int_equal(kv_iter_status(it), 0);
    kv_buf_free(&target);
    kv_iter_destroy(it);
}

/* Model entries are grouped by user key; this finds each group fast. */
static void check_gets(kv_table *table, const model *m, kv_test_rng *rng)
{
    size_t i = 0;
    kv_buf value = {0};
    while (i < m->count) {
        size_t j = i;
        while (j < m->count && m->entries[j].user_key_size == m->entries[i].user_key_size &&
               memcmp(m->entries[j].user_key, m->entries[i].user_key,
                      m->entries[i].user_key_size) == 0)
            j++;
        /* Snapshots: latest, each version's own seq, just below each, and
         * below all. */
        kv_seq snapshots[8];
        size_t ns = 0;
        snapshots[ns++] = KV_MAX_SEQUENCE;
        for (size_t v = i; v < j; v++) {
            snapshots[ns++] = m->entries[v].seq;
            snapshots[ns++] = m->entries[v].seq - 1 - kv_test_rng_uniform(rng, 2);
        }
        for (size_t s = 0; s < ns; s++) {
            kv_lookup lookup = {
                .user_key = kv_slice_make(m->entries[i].user_key, m->entries[i].user_key_size),
                .snapshot = snapshots[s],
                .value = &value};
            assert_int_equal(kv_table_get(table, &lookup, true), 0);
            size_t v = i;
            while (v < j && m->entries[v].seq > snapshots[s])
                v++;
            if (v == j) {
                assert_int_equal(lookup.state, KV_LOOKUP_NONE);
                continue;
            }
            assert_int_equal(lookup.seq, m->entries[v].seq);
            if (m->entries[v].type == KV_TYPE_DELETION) {
                assert_int_equal(lookup.state, KV_LOOKUP_DELETED);
            } else {
                assert_int_equal(lookup.state, KV_LOOKUP_VALUE);
                assert_true(
                    kv_slice_equal(kv_buf_slice(&value), kv_buf_slice(&m->entries[v].value)));
            }
        }
        i = j;
    }
    kv_buf_free(&value);
}

/* Keys never written (odd numbers, and past the end): always NONE. */
static void check_absent_gets(kv_table *table, size_t num_user_keys)
{
    for (size_t k = 1; k < 2 * num_user_keys + 100; k += 2) {
        char user[16];
        size_t user_size = (size_t)snprintf(user, sizeof(user), "key%08zu", k);
        kv_lookup lookup = {.user_key = kv_slice_make(user, user_size),
                            .snapshot = KV_MAX_SEQUENCE};
        assert_int_equal(kv_table_get(table, &lookup, true), 0);
        assert_int_equal(lookup.state, KV_LOOKUP_NONE);
    }
}

/* ---- tests ---- */

static void test_round_trip(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("table_round_trip");
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(11));
    model m;
    model_build(&m, &rng, 6000, true);
    assert_true(m.count >= 10000);

    char *path = table_path(dir, "000005.sst");
    kv_table_options options = default_options();
    kv_table_builder *b;
    uint64_t size = write_table(path, &options, &m, NULL, 0, &b);
    assert_int_equal(kv_table_builder_num_entries(b), m.count);
    assert_true(kv_slice_equal(kv_table_builder_smallest(b), kv_buf_slice(&m.entries[0].ikey)));
    assert_true(
        kv_slice_equal(kv_table_builder_largest(b), kv_buf_slice(&m.entries[m.count - 1].ikey)));
    const kv_table_properties *bp = kv_table_builder_properties(b);
    assert_int_equal(bp->num_entries, m.count);

    kv_table *table;
    assert_int_equal(open_table(path, size, NULL, &table), 0);
    const kv_table_properties *p = kv_table_get_properties(table);
    assert_memory_equal(p, bp, sizeof(*p));
    size_t deletions = 0, raw_keys = 0;
    kv_seq smallest = KV_MAX_SEQUENCE, largest = 0;
    for (size_t i = 0; i < m.count; i++) {
        deletions += m.entries[i].type == KV_TYPE_DELETION;
        raw_keys += m.entries[i].ikey.size;
        if (m.entries[i].seq < smallest)
            smallest = m.entries[i].seq;
        if (m.entries[i].seq > largest)
            largest = m.entries[i].seq;
    }
    kv_table_builder_destroy(b);
    assert_int_equal(p->num_deletions, deletions);
    assert_int_equal(p->raw_key_size, raw_keys);
    assert_int_equal(p->smallest_seq, smallest);
    assert_int_equal(p->largest_seq, largest);
    assert_int_equal(p->num_range_deletions, 0);
    assert_true(p->num_data_blocks > 50);
    assert_true(p->filter_size > 0);
    assert_null(kv_table_range_tombstones(table));

    check_iteration(table, &m, true);
    check_seeks(table, &m, &rng, 3000);
    check_gets(table, &m, &rng);
    check_absent_gets(table, m.num_user_keys);
    /* The filter answered for most absent keys. */
    assert_true(kv_table_bloom_checked(table) > 0);
    assert_true(kv_table_bloom_useful(table) >= m.num_user_keys * 9 / 10);
    assert_int_equal(kv_table_verify(table), 0);

    /* Approximate offsets grow with the key and stay inside the data. */
    uint64_t previous = 0;
    for (size_t i = 0; i < m.count; i += 97) {
        uint64_t offset = kv_table_approximate_offset(table, kv_buf_slice(&m.entries[i].ikey));
        assert_true(offset >= previous);
        assert_true(offset < p->data_size);
        previous = offset;
    }
    assert_int_equal(kv_table_approximate_offset(table, kv_buf_slice(&m.entries[0].ikey)), 0);
    kv_buf past = {0};
    kv_ikey_append(&past, kv_slice_from_str("zzz"), 1, KV_TYPE_VALUE);
    assert_int_equal(kv_table_approximate_offset(table, kv_buf_slice(&past)), p->data_size);
    kv_buf_free(&past);

    kv_table_close(table);
    model_free(&m);
    free(path);
    kv_test_cleanup_dir(dir);
}

static void test_options_variants(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("table_variants");
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(12));
    model m;
    model_build(&m, &rng, 1500, false);
    char *path = table_path(dir, "000006.sst");
    /* No filter, tiny blocks, restart interval 1; then huge blocks. */
    kv_table_options variants[] = {
        {.block_size = 256,
         .block_restart_interval = 1,
         .bloom_bits_per_key = 0,
         .compression = KV_COMPRESSION_NONE},
        {.block_size = 1 << 20,
         .block_restart_interval = 7,
         .bloom_bits_per_key = 4,
         .compression = KV_COMPRESSION_SNAPPY},
        {.block_size = 1,
         .block_restart_interval = 2,
         .bloom_bits_per_key = 10,
         .compression = KV_COMPRESSION_NONE},
    };
    for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
        uint64_t size = write_table(path, &variants[v], &m, NULL, 0, NULL);
        kv_table *table;
        assert_int_equal(open_table(path, size, NULL, &table), 0);
        check_iteration(table, &m, false);
        check_seeks(table, &m, &rng, 500);
        check_gets(table, &m, &rng);
        check_absent_gets(table, m.num_user_keys);
        if (variants[v].bloom_bits_per_key == 0) {
            assert_int_equal(kv_table_bloom_checked(table), 0);
            assert_int_equal(kv_table_get_properties(table)->filter_size, 0);
        }
        if (variants[v].block_size == 1)
            assert_int_equal(kv_table_get_properties(table)->num_data_blocks, m.count);
        assert_int_equal(kv_table_verify(table), 0);
        kv_table_close(table);
    }
    model_free(&m);
    free(path);
    kv_test_cleanup_dir(dir);
}

static void test_compression(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("table_compression");
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(13));
    char *path = table_path(dir, "000007.sst");
    for (int compressible = 0; compressible < 2; compressible++) {
        model m;
        model_build(&m, &rng, 3000, compressible);
        kv_table_options options = default_options();
        options.compression = KV_COMPRESSION_NONE;
        uint64_t plain = write_table(path, &options, &m, NULL, 0, NULL);
        options.compression = KV_COMPRESSION_SNAPPY;
        uint64_t snappy = write_table(path, &options, &m, NULL, 0, NULL);
        if (compressible)
            assert_true(snappy < plain / 2);
        else /* random values: compression not kept, nothing lost */
            assert_true(snappy <= plain && snappy > plain * 95 / 100);
        kv_table *table;
        assert_int_equal(open_table(path, snappy, NULL, &table), 0);
        check_iteration(table, &m, false);
        check_gets(table, &m, &rng);
        kv_table_close(table);
        model_free(&m);
    }
    free(path);
    kv_test_cleanup_dir(dir);
}

/* Random values for the first half of the keys, repetitive ones after: the
 * builder stops trying to compress during the random run, and must take
 * it up again for the repetitive half (and read everything back). */
static void test_compression_resumes(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("table_compression_resumes");
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(14));
    char *path = table_path(dir, "000008.sst");
    model m;
    model_build(&m, &rng, 4000, true);
    for (size_t i = 0; i < m.count; i++) {
        model_entry *e = &m.entries[i];
        if (e->type == KV_TYPE_VALUE && strcmp(e->user_key, "key00004000") < 0)
            kv_test_rng_bytes(&rng, e->value.data, e->value.size);
    }
    kv_table_options options = default_options();
    options.compression = KV_COMPRESSION_NONE;
    uint64_t plain = write_table(path, &options, &m, NULL, 0, NULL);
    options.compression = KV_COMPRESSION_SNAPPY;
    uint64_t snappy = write_table(path, &options, &m, NULL, 0, NULL);
    /* Half stays as it is, the other half shrinks several times. */
    assert_true(snappy < plain * 3 / 4);
    assert_true(snappy > plain * 2 / 5);
    kv_table *table;
    assert_int_equal(open_table(path, snappy, NULL, &table), 0);
    check_iteration(table, &m, false);
    check_gets(table, &m, &rng);
    kv_table_close(table);
    model_free(&m);
    free(path);
    kv_test_cleanup_dir(dir);
}

/* Resident bytes of path's mapping in this process, from /proc/self/smaps
 * (0 when it is not mapped). */
static uint64_t mapped_resident_bytes(const char *path)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    assert_non_null(f);
    char line[4096];
    bool in_mapping = false;
    uint64_t total = 0;
    while (fgets(line, sizeof(line), f)) {
        unsigned long long kib, start, end;
        char *name;
        if (sscanf(line, "%llx-%llx ", &start, &end) == 2) { /* a mapping's first line */
            line[strcspn(line, "\n")] = '\0';
            name = strchr(line, '/');
            in_mapping = name != NULL && strcmp(name, path) == 0;
        } else if (in_mapping && sscanf(line, "Rss: %llu kB", &kib) == 1) {
            total += kib << 10;
        }
    }
    fclose(f);
    return total;
}

/* Uncompressed blocks of a mapped file are read in place, with and without
 * a block cache, and a scan releases the pages it read: after iterating a
 * 12 MiB table forward and back the mapping holds a fraction of it
 * resident, while point reads keep theirs. */
static void test_scan_releases_mapped_pages(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("table_release_pages");
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(15));
    char *path = table_path(dir, "000009.sst");
    char *real;
    model m;
    model_build(&m, &rng, 60000, false);
    kv_table_options options = default_options();
    options.compression = KV_COMPRESSION_NONE;
    uint64_t size = write_table(path, &options, &m, NULL, 0, NULL);
    assert_true(size > (10u << 20));
    real = realpath(path, NULL);
    assert_non_null(real);
    for (int cached = 0; cached < 2; cached++) {
        kv_cache *cache = cached ? kv_cache_create(8u << 20, 4) : NULL;
        kv_table *table;
        assert_int_equal(open_table(path, size, cache, &table), 0);
        check_iteration(table, &m, true);
        uint64_t resident = mapped_resident_bytes(real);
        /* A fault maps the whole (large) folio around a page: allow one. */
        assert_true(resident <= (2u << 20));
        check_gets(table, &m, &rng);
        assert_true(mapped_resident_bytes(real) > resident); /* gets keep their pages */
        kv_table_close(table);
        kv_cache_destroy(cache);
    }
    model_free(&m);
    free(real);
    free(path);
    kv_test_cleanup_dir(dir);
}

static void test_range_tombstones(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("table_range_del");
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(14));
    model m;
    model_build(&m, &rng, 3000, true);
    char *path = table_path(dir, "000008.sst");
    const tombstone_spec tombstones[] = {
        {"key00000100", "key00000200", 150000},
        {"key00000150", "key00000300", 120000},
        {"a", "b", 7},
        {"key00005000", "key00005001", 300000},
        {"zzz", "zzzz", 5},
        {"key00000150", "key00000300", 130000},
        {"m", "m", 99}, /* empty: ignored */
    };
    size_t n = sizeof(tombstones) / sizeof(tombstones[0]);
    kv_table_options options = default_options();
    kv_table_builder *b;
    uint64_t size = write_table(path, &options, &m, tombstones, n, &b);
    assert_int_equal(kv_table_builder_num_entries(b), m.count + n - 1);

    /* Bounds: "a"@7 (before every point key) .. "zzzz"@max. */
    kv_buf expect = {0};
    kv_ikey_append(&expect, kv_slice_from_str("a"), 7, KV_TYPE_RANGE_DELETION);
    assert_true(kv_slice_equal(kv_table_builder_smallest(b), kv_buf_slice(&expect)));
    kv_buf_clear(&expect);
    kv_ikey_append(&expect, kv_slice_from_str("zzzz"), KV_MAX_SEQUENCE, KV_TYPE_RANGE_DELETION);
    assert_true(kv_slice_equal(kv_table_builder_largest(b), kv_buf_slice(&expect)));
    kv_buf_free(&expect);
    assert_int_equal(kv_table_builder_properties(b)->num_range_deletions, n - 1);
    assert_int_equal(kv_table_builder_properties(b)->smallest_seq, 5);
    assert_int_equal(kv_table_builder_properties(b)->largest_seq, 300000);
    kv_table_builder_destroy(b);

    kv_table *table;
    assert_int_equal(open_table(path, size, NULL, &table), 0);
    kv_frag_tombstones *list = kv_table_range_tombstones(table);
    assert_non_null(list);
    assert_int_equal(kv_frag_tombstones_num_input(list), n - 1);
    assert_int_equal(kv_table_get_properties(table)->num_range_deletions, n - 1);
    struct {
        const char *key;
        kv_seq snapshot, expected;
    } probes[] = {
        {"key00000100", KV_MAX_SEQUENCE, 150000},
        {"key00000160", KV_MAX_SEQUENCE, 150000},
        {"key00000160", 140000, 130000},
        {"key00000250", KV_MAX_SEQUENCE, 130000},
        {"key00000250", 125000, 120000},
        {"key00000300", KV_MAX_SEQUENCE, 0},
        {"a", KV_MAX_SEQUENCE, 7},
        {"a", 6, 0},
        {"key00005000", 300000, 300000},
        {"key00005001", KV_MAX_SEQUENCE, 0},
        {"zzz\x01", KV_MAX_SEQUENCE, 5},
        {"m", KV_MAX_SEQUENCE, 0},
    };
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
        assert_int_equal(kv_frag_tombstones_max_covering(list, kv_slice_from_str(probes[i].key),
                                                         probes[i].snapshot),
                         probes[i].expected);
    /* Point entries are untouched by tombstones at this level. */
    check_iteration(table, &m, true);
    kv_table_close(table);

    /* A table holding only tombstones. */
    size = write_table(path, &options, NULL, tombstones, 2, &b);
    kv_table_builder_destroy(b);
    assert_int_equal(open_table(path, size, NULL, &table), 0);
    assert_int_equal(kv_frag_tombstones_num_input(kv_table_range_tombstones(table)), 2);
    kv_iter *it = kv_table_iter_create(table, true, NULL, NULL);
    kv_iter_seek_to_first(it);
    assert_false(kv_iter_valid(it));
    assert_int_equal(kv_iter_status(it), 0);
    kv_iter_destroy(it);
    kv_table_close(table);

    model_free(&m);
    free(path);
    kv_test_cleanup_dir(dir);
}

static void test_empty_table(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("table_empty");
    char *path = table_path(dir, "000009.sst");
    kv_table_options options = default_options();
    kv_table_builder *b;
    uint64_t size = write_table(path, &options, NULL, NULL, 0, &b);
    assert_int_equal(kv_table_builder_smallest(b).size, 0);
    assert_int_equal(kv_table_builder_largest(b).size, 0);
    assert_int_equal(kv_table_builder_num_entries(b), 0);
    kv_table_builder_destroy(b);
    kv_table *table;
    assert_int_equal(open_table(path, size, NULL, &table), 0);
    kv_iter *it = kv_table_iter_create(table, true, NULL, NULL);
    kv_iter_seek_to_first(it);
    assert_false(kv_iter_valid(it));
    kv_iter_seek_to_last(it);
    assert_false(kv_iter_valid(it));
    kv_iter_seek(it, kv_slice_from_str("anything"));
    assert_false(kv_iter_valid(it));
    assert_int_equal(kv_iter_status(it), 0);
    kv_iter_destroy(it);
    kv_lookup lookup = {.user_key = kv_slice_from_str("x"), .snapshot = KV_MAX_SEQUENCE};
    assert_int_equal(kv_table_get(table, &lookup, true), 0);
    assert_int_equal(lookup.state, KV_LOOKUP_NONE);
    assert_int_equal(kv_table_verify(table), 0);
    kv_table_close(table);
    free(path);
    kv_test_cleanup_dir(dir);
}

static int destroy_calls;
static void count_destroy(void *arg)
{
    assert_ptr_equal(arg, &destroy_calls);
    destroy_calls++;
}

static void test_block_cache(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("table_cache_blocks");
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(15));
    model m;
    model_build(&m, &rng, 3000, true);
    char *path = table_path(dir, "000010.sst");
    kv_table_options options = default_options();
    uint64_t size = write_table(path, &options, &m, NULL, 0, NULL);
    kv_cache *cache = kv_cache_create(8 << 20, 2);
    kv_table *table;
    assert_int_equal(open_table(path, size, cache, &table), 0);
    uint64_t blocks = kv_table_get_properties(table)->num_data_blocks;

    /* Not filling the cache leaves it empty. */
    check_iteration(table, &m, false);
    assert_int_equal(kv_cache_total_charge(cache), 0);
    assert_int_equal(kv_cache_hits(cache), 0);

    check_iteration(table, &m, true);
    assert_true(kv_cache_total_charge(cache) > 0);
    uint64_t misses = kv_cache_misses(cache);
    check_iteration(table, &m, true);
    assert_int_equal(kv_cache_misses(cache), misses); /* all hits now */
    assert_true(kv_cache_hits(cache) >= 2 * blocks);
    check_gets(table, &m, &rng);

    /* An iterator holds its block until destroyed; on_destroy runs then. */
    destroy_calls = 0;
    kv_iter *it = kv_table_iter_create(table, true, count_destroy, &destroy_calls);
    kv_iter_seek_to_first(it);
    kv_cache_prune(cache);
    assert_true(kv_cache_total_charge(cache) > 0); /* the held block */
    assert_true(kv_slice_equal(kv_iter_key(it), kv_buf_slice(&m.entries[0].ikey)));
    assert_int_equal(destroy_calls, 0);
    kv_iter_destroy(it);
    assert_int_equal(destroy_calls, 1);
    kv_cache_prune(cache);
    assert_int_equal(kv_cache_total_charge(cache), 0);

    /* Two tables in one cache do not see each other's blocks. */
    char *path2 = table_path(dir, "000011.sst");
    model m2;
    model_build(&m2, &rng, 3000, false);
    uint64_t size2 = write_table(path2, &options, &m2, NULL, 0, NULL);
    kv_table *table2;
    assert_int_equal(open_table(path2, size2, cache, &table2), 0);
    check_iteration(table, &m, true);
    check_iteration(table2, &m2, true);
    check_iteration(table, &m, true);
    kv_table_close(table2);
    model_free(&m2);
    free(path2);

    /* A small cache keeps working while it evicts. */
    kv_table_close(table);
    kv_cache_destroy(cache);
    cache = kv_cache_create(3 * 4096, 0);
    assert_int_equal(open_table(path, size, cache, &table), 0);
    check_iteration(table, &m, true);
    check_seeks(table, &m, &rng, 500);
    assert_true(kv_cache_total_charge(cache) <= 3 * 4096 + 8192);
    kv_table_close(table);
    kv_cache_destroy(cache);
    model_free(&m);
    free(path);
    kv_test_cleanup_dir(dir);
}

/* ---- damaged files ---- */

static void read_file(const char *path, kv_buf *out)
{
    kv_buf_clear(out);
    assert_int_equal(kv_env_read_file(kv_env_posix(), path, out), 0);
}

static void write_file(const char *path, const char *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    fclose(f);
}

/* Iterates and looks up everything in a possibly damaged table: every
 * entry seen must be the model's, in order, and every failure must be
 * KV_CORRUPTION. Returns true when some failure was seen. */
static bool walk_damaged(kv_table *table, const model *m, bool fill_cache)
{
    bool failed = false;
    kv_iter *it = kv_table_iter_create(table, fill_cache, NULL, NULL);
    size_t i = 0;
    for (kv_iter_seek_to_first(it); kv_iter_valid(it); kv_iter_next(it)) {
        /* Blocks may be skipped only through an error, so entries come in
         * model order from the start. */
        assert_true(i < m->count);
        assert_true(kv_slice_equal(kv_iter_key(it), kv_buf_slice(&m->entries[i].ikey)));
        assert_true(kv_slice_equal(kv_iter_value(it), kv_buf_slice(&m->entries[i].value)));
        i++;
    }
    if (kv_iter_status(it) != 0) {
        assert_int_equal(kv_iter_status(it), KV_CORRUPTION);
        failed = true;
    } else {
        assert_int_equal(i, m->count);
    }
    kv_iter_destroy(it);

    kv_buf value = {0};
    for (size_t e = 0; e < m->count; e += 7) {
        const model_entry *me = &m->entries[e];
        kv_lookup lookup = {.user_key = kv_slice_make(me->user_key, me->user_key_size),
                            .snapshot = me->seq,
                            .value = &value};
        int rc = kv_table_get(table, &lookup, fill_cache);
        if (rc != 0) {
            assert_int_equal(rc, KV_CORRUPTION);
            failed = true;
            continue;
        }
        /* Every block is checksummed, the filter too: no silent misses. */
        assert_int_not_equal(lookup.state, KV_LOOKUP_NONE);
        assert_int_equal(lookup.seq, me->seq);
        if (me->type == KV_TYPE_VALUE) {
            assert_int_equal(lookup.state, KV_LOOKUP_VALUE);
            assert_true(kv_slice_equal(kv_buf_slice(&value), kv_buf_slice(&me->value)));
        } else {
            assert_int_equal(lookup.state, KV_LOOKUP_DELETED);
        }
    }
    kv_buf_free(&value);
    return failed;
}

static void test_flipped_byte_in_data_block(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("table_flip");
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(16));
    model m;
    model_build(&m, &rng, 2000, true);
    char *path = table_path(dir, "000012.sst");
    kv_table_options options = default_options();
    uint64_t size = write_table(path, &options, &m, NULL, 0, NULL);
    kv_buf good = {0};
    read_file(path, &good);

    /* Find the block holding the middle entry through the index. */
    kv_table *table;
    assert_int_equal(open_table(path, size, NULL, &table), 0);
    uint64_t middle =
        kv_table_approximate_offset(table, kv_buf_slice(&m.entries[m.count / 2].ikey));
    kv_table_close(table);
    assert_true(middle > 0);

    for (int cached = 0; cached < 2; cached++) {
        char *bad = kv_memdup(good.data, good.size);
        bad[middle + 10] ^= 0x20;
        write_file(path, bad, good.size);
        free(bad);
        kv_cache *cache = cached ? kv_cache_create(1 << 20, -1) : NULL;
        assert_int_equal(open_table(path, size, cache, &table), 0);
        assert_true(walk_damaged(table, &m, true));

        /* The damaged block's first key: an error, never a value. */
        kv_iter *it = kv_table_iter_create(table, true, NULL, NULL);
        kv_iter_seek(it, kv_buf_slice(&m.entries[m.count / 2].ikey));
        assert_false(kv_iter_valid(it));
        assert_int_equal(kv_iter_status(it), KV_CORRUPTION);
        char expected[128];
        snprintf(expected, sizeof(expected), "000012.sst: block checksum mismatch at offset %llu",
                 (unsigned long long)middle);
        assert_string_equal(kv_errmsg(), expected);
        kv_iter_destroy(it);

        kv_buf value = {0};
        const model_entry *me = &m.entries[m.count / 2];
        kv_lookup lookup = {.user_key = kv_slice_make(me->user_key, me->user_key_size),
                            .snapshot = KV_MAX_SEQUENCE,
                            .value = &value};
        assert_int_equal(kv_table_get(table, &lookup, true), KV_CORRUPTION);
        assert_string_equal(kv_errmsg(), expected);
        assert_int_equal(kv_table_verify(table), KV_CORRUPTION);
        kv_buf_free(&value);
        kv_table_close(table);
        kv_cache_destroy(cache);
    }
    model_free(&m);
    kv_buf_free(&good);
    free(path);
    kv_test_cleanup_dir(dir);
}

/* Flips random bytes anywhere in the file: open fails with KV_CORRUPTION
 * or KV_NOT_SUPPORTED, or reads return right data or KV_CORRUPTION. */
static void test_random_damage(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("table_random_damage");
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(17));
    model m;
    model_build(&m, &rng, 300, true);
    char *path = table_path(dir, "000013.sst");
    tombstone_spec tombstones[] = {{"key00000010", "key00000020", 150000}};
    kv_table_options options = default_options();
    options.block_size = 512;
    uint64_t size = write_table(path, &options, &m, tombstones, 1, NULL);
    kv_buf good = {0};
    read_file(path, &good);
    int rounds = kv_test_long_mode() ? 3000 : 300;
    int open_failures = 0, read_failures = 0;
    for (int r = 0; r < rounds; r++) {
        char *bad = kv_memdup(good.data, good.size);
        /* Half the rounds damage the tail (index, meta blocks, footer). */
        size_t tail = good.size > 600 ? 600 : good.size;
        size_t pos = (r % 2) ? good.size - 1 - kv_test_rng_uniform(&rng, tail)
                             : kv_test_rng_uniform(&rng, good.size);
        bad[pos] ^= (char)(1 + kv_test_rng_uniform(&rng, 255));
        write_file(path, bad, good.size);
        free(bad);
        kv_table *table;
        int rc = open_table(path, size, NULL, &table);
        if (rc < 0) {
            assert_true(rc == KV_CORRUPTION || rc == KV_NOT_SUPPORTED);
            assert_non_null(strstr(kv_errmsg(), "000013.sst"));
            open_failures++;
            continue;
        }
        if (walk_damaged(table, &m, r % 3 == 0))
            read_failures++;
        kv_table_close(table);
    }
    print_message("random damage: %d open failures, %d read failures in %d rounds\n", open_failures,
                  read_failures, rounds);
    assert_true(open_failures > 0 && read_failures > 0);
    model_free(&m);
    kv_buf_free(&good);
    free(path);
    kv_test_cleanup_dir(dir);
}

static void test_truncated_file(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("table_truncated");
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(18));
    model m;
    model_build(&m, &rng, 500, true);
    char *path = table_path(dir, "000014.sst");
    kv_table_options options = default_options();
    uint64_t size = write_table(path, &options, &m, NULL, 0, NULL);
    kv_buf good = {0};
    read_file(path, &good);
    const uint64_t cuts[] = {0, 1, 10, KV_FOOTER_SIZE - 1, KV_FOOTER_SIZE, size / 2, size - 1};
    for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
        write_file(path, good.data, cuts[c]);
        kv_table *table;
        /* Opened at its real (short) size: the footer is not where it
         * should be. */
        assert_int_equal(open_table(path, cuts[c], NULL, &table), KV_CORRUPTION);
        assert_non_null(strstr(kv_errmsg(), "000014.sst"));
        /* Opened at the size the caller expected: reads come up short. */
        assert_int_equal(open_table(path, size, NULL, &table), KV_CORRUPTION);
        assert_non_null(strstr(kv_errmsg(), "000014.sst"));
    }
    model_free(&m);
    kv_buf_free(&good);
    free(path);
    kv_test_cleanup_dir(dir);
}

static void test_wrong_magic_and_version(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("table_magic");
    char *path = table_path(dir, "000015.sst");
    kv_table_options options = default_options();
    kv_test_rng rng;
    kv_test_rng_init(&rng, 19);
    model m;
    model_build(&m, &rng, 100, true);
    uint64_t size = write_table(path, &options, &m, NULL, 0, NULL);
    kv_buf good = {0};
    read_file(path, &good);
    kv_table *table;

    char *bad = kv_memdup(good.data, good.size);
    bad[good.size - 1] ^= 1; /* last byte of the magic */
    write_file(path, bad, good.size);
    assert_int_equal(open_table(path, size, NULL, &table), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "000015.sst: not an SST file"));

    memcpy(bad, good.data, good.size);
    kv_encode_fixed32(bad + good.size - 12, KV_TABLE_FORMAT_VERSION + 1);
    write_file(path, bad, good.size);
    assert_int_equal(open_table(path, size, NULL, &table), KV_NOT_SUPPORTED);
    assert_non_null(strstr(kv_errmsg(), "000015.sst"));

    /* Not an SST at all. */
    memset(bad, 'x', good.size);
    write_file(path, bad, good.size);
    assert_int_equal(open_table(path, size, NULL, &table), KV_CORRUPTION);
    free(bad);
    model_free(&m);
    kv_buf_free(&good);
    free(path);
    kv_test_cleanup_dir(dir);
}

/* A full disk: the first write error comes back from add (or finish) and
 * keeps coming back. */
static void test_write_errors(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("table_write_errors");
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(20));
    model m;
    model_build(&m, &rng, 1000, false);
    char *path = table_path(dir, "000017.sst");
    kv_env *env = kv_env_fault_create();
    kv_table_options options = default_options();
    /* Budgets: inside the data blocks, and inside the tail. */
    uint64_t full_size = write_table(path, &options, &m, NULL, 0, NULL);
    const uint64_t budgets[] = {20000, full_size - 100, full_size - 10};
    for (size_t k = 0; k < sizeof(budgets) / sizeof(budgets[0]); k++) {
        kv_env_fault_set_space_budget(env, budgets[k]);
        kv_writable *file;
        assert_int_equal(kv_env_new_writable(env, path, 0, &file), 0);
        kv_table_builder *b = kv_table_builder_create(&options, file);
        int first_error = 0;
        for (size_t i = 0; i < m.count; i++) {
            int rc = kv_table_builder_add(b, kv_buf_slice(&m.entries[i].ikey),
                                          kv_buf_slice(&m.entries[i].value));
            if (first_error)
                assert_int_equal(rc, first_error);
            else if (rc < 0)
                first_error = rc;
        }
        int rc = kv_table_builder_finish(b);
        assert_int_equal(rc, KV_NO_SPACE);
        if (k == 0)
            assert_int_equal(first_error, KV_NO_SPACE);
        else
            assert_int_equal(first_error, 0); /* the data fit; the tail did not */
        kv_table_builder_destroy(b);
        kv_writable_close(file);
        kv_env_fault_set_space_budget(env, UINT64_MAX);
    }
    kv_env_fault_destroy(env);
    model_free(&m);
    free(path);
    kv_test_cleanup_dir(dir);
}

/* ---- table_format pieces ---- */

static void test_footer_and_handles(void **state)
{
    (void)state;
    kv_footer f = {{123456789012ull, 4096}, {0, 1}, KV_TABLE_FORMAT_VERSION};
    kv_buf buf = {0};
    kv_footer_encode(&f, &buf);
    assert_int_equal(buf.size, KV_FOOTER_SIZE);
    kv_footer g;
    assert_int_equal(kv_footer_decode(kv_buf_slice(&buf), "t", &g), 0);
    assert_int_equal(g.metaindex.offset, f.metaindex.offset);
    assert_int_equal(g.metaindex.size, f.metaindex.size);
    assert_int_equal(g.index.offset, 0);
    assert_int_equal(g.index.size, 1);
    assert_int_equal(kv_footer_decode(kv_slice_make(buf.data, 51), "t", &g), KV_CORRUPTION);
    /* Handles that do not decode. */
    memset(buf.data, 0xff, 40);
    assert_int_equal(kv_footer_decode(kv_buf_slice(&buf), "t", &g), KV_CORRUPTION);

    kv_buf_clear(&buf);
    kv_block_handle h = {UINT64_MAX, UINT64_MAX - 1}, d;
    kv_block_handle_encode(&h, &buf);
    assert_true(buf.size <= KV_BLOCK_HANDLE_MAX_LENGTH);
    kv_slice in = kv_buf_slice(&buf);
    assert_true(kv_block_handle_decode(&in, &d));
    assert_int_equal(d.offset, h.offset);
    assert_int_equal(d.size, h.size);
    in = kv_slice_make(buf.data, buf.size - 1);
    assert_false(kv_block_handle_decode(&in, &d));
    kv_buf_free(&buf);
}

/* Writes `stored` with a given type byte and a valid checksum. */
static void write_raw_block(const char *path, kv_slice stored, char type)
{
    kv_buf buf = {0};
    kv_buf_append(&buf, stored.data, stored.size);
    kv_buf_append_byte(&buf, type);
    uint32_t crc = kv_crc32c_mask(kv_crc32c(buf.data, buf.size));
    kv_put_fixed32(&buf, crc);
    write_file(path, buf.data, buf.size);
    kv_buf_free(&buf);
}

static int read_raw_block(const char *path, uint64_t size, char **out, size_t *out_size)
{
    kv_random *file;
    assert_int_equal(kv_env_new_random(kv_env_posix(), path, &file), 0);
    kv_block_handle h = {0, size};
    int rc = kv_read_block(file, "000016.sst", &h, out, out_size);
    kv_random_close(file);
    return rc;
}

static void test_read_block_errors(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("table_read_block");
    char *path = table_path(dir, "000016.sst");
    char *out;
    size_t out_size;
    const char *text = "hello hello hello hello hello hello hello hello";

    write_raw_block(path, kv_slice_from_str(text), KV_BLOCK_NONE);
    assert_int_equal(read_raw_block(path, strlen(text), &out, &out_size), 0);
    assert_int_equal(out_size, strlen(text));
    assert_memory_equal(out, text, out_size);
    free(out);
    /* A handle past the end of the file. */
    assert_int_equal(read_raw_block(path, strlen(text) + 1, &out, &out_size), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "000016.sst"));
    assert_int_equal(read_raw_block(path, UINT64_MAX - 2, &out, &out_size), KV_CORRUPTION);

    /* An unknown compression type, checksum valid. */
    write_raw_block(path, kv_slice_from_str(text), 7);
    assert_int_equal(read_raw_block(path, strlen(text), &out, &out_size), KV_CORRUPTION);
    assert_string_equal(kv_errmsg(), "000016.sst: unknown block compression type 7 at offset 0");

    /* Snappy type over bytes that are not snappy, checksum valid. */
    write_raw_block(path, kv_slice_from_str(text), KV_BLOCK_SNAPPY);
    assert_int_equal(read_raw_block(path, strlen(text), &out, &out_size), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "000016.sst"));
    assert_non_null(strstr(kv_errmsg(), "at offset 0"));
    /* A snappy header claiming 4 GiB from 6 bytes: refused, not allocated. */
    write_raw_block(path, kv_slice_make("\xff\xff\xff\xff\x0f\x00", 6), KV_BLOCK_SNAPPY);
    assert_int_equal(read_raw_block(path, 6, &out, &out_size), KV_CORRUPTION);

    /* Write then read through kv_write_block, both compressions. */
    for (int c = 0; c < 2; c++) {
        kv_writable *file;
        assert_int_equal(kv_env_new_writable(kv_env_posix(), path, 0, &file), 0);
        kv_buf scratch = {0};
        kv_block_handle h1, h2;
        char big[5000];
        memset(big, 'q', sizeof(big));
        assert_int_equal(kv_write_block(file, kv_slice_from_str(text), c, &h1, &scratch), 0);
        assert_int_equal(kv_write_block(file, kv_slice_make(big, sizeof(big)), c, &h2, &scratch),
                         0);
        assert_int_equal(kv_writable_close(file), 0);
        assert_int_equal(h1.offset, 0);
        assert_int_equal(h2.offset, h1.size + KV_BLOCK_TRAILER_SIZE);
        if (c == KV_COMPRESSION_SNAPPY)
            assert_true(h2.size < sizeof(big) / 4);
        else
            assert_int_equal(h2.size, sizeof(big));
        kv_random *rf;
        assert_int_equal(kv_env_new_random(kv_env_posix(), path, &rf), 0);
        assert_int_equal(kv_read_block(rf, "x", &h2, &out, &out_size), 0);
        assert_int_equal(out_size, sizeof(big));
        assert_memory_equal(out, big, sizeof(big));
        free(out);
        assert_int_equal(kv_read_block(rf, "x", &h1, &out, &out_size), 0);
        assert_memory_equal(out, text, strlen(text));
        free(out);
        kv_random_close(rf);
        kv_buf_free(&scratch);
    }
    free(path);
    kv_test_cleanup_dir(dir);
}

static void test_properties_block(void **state)
{
    (void)state;
    kv_table_properties p = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, UINT64_MAX}, q;
    kv_buf buf = {0};
    kv_table_properties_encode(&p, &buf);
    assert_int_equal(kv_table_properties_decode(kv_buf_slice(&buf), "t", &q), 0);
    assert_memory_equal(&p, &q, sizeof(p));
    /* Too short to be a block. */
    assert_int_equal(kv_table_properties_decode(kv_slice_make(buf.data, 3), "t", &q),
                     KV_CORRUPTION);
    kv_buf_free(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_options_variants),
        cmocka_unit_test(test_compression),
        cmocka_unit_test(test_compression_resumes),
        cmocka_unit_test(test_scan_releases_mapped_pages),
        cmocka_unit_test(test_range_tombstones),
        cmocka_unit_test(test_empty_table),
        cmocka_unit_test(test_block_cache),
        cmocka_unit_test(test_flipped_byte_in_data_block),
        cmocka_unit_test(test_random_damage),
        cmocka_unit_test(test_truncated_file),
        cmocka_unit_test(test_wrong_magic_and_version),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_footer_and_handles),
        cmocka_unit_test(test_read_block_errors),
        cmocka_unit_test(test_properties_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
