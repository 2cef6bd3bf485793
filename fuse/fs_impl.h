/*
 * fs_impl.h — what the parts of the file-system core (fs.c, fs_namespace.c,
 * fs_dir.c, fs_file.c, fs_xattr.c) share: struct fs, inode lock stripes,
 * inode load/store, and the conversion of kv errors to errno.
 *
 * Locking. Every change to an inode's record or to the entries of a
 * directory happens under that inode's lock stripe (a mutex chosen by
 * hashing the inode number). An operation takes all the stripes it needs
 * at once with fs_lockset_acquire, which orders them, so operations that
 * touch several inodes (rename, link) cannot deadlock. Under the stripes
 * it reads, builds one WriteBatch, commits it, and then updates the
 * inode table's cached records: a failed commit changes nothing.
 */
#ifndef LSMFS_FS_IMPL_H
#define LSMFS_FS_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "fs.h"
#include "inode_table.h"
#include "schema.h"

#define FS_LOCK_STRIPES 1024
#define FS_INO_BATCH 4096 /* inode numbers reserved per superblock write */
/* A deleted file this large has the SST files that hold only its data
 * dropped at once (no compaction needed, no space needed). */
#define FS_DROP_DELETED_BYTES (4u << 20)
/* Freed data (deleted files, truncations, punched holes) still has its
 * space taken until its deletions are compacted into the tables that index
 * it: before that, those tables count the blob records it sits in as live,
 * and garbage collection leaves the blob files alone. The maintenance
 * thread compacts the key ranges of freed data once FS_SETTLE_BYTES have
 * gathered and no more has come for FS_SETTLE_MS (or the first came
 * FS_SETTLE_MAX_MS ago), or at once from FS_COMPACT_FREED_BYTES, but only
 * when no kv snapshot of the data family older than the frees is held (the
 * compaction would have to keep what they delete); fs_close compacts what
 * is left. The ranges are kept as up to FS_SETTLE_RANGES
 * spans of inode numbers (fs_ino_spans_add), so that a compaction does not
 * reach the data of every file in between. */
#define FS_SETTLE_BYTES (4u << 20)
#define FS_SETTLE_MS 1000
#define FS_SETTLE_MAX_MS 10000
#define FS_COMPACT_FREED_BYTES (64u << 20)
#define FS_SETTLE_RANGES 16

/* Inode numbers lo to hi, both included. */
struct fs_ino_span {
    uint64_t lo, hi;
};

struct fs {
    char *path;
    struct fs_options options;
    kv_db *db;
    kv_cf *meta, *data;
    kv_write_options write_options;
    uint32_t block_size;
    struct fs_inode_table *inodes;
    pthread_mutex_t stripes[FS_LOCK_STRIPES];

    pthread_mutex_t super_mutex; /* guards super and next_ino */
    struct fs_super super;       /* as stored; super.next_ino is the reserved limit */
    uint64_t next_ino;           /* next number to hand out (< super.next_ino) */

    /* Space maintenance (fs.c): a reserve file in DATADIR, given up when
     * the disk fills so that deletions can still be written and compacted,
     * and a thread that compacts the key ranges of large deleted files (so
     * their space comes back) and re-creates the reserve. */
    char *reserve_path;
    uint64_t reserve_size;
    pthread_t maintenance_thread;
    bool maintenance_started;
    pthread_mutex_t maintenance_mutex;
    pthread_cond_t maintenance_cond;
    bool maintenance_stop;
    struct fs_space_request {
        uint64_t ino;
        int what; /* FS_SPACE_DROP | FS_SPACE_COMPACT */
    } requests[64];
    int request_count;
    bool compact_all; /* the queue overflowed: compact everything */
    struct fs_ino_span freed[FS_SETTLE_RANGES]; /* sorted, disjoint, not adjacent */
    int freed_count;
    uint64_t freed_bytes;  /* freed since the last settling compaction */
    int64_t freed_first_ms, freed_last_ms; /* when the first and last of it were freed */
    uint64_t freed_seq;                    /* kv sequence at or past every free */

    bool opened; /* fs_open succeeded: fs_close reclaims what is left */
    atomic_uint_fast64_t orphans_reclaimed;
    atomic_uint_fast64_t reserve_released;
    atomic_uint_fast64_t space_waits; /* freeing commits that waited for space */
    atomic_bool disk_full; /* a write met ENOSPC; cleared once space is back */
    atomic_uint_fast64_t ops_failed_io;
};

/* The stripes one operation holds. */
struct fs_lockset {
    int stripes[4];
    int count;
};
/* Locks the stripes of up to 4 inodes (0 entries are ignored). */
void fs_lockset_acquire(struct fs *fs, struct fs_lockset *set, const uint64_t *inos, int n);
void fs_lockset_release(struct fs *fs, struct fs_lockset *set);
/* One inode. */
void fs_lock_inode(struct fs *fs, uint64_t ino);
void fs_unlock_inode(struct fs *fs, uint64_t ino);

/* Reads ino's record (cache first). -ENOENT if absent, -EIO if damaged.
 * Caller holds ino's stripe. */
