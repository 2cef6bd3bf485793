/*
 * test_mount_posix.c — a real lsmfs mount driven through system calls,
 * each result and errno checked against what Linux gives on ext4: open
 * flags, reads and writes (sparse, past 4 GiB), truncate, directories, link
 * counts, symlinks, every kind of rename, special files, attributes and
 * times, extended attributes, fallocate, SEEK_DATA/SEEK_HOLE,
 * copy_file_range, open-but-unlinked files, large directories, O_DIRECT,
 * shared mmap, locks, sync calls, statfs, name limits, persistence across
 * unmount and across a killed daemon.
 *
 * The whole suite runs twice: on a mount with the kernel's writeback cache
 * (lsmfs's default) and on one with -o no_writeback_cache, where every
 * write goes to the daemon at once. Each test works in its own directory
 * of the group's mount; the last tests compare the whole mount across a
 * remount and a kill -9.
 */
#include "mountutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define KIB 1024ull
#define MIB (1024ull * 1024)
#define GIB (1024ull * 1024 * 1024)

static struct lsmfs_mount *mnt; /* the running group's mount */
static DIR *listing_dir;        /* a listing the teardown closes if a test fails */

/* ---- helpers ---- */

/* Long enough that the kernel's coarse clock (used for times the kernel
 * sets itself under the writeback cache) moves past the daemon's. */
static void pause_for_clock(void)
{
    lsmfs_sleep_ms(30);
}

/* Paths made during one test: each keeps its own copy until the test's
 * teardown frees them all, so a test may hold on to as many as it likes. */
struct kept_path {
    struct kept_path *next;
    char path[];
};
static struct kept_path *kept_paths;

static const char *keep_path(const char *path)
{
    size_t n = strlen(path) + 1;
    struct kept_path *k = malloc(sizeof(*k) + n);
    assert_non_null(k);
    memcpy(k->path, path, n);
    k->next = kept_paths;
    kept_paths = k;
    return k->path;
}

static void free_kept_paths(void)
{
    while (kept_paths != NULL) {
        struct kept_path *next = kept_paths->next;
        free(kept_paths);
        kept_paths = next;
    }
}

/* A fresh directory for one test, on the mount. */
static const char *test_dir(const char *name)
{
    const char *path = keep_path(lsmfs_path(mnt, "%s", name));
    EXPECT_OK(mkdir(path, 0755));
    return path;
}

/* dir/name, kept until the end of the test. */
static const char *in_dir(const char *dir, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static const char *in_dir(const char *dir, const char *fmt, ...)
{
    char buf[PATH_MAX];
    int n = snprintf(buf, sizeof(buf), "%s/", dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    return keep_path(buf);
}

static void fill_random(char *buf, size_t n, uint64_t seed)
{
    kv_test_rng rng;
    kv_test_rng_init(&rng, seed);
    kv_test_rng_bytes(&rng, buf, n);
}

static char *random_buffer(size_t n, uint64_t seed)
{
    char *buf = malloc(n > 0 ? n : 1);
    assert_non_null(buf);
    fill_random(buf, n, seed);
    return buf;
}

static struct stat stat_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        fail_msg("stat %s: %s", path, strerror(errno));
    return st;
}

static struct stat lstat_of(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        fail_msg("lstat %s: %s", path, strerror(errno));
    return st;
}

static struct stat fstat_of(int fd)
{
    struct stat st;
    EXPECT_OK(fstat(fd, &st));
    return st;
}

static void write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = EXPECT_OK(write(fd, p, n));
        assert_true(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

static void pwrite_all(int fd, const void *data, size_t n, off_t offset)
{
    ssize_t w = EXPECT_OK(pwrite(fd, data, n, offset));
    if ((size_t)w != n)
        fail_msg("pwrite of %zu bytes at %lld wrote %zd", n, (long long)offset, w);
}

/* Reads exactly n bytes at offset (fails the test on a short read). */
static void pread_exact(int fd, void *buf, size_t n, off_t offset)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = EXPECT_OK(pread(fd, (char *)buf + done, n - done, offset + (off_t)done));
        if (r == 0)
            fail_msg("pread: end of file at %lld, wanted %zu bytes from %lld",
                     (long long)(offset + (off_t)done), n, (long long)offset);
        done += (size_t)r;
    }
}

static void create_file(const char *path, const void *data, size_t n)
{
    int fd = EXPECT_OK(open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644));
    write_all(fd, data, n);
    EXPECT_OK(close(fd));
}

static void expect_same_bytes(const char *what, const char *got, const char *want, size_t n)
{
    if (memcmp(got, want, n) == 0)
        return;
    size_t i = 0;
    while (got[i] == want[i])
        i++;
    fail_msg("%s: byte %zu of %zu is 0x%02x, expected 0x%02x", what, i, n, (unsigned char)got[i],
             (unsigned char)want[i]);
}

static void expect_zeros(const char *what, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != 0)
            fail_msg("%s: byte %zu of %zu is 0x%02x, expected 0", what, i, n,
                     (unsigned char)buf[i]);
}

/* The whole file must be exactly `want`. */
static void expect_file(const char *path, const char *want, size_t n)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    struct stat st = fstat_of(fd);
    if ((size_t)st.st_size != n)
        fail_msg("%s: size %lld, expected %zu", path, (long long)st.st_size, n);
    char *got = malloc(n + 1);
    assert_non_null(got);
    if (n > 0)
        pread_exact(fd, got, n, 0);
    assert_int_equal(pread(fd, got, 1, (off_t)n), 0);
    EXPECT_OK(close(fd));
    expect_same_bytes(path, got, want, n);
    free(got);
}

/* Writes dirty pages back and drops the clean ones, so the next read
 * comes from the daemon, not from the kernel's page cache. */
static void drop_cache(int fd)
{
    EXPECT_OK(fsync(fd));
    assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
}

