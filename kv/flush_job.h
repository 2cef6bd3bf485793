/*
 * flush_job.h — writes a column family's immutable memtables to a level-0
 * SST (RocksDB's FlushJob, the chapter in shared/seed/).
 *
 *   kv_flush_job_pick_memtables   (mutex held)  PickMemTable: the immutable
 *                                  memtables not yet being flushed
 *   kv_flush_job_run               (mutex held on entry and exit; released
 *                                  while the table is built) WriteLevel0Table
 *                                  through a MergingIterator and BuildTable,
 *                                  then installs the result: a VersionEdit to
 *                                  the MANIFEST, the memtables released, a
 *                                  new SuperVersion, obsolete WALs deleted.
 */
#ifndef KV_FLUSH_JOB_H
#define KV_FLUSH_JOB_H

#include "db_impl.h"

typedef struct kv_flush_job {
    kv_db *db;
    kv_cf *cf;
    kv_memtable **mems; /* oldest first */
    size_t num_mems;
    uint64_t file_number;
    kv_file_meta *meta;
    kv_seq *snapshots; /* sequence numbers of live snapshots, ascending */
    size_t num_snapshots;
} kv_flush_job;

void kv_flush_job_init(kv_flush_job *job, kv_db *db, kv_cf *cf);
void kv_flush_job_pick_memtables(kv_flush_job *job);
int kv_flush_job_run(kv_flush_job *job);
void kv_flush_job_free(kv_flush_job *job);

/* BuildTable: writes the entries of iter (internal keys, ascending) and the
 * tombstones into dbpath/NNNNNN.sst, dropping versions that no snapshot can
 * see (snapshots ascending; the latest state is always visible), syncs it
 * and fills meta. An empty result leaves no file (meta->file_size = 0). */
int kv_build_table(kv_env *env, const char *dbpath, const kv_table_options *options, kv_iter *iter,
                   kv_frag_tombstones **tombstones, size_t num_tombstone_lists,
                   const kv_seq *snapshots, size_t num_snapshots, kv_file_meta *meta,
                   uint64_t *bytes_in);

#endif
