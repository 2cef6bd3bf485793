/*
 * write_order.c — see write_order.h. The WRITEs in flight and the streams
 * of the most recently written files, in two small tables under one mutex
 * (a few dozen entries: a linear scan is cheapest).
 */
#include "write_order.h"

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

enum {
    IN_FLIGHT_SLOTS = 128,
    STREAMS = 64,
    /* Writes in a row, each beginning where the last ended, that make a
     * file's writes a sequential stream. */
    MIN_RUN = 4,
};

/* How far past its stream's end a write without a noted predecessor waits
 * for one: more than the kernel has in flight (max_background requests of
 * up to 1 MiB). */
#define WRITE_ORDER_GAP_BYTES (32ull << 20)
#define WRITE_ORDER_GRACE_NS (20 * 1000 * 1000LL)
#define WRITE_ORDER_MAX_WAIT_NS (1000 * 1000 * 1000LL)
#define WRITE_ORDER_STALE_NS (2000 * 1000 * 1000LL)

struct in_flight {
    uint64_t nodeid, unique; /* unique 0: free */
    uint64_t end;            /* offset + size */
    int64_t arrived_ns;
};

struct stream {
    uint64_t nodeid; /* 0: free */
    uint64_t end;    /* where the stream's last committed write ended */
    uint64_t last_end; /* where the last committed write ended, wherever it was */
    uint32_t run;    /* writes in a row that began at the previous end */
    uint64_t last_used;
};

static pthread_mutex_t order_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t order_cond;
static pthread_once_t order_once = PTHREAD_ONCE_INIT;
static struct in_flight in_flight[IN_FLIGHT_SLOTS];
static struct stream streams[STREAMS];
static uint64_t use_clock;
static int waiters; /* writes in write_order_wait_turn */
/* Writes waiting for a predecessor not noted yet, and their limit. */
static int grace_waiters, max_grace_waiters = 4;

static void init_cond(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&order_cond, &attr);
    pthread_condattr_destroy(&attr);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct timespec to_timespec(int64_t ns)
{
    return (struct timespec){.tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL};
}

void write_order_set_max_grace_waiters(int count)
{
    pthread_mutex_lock(&order_mutex);
    max_grace_waiters = count;
    pthread_mutex_unlock(&order_mutex);
}

void write_order_arrived(uint64_t nodeid, uint64_t unique, uint64_t offset, uint64_t size)
{
    if (unique == 0)
        return;
    pthread_once(&order_once, init_cond);
    int64_t now = now_ns();
    pthread_mutex_lock(&order_mutex);
    for (int i = 0; i < IN_FLIGHT_SLOTS; i++) {
        struct in_flight *f = &in_flight[i];
        if (f->unique == 0 || now - f->arrived_ns > WRITE_ORDER_STALE_NS) {
            *f = (struct in_flight){
                .nodeid = nodeid, .unique = unique, .end = offset + size, .arrived_ns = now};
            break;
        }
    }
    if (waiters > 0) /* one of them may have been waiting for this note */
        pthread_cond_broadcast(&order_cond);
    pthread_mutex_unlock(&order_mutex);
}

/* Whether the predecessor of write `unique` at `offset` (older, same node,
 * ending at offset) is noted and live; forgets stale notes it meets.
 * Requires the mutex. */
static bool predecessor_in_flight(uint64_t nodeid, uint64_t unique, uint64_t offset, int64_t now)
{
    for (int i = 0; i < IN_FLIGHT_SLOTS; i++) {
        struct in_flight *f = &in_flight[i];
        if (f->unique == 0 || f->unique >= unique || f->nodeid != nodeid || f->end != offset)
            continue;
        if (now - f->arrived_ns > WRITE_ORDER_STALE_NS) {
            f->unique = 0;
            continue;
        }
        return true;
    }
    return false;
}

/* nodeid's stream, or NULL. Requires the mutex. */
static struct stream *find_stream(uint64_t nodeid)
{
    for (int i = 0; i < STREAMS; i++)
        if (streams[i].nodeid == nodeid)
            return &streams[i];
    return NULL;
}

/* Whether a write at offset starts just past the end of nodeid's
 * sequential stream. Requires the mutex. */
