/*
 * db_bg.c — background threads: take column families off the
 * FlushScheduler and run their FlushJobs. At most one FlushJob per family
 * runs at a time, which is what keeps installation in memtable order.
 *
 * A flush that fails for lack of space is retried with a growing pause
 * (writers get KV_NO_SPACE meanwhile, and resume when a flush succeeds);
 * any other failure is sticky: the database turns read-only.
 */
#include "db_impl.h"

#include "error.h"
#include "compaction.h"
#include "flush_job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

int kv_db_set_bg_error(kv_db *db, int status)
{
    if (db->bg_error == 0 || db->bg_error == KV_NO_SPACE) {
        db->bg_error = status;
        kv_error_copy(db->bg_errmsg, sizeof(db->bg_errmsg));
        kv_info_log_printf(db->info_log, "background error: %s", db->bg_errmsg);
    }
    pthread_cond_broadcast(&db->bg_cv);
    return status;
}

void kv_db_maybe_schedule_flush(kv_db *db, kv_cf *cf)
{
    if (cf->dropped || cf->flush_scheduled || cf->flush_running ||
        kv_memtable_list_num_not_flushing(&cf->imm) == 0)
        return;
    cf->flush_scheduled = true;
    kv_flush_scheduler_schedule(&db->flush_scheduler, cf);
    pthread_cond_broadcast(&db->bg_cv);
}

static void timed_wait(kv_db *db, uint64_t micros)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)(micros / 1000000);
    deadline.tv_nsec += (long)(micros % 1000000) * 1000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&db->bg_cv, &db->mutex, &deadline);
}

static void run_flush(kv_db *db, kv_cf *cf)
{
    cf->flush_running = true;
    db->bg_flushes_running++;
    kv_flush_job job;
    kv_flush_job_init(&job, db, cf);
    kv_flush_job_pick_memtables(&job);
    int rc = kv_flush_job_run(&job);
    kv_flush_job_free(&job);
    db->bg_flushes_running--;
    cf->flush_running = false;
    if (rc == 0) {
        cf->flush_failures = 0;
        db->flush_paused_until = 0;
        db->bg_no_space = false;
        if (db->bg_error == KV_NO_SPACE) {
            kv_info_log_printf(db->info_log, "flush succeeded: resuming writes");
            db->bg_error = 0;
            db->bg_errmsg[0] = '\0';
        }
    } else if (!cf->dropped) {
        kv_db_set_bg_error(db, rc);
        cf->flush_failures++;
        if (rc == KV_NO_SPACE && !db->shutting_down) {
            /* Retry after a pause: 100 ms, doubling, at most 10 s; no flush
             * runs before then (wake-ups of the condition variable do not
             * count), unless kv_flush or kv_compact_range asks. */
            uint64_t pause = 100000ull << (cf->flush_failures < 7 ? cf->flush_failures : 7);
            if (pause > 10000000)
                pause = 10000000;
            db->flush_paused_until = kv_env_now_micros() + pause;
            db->bg_no_space = true;
        }
    }
    if (db->bg_error == 0 || db->bg_error == KV_NO_SPACE)
        kv_db_maybe_schedule_flush(db, cf);
    pthread_cond_broadcast(&db->bg_cv); /* stalled writers, waiters, compactions */
}

static void *flush_thread(void *arg)
{
    kv_db *db = arg;
    pthread_mutex_lock(&db->mutex);
    while (!db->shutting_down) {
        uint64_t now = kv_env_now_micros();
        if (db->flush_paused_until > now) {
            timed_wait(db, db->flush_paused_until - now);
            continue;
        }
        kv_cf *cf = kv_flush_scheduler_take_next(&db->flush_scheduler);
        if (cf == NULL) {
            pthread_cond_wait(&db->bg_cv, &db->mutex);
            continue;
        }
        cf->flush_scheduled = false;
        if (cf->dropped || cf->flush_running)
            continue; /* a running flush reschedules the family when it ends */
        if (db->bg_error != 0 && db->bg_error != KV_NO_SPACE)
            continue;
        run_flush(db, cf);
    }
    pthread_mutex_unlock(&db->mutex);
    return NULL;
}

/* The family whose shape is furthest off, among those not compacting. */
static kv_cf *pick_family_to_compact(kv_db *db)
{
    kv_cf *best = NULL;
    double best_score = 1.0;
    for (size_t i = 0; i < db->num_cfs; i++) {
        kv_cf *cf = db->cfs[i];
        if (cf->dropped || cf->compaction_running)
            continue;
        int level;
        double score = kv_compaction_score(&cf->options, cf->current, &level);
        if (score >= best_score) {
            best = cf;
            best_score = score;
        }
    }
    return best;
}

