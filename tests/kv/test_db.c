/*
 * test_db.c — behaviour of the public kv API (kv.h) as a user sees it:
 * options, opening and refusing directories, point reads and writes, range
 * deletions, batches, column families, iterators, snapshots, flush,
 * durability across reopen, properties and statistics, the LOCK, detection
 * of damaged files, and write stalls with a tiny write buffer.
 */
#include "testutil_db.h"

#include "db_impl.h"
#include "env.h"
#include "filename.h"
#include "wal.h"
#include "write_batch.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---- */

static kv_options create_options(void)
{
    kv_options o;
    kv_options_init(&o);
    o.create_if_missing = true;
    return o;
}

static char *subdir(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    assert_non_null(path);
    snprintf(path, n, "%s/%s", dir, name);
    return path;
}

static bool path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void expect_message_contains(const char *what, const char *needle)
{
    const char *msg = kv_errmsg();
    if (msg == NULL || strstr(msg, needle) == NULL) {
        fprintf(stderr, "%s: expected kv_errmsg() to mention \"%s\", got \"%s\"\n", what, needle,
                msg ? msg : "(null)");
        fail();
    }
}

static void expect_status(const char *what, int rc, int expected)
{
    if (rc != expected) {
        fprintf(stderr, "%s: expected %s (%d), got %s (%d): %s\n", what, kv_strerror(expected),
                expected, kv_strerror(rc), rc, kv_errmsg());
        fail();
    }
}

static void key_name(char *buf, size_t n, int i)
{
    snprintf(buf, n, "k%04d", i);
}

/* The sorted expected contents of a family for iterator checks. */
typedef struct expected_kv {
    int count;
    char **keys;
    char **values;
} expected_kv;

static void expected_from_arrays(expected_kv *e, char *const *values_by_index, int n)
{
    e->count = 0;
    e->keys = calloc((size_t)n, sizeof(char *));
    e->values = calloc((size_t)n, sizeof(char *));
    for (int i = 0; i < n; i++) {
        if (values_by_index[i] == NULL)
            continue;
        char key[16];
        key_name(key, sizeof(key), i);
        e->keys[e->count] = strdup(key);
        e->values[e->count] = strdup(values_by_index[i]);
        e->count++;
    }
}

static void expected_free(expected_kv *e)
{
    for (int i = 0; i < e->count; i++) {
        free(e->keys[i]);
        free(e->values[i]);
    }
    free(e->keys);
    free(e->values);
}

static void expect_iter_at(kv_iterator *it, const expected_kv *e, int pos, const char *what)
{
    if (pos < 0 || pos >= e->count) {
        if (kv_iterator_valid(it)) {
            size_t len;
            const char *k = kv_iterator_key(it, &len);
            fprintf(stderr, "%s: iterator should be exhausted but is at %.*s\n", what, (int)len, k);
            fail();
        }
        assert_int_equal(kv_iterator_status(it), 0);
        return;
    }
    if (!kv_iterator_valid(it)) {
        fprintf(stderr, "%s: iterator invalid (status %d: %s), expected key %s\n", what,
                kv_iterator_status(it), kv_errmsg(), e->keys[pos]);
        fail();
    }
    size_t klen, vlen;
    const char *k = kv_iterator_key(it, &klen);
    const char *v = kv_iterator_value(it, &vlen);
    if (klen != strlen(e->keys[pos]) || memcmp(k, e->keys[pos], klen) != 0 ||
        vlen != strlen(e->values[pos]) || memcmp(v, e->values[pos], vlen) != 0) {
        fprintf(stderr, "%s: iterator at %.*s=%.*s, expected %s=%s\n", what, (int)klen, k,
                (int)vlen, v, e->keys[pos], e->values[pos]);
        fail();
    }
}

/* Full forward and backward scans, seeks to every key and between keys,
 * and a random walk that switches direction. */
static void check_iterator(kv_iterator *it, const expected_kv *e, uint64_t seed)
{
    kv_iterator_seek_to_first(it);
    for (int i = 0; i < e->count; i++) {
        expect_iter_at(it, e, i, "forward scan");
        kv_iterator_next(it);
    }
    expect_iter_at(it, e, -1, "forward scan end");

    kv_iterator_seek_to_last(it);
    for (int i = e->count - 1; i >= 0; i--) {
        expect_iter_at(it, e, i, "backward scan");
        kv_iterator_prev(it);
    }
    expect_iter_at(it, e, -1, "backward scan end");

    for (int i = 0; i < e->count; i++) {
        kv_iterator_seek(it, e->keys[i], strlen(e->keys[i]));
        expect_iter_at(it, e, i, "seek to key");
        kv_iterator_seek_for_prev(it, e->keys[i], strlen(e->keys[i]));
        expect_iter_at(it, e, i, "seek_for_prev to key");
        /* Between keys: key + "\0" sorts right after key. */
        char between[32];
        size_t n = strlen(e->keys[i]);
        memcpy(between, e->keys[i], n);
        between[n] = '\0';
        kv_iterator_seek(it, between, n + 1);
        expect_iter_at(it, e, i + 1, "seek between keys");
        kv_iterator_seek_for_prev(it, between, n + 1);
        expect_iter_at(it, e, i, "seek_for_prev between keys");
    }
    kv_iterator_seek(it, "", 0);
    expect_iter_at(it, e, 0, "seek to empty key");
    kv_iterator_seek(it, "\xff", 1);
    expect_iter_at(it, e, -1, "seek past the end");
    kv_iterator_seek_for_prev(it, "\xff", 1);
    expect_iter_at(it, e, e->count - 1, "seek_for_prev past the end");
    kv_iterator_seek_for_prev(it, "", 0);
    expect_iter_at(it, e, -1, "seek_for_prev before the start");

    if (e->count == 0)
        return;
    kv_test_rng rng;
    kv_test_rng_init(&rng, seed);
    int pos = (int)kv_test_rng_uniform(&rng, (uint64_t)e->count);
    kv_iterator_seek(it, e->keys[pos], strlen(e->keys[pos]));
    for (int step = 0; step < 3000; step++) {
        if (kv_test_rng_uniform(&rng, 2) == 0) {
            kv_iterator_next(it);
            pos++;
        } else {
            kv_iterator_prev(it);
            pos--;
        }
        expect_iter_at(it, e, pos, "random walk");
        if (pos < 0 || pos >= e->count) {
            pos = (int)kv_test_rng_uniform(&rng, (uint64_t)e->count);
            kv_iterator_seek(it, e->keys[pos], strlen(e->keys[pos]));
        }
    }
}

/* ---- options ---- */

static void test_options_defaults(void **state)
{
    (void)state;
    kv_options o;
    memset(&o, 0xab, sizeof(o));
    kv_options_init(&o);
    assert_false(o.create_if_missing);
    assert_false(o.error_if_exists);
    assert_true(o.paranoid_checks);
    assert_int_equal(o.block_cache_size, 64u << 20);
    assert_int_equal(o.max_open_files, 1000);
    assert_int_equal(o.max_background_flushes, 1);
    assert_int_equal(o.max_background_compactions, 1);
    assert_int_equal(o.max_manifest_file_size, 64u << 20);
    assert_int_equal(o.delayed_write_rate, 16u << 20);
    assert_null(o.env);
    assert_int_equal(o.cf.write_buffer_size, 64u << 20);
    assert_int_equal(o.cf.max_write_buffer_number, 4);
    assert_int_equal(o.cf.block_size, 4096);
    assert_int_equal(o.cf.block_restart_interval, 16);
    assert_int_equal(o.cf.bloom_bits_per_key, 10);
    assert_int_equal(o.cf.compression, KV_COMPRESSION_SNAPPY);
    assert_int_equal(o.cf.level0_file_num_compaction_trigger, 4);
    assert_int_equal(o.cf.level0_slowdown_writes_trigger, 20);
    assert_int_equal(o.cf.level0_stop_writes_trigger, 36);
    assert_int_equal(o.cf.target_file_size_base, 64u << 20);
    assert_int_equal(o.cf.max_bytes_for_level_base, 256u << 20);
    assert_int_equal(o.cf.max_bytes_for_level_multiplier, 10);

    kv_read_options ro;
    memset(&ro, 0xab, sizeof(ro));
    kv_read_options_init(&ro);
    assert_null(ro.snapshot);
    assert_true(ro.fill_cache);

    /* Every status has a short, distinct name. */
    const int codes[] = {
        KV_OK,       KV_NOT_FOUND, KV_CORRUPTION, KV_IO_ERROR,      KV_INVALID_ARGUMENT,
        KV_NO_SPACE, KV_BUSY,      KV_EXISTS,     KV_NOT_SUPPORTED, KV_SHUTDOWN};
    size_t n = sizeof(codes) / sizeof(codes[0]);
    for (size_t i = 0; i < n; i++) {
        const char *name = kv_strerror(codes[i]);
        assert_non_null(name);
        assert_true(strlen(name) > 0);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(name, kv_strerror(codes[j]));
    }
    assert_non_null(kv_strerror(-1000)); /* unknown codes still get a string */
}

static void expect_invalid_options(const char *dir, const kv_options *o, const char *what)
{
    char *path = subdir(dir, "db");
    kv_db *db = NULL;
    int rc = kv_open(o, path, &db);
    if (rc != KV_INVALID_ARGUMENT) {
        fprintf(stderr, "%s: expected KV_INVALID_ARGUMENT, got %s (%d): %s\n", what,
                kv_strerror(rc), rc, kv_errmsg());
        if (rc == KV_OK)
            kv_close(db);
        fail();
    }
    const char *msg = kv_errmsg();
    assert_true(msg != NULL && strlen(msg) > 0);
    /* Options are validated before anything is created. */
    if (path_exists(path)) {
        fprintf(stderr, "%s: kv_open created %s although the options were invalid\n", what, path);
        fail();
    }
    free(path);
}

static void test_invalid_options(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-invalid-options");
    kv_options o;

    o = create_options();
    o.cf.write_buffer_size = 0;
    expect_invalid_options(dir, &o, "write_buffer_size 0");

    o = create_options();
    o.cf.max_write_buffer_number = 1;
    expect_invalid_options(dir, &o, "max_write_buffer_number 1");

    o = create_options();
    o.cf.max_write_buffer_number = 0;
    expect_invalid_options(dir, &o, "max_write_buffer_number 0");

    o = create_options();
    o.cf.bloom_bits_per_key = -1;
    expect_invalid_options(dir, &o, "bloom_bits_per_key -1");

    o = create_options();
    o.cf.compression = 7;
    expect_invalid_options(dir, &o, "compression 7");

    o = create_options();
    o.cf.compression = -1;
    expect_invalid_options(dir, &o, "compression -1");

    o = create_options();
    o.cf.block_size = 0;
    expect_invalid_options(dir, &o, "block_size 0");

    o = create_options();
    o.cf.block_restart_interval = 0;
    expect_invalid_options(dir, &o, "block_restart_interval 0");

    /* A valid set still opens in the same place afterwards. */
    o = create_options();
    char *path = subdir(dir, "db");
    kv_db *db = tdb_open(&o, path);
    tdb_close(db);
    free(path);
    kv_test_cleanup_dir(dir);
}

/* ---- opening and refusing directories ---- */

