/*
 * bench_meta.c — the metadata workload of scripts/bench: creates, stats,
 * lists, renames and deletes N empty files in a tree of directories under a
 * directory, calling the system calls directly in tight loops, and prints
 * the rate of each phase.
 *
 *   bench_meta [--files=N] [--per-dir=M] [--drop-caches] DIR
 *
 * The tree is DIR/bench-meta/mMMM/dDDD/fNNNNNNNN: M files per leaf directory
 * (default 100), 100 leaf directories per middle directory. Phases, in order:
 *
 *   mkdir    mkdir of every middle and leaf directory
 *   create   open(O_CREAT | O_EXCL | O_WRONLY) + close of each file
 *   stat     stat of each file by path; checks it is an empty regular file
 *   readdir  opendir + readdir to the end + closedir of each leaf directory;
 *            counts the names read (the rate is names per second) and checks
 *            that each directory lists exactly its files
 *   rename   rename of each file to a new name in the same directory
 *   unlink   unlink of each renamed file
 *   rmdir    rmdir of every leaf and middle directory, then of the tree root
 *
 * With --drop-caches the kernel's caches are written back and dropped before
 * the stat, readdir, rename and unlink phases, so that they measure the file
 * system and not the kernel's dentry and inode caches: syncfs of DIR's file
 * system only (a hung file system elsewhere cannot block the run), then 3
 * into /proc/sys/vm/drop_caches, which needs root. Dropping is not timed.
 *
 * Output: one line per phase, "phase=NAME ops=N seconds=S ops_per_sec=R",
 * on standard output. Exit status 0 when every call succeeded and every
 * check held; otherwise 1, with the failing call and path on standard error.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { LEAVES_PER_MIDDLE = 100 };

struct meta_config {
    const char *base_dir; /* DIR/bench-meta */
    uint64_t file_count;
    uint64_t files_per_leaf;
    bool drop_caches;
};

/* Number of leaf directories: enough to hold every file. */
static uint64_t leaf_count(const struct meta_config *config)
{
    return (config->file_count + config->files_per_leaf - 1) / config->files_per_leaf;
}

static uint64_t middle_count(const struct meta_config *config)
{
    return (leaf_count(config) + LEAVES_PER_MIDDLE - 1) / LEAVES_PER_MIDDLE;
}

static double now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Writes the path of leaf directory LEAF into BUFFER (of SIZE bytes). */
static void leaf_path(const struct meta_config *config, uint64_t leaf, char *buffer, size_t size)
{
    snprintf(buffer, size, "%s/m%03llu/d%03llu", config->base_dir,
             (unsigned long long)(leaf / LEAVES_PER_MIDDLE),
             (unsigned long long)(leaf % LEAVES_PER_MIDDLE));
}

/*
 * Writes the path of file INDEX into BUFFER: its original name, or with
 * RENAMED its name after the rename phase.
 */
static void file_path(const struct meta_config *config, uint64_t index, bool renamed, char *buffer,
                      size_t size)
{
    uint64_t leaf = index / config->files_per_leaf;
    snprintf(buffer, size, "%s/m%03llu/d%03llu/%s%08llu", config->base_dir,
             (unsigned long long)(leaf / LEAVES_PER_MIDDLE),
             (unsigned long long)(leaf % LEAVES_PER_MIDDLE), renamed ? "renamed-" : "f",
             (unsigned long long)index);
}

/* Reports a failed system call on PATH (errno is the cause); returns -errno. */
static int report_failure(const char *call, const char *path)
{
    int error = errno;
    fprintf(stderr, "bench_meta: %s %s: %s\n", call, path, strerror(error));
    return -error;
}

/*
 * Writes back the dirty data of the file system holding the tree, then drops
 * the kernel's clean page, dentry and inode caches.
 */