int fs_inode_load(struct fs *fs, uint64_t ino, struct fs_inode *inode);
/* Adds the record's put to batch. */
void fs_batch_put_inode(struct fs *fs, kv_write_batch *batch, uint64_t ino,
                        const struct fs_inode *inode);
/* After a successful commit: refresh the cached record. */
void fs_inode_cached(struct fs *fs, uint64_t ino, const struct fs_inode *inode);

/* Writes the batch (one atomic WAL record); the errno of a failure. */
int fs_commit(struct fs *fs, kv_write_batch *batch);
/* The same for a change that frees space (unlink, truncate, rename over a
 * file, punching a hole): on a full disk it gives up the reserve file,
 * flushes and tries again, waiting up to FS_FREEING_WAIT_MS for space to
 * come back (a compaction short of space holds some until it fails), so
 * that a full file system can always be cleaned up. */
int fs_commit_freeing(struct fs *fs, kv_write_batch *batch);
#define FS_FREEING_WAIT_MS 10000

/* What the maintenance thread does for an inode: drop the SST files that
 * hold only its data (only when the whole inode is deleted), and compact
 * the rest of its key range away. */
#define FS_SPACE_DROP 1
#define FS_SPACE_COMPACT 2
void fs_request_compaction(struct fs *fs, uint64_t ino, int what);
/* A file's data blocks were all deleted (the inode is gone): has the SST
 * files holding only them dropped when the file was large, and their key
 * range compacted (FS_SETTLE_BYTES above; at once when the disk is full,
 * then giving up the reserve). */
void fs_note_deleted_data(struct fs *fs, uint64_t ino, uint64_t blocks);
/* Adds ino to spans[0..*count) (sorted, disjoint, not adjacent): merged
 * into a span it is in or touches, else a span of its own. With
 * FS_SETTLE_RANGES spans already, the smallest gap is bridged instead:
 * ino's own to its nearer neighbour (which grows to hold it), or the one
 * between two spans (which become one, and ino is added again). */
void fs_ino_spans_add(struct fs_ino_span *spans, int *count, uint64_t ino);
/* blocks of a file's blocks were deleted (truncate, hole punch): has its
 * key range compacted, as above. */
void fs_note_trimmed_data(struct fs *fs, uint64_t ino, uint64_t blocks);
/* kv status -> negative errno (KV_NOT_FOUND -> -ENOENT, NO_SPACE ->
 * -ENOSPC, corruption and I/O -> -EIO), logging damage to stderr. */
int fs_errno(int status);

int64_t fs_now_ns(void);
struct timespec fs_timespec(int64_t ns);
void fs_fill_stat(const struct fs *fs, uint64_t ino, const struct fs_inode *inode, struct stat *st);

/* Hands out a fresh inode number (never reused). */
int fs_alloc_ino(struct fs *fs, uint64_t *ino);

/* Adds to batch the deletion of data blocks [first, end) of ino: a few
 * point deletions for a short range, else one range tombstone (range
 * tombstones make later reads of the memtable pay, so small files, the
 * common case, avoid them). */
void fs_batch_delete_blocks(struct fs *fs, kv_write_batch *batch, uint64_t ino, uint64_t first,
                            uint64_t end);
/* Adds to batch the removal of everything of an unlinked inode: record,
 * data, xattrs, orphan record. */
int fs_batch_reclaim(struct fs *fs, kv_write_batch *batch, uint64_t ino,
                     const struct fs_inode *inode);
/* Reclaims ino now if it is unlinked and neither the kernel nor a handle
 * holds it. Caller holds ino's stripe. */
void fs_reclaim_if_unused(struct fs *fs, uint64_t ino);

/* ---- privileges ---- */
/* What a write, truncate or chown by a caller without CAP_FSETID clears on
 * Linux: setuid, and setgid when group-exec is set (setgid alone is the
 * old mandatory-locking mark, and stays). */
static inline void fs_inode_kill_suidgid(struct fs_inode *inode)
{
    inode->mode &= ~(uint32_t)S_ISUID;
    if (inode->mode & S_IXGRP)
        inode->mode &= ~(uint32_t)S_ISGID;
}
/* (fs_xattr.c) Adds to batch the removal of ino's security.capability, as
 * Linux removes it on every write, truncate and chown, and keeps
 * FS_INODE_HAS_XATTRS in inode->flags exact (cleared with the last
 * attribute). Free while the flag is clear; else a lookup, and a walk of
 * ino's attribute keys when there was a capability to remove. The caller
 * holds ino's stripe and puts *inode into the same batch. */
int fs_batch_drop_capability(struct fs *fs, kv_write_batch *batch, uint64_t ino,
                             struct fs_inode *inode);

/* ---- fs_file.c ---- */
/* Adds to batch what sets a regular file's size to new_size (blocks past
 * it deleted, a partial last block trimmed so later growth reads zeros)
 * and updates inode->size and inode->blocks; times are the caller's.
 * Caller holds ino's stripe. */
int fs_file_resize(struct fs *fs, kv_write_batch *batch, uint64_t ino, struct fs_inode *inode,
                   uint64_t new_size);
/* Number of data blocks a file of `size` bytes spans. */
uint64_t fs_blocks_spanned(const struct fs *fs, uint64_t size);

#endif /* LSMFS_FS_IMPL_H */
