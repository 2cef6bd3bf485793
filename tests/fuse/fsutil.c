/*
 * fsutil.c — see fsutil.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "fsutil.h"
#include "schema.h"

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fsutil_options(struct fs_options *options, size_t write_buffer_size)
{
    fs_options_init(options);
    options->cache_size = 4u << 20;
    if (write_buffer_size > 0)
        options->write_buffer_size = write_buffer_size;
}

struct fs *fsutil_open(const char *dir, const struct fs_options *options)
{
    struct fs *fs = NULL;
    char err[256] = "";
    int rc = fs_open(dir, options, &fs, err, sizeof(err));
    if (rc != 0)
        fail_msg("fs_open %s: %s (%d)", dir, err, rc);
    assert_non_null(fs);
    return fs;
}

struct fs_fixture *fsutil_fixture_create(const char *prefix, const struct fs_options *options)
{
    static int counter;
    char name[64];
    snprintf(name, sizeof(name), "%s_%d", prefix, counter++);
    struct fs_fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->dir = kv_test_tmpdir(name);
    fx->fs = fsutil_open(fx->dir, options);
    return fx;
}

int fsutil_fixture_teardown(void **state)
{
    struct fs_fixture *fx = *state;
    if (fx->fs != NULL)
        assert_int_equal(fs_close(fx->fs), 0);
    kv_test_cleanup_dir(fx->dir);
    free(fx);
    return 0;
}

const struct fs_caller *fsutil_me(void)
{
    static struct fs_caller caller;
    caller.uid = getuid();
    caller.gid = getgid();
    caller.pid = getpid();
    return &caller;
}

uint64_t fsutil_make_node(struct fs *fs, uint64_t parent, const char *name, mode_t mode,
                          const char *target)
{
    struct stat st;
    int rc = fs_create_node(fs, fsutil_me(), parent, name, mode, 0, target, &st);
    if (rc != 0)
        fail_msg("create %s: %s", name, strerror(-rc));
    fs_forget(fs, st.st_ino, 1);
    return st.st_ino;
}

char *fsutil_killed_copy(struct fs *fs, const char *dir)
{
    kv_db *db = fs_db(fs);
    assert_int_equal(kv_flush(db, NULL, true), 0);
    assert_int_equal(kv_compact_range(db, kv_get_cf(db, FS_META_CF), NULL, 0, NULL, 0), 0);
    assert_int_equal(kv_compact_range(db, kv_get_cf(db, FS_DATA_CF), NULL, 0, NULL, 0), 0);
    size_t len = strlen(dir) + sizeof("-killed");
    char *copy = malloc(len);
    assert_non_null(copy);
    snprintf(copy, len, "%s-killed", dir);
    size_t command_len = 3 * len + 64;
    char *command = malloc(command_len);
    assert_non_null(command);
    snprintf(command, command_len, "rm -rf '%s' && cp -a '%s' '%s'", copy, dir, copy);
    assert_int_equal(system(command), 0);
    free(command);
    return copy;
}