void kv_db_maybe_schedule_compaction(kv_db *db)
{
    if (db->options.max_background_compactions > 0 && pick_family_to_compact(db) != NULL)
        pthread_cond_broadcast(&db->bg_cv);
}

static void *compaction_thread(void *arg)
{
    kv_db *db = arg;
    /* Compactions can wait; writers and flushes should not wait for them
     * on a busy machine (RocksDB's low-priority pool does the same). A
     * failure to lower the priority is harmless. */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    pthread_mutex_lock(&db->mutex);
    while (!db->shutting_down) {
        kv_cf *cf = NULL;
        bool may_run = (db->bg_error == 0 || db->bg_error == KV_NO_SPACE) &&
                       db->manual_compactions_waiting == 0 &&
                       db->compaction_paused_until <= kv_env_now_micros();
        if (may_run)
            cf = pick_family_to_compact(db);
        /* Nothing to reshape: collect the blob file with the most garbage. */
        kv_compaction *gc = may_run && cf == NULL ? kv_compaction_pick_blob_gc(db) : NULL;
        if (gc == NULL && may_run && cf == NULL && db->blob_seal_wanted) {
            db->blob_seal_wanted = false;
            pthread_mutex_unlock(&db->mutex);
            int rc = kv_db_seal_blob_file(db);
            pthread_mutex_lock(&db->mutex);
            if (rc == 0)
                kv_db_delete_obsolete_files(db, false);
            else
                timed_wait(db, 1000000); /* not in a loop */
            continue;
        }
        if (gc != NULL) {
            uint64_t gc_victim = gc->relocate_blob;
            cf = gc->cf;
            cf->compaction_running = true;
            db->bg_compactions_running++;
            int rc = kv_compaction_run(db, gc);
            kv_compaction_free(gc);
            db->bg_compactions_running--;
            cf->compaction_running = false;
            if (rc == KV_NO_SPACE) {
                db->compaction_paused_until = kv_env_now_micros() + 1000000;
            } else if (rc != 0 && rc != KV_SHUTDOWN && !cf->dropped) {
                /* Nothing changed (a failed compaction installs nothing);
                 * a damaged value in the file stays an EIO for its reads
                 * rather than stop every write. The file is left alone. */
                kv_blob_file *f = kv_blob_set_get(&db->blobs, gc_victim);
                atomic_store(&f->gc_failed, true);
                kv_blob_file_unref(f);
            }
            pthread_cond_broadcast(&db->bg_cv);
            continue;
        }
        if (cf == NULL) {
            if (db->compaction_paused_until > kv_env_now_micros())
                timed_wait(db, db->compaction_paused_until - kv_env_now_micros());
            else
                pthread_cond_wait(&db->bg_cv, &db->mutex);
            continue;
        }
        kv_compaction *c = kv_compaction_pick(cf);
        if (c == NULL)
            continue;
        cf->compaction_running = true;
        db->bg_compactions_running++;
        int rc = kv_compaction_run(db, c);
        kv_compaction_free(c);
        db->bg_compactions_running--;
        cf->compaction_running = false;
        if (rc == KV_NO_SPACE) {
            /* Not an error of the database: writes go on, and the
             * compaction is retried after a pause (1 s doubling to 30 s),
             * or sooner once deletions free space. */
            db->compaction_no_space_failures++;
            uint64_t pause = 1000000ull << (db->compaction_no_space_failures < 5
                                                ? db->compaction_no_space_failures - 1
                                                : 4);
            if (pause > 30000000)
                pause = 30000000;
            db->compaction_paused_until = kv_env_now_micros() + pause;
            db->bg_no_space = true;
            kv_info_log_printf(db->info_log, "compaction: no space; retrying in %.1f s",
                               pause / 1e6);
        } else if (rc != 0 && rc != KV_SHUTDOWN && !cf->dropped) {
            kv_db_set_bg_error(db, rc);
        } else if (rc == 0) {
            db->compaction_no_space_failures = 0;
            db->bg_no_space = false;
        }
        pthread_cond_broadcast(&db->bg_cv);
    }
    pthread_mutex_unlock(&db->mutex);
    return NULL;
}

int kv_db_start_background(kv_db *db)
{
    int flushes = db->options.max_background_flushes;
    int n = flushes + db->options.max_background_compactions;
    db->bg_threads = kv_calloc((size_t)n, sizeof(pthread_t));
    for (int i = 0; i < n; i++) {
        int err = pthread_create(&db->bg_threads[i], NULL,
                                 i < flushes ? flush_thread : compaction_thread, db);
        if (err != 0) {
            kv_db_stop_background(db);
            return kv_error(KV_IO_ERROR, "cannot start a background thread: %s", strerror(err));
        }
        db->num_bg_threads++;
    }
    return 0;
}

