/*
 * mountutil.c — mounting, unmounting and killing a real lsmfs daemon for
 * the mounted-filesystem tests; see mountutil.h for the contracts.
 */
#include "mountutil.h"

#include "bdi.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define MOUNT_TIMEOUT_MS 10000
#define DAEMON_EXIT_TIMEOUT_MS 30000
#define BUSY_RETRY_MS 5000
#define MAX_LIVE_MOUNTS 8

/* ---- small things ---- */

void lsmfs_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static char *xstrdup(const char *s)
{
    char *copy = strdup(s);
    assert_non_null(copy);
    return copy;
}

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    assert_non_null(path);
    snprintf(path, n, "%s/%s", dir, name);
    return path;
}

const char *lsmfs_errno_name(int error)
{
    static char unknown[32];
    switch (error) {
    case 0:
        return "0";
    case EPERM:
        return "EPERM";
    case ENOENT:
        return "ENOENT";
    case EIO:
        return "EIO";
    case EBADF:
        return "EBADF";
    case EAGAIN:
        return "EAGAIN";
    case ENOMEM:
        return "ENOMEM";
    case EACCES:
        return "EACCES";
    case EBUSY:
        return "EBUSY";
    case EEXIST:
        return "EEXIST";
    case EXDEV:
        return "EXDEV";
    case ENODEV:
        return "ENODEV";
    case ENOTDIR:
        return "ENOTDIR";
    case EISDIR:
        return "EISDIR";
    case EINVAL:
        return "EINVAL";
    case EFBIG:
        return "EFBIG";
    case ENOSPC:
        return "ENOSPC";
    case ESPIPE:
        return "ESPIPE";
    case EROFS:
        return "EROFS";
    case EMLINK:
        return "EMLINK";
    case ERANGE:
        return "ERANGE";
    case ENAMETOOLONG:
        return "ENAMETOOLONG";
    case ENOSYS:
        return "ENOSYS";
    case ENOTEMPTY:
        return "ENOTEMPTY";
    case ELOOP:
        return "ELOOP";
    case ENODATA:
        return "ENODATA";
    case EOPNOTSUPP:
        return "EOPNOTSUPP";
    case ENOTCONN:
        return "ENOTCONN";
    case ENXIO:
        return "ENXIO";
    case E2BIG:
        return "E2BIG";
    case ETXTBSY:
        return "ETXTBSY";
    case EOVERFLOW:
        return "EOVERFLOW";
    case ENOTTY:
        return "ENOTTY";
    default:
        snprintf(unknown, sizeof(unknown), "errno %d", error);
        return unknown;
    }
}

long lsmfs_expect_ok_(const char *file, int line, const char *what, long rc)
{
    int error = errno;
    if (rc < 0)
        fail_msg("%s:%d: %s failed: %s (%s)", file, line, what, lsmfs_errno_name(error),
                 strerror(error));
    return rc;
}

uint64_t lsmfs_fnv1a(uint64_t hash, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        hash ^= p[i];
        hash *= 0x100000001b3ull;
    }
    return hash;
}

/* ---- running commands ---- */

