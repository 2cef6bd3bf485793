/*
 * test_fs_xattr.c — extended attributes of the lsmfs core (fs_xattr.c)
 * over a real kv database, without a mount: the Linux error codes, the
 * CREATE/REPLACE flags, listing, persistence, the FS_INODE_HAS_XATTRS
 * flag that lets getxattr answer without a kv lookup, and the removal of
 * security.capability by writes, truncates and chowns (the server's job
 * under FUSE_HANDLE_KILLPRIV_V2).
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs.h"
#include "fsutil.h"
#include "fs_impl.h"

static struct fs *open_fs(const char *dir)
{
    struct fs_options options;
    fsutil_options(&options, 1u << 20);
    return fsutil_open(dir, &options);
}

static int setup(void **state)
{
    struct fs_options options;
    fsutil_options(&options, 1u << 20);
    *state = fsutil_fixture_create("fs_xattr", &options);
    return 0;
}

static uint64_t create_node(struct fs *fs, const char *name, mode_t mode)
{
    struct fs_caller caller = {.uid = getuid(), .gid = getgid(), .pid = getpid()};
    struct stat st;
    assert_int_equal(fs_create_node(fs, &caller, FS_ROOT_INO, name, mode, 0, NULL, &st), 0);
    return st.st_ino;
}

static uint32_t inode_flags(struct fs *fs, uint64_t ino)
{
    struct fs_inode inode;
    fs_lock_inode(fs, ino);
    int rc = fs_inode_load(fs, ino, &inode);
    fs_unlock_inode(fs, ino);
    assert_int_equal(rc, 0);
    return inode.flags;
}

static int64_t ctime_ns(struct fs *fs, uint64_t ino)
{
    struct stat st;
    assert_int_equal(fs_getattr(fs, ino, &st), 0);
    return (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
}

static void test_round_trip(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    uint64_t ino = create_node(fs, "f", S_IFREG | 0644);
    char value[64];
    assert_int_equal(fs_listxattr(fs, ino, value, sizeof(value)), 0);
    assert_int_equal(fs_getxattr(fs, ino, "user.a", value, sizeof(value)), -ENODATA);

    int64_t before = ctime_ns(fs, ino);
    usleep(2000);
    assert_int_equal(fs_setxattr(fs, ino, "user.a", "hello", 5, 0), 0);
    assert_true(ctime_ns(fs, ino) > before);
    assert_int_equal(fs_getxattr(fs, ino, "user.a", NULL, 0), 5); /* size 0: the length */
    assert_int_equal(fs_getxattr(fs, ino, "user.a", value, sizeof(value)), 5);
    assert_memory_equal(value, "hello", 5);
    assert_int_equal(fs_getxattr(fs, ino, "user.a", value, 4), -ERANGE);
    assert_int_equal(fs_getxattr(fs, ino, "user.b", value, sizeof(value)), -ENODATA);

    /* overwrite, empty value */
    assert_int_equal(fs_setxattr(fs, ino, "user.a", "bye", 3, 0), 0);
    assert_int_equal(fs_getxattr(fs, ino, "user.a", value, sizeof(value)), 3);
    assert_memory_equal(value, "bye", 3);
    assert_int_equal(fs_setxattr(fs, ino, "user.empty", "", 0, 0), 0);
    assert_int_equal(fs_getxattr(fs, ino, "user.empty", value, sizeof(value)), 0);

    /* list: sorted names, NUL-separated */
    assert_int_equal(fs_setxattr(fs, ino, "trusted.z", "1", 1, 0), 0);
    const char expected[] = "trusted.z\0user.a\0user.empty";
    assert_int_equal(fs_listxattr(fs, ino, NULL, 0), sizeof(expected));
    char list[128];
    assert_int_equal(fs_listxattr(fs, ino, list, sizeof(list)), sizeof(expected));
    assert_memory_equal(list, expected, sizeof(expected));
    assert_int_equal(fs_listxattr(fs, ino, list, sizeof(expected) - 1), -ERANGE);

    /* remove */
    before = ctime_ns(fs, ino);
    usleep(2000);
    assert_int_equal(fs_removexattr(fs, ino, "user.a"), 0);
    assert_true(ctime_ns(fs, ino) > before);
    assert_int_equal(fs_getxattr(fs, ino, "user.a", value, sizeof(value)), -ENODATA);
    assert_int_equal(fs_removexattr(fs, ino, "user.a"), -ENODATA);
    const char rest[] = "trusted.z\0user.empty";
    assert_int_equal(fs_listxattr(fs, ino, list, sizeof(list)), sizeof(rest));
    assert_memory_equal(list, rest, sizeof(rest));
}

