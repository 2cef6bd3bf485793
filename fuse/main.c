/*
 * main.c — the lsmfs command: mount a data directory, or talk to a mounted
 * one.
 *
 *   lsmfs [options] DATADIR MOUNTPOINT    mount (DATADIR formatted if empty)
 *   lsmfs stats MOUNTPOINT                live statistics of a mount
 *
 * Unless -f is given the daemon goes to the background, but only after the
 * data directory is open and the mount is made, so every error (a foreign
 * directory, a second daemon, a bad option) reaches the terminal and the
 * exit status.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bdi.h"
#include "dirty_limit.h"
#include "fsck.h"
#include "fuse_io.h"
#include "fuse_poll.h"
#include "fuse_uring.h"
#include "write_order.h"
#include "lowlevel.h"
#include "schema.h"

#define LSMFS_VERSION "0.1.0"

struct config {
    const char *datadir, *mountpoint;
    struct fs_options fs;
    struct lsmfs_session session;
    bool foreground, single_thread, debug;
    enum dirty_limit_mode dirty_limit; /* the kernel's per-mount cap (dirty_limit.h) */
    bool io_uring; /* FUSE over io_uring (fuse_uring.h) */
    unsigned int busy_poll_us; /* fuse_poll.h */
    unsigned int max_threads;
    char bad_option[256]; /* copied: fuse_opt_parse frees its arguments */
};

enum option_key {
    KEY_HELP,
    KEY_VERSION,
    KEY_FOREGROUND,
    KEY_SINGLE,
    KEY_DEBUG,
    KEY_BLOCK_SIZE,
    KEY_CACHE_SIZE,
    KEY_WRITE_BUFFER_SIZE,
    KEY_SYNC_WRITES,
    KEY_SYNC,
    KEY_WRITEBACK,
    KEY_NO_WRITEBACK,
    KEY_ENTRY_TIMEOUT,
    KEY_ATTR_TIMEOUT,
    KEY_NEGATIVE_TIMEOUT,
    KEY_MAX_THREADS,
    KEY_BUSY_POLL,
    KEY_RO,
    KEY_SYSTEM_DIRTY_LIMIT,
    KEY_DIRTY_LIMIT,
    KEY_BLOB_FILES,
    KEY_NO_BLOB_FILES,
    KEY_IO_URING,
    KEY_NO_IO_URING,
};