int lsmfs_run_command(char *const argv[], char *out, size_t outlen)
{
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(pipe_fds[1], STDOUT_FILENO);
        dup2(pipe_fds[1], STDERR_FILENO);
        execvp(argv[0], argv);
        fprintf(stderr, "%s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pipe_fds[1]);
    size_t used = 0;
    char scratch[4096];
    for (;;) {
        char *into = out != NULL && used + 1 < outlen ? out + used : scratch;
        size_t room = out != NULL && used + 1 < outlen ? outlen - 1 - used : sizeof(scratch);
        ssize_t n = read(pipe_fds[0], into, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (into != scratch)
            used += (size_t)n;
    }
    if (out != NULL && outlen > 0)
        out[used] = '\0';
    close(pipe_fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- mounts that must not outlive the program ---- */

struct live_mount {
    bool used;
    pid_t daemon_pid;
    char mountpoint[4096];
};

static struct live_mount live_mounts[MAX_LIVE_MOUNTS];
static pid_t owner_pid;            /* only this process cleans up (not forked children) */
static char fusermount_path[4096]; /* absolute, for the signal handler's execv */

static void find_fusermount(void)
{
    const char *path = getenv("PATH");
    char copy[8192];
    snprintf(copy, sizeof(copy), "%s", path != NULL ? path : "/usr/bin:/bin");
    for (char *save = NULL, *dir = strtok_r(copy, ":", &save); dir != NULL;
         dir = strtok_r(NULL, ":", &save)) {
        snprintf(fusermount_path, sizeof(fusermount_path), "%s/fusermount3", dir);
        if (access(fusermount_path, X_OK) == 0)
            return;
    }
    snprintf(fusermount_path, sizeof(fusermount_path), "/usr/bin/fusermount3");
}

/* Lazily unmounts every live mount and stops its daemon, using only
 * async-signal-safe calls (fork, execv, waitpid, kill). */
static void emergency_unmount_all(void)
{
    if (getpid() != owner_pid)
        return;
    for (int i = 0; i < MAX_LIVE_MOUNTS; i++) {
        if (!live_mounts[i].used)
            continue;
        pid_t pid = fork();
        if (pid == 0) {
            char *argv[] = {"fusermount3", "-u", "-z", live_mounts[i].mountpoint, NULL};
            execv(fusermount_path, argv);
            _exit(127);
        }
        if (pid > 0)
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        if (live_mounts[i].daemon_pid > 0)
            kill(live_mounts[i].daemon_pid, SIGTERM);
        live_mounts[i].used = false;
    }
}

static void on_fatal_signal(int sig)
{
    emergency_unmount_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* At exit: a clean unmount where possible, else a lazy one. */
static void unmount_at_exit(void)
{
    if (getpid() != owner_pid)
        return;
    for (int i = 0; i < MAX_LIVE_MOUNTS; i++) {
        if (!live_mounts[i].used)
            continue;
        fprintf(stderr, "mountutil: unmounting %s left behind\n", live_mounts[i].mountpoint);
        char *argv[] = {"fusermount3", "-u", live_mounts[i].mountpoint, NULL};
        char *lazy_argv[] = {"fusermount3", "-u", "-z", live_mounts[i].mountpoint, NULL};
        if (lsmfs_run_command(argv, NULL, 0) != 0)
            lsmfs_run_command(lazy_argv, NULL, 0);
        pid_t pid = live_mounts[i].daemon_pid;
        int waited = 0;
        while (pid > 0 && waitpid(pid, NULL, WNOHANG) == 0 && waited < 5000) {
            lsmfs_sleep_ms(20);
            waited += 20;
        }
        if (pid > 0 && waited >= 5000) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        live_mounts[i].used = false;
    }
}

static void install_cleanup_once(void)
{
    if (owner_pid == getpid())
        return;
    owner_pid = getpid();
    find_fusermount();
    atexit(unmount_at_exit);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

/* Blocks the cleanup signals while the table changes. */
static void live_mount_set(const struct lsmfs_mount *m, bool live)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, &old);
    int slot = -1;
    for (int i = 0; i < MAX_LIVE_MOUNTS; i++) {
        if (live_mounts[i].used && strcmp(live_mounts[i].mountpoint, m->mountpoint) == 0)
            slot = i;
        else if (slot < 0 && !live_mounts[i].used && live)
            slot = i;
    }
    if (slot >= 0) {
        live_mounts[slot].used = live;
        live_mounts[slot].daemon_pid = m->daemon_pid;
        snprintf(live_mounts[slot].mountpoint, sizeof(live_mounts[slot].mountpoint), "%s",
                 m->mountpoint);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
}

/* ---- the daemon's log ---- */

static char *read_whole_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return xstrdup("");
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t n;
    while ((n = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            cap *= 2;
            text = realloc(text, cap);
            assert_non_null(text);
        }
    }
    text[len] = '\0';
    fclose(f);
    return text;
}

/* The sanitizer report in the log, if any. */
static const char *sanitizer_report(const char *log)
{
    static const char *markers[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                    "runtime error:"};
    for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++)
        if (strstr(log, markers[i]) != NULL)
            return markers[i];
    return NULL;
}

static void print_log(const struct lsmfs_mount *m)
{
    char *log = read_whole_file(m->log_path);
    fprintf(stderr, "---- %s ----\n%s%s---- end of log ----\n", m->log_path, log,
            log[0] != '\0' && log[strlen(log) - 1] != '\n' ? "\n" : "");
    free(log);
}

/* Fails the test (after printing the log) if the log holds a sanitizer
 * report. */
static void check_log(const struct lsmfs_mount *m)
{
    char *log = read_whole_file(m->log_path);
    const char *marker = sanitizer_report(log);
    free(log);
    if (marker != NULL) {
        print_log(m);
        fail_msg("lsmfs daemon log %s holds \"%s\"", m->log_path, marker);
    }
}

/* ---- mounting ---- */

bool lsmfs_is_mounted(const struct lsmfs_mount *m)
{
    FILE *mounts = fopen("/proc/self/mounts", "r");
    if (mounts == NULL)
        return false;
    char line[8192];
    bool found = false;
    while (!found && fgets(line, sizeof(line), mounts) != NULL) {
        char *save = NULL;
        char *source = strtok_r(line, " ", &save);
        char *target = strtok_r(NULL, " ", &save);
        char *type = strtok_r(NULL, " ", &save);
        found = source != NULL && target != NULL && type != NULL &&
                strcmp(target, m->mountpoint) == 0 && strcmp(type, "fuse.lsmfs") == 0;
    }
    fclose(mounts);
    return found;
}

/* Reaps the daemon if it has exited; returns true and its status then. */
static bool daemon_exited(struct lsmfs_mount *m, int *status)
{
    pid_t r;
    while ((r = waitpid(m->daemon_pid, status, WNOHANG)) < 0 && errno == EINTR)
        ;
    return r == m->daemon_pid || (r < 0 && errno == ECHILD);
}

static void describe_status(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "status 0x%x", status);
}

void lsmfs_mount_start(struct lsmfs_mount *m)
{
    install_cleanup_once();
    const char *bin = getenv("LSMFS_BIN");
    if (bin == NULL || bin[0] == '\0')
        fail_msg("LSMFS_BIN is not set (ctest sets it to the lsmfs binary)");
    if (m->daemon_pid != 0)
        fail_msg("lsmfs_mount_start: %s already has a daemon", m->mountpoint);
    if (lsmfs_is_mounted(m))
        fail_msg("lsmfs_mount_start: %s is still mounted", m->mountpoint);

    m->daemons_started++;
    snprintf(m->log_path, sizeof(m->log_path), "%s/lsmfs-%d.log", m->scratch, m->daemons_started);
    char *argv[10];
    int argc = 0;
    argv[argc++] = (char *)bin;
    argv[argc++] = "-f";
    if (m->options != NULL && m->options[0] != '\0') {
        argv[argc++] = "-o";
        argv[argc++] = m->options;
    }
    /* A test run's options for every mount (tests/CMakeLists.txt runs some
     * tests again with -o io_uring). */
    char *run_options = getenv("LSMFS_TEST_MOUNT_OPTIONS");
    if (run_options != NULL && run_options[0] != '\0') {
        argv[argc++] = "-o";
        argv[argc++] = run_options;
    }
    argv[argc++] = m->datadir;
    argv[argc++] = m->mountpoint;
    argv[argc] = NULL;

    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int log_fd = open(m->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (log_fd < 0 || null_fd < 0)
            _exit(126);
        dup2(null_fd, STDIN_FILENO);
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        /* If the test program dies (even by SIGKILL), the daemon unmounts. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(125);
        close_range(3, ~0u, 0);
        execv(bin, argv);
        fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    m->daemon_pid = pid;
    live_mount_set(m, true);

    for (int waited = 0;; waited += 10) {
        if (lsmfs_is_mounted(m))
            return;
        int status;
        if (daemon_exited(m, &status)) {
            m->daemon_pid = 0;
            live_mount_set(m, false);
            char how[128];
            describe_status(status, how, sizeof(how));
            print_log(m);
            fail_msg("lsmfs daemon exited before mounting %s (%s)", m->mountpoint, how);
        }
        if (waited >= MOUNT_TIMEOUT_MS) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            m->daemon_pid = 0;
            live_mount_set(m, false);
            print_log(m);
            fail_msg("%s did not show up as a fuse.lsmfs mount within %d ms", m->mountpoint,
                     MOUNT_TIMEOUT_MS);
        }
        lsmfs_sleep_ms(10);
    }
}

/* Waits (DAEMON_EXIT_TIMEOUT_MS at most) for the daemon to exit; on a
 * timeout kills it. Returns true and its status if it exited by itself. */
static bool wait_daemon(struct lsmfs_mount *m, int *status)
{
    for (int waited = 0; waited < DAEMON_EXIT_TIMEOUT_MS; waited += 10) {
        if (daemon_exited(m, status))
            return true;
        lsmfs_sleep_ms(10);
    }
    kill(m->daemon_pid, SIGKILL);
    waitpid(m->daemon_pid, status, 0);
    return false;
}

void lsmfs_mount_stop(struct lsmfs_mount *m)
{
    if (m->daemon_pid == 0) {
        if (lsmfs_is_mounted(m))
            fail_msg("%s is mounted but has no daemon of ours", m->mountpoint);
        return;
    }
    char *argv[] = {"fusermount3", "-u", m->mountpoint, NULL};
    char output[1024] = "";
    bool unmounted = false;
    /* A daemon that died by itself leaves a dead mount, which fusermount3
     * removes as well; its status is reported below. */
    for (int waited = 0; !unmounted && waited <= BUSY_RETRY_MS; waited += 100) {
        unmounted = lsmfs_run_command(argv, output, sizeof(output)) == 0;
        if (!unmounted)
            lsmfs_sleep_ms(100);
    }
    bool busy = !unmounted;
    if (busy) {
        char *lazy_argv[] = {"fusermount3", "-u", "-z", m->mountpoint, NULL};
        lsmfs_run_command(lazy_argv, NULL, 0);
    }
    int status = 0;
    bool exited = wait_daemon(m, &status);
    m->daemon_pid = 0;
    live_mount_set(m, false);
    if (lsmfs_is_mounted(m)) {
        char *lazy_argv[] = {"fusermount3", "-u", "-z", m->mountpoint, NULL};
        lsmfs_run_command(lazy_argv, NULL, 0);
    }
    char how[128];
    describe_status(status, how, sizeof(how));
    if (busy) {
        print_log(m);
        fail_msg("fusermount3 -u %s kept failing (%s); unmounted lazily, daemon %s", m->mountpoint,
                 output, exited ? how : "killed after a timeout");
    }
    if (!exited) {
        print_log(m);
        fail_msg("lsmfs daemon did not exit within %d ms after unmounting %s",
                 DAEMON_EXIT_TIMEOUT_MS, m->mountpoint);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        print_log(m);
        fail_msg("lsmfs daemon of %s ended with %s", m->mountpoint, how);
    }
    check_log(m);
}

void lsmfs_mount_remount(struct lsmfs_mount *m)
{
    lsmfs_mount_stop(m);
    lsmfs_mount_start(m);
}

void lsmfs_mount_kill(struct lsmfs_mount *m)
{
    if (m->daemon_pid == 0)
        fail_msg("lsmfs_mount_kill: no daemon on %s", m->mountpoint);
    int status;
    if (daemon_exited(m, &status)) {
        m->daemon_pid = 0;
        live_mount_set(m, false);
        char *lazy_argv[] = {"fusermount3", "-u", "-z", m->mountpoint, NULL};
        lsmfs_run_command(lazy_argv, NULL, 0);
        char how[128];
        describe_status(status, how, sizeof(how));
        print_log(m);
        fail_msg("lsmfs daemon of %s had died before the kill (%s)", m->mountpoint, how);
    }
    kill(m->daemon_pid, SIGKILL);
    while (waitpid(m->daemon_pid, &status, 0) < 0 && errno == EINTR)
        ;
    m->daemon_pid = 0;
    char *lazy_argv[] = {"fusermount3", "-u", "-z", m->mountpoint, NULL};
    char output[1024] = "";
    int rc = lsmfs_run_command(lazy_argv, output, sizeof(output));
    live_mount_set(m, false);
    if (rc != 0 || lsmfs_is_mounted(m))
        fail_msg("fusermount3 -u -z %s after kill -9 failed: %s", m->mountpoint, output);
    check_log(m);
}

void lsmfs_mount_check_alive(struct lsmfs_mount *m)
{
    if (m->daemon_pid == 0) {
        lsmfs_mount_start(m);
        fail_msg("%s was not mounted (an earlier failure); mounted again", m->mountpoint);
    }
    int status;
    if (!daemon_exited(m, &status))
        return;
    m->daemon_pid = 0;
    live_mount_set(m, false);
    char *lazy_argv[] = {"fusermount3", "-u", "-z", m->mountpoint, NULL};
    lsmfs_run_command(lazy_argv, NULL, 0);
    char how[128];
    describe_status(status, how, sizeof(how));
    print_log(m);
    lsmfs_mount_start(m);
    fail_msg("lsmfs daemon of %s died during the test (%s); mounted again", m->mountpoint, how);
}

void lsmfs_mount_kill_and_remount(struct lsmfs_mount *m)
{
    lsmfs_mount_kill(m);
    lsmfs_mount_start(m);
}

struct lsmfs_mount *lsmfs_mount_create(const char *name, const char *options)
{
    struct lsmfs_mount *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    char *scratch = kv_test_tmpdir(name);
    /* /proc/self/mounts shows canonical paths. */
    m->scratch = realpath(scratch, NULL);
    assert_non_null(m->scratch);
    free(scratch);
    /* Other users (test_mount_users) must reach the mount point. */
    chmod(m->scratch, 0755);
    m->datadir = join_path(m->scratch, "data");
    m->mountpoint = join_path(m->scratch, "mnt");
    assert_int_equal(mkdir(m->mountpoint, 0755), 0);
    m->options = options != NULL ? xstrdup(options) : NULL;
    lsmfs_mount_start(m);
    return m;
}

void lsmfs_mount_destroy(struct lsmfs_mount *m)
{
    if (m == NULL)
        return;
    lsmfs_mount_stop(m); /* may fail the test: then the atexit handler is the backstop */
    char *scratch = m->scratch;
    free(m->datadir);
    free(m->mountpoint);
    free(m->options);
    free(m);
    kv_test_cleanup_dir(scratch);
}

const char *lsmfs_path(const struct lsmfs_mount *m, const char *fmt, ...)
{
    static char buffers[16][PATH_MAX];
    static int next;
    char *buf = buffers[next];
    next = (next + 1) % 16;
    int n = snprintf(buf, PATH_MAX, "%s/", m->mountpoint);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, PATH_MAX - (size_t)n, fmt, ap);
    va_end(ap);
    return buf;
}

char *lsmfs_mount_stats(const struct lsmfs_mount *m)
{
    const char *bin = getenv("LSMFS_BIN");
    assert_non_null(bin);
    size_t cap = 1 << 20;
    char *out = malloc(cap);
    assert_non_null(out);
    char *argv[] = {(char *)bin, "stats", m->mountpoint, NULL};
    int rc = lsmfs_run_command(argv, out, cap);
    if (rc != 0) {
        fprintf(stderr, "%s\n", out);
        free(out);
        fail_msg("lsmfs stats %s failed (status %d)", m->mountpoint, rc);
    }
    return out;
}

uint64_t lsmfs_stats_number(const char *text, const char *label)
{
    const char *at = strstr(text, label);
    if (at == NULL)
        fail_msg("no \"%s\" in lsmfs stats output:\n%s", label, text);
    return strtoull(at + strlen(label), NULL, 10);
}

/* ---- descriptors ---- */

static bool fd_baseline[1024];

void lsmfs_fd_baseline_save(void)
{
    memset(fd_baseline, 0, sizeof(fd_baseline));
    for (int fd = 0; fd < 1024; fd++)
        fd_baseline[fd] = fcntl(fd, F_GETFD) >= 0;
}

int lsmfs_fd_close_leaked(void)
{
    int closed = 0;
    for (int fd = 3; fd < 1024; fd++) {
        if (!fd_baseline[fd] && fcntl(fd, F_GETFD) >= 0) {
            close(fd);
            closed++;
        }
    }
    return closed;
}

/* ---- tree manifest ---- */

struct text {
    char *data;
    size_t len, cap;
};

static void text_append(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_append(struct text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = t->cap - t->len;
        int n = vsnprintf(t->data + t->len, room, fmt, ap);
        va_end(ap);
        assert_true(n >= 0);
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        t->cap = t->cap * 2 + (size_t)n + 1;
        t->data = realloc(t->data, t->cap);
        assert_non_null(t->data);
    }
}

static uint64_t hash_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW);
    if (fd < 0)
        fail_msg("manifest: open %s: %s", path, strerror(errno));
    uint64_t hash = LSMFS_FNV_SEED;
    static char buf[1 << 16];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        hash = lsmfs_fnv1a(hash, buf, (size_t)n);
    int error = errno;
    close(fd);
    if (n < 0)
        fail_msg("manifest: read %s: %s", path, strerror(error));
    return hash;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void append_xattrs(struct text *t, const char *path)
{
    ssize_t size = llistxattr(path, NULL, 0);
    if (size < 0)
        fail_msg("manifest: llistxattr %s: %s", path, strerror(errno));
    if (size == 0)
        return;
    char *list = malloc((size_t)size);
    assert_non_null(list);
    size = llistxattr(path, list, (size_t)size);
    if (size < 0)
        fail_msg("manifest: llistxattr %s: %s", path, strerror(errno));
    char *names[256];
    int count = 0;
    for (char *name = list; name < list + size && count < 256; name += strlen(name) + 1)
        names[count++] = name;
    qsort(names, (size_t)count, sizeof(names[0]), compare_strings);
    for (int i = 0; i < count; i++) {
        char value[65536];
        ssize_t len = lgetxattr(path, names[i], value, sizeof(value));
        if (len < 0)
            fail_msg("manifest: lgetxattr %s %s: %s", path, names[i], strerror(errno));
        text_append(t, " xattr:%s=%zd:%016llx", names[i], len,
                    (unsigned long long)lsmfs_fnv1a(LSMFS_FNV_SEED, value, (size_t)len));
    }
    free(list);
}

static void manifest_entry(struct text *t, const char *root, const char *rel)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s%s%s", root, rel[0] ? "/" : "", rel);
    struct stat st;
    if (lstat(path, &st) != 0)
        fail_msg("manifest: lstat %s: %s", path, strerror(errno));
    char type = S_ISREG(st.st_mode)    ? 'f'
                : S_ISDIR(st.st_mode)  ? 'd'
                : S_ISLNK(st.st_mode)  ? 'l'
                : S_ISFIFO(st.st_mode) ? 'p'
                : S_ISSOCK(st.st_mode) ? 's'
                : S_ISCHR(st.st_mode)  ? 'c'
                                       : 'b';
    text_append(t, "%s %c mode=%04o uid=%u gid=%u nlink=%lu size=%lld ino=%llu rdev=%u:%u",
                rel[0] ? rel : ".", type, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
                (unsigned)st.st_gid, (unsigned long)st.st_nlink, (long long)st.st_size,
                (unsigned long long)st.st_ino, major(st.st_rdev), minor(st.st_rdev));
    text_append(t, " mtime=%lld.%09ld ctime=%lld.%09ld", (long long)st.st_mtim.tv_sec,
                st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX + 1];
        ssize_t n = readlink(path, target, PATH_MAX);
        if (n < 0)
            fail_msg("manifest: readlink %s: %s", path, strerror(errno));
        target[n] = '\0';
        text_append(t, " target=%s", target);
    } else if (S_ISREG(st.st_mode)) {
        text_append(t, " data=%016llx", (unsigned long long)hash_file(path));
    }
    append_xattrs(t, path);
    text_append(t, "\n");
    if (!S_ISDIR(st.st_mode))
        return;
    struct dirent **entries;
    int n = scandir(path, &entries, NULL, alphasort);
    if (n < 0)
        fail_msg("manifest: scandir %s: %s", path, strerror(errno));
    for (int i = 0; i < n; i++) {
        const char *name = entries[i]->d_name;
        if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
            char child[PATH_MAX];
            snprintf(child, sizeof(child), "%s%s%s", rel, rel[0] ? "/" : "", name);
            manifest_entry(t, root, child);
        }
        free(entries[i]);
    }
    free(entries);
}