static bool ts_later(struct timespec a, struct timespec b)
{
    return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

static bool ts_equal(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

#define EXPECT_LATER(a, b, what)                                                                   \
    do {                                                                                           \
        if (!ts_later((a), (b)))                                                                   \
            fail_msg("%s:%d: %s did not advance: %lld.%09ld after %lld.%09ld", __FILE__, __LINE__, \
                     what, (long long)(a).tv_sec, (a).tv_nsec, (long long)(b).tv_sec,              \
                     (b).tv_nsec);                                                                 \
    } while (0)

#define EXPECT_SAME_TIME(a, b, what)                                                               \
    do {                                                                                           \
        if (!ts_equal((a), (b)))                                                                   \
            fail_msg("%s:%d: %s changed: %lld.%09ld, was %lld.%09ld", __FILE__, __LINE__, what,    \
                     (long long)(a).tv_sec, (a).tv_nsec, (long long)(b).tv_sec, (b).tv_nsec);      \
    } while (0)

#define EXPECT_NLINK(path, n)                                                                      \
    do {                                                                                           \
        struct stat nlink_st_ = lstat_of(path);                                                    \
        if (nlink_st_.st_nlink != (nlink_t)(n))                                                    \
            fail_msg("%s:%d: st_nlink of %s is %lu, expected %lu", __FILE__, __LINE__, path,       \
                     (unsigned long)nlink_st_.st_nlink, (unsigned long)(n));                       \
    } while (0)

static struct timespec now_realtime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts;
}

/* ---- fixtures ---- */

static int mount_group(void **state, const char *name, const char *options)
{
    umask(022);
    mnt = lsmfs_mount_create(name, options);
    lsmfs_fd_baseline_save();
    return 0;
}

static int setup_writeback(void **state)
{
    return mount_group(state, "posix-writeback", NULL);
}

static int setup_no_writeback(void **state)
{
    return mount_group(state, "posix-nowriteback", "no_writeback_cache");
}

static int teardown_group(void **state)
{
    lsmfs_fd_close_leaked();
    struct lsmfs_mount *m = mnt;
    mnt = NULL;
    lsmfs_mount_destroy(m);
    return 0;
}

/* After each test: close what a failed test left open (it would keep the
 * mount busy) and make sure the daemon is still alive. */
static int teardown_test(void **state)
{
    free_kept_paths();
    if (listing_dir != NULL) {
        closedir(listing_dir);
        listing_dir = NULL;
    }
    int leaked = lsmfs_fd_close_leaked();
    if (leaked > 0)
        fprintf(stderr, "teardown: closed %d descriptors the test left open\n", leaked);
    lsmfs_mount_check_alive(mnt);
    return 0;
}

/* ---- open flags ---- */

static void test_open_flags(void **state)
{
    const char *d = test_dir("open");
    const char *f = in_dir(d, "f");

    int fd = EXPECT_OK(open(f, O_CREAT | O_EXCL | O_RDWR, 0640));
    struct stat st = fstat_of(fd);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(st.st_uid, getuid());
    write_all(fd, "hello world", 11);
    EXPECT_OK(close(fd));

    EXPECT_ERRNO(open(f, O_CREAT | O_EXCL | O_RDWR, 0644), EEXIST);
    /* O_CREAT without O_EXCL opens the existing file untouched. */
    fd = EXPECT_OK(open(f, O_CREAT | O_RDWR, 0600));
    assert_int_equal(fstat_of(fd).st_size, 11);
    assert_int_equal(fstat_of(fd).st_mode & 07777, 0640);
    EXPECT_OK(close(fd));

    /* The umask applies to the creation mode. */
    const char *masked = in_dir(d, "masked");
    EXPECT_OK(close(EXPECT_OK(open(masked, O_CREAT | O_WRONLY, 0666))));
    assert_int_equal(stat_of(masked).st_mode & 07777, 0644);

    /* O_EXCL does not follow symlinks, dangling or not. */
    EXPECT_OK(symlink("f", in_dir(d, "link")));
    EXPECT_ERRNO(open(in_dir(d, "link"), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
    EXPECT_OK(symlink("nowhere", in_dir(d, "dangling")));
    EXPECT_ERRNO(open(in_dir(d, "dangling"), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
    /* Without O_EXCL, O_CREAT through a dangling symlink creates its target. */
    EXPECT_OK(close(EXPECT_OK(open(in_dir(d, "dangling"), O_CREAT | O_WRONLY, 0644))));
    assert_true(S_ISREG(lstat_of(in_dir(d, "nowhere")).st_mode));

    /* O_TRUNC empties the file and updates mtime and ctime. */
    struct stat before = stat_of(f);
    pause_for_clock();
    fd = EXPECT_OK(open(f, O_WRONLY | O_TRUNC));
    st = fstat_of(fd);
    assert_int_equal(st.st_size, 0);
    EXPECT_LATER(st.st_mtim, before.st_mtim, "mtime after O_TRUNC");
    EXPECT_LATER(st.st_ctim, before.st_ctim, "ctime after O_TRUNC");
    write_all(fd, "abc", 3);
    EXPECT_OK(close(fd));
    expect_file(f, "abc", 3);

    /* O_APPEND writes at the end wherever the offset is; on Linux even
     * pwrite appends. */
    fd = EXPECT_OK(open(f, O_WRONLY | O_APPEND));
    int other = EXPECT_OK(open(f, O_WRONLY | O_APPEND));
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    write_all(fd, "def", 3);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 6);
    write_all(other, "ghi", 3);
    pwrite_all(fd, "jkl", 3, 0);
    write_all(other, "mno", 3);
    EXPECT_OK(close(fd));
    EXPECT_OK(close(other));
    expect_file(f, "abcdefghijklmno", 15);

    EXPECT_ERRNO(open(in_dir(d, "missing"), O_RDONLY), ENOENT);
    EXPECT_ERRNO(open(in_dir(d, "missing/x"), O_CREAT | O_WRONLY, 0644), ENOENT);
    EXPECT_ERRNO(open(d, O_WRONLY), EISDIR);
    EXPECT_ERRNO(open(d, O_RDWR | O_CREAT, 0644), EISDIR);
    EXPECT_ERRNO(open(in_dir(d, "f/x"), O_CREAT | O_WRONLY, 0644), ENOTDIR);
    EXPECT_ERRNO(open(f, O_RDONLY | O_DIRECTORY), ENOTDIR);
    fd = EXPECT_OK(open(f, O_RDONLY));
    EXPECT_ERRNO(write(fd, "x", 1), EBADF);
    EXPECT_OK(close(fd));
}

/* ---- reads and writes ---- */

static void test_read_write_roundtrip(void **state)
{
    const char *d = test_dir("rw");
    const char *f = in_dir(d, "data");
    const size_t size = 3 * MIB + 777;
    char *model = random_buffer(size, 11);
    char *got = malloc(size);
    assert_non_null(got);
    kv_test_rng rng;
    kv_test_rng_init(&rng, 12);

    /* Sequential writes of odd sizes. */
    int fd = EXPECT_OK(open(f, O_RDWR | O_CREAT | O_EXCL, 0644));
    for (size_t off = 0; off < size;) {
        size_t n = 1 + kv_test_rng_uniform(&rng, 200000);
        if (n > size - off)
            n = size - off;
        write_all(fd, model + off, n);
        off += n;
    }
    assert_int_equal(fstat_of(fd).st_size, (off_t)size);
    pread_exact(fd, got, size, 0);
    expect_same_bytes("after sequential writes", got, model, size);

    /* Overwrites at random places, within and across blocks. */
    for (int i = 0; i < 60; i++) {
        size_t off = kv_test_rng_uniform(&rng, size);
        size_t n = 1 + kv_test_rng_uniform(&rng, 70000);
        if (n > size - off)
            n = size - off;
        fill_random(model + off, n, 100 + (uint64_t)i);
        pwrite_all(fd, model + off, n, (off_t)off);
    }
    /* Reads at random places, from the page cache... */
    for (int i = 0; i < 60; i++) {
        size_t off = kv_test_rng_uniform(&rng, size);
        size_t n = 1 + kv_test_rng_uniform(&rng, 100000);
        ssize_t r = EXPECT_OK(pread(fd, got, n, (off_t)off));
        size_t expected = n < size - off ? n : size - off;
        if ((size_t)r != expected)
            fail_msg("pread %zu at %zu returned %zd, expected %zu", n, off, r, expected);
        expect_same_bytes("random read", got, model + off, expected);
    }
    /* ...and from the daemon. */
    drop_cache(fd);
    pread_exact(fd, got, size, 0);
    expect_same_bytes("after overwrites, from the daemon", got, model, size);

    /* At and past the end. */
    assert_int_equal(pread(fd, got, 100, (off_t)size), 0);
    assert_int_equal(pread(fd, got, 100, (off_t)size + 5000), 0);
    assert_int_equal(pread(fd, got, 100, (off_t)size - 10), 10);
    assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)size);
    EXPECT_OK(close(fd));
    expect_file(f, model, size);

    /* Tiny files. */
    create_file(in_dir(d, "empty"), "", 0);
    expect_file(in_dir(d, "empty"), "", 0);
    create_file(in_dir(d, "one"), "x", 1);
    expect_file(in_dir(d, "one"), "x", 1);
    free(model);
    free(got);
}

static void test_sparse_file(void **state)
{
    const char *d = test_dir("sparse");
    const char *f = in_dir(d, "sparse");
    const off_t data_at = (off_t)MIB + 100;
    char *data = random_buffer(4096, 21);
    char *got = malloc(2 * MIB);
    assert_non_null(got);

    int fd = EXPECT_OK(open(f, O_RDWR | O_CREAT | O_EXCL, 0644));
    pwrite_all(fd, data, 4096, data_at);
    assert_int_equal(fstat_of(fd).st_size, data_at + 4096);
    pread_exact(fd, got, (size_t)data_at + 4096, 0);
    expect_zeros("the hole before the data", got, (size_t)data_at);
    expect_same_bytes("the data after the hole", got + data_at, data, 4096);
    drop_cache(fd);
    pread_exact(fd, got, (size_t)data_at + 4096, 0);
    expect_zeros("the hole, from the daemon", got, (size_t)data_at);
    expect_same_bytes("the data, from the daemon", got + data_at, data, 4096);
    EXPECT_OK(close(fd));

    /* Only the written blocks take space (ext4: two 4 KiB blocks). */
    struct stat st = stat_of(f);
    if (st.st_blocks * 512 < 4096 || st.st_blocks * 512 > 64 * (off_t)KIB)
        fail_msg("sparse file of %lld bytes with 4 KiB written: st_blocks %lld",
                 (long long)st.st_size, (long long)st.st_blocks);

    /* A hole at the end, from extending with truncate. */
    EXPECT_OK(truncate(f, 2 * (off_t)MIB));
    st = stat_of(f);
    assert_int_equal(st.st_size, 2 * (off_t)MIB);
    if (st.st_blocks * 512 > 64 * (off_t)KIB)
        fail_msg("truncate up allocated space: st_blocks %lld", (long long)st.st_blocks);
    fd = EXPECT_OK(open(f, O_RDONLY));
    pread_exact(fd, got, 2 * MIB, 0);
    expect_zeros("before the data", got, (size_t)data_at);
    expect_same_bytes("the data", got + data_at, data, 4096);
    expect_zeros("the hole at the end", got + data_at + 4096, 2 * MIB - (size_t)data_at - 4096);
    EXPECT_OK(close(fd));

    /* A gap inside one block: a write past the end of a short file. */
    const char *g = in_dir(d, "gap");
    create_file(g, "abc", 3);
    fd = EXPECT_OK(open(g, O_RDWR));
    pwrite_all(fd, "xyz", 3, 10);
    char want[13] = {'a', 'b', 'c', 0, 0, 0, 0, 0, 0, 0, 'x', 'y', 'z'};
    drop_cache(fd);
    EXPECT_OK(close(fd));
    expect_file(g, want, sizeof(want));
    free(data);
    free(got);
}

static void test_file_over_4gib(void **state)
{
    const char *d = test_dir("big");
    const char *f = in_dir(d, "over4g");
    const off_t at_5g = 5 * (off_t)GIB;
    const off_t straddle = 4 * (off_t)GIB - 2048;
    char *data = random_buffer(100000, 31);
    char *edge = random_buffer(4096, 32);
    char *got = malloc(100000);
    assert_non_null(got);

    int fd = EXPECT_OK(open(f, O_RDWR | O_CREAT | O_EXCL, 0644));
    pwrite_all(fd, data, 100000, at_5g);
    pwrite_all(fd, edge, 4096, straddle);
    pwrite_all(fd, "Z", 1, 4 * (off_t)GIB - 4097);
    assert_int_equal(fstat_of(fd).st_size, at_5g + 100000);
    assert_int_equal(lseek(fd, 0, SEEK_END), at_5g + 100000);
    drop_cache(fd);

    pread_exact(fd, got, 100000, at_5g);
    expect_same_bytes("data at 5 GiB", got, data, 100000);
    pread_exact(fd, got, 4096, straddle);
    expect_same_bytes("data across 4 GiB", got, edge, 4096);
    pread_exact(fd, got, 2, 4 * (off_t)GIB - 4097);
    assert_int_equal(got[0], 'Z');
    assert_int_equal(got[1], 0);
    pread_exact(fd, got, 4096, 4 * (off_t)GIB + 512 * (off_t)MIB);
    expect_zeros("hole at 4.5 GiB", got, 4096);
    pread_exact(fd, got, 4096, 0);
    expect_zeros("hole at 0", got, 4096);
    /* The low 32 bits of 5 GiB are 1 GiB: nothing may land there. */
    pread_exact(fd, got, 4096, (off_t)GIB);
    expect_zeros("hole at 1 GiB", got, 4096);
    struct stat st = fstat_of(fd);
    if (st.st_blocks * 512 > 1 * (off_t)MIB)
        fail_msg("5 GiB sparse file with 104 KB written: st_blocks %lld", (long long)st.st_blocks);

    /* Truncate down, still above 4 GiB. */
    EXPECT_OK(ftruncate(fd, at_5g + 10));
    assert_int_equal(fstat_of(fd).st_size, at_5g + 10);
    assert_int_equal(pread(fd, got, 100, at_5g), 10);
    expect_same_bytes("the first 10 bytes at 5 GiB", got, data, 10);
    /* Truncate into the data that straddles 4 GiB, then grow again. */
    EXPECT_OK(ftruncate(fd, 4 * (off_t)GIB + 1000));
    EXPECT_OK(ftruncate(fd, at_5g + 100000));
    drop_cache(fd);
    pread_exact(fd, got, 4096, straddle);
    expect_same_bytes("data below the cut", got, edge, 2048 + 1000);
    expect_zeros("data above the cut", got + 3048, 4096 - 3048);
    pread_exact(fd, got, 100000, at_5g);
    expect_zeros("the old data at 5 GiB after truncate down and up", got, 100000);
    EXPECT_OK(close(fd));
    EXPECT_OK(unlink(f));
    free(data);
    free(edge);
    free(got);
}

static void test_truncate(void **state)
{
    const char *d = test_dir("truncate");
    const char *f = in_dir(d, "t");
    char *data = random_buffer(10000, 41);
    char got[20000];
    create_file(f, data, 10000);

    struct stat before = stat_of(f);
    pause_for_clock();
    EXPECT_OK(truncate(f, 5000));
    struct stat st = stat_of(f);
    assert_int_equal(st.st_size, 5000);
    EXPECT_LATER(st.st_mtim, before.st_mtim, "mtime after truncate");
    EXPECT_LATER(st.st_ctim, before.st_ctim, "ctime after truncate");
    expect_file(f, data, 5000);

    /* Growing again must read zeros, not the old bytes. */
    int fd = EXPECT_OK(open(f, O_RDWR));
    EXPECT_OK(ftruncate(fd, 20000));
    assert_int_equal(fstat_of(fd).st_size, 20000);
    pread_exact(fd, got, 20000, 0);
    expect_same_bytes("kept bytes", got, data, 5000);
    expect_zeros("bytes after truncate down and up", got + 5000, 15000);
    drop_cache(fd);
    pread_exact(fd, got, 20000, 0);
    expect_same_bytes("kept bytes, from the daemon", got, data, 5000);
    expect_zeros("bytes after truncate down and up, from the daemon", got + 5000, 15000);

    /* Down to a block boundary, then a write past the end. */
    EXPECT_OK(ftruncate(fd, 8192));
    pwrite_all(fd, "end", 3, 12000);
    drop_cache(fd);
    pread_exact(fd, got, 12003, 0);
    expect_same_bytes("kept bytes", got, data, 5000);
    expect_zeros("zeros up to the write", got + 5000, 12000 - 5000);
    assert_memory_equal(got + 12000, "end", 3);

    EXPECT_OK(ftruncate(fd, 0));
    assert_int_equal(fstat_of(fd).st_size, 0);
    assert_int_equal(pread(fd, got, 100, 0), 0);
    EXPECT_OK(close(fd));
    expect_file(f, "", 0);

    EXPECT_ERRNO(truncate(d, 0), EISDIR);
    EXPECT_ERRNO(truncate(f, -1), EINVAL);
    EXPECT_ERRNO(truncate(in_dir(d, "missing"), 0), ENOENT);
    free(data);
}

/* ---- directories and names ---- */

static void test_mkdir_rmdir_unlink(void **state)
{
    const char *d = test_dir("dirs");
    const char *a = in_dir(d, "a");
    EXPECT_OK(mkdir(a, 0750));
    struct stat st = stat_of(a);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0750);
    assert_int_equal(st.st_nlink, 2);
    EXPECT_ERRNO(mkdir(a, 0755), EEXIST);

    const char *f = in_dir(d, "a/f");
    create_file(f, "x", 1);
    EXPECT_ERRNO(mkdir(f, 0755), EEXIST);
    EXPECT_ERRNO(rmdir(a), ENOTEMPTY);
    EXPECT_ERRNO(rmdir(f), ENOTDIR);
    EXPECT_ERRNO(unlink(a), EISDIR);
    EXPECT_ERRNO(mkdir(in_dir(d, "a/f/x"), 0755), ENOTDIR);
    EXPECT_ERRNO(mkdir(in_dir(d, "missing/x"), 0755), ENOENT);
    EXPECT_ERRNO(rmdir(in_dir(d, "missing")), ENOENT);
    EXPECT_ERRNO(unlink(in_dir(d, "missing")), ENOENT);
    EXPECT_ERRNO(rmdir(in_dir(d, "a/.")), EINVAL);
    EXPECT_ERRNO(rmdir(in_dir(d, "a/..")), ENOTEMPTY);

    /* A directory whose only entry is a directory is not empty either. */
    EXPECT_OK(mkdir(in_dir(d, "a/sub"), 0755));
    EXPECT_OK(unlink(f));
    EXPECT_ERRNO(stat(f, &st), ENOENT);
    EXPECT_ERRNO(rmdir(a), ENOTEMPTY);
    EXPECT_OK(rmdir(in_dir(d, "a/sub")));

    /* Emptied after holding several entries. */
    for (int i = 0; i < 5; i++)
        create_file(in_dir(d, "a/e%d", i), "", 0);
    EXPECT_ERRNO(rmdir(a), ENOTEMPTY);
    for (int i = 0; i < 5; i++)
        EXPECT_OK(unlink(in_dir(d, "a/e%d", i)));
    EXPECT_OK(rmdir(a));
    EXPECT_ERRNO(stat(a, &st), ENOENT);
    EXPECT_ERRNO(rmdir(a), ENOENT);

    /* The name is free again. */
    EXPECT_OK(mkdir(a, 01777));
    assert_int_equal(stat_of(a).st_mode & 07777, 01755); /* umask 022 */
    EXPECT_OK(rmdir(a));

    /* A removed directory that is still a process's cwd: nothing can be
     * created in it. */
    EXPECT_OK(mkdir(a, 0755));
    int dfd = EXPECT_OK(open(a, O_RDONLY | O_DIRECTORY));
    EXPECT_OK(rmdir(a));
    EXPECT_ERRNO(openat(dfd, "new", O_CREAT | O_WRONLY, 0644), ENOENT);
    EXPECT_ERRNO(mkdirat(dfd, "new", 0755), ENOENT);
    assert_int_equal(fstat_of(dfd).st_nlink, 0);
    EXPECT_OK(close(dfd));
    assert_int_equal(stat_of(d).st_nlink, 2);
}

static void test_link_counts(void **state)
{
    const char *d = test_dir("links");
    EXPECT_NLINK(d, 2);
    EXPECT_OK(mkdir(in_dir(d, "s1"), 0755));
    EXPECT_OK(mkdir(in_dir(d, "s2"), 0755));
    EXPECT_NLINK(d, 4);
    EXPECT_OK(mkdir(in_dir(d, "s1/deeper"), 0755));
    EXPECT_NLINK(d, 4);
    EXPECT_NLINK(in_dir(d, "s1"), 3);

    const char *f = in_dir(d, "f");
    create_file(f, "data", 4);
    EXPECT_NLINK(f, 1);
    struct stat before = stat_of(f);
    pause_for_clock();
    EXPECT_OK(link(f, in_dir(d, "s1/g")));
    struct stat st = stat_of(f);
    assert_int_equal(st.st_nlink, 2);
    EXPECT_LATER(st.st_ctim, before.st_ctim, "ctime after link");
    assert_int_equal(stat_of(in_dir(d, "s1/g")).st_ino, st.st_ino);
    EXPECT_NLINK(in_dir(d, "s1/g"), 2);
    EXPECT_OK(link(f, in_dir(d, "s2/h")));
    EXPECT_NLINK(f, 3);
    EXPECT_OK(unlink(f));
    EXPECT_NLINK(in_dir(d, "s1/g"), 2);
    expect_file(in_dir(d, "s2/h"), "data", 4);

    EXPECT_ERRNO(link(in_dir(d, "s1"), in_dir(d, "s1link")), EPERM);
    EXPECT_ERRNO(link(in_dir(d, "s1/g"), in_dir(d, "s2/h")), EEXIST);
    EXPECT_ERRNO(link(in_dir(d, "missing"), in_dir(d, "x")), ENOENT);

    /* A file open while its last name goes has no links. */
    int fd = EXPECT_OK(open(in_dir(d, "s1/g"), O_RDONLY));
    EXPECT_OK(unlink(in_dir(d, "s1/g")));
    assert_int_equal(fstat_of(fd).st_nlink, 1);
    EXPECT_OK(unlink(in_dir(d, "s2/h")));
    assert_int_equal(fstat_of(fd).st_nlink, 0);
    EXPECT_OK(close(fd));

    EXPECT_OK(rmdir(in_dir(d, "s2")));
    EXPECT_NLINK(d, 3);
    EXPECT_OK(rmdir(in_dir(d, "s1/deeper")));
    EXPECT_NLINK(in_dir(d, "s1"), 2);

    /* The root: 2 + its subdirectories. */
    DIR *root = opendir(mnt->mountpoint);
    assert_non_null(root);
    unsigned long subdirs = 0;
    struct dirent *e;
    while ((e = readdir(root)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
            S_ISDIR(lstat_of(lsmfs_path(mnt, "%s", e->d_name)).st_mode))
            subdirs++;
    closedir(root);
    EXPECT_NLINK(mnt->mountpoint, 2 + subdirs);

    /* The same counts as the daemon stores them. */
    lsmfs_mount_remount(mnt);
    EXPECT_NLINK(d, 3);
    EXPECT_NLINK(in_dir(d, "s1"), 2);
    EXPECT_NLINK(mnt->mountpoint, 2 + subdirs);
}

static void test_symlink_readlink(void **state)
{
    const char *d = test_dir("symlinks");
    const char *target = "target/with/../parts";
    const char *l = in_dir(d, "l");
    EXPECT_OK(symlink(target, l));
    char buf[PATH_MAX + 1];
    ssize_t n = EXPECT_OK(readlink(l, buf, sizeof(buf)));
    assert_int_equal(n, strlen(target));
    assert_memory_equal(buf, target, (size_t)n);
    struct stat st = lstat_of(l);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0777);
    assert_int_equal(st.st_size, strlen(target));
    EXPECT_ERRNO(stat(l, &st), ENOENT); /* dangling */
    /* A short buffer truncates without a terminator. */
    memset(buf, '#', 12);
    assert_int_equal(readlink(l, buf, 10), 10);
    assert_memory_equal(buf, target, 10);
    assert_int_equal(buf[10], '#');

    const char *f = in_dir(d, "file");
    create_file(f, "content", 7);
    EXPECT_OK(symlink("file", in_dir(d, "tofile")));
    assert_int_equal(stat_of(in_dir(d, "tofile")).st_ino, stat_of(f).st_ino);
    expect_file(in_dir(d, "tofile"), "content", 7);
    EXPECT_ERRNO(readlink(f, buf, sizeof(buf)), EINVAL);
    EXPECT_ERRNO(symlink("x", l), EEXIST);
    EXPECT_ERRNO(symlink("x", f), EEXIST);

    /* The longest target Linux passes (PATH_MAX - 1 bytes). */
    char *long_target = malloc(PATH_MAX);
    assert_non_null(long_target);
    memset(long_target, 'x', PATH_MAX - 1);
    for (int i = 100; i < PATH_MAX - 1; i += 100)
        long_target[i] = '/';
    long_target[PATH_MAX - 1] = '\0';
    EXPECT_OK(symlink(long_target, in_dir(d, "long")));
    n = EXPECT_OK(readlink(in_dir(d, "long"), buf, sizeof(buf)));
    assert_int_equal(n, PATH_MAX - 1);
    assert_memory_equal(buf, long_target, (size_t)n);
    assert_int_equal(lstat_of(in_dir(d, "long")).st_size, PATH_MAX - 1);
    free(long_target);

    /* Loops. */
    EXPECT_OK(symlink("loop2", in_dir(d, "loop1")));
    EXPECT_OK(symlink("loop1", in_dir(d, "loop2")));
    EXPECT_ERRNO(open(in_dir(d, "loop1"), O_RDONLY), ELOOP);

    /* lchown changes the link, not its target. */
    EXPECT_OK(lchown(in_dir(d, "tofile"), 1234, 4321));
    st = lstat_of(in_dir(d, "tofile"));
    assert_int_equal(st.st_uid, 1234);
    assert_int_equal(st.st_gid, 4321);
    assert_int_equal(stat_of(f).st_uid, getuid());

    /* Targets survive a remount (they are stored by the daemon). */
    lsmfs_mount_remount(mnt);
    n = EXPECT_OK(readlink(l, buf, sizeof(buf)));
    assert_int_equal(n, strlen(target));
    assert_memory_equal(buf, target, (size_t)n);
}

/* ---- rename ---- */

static void test_rename(void **state)
{
    const char *d = test_dir("rename");
    const char *a = in_dir(d, "a"), *b = in_dir(d, "b"), *c = in_dir(d, "c");

    create_file(a, "A", 1);
    ino_t a_ino = stat_of(a).st_ino;
    struct stat dir_before = stat_of(d), file_before = stat_of(a);
    pause_for_clock();
    EXPECT_OK(rename(a, b));
    struct stat st;
    EXPECT_ERRNO(stat(a, &st), ENOENT);
    st = stat_of(b);
    assert_int_equal(st.st_ino, a_ino);
    assert_int_equal(st.st_nlink, 1);
    EXPECT_LATER(st.st_ctim, file_before.st_ctim, "ctime of a renamed file");
    EXPECT_LATER(stat_of(d).st_mtim, dir_before.st_mtim, "mtime of the directory");
    expect_file(b, "A", 1);

    /* Replacing a file: the old one lives on while open. */
    create_file(c, "C", 1);
    int fd = EXPECT_OK(open(c, O_RDONLY));
    EXPECT_OK(rename(b, c));
    EXPECT_ERRNO(stat(b, &st), ENOENT);
    assert_int_equal(stat_of(c).st_ino, a_ino);
    expect_file(c, "A", 1);
    char ch = 0;
    assert_int_equal(pread(fd, &ch, 1, 0), 1);
    assert_int_equal(ch, 'C');
    assert_int_equal(fstat_of(fd).st_nlink, 0);
    EXPECT_OK(close(fd));

    /* Replacing an empty directory. */
    EXPECT_OK(mkdir(in_dir(d, "e1"), 0755));
    EXPECT_OK(mkdir(in_dir(d, "e2"), 0755));
    create_file(in_dir(d, "e1/inside"), "i", 1);
    EXPECT_NLINK(d, 4);
    EXPECT_OK(rename(in_dir(d, "e1"), in_dir(d, "e2")));
    EXPECT_NLINK(d, 3);
    EXPECT_ERRNO(stat(in_dir(d, "e1"), &st), ENOENT);
    expect_file(in_dir(d, "e2/inside"), "i", 1);
    EXPECT_NLINK(in_dir(d, "e2"), 2);

    /* Failures that leave both sides as they were. */
    EXPECT_OK(mkdir(in_dir(d, "n1"), 0755));
    EXPECT_OK(mkdir(in_dir(d, "n2"), 0755));
    create_file(in_dir(d, "n2/x"), "x", 1);
    EXPECT_ERRNO(rename(in_dir(d, "n1"), in_dir(d, "n2")), ENOTEMPTY);
    EXPECT_ERRNO(rename(c, in_dir(d, "n1")), EISDIR);
    EXPECT_ERRNO(rename(in_dir(d, "n1"), c), ENOTDIR);
    EXPECT_ERRNO(rename(in_dir(d, "n2"), in_dir(d, "n2/sub")), EINVAL);
    EXPECT_ERRNO(rename(in_dir(d, "missing"), in_dir(d, "z")), ENOENT);
    EXPECT_ERRNO(rename(c, in_dir(d, "missing/z")), ENOENT);
    EXPECT_ERRNO(rename(c, in_dir(d, "c/z")), ENOTDIR);
    expect_file(c, "A", 1);
    expect_file(in_dir(d, "n2/x"), "x", 1);
    assert_true(S_ISDIR(stat_of(in_dir(d, "n1")).st_mode));
    EXPECT_NLINK(d, 5);

    /* Two names of one file: rename does nothing. */
    EXPECT_OK(link(c, in_dir(d, "c2")));
    EXPECT_OK(rename(c, in_dir(d, "c2")));
    EXPECT_NLINK(c, 2);
    EXPECT_NLINK(in_dir(d, "c2"), 2);
    EXPECT_OK(rename(c, c));
    expect_file(c, "A", 1);

    /* The directory still lists exactly what is there. */
    DIR *dir = opendir(d);
    assert_non_null(dir);
    char names[512] = "";
    const char *expected[] = {"c", "c2", "e2", "n1", "n2"};
    int count = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        strncat(names, e->d_name, sizeof(names) - strlen(names) - 2);
        strcat(names, " ");
        bool known = false;
        for (int i = 0; i < 5; i++)
            known |= strcmp(e->d_name, expected[i]) == 0;
        if (!known)
            fail_msg("unexpected entry \"%s\" in %s", e->d_name, d);
        count++;
    }
    closedir(dir);
    if (count != 5)
        fail_msg("%s lists %d entries (%s), expected c c2 e2 n1 n2", d, count, names);
}

