/*
 * test_db_concurrent.c — the engine under concurrent use: writer threads
 * with disjoint keys, readers using gets, snapshots and iterators, and a
 * thread that keeps flushing, all over a tiny write buffer so memtable
 * switches, flushes and compactions run underneath. Checks that every
 * acknowledged write is visible (while running and at the end), that no
 * reader ever sees part of a batch, and that concurrent sync writes share
 * WAL syncs (group commit).
 *
 * Worker threads never call cmocka asserts (not thread-safe): they record
 * the first failure, and the main thread fails the test with it.
 */
#include "testutil_db.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { WRITERS = 4, READERS = 2, MAX_VALUE = 400 };

typedef struct shared {
    kv_db *db;
    kv_cf *def, *c1, *c2;
    int keys_per_writer;
    atomic_bool done;
    atomic_long progress[WRITERS]; /* highest key index acknowledged, -1: none */
    atomic_long counter[WRITERS];  /* last acknowledged counter batch */
    atomic_int failed;
    char failure[1024];
    pthread_mutex_t failure_mu;
    atomic_long reads, snapshot_checks, iterator_checks, flushes;
} shared;

static void report(shared *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(shared *s, const char *fmt, ...)
{
    pthread_mutex_lock(&s->failure_mu);
    if (!atomic_load(&s->failed)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->failure, sizeof(s->failure), fmt, ap);
        va_end(ap);
        atomic_store(&s->failed, 1);
    }
    pthread_mutex_unlock(&s->failure_mu);
}

static uint64_t value_id(int writer, long i)
{
    return (uint64_t)writer * 10000000u + (uint64_t)i + 1;
}

static size_t value_len(uint64_t id)
{
    return 20 + (size_t)((id * 2654435761u) % (MAX_VALUE - 20));
}

static void key_of(int writer, long i, char *buf, size_t n)
{
    snprintf(buf, n, "w%d-%07ld", writer, i);
}

/* Keys with i % 10 == 4 are deleted once key i + 5 is written. */
static bool deleted_later(long i)
{
    return i % 10 == 4;
}

/* ---- writers ---- */

typedef struct writer_arg {
    shared *s;
    int id;
} writer_arg;

static int write_counter_batch(shared *s, int w, long c)
{
    /* The same counter under three keys of one family and in three
     * families: a reader must see all of them equal. */
    char value[32], key[32];
    snprintf(value, sizeof(value), "%ld", c);
    kv_write_batch *b = kv_write_batch_create();
    kv_cf *fams[3] = {s->def, s->c1, s->c2};
    for (int f = 0; f < 3; f++) {
        snprintf(key, sizeof(key), "ctr%d", w);
        kv_write_batch_put(b, fams[f], key, strlen(key), value, strlen(value));
    }
    for (int part = 0; part < 3; part++) {
        snprintf(key, sizeof(key), "ctr%d-%c", w, 'a' + part);
        kv_write_batch_put(b, s->def, key, strlen(key), value, strlen(value));
    }
    int rc = kv_write(s->db, NULL, b);
    kv_write_batch_destroy(b);
    return rc;
}

static void *writer_main(void *p)
{
    writer_arg *a = p;
    shared *s = a->s;
    char value[MAX_VALUE];
    for (long i = 0; i < s->keys_per_writer && !atomic_load(&s->failed); i++) {
        char key[32];
        key_of(a->id, i, key, sizeof(key));
        uint64_t id = value_id(a->id, i);
        tdb_fill_value(id, value, value_len(id));
        kv_write_options wo = {.sync = i % 50 == 0};
        int rc = kv_put(s->db, &wo, s->def, key, strlen(key), value, value_len(id));
        if (rc != KV_OK) {
            report(s, "writer %d: put %s: %s: %s", a->id, key, kv_strerror(rc), kv_errmsg());
            break;
        }
        if (i >= 5 && deleted_later(i - 5)) {
            key_of(a->id, i - 5, key, sizeof(key));
            rc = kv_delete(s->db, NULL, s->def, key, strlen(key));
            if (rc != KV_OK) {
                report(s, "writer %d: delete %s: %s: %s", a->id, key, kv_strerror(rc), kv_errmsg());
                break;
            }
        }
        atomic_store(&s->progress[a->id], i);
        if (i % 5 == 0) {
            long c = atomic_load(&s->counter[a->id]) + 1;
            rc = write_counter_batch(s, a->id, c);
            if (rc != KV_OK) {
                report(s, "writer %d: counter batch: %s: %s", a->id, kv_strerror(rc), kv_errmsg());
                break;
            }
            atomic_store(&s->counter[a->id], c);
        }
    }
    return NULL;
}

