/*
 * test_mount_users.c — several users on one lsmfs mount, as on ext4. The
 * mount is made by root with -o allow_other (default_permissions is always
 * on, so the kernel checks permissions from the attributes lsmfs keeps);
 * forked children take ordinary uids and gids (no /etc/passwd entries
 * needed) and check ownership of what they create, setgid directories,
 * who may chmod/chown/truncate/utime what, permission bits, sticky
 * directories, group membership, the clearing of setuid/setgid bits and
 * of security.capability, root's overrides, errno by errno, and that a
 * write(2) or a close(2) costs no extra FUSE round trip (GETXATTR, FLUSH).
 *
 * Runs twice: with the writeback cache (default) and without. Needs root;
 * skipped otherwise.
 */
#include "mountutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

/* The users: A (1000) is also in group 3000, and so is E; D is in group
 * 2000; F is in A's group 1000; B and C are in no other group. */
static const struct lsmfs_creds user_a = {.uid = 1000, .gid = 1000, .ngroups = 1, .groups = {3000}};
static const struct lsmfs_creds user_a_gid3000 = {
    .uid = 1000, .gid = 3000, .ngroups = 1, .groups = {1000}};
static const struct lsmfs_creds user_b = {.uid = 1001, .gid = 1001, .ngroups = 0};
static const struct lsmfs_creds user_c = {.uid = 1002, .gid = 1002, .ngroups = 0};
static const struct lsmfs_creds user_d = {.uid = 1003, .gid = 1003, .ngroups = 1, .groups = {2000}};
static const struct lsmfs_creds user_e = {.uid = 1004, .gid = 1004, .ngroups = 1, .groups = {3000}};
static const struct lsmfs_creds user_f = {.uid = 1005, .gid = 1005, .ngroups = 1, .groups = {1000}};

static struct lsmfs_mount *mnt;
static char dir[PATH_MAX]; /* the running test's directory (children see it too) */

/* ---- helpers (usable in the parent and in children) ---- */

/* dir/name in one of 32 rotating buffers. */
static const char *at(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static const char *at(const char *fmt, ...)
{
    static char buffers[32][PATH_MAX];
    static int next;
    char *buf = buffers[next];
    next = (next + 1) % 32;
    int n = snprintf(buf, PATH_MAX, "%s/", dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, PATH_MAX - (size_t)n, fmt, ap);
    va_end(ap);
    return buf;
}

/* Makes the test's directory (as root) with exactly `mode`. */
static void make_test_dir(const char *name, mode_t mode)
{
    snprintf(dir, sizeof(dir), "%s", lsmfs_path(mnt, "%s", name));
    EXPECT_OK(mkdir(dir, 0700));
    EXPECT_OK(chmod(dir, mode));
}

/* In a child: creates path with mode (subject to the umask) and content. */
static void child_create(struct lsmfs_child *c, const char *path, mode_t mode, const char *content)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0) {
        lsmfs_child_fail(c, __FILE__, __LINE__, "create %s: %s", path, lsmfs_errno_name(errno));
        return;
    }
    size_t n = strlen(content);
    if (write(fd, content, n) != (ssize_t)n)
        lsmfs_child_fail(c, __FILE__, __LINE__, "write %s: %s", path, lsmfs_errno_name(errno));
    close(fd);
}

/* In a child: path's owner, group and permission bits must be these. */
static void child_expect_owner(struct lsmfs_child *c, const char *path, uid_t uid, gid_t gid,
                               mode_t mode)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        lsmfs_child_fail(c, __FILE__, __LINE__, "lstat %s: %s", path, lsmfs_errno_name(errno));
        return;
    }
    if (st.st_uid != uid || st.st_gid != gid || (st.st_mode & 07777) != mode)
        lsmfs_child_fail(c, __FILE__, __LINE__, "%s is %u:%u mode %04o, expected %u:%u %04o", path,
                         (unsigned)st.st_uid, (unsigned)st.st_gid, (unsigned)(st.st_mode & 07777),
                         (unsigned)uid, (unsigned)gid, (unsigned)mode);
}

/* In the parent: the same check. */
static void expect_owner(const char *path, uid_t uid, gid_t gid, mode_t mode)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        fail_msg("lstat %s: %s", path, strerror(errno));
    if (st.st_uid != uid || st.st_gid != gid || (st.st_mode & 07777) != mode)
        fail_msg("%s is %u:%u mode %04o, expected %u:%u %04o", path, (unsigned)st.st_uid,
                 (unsigned)st.st_gid, (unsigned)(st.st_mode & 07777), (unsigned)uid, (unsigned)gid,
                 (unsigned)mode);
}

static off_t size_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        fail_msg("stat %s: %s", path, strerror(errno));
    return st.st_size;
}

/* ---- fixtures ---- */

static int mount_group(const char *name, const char *options)
{
    umask(022);
    mnt = lsmfs_mount_create(name, options);
    lsmfs_fd_baseline_save();
    return 0;
}

static int setup_writeback(void **state)
{
    if (geteuid() != 0)
        return 0; /* each test skips */
    return mount_group("users-writeback", "allow_other");
}

static int setup_no_writeback(void **state)
{
    if (geteuid() != 0)
        return 0;
    return mount_group("users-nowriteback", "allow_other,no_writeback_cache");
}

static int teardown_group(void **state)
{
    lsmfs_fd_close_leaked();
    struct lsmfs_mount *m = mnt;
    mnt = NULL;
    lsmfs_mount_destroy(m);
    return 0;
}

static int setup_test(void **state)
{
    if (geteuid() != 0 || mnt == NULL) {
        print_message("test_mount_users needs root (it mounts with allow_other and setuid)\n");
        skip();
    }
    umask(022);
    return 0;
}

static int teardown_test(void **state)
{
    if (mnt == NULL)
        return 0;
    int leaked = lsmfs_fd_close_leaked();
    if (leaked > 0)
        fprintf(stderr, "teardown: closed %d descriptors the test left open\n", leaked);
    lsmfs_mount_check_alive(mnt);
    return 0;
}

/* ---- ownership of new files ---- */