static void test_rename_across_parents(void **state)
{
    const char *d = test_dir("across");
    const char *A = in_dir(d, "A"), *B = in_dir(d, "B");
    EXPECT_OK(mkdir(A, 0755));
    EXPECT_OK(mkdir(B, 0755));
    EXPECT_OK(mkdir(in_dir(d, "A/m"), 0755));
    EXPECT_OK(mkdir(in_dir(d, "A/m/inner"), 0755));
    create_file(in_dir(d, "A/m/f"), "moved", 5);
    create_file(in_dir(d, "A/file"), "file", 4);
    EXPECT_NLINK(A, 3);
    EXPECT_NLINK(B, 2);
    ino_t b_ino = stat_of(B).st_ino;

    EXPECT_OK(rename(in_dir(d, "A/m"), in_dir(d, "B/m")));
    EXPECT_NLINK(A, 2);
    EXPECT_NLINK(B, 3);
    EXPECT_NLINK(in_dir(d, "B/m"), 3);
    assert_int_equal(stat_of(in_dir(d, "B/m/..")).st_ino, b_ino);
    expect_file(in_dir(d, "B/m/f"), "moved", 5);
    assert_true(S_ISDIR(stat_of(in_dir(d, "B/m/inner")).st_mode));
    struct stat st;
    EXPECT_ERRNO(stat(in_dir(d, "A/m"), &st), ENOENT);

    /* A file across parents: no directory counts change. */
    EXPECT_OK(rename(in_dir(d, "A/file"), in_dir(d, "B/file")));
    EXPECT_NLINK(A, 2);
    EXPECT_NLINK(B, 3);
    expect_file(in_dir(d, "B/file"), "file", 4);

    /* A directory replacing an empty one in another parent. */
    EXPECT_OK(mkdir(in_dir(d, "A/q"), 0755));
    EXPECT_OK(mkdir(in_dir(d, "B/q2"), 0755));
    EXPECT_NLINK(A, 3);
    EXPECT_NLINK(B, 4);
    EXPECT_OK(rename(in_dir(d, "A/q"), in_dir(d, "B/q2")));
    EXPECT_NLINK(A, 2);
    EXPECT_NLINK(B, 4);
    assert_int_equal(stat_of(in_dir(d, "B/q2/..")).st_ino, b_ino);

    /* As the daemon stored it, without the kernel's cached attributes. */
    lsmfs_mount_remount(mnt);
    EXPECT_NLINK(A, 2);
    EXPECT_NLINK(B, 4);
    EXPECT_NLINK(in_dir(d, "B/m"), 3);
    assert_int_equal(stat_of(in_dir(d, "B/m/..")).st_ino, b_ino);
    assert_int_equal(stat_of(in_dir(d, "B/q2/..")).st_ino, b_ino);
    expect_file(in_dir(d, "B/m/f"), "moved", 5);
    /* The moved directory can be removed once emptied (its entry count
     * moved with it). */
    EXPECT_OK(rmdir(in_dir(d, "B/m/inner")));
    EXPECT_OK(unlink(in_dir(d, "B/m/f")));
    EXPECT_OK(rmdir(in_dir(d, "B/m")));
    EXPECT_OK(rmdir(in_dir(d, "B/q2")));
    EXPECT_OK(unlink(in_dir(d, "B/file")));
    EXPECT_OK(rmdir(B));
    EXPECT_OK(rmdir(A));
    EXPECT_NLINK(d, 2);
}