/* ---- readers ---- */

typedef struct reader_arg {
    shared *s;
    uint64_t seed;
} reader_arg;

/* Reads a counter value; -1 when absent, -2 on error (reported). */
static long read_counter(shared *s, const kv_read_options *ro, kv_cf *cf, const char *key)
{
    char *v = NULL;
    size_t len = 0;
    int rc = kv_get(s->db, ro, cf, key, strlen(key), &v, &len);
    if (rc == KV_NOT_FOUND)
        return -1;
    if (rc != KV_OK) {
        report(s, "reader: get %s: %s: %s", key, kv_strerror(rc), kv_errmsg());
        return -2;
    }
    char buf[32];
    size_t n = len < sizeof(buf) - 1 ? len : sizeof(buf) - 1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    kv_free(v);
    return atol(buf);
}

static void check_counters_at_snapshot(shared *s, int w)
{
    long before = atomic_load(&s->counter[w]);
    const kv_snapshot *snap = kv_snapshot_create(s->db);
    kv_read_options ro;
    kv_read_options_init(&ro);
    ro.snapshot = snap;
    char key[32];
    long values[6];
    snprintf(key, sizeof(key), "ctr%d", w);
    values[0] = read_counter(s, &ro, s->def, key);
    values[1] = read_counter(s, &ro, s->c1, key);
    values[2] = read_counter(s, &ro, s->c2, key);
    for (int part = 0; part < 3; part++) {
        snprintf(key, sizeof(key), "ctr%d-%c", w, 'a' + part);
        values[3 + part] = read_counter(s, &ro, s->def, key);
    }
    kv_snapshot_release(s->db, snap);
    for (int i = 1; i < 6; i++)
        if (values[i] != values[0])
            report(s,
                   "torn batch of writer %d at a snapshot: ctr in default/c1/c2 = %ld/%ld/%ld, "
                   "ctr-a/b/c = %ld/%ld/%ld",
                   w, values[0], values[1], values[2], values[3], values[4], values[5]);
    if (values[0] < before && before > 0)
        report(s, "writer %d's counter went back: acknowledged %ld, a later snapshot sees %ld", w,
               before, values[0]);
    atomic_fetch_add(&s->snapshot_checks, 1);
}

static void check_counters_with_iterator(shared *s, int w)
{
    /* An iterator without a snapshot still sees one state. */
    kv_iterator *it = kv_iterator_create(s->db, NULL, s->def);
    char key[32];
    snprintf(key, sizeof(key), "ctr%d-a", w);
    kv_iterator_seek(it, key, strlen(key));
    long values[3] = {-1, -1, -1};
    for (int part = 0; part < 3 && kv_iterator_valid(it); part++) {
        size_t klen, vlen;
        const char *k = kv_iterator_key(it, &klen);
        snprintf(key, sizeof(key), "ctr%d-%c", w, 'a' + part);
        if (klen != strlen(key) || memcmp(k, key, klen) != 0)
            break;
        const char *v = kv_iterator_value(it, &vlen);
        char buf[32];
        size_t n = vlen < sizeof(buf) - 1 ? vlen : sizeof(buf) - 1;
        memcpy(buf, v, n);
        buf[n] = '\0';
        values[part] = atol(buf);
        kv_iterator_next(it);
    }
    if (kv_iterator_status(it) != 0)
        report(s, "reader: iterator: %s: %s", kv_strerror(kv_iterator_status(it)), kv_errmsg());
    kv_iterator_destroy(it);
    if (values[0] != values[1] || values[1] != values[2])
        report(s, "torn batch of writer %d through an iterator: ctr-a/b/c = %ld/%ld/%ld", w,
               values[0], values[1], values[2]);
    atomic_fetch_add(&s->iterator_checks, 1);
}