static const struct fuse_opt option_spec[] = {
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_KEY("-f", KEY_FOREGROUND),
    FUSE_OPT_KEY("-s", KEY_SINGLE),
    FUSE_OPT_KEY("-d", KEY_DEBUG),
    FUSE_OPT_KEY("debug", KEY_DEBUG),
    FUSE_OPT_KEY("block_size=", KEY_BLOCK_SIZE),
    FUSE_OPT_KEY("cache_size=", KEY_CACHE_SIZE),
    FUSE_OPT_KEY("write_buffer_size=", KEY_WRITE_BUFFER_SIZE),
    FUSE_OPT_KEY("sync_writes", KEY_SYNC_WRITES),
    FUSE_OPT_KEY("sync", KEY_SYNC),
    FUSE_OPT_KEY("writeback_cache", KEY_WRITEBACK),
    FUSE_OPT_KEY("no_writeback_cache", KEY_NO_WRITEBACK),
    FUSE_OPT_KEY("entry_timeout=", KEY_ENTRY_TIMEOUT),
    FUSE_OPT_KEY("attr_timeout=", KEY_ATTR_TIMEOUT),
    FUSE_OPT_KEY("negative_timeout=", KEY_NEGATIVE_TIMEOUT),
    FUSE_OPT_KEY("max_threads=", KEY_MAX_THREADS),
    FUSE_OPT_KEY("busy_poll=", KEY_BUSY_POLL),
    FUSE_OPT_KEY("ro", KEY_RO),
    FUSE_OPT_KEY("system_dirty_limit", KEY_SYSTEM_DIRTY_LIMIT),
    FUSE_OPT_KEY("dirty_limit=", KEY_DIRTY_LIMIT),
    FUSE_OPT_KEY("blob_files", KEY_BLOB_FILES),
    FUSE_OPT_KEY("no_blob_files", KEY_NO_BLOB_FILES),
    FUSE_OPT_KEY("io_uring", KEY_IO_URING),
    FUSE_OPT_KEY("no_io_uring", KEY_NO_IO_URING),
    FUSE_OPT_END,
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: lsmfs [options] DATADIR MOUNTPOINT\n"
            "       lsmfs stats MOUNTPOINT\n"
            "       lsmfs fsck [--repair] [--progress] DATADIR\n"
            "\n"
            "Mounts the lsmfs file system stored in DATADIR on MOUNTPOINT. A missing or\n"
            "empty DATADIR is formatted. Unmount with `fusermount3 -u MOUNTPOINT` or\n"
            "`umount MOUNTPOINT`; everything is persisted.\n"
            "\n"
            "options:\n"
            "  -f                     stay in the foreground\n"
            "  -d, -o debug           print every FUSE request (implies -f)\n"
            "  -s                     single-threaded\n"
            "  -h, --help             this text\n"
            "  -V, --version          version and on-disk format version\n"
            "  -o block_size=SIZE     data block size when formatting (4K; 512..1M, a power of 2)\n"
            "  -o cache_size=SIZE     block cache (64M)\n"
            "  -o write_buffer_size=SIZE  memtable size (64M)\n"
            "  -o sync_writes         make every change durable before answering (also -o sync)\n"
            "  -o no_writeback_cache  let writes through to the daemon one by one\n"
            "  -o entry_timeout=SECS, attr_timeout=SECS, negative_timeout=SECS\n"
            "                         kernel caching of names and attributes (60, 60, 10)\n"
            "  -o max_threads=N       FUSE worker threads (10)\n"
            "  -o busy_poll=USECS     after each request, poll /dev/fuse this long for the\n"
            "                         next before sleeping (100; 0 turns it off; at most\n"
            "                         100000): saves a wake-up per request; see README\n"
            "  -o dirty_limit=auto|kernel|system  (root) the kernel's cap on this mount's\n"
            "                         dirty pages (1%% of the system's): lifted while the\n"
            "                         write-back is scattered small writes (auto, the\n"
            "                         default), always kept (kernel), or always lifted, the\n"
            "                         vm.dirty_* limits then applying as on ext4 (system,\n"
            "                         also -o system_dirty_limit); see README\n"
            "  -o no_blob_files       write the blocks of large writes to the WAL and then a\n"
            "                         table, instead of once, to blob files (the default)\n"
            "  -o io_uring            take requests through FUSE over io_uring (kernel 6.14+),\n"
            "                         per-CPU queues: fastest when callers stay on their\n"
            "                         CPUs; as root turns the fuse module's enable_uring\n"
            "                         parameter on (for every FUSE mount); see README\n"
            "  -o no_io_uring         serve every request through /dev/fuse (the default)\n"
            "  -o ro                  read-only\n"
            "  -o allow_other         let other users in (with the kernel checking permissions)\n"
            "  other -o options are FUSE's mount options (see mount.fuse3(8)).\n"
            "SIZE takes K, M or G suffixes (powers of 1024).\n");
}

/* "64M" -> bytes; false if malformed. */
static bool parse_size(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || end == text || text[0] == '-')
        return false;
    int shift = 0;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    default:
        break;
    }
    if (*end == 'i' && shift > 0)
        end++;
    if ((*end == 'b' || *end == 'B') && shift > 0)
        end++;
    if (*end != '\0' || value > (UINT64_MAX >> shift))
        return false;
    *out = (uint64_t)value << shift;
    return true;
}

static bool parse_seconds(const char *text, double *out)
{
    char *end;
    double value = strtod(text, &end);
    if (end == text || *end != '\0' || !(value >= 0) || value > 1e9)
        return false;
    *out = value;
    return true;
}