static void test_flags_create_replace(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    uint64_t ino = create_node(fs, "f", S_IFREG | 0644);
    char value[16];
    assert_int_equal(fs_setxattr(fs, ino, "user.x", "1", 1, XATTR_REPLACE), -ENODATA);
    assert_int_equal(fs_setxattr(fs, ino, "user.x", "1", 1, XATTR_CREATE), 0);
    assert_int_equal(fs_setxattr(fs, ino, "user.x", "2", 1, XATTR_CREATE), -EEXIST);
    assert_int_equal(fs_setxattr(fs, ino, "user.y", "2", 1, XATTR_REPLACE), -ENODATA);
    assert_int_equal(fs_setxattr(fs, ino, "user.x", "3", 1, XATTR_REPLACE), 0);
    assert_int_equal(fs_getxattr(fs, ino, "user.x", value, sizeof(value)), 1);
    assert_int_equal(value[0], '3');
    assert_int_equal(fs_setxattr(fs, ino, "user.x", "4", 1, 0x40), -EINVAL);
    /* a failed set changes nothing */
    assert_int_equal(fs_getxattr(fs, ino, "user.y", value, sizeof(value)), -ENODATA);
    assert_int_equal(fs_getxattr(fs, ino, "user.x", value, sizeof(value)), 1);
    assert_int_equal(value[0], '3');
}

static void test_limits(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    uint64_t ino = create_node(fs, "f", S_IFREG | 0644);
    char name[FS_XATTR_NAME_MAX + 2];
    memset(name, 'n', sizeof(name));
    memcpy(name, "user.", 5);
    name[FS_XATTR_NAME_MAX + 1] = '\0'; /* 256 bytes: too long */
    assert_int_equal(fs_setxattr(fs, ino, name, "v", 1, 0), -ERANGE);
    assert_int_equal(fs_getxattr(fs, ino, name, NULL, 0), -ERANGE);
    assert_int_equal(fs_removexattr(fs, ino, name), -ERANGE);
    name[FS_XATTR_NAME_MAX] = '\0'; /* 255: the longest allowed */
    assert_int_equal(fs_setxattr(fs, ino, name, "v", 1, 0), 0);
    assert_int_equal(fs_getxattr(fs, ino, name, NULL, 0), 1);
    assert_int_equal(fs_listxattr(fs, ino, NULL, 0), FS_XATTR_NAME_MAX + 1);

    assert_int_equal(fs_setxattr(fs, ino, "", "v", 1, 0), -EINVAL);
    assert_int_equal(fs_getxattr(fs, ino, "", NULL, 0), -EINVAL);
    assert_int_equal(fs_removexattr(fs, ino, ""), -EINVAL);

    char *big = malloc(FS_XATTR_VALUE_MAX + 1);
    for (size_t i = 0; i <= FS_XATTR_VALUE_MAX; i++)
        big[i] = (char)(i * 7);
    assert_int_equal(fs_setxattr(fs, ino, "user.big", big, FS_XATTR_VALUE_MAX + 1, 0), -E2BIG);
    assert_int_equal(fs_setxattr(fs, ino, "user.big", big, FS_XATTR_VALUE_MAX, 0), 0);
    char *back = malloc(FS_XATTR_VALUE_MAX);
    assert_int_equal(fs_getxattr(fs, ino, "user.big", back, FS_XATTR_VALUE_MAX),
                     FS_XATTR_VALUE_MAX);
    assert_memory_equal(back, big, FS_XATTR_VALUE_MAX);
    free(big);
    free(back);

    assert_int_equal(fs_setxattr(fs, 999999, "user.a", "v", 1, 0), -ENOENT);
    assert_int_equal(fs_getxattr(fs, 999999, "user.a", NULL, 0), -ENOENT);
    assert_int_equal(fs_listxattr(fs, 999999, NULL, 0), -ENOENT);
    assert_int_equal(fs_removexattr(fs, 999999, "user.a"), -ENOENT);
}

/* The flag: clear on a new inode, set by setxattr, cleared with the last
 * attribute; while clear, getxattr answers without reading kv — shown by
 * an X key planted behind the core's back, which stays invisible. */
