/*
 * fuse_poll.c — busy polling of /dev/fuse (see fuse_poll.h).
 *
 * The role: `taken` says a worker holds it, `epoch` names the holding (a
 * worker remembers the epoch it took, in `my_epoch`, and holds the role
 * while the two match), so a role the watchdog took back is never released
 * twice. All of it is under `lock`; the holder takes the lock twice per
 * request it keeps, uncontended but for the watchdog's tick.
 */
#include "fuse_poll.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
    pthread_mutex_t lock;
    pthread_cond_t role_free;  /* a waiting worker may take the role */
    pthread_cond_t watch_wake; /* the watchdog may look again */
    bool taken;
    uint64_t epoch;
    int waiters;
    bool holder_busy;     /* the holder is handling a request it kept */
    uint64_t busy_seq;    /* counts the requests a holder kept */
    bool watch_waiting;   /* the watchdog waits for watch_wake */
    bool stopping;
    /* Workers in a blocking read(2) in classic mode, which leaving it
     * interrupts with FUSE_POLL_SIGNAL. */
    pthread_t classic_readers[FUSE_POLL_MAX_WORKERS];
    int classic_reader_count;
} role = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .role_free = PTHREAD_COND_INITIALIZER,
    .watch_wake = PTHREAD_COND_INITIALIZER,
};

static unsigned poll_budget_us; /* 0: off */
static bool shared;             /* several workers: the role is in use */
static bool watchdog_started;
static pthread_t watchdog;
static pthread_key_t role_key; /* non-NULL while this thread holds the role */
static _Thread_local uint64_t my_epoch; /* 0: this thread does not hold it */
static uint32_t last_pid; /* the caller of the last request a holder read */

static atomic_uint_fast64_t found_polling, found_waiting, found_after_sleep, handed_on,
    taken_back, found_classic, classic_spells;
static atomic_uint_fast64_t activity; /* counts the requests read */
static atomic_bool classic;           /* classic mode (see fuse_poll.h) */
static int fd_polled = -1;
static int crowd_score; /* the holder's: other callers' requests found waiting */

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* What a holder does with a request it read (see fuse_poll.h). */
enum request_class {
    /* Mostly done in microseconds, and never waits for another request:
     * handled with the role kept, and polled after, since a synchronous
     * caller's next request comes within a wake-up's time. */
    REQUEST_QUICK,
    /* READ and WRITE: handled with the role kept only when they came
     * alone; a request already there when the holder asked is most often
     * one of a batch (readahead, writeback, several callers), which
     * workers take in parallel. Polled after: a lone holder that sleeps in
     * poll(2) between them does worse than either polling or a pool of
     * sleeping readers (4 KiB O_DIRECT random writes, one job: 13-18k
     * IOPS sleeping, 25-32k polling, 31-36k with busy_poll=0). */
    REQUEST_DATA,
    /* Everything else (FSYNC, locks, fallocate, ...): may take long or wait
     * for another request, so the role is handed on first. */
    REQUEST_SLOW,
};

static enum request_class classify(uint32_t opcode)
{
    switch (opcode) {
    case FUSE_LOOKUP:
    case FUSE_FORGET:
    case FUSE_BATCH_FORGET:
    case FUSE_GETATTR:
    case FUSE_SETATTR:
    case FUSE_READLINK:
    case FUSE_SYMLINK:
    case FUSE_MKNOD:
    case FUSE_MKDIR:
    case FUSE_UNLINK:
    case FUSE_RMDIR:
    case FUSE_RENAME:
    case FUSE_RENAME2:
    case FUSE_LINK:
    case FUSE_OPEN:
    case FUSE_CREATE:
    case FUSE_STATFS:
    case FUSE_RELEASE:
    case FUSE_FLUSH:
    case FUSE_SETXATTR:
    case FUSE_GETXATTR:
    case FUSE_LISTXATTR:
    case FUSE_REMOVEXATTR:
    case FUSE_OPENDIR:
    case FUSE_READDIR:
    case FUSE_READDIRPLUS:
    case FUSE_RELEASEDIR:
    case FUSE_ACCESS:
    case FUSE_INTERRUPT:
        return REQUEST_QUICK;
    case FUSE_READ:
    case FUSE_WRITE:
        return REQUEST_DATA;
    default:
        return REQUEST_SLOW;
    }
}

/* Gives the role up if this thread still holds it. Call with role.lock. */
static void release_locked(void)
{
    if (my_epoch != 0 && role.taken && role.epoch == my_epoch) {
        role.taken = false;
        role.holder_busy = false;
        if (role.waiters > 0)
            pthread_cond_signal(&role.role_free);
    }
    my_epoch = 0;
    pthread_setspecific(role_key, NULL);
}

