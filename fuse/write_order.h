/*
 * write_order.h — commits the WRITE requests of a file that is being
 * written sequentially in file order.
 *
 * Why. The kernel writes a file's dirty pages back as several WRITE
 * requests in flight at once (up to max_background), in offset order, and
 * libfuse hands them to different worker threads. Whichever thread takes
 * the inode's lock first commits first, so a sequential file arrives in
 * the engine slightly shuffled. When a memtable switch falls inside such a
 * shuffle, two consecutive level-0 files overlap by a few keys, and
 * compaction must rewrite both instead of moving them down untouched: a
 * sequential write then costs one more full write of its data.
 *
 * How. The reader of /dev/fuse (fuse_io.c) notes each WRITE as it arrives:
 * node, byte range, and the kernel's request number `unique` (which grows
 * with each request). Before committing, a write waits while its
 * predecessor is in flight: an older noted WRITE of the same node that
 * ends exactly where it begins. Random writes almost never have one and
 * do not wait. Two threads that read requests one after the other may note
 * them in the other order, so a write that has no noted predecessor but
 * starts just past the end of its file's sequential stream (several
 * writes in a row that each began where the last ended) also waits a
 * moment (WRITE_ORDER_GRACE_NS) for the predecessor to show up.
 *
 * Order is a matter of speed, never of correctness, so waiting is bounded:
 * at most WRITE_ORDER_MAX_WAIT_NS per write (longer than a write stall,
 * since the predecessor may be waiting for a memtable flush), and noted
 * writes that never finish are forgotten after WRITE_ORDER_STALE_NS. A
 * noted predecessor is already held by a worker thread, so any number of
 * writes may wait for theirs; a predecessor not noted yet may still need a
 * free worker to be read, so at most max_grace_waiters writes wait for one
 * at a time.
 *
 * One table per process (one mount per daemon), safe for any number of
 * threads.
 */
#ifndef LSMFS_WRITE_ORDER_H
#define LSMFS_WRITE_ORDER_H

#include <stdbool.h>
#include <stdint.h>

/* At most `count` writes wait at once for a predecessor not noted yet (4
 * unless set; 0: none, as a single-threaded loop needs). */
void write_order_set_max_grace_waiters(int count);

/* Notes that WRITE request `unique` for `nodeid`, of `size` bytes at
 * `offset`, has been read. When the table is full the request is simply
 * not ordered. */
void write_order_arrived(uint64_t nodeid, uint64_t unique, uint64_t offset, uint64_t size);

/* Waits (bounded, see above) until the write of nodeid at `offset`
 * (request `unique`; 0 if it was not noted) is next. */
void write_order_wait_turn(uint64_t nodeid, uint64_t unique, uint64_t offset);

/* Whether a write at `offset` begins where the last committed write of
 * nodeid ended, wherever that was (false for a node not seen lately, and
 * at offset 0). */
bool write_order_continues(uint64_t nodeid, uint64_t offset);
/* Records that request `unique`, of `size` bytes at `offset`, committed
 * (size 0: it failed), forgets it, and wakes the writes waiting for it.
 * With `unique` 0 (a write not noted) only where it ended is kept. */
void write_order_done(uint64_t nodeid, uint64_t unique, uint64_t offset, uint64_t size);

#endif /* LSMFS_WRITE_ORDER_H */
