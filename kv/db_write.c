/*
 * db_write.c — the write path: the write queue and group commit, memtable
 * switches and write stalls (LevelDB's DBImpl::Write and
 * MakeRoomForWrite, with RocksDB's FlushScheduler).
 *
 * Writers queue up under the mutex. The writer at the head is the leader:
 * it makes room (switching full memtables, stalling while too many are
 * waiting to be flushed), gathers the batches queued behind it into one
 * group, and, with the mutex released, appends the group to the WAL in one
 * write() and at most one fsync, then inserts it into the memtables. Then
 * it publishes the group's last sequence number and wakes the members.
 */
#include "db_impl.h"

#include <inttypes.h>

#include "coding.h"
#include "compaction.h"

#include "error.h"
#include "filename.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_GROUP_BYTES (1u << 20)
#define SMALL_BATCH_BYTES (128u << 10)

void kv_db_add_alive_wal(kv_db *db, uint64_t number, uint64_t size)
{
    if (db->num_alive_wals == db->alive_wals_cap) {
        db->alive_wals_cap = db->alive_wals_cap ? db->alive_wals_cap * 2 : 8;
        db->alive_wals = kv_realloc(db->alive_wals, db->alive_wals_cap * sizeof(uint64_t));
        db->alive_wal_sizes =
            kv_realloc(db->alive_wal_sizes, db->alive_wals_cap * sizeof(uint64_t));
    }
    db->alive_wal_sizes[db->num_alive_wals] = size;
    db->alive_wals[db->num_alive_wals++] = number;
    db->alive_wal_bytes += size;
}

/* Records the final size of the current WAL as it is closed. */
static void note_closed_wal_size(kv_db *db, uint64_t size)
{
    for (size_t i = db->num_alive_wals; i > 0; i--) {
        if (db->alive_wals[i - 1] == db->wal_number) {
            db->alive_wal_bytes += size - db->alive_wal_sizes[i - 1];
            db->alive_wal_sizes[i - 1] = size;
            return;
        }
    }
}

/* Most closed WALs left unsynced; past this a switch syncs them at once. */
#define MAX_UNSYNCED_WALS 16

/* Records a failed sync of a WAL or blob file: no later write can be
 * promised durable. Requires the mutex. */
static void note_sync_failure(kv_db *db)
{
    atomic_store(&db->wal_sync_failed, true);
    kv_db_set_bg_error(db, KV_IO_ERROR);
}

/* Removes and returns the first file of a list of closed files waiting for
 * their sync (NULL when empty). Takes the mutex. */
static kv_writable *take_oldest(kv_db *db, kv_writable ***files, size_t *count)
{
    pthread_mutex_lock(&db->mutex); /* the array may be reallocated meanwhile */
    kv_writable *file = NULL;
    if (*count > 0) {
        file = (*files)[0];
        (*count)--;
        memmove(*files, *files + 1, *count * sizeof(kv_writable *));
    }
    pthread_mutex_unlock(&db->mutex);
    return file;
}

/* Syncs the closed blob files, then the blob file being appended to, up
 * to what was handed to the kernel: every value a WAL record or a table
 * points to is then durable before the record or table is. Requires
 * wal_sync_mutex, not the mutex. */
static int sync_blob_files(kv_db *db)
{
    /* The file being written is noted first: if the leader closes it
     * meanwhile, it is in the list drained next. */
    pthread_mutex_lock(&db->mutex);
    uint64_t number = db->blob_active != NULL ? db->blob_active->number : 0;
    uint64_t handed = atomic_load(&db->blob_handed_size);
    bool needed = number != 0 && handed > db->blob_synced_size;
    pthread_mutex_unlock(&db->mutex);
    for (;;) {
        kv_writable *file = take_oldest(db, &db->unsynced_blobs, &db->num_unsynced_blobs);
        if (file == NULL)
            break;
        int rc = kv_writable_sync(file);
        if (rc != 0) {
            char message[512];
            kv_error_copy(message, sizeof(message));
            kv_writable_close(file);
            pthread_mutex_lock(&db->mutex);
            note_sync_failure(db);
            pthread_mutex_unlock(&db->mutex);
            return kv_error(KV_IO_ERROR, "blob file: %s; reopen the database", message);
        }
        kv_writable_close(file);
    }
    if (!needed)
        return 0;
    char *path = kv_blob_file_name(db->path, number);
    int rc = kv_env_sync_file(db->env, path);
    /* Deleted since (collected: nothing points into it) needs no sync. */
    if (rc != 0 && !kv_env_file_exists(path))
        rc = 0;
    free(path);
    pthread_mutex_lock(&db->mutex);
    if (rc != 0) {
        note_sync_failure(db);
    } else if (db->blob_active != NULL && db->blob_active->number == number &&
               db->blob_synced_size < handed) {
        db->blob_synced_size = handed;
    }
    pthread_mutex_unlock(&db->mutex);
    return rc;
}

