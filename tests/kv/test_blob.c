/*
 * test_blob.c — key-value separation (kv/blob.h): values written to blob
 * files and found through blob indexes, by gets and iterators in both
 * directions, across flushes, compactions and reopening; the threshold
 * options; blob files deleted once nothing refers to them; damaged and
 * missing blob files reported; values lost in a power cut ending the WAL.
 */
#include "testutil_db.h"

#include "blob.h"
#include "db_impl.h"
#include "env_fault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { VALUE_SIZE = 3000, NUM_KEYS = 400 };

static kv_options blob_options(void)
{
    kv_options o;
    kv_options_init(&o);
    o.create_if_missing = true;
    o.cf.blob_min_size = 1024;
    o.blob_min_batch_bytes = 0;
    o.blob_file_size = 1u << 20;
    o.cf.write_buffer_size = 256u << 10;
    return o;
}

static void key_of(int i, char *key, size_t n)
{
    snprintf(key, n, "key%06d", i);
}

/* Value of key i in generation g: VALUE_SIZE bytes, or 100 when small. */
static size_t fill(int i, int g, bool small, char *out)
{
    size_t len = small ? 100 : VALUE_SIZE;
    tdb_fill_value((uint64_t)i * 1000 + (uint64_t)g, out, len);
    return len;
}

/* Puts the large value of key i in generation g; the status. */
static int put_one(kv_db *db, const kv_write_options *wo, int i, int g)
{
    char key[32], value[VALUE_SIZE];
    key_of(i, key, sizeof(key));
    fill(i, g, false, value);
    return kv_put(db, wo, kv_default_cf(db), key, strlen(key), value, VALUE_SIZE);
}

static void put_all(kv_db *db, int g, bool small)
{
    char key[32], value[VALUE_SIZE];
    for (int i = 0; i < NUM_KEYS; i++) {
        key_of(i, key, sizeof(key));
        size_t len = fill(i, g, small && i % 2 == 0, value);
        assert_int_equal(kv_put(db, NULL, kv_default_cf(db), key, strlen(key), value, len), 0);
    }
}

static void expect_all(kv_db *db, int g, bool small)
{
    char key[32], value[VALUE_SIZE];
    for (int i = 0; i < NUM_KEYS; i++) {
        key_of(i, key, sizeof(key));
        size_t len = fill(i, g, small && i % 2 == 0, value);
        tdb_expect_bytes(db, NULL, kv_default_cf(db), key, strlen(key), value, len);
    }
    /* Forward and backward through an iterator. */
    kv_iterator *it = kv_iterator_create(db, NULL, kv_default_cf(db));
    int i = 0;
    for (kv_iterator_seek_to_first(it); kv_iterator_valid(it); kv_iterator_next(it), i++) {
        size_t got_len;
        const char *got = kv_iterator_value(it, &got_len);
        assert_non_null(got);
        size_t len = fill(i, g, small && i % 2 == 0, value);
        assert_int_equal(got_len, len);
        assert_memory_equal(got, value, len);
    }
    assert_int_equal(kv_iterator_status(it), 0);
    assert_int_equal(i, NUM_KEYS);
    for (kv_iterator_seek_to_last(it); kv_iterator_valid(it); kv_iterator_prev(it)) {
        i--;
        size_t got_len;
        const char *got = kv_iterator_value(it, &got_len);
        assert_non_null(got);
        size_t len = fill(i, g, small && i % 2 == 0, value);
        assert_int_equal(got_len, len);
        assert_memory_equal(got, value, len);
    }
    assert_int_equal(i, 0);
    assert_int_equal(kv_iterator_status(it), 0);
    kv_iterator_destroy(it);
}

/* Large values go to blob files, small ones stay in the tree; both read
 * back from memtables, after a flush, after a compaction, after reopening
 * (WAL replay and tables). */
