/*
 * db_impl.h — the database object shared by the db_*.c files (open and
 * recovery, write path, reads, background work). Not part of the public
 * interface.
 *
 * Locking: `mutex` protects everything here that is not atomic, and the
 * column families' non-atomic state. It is held only for short stretches:
 * the WAL write, memtable inserts, SST building and reads all run without
 * it. The write queue gives one leader at a time the right to append to
 * the WAL and insert into memtables (group commit).
 */
#ifndef KV_DB_IMPL_H
#define KV_DB_IMPL_H

#include "blob.h"
#include "cache.h"
#include "column_family.h"
#include "flush_scheduler.h"
#include "info_log.h"
#include "kv.h"
#include "table_cache.h"
#include "version_set.h"
#include "wal.h"
#include "write_batch.h"

#include <pthread.h>
#include <stdatomic.h>

/* A thread waiting in the write queue. */
typedef struct kv_writer {
    kv_write_batch *batch; /* NULL: an exclusive operation, see below */
    bool sync;
    bool done;
    int status;
    char errmsg[512];
    /* Exclusive operations run by the leader while it holds the queue:
     * switch memtables for a flush, create or drop a family. */
    int (*exclusive_op)(struct kv_db *db, void *arg);
    void *exclusive_arg;
    pthread_cond_t cv;
    struct kv_writer *next;
} kv_writer;

typedef struct kv_snapshot_node {
    kv_seq seq;
    const struct kv_cf *cf; /* the one family it keeps, or NULL: all */
    struct kv_snapshot_node *prev, *next;
} kv_snapshot_node;

struct kv_snapshot {
    kv_snapshot_node node;
};

typedef struct kv_stats_counters {
    _Atomic uint64_t keys_written, bytes_written;
    _Atomic uint64_t wal_bytes, wal_syncs, wal_writes;
    _Atomic uint64_t write_groups, grouped_writes;
    _Atomic uint64_t flushes, flush_bytes_in, flush_bytes_out, flush_micros;
    _Atomic uint64_t compactions, compaction_bytes_read, compaction_bytes_written,
        compaction_micros;
    _Atomic uint64_t stall_micros, stall_slowdowns, stall_stops;
    _Atomic uint64_t gets, get_hits;
    _Atomic uint64_t sst_bytes_written;
    _Atomic uint64_t trivial_moves, obsolete_files_deleted;
    _Atomic uint64_t blob_bytes_written, blob_files_deleted;
    _Atomic uint64_t blob_gc_runs, blob_gc_bytes_relocated;
} kv_stats_counters;

struct kv_db {
    char *path;
    kv_options options;
    kv_env *env;
    kv_file_lock *lock;
    kv_info_log *info_log;
    kv_cache *block_cache;
    kv_table_cache *table_cache;

    pthread_mutex_t mutex;
    pthread_cond_t bg_cv; /* background work finished, or new work */
    kv_version_set versions;

    /* Column families by position; dropped ones stay until close so that
     * handles remain valid. */
    kv_cf **cfs;
    size_t num_cfs, cfs_cap;

    /* WAL */
    kv_log_writer *wal;
    uint64_t wal_number;
    /* The last sequence appended to a WAL (recovered ones included); each
     * new WAL begins with it (a marker: see kv_db_new_wal). */
    kv_seq wal_appended_seq;
    uint64_t wal_marker_size;  /* the current WAL's size holding just its marker */
    uint64_t wal_synced_size;  /* the current WAL's size at its last sync */
    bool wal_broken;           /* a failed append: switch to a new WAL first */
    uint64_t *alive_wals;      /* numbers of WAL files on disk, ascending */
    uint64_t *alive_wal_sizes; /* their sizes (the current one's: 0 until closed) */
    size_t num_alive_wals, alive_wals_cap;
    uint64_t alive_wal_bytes; /* sum of alive_wal_sizes */
    /* Closed WALs not synced yet, oldest first, their files still open
     * (see kv_db_sync_closed_wals). */
    kv_writable **unsynced_wals;
    size_t num_unsynced_wals, unsynced_wals_cap;
    /* Held while closed WALs are synced, so that no one counts on a WAL
     * being durable while an older one is still being synced. Taken before
     * the mutex, never while holding it. */
    pthread_mutex_t wal_sync_mutex;
    /* A closed WAL failed to sync: its tail may never reach the disk, so
     * every later kv_db_sync_closed_wals fails too (a retry that succeeds
     * proves nothing about the pages the failure dropped). */
    atomic_bool wal_sync_failed;
    /* A flush or compaction failed for lack of space and none has
     * succeeded since: writes that would have to wait for one are refused
     * with KV_NO_SPACE instead (the wait could last until space is freed). */
    bool bg_no_space;
    /* Flushes that failed for lack of space back off until then. */
    uint64_t flush_paused_until; /* kv_env_now_micros() */
    /* Compactions that failed for lack of space back off until then. */
    uint64_t compaction_paused_until; /* kv_env_now_micros() */
    unsigned compaction_no_space_failures;
    uint64_t total_wal_bytes_estimate;

    /* Write queue (group commit). */
    kv_writer *writers_head, *writers_tail;
    kv_write_batch group_batch; /* scratch for merging a group */

    kv_snapshot_node snapshots; /* circular list head; oldest after head */

    kv_flush_scheduler flush_scheduler;
    pthread_t *bg_threads;
    int num_bg_threads;
    int bg_flushes_running;
    atomic_bool shutting_down; /* read by running compactions without the mutex */
    int bg_error;              /* sticky background error; 0 when healthy */
    char bg_errmsg[512];

