/*
 * version_set.h — the set of SST files that make up each column family, and
 * the MANIFEST that records how it changes (LevelDB/RocksDB VersionSet).
 *
 * A kv_version is an immutable, reference-counted list of files per level
 * for one column family. Level 0 is ordered newest first (files may
 * overlap); levels >= 1 are ordered by smallest key and do not overlap.
 *
 * The kv_version_set owns the MANIFEST writer and the counters every
 * component shares: next file number, last sequence (published to readers
 * with release/acquire), and the MANIFEST file number. Except where said,
 * functions require the db mutex.
 */
#ifndef KV_VERSION_SET_H
#define KV_VERSION_SET_H

#include "env.h"
#include "info_log.h"
#include "version_edit.h"
#include "wal.h"

#include <stdatomic.h>

typedef struct kv_version {
    atomic_int refs;
    kv_file_meta **files[KV_NUM_LEVELS];
    size_t num_files[KV_NUM_LEVELS];
    /* Sum of the file sizes of each level, counted once when the version
     * is made: every write asks (the write stall checks). */
    uint64_t level_bytes[KV_NUM_LEVELS];
} kv_version;

kv_version *kv_version_create_empty(void); /* one reference */
void kv_version_ref(kv_version *v);
void kv_version_unref(kv_version *v); /* any thread */

/* A new version: base with edit's deleted files removed and added files
 * inserted in order. KV_CORRUPTION if the edit deletes a file base does not
 * have. */
int kv_version_apply(const kv_version *base, const kv_version_edit *edit, kv_version **out);
uint64_t kv_version_level_bytes(const kv_version *v, int level);
uint64_t kv_version_total_files(const kv_version *v);

/* State of one column family as recorded in the MANIFEST. */
typedef struct kv_cf_record {
    uint32_t id;
    char *name;
    uint64_t log_number;
    kv_version *version;
    bool dropped;
} kv_cf_record;

typedef struct kv_version_set {
    kv_env *env;
    char *dbpath;
    kv_info_log *info_log;
    uint64_t next_file_number;
    _Atomic uint64_t last_sequence;
    uint64_t manifest_file_number;
    uint64_t max_manifest_file_size;
    uint32_t max_column_family;
    kv_log_writer *manifest;
    /* Families (live and dropped) indexed by position; recovery fills this,
     * then the db owns the column families and keeps them in sync. */
    kv_cf_record *cfs;
    size_t num_cfs, cfs_cap;
    /* The blob files the tables link to are bound here as tables enter a
     * version (NULL: links stay unbound; kv_dump reads without it). */
    kv_blob_set *blobs;
} kv_version_set;

void kv_version_set_init(kv_version_set *vs, kv_env *env, const char *dbpath, kv_info_log *info_log,
                         uint64_t max_manifest_file_size);
void kv_version_set_free(kv_version_set *vs);

static inline uint64_t kv_version_set_new_file_number(kv_version_set *vs)
{
    return vs->next_file_number++;
}
static inline kv_seq kv_version_set_last_sequence(kv_version_set *vs)
{
    return atomic_load_explicit(&vs->last_sequence, memory_order_acquire);
}
static inline void kv_version_set_publish_sequence(kv_version_set *vs, kv_seq seq)
{
    atomic_store_explicit(&vs->last_sequence, seq, memory_order_release);
}

/* Creates the MANIFEST of a new database (family "default", id 0) and
 * points CURRENT at it. */
int kv_version_set_create_new(kv_version_set *vs);

/* Reads CURRENT and replays the MANIFEST into vs->cfs and the counters.
 * Errors name the file (and offset for corrupt records); a newer format is
 * KV_NOT_SUPPORTED naming both versions. A torn final record is ignored. */
int kv_version_set_recover(kv_version_set *vs);

kv_cf_record *kv_version_set_find_cf(kv_version_set *vs, uint32_t id);

/* Appends edit to the MANIFEST and syncs it, then applies it to the
 * family's record (version, log number, add/drop). Starts a new MANIFEST
 * (a snapshot of the whole state, then CURRENT switched) when none is open
 * or the current one has grown past max_manifest_file_size. On success
 * *new_version (if not NULL) receives a reference to the family's new
 * version. On failure nothing in memory changes. */
int kv_version_set_log_and_apply(kv_version_set *vs, kv_version_edit *edit,
                                 kv_version **new_version);

/* Writes a fresh MANIFEST holding a snapshot of the current state and
 * points CURRENT at it; the previous MANIFEST becomes obsolete. */
int kv_version_set_write_snapshot(kv_version_set *vs);

#endif
