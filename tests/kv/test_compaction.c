/*
 * test_compaction.c — leveled compaction as a user of kv.h sees it: the
 * shape of the levels after a large random load, space reclaimed from
 * overwrites, deletes and range deletes (kv_compact_range), snapshots that
 * keep old versions alive across compaction and reopen, trivial moves,
 * write stalls on level-0 and pending-compaction limits, manual compaction
 * of a sub-range that leaves other files alone, readers racing compaction,
 * and a damaged file met by a compaction.
 *
 * Only the public API is used; files are observed by listing the data
 * directory (NNNNNN.sst numbers and sizes). KV_TEST_LONG=1 makes the loads
 * several times larger.
 */
#include "testutil_db.h"

#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---- */

/* Fails the test with the call, the line and kv_errmsg() unless rc is 0. */
#define MUST(call) must_ok((call), #call, __LINE__)

static void must_ok(int rc, const char *what, int line)
{
    if (rc == KV_OK)
        return;
    fprintf(stderr, "line %d: %s failed: %s (%d): %s\n", line, what, kv_strerror(rc), rc,
            kv_errmsg());
    fail();
}

static uint64_t now_micros(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int scale(void)
{
    return kv_test_long_mode() ? 4 : 1;
}

/* The options the brief of leveled compaction is tested with: tiny
 * memtables and levels so that a few MiB of data make several levels. */
static kv_options small_options(void)
{
    kv_options o;
    kv_options_init(&o);
    o.create_if_missing = true;
    o.cf.write_buffer_size = 64 << 10;
    o.cf.target_file_size_base = 64 << 10;
    o.cf.max_bytes_for_level_base = 256 << 10;
    o.cf.max_bytes_for_level_multiplier = 10;
    o.cf.level0_file_num_compaction_trigger = 4;
    return o;
}

static void print_property(kv_db *db, kv_cf *cf, const char *name)
{
    char *value = NULL;
    if (kv_get_property(db, cf, name, &value) == KV_OK) {
        printf("%s:\n%s\n", name, value);
        kv_free(value);
    }
}

static uint64_t files_at_level(kv_db *db, kv_cf *cf, int level)
{
    char name[48];
    snprintf(name, sizeof(name), "kv.num-files-at-level%d", level);
    return tdb_property_u64(db, cf, name);
}

/* Waits (up to `seconds`) until background work is done: memtables
 * flushed, level 0 under its compaction trigger and no compaction pending.
 * Fails with the level statistics if that does not happen. */
static void wait_for_compactions(kv_db *db, kv_cf *cf, const kv_options *o, int seconds,
                                 const char *context)
{
    MUST(kv_flush(db, cf, true));
    uint64_t start = now_micros();
    for (;;) {
        uint64_t l0 = files_at_level(db, cf, 0);
        uint64_t pending = tdb_property_u64(db, cf, "kv.estimate-pending-compaction-bytes");
        uint64_t immutable = tdb_property_u64(db, cf, "kv.num-immutable-mem-table");
        if (l0 < (uint64_t)o->cf.level0_file_num_compaction_trigger && pending == 0 &&
            immutable == 0)
            return;
        if (now_micros() - start > (uint64_t)seconds * 1000000u) {
            fprintf(stderr,
                    "%s: background work not done after %d s: %" PRIu64
                    " files at level 0 (trigger %d), %" PRIu64
                    " bytes of compaction pending, %" PRIu64 " immutable memtables\n",
                    context, seconds, l0, o->cf.level0_file_num_compaction_trigger, pending,
                    immutable);
            print_property(db, cf, "kv.levelstats");
            fail();
        }
        usleep(10000);
    }
}

/* The .sst files of a data directory: their numbers (sorted) and bytes. */
typedef struct sst_listing {
    uint64_t *numbers;
    size_t count;
    uint64_t bytes;
} sst_listing;

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void list_ssts(const char *dir, sst_listing *out)
{
    memset(out, 0, sizeof(*out));
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".sst") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue; /* deleted while we listed */
        if (out->count == cap) {
            cap = cap ? 2 * cap : 64;
            out->numbers = realloc(out->numbers, cap * sizeof(uint64_t));
            assert_non_null(out->numbers);
        }
        out->numbers[out->count++] = strtoull(e->d_name, NULL, 10);
        out->bytes += (uint64_t)st.st_size;
    }
    closedir(d);
    if (out->count > 0)
        qsort(out->numbers, out->count, sizeof(uint64_t), compare_u64);
}

static void free_listing(sst_listing *l)
{
    free(l->numbers);
    memset(l, 0, sizeof(*l));
}

static bool listing_has(const sst_listing *l, uint64_t number)
{
    return l->count > 0 &&
           bsearch(&number, l->numbers, l->count, sizeof(uint64_t), compare_u64) != NULL;
}

static uint64_t sst_bytes_in_dir(const char *dir)
{
    sst_listing l;
    list_ssts(dir, &l);
    uint64_t bytes = l.bytes;
    free_listing(&l);
    return bytes;
}

/* Files in `after` that were not in `before` (malloc'd listing, no bytes). */
static void new_files(const sst_listing *before, const sst_listing *after, sst_listing *out)
{
    memset(out, 0, sizeof(*out));
    out->numbers = malloc((after->count + 1) * sizeof(uint64_t));
    for (size_t i = 0; i < after->count; i++)
        if (!listing_has(before, after->numbers[i]))
            out->numbers[out->count++] = after->numbers[i];
}

/* Once background work is done, the directory holds exactly the files of
 * the live version: the inputs of finished compactions are deleted as soon
 * as no reader uses them (allowing a moment for a deletion in flight; files
 * a reader held may wait for the next flush or compaction, as in LevelDB).
 * Only for databases with one column family. */
static void expect_no_obsolete_files(kv_db *db, kv_cf *cf, const char *dir, const char *context)
{
    uint64_t start = now_micros(), live = 0, in_dir = 0;
    for (;;) {
        live = tdb_property_u64(db, cf, "kv.live-sst-files-size");
        in_dir = sst_bytes_in_dir(dir);
        if (live == in_dir)
            break;
        if (now_micros() - start > 5000000) {
            fprintf(stderr,
                    "%s: the directory holds %" PRIu64 " bytes of .sst files but the live "
                    "version only %" PRIu64 ": obsolete files were not deleted\n",
                    context, in_dir, live);
            fail();
        }
        usleep(10000);
    }
    assert_true(tdb_property_u64(db, cf, "kv.total-sst-files-size") >= live);
}

static void key_numbered(char *buf, size_t n, const char *prefix, uint64_t i)
{
    snprintf(buf, n, "%s%08" PRIu64, prefix, i);
}

static void put_value_id(kv_db *db, kv_cf *cf, const char *key, uint64_t id, char *buf, size_t len)
{
    tdb_fill_value(id, buf, len);
    int rc = kv_put(db, NULL, cf, key, strlen(key), buf, len);
    if (rc != KV_OK) {
        fprintf(stderr, "kv_put(%s): %s: %s\n", key, kv_strerror(rc), kv_errmsg());
        fail();
    }
}

static void expect_value_id(kv_db *db, const kv_read_options *ro, kv_cf *cf, const char *key,
                            uint64_t id, char *buf, size_t len)
{
    tdb_fill_value(id, buf, len);
    tdb_expect_bytes(db, ro, cf, key, strlen(key), buf, len);
}