static void test_round_trip(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("blob-round-trip");
    kv_options o = blob_options();
    kv_db *db = tdb_open(&o, dir);
    put_all(db, 1, true);
    assert_true(tdb_count_files(dir, ".blob") >= 1);
    /* The WAL holds indexes, not the large values. */
    char *wal = tdb_newest_file(dir, ".log");
    uint64_t wal_bytes = tdb_file_size(wal);
    free(wal);
    assert_true(wal_bytes < (uint64_t)NUM_KEYS / 2 * VALUE_SIZE / 4);
    expect_all(db, 1, true);
    tdb_close(db);

    db = tdb_open(&o, dir); /* replays the WAL */
    expect_all(db, 1, true);
    assert_int_equal(kv_flush(db, NULL, true), 0);
    expect_all(db, 1, true);
    assert_int_equal(kv_compact_range(db, kv_default_cf(db), NULL, 0, NULL, 0), 0);
    expect_all(db, 1, true);
    tdb_close(db);
    db = tdb_open(&o, dir); /* tables with blob links */
    expect_all(db, 1, true);
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

/* A write group whose large values add up to less than
 * blob_min_batch_bytes keeps them in the tree; families without
 * blob_min_size never separate. */
static void test_thresholds(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("blob-thresholds");
    kv_options o = blob_options();
    o.blob_min_batch_bytes = 2 * VALUE_SIZE;
    kv_db *db = tdb_open(&o, dir);
    char value[VALUE_SIZE];
    fill(1, 1, false, value);
    assert_int_equal(kv_put(db, NULL, kv_default_cf(db), "one", 3, value, VALUE_SIZE), 0);
    assert_int_equal(tdb_count_files(dir, ".blob"), 0);
    kv_write_batch *batch = kv_write_batch_create();
    kv_write_batch_put(batch, kv_default_cf(db), "two", 3, value, VALUE_SIZE);
    kv_write_batch_put(batch, kv_default_cf(db), "three", 5, value, VALUE_SIZE);
    assert_int_equal(kv_write(db, NULL, batch), 0);
    kv_write_batch_destroy(batch);
    assert_int_equal(tdb_count_files(dir, ".blob"), 1);
    tdb_expect_bytes(db, NULL, kv_default_cf(db), "one", 3, value, VALUE_SIZE);
    tdb_expect_bytes(db, NULL, kv_default_cf(db), "three", 5, value, VALUE_SIZE);
    tdb_close(db);
    kv_test_cleanup_dir(dir);

    dir = kv_test_tmpdir("blob-thresholds-off");
    o = blob_options();
    o.cf.blob_min_size = 0;
    db = tdb_open(&o, dir);
    put_all(db, 1, false);
    expect_all(db, 1, false);
    assert_int_equal(tdb_count_files(dir, ".blob"), 0);
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

/* A batch kept in the tree writes no blob file, whatever its values, and
 * reads back from the memtable, the tables and after reopening; clearing
 * the batch drops the mark. */
static void test_keep_in_tree(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("blob-keep-in-tree");
    kv_options o = blob_options();
    kv_db *db = tdb_open(&o, dir);
    char key[32], value[VALUE_SIZE];
    kv_write_batch *batch = kv_write_batch_create();
    kv_write_batch_keep_in_tree(batch);
    for (int i = 0; i < NUM_KEYS; i++) {
        key_of(i, key, sizeof(key));
        fill(i, 1, false, value);
        kv_write_batch_put(batch, kv_default_cf(db), key, strlen(key), value, VALUE_SIZE);
    }
    assert_int_equal(kv_write(db, NULL, batch), 0);
    assert_int_equal(tdb_count_files(dir, ".blob"), 0);
    expect_all(db, 1, false);
    assert_int_equal(kv_flush(db, NULL, true), 0);
    expect_all(db, 1, false);
    tdb_close(db);
    db = tdb_open(&o, dir);
    expect_all(db, 1, false);
    assert_int_equal(tdb_count_files(dir, ".blob"), 0);

    kv_write_batch_clear(batch);
    key_of(0, key, sizeof(key));
    fill(0, 2, false, value);
    kv_write_batch_put(batch, kv_default_cf(db), key, strlen(key), value, VALUE_SIZE);
    assert_int_equal(kv_write(db, NULL, batch), 0);
    assert_int_equal(tdb_count_files(dir, ".blob"), 1);
    tdb_expect_bytes(db, NULL, kv_default_cf(db), key, strlen(key), value, VALUE_SIZE);
    kv_write_batch_destroy(batch);
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

/* Blob files whose values were all overwritten or deleted are deleted once
 * the tables and memtables that pointed into them are gone; an iterator
 * opened before keeps them readable until it is destroyed. */
static void test_garbage_files_deleted(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("blob-garbage");
    kv_options o = blob_options();
    kv_db *db = tdb_open(&o, dir);
    put_all(db, 1, false);
    int first_files = tdb_count_files(dir, ".blob");
    assert_true(first_files >= 2); /* 1.2 MB of values, 1 MiB files */
    kv_iterator *old = kv_iterator_create(db, NULL, kv_default_cf(db));
    put_all(db, 2, false); /* every value overwritten */
    assert_int_equal(kv_flush(db, NULL, true), 0);
    assert_int_equal(kv_compact_range(db, kv_default_cf(db), NULL, 0, NULL, 0), 0);
    /* The old iterator still reads generation 1. */
    char value[VALUE_SIZE];
    int i = 0;
    for (kv_iterator_seek_to_first(old); kv_iterator_valid(old); kv_iterator_next(old), i++) {
        size_t len;
        const char *got = kv_iterator_value(old, &len);
        assert_non_null(got);
        fill(i, 1, false, value);
        assert_int_equal(len, VALUE_SIZE);
        assert_memory_equal(got, value, VALUE_SIZE);
    }
    assert_int_equal(i, NUM_KEYS);
    kv_iterator_destroy(old);
    /* The next deletion pass (after a flush) removes the files of
     * generation 1, all but the one the writer may still append to. */
    put_all(db, 3, false);
    assert_int_equal(kv_flush(db, NULL, true), 0);
    assert_int_equal(kv_compact_range(db, kv_default_cf(db), NULL, 0, NULL, 0), 0);
    expect_all(db, 3, false);
    uint64_t deleted = atomic_load(&db->stats.blob_files_deleted);
    assert_true(deleted >= (uint64_t)first_files - 1);
    int files_now = tdb_count_files(dir, ".blob");
    assert_true(files_now <= 2 * first_files + 1);
    tdb_close(db);

    /* Deleting every key: after compaction only the writer's file may be
     * left, and reopening (which starts no writer) leaves none. */
    db = tdb_open(&o, dir);
    assert_int_equal(kv_delete_range(db, NULL, kv_default_cf(db), "key", 3, "kez", 3), 0);
    assert_int_equal(kv_flush(db, NULL, true), 0);
    assert_int_equal(kv_compact_range(db, kv_default_cf(db), NULL, 0, NULL, 0), 0);
    tdb_close(db);
    db = tdb_open(&o, dir);
    tdb_close(db);
    assert_int_equal(tdb_count_files(dir, ".blob"), 0);
    kv_test_cleanup_dir(dir);
}

/* A blob file mostly garbage has its live values moved to a new file by a
 * background compaction of the tables pointing into it, and is deleted. */
static void test_garbage_collection(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("blob-gc");
    kv_options o = blob_options();
    kv_db *db = tdb_open(&o, dir);
    put_all(db, 1, false); /* about 1.2 MB: the first file fills up */
    assert_int_equal(kv_compact_range(db, kv_default_cf(db), NULL, 0, NULL, 0), 0);
    char *first = NULL;
    {
        /* The oldest blob file: the smallest number. */
        uint64_t smallest = UINT64_MAX;
        for (int n = 1; n < 100; n++) {
            char path[64];
            snprintf(path, sizeof(path), "%06d.blob", n);
            char *full = kv_sprintf("%s/%s", dir, path);
            FILE *f = fopen(full, "r");
            if (f != NULL && smallest == UINT64_MAX) {
                smallest = (uint64_t)n;
                first = full;
            } else {
                free(full);
            }
            if (f != NULL)
                fclose(f);
        }
        assert_non_null(first);
    }
    /* Overwrite 3 keys in 4: most of the first file becomes garbage. */
    char key[32], value[VALUE_SIZE];
    for (int i = 0; i < NUM_KEYS; i++) {
        if (i % 4 == 3)
            continue;
        assert_int_equal(put_one(db, NULL, i, 2), 0);
    }
    assert_int_equal(kv_compact_range(db, kv_default_cf(db), NULL, 0, NULL, 0), 0);
    /* The background thread collects it. */
    for (int i = 0; i < 200 && atomic_load(&db->stats.blob_gc_runs) == 0; i++)
        usleep(50000);
    assert_true(atomic_load(&db->stats.blob_gc_runs) > 0);
    assert_true(atomic_load(&db->stats.blob_gc_bytes_relocated) > 0);
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(first, "r");
        if (f == NULL)
            break;
        fclose(f);
        usleep(50000);
    }
    FILE *still = fopen(first, "r");
    assert_null(still);
    for (int i = 0; i < NUM_KEYS; i++) {
        key_of(i, key, sizeof(key));
        fill(i, i % 4 == 3 ? 1 : 2, false, value);
        tdb_expect_bytes(db, NULL, kv_default_cf(db), key, strlen(key), value, VALUE_SIZE);
    }
    tdb_close(db);
    db = tdb_open(&o, dir);
    for (int i = 0; i < NUM_KEYS; i++) {
        key_of(i, key, sizeof(key));
        fill(i, i % 4 == 3 ? 1 : 2, false, value);
        tdb_expect_bytes(db, NULL, kv_default_cf(db), key, strlen(key), value, VALUE_SIZE);
    }
    tdb_close(db);
    free(first);
    kv_test_cleanup_dir(dir);
}

/* A damaged value is KV_CORRUPTION naming the blob file, for a get and
 * for an iterator; a missing blob file that a table points to refuses the
 * open with a message naming it. */
static void test_damage(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("blob-damage");
    kv_options o = blob_options();
    kv_db *db = tdb_open(&o, dir);
    put_all(db, 1, false);
    assert_int_equal(kv_flush(db, NULL, true), 0);
    tdb_close(db);
    char *blob = tdb_newest_file(dir, ".blob");
    assert_non_null(blob);
    tdb_flip_byte(blob, KV_BLOB_HEADER_SIZE + 100); /* inside the first record */
    db = tdb_open(&o, dir);
    int bad = 0;
    char key[32];
    for (int i = 0; i < NUM_KEYS; i++) {
        key_of(i, key, sizeof(key));
        char *value;
        size_t len;
        int rc = kv_get(db, NULL, kv_default_cf(db), key, strlen(key), &value, &len);
        if (rc == KV_OK) {
            kv_free(value);
            continue;
        }
        assert_int_equal(rc, KV_CORRUPTION);
        assert_non_null(strstr(kv_errmsg(), tdb_basename(blob)));
        assert_non_null(strstr(kv_errmsg(), "checksum mismatch"));
        bad++;
    }
    assert_int_equal(bad, 1);
    kv_iterator *it = kv_iterator_create(db, NULL, kv_default_cf(db));
    bool failed = false;
    for (kv_iterator_seek_to_first(it); kv_iterator_valid(it); kv_iterator_next(it)) {
        size_t len;
        if (kv_iterator_value(it, &len) == NULL) {
            failed = true;
            break;
        }
    }
    assert_true(failed);
    assert_false(kv_iterator_valid(it));
    assert_int_equal(kv_iterator_status(it), KV_CORRUPTION);
    kv_iterator_destroy(it);
    tdb_close(db);

    remove(blob);
    kv_db *none = NULL;
    assert_int_equal(kv_open(&o, dir, &none), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), tdb_basename(blob)));
    assert_non_null(strstr(kv_errmsg(), "missing"));
    free(blob);
    kv_test_cleanup_dir(dir);
}