static void test_has_xattrs_flag(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    uint64_t ino = create_node(fs, "f", S_IFREG | 0644);
    assert_int_equal(inode_flags(fs, ino) & FS_INODE_HAS_XATTRS, 0);

    char key[FS_KEY_MAX];
    size_t key_len = fs_key_xattr(key, ino, "security.capability", 19);
    assert_int_equal(kv_put(fs->db, NULL, fs->meta, key, key_len, "planted", 7), 0);
    char value[16];
    assert_int_equal(fs_getxattr(fs, ino, "security.capability", value, sizeof(value)), -ENODATA);
    assert_int_equal(fs_listxattr(fs, ino, NULL, 0), 0);
    assert_int_equal(fs_removexattr(fs, ino, "security.capability"), -ENODATA);
    assert_int_equal(kv_delete(fs->db, NULL, fs->meta, key, key_len), 0);

    assert_int_equal(fs_setxattr(fs, ino, "user.a", "1", 1, 0), 0);
    assert_int_equal(fs_setxattr(fs, ino, "user.b", "2", 1, 0), 0);
    assert_true(inode_flags(fs, ino) & FS_INODE_HAS_XATTRS);
    assert_int_equal(fs_removexattr(fs, ino, "user.b"), 0);
    assert_true(inode_flags(fs, ino) & FS_INODE_HAS_XATTRS); /* user.a is left */
    assert_int_equal(fs_removexattr(fs, ino, "user.a"), 0);
    assert_int_equal(inode_flags(fs, ino) & FS_INODE_HAS_XATTRS, 0);

    /* the flag is stored, not only cached */
    assert_int_equal(fs_setxattr(fs, ino, "user.c", "3", 1, 0), 0);
    assert_int_equal(fs_close(fs), 0);
    fx->fs = fs = open_fs(fx->dir);
    assert_true(inode_flags(fs, ino) & FS_INODE_HAS_XATTRS);
    assert_int_equal(fs_getxattr(fs, ino, "user.c", value, sizeof(value)), 1);
    assert_int_equal(value[0], '3');
}

/* A valid v2 vfs_cap_data (cap_net_raw, effective) — the core stores any
 * bytes, this is what setcap would store. */
static const char capability_value[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x20};

static void set_capability(struct fs *fs, uint64_t ino)
{
    assert_int_equal(
        fs_setxattr(fs, ino, "security.capability", capability_value, sizeof(capability_value), 0),
        0);
}

static bool has_capability(struct fs *fs, uint64_t ino)
{
    char value[32];
    ssize_t n = fs_getxattr(fs, ino, "security.capability", value, sizeof(value));
    assert_true(n == (ssize_t)sizeof(capability_value) || n == -ENODATA);
    return n > 0;
}

static struct stat attr_with_size(off_t size)
{
    struct stat attr;
    memset(&attr, 0, sizeof(attr));
    attr.st_size = size;
    return attr;
}

/* Every change Linux removes a capability on removes it here, in the batch
 * of the change; the other attributes stay, and the flag stays exact (and
 * stored). Writes back of cached pages, chmod, utimes and setxattr keep it. */
static void test_capability_dropped(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    struct stat st, attr = attr_with_size(0);
    char value[16];

    /* write: the capability goes, user.keep stays, so does the flag */
    uint64_t written = create_node(fs, "written", S_IFREG | 0755);
    set_capability(fs, written);
    assert_int_equal(fs_setxattr(fs, written, "user.keep", "k", 1, 0), 0);
    assert_int_equal(fs_write(fs, written, 0, "data", 4, 0), 4);
    assert_false(has_capability(fs, written));
    assert_int_equal(fs_getxattr(fs, written, "user.keep", value, sizeof(value)), 1);
    assert_true(inode_flags(fs, written) & FS_INODE_HAS_XATTRS);

    /* the last attribute: the flag goes with it */
    uint64_t alone = create_node(fs, "alone", S_IFREG | 0755);
    set_capability(fs, alone);
    assert_int_equal(fs_write(fs, alone, 10, "x", 1, FS_WRITE_APPEND), 1);
    assert_false(has_capability(fs, alone));
    assert_int_equal(inode_flags(fs, alone) & FS_INODE_HAS_XATTRS, 0);
    assert_int_equal(fs_listxattr(fs, alone, NULL, 0), 0);

    /* write-back of cached pages, chmod, utimes, other attributes: kept */
    uint64_t kept = create_node(fs, "kept", S_IFREG | 0755);
    set_capability(fs, kept);
    assert_int_equal(fs_write(fs, kept, 0, "cached", 6, FS_WRITE_WRITEBACK), 6);
    attr.st_mode = 0700;
    assert_int_equal(fs_setattr(fs, kept, &attr, FS_SET_MODE, &st), 0);
    assert_int_equal(fs_setattr(fs, kept, &attr, FS_SET_ATIME_NOW | FS_SET_MTIME_NOW, &st), 0);
    assert_int_equal(fs_setxattr(fs, kept, "user.more", "m", 1, 0), 0);
    assert_int_equal(fs_removexattr(fs, kept, "user.more"), 0);
    assert_true(has_capability(fs, kept));

    /* truncate (also to the same size), chown, chgrp, open(O_TRUNC) */
    static const int changes[] = {FS_SET_SIZE, FS_SET_SIZE, FS_SET_UID, FS_SET_GID, -1};
    for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
        char name[16];
        snprintf(name, sizeof(name), "change%zu", i);
        uint64_t ino = create_node(fs, name, S_IFREG | 0755);
        assert_int_equal(fs_write(fs, ino, 0, "12345", 5, 0), 5);
        set_capability(fs, ino);
        attr = attr_with_size(i == 1 ? 5 : 2);
        attr.st_uid = 4242;
        attr.st_gid = 4343;
        if (changes[i] >= 0)
            assert_int_equal(fs_setattr(fs, ino, &attr, changes[i], &st), 0);
        else {
            assert_int_equal(fs_open_file(fs, ino, O_WRONLY | O_TRUNC), 0);
            fs_release_file(fs, ino);
        }
        assert_false(has_capability(fs, ino));
        assert_int_equal(inode_flags(fs, ino) & FS_INODE_HAS_XATTRS, 0);
    }

    /* A directory's chown keeps its attributes. */
    uint64_t dir = create_node(fs, "dir", S_IFDIR | 0755);
    set_capability(fs, dir);
    attr.st_uid = 4242;
    assert_int_equal(fs_setattr(fs, dir, &attr, FS_SET_UID, &st), 0);
    assert_true(has_capability(fs, dir));

    /* All of it is stored, not only cached. */
    assert_int_equal(fs_close(fs), 0);
    fx->fs = fs = open_fs(fx->dir);
    assert_false(has_capability(fs, written));
    assert_true(inode_flags(fs, written) & FS_INODE_HAS_XATTRS);
    assert_int_equal(inode_flags(fs, alone) & FS_INODE_HAS_XATTRS, 0);
    assert_true(has_capability(fs, kept));
    assert_true(has_capability(fs, dir));
}