static void release_role(void)
{
    pthread_mutex_lock(&role.lock);
    release_locked();
    pthread_mutex_unlock(&role.lock);
}

/* Gives the role up to handle a request without it. */
static void hand_on(void)
{
    pthread_mutex_lock(&role.lock);
    release_locked();
    pthread_mutex_unlock(&role.lock);
    atomic_fetch_add_explicit(&activity, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&handed_on, 1, memory_order_relaxed);
}

/* Thread exit (libfuse ends surplus idle workers) or cancellation while
 * holding. */
static void release_at_exit(void *arg)
{
    (void)arg;
    if (shared)
        release_role();
}

static void unlock_mutex(void *arg)
{
    pthread_mutex_unlock(arg);
}

/* Waits for the role and takes it; false, without it, when classic mode
 * began meanwhile. A cancellation point (libfuse cancels its workers
 * while they wait for a request). */
static bool take_role(void)
{
    pthread_mutex_lock(&role.lock);
    pthread_cleanup_push(unlock_mutex, &role.lock);
    role.waiters++;
    while (role.taken && !atomic_load(&classic))
        pthread_cond_wait(&role.role_free, &role.lock);
    role.waiters--;
    pthread_cleanup_pop(0);
    if (atomic_load(&classic)) {
        pthread_mutex_unlock(&role.lock);
        return false;
    }
    role.taken = true;
    role.holder_busy = false;
    my_epoch = ++role.epoch;
    pthread_setspecific(role_key, &my_epoch);
    pthread_mutex_unlock(&role.lock);
    return true;
}

static void set_nonblocking(bool on)
{
    int flags = fcntl(fd_polled, F_GETFL);
    if (flags >= 0)
        fcntl(fd_polled, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK);
}

/* Classic mode, entered by the holder when requests of several callers
 * keep waiting for it: every worker blocks in read(2), and the kernel
 * wakes one per request, so they are read in parallel and nobody polls
 * next to the callers that need the CPUs. Call holding the role. */
static void enter_classic(void)
{
    set_nonblocking(false);
    pthread_mutex_lock(&role.lock);
    atomic_store(&classic, true);
    release_locked();
    pthread_cond_broadcast(&role.role_free);
    if (role.watch_waiting)
        pthread_cond_signal(&role.watch_wake);
    pthread_mutex_unlock(&role.lock);
    atomic_fetch_add_explicit(&classic_spells, 1, memory_order_relaxed);
}

/* Back to polling, by the watchdog after FUSE_POLL_CLASSIC_IDLE_TICKS ticks
 * without a request. Non-blocking first, so that a worker about to read
 * gets EAGAIN; the ones already blocked get a signal (EINTR). Call with
 * role.lock. */
static void leave_classic_locked(void)
{
    set_nonblocking(true);
    atomic_store(&classic, false);
    for (int i = 0; i < role.classic_reader_count; i++)
        pthread_kill(role.classic_readers[i], FUSE_POLL_SIGNAL);
}

static void unregister_classic_reader(void *arg)
{
    (void)arg;
    pthread_t self = pthread_self();
    pthread_mutex_lock(&role.lock);
    for (int i = 0; i < role.classic_reader_count; i++)
        if (pthread_equal(role.classic_readers[i], self)) {
            role.classic_readers[i] = role.classic_readers[--role.classic_reader_count];
            break;
        }
    pthread_mutex_unlock(&role.lock);
}

/* A blocking read in classic mode. Returns the read's result, or -2 (errno
 * untouched) when classic mode ended first. */
static ssize_t classic_read(int fd, void *buf, size_t buf_len)
{
    for (;;) {
        pthread_mutex_lock(&role.lock);
        bool still = atomic_load(&classic) && role.classic_reader_count < FUSE_POLL_MAX_WORKERS;
        if (still)
            role.classic_readers[role.classic_reader_count++] = pthread_self();
        pthread_mutex_unlock(&role.lock);
        if (!still)
            return -2;
        ssize_t n;
        pthread_cleanup_push(unregister_classic_reader, NULL);
        n = read(fd, buf, buf_len);
        pthread_cleanup_pop(0);
        int saved = errno;
        unregister_classic_reader(NULL);
        if (n >= 0) {
            atomic_fetch_add_explicit(&activity, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&found_classic, 1, memory_order_relaxed);
            return n;
        }
        if (saved != EINTR && saved != EAGAIN) {
            errno = saved;
            return -1;
        }
    }
}

static void ignore_signal(int signo)
{
    (void)signo;
}

/* At the start of a read: whether this thread still holds the role (the
 * watchdog may have taken it back while the last request was handled). */
static bool still_holding(void)
{
    if (my_epoch == 0)
        return false;
    pthread_mutex_lock(&role.lock);
    bool holding = role.taken && role.epoch == my_epoch;
    if (holding)
        role.holder_busy = false;
    else {
        my_epoch = 0;
        pthread_setspecific(role_key, NULL);
    }
    pthread_mutex_unlock(&role.lock);
    return holding;
}