static void test_rename_noreplace_exchange(void **state)
{
    const char *d = test_dir("rename2");
    const char *x = in_dir(d, "x"), *y = in_dir(d, "y");
    create_file(x, "X", 1);
    create_file(y, "Y", 1);
    EXPECT_ERRNO(renameat2(AT_FDCWD, x, AT_FDCWD, y, RENAME_NOREPLACE), EEXIST);
    expect_file(x, "X", 1);
    expect_file(y, "Y", 1);
    EXPECT_OK(renameat2(AT_FDCWD, x, AT_FDCWD, in_dir(d, "z"), RENAME_NOREPLACE));
    expect_file(in_dir(d, "z"), "X", 1);
    struct stat st;
    EXPECT_ERRNO(stat(x, &st), ENOENT);
    EXPECT_ERRNO(
        renameat2(AT_FDCWD, y, AT_FDCWD, in_dir(d, "z"), RENAME_NOREPLACE | RENAME_EXCHANGE),
        EINVAL);

    /* Two files trade places. */
    const char *p = in_dir(d, "p"), *q = in_dir(d, "q");
    create_file(p, "P", 1);
    create_file(q, "Q", 1);
    ino_t p_ino = stat_of(p).st_ino, q_ino = stat_of(q).st_ino;
    EXPECT_OK(renameat2(AT_FDCWD, p, AT_FDCWD, q, RENAME_EXCHANGE));
    expect_file(p, "Q", 1);
    expect_file(q, "P", 1);
    assert_int_equal(stat_of(p).st_ino, q_ino);
    assert_int_equal(stat_of(q).st_ino, p_ino);
    EXPECT_ERRNO(renameat2(AT_FDCWD, p, AT_FDCWD, in_dir(d, "none"), RENAME_EXCHANGE), ENOENT);

    /* A directory and a file in different parents trade places, one way
     * and back. */
    const char *A = in_dir(d, "A"), *B = in_dir(d, "B");
    EXPECT_OK(mkdir(A, 0755));
    EXPECT_OK(mkdir(B, 0755));
    EXPECT_OK(mkdir(in_dir(d, "A/dir"), 0755));
    create_file(in_dir(d, "A/dir/inside"), "in", 2);
    create_file(in_dir(d, "B/file"), "file", 4);
    ino_t a_ino = stat_of(A).st_ino, b_ino = stat_of(B).st_ino;
    EXPECT_NLINK(A, 3);
    EXPECT_NLINK(B, 2);

    EXPECT_OK(
        renameat2(AT_FDCWD, in_dir(d, "A/dir"), AT_FDCWD, in_dir(d, "B/file"), RENAME_EXCHANGE));
    assert_true(S_ISREG(lstat_of(in_dir(d, "A/dir")).st_mode));
    assert_true(S_ISDIR(lstat_of(in_dir(d, "B/file")).st_mode));
    expect_file(in_dir(d, "A/dir"), "file", 4);
    expect_file(in_dir(d, "B/file/inside"), "in", 2);
    assert_int_equal(stat_of(in_dir(d, "B/file/..")).st_ino, b_ino);
    EXPECT_NLINK(A, 2);
    EXPECT_NLINK(B, 3);

    EXPECT_OK(
        renameat2(AT_FDCWD, in_dir(d, "B/file"), AT_FDCWD, in_dir(d, "A/dir"), RENAME_EXCHANGE));
    assert_true(S_ISDIR(lstat_of(in_dir(d, "A/dir")).st_mode));
    assert_true(S_ISREG(lstat_of(in_dir(d, "B/file")).st_mode));
    assert_int_equal(stat_of(in_dir(d, "A/dir/..")).st_ino, a_ino);
    EXPECT_NLINK(A, 3);
    EXPECT_NLINK(B, 2);

    /* Two directories in different parents. */
    EXPECT_OK(mkdir(in_dir(d, "B/other"), 0755));
    EXPECT_OK(mkdir(in_dir(d, "B/other/sub"), 0755));
    EXPECT_NLINK(B, 3);
    EXPECT_OK(
        renameat2(AT_FDCWD, in_dir(d, "A/dir"), AT_FDCWD, in_dir(d, "B/other"), RENAME_EXCHANGE));
    EXPECT_NLINK(A, 3);
    EXPECT_NLINK(B, 3);
    assert_int_equal(stat_of(in_dir(d, "A/dir/..")).st_ino, a_ino);
    assert_int_equal(stat_of(in_dir(d, "B/other/..")).st_ino, b_ino);
    assert_true(S_ISDIR(stat_of(in_dir(d, "A/dir/sub")).st_mode));
    expect_file(in_dir(d, "B/other/inside"), "in", 2);
    EXPECT_NLINK(in_dir(d, "A/dir"), 3);
    EXPECT_NLINK(in_dir(d, "B/other"), 2);

    /* As the daemon stored it. */
    lsmfs_mount_remount(mnt);
    EXPECT_NLINK(A, 3);
    EXPECT_NLINK(B, 3);
    EXPECT_NLINK(in_dir(d, "A/dir"), 3);
    EXPECT_NLINK(in_dir(d, "B/other"), 2);
    assert_int_equal(stat_of(in_dir(d, "A/dir/..")).st_ino, a_ino);
    assert_int_equal(stat_of(in_dir(d, "B/other/..")).st_ino, b_ino);
    expect_file(p, "Q", 1);
    expect_file(q, "P", 1);
    expect_file(in_dir(d, "B/file"), "file", 4);
    /* Entry counts moved correctly: both empty out and go. */
    EXPECT_OK(rmdir(in_dir(d, "A/dir/sub")));
    EXPECT_OK(rmdir(in_dir(d, "A/dir")));
    EXPECT_OK(unlink(in_dir(d, "B/other/inside")));
    EXPECT_OK(rmdir(in_dir(d, "B/other")));
    EXPECT_OK(unlink(in_dir(d, "B/file")));
    EXPECT_OK(rmdir(A));
    EXPECT_OK(rmdir(B));
}

/* ---- special files ---- */

static void test_mknod(void **state)
{
    const char *d = test_dir("special");
    const char *fifo = in_dir(d, "fifo");
    EXPECT_OK(mkfifo(fifo, 0640));
    struct stat st = lstat_of(fifo);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(st.st_size, 0);
    /* A fifo on lsmfs is still a pipe. */
    int r = EXPECT_OK(open(fifo, O_RDONLY | O_NONBLOCK));
    int w = EXPECT_OK(open(fifo, O_WRONLY | O_NONBLOCK));
    write_all(w, "through", 7);
    char buf[16];
    assert_int_equal(read(r, buf, sizeof(buf)), 7);
    assert_memory_equal(buf, "through", 7);
    EXPECT_OK(close(w));
    EXPECT_OK(close(r));
    EXPECT_ERRNO(mkfifo(fifo, 0644), EEXIST);

    EXPECT_OK(mknod(in_dir(d, "sock"), S_IFSOCK | 0644, 0));
    assert_true(S_ISSOCK(lstat_of(in_dir(d, "sock")).st_mode));

    /* A socket bound on the mount works (the kernel keeps the endpoint). */
    int server = EXPECT_OK(socket(AF_UNIX, SOCK_STREAM, 0));
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    const char *bound = in_dir(d, "bound");
    if (strlen(bound) < sizeof(addr.sun_path)) {
        strcpy(addr.sun_path, bound);
        EXPECT_OK(bind(server, (struct sockaddr *)&addr, sizeof(addr)));
        EXPECT_OK(listen(server, 1));
        assert_true(S_ISSOCK(lstat_of(bound).st_mode));
        int client = EXPECT_OK(socket(AF_UNIX, SOCK_STREAM, 0));
        EXPECT_OK(connect(client, (struct sockaddr *)&addr, sizeof(addr)));
        EXPECT_OK(close(client));
    }
    EXPECT_OK(close(server));

    /* Device nodes (root may make them; nodev forbids opening them). */
    if (geteuid() == 0) {
        EXPECT_OK(mknod(in_dir(d, "null"), S_IFCHR | 0666, makedev(1, 3)));
        st = lstat_of(in_dir(d, "null"));
        assert_true(S_ISCHR(st.st_mode));
        assert_int_equal(st.st_rdev, makedev(1, 3));
        EXPECT_OK(mknod(in_dir(d, "blk"), S_IFBLK | 0600, makedev(259, 70000)));
        st = lstat_of(in_dir(d, "blk"));
        assert_true(S_ISBLK(st.st_mode));
        assert_int_equal(major(st.st_rdev), 259);
        assert_int_equal(minor(st.st_rdev), 70000);
    }
    EXPECT_OK(mknod(in_dir(d, "regular"), S_IFREG | 0600, 0));
    st = lstat_of(in_dir(d, "regular"));
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    EXPECT_ERRNO(mknod(in_dir(d, "regular"), S_IFIFO | 0600, 0), EEXIST);

    lsmfs_mount_remount(mnt);
    assert_true(S_ISFIFO(lstat_of(fifo).st_mode));
    assert_true(S_ISSOCK(lstat_of(in_dir(d, "sock")).st_mode));
    if (geteuid() == 0)
        assert_int_equal(lstat_of(in_dir(d, "null")).st_rdev, makedev(1, 3));
}

/* ---- attributes and times ---- */

