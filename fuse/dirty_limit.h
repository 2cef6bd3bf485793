/*
 * dirty_limit.h — whether the kernel's cap on lsmfs's dirty pages is on,
 * decided from the write-back that reaches the daemon.
 *
 * The kernel caps a FUSE mount's dirty pages at 1% of the system's dirty
 * allowance (about 48 MiB here; bdi.h). Under that cap, random 4 KiB
 * writes to a file larger than the cap are written back a page per WRITE
 * request, as fast as the daemon answers them, while ext4 (or a FUSE mount
 * without the cap) lets them gather in the page cache, where rewrites of a
 * page cost nothing and neighbouring pages merge into long WRITEs. Lifting
 * the cap for good (-o dirty_limit=system) has a price on long sequential
 * writes: their first gigabytes then go at memory speed and the rest at
 * the daemon's, where the cap keeps the pace even. The page cache buys a
 * sequential stream nothing: its write-back is already made of the longest
 * WRITEs the kernel sends.
 *
 * So by default (-o dirty_limit=auto, root only) lsmfs looks at what the
 * write-back brings. Small WRITEs inside files (under 64 KiB, at or past
 * 1 MiB, not extending the file as an appender's would) mean scattered
 * writes that the page cache would merge: after 1,024 of them the cap is
 * lifted (strict_limit = 0). While the cap is on, 64 MiB of long WRITEs
 * (256 KiB and more) forget them: long write-back is already as merged as
 * it gets. Once the cap is lifted, long WRITEs of any kind may be what it
 * was lifted for (the page cache merging scattered pages: a file rewritten
 * or filled at random until every page is dirty is written back in WRITEs
 * as long and as much in order as a sequential stream's), so only a
 * stream that grows its file puts the cap back: 256 MiB of WRITEs (64 KiB
 * and more) that each end past the file's size and begin where its
 * previous WRITE ended, as cp, dd and tar write a new file. Every 1,024
 * scattered WRITEs forget those bytes again. Small files, written back
 * whole at their close, never count. A sequential rewrite, or a file
 * allocated ahead and then written in order, keeps the cap as it found it.
 *
 * Durability does not depend on it: data not yet fsync'ed is in the
 * kernel's page cache either way (only more of it with the cap lifted),
 * and fsync writes it through the daemon's WAL before it returns.
 */
#ifndef LSMFS_DIRTY_LIMIT_H
#define LSMFS_DIRTY_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

enum dirty_limit_mode {
    DIRTY_LIMIT_AUTO,   /* lift the cap while scattered write-back dominates */
    DIRTY_LIMIT_KERNEL, /* keep the kernel's cap */
    DIRTY_LIMIT_SYSTEM, /* lift it for the life of the mount */
};

/* A write-back WRITE is small below this size... */
#define DIRTY_POLICY_SMALL_MAX (64u << 10)
/* ...and scattered when it also starts this deep into its file and does
 * not extend it. */
#define DIRTY_POLICY_DEEP (1u << 20)
/* A write-back WRITE this long or longer is long. */
#define DIRTY_POLICY_LONG_MIN (256u << 10)
/* Scattered WRITEs that lift the cap, and that forget the bytes counted
 * towards putting it back. */
#define DIRTY_POLICY_SCATTERED 1024u
/* Bytes of long WRITEs that forget the scattered ones while the cap is on. */
#define DIRTY_POLICY_LONG_FORGET (64ull << 20)
/* Bytes of WRITEs (not small) in a stream that grows its file that put
 * the cap back. */
#define DIRTY_POLICY_GROW_RESTORE (256ull << 20)

/* The decision alone, fed one write-back WRITE at a time (not thread-safe;
 * zero-initialized: cap on, nothing seen). */
struct dirty_policy {
    bool lifted;
    uint64_t scattered; /* scattered WRITEs since the last reset */
    uint64_t bytes;     /* long (cap on) or growing (lifted) bytes since then */
};

/* Notes a write-back WRITE of `size` bytes at `offset`, which `extends`
 * its file (ends past the size the file had) and `grows_stream` (extends
 * it beginning where the file's previous WRITE ended). Returns true when
 * it changes p->lifted (the caller then applies the change). */
bool dirty_policy_note(struct dirty_policy *p, uint64_t offset, uint64_t size, bool extends,
                       bool grows_stream);

/* Starts managing the mount whose bdi is `bdi` ("MAJ:MIN") under
 * `sysfs_root` (normally "/sys/class/bdi"). DIRTY_LIMIT_SYSTEM lifts the
 * cap now; DIRTY_LIMIT_KERNEL leaves it. Returns 0 or a negative errno
 * (-EACCES when not root; the mount then keeps the kernel's cap and AUTO
 * changes nothing). */
int dirty_limit_start(enum dirty_limit_mode mode, const char *sysfs_root, const char *bdi);

/* Called for every write-back WRITE (the kernel's FUSE_WRITE_CACHE) that
 * lsmfs committed; cheap, any thread. */
void dirty_limit_note_writeback(uint64_t offset, uint64_t size, bool extends, bool grows_stream);

/* One line for `lsmfs stats` (malloc'd; NULL without memory). */
char *dirty_limit_stats_text(void);

/* Forgets the mount (before it goes; the next start begins afresh). */
void dirty_limit_stop(void);

#endif