/* Under a simulated power cut: synced values survive; a WAL record whose
 * blob value did not reach the disk ends the replay there (a prefix of the
 * writes), and the open succeeds. */
static void test_power_cut(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("blob-power-cut");
    kv_env *env = kv_env_fault_create();
    kv_options o = blob_options();
    o.env = env;
    kv_db *db = tdb_open(&o, dir);
    char key[32], value[VALUE_SIZE];
    kv_write_options sync = {.sync = true};
    for (int i = 0; i < 50; i++) {
        assert_int_equal(put_one(db, &sync, i, 1), 0);
    }
    for (int i = 50; i < 100; i++) { /* not synced */
        assert_int_equal(put_one(db, NULL, i, 1), 0);
    }
    /* The WAL reaches the disk, the blob file's tail does not: the worst
     * order a power cut can leave. */
    char *wal = tdb_newest_file(dir, ".log");
    assert_int_equal(kv_env_sync_file(env, wal), 0);
    free(wal);
    kv_env_fault_set_filesystem_active(env, false);
    kv_close(db);
    assert_int_equal(kv_env_fault_power_cut(env), 0);
    kv_env_fault_set_filesystem_active(env, true);

    db = tdb_open(&o, dir);
    int present = 0;
    for (int i = 0; i < 100; i++) {
        key_of(i, key, sizeof(key));
        fill(i, 1, false, value);
        char *got;
        size_t len;
        int rc = kv_get(db, NULL, kv_default_cf(db), key, strlen(key), &got, &len);
        if (i < 50 || rc == KV_OK) {
            assert_int_equal(rc, KV_OK);
            assert_int_equal(len, VALUE_SIZE);
            assert_memory_equal(got, value, VALUE_SIZE);
            kv_free(got);
            assert_int_equal(present, i); /* a prefix */
            present++;
        } else {
            assert_int_equal(rc, KV_NOT_FOUND);
        }
    }
    assert_true(present >= 50 && present < 100);
    tdb_close(db);
    kv_env_fault_destroy(env);
    kv_test_cleanup_dir(dir);
}

