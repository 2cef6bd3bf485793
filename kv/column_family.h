/*
 * column_family.h — one column family's in-memory state (RocksDB's
 * ColumnFamilyData; the public kv_cf handle is this struct) and its
 * SuperVersion.
 *
 * A SuperVersion is a reference-counted triple {active memtable, immutable
 * memtables, Version}. Readers take a reference (under the db mutex, for a
 * moment) and then read without locks, never waiting for a flush. Every
 * change of the triple installs a new SuperVersion; the old one is freed
 * when its last reader lets go.
 */
#ifndef KV_COLUMN_FAMILY_H
#define KV_COLUMN_FAMILY_H

#include "kv.h"
#include "memtable.h"
#include "memtable_list.h"
#include "table_builder.h"
#include "version_set.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct kv_superversion {
    atomic_int refs;
    kv_memtable *mem;
    kv_memtable **imm; /* newest first: the order reads consult them */
    size_t num_imm;
    kv_version *version;
} kv_superversion;

void kv_superversion_ref(kv_superversion *sv);
void kv_superversion_unref(kv_superversion *sv); /* any thread */

struct kv_cf {
    struct kv_db *db;
    uint32_t id;
    char *name;
    bool dropped;
    kv_cf_options options;
    kv_table_options table_options;

    kv_memtable *mem;     /* active memtable */
    kv_memtable_list imm; /* immutable, oldest first */
    kv_version *current;  /* current version (a reference) */
    /* Guards super_version alone, so readers never wait for the db mutex
     * (held across MANIFEST and WAL syncs). */
    pthread_mutex_t sv_mutex;
    kv_superversion *super_version;
    /* WALs numbered below log_number hold nothing of this family that is
     * not in its SSTs. */
    uint64_t log_number;
    bool compaction_running;               /* at most one compaction per family */
    kv_buf compact_pointer[KV_NUM_LEVELS]; /* round-robin position per level */
    struct kv_level_stats {
        uint64_t compactions, bytes_read, bytes_written, micros, files_in, files_out;
    } level_stats[KV_NUM_LEVELS]; /* by output level; flushes count at level 0 */
    bool flush_scheduled;         /* on the FlushScheduler, or a FlushJob running */
    bool flush_running;
    int flush_failures; /* consecutive, for retry backoff */
};

/* Builds a new SuperVersion from cf's current state and installs it.
 * Requires the db mutex. */
void kv_cf_install_super_version(struct kv_cf *cf);
/* A reference to cf's current SuperVersion, and the sequence `*sequence`
 * (read with it, under sv_mutex: every write up to it is then in a
 * memtable or file of that SuperVersion). No db mutex needed. */
kv_superversion *kv_cf_acquire_super_version(struct kv_cf *cf, _Atomic uint64_t *last_sequence,
                                             uint64_t *sequence);

kv_table_options kv_cf_table_options(const kv_cf_options *options);

#endif
