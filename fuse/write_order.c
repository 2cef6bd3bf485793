/*
 * write_order.c — see write_order.h. A small table of the WRITE requests
 * in flight under one mutex; they are few (at most the kernel's
 * max_background plus the synchronous ones), so a linear scan is cheapest.
 */
#include "write_order.h"

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

enum {
    WRITE_ORDER_SLOTS = 128,
};

/* How long a WRITE waits for older ones of its file, at most. The older
 * ones take the inode's lock one after the other anyway, so waiting costs
 * the file no throughput. */
#define WRITE_ORDER_MAX_WAIT_NS (50 * 1000 * 1000LL)
/* A noted WRITE older than this is taken as one that will never commit. */
#define WRITE_ORDER_STALE_NS (500 * 1000 * 1000LL)

struct slot {
    uint64_t nodeid, unique; /* unique 0: free */
    int64_t arrived_ns;
};

static pthread_mutex_t order_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t order_cond;
static pthread_once_t order_once = PTHREAD_ONCE_INIT;
static struct slot slots[WRITE_ORDER_SLOTS];

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

void write_order_arrived(uint64_t nodeid, uint64_t unique)
{
    if (unique == 0)
        return;
    pthread_once(&order_once, init_cond);
    int64_t now = now_ns();
    pthread_mutex_lock(&order_mutex);
    for (int i = 0; i < WRITE_ORDER_SLOTS; i++) {
        if (slots[i].unique == 0 || now - slots[i].arrived_ns > WRITE_ORDER_STALE_NS) {
            slots[i] = (struct slot){.nodeid = nodeid, .unique = unique, .arrived_ns = now};
            break;
        }
    }
    pthread_mutex_unlock(&order_mutex);
}

/* Whether an older live WRITE of nodeid than `unique` is noted; forgets
 * the stale ones it meets. Requires the mutex. */
static bool older_in_flight(uint64_t nodeid, uint64_t unique, int64_t now)
{
    bool older = false;
    for (int i = 0; i < WRITE_ORDER_SLOTS; i++) {
        struct slot *s = &slots[i];
        if (s->unique == 0 || s->unique >= unique || s->nodeid != nodeid)
            continue;
        if (now - s->arrived_ns > WRITE_ORDER_STALE_NS)
            s->unique = 0;
        else
            older = true;
    }
    return older;
}

void write_order_wait_turn(uint64_t nodeid, uint64_t unique)
{
    if (unique == 0)
        return;
    pthread_once(&order_once, init_cond);
    int64_t deadline = now_ns() + WRITE_ORDER_MAX_WAIT_NS;
    struct timespec until = {.tv_sec = deadline / 1000000000LL, .tv_nsec = deadline % 1000000000LL};
    pthread_mutex_lock(&order_mutex);
    for (;;) {
        int64_t now = now_ns();
        if (now >= deadline || !older_in_flight(nodeid, unique, now))
            break;
        pthread_cond_timedwait(&order_cond, &order_mutex, &until);
    }
    pthread_mutex_unlock(&order_mutex);
}

void write_order_done(uint64_t nodeid, uint64_t unique)
{
    if (unique == 0)
        return;
    pthread_once(&order_once, init_cond);
    pthread_mutex_lock(&order_mutex);
    bool found = false;
    for (int i = 0; i < WRITE_ORDER_SLOTS && !found; i++) {
        if (slots[i].unique == unique && slots[i].nodeid == nodeid) {
            slots[i].unique = 0;
            found = true;
        }
    }
    if (found)
        pthread_cond_broadcast(&order_cond);
    pthread_mutex_unlock(&order_mutex);
}
