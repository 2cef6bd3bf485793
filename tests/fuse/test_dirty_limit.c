/*
 * test_dirty_limit.c — when lsmfs lifts the kernel's cap on its mount's
 * dirty pages (fuse/dirty_limit.h): the decision fed write-back WRITEs one
 * by one, the knob it writes (a fake sysfs directory), and, on real mounts
 * as root, that scattered writes lift the cap of a default mount, that a
 * new file written from start to end puts it back (one allocated ahead
 * does not), and that
 * -o dirty_limit=kernel keeps it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bdi.h"
#include "dirty_limit.h"
#include "mountutil.h"
#include "testutil.h"

#define KIB 1024ull
#define MIB (1024ull * 1024)

/* Feeds `count` scattered WRITEs (4 KiB, deep, spread out, inside the
 * file); returns how many of them changed the decision. */
static int feed_scattered(struct dirty_policy *p, unsigned int count)
{
    int changes = 0;
    for (unsigned int i = 0; i < count; i++)
        changes += dirty_policy_note(p, DIRTY_POLICY_DEEP + (uint64_t)i * 64 * KIB, 4 * KIB, false,
                                     false);
    return changes;
}

/* Feeds `bytes` of 1 MiB WRITEs, from `*offset` on, each extending the
 * file in a stream or not. Returns the 1-based index of the WRITE that changed the
 * decision, or 0. */
static unsigned int feed_long(struct dirty_policy *p, uint64_t *offset, uint64_t bytes,
                              bool grows)
{
    unsigned int changed_at = 0;
    for (unsigned int i = 0; i < bytes / MIB; i++) {
        if (dirty_policy_note(p, *offset, MIB, grows, grows) && changed_at == 0)
            changed_at = i + 1;
        *offset += MIB;
    }
    return changed_at;
}

static void test_scattered_writes_lift(void **state)
{
    (void)state;
    struct dirty_policy p = {0};
    assert_int_equal(feed_scattered(&p, DIRTY_POLICY_SCATTERED - 1), 0);
    assert_false(p.lifted);
    assert_int_equal(feed_scattered(&p, 1), 1);
    assert_true(p.lifted);
    /* More of them keep it lifted without a change to apply. */
    assert_int_equal(feed_scattered(&p, 10 * DIRTY_POLICY_SCATTERED), 0);
    assert_true(p.lifted);
}

/* Small files written back whole (shallow offsets), an appender's small
 * WRITEs (extending), middling WRITEs and long ones never lift the cap. */
static void test_other_writes_never_lift(void **state)
{
    (void)state;
    struct dirty_policy p = {0};
    for (unsigned int i = 0; i < 100000; i++) {
        assert_false(dirty_policy_note(&p, 0, 4 * KIB, true, true));
        assert_false(dirty_policy_note(&p, DIRTY_POLICY_DEEP - 4 * KIB, 4 * KIB, false, false));
        assert_false(dirty_policy_note(&p, 8 * MIB + i * 8 * KIB, 8 * KIB, true, true));
        assert_false(dirty_policy_note(&p, 64 * MIB + i * 256 * KIB, 128 * KIB, false, false));
        assert_false(dirty_policy_note(&p, 4096 * MIB + i * 8 * MIB, 1 * MIB, false, true));
    }
    assert_false(p.lifted);
}

/* With the cap on, 64 MiB of long write-back forget the scattered WRITEs
 * seen so far: a count has to be made again from zero. */
static void test_long_writes_forget_scattered_ones(void **state)
{
    (void)state;
    struct dirty_policy p = {0};
    uint64_t offset = 0;
    assert_int_equal(feed_scattered(&p, DIRTY_POLICY_SCATTERED - 1), 0);
    assert_int_equal(feed_long(&p, &offset, DIRTY_POLICY_LONG_FORGET, false), 0);
    assert_int_equal(feed_scattered(&p, DIRTY_POLICY_SCATTERED - 1), 0);
    assert_false(p.lifted);
    assert_int_equal(feed_scattered(&p, 1), 1);
    assert_true(p.lifted);

    /* Less than that forgets nothing, and neither do middling WRITEs. */
    struct dirty_policy q = {0};
    assert_int_equal(feed_scattered(&q, DIRTY_POLICY_SCATTERED - 1), 0);
    assert_int_equal(feed_long(&q, &offset, DIRTY_POLICY_LONG_FORGET - MIB, true), 0);
    for (unsigned int i = 0; i < 4096; i++)
        assert_false(dirty_policy_note(&q, offset + i * 128 * KIB, 128 * KIB, false, true));
    assert_int_equal(feed_scattered(&q, 1), 1);
}