static void create_as_a(struct lsmfs_child *c, void *arg)
{
    umask(022);
    struct stat st;
    CHILD_EXPECT_OK(c, stat(mnt->mountpoint, &st)); /* allow_other lets us in */
    child_create(c, at("a-file"), 0644, "a");
    CHILD_EXPECT_OK(c, mkdir(at("a-dir"), 0755));
    CHILD_EXPECT_OK(c, symlink("a-file", at("a-link")));
    CHILD_EXPECT_OK(c, mkfifo(at("a-fifo"), 0600));
    CHILD_EXPECT_OK(c, mknod(at("a-sock"), S_IFSOCK | 0640, 0));
    child_expect_owner(c, at("a-file"), 1000, 1000, 0644);
    child_expect_owner(c, at("a-dir"), 1000, 1000, 0755);
    child_expect_owner(c, at("a-link"), 1000, 1000, 0777);
    child_expect_owner(c, at("a-fifo"), 1000, 1000, 0600);
    child_expect_owner(c, at("a-sock"), 1000, 1000, 0640);
    /* The creator owns it: it may write it and chmod it. */
    int fd = open(at("a-file"), O_WRONLY | O_APPEND);
    CHILD_EXPECT(c, fd >= 0);
    CHILD_EXPECT(c, write(fd, "+", 1) == 1);
    close(fd);
}

static void create_as_b(struct lsmfs_child *c, void *arg)
{
    umask(077);
    child_create(c, at("b-file"), 0666, "b");
    CHILD_EXPECT_OK(c, mkdir(at("b-dir"), 0777));
    child_expect_owner(c, at("b-file"), 1001, 1001, 0600);
    child_expect_owner(c, at("b-dir"), 1001, 1001, 0700);
}

static void create_with_other_egid(struct lsmfs_child *c, void *arg)
{
    umask(022);
    child_create(c, at("a3000-file"), 0644, "");
    CHILD_EXPECT_OK(c, mkdir(at("a3000-dir"), 0755));
    child_expect_owner(c, at("a3000-file"), 1000, 3000, 0644);
    child_expect_owner(c, at("a3000-dir"), 1000, 3000, 0755);
}

static void test_new_files_get_creator_ids(void **state)
{
    make_test_dir("owners", 0777);
    lsmfs_run_child(&user_a, create_as_a, NULL);
    lsmfs_run_child(&user_b, create_as_b, NULL);
    lsmfs_run_child(&user_a_gid3000, create_with_other_egid, NULL);
    expect_owner(at("a-file"), 1000, 1000, 0644);
    expect_owner(at("a-dir"), 1000, 1000, 0755);
    expect_owner(at("b-file"), 1001, 1001, 0600);
    expect_owner(at("a3000-file"), 1000, 3000, 0644);

    /* As the daemon stored them. */
    lsmfs_mount_remount(mnt);
    expect_owner(at("a-file"), 1000, 1000, 0644);
    expect_owner(at("a-dir"), 1000, 1000, 0755);
    expect_owner(at("a-link"), 1000, 1000, 0777);
    expect_owner(at("a-fifo"), 1000, 1000, 0600);
    expect_owner(at("b-file"), 1001, 1001, 0600);
    expect_owner(at("b-dir"), 1001, 1001, 0700);
    expect_owner(at("a3000-file"), 1000, 3000, 0644);
    expect_owner(at("a3000-dir"), 1000, 3000, 0755);
    assert_int_equal(size_of(at("a-file")), 2);
}

/* ---- setgid directories ---- */

static void create_in_setgid_dir_as_a(struct lsmfs_child *c, void *arg)
{
    umask(022);
    child_create(c, at("file"), 0644, "");
    CHILD_EXPECT_OK(c, mkdir(at("sub"), 0755));
    CHILD_EXPECT_OK(c, mkfifo(at("fifo"), 0644));
    CHILD_EXPECT_OK(c, symlink("file", at("link")));
    /* A is not in group 2000: a setgid bit it asks for is dropped. */
    child_create(c, at("wants-sgid"), 02755, "");
    child_expect_owner(c, at("file"), 1000, 2000, 0644);
    child_expect_owner(c, at("sub"), 1000, 2000, 02755);
    child_expect_owner(c, at("fifo"), 1000, 2000, 0644);
    child_expect_owner(c, at("wants-sgid"), 1000, 2000, 0755);
    /* The inherited bit propagates further down. */
    child_create(c, at("sub/deeper-file"), 0600, "");
    CHILD_EXPECT_OK(c, mkdir(at("sub/deeper"), 0700));
    child_expect_owner(c, at("sub/deeper-file"), 1000, 2000, 0600);
    child_expect_owner(c, at("sub/deeper"), 1000, 2000, 02700);
}

static void create_in_setgid_dir_as_member(struct lsmfs_child *c, void *arg)
{
    umask(022);
    /* D is in group 2000: the bit it asks for stays. */
    child_create(c, at("member-sgid"), 02755, "");
    child_expect_owner(c, at("member-sgid"), 1003, 2000, 02755);
}

static void test_setgid_directory(void **state)
{
    make_test_dir("setgid", 0777);
    EXPECT_OK(chown(dir, 0, 2000));
    EXPECT_OK(chmod(dir, 02777));
    expect_owner(dir, 0, 2000, 02777);
    lsmfs_run_child(&user_a, create_in_setgid_dir_as_a, NULL);
    lsmfs_run_child(&user_d, create_in_setgid_dir_as_member, NULL);

    /* Root's creations follow the same rule. */
    EXPECT_OK(mkdir(at("sub/by-root"), 0777));
    expect_owner(at("sub/by-root"), 0, 2000, 02755);
    EXPECT_OK(close(EXPECT_OK(open(at("sub/by-root-file"), O_CREAT | O_WRONLY, 0644))));
    expect_owner(at("sub/by-root-file"), 0, 2000, 0644);

    lsmfs_mount_remount(mnt);
    expect_owner(at("file"), 1000, 2000, 0644);
    expect_owner(at("sub"), 1000, 2000, 02755);
    expect_owner(at("sub/deeper"), 1000, 2000, 02700);
    expect_owner(at("wants-sgid"), 1000, 2000, 0755);
    expect_owner(at("member-sgid"), 1003, 2000, 02755);
}

/* ---- changing one's own file ---- */

