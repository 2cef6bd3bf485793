/*
 * test_db_fault.c — the engine under simulated power cuts and a full disk,
 * through the fault-injecting env (env_fault.h).
 *
 * Power cut: each cycle opens the database, writes at random (some writes
 * with sync, some kv_sync_wal calls, some kv_compact_range calls, flushes
 * and compactions running in the background because the write buffer and
 * the levels are tiny, MANIFEST rewrites because its size limit is too),
 * kills the file system at a random moment, closes (errors allowed), drops
 * everything that was not synced, and reopens. The reopened state must equal the state after some
 * prefix of the acknowledged operations, and that prefix must include every operation that was made
 * durable (a sync write, or anything before a successful kv_sync_wal).
 *
 * Full disk: writes past a space budget fail with KV_NO_SPACE, what was
 * acknowledged stays readable, and writes resume when space returns.
 */
#include "testutil_db.h"

#include "db_impl.h"
#include "env_fault.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { NUM_CF = 2, NUM_KEYS = 256, MAX_VALUE = 8 + 6000 };

static const char *const cf_names[NUM_CF] = {"default", "a"};

/* KV_TEST_VERBOSE=1 traces every operation of the power-cut cycles. */
static bool verbose(void)
{
    const char *v = getenv("KV_TEST_VERBOSE");
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void trace(const char *fmt, ...)
{
    if (!verbose())
        return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

static void expect_status_fault(const char *what, int rc, int expected)
{
    if (rc != expected) {
        fprintf(stderr, "%s: expected %s, got %s: %s\n", what, kv_strerror(expected),
                kv_strerror(rc), kv_errmsg());
        fail();
    }
}

/* ---- values: the first 8 bytes carry the id, the rest follows from it ---- */

static size_t value_len(uint64_t id)
{
    uint64_t h = id * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    if (h % 50 == 0)
        return MAX_VALUE;
    return 8 + (h >> 8) % 1500;
}

static void make_value(uint64_t id, char *out)
{
    size_t len = value_len(id);
    memcpy(out, &id, 8);
    tdb_fill_value(id, out + 8, len - 8);
}

/* The id of a stored value, or 0 if the bytes are not a value we wrote. */
static uint64_t decode_value(const char *v, size_t len, char *scratch)
{
    if (len < 8)
        return 0;
    uint64_t id;
    memcpy(&id, v, 8);
    if (id == 0 || value_len(id) != len)
        return 0;
    make_value(id, scratch);
    return memcmp(scratch, v, len) == 0 ? id : 0;
}

static void key_of(int k, char *buf, size_t n)
{
    snprintf(buf, n, "key%04d", k);
}

/* ---- the operation log ---- */

enum sub_kind { SUB_PUT, SUB_DELETE, SUB_RANGE };

typedef struct sub_op {
    uint8_t kind, cf;
    uint16_t k, end; /* SUB_RANGE: keys [k, end) */
    uint64_t id;     /* SUB_PUT */
} sub_op;

typedef struct logged_op {
    size_t first_sub, num_sub;
} logged_op;

typedef struct op_log {
    sub_op *subs;
    size_t num_subs, cap_subs;
    logged_op *ops; /* acknowledged operations only */
    size_t num_ops, cap_ops;
    size_t pending_first; /* subs of the operation being built */
} op_log;

static void log_sub(op_log *log, sub_op s)
{
    if (log->num_subs == log->cap_subs) {
        log->cap_subs = log->cap_subs ? 2 * log->cap_subs : 256;
        log->subs = realloc(log->subs, log->cap_subs * sizeof(sub_op));
    }
    log->subs[log->num_subs++] = s;
}

/* The operation whose subs were logged since the last call was
 * acknowledged (ack) or failed (dropped from the log). */
static void log_finish(op_log *log, bool ack)
{
    if (ack) {
        if (log->num_ops == log->cap_ops) {
            log->cap_ops = log->cap_ops ? 2 * log->cap_ops : 256;
            log->ops = realloc(log->ops, log->cap_ops * sizeof(logged_op));
        }
        log->ops[log->num_ops++] =
            (logged_op){log->pending_first, log->num_subs - log->pending_first};
    } else {
        log->num_subs = log->pending_first;
    }
    log->pending_first = log->num_subs;
}

static void log_reset(op_log *log)
{
    log->num_subs = log->num_ops = log->pending_first = 0;
}

/* ---- model states: the value id of each key (0: absent) ---- */

typedef struct db_state {
    uint64_t id[NUM_CF][NUM_KEYS];
} db_state;

/* Applies one operation to `s`, keeping *mismatches (keys where s differs
 * from `actual`) up to date. */
static void apply_op(db_state *s, const op_log *log, size_t op, const db_state *actual,
                     long *mismatches)
{
    const logged_op *o = &log->ops[op];
    for (size_t i = o->first_sub; i < o->first_sub + o->num_sub; i++) {
        const sub_op *sub = &log->subs[i];
        int from = sub->k, to = sub->kind == SUB_RANGE ? sub->end : sub->k + 1;
        for (int k = from; k < to; k++) {
            uint64_t before = s->id[sub->cf][k];
            uint64_t after = sub->kind == SUB_PUT ? sub->id : 0;
            uint64_t want = actual->id[sub->cf][k];
            *mismatches += (after != want) - (before != want);
            s->id[sub->cf][k] = after;
        }
    }
}

static long count_mismatches(const db_state *a, const db_state *b)
{
    long n = 0;
    for (int c = 0; c < NUM_CF; c++)
        for (int k = 0; k < NUM_KEYS; k++)
            n += a->id[c][k] != b->id[c][k];
    return n;
}

/* Reads the whole database into *out; fails on a key or value we never
 * wrote (damaged data is never acceptable). */
static void read_state(kv_db *db, db_state *out, const char *context)
{
    memset(out, 0, sizeof(*out));
    char *scratch = malloc(MAX_VALUE);
    for (int c = 0; c < NUM_CF; c++) {
        kv_cf *cf = kv_get_cf(db, cf_names[c]);
        if (cf == NULL) {
            fprintf(stderr, "%s: family %s is missing after reopen\n", context, cf_names[c]);
            fail();
        }
        kv_iterator *it = kv_iterator_create(db, NULL, cf);
        for (kv_iterator_seek_to_first(it); kv_iterator_valid(it); kv_iterator_next(it)) {
            size_t klen, vlen;
            const char *key = kv_iterator_key(it, &klen);
            const char *value = kv_iterator_value(it, &vlen);
            /* Our keys are exactly "key%04d" with the number below NUM_KEYS. */
            int k = -1;
            char name[16] = "";
            if (klen == 7 && memcmp(key, "key", 3) == 0) {
                char digits[5];
                memcpy(digits, key + 3, 4);
                digits[4] = '\0';
                k = atoi(digits);
                if (k >= 0 && k < NUM_KEYS)
                    key_of(k, name, sizeof(name));
            }
            if (k < 0 || k >= NUM_KEYS || memcmp(name, key, 7) != 0) {
                fprintf(stderr, "%s: unknown key \"%.*s\" in family %s\n", context, (int)klen, key,
                        cf_names[c]);
                fail();
            }
            uint64_t id = decode_value(value, vlen, scratch);
            if (id == 0) {
                fprintf(stderr, "%s: %s in family %s holds %zu bytes that are no value we wrote\n",
                        context, name, cf_names[c], vlen);
                fail();
            }
            out->id[c][k] = id;
        }
        if (kv_iterator_status(it) != 0) {
            fprintf(stderr, "%s: iterator of %s failed: %s: %s\n", context, cf_names[c],
                    kv_strerror(kv_iterator_status(it)), kv_errmsg());
            fail();
        }
        kv_iterator_destroy(it);
        /* Point reads agree with the scan. */
        for (int k = 0; k < NUM_KEYS; k += 7) {
            char key[16];
            key_of(k, key, sizeof(key));
            char *v = NULL;
            size_t vlen = 0;
            int rc = kv_get(db, NULL, cf, key, strlen(key), &v, &vlen);
            uint64_t id = rc == KV_OK ? decode_value(v, vlen, scratch) : 0;
            if ((rc != KV_OK && rc != KV_NOT_FOUND) || id != out->id[c][k]) {
                fprintf(stderr,
                        "%s: kv_get(%s) in %s: %s, id %" PRIu64 "; the scan saw id %" PRIu64 "\n",
                        context, key, cf_names[c], kv_strerror(rc), id, out->id[c][k]);
                fail();
            }
            if (rc == KV_OK)
                kv_free(v);
        }
    }
    free(scratch);
}

/* Is `actual` the state after some prefix of the logged operations, of
 * length >= must_include? Prints a diagnosis when not. */
static bool find_consistent_prefix(const db_state *base, const op_log *log, size_t must_include,
                                   const db_state *actual, const char *context, size_t *prefix)
{
    db_state *s = malloc(sizeof(*s));
    *s = *base;
    long mismatches = count_mismatches(s, actual);
    for (size_t i = 0; i < must_include; i++)
        apply_op(s, log, i, actual, &mismatches);
    size_t best = must_include;
    long best_mismatches = mismatches;
    bool found = mismatches == 0;
    size_t p = must_include;
    while (!found && p < log->num_ops) {
        apply_op(s, log, p, actual, &mismatches);
        p++;
        if (mismatches < best_mismatches) {
            best = p;
            best_mismatches = mismatches;
        }
        found = mismatches == 0;
    }
    if (found) {
        *prefix = p;
        free(s);
        return true;
    }
    fprintf(stderr,
            "%s: the recovered state is no prefix of the acknowledged operations that "
            "includes all %zu synced ones (%zu acknowledged). Closest: prefix %zu with %ld keys "
            "differing:\n",
            context, must_include, log->num_ops, best, best_mismatches);
    *s = *base;
    for (size_t i = 0; i < best; i++)
        apply_op(s, log, i, actual, &mismatches);
    int shown = 0;
    for (int c = 0; c < NUM_CF && shown < 10; c++)
        for (int k = 0; k < NUM_KEYS && shown < 10; k++)
            if (s->id[c][k] != actual->id[c][k]) {
                fprintf(stderr, "  %s key%04d: expected value id %" PRIu64 ", found %" PRIu64 "\n",
                        cf_names[c], k, s->id[c][k], actual->id[c][k]);
                shown++;
            }
    free(s);
    return false;
}

/* ---- writing ---- */

typedef struct cut_run {
    kv_test_rng rng;
    uint64_t seed;
    int cycle;
    uint64_t next_id;
    kv_db *db;
    kv_cf *cfs[NUM_CF];
    op_log log;
    char *value;
} cut_run;

static void random_sub(cut_run *r, kv_write_batch *batch)
{
    uint64_t pick = kv_test_rng_uniform(&r->rng, 100);
    sub_op s = {0};
    s.cf = (uint8_t)kv_test_rng_uniform(&r->rng, NUM_CF);
    s.k = (uint16_t)kv_test_rng_uniform(&r->rng, NUM_KEYS);
    char key[16], end[16];
    key_of(s.k, key, sizeof(key));
    if (pick < 80) {
        s.kind = SUB_PUT;
        s.id = r->next_id++;
        make_value(s.id, r->value);
        kv_write_batch_put(batch, r->cfs[s.cf], key, strlen(key), r->value, value_len(s.id));
    } else if (pick < 94) {
        s.kind = SUB_DELETE;
        kv_write_batch_delete(batch, r->cfs[s.cf], key, strlen(key));
    } else {
        s.kind = SUB_RANGE;
        s.end = (uint16_t)(s.k + kv_test_rng_uniform(&r->rng, 20));
        if (s.end > NUM_KEYS)
            s.end = NUM_KEYS;
        key_of(s.end, end, sizeof(end)); /* "key0256" is past every key */
        kv_write_batch_delete_range(batch, r->cfs[s.cf], key, strlen(key), end, strlen(end));
    }
    log_sub(&r->log, s);
    static const char *const kinds[] = {"put", "delete", "delete_range"};
    trace("    %s %s key%04d", kinds[s.kind], cf_names[s.cf], s.k);
    if (s.kind == SUB_RANGE)
        trace("..key%04d", s.end);
    if (s.kind == SUB_PUT)
        trace(" id %" PRIu64 " (%zu bytes)", s.id, value_len(s.id));
    trace("\n");
}

/* kv_compact_range of one family, over all keys or a random range. */
static int random_compact_range(cut_run *r)
{
    int cf = (int)kv_test_rng_uniform(&r->rng, NUM_CF);
    int from = (int)kv_test_rng_uniform(&r->rng, NUM_KEYS);
    int to = from + (int)kv_test_rng_uniform(&r->rng, NUM_KEYS / 2);
    char begin[16], end[16];
    key_of(from, begin, sizeof(begin));
    key_of(to, end, sizeof(end));
    bool all = kv_test_rng_uniform(&r->rng, 3) == 0;
    int rc = all ? kv_compact_range(r->db, r->cfs[cf], NULL, 0, NULL, 0)
                 : kv_compact_range(r->db, r->cfs[cf], begin, strlen(begin), end, strlen(end));
    if (all)
        trace("  kv_compact_range %s (all): %s\n", cf_names[cf], kv_strerror(rc));
    else
        trace("  kv_compact_range %s %s..%s: %s\n", cf_names[cf], begin, end, kv_strerror(rc));
    return rc;
}

typedef struct delayed_cut {
    kv_env *env;
    unsigned micros;
} delayed_cut;

static void *delayed_cut_main(void *arg)
{
    delayed_cut *d = arg;
    usleep(d->micros);
    kv_env_fault_set_filesystem_active(d->env, false);
    return NULL;
}

/* The file system dies a few milliseconds into a kv_compact_range of
 * everything (which may fail, or finish first). */
static void cut_during_compaction(cut_run *r, kv_env *env)
{
    delayed_cut d = {env, (unsigned)kv_test_rng_uniform(&r->rng, 5000)};
    int cf = (int)kv_test_rng_uniform(&r->rng, NUM_CF);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, delayed_cut_main, &d), 0);
    int rc = kv_compact_range(r->db, r->cfs[cf], NULL, 0, NULL, 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    trace("  kv_compact_range %s (all) cut after %u us: %s\n", cf_names[cf], d.micros,
          kv_strerror(rc));
}

/* One random write (a single operation or a batch) through kv_write. With
 * the file system alive it must succeed; dead, it may fail. Returns the
 * status. */
static int random_write(cut_run *r, bool sync)
{
    kv_write_batch *batch = kv_write_batch_create();
    int n = kv_test_rng_uniform(&r->rng, 6) == 0 ? 2 + (int)kv_test_rng_uniform(&r->rng, 5) : 1;
    for (int i = 0; i < n; i++)
        random_sub(r, batch);
    kv_write_options wo = {.sync = sync};
    int rc = kv_write(r->db, &wo, batch);
    trace("  write%s (%d ops): %s\n", sync ? " sync" : "", n, kv_strerror(rc));
    kv_write_batch_destroy(batch);
    log_finish(&r->log, rc == KV_OK);
    return rc;
}

/* The power-cut cycles run twice: values in the tree, and values of 64
 * bytes or more in blob files (kv/blob.h) in small blob files. */
static bool cycles_with_blobs;

static kv_db *open_with_env(kv_env *env, const char *dir, const char *context)
{
    kv_options o;
    kv_options_init(&o);
    if (cycles_with_blobs) {
        o.cf.blob_min_size = 64;
        o.blob_min_batch_bytes = 0;
        o.blob_file_size = 1u << 20;
    }
    o.create_if_missing = true;
    o.env = env;
    o.cf.write_buffer_size = 32 << 10; /* flushes every few dozen writes */
    /* Compactions every few flushes, into several levels, and a MANIFEST
     * rewritten every few dozen edits. */
    o.cf.level0_file_num_compaction_trigger = 2;
    o.cf.target_file_size_base = 64 << 10;
    o.cf.max_bytes_for_level_base = 64 << 10;
    o.cf.max_bytes_for_level_multiplier = 4;
    o.max_manifest_file_size = 4096;
    kv_db *db = NULL;
    int rc = kv_open(&o, dir, &db);
    if (rc != KV_OK) {
        fprintf(stderr, "%s: kv_open after a power cut failed: %s: %s\n", context, kv_strerror(rc),
                kv_errmsg());
        fail();
    }
    return db;
}

static void run_power_cut_cycles(bool blobs)
{
    cycles_with_blobs = blobs;
    cut_run r;
    memset(&r, 0, sizeof(r));
    r.seed = kv_test_seed(20240601);
    kv_test_rng_init(&r.rng, r.seed);
    r.next_id = 1;
    r.value = malloc(MAX_VALUE);
    int cycles = kv_test_long_mode() ? 2000 : 250;
    char *dir = kv_test_tmpdir(blobs ? "db-power-cut-blobs" : "db-power-cut");
    kv_env *env = kv_env_fault_create();
    db_state *base = calloc(1, sizeof(db_state));
    db_state *actual = calloc(1, sizeof(db_state));
    static char phase[160];
    long total_ops = 0, total_synced = 0, total_lost = 0, close_errors = 0;
    uint64_t compactions = 0, trivial_moves = 0;

    for (r.cycle = 0; r.cycle < cycles; r.cycle++) {
        char context[96];
        snprintf(context, sizeof(context), "seed %" PRIu64 ", cycle %d", r.seed, r.cycle);
        snprintf(phase, sizeof(phase), "power cut %s", context);
        tdb_watchdog(120, phase);

        trace("%s: open\n", context);
        r.db = open_with_env(env, dir, context);
        for (int c = 0; c < NUM_CF; c++) {
            r.cfs[c] = kv_get_cf(r.db, cf_names[c]);
            if (r.cfs[c] == NULL && r.cycle == 0) {
                int rc = kv_create_cf(r.db, cf_names[c], &r.cfs[c]);
                assert_int_equal(rc, 0);
            }
            if (r.cfs[c] == NULL) {
                fprintf(stderr, "%s: family %s lost\n", context, cf_names[c]);
                fail();
            }
        }
        if (r.cycle > 0) {
            /* The recovered state is what the database still says. */
            read_state(r.db, actual, context);
            if (count_mismatches(actual, base) != 0) {
                fprintf(stderr, "%s: state changed between the check and this open\n", context);
                fail();
            }
        }

        log_reset(&r.log);
        size_t must_include = 0; /* acknowledged ops made durable */
        int num_ops = 20 + (int)kv_test_rng_uniform(&r.rng, 300);
        int cut_at = (int)kv_test_rng_uniform(&r.rng, (uint64_t)num_ops + 1);
        for (int i = 0; i < num_ops; i++) {
            bool alive = i < cut_at;
            if (i == cut_at) {
                uint64_t how = kv_test_rng_uniform(&r.rng, 3);
                if (how == 0) {
                    kv_flush(r.db, NULL, false); /* a flush racing the cut */
                    trace("  flush (no wait)\n");
                } else if (how == 1) {
                    cut_during_compaction(&r, env);
                }
                kv_env_fault_set_filesystem_active(env, false);
                trace("  --- file system dead ---\n");
                if (kv_test_rng_uniform(&r.rng, 2))
                    break;
            }
            uint64_t pick = kv_test_rng_uniform(&r.rng, 100);
            int rc;
            if (pick < 3) {
                rc = kv_sync_wal(r.db);
                trace("  kv_sync_wal: %s\n", kv_strerror(rc));
                if (rc == KV_OK)
                    must_include = r.log.num_ops;
            } else if (pick < 5) {
                bool wait = kv_test_rng_uniform(&r.rng, 4) == 0;
                rc = kv_flush(r.db, NULL, wait);
                trace("  kv_flush%s: %s\n", wait ? " (wait)" : "", kv_strerror(rc));
            } else if (pick < 6) {
                rc = random_compact_range(&r);
            } else {
                bool sync = kv_test_rng_uniform(&r.rng, 10) == 0;
                rc = random_write(&r, sync);
                if (rc == KV_OK && sync)
                    must_include = r.log.num_ops;
            }
            if (alive && rc != KV_OK) {
                fprintf(stderr, "%s, op %d: failed with the file system alive: %s: %s\n", context,
                        i, kv_strerror(rc), kv_errmsg());
                fail();
            }
        }
        kv_env_fault_set_filesystem_active(env, false);
        kv_stats st;
        kv_get_stats(r.db, &st);
        compactions += st.compactions;
        trivial_moves += st.trivial_moves;
        int rc = kv_close(r.db); /* errors allowed: the disk is dead */
        trace("  close: %s; power cut\n", rc ? kv_errmsg() : "ok");
        if (rc != KV_OK)
            close_errors++;
        r.db = NULL;
        rc = kv_env_fault_power_cut(env);
        assert_int_equal(rc, 0);
        kv_env_fault_set_filesystem_active(env, true);

        kv_db *db = open_with_env(env, dir, context);
        read_state(db, actual, context);
        size_t prefix = 0;
        if (!find_consistent_prefix(base, &r.log, must_include, actual, context, &prefix))
            fail();
        total_ops += (long)r.log.num_ops;
        total_synced += (long)must_include;
        total_lost += (long)(r.log.num_ops - prefix);
        *base = *actual;
        tdb_close(db);
    }
    tdb_watchdog(0, NULL);
    printf("power cut%s: seed %" PRIu64 ", %d cycles, %ld acknowledged writes, %ld of them synced "
           "before the cut, %ld lost (unsynced), %d closes failed; %" PRIu64
           " compactions (%" PRIu64 " trivial moves)\n",
           blobs ? " (blob files)" : "", r.seed, cycles, total_ops, total_synced, total_lost,
           (int)close_errors, compactions, trivial_moves);
    assert_true(compactions > 0); /* the cuts met compactions */
    if (blobs)                    /* the values did go to blob files */
        assert_true(tdb_count_files(dir, ".blob") > 0);
    kv_env_fault_destroy(env);
    free(base);
    free(actual);
    free(r.log.subs);
    free(r.log.ops);
    free(r.value);
    kv_test_cleanup_dir(dir);
}

static void test_power_cut_cycles(void **state)
{
    (void)state;
    run_power_cut_cycles(false);
}

static void test_power_cut_cycles_blobs(void **state)
{
    (void)state;
    run_power_cut_cycles(true);
}

/* ---- targeted durability cases (found by the cycles above) ---- */

static kv_db *open_plain(kv_env *env, const char *dir)
{
    kv_options o;
    kv_options_init(&o);
    o.create_if_missing = true;
    o.env = env;
    return tdb_open(&o, dir);
}

static void power_cut_and_reopen(kv_env *env, kv_db **db, const char *dir)
{
    kv_env_fault_set_filesystem_active(env, false);
    kv_close(*db); /* errors allowed */
    assert_int_equal(kv_env_fault_power_cut(env), 0);
    kv_env_fault_set_filesystem_active(env, true);
    *db = open_plain(env, dir);
}

/* After a WAL append failed, kv_sync_wal must not report success while
 * acknowledged writes were never synced (like fsync after a writeback
 * error): either it makes them durable or it fails. */
static void test_sync_wal_after_failed_write(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-sync-after-failure");
    kv_env *env = kv_env_fault_create();
    kv_db *db = open_plain(env, dir);
    kv_cf *cf = kv_default_cf(db);
    tdb_put(db, cf, "a", "acknowledged");
    kv_env_fault_set_filesystem_active(env, false);
    int rc = kv_put(db, NULL, cf, "b", 1, "failed", 6);
    assert_true(rc < 0);
    rc = kv_sync_wal(db);
    printf("kv_sync_wal with a dead disk after a failed write: %s\n", kv_strerror(rc));
    power_cut_and_reopen(env, &db, dir);
    cf = kv_default_cf(db);
    if (rc == KV_OK) {
        char *v;
        size_t n;
        int get_rc = kv_get(db, NULL, cf, "a", 1, &v, &n);
        if (get_rc == KV_OK)
            kv_free(v);
        if (get_rc != KV_OK) {
            fprintf(stderr, "kv_sync_wal returned success, yet the acknowledged write before it "
                            "is gone after a power cut\n");
            fail();
        }
    }
    tdb_expect_missing(db, NULL, cf, "b");
    tdb_close(db);
    kv_env_fault_destroy(env);
    kv_test_cleanup_dir(dir);
}

/* A sync write makes everything acknowledged before it durable, even when
 * a write in between failed (disk full) and the engine switched WALs. */
static void test_sync_write_after_failed_write(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-sync-after-enospc");
    kv_env *env = kv_env_fault_create();
    kv_db *db = open_plain(env, dir);
    kv_cf *cf = kv_default_cf(db);
    tdb_put(db, cf, "a", "acknowledged");
    kv_env_fault_set_space_budget(env, 0);
    int rc = kv_put(db, NULL, cf, "b", 1, "failed", 6);
    expect_status_fault("write with the disk full", rc, KV_NO_SPACE);
    kv_env_fault_set_space_budget(env, UINT64_MAX);
    kv_write_options wo = {.sync = true};
    rc = kv_put(db, &wo, cf, "c", 1, "synced", 6);
    assert_int_equal(rc, KV_OK);
    power_cut_and_reopen(env, &db, dir);
    cf = kv_default_cf(db);
    tdb_expect(db, NULL, cf, "c", "synced");
    tdb_expect(db, NULL, cf, "a", "acknowledged"); /* before a synced write */
    tdb_expect_missing(db, NULL, cf, "b");
    tdb_close(db);
    kv_env_fault_destroy(env);
    kv_test_cleanup_dir(dir);
}

/* A closed WAL whose sync failed keeps failing: a later sync of the closed
 * WALs that succeeds proves nothing about the pages the failed one may
 * have dropped, and a flush job would then record its table (and a synced
 * write be promised) over writes that may be lost. */
static void test_closed_wal_sync_failure_sticks(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("db-closed-wal-sync");
    kv_env *env = kv_env_fault_create();
    kv_db *db = open_plain(env, dir);
    kv_cf *cf = kv_default_cf(db);
    tdb_put(db, cf, "a", "acknowledged");
    /* Close the WAL that holds it, as a memtable switch does (nothing else
     * writes here: the test stands for the write queue). */
    pthread_mutex_lock(&db->mutex);
    assert_int_equal(kv_db_new_wal(db), 0);
    pthread_mutex_unlock(&db->mutex);
    kv_env_fault_set_filesystem_active(env, false);
    int rc = kv_db_sync_closed_wals(db);
    expect_status_fault("syncing the closed WAL on a dead disk", rc, KV_IO_ERROR);
    kv_env_fault_set_filesystem_active(env, true);
    rc = kv_db_sync_closed_wals(db);
    expect_status_fault("syncing the closed WALs again, the disk back", rc, KV_IO_ERROR);
    kv_write_options wo = {.sync = true};
    rc = kv_put(db, &wo, cf, "b", 1, "synced", 6);
    assert_true(rc < 0);
    rc = kv_sync_wal(db);
    assert_true(rc < 0);
    kv_close(db); /* errors allowed */
    /* No power cut: the acknowledged write is in the page cache. */
    db = open_plain(env, dir);
    cf = kv_default_cf(db);
    tdb_expect(db, NULL, cf, "a", "acknowledged");
    tdb_expect_missing(db, NULL, cf, "b");
    tdb_close(db);
    kv_env_fault_destroy(env);
    kv_test_cleanup_dir(dir);
}

/* ---- full disk ---- */

static void expect_value_id(kv_db *db, kv_cf *cf, const char *key, uint64_t id, const char *context)
{
    char *want = malloc(MAX_VALUE);
    make_value(id, want);
    char *got = NULL;
    size_t len = 0;
    int rc = kv_get(db, NULL, cf, key, strlen(key), &got, &len);
    if (rc != KV_OK || len != value_len(id) || memcmp(got, want, len) != 0) {
        fprintf(stderr, "%s: %s: acknowledged value lost or wrong (%s: %s)\n", context, key,
                kv_strerror(rc), rc == KV_OK ? "wrong bytes" : kv_errmsg());
        fail();
    }
    kv_free(got);
    free(want);
}

/* Fills the disk through a database whose memtables hold `write_buffer`
 * bytes: with a small one the first write to fail is a flush's (the
 * failure reaches writers from the background), with a large one it is the
 * WAL append itself. Checks KV_NO_SPACE, that acknowledged data stays
 * readable and failed writes never appear, and that writes resume once
 * space returns: the engine retries its flush with a growing pause, so
 * the test polls for a while; as a last resort it reopens and reports. */
static void run_disk_full(const char *name, size_t write_buffer, uint64_t budget)
{
    char *dir = kv_test_tmpdir(name);
    kv_env *env = kv_env_fault_create();
    static char phase[96];
    snprintf(phase, sizeof(phase), "%s", name);
    tdb_watchdog(120, phase);
    kv_options o;
    kv_options_init(&o);
    o.create_if_missing = true;
    o.env = env;
    o.cf.write_buffer_size = write_buffer;
    kv_db *db = tdb_open(&o, dir);
    kv_cf *cf = kv_default_cf(db);
    char *value = malloc(MAX_VALUE);
    enum { MAX_KEYS = 20000 };
    uint64_t *acked = calloc(MAX_KEYS, sizeof(uint64_t)); /* value id per key, 0: none */

    /* Fill until the budget runs out. Keys are distinct; ids start at 1. */
    kv_env_fault_set_space_budget(env, budget);
    int failed_at = -1, rc = 0;
    for (int i = 0; i < MAX_KEYS; i++) {
        char key[16];
        snprintf(key, sizeof(key), "fill%06d", i);
        uint64_t id = (uint64_t)i + 1;
        make_value(id, value);
        kv_write_options wo = {.sync = i % 10 == 0};
        rc = kv_put(db, &wo, cf, key, strlen(key), value, value_len(id));
        if (rc != KV_OK) {
            failed_at = i;
            break;
        }
        acked[i] = id;
    }
    if (failed_at < 0) {
        fprintf(stderr, "%s: never ran out of space\n", name);
        fail();
    }
    printf("%s: full after %d writes: %s: %s\n", name, failed_at, kv_strerror(rc), kv_errmsg());
    if (rc != KV_NO_SPACE) {
        fprintf(stderr, "%s: the write that hit the full disk got %s, want KV_NO_SPACE: %s\n", name,
                kv_strerror(rc), kv_errmsg());
        fail();
    }
    char failed_key[16];
    snprintf(failed_key, sizeof(failed_key), "fill%06d", failed_at);

    /* Everything acknowledged is readable; the failed write is not. */
    for (int i = 0; i < failed_at; i++) {
        char key[16];
        snprintf(key, sizeof(key), "fill%06d", i);
        expect_value_id(db, cf, key, acked[i], name);
    }
    tdb_expect_missing(db, NULL, cf, failed_key);
    /* Still full: a write fails with KV_NO_SPACE, or, if it fits (a failed
     * flush's partial file was removed, so the WAL has room again), it
     * succeeds and is readable; never another error. */
    make_value(1, value);
    rc = kv_put(db, NULL, cf, "more", 4, value, value_len(1));
    if (rc != KV_NO_SPACE && rc != KV_OK) {
        fprintf(stderr, "%s: write while still full: want KV_NO_SPACE or OK, got %s: %s\n", name,
                kv_strerror(rc), kv_errmsg());
        fail();
    }
    bool more_acked = rc == KV_OK;
    printf("%s: a write while still full: %s\n", name, kv_strerror(rc));
    if (more_acked)
        expect_value_id(db, cf, "more", 1, name);

    /* Space comes back: writes must resume (poll up to 20 s). */
    kv_env_fault_set_space_budget(env, UINT64_MAX);
    uint64_t start = kv_env_now_micros();
    int attempts = 0;
    while ((rc = kv_put(db, NULL, cf, "after", 5, "space", 5)) != KV_OK &&
           kv_env_now_micros() - start < 20000000) {
        attempts++;
        usleep(20000);
    }
    bool resumed_in_place = rc == KV_OK;
    printf("%s: after space returned, writes %s after %.2f s (%d failed attempts)\n", name,
           resumed_in_place ? "resumed" : "still FAIL", (kv_env_now_micros() - start) / 1e6,
           attempts);
    char resume_error[600] = "";
    if (!resumed_in_place) {
        snprintf(resume_error, sizeof(resume_error), "%s: %s", kv_strerror(rc), kv_errmsg());
        kv_close(db); /* errors allowed */
        db = tdb_open(&o, dir);
        cf = kv_default_cf(db);
        rc = kv_put(db, NULL, cf, "after", 5, "space", 5);
        if (rc != KV_OK) {
            fprintf(stderr, "%s: writes fail even after reopen: %s: %s\n", name, kv_strerror(rc),
                    kv_errmsg());
            fail();
        }
    }
    tdb_put(db, cf, "after2", "x");
    rc = kv_flush(db, NULL, true);
    if (rc != KV_OK) {
        fprintf(stderr, "%s: kv_flush after space returned: %s: %s\n", name, kv_strerror(rc),
                kv_errmsg());
        fail();
    }
    for (int i = 0; i < failed_at; i += 3) {
        char key[16];
        snprintf(key, sizeof(key), "fill%06d", i);
        expect_value_id(db, cf, key, acked[i], "after space returned");
    }
    tdb_close(db);

    /* Nothing acknowledged was lost, and the failed writes did not come
     * back from some buffer. */
    db = tdb_open(&o, dir);
    cf = kv_default_cf(db);
    for (int i = 0; i < failed_at; i++) {
        char key[16];
        snprintf(key, sizeof(key), "fill%06d", i);
        expect_value_id(db, cf, key, acked[i], "after reopen");
    }
    tdb_expect_missing(db, NULL, cf, failed_key);
    if (more_acked)
        expect_value_id(db, cf, "more", 1, "after reopen");
    else
        tdb_expect_missing(db, NULL, cf, "more");
    tdb_expect(db, NULL, cf, "after", "space");
    tdb_expect(db, NULL, cf, "after2", "x");
    tdb_close(db);
    tdb_watchdog(0, NULL);
    free(acked);
    free(value);
    kv_env_fault_destroy(env);
    kv_test_cleanup_dir(dir);
    if (!resumed_in_place)
        fail_msg("%s: writes did not resume within 20 s after space returned (only after a "
                 "reopen); last error: %s",
                 name, resume_error);
}

/* The first write to fail is a background flush's. */
static void test_disk_full_during_flush(void **state)
{
    (void)state;
    run_disk_full("db-disk-full-flush", 64 << 10, 1 << 20);
}

/* The first write to fail is the WAL append of a user write. */
static void test_disk_full_in_wal(void **state)
{
    (void)state;
    run_disk_full("db-disk-full-wal", 64 << 20, 256 << 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_wal_after_failed_write),
        cmocka_unit_test(test_sync_write_after_failed_write),
        cmocka_unit_test(test_closed_wal_sync_failure_sticks),
        cmocka_unit_test(test_power_cut_cycles),
        cmocka_unit_test(test_power_cut_cycles_blobs),
        cmocka_unit_test(test_disk_full_during_flush),
        cmocka_unit_test(test_disk_full_in_wal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