int kv_db_sync_closed_wals(kv_db *db)
{
    int rc = 0;
    pthread_mutex_lock(&db->wal_sync_mutex);
    if (atomic_load(&db->wal_sync_failed)) {
        pthread_mutex_unlock(&db->wal_sync_mutex);
        return kv_error(KV_IO_ERROR,
                        "WAL: an earlier sync of a closed WAL failed; reopen the database");
    }
    rc = sync_blob_files(db);
    if (rc != 0) {
        pthread_mutex_unlock(&db->wal_sync_mutex);
        return rc;
    }
    for (;;) {
        kv_writable *file = take_oldest(db, &db->unsynced_wals, &db->num_unsynced_wals);
        if (file == NULL)
            break;
        rc = kv_writable_sync(file);
        if (rc == 0) {
            atomic_fetch_add(&db->stats.wal_syncs, 1);
            kv_writable_close(file); /* flushed and synced: nothing to fail */
            continue;
        }
        /* The WAL's tail may never reach the disk (a failed fsync may drop
         * the pages), so no later write can be promised durable: the
         * database stops taking writes, as after a failed WAL append. The
         * file stays listed (kv_close closes it). */
        char message[512];
        kv_error_copy(message, sizeof(message));
        pthread_mutex_lock(&db->mutex);
        if (db->num_unsynced_wals == db->unsynced_wals_cap) {
            db->unsynced_wals_cap *= 2;
            db->unsynced_wals =
                kv_realloc(db->unsynced_wals, db->unsynced_wals_cap * sizeof(kv_writable *));
        }
        memmove(db->unsynced_wals + 1, db->unsynced_wals,
                db->num_unsynced_wals * sizeof(kv_writable *));
        db->unsynced_wals[0] = file;
        db->num_unsynced_wals++;
        kv_error(KV_IO_ERROR, "WAL: syncing %s failed (%s); reopen the database", file->path,
                 message);
        atomic_store(&db->wal_sync_failed, true);
        kv_db_set_bg_error(db, KV_IO_ERROR);
        pthread_mutex_unlock(&db->mutex);
        rc = kv_error(KV_IO_ERROR, "WAL: syncing %s failed (%s)", file->path, message);
        break;
    }
    pthread_mutex_unlock(&db->wal_sync_mutex);
    return rc;
}

void kv_db_start_closed_wal_writeback(kv_db *db)
{
    /* Duplicates, taken under the mutex: another thread may sync and close
     * the files meanwhile. */
    int fds[MAX_UNSYNCED_WALS + 1];
    int count = 0;
    pthread_mutex_lock(&db->mutex);
    for (size_t i = 0; i < db->num_unsynced_wals && count < MAX_UNSYNCED_WALS + 1; i++) {
        int fd = dup(db->unsynced_wals[i]->fd);
        if (fd >= 0)
            fds[count++] = fd;
    }
    pthread_mutex_unlock(&db->mutex);
    for (int i = 0; i < count; i++) {
        kv_start_writeback_fd(fds[i]);
        close(fds[i]);
    }
}

/* Closes the current WAL and opens a new one. The closed WAL is not synced
 * here (that would stall the writers for as long as its bytes take to
 * reach the disk): it joins unsynced_wals, synced by the next promise of
 * durability (kv_db_sync_closed_wals). Requires the mutex and the write
 * queue. */
/* Creates `path` for appending (64 KiB buffer), writes `header` (may be
 * empty) to the kernel, and makes the new name durable: a synced write in
 * the file, or a synced record pointing into it, needs its directory
 * entry to survive a power cut. On failure nothing is left behind. */
static int create_file_durably(kv_db *db, const char *path, const void *header, size_t header_len,
                               kv_writable **out)
{
    kv_writable *file;
    int rc = kv_env_new_writable(db->env, path, 64u << 10, &file);
    if (rc != 0)
        return rc;
    if (header_len > 0) {
        rc = kv_writable_append(file, header, header_len);
        if (rc == 0)
            rc = kv_writable_flush(file);
    }
    if (rc == 0)
        rc = kv_env_sync_dir(db->env, db->path);
    if (rc != 0) {
        kv_writable_close(file);
        kv_env_remove(db->env, path);
        return rc;
    }
    *out = file;
    return 0;
}