static void change_own_file(struct lsmfs_child *c, void *arg)
{
    umask(022);
    const char *f = at("mine");
    child_create(c, f, 0644, "0123456789");
    CHILD_EXPECT_OK(c, chmod(f, 0600));
    child_expect_owner(c, f, 1000, 1000, 0600);
    CHILD_EXPECT_OK(c, truncate(f, 4));
    struct stat st;
    CHILD_EXPECT_OK(c, stat(f, &st));
    CHILD_EXPECT(c, st.st_size == 4);
    int fd = open(f, O_RDWR);
    CHILD_EXPECT(c, fd >= 0);
    CHILD_EXPECT_OK(c, ftruncate(fd, 100));
    close(fd);
    struct timespec times[2] = {{1000000000, 5}, {1100000000, 6}};
    CHILD_EXPECT_OK(c, utimensat(AT_FDCWD, f, times, 0));
    CHILD_EXPECT_OK(c, stat(f, &st));
    CHILD_EXPECT(c, st.st_mtim.tv_sec == 1100000000 && st.st_mtim.tv_nsec == 6);
    CHILD_EXPECT_OK(c, utimensat(AT_FDCWD, f, NULL, 0));
    CHILD_EXPECT_OK(c, stat(f, &st));
    CHILD_EXPECT(c, st.st_mtim.tv_sec > 1100000000);

    /* chown to oneself is allowed, to anyone else not. */
    CHILD_EXPECT_OK(c, chown(f, 1000, (gid_t)-1));
    CHILD_EXPECT_ERRNO(c, chown(f, 1001, (gid_t)-1), EPERM);
    CHILD_EXPECT_ERRNO(c, chown(f, 0, (gid_t)-1), EPERM);
    /* chgrp to a group one is in (supplementary), not to another. */
    CHILD_EXPECT_OK(c, chown(f, (uid_t)-1, 3000));
    child_expect_owner(c, f, 1000, 3000, 0600);
    CHILD_EXPECT_ERRNO(c, chown(f, (uid_t)-1, 1001), EPERM);
    CHILD_EXPECT_ERRNO(c, chown(f, (uid_t)-1, 0), EPERM);
    CHILD_EXPECT_OK(c, chown(f, (uid_t)-1, 1000));
    child_expect_owner(c, f, 1000, 1000, 0600);

    /* chmod g+s on a file of a group one is not in: the bit is dropped
     * silently (ext4, as the kernel does it). */
    CHILD_EXPECT_OK(c, chown(f, (uid_t)-1, 3000));
    CHILD_EXPECT_OK(c, chmod(f, 02750));
    child_expect_owner(c, f, 1000, 3000, 02750);
    CHILD_EXPECT_OK(c, setxattr(f, "user.mine", "yes", 3, 0));
}

static void drop_group_membership_chmod(struct lsmfs_child *c, void *arg)
{
    /* A, now without group 3000, sets g+s on its file of group 3000. */
    CHILD_EXPECT_OK(c, chmod(at("mine"), 02750));
    child_expect_owner(c, at("mine"), 1000, 3000, 0750);
}

static void test_owner_changes_own_file(void **state)
{
    make_test_dir("own", 0777);
    lsmfs_run_child(&user_a, change_own_file, NULL);
    static const struct lsmfs_creds a_without_3000 = {.uid = 1000, .gid = 1000, .ngroups = 0};
    lsmfs_run_child(&a_without_3000, drop_group_membership_chmod, NULL);
    expect_owner(at("mine"), 1000, 3000, 0750);
    assert_int_equal(size_of(at("mine")), 100);
    lsmfs_mount_remount(mnt);
    expect_owner(at("mine"), 1000, 3000, 0750);
    assert_int_equal(size_of(at("mine")), 100);
}

/* ---- another user's file ---- */

static void make_files_as_a(struct lsmfs_child *c, void *arg)
{
    umask(022);
    CHILD_EXPECT_OK(c, mkdir(at("adir"), 0755));
    child_create(c, at("adir/readonly"), 0644, "secret");
    child_create(c, at("adir/shared"), 0644, "shared data");
    CHILD_EXPECT_OK(c, chmod(at("adir/shared"), 0666));
}

static void meddle_as_b(struct lsmfs_child *c, void *arg)
{
    const char *f = at("adir/readonly");
    struct timespec times[2] = {{1000000000, 0}, {1000000000, 0}};
    CHILD_EXPECT_ERRNO(c, chmod(f, 0666), EPERM);
    CHILD_EXPECT_ERRNO(c, chown(f, 1001, (gid_t)-1), EPERM);
    CHILD_EXPECT_ERRNO(c, chown(f, (uid_t)-1, 1001), EPERM);
    CHILD_EXPECT_ERRNO(c, chown(f, (uid_t)-1, 1000), EPERM);
    CHILD_EXPECT_ERRNO(c, truncate(f, 0), EACCES);
    CHILD_EXPECT_ERRNO(c, open(f, O_WRONLY), EACCES);
    CHILD_EXPECT_ERRNO(c, open(f, O_RDWR | O_TRUNC), EACCES);
    CHILD_EXPECT_ERRNO(c, utimensat(AT_FDCWD, f, times, 0), EPERM);
    CHILD_EXPECT_ERRNO(c, utimensat(AT_FDCWD, f, NULL, 0), EACCES);
    CHILD_EXPECT_ERRNO(c, setxattr(f, "user.b", "b", 1, 0), EACCES);
    CHILD_EXPECT_ERRNO(c, unlink(f), EACCES);
    CHILD_EXPECT_ERRNO(c, rename(f, at("adir/renamed")), EACCES);
    CHILD_EXPECT_ERRNO(c, rename(f, at("stolen")), EACCES);
    /* Reading is allowed (0644). */
    int fd = open(f, O_RDONLY);
    CHILD_EXPECT(c, fd >= 0);
    char buf[16];
    CHILD_EXPECT(c, read(fd, buf, sizeof(buf)) == 6);
    close(fd);

    /* A world-writable file: writing, truncating and touching with the
     * current time are allowed; setting a chosen time, chmod and chown
     * are still the owner's. */
    const char *g = at("adir/shared");
    CHILD_EXPECT_OK(c, truncate(g, 6));
    CHILD_EXPECT_OK(c, utimensat(AT_FDCWD, g, NULL, 0));
    struct timespec now_now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    CHILD_EXPECT_OK(c, utimensat(AT_FDCWD, g, now_now, 0));
    CHILD_EXPECT_ERRNO(c, utimensat(AT_FDCWD, g, times, 0), EPERM);
    CHILD_EXPECT_ERRNO(c, chmod(g, 0600), EPERM);
    fd = open(g, O_WRONLY | O_APPEND);
    CHILD_EXPECT(c, fd >= 0);
    CHILD_EXPECT(c, write(fd, "+b", 2) == 2);
    close(fd);
    CHILD_EXPECT_OK(c, setxattr(g, "user.b", "b", 1, 0));
}

