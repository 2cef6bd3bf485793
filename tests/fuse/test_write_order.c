/*
 * test_write_order.c — write_order commits the writes of a sequential
 * stream in file order (also when their notes arrive out of order), never
 * makes random writes or writes of other files wait, and bounds every
 * wait.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "write_order.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum { NUM_WRITERS = 8, CHUNK = 1 << 20 };

static uint64_t next_unique = 2;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Notes, waits for and commits `count` writes of CHUNK bytes of nodeid in
 * a row from `offset`, one after the other; returns the offset after. */
static uint64_t commit_run(uint64_t nodeid, uint64_t offset, int count)
{
    for (int i = 0; i < count; i++, offset += CHUNK) {
        uint64_t unique = next_unique += 2;
        write_order_arrived(nodeid, unique, offset, CHUNK);
        write_order_wait_turn(nodeid, unique, offset);
        write_order_done(nodeid, unique, offset, CHUNK);
    }
    return offset;
}

struct writer {
    uint64_t nodeid, unique, offset;
    bool note; /* note the request itself before waiting */
    uint64_t *order;
    atomic_int *next_slot;
};

/* A handler: waits its turn, "commits" by taking the next slot of the
 * order array, and is done. */
static void *writer_main(void *arg)
{
    struct writer *w = arg;
    if (w->note)
        write_order_arrived(w->nodeid, w->unique, w->offset, CHUNK);
    write_order_wait_turn(w->nodeid, w->unique, w->offset);
    int slot = atomic_fetch_add(w->next_slot, 1);
    w->order[slot] = w->offset;
    write_order_done(w->nodeid, w->unique, w->offset, CHUNK);
    return NULL;
}

/* Eight writes of one file, one after the other in the file and noted in
 * that order, whose handlers start last-in-file first a millisecond apart:
 * they commit in file order, quickly. */
static void test_commits_in_file_order(void **state)
{
    (void)state;
    write_order_set_max_grace_waiters(0);
    uint64_t order[NUM_WRITERS];
    atomic_int next_slot = 0;
    struct writer writers[NUM_WRITERS];
    pthread_t threads[NUM_WRITERS];
    for (int i = 0; i < NUM_WRITERS; i++) {
        writers[i] = (struct writer){.nodeid = 7,
                                     .unique = next_unique += 2,
                                     .offset = (uint64_t)i * CHUNK,
                                     .order = order,
                                     .next_slot = &next_slot};
        write_order_arrived(7, writers[i].unique, writers[i].offset, CHUNK);
    }
    int64_t start = now_ms();
    for (int i = NUM_WRITERS - 1; i >= 0; i--) {
        assert_int_equal(pthread_create(&threads[i], NULL, writer_main, &writers[i]), 0);
        usleep(1000);
    }
    for (int i = 0; i < NUM_WRITERS; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < NUM_WRITERS; i++)
        assert_true(order[i] == (uint64_t)i * CHUNK);
    assert_true(now_ms() - start < 200);
    write_order_set_max_grace_waiters(4);
}

/* In a sequential stream, a write whose predecessor is noted a little
 * after it (two readers racing) still commits after it. */
static void test_late_note_of_predecessor(void **state)
{
    (void)state;
    uint64_t end = commit_run(8, 0, 6);
    uint64_t order[2];
    atomic_int next_slot = 0;
    uint64_t first = next_unique += 2, second = next_unique += 2;
    struct writer successor = {.nodeid = 8,
                               .unique = second,
                               .offset = end + CHUNK,
                               .note = true,
                               .order = order,
                               .next_slot = &next_slot};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, writer_main, &successor), 0);
    usleep(500); /* the successor is noted and waiting */
    struct writer predecessor = {.nodeid = 8,
                                 .unique = first,
                                 .offset = end,
                                 .note = true,
                                 .order = order,
                                 .next_slot = &next_slot};
    writer_main(&predecessor);
    pthread_join(thread, NULL);
    assert_true(order[0] == end && order[1] == end + CHUNK);
}

/* Random writes, writes of another file, and writes far past a stream do
 * not wait. */
static void test_unrelated_writes_do_not_wait(void **state)
{
    (void)state;
    int64_t start = now_ms();
    for (uint64_t i = 0; i < 200; i++) { /* random 4 KiB writes, 8 in flight */
        uint64_t unique = next_unique += 2;
        uint64_t offset = (i * 7919 % 1031) * 4096;
        write_order_arrived(21, unique, offset, 4096);
        if (i >= 8) {
            uint64_t old = unique - 16, old_offset = ((i - 8) * 7919 % 1031) * 4096;
            write_order_wait_turn(21, old, old_offset);
            write_order_done(21, old, old_offset, 4096);
        }
    }
    uint64_t end = commit_run(22, 0, 6);
    uint64_t u = next_unique += 2;
    write_order_arrived(22, u, end, CHUNK);                          /* in flight, not done */
    write_order_wait_turn(23, next_unique += 2, end + CHUNK);        /* another file */
    write_order_wait_turn(22, next_unique += 2, end + (1ull << 30)); /* far past */
    write_order_wait_turn(22, next_unique += 2, 0);                  /* a rewrite */
    assert_true(now_ms() - start < 50);
    write_order_done(22, u, end, CHUNK);
}