static void test_chmod_chown_utimensat(void **state)
{
    const char *d = test_dir("attrs");
    const char *f = in_dir(d, "f");
    create_file(f, "x", 1);

    struct stat before = stat_of(f);
    pause_for_clock();
    EXPECT_OK(chmod(f, 0600));
    struct stat st = stat_of(f);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_true(S_ISREG(st.st_mode));
    EXPECT_LATER(st.st_ctim, before.st_ctim, "ctime after chmod");
    EXPECT_SAME_TIME(st.st_mtim, before.st_mtim, "mtime after chmod");
    EXPECT_OK(chmod(f, 07755));
    assert_int_equal(stat_of(f).st_mode & 07777, 07755);
    int fd = EXPECT_OK(open(f, O_RDONLY));
    EXPECT_OK(fchmod(fd, 0640));
    assert_int_equal(fstat_of(fd).st_mode & 07777, 0640);
    EXPECT_OK(close(fd));

    EXPECT_OK(chown(f, 1234, 5678));
    st = stat_of(f);
    assert_int_equal(st.st_uid, 1234);
    assert_int_equal(st.st_gid, 5678);
    EXPECT_OK(chown(f, (uid_t)-1, 42));
    st = stat_of(f);
    assert_int_equal(st.st_uid, 1234);
    assert_int_equal(st.st_gid, 42);
    EXPECT_OK(chown(d, 77, 88));
    assert_int_equal(stat_of(d).st_uid, 77);
    EXPECT_OK(chown(d, 0, 0));

    /* Exact times, to the nanosecond. */
    struct timespec times[2] = {{1000000000, 123456789}, {1500000000, 987654321}};
    before = stat_of(f);
    pause_for_clock();
    EXPECT_OK(utimensat(AT_FDCWD, f, times, 0));
    st = stat_of(f);
    EXPECT_SAME_TIME(st.st_atim, times[0], "atime set by utimensat");
    EXPECT_SAME_TIME(st.st_mtim, times[1], "mtime set by utimensat");
    EXPECT_LATER(st.st_ctim, before.st_ctim, "ctime after utimensat");

    /* UTIME_OMIT keeps one, UTIME_NOW sets the other to now. */
    struct timespec t0 = now_realtime();
    struct timespec omit_now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
    EXPECT_OK(utimensat(AT_FDCWD, f, omit_now, 0));
    struct timespec t1 = now_realtime();
    st = stat_of(f);
    EXPECT_SAME_TIME(st.st_atim, times[0], "atime with UTIME_OMIT");
    if (st.st_mtim.tv_sec < t0.tv_sec - 1 || st.st_mtim.tv_sec > t1.tv_sec + 1)
        fail_msg("mtime with UTIME_NOW is %lld, now is %lld", (long long)st.st_mtim.tv_sec,
                 (long long)t1.tv_sec);
    struct timespec mtime_now = st.st_mtim;
    pause_for_clock();
    struct timespec now_omit[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
    EXPECT_OK(utimensat(AT_FDCWD, f, now_omit, 0));
    st = stat_of(f);
    EXPECT_SAME_TIME(st.st_mtim, mtime_now, "mtime with UTIME_OMIT");
    if (st.st_atim.tv_sec < t0.tv_sec - 1)
        fail_msg("atime with UTIME_NOW is %lld, now is %lld", (long long)st.st_atim.tv_sec,
                 (long long)t1.tv_sec);
    /* Both omitted: nothing changes, not even ctime. */
    before = stat_of(f);
    pause_for_clock();
    struct timespec omit_omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    EXPECT_OK(utimensat(AT_FDCWD, f, omit_omit, 0));
    st = stat_of(f);
    EXPECT_SAME_TIME(st.st_ctim, before.st_ctim, "ctime with both UTIME_OMIT");
    EXPECT_SAME_TIME(st.st_mtim, before.st_mtim, "mtime with both UTIME_OMIT");

    /* AT_SYMLINK_NOFOLLOW sets the link's times, not the target's. */
    EXPECT_OK(symlink("f", in_dir(d, "l")));
    struct stat target_before = stat_of(f);
    EXPECT_OK(utimensat(AT_FDCWD, in_dir(d, "l"), times, AT_SYMLINK_NOFOLLOW));
    EXPECT_SAME_TIME(lstat_of(in_dir(d, "l")).st_mtim, times[1], "symlink mtime");
    EXPECT_SAME_TIME(stat_of(f).st_mtim, target_before.st_mtim, "target mtime");

    fd = EXPECT_OK(open(f, O_RDWR));
    EXPECT_OK(futimens(fd, times));
    EXPECT_SAME_TIME(fstat_of(fd).st_mtim, times[1], "mtime by futimens");
    EXPECT_OK(close(fd));

    /* All of it as stored by the daemon. */
    lsmfs_mount_remount(mnt);
    st = stat_of(f);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(st.st_uid, 1234);
    assert_int_equal(st.st_gid, 42);
    EXPECT_SAME_TIME(st.st_mtim, times[1], "mtime after remount");
    EXPECT_SAME_TIME(lstat_of(in_dir(d, "l")).st_mtim, times[1], "symlink mtime after remount");

    /* Before 1970 (with nanoseconds) and after 2038. */
    struct timespec extreme[2] = {{-1000, 500000000}, {(time_t)1 << 33, 1}};
    EXPECT_OK(utimensat(AT_FDCWD, f, extreme, 0));
    st = stat_of(f);
    EXPECT_SAME_TIME(st.st_mtim, extreme[1], "mtime after 2038");
    EXPECT_SAME_TIME(st.st_atim, extreme[0], "atime before 1970");
}

static void test_times_update(void **state)
{
    const char *d = test_dir("times");
    const char *f = in_dir(d, "f");

    struct stat dir_before = stat_of(d);
    pause_for_clock();
    create_file(f, "", 0);
    struct stat dir_after = stat_of(d);
    EXPECT_LATER(dir_after.st_mtim, dir_before.st_mtim, "directory mtime after create");
    EXPECT_LATER(dir_after.st_ctim, dir_before.st_ctim, "directory ctime after create");

    /* A write changes mtime and ctime. */
    struct stat before = stat_of(f);
    pause_for_clock();
    int fd = EXPECT_OK(open(f, O_WRONLY));
    write_all(fd, "data", 4);
    struct stat st = fstat_of(fd);
    EXPECT_LATER(st.st_mtim, before.st_mtim, "mtime after write");
    EXPECT_LATER(st.st_ctim, before.st_ctim, "ctime after write");
    EXPECT_OK(close(fd));
    struct stat written = stat_of(f);
    /* Reading does not. */
    pause_for_clock();
    char buf[8];
    fd = EXPECT_OK(open(f, O_RDONLY));
    assert_int_equal(read(fd, buf, sizeof(buf)), 4);
    EXPECT_OK(close(fd));
    st = stat_of(f);
    EXPECT_SAME_TIME(st.st_mtim, written.st_mtim, "mtime after read");
    EXPECT_SAME_TIME(st.st_ctim, written.st_ctim, "ctime after read");

    /* chmod: ctime only. */
    before = stat_of(f);
    pause_for_clock();
    EXPECT_OK(chmod(f, 0600));
    st = stat_of(f);
    EXPECT_LATER(st.st_ctim, before.st_ctim, "ctime after chmod");
    EXPECT_SAME_TIME(st.st_mtim, before.st_mtim, "mtime after chmod");

    /* setxattr: ctime. */
    before = stat_of(f);
    pause_for_clock();
    EXPECT_OK(setxattr(f, "user.t", "v", 1, 0));
    st = stat_of(f);
    EXPECT_LATER(st.st_ctim, before.st_ctim, "ctime after setxattr");
    EXPECT_SAME_TIME(st.st_mtim, before.st_mtim, "mtime after setxattr");

    /* link: the file's ctime and the directory's mtime. */
    before = stat_of(f);
    dir_before = stat_of(d);
    pause_for_clock();
    EXPECT_OK(link(f, in_dir(d, "g")));
    EXPECT_LATER(stat_of(f).st_ctim, before.st_ctim, "ctime after link");
    EXPECT_LATER(stat_of(d).st_mtim, dir_before.st_mtim, "directory mtime after link");

    /* rename: the file's ctime and the directory's mtime. */
    before = stat_of(f);
    dir_before = stat_of(d);
    pause_for_clock();
    EXPECT_OK(rename(f, in_dir(d, "f2")));
    EXPECT_LATER(stat_of(in_dir(d, "f2")).st_ctim, before.st_ctim, "ctime after rename");
    EXPECT_LATER(stat_of(d).st_mtim, dir_before.st_mtim, "directory mtime after rename");
    EXPECT_SAME_TIME(stat_of(in_dir(d, "f2")).st_mtim, before.st_mtim, "mtime after rename");

    /* unlink of one name: the file's ctime and the directory's mtime. */
    before = stat_of(in_dir(d, "g"));
    dir_before = stat_of(d);
    pause_for_clock();
    EXPECT_OK(unlink(in_dir(d, "f2")));
    EXPECT_LATER(stat_of(in_dir(d, "g")).st_ctim, before.st_ctim, "ctime after unlink");
    EXPECT_LATER(stat_of(d).st_mtim, dir_before.st_mtim, "directory mtime after unlink");

    /* mkdir and rmdir: the parent's mtime. */
    dir_before = stat_of(d);
    pause_for_clock();
    EXPECT_OK(mkdir(in_dir(d, "sub"), 0755));
    EXPECT_LATER(stat_of(d).st_mtim, dir_before.st_mtim, "directory mtime after mkdir");
    dir_before = stat_of(d);
    pause_for_clock();
    EXPECT_OK(rmdir(in_dir(d, "sub")));
    EXPECT_LATER(stat_of(d).st_mtim, dir_before.st_mtim, "directory mtime after rmdir");

    /* Files written, synced and written again at once (as editors and
     * databases do): the times shown are the times stored. Several files,
     * so that some second write falls in the same tick of the kernel's
     * coarse clock as the first. */
    struct stat rewritten[40];
    for (int i = 0; i < 40; i++) {
        fd = EXPECT_OK(open(in_dir(d, "rewritten-%d", i), O_RDWR | O_CREAT | O_EXCL, 0644));
        write_all(fd, "first", 5);
        EXPECT_OK(fsync(fd));
        write_all(fd, "second", 6);
        EXPECT_OK(fdatasync(fd));
        EXPECT_OK(close(fd));
        rewritten[i] = stat_of(in_dir(d, "rewritten-%d", i));
    }

    /* The times the daemon stored are the ones shown. */
    struct stat shown = stat_of(in_dir(d, "g"));
    struct stat dir_shown = stat_of(d);
    lsmfs_mount_remount(mnt);
    st = stat_of(in_dir(d, "g"));
    EXPECT_SAME_TIME(st.st_mtim, shown.st_mtim, "mtime across remount");
    EXPECT_SAME_TIME(st.st_ctim, shown.st_ctim, "ctime across remount");
    EXPECT_SAME_TIME(stat_of(d).st_mtim, dir_shown.st_mtim, "directory mtime across remount");
    int differ = 0;
    for (int i = 0; i < 40; i++) {
        st = stat_of(in_dir(d, "rewritten-%d", i));
        if (!ts_equal(st.st_mtim, rewritten[i].st_mtim) ||
            !ts_equal(st.st_ctim, rewritten[i].st_ctim)) {
            if (differ++ == 0)
                print_message("rewritten-%d: mtime %lld.%09ld ctime %lld.%09ld before remount, "
                              "%lld.%09ld and %lld.%09ld after\n",
                              i, (long long)rewritten[i].st_mtim.tv_sec,
                              rewritten[i].st_mtim.tv_nsec, (long long)rewritten[i].st_ctim.tv_sec,
                              rewritten[i].st_ctim.tv_nsec, (long long)st.st_mtim.tv_sec,
                              st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
        }
        assert_int_equal(st.st_size, 11);
    }
    if (differ > 0)
        fail_msg("%d of 40 files written, fsync'd, written again and fdatasync'd show other "
                 "times after a remount",
                 differ);
}

/* ---- extended attributes ---- */

static bool list_has(const char *list, ssize_t len, const char *name)
{
    int found = 0;
    for (const char *p = list; p < list + len; p += strlen(p) + 1)
        found += strcmp(p, name) == 0;
    return found == 1;
}

static void test_xattrs(void **state)
{
    const char *d = test_dir("xattr");
    const char *f = in_dir(d, "f");
    create_file(f, "x", 1);
    char buf[8192];

    EXPECT_ERRNO(getxattr(f, "user.color", buf, sizeof(buf)), ENODATA);
    assert_int_equal(listxattr(f, buf, sizeof(buf)), 0);
    EXPECT_OK(setxattr(f, "user.color", "red", 3, 0));
    assert_int_equal(getxattr(f, "user.color", NULL, 0), 3);
    assert_int_equal(getxattr(f, "user.color", buf, sizeof(buf)), 3);
    assert_memory_equal(buf, "red", 3);
    EXPECT_ERRNO(setxattr(f, "user.color", "blue", 4, XATTR_CREATE), EEXIST);
    EXPECT_ERRNO(setxattr(f, "user.missing", "x", 1, XATTR_REPLACE), ENODATA);
    EXPECT_ERRNO(getxattr(f, "user.missing", buf, sizeof(buf)), ENODATA);
    EXPECT_OK(setxattr(f, "user.color", "blue", 4, XATTR_REPLACE));
    assert_int_equal(getxattr(f, "user.color", buf, sizeof(buf)), 4);
    assert_memory_equal(buf, "blue", 4);
    EXPECT_ERRNO(getxattr(f, "user.color", buf, 3), ERANGE);

    EXPECT_OK(setxattr(f, "user.empty", "", 0, XATTR_CREATE));
    assert_int_equal(getxattr(f, "user.empty", buf, sizeof(buf)), 0);

    /* A binary value with zero bytes, near ext4's in-block limit. */
    char value[4000];
    fill_random(value, sizeof(value), 51);
    value[0] = 0;
    value[1999] = 0;
    EXPECT_OK(setxattr(f, "user.binary", value, sizeof(value), 0));
    assert_int_equal(getxattr(f, "user.binary", buf, sizeof(buf)), sizeof(value));
    assert_memory_equal(buf, value, sizeof(value));

    ssize_t need = listxattr(f, NULL, 0);
    ssize_t expected =
        (ssize_t)(sizeof("user.color") + sizeof("user.empty") + sizeof("user.binary"));
    assert_int_equal(need, expected);
    ssize_t len = listxattr(f, buf, sizeof(buf));
    assert_int_equal(len, expected);
    assert_true(list_has(buf, len, "user.color"));
    assert_true(list_has(buf, len, "user.empty"));
    assert_true(list_has(buf, len, "user.binary"));
    EXPECT_ERRNO(listxattr(f, buf, 1), ERANGE);
    EXPECT_ERRNO(listxattr(f, buf, (size_t)expected - 1), ERANGE);

    EXPECT_OK(removexattr(f, "user.color"));
    EXPECT_ERRNO(getxattr(f, "user.color", buf, sizeof(buf)), ENODATA);
    EXPECT_ERRNO(removexattr(f, "user.color"), ENODATA);
    len = listxattr(f, buf, sizeof(buf));
    assert_false(list_has(buf, len, "user.color"));
    assert_true(list_has(buf, len, "user.binary"));

    /* Many attributes. */
    for (int i = 0; i < 50; i++) {
        char name[32], v[32];
        snprintf(name, sizeof(name), "user.n%02d", i);
        int n = snprintf(v, sizeof(v), "value-%d", i);
        EXPECT_OK(setxattr(f, name, v, (size_t)n, XATTR_CREATE));
    }
    len = listxattr(f, buf, sizeof(buf));
    for (int i = 0; i < 50; i++) {
        char name[32];
        snprintf(name, sizeof(name), "user.n%02d", i);
        if (!list_has(buf, len, name))
            fail_msg("listxattr lacks %s (or lists it twice)", name);
    }

    /* On directories; trusted.* for root; not user.* on symlinks. */
    EXPECT_OK(setxattr(d, "user.dir", "d", 1, 0));
    assert_int_equal(getxattr(d, "user.dir", buf, sizeof(buf)), 1);
    if (geteuid() == 0) {
        EXPECT_OK(setxattr(f, "trusted.t", "t", 1, 0));
        assert_int_equal(getxattr(f, "trusted.t", buf, sizeof(buf)), 1);
    }
    EXPECT_OK(symlink("f", in_dir(d, "l")));
    EXPECT_ERRNO(lsetxattr(in_dir(d, "l"), "user.x", "x", 1, 0), EPERM);
    int fd = EXPECT_OK(open(f, O_RDONLY));
    EXPECT_OK(fsetxattr(fd, "user.byfd", "fd", 2, 0));
    assert_int_equal(fgetxattr(fd, "user.byfd", buf, sizeof(buf)), 2);
    EXPECT_OK(close(fd));

    lsmfs_mount_remount(mnt);
    assert_int_equal(getxattr(f, "user.binary", buf, sizeof(buf)), sizeof(value));
    assert_memory_equal(buf, value, sizeof(value));
    assert_int_equal(getxattr(f, "user.n49", buf, sizeof(buf)), 8);
    assert_memory_equal(buf, "value-49", 8);
    EXPECT_ERRNO(getxattr(f, "user.color", buf, sizeof(buf)), ENODATA);
    assert_int_equal(getxattr(d, "user.dir", buf, sizeof(buf)), 1);

    /* Unlinking the file drops its attributes with it; a new file of the
     * same name has none. */
    EXPECT_OK(unlink(f));
    create_file(f, "", 0);
    assert_int_equal(listxattr(f, buf, sizeof(buf)), 0);
}

/* ---- fallocate, SEEK_DATA/SEEK_HOLE, copy_file_range ---- */

static void test_fallocate(void **state)
{
    const char *d = test_dir("fallocate");
    const char *f = in_dir(d, "f");
    const size_t size = 1 * MIB;
    char *model = calloc(1, 4 * MIB);
    char *got = malloc(4 * MIB);
    assert_non_null(model);
    assert_non_null(got);

    int fd = EXPECT_OK(open(f, O_RDWR | O_CREAT | O_EXCL, 0644));
    EXPECT_OK(fallocate(fd, 0, 0, (off_t)size));
    assert_int_equal(fstat_of(fd).st_size, (off_t)size);
    pread_exact(fd, got, size, 0);
    expect_zeros("fallocated range", got, size);

    EXPECT_OK(fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)size, (off_t)size));
    assert_int_equal(fstat_of(fd).st_size, (off_t)size);
    assert_int_equal(pread(fd, got, 10, (off_t)size), 0);

    /* Allocating over data keeps the data. */
    fill_random(model, 256 * KIB, 61);
    pwrite_all(fd, model, 256 * KIB, 0);
    EXPECT_OK(fallocate(fd, 0, 0, 64 * KIB));
    pread_exact(fd, got, size, 0);
    expect_same_bytes("data after fallocate over it", got, model, size);

    /* Punching holes: aligned, then unaligned. */
    drop_cache(fd);
    blkcnt_t blocks_before = fstat_of(fd).st_blocks;
    EXPECT_OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 64 * KIB, 64 * KIB));
    memset(model + 64 * KIB, 0, 64 * KIB);
    EXPECT_OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 10001, 9999));
    memset(model + 10001, 0, 9999);
    assert_int_equal(fstat_of(fd).st_size, (off_t)size);
    pread_exact(fd, got, size, 0);
    expect_same_bytes("after punching holes", got, model, size);
    drop_cache(fd);
    blkcnt_t blocks_after = fstat_of(fd).st_blocks;
    if (blocks_after >= blocks_before)
        fail_msg("punching 64 KiB freed nothing: st_blocks %lld before, %lld after",
                 (long long)blocks_before, (long long)blocks_after);
    EXPECT_ERRNO(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096), EOPNOTSUPP);

    /* Zeroing ranges, inside and past the end. */
    EXPECT_OK(fallocate(fd, FALLOC_FL_ZERO_RANGE, 150000, 20000));
    memset(model + 150000, 0, 20000);
    EXPECT_OK(fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)size, 4096));
    assert_int_equal(fstat_of(fd).st_size, (off_t)size);
    EXPECT_OK(fallocate(fd, FALLOC_FL_ZERO_RANGE, (off_t)size + 1000, 5000));
    assert_int_equal(fstat_of(fd).st_size, (off_t)size + 6000);
    /* Plain fallocate past the end grows the file. */
    EXPECT_OK(fallocate(fd, 0, 2 * (off_t)MIB, 100));
    assert_int_equal(fstat_of(fd).st_size, 2 * (off_t)MIB + 100);

    pread_exact(fd, got, 2 * MIB + 100, 0);
    expect_same_bytes("after zeroing ranges", got, model, 2 * MIB + 100);
    drop_cache(fd);
    pread_exact(fd, got, 2 * MIB + 100, 0);
    expect_same_bytes("after zeroing ranges, from the daemon", got, model, 2 * MIB + 100);
    EXPECT_OK(close(fd));
    expect_file(f, model, 2 * MIB + 100);
    free(model);
    free(got);
}

