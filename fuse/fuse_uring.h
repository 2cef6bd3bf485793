/*
 * fuse_uring.h — FUSE over io_uring (kernel 6.14 and later): lsmfs's
 * requests arrive in per-CPU queues of ring entries instead of through
 * read(2) of /dev/fuse.
 *
 * Why. A FUSE request through /dev/fuse wakes whichever daemon thread
 * waits in read(2), usually on the other CPU, and the reply wakes the
 * caller back across CPUs. On a virtual machine those cross-CPU wake-ups
 * are most of a metadata operation's time: on this 2-CPU machine, with the
 * daemon and the caller pinned to one CPU, creates went from 10,600/s to
 * 19,400/s and stats from 43,000/s to 89,000/s. The kernel's io_uring
 * transport queues a request on the queue of the CPU the caller runs on;
 * lsmfs serves each queue with threads pinned to that CPU, so the
 * request and its reply are wake-ups on one CPU.
 *
 * What it gains depends on the scheduler. A request is a wake-up on the
 * caller's CPU, but the reply wakes the caller while the queue thread
 * still runs there, so the scheduler moves the caller to an idle CPU: a
 * caller free to move (no affinity) gains on some operations and loses
 * on others (measured on this 2-CPU machine, unpinned: mkdir, unlink and
 * rmdir faster, create and rename slower), while a caller pinned to its
 * CPU runs metadata operations twice as fast. So it is an option,
 * `-o io_uring`, not the default.
 *
 * How. The kernel offers FUSE_OVER_IO_URING in INIT only when the fuse
 * module's enable_uring parameter is on (it is off by default);
 * `-o io_uring` has root's lsmfs turn it on before mounting. When it is
 * offered and the daemon is multi-threaded (not -s), fuse_io.c answers
 * INIT with the flag and calls fuse_uring_start: for every possible CPU,
 * FUSE_URING_THREADS threads pinned to it, each with its own io_uring and
 * one ring entry (a header buffer and a payload buffer as large as the
 * largest request). Once every queue has an entry the kernel sends
 * requests there; FORGETs, INTERRUPTs and the requests queued before stay
 * on /dev/fuse, served by libfuse's loop as before. A thread rebuilds the
 * request as read(2) would have returned it (header, op header, payload;
 * the payload stays where the kernel put it), hands it to
 * fuse_session_process_buf, and fuse_io_writev passes the reply, if it is
 * this request's, to fuse_uring_reply, which puts it in the entry; the
 * entry goes back with COMMIT_AND_FETCH. One entry per thread: a request
 * only ever waits for a thread that is free.
 *
 * When the kernel refuses the registration (no entry registered), the
 * connection stays on /dev/fuse. The threads end when the connection does
 * (unmount, abort): the kernel completes their entries with an error.
 *
 * One session per process: the state is module-wide.
 */
#ifndef LSMFS_FUSE_URING_H
#define LSMFS_FUSE_URING_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* The INIT flag (bit 41: bit 9 of flags2); Debian 12's headers predate it. */
#define LSMFS_FUSE_OVER_IO_URING_FLAGS2 (1u << 9)

/* Threads (each with one ring entry) per CPU queue. */
#define FUSE_URING_THREADS 3

/* The fuse module's enable_uring parameter: 1 on, 0 off, or a negative
 * errno (-ENOENT: the kernel has no io_uring transport). */
int fuse_uring_kernel_enabled(void);

/* Turns enable_uring on (root). Returns 0 or a negative errno. */
int fuse_uring_enable_kernel(void);

/* Whether to take the transport when INIT offers it; set before mounting.
 * `se` is the session the threads hand requests to, `max_write` the
 * largest WRITE it negotiates. */
void fuse_uring_configure(struct fuse_session *se, bool wanted, size_t max_write);

/* Whether fuse_uring_configure wanted it. */
bool fuse_uring_wanted(void);

/* Starts the queue threads; called once the INIT reply that carried the
 * flag was accepted. Returns 0 or a negative errno (no thread started). */
int fuse_uring_start(void);

/* Waits for the queue threads to end; call after fuse_session_unmount. */
void fuse_uring_stop(void);

/* When this thread is a queue thread handling a request and iov (iov[0] a
 * struct fuse_out_header) answers it, puts the reply in the ring entry,
 * sets *written as writev(2) would, and returns true; otherwise false (the
 * caller writes to /dev/fuse). */
bool fuse_uring_reply(const struct iovec *iov, int count, ssize_t *written);

/* A malloc'd one-line text for `lsmfs stats`: the transport in use and
 * the requests served through the rings. NULL without memory. */
char *fuse_uring_stats_text(void);

#endif /* LSMFS_FUSE_URING_H */