/* Once lifted, a stream growing its file puts the cap back after
 * DIRTY_POLICY_GROW_RESTORE bytes; middling WRITEs count too. */
static void test_growing_stream_restores(void **state)
{
    (void)state;
    struct dirty_policy p = {0};
    feed_scattered(&p, DIRTY_POLICY_SCATTERED);
    assert_true(p.lifted);
    uint64_t offset = 0;
    unsigned int at = feed_long(&p, &offset, DIRTY_POLICY_GROW_RESTORE + 4 * MIB, true);
    assert_int_equal(at, DIRTY_POLICY_GROW_RESTORE / MIB);
    assert_false(p.lifted);

    struct dirty_policy q = {0};
    feed_scattered(&q, DIRTY_POLICY_SCATTERED);
    bool restored = false;
    for (uint64_t i = 0; i < DIRTY_POLICY_GROW_RESTORE / (64 * KIB); i++)
        restored |= dirty_policy_note(&q, i * 64 * KIB, 64 * KIB, true, true);
    assert_true(restored);
    assert_false(q.lifted);
}

/* Long WRITEs inside the file (the page cache writing back merged runs of
 * scattered pages, a whole rewritten file, a file allocated ahead) never
 * put the cap back, however many, in order or not, and neither do small
 * ones growing it. */
static void test_writes_inside_keep_the_cap_lifted(void **state)
{
    (void)state;
    struct dirty_policy p = {0};
    feed_scattered(&p, DIRTY_POLICY_SCATTERED);
    uint64_t offset = 0;
    assert_int_equal(feed_long(&p, &offset, 8 * DIRTY_POLICY_GROW_RESTORE, false), 0);
    for (uint64_t i = 0; i < 8 * DIRTY_POLICY_GROW_RESTORE / MIB; i++)
        assert_false(dirty_policy_note(&p, offset + i * MIB, MIB, false, false));
    for (uint64_t i = 0; i < DIRTY_POLICY_GROW_RESTORE / (32 * KIB); i++)
        assert_false(dirty_policy_note(&p, offset + i * 32 * KIB, 32 * KIB, true, true));
    assert_true(p.lifted);
}

/* A file extended in runs with gaps between them (the caller's rule:
 * growing a stream means extending the file and beginning where the last
 * WRITE ended) keeps the cap lifted. */
static void test_gappy_growth_keeps_the_cap_lifted(void **state)
{
    (void)state;
    struct dirty_policy p = {0};
    feed_scattered(&p, DIRTY_POLICY_SCATTERED);
    uint64_t last_end = 0;
    for (uint64_t i = 0; i < 4 * DIRTY_POLICY_GROW_RESTORE / MIB; i++) {
        uint64_t offset = i * (MIB + 8 * KIB); /* a hole left after each run */
        bool continues = offset == last_end && offset > 0;
        assert_false(dirty_policy_note(&p, offset, MIB, true, continues));
        last_end = offset + MIB;
    }
    assert_true(p.lifted);
}

/* Scattered WRITEs while lifted forget the growing bytes counted. */
static void test_scattered_writes_renew_the_lift(void **state)
{
    (void)state;
    struct dirty_policy p = {0};
    feed_scattered(&p, DIRTY_POLICY_SCATTERED);
    uint64_t offset = 0;
    assert_int_equal(feed_long(&p, &offset, DIRTY_POLICY_GROW_RESTORE - 8 * MIB, true), 0);
    assert_int_equal(feed_scattered(&p, DIRTY_POLICY_SCATTERED), 0);
    assert_int_equal(feed_long(&p, &offset, DIRTY_POLICY_GROW_RESTORE - 8 * MIB, true), 0);
    assert_true(p.lifted);
    assert_int_not_equal(feed_long(&p, &offset, 16 * MIB, true), 0);
    assert_false(p.lifted);
}

static int read_knob(const char *root, const char *bdi)
{
    return bdi_strict_limit(root, bdi);
}

static char *fake_sysfs(const char *name)
{
    char *root = kv_test_tmpdir(name);
    char path[4096];
    snprintf(path, sizeof(path), "%s/0:40", root);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/0:40/strict_limit", root);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "1\n", 2), 2);
    assert_int_equal(close(fd), 0);
    return root;
}