static void test_seek_data_hole(void **state)
{
    const char *d = test_dir("seek");
    const char *f = in_dir(d, "f");
    char *block = random_buffer(4096, 71);
    const off_t second = (off_t)MIB, size = 2 * (off_t)MIB;

    int fd = EXPECT_OK(open(f, O_RDWR | O_CREAT | O_EXCL, 0644));
    EXPECT_ERRNO(lseek(fd, 0, SEEK_DATA), ENXIO);
    EXPECT_ERRNO(lseek(fd, 0, SEEK_HOLE), ENXIO);
    pwrite_all(fd, block, 4096, 0);
    pwrite_all(fd, block, 4096, second);
    EXPECT_OK(ftruncate(fd, size));

    assert_int_equal(lseek(fd, 0, SEEK_DATA), 0);
    assert_int_equal(lseek(fd, 0, SEEK_HOLE), 4096);
    assert_int_equal(lseek(fd, 100, SEEK_HOLE), 4096);
    assert_int_equal(lseek(fd, 4096, SEEK_DATA), second);
    assert_int_equal(lseek(fd, 5000, SEEK_DATA), second);
    assert_int_equal(lseek(fd, 5000, SEEK_HOLE), 5000);
    assert_int_equal(lseek(fd, second, SEEK_HOLE), second + 4096);
    assert_int_equal(lseek(fd, second + 100, SEEK_DATA), second + 100);
    EXPECT_ERRNO(lseek(fd, second + 4096, SEEK_DATA), ENXIO);
    assert_int_equal(lseek(fd, second + MIB / 2, SEEK_HOLE), second + (off_t)MIB / 2);
    EXPECT_ERRNO(lseek(fd, size, SEEK_DATA), ENXIO);
    EXPECT_ERRNO(lseek(fd, size, SEEK_HOLE), ENXIO);
    EXPECT_ERRNO(lseek(fd, size + 1, SEEK_HOLE), ENXIO);
    /* The offset moves to the answer. */
    assert_int_equal(lseek(fd, 4096, SEEK_DATA), second);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), second);
    EXPECT_OK(close(fd));

    /* Data up to the end: the only hole is the implicit one at EOF. */
    const char *full = in_dir(d, "full");
    char *data = random_buffer(8192 + 100, 72);
    create_file(full, data, 8192 + 100);
    fd = EXPECT_OK(open(full, O_RDONLY));
    assert_int_equal(lseek(fd, 0, SEEK_HOLE), 8192 + 100);
    assert_int_equal(lseek(fd, 8192, SEEK_DATA), 8192);
    EXPECT_OK(close(fd));

    /* A punched hole is a hole. */
    fd = EXPECT_OK(open(full, O_RDWR));
    EXPECT_OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096));
    assert_int_equal(lseek(fd, 0, SEEK_DATA), 4096);
    assert_int_equal(lseek(fd, 0, SEEK_HOLE), 0);
    EXPECT_OK(close(fd));
    free(block);
    free(data);
}

static void test_copy_file_range(void **state)
{
    const char *d = test_dir("copy");
    const size_t src_size = 200 * KIB;
    char *src_data = random_buffer(src_size, 81);
    char *model = calloc(1, 10 * MIB);
    char *got = malloc(10 * MIB);
    assert_non_null(model);
    assert_non_null(got);
    create_file(in_dir(d, "src"), src_data, src_size);

    int in = EXPECT_OK(open(in_dir(d, "src"), O_RDONLY));
    int out = EXPECT_OK(open(in_dir(d, "dst"), O_RDWR | O_CREAT | O_EXCL, 0644));
    loff_t off_in = 1000, off_out = 3000;
    assert_int_equal(copy_file_range(in, &off_in, out, &off_out, 50000, 0), 50000);
    assert_int_equal(off_in, 51000);
    assert_int_equal(off_out, 53000);
    memcpy(model + 3000, src_data + 1000, 50000);
    assert_int_equal(fstat_of(out).st_size, 53000);
    pread_exact(out, got, 53000, 0);
    expect_same_bytes("copied range", got, model, 53000);

    /* Short at the source's end, nothing past it. */
    off_in = (loff_t)src_size - 100;
    off_out = 0;
    assert_int_equal(copy_file_range(in, &off_in, out, &off_out, 1000, 0), 100);
    memcpy(model, src_data + src_size - 100, 100);
    off_in = (loff_t)src_size;
    assert_int_equal(copy_file_range(in, &off_in, out, &off_out, 1000, 0), 0);

    /* With the descriptors' own offsets. */
    assert_int_equal(lseek(in, 10, SEEK_SET), 10);
    assert_int_equal(lseek(out, 60000, SEEK_SET), 60000);
    assert_int_equal(copy_file_range(in, NULL, out, NULL, 20, 0), 20);
    assert_int_equal(lseek(in, 0, SEEK_CUR), 30);
    assert_int_equal(lseek(out, 0, SEEK_CUR), 60020);
    memcpy(model + 60000, src_data + 10, 20);
    assert_int_equal(fstat_of(out).st_size, 60020);
    pread_exact(out, got, 60020, 0);
    expect_same_bytes("after three copies", got, model, 60020);

    /* A large unaligned copy within one file, and overlap refused. */
    char *big = random_buffer(4 * MIB, 82);
    pwrite_all(out, big, 4 * MIB, 100000);
    memcpy(model + 100000, big, 4 * MIB);
    off_in = 100001;
    off_out = 5 * (loff_t)MIB + 7;
    size_t left = 4 * MIB - 1;
    while (left > 0) {
        ssize_t n = EXPECT_OK(copy_file_range(out, &off_in, out, &off_out, left, 0));
        assert_true(n > 0);
        left -= (size_t)n;
    }
    memcpy(model + 5 * MIB + 7, big + 1, 4 * MIB - 1);
    size_t total = 5 * MIB + 7 + 4 * MIB - 1;
    assert_int_equal(fstat_of(out).st_size, (off_t)total);
    off_in = 0;
    off_out = 100;
    EXPECT_ERRNO(copy_file_range(out, &off_in, out, &off_out, 1000, 0), EINVAL);

    pread_exact(out, got, total, 0);
    expect_same_bytes("after a large copy", got, model, total);
    drop_cache(out);
    pread_exact(out, got, total, 0);
    expect_same_bytes("after a large copy, from the daemon", got, model, total);

    int read_only = EXPECT_OK(open(in_dir(d, "dst"), O_RDONLY));
    off_in = 0;
    EXPECT_ERRNO(copy_file_range(in, &off_in, read_only, NULL, 10, 0), EBADF);
    EXPECT_OK(close(read_only));
    EXPECT_OK(close(in));
    EXPECT_OK(close(out));
    expect_file(in_dir(d, "src"), src_data, src_size);
    free(src_data);
    free(big);
    free(model);
    free(got);
}

/* ---- open but unlinked ---- */

static uint64_t orphans_reclaimed(void)
{
    char *stats = lsmfs_mount_stats(mnt);
    uint64_t n = lsmfs_stats_number(stats, "orphans reclaimed ");
    free(stats);
    return n;
}

static void test_unlinked_open_file(void **state)
{
    const char *d = test_dir("orphan");
    const char *f = in_dir(d, "f");
    char *data = random_buffer(150 * KIB, 91);
    char *got = malloc(150 * KIB);
    assert_non_null(got);

    int fd = EXPECT_OK(open(f, O_RDWR | O_CREAT | O_EXCL, 0644));
    write_all(fd, data, 100 * KIB);
    ino_t ino = fstat_of(fd).st_ino;
    uint64_t reclaimed_before = orphans_reclaimed();

    EXPECT_OK(unlink(f));
    struct stat st;
    EXPECT_ERRNO(stat(f, &st), ENOENT);
    EXPECT_ERRNO(open(f, O_RDONLY), ENOENT);
    st = fstat_of(fd);
    assert_int_equal(st.st_nlink, 0);
    assert_int_equal(st.st_size, 100 * KIB);

    /* Still readable and writable, also through the daemon. */
    drop_cache(fd);
    pread_exact(fd, got, 100 * KIB, 0);
    expect_same_bytes("unlinked file", got, data, 100 * KIB);
    write_all(fd, data + 100 * KIB, 50 * KIB);
    assert_int_equal(fstat_of(fd).st_size, 150 * KIB);
    drop_cache(fd);
    pread_exact(fd, got, 150 * KIB, 0);
    expect_same_bytes("unlinked file after growing", got, data, 150 * KIB);
    EXPECT_OK(fchmod(fd, 0600));
    assert_int_equal(fstat_of(fd).st_mode & 07777, 0600);
    EXPECT_OK(fsetxattr(fd, "user.orphan", "yes", 3, 0));

    /* The name is free for a new file. */
    int other = EXPECT_OK(open(f, O_RDWR | O_CREAT | O_EXCL, 0644));
    assert_int_not_equal(fstat_of(other).st_ino, ino);
    assert_int_equal(fstat_of(other).st_size, 0);
    EXPECT_OK(close(other));
    EXPECT_OK(unlink(f));

    /* Closing the last descriptor reclaims it (release and forget arrive
     * asynchronously: wait a little). */
    EXPECT_OK(close(fd));
    uint64_t reclaimed = 0;
    for (int waited = 0; waited < 5000; waited += 50) {
        reclaimed = orphans_reclaimed();
        if (reclaimed >= reclaimed_before + 2)
            break;
        lsmfs_sleep_ms(50);
    }
    if (reclaimed < reclaimed_before + 2)
        fail_msg("lsmfs stats: orphans reclaimed went from %llu to %llu after closing an "
                 "unlinked file and unlinking another (expected +2)",
                 (unsigned long long)reclaimed_before, (unsigned long long)reclaimed);

    /* Open and unlinked when the daemon dies: reclaimed at the next mount. */
    const char *g = in_dir(d, "g");
    fd = EXPECT_OK(open(g, O_RDWR | O_CREAT | O_EXCL, 0644));
    write_all(fd, data, 64 * KIB);
    EXPECT_OK(fsync(fd));
    EXPECT_OK(unlink(g));
    EXPECT_OK(syncfs(fd));
    lsmfs_mount_kill(mnt);
    close(fd); /* the connection is gone: whatever close says */
    lsmfs_mount_start(mnt);
    uint64_t at_mount = orphans_reclaimed();
    if (at_mount < 1)
        fail_msg("the orphan left by a killed daemon was not reclaimed at mount "
                 "(orphans reclaimed %llu)",
                 (unsigned long long)at_mount);
    EXPECT_ERRNO(stat(g, &st), ENOENT);
    free(data);
    free(got);
}

/* ---- big directories ---- */

#define BIG_DIR_ENTRIES 10000
#define BIG_DIR_ADDED 500

struct listing {
    unsigned char seen[BIG_DIR_ENTRIES];
    unsigned char added_seen[BIG_DIR_ADDED];
    int dots, dotdots, total;
};

