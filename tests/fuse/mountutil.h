/*
 * mountutil.h — helpers for tests that drive a real lsmfs mount through
 * system calls: start the daemon ($LSMFS_BIN, in the foreground, stderr to
 * a log file) on a fresh data directory under KV_TEST_TMPDIR, wait until
 * the kernel shows the mount, unmount it again and check how the daemon
 * ended (exit status 0, no sanitizer report in its log), remount on the
 * same data, and kill the daemon with SIGKILL to test crash recovery.
 *
 * No mount outlives the test program: every mount is unmounted by
 * lsmfs_mount_destroy, by an atexit handler and by a SIGTERM/SIGINT/SIGHUP
 * handler, and the daemon gets SIGTERM (PR_SET_PDEATHSIG) if the test
 * program dies by SIGKILL.
 *
 * The lsmfs_mount functions fail the running cmocka test (fail_msg, with
 * the daemon's log printed) when something goes wrong, so callers need not
 * check them. Single-threaded use only (the test program's main thread).
 *
 * Children: lsmfs_run_child forks a process (optionally with other
 * credentials) that runs a function checking things with the CHILD_*
 * macros, and fails the test with the child's messages. Children never
 * call cmocka, never return into it, and leave with _exit.
 */
#ifndef LSMFS_TEST_MOUNTUTIL_H
#define LSMFS_TEST_MOUNTUTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "testutil.h"

struct lsmfs_mount {
    char *scratch;       /* the test's scratch directory (removed by destroy) */
    char *datadir;       /* scratch/data: the lsmfs data directory */
    char *mountpoint;    /* scratch/mnt, a canonical path */
    char *options;       /* extra "-o" options, or NULL */
    char log_path[4096]; /* stderr of the current (or last) daemon */
    pid_t daemon_pid;    /* 0 when no daemon runs */
    int daemons_started; /* names the log files: lsmfs-1.log, lsmfs-2.log, ... */
};

/* Makes a scratch directory named after `name`, formats and mounts a fresh
 * lsmfs there with the extra mount options `options` (e.g. "allow_other";
 * NULL for none) and returns the handle. Fails the test on error. */
struct lsmfs_mount *lsmfs_mount_create(const char *name, const char *options);

/* Unmounts (checked as lsmfs_mount_stop) if mounted, removes the scratch
 * directory and frees m. NULL is ignored. */
void lsmfs_mount_destroy(struct lsmfs_mount *m);

/* Starts a daemon on m->datadir and waits (10 s at most) until
 * m->mountpoint is a fuse.lsmfs mount. */
void lsmfs_mount_start(struct lsmfs_mount *m);

/* The strict_limit of the mount's bdi (fuse/bdi.h), found through the
 * kernel's mountinfo: 0 or 1, or a negative errno (-ENOENT on a kernel
 * without the knob). Fails the test when the mount is not listed. */
int lsmfs_mount_strict_limit(const struct lsmfs_mount *m);

/* Unmounts with `fusermount3 -u` (retrying a busy mount for a while, then
 * lazily), waits for the daemon and fails the test if it exited non-zero,
 * by a signal, did not exit, or logged a sanitizer report. */
void lsmfs_mount_stop(struct lsmfs_mount *m);

/* lsmfs_mount_stop then lsmfs_mount_start on the same data directory. */
void lsmfs_mount_remount(struct lsmfs_mount *m);

/* SIGKILLs the daemon, detaches the dead mount with `fusermount3 -u -z`
 * and reaps the daemon; fails the test if the daemon had already died or
 * its log holds a sanitizer report. */
void lsmfs_mount_kill(struct lsmfs_mount *m);

/* lsmfs_mount_kill then lsmfs_mount_start. */
void lsmfs_mount_kill_and_remount(struct lsmfs_mount *m);

/* For a test's teardown: if the daemon died (or an earlier failure left
 * no mount), reports it (fails the test, with the log) after mounting
 * again, so that the next tests find a working mount. */
void lsmfs_mount_check_alive(struct lsmfs_mount *m);

/* True while m->mountpoint shows in /proc/self/mounts as fuse.lsmfs. */
bool lsmfs_is_mounted(const struct lsmfs_mount *m);

/* The mount point joined with a printf-formatted relative path. The result
 * lives in one of 16 rotating static buffers: use it before 16 more calls. */