char *lsmfs_tree_manifest(const char *root)
{
    struct text t = {.data = malloc(4096), .len = 0, .cap = 4096};
    assert_non_null(t.data);
    t.data[0] = '\0';
    manifest_entry(&t, root, "");
    return t.data;
}

void lsmfs_expect_same_manifest(char *before, char *after, const char *what)
{
    if (strcmp(before, after) == 0) {
        free(before);
        free(after);
        return;
    }
    /* The first differing line of each, copied out before freeing. */
    char first[2][1024];
    const char *a = before, *b = after;
    for (;;) {
        const char *a_end = strchrnul(a, '\n'), *b_end = strchrnul(b, '\n');
        if (*a == '\0' || *b == '\0' || a_end - a != b_end - b ||
            memcmp(a, b, (size_t)(a_end - a)) != 0) {
            snprintf(first[0], sizeof(first[0]), "%.*s", (int)(a_end - a), a);
            snprintf(first[1], sizeof(first[1]), "%.*s", (int)(b_end - b), b);
            break;
        }
        a = a_end + 1;
        b = b_end + 1;
    }
    free(before);
    free(after);
    fail_msg("%s: trees differ\n  before: %s\n  after:  %s", what,
             first[0][0] ? first[0] : "(nothing more)", first[1][0] ? first[1] : "(nothing more)");
}

