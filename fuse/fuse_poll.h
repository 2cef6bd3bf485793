/*
 * fuse_poll.h — busy polling of /dev/fuse: the worker that has just
 * answered a request keeps asking the device for the next one for a short
 * while (-o busy_poll=USECS) before it sleeps.
 *
 * Why. A request a caller writes while every worker sleeps costs a wake-up
 * of a sleeping thread, most often on the other CPU. On a virtual machine
 * an idle CPU is halted, and waking it is a trip through the hypervisor:
 * on the 2-CPU machines lsmfs is measured on, a round trip between two
 * threads that sleep in between takes about 47 us, and 12 to 19 us when
 * the side that answers polls instead (a pipe ping-pong). A synchronous
 * caller (stat, create, rename, cp, tar) waits through one such round trip
 * per FUSE request, and most of the time of a metadata operation is these
 * wake-ups, not lsmfs's work.
 *
 * How. One worker at a time holds the reader role; the others wait for it
 * on a condition variable, not in read(2), so a request never wakes a
 * thread the poller has already beaten to it.
 *   - The holder reads /dev/fuse without blocking (the descriptor is put in
 *     O_NONBLOCK mode) until a request comes or the poll budget runs out,
 *     yielding the CPU at each turn, and then sleeps in poll(2) until one
 *     comes. A turn that took long (FUSE_POLL_PREEMPTED_NS: another thread
 *     had the CPU) ends the polling at once.
 *   - It keeps the role while it handles the request, and goes straight
 *     back to polling: a synchronous caller's next request finds it there.
 *     When the caller runs on the holder's CPU, the caller's request is
 *     even there before the holder asks, and no thread is woken on either
 *     side: caller and holder take turns on one CPU.
 *   - It hands the role to a waiting worker first when others may be
 *     waiting or the request may take long: a request that was already
 *     there and is a READ or WRITE (readahead, writeback) or comes from
 *     another caller than the last one, and every opcode fuse_poll.c does
 *     not list as quick or data (FSYNC, locks, ...).
 *   - A kept request can still block (a cold block read, a write stall, a
 *     lock held by a long write, a write waiting for its predecessor). A
 *     watchdog thread, ticking only while requests come, takes the role
 *     back from a holder that has spent a whole tick (FUSE_POLL_TICK_NS) on
 *     one request and gives it to a waiting worker, so no request waits
 *     behind another for long and none waits forever for one that needs a
 *     reader.
   - Classic mode. When the requests of several callers keep waiting for
 *     the holder (FUSE_POLL_CROWD_SCORE more of them found waiting than
 *     requests that came alone), the hand-on of every request (a futex
 *     wake-up) and the poller competing with the callers for the CPUs
 *     cost more than polling saves: 4 fio jobs of 4 KiB random reads fell
 *     from 190-260k IOPS to 120-195k. The holder then clears O_NONBLOCK
 *     and lets every worker block in read(2), where the kernel wakes one
 *     per request, as with busy_poll=0. The watchdog ends classic mode
 *     after FUSE_POLL_CLASSIC_IDLE_TICKS ticks without a request: it sets
 *     O_NONBLOCK again and interrupts the blocked reads with
 *     FUSE_POLL_SIGNAL (a handler without SA_RESTART), and the workers go
 *     back to waiting for the role.
 * With busy_poll=0 none of this runs: every worker blocks in read(2) as
 * libfuse's loop does.
 *
 * CPU: a poller spins for at most busy_poll microseconds after each
 * request (yielding the CPU to any other runnable thread at each turn);
 * an idle mount costs nothing, and the watchdog stops ticking after
 * FUSE_POLL_IDLE_TICKS ticks without a request.
 *
 * Measured (scripts/bench, lsmfs alone, same session): mkdir 28-31k/s
 * against 17-19k with busy_poll=0, create 11.9-13.6k against 9.4-10.4k,
 * stat 39-40k against 24k, unlink, rmdir, tar x, diff -r and rm -r 15-25%
 * faster. The one loss: 4 KiB O_DIRECT random writes from one job, 25-32k
 * IOPS against 31-36k, where the holder ends up on the other CPU than
 * its caller and every reply wakes a halted CPU.
 *
 * With -o io_uring requests come through the rings and there is nothing
 * to poll on /dev/fuse: main.c turns polling off.
 *
 * One FUSE session per process: the state is module-wide.
 */
#ifndef LSMFS_FUSE_POLL_H
#define LSMFS_FUSE_POLL_H

#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

/* Default of -o busy_poll, in microseconds. */
#define FUSE_POLL_DEFAULT_US 100u
/* Largest -o busy_poll accepted, in microseconds. */
#define FUSE_POLL_MAX_US 100000u
/* A turn of the polling loop longer than this means the CPU went to
 * another thread: the poller then sleeps instead. */
#define FUSE_POLL_PREEMPTED_NS 30000u
/* How often the watchdog looks at a holder that is handling a request. */
#define FUSE_POLL_TICK_NS 1000000L
/* Ticks without a request after which the watchdog stops ticking. */
#define FUSE_POLL_IDLE_TICKS 100u
/* Other callers' requests found waiting (net of requests that came alone)
 * that switch to classic mode, and the ticks without a request that end
 * it. */
#define FUSE_POLL_CROWD_SCORE 32
#define FUSE_POLL_CLASSIC_IDLE_TICKS 20u
/* Ends the blocking reads of classic mode; lsmfs uses it for nothing else. */
#define FUSE_POLL_SIGNAL (SIGRTMIN + 4)
/* Workers, at most (libfuse's max_threads is at most 1000 in lsmfs). */
#define FUSE_POLL_MAX_WORKERS 1024

/* Sets up polling of descriptor fd for poll_us microseconds after each
 * request (0: off, read(2) blocks as usual). multithreaded: several
 * workers read fd, so the role is handed on and the watchdog runs. Call
 * once, before the loop starts. Returns 0 or a negative errno. */
int fuse_poll_configure(int fd, unsigned poll_us, bool multithreaded);

/* Reads the next request from fd into buf as read(2) would (the same
 * return value and errno), polling as configured. */
ssize_t fuse_poll_read(int fd, void *buf, size_t buf_len);

/* Stops the watchdog and forgets the configuration and the counts; the
 * loop must have ended (no thread in fuse_poll_read). The module can then
 * be configured again. */
void fuse_poll_stop(void);

struct fuse_poll_counts {
    uint64_t found_polling;     /* came while the holder polled */
    uint64_t found_waiting;     /* were there at the holder's first read */
    uint64_t found_after_sleep; /* woke the holder from poll(2) */
    uint64_t handed_on;         /* handled after handing the role on */
    uint64_t taken_back;        /* roles the watchdog took back */
    uint64_t found_classic;     /* read by blocking workers in classic mode */
    uint64_t classic_spells;    /* times classic mode began */
};
void fuse_poll_get_counts(struct fuse_poll_counts *counts);

/* One line for `lsmfs stats` (malloc'd, no newline), or NULL. */
char *fuse_poll_stats_text(void);

#endif /* LSMFS_FUSE_POLL_H */