static void check_acknowledged_key(shared *s, kv_test_rng *rng)
{
    int w = (int)kv_test_rng_uniform(rng, WRITERS);
    long p = atomic_load(&s->progress[w]);
    if (p < 0)
        return;
    long i = (long)kv_test_rng_uniform(rng, (uint64_t)p + 1);
    if (deleted_later(i))
        return;
    char key[32], want[MAX_VALUE];
    key_of(w, i, key, sizeof(key));
    uint64_t id = value_id(w, i);
    tdb_fill_value(id, want, value_len(id));
    char *v = NULL;
    size_t len = 0;
    int rc = kv_get(s->db, NULL, s->def, key, strlen(key), &v, &len);
    if (rc != KV_OK)
        report(s, "reader: acknowledged key %s: %s: %s", key, kv_strerror(rc), kv_errmsg());
    else if (len != value_len(id) || memcmp(v, want, len) != 0)
        report(s, "reader: acknowledged key %s has a wrong value (%zu bytes)", key, len);
    if (rc == KV_OK)
        kv_free(v);
    atomic_fetch_add(&s->reads, 1);
}

/* A full scan of a writer's keys: sorted, no duplicates, values intact. */
static void scan_writer_keys(shared *s, int w)
{
    long p = atomic_load(&s->progress[w]);
    kv_iterator *it = kv_iterator_create(s->db, NULL, s->def);
    char prefix[16], last[32] = "", want[MAX_VALUE];
    snprintf(prefix, sizeof(prefix), "w%d-", w);
    long seen = 0;
    for (kv_iterator_seek(it, prefix, strlen(prefix)); kv_iterator_valid(it);
         kv_iterator_next(it)) {
        size_t klen, vlen;
        const char *k = kv_iterator_key(it, &klen);
        if (klen < strlen(prefix) || memcmp(k, prefix, strlen(prefix)) != 0)
            break;
        char key[32];
        snprintf(key, sizeof(key), "%.*s", (int)klen, k);
        if (strcmp(key, last) <= 0) {
            report(s, "scan: %s after %s", key, last);
            break;
        }
        strcpy(last, key);
        long i = atol(key + strlen(prefix));
        uint64_t id = value_id(w, i);
        const char *v = kv_iterator_value(it, &vlen);
        tdb_fill_value(id, want, value_len(id));
        if (vlen != value_len(id) || memcmp(v, want, vlen) != 0) {
            report(s, "scan: %s has a wrong value", key);
            break;
        }
        if (!deleted_later(i) && i <= p)
            seen++;
    }
    if (kv_iterator_status(it) != 0)
        report(s, "scan: iterator: %s: %s", kv_strerror(kv_iterator_status(it)), kv_errmsg());
    kv_iterator_destroy(it);
    long want_seen = 0;
    for (long i = 0; i <= p; i++)
        want_seen += !deleted_later(i);
    if (seen != want_seen)
        report(s, "scan of writer %d: %ld surviving keys up to %ld, want %ld", w, seen, p,
               want_seen);
}

static void *reader_main(void *p)
{
    reader_arg *a = p;
    shared *s = a->s;
    kv_test_rng rng;
    kv_test_rng_init(&rng, a->seed);
    while (!atomic_load(&s->done) && !atomic_load(&s->failed)) {
        uint64_t pick = kv_test_rng_uniform(&rng, 100);
        int w = (int)kv_test_rng_uniform(&rng, WRITERS);
        if (pick < 30)
            check_counters_at_snapshot(s, w);
        else if (pick < 50)
            check_counters_with_iterator(s, w);
        else if (pick < 99)
            check_acknowledged_key(s, &rng);
        else
            scan_writer_keys(s, w);
    }
    return NULL;
}