static void test_other_user_cannot_change(void **state)
{
    make_test_dir("others", 0777);
    lsmfs_run_child(&user_a, make_files_as_a, NULL);
    struct stat before;
    EXPECT_OK(stat(at("adir/readonly"), &before));
    lsmfs_run_child(&user_b, meddle_as_b, NULL);
    expect_owner(at("adir/readonly"), 1000, 1000, 0644);
    assert_int_equal(size_of(at("adir/readonly")), 6);
    struct stat after;
    EXPECT_OK(stat(at("adir/readonly"), &after));
    assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
    assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
    expect_owner(at("adir/shared"), 1000, 1000, 0666);
    assert_int_equal(size_of(at("adir/shared")), 8);
    lsmfs_mount_remount(mnt);
    assert_int_equal(size_of(at("adir/shared")), 8);
    expect_owner(at("adir/readonly"), 1000, 1000, 0644);
}

/* ---- permission bits ---- */

static void make_tree_as_a(struct lsmfs_child *c, void *arg)
{
    umask(0);
    CHILD_EXPECT_OK(c, mkdir(at("adir"), 0755));
    child_create(c, at("adir/private"), 0600, "private");
    child_create(c, at("adir/public"), 0644, "public");
    child_create(c, at("adir/group"), 0640, "group");
    CHILD_EXPECT_OK(c, chown(at("adir/group"), (uid_t)-1, 3000));
    child_create(c, at("adir/group-only"), 0070, "group only");
    CHILD_EXPECT_OK(c, chown(at("adir/group-only"), (uid_t)-1, 3000));
    CHILD_EXPECT_OK(c, mkdir(at("closed"), 0700));
    child_create(c, at("closed/inside"), 0644, "inside");
    CHILD_EXPECT_OK(c, mkdir(at("xonly"), 0711));
    child_create(c, at("xonly/known"), 0644, "known");
    /* The owner class decides for the owner, even when the group class
     * would allow more. */
    CHILD_EXPECT_ERRNO(c, open(at("adir/group-only"), O_RDONLY), EACCES);
}

static void probe_as_b(struct lsmfs_child *c, void *arg)
{
    CHILD_EXPECT_ERRNO(c, open(at("adir/private"), O_RDONLY), EACCES);
    CHILD_EXPECT_ERRNO(c, access(at("adir/private"), R_OK), EACCES);
    int fd = open(at("adir/public"), O_RDONLY);
    CHILD_EXPECT(c, fd >= 0);
    close(fd);
    CHILD_EXPECT_ERRNO(c, open(at("adir/public"), O_WRONLY), EACCES);
    CHILD_EXPECT_ERRNO(c, open(at("adir/group"), O_RDONLY), EACCES);
    CHILD_EXPECT_ERRNO(c, open(at("adir/new"), O_WRONLY | O_CREAT, 0644), EACCES);
    CHILD_EXPECT_ERRNO(c, mkdir(at("adir/newdir"), 0755), EACCES);
    CHILD_EXPECT_ERRNO(c, mkfifo(at("adir/newfifo"), 0644), EACCES);
    CHILD_EXPECT_ERRNO(c, symlink("x", at("adir/newlink")), EACCES);
    CHILD_EXPECT_ERRNO(c, unlink(at("adir/public")), EACCES);
    CHILD_EXPECT_ERRNO(c, rename(at("adir/public"), at("adir/moved")), EACCES);
    DIR *d = opendir(at("adir"));
    CHILD_EXPECT(c, d != NULL);
    if (d != NULL)
        closedir(d);

    struct stat st;
    CHILD_EXPECT_ERRNO(c, stat(at("closed/inside"), &st), EACCES);
    CHILD_EXPECT_ERRNO(c, opendir(at("closed")) == NULL ? -1 : 0, EACCES);
    /* Search without read: known names work, listing does not. */
    CHILD_EXPECT_OK(c, stat(at("xonly/known"), &st));
    fd = open(at("xonly/known"), O_RDONLY);
    CHILD_EXPECT(c, fd >= 0);
    close(fd);
    CHILD_EXPECT_ERRNO(c, opendir(at("xonly")) == NULL ? -1 : 0, EACCES);
}

static void probe_as_group_member(struct lsmfs_child *c, void *arg)
{
    /* E is in group 3000 as a supplementary group. */
    int fd = open(at("adir/group"), O_RDONLY);
    CHILD_EXPECT(c, fd >= 0);
    char buf[16];
    CHILD_EXPECT(c, fd < 0 || read(fd, buf, sizeof(buf)) == 5);
    close(fd);
    CHILD_EXPECT_ERRNO(c, open(at("adir/group"), O_WRONLY), EACCES);
    fd = open(at("adir/group-only"), O_RDWR);
    CHILD_EXPECT(c, fd >= 0);
    close(fd);
    CHILD_EXPECT_ERRNO(c, open(at("adir/private"), O_RDONLY), EACCES);
}

static void test_permission_bits(void **state)
{
    make_test_dir("perms", 0777);
    lsmfs_run_child(&user_a, make_tree_as_a, NULL);
    lsmfs_run_child(&user_b, probe_as_b, NULL);
    lsmfs_run_child(&user_e, probe_as_group_member, NULL);
    /* The same answers from attributes reloaded from the daemon. */
    lsmfs_mount_remount(mnt);
    lsmfs_run_child(&user_b, probe_as_b, NULL);
    lsmfs_run_child(&user_e, probe_as_group_member, NULL);
}