static int process_option(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    struct config *c = data;
    const char *value = strchr(arg, '=');
    value = value != NULL ? value + 1 : "";
    uint64_t size;
    switch (key) {
    case FUSE_OPT_KEY_NONOPT:
        if (c->datadir == NULL)
            c->datadir = arg;
        else if (c->mountpoint == NULL)
            c->mountpoint = arg;
        else {
            fprintf(stderr, "lsmfs: unexpected argument '%s'\n", arg);
            return -1;
        }
        return 0;
    case KEY_HELP:
        usage(stdout);
        exit(0);
    case KEY_VERSION:
        printf("lsmfs %s (on-disk format %d, kv %s, libfuse %s)\n", LSMFS_VERSION,
               FS_FORMAT_VERSION, KV_VERSION_STRING, fuse_pkgversion());
        exit(0);
    case KEY_FOREGROUND:
        c->foreground = true;
        return 0;
    case KEY_SINGLE:
        c->single_thread = true;
        return 0;
    case KEY_DEBUG:
        c->debug = c->foreground = true;
        return 1; /* FUSE prints the requests */
    case KEY_BLOCK_SIZE:
    case KEY_CACHE_SIZE:
    case KEY_WRITE_BUFFER_SIZE:
        if (!parse_size(value, &size) || size == 0) {
            snprintf(c->bad_option, sizeof(c->bad_option), "%s", arg);
            return -1;
        }
        if (key == KEY_BLOCK_SIZE) {
            if (size < 512 || size > (1u << 20) || (size & (size - 1)) != 0) {
                snprintf(c->bad_option, sizeof(c->bad_option), "%s", arg);
                return -1;
            }
            c->fs.block_size = (uint32_t)size;
        } else if (key == KEY_CACHE_SIZE) {
            c->fs.cache_size = (size_t)size;
        } else {
            if (size < (64u << 10)) {
                snprintf(c->bad_option, sizeof(c->bad_option), "%s", arg);
                return -1;
            }
            c->fs.write_buffer_size = (size_t)size;
        }
        return 0;
    case KEY_SYNC_WRITES:
        c->fs.sync_writes = true;
        return 0;
    case KEY_SYNC:
        c->fs.sync_writes = true;
        return 1;
    case KEY_WRITEBACK:
        c->session.writeback_cache = true;
        return 0;
    case KEY_NO_WRITEBACK:
        c->session.writeback_cache = false;
        return 0;
    case KEY_ENTRY_TIMEOUT:
    case KEY_ATTR_TIMEOUT:
    case KEY_NEGATIVE_TIMEOUT: {
        double *target = key == KEY_ENTRY_TIMEOUT  ? &c->session.entry_timeout
                         : key == KEY_ATTR_TIMEOUT ? &c->session.attr_timeout
                                                   : &c->session.negative_timeout;
        if (!parse_seconds(value, target)) {
            snprintf(c->bad_option, sizeof(c->bad_option), "%s", arg);
            return -1;
        }
        return 0;
    }
    case KEY_MAX_THREADS:
        if (!parse_size(value, &size) || size == 0 || size > 1000) {
            snprintf(c->bad_option, sizeof(c->bad_option), "%s", arg);
            return -1;
        }
        c->max_threads = (unsigned int)size;
        return 0;
    case KEY_BUSY_POLL: {
        char *end = NULL;
        errno = 0;
        unsigned long us = strtoul(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0' || value[0] == '-' ||
            us > FUSE_POLL_MAX_US) {
            snprintf(c->bad_option, sizeof(c->bad_option), "%s", arg);
            return -1;
        }
        c->busy_poll_us = (unsigned int)us;
        return 0;
    }
    case KEY_RO:
        c->fs.read_only = true;
        return 1;
    case KEY_SYSTEM_DIRTY_LIMIT:
        c->dirty_limit = DIRTY_LIMIT_SYSTEM;
        return 0;
    case KEY_DIRTY_LIMIT:
        if (strcmp(value, "auto") == 0)
            c->dirty_limit = DIRTY_LIMIT_AUTO;
        else if (strcmp(value, "kernel") == 0)
            c->dirty_limit = DIRTY_LIMIT_KERNEL;
        else if (strcmp(value, "system") == 0)
            c->dirty_limit = DIRTY_LIMIT_SYSTEM;
        else {
            snprintf(c->bad_option, sizeof(c->bad_option), "%s", arg);
            return -1;
        }
        return 0;
    case KEY_BLOB_FILES:
    case KEY_NO_BLOB_FILES:
        c->fs.blob_files = key == KEY_BLOB_FILES;
        return 0;
    case KEY_IO_URING:
    case KEY_NO_IO_URING:
        c->io_uring = key == KEY_IO_URING;
        return 0;
    default:
        return 1; /* FUSE's own options */
    }
}

/* ---- lsmfs stats ---- */

static int stats_command(const char *mountpoint)
{
    int fd = open(mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "lsmfs stats: %s: %s\n", mountpoint, strerror(errno));
        return 1;
    }
    struct lsmfs_stats_request *request = calloc(1, sizeof(*request));
    if (request == NULL)
        return 1;
    unsigned long long offset = 0;
    for (;;) {
        memset(request, 0, sizeof(*request));
        request->offset = offset;
        if (ioctl(fd, LSMFS_IOC_STATS, request) != 0) {
            int e = errno;
            fprintf(stderr, "lsmfs stats: %s: %s\n", mountpoint,
                    e == ENOTTY || e == EINVAL || e == ENOSYS ? "not an lsmfs mount" : strerror(e));
            free(request);
            close(fd);
            return 1;
        }
        size_t n = strnlen(request->text, sizeof(request->text));
        fwrite(request->text, 1, n, stdout);
        offset += n;
        if (n == 0 || offset >= request->total)
            break;
    }
    free(request);
    close(fd);
    return 0;
}