/* Notes that the holder handles its request with the role kept; false if
 * the role is no longer this thread's. */
static bool keep_for_request(void)
{
    pthread_mutex_lock(&role.lock);
    bool holding = role.taken && role.epoch == my_epoch;
    if (holding) {
        role.holder_busy = true;
        role.busy_seq++;
        atomic_fetch_add_explicit(&activity, 1, memory_order_relaxed);
        if (role.watch_waiting)
            pthread_cond_signal(&role.watch_wake);
    }
    pthread_mutex_unlock(&role.lock);
    return holding;
}

/* Takes the role back from a holder that has been handling one request
 * for a whole tick, and gives it to a waiting worker. Ticks while requests
 * come; after FUSE_POLL_IDLE_TICKS ticks without one it waits for
 * watch_wake, which the next request's reader then signals: one wake-up
 * per idle spell, not one per request. */
static void *watchdog_main(void *arg)
{
    (void)arg;
    unsigned idle_ticks = 0;
    pthread_mutex_lock(&role.lock);
    while (!role.stopping) {
        if (idle_ticks >= FUSE_POLL_IDLE_TICKS && !atomic_load(&classic)) {
            role.watch_waiting = true;
            pthread_cond_wait(&role.watch_wake, &role.lock);
            role.watch_waiting = false;
            idle_ticks = 0;
            continue;
        }
        uint64_t seq = role.busy_seq, epoch = role.epoch,
                 requests = atomic_load_explicit(&activity, memory_order_relaxed);
        bool busy = role.holder_busy;
        pthread_mutex_unlock(&role.lock);
        struct timespec tick = {0, FUSE_POLL_TICK_NS};
        nanosleep(&tick, NULL);
        pthread_mutex_lock(&role.lock);
        if (busy && role.taken && role.holder_busy && role.busy_seq == seq &&
            role.epoch == epoch) {
            /* The holder finds out at its next read (still_holding). */
            role.taken = false;
            role.holder_busy = false;
            atomic_fetch_add_explicit(&taken_back, 1, memory_order_relaxed);
            if (role.waiters > 0)
                pthread_cond_signal(&role.role_free);
        }
        idle_ticks = atomic_load_explicit(&activity, memory_order_relaxed) == requests &&
                             !role.holder_busy
                         ? idle_ticks + 1
                         : 0;
        if (atomic_load(&classic) && idle_ticks >= FUSE_POLL_CLASSIC_IDLE_TICKS)
            leave_classic_locked();
    }
    pthread_mutex_unlock(&role.lock);
    return NULL;
}

int fuse_poll_configure(int fd, unsigned poll_us, bool multithreaded)
{
    poll_budget_us = poll_us;
    if (poll_us == 0)
        return 0;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -errno;
    fd_polled = fd;
    shared = multithreaded;
    if (!shared)
        return 0;
    /* No SA_RESTART: the signal is there to end a blocking read. */
    struct sigaction action = {.sa_handler = ignore_signal};
    sigemptyset(&action.sa_mask);
    if (sigaction(FUSE_POLL_SIGNAL, &action, NULL) != 0)
        return -errno;
    int rc = pthread_key_create(&role_key, release_at_exit);
    if (rc != 0)
        return -rc;
    rc = pthread_create(&watchdog, NULL, watchdog_main, NULL);
    if (rc != 0)
        return -rc;
    pthread_setname_np(watchdog, "lsmfs-pollwatch");
    watchdog_started = true;
    return 0;
}