/* ---- sticky directories ---- */

static void fill_sticky_as_a(struct lsmfs_child *c, void *arg)
{
    umask(022);
    child_create(c, at("tmp/a-file"), 0666, "a");
    CHILD_EXPECT_OK(c, mkdir(at("tmp/a-dir"), 0777));
    child_create(c, at("ctmp/a-file"), 0644, "a");
}

static void raid_sticky_as_b(struct lsmfs_child *c, void *arg)
{
    umask(022);
    CHILD_EXPECT_ERRNO(c, unlink(at("tmp/a-file")), EPERM);
    CHILD_EXPECT_ERRNO(c, rename(at("tmp/a-file"), at("tmp/b-name")), EPERM);
    CHILD_EXPECT_ERRNO(c, rmdir(at("tmp/a-dir")), EPERM);
    CHILD_EXPECT_ERRNO(c, rename(at("tmp/a-dir"), at("tmp/b-dir")), EPERM);
    child_create(c, at("tmp/b-file"), 0644, "b");
    CHILD_EXPECT_ERRNO(c, rename(at("tmp/b-file"), at("tmp/a-file")), EPERM);
    /* Its own file B may rename and remove. */
    CHILD_EXPECT_OK(c, rename(at("tmp/b-file"), at("tmp/b-renamed")));
    CHILD_EXPECT_OK(c, unlink(at("tmp/b-renamed")));
}

static void raid_other_sticky_as_b(struct lsmfs_child *c, void *arg)
{
    CHILD_EXPECT_ERRNO(c, unlink(at("ctmp/a-file")), EPERM);
    CHILD_EXPECT_ERRNO(c, rename(at("ctmp/a-file"), at("ctmp/b-name")), EPERM);
}

static void clean_sticky_as_owner_of_dir(struct lsmfs_child *c, void *arg)
{
    /* C owns ctmp: it may remove anything in it. */
    CHILD_EXPECT_OK(c, unlink(at("ctmp/a-file")));
}

static void clean_sticky_as_a(struct lsmfs_child *c, void *arg)
{
    CHILD_EXPECT_OK(c, rename(at("tmp/a-file"), at("tmp/a-renamed")));
    CHILD_EXPECT_OK(c, unlink(at("tmp/a-renamed")));
}

static void test_sticky_directory(void **state)
{
    make_test_dir("sticky", 0755);
    EXPECT_OK(mkdir(at("tmp"), 0700));
    EXPECT_OK(chmod(at("tmp"), 01777));
    EXPECT_OK(mkdir(at("ctmp"), 0700));
    EXPECT_OK(chown(at("ctmp"), 1002, 1002));
    EXPECT_OK(chmod(at("ctmp"), 01777));
    expect_owner(at("tmp"), 0, 0, 01777);
    expect_owner(at("ctmp"), 1002, 1002, 01777);

    lsmfs_run_child(&user_a, fill_sticky_as_a, NULL);
    lsmfs_run_child(&user_b, raid_sticky_as_b, NULL);
    lsmfs_run_child(&user_b, raid_other_sticky_as_b, NULL);
    lsmfs_run_child(&user_c, clean_sticky_as_owner_of_dir, NULL);
    struct stat st;
    EXPECT_ERRNO(stat(at("ctmp/a-file"), &st), ENOENT);
    expect_owner(at("tmp/a-file"), 1000, 1000, 0644);

    /* The bit survives a remount and still protects. */
    lsmfs_mount_remount(mnt);
    expect_owner(at("tmp"), 0, 0, 01777);
    lsmfs_run_child(&user_b, raid_sticky_as_b, NULL);
    lsmfs_run_child(&user_a, clean_sticky_as_a, NULL);
    /* Root may remove anything. */
    EXPECT_OK(rmdir(at("tmp/a-dir")));
}

/* ---- setuid and setgid bits ---- */

static void make_setid_files_as_a(struct lsmfs_child *c, void *arg)
{
    umask(0);
    static const struct {
        const char *name;
        mode_t mode;
    } files[] = {{"suid-sgid", 06777},       {"sgid-no-gx", 06766},   {"suid-trunc", 04777},
                 {"suid-open-trunc", 06777}, {"owner-writes", 06777}, {"root-writes", 06777}};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        child_create(c, at("%s", files[i].name), 0600, "0123456789");
        CHILD_EXPECT_OK(c, chmod(at("%s", files[i].name), files[i].mode));
        child_expect_owner(c, at("%s", files[i].name), 1000, 1000, files[i].mode);
    }
}

static void write_as(struct lsmfs_child *c, const char *path)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0) {
        lsmfs_child_fail(c, __FILE__, __LINE__, "open %s for writing: %s", path,
                         lsmfs_errno_name(errno));
        return;
    }
    CHILD_EXPECT(c, pwrite(fd, "xy", 2, 3) == 2);
    CHILD_EXPECT_OK(c, fsync(fd));
    close(fd);
}

static void write_setid_files_as_b(struct lsmfs_child *c, void *arg)
{
    write_as(c, at("suid-sgid"));
    CHILD_EXPECT_OK(c, truncate(at("suid-trunc"), 5));
    /* open(O_TRUNC) truncates like truncate(2), and clears the same bits. */
    int fd = open(at("suid-open-trunc"), O_WRONLY | O_TRUNC);
    CHILD_EXPECT(c, fd >= 0);
    close(fd);
}

static void write_setid_file_as_group_member(struct lsmfs_child *c, void *arg)
{
    write_as(c, at("sgid-no-gx"));
}

static void write_setid_file_as_owner(struct lsmfs_child *c, void *arg)
{
    write_as(c, at("owner-writes"));
}

