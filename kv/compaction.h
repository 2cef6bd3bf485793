/*
 * compaction.h — what to compact next (LevelDB's VersionSet::PickCompaction
 * and RocksDB's leveled CompactionPicker) and the compaction itself
 * (CompactionJob).
 *
 * Leveled: level 0 (overlapping files, newest first) is merged into the
 * base level when its file count reaches level0_file_num_compaction_trigger;
 * level n >= 1 is merged into n + 1 when its bytes pass its target (see
 * kv_level_targets). The level with the highest
 * score (count or size over its target) goes first. One file at level
 * n >= 1 is picked by the smallest ratio of overlapping bytes below to its
 * own size (RocksDB's kMinOverlappingRatio; ties swept round-robin from a
 * compact pointer per level), together with
 * every file of level n + 1 it overlaps. A single input file that overlaps
 * nothing below is moved, not rewritten (trivial move).
 *
 * At most one compaction per column family runs at a time, so inputs are
 * never contended; flushes only add level-0 files meanwhile.
 */
#ifndef KV_COMPACTION_H
#define KV_COMPACTION_H

#include "db_impl.h"

typedef struct kv_compaction {
    kv_cf *cf;
    int level, output_level;
    kv_version *input_version; /* a reference */
    kv_file_meta **inputs[2];  /* [0] at level, [1] at output_level */
    size_t num_inputs[2];
    uint64_t max_output_file_size;
    bool manual;
    double score;
    /* Garbage collection of blob files: values in this blob file are
     * copied to a new one as the compaction writes their indexes (0: none). */
    uint64_t relocate_blob;
} kv_compaction;

/* Target size of each level, sized from the bottom up (RocksDB's
 * level_compaction_dynamic_level_bytes): the last level's target is the
 * data it will hold, each level above a multiplier-th of the next, and
 * levels whose target would fall below max_bytes_for_level_base stay empty;
 * the first level used, the base level (target at most
 * max_bytes_for_level_base), is where level 0 compacts to. This
 * keeps about 90% of the data in the last level, so space amplification
 * stays near 1.1 whatever the data size. */
void kv_level_targets(const kv_cf_options *options, const kv_version *v,
                      uint64_t targets[KV_NUM_LEVELS], int *base_level);

/* Highest compaction score of v and its level (scores >= 1 need work). */
double kv_compaction_score(const kv_cf_options *options, const kv_version *v, int *level);

/* Bytes compaction still has to rewrite to bring v into shape (RocksDB's
 * estimate-pending-compaction-bytes, simplified). */
uint64_t kv_compaction_pending_bytes(const kv_cf_options *options, const kv_version *v);

/* The next automatic compaction of cf, or NULL. Requires the mutex. */
kv_compaction *kv_compaction_pick(kv_cf *cf);

/* A manual compaction of the files of `level` holding user keys in
 * [begin, end] (NULL: unbounded) into the next level (for level 0: the base
 * level), or NULL when there are none. Requires the mutex. */
kv_compaction *kv_compaction_pick_range(kv_cf *cf, int level, const kv_slice *begin,
                                        const kv_slice *end);

/* A manual compaction of the files of `level` (>= 1) holding keys in
 * [begin, end] back into `level`: for the deepest level, whose garbage
 * (versions only released snapshots needed) has nowhere further down to go. */
kv_compaction *kv_compaction_pick_range_in_place(kv_cf *cf, int level, const kv_slice *begin,
                                                 const kv_slice *end);

/* A compaction that moves the live values out of the blob file with the
 * most garbage (at least half of it), rewriting the tables of the level
 * that points into it most (in place; level 0 into the next level); NULL
 * when no file qualifies. Requires the mutex. */
kv_compaction *kv_compaction_pick_blob_gc(kv_db *db);
/* Sets db->blob_seal_wanted (see above) as a side effect: the file being
 * written is at least half garbage and no memtable points into it. */

bool kv_compaction_is_trivial_move(const kv_compaction *c);
void kv_compaction_free(kv_compaction *c);

/* Runs the compaction: requires the mutex on entry and returns with it;
 * releases it while reading inputs and writing outputs. Installs the result
 * (VersionEdit, new SuperVersion) and queues the inputs for deletion once
 * no version uses them. */
int kv_compaction_run(kv_db *db, kv_compaction *c);

/* Files of v at `level` overlapping user keys [begin, end] (NULL:
 * unbounded). At level 0 the range grows to take in every file overlapping
 * a file taken, so newer versions never stay above older ones. *out is
 * malloc'd. */
void kv_version_overlapping_inputs(const kv_version *v, int level, const kv_slice *begin,
                                   const kv_slice *end, kv_file_meta ***out, size_t *count);

#endif