int kv_db_new_wal(kv_db *db)
{
    int rc;
    if (db->wal != NULL) {
        kv_writable *closed = kv_log_writer_detach(db->wal);
        db->wal = NULL;
        /* Only the current WAL ends in zeros (prezero_wal_for_sync). Best
         * effort: recovery copes with zeros in any WAL. */
        (void)kv_writable_trim_zeros(closed);
        note_closed_wal_size(db, closed->size);
        if (db->num_unsynced_wals == db->unsynced_wals_cap) {
            db->unsynced_wals_cap = db->unsynced_wals_cap ? 2 * db->unsynced_wals_cap : 4;
            db->unsynced_wals =
                kv_realloc(db->unsynced_wals, db->unsynced_wals_cap * sizeof(kv_writable *));
        }
        db->unsynced_wals[db->num_unsynced_wals++] = closed;
        if (db->num_unsynced_wals > MAX_UNSYNCED_WALS) {
            /* Flushes are not keeping up: bound the open descriptors by
             * syncing the oldest here. (Syncing is no promise, so this need
             * not wait for wal_sync_mutex.) */
            kv_writable *oldest = db->unsynced_wals[0];
            db->num_unsynced_wals--;
            memmove(db->unsynced_wals, db->unsynced_wals + 1,
                    db->num_unsynced_wals * sizeof(kv_writable *));
            rc = kv_writable_sync(oldest);
            int close_rc = kv_writable_close(oldest);
            if (rc == 0)
                rc = close_rc;
            if (rc != 0) { /* as in kv_db_sync_closed_wals: no more promises */
                atomic_store(&db->wal_sync_failed, true);
                return kv_db_set_bg_error(db, rc);
            }
        }
    }
    uint64_t number = kv_version_set_new_file_number(&db->versions);
    char *path = kv_log_file_name(db->path, number);
    kv_writable *file;
    rc = create_file_durably(db, path, NULL, 0, &file);
    free(path);
    if (rc != 0)
        return rc;
    db->wal = kv_log_writer_create(file);
    db->wal_number = number;
    db->wal_broken = false;
    /* The marker: an empty batch (no write makes one: kv_write skips them)
     * whose sequence is the last one appended to the WALs before. Recovery
     * compares it with what it replayed from them: less means an older
     * WAL lost writes in a power cut (it was not synced yet), and this one
     * must not be replayed (see recover_files in db.c). */
    kv_write_batch marker;
    kv_write_batch_init(&marker);
    kv_write_batch_set_sequence(&marker, db->wal_appended_seq);
    rc = kv_log_writer_add_record(db->wal, kv_write_batch_contents(&marker));
    kv_write_batch_free(&marker);
    /* Durable at once (a few bytes), so that every WAL recovery finds
     * carries its marker. */
    if (rc == 0)
        rc = kv_writable_sync(file);
    if (rc != 0) {
        kv_log_writer_close(db->wal);
        db->wal = NULL;
        return rc;
    }
    db->wal_marker_size = db->wal_synced_size = file->size;
    kv_db_add_alive_wal(db, number, 0);
    /* Families holding nothing unflushed need no WAL older than this one. */
    for (size_t i = 0; i < db->num_cfs; i++) {
        kv_cf *cf = db->cfs[i];
        if (!cf->dropped && kv_memtable_num_entries(cf->mem) == 0 && cf->imm.count == 0)
            cf->log_number = number;
    }
    return 0;
}

static void switch_to_new_memtable(kv_db *db, kv_cf *cf)
{
    kv_memtable *old = cf->mem;
    kv_memtable_set_next_log_number(old, db->wal_number);
    kv_memtable_list_add(&cf->imm, old); /* the list takes cf's reference */
    cf->mem = kv_memtable_create(db->next_memtable_id++);
    kv_cf_install_super_version(cf);
    kv_db_maybe_schedule_flush(db, cf);
}

/* When the WALs on disk pass max_total_wal_size, switches (so flushes) the
 * families that hold the oldest WAL alive, as RocksDB does: otherwise a
 * family written rarely keeps every WAL, and recovery replays them all. */
static void limit_total_wal_size(kv_db *db, kv_cf *switched)
{
    uint64_t limit = db->options.max_total_wal_size;
    if (limit == 0)
        limit = 4 * (uint64_t)db->options.cf.write_buffer_size;
    if (db->alive_wal_bytes <= limit)
        return;
    uint64_t oldest = kv_db_min_log_needed(db);
    for (size_t i = 0; i < db->num_cfs; i++) {
        kv_cf *cf = db->cfs[i];
        if (cf == switched || cf->dropped || cf->imm.count > 0 || cf->log_number > oldest)
            continue;
        if (kv_memtable_num_entries(cf->mem) == 0)
            continue;
        kv_info_log_printf(db->info_log,
                           "[%s] flushing: WAL files hold %" PRIu64 " bytes, over %" PRIu64,
                           cf->name, db->alive_wal_bytes, limit);
        switch_to_new_memtable(db, cf);
    }
}

int kv_db_switch_memtable(kv_db *db, kv_cf *cf)
{
    if (db->wal == NULL || kv_log_writer_file(db->wal)->size > db->wal_marker_size) {
        int rc = kv_db_new_wal(db);
        if (rc != 0)
            return rc;
    }
    switch_to_new_memtable(db, cf);
    limit_total_wal_size(db, cf);
    return 0;
}