/* ---- lsmfs fsck ---- */

static int fsck_command(int argc, char *argv[])
{
    struct fsck_options options = {.out = stdout, .progress = isatty(STDERR_FILENO)};
    const char *datadir = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--repair") == 0 || strcmp(argv[i], "-y") == 0)
            options.repair = true;
        else if (strcmp(argv[i], "--progress") == 0)
            options.progress = true;
        else if (strcmp(argv[i], "--no-progress") == 0)
            options.progress = false;
        else if (argv[i][0] != '-' && datadir == NULL)
            datadir = argv[i];
        else {
            fprintf(stderr, "usage: lsmfs fsck [--repair] [--progress] DATADIR\n");
            return FSCK_FAILED;
        }
    }
    if (datadir == NULL) {
        fprintf(stderr, "usage: lsmfs fsck [--repair] [--progress] DATADIR\n");
        return FSCK_FAILED;
    }
    struct fsck_report report;
    return lsmfs_fsck(datadir, &options, &report);
}

/* ---- mounting ---- */

/* The mount point that /proc/self/mounts shows for source `datadir`. */
static bool find_mount_of(const char *datadir, char *mountpoint, size_t size)
{
    FILE *mounts = fopen("/proc/self/mounts", "r");
    if (mounts == NULL)
        return false;
    char source[PATH_MAX], target[PATH_MAX], type[64];
    bool found = false;
    while (fscanf(mounts, "%4095s %4095s %63s %*[^\n]", source, target, type) == 3) {
        if (strcmp(type, "fuse.lsmfs") == 0 && strcmp(source, datadir) == 0) {
            snprintf(mountpoint, size, "%s", target);
            found = true;
        }
    }
    fclose(mounts);
    return found;
}

/* Opens the file system; on a LOCK held by a daemon that is just finishing
 * an unmount (no mount left), waits for it a few seconds. */
static int open_fs(struct config *c, struct fs **fs, char *err, size_t errlen)
{
    for (int attempt = 0;; attempt++) {
        c->fs.kernel_write_times = c->session.writeback_cache;
        int rc = fs_open(c->datadir, &c->fs, fs, err, errlen);
        if (rc != -EBUSY)
            return rc;
        char where[PATH_MAX];
        if (find_mount_of(c->datadir, where, sizeof(where))) {
            snprintf(err, errlen, "%.400s is in use: already mounted at %.400s", c->datadir, where);
            return rc;
        }
        if (attempt >= 50) {
            snprintf(err, errlen, "%s is in use by another process (its LOCK is held)", c->datadir);
            return rc;
        }
        usleep(100 * 1000);
    }
}

static char *absolute_path(const char *path)
{
    char *real = realpath(path, NULL);
    if (real != NULL)
        return real;
    if (path[0] == '/')
        return strdup(path);
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return NULL;
    size_t n = strlen(cwd) + strlen(path) + 2;
    char *joined = malloc(n);
    if (joined != NULL)
        snprintf(joined, n, "%s/%s", cwd, path);
    return joined;
}

/* Adds ",fsname=DATADIR" escaped for FUSE's option parser. */
static int add_fsname(struct fuse_args *args, const char *datadir)
{
    size_t n = strlen(datadir);
    static const char prefix[] = "-ofsname=", suffix[] = ",subtype=lsmfs,default_permissions";
    char *opt = malloc(sizeof(prefix) + 2 * n + sizeof(suffix));
    if (opt == NULL)
        return -1;
    char *p = opt + sprintf(opt, "%s", prefix);
    for (const char *s = datadir; *s; s++) {
        if (*s == ',' || *s == '\\')
            *p++ = '\\';
        *p++ = *s;
    }
    strcpy(p, suffix);
    int rc = fuse_opt_add_arg(args, opt);
    free(opt);
    return rc;
}

/* Tells the waiting parent how it went: "" for success, else a message. */
static void report(int fd, const char *message)
{
    if (fd < 0) {
        if (message[0] != '\0')
            fprintf(stderr, "lsmfs: %s\n", message);
        return;
    }
    ssize_t ignored = write(fd, message, strlen(message) + 1);
    (void)ignored;
    close(fd);
}