static int compare_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* An iterator must see no key in [begin, end) (end NULL: to the last key). */
static void expect_no_keys_in(kv_db *db, const kv_read_options *ro, kv_cf *cf, const char *begin,
                              const char *end, const char *context)
{
    kv_iterator *it = kv_iterator_create(db, ro, cf);
    assert_non_null(it);
    kv_iterator_seek(it, begin, strlen(begin));
    if (kv_iterator_valid(it)) {
        size_t klen;
        const char *k = kv_iterator_key(it, &klen);
        if (end == NULL || compare_bytes(k, klen, end, strlen(end)) < 0) {
            fprintf(stderr, "%s: iterator finds key \"%.*s\" in a deleted range\n", context,
                    (int)klen, k);
            fail();
        }
    }
    assert_int_equal(kv_iterator_status(it), 0);
    kv_iterator_destroy(it);
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- 1. the shape of the levels ---- */

typedef struct shape_entry {
    uint64_t key; /* the key is its 16 hex digits, so order is numeric order */
    uint64_t id;  /* value id */
} shape_entry;

static int compare_entries(const void *a, const void *b)
{
    return compare_u64(&((const shape_entry *)a)->key, &((const shape_entry *)b)->key);
}

static void hex_key(char *buf, uint64_t key)
{
    snprintf(buf, 17, "%016" PRIx64, key);
}

/* Every key reads back, and a full scan (both ways) equals the model. */
static void check_shape_model(kv_db *db, kv_cf *cf, shape_entry *e, size_t n, size_t value_len,
                              const char *context)
{
    char *value = malloc(value_len);
    char key[17];
    for (size_t i = 0; i < n; i++) {
        hex_key(key, e[i].key);
        expect_value_id(db, NULL, cf, key, e[i].id, value, value_len);
    }
    kv_iterator *it = kv_iterator_create(db, NULL, cf);
    size_t i = 0;
    for (kv_iterator_seek_to_first(it); kv_iterator_valid(it); kv_iterator_next(it), i++) {
        size_t klen, vlen;
        const char *k = kv_iterator_key(it, &klen);
        const char *v = kv_iterator_value(it, &vlen);
        if (i >= n) {
            fprintf(stderr, "%s: the iterator has more than the %zu keys written\n", context, n);
            fail();
        }
        hex_key(key, e[i].key);
        tdb_fill_value(e[i].id, value, value_len);
        if (klen != 16 || memcmp(k, key, 16) != 0 || vlen != value_len ||
            memcmp(v, value, value_len) != 0) {
            fprintf(stderr, "%s: iterator entry %zu is \"%.*s\" (%zu bytes), expected %s\n",
                    context, i, (int)klen, k, vlen, key);
            fail();
        }
    }
    assert_int_equal(kv_iterator_status(it), 0);
    assert_int_equal(i, n);
    i = n;
    for (kv_iterator_seek_to_last(it); kv_iterator_valid(it); kv_iterator_prev(it)) {
        assert_true(i > 0);
        i--;
        size_t klen;
        const char *k = kv_iterator_key(it, &klen);
        hex_key(key, e[i].key);
        assert_int_equal(klen, 16);
        assert_memory_equal(k, key, 16);
    }
    assert_int_equal(i, 0);
    kv_iterator_destroy(it);
    free(value);
}

static void test_level_shape(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("compaction-shape");
    kv_options o = small_options();
    enum { VALUE = 1000 };
    const uint64_t total = (uint64_t)scale() * (20u << 20);
    tdb_watchdog(600, "level shape: writing");
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(101));
    size_t cap = total / VALUE + 16, n = 0;
    shape_entry *e = malloc(cap * sizeof(shape_entry));
    char *value = malloc(VALUE);
    uint64_t written = 0, next_id = 1, max_l0 = 0, overwrites = 0;
    const uint64_t key_salt = kv_test_rng_next(&rng);
    while (written < total) {
        size_t slot;
        if (n > 0 && kv_test_rng_uniform(&rng, 5) == 0) {
            slot = (size_t)kv_test_rng_uniform(&rng, n); /* overwrite */
            overwrites++;
        } else {
            assert_true(n < cap);
            slot = n++;
            e[slot].key = mix64(slot + key_salt); /* a bijection: keys are distinct */
        }
        e[slot].id = next_id++;
        char key[17];
        hex_key(key, e[slot].key);
        put_value_id(db, cf, key, e[slot].id, value, VALUE);
        written += VALUE + 16;
        if (next_id % 256 == 0) {
            uint64_t l0 = files_at_level(db, cf, 0);
            if (l0 > max_l0)
                max_l0 = l0;
        }
    }
    printf("wrote %" PRIu64 " MiB: %zu keys, %" PRIu64 " overwrites; at most %" PRIu64
           " files at level 0 while writing\n",
           written >> 20, n, overwrites, max_l0);
    /* Writes stop at the stop trigger; only memtables already full when
     * that happened can still be flushed on top. */
    assert_true(max_l0 <=
                (uint64_t)(o.cf.level0_stop_writes_trigger + o.cf.max_write_buffer_number));

    tdb_watchdog(600, "level shape: waiting for compactions");
    wait_for_compactions(db, cf, &o, 300, "after writing");
    uint64_t files[7], deepest = 0;
    for (int level = 0; level < 7; level++) {
        files[level] = files_at_level(db, cf, level);
        if (files[level] > 0)
            deepest = (uint64_t)level;
    }
    print_property(db, cf, "kv.levelstats");
    printf("files per level: %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
           " %" PRIu64 "\n",
           files[0], files[1], files[2], files[3], files[4], files[5], files[6]);
    assert_true(files[0] < (uint64_t)o.cf.level0_file_num_compaction_trigger);
    assert_true(files[0] < (uint64_t)o.cf.level0_stop_writes_trigger);

    /* With nothing pending every level is within its target size, so the
     * live data (incompressible values) must reach at least the level whose
     * cumulative target holds it. Level 0 may still hold a few files. */
    uint64_t live = (uint64_t)n * (VALUE + 16);
    uint64_t room =
        (uint64_t)(o.cf.level0_file_num_compaction_trigger - 1) * o.cf.write_buffer_size;
    uint64_t target = o.cf.max_bytes_for_level_base;
    int need = 1;
    while (need < 6 && room + target < live * 9 / 10) {
        room += target;
        target *= (uint64_t)o.cf.max_bytes_for_level_multiplier;
        need++;
    }
    printf("live data %" PRIu64 " KiB needs level %d; deepest level with files: %" PRIu64 "\n",
           live >> 10, need, deepest);
    assert_true(deepest >= (uint64_t)need);
    /* Each level is about a tenth of the next, so the deepest holds most of
     * the data (files are all about target_file_size_base). */
    uint64_t above = 0;
    for (int level = 1; level < (int)deepest; level++)
        above += files[level];
    assert_true(files[deepest] >= 3 * above);

    kv_stats st;
    kv_get_stats(db, &st);
    printf("compactions %" PRIu64 ", read %" PRIu64 " MiB, written %" PRIu64
           " MiB, trivial moves %" PRIu64 ", obsolete files deleted %" PRIu64 "\n",
           st.compactions, st.compaction_bytes_read >> 20, st.compaction_bytes_written >> 20,
           st.trivial_moves, st.obsolete_files_deleted);
    assert_true(st.compactions > 0);
    assert_true(st.compaction_bytes_read > 0);
    assert_true(st.compaction_bytes_written > 0);
    assert_true(st.obsolete_files_deleted > 0);
    assert_true(st.sst_bytes_written >= st.flush_bytes_out + st.compaction_bytes_written);
    expect_no_obsolete_files(db, cf, dir, "after compactions");

    tdb_watchdog(600, "level shape: checking");
    qsort(e, n, sizeof(shape_entry), compare_entries);
    check_shape_model(db, cf, e, n, VALUE, "after compactions");

    /* The levels are in the MANIFEST: a reopen finds the same shape. */
    tdb_close(db);
    db = tdb_open(&o, dir);
    cf = kv_default_cf(db);
    for (int level = 0; level < 7; level++)
        assert_int_equal(files_at_level(db, cf, level), files[level]);
    check_shape_model(db, cf, e, n, VALUE, "after reopen");
    tdb_close(db);
    tdb_watchdog(0, NULL);
    free(value);
    free(e);
    kv_test_cleanup_dir(dir);
}