/* A WAL kept for one family holds blob indexes of another family that
 * were flushed and whose blob file is gone since: replaying skips them and
 * must not take them for values lost in a power cut (which would end the
 * WAL before the first family's writes). */
static void test_skipped_entries_not_checked(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("blob-skipped");
    kv_options o = blob_options();
    kv_db *db = tdb_open(&o, dir);
    kv_cf *a;
    assert_int_equal(kv_create_cf(db, "a", &a), 0);
    char key[32], value[VALUE_SIZE];
    for (int i = 0; i < 100; i++) { /* a's values, in the first blob file */
        key_of(i, key, sizeof(key));
        fill(i, 1, false, value);
        assert_int_equal(kv_put(db, NULL, a, key, strlen(key), value, VALUE_SIZE), 0);
    }
    tdb_put(db, kv_default_cf(db), "after", "the blob writes"); /* same WAL */
    char *first_blob = tdb_newest_file(dir, ".blob");
    assert_int_equal(kv_flush(db, a, true), 0);
    /* Overwrite a's keys until the first blob file is garbage and gone. */
    for (int g = 2; g < 6; g++) {
        for (int i = 0; i < 100; i++) {
            key_of(i, key, sizeof(key));
            fill(i, g, false, value);
            assert_int_equal(kv_put(db, NULL, a, key, strlen(key), value, VALUE_SIZE), 0);
        }
        assert_int_equal(kv_flush(db, a, true), 0);
        assert_int_equal(kv_compact_range(db, a, NULL, 0, NULL, 0), 0);
    }
    FILE *gone = fopen(first_blob, "r");
    assert_null(gone);
    tdb_close(db);
    db = tdb_open(&o, dir);
    tdb_expect(db, NULL, kv_default_cf(db), "after", "the blob writes");
    a = kv_get_cf(db, "a");
    for (int i = 0; i < 100; i++) {
        key_of(i, key, sizeof(key));
        fill(i, 5, false, value);
        tdb_expect_bytes(db, NULL, a, key, strlen(key), value, VALUE_SIZE);
    }
    tdb_close(db);
    free(first_blob);
    kv_test_cleanup_dir(dir);
}

