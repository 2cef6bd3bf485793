/*
 * test_write_order.c — write_order commits a file's WRITE requests in the
 * order they arrived, never makes writes of other files wait, and never
 * waits long for a request that will not come.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "write_order.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum { NUM_WRITERS = 12 };

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct writer {
    uint64_t nodeid, unique;
    int *order;
    atomic_int *next_slot;
};

/* A handler: waits its turn, "commits" by taking the next slot of the
 * order array, and is done. */
static void *writer_main(void *arg)
{
    struct writer *w = arg;
    write_order_wait_turn(w->nodeid, w->unique);
    int slot = atomic_fetch_add(w->next_slot, 1);
    w->order[slot] = (int)w->unique;
    write_order_done(w->nodeid, w->unique);
    return NULL;
}

/* Twelve WRITEs of one file, their handlers started newest first with a
 * pause between each: they still commit oldest first. */
static void test_commits_in_arrival_order(void **state)
{
    (void)state;
    int order[NUM_WRITERS];
    atomic_int next_slot = 0;
    struct writer writers[NUM_WRITERS];
    pthread_t threads[NUM_WRITERS];
    for (int i = 0; i < NUM_WRITERS; i++) {
        writers[i] = (struct writer){
            .nodeid = 7, .unique = 100 + 2 * (uint64_t)i, .order = order, .next_slot = &next_slot};
        write_order_arrived(writers[i].nodeid, writers[i].unique);
    }
    int64_t start = now_ms();
    for (int i = NUM_WRITERS - 1; i >= 0; i--) {
        assert_int_equal(pthread_create(&threads[i], NULL, writer_main, &writers[i]), 0);
        usleep(1000);
    }
    for (int i = 0; i < NUM_WRITERS; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < NUM_WRITERS; i++)
        assert_int_equal(order[i], 100 + 2 * i);
    assert_true(now_ms() - start < 1000);
}

/* A WRITE of another file does not wait for this file's older ones. */
static void test_other_files_do_not_wait(void **state)
{
    (void)state;
    write_order_arrived(21, 500);
    write_order_arrived(22, 501);
    int64_t start = now_ms();
    write_order_wait_turn(22, 501);
    assert_true(now_ms() - start < 20);
    write_order_done(22, 501);
    write_order_done(21, 500);
}

/* An older request that never commits holds a newer one back for a
 * bounded time only, and once stale it holds nothing back. */
static void test_lost_request_bounds_the_wait(void **state)
{
    (void)state;
    write_order_arrived(31, 600); /* never done */
    write_order_arrived(31, 601);
    int64_t start = now_ms();
    write_order_wait_turn(31, 601);
    int64_t waited = now_ms() - start;
    assert_true(waited >= 40 && waited < 400);
    write_order_done(31, 601);
    usleep(600 * 1000); /* past the staleness limit */
    write_order_arrived(31, 602);
    start = now_ms();
    write_order_wait_turn(31, 602);
    assert_true(now_ms() - start < 20);
    write_order_done(31, 602);
}

/* Requests never noted (unique 0, or a full table) and unknown ones are
 * harmless. */
static void test_unknown_requests(void **state)
{
    (void)state;
    write_order_wait_turn(41, 0);
    write_order_done(41, 0);
    write_order_done(41, 12345);
    for (uint64_t u = 1000; u < 1300; u++) /* more than the table holds */
        write_order_arrived(42, u);
    int64_t start = now_ms();
    for (uint64_t u = 1000; u < 1300; u++) {
        write_order_wait_turn(42, u);
        write_order_done(42, u);
    }
    assert_true(now_ms() - start < 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commits_in_arrival_order),
        cmocka_unit_test(test_other_files_do_not_wait),
        cmocka_unit_test(test_lost_request_bounds_the_wait),
        cmocka_unit_test(test_unknown_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