static void test_open_missing_without_create(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-missing");
    char *path = subdir(dir, "nothere");
    kv_options o;
    kv_options_init(&o);
    kv_db *db = NULL;
    int rc = kv_open(&o, path, &db);
    if (rc >= 0) {
        fprintf(stderr, "kv_open of a missing directory without create_if_missing succeeded\n");
        fail();
    }
    printf("missing dir: %s: %s\n", kv_strerror(rc), kv_errmsg());
    assert_true(strlen(kv_errmsg()) > 0);
    assert_false(path_exists(path));

    /* An existing empty directory is not a database either. */
    assert_int_equal(mkdir(path, 0755), 0);
    rc = kv_open(&o, path, &db);
    assert_true(rc < 0);
    printf("empty dir: %s: %s\n", kv_strerror(rc), kv_errmsg());

    /* With create_if_missing it is created; then it opens without. */
    o.create_if_missing = true;
    db = tdb_open(&o, path);
    tdb_put(db, kv_default_cf(db), "a", "1");
    tdb_close(db);
    o.create_if_missing = false;
    db = tdb_open(&o, path);
    tdb_expect(db, NULL, kv_default_cf(db), "a", "1");
    tdb_close(db);
    free(path);
    kv_test_cleanup_dir(dir);
}

static void test_error_if_exists(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-error-if-exists");
    kv_options o = create_options();
    o.error_if_exists = true;
    kv_db *db = tdb_open(&o, dir); /* new database: fine */
    tdb_put(db, kv_default_cf(db), "a", "1");
    tdb_close(db);

    int rc = kv_open(&o, dir, &db);
    expect_status("error_if_exists on an existing database", rc, KV_EXISTS);

    o.error_if_exists = false;
    db = tdb_open(&o, dir);
    tdb_expect(db, NULL, kv_default_cf(db), "a", "1");
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

static void test_foreign_directory_refused(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-foreign");
    char *p1 = subdir(dir, "notes.txt");
    char *p2 = subdir(dir, "sub");
    char *p3 = subdir(dir, "photo.jpg");
    tdb_write_file(p1, "my notes\n", 9);
    assert_int_equal(mkdir(p2, 0755), 0);
    char junk[10000];
    tdb_fill_value(42, junk, sizeof(junk));
    tdb_write_file(p3, junk, sizeof(junk));
    char *before = tdb_dir_fingerprint(dir);

    for (int create = 0; create <= 1; create++) {
        kv_options o;
        kv_options_init(&o);
        o.create_if_missing = create;
        kv_db *db = NULL;
        int rc = kv_open(&o, dir, &db);
        if (rc != KV_INVALID_ARGUMENT) {
            fprintf(stderr,
                    "foreign dir (create_if_missing=%d): expected KV_INVALID_ARGUMENT, got %s "
                    "(%d): %s\n",
                    create, kv_strerror(rc), rc, kv_errmsg());
            if (rc == KV_OK)
                kv_close(db);
            fail();
        }
        printf("foreign dir refused: %s\n", kv_errmsg());
        const char *msg = kv_errmsg();
        if (strstr(msg, dir) == NULL && strstr(msg, "CURRENT") == NULL) {
            fprintf(stderr, "message should name the directory or the missing CURRENT: %s\n", msg);
            fail();
        }
        char *after = tdb_dir_fingerprint(dir);
        if (strcmp(before, after) != 0) {
            fprintf(stderr, "kv_open touched a foreign directory.\nbefore:\n%safter:\n%s", before,
                    after);
            fail();
        }
        free(after);
    }
    free(before);
    free(p1);
    free(p2);
    free(p3);
    kv_test_cleanup_dir(dir);
}

static void test_destroy(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-destroy");
    char *path = subdir(dir, "db");
    kv_options o = create_options();
    kv_db *db = tdb_open(&o, path);
    tdb_put(db, kv_default_cf(db), "a", "1");
    assert_int_equal(kv_flush(db, NULL, true), 0);
    tdb_put(db, kv_default_cf(db), "b", "2");
    tdb_close(db);
    int rc = kv_destroy(path, &o);
    expect_status("kv_destroy", rc, KV_OK);
    if (path_exists(path)) {
        assert_int_equal(tdb_count_files(path, ".sst"), 0);
        assert_int_equal(tdb_count_files(path, ".log"), 0);
        assert_int_equal(tdb_count_files(path, "CURRENT"), 0);
    }
    db = tdb_open(&o, path); /* a fresh, empty database */
    tdb_expect_missing(db, NULL, kv_default_cf(db), "a");
    tdb_expect_missing(db, NULL, kv_default_cf(db), "b");
    tdb_close(db);
    free(path);
    kv_test_cleanup_dir(dir);
}

/* A family written once must not keep every later WAL alive: past
 * max_total_wal_size it is flushed and the old WALs go. */
/* A family named in cf_overrides gets its own options, at creation and at
 * every open; others get `cf`; bad overrides are refused with a message. */
static void test_cf_overrides(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-cf-overrides");
    char *path = subdir(dir, "db");
    kv_options o = create_options();
    o.num_cf_overrides = 1;
    snprintf(o.cf_overrides[0].name, sizeof(o.cf_overrides[0].name), "big");
    o.cf_overrides[0].options = o.cf;
    o.cf_overrides[0].options.block_size = 16 << 10;
    for (int open = 0; open < 2; open++) {
        kv_db *db = tdb_open(&o, path);
        kv_cf *big = kv_get_cf(db, "big");
        if (big == NULL)
            expect_status("kv_create_cf", kv_create_cf(db, "big", &big), KV_OK);
        kv_cf *other = kv_get_cf(db, "other");
        if (other == NULL)
            expect_status("kv_create_cf", kv_create_cf(db, "other", &other), KV_OK);
        assert_int_equal(big->options.block_size, 16 << 10);
        assert_int_equal(other->options.block_size, 4096);
        assert_int_equal(kv_default_cf(db)->options.block_size, 4096);
        tdb_close(db);
    }
    o.cf_overrides[0].options.block_size = 1; /* out of range */
    kv_db *db = NULL;
    assert_int_equal(kv_open(&o, path, &db), KV_INVALID_ARGUMENT);
    expect_message_contains("bad override", "block_size 1 out of range");
    o.cf_overrides[0].options.block_size = 4096;
    o.cf_overrides[0].name[0] = '\0';
    assert_int_equal(kv_open(&o, path, &db), KV_INVALID_ARGUMENT);
    expect_message_contains("unnamed override", "family name");
    o.num_cf_overrides = KV_MAX_CF_OVERRIDES + 1;
    assert_int_equal(kv_open(&o, path, &db), KV_INVALID_ARGUMENT);
    free(path);
    kv_test_cleanup_dir(dir);
}

/* The number of the newest WAL in dir. */
static uint64_t newest_wal(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    uint64_t newest = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        unsigned long long number;
        char suffix[8];
        if (sscanf(e->d_name, "%llu.%7s", &number, suffix) == 2 && strcmp(suffix, "log") == 0 &&
            number > newest)
            newest = number;
    }
    closedir(d);
    return newest;
}

/* A power cut that cleanly cuts an older WAL at a record boundary (its
 * writes were not synced) while a newer WAL kept its writes: recovery must
 * not replay the newer one past the hole (the result would be no prefix of
 * the writes). The newer WAL's marker gives the hole away; the same WAL
 * after an intact older one is replayed. */
static void test_wal_hole_drops_later_wals(void **state)
{
    (void)state;
    for (int cut = 0; cut < 2; cut++) {
        char *dir = kv_test_tmpdir(cut ? "db-wal-hole" : "db-wal-no-hole");
        char *path = subdir(dir, "db");
        kv_options o = create_options();
        kv_db *db = tdb_open(&o, path);
        tdb_put(db, kv_default_cf(db), "k1", "v1"); /* sequence 1 */
        tdb_put(db, kv_default_cf(db), "k2", "v2"); /* sequence 2 */
        tdb_close(db);

        /* The WAL holds the marker, k1, k2: cut k2 off at its record. */
        uint64_t number = newest_wal(path);
        char *wal = kv_log_file_name(path, number);
        kv_random *file;
        assert_int_equal(kv_env_new_random(kv_env_posix(), wal, &file), 0);
        kv_log_reader *reader = kv_log_reader_create(file, file->size, "wal");
        kv_buf scratch = {0};
        kv_slice record;
        uint64_t offsets[3];
        for (int i = 0; i < 3; i++) {
            assert_int_equal(kv_log_reader_read_record(reader, &record, &scratch), 1);
            offsets[i] = kv_log_reader_last_record_offset(reader);
        }
        kv_log_reader_destroy(reader);
        kv_random_close(file);
        kv_buf_free(&scratch);
        if (cut)
            assert_int_equal(truncate(wal, (off_t)offsets[2]), 0);

        /* A newer WAL, as the engine writes one: its marker says the WALs
         * before it end at sequence 2; then k3 at sequence 3. */
        char *newer = kv_log_file_name(path, number + 1);
        kv_writable *out;
        assert_int_equal(kv_env_new_writable(kv_env_posix(), newer, 4096, &out), 0);
        kv_log_writer *writer = kv_log_writer_create(out);
        kv_write_batch batch;
        kv_write_batch_init(&batch);
        kv_write_batch_set_sequence(&batch, 2);
        assert_int_equal(kv_log_writer_add_record(writer, kv_write_batch_contents(&batch)), 0);
        kv_write_batch_clear(&batch);
        kv_write_batch_put_cf_id(&batch, 0, kv_slice_from_str("k3"), kv_slice_from_str("v3"));
        kv_write_batch_set_sequence(&batch, 3);
        assert_int_equal(kv_log_writer_add_record(writer, kv_write_batch_contents(&batch)), 0);
        kv_write_batch_free(&batch);
        assert_int_equal(kv_log_writer_close(writer), 0);

        db = tdb_open(&o, path);
        tdb_expect(db, NULL, kv_default_cf(db), "k1", "v1");
        if (cut) {
            tdb_expect_missing(db, NULL, kv_default_cf(db), "k2");
            tdb_expect_missing(db, NULL, kv_default_cf(db), "k3");
            assert_false(path_exists(newer));
        } else {
            tdb_expect(db, NULL, kv_default_cf(db), "k2", "v2");
            tdb_expect(db, NULL, kv_default_cf(db), "k3", "v3");
        }
        /* What recovery kept stays kept: new writes survive a reopen. */
        tdb_put(db, kv_default_cf(db), "k4", "v4");
        tdb_close(db);
        db = tdb_open(&o, path);
        tdb_expect(db, NULL, kv_default_cf(db), "k1", "v1");
        tdb_expect(db, NULL, kv_default_cf(db), "k4", "v4");
        if (cut)
            tdb_expect_missing(db, NULL, kv_default_cf(db), "k3");
        tdb_close(db);
        free(newer);
        free(wal);
        free(path);
        kv_test_cleanup_dir(dir);
    }
}

static void test_rarely_written_family_does_not_pin_wals(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-wal-pinning");
    char *path = subdir(dir, "db");
    kv_options o = create_options();
    o.cf.write_buffer_size = 64 << 10;
    o.max_total_wal_size = 256 << 10;
    kv_db *db = tdb_open(&o, path);
    kv_cf *rare;
    expect_status("kv_create_cf", kv_create_cf(db, "rare", &rare), KV_OK);
    tdb_put(db, rare, "only", "once");
    char value[1024];
    memset(value, 'v', sizeof(value));
    int most_logs = 0;
    for (int i = 0; i < 4000; i++) {
        char key[32];
        snprintf(key, sizeof(key), "key%06d", i);
        expect_status("kv_put",
                      kv_put(db, NULL, kv_default_cf(db), key, strlen(key), value, sizeof(value)),
                      KV_OK);
        if (i % 200 == 199) {
            assert_int_equal(kv_flush(db, kv_default_cf(db), true), 0);
            int logs = tdb_count_files(path, ".log");
            if (logs > most_logs)
                most_logs = logs;
        }
    }
    /* ~4 MB of WAL written; without the limit every file would stay. */
    assert_true(most_logs <= 12);
    tdb_close(db);
    db = tdb_open(&o, path);
    rare = kv_get_cf(db, "rare");
    tdb_expect(db, NULL, rare, "only", "once");
    tdb_close(db);
    free(path);
    kv_test_cleanup_dir(dir);
}

/* kv_delete_files_in_range drops the files wholly inside a deleted range
 * (and only those, and only deletion-free ones), without compaction. */