/* ---- 2. space taken by overwritten versions ---- */

static void test_overwrites_reclaimed(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("compaction-overwrite");
    kv_options o = small_options();
    o.cf.write_buffer_size = 1 << 20;
    o.cf.target_file_size_base = 1 << 20;
    o.cf.max_bytes_for_level_base = 4 << 20;
    enum { VALUE = 4096, ROUNDS = 10 };
    const int n = 1000 * (kv_test_long_mode() ? 2 : 1);
    tdb_watchdog(600, "overwrites: writing");
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    char *value = malloc(VALUE);
    char key[24];
    for (int round = 1; round <= ROUNDS; round++)
        for (int i = 0; i < n; i++) {
            key_numbered(key, sizeof(key), "ow", (uint64_t)i);
            put_value_id(db, cf, key, (uint64_t)round * 1000000 + (uint64_t)i, value, VALUE);
        }
    uint64_t before = sst_bytes_in_dir(dir);
    tdb_watchdog(600, "overwrites: kv_compact_range");
    MUST(kv_compact_range(db, cf, NULL, 0, NULL, 0));
    assert_int_equal(files_at_level(db, cf, 0), 0); /* the memtable was flushed, L0 compacted */
    wait_for_compactions(db, cf, &o, 120, "after kv_compact_range");
    expect_no_obsolete_files(db, cf, dir, "after kv_compact_range");

    uint64_t data = (uint64_t)n * (VALUE + strlen(key));
    uint64_t live = tdb_property_u64(db, cf, "kv.live-sst-files-size");
    uint64_t in_dir = sst_bytes_in_dir(dir);
    printf("%d keys x %d rounds: %" PRIu64
           " KiB of data; .sst bytes before kv_compact_range %" PRIu64 " KiB, after %" PRIu64
           " KiB (live %" PRIu64 " KiB): space amplification %.2f\n",
           n, ROUNDS, data >> 10, before >> 10, in_dir >> 10, live >> 10,
           (double)in_dir / (double)data);
    assert_true(live * 10 <= data * 13);
    assert_true(in_dir * 10 <= data * 13);
    assert_true(in_dir >= data * 9 / 10); /* the newest values are all still there */

    for (int i = 0; i < n; i++) {
        key_numbered(key, sizeof(key), "ow", (uint64_t)i);
        expect_value_id(db, NULL, cf, key, (uint64_t)ROUNDS * 1000000 + (uint64_t)i, value, VALUE);
    }
    tdb_close(db);
    db = tdb_open(&o, dir);
    cf = kv_default_cf(db);
    for (int i = 0; i < n; i += 7) {
        key_numbered(key, sizeof(key), "ow", (uint64_t)i);
        expect_value_id(db, NULL, cf, key, (uint64_t)ROUNDS * 1000000 + (uint64_t)i, value, VALUE);
    }
    assert_true(sst_bytes_in_dir(dir) * 10 <= data * 13); /* reopen deleted nothing live, */
    tdb_close(db);                                        /* and resurrected nothing dead */
    tdb_watchdog(0, NULL);
    free(value);
    kv_test_cleanup_dir(dir);
}

/* ---- 3. range deletions reclaim space ---- */

static void test_delete_range_reclaims_space(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("compaction-delete-range");
    kv_options o;
    kv_options_init(&o);
    o.create_if_missing = true;
    o.cf.write_buffer_size = 4 << 20;
    o.cf.target_file_size_base = 2 << 20;
    o.cf.max_bytes_for_level_base = 8 << 20;
    enum { VALUE = 1024 };
    const int n = 50000 * (kv_test_long_mode() ? 2 : 1);
    tdb_watchdog(600, "delete_range: writing");
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    char *value = malloc(VALUE);
    char key[24];
    tdb_put(db, cf, "a", "before the range");
    tdb_put(db, cf, "l", "the end of the range is exclusive");
    for (int i = 0; i < n; i++) {
        key_numbered(key, sizeof(key), "k", (uint64_t)i);
        put_value_id(db, cf, key, (uint64_t)i + 1, value, VALUE);
    }
    MUST(kv_flush(db, cf, true));
    MUST(kv_compact_range(db, cf, NULL, 0, NULL, 0));
    wait_for_compactions(db, cf, &o, 120, "after loading");
    uint64_t before = sst_bytes_in_dir(dir);
    assert_true(before >= (uint64_t)n * VALUE * 9 / 10);

    /* One record, whatever the number of keys it covers. */
    kv_stats s0, s1;
    kv_get_stats(db, &s0);
    MUST(kv_delete_range(db, NULL, cf, "k", 1, "l", 1));
    kv_get_stats(db, &s1);
    assert_int_equal(s1.keys_written, s0.keys_written + 1);
    assert_true(s1.wal_bytes - s0.wal_bytes < 128);
    /* A range over a million keys that do not exist costs the same. */
    MUST(kv_delete_range(db, NULL, cf, "m00000000", 9, "m01000000", 9));
    kv_get_stats(db, &s0);
    assert_int_equal(s0.keys_written, s1.keys_written + 1);
    assert_true(s0.wal_bytes - s1.wal_bytes < 128);

    for (int round = 0; round < 3; round++) {
        const char *context = round == 0   ? "after kv_delete_range"
                              : round == 1 ? "after reopen (WAL replay)"
                                           : "after kv_compact_range";
        for (int i = 0; i < n; i += 97) {
            key_numbered(key, sizeof(key), "k", (uint64_t)i);
            tdb_expect_missing(db, NULL, cf, key);
        }
        expect_no_keys_in(db, NULL, cf, "k", "l", context);
        tdb_expect(db, NULL, cf, "a", "before the range");
        tdb_expect(db, NULL, cf, "l", "the end of the range is exclusive");
        if (round == 0) {
            tdb_close(db);
            db = tdb_open(&o, dir);
            cf = kv_default_cf(db);
        } else if (round == 1) {
            tdb_watchdog(600, "delete_range: kv_compact_range");
            MUST(kv_compact_range(db, cf, NULL, 0, NULL, 0));
            wait_for_compactions(db, cf, &o, 120, "after compacting the deleted range");
            expect_no_obsolete_files(db, cf, dir, "after compacting the deleted range");
        }
    }
    uint64_t after = sst_bytes_in_dir(dir);
    printf("%d keys of %d bytes: %" PRIu64 " KiB of .sst files before kv_delete_range, %" PRIu64
           " KiB after it and kv_compact_range\n",
           n, VALUE, before >> 10, after >> 10);
    assert_true(after * 20 < before);

    /* And it stays so after a reopen. */
    tdb_close(db);
    db = tdb_open(&o, dir);
    cf = kv_default_cf(db);
    expect_no_keys_in(db, NULL, cf, "k", "l", "after the last reopen");
    tdb_expect(db, NULL, cf, "l", "the end of the range is exclusive");
    assert_true(sst_bytes_in_dir(dir) * 20 < before);
    tdb_close(db);
    tdb_watchdog(0, NULL);
    free(value);
    kv_test_cleanup_dir(dir);
}

/* ---- 4. snapshots across compaction and reopen ---- */

/* What key i holds in version `v` of the snapshot test: value id, or 0
 * when it was deleted. Version 1: every key. Version 2: keys i%4 == 0, 1
 * overwritten, i%4 == 2 deleted (one by one, or by the range deletion over
 * [N/2, N/2 + N/8)), i%4 == 3 untouched. */
static uint64_t snap_id(int v, int i, int n)
{
    if (v == 1)
        return (uint64_t)i + 1;
    if (i >= n / 2 && i < n / 2 + n / 8)
        return 0;
    switch (i % 4) {
    case 0:
    case 1:
        return 1000000 + (uint64_t)i;
    case 2:
        return 0;
    default:
        return (uint64_t)i + 1;
    }
}