static void *flusher_main(void *p)
{
    shared *s = p;
    kv_test_rng rng;
    kv_test_rng_init(&rng, 99);
    while (!atomic_load(&s->done) && !atomic_load(&s->failed)) {
        int rc = kv_flush(s->db, NULL, kv_test_rng_uniform(&rng, 2) == 0);
        if (rc != KV_OK)
            report(s, "flusher: kv_flush: %s: %s", kv_strerror(rc), kv_errmsg());
        atomic_fetch_add(&s->flushes, 1);
        usleep(2000);
    }
    return NULL;
}

static void check_final_state(shared *s, kv_db *db)
{
    kv_cf *def = kv_default_cf(db);
    char want[MAX_VALUE];
    for (int w = 0; w < WRITERS; w++) {
        for (long i = 0; i < s->keys_per_writer; i++) {
            char key[32];
            key_of(w, i, key, sizeof(key));
            if (deleted_later(i) && i + 5 < s->keys_per_writer) {
                tdb_expect_missing(db, NULL, def, key);
                continue;
            }
            uint64_t id = value_id(w, i);
            tdb_fill_value(id, want, value_len(id));
            tdb_expect_bytes(db, NULL, def, key, strlen(key), want, value_len(id));
        }
        char ctr[16], value[32];
        snprintf(ctr, sizeof(ctr), "ctr%d", w);
        snprintf(value, sizeof(value), "%ld", atomic_load(&s->counter[w]));
        tdb_expect(db, NULL, def, ctr, value);
        tdb_expect(db, NULL, kv_get_cf(db, "c1"), ctr, value);
        tdb_expect(db, NULL, kv_get_cf(db, "c2"), ctr, value);
    }
}