/* Records one readdir entry; fails on a duplicate or a stranger. */
static void listing_add(struct listing *l, const struct dirent *e, const char *dir)
{
    int i;
    char tail;
    l->total++;
    if (strcmp(e->d_name, ".") == 0) {
        l->dots++;
        assert_int_equal(e->d_type, DT_DIR);
    } else if (strcmp(e->d_name, "..") == 0) {
        l->dotdots++;
    } else if (sscanf(e->d_name, "entry-%05d%c", &i, &tail) == 1 && i >= 0 && i < BIG_DIR_ENTRIES) {
        if (l->seen[i]++)
            fail_msg("readdir of %s returned %s twice", dir, e->d_name);
        if (e->d_type != DT_REG)
            fail_msg("%s has d_type %d, expected DT_REG", e->d_name, e->d_type);
    } else if (sscanf(e->d_name, "added-%03d%c", &i, &tail) == 1 && i >= 0 && i < BIG_DIR_ADDED) {
        if (l->added_seen[i]++)
            fail_msg("readdir of %s returned %s twice", dir, e->d_name);
    } else {
        fail_msg("readdir of %s returned a stranger: \"%s\"", dir, e->d_name);
    }
}

static void listing_expect_complete(const struct listing *l, const char *what)
{
    if (l->dots != 1 || l->dotdots != 1)
        fail_msg("%s: \".\" seen %d times, \"..\" %d times", what, l->dots, l->dotdots);
    for (int i = 0; i < BIG_DIR_ENTRIES; i++)
        if (l->seen[i] != 1)
            fail_msg("%s: entry-%05d seen %d times", what, i, l->seen[i]);
}

static void test_readdir_large(void **state)
{
    const char *d = test_dir("bigdir");
    for (int i = 0; i < BIG_DIR_ENTRIES; i++)
        EXPECT_OK(mknod(in_dir(d, "entry-%05d", i), S_IFREG | 0644, 0));

    DIR *dir = listing_dir = opendir(d);
    assert_non_null(dir);
    static struct listing l;
    memset(&l, 0, sizeof(l));
    struct dirent *e;
    ino_t dir_ino = stat_of(d).st_ino;
    while ((errno = 0, e = readdir(dir)) != NULL) {
        listing_add(&l, e, d);
        if (strcmp(e->d_name, ".") == 0)
            assert_int_equal(e->d_ino, dir_ino);
        if (strcmp(e->d_name, "entry-04321") == 0)
            assert_int_equal(e->d_ino, stat_of(in_dir(d, "entry-04321")).st_ino);
    }
    assert_int_equal(errno, 0);
    listing_expect_complete(&l, "full listing");
    assert_int_equal(l.total, BIG_DIR_ENTRIES + 2);

    /* telldir/seekdir: resume at a saved position. */
    rewinddir(dir);
    for (int i = 0; i < 5000; i++)
        assert_non_null(readdir(dir));
    long position = telldir(dir);
    assert_true(position >= 0);
    static char saved[100][NAME_MAX + 1];
    for (int i = 0; i < 100; i++) {
        e = readdir(dir);
        assert_non_null(e);
        snprintf(saved[i], sizeof(saved[i]), "%s", e->d_name);
    }
    while (readdir(dir) != NULL)
        ;
    seekdir(dir, position);
    for (int i = 0; i < 100; i++) {
        e = readdir(dir);
        assert_non_null(e);
        if (strcmp(e->d_name, saved[i]) != 0)
            fail_msg("after seekdir, entry %d is \"%s\", first time it was \"%s\"", i, e->d_name,
                     saved[i]);
    }
    closedir(dir);
    listing_dir = NULL;

    /* Entries created during a listing: every old entry still comes
     * exactly once; a new one at most once. */
    dir = listing_dir = opendir(d);
    assert_non_null(dir);
    memset(&l, 0, sizeof(l));
    for (int i = 0; i < 3000; i++) {
        e = readdir(dir);
        assert_non_null(e);
        listing_add(&l, e, d);
    }
    for (int i = 0; i < BIG_DIR_ADDED; i++)
        EXPECT_OK(mknod(in_dir(d, "added-%03d", i), S_IFREG | 0644, 0));
    while ((errno = 0, e = readdir(dir)) != NULL)
        listing_add(&l, e, d);
    assert_int_equal(errno, 0);
    listing_expect_complete(&l, "listing with entries added meanwhile");

    /* rewinddir shows the directory as it is now (POSIX). Checked at the
     * end, so that the rest runs either way. */
    rewinddir(dir);
    memset(&l, 0, sizeof(l));
    while ((errno = 0, e = readdir(dir)) != NULL)
        listing_add(&l, e, d);
    listing_expect_complete(&l, "listing after rewinddir");
    int added_missing = 0;
    for (int i = 0; i < BIG_DIR_ADDED; i++)
        added_missing += l.added_seen[i] != 1;
    closedir(dir);
    listing_dir = NULL;

    /* Empty it again. */
    for (int i = 0; i < BIG_DIR_ENTRIES; i++)
        EXPECT_OK(unlink(in_dir(d, "entry-%05d", i)));
    for (int i = 0; i < BIG_DIR_ADDED; i++)
        EXPECT_OK(unlink(in_dir(d, "added-%03d", i)));
    dir = listing_dir = opendir(d);
    assert_non_null(dir);
    int left = 0;
    while ((e = readdir(dir)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            left++;
    closedir(dir);
    listing_dir = NULL;
    assert_int_equal(left, 0);
    EXPECT_NLINK(d, 2);
    EXPECT_OK(rmdir(d));
    if (added_missing > 0)
        fail_msg("after rewinddir, %d of the %d entries created before the rewind are not listed",
                 added_missing, BIG_DIR_ADDED);
}

/* readdir's ".." is the parent, as on ext4 (ls -ai, find, du rely on it). */
static void test_readdir_dotdot(void **state)
{
    const char *d = test_dir("dotdot");
    EXPECT_OK(mkdir(in_dir(d, "child"), 0755));
    DIR *dir = opendir(in_dir(d, "child"));
    assert_non_null(dir);
    struct dirent *e;
    ino_t dotdot = 0, dot = 0;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, "..") == 0)
            dotdot = e->d_ino;
        if (strcmp(e->d_name, ".") == 0)
            dot = e->d_ino;
    }
    closedir(dir);
    assert_int_equal(dot, stat_of(in_dir(d, "child")).st_ino);
    if (dotdot != stat_of(d).st_ino)
        fail_msg("readdir gives \"..\" d_ino %llu; the parent is %llu", (unsigned long long)dotdot,
                 (unsigned long long)stat_of(d).st_ino);
}

/* ---- O_DIRECT, mmap ---- */

static void test_o_direct(void **state)
{
    const char *d = test_dir("direct");
    const char *f = in_dir(d, "f");
    const size_t n = 64 * KIB;
    char *buf, *got;
    assert_int_equal(posix_memalign((void **)&buf, 4096, n), 0);
    assert_int_equal(posix_memalign((void **)&got, 4096, n), 0);
    fill_random(buf, n, 101);

    int fd = EXPECT_OK(open(f, O_RDWR | O_CREAT | O_EXCL | O_DIRECT, 0644));
    pwrite_all(fd, buf, n, 4096);
    assert_int_equal(fstat_of(fd).st_size, (off_t)(4096 + n));
    memset(got, 0xee, n);
    pread_exact(fd, got, n, 4096);
    expect_same_bytes("O_DIRECT read back", got, buf, n);

    /* Coherent with buffered I/O in both directions. */
    int buffered = EXPECT_OK(open(f, O_RDWR));
    char plain[4096];
    pread_exact(buffered, plain, 4096, 0);
    expect_zeros("the hole before the O_DIRECT write", plain, 4096);
    pread_exact(buffered, plain, 4096, 8192);
    expect_same_bytes("buffered read of O_DIRECT data", plain, buf + 4096, 4096);
    fill_random(plain, 4096, 102);
    pwrite_all(buffered, plain, 4096, 4096);
    pread_exact(fd, got, 4096, 4096);
    expect_same_bytes("O_DIRECT read of buffered data", got, plain, 4096);
    EXPECT_OK(close(buffered));
    EXPECT_OK(close(fd));
    memcpy(buf, plain, 4096);
    char *want = calloc(1, 4096 + n);
    assert_non_null(want);
    memcpy(want + 4096, buf, n);
    expect_file(f, want, 4096 + n);
    free(want);
    free(buf);
    free(got);
}

static void test_mmap_shared(void **state)
{
    const char *d = test_dir("mmap");
    const char *f = in_dir(d, "f");
    const size_t n = 70000;
    char *data = random_buffer(n, 111);

    int fd = EXPECT_OK(open(f, O_RDWR | O_CREAT | O_EXCL, 0644));
    EXPECT_OK(ftruncate(fd, (off_t)n));
    struct stat before = fstat_of(fd);
    pause_for_clock();
    char *map = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(map != MAP_FAILED);
    memcpy(map, data, n);
    EXPECT_OK(msync(map, n, MS_SYNC));
    EXPECT_OK(munmap(map, n));
    EXPECT_OK(close(fd));
    expect_file(f, data, n);
    EXPECT_LATER(stat_of(f).st_mtim, before.st_mtim, "mtime after a write through mmap");

    /* Data written with write(2) shows in a new mapping. */
    fd = EXPECT_OK(open(f, O_RDWR));
    pwrite_all(fd, "written", 7, 50000);
    memcpy(data + 50000, "written", 7);
    map = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(map != MAP_FAILED);
    expect_same_bytes("mapping after write(2)", map, data, n);
    EXPECT_OK(munmap(map, n));
    EXPECT_OK(close(fd));

    lsmfs_mount_remount(mnt);
    expect_file(f, data, n);
    free(data);
}

/* ---- locks ---- */

struct lock_probe {
    const char *path;
    pid_t holder;
    bool expect_locked;
};

static void probe_flock(struct lsmfs_child *child, void *arg)
{
    const struct lock_probe *p = arg;
    int fd = open(p->path, O_RDWR);
    CHILD_EXPECT(child, fd >= 0);
    if (p->expect_locked) {
        CHILD_EXPECT_ERRNO(child, flock(fd, LOCK_EX | LOCK_NB), EWOULDBLOCK);
        CHILD_EXPECT_ERRNO(child, flock(fd, LOCK_SH | LOCK_NB), EWOULDBLOCK);
    } else {
        CHILD_EXPECT_OK(child, flock(fd, LOCK_EX | LOCK_NB));
    }
    close(fd);
}

static void probe_fcntl(struct lsmfs_child *child, void *arg)
{
    const struct lock_probe *p = arg;
    int fd = open(p->path, O_RDWR);
    CHILD_EXPECT(child, fd >= 0);
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 10};
    if (p->expect_locked) {
        CHILD_EXPECT_ERRNO(child, fcntl(fd, F_SETLK, &lk), EAGAIN);
        struct flock query = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
        CHILD_EXPECT_OK(child, fcntl(fd, F_GETLK, &query));
        CHILD_EXPECT(child, query.l_type == F_WRLCK);
        CHILD_EXPECT(child, query.l_pid == p->holder);
        /* Outside the held range is free. */
        struct flock free_range = {
            .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 100};
        CHILD_EXPECT_OK(child, fcntl(fd, F_SETLK, &free_range));
    } else {
        CHILD_EXPECT_OK(child, fcntl(fd, F_SETLK, &lk));
    }
    close(fd);
}

static void test_locks(void **state)
{
    const char *d = test_dir("locks");
    const char *f = in_dir(d, "f");
    create_file(f, "lock", 4);
    struct lock_probe probe = {.path = f, .holder = getpid(), .expect_locked = true};

    int fd = EXPECT_OK(open(f, O_RDWR));
    EXPECT_OK(flock(fd, LOCK_EX));
    lsmfs_run_child(NULL, probe_flock, &probe);
    EXPECT_OK(flock(fd, LOCK_UN));
    probe.expect_locked = false;
    lsmfs_run_child(NULL, probe_flock, &probe);

    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100};
    EXPECT_OK(fcntl(fd, F_SETLK, &lk));
    probe.expect_locked = true;
    lsmfs_run_child(NULL, probe_fcntl, &probe);
    lk.l_type = F_UNLCK;
    EXPECT_OK(fcntl(fd, F_SETLK, &lk));
    probe.expect_locked = false;
    lsmfs_run_child(NULL, probe_fcntl, &probe);

    /* Open file description locks conflict between two opens. */
    int other = EXPECT_OK(open(f, O_RDWR));
    struct flock ofd = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    EXPECT_OK(fcntl(fd, F_OFD_SETLK, &ofd));
    EXPECT_ERRNO(fcntl(other, F_OFD_SETLK, &ofd), EAGAIN);
    EXPECT_OK(close(other));
    EXPECT_OK(close(fd));
}

/* ---- sync calls, statfs, names ---- */

