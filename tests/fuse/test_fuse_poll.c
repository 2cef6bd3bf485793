/*
 * test_fuse_poll.c — the polling reader of /dev/fuse (fuse/fuse_poll.h),
 * driven over a SOCK_SEQPACKET socket pair that stands for the device: one
 * request header per message, read(2) and poll(2) as on /dev/fuse, and
 * end of file when the test closes its side.
 *
 * Every request is handled exactly once; a synchronous caller's requests
 * are picked up without sleeping; a worker stuck in a request it kept
 * loses the role to the watchdog, so a request it waits for still gets
 * read; a request that was already waiting is handed on; a worker that
 * exits or is cancelled while holding the role gives it up; crowds of
 * several callers switch to classic mode and a quiet spell back; -s and
 * busy_poll=0 read as before.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "fuse_poll.h"

#include <errno.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MAX_REQUESTS = 4096, MAX_WORKERS = 4, WAIT_MS = 10000 };

/* What a handler does with request `unique`. */
enum action {
    HANDLE,         /* notes it and returns */
    WAIT_FOR_NEXT,  /* waits (at most WAIT_MS) until request unique+1 is handled */
    EXIT_THREAD,    /* notes it, then the worker exits */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int handled[MAX_REQUESTS]; /* times each unique was handled */
    enum action action[MAX_REQUESTS];
    bool waited_ok[MAX_REQUESTS];
    int fds[2]; /* fds[0]: the "device" the workers read; fds[1]: the kernel's side */
    pthread_t workers[MAX_WORKERS];
    int worker_count;
} t = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};

static struct timespec deadline_in(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Waits until request unique has been handled; false after WAIT_MS. */
static bool wait_handled(uint64_t unique)
{
    struct timespec until = deadline_in(WAIT_MS);
    pthread_mutex_lock(&t.lock);
    int rc = 0;
    while (t.handled[unique] == 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&t.changed, &t.lock, &until);
    bool done = t.handled[unique] > 0;
    pthread_mutex_unlock(&t.lock);
    return done;
}

static int handled_count(uint64_t unique)
{
    pthread_mutex_lock(&t.lock);
    int count = t.handled[unique];
    pthread_mutex_unlock(&t.lock);
    return count;
}

static void *worker_main(void *arg)
{
    (void)arg;
    char buf[256];
    for (;;) {
        ssize_t n = fuse_poll_read(t.fds[0], buf, sizeof(buf));
        if (n <= 0) /* the test closed its side */
            return NULL;
        struct fuse_in_header header;
        /* No cmocka assertions off the main thread: they longjmp. */
        if ((size_t)n != sizeof(header))
            abort();
        memcpy(&header, buf, sizeof(header));
        if (header.unique >= MAX_REQUESTS)
            abort();
        enum action action = t.action[header.unique];
        if (action == WAIT_FOR_NEXT) {
            bool ok = wait_handled(header.unique + 1);
            pthread_mutex_lock(&t.lock);
            t.waited_ok[header.unique] = ok;
            pthread_mutex_unlock(&t.lock);
        }
        pthread_mutex_lock(&t.lock);
        t.handled[header.unique]++;
        pthread_cond_broadcast(&t.changed);
        pthread_mutex_unlock(&t.lock);
        if (action == EXIT_THREAD)
            return NULL;
    }
}

static void send_request(uint64_t unique, uint32_t opcode, uint32_t pid)
{
    struct fuse_in_header header = {
        .len = sizeof(header), .opcode = opcode, .unique = unique, .nodeid = 1, .pid = pid};
    assert_int_equal(write(t.fds[1], &header, sizeof(header)), sizeof(header));
}

static void start_workers(int count)
{
    for (int i = 0; i < count; i++)
        assert_int_equal(pthread_create(&t.workers[t.worker_count++], NULL, worker_main, NULL), 0);
}

static int setup(void **state)
{
    (void)state;
    memset(t.handled, 0, sizeof(t.handled));
    memset(t.action, 0, sizeof(t.action));
    memset(t.waited_ok, 0, sizeof(t.waited_ok));
    t.worker_count = 0;
    return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, t.fds);
}

/* Closes the kernel's side (every worker then reads end of file and
 * returns), joins the workers and resets the module. */