static void test_delete_files_in_range(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-delete-files");
    char *path = subdir(dir, "db");
    kv_options o = create_options();
    o.max_background_compactions = 0; /* the files stay as flushed */
    kv_db *db = tdb_open(&o, path);
    kv_cf *cf = kv_default_cf(db);
    /* Six files: b*, d*, f*, h*, j*, and one straddling "a5".."e5". */
    const char *prefixes[] = {"b", "d", "f", "h", "j"};
    for (int p = 0; p < 5; p++) {
        for (int i = 0; i < 10; i++) {
            char key[16];
            snprintf(key, sizeof(key), "%s%d", prefixes[p], i);
            tdb_put(db, cf, key, "v");
        }
        assert_int_equal(kv_flush(db, cf, true), 0);
    }
    tdb_put(db, cf, "a5", "straddles");
    tdb_put(db, cf, "e5", "straddles");
    assert_int_equal(kv_flush(db, cf, true), 0);
    int before = tdb_count_files(path, ".sst");
    assert_int_equal(before, 6);

    expect_status("kv_delete_range", kv_delete_range(db, NULL, cf, "c", 1, "i", 1), KV_OK);
    uint64_t dropped = 0;
    expect_status("kv_delete_files_in_range",
                  kv_delete_files_in_range(db, cf, "c", 1, "i", 1, &dropped), KV_OK);
    assert_int_equal(dropped, 3); /* d*, f*, h*; not b*, j*, nor the straddling file */
    assert_int_equal(tdb_count_files(path, ".sst"), before - 3);
    tdb_expect(db, NULL, cf, "b3", "v");
    tdb_expect(db, NULL, cf, "j3", "v");
    tdb_expect_missing(db, NULL, cf, "d3");
    tdb_expect_missing(db, NULL, cf, "e5"); /* still covered by the deletion */
    tdb_expect(db, NULL, cf, "a5", "straddles");
    /* A file holding deletions stays. */
    expect_status("kv_delete", kv_delete(db, NULL, cf, "b1", 2), KV_OK);
    assert_int_equal(kv_flush(db, cf, true), 0);
    expect_status("kv_delete_files_in_range",
                  kv_delete_files_in_range(db, cf, "a", 1, "c", 1, &dropped), KV_OK);
    assert_int_equal(dropped, 1); /* b* goes; the file with b1's deletion stays */
    tdb_close(db);
    db = tdb_open(&o, path);
    cf = kv_default_cf(db);
    tdb_expect_missing(db, NULL, cf, "b3");
    tdb_expect_missing(db, NULL, cf, "e5");
    tdb_expect(db, NULL, cf, "j3", "v");
    tdb_close(db);
    free(path);
    kv_test_cleanup_dir(dir);
}

/* kv_delete_files_in_range while compactions run on the same family: the
 * MANIFEST stays consistent (the database reopens) and keys outside the
 * deleted ranges survive. A dropped file used by a running compaction made
 * its edit fail ("edit deletes file ... which is not there"). */
static void test_delete_files_in_range_during_compactions(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-delete-files-compacting");
    char *path = subdir(dir, "db");
    kv_options o = create_options();
    o.cf.write_buffer_size = 64 << 10;
    o.cf.level0_file_num_compaction_trigger = 2;
    o.cf.partition_prefix_length = 4;
    kv_db *db = tdb_open(&o, path);
    kv_cf *cf = kv_default_cf(db);
    char value[512];
    memset(value, 'x', sizeof(value));
    for (int round = 0; round < 40; round++) {
        /* Prefix p%03d: written in one round, deleted (and dropped) two
         * rounds later; "keep" keys are never deleted. */
        for (int i = 0; i < 300; i++) {
            char key[32];
            snprintf(key, sizeof(key), "p%03d%05d", round, i);
            expect_status("kv_put", kv_put(db, NULL, cf, key, strlen(key), value, sizeof(value)),
                          KV_OK);
        }
        char keep[32];
        snprintf(keep, sizeof(keep), "keep%03d", round);
        tdb_put(db, cf, keep, "kept");
        if (round >= 2) {
            char lo[8], hi[8];
            snprintf(lo, sizeof(lo), "p%03d", round - 2);
            snprintf(hi, sizeof(hi), "p%03d", round - 1);
            expect_status("kv_delete_range", kv_delete_range(db, NULL, cf, lo, 4, hi, 4), KV_OK);
            expect_status("kv_delete_files_in_range",
                          kv_delete_files_in_range(db, cf, lo, 4, hi, 4, NULL), KV_OK);
        }
    }
    tdb_close(db);
    db = tdb_open(&o, path); /* fails if the MANIFEST lost track */
    cf = kv_default_cf(db);
    for (int round = 0; round < 40; round++) {
        char keep[32], gone[32];
        snprintf(keep, sizeof(keep), "keep%03d", round);
        tdb_expect(db, NULL, cf, keep, "kept");
        if (round < 38) {
            snprintf(gone, sizeof(gone), "p%03d%05d", round, 7);
            tdb_expect_missing(db, NULL, cf, gone);
        }
    }
    tdb_close(db);
    free(path);
    kv_test_cleanup_dir(dir);
}

/* ---- point operations ---- */

