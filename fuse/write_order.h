/*
 * write_order.h — commits the WRITE requests of one file in the order the
 * kernel sent them.
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
 * How. The reader of /dev/fuse (fuse_io.c) notes each WRITE as it arrives
 * (node, the kernel's request number `unique`, which grows with each
 * request). Before committing, a handler waits while an older WRITE of the
 * same node is still in flight, then commits and says it is done. Order is
 * only a matter of speed, never of correctness, so waiting is bounded: a
 * handler waits at most WRITE_ORDER_MAX_WAIT_NS, and a noted request that
 * has not finished after WRITE_ORDER_STALE_NS (its handler failed early,
 * say, or libfuse answered it itself) is forgotten. Writes of different
 * files never wait for each other.
 *
 * One table per process (one mount per daemon), safe for any number of
 * threads.
 */
#ifndef LSMFS_WRITE_ORDER_H
#define LSMFS_WRITE_ORDER_H

#include <stdint.h>

/* Notes that WRITE request `unique` for `nodeid` has been read. When the
 * table is full the request is simply not ordered. */
void write_order_arrived(uint64_t nodeid, uint64_t unique);

/* Waits (bounded, see above) until no older noted WRITE of nodeid is in
 * flight. unique 0 (not noted) returns at once. */
void write_order_wait_turn(uint64_t nodeid, uint64_t unique);

/* Forgets request `unique` (after its commit, or when it will not
 * commit) and wakes the writes waiting behind it. Unknown requests are
 * ignored. */
void write_order_done(uint64_t nodeid, uint64_t unique);

#endif /* LSMFS_WRITE_ORDER_H */