/* In the parent: waits for the child's report, prints it, returns the
 * exit status. */
static int wait_for_child(int fd)
{
    char message[1024];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(message) - 1 &&
           (n = read(fd, message + len, sizeof(message) - 1 - len)) > 0)
        len += (size_t)n;
    message[len] = '\0';
    if (len == 0) {
        fprintf(stderr, "lsmfs: the daemon exited before mounting\n");
        return 1;
    }
    if (message[0] != '\0') {
        fprintf(stderr, "lsmfs: %s\n", message);
        return 1;
    }
    return 0;
}

/* With -o io_uring, turns the kernel's FUSE-over-io_uring transport on
 * before mounting (its INIT offers it then). Failing is not fatal: the
 * mount works through /dev/fuse, and it is said. */
static void enable_kernel_uring(const struct config *c)
{
    if (!c->io_uring || fuse_uring_kernel_enabled() == 1)
        return;
    int rc = fuse_uring_enable_kernel();
    if (rc != 0)
        fprintf(stderr, "lsmfs: warning: cannot turn on FUSE over io_uring (%s): %s\n",
                "/sys/module/fuse/parameters/enable_uring", strerror(-rc));
}

/* Hands the new mount's dirty-page cap to dirty_limit.h. Only root can
 * change it; failing is not fatal (the mount works, buffered writes keep
 * the kernel's cap) and is said when the cap was asked to be lifted:
 * -o dirty_limit=auto, the default, stays quiet for other users. */
static void manage_dirty_limit(const struct config *c)
{
    char bdi[64];
    int rc = bdi_of_mount("/proc/self/mountinfo", c->mountpoint, bdi, sizeof(bdi));
    if (rc == 0)
        rc = dirty_limit_start(c->dirty_limit, "/sys/class/bdi", bdi);
    bool quiet = c->dirty_limit == DIRTY_LIMIT_KERNEL ||
                 (c->dirty_limit == DIRTY_LIMIT_AUTO && (rc == -EACCES || rc == -EPERM));
    if (rc != 0 && !quiet)
        fprintf(stderr, "lsmfs: warning: kept the kernel's strict dirty limit on %s: %s\n",
                c->mountpoint, strerror(-rc));
}

/* Opens the data directory, mounts, serves until unmounted, closes.
 * `report_fd` (or -1 in the foreground) tells the waiting parent how the
 * mount went. Returns the exit status. */
static int serve(struct config *c, struct fuse_session *se, int report_fd)
{
    char err[1024] = "";
    struct fs *fs = NULL;
    int rc = open_fs(c, &fs, err, sizeof(err));
    if (rc != 0) {
        report(report_fd, err[0] ? err : strerror(-rc));
        return 1;
    }
    c->session.fs = fs;
    /* The queue threads serve a multi-threaded loop only: -s means one. */
    enable_kernel_uring(c);
    fuse_uring_configure(se, c->io_uring && !c->single_thread, c->session.max_write);
    if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, c->mountpoint) != 0) {
        fuse_uring_stop();
        fs_close(fs);
        report(report_fd, "cannot mount (see the message above)");
        return 1;
    }
    manage_dirty_limit(c);
    /* Before the loop reads INIT; on the descriptor the mount opened,
     * which the session keeps owning (fuse_io.h). */
    rc = fuse_io_install(se, c->debug);
    /* With io_uring the requests come through the rings, and the reader of
     * /dev/fuse sees only FORGETs and interrupts: no polling there. */
    if (rc == 0)
        rc = fuse_poll_configure(fuse_session_fd(se),
                                 c->io_uring && !c->single_thread ? 0 : c->busy_poll_us,
                                 !c->single_thread);
    if (rc != 0) {
        fuse_session_unmount(se);
        fuse_uring_stop();
        fuse_remove_signal_handlers(se);
        fs_close(fs);
        report(report_fd, strerror(-rc));
        return 1;
    }
    if (report_fd >= 0) {
        int null_fd = open("/dev/null", O_RDWR);
        if (null_fd >= 0) {
            dup2(null_fd, STDIN_FILENO);
            dup2(null_fd, STDOUT_FILENO);
            dup2(null_fd, STDERR_FILENO);
            if (null_fd > STDERR_FILENO)
                close(null_fd);
        }
        if (chdir("/") != 0)
            rc = 0;
    }
    report(report_fd, "");

    if (c->single_thread) {
        write_order_set_max_grace_waiters(0); /* the one thread must never wait */
        rc = fuse_session_loop(se);
    } else {
        /* Keep workers free to read the writes others wait for. */
        write_order_set_max_grace_waiters(c->max_threads > 2 ? (int)c->max_threads / 2 : 0);
        struct fuse_loop_config *loop = fuse_loop_cfg_create();
        fuse_loop_cfg_set_max_threads(loop, c->max_threads);
        fuse_loop_cfg_set_idle_threads(loop, c->max_threads / 2 > 0 ? c->max_threads / 2 : 1);
        rc = fuse_session_loop_mt(se, loop);
        fuse_loop_cfg_destroy(loop);
    }
    fuse_session_unmount(se);
    fuse_uring_stop(); /* the unmount ended the connection, and so the threads */
    fuse_poll_stop();
    dirty_limit_stop();
    fuse_remove_signal_handlers(se);
    int close_rc = fs_close(fs);
    return rc != 0 || close_rc != 0 ? 1 : 0;
}