static void check_snap_version(kv_db *db, const kv_read_options *ro, kv_cf *cf, int v, int n,
                               char *value, size_t len, const char *context)
{
    char key[24];
    for (int i = 0; i < n; i++) {
        key_numbered(key, sizeof(key), "s", (uint64_t)i);
        uint64_t id = snap_id(v, i, n);
        if (id)
            expect_value_id(db, ro, cf, key, id, value, len);
        else
            tdb_expect_missing(db, ro, cf, key);
    }
    kv_iterator *it = kv_iterator_create(db, ro, cf);
    int i = 0;
    for (kv_iterator_seek_to_first(it); kv_iterator_valid(it); kv_iterator_next(it)) {
        while (i < n && snap_id(v, i, n) == 0)
            i++;
        key_numbered(key, sizeof(key), "s", (uint64_t)i);
        size_t klen;
        const char *k = kv_iterator_key(it, &klen);
        if (i >= n || klen != strlen(key) || memcmp(k, key, klen) != 0) {
            fprintf(stderr, "%s: iterator at \"%.*s\", expected %s\n", context, (int)klen, k,
                    i < n ? key : "the end");
            fail();
        }
        i++;
    }
    while (i < n && snap_id(v, i, n) == 0)
        i++;
    if (i != n) {
        fprintf(stderr, "%s: iterator ended before key %d of %d\n", context, i, n);
        fail();
    }
    assert_int_equal(kv_iterator_status(it), 0);
    kv_iterator_destroy(it);
}

static void test_snapshots_across_compaction(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("compaction-snapshots");
    kv_options o = small_options();
    o.cf.write_buffer_size = 256 << 10;
    enum { VALUE = 2048 };
    const int n = 2000 * scale();
    tdb_watchdog(600, "snapshots across compaction");
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    char *value = malloc(VALUE);
    char key[24], end[24];
    for (int i = 0; i < n; i++) {
        key_numbered(key, sizeof(key), "s", (uint64_t)i);
        put_value_id(db, cf, key, snap_id(1, i, n), value, VALUE);
    }
    MUST(kv_flush(db, cf, true));
    const kv_snapshot *snap = kv_snapshot_create(db);
    assert_non_null(snap);
    kv_read_options at_snap;
    kv_read_options_init(&at_snap);
    at_snap.snapshot = snap;

    /* Version 2, with flushes in between so versions meet in compactions. */
    for (int i = 0; i < n; i++) {
        key_numbered(key, sizeof(key), "s", (uint64_t)i);
        uint64_t id = snap_id(2, i, n);
        if (i % 4 == 2)
            MUST(kv_delete(db, NULL, cf, key, strlen(key)));
        else if (id != snap_id(1, i, n))
            put_value_id(db, cf, key, id, value, VALUE);
    }
    key_numbered(key, sizeof(key), "s", (uint64_t)(n / 2));
    key_numbered(end, sizeof(end), "s", (uint64_t)(n / 2 + n / 8));
    MUST(kv_delete_range(db, NULL, cf, key, strlen(key), end, strlen(end)));

    MUST(kv_compact_range(db, cf, NULL, 0, NULL, 0));
    wait_for_compactions(db, cf, &o, 120, "compacting with a snapshot");
    check_snap_version(db, &at_snap, cf, 1, n, value, VALUE, "at the snapshot, after compaction");
    check_snap_version(db, NULL, cf, 2, n, value, VALUE, "latest, after compaction");
    uint64_t with_snapshot = sst_bytes_in_dir(dir);
    uint64_t v1_bytes = (uint64_t)n * VALUE;
    uint64_t v2_bytes = 0;
    for (int i = 0; i < n; i++)
        v2_bytes += snap_id(2, i, n) ? VALUE : 0;

    /* A compaction of a sub-range keeps the snapshot's versions too. */
    key_numbered(key, sizeof(key), "s", (uint64_t)(n / 4));
    key_numbered(end, sizeof(end), "s", (uint64_t)(3 * n / 4));
    MUST(kv_compact_range(db, cf, key, strlen(key), end, strlen(end)));
    check_snap_version(db, &at_snap, cf, 1, n, value, VALUE, "at the snapshot, after a sub-range");

    kv_snapshot_release(db, snap);
    MUST(kv_compact_range(db, cf, NULL, 0, NULL, 0));
    wait_for_compactions(db, cf, &o, 120, "compacting after the release");
    expect_no_obsolete_files(db, cf, dir, "after the snapshot was released");
    uint64_t released = sst_bytes_in_dir(dir);
    printf("snapshot: version 1 %" PRIu64 " KiB, version 2 %" PRIu64 " KiB; .sst files %" PRIu64
           " KiB with the snapshot, %" PRIu64 " KiB after releasing it\n",
           v1_bytes >> 10, v2_bytes >> 10, with_snapshot >> 10, released >> 10);
    /* The snapshot kept every version-1 value; after it went, only version 2. */
    assert_true(with_snapshot >= v1_bytes);
    assert_true(released * 10 <= v2_bytes * 13);
    check_snap_version(db, NULL, cf, 2, n, value, VALUE, "latest, after the release");

    /* Across a reopen: a snapshot dies with the handle, the latest values
     * stay, and the old versions the snapshot held become garbage. */
    snap = kv_snapshot_create(db);
    for (int i = 0; i < n; i += 4) {
        key_numbered(key, sizeof(key), "s", (uint64_t)i);
        put_value_id(db, cf, key, 5000000 + (uint64_t)i, value, VALUE);
    }
    MUST(kv_compact_range(db, cf, NULL, 0, NULL, 0));
    at_snap.snapshot = snap;
    check_snap_version(db, &at_snap, cf, 2, n, value, VALUE, "second snapshot");
    kv_snapshot_release(db, snap);
    tdb_close(db);
    db = tdb_open(&o, dir);
    cf = kv_default_cf(db);
    for (int i = 0; i < n; i++) {
        key_numbered(key, sizeof(key), "s", (uint64_t)i);
        uint64_t id = i % 4 == 0 ? 5000000 + (uint64_t)i : snap_id(2, i, n);
        if (id)
            expect_value_id(db, NULL, cf, key, id, value, VALUE);
        else
            tdb_expect_missing(db, NULL, cf, key);
    }
    MUST(kv_compact_range(db, cf, NULL, 0, NULL, 0));
    wait_for_compactions(db, cf, &o, 120, "compacting after reopen");
    expect_no_obsolete_files(db, cf, dir, "after reopen");
    assert_true(sst_bytes_in_dir(dir) * 10 <= v2_bytes * 13);
    tdb_close(db);
    tdb_watchdog(0, NULL);
    free(value);
    kv_test_cleanup_dir(dir);
}

/* An iterator created before a compaction reads the files the compaction
 * replaced: they are deleted only when it lets go. */