static int drop_kernel_caches(const struct meta_config *config)
{
    int directory_fd = open(config->base_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (directory_fd < 0)
        return report_failure("open", config->base_dir);
    int sync_result = syncfs(directory_fd);
    if (sync_result != 0)
        report_failure("syncfs", config->base_dir);
    close(directory_fd);
    if (sync_result != 0)
        return -EIO;
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return report_failure("open", "/proc/sys/vm/drop_caches");
    ssize_t written = write(fd, "3\n", 2);
    int result = written == 2 ? 0 : report_failure("write", "/proc/sys/vm/drop_caches");
    close(fd);
    return result;
}

static int phase_mkdir(const struct meta_config *config, uint64_t *ops)
{
    char path[4096];
    if (mkdir(config->base_dir, 0755) != 0)
        return report_failure("mkdir", config->base_dir);
    for (uint64_t middle = 0; middle < middle_count(config); middle++) {
        snprintf(path, sizeof(path), "%s/m%03llu", config->base_dir, (unsigned long long)middle);
        if (mkdir(path, 0755) != 0)
            return report_failure("mkdir", path);
        (*ops)++;
    }
    for (uint64_t leaf = 0; leaf < leaf_count(config); leaf++) {
        leaf_path(config, leaf, path, sizeof(path));
        if (mkdir(path, 0755) != 0)
            return report_failure("mkdir", path);
        (*ops)++;
    }
    return 0;
}

static int phase_create(const struct meta_config *config, uint64_t *ops)
{
    char path[4096];
    for (uint64_t index = 0; index < config->file_count; index++) {
        file_path(config, index, false, path, sizeof(path));
        int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0)
            return report_failure("open(O_CREAT)", path);
        if (close(fd) != 0)
            return report_failure("close", path);
        (*ops)++;
    }
    return 0;
}

static int phase_stat(const struct meta_config *config, uint64_t *ops)
{
    char path[4096];
    struct stat attributes;
    for (uint64_t index = 0; index < config->file_count; index++) {
        file_path(config, index, false, path, sizeof(path));
        if (stat(path, &attributes) != 0)
            return report_failure("stat", path);
        if (!S_ISREG(attributes.st_mode) || attributes.st_size != 0) {
            fprintf(stderr, "bench_meta: stat %s: mode 0%o size %lld, expected an empty file\n",
                    path, (unsigned)attributes.st_mode, (long long)attributes.st_size);
            return -EIO;
        }
        (*ops)++;
    }
    return 0;
}

/* Files that leaf directory LEAF holds: files_per_leaf, fewer in the last. */
static uint64_t files_in_leaf(const struct meta_config *config, uint64_t leaf)
{
    uint64_t first = leaf * config->files_per_leaf;
    uint64_t remaining = config->file_count - first;
    return remaining < config->files_per_leaf ? remaining : config->files_per_leaf;
}

static int phase_readdir(const struct meta_config *config, uint64_t *ops)
{
    char path[4096];
    for (uint64_t leaf = 0; leaf < leaf_count(config); leaf++) {
        leaf_path(config, leaf, path, sizeof(path));
        DIR *directory = opendir(path);
        if (directory == NULL)
            return report_failure("opendir", path);
        uint64_t names = 0;
        struct dirent *entry;
        errno = 0;
        while ((entry = readdir(directory)) != NULL) {
            if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
                names++;
        }
        int read_error = errno;
        closedir(directory);
        if (read_error != 0) {
            errno = read_error;
            return report_failure("readdir", path);
        }
        if (names != files_in_leaf(config, leaf)) {
            fprintf(stderr, "bench_meta: readdir %s: %llu names, expected %llu\n", path,
                    (unsigned long long)names, (unsigned long long)files_in_leaf(config, leaf));
            return -EIO;
        }
        *ops += names;
    }
    return 0;
}

static int phase_rename(const struct meta_config *config, uint64_t *ops)
{
    char from[4096], to[4096];
    for (uint64_t index = 0; index < config->file_count; index++) {
        file_path(config, index, false, from, sizeof(from));
        file_path(config, index, true, to, sizeof(to));
        if (rename(from, to) != 0)
            return report_failure("rename", from);
        (*ops)++;
    }
    return 0;
}

