/*
 * fsutil.h — what the tests of the file-system core (test_fs_*.c,
 * test_fsck.c) share: opening an fs with small caches, a cmocka fixture
 * holding one in a scratch directory, the caller they act as, creating a
 * node, and copying a data directory as a kill of the daemon leaves it.
 */
#ifndef LSMFS_TEST_FSUTIL_H
#define LSMFS_TEST_FSUTIL_H

#include "fs.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* fs_options_init() with the tests' small block cache (4 MiB); a
 * write_buffer_size > 0 replaces the default. */
void fsutil_options(struct fs_options *options, size_t write_buffer_size);

/* Opens (formatting if empty) the file system in dir with options; fails
 * the test, with fs_open's message, if it cannot. */
struct fs *fsutil_open(const char *dir, const struct fs_options *options);

/* One file system in its own scratch directory, as a cmocka test state. */
struct fs_fixture {
    char *dir;
    struct fs *fs; /* a test that closes it sets it to NULL */
};

/* Makes a scratch directory PREFIX_N (N counts up) and opens a file system
 * there with options; for a cmocka setup function to store in *state. */
struct fs_fixture *fsutil_fixture_create(const char *prefix, const struct fs_options *options);

/* Closes the fixture's file system (checking that the close succeeds),
 * removes its directory and frees it: a cmocka teardown function. */
int fsutil_fixture_teardown(void **state);

/* The test process as the caller: its uid, gid and pid. */
const struct fs_caller *fsutil_me(void);

/* Creates parent/name (a symlink to target when target is not NULL) as
 * fsutil_me(), gives the kernel reference back at once, and returns the
 * inode number; fails the test if the creation fails. */
uint64_t fsutil_make_node(struct fs *fs, uint64_t parent, const char *name, mode_t mode,
                          const char *target);

/* Copies dir, where fs is open, to DIR-killed (replacing one left
 * before) as a kill of the daemon now would leave it: everything written
 * so far, and nothing of what fs_close does (orphans stay). Flushes and
 * compacts first, so that no background work changes the files during
 * the copy. Returns the copy's path (malloc'd); fails the test on error. */
char *fsutil_killed_copy(struct fs *fs, const char *dir);

#endif /* LSMFS_TEST_FSUTIL_H */