    /* File numbers of SSTs being written (never deleted as obsolete). */
    uint64_t *pending_outputs;
    size_t num_pending_outputs, pending_outputs_cap;
    uint64_t next_memtable_id;
    /* Files compacted away, each with a reference held here: deleted once
     * the reference is the last (no version, hence no reader, uses them). */
    kv_file_meta **obsolete_files;
    size_t num_obsolete_files, obsolete_files_cap;
    int num_flush_threads;
    int bg_compactions_running;
    int manual_compactions_waiting;

    /* Blob files (blob.h). The writer's state is the leader's; the
     * active file changes under the mutex. */
    kv_blob_set blobs;
    kv_writable *blob_writer;          /* the file values are appended to, or NULL */
    kv_blob_file *blob_active;         /* its object (a reference) */
    uint64_t blob_synced_size;         /* of blob_writer, at its last sync (mutex) */
    _Atomic uint64_t blob_handed_size; /* of blob_writer, handed to the kernel */
    /* Blob files closed but not synced yet (synced with the closed WALs). */
    kv_writable **unsynced_blobs;
    size_t num_unsynced_blobs, unsynced_blobs_cap;
    bool blobs_enabled;           /* some family separates values */
    bool blob_seal_wanted;        /* kv_compaction_pick_blob_gc: seal the file being written */
    bool blobs_checked_at_replay; /* blob files exist: check WAL records' values */
    kv_write_batch blob_group;    /* the leader's scratch: the group with blob indexes */
    kv_buf blob_records;          /* the leader's scratch: the records appended */

    kv_stats_counters stats;
};

/* options.c */
int kv_options_validate(const kv_options *options);

/* db.c */
kv_cf *kv_db_find_cf_by_id(kv_db *db,
                           uint32_t id); /* live only; mutex not required for lookup by leader */
/* Deletes WALs no family needs and compacted-away SSTs no version uses any
 * more; with scan_directory, also every table, MANIFEST and temporary file
 * in the directory that nothing refers to (at open, after a drop). Requires
 * the mutex; decides under it, then releases it while the files are
 * removed (which can take milliseconds each) and takes it again. */
void kv_db_delete_obsolete_files(kv_db *db, bool scan_directory);
uint64_t kv_db_min_log_needed(kv_db *db);
int kv_db_set_bg_error(kv_db *db, int status); /* records the thread's message */
/* Sequence numbers of the live snapshots that keep family cf (those of
 * all families and cf's own), ascending (malloc'd). Requires the mutex. */
kv_seq *kv_db_snapshot_sequences(kv_db *db, const kv_cf *cf, size_t *count);
/* Writes a failed read's error (corruption or I/O) into the LOG, naming
 * file and offset as kv_errmsg() does; other statuses are ignored. */
void kv_db_log_read_error(kv_db *db, int status);

/* db_read.c */
/* Reads the value a blob index points to (for key) into out. */
int kv_db_read_blob(kv_db *db, kv_slice key, kv_slice index, kv_buf *out);

/* db_write.c */
void kv_db_add_alive_wal(kv_db *db, uint64_t number, uint64_t size);

/* Syncs (and closes) every closed WAL not synced yet, oldest first. Every
 * promise of durability calls it before it makes anything newer durable:
 * a synced write or kv_sync_wal before syncing the current WAL, a flush
 * before its MANIFEST edit. What survives a power cut is then a prefix of
 * the writes, which recovery relies on (a torn WAL ends the replay; see
 * db.c). Call without the mutex. */
int kv_db_sync_closed_wals(kv_db *db);
/* Starts the write-back of the closed WALs not synced yet, without waiting
 * (so that a kv_db_sync_closed_wals soon after has less to do). Call
 * without the mutex. */
void kv_db_start_closed_wal_writeback(kv_db *db);
/* Syncs and closes the current WAL (if any) and opens a new one. Requires
 * the mutex and the write queue (or exclusive use during open). */
int kv_db_new_wal(kv_db *db);
int kv_db_write_impl(kv_db *db, bool sync, kv_write_batch *batch,
                     int (*exclusive_op)(kv_db *, void *), void *exclusive_arg);
/* Switches cf's memtable (and the WAL) and schedules its flush. Requires
 * the mutex and the write queue. */
int kv_db_switch_memtable(kv_db *db, kv_cf *cf);
/* Closes the blob file being written (the next large write starts a new
 * one), so that garbage collection can take it. Call without the mutex;
 * runs as an exclusive operation of the write queue. */
int kv_db_seal_blob_file(kv_db *db);
/* The oldest snapshot that keeps cf (NULL: any), or the latest sequence.
 * Requires the mutex. */
kv_seq kv_db_oldest_snapshot(kv_db *db, const kv_cf *cf);

/* db_bg.c */
int kv_db_start_background(kv_db *db);
void kv_db_stop_background(kv_db *db);
void kv_db_maybe_schedule_flush(kv_db *db, kv_cf *cf); /* requires the mutex */
/* Wakes the compaction threads if some family needs a compaction. */
void kv_db_maybe_schedule_compaction(kv_db *db);             /* requires the mutex */
void kv_db_add_obsolete_file(kv_db *db, kv_file_meta *meta); /* takes a reference */
/* Waits (mutex held) until cf has no immutable memtables, or an error. */
int kv_db_wait_for_flush(kv_db *db, kv_cf *cf);

/* db_iter.c */
kv_iterator *kv_db_iter_create(kv_db *db, kv_cf *cf, kv_superversion *sv, kv_seq snapshot,
                               bool fill_cache);

#endif
