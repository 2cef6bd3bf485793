/*
 * kv.h — the public interface of the kv engine, an embedded LSM-tree
 * key-value store (the design of LevelDB and RocksDB, in C11).
 *
 * A database is a directory. Keys and values are byte strings; keys are
 * ordered bytewise. Data lives in column families, each an independent key
 * space with its own memtables and SST files but sharing one write-ahead log,
 * so a WriteBatch that touches several families is atomic.
 *
 * Errors: every function that can fail returns 0 (KV_OK) or a negative
 * kv_status code. After a failure kv_errmsg() returns a human-readable
 * message for the calling thread ("000012.sst: block checksum mismatch at
 * offset 81920"). Functions are thread-safe unless said otherwise; a
 * kv_iterator and a kv_write_batch belong to one thread at a time.
 */
#ifndef KV_H
#define KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KV_VERSION_STRING "0.1.0"

typedef enum kv_status {
    KV_OK = 0,
    KV_NOT_FOUND = -1,        /* key or column family does not exist */
    KV_CORRUPTION = -2,       /* checksum mismatch, malformed file */
    KV_IO_ERROR = -3,         /* the operating system refused (not ENOSPC) */
    KV_INVALID_ARGUMENT = -4, /* bad option or argument; foreign directory */
    KV_NO_SPACE = -5,         /* the file system is full (ENOSPC, EDQUOT) */
    KV_BUSY = -6,             /* another process holds the database LOCK */
    KV_EXISTS = -7,           /* error_if_exists, or a family name taken */
    KV_NOT_SUPPORTED = -8,    /* on-disk format newer than this library */
    KV_SHUTDOWN = -9,         /* the database is closing */
} kv_status;

/* Short constant name of a status code ("corruption", "no space", ...). */
const char *kv_strerror(int status);

/* The message describing the calling thread's most recent failure. The
 * string stays valid until the thread's next kv call. */
const char *kv_errmsg(void);

typedef struct kv_db kv_db;
typedef struct kv_cf kv_cf; /* a column family handle, owned by the db */
typedef struct kv_write_batch kv_write_batch;
typedef struct kv_iterator kv_iterator;
typedef struct kv_snapshot kv_snapshot;
struct kv_env; /* file-system layer; NULL selects the real (POSIX) one */

enum kv_compression { KV_COMPRESSION_NONE = 0, KV_COMPRESSION_SNAPPY = 1 };

/* Options of one column family. */
typedef struct kv_cf_options {
    size_t write_buffer_size;    /* memtable size that triggers a switch; 64 MiB */
    int max_write_buffer_number; /* memtables (active + immutable) before writes stop; 4 */
    size_t block_size;           /* uncompressed SST data block size; 4 KiB */
    int block_restart_interval;  /* keys between restart points; 16 */
    int bloom_bits_per_key;      /* 0 disables the filter; 10 */
    int compression;             /* enum kv_compression; snappy */
    int level0_file_num_compaction_trigger;       /* 4 */
    int level0_slowdown_writes_trigger;           /* 20 */
    int level0_stop_writes_trigger;               /* 36 */
    uint64_t target_file_size_base;               /* compaction output file size; 64 MiB */
    uint64_t max_bytes_for_level_base;            /* size of level 1; 256 MiB */
    int max_bytes_for_level_multiplier;           /* 10 */
    uint64_t soft_pending_compaction_bytes_limit; /* writes slow down past it; 64 GiB */
    uint64_t hard_pending_compaction_bytes_limit; /* writes stop past it; 256 GiB */
    /* When > 0, compaction also cuts its output where the first N bytes of
     * the user key change, once the output holds 1 MiB (RocksDB's
     * SstPartitioner): the data of one prefix then fills whole files, which
     * kv_delete_files_in_range can drop. 0 (off). */
    int partition_prefix_length;
    /* Key-value separation (kv/blob.h): when > 0, values of at least this
     * many bytes go to a blob file as they are written, and the tree (WAL
     * included) holds a small index in their place — provided the write
     * group carries at least kv_options.blob_min_batch_bytes of them. 0 (off). */
    uint32_t blob_min_size;
} kv_cf_options;

#define KV_MAX_CF_OVERRIDES 4