static void test_iterator_pins_compacted_files(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("compaction-pinned");
    kv_options o = small_options();
    enum { VALUE = 512, N = 4000 };
    tdb_watchdog(300, "iterator pinning compacted files");
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    char value[VALUE], key[24];
    for (int i = 0; i < N; i++) {
        key_numbered(key, sizeof(key), "p", (uint64_t)i);
        put_value_id(db, cf, key, (uint64_t)i + 1, value, VALUE);
    }
    MUST(kv_flush(db, cf, true));
    kv_iterator *it = kv_iterator_create(db, NULL, cf);
    kv_iterator_seek_to_first(it);
    /* Replace everything: overwrite, delete half, compact. */
    for (int i = 0; i < N; i++) {
        key_numbered(key, sizeof(key), "p", (uint64_t)i);
        if (i % 2)
            MUST(kv_delete(db, NULL, cf, key, strlen(key)));
        else
            put_value_id(db, cf, key, 100000 + (uint64_t)i, value, VALUE);
    }
    MUST(kv_compact_range(db, cf, NULL, 0, NULL, 0));
    wait_for_compactions(db, cf, &o, 120, "compacting under an iterator");
    uint64_t live = tdb_property_u64(db, cf, "kv.live-sst-files-size");
    uint64_t total = tdb_property_u64(db, cf, "kv.total-sst-files-size");
    printf("with the iterator open: live %" PRIu64 " KiB, total %" PRIu64 " KiB, in dir %" PRIu64
           " KiB\n",
           live >> 10, total >> 10, sst_bytes_in_dir(dir) >> 10);
    assert_true(total >= live);
    int i = 0;
    for (; kv_iterator_valid(it); kv_iterator_next(it), i++) {
        key_numbered(key, sizeof(key), "p", (uint64_t)i);
        size_t klen, vlen;
        const char *k = kv_iterator_key(it, &klen);
        const char *v = kv_iterator_value(it, &vlen);
        tdb_fill_value((uint64_t)i + 1, value, VALUE);
        assert_int_equal(klen, strlen(key));
        assert_memory_equal(k, key, klen);
        assert_int_equal(vlen, VALUE);
        assert_memory_equal(v, value, VALUE);
    }
    if (kv_iterator_status(it) != 0) {
        fprintf(stderr, "iterator after compaction: %s: %s\n", kv_strerror(kv_iterator_status(it)),
                kv_errmsg());
        fail();
    }
    assert_int_equal(i, N);
    kv_iterator_destroy(it);
    /* Let go: the old files go too (now, or at the next background job). */
    tdb_put(db, cf, "zz", "x");
    MUST(kv_flush(db, cf, true));
    expect_no_obsolete_files(db, cf, dir, "after the iterator was destroyed");
    tdb_close(db);
    tdb_watchdog(0, NULL);
    kv_test_cleanup_dir(dir);
}

/* Iterators pinned while files move down whole (trivial moves) and are
 * later rewritten: the files a pinned version reads must stay until it is
 * released, whichever version the moved file lives on in. Each round pins
 * an iterator, churns (automatic compactions through the small levels,
 * sometimes a manual one) and scans the pinned iterator against the model
 * as it was when the iterator was made. */
static void test_iterators_pinned_across_moves(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("compaction-pinned-moves");
    kv_options o = small_options();
    o.cf.level0_file_num_compaction_trigger = 2;
    o.cf.level0_slowdown_writes_trigger = 3;
    o.cf.level0_stop_writes_trigger = 6;
    o.cf.max_bytes_for_level_base = 64 << 10;
    o.cf.max_bytes_for_level_multiplier = 2;
    enum { KEYS = 3000, VALUE = 400 };
    const int rounds = kv_test_long_mode() ? 2000 : 150;
    tdb_watchdog(600, "iterators pinned across trivial moves");
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    uint32_t *model = calloc(KEYS, sizeof(uint32_t)), *pinned = calloc(KEYS, sizeof(uint32_t));
    char value[VALUE], key[24];
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(55));
    uint32_t next_id = 1;
    for (int round = 0; round < rounds; round++) {
        kv_iterator *it = kv_iterator_create(db, NULL, cf);
        memcpy(pinned, model, KEYS * sizeof(uint32_t));
        for (int i = 0; i < 300; i++) {
            int k = (int)kv_test_rng_uniform(&rng, KEYS);
            key_numbered(key, sizeof(key), "k", (uint64_t)k);
            model[k] = next_id++;
            put_value_id(db, cf, key, model[k], value, VALUE);
        }
        if (round % 10 == 0) {
            char begin[24];
            key_numbered(begin, sizeof(begin), "k", kv_test_rng_uniform(&rng, KEYS));
            key_numbered(key, sizeof(key), "k", KEYS * 2 / 3);
            MUST(kv_compact_range(db, cf, begin, strlen(begin), key, strlen(key)));
        }
        int k = 0;
        for (kv_iterator_seek_to_first(it); kv_iterator_valid(it); kv_iterator_next(it), k++) {
            while (k < KEYS && pinned[k] == 0)
                k++;
            size_t klen, vlen;
            const char *got = kv_iterator_key(it, &klen);
            const char *v = kv_iterator_value(it, &vlen);
            key_numbered(key, sizeof(key), "k", (uint64_t)k);
            tdb_fill_value(k < KEYS ? pinned[k] : 0, value, VALUE);
            if (k >= KEYS || klen != strlen(key) || memcmp(got, key, klen) != 0 || vlen != VALUE ||
                memcmp(v, value, VALUE) != 0) {
                fprintf(stderr, "round %d: pinned iterator at \"%.*s\", expected %s\n", round,
                        (int)klen, got, k < KEYS ? key : "the end");
                fail();
            }
        }
        while (k < KEYS && pinned[k] == 0)
            k++;
        if (kv_iterator_status(it) != 0 || k != KEYS) {
            fprintf(stderr, "round %d: pinned iterator stopped at key %d of %d: %s: %s\n", round, k,
                    KEYS, kv_strerror(kv_iterator_status(it)),
                    kv_iterator_status(it) ? kv_errmsg() : "");
            fail();
        }
        kv_iterator_destroy(it);
    }
    kv_stats st;
    kv_get_stats(db, &st);
    printf("%d rounds: %" PRIu64 " compactions, %" PRIu64 " trivial moves\n", rounds,
           st.compactions, st.trivial_moves);
    assert_true(st.trivial_moves > 0);
    tdb_close(db);
    free(model);
    free(pinned);
    tdb_watchdog(0, NULL);
    kv_test_cleanup_dir(dir);
}

/* ---- 5. trivial moves ---- */

static void test_trivial_moves(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("compaction-trivial");
    kv_options o = small_options();
    enum { VALUE = 1000 };
    const int n = 8000 * scale(); /* ~8 MiB, ascending */
    tdb_watchdog(300, "trivial moves");
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    char value[VALUE], key[24];
    for (int i = 0; i < n; i++) {
        key_numbered(key, sizeof(key), "t", (uint64_t)i);
        put_value_id(db, cf, key, (uint64_t)i + 1, value, VALUE);
    }
    wait_for_compactions(db, cf, &o, 120, "sequential load");
    kv_stats st;
    kv_get_stats(db, &st);
    printf("sequential %d keys: %" PRIu64 " flushes (%" PRIu64 " KiB), %" PRIu64
           " compactions, %" PRIu64 " trivial moves, %" PRIu64 " KiB compaction output\n",
           n, st.flushes, st.flush_bytes_out >> 10, st.compactions, st.trivial_moves,
           st.compaction_bytes_written >> 10);
    print_property(db, cf, "kv.levelstats");
    assert_true(st.trivial_moves > 0);
    uint64_t below_level0 = 0;
    for (int level = 1; level < 7; level++)
        below_level0 += files_at_level(db, cf, level);
    assert_true(below_level0 > 0);
    for (int i = 0; i < n; i++) {
        key_numbered(key, sizeof(key), "t", (uint64_t)i);
        expect_value_id(db, NULL, cf, key, (uint64_t)i + 1, value, VALUE);
    }
    expect_no_obsolete_files(db, cf, dir, "after trivial moves");
    tdb_close(db);
    db = tdb_open(&o, dir);
    cf = kv_default_cf(db);
    for (int i = 0; i < n; i += 13) {
        key_numbered(key, sizeof(key), "t", (uint64_t)i);
        expect_value_id(db, NULL, cf, key, (uint64_t)i + 1, value, VALUE);
    }
    tdb_close(db);
    tdb_watchdog(0, NULL);
    kv_test_cleanup_dir(dir);
}

/* ---- 6. write stalls ---- */

enum { STALL_WRITERS = 2, STALL_VALUE = 1024 };