/* Requires: the mutex is NOT held. */
void kv_db_stop_background(kv_db *db)
{
    pthread_mutex_lock(&db->mutex);
    db->shutting_down = true;
    pthread_cond_broadcast(&db->bg_cv);
    pthread_mutex_unlock(&db->mutex);
    for (int i = 0; i < db->num_bg_threads; i++)
        pthread_join(db->bg_threads[i], NULL);
    free(db->bg_threads);
    db->bg_threads = NULL;
    db->num_bg_threads = 0;
}

int kv_db_wait_for_flush(kv_db *db, kv_cf *cf)
{
    /* Wait for the memtables switched out so far, not for later ones. */
    uint64_t target = cf->imm.count ? kv_memtable_id(cf->imm.mems[cf->imm.count - 1]) : 0;
    int failures_at_start = cf->flush_failures;
    while (cf->imm.count > 0 && kv_memtable_id(cf->imm.mems[0]) <= target && !cf->dropped) {
        /* Out of space: wake the retry now and report failure only once
         * a retry made after this call began has failed too. */
        if (db->bg_error == KV_NO_SPACE && cf->flush_failures > failures_at_start + 1)
            return kv_error(db->bg_error, "%s", db->bg_errmsg);
        if (db->bg_error != 0 && db->bg_error != KV_NO_SPACE)
            return kv_error(db->bg_error, "%s", db->bg_errmsg);
        if (db->shutting_down)
            return kv_error(KV_SHUTDOWN, "database is closing");
        kv_db_maybe_schedule_flush(db, cf);
        pthread_cond_broadcast(&db->bg_cv);
        timed_wait(db, 100000);
    }
    return 0;
}

void kv_db_add_obsolete_file(kv_db *db, kv_file_meta *meta)
{
    if (db->num_obsolete_files == db->obsolete_files_cap) {
        db->obsolete_files_cap = db->obsolete_files_cap ? db->obsolete_files_cap * 2 : 16;
        db->obsolete_files =
            kv_realloc(db->obsolete_files, db->obsolete_files_cap * sizeof(kv_file_meta *));
    }
    kv_file_meta_ref(meta);
    db->obsolete_files[db->num_obsolete_files++] = meta;
}

/* ---- manual compaction ---- */

static int compact_range_locked(kv_db *db, kv_cf *cf, const kv_slice *begin, const kv_slice *end)
{
    int last_output_level = -1;
    for (int level = 0; level < KV_NUM_LEVELS; level++) {
        /* Deepest level holding keys of the range: compacting stops there. */
        int deepest = -1;
        for (int l = level; l < KV_NUM_LEVELS; l++) {
            kv_file_meta **files;
            size_t count;
            kv_version_overlapping_inputs(cf->current, l, begin, end, &files, &count);
            free(files);
            if (count > 0)
                deepest = l;
        }
        if (deepest < 0)
            return 0;
        kv_compaction *c;
        if (deepest == level && level > 0) {
            /* The bottom: rewrite it in place to drop what only released
             * snapshots needed, unless this call just wrote it. */
            if (last_output_level == level)
                return 0;
            c = kv_compaction_pick_range_in_place(cf, level, begin, end);
        } else {
            c = kv_compaction_pick_range(cf, level, begin, end);
        }
        if (c == NULL)
            continue;
        last_output_level = c->output_level;
        bool in_place = c->output_level == c->level;
        int rc = kv_compaction_run(db, c);
        kv_compaction_free(c);
        if (rc != 0 || in_place)
            return rc;
    }
    return 0;
}

int kv_compact_range(kv_db *db, kv_cf *cf, const void *begin, size_t begin_len, const void *end,
                     size_t end_len)
{
    int rc = kv_flush(db, cf, true);
    if (rc != 0)
        return rc;
    kv_slice b = kv_slice_make(begin, begin_len), e = kv_slice_make(end, end_len);
    pthread_mutex_lock(&db->mutex);
    /* Keep automatic compactions of every family away while this runs. */
    db->manual_compactions_waiting++;
    while (cf->compaction_running && !db->shutting_down)
        pthread_cond_wait(&db->bg_cv, &db->mutex);
    if (cf->dropped)
        rc = kv_error(KV_INVALID_ARGUMENT, "column family %s was dropped", cf->name);
    else if (db->shutting_down)
        rc = kv_error(KV_SHUTDOWN, "database is closing");
    else if (db->bg_error != 0 && db->bg_error != KV_NO_SPACE)
        rc = kv_error(db->bg_error, "%s", db->bg_errmsg);
    if (rc == 0) {
        cf->compaction_running = true;
        rc = compact_range_locked(db, cf, begin ? &b : NULL, end ? &e : NULL);
        cf->compaction_running = false;
    }
    db->manual_compactions_waiting--;
    pthread_cond_broadcast(&db->bg_cv);
    pthread_mutex_unlock(&db->mutex);
    return rc;
}