static bool just_past_stream(uint64_t nodeid, uint64_t offset)
{
    const struct stream *s = find_stream(nodeid);
    return s != NULL && s->run >= MIN_RUN && offset > s->end &&
           offset - s->end <= WRITE_ORDER_GAP_BYTES;
}

void write_order_wait_turn(uint64_t nodeid, uint64_t unique, uint64_t offset)
{
    if (unique == 0)
        return;
    pthread_once(&order_once, init_cond);
    int64_t start = now_ns();
    int64_t give_up = start + WRITE_ORDER_MAX_WAIT_NS, grace_end = start + WRITE_ORDER_GRACE_NS;
    bool in_grace = false;
    pthread_mutex_lock(&order_mutex);
    waiters++;
    for (;;) {
        int64_t now = now_ns();
        int64_t until;
        bool predecessor = predecessor_in_flight(nodeid, unique, offset, now);
        /* A noted predecessor is held by a worker thread, which will get to
         * it; a predecessor not yet read needs a free worker, hence the
         * cap on those waits. */
        bool grace = !predecessor && now < grace_end && just_past_stream(nodeid, offset) &&
                     (in_grace || grace_waiters < max_grace_waiters);
        if (grace != in_grace) {
            grace_waiters += grace ? 1 : -1;
            in_grace = grace;
        }
        if (now >= give_up || (!predecessor && !grace))
            break;
        until = predecessor ? give_up : grace_end;
        struct timespec ts = to_timespec(until);
        pthread_cond_timedwait(&order_cond, &order_mutex, &ts);
    }
    if (in_grace)
        grace_waiters--;
    waiters--;
    pthread_mutex_unlock(&order_mutex);
}

/* nodeid's stream, made in the least recently used slot if it has none,
 * and marked used. Requires the mutex. */
static struct stream *use_stream(uint64_t nodeid)
{
    struct stream *s = find_stream(nodeid);
    if (s == NULL) {
        s = &streams[0];
        for (int i = 1; i < STREAMS; i++)
            if (streams[i].last_used < s->last_used)
                s = &streams[i];
        *s = (struct stream){.nodeid = nodeid};
    }
    s->last_used = ++use_clock;
    return s;
}

/* Advances nodeid's stream past a write of size bytes at offset (size 0:
 * failed). Requires the mutex. */
static void advance_stream(uint64_t nodeid, uint64_t offset, uint64_t size)
{
    struct stream *s = use_stream(nodeid);
    uint64_t end = offset + size;
    if (size > 0)
        s->last_end = end;
    if (size > 0 && offset == s->end) {
        s->run++;
        s->end = end;
    } else if (end > s->end || (size == 0 && offset >= s->end)) {
        /* A jump ahead, or a failed write where the stream goes on. */
        s->run = 0;
        s->end = end;
    }
    /* A write behind the end (late, or a rewrite) leaves it as it is. */
}

bool write_order_continues(uint64_t nodeid, uint64_t offset)
{
    pthread_mutex_lock(&order_mutex);
    const struct stream *s = find_stream(nodeid);
    bool continues = s != NULL && s->last_end == offset && offset > 0;
    pthread_mutex_unlock(&order_mutex);
    return continues;
}

void write_order_done(uint64_t nodeid, uint64_t unique, uint64_t offset, uint64_t size)
{
    pthread_once(&order_once, init_cond);
    pthread_mutex_lock(&order_mutex);
    if (unique == 0) {
        /* Not ordered (not noted, or through io_uring): only where it
         * ended, for write_order_continues. */
        if (size > 0)
            use_stream(nodeid)->last_end = offset + size;
        pthread_mutex_unlock(&order_mutex);
        return;
    }
    for (int i = 0; i < IN_FLIGHT_SLOTS; i++) {
        if (in_flight[i].unique == unique && in_flight[i].nodeid == nodeid) {
            in_flight[i].unique = 0;
            break;
        }
    }
    advance_stream(nodeid, offset, size);
    if (waiters > 0)
        pthread_cond_broadcast(&order_cond);
    pthread_mutex_unlock(&order_mutex);
}