ssize_t fuse_poll_read(int fd, void *buf, size_t buf_len)
{
    if (poll_budget_us == 0)
        return read(fd, buf, buf_len);
    for (;;) {
        if (shared && atomic_load(&classic)) {
            ssize_t n = classic_read(fd, buf, buf_len);
            if (n != -2)
                return n;
        }
        if (!shared || still_holding() || take_role())
            break;
    }

    const uint64_t budget = (uint64_t)poll_budget_us * 1000u;
    uint64_t start = now_ns(), last = start;
    bool first = true, slept = false;
    ssize_t n;
    for (;;) {
        n = read(fd, buf, buf_len);
        if (n >= 0 || errno != EAGAIN)
            break;
        first = false;
        /* A turn of the loop that took long means another thread had this
         * CPU: a poller would then wait for the CPU when the request comes,
         * where a sleeper woken by it would take the CPU at once. */
        uint64_t now = now_ns();
        bool had_cpu = now - last < FUSE_POLL_PREEMPTED_NS;
        last = now;
        if (had_cpu && now - start < budget) {
            sched_yield();
            continue;
        }
        /* Nothing came: sleep until something does. */
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr;
        pthread_cleanup_push(release_at_exit, NULL);
        pr = poll(&p, 1, -1);
        pthread_cleanup_pop(0);
        if (pr < 0 && errno != EINTR) {
            n = -1;
            break;
        }
        slept = true;
        start = last = now_ns();
    }
    int saved = errno;
    if (n < 0) {
        /* ENODEV (unmounted) or EINTR: libfuse decides; another worker may
         * read meanwhile. */
        if (shared)
            release_role();
        errno = saved;
        return n;
    }
    atomic_fetch_add_explicit(first ? &found_waiting : slept ? &found_after_sleep : &found_polling,
                              1, memory_order_relaxed);
    struct fuse_in_header header = {0};
    if ((size_t)n >= sizeof(header))
        memcpy(&header, buf, sizeof(header));
    /* Whether others may be waiting: this request was there before we
     * asked, and it is not a quick one, or it comes from another caller
     * than the last one (one caller's next request can be there first
     * too, when it ran on this CPU between our reply and our read). */
    enum request_class class = classify(header.opcode);
    bool crowded = first && (class != REQUEST_QUICK || header.pid != last_pid);
    bool other_caller = header.pid != last_pid && header.pid != 0 && last_pid != 0;
    if (header.pid != 0)
        last_pid = header.pid;
    /* Several callers whose requests keep waiting for the holder: classic
     * mode. A request that came alone counts against it. */
    if (first && other_caller)
        crowd_score++;
    else if (!first && crowd_score > 0)
        crowd_score--;
    if (shared && crowd_score >= FUSE_POLL_CROWD_SCORE) {
        crowd_score = 0;
        enter_classic();
        atomic_fetch_add_explicit(&activity, 1, memory_order_relaxed);
    } else if (shared && (class == REQUEST_SLOW || crowded || !keep_for_request()))
        hand_on();
    errno = saved;
    return n;
}

void fuse_poll_stop(void)
{
    if (watchdog_started) {
        pthread_mutex_lock(&role.lock);
        role.stopping = true;
        pthread_cond_signal(&role.watch_wake);
        pthread_mutex_unlock(&role.lock);
        pthread_join(watchdog, NULL);
        watchdog_started = false;
    }
    if (shared)
        pthread_key_delete(role_key);
    pthread_mutex_lock(&role.lock);
    role.taken = role.holder_busy = role.watch_waiting = role.stopping = false;
    role.waiters = 0;
    role.busy_seq = 0;
    role.classic_reader_count = 0;
    pthread_mutex_unlock(&role.lock);
    /* The handler stays: it does nothing, and a signal still on its way
     * must not take the default action (ending the process). */
    shared = false;
    poll_budget_us = 0;
    last_pid = 0;
    crowd_score = 0;
    fd_polled = -1;
    atomic_store(&classic, false);
    atomic_store(&activity, 0);
    atomic_store(&found_classic, 0);
    atomic_store(&classic_spells, 0);
    my_epoch = 0;
    atomic_store(&found_polling, 0);
    atomic_store(&found_waiting, 0);
    atomic_store(&found_after_sleep, 0);
    atomic_store(&handed_on, 0);
    atomic_store(&taken_back, 0);
}

void fuse_poll_get_counts(struct fuse_poll_counts *counts)
{
    counts->found_polling = atomic_load_explicit(&found_polling, memory_order_relaxed);
    counts->found_waiting = atomic_load_explicit(&found_waiting, memory_order_relaxed);
    counts->found_after_sleep = atomic_load_explicit(&found_after_sleep, memory_order_relaxed);
    counts->handed_on = atomic_load_explicit(&handed_on, memory_order_relaxed);
    counts->taken_back = atomic_load_explicit(&taken_back, memory_order_relaxed);
    counts->found_classic = atomic_load_explicit(&found_classic, memory_order_relaxed);
    counts->classic_spells = atomic_load_explicit(&classic_spells, memory_order_relaxed);
}

char *fuse_poll_stats_text(void)
{
    char *text = NULL;
    if (poll_budget_us == 0)
        return strdup("fuse busy poll: off");
    struct fuse_poll_counts c;
    fuse_poll_get_counts(&c);
    if (asprintf(&text,
                 "fuse busy poll: %u us; requests found by polling %llu, already waiting %llu, "
                 "after sleeping %llu; reader role handed on %llu, taken back %llu; "
                 "classic mode %llu times, %llu requests",
                 poll_budget_us, (unsigned long long)c.found_polling,
                 (unsigned long long)c.found_waiting, (unsigned long long)c.found_after_sleep,
                 (unsigned long long)c.handed_on, (unsigned long long)c.taken_back,
                 (unsigned long long)c.classic_spells, (unsigned long long)c.found_classic) < 0)
        return NULL;
    return text;
}