static int teardown(void **state)
{
    (void)state;
    close(t.fds[1]);
    for (int i = 0; i < t.worker_count; i++) {
        struct timespec until = deadline_in(WAIT_MS);
        if (pthread_timedjoin_np(t.workers[i], NULL, &until) != 0) {
            /* Waiting forever for a role nobody gives up. */
            fprintf(stderr, "a worker did not end after end of file\n");
            exit(1);
        }
    }
    close(t.fds[0]);
    fuse_poll_stop();
    return 0;
}

static struct fuse_poll_counts counts(void)
{
    struct fuse_poll_counts c;
    fuse_poll_get_counts(&c);
    printf("    polling %llu, waiting %llu, after sleep %llu, handed on %llu, taken back %llu, "
           "classic %llu (%llu times)\n",
           (unsigned long long)c.found_polling, (unsigned long long)c.found_waiting,
           (unsigned long long)c.found_after_sleep, (unsigned long long)c.handed_on,
           (unsigned long long)c.taken_back, (unsigned long long)c.found_classic,
           (unsigned long long)c.classic_spells);
    return c;
}

/* One caller, one request at a time, as stat(2) or create(2) make them. */
static void sync_caller(int requests, uint32_t opcode)
{
    for (int i = 1; i <= requests; i++) {
        send_request((uint64_t)i, opcode, 42);
        assert_true(wait_handled((uint64_t)i));
    }
    for (int i = 1; i <= requests; i++)
        assert_int_equal(handled_count((uint64_t)i), 1);
}

static void test_sync_caller_is_polled(void **state)
{
    (void)state;
    assert_int_equal(fuse_poll_configure(t.fds[0], 1000, true), 0);
    start_workers(3);
    sync_caller(1000, FUSE_GETATTR);
    struct fuse_poll_counts c = counts();
    assert_int_equal(c.found_polling + c.found_waiting + c.found_after_sleep, 1000);
    /* With a 1 ms budget a caller that answers at once is found polling
     * (or, on the poller's CPU, waiting), but for rare preemptions. */
    assert_true(c.found_polling + c.found_waiting > 0);
}

/* A holder stuck in a request it kept (here: waiting for the next one, as
 * a write waits for its predecessor) loses the role, and another worker
 * reads the next request. Without the watchdog this waits forever. */
static void test_watchdog_takes_the_role_back(void **state)
{
    (void)state;
    assert_int_equal(fuse_poll_configure(t.fds[0], 100, true), 0);
    start_workers(2);
    send_request(1, FUSE_LOOKUP, 7); /* the holder's last caller is 7 */
    assert_true(wait_handled(1));
    t.action[2] = WAIT_FOR_NEXT;
    send_request(2, FUSE_LOOKUP, 7); /* quick, same caller: kept */
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL); /* request 2 is being handled */
    send_request(3, FUSE_LOOKUP, 7);
    assert_true(wait_handled(2));
    assert_true(t.waited_ok[2]);
    assert_int_equal(handled_count(3), 1);
    assert_true(counts().taken_back >= 1);
}

/* Data requests that were already waiting are handed on at once: the
 * first waits for the second, which another worker reads without any
 * help from the watchdog. */
static void test_waiting_requests_are_handed_on(void **state)
{
    (void)state;
    assert_int_equal(fuse_poll_configure(t.fds[0], 100, true), 0);
    t.action[1] = WAIT_FOR_NEXT;
    send_request(1, FUSE_WRITE, 0);
    send_request(2, FUSE_WRITE, 0);
    start_workers(2);
    assert_true(wait_handled(1));
    assert_true(t.waited_ok[1]);
    struct fuse_poll_counts c = counts();
    assert_true(c.handed_on >= 1);
    assert_int_equal(c.taken_back, 0);
}

/* Requests of other callers that were already waiting are handed on too,
 * and slow opcodes (FSYNC) always are. */
static void test_other_callers_and_slow_requests_are_handed_on(void **state)
{
    (void)state;
    assert_int_equal(fuse_poll_configure(t.fds[0], 100, true), 0);
    t.action[1] = WAIT_FOR_NEXT;
    t.action[3] = WAIT_FOR_NEXT;
    send_request(1, FUSE_GETATTR, 100);
    send_request(2, FUSE_GETATTR, 101);
    start_workers(2);
    assert_true(wait_handled(1));
    assert_true(t.waited_ok[1]);
    assert_int_equal(counts().taken_back, 0);
    send_request(3, FUSE_FSYNC, 100); /* alone, but slow */
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    send_request(4, FUSE_GETATTR, 100);
    assert_true(wait_handled(3));
    assert_true(t.waited_ok[3]);
    assert_true(counts().handed_on >= 3);
}