/* Recovery with a smaller write buffer: the replayed memtables fill in the
 * middle of the WAL. Once they are flushed, no entry of that WAL may be
 * replayed again: here its values' blob file is collected meanwhile, and a
 * second replay would find them gone, end the WAL there and drop the WAL
 * written after it (key "later"). */
static void test_replay_after_collected(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("blob-replay-twice");
    kv_options o = blob_options();
    o.cf.write_buffer_size = 4u << 20;
    kv_db *db = tdb_open(&o, dir);
    char key[32], value[VALUE_SIZE];
    /* One write group: every key twice (half of the first blob file is
     * garbage once flushed), then a second group in the next blob file. */
    kv_write_batch *batch = kv_write_batch_create();
    for (int round = 1; round <= 2; round++) {
        for (int i = 0; i < NUM_KEYS; i++) {
            key_of(i, key, sizeof(key));
            fill(i, round, false, value);
            kv_write_batch_put(batch, kv_default_cf(db), key, strlen(key), value, VALUE_SIZE);
        }
    }
    assert_int_equal(kv_write(db, NULL, batch), 0);
    kv_write_batch_clear(batch);
    for (int i = 0; i < 20; i++) {
        key_of(NUM_KEYS + i, key, sizeof(key));
        fill(NUM_KEYS + i, 1, false, value);
        kv_write_batch_put(batch, kv_default_cf(db), key, strlen(key), value, VALUE_SIZE);
    }
    assert_int_equal(kv_write(db, NULL, batch), 0);
    kv_write_batch_destroy(batch);
    assert_int_equal(tdb_count_files(dir, ".blob"), 2);
    tdb_close(db);

    o.cf.write_buffer_size = 16u << 10; /* the first group fills a memtable */
    db = tdb_open(&o, dir);
    for (int i = 0; i < 200 && atomic_load(&db->stats.blob_gc_runs) == 0; i++)
        usleep(50000);
    assert_true(atomic_load(&db->stats.blob_gc_runs) > 0);
    tdb_put(db, kv_default_cf(db), "later", "in the next WAL");
    tdb_close(db);

    db = tdb_open(&o, dir);
    tdb_expect(db, NULL, kv_default_cf(db), "later", "in the next WAL");
    for (int i = 0; i < NUM_KEYS + 20; i++) {
        key_of(i, key, sizeof(key));
        fill(i, i < NUM_KEYS ? 2 : 1, false, value);
        tdb_expect_bytes(db, NULL, kv_default_cf(db), key, strlen(key), value, VALUE_SIZE);
    }
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

/* kv_verify_checksums reads every record of every blob file: damage in a
 * record no index points to any more is found too, while reads succeed. */
static void test_verify_checksums(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("blob-verify");
    kv_options o = blob_options();
    o.blob_file_size = 64u << 20; /* one file */
    kv_db *db = tdb_open(&o, dir);
    put_all(db, 1, false);
    assert_int_equal(kv_verify_checksums(db, NULL, NULL), 0);
    /* A third of the keys again: their first records are garbage (too
     * little for garbage collection to move the rest). */
    char key[32], value[VALUE_SIZE];
    for (int i = 0; i < NUM_KEYS / 3; i++) {
        assert_int_equal(put_one(db, NULL, i, 2), 0);
    }
    assert_int_equal(kv_flush(db, NULL, true), 0);
    tdb_close(db);
    char *blob = tdb_newest_file(dir, ".blob");
    tdb_flip_byte(blob, KV_BLOB_HEADER_SIZE + 200); /* the first record: key 0, generation 1 */
    db = tdb_open(&o, dir);
    for (int i = 0; i < NUM_KEYS; i++) {
        key_of(i, key, sizeof(key));
        fill(i, i < NUM_KEYS / 3 ? 2 : 1, false, value);
        tdb_expect_bytes(db, NULL, kv_default_cf(db), key, strlen(key), value, VALUE_SIZE);
    }
    assert_int_equal(kv_verify_checksums(db, NULL, NULL), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), tdb_basename(blob)));
    tdb_close(db);
    free(blob);
    kv_test_cleanup_dir(dir);
}