static int phase_unlink(const struct meta_config *config, uint64_t *ops)
{
    char path[4096];
    for (uint64_t index = 0; index < config->file_count; index++) {
        file_path(config, index, true, path, sizeof(path));
        if (unlink(path) != 0)
            return report_failure("unlink", path);
        (*ops)++;
    }
    return 0;
}

static int phase_rmdir(const struct meta_config *config, uint64_t *ops)
{
    char path[4096];
    for (uint64_t leaf = 0; leaf < leaf_count(config); leaf++) {
        leaf_path(config, leaf, path, sizeof(path));
        if (rmdir(path) != 0)
            return report_failure("rmdir", path);
        (*ops)++;
    }
    for (uint64_t middle = 0; middle < middle_count(config); middle++) {
        snprintf(path, sizeof(path), "%s/m%03llu", config->base_dir, (unsigned long long)middle);
        if (rmdir(path) != 0)
            return report_failure("rmdir", path);
        (*ops)++;
    }
    if (rmdir(config->base_dir) != 0)
        return report_failure("rmdir", config->base_dir);
    (*ops)++;
    return 0;
}

struct phase {
    const char *name;
    int (*run)(const struct meta_config *config, uint64_t *ops);
    bool cold; /* caches are dropped before it under --drop-caches */
};

static const struct phase phases[] = {
    {"mkdir", phase_mkdir, false},  {"create", phase_create, false},
    {"stat", phase_stat, true},     {"readdir", phase_readdir, true},
    {"rename", phase_rename, true}, {"unlink", phase_unlink, true},
    {"rmdir", phase_rmdir, false},
};

/*
 * Runs every phase in order and prints one line per phase. Returns 0, or the
 * negative errno of the first failure (the phases after it are not run).
 */
static int run_phases(const struct meta_config *config)
{
    for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
        if (config->drop_caches && phases[i].cold) {
            int result = drop_kernel_caches(config);
            if (result != 0)
                return result;
        }
        uint64_t ops = 0;
        double start = now_seconds();
        int result = phases[i].run(config, &ops);
        double seconds = now_seconds() - start;
        if (result != 0) {
            fprintf(stderr, "bench_meta: phase %s failed after %llu operations\n", phases[i].name,
                    (unsigned long long)ops);
            return result;
        }
        printf("phase=%s ops=%llu seconds=%.6f ops_per_sec=%.1f\n", phases[i].name,
               (unsigned long long)ops, seconds, seconds > 0 ? (double)ops / seconds : 0.0);
        fflush(stdout);
    }
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: bench_meta [--files=N] [--per-dir=M] [--drop-caches] DIR\n"
                 "  --files=N       files to create (default 8000)\n"
                 "  --per-dir=M     files per leaf directory (default 100)\n"
                 "  --drop-caches   drop the kernel caches before stat, readdir, rename, unlink\n"
                 "Works in DIR/bench-meta, which must not exist; removes it at the end.\n");
}

/* Parses a positive decimal count; false if malformed or zero. */
static bool parse_count(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || value == 0)
        return false;
    *out = value;
    return true;
}

int main(int argc, char **argv)
{
    struct meta_config config = {.file_count = 8000, .files_per_leaf = 100};
    const char *directory = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--files=", 8) == 0) {
            if (!parse_count(arg + 8, &config.file_count)) {
                fprintf(stderr, "bench_meta: bad %s\n", arg);
                return 2;
            }
        } else if (strncmp(arg, "--per-dir=", 10) == 0) {
            if (!parse_count(arg + 10, &config.files_per_leaf)) {
                fprintf(stderr, "bench_meta: bad %s\n", arg);
                return 2;
            }
        } else if (strcmp(arg, "--drop-caches") == 0) {
            config.drop_caches = true;
        } else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (arg[0] != '-' && directory == NULL) {
            directory = arg;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (directory == NULL) {
        usage(stderr);
        return 2;
    }
    char base_dir[4096];
    snprintf(base_dir, sizeof(base_dir), "%s/bench-meta", directory);
    config.base_dir = base_dir;
    return run_phases(&config) == 0 ? 0 : 1;
}