static void test_write_clears_setid(void **state)
{
    make_test_dir("setid", 0777);
    lsmfs_run_child(&user_a, make_setid_files_as_a, NULL);
    lsmfs_run_child(&user_b, write_setid_files_as_b, NULL);
    lsmfs_run_child(&user_f, write_setid_file_as_group_member, NULL);
    lsmfs_run_child(&user_a, write_setid_file_as_owner, NULL);
    /* Root (CAP_FSETID) keeps the bits. */
    int fd = EXPECT_OK(open(at("root-writes"), O_WRONLY));
    assert_int_equal(pwrite(fd, "r", 1, 0), 1);
    EXPECT_OK(fsync(fd));
    EXPECT_OK(close(fd));

    /* A write by a non-owner without CAP_FSETID drops setuid, and setgid
     * when group-exec is set; setgid without group-exec (the old mandatory
     * locking mark) stays for a writer in the file's group. So does the
     * owner's own write; root's keeps both. */
    expect_owner(at("suid-sgid"), 1000, 1000, 0777);
    expect_owner(at("sgid-no-gx"), 1000, 1000, 02766);
    expect_owner(at("suid-trunc"), 1000, 1000, 0777);
    expect_owner(at("owner-writes"), 1000, 1000, 0777);
    expect_owner(at("root-writes"), 1000, 1000, 06777);
    assert_int_equal(size_of(at("suid-trunc")), 5);
    assert_int_equal(size_of(at("suid-open-trunc")), 0);
    expect_owner(at("suid-open-trunc"), 1000, 1000, 0777);

    lsmfs_mount_remount(mnt);
    expect_owner(at("suid-open-trunc"), 1000, 1000, 0777);
    expect_owner(at("suid-sgid"), 1000, 1000, 0777);
    expect_owner(at("sgid-no-gx"), 1000, 1000, 02766);
    expect_owner(at("suid-trunc"), 1000, 1000, 0777);
    expect_owner(at("owner-writes"), 1000, 1000, 0777);
    expect_owner(at("root-writes"), 1000, 1000, 06777);
}

static void test_root_chown_clears_setid(void **state)
{
    make_test_dir("chown-setid", 0755);
    static const struct {
        const char *name;
        mode_t mode, after;
    } files[] = {{"suid", 04755, 0755},
                 {"suid-sgid", 06755, 0755},
                 {"sgid-no-gx", 02745, 02745},
                 {"plain", 0755, 0755}};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        const char *f = at("%s", files[i].name);
        EXPECT_OK(close(EXPECT_OK(open(f, O_WRONLY | O_CREAT | O_EXCL, 0600))));
        EXPECT_OK(chown(f, 1000, 1000));
        EXPECT_OK(chmod(f, files[i].mode));
        expect_owner(f, 1000, 1000, files[i].mode);
        EXPECT_OK(chown(f, 1001, 1001));
        expect_owner(f, 1001, 1001, files[i].after);
    }
    /* A directory keeps its setgid bit. */
    EXPECT_OK(mkdir(at("dir"), 0755));
    EXPECT_OK(chmod(at("dir"), 02755));
    EXPECT_OK(chown(at("dir"), 1001, 1001));
    expect_owner(at("dir"), 1001, 1001, 02755);
    /* chown to the same owner still clears setuid on a file. */
    EXPECT_OK(chmod(at("plain"), 04755));
    EXPECT_OK(chown(at("plain"), 1001, (gid_t)-1));
    expect_owner(at("plain"), 1001, 1001, 0755);

    lsmfs_mount_remount(mnt);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        expect_owner(at("%s", files[i].name), 1001, 1001, files[i].after);
    expect_owner(at("dir"), 1001, 1001, 02755);
}

/* Buffered write(2)s (no fsync) by a user without CAP_FSETID clear the
 * bits at the first write, seen while the file is still open; the other
 * writes go on normally. Root's buffered writes keep them, also once the
 * cached pages are written back at close. */
static void buffered_writes_as_b(struct lsmfs_child *c, void *arg)
{
    int fd = open(at("buffered"), O_WRONLY);
    CHILD_EXPECT(c, fd >= 0);
    if (fd < 0)
        return;
    for (int i = 0; i < 100; i++)
        CHILD_EXPECT(c, pwrite(fd, "0123456789", 10, i * 10) == 10);
    child_expect_owner(c, at("buffered"), 1000, 1000, 0777);
    CHILD_EXPECT_OK(c, close(fd));
}

static void test_buffered_write_clears_setid(void **state)
{
    make_test_dir("buffered-setid", 0777);
    for (int i = 0; i < 2; i++) {
        const char *path = at(i == 0 ? "buffered" : "root-buffered");
        EXPECT_OK(close(EXPECT_OK(open(path, O_WRONLY | O_CREAT | O_EXCL, 0600))));
        EXPECT_OK(chown(path, 1000, 1000));
        EXPECT_OK(chmod(path, 06777));
    }
    lsmfs_run_child(&user_b, buffered_writes_as_b, NULL);
    expect_owner(at("buffered"), 1000, 1000, 0777);
    assert_int_equal(size_of(at("buffered")), 1000);

    int fd = EXPECT_OK(open(at("root-buffered"), O_WRONLY));
    for (int i = 0; i < 100; i++)
        assert_int_equal(pwrite(fd, "0123456789", 10, i * 10), 10);
    expect_owner(at("root-buffered"), 1000, 1000, 06777);
    EXPECT_OK(close(fd));
    expect_owner(at("root-buffered"), 1000, 1000, 06777);

    lsmfs_mount_remount(mnt);
    expect_owner(at("buffered"), 1000, 1000, 0777);
    expect_owner(at("root-buffered"), 1000, 1000, 06777);
    assert_int_equal(size_of(at("root-buffered")), 1000);
}

/* fallocate and copy_file_range (into the file) by a user without
 * CAP_FSETID clear the bits as a write does; root's keep them. The
 * requests carry no kill flag: lsmfs learns it from the kernel's SETATTR
 * that sets nothing, sent just before (see fuse_io.h). */
static void modify_setid_files_as_b(struct lsmfs_child *c, void *arg)
{
    int fd = open(at("fallocate"), O_WRONLY);
    CHILD_EXPECT(c, fd >= 0);
    CHILD_EXPECT(c, posix_fallocate(fd, 0, 100000) == 0);
    CHILD_EXPECT_OK(c, close(fd));
    int in = open(at("source"), O_RDONLY), out = open(at("copy"), O_WRONLY);
    CHILD_EXPECT(c, in >= 0 && out >= 0);
    off_t in_offset = 0, out_offset = 4;
    CHILD_EXPECT(c, copy_file_range(in, &in_offset, out, &out_offset, 3, 0) == 3);
    close(in);
    close(out);
}