/* A full disk during a blob append fails that write only; the file is
 * left as it is (closed) and the next write starts a new one; everything
 * acknowledged reads back, before and after reopening. */
static void test_append_fails_for_space(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("blob-no-space");
    kv_env *env = kv_env_fault_create();
    kv_options o = blob_options();
    o.env = env;
    kv_db *db = tdb_open(&o, dir);
    char key[32], value[VALUE_SIZE];
    for (int i = 0; i < 10; i++) {
        assert_int_equal(put_one(db, NULL, i, 1), 0);
    }
    kv_env_fault_set_space_budget(env, 1000);
    assert_int_equal(put_one(db, NULL, 10, 1), KV_NO_SPACE);
    kv_env_fault_set_space_budget(env, UINT64_MAX);
    for (int i = 10; i < 20; i++) {
        assert_int_equal(put_one(db, NULL, i, 1), 0);
    }
    assert_int_equal(tdb_count_files(dir, ".blob"), 2);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 20; i++) {
            key_of(i, key, sizeof(key));
            fill(i, 1, false, value);
            tdb_expect_bytes(db, NULL, kv_default_cf(db), key, strlen(key), value, VALUE_SIZE);
        }
        tdb_close(db);
        if (round == 0)
            db = tdb_open(&o, dir);
    }
    kv_env_fault_destroy(env);
    kv_test_cleanup_dir(dir);
}