/* Options of a database. Initialize with kv_options_init() and change
 * fields; kv_open() validates them. */
typedef struct kv_options {
    bool create_if_missing;          /* false */
    bool error_if_exists;            /* false */
    bool paranoid_checks;            /* verify every block read; true */
    size_t block_cache_size;         /* bytes of uncompressed blocks cached; 64 MiB */
    int max_open_files;              /* SST files kept open (bounded fd use); 1000 */
    int max_background_flushes;      /* FlushJob threads; 1 */
    int max_background_compactions;  /* compaction threads; 1 */
    uint64_t max_manifest_file_size; /* MANIFEST rewritten past this; 64 MiB */
    /* When the WAL files kept on disk pass this many bytes, the families
     * that hold the oldest one are flushed, so that a family written
     * rarely cannot keep every WAL alive; 0: 4 x write_buffer_size. */
    uint64_t max_total_wal_size;
    uint64_t delayed_write_rate; /* bytes/s allowed while writes are slowed; 16 MiB */
    /* Blob files (see kv_cf_options.blob_min_size): a write group moves its
     * large values to a blob file only when they add up to this many bytes
     * (smaller groups cost an extra write for little saved); 64 KiB. A new
     * blob file is started past blob_file_size bytes; 64 MiB. */
    uint64_t blob_min_batch_bytes;
    uint64_t blob_file_size;
    struct kv_env *env; /* NULL: the real file system */
    kv_cf_options cf;   /* options of every column family... */
    /* ...except those named here, which use their own (a family's options
     * apply from each open on; nothing of them is stored). */
    struct {
        char name[64];
        kv_cf_options options;
    } cf_overrides[KV_MAX_CF_OVERRIDES];
    int num_cf_overrides; /* 0 */
} kv_options;

void kv_options_init(kv_options *options);

typedef struct kv_write_options {
    bool sync; /* fsync the WAL before returning (group commit shares it) */
} kv_write_options;

typedef struct kv_read_options {
    const kv_snapshot *snapshot; /* NULL: the latest state */
    bool verify_checksums;       /* always verified; kept for API familiarity */
    bool fill_cache;             /* put blocks read into the block cache; true */
} kv_read_options;

void kv_read_options_init(kv_read_options *options);

/* ---- database ---- */

/* Opens (or, with create_if_missing, creates) the database in directory
 * `path`, with all its column families. Replays the WAL. Refuses a directory
 * held by another process (KV_BUSY), a foreign or damaged one
 * (KV_INVALID_ARGUMENT / KV_CORRUPTION), a newer format (KV_NOT_SUPPORTED). */
int kv_open(const kv_options *options, const char *path, kv_db **out);

/* Waits for running background work, releases everything. Memtable
 * contents are safe in the WAL. Returns the first background error, if any. */
int kv_close(kv_db *db);

/* Removes all files of a database that is not open. */
int kv_destroy(const char *path, const kv_options *options);

/* ---- column families ---- */

kv_cf *kv_default_cf(kv_db *db);
/* The family named `name`, or NULL. */
kv_cf *kv_get_cf(kv_db *db, const char *name);
int kv_create_cf(kv_db *db, const char *name, kv_cf **out);
/* Drops a family: its data becomes unreachable and its files are deleted.
 * The handle stays valid (every call on it fails) until kv_close. */
int kv_drop_cf(kv_db *db, kv_cf *cf);
/* Names of live families, in id order; free with kv_free_cf_names. */
int kv_list_cfs(kv_db *db, char ***names, size_t *count);
void kv_free_cf_names(char **names, size_t count);
const char *kv_cf_name(const kv_cf *cf);
uint32_t kv_cf_id(const kv_cf *cf);

/* ---- writes ---- (wo may be NULL: no sync) */

int kv_put(kv_db *db, const kv_write_options *wo, kv_cf *cf, const void *key, size_t key_len,
           const void *value, size_t value_len);
int kv_delete(kv_db *db, const kv_write_options *wo, kv_cf *cf, const void *key, size_t key_len);
/* Deletes every key k with begin <= k < end, as one record. */
int kv_delete_range(kv_db *db, const kv_write_options *wo, kv_cf *cf, const void *begin,
                    size_t begin_len, const void *end, size_t end_len);