typedef struct stall_writer {
    kv_db *db;
    kv_cf *cf;
    int index, count;
    int failures;
    char error[256];
} stall_writer;

typedef struct stall_monitor {
    kv_db *db;
    kv_cf *cf;
    atomic_bool done;
    uint64_t max_l0, max_pending, samples;
    int errors;
} stall_monitor;

static void *stall_writer_main(void *arg)
{
    stall_writer *w = arg;
    char value[STALL_VALUE], key[32];
    for (int i = 0; i < w->count; i++) {
        snprintf(key, sizeof(key), "w%d-%08d", w->index, i);
        tdb_fill_value((uint64_t)w->index << 32 | (uint64_t)i, value, STALL_VALUE);
        int rc = kv_put(w->db, NULL, w->cf, key, strlen(key), value, STALL_VALUE);
        if (rc != KV_OK && w->failures++ == 0)
            snprintf(w->error, sizeof(w->error), "put %s: %s: %s", key, kv_strerror(rc),
                     kv_errmsg());
    }
    return NULL;
}

static bool property_u64_quiet(kv_db *db, kv_cf *cf, const char *name, uint64_t *out)
{
    char *value = NULL;
    if (kv_get_property(db, cf, name, &value) != KV_OK)
        return false;
    *out = strtoull(value, NULL, 10);
    kv_free(value);
    return true;
}

static void *stall_monitor_main(void *arg)
{
    stall_monitor *m = arg;
    while (!atomic_load(&m->done)) {
        uint64_t l0, pending;
        if (!property_u64_quiet(m->db, m->cf, "kv.num-files-at-level0", &l0) ||
            !property_u64_quiet(m->db, m->cf, "kv.estimate-pending-compaction-bytes", &pending)) {
            m->errors++;
        } else {
            m->max_l0 = l0 > m->max_l0 ? l0 : m->max_l0;
            m->max_pending = pending > m->max_pending ? pending : m->max_pending;
        }
        m->samples++;
        usleep(500);
    }
    return NULL;
}

/* Two writers as fast as they can against one compaction thread: every
 * write succeeds, writers were slowed or stopped, and level 0 never grew
 * past what the stop trigger allows. */
static void run_stall(const char *name, const kv_options *o, int per_writer, bool check_l0_bound)
{
    char *dir = kv_test_tmpdir(name);
    static char phase[96];
    snprintf(phase, sizeof(phase), "%s: writers (a stall that never ends?)", name);
    tdb_watchdog(300, phase);
    kv_db *db = tdb_open(o, dir);
    kv_cf *cf = kv_default_cf(db);
    stall_writer w[STALL_WRITERS];
    stall_monitor m = {.db = db, .cf = cf};
    atomic_init(&m.done, false);
    pthread_t threads[STALL_WRITERS], monitor;
    assert_int_equal(pthread_create(&monitor, NULL, stall_monitor_main, &m), 0);
    uint64_t start = now_micros();
    for (int t = 0; t < STALL_WRITERS; t++) {
        w[t] = (stall_writer){.db = db, .cf = cf, .index = t, .count = per_writer};
        assert_int_equal(pthread_create(&threads[t], NULL, stall_writer_main, &w[t]), 0);
    }
    for (int t = 0; t < STALL_WRITERS; t++)
        assert_int_equal(pthread_join(threads[t], NULL), 0);
    uint64_t elapsed = now_micros() - start;
    atomic_store(&m.done, true);
    assert_int_equal(pthread_join(monitor, NULL), 0);
    kv_stats st;
    kv_get_stats(db, &st);
    printf("%s: %d x %d writes of %d bytes in %.2f s; stalled %.2f s, %" PRIu64
           " slowdowns, %" PRIu64 " stops; %" PRIu64 " compactions; at most %" PRIu64
           " files at level 0 and %" PRIu64 " KiB pending (%" PRIu64 " samples)\n",
           name, STALL_WRITERS, per_writer, STALL_VALUE, elapsed / 1e6, st.stall_micros / 1e6,
           st.stall_slowdowns, st.stall_stops, st.compactions, m.max_l0, m.max_pending >> 10,
           m.samples);
    for (int t = 0; t < STALL_WRITERS; t++)
        if (w[t].failures) {
            fprintf(stderr, "%s: writer %d: %d writes failed; first: %s\n", name, t, w[t].failures,
                    w[t].error);
            fail();
        }
    assert_int_equal(m.errors, 0);
    assert_int_equal(st.keys_written, (uint64_t)STALL_WRITERS * (uint64_t)per_writer);
    assert_true(st.stall_slowdowns + st.stall_stops > 0);
    assert_true(st.stall_micros > 0);
    assert_true(st.compactions > 0);
    if (check_l0_bound)
        assert_true(m.max_l0 <=
                    (uint64_t)(o->cf.level0_stop_writes_trigger + o->cf.max_write_buffer_number));

    snprintf(phase, sizeof(phase), "%s: waiting and checking", name);
    tdb_watchdog(300, phase);
    wait_for_compactions(db, cf, o, 120, name);
    char value[STALL_VALUE], key[32];
    for (int t = 0; t < STALL_WRITERS; t++)
        for (int i = 0; i < per_writer; i += 3) {
            snprintf(key, sizeof(key), "w%d-%08d", t, i);
            tdb_fill_value((uint64_t)t << 32 | (uint64_t)i, value, STALL_VALUE);
            tdb_expect_bytes(db, NULL, cf, key, strlen(key), value, STALL_VALUE);
        }
    tdb_close(db);
    tdb_watchdog(0, NULL);
    kv_test_cleanup_dir(dir);
}

static void test_level0_stalls(void **state)
{
    (void)state;
    kv_options o = small_options();
    o.max_background_compactions = 1;
    o.cf.level0_file_num_compaction_trigger = 2;
    o.cf.level0_slowdown_writes_trigger = 3;
    o.cf.level0_stop_writes_trigger = 4;
    o.cf.max_write_buffer_number = 3;
    run_stall("compaction-stall-level0", &o, 4096 * scale(), true);
}

static void test_pending_bytes_stalls(void **state)
{
    (void)state;
    kv_options o = small_options();
    o.max_background_compactions = 1;
    o.cf.soft_pending_compaction_bytes_limit = 1 << 20; /* the smallest allowed */
    o.cf.hard_pending_compaction_bytes_limit = 2 << 20;
    run_stall("compaction-stall-pending", &o, 4096 * scale(), false);
}

/* ---- 7. manual compaction of a sub-range ---- */

/* Writes keys prefix00000000.. (count of them, value ids base + i) and
 * flushes; returns the files the flush made. */
static void write_region(kv_db *db, kv_cf *cf, const char *dir, const char *prefix, int count,
                         uint64_t base, sst_listing *made)
{
    sst_listing before, after;
    list_ssts(dir, &before);
    char value[200], key[24];
    for (int i = 0; i < count; i++) {
        key_numbered(key, sizeof(key), prefix, (uint64_t)i);
        put_value_id(db, cf, key, base + (uint64_t)i, value, sizeof(value));
    }
    MUST(kv_flush(db, cf, true));
    list_ssts(dir, &after);
    new_files(&before, &after, made);
    assert_true(made->count >= 1);
    free_listing(&before);
    free_listing(&after);
}

static void expect_region(kv_db *db, kv_cf *cf, const char *prefix, int count, uint64_t base)
{
    char value[200], key[24];
    for (int i = 0; i < count; i++) {
        key_numbered(key, sizeof(key), prefix, (uint64_t)i);
        expect_value_id(db, NULL, cf, key, base + (uint64_t)i, value, sizeof(value));
    }
}

/* Asserts every file of `files` is (present) or is not in the directory;
 * a deletion gets a moment, as in expect_no_obsolete_files. */