static void test_fallocate_and_copy_clear_setid(void **state)
{
    make_test_dir("other-writes", 0777);
    static const char *const names[] = {"fallocate", "copy", "root-fallocate", "root-copy"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *path = at("%s", names[i]);
        int fd = EXPECT_OK(open(path, O_WRONLY | O_CREAT | O_EXCL, 0600));
        assert_int_equal(write(fd, "0123456789", 10), 10);
        EXPECT_OK(close(fd));
        EXPECT_OK(chown(path, 1000, 1000));
        EXPECT_OK(chmod(path, 06777));
    }
    int fd = EXPECT_OK(open(at("source"), O_WRONLY | O_CREAT | O_EXCL, 0644));
    assert_int_equal(write(fd, "src", 3), 3);
    EXPECT_OK(close(fd));

    lsmfs_run_child(&user_b, modify_setid_files_as_b, NULL);
    fd = EXPECT_OK(open(at("root-fallocate"), O_WRONLY));
    assert_int_equal(posix_fallocate(fd, 0, 100000), 0);
    EXPECT_OK(close(fd));
    int in = EXPECT_OK(open(at("source"), O_RDONLY));
    int out = EXPECT_OK(open(at("root-copy"), O_WRONLY));
    off_t in_offset = 0, out_offset = 4;
    assert_int_equal(copy_file_range(in, &in_offset, out, &out_offset, 3, 0), 3);
    EXPECT_OK(close(in));
    EXPECT_OK(close(out));

    for (int round = 0; round < 2; round++) {
        expect_owner(at("fallocate"), 1000, 1000, 0777);
        expect_owner(at("copy"), 1000, 1000, 0777);
        expect_owner(at("root-fallocate"), 1000, 1000, 06777);
        expect_owner(at("root-copy"), 1000, 1000, 06777);
        assert_int_equal(size_of(at("fallocate")), 100000);
        if (round == 0)
            lsmfs_mount_remount(mnt);
    }
}

/* ---- security.capability ---- */

/* A valid v2 vfs_cap_data (cap_net_raw, effective), as setcap stores it:
 * the kernel checks the format before the value reaches lsmfs. */
static const unsigned char capability[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x20};

static bool has_capability(const char *path)
{
    unsigned char value[64];
    ssize_t n = getxattr(path, "security.capability", value, sizeof(value));
    if (n < 0 && errno != ENODATA)
        fail_msg("getxattr %s: %s", path, strerror(errno));
    if (n >= 0 && (n != (ssize_t)sizeof(capability) || memcmp(value, capability, (size_t)n) != 0))
        fail_msg("%s: security.capability changed", path);
    return n >= 0;
}

static void write_capability_file_as_b(struct lsmfs_child *c, void *arg)
{
    int fd = open(at("user-write"), O_WRONLY);
    CHILD_EXPECT(c, fd >= 0);
    CHILD_EXPECT(c, write(fd, "b", 1) == 1);
    CHILD_EXPECT_OK(c, close(fd));
    CHILD_EXPECT_OK(c, truncate(at("user-truncate"), 3));
}

/* As on ext4: a write (by anyone), a truncate and a chown remove a file's
 * capability; chmod, utimes and a capability set between the write(2) and
 * the close(2) (cp -a does so) keep it; other attributes stay. */
static void test_capability_removed(void **state)
{
    make_test_dir("caps", 0777);
    static const char *const names[] = {"root-write",    "user-write", "truncate",
                                        "user-truncate", "chown",      "chgrp",
                                        "chmod",         "utimes",     "set-before-close"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *path = at("%s", names[i]);
        int fd = EXPECT_OK(open(path, O_WRONLY | O_CREAT | O_EXCL, 0666));
        assert_int_equal(write(fd, "0123456789", 10), 10);
        EXPECT_OK(close(fd));
        EXPECT_OK(chmod(path, 0666)); /* past the umask */
        if (strcmp(names[i], "set-before-close") != 0)
            EXPECT_OK(setxattr(path, "security.capability", capability, sizeof(capability), 0));
        EXPECT_OK(setxattr(path, "user.keep", "k", 1, 0));
        assert_true(has_capability(path) == (strcmp(names[i], "set-before-close") != 0));
    }
    int fd = EXPECT_OK(open(at("root-write"), O_WRONLY));
    assert_int_equal(pwrite(fd, "ab", 2, 0), 2);
    EXPECT_OK(close(fd));
    lsmfs_run_child(&user_b, write_capability_file_as_b, NULL);
    EXPECT_OK(truncate(at("truncate"), 5));
    EXPECT_OK(chown(at("chown"), 1000, (gid_t)-1));
    EXPECT_OK(chown(at("chgrp"), (uid_t)-1, 1000));
    EXPECT_OK(chmod(at("chmod"), 0755));
    EXPECT_OK(utimensat(AT_FDCWD, at("utimes"), NULL, 0));
    fd = EXPECT_OK(open(at("set-before-close"), O_WRONLY));
    assert_int_equal(pwrite(fd, "abc", 3, 0), 3);
    EXPECT_OK(fsetxattr(fd, "security.capability", capability, sizeof(capability), 0));
    EXPECT_OK(close(fd));

    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            const char *path = at("%s", names[i]);
            bool kept = strcmp(names[i], "chmod") == 0 || strcmp(names[i], "utimes") == 0 ||
                        strcmp(names[i], "set-before-close") == 0;
            if (has_capability(path) != kept)
                fail_msg("%s: security.capability %s", names[i], kept ? "lost" : "kept");
            char value[4];
            assert_int_equal(getxattr(path, "user.keep", value, sizeof(value)), 1);
        }
        if (round == 0)
            lsmfs_mount_remount(mnt);
    }
}

/* ---- FUSE round trips ---- */

/* The count of `opcode` requests on the "fuse requests:" line of `lsmfs
 * stats` (0 when never seen). */