static void feed_writeback_scattered(unsigned int count)
{
    for (unsigned int i = 0; i < count; i++)
        dirty_limit_note_writeback(DIRTY_POLICY_DEEP + (uint64_t)i * 64 * KIB, 4 * KIB, false,
                                   false);
}

static void feed_writeback_stream(uint64_t bytes)
{
    for (uint64_t offset = 0; offset < bytes; offset += MIB)
        dirty_limit_note_writeback(offset, MIB, true, true);
}

static void assert_stats_contain(const char *expected)
{
    char *text = dirty_limit_stats_text();
    assert_non_null(text);
    if (strstr(text, expected) == NULL)
        fail_msg("stats line \"%s\" lacks \"%s\"", text, expected);
    free(text);
}

/* AUTO writes the knob when the decision changes, and says so. */
static void test_auto_writes_the_knob(void **state)
{
    (void)state;
    char *root = fake_sysfs("dirty-auto");
    assert_int_equal(dirty_limit_start(DIRTY_LIMIT_AUTO, root, "0:40"), 0);
    assert_int_equal(read_knob(root, "0:40"), 1);
    assert_stats_contain("auto on bdi 0:40, the kernel's cap now; lifted 0 times");
    feed_writeback_scattered(DIRTY_POLICY_SCATTERED);
    assert_int_equal(read_knob(root, "0:40"), 0);
    assert_stats_contain("lifted now; lifted 1 times, put back 0 times");
    feed_writeback_stream(DIRTY_POLICY_GROW_RESTORE + 2 * MIB);
    assert_int_equal(read_knob(root, "0:40"), 1);
    assert_stats_contain("the kernel's cap now; lifted 1 times, put back 1 times");
    dirty_limit_stop();
    /* Stopped: nothing is written any more. */
    feed_writeback_scattered(DIRTY_POLICY_SCATTERED);
    assert_int_equal(read_knob(root, "0:40"), 1);
    kv_test_cleanup_dir(root);
}

/* KERNEL never writes; SYSTEM lifts at once and for good; a knob that
 * cannot be written is reported and then left alone. */
static void test_other_modes_and_errors(void **state)
{
    (void)state;
    char *root = fake_sysfs("dirty-modes");
    assert_int_equal(dirty_limit_start(DIRTY_LIMIT_KERNEL, root, "0:40"), 0);
    feed_writeback_scattered(4 * DIRTY_POLICY_SCATTERED);
    assert_int_equal(read_knob(root, "0:40"), 1);
    assert_stats_contain("kernel on bdi 0:40, the kernel's cap now");
    dirty_limit_stop();

    assert_int_equal(dirty_limit_start(DIRTY_LIMIT_SYSTEM, root, "0:40"), 0);
    assert_int_equal(read_knob(root, "0:40"), 0);
    feed_writeback_stream(4 * DIRTY_POLICY_GROW_RESTORE);
    assert_int_equal(read_knob(root, "0:40"), 0);
    assert_stats_contain("system on bdi 0:40, lifted now; lifted 1 times");
    dirty_limit_stop();

    assert_int_equal(dirty_limit_start(DIRTY_LIMIT_AUTO, root, "0:41"), -ENOENT);
    feed_writeback_scattered(DIRTY_POLICY_SCATTERED);
    assert_stats_contain("auto on bdi 0:41, cannot be changed");
    dirty_limit_stop();

    /* The knob vanishing under an active AUTO stops it. */
    assert_int_equal(dirty_limit_start(DIRTY_LIMIT_AUTO, root, "0:40"), 0);
    char path[4096];
    snprintf(path, sizeof(path), "%s/0:40/strict_limit", root);
    assert_int_equal(unlink(path), 0);
    feed_writeback_scattered(DIRTY_POLICY_SCATTERED);
    assert_stats_contain("cannot be changed");
    dirty_limit_stop();
    kv_test_cleanup_dir(root);
}

/* ---- real mounts (root) ---- */

/* Writes 4 KiB pages, one in eight, deep into a sparse file and fsyncs:
 * the write-back is that many one-page WRITEs. */