static void expect_files(const char *dir, const sst_listing *files, bool present,
                         const char *context)
{
    uint64_t start = now_micros();
    for (;;) {
        sst_listing now;
        list_ssts(dir, &now);
        size_t wrong = files->count;
        for (size_t i = 0; i < files->count && wrong == files->count; i++)
            if (listing_has(&now, files->numbers[i]) != present)
                wrong = i;
        free_listing(&now);
        if (wrong == files->count)
            return;
        if (present || now_micros() - start > 5000000) {
            fprintf(stderr, "%s: %06" PRIu64 ".sst should %s\n", context, files->numbers[wrong],
                    present ? "not have been touched" : "have been compacted away");
            fail();
        }
        usleep(10000);
    }
}

static void test_compact_sub_range(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("compaction-sub-range");
    kv_options o;
    kv_options_init(&o);
    o.create_if_missing = true;
    /* No automatic compaction: only kv_compact_range moves files. */
    o.cf.level0_file_num_compaction_trigger = 100;
    o.cf.level0_slowdown_writes_trigger = 100;
    o.cf.level0_stop_writes_trigger = 100;
    tdb_watchdog(300, "sub-range compaction");
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    kv_cf *other = NULL;
    MUST(kv_create_cf(db, "other", &other));
    enum { COUNT = 1000 };
    sst_listing fa, fb1, fb2, fc, fother;
    write_region(db, cf, dir, "a", COUNT, 1, &fa);
    write_region(db, cf, dir, "m", COUNT, 10000, &fb1);
    write_region(db, cf, dir, "m", COUNT / 2, 20000, &fb2); /* overwrites half of m */
    write_region(db, cf, dir, "z", COUNT, 30000, &fc);
    write_region(db, other, dir, "m", COUNT, 40000, &fother);
    assert_int_equal(files_at_level(db, cf, 0), fa.count + fb1.count + fb2.count + fc.count);

    /* A range that holds no key moves nothing. */
    sst_listing before, after;
    list_ssts(dir, &before);
    MUST(kv_compact_range(db, cf, "c", 1, "d", 1));
    list_ssts(dir, &after);
    assert_int_equal(after.count, before.count);
    assert_memory_equal(after.numbers, before.numbers, before.count * sizeof(uint64_t));
    free_listing(&before);
    free_listing(&after);

    /* Only the m files are rewritten; the bounds are inclusive. */
    MUST(kv_compact_range(db, cf, "m00000000", 9, "m00000999", 9));
    expect_files(dir, &fa, true, "compacting m");
    expect_files(dir, &fc, true, "compacting m");
    expect_files(dir, &fother, true, "compacting m of the default family");
    expect_files(dir, &fb1, false, "compacting m");
    expect_files(dir, &fb2, false, "compacting m");
    assert_int_equal(files_at_level(db, cf, 0), fa.count + fc.count);
    assert_int_equal(files_at_level(db, other, 0), fother.count);
    uint64_t deeper = 0;
    for (int level = 1; level < 7; level++)
        deeper += files_at_level(db, cf, level);
    assert_true(deeper >= 1);
    expect_region(db, cf, "a", COUNT, 1);
    expect_region(db, cf, "m", COUNT / 2, 20000);
    char key[24], value[200];
    for (int i = COUNT / 2; i < COUNT; i++) {
        key_numbered(key, sizeof(key), "m", (uint64_t)i);
        expect_value_id(db, NULL, cf, key, 10000 + (uint64_t)i, value, sizeof(value));
    }
    expect_region(db, cf, "z", COUNT, 30000);

    /* Open-ended ranges: up to a key inside a (a's file overlaps it), then
     * from y on. A file with nothing to drop may move down whole (keeping
     * its number), but it leaves level 0. */
    MUST(kv_compact_range(db, cf, NULL, 0, "a00000500", 9));
    expect_files(dir, &fc, true, "compacting ..a00000500");
    assert_int_equal(files_at_level(db, cf, 0), fc.count);
    MUST(kv_compact_range(db, cf, "y", 1, NULL, 0));
    assert_int_equal(files_at_level(db, cf, 0), 0);
    expect_files(dir, &fother, true, "compacting all of the default family");
    expect_region(db, cf, "a", COUNT, 1);
    expect_region(db, cf, "z", COUNT, 30000);
    expect_region(db, other, "m", COUNT, 40000);

    /* kv_compact_range flushes the memtable first. */
    tdb_put(db, cf, "m00000001", "in the memtable");
    MUST(kv_compact_range(db, cf, "m", 1, "n", 1));
    assert_int_equal(tdb_property_u64(db, cf, "kv.num-entries-active-mem-table"), 0);
    assert_int_equal(files_at_level(db, cf, 0), 0);
    tdb_expect(db, NULL, cf, "m00000001", "in the memtable");

    /* A dropped family cannot be compacted. */
    MUST(kv_drop_cf(db, other));
    int rc = kv_compact_range(db, other, NULL, 0, NULL, 0);
    if (rc == KV_OK) {
        fprintf(stderr, "kv_compact_range on a dropped family succeeded\n");
        fail();
    }
    tdb_close(db);
    db = tdb_open(&o, dir);
    cf = kv_default_cf(db);
    expect_region(db, cf, "a", COUNT, 1);
    expect_region(db, cf, "z", COUNT, 30000);
    tdb_expect(db, NULL, cf, "m00000001", "in the memtable");
    assert_int_equal(files_at_level(db, cf, 0), 0);
    tdb_close(db);
    free_listing(&fa);
    free_listing(&fb1);
    free_listing(&fb2);
    free_listing(&fc);
    free_listing(&fother);
    tdb_watchdog(0, NULL);
    kv_test_cleanup_dir(dir);
}