/* Requests of two callers that keep finding the holder busy switch to
 * classic mode (every worker blocks in read); after a quiet spell the
 * watchdog ends it, interrupting the blocked reads, and a single caller
 * is polled again. */
static void test_crowds_switch_to_classic_and_back(void **state)
{
    (void)state;
    assert_int_equal(fuse_poll_configure(t.fds[0], 100, true), 0);
    /* All queued before any worker reads (100 fit in the socket's
     * buffer): every one is found waiting, the callers alternating. */
    for (int i = 1; i <= 100; i++)
        send_request((uint64_t)i, FUSE_GETATTR, 100 + (uint32_t)(i % 2));
    start_workers(3);
    for (int i = 1; i <= 100; i++)
        assert_true(wait_handled((uint64_t)i));
    struct fuse_poll_counts c = counts();
    assert_int_equal(c.classic_spells, 1);
    assert_true(c.found_classic > 0);
    uint64_t classic_reads = c.found_classic;
    /* More than FUSE_POLL_CLASSIC_IDLE_TICKS ticks of quiet. */
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    for (int i = 101; i <= 300; i++) {
        send_request((uint64_t)i, FUSE_GETATTR, 42);
        assert_true(wait_handled((uint64_t)i));
    }
    c = counts();
    assert_int_equal(c.found_classic, classic_reads);
    assert_int_equal(c.classic_spells, 1);
    for (int i = 1; i <= 300; i++)
        assert_int_equal(handled_count((uint64_t)i), 1);
}

/* libfuse ends surplus workers after a request: one that held the role
 * gives it up as it exits (or, failing that, the watchdog takes it). */
static void test_exit_while_holding_gives_the_role_up(void **state)
{
    (void)state;
    assert_int_equal(fuse_poll_configure(t.fds[0], 100, true), 0);
    start_workers(1);
    send_request(1, FUSE_LOOKUP, 9);
    assert_true(wait_handled(1));
    t.action[2] = EXIT_THREAD;
    send_request(2, FUSE_LOOKUP, 9); /* kept, then the worker exits */
    assert_true(wait_handled(2));
    start_workers(1);
    send_request(3, FUSE_LOOKUP, 9);
    assert_true(wait_handled(3));
}

/* libfuse cancels its workers at unmount, the holder sleeping in poll(2):
 * the role is given up. */
static void test_cancel_in_poll_gives_the_role_up(void **state)
{
    (void)state;
    assert_int_equal(fuse_poll_configure(t.fds[0], 100, true), 0);
    start_workers(1);
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL); /* past the budget: asleep in poll(2) */
    assert_int_equal(pthread_cancel(t.workers[0]), 0);
    assert_int_equal(pthread_join(t.workers[0], NULL), 0);
    t.worker_count = 0;
    start_workers(1);
    send_request(1, FUSE_LOOKUP, 9);
    assert_true(wait_handled(1));
}

/* -s: one worker, no role, no watchdog. */
static void test_single_thread(void **state)
{
    (void)state;
    assert_int_equal(fuse_poll_configure(t.fds[0], 1000, false), 0);
    start_workers(1);
    sync_caller(300, FUSE_LOOKUP);
    struct fuse_poll_counts c = counts();
    assert_int_equal(c.found_polling + c.found_waiting + c.found_after_sleep, 300);
    assert_int_equal(c.handed_on, 0);
}

/* busy_poll=0: plain blocking reads, counted nowhere. */
static void test_off(void **state)
{
    (void)state;
    assert_int_equal(fuse_poll_configure(t.fds[0], 0, true), 0);
    start_workers(2);
    sync_caller(100, FUSE_LOOKUP);
    struct fuse_poll_counts c = counts();
    assert_int_equal(c.found_polling + c.found_waiting + c.found_after_sleep, 0);
    char *text = fuse_poll_stats_text();
    assert_non_null(text);
    assert_string_equal(text, "fuse busy poll: off");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sync_caller_is_polled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchdog_takes_the_role_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waiting_requests_are_handed_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_callers_and_slow_requests_are_handed_on, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_crowds_switch_to_classic_and_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_exit_while_holding_gives_the_role_up, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel_in_poll_gives_the_role_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_single_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_off, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