static void write_scattered_pages(const struct lsmfs_mount *m, unsigned int pages)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/scattered", m->mountpoint);
    int fd = open(path, O_CREAT | O_RDWR, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)(2 * MIB + (uint64_t)pages * 32 * KIB)), 0);
    char page[4096];
    for (unsigned int i = 0; i < pages; i++) {
        memset(page, 'a' + (int)(i % 26), sizeof(page));
        assert_int_equal(pwrite(fd, page, sizeof(page), (off_t)(MIB + (uint64_t)i * 32 * KIB)),
                         (ssize_t)sizeof(page));
    }
    assert_int_equal(fsync(fd), 0);
    /* What was written reads back, and so do the holes between. */
    char back[4096];
    assert_int_equal(pread(fd, back, sizeof(back), (off_t)(MIB + 5 * 32 * KIB)),
                     (ssize_t)sizeof(back));
    assert_int_equal(back[0], 'f');
    assert_int_equal(back[4095], 'f');
    assert_int_equal(pread(fd, back, sizeof(back), (off_t)(MIB + 5 * 32 * KIB + 8 * KIB)),
                     (ssize_t)sizeof(back));
    assert_int_equal(back[0], 0);
    assert_int_equal(close(fd), 0);
}

/* Writes a new file of `bytes` from start to end in 1 MiB write(2)s,
 * allocated ahead with fallocate (as fio does) or not, and fsyncs it. */
static void write_stream(const struct lsmfs_mount *m, const char *name, uint64_t bytes,
                         bool allocate)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", m->mountpoint, name);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    assert_true(fd >= 0);
    if (allocate)
        assert_int_equal(fallocate(fd, 0, 0, (off_t)bytes), 0);
    char *chunk = malloc(MIB);
    assert_non_null(chunk);
    memset(chunk, 's', MIB);
    for (uint64_t done = 0; done < bytes; done += MIB)
        assert_int_equal(write(fd, chunk, MIB), (ssize_t)MIB);
    assert_int_equal(fsync(fd), 0);
    assert_int_equal(close(fd), 0);
    free(chunk);
}

static void test_mount_auto_lifts_and_restores(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct lsmfs_mount *m = lsmfs_mount_create("dirty-auto-mount", NULL);
    int value = lsmfs_mount_strict_limit(m);
    if (value == -ENOENT) { /* a kernel before 6.2 has no knob */
        lsmfs_mount_destroy(m);
        skip();
    }
    assert_int_equal(value, 1);
    write_scattered_pages(m, DIRTY_POLICY_SCATTERED + 200);
    assert_int_equal(lsmfs_mount_strict_limit(m), 0);
    /* A flusher starting on the stream while it is written breaks it into
     * pieces, some of them small: half again what is needed leaves room. */
    write_stream(m, "stream", DIRTY_POLICY_GROW_RESTORE * 3 / 2, false);
    assert_int_equal(lsmfs_mount_strict_limit(m), 1);
    /* A file allocated ahead and then written in order is not told apart
     * from one dirtied all over at random: the cap stays as it is. */
    write_scattered_pages(m, DIRTY_POLICY_SCATTERED + 200);
    assert_int_equal(lsmfs_mount_strict_limit(m), 0);
    write_stream(m, "allocated", DIRTY_POLICY_GROW_RESTORE * 3 / 2, true);
    assert_int_equal(lsmfs_mount_strict_limit(m), 0);
    write_stream(m, "grown", DIRTY_POLICY_GROW_RESTORE * 3 / 2, false);
    assert_int_equal(lsmfs_mount_strict_limit(m), 1);
    lsmfs_mount_destroy(m);
}

static void test_mount_kernel_mode_keeps_the_cap(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct lsmfs_mount *m = lsmfs_mount_create("dirty-kernel-mount", "dirty_limit=kernel");
    int value = lsmfs_mount_strict_limit(m);
    if (value == -ENOENT) {
        lsmfs_mount_destroy(m);
        skip();
    }
    assert_int_equal(value, 1);
    write_scattered_pages(m, 2 * DIRTY_POLICY_SCATTERED);
    assert_int_equal(lsmfs_mount_strict_limit(m), 1);
    lsmfs_mount_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scattered_writes_lift),
        cmocka_unit_test(test_other_writes_never_lift),
        cmocka_unit_test(test_long_writes_forget_scattered_ones),
        cmocka_unit_test(test_growing_stream_restores),
        cmocka_unit_test(test_writes_inside_keep_the_cap_lifted),
        cmocka_unit_test(test_gappy_growth_keeps_the_cap_lifted),
        cmocka_unit_test(test_scattered_writes_renew_the_lift),
        cmocka_unit_test(test_auto_writes_the_knob),
        cmocka_unit_test(test_other_modes_and_errors),
        cmocka_unit_test(test_mount_auto_lifts_and_restores),
        cmocka_unit_test(test_mount_kernel_mode_keeps_the_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