/* kv_compact_range on an empty database (and an empty range) succeeds. */
static void test_compact_empty(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("compaction-empty");
    kv_options o = small_options();
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    MUST(kv_compact_range(db, cf, NULL, 0, NULL, 0));
    MUST(kv_compact_range(db, cf, "a", 1, "a", 1));
    MUST(kv_compact_range(db, cf, "", 0, "", 0));
    assert_int_equal(tdb_count_files(dir, ".sst"), 0);
    tdb_put(db, cf, "k", "v");
    MUST(kv_compact_range(db, cf, "a", 1, "a", 1)); /* flushes; k is outside */
    tdb_expect(db, NULL, cf, "k", "v");
    MUST(kv_compact_range(db, cf, NULL, 0, NULL, 0));
    tdb_expect(db, NULL, cf, "k", "v");
    assert_int_equal(files_at_level(db, cf, 0), 0);
    expect_no_obsolete_files(db, cf, dir, "compacting one key");
    assert_int_equal(tdb_count_files(dir, ".sst"), 1);
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

/* ---- readers racing compactions ---- */

enum { RACE_KEYS = 2000, RACE_VALUE = 300 };

typedef struct race_reader {
    kv_db *db;
    kv_cf *cf;
    atomic_bool done, failed;
    uint64_t reads, scans;
    char error[512];
} race_reader;

static void *race_reader_main(void *arg)
{
    race_reader *r = arg;
    char expected[RACE_VALUE], key[24];
    kv_test_rng rng;
    kv_test_rng_init(&rng, 7);
    while (!atomic_load(&r->done) && r->error[0] == '\0') {
        int i = (int)kv_test_rng_uniform(&rng, RACE_KEYS);
        key_numbered(key, sizeof(key), "stable", (uint64_t)i);
        char *got = NULL;
        size_t len = 0;
        int rc = kv_get(r->db, NULL, r->cf, key, strlen(key), &got, &len);
        tdb_fill_value((uint64_t)i + 7, expected, RACE_VALUE);
        if (rc != KV_OK || len != RACE_VALUE || memcmp(got, expected, RACE_VALUE) != 0)
            snprintf(r->error, sizeof(r->error), "get %s: %s (%zu bytes) %s", key, kv_strerror(rc),
                     len, rc == KV_OK ? "wrong value" : kv_errmsg());
        if (rc == KV_OK)
            kv_free(got);
        r->reads++;
        if (r->reads % 200 != 0)
            continue;
        /* A scan of the stable keys, which compactions keep rewriting. */
        kv_iterator *it = kv_iterator_create(r->db, NULL, r->cf);
        int seen = 0;
        for (kv_iterator_seek(it, "stable", 6); kv_iterator_valid(it) && seen < RACE_KEYS;
             kv_iterator_next(it), seen++) {
            size_t klen, vlen;
            const char *k = kv_iterator_key(it, &klen);
            const char *v = kv_iterator_value(it, &vlen);
            key_numbered(key, sizeof(key), "stable", (uint64_t)seen);
            tdb_fill_value((uint64_t)seen + 7, expected, RACE_VALUE);
            if (klen != strlen(key) || memcmp(k, key, klen) != 0 || vlen != RACE_VALUE ||
                memcmp(v, expected, RACE_VALUE) != 0) {
                snprintf(r->error, sizeof(r->error), "scan: entry %d is \"%.*s\", expected %s",
                         seen, (int)klen, k, key);
                break;
            }
        }
        if (r->error[0] == '\0' && (seen != RACE_KEYS || kv_iterator_status(it) != 0))
            snprintf(r->error, sizeof(r->error), "scan: %d of %d keys, status %s: %s", seen,
                     RACE_KEYS, kv_strerror(kv_iterator_status(it)), kv_errmsg());
        kv_iterator_destroy(it);
        r->scans++;
    }
    if (r->error[0] != '\0')
        atomic_store(&r->failed, true);
    return NULL;
}

static void test_reads_during_compactions(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("compaction-race");
    kv_options o = small_options();
    o.cf.level0_file_num_compaction_trigger = 2;
    o.max_background_compactions = 2;
    o.max_open_files = 16; /* the table cache evicts files compactions delete */
    o.block_cache_size = 256 << 10;
    tdb_watchdog(300, "reads during compactions");
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    char value[1024], key[32];
    for (int i = 0; i < RACE_KEYS; i++) {
        key_numbered(key, sizeof(key), "stable", (uint64_t)i);
        put_value_id(db, cf, key, (uint64_t)i + 7, value, RACE_VALUE);
    }
    race_reader r = {.db = db, .cf = cf};
    atomic_init(&r.done, false);
    atomic_init(&r.failed, false);
    pthread_t reader;
    assert_int_equal(pthread_create(&reader, NULL, race_reader_main, &r), 0);
    /* Churn keys on both sides of the stable ones, so every compaction
     * overlaps them; now and then compact everything by hand. */
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(77));
    const int writes = 12000 * scale();
    int manual = 0;
    for (int i = 0; i < writes && !atomic_load(&r.failed); i++) {
        uint64_t k = kv_test_rng_uniform(&rng, 4000);
        snprintf(key, sizeof(key), "%s%06" PRIu64, k % 2 ? "s" : "t", k);
        put_value_id(db, cf, key, (uint64_t)i, value, sizeof(value));
        if (i % 3000 == 2999) {
            MUST(kv_compact_range(db, cf, NULL, 0, NULL, 0));
            manual++;
        }
    }
    wait_for_compactions(db, cf, &o, 120, "churn");
    atomic_store(&r.done, true);
    assert_int_equal(pthread_join(reader, NULL), 0);
    kv_stats st;
    kv_get_stats(db, &st);
    printf("%" PRIu64 " reads and %" PRIu64 " scans during %" PRIu64
           " compactions (%d by kv_compact_range)\n",
           r.reads, r.scans, st.compactions, manual);
    if (r.error[0]) {
        fprintf(stderr, "reader: %s\n", r.error);
        fail();
    }
    assert_true(st.compactions > 0);
    assert_true(r.scans > 0);
    /* The reader let go of its versions; the next flush cleans up. */
    tdb_put(db, cf, "zz", "x");
    MUST(kv_flush(db, cf, true));
    expect_no_obsolete_files(db, cf, dir, "after the churn");
    tdb_close(db);
    tdb_watchdog(0, NULL);
    kv_test_cleanup_dir(dir);
}

/* ---- a damaged input ---- */

/* A compaction that meets a block with a bad checksum fails with
 * KV_CORRUPTION naming the file, and deletes nothing: the damaged file and
 * the data of the others stay. */
static void test_compaction_meets_corruption(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("compaction-corrupt");
    kv_options o;
    kv_options_init(&o);
    o.create_if_missing = true;
    o.cf.level0_file_num_compaction_trigger = 100;
    o.cf.level0_slowdown_writes_trigger = 100;
    o.cf.level0_stop_writes_trigger = 100;
    tdb_watchdog(120, "compaction meets corruption");
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    char value[500], key[24];
    for (int i = 0; i < 200; i++) {
        key_numbered(key, sizeof(key), "c", (uint64_t)i);
        put_value_id(db, cf, key, (uint64_t)i + 1, value, sizeof(value));
    }
    MUST(kv_flush(db, cf, true));
    char *damaged = tdb_newest_file(dir, ".sst");
    assert_non_null(damaged);
    for (int i = 0; i < 200; i++) {
        key_numbered(key, sizeof(key), "d", (uint64_t)i);
        put_value_id(db, cf, key, (uint64_t)i + 1000, value, sizeof(value));
    }
    MUST(kv_flush(db, cf, true));
    tdb_close(db);
    tdb_flip_byte(damaged, 100); /* inside the first data block */
    sst_listing before;
    list_ssts(dir, &before);

    db = tdb_open(&o, dir);
    cf = kv_default_cf(db);
    int rc = kv_compact_range(db, cf, NULL, 0, NULL, 0);
    if (rc != KV_CORRUPTION) {
        fprintf(stderr, "compacting a damaged file: expected KV_CORRUPTION, got %s: %s\n",
                kv_strerror(rc), kv_errmsg());
        fail();
    }
    if (strstr(kv_errmsg(), tdb_basename(damaged)) == NULL) {
        fprintf(stderr, "the message \"%s\" does not name %s\n", kv_errmsg(),
                tdb_basename(damaged));
        fail();
    }
    /* No input was deleted. */
    expect_files(dir, &before, true, "after the failed compaction");
    for (int i = 0; i < 200; i += 7) {
        key_numbered(key, sizeof(key), "d", (uint64_t)i);
        expect_value_id(db, NULL, cf, key, (uint64_t)i + 1000, value, sizeof(value));
    }
    kv_close(db); /* may report the background error */
    db = tdb_open(&o, dir);
    cf = kv_default_cf(db);
    for (int i = 0; i < 200; i += 7) {
        key_numbered(key, sizeof(key), "d", (uint64_t)i);
        expect_value_id(db, NULL, cf, key, (uint64_t)i + 1000, value, sizeof(value));
    }
    tdb_close(db);
    free_listing(&before);
    free(damaged);
    tdb_watchdog(0, NULL);
    kv_test_cleanup_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compact_empty),
        cmocka_unit_test(test_compact_sub_range),
        cmocka_unit_test(test_level_shape),
        cmocka_unit_test(test_overwrites_reclaimed),
        cmocka_unit_test(test_delete_range_reclaims_space),
        cmocka_unit_test(test_snapshots_across_compaction),
        cmocka_unit_test(test_iterator_pins_compacted_files),
        cmocka_unit_test(test_iterators_pinned_across_moves),
        cmocka_unit_test(test_trivial_moves),
        cmocka_unit_test(test_level0_stalls),
        cmocka_unit_test(test_pending_bytes_stalls),
        cmocka_unit_test(test_reads_during_compactions),
        cmocka_unit_test(test_compaction_meets_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