/* Applies the batch atomically; the batch is left unchanged. */
int kv_write(kv_db *db, const kv_write_options *wo, kv_write_batch *batch);

/* Makes everything written so far durable (WAL fsync), as fsync does. */
int kv_sync_wal(kv_db *db);

kv_write_batch *kv_write_batch_create(void);
void kv_write_batch_destroy(kv_write_batch *batch);
void kv_write_batch_clear(kv_write_batch *batch);
void kv_write_batch_put(kv_write_batch *batch, kv_cf *cf, const void *key, size_t key_len,
                        const void *value, size_t value_len);
void kv_write_batch_delete(kv_write_batch *batch, kv_cf *cf, const void *key, size_t key_len);
void kv_write_batch_delete_range(kv_write_batch *batch, kv_cf *cf, const void *begin,
                                 size_t begin_len, const void *end, size_t end_len);
uint32_t kv_write_batch_count(const kv_write_batch *batch);
size_t kv_write_batch_size(const kv_write_batch *batch);
/* Keeps the batch's values in the tree (WAL, memtable, tables) even where
 * they would go to a blob file (kv_cf_options.blob_min_size): for values
 * that overwrite others in place again and again, which a blob file would
 * turn into garbage at each rewrite, where compaction drops them as it
 * goes. A write group never mixes such batches with others. Cleared by
 * kv_write_batch_clear. */
void kv_write_batch_keep_in_tree(kv_write_batch *batch);

/* ---- reads ---- (ro may be NULL: latest state) */

/* On success *value is malloc'd (free with kv_free); KV_NOT_FOUND if absent. */
int kv_get(kv_db *db, const kv_read_options *ro, kv_cf *cf, const void *key, size_t key_len,
           char **value, size_t *value_len);
void kv_free(void *ptr);

const kv_snapshot *kv_snapshot_create(kv_db *db);
/* A snapshot of family cf alone: reads through it in another family fail
 * (KV_INVALID_ARGUMENT), and the other families' flushes and compactions
 * do not keep old versions for it. NULL if cf is not a live family. */
const kv_snapshot *kv_snapshot_create_cf(kv_db *db, kv_cf *cf);
void kv_snapshot_release(kv_db *db, const kv_snapshot *snapshot);
uint64_t kv_snapshot_sequence(const kv_snapshot *snapshot);
/* The sequence number of the latest write, and that of the oldest snapshot
 * still held that keeps family cf (NULL: any family), or the latest when
 * there is none. A compaction drops what a deletion covers only when no
 * snapshot older than the deletion keeps its family: one would still see
 * it. */
uint64_t kv_latest_sequence(kv_db *db);
uint64_t kv_oldest_snapshot_sequence(kv_db *db, kv_cf *cf);

/* An iterator sees one consistent state: the snapshot's, or the latest at
 * creation. It never blocks flushes or compactions. */
kv_iterator *kv_iterator_create(kv_db *db, const kv_read_options *ro, kv_cf *cf);
void kv_iterator_destroy(kv_iterator *it);
bool kv_iterator_valid(const kv_iterator *it);
void kv_iterator_seek_to_first(kv_iterator *it);
void kv_iterator_seek_to_last(kv_iterator *it);
/* Positions at the first key >= target. */
void kv_iterator_seek(kv_iterator *it, const void *target, size_t target_len);
/* Positions at the last key <= target. */
void kv_iterator_seek_for_prev(kv_iterator *it, const void *target, size_t target_len);
void kv_iterator_next(kv_iterator *it);
void kv_iterator_prev(kv_iterator *it);
/* Valid until the iterator moves. */
const char *kv_iterator_key(const kv_iterator *it, size_t *len);
/* Valid until the iterator moves. A value kept in a blob file is read
 * here: on a read error it returns NULL (*len = 0), the iterator becomes
 * invalid and kv_iterator_status says why. */
const char *kv_iterator_value(kv_iterator *it, size_t *len);
/* 0, or the error that made the iterator invalid (e.g. KV_CORRUPTION). */
int kv_iterator_status(const kv_iterator *it);

/* ---- maintenance ---- */

/* Switches the memtable of `cf` (NULL: every family) and, with wait, returns
 * when the flush is installed. */