/* A predecessor that never commits holds a write back for a bounded time;
 * a failed one (size 0) releases it at once. */
static void test_waits_are_bounded(void **state)
{
    (void)state;
    uint64_t lost = next_unique += 2, waiting = next_unique += 2;
    write_order_arrived(31, lost, 0, CHUNK); /* never done */
    write_order_arrived(31, waiting, CHUNK, CHUNK);
    int64_t start = now_ms();
    write_order_wait_turn(31, waiting, CHUNK);
    int64_t waited = now_ms() - start;
    assert_true(waited >= 900 && waited < 2000);
    write_order_done(31, waiting, CHUNK, CHUNK);
    write_order_done(31, lost, 0, 0);

    uint64_t failing = next_unique += 2, after = next_unique += 2;
    write_order_arrived(32, failing, 0, CHUNK);
    write_order_arrived(32, after, CHUNK, CHUNK);
    write_order_done(32, failing, 0, 0);
    start = now_ms();
    write_order_wait_turn(32, after, CHUNK);
    assert_true(now_ms() - start < 10);
    write_order_done(32, after, CHUNK, CHUNK);
}

/* A write just past a stream with no predecessor noted waits a moment
 * (the grace), not when grace waits are turned off; waits for noted
 * predecessors are not limited by that (the first test runs with grace
 * waits off too). */
static void test_grace_waits(void **state)
{
    (void)state;
    uint64_t end = commit_run(33, 0, 6);
    int64_t start = now_ms();
    uint64_t u = next_unique += 2;
    write_order_arrived(33, u, end + CHUNK, CHUNK);
    write_order_wait_turn(33, u, end + CHUNK);
    int64_t waited = now_ms() - start;
    assert_true(waited >= 1 && waited < 100);
    write_order_done(33, u, end + CHUNK, CHUNK); /* gives up the gap: a new run */

    end = commit_run(34, 0, 6);
    write_order_set_max_grace_waiters(0);
    start = now_ms();
    u = next_unique += 2;
    write_order_arrived(34, u, end + CHUNK, CHUNK);
    write_order_wait_turn(34, u, end + CHUNK);
    assert_true(now_ms() - start < 1);
    write_order_done(34, u, end + CHUNK, CHUNK);
    write_order_set_max_grace_waiters(4);
}

/* Requests never noted (unique 0) and more requests than the table holds
 * are harmless. */
static void test_unknown_requests(void **state)
{
    (void)state;
    write_order_wait_turn(41, 0, 0);
    write_order_done(41, 0, 0, 4096);
    write_order_done(41, 12345, 0, 4096);
    int64_t start = now_ms();
    uint64_t first = next_unique + 2;
    for (int i = 0; i < 300; i++)
        write_order_arrived(42, next_unique += 2, (uint64_t)i * 4096, 4096);
    for (int i = 0; i < 300; i++) {
        write_order_wait_turn(42, first + 2 * (uint64_t)i, (uint64_t)i * 4096);
        write_order_done(42, first + 2 * (uint64_t)i, (uint64_t)i * 4096, 4096);
    }
    assert_true(now_ms() - start < 200);
}

/* write_order_continues: a write continues where the node's last
 * committed write ended, noted or not, wherever that was (a rewrite
 * behind the stream too); never at offset 0, never for a node not seen,
 * and not after a failed write moved nothing. */
static void test_continues(void **state)
{
    (void)state;
    assert_false(write_order_continues(51, 0));
    assert_false(write_order_continues(51, 4096));
    uint64_t u = next_unique += 2;
    write_order_arrived(51, u, 0, 8192);
    write_order_wait_turn(51, u, 0);
    write_order_done(51, u, 0, 8192);
    assert_true(write_order_continues(51, 8192));
    assert_false(write_order_continues(51, 12288)); /* a gap */
    assert_false(write_order_continues(52, 8192));  /* another node */
    /* A rewrite behind the end, not noted (unique 0, as through io_uring). */
    write_order_done(51, 0, 1 << 20, 4096);
    assert_true(write_order_continues(51, (1 << 20) + 4096));
    assert_false(write_order_continues(51, 8192));
    write_order_done(51, 0, 4096, 0); /* failed: nothing moves */
    assert_true(write_order_continues(51, (1 << 20) + 4096));
    /* Back to the start of the file: offset 0 never continues. */
    write_order_done(51, 0, 0, 0);
    assert_false(write_order_continues(51, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commits_in_file_order),
        cmocka_unit_test(test_late_note_of_predecessor),
        cmocka_unit_test(test_unrelated_writes_do_not_wait),
        cmocka_unit_test(test_waits_are_bounded),
        cmocka_unit_test(test_grace_waits),
        cmocka_unit_test(test_unknown_requests),
        cmocka_unit_test(test_continues),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