/* ---- children ---- */

void lsmfs_child_fail(struct lsmfs_child *child, const char *file, int line, const char *fmt, ...)
{
    child->failures++;
    if (child->used + 2 >= sizeof(child->messages))
        return;
    const char *base = strrchr(file, '/');
    int n = snprintf(child->messages + child->used, sizeof(child->messages) - child->used,
                     "  %s:%d: ", base != NULL ? base + 1 : file, line);
    if (n > 0)
        child->used += (size_t)n;
    if (child->used + 2 >= sizeof(child->messages)) {
        child->used = sizeof(child->messages) - 1;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(child->messages + child->used, sizeof(child->messages) - child->used - 1, fmt,
                  ap);
    va_end(ap);
    if (n > 0)
        child->used += (size_t)n;
    if (child->used > sizeof(child->messages) - 2)
        child->used = sizeof(child->messages) - 2;
    child->messages[child->used++] = '\n';
    child->messages[child->used] = '\0';
}

static void become(struct lsmfs_child *child, const struct lsmfs_creds *creds)
{
    if (setgroups((size_t)creds->ngroups, creds->groups) != 0)
        lsmfs_child_fail(child, __FILE__, __LINE__, "setgroups: %s", strerror(errno));
    else if (setgid(creds->gid) != 0)
        lsmfs_child_fail(child, __FILE__, __LINE__, "setgid(%u): %s", (unsigned)creds->gid,
                         strerror(errno));
    else if (setuid(creds->uid) != 0)
        lsmfs_child_fail(child, __FILE__, __LINE__, "setuid(%u): %s", (unsigned)creds->uid,
                         strerror(errno));
}

pid_t lsmfs_start_child(const struct lsmfs_creds *creds, lsmfs_child_fn fn, void *arg,
                        int *report_fd)
{
    install_cleanup_once();
    int pipe_fds[2];
    assert_int_equal(pipe2(pipe_fds, O_CLOEXEC), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pipe_fds[0]);
        static struct lsmfs_child child;
        memset(&child, 0, sizeof(child));
        if (creds != NULL)
            become(&child, creds);
        if (child.failures == 0)
            fn(&child, arg);
        size_t off = 0;
        while (off < child.used) {
            ssize_t n = write(pipe_fds[1], child.messages + off, child.used - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        _exit(child.failures == 0 ? 0 : 1);
    }
    close(pipe_fds[1]);
    *report_fd = pipe_fds[0];
    return pid;
}

void lsmfs_wait_child(pid_t pid, int report_fd)
{
    char messages[4096];
    size_t used = 0;
    for (;;) {
        ssize_t n = read(report_fd, messages + used, sizeof(messages) - 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        used += (size_t)n;
        if (used == sizeof(messages) - 1)
            break;
    }
    messages[used] = '\0';
    close(report_fd);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            fail_msg("waitpid(%d): %s", (int)pid, strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return;
    char how[128];
    describe_status(status, how, sizeof(how));
    fail_msg("child process failed (%s):\n%s", how, messages);
}

void lsmfs_run_child(const struct lsmfs_creds *creds, lsmfs_child_fn fn, void *arg)
{
    int report_fd;
    pid_t pid = lsmfs_start_child(creds, fn, arg, &report_fd);
    lsmfs_wait_child(pid, report_fd);
}

int lsmfs_mount_strict_limit(const struct lsmfs_mount *m)
{
    char bdi[64];
    int rc = bdi_of_mount("/proc/self/mountinfo", m->mountpoint, bdi, sizeof(bdi));
    if (rc != 0)
        fail_msg("no mountinfo entry for %s: %s", m->mountpoint, strerror(-rc));
    return bdi_strict_limit("/sys/class/bdi", bdi);
}