int kv_flush(kv_db *db, kv_cf *cf, bool wait);

/* Compacts every file of `cf` that holds keys in [begin, end] (NULL begin:
 * from the first key; NULL end: to the last) down through the levels, so
 * that afterwards overwritten versions and deleted keys in the range take
 * no space (unless a snapshot still needs them). Flushes the memtable
 * first. Returns when done. */
int kv_compact_range(kv_db *db, kv_cf *cf, const void *begin, size_t begin_len, const void *end,
                     size_t end_len);

/* Reads every block of every live SST file of every family and checks its
 * checksum (data, index, filter, properties and range-deletion blocks), as
 * RocksDB's VerifyChecksum does, then every record of every blob file
 * those tables point into (counted as files too; garbage records
 * included); the WAL and MANIFEST were checked when the
 * database opened. progress (may be NULL) is called after each file with
 * files and bytes done so far and in all. Returns 0 or the first error
 * (KV_CORRUPTION: kv_errmsg names the file and offset). */
typedef void (*kv_verify_progress)(void *arg, uint64_t files_done, uint64_t files_total,
                                   uint64_t bytes_done, uint64_t bytes_total);
int kv_verify_checksums(kv_db *db, kv_verify_progress progress, void *arg);

/* Drops, without compaction and without needing free space, every SST file
 * of `cf` whose keys all lie in [begin, end) and that holds no deletion of
 * its own, as RocksDB's DeleteFilesInRange does (that is what gives a large
 * deleted key range its space back at once on a full disk). The caller must
 * already have deleted [begin, end) (kv_delete_range or deletions of every
 * key), and must not read the range through an older snapshot: files that
 * straddle the range keep their keys, and the deletion still covers them.
 * Files in use by readers are removed from disk when the last one ends;
 * a running compaction of the family is waited for.
 * *files_dropped (may be NULL) receives the count. */
int kv_delete_files_in_range(kv_db *db, kv_cf *cf, const void *begin, size_t begin_len,
                             const void *end, size_t end_len, uint64_t *files_dropped);

/* Counters since open. */
typedef struct kv_stats {
    uint64_t keys_written, bytes_written;      /* user writes */
    uint64_t wal_bytes, wal_syncs, wal_writes; /* WAL appends (group commits) */
    uint64_t write_groups, grouped_writes;     /* group commit: groups, writes in groups */
    uint64_t flushes, flush_bytes_in, flush_bytes_out, flush_micros;
    uint64_t compactions, compaction_bytes_read, compaction_bytes_written, compaction_micros;
    uint64_t stall_micros, stall_slowdowns, stall_stops;
    uint64_t block_cache_hits, block_cache_misses, bloom_useful, bloom_checked;
    uint64_t gets, get_hits;
    /* flush + compaction output: with wal_bytes, the write amplification */
    uint64_t sst_bytes_written;
    uint64_t trivial_moves; /* compactions that only moved a file down a level */
    uint64_t obsolete_files_deleted;
    /* blob files (kv_cf_options.blob_min_size): bytes of records written by
     * writes, files now, files deleted, garbage collections and the bytes
     * they moved */
    uint64_t blob_bytes_written, blob_files, blob_files_deleted, blob_gc_runs,
        blob_gc_bytes_relocated;
} kv_stats;

void kv_get_stats(kv_db *db, kv_stats *out);

/* Properties, as RocksDB names them:
 *   "kv.stats"                       multi-line human-readable summary
 *   "kv.num-immutable-mem-table"     of the family
 *   "kv.cur-size-active-mem-table"   bytes
 *   "kv.num-files-at-levelN"         N = 0..6
 *   "kv.total-sst-files-size"        bytes
 *   "kv.num-entries-active-mem-table"
 *   "kv.levelstats"                  per level: files, bytes, compaction bytes read
 *                                    and written, write amplification
 *   "kv.estimate-pending-compaction-bytes"
 *   "kv.live-sst-files-size"         bytes of the files of live versions (this family)
 * *value is malloc'd (kv_free). KV_NOT_FOUND for an unknown name. */
int kv_get_property(kv_db *db, kv_cf *cf, const char *name, char **value);

#ifdef __cplusplus
}
#endif
#endif /* KV_H */