/* Users cannot write blob indexes themselves. */
static void test_batch_with_index_refused(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("blob-refused");
    kv_options o = blob_options();
    kv_db *db = tdb_open(&o, dir);
    kv_write_batch *batch = kv_write_batch_create();
    kv_buf index = {0};
    kv_blob_ref ref = {7, KV_BLOB_HEADER_SIZE, 100};
    kv_blob_ref_encode(&ref, &index);
    kv_write_batch_put_blob_index_cf_id(batch, 0, kv_slice_from_str("k"), kv_buf_slice(&index));
    assert_int_equal(kv_write(db, NULL, batch), KV_INVALID_ARGUMENT);
    kv_buf_free(&index);
    kv_write_batch_destroy(batch);
    tdb_expect_missing(db, NULL, kv_default_cf(db), "k");
    tdb_close(db);
    kv_test_cleanup_dir(dir);
}

/* Records and indexes: round trips, and every damage detected. */
static void test_record_format(void **state)
{
    (void)state;
    kv_buf record = {0};
    size_t size =
        kv_blob_record_append(&record, kv_slice_from_str("key"), kv_slice_from_str("the value"));
    assert_int_equal(size, record.size);
    kv_slice value;
    assert_int_equal(
        kv_blob_record_parse(kv_buf_slice(&record), kv_slice_from_str("key"), "f", 16, &value), 0);
    assert_true(kv_slice_equal(value, kv_slice_from_str("the value")));
    assert_int_equal(
        kv_blob_record_parse(kv_buf_slice(&record), kv_slice_from_str("kez"), "f", 16, &value),
        KV_CORRUPTION);
    for (size_t i = 0; i < record.size; i++) {
        record.data[i] ^= 0x20;
        assert_int_equal(
            kv_blob_record_parse(kv_buf_slice(&record), kv_slice_from_str("key"), "f", 16, &value),
            KV_CORRUPTION);
        record.data[i] ^= 0x20;
    }
    kv_buf_free(&record);

    kv_blob_ref ref = {123456789, 1ull << 40, 70000}, back;
    kv_buf index = {0};
    kv_blob_ref_encode(&ref, &index);
    assert_true(kv_blob_ref_decode(kv_buf_slice(&index), &back));
    assert_int_equal(back.file, ref.file);
    assert_int_equal(back.offset, ref.offset);
    assert_int_equal(back.size, ref.size);
    assert_false(kv_blob_ref_decode(kv_slice_make(index.data, index.size - 1), &back));
    kv_buf_append_byte(&index, 0);
    assert_false(kv_blob_ref_decode(kv_buf_slice(&index), &back));
    kv_buf_free(&index);

    char header[KV_BLOB_HEADER_SIZE];
    kv_blob_header_encode(header);
    assert_int_equal(kv_blob_header_check(kv_slice_make(header, sizeof(header)), "f"), 0);
    header[8] = 9; /* a newer version */
    assert_int_equal(kv_blob_header_check(kv_slice_make(header, sizeof(header)), "f"),
                     KV_NOT_SUPPORTED);
    header[0] = 'X';
    assert_int_equal(kv_blob_header_check(kv_slice_make(header, sizeof(header)), "f"),
                     KV_CORRUPTION);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_format),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_thresholds),
        cmocka_unit_test(test_keep_in_tree),
        cmocka_unit_test(test_garbage_files_deleted),
        cmocka_unit_test(test_garbage_collection),
        cmocka_unit_test(test_damage),
        cmocka_unit_test(test_power_cut),
        cmocka_unit_test(test_skipped_entries_not_checked),
        cmocka_unit_test(test_verify_checksums),
        cmocka_unit_test(test_replay_after_collected),
        cmocka_unit_test(test_append_fails_for_space),
        cmocka_unit_test(test_batch_with_index_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