/* While the flag is clear a write looks for no capability: a key planted
 * behind the core's back is neither seen nor deleted. */
static void test_capability_drop_free_without_xattrs(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    uint64_t ino = create_node(fs, "f", S_IFREG | 0644);
    char key[FS_KEY_MAX];
    size_t key_len = fs_key_xattr(key, ino, "security.capability", 19);
    assert_int_equal(kv_put(fs->db, NULL, fs->meta, key, key_len, "planted", 7), 0);
    assert_int_equal(fs_write(fs, ino, 0, "data", 4, 0), 4);
    struct stat st, attr = attr_with_size(1);
    assert_int_equal(fs_setattr(fs, ino, &attr, FS_SET_SIZE, &st), 0);
    char *value;
    size_t value_len;
    assert_int_equal(kv_get(fs->db, NULL, fs->meta, key, key_len, &value, &value_len), KV_OK);
    assert_int_equal(value_len, 7);
    kv_free(value);
    assert_int_equal(kv_delete(fs->db, NULL, fs->meta, key, key_len), 0);
}

/* Attributes of neighbouring inodes and of every type stay apart, and
 * survive a reopen. */
static void test_isolation_and_persistence(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    uint64_t file = create_node(fs, "f", S_IFREG | 0644);
    uint64_t dir = create_node(fs, "d", S_IFDIR | 0755);
    uint64_t fifo = create_node(fs, "p", S_IFIFO | 0644);
    uint64_t inos[4] = {FS_ROOT_INO, file, dir, fifo};
    for (int i = 0; i < 4; i++) {
        char name[32], value[32];
        for (int j = 0; j <= i; j++) {
            snprintf(name, sizeof(name), "user.k%d", j);
            int len = snprintf(value, sizeof(value), "ino%d-%d", i, j);
            assert_int_equal(fs_setxattr(fs, inos[i], name, value, (size_t)len, 0), 0);
        }
    }
    assert_int_equal(fs_close(fs), 0);
    fx->fs = fs = open_fs(fx->dir);
    for (int i = 0; i < 4; i++) {
        char list[256], name[32], value[32], expected[32];
        ssize_t list_len = fs_listxattr(fs, inos[i], list, sizeof(list));
        assert_int_equal(list_len, (i + 1) * (int)sizeof("user.kN"));
        for (int j = 0; j <= i; j++) {
            snprintf(name, sizeof(name), "user.k%d", j);
            assert_string_equal(list + j * sizeof("user.kN"), name);
            int len = snprintf(expected, sizeof(expected), "ino%d-%d", i, j);
            assert_int_equal(fs_getxattr(fs, inos[i], name, value, sizeof(value)), len);
            assert_memory_equal(value, expected, (size_t)len);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_flags_create_replace, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_has_xattrs_flag, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_isolation_and_persistence, setup,
                                        fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_capability_dropped, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_capability_drop_free_without_xattrs, setup,
                                        fsutil_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