static void test_writers_readers_flusher(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-concurrent");
    kv_options o;
    kv_options_init(&o);
    o.create_if_missing = true;
    o.cf.write_buffer_size = 64 << 10;
    shared *s = calloc(1, sizeof(*s));
    pthread_mutex_init(&s->failure_mu, NULL);
    s->keys_per_writer = kv_test_long_mode() ? 100000 : 15000;
    for (int w = 0; w < WRITERS; w++)
        atomic_store(&s->progress[w], -1);
    tdb_watchdog(kv_test_long_mode() ? 0 : 240, "concurrent writers, readers and flusher");
    s->db = tdb_open(&o, dir);
    s->def = kv_default_cf(s->db);
    assert_int_equal(kv_create_cf(s->db, "c1", &s->c1), 0);
    assert_int_equal(kv_create_cf(s->db, "c2", &s->c2), 0);

    pthread_t writers[WRITERS], readers[READERS], flusher;
    writer_arg wargs[WRITERS];
    reader_arg rargs[READERS];
    for (int i = 0; i < READERS; i++) {
        rargs[i] = (reader_arg){s, kv_test_seed(1000) + (uint64_t)i};
        assert_int_equal(pthread_create(&readers[i], NULL, reader_main, &rargs[i]), 0);
    }
    assert_int_equal(pthread_create(&flusher, NULL, flusher_main, s), 0);
    for (int i = 0; i < WRITERS; i++) {
        wargs[i] = (writer_arg){s, i};
        assert_int_equal(pthread_create(&writers[i], NULL, writer_main, &wargs[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(writers[i], NULL);
    atomic_store(&s->done, true);
    for (int i = 0; i < READERS; i++)
        pthread_join(readers[i], NULL);
    pthread_join(flusher, NULL);
    if (atomic_load(&s->failed))
        fail_msg("%s", s->failure);

    /* One more round of every reader check, quiet now. */
    for (int w = 0; w < WRITERS; w++) {
        check_counters_at_snapshot(s, w);
        check_counters_with_iterator(s, w);
        scan_writer_keys(s, w);
    }
    if (atomic_load(&s->failed))
        fail_msg("%s", s->failure);

    kv_stats st;
    kv_get_stats(s->db, &st);
    printf("concurrent: %ld reads, %ld snapshot checks, %ld iterator checks, %ld flush calls; "
           "engine: %" PRIu64 " flushes, %" PRIu64 " compactions, %" PRIu64
           " write groups of %" PRIu64 " writes, %" PRIu64 " us stalled\n",
           atomic_load(&s->reads), atomic_load(&s->snapshot_checks),
           atomic_load(&s->iterator_checks), atomic_load(&s->flushes), st.flushes, st.compactions,
           st.write_groups, st.grouped_writes, st.stall_micros);
    assert_true(st.flushes > 10);
    assert_true(atomic_load(&s->snapshot_checks) > 0);
    check_final_state(s, s->db);
    tdb_close(s->db);

    s->db = tdb_open(&o, dir);
    check_final_state(s, s->db);
    tdb_close(s->db);
    tdb_watchdog(0, NULL);
    pthread_mutex_destroy(&s->failure_mu);
    free(s);
    kv_test_cleanup_dir(dir);
}

/* ---- group commit ---- */

enum { SYNC_THREADS = 8, SYNC_WRITES = 100 };

typedef struct sync_arg {
    shared *s;
    int id;
} sync_arg;

static void *sync_writer_main(void *p)
{
    sync_arg *a = p;
    kv_write_options wo = {.sync = true};
    for (int i = 0; i < SYNC_WRITES && !atomic_load(&a->s->failed); i++) {
        char key[32], value[32];
        snprintf(key, sizeof(key), "sync%d-%04d", a->id, i);
        snprintf(value, sizeof(value), "v%d", i);
        int rc =
            kv_put(a->s->db, &wo, kv_default_cf(a->s->db), key, strlen(key), value, strlen(value));
        if (rc != KV_OK)
            report(a->s, "sync writer %d: %s: %s", a->id, kv_strerror(rc), kv_errmsg());
    }
    return NULL;
}

static void test_group_commit(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-group-commit");
    kv_options o;
    kv_options_init(&o);
    o.create_if_missing = true;
    shared *s = calloc(1, sizeof(*s));
    pthread_mutex_init(&s->failure_mu, NULL);
    tdb_watchdog(240, "group commit");
    s->db = tdb_open(&o, dir);
    kv_stats before;
    kv_get_stats(s->db, &before);
    pthread_t threads[SYNC_THREADS];
    sync_arg args[SYNC_THREADS];
    for (int i = 0; i < SYNC_THREADS; i++) {
        args[i] = (sync_arg){s, i};
        assert_int_equal(pthread_create(&threads[i], NULL, sync_writer_main, &args[i]), 0);
    }
    for (int i = 0; i < SYNC_THREADS; i++)
        pthread_join(threads[i], NULL);
    if (atomic_load(&s->failed))
        fail_msg("%s", s->failure);
    kv_stats st;
    kv_get_stats(s->db, &st);
    uint64_t groups = st.write_groups - before.write_groups;
    uint64_t grouped = st.grouped_writes - before.grouped_writes;
    uint64_t syncs = st.wal_syncs - before.wal_syncs;
    printf("group commit: %d sync writes in %" PRIu64 " groups (%" PRIu64
           " grouped writes), %" PRIu64 " WAL syncs\n",
           SYNC_THREADS * SYNC_WRITES, groups, grouped, syncs);
    assert_int_equal(grouped, SYNC_THREADS * SYNC_WRITES);
    if (!(grouped > groups)) {
        fprintf(stderr, "no group commit: %" PRIu64 " writes in %" PRIu64 " groups\n", grouped,
                groups);
        fail();
    }
    /* One sync per group, not per write. */
    assert_true(syncs <= groups);
    assert_true(syncs < (uint64_t)(SYNC_THREADS * SYNC_WRITES));
    tdb_close(s->db);

    s->db = tdb_open(&o, dir);
    for (int t = 0; t < SYNC_THREADS; t++)
        for (int i = 0; i < SYNC_WRITES; i++) {
            char key[32], value[32];
            snprintf(key, sizeof(key), "sync%d-%04d", t, i);
            snprintf(value, sizeof(value), "v%d", i);
            tdb_expect(s->db, NULL, kv_default_cf(s->db), key, value);
        }
    tdb_close(s->db);
    tdb_watchdog(0, NULL);
    pthread_mutex_destroy(&s->failure_mu);
    free(s);
    kv_test_cleanup_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writers_readers_flusher),
        cmocka_unit_test(test_group_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