static uint64_t request_count(const char *stats, const char *opcode)
{
    static const char label[] = "fuse requests:";
    const char *line = strstr(stats, label);
    if (line == NULL)
        fail_msg("no \"%s\" in lsmfs stats output:\n%s", label, stats);
    const char *end = strchr(line, '\n');
    if (end == NULL)
        end = line + strlen(line);
    size_t n = strlen(opcode);
    for (const char *p = line + sizeof(label) - 1; p < end; p++) {
        /* entries: " NAME count" separated by "," */
        if ((p[-1] == ' ' && (p[-2] == ':' || p[-2] == ',')) && (size_t)(end - p) > n &&
            memcmp(p, opcode, n) == 0 && p[n] == ' ')
            return strtoull(p + n + 1, NULL, 10);
    }
    return 0;
}

/* Under FUSE_HANDLE_KILLPRIV_V2 (when the kernel offers it) the kernel
 * asks for security.capability once per inode, not before every write(2).
 * FLUSH: under the writeback cache one per close(2), which lsmfs answers
 * so that a close after the daemon died fails (lsmfs_flush); without it
 * none (noflush: every write was answered by lsmfs already). */
static void test_round_trips(void **state)
{
    make_test_dir("round-trips", 0755);
    char *before = lsmfs_mount_stats(mnt);
    bool offered = strstr(before, "handle_killpriv_v2 off (the kernel does not offer it)") == NULL;
    if (offered && strstr(before, "handle_killpriv_v2 on") == NULL)
        fail_msg("the kernel offers FUSE_HANDLE_KILLPRIV_V2 but it is not on:\n%s", before);

    int fd = EXPECT_OK(open(at("file"), O_WRONLY | O_CREAT | O_EXCL, 0644));
    char buf[100];
    memset(buf, 'w', sizeof(buf));
    for (int i = 0; i < 1000; i++)
        assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    EXPECT_OK(close(fd));
    assert_int_equal(size_of(at("file")), 1000 * (off_t)sizeof(buf));
    char *after_writes = lsmfs_mount_stats(mnt);

    for (int i = 0; i < 100; i++) {
        fd = EXPECT_OK(open(at("file"), O_WRONLY));
        assert_int_equal(pwrite(fd, "c", 1, i), 1);
        EXPECT_OK(close(fd));
    }
    char *after_closes = lsmfs_mount_stats(mnt);

    uint64_t getxattrs =
        request_count(after_writes, "GETXATTR") - request_count(before, "GETXATTR");
    uint64_t writes = request_count(after_writes, "WRITE") - request_count(before, "WRITE");
    uint64_t flushes = request_count(after_closes, "FLUSH") - request_count(after_writes, "FLUSH");
    bool writeback = strstr(mnt->options, "no_writeback_cache") == NULL;
    print_message("1000 write(2)s: %llu GETXATTR, %llu WRITE requests; 100 closes: %llu FLUSH%s\n",
                  (unsigned long long)getxattrs, (unsigned long long)writes,
                  (unsigned long long)flushes,
                  offered ? "" : " (no HANDLE_KILLPRIV_V2: GETXATTR not bounded)");
    free(before);
    free(after_writes);
    free(after_closes);
    if (offered)
        assert_true(getxattrs <= 2);
    assert_int_equal(flushes, writeback ? 100 : 0);
}

/* ---- root ---- */

static void make_locked_as_a(struct lsmfs_child *c, void *arg)
{
    umask(0);
    child_create(c, at("locked"), 0600, "locked content");
    CHILD_EXPECT_OK(c, chmod(at("locked"), 0));
    CHILD_EXPECT_OK(c, mkdir(at("locked-dir"), 0700));
    child_create(c, at("locked-dir/inside"), 0600, "inside");
    CHILD_EXPECT_OK(c, chmod(at("locked-dir"), 0));
    /* Not even the owner gets in now. */
    CHILD_EXPECT_ERRNO(c, open(at("locked"), O_RDONLY), EACCES);
}

static void test_root_reads_anything(void **state)
{
    make_test_dir("root", 0777);
    lsmfs_run_child(&user_a, make_locked_as_a, NULL);
    expect_owner(at("locked"), 1000, 1000, 0);

    int fd = EXPECT_OK(open(at("locked"), O_RDONLY));
    char buf[32];
    assert_int_equal(read(fd, buf, sizeof(buf)), 14);
    assert_memory_equal(buf, "locked content", 14);
    EXPECT_OK(close(fd));
    fd = EXPECT_OK(open(at("locked"), O_RDWR));
    assert_int_equal(pwrite(fd, "L", 1, 0), 1);
    EXPECT_OK(close(fd));

    DIR *d = opendir(at("locked-dir"));
    assert_non_null(d);
    closedir(d);
    fd = EXPECT_OK(open(at("locked-dir/inside"), O_RDONLY));
    EXPECT_OK(close(fd));
    EXPECT_OK(close(EXPECT_OK(open(at("locked-dir/by-root"), O_CREAT | O_WRONLY, 0644))));
    EXPECT_OK(unlink(at("locked-dir/inside")));

    /* Executing needs an x bit somewhere, even for root. */
    EXPECT_ERRNO(access(at("locked"), X_OK), EACCES);
    EXPECT_OK(chmod(at("locked"), 0100));
    EXPECT_OK(access(at("locked"), X_OK));
    EXPECT_OK(access(at("locked"), R_OK | W_OK));
}

#define USERS_TEST(f) cmocka_unit_test_setup_teardown(f, setup_test, teardown_test)

int main(void)
{
    const struct CMUnitTest tests[] = {
        USERS_TEST(test_new_files_get_creator_ids),
        USERS_TEST(test_setgid_directory),
        USERS_TEST(test_owner_changes_own_file),
        USERS_TEST(test_other_user_cannot_change),
        USERS_TEST(test_permission_bits),
        USERS_TEST(test_sticky_directory),
        USERS_TEST(test_write_clears_setid),
        USERS_TEST(test_root_chown_clears_setid),
        USERS_TEST(test_root_reads_anything),
        USERS_TEST(test_buffered_write_clears_setid),
        USERS_TEST(test_fallocate_and_copy_clear_setid),
        USERS_TEST(test_capability_removed),
        USERS_TEST(test_round_trips),
    };
    int failed = cmocka_run_group_tests_name("users_writeback_cache", tests, setup_writeback,
                                             teardown_group);
    failed += cmocka_run_group_tests_name("users_no_writeback_cache", tests, setup_no_writeback,
                                          teardown_group);
    return failed;
}