/* Checks the arguments, then mounts in the foreground or in a background
 * child. Every exit path frees what it took. */
static int mount_command(struct config *c, struct fuse_args *args)
{
    if (c->datadir == NULL || c->mountpoint == NULL) {
        fprintf(stderr, "lsmfs: need DATADIR and MOUNTPOINT\n");
        usage(stderr);
        return 2;
    }
    int status = 1;
    struct fuse_session *se = NULL;
    char *datadir = absolute_path(c->datadir);
    char *mountpoint = realpath(c->mountpoint, NULL);
    struct stat st;
    if (mountpoint == NULL || stat(mountpoint, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "lsmfs: mount point %s: %s\n", c->mountpoint,
                mountpoint == NULL ? strerror(errno) : "not a directory");
        goto out;
    }
    if (datadir == NULL || add_fsname(args, datadir) != 0)
        goto out;
    c->datadir = datadir;
    c->mountpoint = mountpoint;
    size_t n = strlen(datadir);
    if (strncmp(mountpoint, datadir, n) == 0 && (mountpoint[n] == '/' || mountpoint[n] == '\0')) {
        fprintf(stderr, "lsmfs: the mount point must not be inside the data directory\n");
        goto out;
    }
    /* FUSE's options are checked before anything touches DATADIR. */
    se =
        fuse_session_new(args, lsmfs_lowlevel_ops(), sizeof(struct fuse_lowlevel_ops), &c->session);
    if (se == NULL) {
        fprintf(stderr, "lsmfs: bad FUSE options (see lsmfs --help)\n");
        status = 2;
        goto out;
    }
    if (c->foreground) {
        status = serve(c, se, -1);
        goto out;
    }
    /* Go to the background before opening DATADIR (kv's threads do not
     * survive a fork); the parent waits for the outcome. */
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) {
        perror("lsmfs: pipe");
        goto out;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("lsmfs: fork");
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        goto out;
    }
    if (pid > 0) {
        close(pipe_fds[1]);
        status = wait_for_child(pipe_fds[0]);
        close(pipe_fds[0]);
        goto out;
    }
    close(pipe_fds[0]);
    setsid();
    status = serve(c, se, pipe_fds[1]);
out:
    if (se != NULL)
        fuse_session_destroy(se);
    free(datadir);
    free(mountpoint);
    return status;
}

int main(int argc, char *argv[])
{
    if (argc >= 2 && strcmp(argv[1], "stats") == 0) {
        if (argc != 3) {
            fprintf(stderr, "usage: lsmfs stats MOUNTPOINT\n");
            return 2;
        }
        return stats_command(argv[2]);
    }
    if (argc >= 2 && strcmp(argv[1], "fsck") == 0)
        return fsck_command(argc, argv);

    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct config c;
    memset(&c, 0, sizeof(c));
    fs_options_init(&c.fs);
    c.session.entry_timeout = 60;
    c.session.attr_timeout = 60;
    c.session.negative_timeout = 10;
    c.session.writeback_cache = true;
    c.session.max_write = 1u << 20;
    c.max_threads = 10;
    c.busy_poll_us = FUSE_POLL_DEFAULT_US;
    int status;
    if (fuse_opt_parse(&args, &c, option_spec, process_option) != 0) {
        if (c.bad_option[0] != '\0')
            fprintf(stderr, "lsmfs: bad option value '%s' (see lsmfs --help)\n", c.bad_option);
        status = 2;
    } else {
        status = mount_command(&c, &args);
    }
    fuse_opt_free_args(&args);
    return status;
}