static void test_sync_and_statfs(void **state)
{
    const char *d = test_dir("sync");
    const char *f = in_dir(d, "f");
    for (int i = 0; i < 10; i++)
        create_file(in_dir(d, "used-%d", i), "", 0);
    int fd = EXPECT_OK(open(f, O_RDWR | O_CREAT, 0644));
    write_all(fd, "sync me", 7);
    assert_int_equal(fsync(fd), 0);
    pause_for_clock(); /* test_times_update covers a second write in the same tick */
    write_all(fd, " again", 6);
    assert_int_equal(fdatasync(fd), 0);
    assert_int_equal(syncfs(fd), 0);
    assert_int_equal(sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE), 0);
    EXPECT_OK(close(fd));
    int dfd = EXPECT_OK(open(d, O_RDONLY | O_DIRECTORY));
    assert_int_equal(fsync(dfd), 0);
    assert_int_equal(fdatasync(dfd), 0);
    EXPECT_OK(close(dfd));
    sync();

    struct statfs sfs;
    EXPECT_OK(statfs(mnt->mountpoint, &sfs));
    assert_int_equal(sfs.f_type, FUSE_SUPER_MAGIC);
    assert_true(sfs.f_bsize > 0);
    assert_true(sfs.f_frsize > 0);
    assert_int_equal(sfs.f_namelen, 255);
    assert_true(sfs.f_blocks > 0);
    assert_true(sfs.f_bfree <= sfs.f_blocks);
    assert_true(sfs.f_bavail <= sfs.f_bfree);
    assert_true(sfs.f_files > 0);
    assert_true(sfs.f_ffree <= sfs.f_files);
    struct statvfs svfs;
    EXPECT_OK(statvfs(f, &svfs));
    assert_int_equal(svfs.f_namemax, 255);
    assert_true(svfs.f_bsize > 0);
    assert_true(svfs.f_blocks > 0);
    assert_true(svfs.f_favail <= svfs.f_files);
    /* Used space follows the data: the files created so far are counted. */
    assert_true(sfs.f_files - sfs.f_ffree >= 10);
}

static void test_name_length(void **state)
{
    const char *d = test_dir("names");
    char name255[256], name256[257];
    memset(name255, 'n', 255);
    name255[255] = '\0';
    memset(name256, 'n', 256);
    name256[256] = '\0';
    const char *f = in_dir(d, "%s", name255);
    create_file(f, "255", 3);
    expect_file(f, "255", 3);
    name255[0] = 'd';
    EXPECT_OK(mkdir(in_dir(d, "%s", name255), 0755));
    EXPECT_OK(mkdir(in_dir(d, "%s/%s", name255, name255), 0755));
    name255[0] = 's';
    EXPECT_OK(symlink("target", in_dir(d, "%s", name255)));
    name255[0] = 'n';

    const char *long_path = in_dir(d, "%s", name256);
    struct stat st;
    EXPECT_ERRNO(open(long_path, O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
    EXPECT_ERRNO(open(long_path, O_RDONLY), ENAMETOOLONG);
    EXPECT_ERRNO(stat(long_path, &st), ENAMETOOLONG);
    EXPECT_ERRNO(mkdir(long_path, 0755), ENAMETOOLONG);
    EXPECT_ERRNO(mknod(long_path, S_IFIFO | 0644, 0), ENAMETOOLONG);
    EXPECT_ERRNO(symlink("target", long_path), ENAMETOOLONG);
    EXPECT_ERRNO(link(f, long_path), ENAMETOOLONG);
    EXPECT_ERRNO(rename(f, long_path), ENAMETOOLONG);
    EXPECT_ERRNO(unlink(long_path), ENAMETOOLONG);
    EXPECT_ERRNO(rmdir(long_path), ENAMETOOLONG);
    expect_file(f, "255", 3);

    /* Any bytes but '/' and NUL make a name. */
    const char *odd[] = {"with space",        "new\nline", "\xff\xfe bytes", "-dash", ".hidden",
                         "\xc3\xa9t\xc3\xa9", "..."};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
        create_file(in_dir(d, "%s", odd[i]), odd[i], strlen(odd[i]));
    DIR *dir = opendir(d);
    assert_non_null(dir);
    int found = 0, total = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        total++;
        for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
            found += strcmp(e->d_name, odd[i]) == 0;
        if (strlen(e->d_name) == 255)
            found += 100;
    }
    closedir(dir);
    assert_int_equal(found, (int)(sizeof(odd) / sizeof(odd[0])) + 300);
    assert_int_equal(total, 2 + 3 + (int)(sizeof(odd) / sizeof(odd[0])));
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
        expect_file(in_dir(d, "%s", odd[i]), odd[i], strlen(odd[i]));
}

/* ---- persistence ---- */

/* A tree with a bit of everything. */
static void build_rich_tree(const char *d)
{
    static const size_t sizes[] = {0, 1, 4095, 4096, 4097, 131073, 1000000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *data = random_buffer(sizes[i], 200 + i);
        create_file(in_dir(d, "size-%zu", sizes[i]), data, sizes[i]);
        free(data);
    }
    int fd = EXPECT_OK(open(in_dir(d, "sparse"), O_RDWR | O_CREAT, 0644));
    pwrite_all(fd, "tail", 4, 3 * (off_t)MIB);
    pwrite_all(fd, "head", 4, 0);
    EXPECT_OK(close(fd));
    EXPECT_OK(mkdir(in_dir(d, "a"), 0755));
    EXPECT_OK(mkdir(in_dir(d, "a/b"), 0700));
    EXPECT_OK(mkdir(in_dir(d, "a/b/c"), 0755));
    EXPECT_OK(mkdir(in_dir(d, "sticky"), 0755));
    EXPECT_OK(chmod(in_dir(d, "sticky"), 01777));
    create_file(in_dir(d, "a/b/c/deep"), "deep", 4);
    EXPECT_OK(link(in_dir(d, "a/b/c/deep"), in_dir(d, "a/hard1")));
    EXPECT_OK(link(in_dir(d, "a/b/c/deep"), in_dir(d, "hard2")));
    EXPECT_OK(symlink("a/b/c/deep", in_dir(d, "rel-link")));
    EXPECT_OK(symlink("/absolute/elsewhere", in_dir(d, "abs-link")));
    EXPECT_OK(mkfifo(in_dir(d, "fifo"), 0600));
    EXPECT_OK(mknod(in_dir(d, "socket"), S_IFSOCK | 0644, 0));
    if (geteuid() == 0) {
        EXPECT_OK(mknod(in_dir(d, "chardev"), S_IFCHR | 0600, makedev(4, 64)));
        EXPECT_OK(chown(in_dir(d, "size-1"), 1234, 5678));
        EXPECT_OK(lchown(in_dir(d, "rel-link"), 42, 43));
    }
    EXPECT_OK(chmod(in_dir(d, "size-4096"), 04755));
    EXPECT_OK(setxattr(in_dir(d, "size-4097"), "user.one", "1", 1, 0));
    EXPECT_OK(setxattr(in_dir(d, "size-4097"), "user.two", "22", 2, 0));
    EXPECT_OK(setxattr(in_dir(d, "a"), "user.dir", "on a dir", 8, 0));
    struct timespec times[2] = {{1234567890, 111}, {1234567891, 222}};
    EXPECT_OK(utimensat(AT_FDCWD, in_dir(d, "size-0"), times, 0));
    EXPECT_OK(mkdir(in_dir(d, "old-name"), 0755));
    create_file(in_dir(d, "old-name/inside"), "inside", 6);
    EXPECT_OK(rename(in_dir(d, "old-name"), in_dir(d, "a/new-name")));
    EXPECT_OK(truncate(in_dir(d, "size-131073"), 70000));
    create_file(in_dir(d, "doomed"), "doomed", 6);
    EXPECT_OK(unlink(in_dir(d, "doomed")));
}

static void test_persistence_across_remount(void **state)
{
    const char *d = test_dir("persist");
    build_rich_tree(d);
    /* The whole mount: this tree and whatever the earlier tests left. */
    char *before = lsmfs_tree_manifest(mnt->mountpoint);
    lsmfs_mount_remount(mnt);
    char *after = lsmfs_tree_manifest(mnt->mountpoint);
    lsmfs_expect_same_manifest(before, after, "across unmount and mount");

    /* Changes after a remount persist as well. */
    int fd = EXPECT_OK(open(in_dir(d, "size-1000000"), O_RDWR));
    pwrite_all(fd, "middle", 6, 500000);
    EXPECT_OK(close(fd));
    EXPECT_OK(unlink(in_dir(d, "hard2")));
    EXPECT_OK(rmdir(in_dir(d, "a/b/c/../../../sticky")));
    EXPECT_OK(removexattr(in_dir(d, "size-4097"), "user.one"));
    before = lsmfs_tree_manifest(mnt->mountpoint);
    lsmfs_mount_remount(mnt);
    after = lsmfs_tree_manifest(mnt->mountpoint);
    lsmfs_expect_same_manifest(before, after, "second remount");
}

static void test_kill9_after_fsync(void **state)
{
    const char *d = test_dir("crash");
    build_rich_tree(d);
    /* fsync every file written, then syncfs for the metadata. */
    static const size_t sizes[] = {0, 1, 4095, 4096, 4097, 131073, 1000000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        int fd = EXPECT_OK(open(in_dir(d, "size-%zu", sizes[i]), O_RDONLY));
        EXPECT_OK(fsync(fd));
        EXPECT_OK(close(fd));
    }
    int fd = EXPECT_OK(open(in_dir(d, "sparse"), O_RDONLY));
    EXPECT_OK(fsync(fd));
    EXPECT_OK(close(fd));
    fd = EXPECT_OK(open(in_dir(d, "a/b/c/deep"), O_RDONLY));
    EXPECT_OK(fsync(fd));
    EXPECT_OK(syncfs(fd));
    EXPECT_OK(close(fd));
    /* Metadata changes answered after the sync are in the WAL too (the
     * daemon answers only after writing them). */
    EXPECT_OK(mkdir(in_dir(d, "after-sync"), 0755));
    EXPECT_OK(rename(in_dir(d, "hard2"), in_dir(d, "after-sync/hard2")));
    EXPECT_OK(chmod(in_dir(d, "size-1"), 0600));
    EXPECT_OK(setxattr(in_dir(d, "a"), "user.late", "late", 4, 0));
    char *before = lsmfs_tree_manifest(d);

    lsmfs_mount_kill_and_remount(mnt);
    char *after = lsmfs_tree_manifest(d);
    lsmfs_expect_same_manifest(before, after, "after kill -9 and remount");

    /* And the mount works on. */
    create_file(in_dir(d, "after-crash"), "alive", 5);
    expect_file(in_dir(d, "after-crash"), "alive", 5);
}

/* A close(2) that returns 0 says the file's data reached lsmfs: under the
 * writeback cache close writes the dirty pages back first. The kernel
 * drops the pages it cannot send to a dead daemon without an error, so
 * after a kill -9 the close must fail (the FLUSH that lsmfs answers tells
 * it), unless the data had reached lsmfs before (without the writeback
 * cache, write() itself was answered by lsmfs). */
static void test_close_after_kill(void **state)
{
    const char *d = test_dir("close-after-kill");
    const char *path = in_dir(d, "f");
    /* A close first: a daemon that refused one FLUSH would get no more. */
    create_file(path, "first", 5);
    char data[5 + 3 * 4096];
    memcpy(data, "first", 5);
    for (size_t i = 5; i < sizeof(data); i++)
        data[i] = (char)('a' + i % 26);
    int fd = EXPECT_OK(open(path, O_WRONLY | O_APPEND));
    assert_int_equal(write(fd, data + 5, sizeof(data) - 5), (ssize_t)(sizeof(data) - 5));
    lsmfs_mount_kill(mnt);
    int rc = close(fd);
    int error = errno;
    lsmfs_mount_start(mnt);
    if (rc == 0) {
        expect_file(path, data, sizeof(data));
    } else {
        if (error != ENOTCONN && error != EIO)
            fail_msg("close after kill -9: %s, expected ENOTCONN or EIO", strerror(error));
        /* What the kernel had written back before the kill stays. */
        char got[sizeof(data) + 1];
        int in = EXPECT_OK(open(path, O_RDONLY));
        ssize_t n = read(in, got, sizeof(got));
        EXPECT_OK(close(in));
        if (n < 5 || n > (ssize_t)sizeof(data) || memcmp(got, data, (size_t)n) != 0)
            fail_msg("close after kill -9 failed; the file holds %zd bytes, not a prefix of "
                     "what was written",
                     n);
    }
}

#define MOUNT_TEST(f) cmocka_unit_test_teardown(f, teardown_test)

int main(void)
{
    const struct CMUnitTest tests[] = {
        MOUNT_TEST(test_open_flags),
        MOUNT_TEST(test_read_write_roundtrip),
        MOUNT_TEST(test_sparse_file),
        MOUNT_TEST(test_file_over_4gib),
        MOUNT_TEST(test_truncate),
        MOUNT_TEST(test_mkdir_rmdir_unlink),
        MOUNT_TEST(test_link_counts),
        MOUNT_TEST(test_symlink_readlink),
        MOUNT_TEST(test_rename),
        MOUNT_TEST(test_rename_across_parents),
        MOUNT_TEST(test_rename_noreplace_exchange),
        MOUNT_TEST(test_mknod),
        MOUNT_TEST(test_chmod_chown_utimensat),
        MOUNT_TEST(test_times_update),
        MOUNT_TEST(test_xattrs),
        MOUNT_TEST(test_fallocate),
        MOUNT_TEST(test_seek_data_hole),
        MOUNT_TEST(test_copy_file_range),
        MOUNT_TEST(test_unlinked_open_file),
        MOUNT_TEST(test_readdir_large),
        MOUNT_TEST(test_readdir_dotdot),
        MOUNT_TEST(test_o_direct),
        MOUNT_TEST(test_mmap_shared),
        MOUNT_TEST(test_locks),
        MOUNT_TEST(test_sync_and_statfs),
        MOUNT_TEST(test_name_length),
        MOUNT_TEST(test_persistence_across_remount),
        MOUNT_TEST(test_kill9_after_fsync),
        MOUNT_TEST(test_close_after_kill),
    };
    int failed =
        cmocka_run_group_tests_name("writeback_cache", tests, setup_writeback, teardown_group);
    failed += cmocka_run_group_tests_name("no_writeback_cache", tests, setup_no_writeback,
                                          teardown_group);
    return failed;
}