static void test_put_get_delete_overwrite(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-basic");
    kv_options o = create_options();
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    assert_non_null(cf);
    assert_string_equal(kv_cf_name(cf), "default");

    tdb_expect_missing(db, NULL, cf, "a");
    tdb_put(db, cf, "a", "1");
    tdb_put(db, cf, "b", "2");
    tdb_expect(db, NULL, cf, "a", "1");
    tdb_expect(db, NULL, cf, "b", "2");
    tdb_expect_missing(db, NULL, cf, "c");
    tdb_expect_missing(db, NULL, cf, "aa"); /* a prefix match is not a match */

    tdb_put(db, cf, "a", "one");
    tdb_expect(db, NULL, cf, "a", "one");

    assert_int_equal(kv_delete(db, NULL, cf, "a", 1), 0);
    tdb_expect_missing(db, NULL, cf, "a");
    tdb_expect(db, NULL, cf, "b", "2");
    assert_int_equal(kv_delete(db, NULL, cf, "zzz", 3), 0); /* absent: not an error */
    tdb_put(db, cf, "a", "again");
    tdb_expect(db, NULL, cf, "a", "again");

    /* Binary keys: embedded NULs and high bytes are ordinary bytes. */
    const char k1[] = {'x', 0, 'y'}, k2[] = {'x', 0, 'z'}, k3[] = {'x', (char)0xff};
    assert_int_equal(kv_put(db, NULL, cf, k1, 3, "v1", 2), 0);
    assert_int_equal(kv_put(db, NULL, cf, k2, 3, "v2", 2), 0);
    assert_int_equal(kv_put(db, NULL, cf, k3, 2, "v3", 2), 0);
    tdb_expect_bytes(db, NULL, cf, k1, 3, "v1", 2);
    tdb_expect_bytes(db, NULL, cf, k2, 3, "v2", 2);
    tdb_expect_bytes(db, NULL, cf, k3, 2, "v3", 2);
    tdb_expect_missing(db, NULL, cf, "x"); /* "x" is a prefix of all three */

    /* A sync write is an ordinary write that also reaches the disk. */
    kv_write_options wo = {.sync = true};
    assert_int_equal(kv_put(db, &wo, cf, "s", 1, "synced", 6), 0);
    assert_int_equal(kv_sync_wal(db), 0);
    tdb_expect(db, NULL, cf, "s", "synced");

    /* The same after a flush: values now come from an SST. */
    assert_int_equal(kv_flush(db, NULL, true), 0);
    tdb_expect(db, NULL, cf, "a", "again");
    tdb_expect(db, NULL, cf, "b", "2");
    tdb_expect_bytes(db, NULL, cf, k2, 3, "v2", 2);
    tdb_expect_missing(db, NULL, cf, "x");
    /* A delete in the memtable hides the value in the SST. */
    assert_int_equal(kv_delete(db, NULL, cf, "b", 1), 0);
    tdb_expect_missing(db, NULL, cf, "b");
    assert_int_equal(kv_flush(db, NULL, true), 0);
    tdb_expect_missing(db, NULL, cf, "b");
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

static void test_empty_values(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-empty-values");
    kv_options o = create_options();
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    assert_int_equal(kv_put(db, NULL, cf, "e", 1, "", 0), 0);
    assert_int_equal(kv_put(db, NULL, cf, "n", 1, NULL, 0), 0);
    tdb_expect_bytes(db, NULL, cf, "e", 1, "", 0);
    tdb_expect_bytes(db, NULL, cf, "n", 1, "", 0);
    tdb_close(db);
    db = tdb_open(&o, dir); /* from the WAL */
    cf = kv_default_cf(db);
    tdb_expect_bytes(db, NULL, cf, "e", 1, "", 0);
    assert_int_equal(kv_flush(db, NULL, true), 0);
    tdb_close(db);
    db = tdb_open(&o, dir); /* from an SST */
    cf = kv_default_cf(db);
    tdb_expect_bytes(db, NULL, cf, "e", 1, "", 0);
    tdb_expect_bytes(db, NULL, cf, "n", 1, "", 0);
    kv_iterator *it = kv_iterator_create(db, NULL, cf);
    kv_iterator_seek_to_first(it);
    assert_true(kv_iterator_valid(it));
    size_t len = 99;
    kv_iterator_value(it, &len);
    assert_int_equal(len, 0);
    kv_iterator_destroy(it);
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

/* The empty byte string is a key like any other (keys are byte strings). */
static void test_empty_key(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-empty-key");
    kv_options o = create_options();
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    int rc = kv_put(db, NULL, cf, "", 0, "nothing", 7);
    expect_status("put with the empty key", rc, KV_OK);
    tdb_put(db, cf, "a", "1");
    tdb_expect_bytes(db, NULL, cf, "", 0, "nothing", 7);
    assert_int_equal(kv_flush(db, NULL, true), 0);
    tdb_expect_bytes(db, NULL, cf, "", 0, "nothing", 7);
    kv_iterator *it = kv_iterator_create(db, NULL, cf);
    kv_iterator_seek_to_first(it);
    assert_true(kv_iterator_valid(it));
    size_t len = 99;
    kv_iterator_key(it, &len);
    assert_int_equal(len, 0);
    kv_iterator_destroy(it);
    assert_int_equal(kv_delete(db, NULL, cf, "", 0), 0);
    char *v;
    size_t vlen;
    assert_int_equal(kv_get(db, NULL, cf, "", 0, &v, &vlen), KV_NOT_FOUND);
    tdb_expect(db, NULL, cf, "a", "1");
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

static void test_large_values(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-large-values");
    kv_options o = create_options();
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    /* 1 MiB values span many 32 KiB WAL blocks; the others sit exactly at
     * and around the block size. */
    const size_t sizes[] = {1u << 20, (1u << 20) + 1, 32768, 32768 - 7, 32768 - 14, 100000};
    const size_t n = sizeof(sizes) / sizeof(sizes[0]);
    char *buf = malloc((1u << 20) + 1);
    for (size_t i = 0; i < n; i++) {
        char key[16];
        snprintf(key, sizeof(key), "big%zu", i);
        tdb_fill_value(1000 + i, buf, sizes[i]);
        assert_int_equal(kv_put(db, NULL, cf, key, strlen(key), buf, sizes[i]), 0);
    }
    tdb_put(db, cf, "small", "s");
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < n; i++) {
            char key[16];
            snprintf(key, sizeof(key), "big%zu", i);
            tdb_fill_value(1000 + i, buf, sizes[i]);
            tdb_expect_bytes(db, NULL, cf, key, strlen(key), buf, sizes[i]);
        }
        tdb_expect(db, NULL, cf, "small", "s");
        /* round 0: memtable; round 1: replayed from the WAL; round 2: SST */
        tdb_close(db);
        db = tdb_open(&o, dir);
        cf = kv_default_cf(db);
        if (round == 1)
            assert_int_equal(kv_flush(db, NULL, true), 0);
    }
    tdb_close(db);
    free(buf);
    kv_test_cleanup_dir(dir);
}

/* ---- range deletion ---- */

static void put_range(kv_db *db, kv_cf *cf, int from, int to, const char *tag)
{
    for (int i = from; i < to; i++) {
        char key[16], value[32];
        key_name(key, sizeof(key), i);
        snprintf(value, sizeof(value), "%s-%d", tag, i);
        tdb_put(db, cf, key, value);
    }
}

static int delete_range_keys(kv_db *db, kv_cf *cf, int from, int to)
{
    char b[16], e[16];
    key_name(b, sizeof(b), from);
    key_name(e, sizeof(e), to);
    return kv_delete_range(db, NULL, cf, b, strlen(b), e, strlen(e));
}

/* Asserts keys [0, n) match `present` (value tag or NULL), through get and
 * through an iterator. */
static void expect_keys(kv_db *db, kv_cf *cf, char **present, int n, const char *what)
{
    for (int i = 0; i < n; i++) {
        char key[16];
        key_name(key, sizeof(key), i);
        if (present[i] == NULL) {
            tdb_expect_missing(db, NULL, cf, key);
        } else {
            tdb_expect(db, NULL, cf, key, present[i]);
        }
    }
    expected_kv e;
    expected_from_arrays(&e, present, n);
    kv_iterator *it = kv_iterator_create(db, NULL, cf);
    assert_non_null(it);
    kv_iterator_seek_to_first(it);
    for (int i = 0; i < e.count; i++) {
        expect_iter_at(it, &e, i, what);
        kv_iterator_next(it);
    }
    expect_iter_at(it, &e, -1, what);
    kv_iterator_seek_to_last(it);
    for (int i = e.count - 1; i >= 0; i--) {
        expect_iter_at(it, &e, i, what);
        kv_iterator_prev(it);
    }
    kv_iterator_destroy(it);
    expected_free(&e);
}

static void set_present(char **present, int from, int to, const char *tag)
{
    for (int i = from; i < to; i++) {
        free(present[i]);
        present[i] = NULL;
        if (tag) {
            char value[32];
            snprintf(value, sizeof(value), "%s-%d", tag, i);
            present[i] = strdup(value);
        }
    }
}

static void test_delete_range(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-delete-range");
    kv_options o = create_options();
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    enum { N = 100 };
    char *present[N] = {0};

    put_range(db, cf, 0, N, "v");
    set_present(present, 0, N, "v");
    assert_int_equal(kv_flush(db, NULL, true), 0); /* half the checks hit SSTs */

    /* begin inclusive, end exclusive */
    assert_int_equal(delete_range_keys(db, cf, 10, 20), 0);
    set_present(present, 10, 20, NULL);
    expect_keys(db, cf, present, N, "after [10,20)");

    /* empty range: deletes nothing */
    assert_int_equal(delete_range_keys(db, cf, 25, 25), 0);
    expect_keys(db, cf, present, N, "after empty range");

    /* overlapping ranges */
    assert_int_equal(delete_range_keys(db, cf, 30, 50), 0);
    assert_int_equal(delete_range_keys(db, cf, 40, 60), 0);
    set_present(present, 30, 60, NULL);
    expect_keys(db, cf, present, N, "after overlapping ranges");

    /* puts after a range delete are visible; their neighbours stay deleted */
    put_range(db, cf, 15, 16, "new");
    put_range(db, cf, 45, 47, "new");
    set_present(present, 15, 16, "new");
    set_present(present, 45, 47, "new");
    expect_keys(db, cf, present, N, "after puts over ranges");

    /* ranges covering memtable data and a range with bounds that are not
     * keys: "k0070x" < "k0071" */
    put_range(db, cf, 70, 80, "mem");
    set_present(present, 70, 80, "mem");
    assert_int_equal(kv_delete_range(db, NULL, cf, "k0070x", 6, "k0075", 5), 0);
    set_present(present, 71, 75, NULL);
    expect_keys(db, cf, present, N, "after range with non-key bounds");

    /* The same state after a flush, after a reopen (WAL replay of range
     * tombstones) and after a flush of the replayed data. */
    assert_int_equal(kv_flush(db, NULL, true), 0);
    expect_keys(db, cf, present, N, "after flush");
    assert_int_equal(delete_range_keys(db, cf, 90, 95), 0);
    set_present(present, 90, 95, NULL);
    tdb_close(db);
    db = tdb_open(&o, dir);
    cf = kv_default_cf(db);
    expect_keys(db, cf, present, N, "after reopen");
    assert_int_equal(kv_flush(db, NULL, true), 0);
    tdb_close(db);
    db = tdb_open(&o, dir);
    cf = kv_default_cf(db);
    expect_keys(db, cf, present, N, "after flush and reopen");

    /* A range covering everything, then a put. */
    assert_int_equal(kv_delete_range(db, NULL, cf, "", 0, "\xff", 1), 0);
    set_present(present, 0, N, NULL);
    expect_keys(db, cf, present, N, "after deleting everything");
    put_range(db, cf, 50, 51, "last");
    set_present(present, 50, 51, "last");
    expect_keys(db, cf, present, N, "put after deleting everything");
    tdb_close(db);
    set_present(present, 0, N, NULL);

    /* begin > end: either rejected or a no-op, never a deletion. */
    db = tdb_open(&o, dir);
    cf = kv_default_cf(db);
    put_range(db, cf, 0, 10, "r");
    int rc = delete_range_keys(db, cf, 8, 2);
    assert_true(rc == KV_OK || rc == KV_INVALID_ARGUMENT);
    tdb_expect(db, NULL, cf, "k0005", "r-5");
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

/* ---- batches and column families ---- */

static void test_write_batch_across_families(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-batch");
    kv_options o = create_options();
    kv_db *db = tdb_open(&o, dir);
    kv_cf *def = kv_default_cf(db), *meta = NULL, *data = NULL;
    assert_int_equal(kv_create_cf(db, "meta", &meta), 0);
    assert_int_equal(kv_create_cf(db, "data", &data), 0);
    tdb_put(db, meta, "old", "x");
    put_range(db, data, 0, 10, "d");

    kv_write_batch *b = kv_write_batch_create();
    assert_int_equal(kv_write_batch_count(b), 0);
    kv_write_batch_put(b, def, "inode", 5, "1", 1);
    kv_write_batch_put(b, meta, "dentry", 6, "2", 1);
    kv_write_batch_delete(b, meta, "old", 3);
    kv_write_batch_delete_range(b, data, "k0002", 5, "k0005", 5);
    kv_write_batch_put(b, data, "k0003", 5, "in-batch", 8); /* after the range: visible */
    kv_write_batch_put(b, def, "inode", 5, "2", 1);         /* later op wins */
    assert_int_equal(kv_write_batch_count(b), 6);
    size_t size = kv_write_batch_size(b);
    assert_true(size > 0);

    const kv_snapshot *before = kv_snapshot_create(db);
    assert_int_equal(kv_write(db, NULL, b), 0);
    assert_int_equal(kv_write_batch_count(b), 6); /* unchanged */
    assert_int_equal(kv_write_batch_size(b), size);

    for (int pass = 0; pass < 2; pass++) {
        tdb_expect(db, NULL, def, "inode", "2");
        tdb_expect(db, NULL, meta, "dentry", "2");
        tdb_expect_missing(db, NULL, meta, "old");
        tdb_expect(db, NULL, data, "k0001", "d-1");
        tdb_expect_missing(db, NULL, data, "k0002");
        tdb_expect(db, NULL, data, "k0003", "in-batch");
        tdb_expect_missing(db, NULL, data, "k0004");
        tdb_expect(db, NULL, data, "k0005", "d-5");
        tdb_expect_missing(db, NULL, def, "dentry"); /* families are separate key spaces */
        /* Nothing of the batch is visible at the earlier snapshot. */
        kv_read_options ro;
        kv_read_options_init(&ro);
        ro.snapshot = before;
        tdb_expect_missing(db, &ro, def, "inode");
        tdb_expect_missing(db, &ro, meta, "dentry");
        tdb_expect(db, &ro, meta, "old", "x");
        tdb_expect(db, &ro, data, "k0003", "d-3");
        assert_int_equal(kv_flush(db, NULL, true), 0);
    }
    kv_snapshot_release(db, before);

    /* The batch can be written again; cleared, it is empty. */
    assert_int_equal(kv_write(db, NULL, b), 0);
    kv_write_batch_clear(b);
    assert_int_equal(kv_write_batch_count(b), 0);
    assert_true(kv_write_batch_size(b) < size);
    assert_int_equal(kv_write(db, NULL, b), 0); /* an empty batch is fine */

    /* A batch touching a dropped family fails as a whole. */
    kv_cf *gone = NULL;
    assert_int_equal(kv_create_cf(db, "gone", &gone), 0);
    assert_int_equal(kv_drop_cf(db, gone), 0);
    kv_write_batch_put(b, def, "partial", 7, "p", 1);
    kv_write_batch_put(b, gone, "x", 1, "y", 1);
    int rc = kv_write(db, NULL, b);
    if (rc >= 0) {
        fprintf(stderr, "kv_write with a dropped family succeeded\n");
        fail();
    }
    tdb_expect_missing(db, NULL, def, "partial");
    kv_write_batch_destroy(b);

    tdb_close(db);
    db = tdb_open(&o, dir);
    meta = kv_get_cf(db, "meta");
    data = kv_get_cf(db, "data");
    assert_non_null(meta);
    assert_non_null(data);
    tdb_expect(db, NULL, kv_default_cf(db), "inode", "2");
    tdb_expect(db, NULL, meta, "dentry", "2");
    tdb_expect(db, NULL, data, "k0003", "in-batch");
    tdb_expect_missing(db, NULL, data, "k0004");
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

static void expect_cf_names(kv_db *db, const char *const *want, size_t n)
{
    char **names = NULL;
    size_t count = 0;
    assert_int_equal(kv_list_cfs(db, &names, &count), 0);
    bool ok = count == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = strcmp(names[i], want[i]) == 0;
    if (!ok) {
        fprintf(stderr, "kv_list_cfs: got");
        for (size_t i = 0; i < count; i++)
            fprintf(stderr, " %s", names[i]);
        fprintf(stderr, ", want");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %s", want[i]);
        fprintf(stderr, "\n");
        fail();
    }
    kv_free_cf_names(names, count);
}

static void test_column_families(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-cf");
    kv_options o = create_options();
    kv_db *db = tdb_open(&o, dir);
    kv_cf *def = kv_default_cf(db), *a = NULL, *b = NULL, *dup = NULL;
    const char *only_default[] = {"default"};
    expect_cf_names(db, only_default, 1);
    assert_null(kv_get_cf(db, "a"));

    assert_int_equal(kv_create_cf(db, "a", &a), 0);
    assert_int_equal(kv_create_cf(db, "b", &b), 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(kv_cf_name(a), "a");
    assert_ptr_equal(kv_get_cf(db, "a"), a);
    assert_ptr_equal(kv_get_cf(db, "default"), def);
    assert_true(kv_cf_id(a) != kv_cf_id(b) && kv_cf_id(a) != kv_cf_id(def));
    uint32_t id_b = kv_cf_id(b);
    const char *three[] = {"default", "a", "b"};
    expect_cf_names(db, three, 3);

    expect_status("create an existing family", kv_create_cf(db, "a", &dup), KV_EXISTS);
    expect_status("create \"default\"", kv_create_cf(db, "default", &dup), KV_EXISTS);

    /* The same key in each family holds its own value. */
    tdb_put(db, def, "k", "in-default");
    tdb_put(db, a, "k", "in-a");
    tdb_put(db, b, "k", "in-b");
    tdb_put(db, a, "flushed", "fa");
    assert_int_equal(kv_flush(db, a, true), 0); /* only a is flushed */
    tdb_put(db, a, "unflushed", "ua");
    tdb_expect(db, NULL, def, "k", "in-default");
    tdb_expect(db, NULL, a, "k", "in-a");
    tdb_expect(db, NULL, b, "k", "in-b");
    tdb_expect_missing(db, NULL, b, "flushed");
    assert_int_equal(tdb_property_u64(db, a, "kv.num-files-at-level0"), 1);
    assert_int_equal(tdb_property_u64(db, b, "kv.num-files-at-level0"), 0);

    /* Data persists per family across reopen, from SSTs and from the WAL. */
    tdb_close(db);
    db = tdb_open(&o, dir);
    expect_cf_names(db, three, 3);
    def = kv_default_cf(db);
    a = kv_get_cf(db, "a");
    b = kv_get_cf(db, "b");
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(kv_cf_id(b), id_b); /* ids are stable */
    tdb_expect(db, NULL, def, "k", "in-default");
    tdb_expect(db, NULL, a, "k", "in-a");
    tdb_expect(db, NULL, b, "k", "in-b");
    tdb_expect(db, NULL, a, "flushed", "fa");
    tdb_expect(db, NULL, a, "unflushed", "ua");

    /* Dropping a family: gone from the list, the handle fails, files go. */
    assert_int_equal(kv_flush(db, NULL, true), 0);
    assert_int_equal(kv_drop_cf(db, a), 0);
    const char *without_a[] = {"default", "b"};
    expect_cf_names(db, without_a, 2);
    assert_null(kv_get_cf(db, "a"));
    assert_true(kv_put(db, NULL, a, "x", 1, "y", 1) < 0);
    char *v;
    size_t vlen;
    int rc = kv_get(db, NULL, a, "k", 1, &v, &vlen);
    if (rc == KV_OK || rc == KV_NOT_FOUND) {
        fprintf(stderr, "kv_get on a dropped family returned %s; expected an error\n",
                kv_strerror(rc));
        fail();
    }
    tdb_expect(db, NULL, b, "k", "in-b");

    /* Dropping "default" is refused: every database has it. */
    rc = kv_drop_cf(db, def);
    if (rc >= 0) {
        fprintf(stderr, "kv_drop_cf(default) succeeded\n");
        fail();
    }
    tdb_expect(db, NULL, def, "k", "in-default");

    tdb_close(db);
    db = tdb_open(&o, dir);
    expect_cf_names(db, without_a, 2);
    assert_null(kv_get_cf(db, "a"));
    /* Re-creating the name gives an empty family: nothing comes back. */
    assert_int_equal(kv_create_cf(db, "a", &a), 0);
    tdb_expect_missing(db, NULL, a, "k");
    tdb_expect_missing(db, NULL, a, "flushed");
    tdb_expect_missing(db, NULL, a, "unflushed");
    kv_iterator *it = kv_iterator_create(db, NULL, a);
    kv_iterator_seek_to_first(it);
    assert_false(kv_iterator_valid(it));
    assert_int_equal(kv_iterator_status(it), 0);
    kv_iterator_destroy(it);
    const char *recreated[] = {"default", "b", "a"};
    expect_cf_names(db, recreated, 3);
    tdb_put(db, a, "k", "new-a");
    tdb_close(db);
    db = tdb_open(&o, dir);
    expect_cf_names(db, recreated, 3);
    tdb_expect(db, NULL, kv_get_cf(db, "a"), "k", "new-a");
    tdb_expect_missing(db, NULL, kv_get_cf(db, "a"), "flushed");
    tdb_expect(db, NULL, kv_get_cf(db, "b"), "k", "in-b");
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

/* ---- iterators and snapshots ---- */

enum { ITER_N = 300 };

/* Builds a family whose live data is spread over two SSTs and the
 * memtable, with point and range tombstones in each layer. `model` gets the
 * expected value of each key index (NULL: absent). */
static void build_layered(kv_db *db, kv_cf *cf, char **model)
{
    for (int i = 0; i < ITER_N; i++) {
        char value[32];
        snprintf(value, sizeof(value), "v1-%d", i);
        model[i] = strdup(value);
    }
    put_range(db, cf, 0, ITER_N, "v1");
    assert_int_equal(kv_flush(db, cf, true), 0);

    for (int i = 0; i < ITER_N; i++) {
        char key[16];
        key_name(key, sizeof(key), i);
        if (i % 3 == 0) {
            put_range(db, cf, i, i + 1, "v2");
            set_present(model, i, i + 1, "v2");
        }
        if (i % 5 == 0) {
            assert_int_equal(kv_delete(db, NULL, cf, key, strlen(key)), 0);
            set_present(model, i, i + 1, NULL);
        }
    }
    assert_int_equal(delete_range_keys(db, cf, 100, 130), 0);
    set_present(model, 100, 130, NULL);
    assert_int_equal(kv_flush(db, cf, true), 0);

    for (int i = 0; i < ITER_N; i++) {
        char key[16];
        key_name(key, sizeof(key), i);
        if (i % 7 == 0) {
            put_range(db, cf, i, i + 1, "v3");
            set_present(model, i, i + 1, "v3");
        }
        if (i % 11 == 0) {
            assert_int_equal(kv_delete(db, NULL, cf, key, strlen(key)), 0);
            set_present(model, i, i + 1, NULL);
        }
    }
    assert_int_equal(delete_range_keys(db, cf, 200, 240), 0);
    set_present(model, 200, 240, NULL);
    put_range(db, cf, 210, 212, "v4"); /* over the range in the memtable */
    put_range(db, cf, 120, 122, "v4"); /* over the range in an SST */
    set_present(model, 210, 212, "v4");
    set_present(model, 120, 122, "v4");
    /* Everything of the last 10 keys deleted: the tail is all tombstones. */
    assert_int_equal(delete_range_keys(db, cf, ITER_N - 10, ITER_N), 0);
    set_present(model, ITER_N - 10, ITER_N, NULL);
    /* and the head too */
    assert_int_equal(delete_range_keys(db, cf, 0, 3), 0);
    set_present(model, 0, 3, NULL);
}

static void test_iterators_layered(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-iter");
    kv_options o = create_options();
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    char *model[ITER_N] = {0};
    build_layered(db, cf, model);

    expected_kv e;
    expected_from_arrays(&e, model, ITER_N);
    assert_true(e.count > 100);
    kv_iterator *it = kv_iterator_create(db, NULL, cf);
    assert_non_null(it);
    assert_false(kv_iterator_valid(it)); /* unpositioned */
    check_iterator(it, &e, 1);
    kv_iterator_destroy(it);
    expect_keys(db, cf, model, ITER_N, "layered gets");

    /* The same after everything is flushed and after a reopen. */
    assert_int_equal(kv_flush(db, NULL, true), 0);
    it = kv_iterator_create(db, NULL, cf);
    check_iterator(it, &e, 2);
    kv_iterator_destroy(it);
    tdb_close(db);
    db = tdb_open(&o, dir);
    it = kv_iterator_create(db, NULL, kv_default_cf(db));
    check_iterator(it, &e, 3);
    kv_iterator_destroy(it);

    /* An empty family. */
    kv_cf *empty = NULL;
    assert_int_equal(kv_create_cf(db, "empty", &empty), 0);
    expected_kv none = {0, NULL, NULL};
    it = kv_iterator_create(db, NULL, empty);
    check_iterator(it, &none, 4);
    kv_iterator_destroy(it);

    expected_free(&e);
    set_present(model, 0, ITER_N, NULL);
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

/* An iterator keeps the state of its creation while writes, flushes and
 * compactions go on (and keeps the files it reads alive). */
static void test_iterator_consistent_during_writes(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-iter-consistent");
    kv_options o = create_options();
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    char *model[ITER_N] = {0};
    build_layered(db, cf, model);
    expected_kv e;
    expected_from_arrays(&e, model, ITER_N);

    kv_iterator *it = kv_iterator_create(db, NULL, cf);
    kv_iterator_seek_to_first(it);
    expect_iter_at(it, &e, 0, "before writes");

    /* Overwrite, delete and add, with enough flushes to pass the level-0
     * compaction trigger, so the files the iterator reads get compacted. */
    for (int round = 0; round < 6; round++) {
        char tag[16];
        snprintf(tag, sizeof(tag), "w%d", round);
        put_range(db, cf, 0, ITER_N + 50, tag);
        assert_int_equal(delete_range_keys(db, cf, 20 * round, 20 * round + 10), 0);
        assert_int_equal(kv_flush(db, cf, true), 0);
    }
    kv_iterator_next(it);
    expect_iter_at(it, &e, 1, "after writes, continuing");
    check_iterator(it, &e, 5);
    kv_iterator_destroy(it);

    /* A new iterator sees the new state. */
    it = kv_iterator_create(db, NULL, cf);
    kv_iterator_seek(it, "k0000", 5);
    assert_true(kv_iterator_valid(it));
    size_t klen, vlen;
    const char *k = kv_iterator_key(it, &klen);
    const char *v = kv_iterator_value(it, &vlen);
    assert_int_equal(klen, 5);
    assert_memory_equal(k, "k0000", 5);
    assert_int_equal(vlen, strlen("w5-0"));
    assert_memory_equal(v, "w5-0", vlen);
    kv_iterator_destroy(it);

    expected_free(&e);
    set_present(model, 0, ITER_N, NULL);
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

static void test_snapshots(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-snapshots");
    kv_options o = create_options();
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    char *model[ITER_N] = {0};
    build_layered(db, cf, model);
    expected_kv e;
    expected_from_arrays(&e, model, ITER_N);

    /* No snapshot: the oldest is the latest write. */
    uint64_t latest = kv_latest_sequence(db);
    assert_true(latest > 0);
    assert_int_equal(kv_oldest_snapshot_sequence(db, NULL), latest);
    const kv_snapshot *s1 = kv_snapshot_create(db);
    assert_non_null(s1);
    assert_int_equal(kv_snapshot_sequence(s1), latest);
    tdb_put(db, cf, "k0005", "after-s1");
    const kv_snapshot *s2 = kv_snapshot_create(db);
    assert_true(kv_snapshot_sequence(s2) > kv_snapshot_sequence(s1));
    assert_int_equal(kv_latest_sequence(db), latest + 1);
    assert_int_equal(kv_oldest_snapshot_sequence(db, NULL), kv_snapshot_sequence(s1));

    /* Later overwrites, deletes, range deletes, flushes and compactions. */
    for (int round = 0; round < 6; round++) {
        put_range(db, cf, 0, ITER_N, "later");
        assert_int_equal(delete_range_keys(db, cf, 50, 250), 0);
        assert_int_equal(kv_delete(db, NULL, cf, "k0006", 5), 0);
        assert_int_equal(kv_flush(db, cf, true), 0);
    }
    kv_read_options ro;
    kv_read_options_init(&ro);
    ro.snapshot = s1;
    for (int i = 0; i < ITER_N; i++) {
        char key[16];
        key_name(key, sizeof(key), i);
        if (model[i])
            tdb_expect(db, &ro, cf, key, model[i]);
        else
            tdb_expect_missing(db, &ro, cf, key);
    }
    kv_iterator *it = kv_iterator_create(db, &ro, cf);
    check_iterator(it, &e, 6);
    kv_iterator_destroy(it);

    ro.snapshot = s2;
    tdb_expect(db, &ro, cf, "k0005", "after-s1");
    tdb_expect(db, NULL, cf, "k0005", "later-5");
    tdb_expect_missing(db, NULL, cf, "k0006");
    tdb_expect_missing(db, NULL, cf, "k0100");
    kv_snapshot_release(db, s2);
    assert_int_equal(kv_oldest_snapshot_sequence(db, NULL), kv_snapshot_sequence(s1));

    /* Released snapshots let compaction drop old versions; s1 still holds. */
    for (int round = 0; round < 5; round++) {
        put_range(db, cf, 0, 50, "again");
        assert_int_equal(kv_flush(db, cf, true), 0);
    }
    ro.snapshot = s1;
    it = kv_iterator_create(db, &ro, cf);
    check_iterator(it, &e, 7);
    kv_iterator_destroy(it);
    kv_snapshot_release(db, s1);
    assert_int_equal(kv_oldest_snapshot_sequence(db, NULL), kv_latest_sequence(db));

    expected_free(&e);
    set_present(model, 0, ITER_N, NULL);
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

/* A snapshot of one family (kv_snapshot_create_cf): reads through it in
 * its family see its state; in another family they are refused; and the
 * other families' compactions keep nothing for it, while a snapshot of
 * every family makes them keep the old versions. */
static void test_family_snapshots(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-family-snapshots");
    kv_options o = create_options();
    kv_db *db = tdb_open(&o, dir);
    kv_cf *meta = NULL, *data = NULL;
    assert_int_equal(kv_create_cf(db, "meta", &meta), 0);
    assert_int_equal(kv_create_cf(db, "data", &data), 0);
    enum { KEYS = 200, SIZE = 4000 };
    char key[16], value[SIZE];
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof(key), "k%04d", i);
        memset(value, 'a' + i % 26, SIZE);
        assert_int_equal(kv_put(db, NULL, data, key, strlen(key), value, SIZE), 0);
    }
    tdb_put(db, meta, "entry", "old");
    assert_int_equal(kv_flush(db, NULL, true), 0);

    /* Only a live family of this database. */
    kv_cf *gone = NULL;
    assert_int_equal(kv_create_cf(db, "gone", &gone), 0);
    assert_int_equal(kv_drop_cf(db, gone), 0);
    assert_null(kv_snapshot_create_cf(db, gone));
    const kv_snapshot *of_meta = kv_snapshot_create_cf(db, meta);
    assert_non_null(of_meta);
    uint64_t at = kv_snapshot_sequence(of_meta);
    assert_int_equal(kv_oldest_snapshot_sequence(db, meta), at);
    assert_int_equal(kv_oldest_snapshot_sequence(db, NULL), at);
    tdb_put(db, meta, "entry", "new");
    kv_read_options ro;
    kv_read_options_init(&ro);
    ro.snapshot = of_meta;
    tdb_expect(db, &ro, meta, "entry", "old");
    tdb_expect(db, NULL, meta, "entry", "new");
    char *got = NULL;
    size_t got_len = 0;
    assert_int_equal(kv_get(db, &ro, data, "k0001", 5, &got, &got_len), KV_INVALID_ARGUMENT);
    assert_null(kv_iterator_create(db, &ro, data));
    kv_iterator *it = kv_iterator_create(db, &ro, meta);
    assert_non_null(it);
    kv_iterator_destroy(it);

    /* Deleting every data key: with only the meta snapshot held, the
     * data family's compaction drops them all. */
    assert_int_equal(kv_oldest_snapshot_sequence(db, data), kv_latest_sequence(db));
    assert_int_equal(kv_delete_range(db, NULL, data, "k", 1, "l", 1), 0);
    assert_int_equal(kv_compact_range(db, data, NULL, 0, NULL, 0), 0);
    assert_int_equal(tdb_property_u64(db, data, "kv.total-sst-files-size"), 0);
    kv_snapshot_release(db, of_meta);

    /* A snapshot of every family keeps them. */
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof(key), "k%04d", i);
        memset(value, 'a' + i % 26, SIZE);
        assert_int_equal(kv_put(db, NULL, data, key, strlen(key), value, SIZE), 0);
    }
    assert_int_equal(kv_flush(db, NULL, true), 0);
    const kv_snapshot *of_all = kv_snapshot_create(db);
    assert_int_equal(kv_oldest_snapshot_sequence(db, data), kv_snapshot_sequence(of_all));
    assert_int_equal(kv_delete_range(db, NULL, data, "k", 1, "l", 1), 0);
    assert_int_equal(kv_compact_range(db, data, NULL, 0, NULL, 0), 0);
    assert_true(tdb_property_u64(db, data, "kv.total-sst-files-size") > 0);
    ro.snapshot = of_all;
    memset(value, 'a' + 7 % 26, SIZE);
    tdb_expect_bytes(db, &ro, data, "k0007", 5, value, SIZE);
    kv_snapshot_release(db, of_all);
    assert_int_equal(kv_compact_range(db, data, NULL, 0, NULL, 0), 0);
    assert_int_equal(tdb_property_u64(db, data, "kv.total-sst-files-size"), 0);
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

/* ---- durability across reopen ---- */

static void test_flush_then_reopen(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-flush-reopen");
    kv_options o = create_options();
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    put_range(db, cf, 0, 1000, "f");
    assert_int_equal(kv_flush(db, NULL, true), 0);
    assert_true(tdb_count_files(dir, ".sst") >= 1);
    assert_int_equal(tdb_property_u64(db, cf, "kv.num-immutable-mem-table"), 0);
    tdb_close(db);
    db = tdb_open(&o, dir);
    cf = kv_default_cf(db);
    for (int i = 0; i < 1000; i += 37) {
        char key[16], value[32];
        key_name(key, sizeof(key), i);
        snprintf(value, sizeof(value), "f-%d", i);
        tdb_expect(db, NULL, cf, key, value);
    }
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

/* Sequence numbers continue across reopen: a write after a reopen must win
 * over a replayed or flushed older one. */
static void test_reopen_keeps_newest(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-reopen-newest");
    kv_options o = create_options();
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    tdb_put(db, cf, "flushed", "v1");
    tdb_put(db, cf, "walonly", "v1");
    tdb_put(db, cf, "deleted", "v1");
    assert_int_equal(kv_flush(db, NULL, true), 0);
    tdb_put(db, cf, "walonly", "v2");
    tdb_close(db);

    for (int round = 3; round < 8; round++) {
        db = tdb_open(&o, dir);
        cf = kv_default_cf(db);
        char prev[8], next[8];
        snprintf(prev, sizeof(prev), "v%d", round - 1);
        snprintf(next, sizeof(next), "v%d", round);
        if (round > 3)
            tdb_expect(db, NULL, cf, "flushed", prev);
        tdb_expect(db, NULL, cf, "walonly", prev);
        tdb_put(db, cf, "flushed", next);
        tdb_put(db, cf, "walonly", next);
        if (round % 2)
            assert_int_equal(kv_delete(db, NULL, cf, "deleted", 7), 0);
        else
            tdb_put(db, cf, "deleted", next);
        if (round % 2 == 0)
            assert_int_equal(kv_flush(db, NULL, true), 0);
        tdb_close(db);
        db = tdb_open(&o, dir);
        cf = kv_default_cf(db);
        tdb_expect(db, NULL, cf, "flushed", next);
        tdb_expect(db, NULL, cf, "walonly", next);
        if (round % 2)
            tdb_expect_missing(db, NULL, cf, "deleted");
        else
            tdb_expect(db, NULL, cf, "deleted", next);
        tdb_close(db);
    }
    kv_test_cleanup_dir(dir);
}

/* Child processes are this executable run again with a mode argument
 * (fork + exec), so they start with no threads and a clean engine. */
static int run_child(const char *mode, const char *dir, char *out, size_t out_size)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    assert_true(n > 0);
    self[n] = '\0';
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(self, self, mode, dir, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t got = 0;
    while (got + 1 < out_size && (n = read(fds[0], out + got, out_size - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status)) {
        fprintf(stderr, "child %s died (status %d); output: %s\n", mode, status, out);
        fail();
    }
    return WEXITSTATUS(status);
}

/* Child: opens dir and creates family "a"; 0, or the child's exit code. */
static int child_open(const char *dir, kv_db **db, kv_cf **a)
{
    kv_options o = create_options();
    if (kv_open(&o, dir, db) != 0) {
        printf("child: kv_open: %s\n", kv_errmsg());
        return 2;
    }
    return kv_create_cf(*db, "a", a) != 0 ? 3 : 0;
}

/* Child: writes, then exits without kv_close (like kill -9). */
static int child_write_and_exit(const char *dir)
{
    kv_db *db = NULL;
    kv_cf *a = NULL;
    int rc = child_open(dir, &db, &a);
    if (rc != 0)
        return rc;
    for (int i = 0; i < 500; i++) {
        char key[16], value[32];
        key_name(key, sizeof(key), i);
        snprintf(value, sizeof(value), "c-%d", i);
        if (kv_put(db, NULL, i % 2 ? a : kv_default_cf(db), key, strlen(key), value,
                   strlen(value)) != 0)
            return 4;
        if (i == 250 && kv_flush(db, NULL, true) != 0)
            return 5;
    }
    if (kv_delete_range(db, NULL, a, "k0100", 5, "k0200", 5) != 0)
        return 6;
    fflush(stdout);
    _exit(0); /* no kv_close */
}

/* Child: synced puts into the default family in two WALs (family "a" is
 * flushed in between, which switches to a new WAL while the first still
 * holds the default family's writes), then exits without kv_close. Synced
 * writes zero space ahead of themselves (kv_writable_prezero), so the
 * current WAL ends in zeros; the first one had them cut at the switch. */
static int child_sync_writes_and_exit(const char *dir)
{
    kv_db *db = NULL;
    kv_cf *a = NULL;
    int rc = child_open(dir, &db, &a);
    if (rc != 0)
        return rc;
    kv_write_options wo = {.sync = true};
    for (int i = 0; i < 200; i++) {
        char key[16], value[32];
        key_name(key, sizeof(key), i);
        snprintf(value, sizeof(value), "s-%d", i);
        if (kv_put(db, &wo, kv_default_cf(db), key, strlen(key), value, strlen(value)) != 0)
            return 4;
        if (i == 99 && (kv_put(db, &wo, a, "x", 1, "y", 1) != 0 || kv_flush(db, a, true) != 0))
            return 5;
    }
    fflush(stdout);
    _exit(0); /* no kv_close */
}

/* Child: tries to open a database another process holds; prints the status
 * and the message. */
static int child_try_open(const char *dir)
{
    kv_options o = create_options();
    kv_db *db = NULL;
    int rc = kv_open(&o, dir, &db);
    printf("%d %s", rc, rc == 0 ? "opened" : kv_errmsg());
    if (rc == 0)
        kv_close(db);
    return 0;
}

/* A process that dies without kv_close (kill -9) loses nothing it was
 * answered: the WAL is in the kernel's page cache. */
static void test_survives_exit_without_close(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-exit-without-close");
    kv_options o = create_options();
    char out[1024];
    int rc = run_child("--child-write-and-exit", dir, out, sizeof(out));
    if (rc != 0) {
        fprintf(stderr, "writer child failed with %d: %s\n", rc, out);
        fail();
    }
    kv_db *db = tdb_open(&o, dir);
    kv_cf *a = kv_get_cf(db, "a");
    assert_non_null(a);
    for (int i = 0; i < 500; i++) {
        char key[16], value[32];
        key_name(key, sizeof(key), i);
        snprintf(value, sizeof(value), "c-%d", i);
        kv_cf *cf = i % 2 ? a : kv_default_cf(db);
        if (cf == a && i >= 100 && i < 200)
            tdb_expect_missing(db, NULL, cf, key);
        else
            tdb_expect(db, NULL, cf, key, value);
    }
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

/* WALs that end in zeros written ahead of synced writes: each is replayed
 * to its last record and the zeros are cut, and a WAL followed by others is
 * not taken for one torn by a power cut (which would drop the later ones:
 * here, the second half of the writes). The older WAL gets its zeros back
 * by hand: what a power cut before the cut at the switch was synced
 * leaves. */
static void test_wals_ending_in_zeros(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-wal-zeros");
    kv_options o = create_options();
    char out[1024];
    int rc = run_child("--child-sync-writes-and-exit", dir, out, sizeof(out));
    if (rc != 0) {
        fprintf(stderr, "writer child failed with %d: %s\n", rc, out);
        fail();
    }
    assert_int_equal(tdb_count_files(dir, ".log"), 2);
    char *newest = tdb_newest_file(dir, ".log");
    size_t len;
    char *contents = tdb_read_file(newest, &len);
    assert_true(len > 4096);
    for (size_t i = len - 4096; i < len; i++)
        assert_int_equal(contents[i], 0);
    free(contents);
    /* The other WAL: the one numbered lower. */
    char *older = NULL;
    DIR *listing = opendir(dir);
    assert_non_null(listing);
    for (struct dirent *d; (d = readdir(listing)) != NULL;) {
        size_t n = strlen(d->d_name);
        if (n > 4 && strcmp(d->d_name + n - 4, ".log") == 0 &&
            strcmp(d->d_name, tdb_basename(newest)) != 0)
            older = subdir(dir, d->d_name);
    }
    closedir(listing);
    assert_non_null(older);
    contents = tdb_read_file(older, &len);
    assert_true(len > 0 && contents[len - 1] != 0); /* cut at the switch */
    contents = realloc(contents, len + 65536);
    assert_non_null(contents);
    memset(contents + len, 0, 65536);
    tdb_write_file(older, contents, len + 65536);
    free(contents);
    free(older);
    free(newest);

    kv_db *db = tdb_open(&o, dir);
    for (int i = 0; i < 200; i++) {
        char key[16], value[32];
        key_name(key, sizeof(key), i);
        snprintf(value, sizeof(value), "s-%d", i);
        tdb_expect(db, NULL, kv_default_cf(db), key, value);
    }
    tdb_expect(db, NULL, kv_get_cf(db, "a"), "x", "y");
    tdb_close(db);
    char *log_path = subdir(dir, "LOG");
    char *log = tdb_read_file(log_path, &len);
    if (strstr(log, "bytes of zeros after the last record") == NULL || strstr(log, "torn") != NULL)
        fail_msg("LOG does not show the zeros cut (or shows a torn WAL):\n%s", log);
    free(log);
    free(log_path);
    kv_test_cleanup_dir(dir);
}

/* ---- properties and statistics ---- */

static void test_properties(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-properties");
    kv_options o = create_options();
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db), *other = NULL;
    assert_int_equal(kv_create_cf(db, "other", &other), 0);

    assert_int_equal(tdb_property_u64(db, cf, "kv.num-files-at-level0"), 0);
    assert_int_equal(tdb_property_u64(db, cf, "kv.total-sst-files-size"), 0);
    put_range(db, cf, 0, 100, "p");
    assert_int_equal(tdb_property_u64(db, cf, "kv.num-entries-active-mem-table"), 100);
    assert_true(tdb_property_u64(db, cf, "kv.cur-size-active-mem-table") > 100 * 10);
    assert_int_equal(tdb_property_u64(db, other, "kv.num-entries-active-mem-table"), 0);

    assert_int_equal(kv_flush(db, cf, true), 0);
    assert_int_equal(tdb_property_u64(db, cf, "kv.num-files-at-level0"), 1);
    assert_int_equal(tdb_property_u64(db, cf, "kv.num-immutable-mem-table"), 0);
    assert_int_equal(tdb_property_u64(db, cf, "kv.num-entries-active-mem-table"), 0);
    char *sst = tdb_newest_file(dir, ".sst");
    assert_non_null(sst);
    assert_int_equal(tdb_property_u64(db, cf, "kv.total-sst-files-size"), tdb_file_size(sst));
    free(sst);
    assert_int_equal(tdb_property_u64(db, other, "kv.num-files-at-level0"), 0);

    put_range(db, cf, 100, 200, "p");
    assert_int_equal(kv_flush(db, cf, true), 0);
    assert_int_equal(tdb_property_u64(db, cf, "kv.num-files-at-level0"), 2);
    for (int level = 1; level <= 6; level++) {
        char name[32];
        snprintf(name, sizeof(name), "kv.num-files-at-level%d", level);
        assert_int_equal(tdb_property_u64(db, cf, name), 0);
    }

    char *value = NULL;
    assert_int_equal(kv_get_property(db, cf, "kv.stats", &value), 0);
    assert_non_null(value);
    assert_true(strlen(value) > 0);
    printf("kv.stats:\n%s\n", value);
    kv_free(value);

    value = NULL;
    expect_status("unknown property", kv_get_property(db, cf, "kv.no-such-property", &value),
                  KV_NOT_FOUND);
    expect_status("level 7", kv_get_property(db, cf, "kv.num-files-at-level7", &value),
                  KV_NOT_FOUND);
    expect_status("empty name", kv_get_property(db, cf, "", &value), KV_NOT_FOUND);
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

static void test_stats(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-stats");
    kv_options o = create_options();
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    kv_stats s0, s1;
    kv_get_stats(db, &s0);
    assert_int_equal(s0.keys_written, 0);
    assert_int_equal(s0.gets, 0);
    assert_int_equal(s0.flushes, 0);

    put_range(db, cf, 0, 50, "s"); /* 50 x (5-byte key + 4..5-byte value) */
    kv_write_batch *b = kv_write_batch_create();
    kv_write_batch_put(b, cf, "b1", 2, "x", 1);
    kv_write_batch_put(b, cf, "b2", 2, "x", 1);
    assert_int_equal(kv_write(db, NULL, b), 0);
    kv_write_batch_destroy(b);
    kv_write_options wo = {.sync = true};
    assert_int_equal(kv_put(db, &wo, cf, "sync", 4, "y", 1), 0);
    for (int i = 0; i < 10; i++) {
        char key[16];
        key_name(key, sizeof(key), i * 10); /* hits: i*10 < 50 */
        char *v;
        size_t len;
        int rc = kv_get(db, NULL, cf, key, strlen(key), &v, &len);
        if (rc == 0)
            kv_free(v);
    }
    kv_get_stats(db, &s1);
    assert_int_equal(s1.keys_written, 50 + 2 + 1);
    assert_true(s1.bytes_written >= 50 * 8);
    assert_true(s1.wal_writes >= 1 && s1.wal_writes <= 52);
    assert_true(s1.wal_bytes >= s1.bytes_written);
    assert_true(s1.wal_syncs >= 1);
    assert_int_equal(s1.gets, 10);
    assert_int_equal(s1.get_hits, 5);
    assert_int_equal(s1.flushes, 0);

    assert_int_equal(kv_flush(db, NULL, true), 0);
    kv_get_stats(db, &s1);
    assert_int_equal(s1.flushes, 1);
    assert_true(s1.flush_bytes_in > 0);
    assert_true(s1.flush_bytes_out > 0);
    assert_true(s1.sst_bytes_written >= s1.flush_bytes_out);
    assert_int_equal(s1.compactions, 0);

    /* Reads from the SST go through the block cache. */
    for (int i = 0; i < 20; i++) {
        char *v;
        size_t len;
        assert_int_equal(kv_get(db, NULL, cf, "k0001", 5, &v, &len), 0);
        kv_free(v);
    }
    kv_get_stats(db, &s1);
    assert_true(s1.block_cache_hits + s1.block_cache_misses > 0);
    assert_true(s1.block_cache_hits > 0);
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

/* ---- the LOCK ---- */

static void test_lock_refuses_second_open(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-lock");
    kv_options o = create_options();
    kv_db *db = tdb_open(&o, dir);
    tdb_put(db, kv_default_cf(db), "a", "1");
    char msg[1100];
    assert_int_equal(run_child("--child-try-open", dir, msg, sizeof(msg)), 0);
    int rc = atoi(msg);
    printf("second process: %s\n", msg);
    if (rc != KV_BUSY || strstr(msg, "LOCK") == NULL) {
        fprintf(stderr,
                "second kv_open from another process: want KV_BUSY and a message naming "
                "LOCK, got: %s\n",
                msg);
        fail();
    }

    /* The same process opening it twice is refused as well. */
    kv_db *db2 = NULL;
    rc = kv_open(&o, dir, &db2);
    if (rc == KV_OK)
        kv_close(db2);
    expect_status("second kv_open in the same process", rc, KV_BUSY);
    tdb_expect(db, NULL, kv_default_cf(db), "a", "1"); /* unharmed */
    tdb_close(db);

    /* Released at close, for this process and for others. */
    assert_int_equal(run_child("--child-try-open", dir, msg, sizeof(msg)), 0);
    if (atoi(msg) != 0) {
        fprintf(stderr, "open by another process after kv_close: %s\n", msg);
        fail();
    }
    db = tdb_open(&o, dir);
    tdb_expect(db, NULL, kv_default_cf(db), "a", "1");
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

/* ---- damaged files ---- */

static void write_values(kv_db *db, kv_cf *cf, int n, size_t value_size, uint64_t id_base)
{
    char *value = malloc(value_size);
    for (int i = 0; i < n; i++) {
        char key[16];
        snprintf(key, sizeof(key), "key%06d", i);
        tdb_fill_value(id_base + (uint64_t)i, value, value_size);
        assert_int_equal(kv_put(db, NULL, cf, key, strlen(key), value, value_size), 0);
    }
    free(value);
}

static void test_wal_corruption_in_middle(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-wal-corrupt");
    kv_options o = create_options();
    kv_db *db = tdb_open(&o, dir);
    write_values(db, kv_default_cf(db), 300, 1000, 0);
    tdb_close(db);

    char *log = tdb_newest_file(dir, ".log");
    if (log == NULL || tdb_file_size(log) < 200000) {
        fprintf(stderr, "expected the 300 KB of writes in the WAL after kv_close (the header "
                        "says memtable contents stay in the WAL)\n");
        fail();
    }
    uint64_t offset = 3 * 32768 + 1000; /* inside block 3, far from the tail */
    tdb_flip_byte(log, offset);

    int rc = kv_open(&o, dir, &db);
    if (rc == KV_OK)
        kv_close(db);
    expect_status("open with a damaged WAL record", rc, KV_CORRUPTION);
    printf("damaged WAL: %s\n", kv_errmsg());
    expect_message_contains("damaged WAL", tdb_basename(log));
    expect_message_contains("damaged WAL", "offset");
    free(log);
    kv_test_cleanup_dir(dir);
}

static void test_wal_truncated_last_record(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-wal-torn");
    kv_options o = create_options();
    kv_db *db = tdb_open(&o, dir);
    kv_cf *x = NULL;
    assert_int_equal(kv_create_cf(db, "x", &x), 0);
    kv_cf *def = kv_default_cf(db);
    for (int i = 0; i < 50; i++) {
        char key[16], value[32];
        snprintf(key, sizeof(key), "p%02d", i);
        snprintf(value, sizeof(value), "val-%d", i);
        tdb_put(db, i % 2 ? x : def, key, value);
    }
    char *log = tdb_newest_file(dir, ".log");
    assert_non_null(log);
    uint64_t before = tdb_file_size(log); /* answered writes are in the kernel */
    kv_write_batch *b = kv_write_batch_create();
    char big[3000];
    tdb_fill_value(7, big, sizeof(big));
    kv_write_batch_put(b, def, "last", 4, big, sizeof(big));
    kv_write_batch_put(b, x, "lastx", 5, "y", 1);
    kv_write_batch_delete(b, def, "p00", 3);
    assert_int_equal(kv_write(db, NULL, b), 0);
    kv_write_batch_destroy(b);
    uint64_t after = tdb_file_size(log);
    assert_true(after > before + 3000);
    tdb_close(db);
    char *newest = tdb_newest_file(dir, ".log");
    assert_string_equal(newest, log);
    free(newest);

    /* A crash in the middle of the append: half of the last record. */
    tdb_truncate(log, before + (after - before) / 2);
    db = tdb_open(&o, dir);
    def = kv_default_cf(db);
    x = kv_get_cf(db, "x");
    assert_non_null(x);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 50; i++) {
            char key[16], value[32];
            snprintf(key, sizeof(key), "p%02d", i);
            snprintf(value, sizeof(value), "val-%d", i);
            tdb_expect(db, NULL, i % 2 ? x : def, key, value);
        }
        tdb_expect_missing(db, NULL, def, "last"); /* the batch is all or nothing */
        tdb_expect_missing(db, NULL, x, "lastx");
        if (round == 0) {
            /* New writes after recovery must not land behind the torn bytes
             * in a way that makes the next open fail. */
            tdb_put(db, def, "after", "recovery");
            tdb_close(db);
            db = tdb_open(&o, dir);
            def = kv_default_cf(db);
            x = kv_get_cf(db, "x");
            tdb_expect(db, NULL, def, "after", "recovery");
        }
    }
    tdb_close(db);
    free(log);
    kv_test_cleanup_dir(dir);
}

static void test_current_points_to_missing_manifest(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-bad-current");
    kv_options o = create_options();
    kv_db *db = tdb_open(&o, dir);
    tdb_put(db, kv_default_cf(db), "a", "1");
    assert_int_equal(kv_flush(db, NULL, true), 0);
    tdb_close(db);

    char *current = subdir(dir, "CURRENT");
    size_t len;
    char *saved = tdb_read_file(current, &len);
    assert_true(strncmp(saved, "MANIFEST-", 9) == 0);
    const char *bogus = "MANIFEST-000777\n";
    tdb_write_file(current, bogus, strlen(bogus));
    int rc = kv_open(&o, dir, &db);
    if (rc == KV_OK)
        kv_close(db);
    expect_status("CURRENT naming a missing MANIFEST", rc, KV_CORRUPTION);
    printf("missing manifest: %s\n", kv_errmsg());
    expect_message_contains("CURRENT naming a missing MANIFEST", "MANIFEST-000777");

    /* Garbage in CURRENT. */
    tdb_write_file(current, "hello", 5);
    rc = kv_open(&o, dir, &db);
    if (rc == KV_OK)
        kv_close(db);
    expect_status("garbage CURRENT", rc, KV_CORRUPTION);
    printf("garbage CURRENT: %s\n", kv_errmsg());
    expect_message_contains("garbage CURRENT", "CURRENT");

    /* Restored, the database opens with its data. */
    tdb_write_file(current, saved, len);
    db = tdb_open(&o, dir);
    tdb_expect(db, NULL, kv_default_cf(db), "a", "1");
    tdb_close(db);
    free(saved);
    free(current);
    kv_test_cleanup_dir(dir);
}

static void test_sst_corruption_detected(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-sst-corrupt");
    kv_options o = create_options();
    o.cf.compression = KV_COMPRESSION_NONE; /* so offsets map to keys */
    enum { N = 2000, VALUE = 100 };
    kv_db *db = tdb_open(&o, dir);
    write_values(db, kv_default_cf(db), N, VALUE, 0);
    assert_int_equal(kv_flush(db, NULL, true), 0);
    tdb_close(db);
    assert_int_equal(tdb_count_files(dir, ".sst"), 1);
    char *sst = tdb_newest_file(dir, ".sst");
    assert_true(tdb_file_size(sst) > N * VALUE);
    /* The first data block starts at offset 0 and holds the smallest ~35
     * keys (4 KiB / ~110 bytes); byte 1000 is inside it. */
    tdb_flip_byte(sst, 1000);

    db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    char value[VALUE];
    int corrupt = 0;
    for (int i = 0; i < N; i++) {
        char key[16];
        snprintf(key, sizeof(key), "key%06d", i);
        char *got = NULL;
        size_t len = 0;
        int rc = kv_get(db, NULL, cf, key, strlen(key), &got, &len);
        if (i < 20) {
            /* In the damaged block: an error, never data or "not found". */
            if (rc != KV_CORRUPTION) {
                fprintf(stderr, "%s in the damaged block: want KV_CORRUPTION, got %s\n", key,
                        kv_strerror(rc));
                if (rc == KV_OK)
                    kv_free(got);
                fail();
            }
            if (corrupt++ == 0) {
                printf("damaged SST block: %s\n", kv_errmsg());
                expect_message_contains("damaged SST block", tdb_basename(sst));
            }
            continue;
        }
        if (rc == KV_CORRUPTION && i < 60)
            continue; /* the damaged block may hold a few more keys */
        if (rc != KV_OK) {
            fprintf(stderr, "%s outside the damaged block: %s: %s\n", key, kv_strerror(rc),
                    kv_errmsg());
            fail();
        }
        tdb_fill_value((uint64_t)i, value, VALUE);
        if (len != VALUE || memcmp(got, value, VALUE) != 0) {
            fprintf(stderr, "%s: wrong data returned\n", key);
            fail();
        }
        kv_free(got);
    }

    /* An iterator over the damaged block stops with KV_CORRUPTION. */
    kv_iterator *it = kv_iterator_create(db, NULL, cf);
    kv_iterator_seek_to_first(it);
    assert_false(kv_iterator_valid(it));
    expect_status("iterator status at the damaged block", kv_iterator_status(it), KV_CORRUPTION);
    kv_iterator_destroy(it);
    /* ... and one that starts past it reads to the end. */
    it = kv_iterator_create(db, NULL, cf);
    kv_iterator_seek(it, "key001000", 9);
    int count = 0;
    for (; kv_iterator_valid(it); kv_iterator_next(it))
        count++;
    assert_int_equal(kv_iterator_status(it), 0);
    assert_int_equal(count, N - 1000);
    kv_iterator_destroy(it);
    tdb_close(db);
    free(sst);
    kv_test_cleanup_dir(dir);
}

/* ---- memtable switches and write stalls ---- */

static void test_tiny_write_buffer_stalls_and_resumes(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-stall");
    kv_options o = create_options();
    o.cf.write_buffer_size = 64 << 10;
    o.cf.max_write_buffer_number = 2;
    enum { VALUE = 1024 };
    const int n = 50 * 1024; /* 50 MiB of values */
    tdb_watchdog(300, "writing 50 MiB through a 64 KiB write buffer");
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    char value[VALUE];
    for (int i = 0; i < n; i++) {
        char key[16];
        snprintf(key, sizeof(key), "s%010d", i); /* ascending: cheap compactions */
        tdb_fill_value((uint64_t)i, value, VALUE);
        int rc = kv_put(db, NULL, cf, key, strlen(key), value, VALUE);
        if (rc != 0) {
            fprintf(stderr, "put %d: %s: %s\n", i, kv_strerror(rc), kv_errmsg());
            fail();
        }
    }
    kv_stats s;
    kv_get_stats(db, &s);
    printf("50 MiB: flushes %llu, compactions %llu, stall_micros %llu, stops %llu, slowdowns "
           "%llu\n",
           (unsigned long long)s.flushes, (unsigned long long)s.compactions,
           (unsigned long long)s.stall_micros, (unsigned long long)s.stall_stops,
           (unsigned long long)s.stall_slowdowns);
    assert_true(s.flushes >= 100); /* ~800 memtables of 64 KiB */
    assert_int_equal(s.keys_written, (uint64_t)n);

    tdb_watchdog(300, "reading back 50 MiB");
    for (int i = 0; i < n; i++) {
        char key[16];
        snprintf(key, sizeof(key), "s%010d", i);
        tdb_fill_value((uint64_t)i, value, VALUE);
        tdb_expect_bytes(db, NULL, cf, key, strlen(key), value, VALUE);
    }
    tdb_close(db);
    db = tdb_open(&o, dir);
    cf = kv_default_cf(db);
    for (int i = 0; i < n; i += 97) {
        char key[16];
        snprintf(key, sizeof(key), "s%010d", i);
        tdb_fill_value((uint64_t)i, value, VALUE);
        tdb_expect_bytes(db, NULL, cf, key, strlen(key), value, VALUE);
    }
    tdb_close(db);
    tdb_watchdog(0, NULL);
    kv_test_cleanup_dir(dir);
}

/* Files moved down a level by a trivial move stay readable after later
 * compactions delete obsolete files, and after reopen (a moved file once
 * got deleted while the new version still used it). */
static void test_trivially_moved_files_survive(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-trivial-move");
    kv_options o;
    kv_options_init(&o);
    o.create_if_missing = true;
    o.cf.write_buffer_size = 64 << 10;
    o.cf.level0_file_num_compaction_trigger = 1;
    o.cf.max_bytes_for_level_base = 128 << 10;
    o.cf.target_file_size_base = 64 << 10;
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    char key[32], value[512];
    const int n = 6000;
    /* Ascending keys: each flushed file overlaps nothing below it. */
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "key%08d", i);
        tdb_fill_value((uint64_t)i, value, sizeof(value) - 1);
        value[sizeof(value) - 1] = '\0';
        tdb_put(db, cf, key, value);
        if (i % 500 == 499)
            assert_int_equal(kv_flush(db, cf, true), KV_OK);
    }
    assert_int_equal(kv_compact_range(db, cf, NULL, 0, NULL, 0), KV_OK);
    kv_stats st;
    kv_get_stats(db, &st);
    assert_true(st.trivial_moves > 0);
    assert_true(st.compactions > 0);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n; i++) {
            snprintf(key, sizeof(key), "key%08d", i);
            tdb_fill_value((uint64_t)i, value, sizeof(value) - 1);
            value[sizeof(value) - 1] = '\0';
            tdb_expect(db, NULL, cf, key, value);
        }
        tdb_close(db);
        db = tdb_open(&o, dir);
        cf = kv_default_cf(db);
    }
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--child-write-and-exit") == 0)
        return child_write_and_exit(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--child-sync-writes-and-exit") == 0)
        return child_sync_writes_and_exit(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--child-try-open") == 0)
        return child_try_open(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_defaults),
        cmocka_unit_test(test_invalid_options),
        cmocka_unit_test(test_open_missing_without_create),
        cmocka_unit_test(test_error_if_exists),
        cmocka_unit_test(test_foreign_directory_refused),
        cmocka_unit_test(test_destroy),
        cmocka_unit_test(test_put_get_delete_overwrite),
        cmocka_unit_test(test_empty_values),
        cmocka_unit_test(test_empty_key),
        cmocka_unit_test(test_large_values),
        cmocka_unit_test(test_delete_range),
        cmocka_unit_test(test_write_batch_across_families),
        cmocka_unit_test(test_column_families),
        cmocka_unit_test(test_iterators_layered),
        cmocka_unit_test(test_iterator_consistent_during_writes),
        cmocka_unit_test(test_snapshots),
        cmocka_unit_test(test_family_snapshots),
        cmocka_unit_test(test_flush_then_reopen),
        cmocka_unit_test(test_reopen_keeps_newest),
        cmocka_unit_test(test_survives_exit_without_close),
        cmocka_unit_test(test_wals_ending_in_zeros),
        cmocka_unit_test(test_properties),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_lock_refuses_second_open),
        cmocka_unit_test(test_wal_corruption_in_middle),
        cmocka_unit_test(test_wal_truncated_last_record),
        cmocka_unit_test(test_current_points_to_missing_manifest),
        cmocka_unit_test(test_sst_corruption_detected),
        cmocka_unit_test(test_tiny_write_buffer_stalls_and_resumes),
        cmocka_unit_test(test_trivially_moved_files_survive),
        cmocka_unit_test(test_cf_overrides),
        cmocka_unit_test(test_wal_hole_drops_later_wals),
        cmocka_unit_test(test_rarely_written_family_does_not_pin_wals),
        cmocka_unit_test(test_delete_files_in_range),
        cmocka_unit_test(test_delete_files_in_range_during_compactions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