static void sleep_micros(uint64_t micros)
{
    struct timespec ts = {(time_t)(micros / 1000000), (long)(micros % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Waits on bg_cv with a timeout so a stalled writer re-checks its state
 * even if a wakeup is lost. */
static void wait_for_background(kv_db *db)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += 100 * 1000 * 1000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&db->bg_cv, &db->mutex, &deadline);
}

static int bg_error_status(kv_db *db)
{
    return kv_error(db->bg_error, "%s", db->bg_errmsg);
}

/* Makes room in every family's memtable for the leader's group: switches
 * full memtables; stops writes while all of a family's write buffers wait
 * for flush (a flush ends within a second, and slowing every write in the
 * meantime cost more throughput than it saved), or while level 0 or the
 * pending compaction bytes are past their stop limits; slows them down
 * past the slowdown limits. Requires the mutex and the write queue; may
 * release the mutex while waiting. */
static int make_room_for_write(kv_db *db, size_t batch_bytes)
{
    bool delayed = false, stop_counted = false;
    for (;;) {
        /* A flush failing for lack of space does not refuse writes that
         * still fit (a deletion is what frees space), only writes that need
         * a flush first (below). Any other background error does. */
        if (db->bg_error && db->bg_error != KV_NO_SPACE)
            return bg_error_status(db);
        if (db->shutting_down)
            return kv_error(KV_SHUTDOWN, "database is closing");
        if (db->wal == NULL) {
            int rc = kv_db_new_wal(db);
            if (rc != 0)
                return rc;
        }
        kv_cf *full = NULL, *stopped = NULL;
        const char *why = NULL;
        bool slow = false;
        bool compacting = db->options.max_background_compactions > 0;
        for (size_t i = 0; i < db->num_cfs && full == NULL && stopped == NULL; i++) {
            kv_cf *cf = db->cfs[i];
            if (cf->dropped)
                continue;
            const kv_cf_options *o = &cf->options;
            size_t limit = (size_t)o->max_write_buffer_number - 1;
            size_t level0 = cf->current->num_files[0];
            uint64_t pending = compacting ? kv_compaction_pending_bytes(o, cf->current) : 0;
            /* An empty memtable is never switched: with a write buffer
             * near the minimum its own overhead can pass the limit, and
             * switching it would only make another. */
            if (kv_memtable_memory_usage(cf->mem) >= o->write_buffer_size &&
                (kv_memtable_num_entries(cf->mem) > 0 ||
                 kv_memtable_num_range_deletes(cf->mem) > 0)) {
                full = cf;
                if (cf->imm.count >= limit) {
                    stopped = cf;
                    why = "all write buffers wait for flush";
                }
            } else if (compacting && level0 >= (size_t)o->level0_stop_writes_trigger) {
                stopped = cf;
                why = "too many level-0 files";
            } else if (compacting && pending >= o->hard_pending_compaction_bytes_limit) {
                stopped = cf;
                why = "too many pending compaction bytes";
            } else if ((compacting && level0 >= (size_t)o->level0_slowdown_writes_trigger) ||
                       (compacting && pending >= o->soft_pending_compaction_bytes_limit)) {
                slow = true;
            }
        }
        bool no_space = db->bg_error == KV_NO_SPACE || db->bg_no_space;
        if (stopped != NULL && no_space && stopped != full) {
            /* Stopped for level 0 or pending compaction bytes, which a
             * compaction short of space will not fix soon: let writes that
             * fit in the memtable through (a deletion is what frees space). */
            stopped = NULL;
        }
        if (stopped != NULL && no_space)
            return kv_error(KV_NO_SPACE, "writes stopped (%s) while flushes lack space", why);
        if (stopped != NULL) {
            /* Stop until a flush or compaction ends. */
            uint64_t start = kv_env_now_micros();
            if (!stop_counted) {
                stop_counted = true;
                atomic_fetch_add(&db->stats.stall_stops, 1);
                kv_info_log_printf(db->info_log, "stopping writes: column family %s: %s",
                                   stopped->name, why);
            }
            kv_db_maybe_schedule_flush(db, stopped);
            kv_db_maybe_schedule_compaction(db);
            wait_for_background(db);
            atomic_fetch_add(&db->stats.stall_micros, kv_env_now_micros() - start);
            continue;
        }
        if (full != NULL) {
            int rc = kv_db_switch_memtable(db, full);
            if (rc != 0)
                return rc;
            continue;
        }
        if (slow && !delayed) {
            /* One delay per group, proportional to its size. */
            uint64_t micros = (uint64_t)batch_bytes * 1000000 / db->options.delayed_write_rate;
            if (micros < 100)
                micros = 100;
            delayed = true;
            atomic_fetch_add(&db->stats.stall_slowdowns, 1);
            pthread_mutex_unlock(&db->mutex);
            sleep_micros(micros);
            pthread_mutex_lock(&db->mutex);
            atomic_fetch_add(&db->stats.stall_micros, micros);
            continue;
        }
        return 0;
    }
}

/* Gathers the batches queued behind the leader into one group: at most
 * MAX_GROUP_BYTES (less when the leader's own batch is small, so a small
 * write is not held up by a large one), never a sync write behind a
 * non-sync leader, never a batch kept in the tree with one that is not
 * (or the other way round), never an exclusive operation. Returns the
 * group's batch and its last writer. */
static kv_write_batch *build_group(kv_db *db, kv_writer **last_writer)
{
    kv_writer *first = db->writers_head;
    kv_write_batch *result = first->batch;
    size_t size = kv_write_batch_size(first->batch);
    size_t max_size = size <= SMALL_BATCH_BYTES ? size + SMALL_BATCH_BYTES : MAX_GROUP_BYTES;
    *last_writer = first;
    for (kv_writer *w = first->next; w != NULL; w = w->next) {
        if (w->batch == NULL || (w->sync && !first->sync) ||
            w->batch->keep_in_tree != first->batch->keep_in_tree)
            break;
        size += kv_write_batch_size(w->batch);
        if (size > max_size)
            break;
        if (result == first->batch) {
            kv_write_batch_clear(&db->group_batch);
            kv_write_batch_append(&db->group_batch, first->batch);
            db->group_batch.keep_in_tree = first->batch->keep_in_tree;
            result = &db->group_batch;
        }
        kv_write_batch_append(result, w->batch);
        *last_writer = w;
    }
    return result;
}

typedef struct insert_context {
    kv_db *db;
    kv_blob_file *blob; /* the blob file the group's indexes point into */
} insert_context;

static int insert_into_memtable(void *arg, uint32_t cf_id, kv_seq seq, int type, kv_slice key,
                                kv_slice value)
{
    insert_context *ctx = arg;
    kv_cf *cf = NULL;
    for (size_t i = 0; i < ctx->db->num_cfs; i++)
        if (ctx->db->cfs[i]->id == cf_id)
            cf = ctx->db->cfs[i];
    if (cf != NULL) { /* validated before queuing; a family dropped since is skipped */
        kv_memtable_add(cf->mem, seq, type, key, value);
        if (type == KV_TYPE_BLOB_INDEX)
            kv_memtable_pin_blob(cf->mem, ctx->blob);
    }
    return 0;
}

/* ---- key-value separation (blob.h) ---- */

/* Bytes of the values in a group that may go to a blob file. */
typedef struct blob_scan {
    kv_db *db;
    uint64_t bytes;
} blob_scan;

static uint32_t blob_min_size(kv_db *db, uint32_t cf_id)
{
    kv_cf *cf = kv_db_find_cf_by_id(db, cf_id);
    return cf != NULL ? cf->options.blob_min_size : 0;
}

static int scan_blob_bytes(void *arg, uint32_t cf_id, kv_seq seq, int type, kv_slice key,
                           kv_slice value)
{
    (void)seq, (void)key;
    blob_scan *scan = arg;
    if (type == KV_TYPE_VALUE) {
        uint32_t min = blob_min_size(scan->db, cf_id);
        if (min > 0 && value.size >= min)
            scan->bytes += value.size;
    }
    return 0;
}

/* Closes the blob file being written, if any: it joins the closed files
 * waiting for a sync (what it holds is in use), with its final size for
 * garbage collection, and the writer's reference goes (memtables and
 * tables hold their own). `why` (may be NULL) goes to the LOG. Requires
 * the mutex and the write queue. */
static void close_blob_writer(kv_db *db, const char *why)
{
    kv_writable *old = db->blob_writer;
    kv_blob_file *object = db->blob_active;
    if (old == NULL)
        return;
    atomic_store(&object->size, old->size);
    db->blob_writer = NULL;
    db->blob_active = NULL;
    if (db->num_unsynced_blobs == db->unsynced_blobs_cap) {
        db->unsynced_blobs_cap = db->unsynced_blobs_cap ? 2 * db->unsynced_blobs_cap : 8;
        db->unsynced_blobs =
            kv_realloc(db->unsynced_blobs, db->unsynced_blobs_cap * sizeof(kv_writable *));
    }
    db->unsynced_blobs[db->num_unsynced_blobs++] = old;
    kv_start_writeback_fd(old->fd);
    if (why != NULL)
        kv_info_log_printf(db->info_log, "blob file %06" PRIu64 ".blob sealed: %s", object->number,
                           why);
    kv_blob_file_unref(object);
}

/* Starts a new blob file for the leader to append to; the one before it
 * is closed and waits for a sync with the closed WALs. Called by the
 * leader without the mutex. */
static int rotate_blob_file(kv_db *db)
{
    pthread_mutex_lock(&db->mutex);
    uint64_t number = kv_version_set_new_file_number(&db->versions);
    pthread_mutex_unlock(&db->mutex);
    char *path = kv_blob_file_name(db->path, number);
    char header[KV_BLOB_HEADER_SIZE];
    kv_blob_header_encode(header);
    kv_writable *file;
    int rc = create_file_durably(db, path, header, sizeof(header), &file);
    free(path);
    if (rc != 0)
        return rc;
    kv_blob_file *object = kv_blob_set_get(&db->blobs, number);
    pthread_mutex_lock(&db->mutex);
    close_blob_writer(db, NULL);
    db->blob_writer = file;
    db->blob_active = object;
    db->blob_synced_size = 0;
    atomic_store(&db->blob_handed_size, file->flushed);
    pthread_mutex_unlock(&db->mutex);
    kv_info_log_printf(db->info_log, "blob file %06" PRIu64 ".blob started", number);
    return 0;
}

/* Called by the leader, without the mutex. */
static void seal_blob_file_now(kv_db *db, const char *why)
{
    pthread_mutex_lock(&db->mutex);
    close_blob_writer(db, why);
    pthread_mutex_unlock(&db->mutex);
}

/* An exclusive operation of the write queue (the mutex is held). */
static int seal_blob_op(kv_db *db, void *arg)
{
    (void)arg;
    close_blob_writer(db, "mostly garbage");
    return 0;
}

int kv_db_seal_blob_file(kv_db *db)
{
    return kv_db_write_impl(db, false, NULL, seal_blob_op, NULL);
}

typedef struct blob_separation {
    kv_db *db;
    kv_write_batch *out;
    kv_buf *records;
    kv_buf index;
    uint64_t number, offset;
} blob_separation;

static int separate_record(void *arg, uint32_t cf_id, kv_seq seq, int type, kv_slice key,
                           kv_slice value)
{
    (void)seq;
    blob_separation *sep = arg;
    switch (type) {
    case KV_TYPE_VALUE: {
        uint32_t min = blob_min_size(sep->db, cf_id);
        if (min == 0 || value.size < min) {
            kv_write_batch_put_cf_id(sep->out, cf_id, key, value);
            break;
        }
        kv_blob_ref ref = {sep->number, sep->offset, 0};
        ref.size = (uint32_t)kv_blob_record_append(sep->records, key, value);
        sep->offset += ref.size;
        kv_buf_clear(&sep->index);
        kv_blob_ref_encode(&ref, &sep->index);
        kv_write_batch_put_blob_index_cf_id(sep->out, cf_id, key, kv_buf_slice(&sep->index));
        break;
    }
    case KV_TYPE_DELETION:
        kv_write_batch_delete_cf_id(sep->out, cf_id, key);
        break;
    case KV_TYPE_RANGE_DELETION:
        kv_write_batch_delete_range_cf_id(sep->out, cf_id, key, value);
        break;
    default:
        return kv_error(KV_INVALID_ARGUMENT, "write batch: record of type %d", type);
    }
    return 0;
}

/* When the group carries enough large values for families that separate
 * them, appends those values to the blob file (handed to the kernel, so
 * that a killed process loses none of them) and sets *out to a copy of the
 * group with blob indexes in their place (NULL: the group stays as it is).
 * Called by the leader without the mutex. */
static int separate_blobs(kv_db *db, kv_write_batch *group, kv_write_batch **out)
{
    *out = NULL;
    if (group->keep_in_tree)
        return 0;
    blob_scan scan = {db, 0};
    kv_write_batch_iterate(group, scan_blob_bytes, &scan);
    if (scan.bytes == 0 || scan.bytes < db->options.blob_min_batch_bytes)
        return 0;
    if (db->blob_writer == NULL || db->blob_writer->size >= db->options.blob_file_size) {
        int rc = rotate_blob_file(db);
        if (rc != 0)
            return rc;
    }
    kv_writable *file = db->blob_writer;
    kv_write_batch *separated = &db->blob_group;
    kv_write_batch_clear(separated);
    kv_write_batch_set_sequence(separated, kv_write_batch_sequence(group));
    kv_buf *records = &db->blob_records;
    kv_buf_clear(records);
    kv_buf_reserve(records, scan.bytes + (size_t)kv_write_batch_count(group) * 64);
    blob_separation sep = {db, separated, records, {0}, db->blob_active->number, file->size};
    int rc = kv_write_batch_iterate(group, separate_record, &sep);
    kv_buf_free(&sep.index);
    if (rc == 0)
        rc = kv_writable_append(file, records->data, records->size);
    if (rc == 0)
        rc = kv_writable_flush(file);
    if (rc == 0) {
        atomic_fetch_add(&db->stats.blob_bytes_written, records->size);
        atomic_store(&db->blob_handed_size, file->flushed);
        *out = separated;
        return 0;
    }
    /* The file may hold part of the group's records now (nothing points
     * to them): it is closed as it is, to be synced with the others (the
     * records before it are in use), and the next group starts a new file
     * rather than write behind the failed part. */
    char message[512];
    kv_error_copy(message, sizeof(message));
    kv_buf_clear(&file->buffer);
    file->size = file->flushed;
    seal_blob_file_now(db, "an append failed");
    return kv_error(rc, "%s", message);
}

/* Zeros written ahead of the WAL's data before a sync (kv_writable_prezero):
 * the synced writes that follow overwrite them, so their fdatasync has only
 * data to write, not the file's new size and blocks (on ext4 a journal
 * commit less: 4,450 synced 4 KiB appends/s became 7,300 in a test
 * program here). Recovery takes the zeros for the end of the WAL (wal.h).
 * Done only for syncs that follow little data (fsync-heavy work), so that
 * large writes synced now and then are not written twice. */
#define WAL_PREZERO_BYTES (1u << 20)

static void prezero_wal_for_sync(kv_db *db, kv_writable *file)
{
    if (file->size <= file->zeroed_end || file->size - db->wal_synced_size > WAL_PREZERO_BYTES / 4)
        return;
    /* Best effort: on failure the sync goes on without them (the appends
     * past what was zeroed extend the file as before), and a real problem
     * with the file resurfaces in the write or the fdatasync. */
    (void)kv_writable_prezero(file, file->size + WAL_PREZERO_BYTES);
}

/* Appends the group to the WAL. On failure the WAL is cut back to its last
 * complete record (so a failed write can never reappear at recovery),
 * synced (so the acknowledged writes before it are as durable as a later
 * synced write in the next WAL: what survives a power cut stays a prefix),
 * and closed; the next write opens a new WAL. If the cut or the sync fails
 * too, *durability_lost is set: the caller must then refuse every later
 * promise of durability. Runs without the mutex. */
static int append_to_wal(kv_db *db, kv_write_batch *group, bool sync, bool *durability_lost)
{
    kv_writable *file = kv_log_writer_file(db->wal);
    uint64_t good_size = file->size;
    int rc = kv_log_writer_add_record(db->wal, kv_write_batch_contents(group));
    if (rc == 0)
        rc = kv_writable_flush(file);
    if (rc == 0 && sync)
        rc = kv_db_sync_closed_wals(db); /* older WALs first: a prefix survives */
    if (rc == 0 && sync) {
        prezero_wal_for_sync(db, file);
        rc = kv_writable_sync(file);
        atomic_fetch_add(&db->stats.wal_syncs, 1);
        if (rc == 0)
            db->wal_synced_size = file->size;
    }
    if (rc == 0) {
        atomic_fetch_add(&db->stats.wal_bytes, file->size - good_size);
        atomic_fetch_add(&db->stats.wal_writes, 1);
        if (kv_write_batch_count(group) > 0)
            db->wal_appended_seq = kv_write_batch_sequence(group) + kv_write_batch_count(group) - 1;
        return 0;
    }
    char message[512];
    kv_error_copy(message, sizeof(message));
    /* Forget what was buffered or half written, so close writes nothing. */
    kv_buf_clear(&file->buffer);
    int cut = kv_env_truncate(db->env, file->path, good_size);
    if (cut == 0) {
        file->size = file->flushed = good_size;
        cut = kv_writable_sync(file);
    }
    if (cut != 0) {
        *durability_lost = true;
        file->size = file->flushed;
    }
    kv_log_writer_close(db->wal);
    db->wal = NULL;
    db->wal_broken = true;
    return kv_error(rc, "%s", message);
}

static void finish_writers(kv_db *db, kv_writer *last_writer, int status, const char *message)
{
    for (;;) {
        kv_writer *w = db->writers_head;
        db->writers_head = w->next;
        if (db->writers_head == NULL)
            db->writers_tail = NULL;
        w->status = status;
        if (status != 0)
            snprintf(w->errmsg, sizeof(w->errmsg), "%s", message);
        w->done = true;
        pthread_cond_signal(&w->cv);
        if (w == last_writer)
            break;
    }
    if (db->writers_head != NULL)
        pthread_cond_signal(&db->writers_head->cv);
}

static int check_batch_families(kv_db *db, kv_write_batch *batch);

int kv_db_write_impl(kv_db *db, bool sync, kv_write_batch *batch,
                     int (*exclusive_op)(kv_db *, void *), void *exclusive_arg)
{
    kv_writer w;
    memset(&w, 0, sizeof(w));
    w.batch = batch;
    w.sync = sync;
    w.exclusive_op = exclusive_op;
    w.exclusive_arg = exclusive_arg;
    pthread_cond_init(&w.cv, NULL);

    pthread_mutex_lock(&db->mutex);
    if (batch != NULL) {
        /* Reject a batch naming a family that does not exist before it can
         * reach the WAL. */
        int rc = check_batch_families(db, batch);
        if (rc != 0) {
            pthread_mutex_unlock(&db->mutex);
            pthread_cond_destroy(&w.cv);
            return rc;
        }
    }
    if (db->writers_tail)
        db->writers_tail->next = &w;
    else
        db->writers_head = &w;
    db->writers_tail = &w;
    while (!w.done && db->writers_head != &w)
        pthread_cond_wait(&w.cv, &db->mutex);
    if (w.done) {
        pthread_mutex_unlock(&db->mutex);
        pthread_cond_destroy(&w.cv);
        if (w.status != 0)
            kv_error(w.status, "%s", w.errmsg);
        return w.status;
    }

    /* This thread leads. */
    int status;
    kv_writer *last_writer = &w;
    if (exclusive_op != NULL) {
        status = db->bg_error && db->bg_error != KV_NO_SPACE ? bg_error_status(db)
                                                             : exclusive_op(db, exclusive_arg);
    } else {
        status = make_room_for_write(db, kv_write_batch_size(batch));
        if (status == 0) {
            kv_write_batch *group = build_group(db, &last_writer);
            kv_seq last_seq = kv_version_set_last_sequence(&db->versions);
            uint32_t count = kv_write_batch_count(group);
            kv_write_batch_set_sequence(group, last_seq + 1);
            pthread_mutex_unlock(&db->mutex);

            bool durability_lost = false;
            kv_write_batch *separated = NULL;
            if (db->blobs_enabled)
                status = separate_blobs(db, group, &separated);
            if (separated != NULL)
                group = separated;
            if (status == 0)
                status = append_to_wal(db, group, sync, &durability_lost);
            if (status == 0) {
                insert_context ctx = {db, separated != NULL ? db->blob_active : NULL};
                status = kv_write_batch_iterate(group, insert_into_memtable, &ctx);
            }
            size_t members = 0;
            for (kv_writer *m = &w;; m = m->next) {
                members++;
                if (m == last_writer)
                    break;
            }
            atomic_fetch_add(&db->stats.write_groups, 1);
            atomic_fetch_add(&db->stats.grouped_writes, members);
            if (status == 0) {
                atomic_fetch_add(&db->stats.keys_written, count);
                atomic_fetch_add(&db->stats.bytes_written, kv_write_batch_size(group));
            }
            pthread_mutex_lock(&db->mutex);
            if (durability_lost) {
                char message[512];
                kv_error_copy(message, sizeof(message));
                kv_error(KV_IO_ERROR,
                         "WAL: after a failed write, the writes acknowledged before it could not "
                         "be made durable (%s); reopen the database",
                         message);
                kv_db_set_bg_error(db, KV_IO_ERROR);
                kv_error(status, "%s", message);
            }
            /* Publish even after a failed WAL write: the numbers are burnt,
             * so a retried write can never reuse them. */
            kv_version_set_publish_sequence(&db->versions, last_seq + count);
        }
    }
    char message[512] = "";
    if (status != 0)
        kv_error_copy(message, sizeof(message));
    finish_writers(db, last_writer, status, message);
    pthread_mutex_unlock(&db->mutex);
    pthread_cond_destroy(&w.cv);
    if (status != 0)
        kv_error(status, "%s", message);
    return status;
}

/* ---- public write API ---- */

int kv_write(kv_db *db, const kv_write_options *wo, kv_write_batch *batch)
{
    if (batch == NULL)
        return kv_error(KV_INVALID_ARGUMENT, "kv_write: no batch");
    if (kv_write_batch_count(batch) == 0)
        return 0;
    return kv_db_write_impl(db, wo ? wo->sync : false, batch, NULL, NULL);
}

typedef struct family_check {
    kv_db *db;
} family_check;

static int check_family(void *arg, uint32_t cf_id, kv_seq seq, int type, kv_slice key,
                        kv_slice value)
{
    family_check *fc = arg;
    kv_cf *cf = kv_db_find_cf_by_id(fc->db, cf_id);
    if (cf == NULL)
        return kv_error(KV_INVALID_ARGUMENT,
                        "write batch names column family %u, which does not "
                        "exist or was dropped",
                        cf_id);
    if (type == KV_TYPE_RANGE_DELETION && kv_slice_compare(key, value) > 0)
        return kv_error(KV_INVALID_ARGUMENT, "delete_range: begin is after end");
    if (type == KV_TYPE_BLOB_INDEX)
        return kv_error(KV_INVALID_ARGUMENT, "write batch carries a blob index");
    return 0;
}

/* Requires the mutex. */
static int check_batch_families(kv_db *db, kv_write_batch *batch)
{
    family_check fc = {db};
    return kv_write_batch_iterate(batch, check_family, &fc);
}

static int write_single(kv_db *db, const kv_write_options *wo, kv_write_batch *batch)
{
    int rc = kv_write(db, wo, batch);
    kv_write_batch_free(batch);
    return rc;
}

int kv_put(kv_db *db, const kv_write_options *wo, kv_cf *cf, const void *key, size_t key_len,
           const void *value, size_t value_len)
{
    kv_write_batch batch;
    kv_write_batch_init(&batch);
    /* Room for the whole record at once: no regrowing copies of a large
     * value. */
    kv_buf_reserve(&batch.rep,
                   KV_WRITE_BATCH_HEADER + kv_write_batch_put_record_max(key_len, value_len));
    kv_write_batch_put(&batch, cf, key, key_len, value, value_len);
    return write_single(db, wo, &batch);
}

int kv_delete(kv_db *db, const kv_write_options *wo, kv_cf *cf, const void *key, size_t key_len)
{
    kv_write_batch batch;
    kv_write_batch_init(&batch);
    kv_write_batch_delete(&batch, cf, key, key_len);
    return write_single(db, wo, &batch);
}

int kv_delete_range(kv_db *db, const kv_write_options *wo, kv_cf *cf, const void *begin,
                    size_t begin_len, const void *end, size_t end_len)
{
    kv_write_batch batch;
    kv_write_batch_init(&batch);
    kv_write_batch_delete_range(&batch, cf, begin, begin_len, end, end_len);
    return write_single(db, wo, &batch);
}

void kv_write_batch_put(kv_write_batch *batch, kv_cf *cf, const void *key, size_t key_len,
                        const void *value, size_t value_len)
{
    kv_write_batch_put_cf_id(batch, cf->id, kv_slice_make(key, key_len),
                             kv_slice_make(value, value_len));
}

void kv_write_batch_delete(kv_write_batch *batch, kv_cf *cf, const void *key, size_t key_len)
{
    kv_write_batch_delete_cf_id(batch, cf->id, kv_slice_make(key, key_len));
}

void kv_write_batch_delete_range(kv_write_batch *batch, kv_cf *cf, const void *begin,
                                 size_t begin_len, const void *end, size_t end_len)
{
    kv_write_batch_delete_range_cf_id(batch, cf->id, kv_slice_make(begin, begin_len),
                                      kv_slice_make(end, end_len));
}

/* A sync of the WAL alone, as fsync() of a file in lsmfs needs: an empty
 * synced group commit, so it also waits for writes ahead of it. */
static int sync_wal_op(kv_db *db, void *arg)
{
    (void)arg;
    /* The queue keeps every other writer away from the WAL: the mutex need
     * not be held across the fsync. */
    kv_writable *file = db->wal != NULL ? kv_log_writer_file(db->wal) : NULL;
    pthread_mutex_unlock(&db->mutex);
    int rc = kv_db_sync_closed_wals(db);
    if (rc == 0 && file != NULL) {
        prezero_wal_for_sync(db, file);
        rc = kv_writable_sync(file);
        if (rc == 0)
            db->wal_synced_size = file->size;
    }
    pthread_mutex_lock(&db->mutex);
    if (rc == 0)
        atomic_fetch_add(&db->stats.wal_syncs, 1);
    return rc;
}

int kv_sync_wal(kv_db *db)
{
    return kv_db_write_impl(db, true, NULL, sync_wal_op, NULL);
}

kv_seq kv_db_oldest_snapshot(kv_db *db, const kv_cf *cf)
{
    for (kv_snapshot_node *s = db->snapshots.next; s != &db->snapshots; s = s->next)
        if (cf == NULL || s->cf == NULL || s->cf == cf)
            return s->seq; /* the list is oldest first */
    return kv_version_set_last_sequence(&db->versions);
}