const char *lsmfs_path(const struct lsmfs_mount *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Sleeps ms milliseconds (resuming after signals). */
void lsmfs_sleep_ms(int ms);

/* Output of `$LSMFS_BIN stats MOUNTPOINT` (malloc'd); fails the test if
 * the command fails. */
char *lsmfs_mount_stats(const struct lsmfs_mount *m);

/* The number after `label` in text (e.g. "orphans reclaimed "); fails the
 * test if the label is absent. */
uint64_t lsmfs_stats_number(const char *text, const char *label);

/* Runs argv (argv[0] looked up in PATH), stdout into out (NUL-terminated,
 * truncated to outlen; out may be NULL). Returns the exit status, or -1 if
 * it could not run or died by a signal. */
int lsmfs_run_command(char *const argv[], char *out, size_t outlen);

/* ---- file descriptors a failed test leaves open ---- */

/* Remembers which descriptors are open now. */
void lsmfs_fd_baseline_save(void);
/* Closes every descriptor opened since the baseline (a failed test's
 * leftovers, which would keep the mount busy); returns how many. */
int lsmfs_fd_close_leaked(void);

/* ---- a canonical text of a tree, to compare across remounts ---- */

/* One line per entry below root (sorted by path): type, permission bits,
 * owner, group, link count, size, mtime and ctime in ns, inode number,
 * rdev, symlink target, a hash of a regular file's bytes, and every
 * extended attribute with a hash of its value. malloc'd; fails the test if
 * the tree cannot be read. */
char *lsmfs_tree_manifest(const char *root);

/* Fails the test, printing the first differing line, unless equal. Frees
 * both manifests either way. */
void lsmfs_expect_same_manifest(char *before, char *after, const char *what);

/* FNV-1a 64 of n bytes, continuing from hash (start with LSMFS_FNV_SEED). */
#define LSMFS_FNV_SEED 0xcbf29ce484222325ull
uint64_t lsmfs_fnv1a(uint64_t hash, const void *data, size_t n);

/* ---- checks in the test process ---- */

/* `call` must fail with -1 and errno `expected`. */
#define EXPECT_ERRNO(call, expected)                                                               \
    do {                                                                                           \
        errno = 0;                                                                                 \
        long expect_rc_ = (long)(call);                                                            \
        int expect_errno_ = errno;                                                                 \
        if (expect_rc_ != -1 || expect_errno_ != (expected))                                       \
            fail_msg("%s:%d: %s returned %ld (errno %s), expected -1 with %s", __FILE__, __LINE__, \
                     #call, expect_rc_, lsmfs_errno_name(expect_errno_),                           \
                     lsmfs_errno_name(expected));                                                  \
    } while (0)

/* `call` must not return a negative value; evaluates to its result. (The
 * function reads errno itself: its body runs after the call.) */
#define EXPECT_OK(call) lsmfs_expect_ok_(__FILE__, __LINE__, #call, (errno = 0, (long)(call)))

/* "EACCES" etc. for an errno value (a static string). */
const char *lsmfs_errno_name(int error);
long lsmfs_expect_ok_(const char *file, int line, const char *what, long rc);

/* ---- children ---- */

struct lsmfs_creds {
    uid_t uid;
    gid_t gid;
    int ngroups; /* supplementary groups (0: none) */
    gid_t groups[8];
};

/* Collects a child's failed checks. */
struct lsmfs_child {
    char messages[4096];
    size_t used;
    int failures;
};

typedef void (*lsmfs_child_fn)(struct lsmfs_child *child, void *arg);

/* Runs fn(child, arg) in a forked process: with creds (setgroups, setgid,
 * setuid, in that order) unless creds is NULL. Fails the test with the
 * child's messages if any CHILD_* check failed or the child crashed. */
void lsmfs_run_child(const struct lsmfs_creds *creds, lsmfs_child_fn fn, void *arg);

/* Like lsmfs_run_child, but starts the child and returns its pid at once;
 * lsmfs_wait_child collects it (and fails the test as above). The pipe
 * descriptor that carries the messages is returned in *report_fd. */
pid_t lsmfs_start_child(const struct lsmfs_creds *creds, lsmfs_child_fn fn, void *arg,
                        int *report_fd);
void lsmfs_wait_child(pid_t pid, int report_fd);

void lsmfs_child_fail(struct lsmfs_child *child, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* In a child: cond must hold. */
#define CHILD_EXPECT(child, cond)                                                                  \
    do {                                                                                           \
        if (!(cond))                                                                               \
            lsmfs_child_fail(child, __FILE__, __LINE__, "expected %s", #cond);                     \
    } while (0)

/* In a child: `call` must return >= 0. */
#define CHILD_EXPECT_OK(child, call)                                                               \
    do {                                                                                           \
        errno = 0;                                                                                 \
        long child_rc_ = (long)(call);                                                             \
        int child_errno_ = errno;                                                                  \
        if (child_rc_ < 0)                                                                         \
            lsmfs_child_fail(child, __FILE__, __LINE__, "%s failed: %s", #call,                    \
                             lsmfs_errno_name(child_errno_));                                      \
    } while (0)

/* In a child: `call` must fail with -1 and errno `expected`. */
#define CHILD_EXPECT_ERRNO(child, call, expected)                                                  \
    do {                                                                                           \
        errno = 0;                                                                                 \
        long child_rc_ = (long)(call);                                                             \
        int child_errno_ = errno;                                                                  \
        if (child_rc_ != -1 || child_errno_ != (expected))                                         \
            lsmfs_child_fail(child, __FILE__, __LINE__, "%s returned %ld (errno %s), expected %s", \
                             #call, child_rc_, lsmfs_errno_name(child_errno_),                     \
                             lsmfs_errno_name(expected));                                          \
    } while (0)

#endif /* LSMFS_TEST_MOUNTUTIL_H */
