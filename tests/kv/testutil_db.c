/*
 * testutil_db.c — helpers for the database-level tests (see testutil_db.h).
 */
#include "testutil_db.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

kv_db *tdb_open(const kv_options *options, const char *dir)
{
    kv_db *db = NULL;
    int rc = kv_open(options, dir, &db);
    if (rc != KV_OK) {
        fprintf(stderr, "kv_open(%s) failed: %s (%d): %s\n", dir, kv_strerror(rc), rc, kv_errmsg());
        fail();
    }
    assert_non_null(db);
    return db;
}

void tdb_close(kv_db *db)
{
    int rc = kv_close(db);
    if (rc != KV_OK) {
        fprintf(stderr, "kv_close failed: %s (%d): %s\n", kv_strerror(rc), rc, kv_errmsg());
        fail();
    }
}

void tdb_put(kv_db *db, kv_cf *cf, const char *key, const char *value)
{
    int rc = kv_put(db, NULL, cf, key, strlen(key), value, strlen(value));
    if (rc != KV_OK) {
        fprintf(stderr, "kv_put(%s) failed: %s: %s\n", key, kv_strerror(rc), kv_errmsg());
        fail();
    }
}

static void print_bytes(const char *label, const void *data, size_t len)
{
    const unsigned char *p = data;
    fprintf(stderr, "%s (%zu bytes): ", label, len);
    for (size_t i = 0; i < len && i < 48; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f)
            fputc(p[i], stderr);
        else
            fprintf(stderr, "\\x%02x", p[i]);
    }
    fprintf(stderr, len > 48 ? "...\n" : "\n");
}

void tdb_expect_bytes(kv_db *db, const kv_read_options *ro, kv_cf *cf, const void *key,
                      size_t key_len, const void *value, size_t len)
{
    char *got = NULL;
    size_t got_len = 0;
    int rc = kv_get(db, ro, cf, key, key_len, &got, &got_len);
    if (rc != KV_OK) {
        print_bytes("kv_get failed for key", key, key_len);
        fprintf(stderr, "  status %s (%d): %s\n", kv_strerror(rc), rc,
                rc == KV_NOT_FOUND ? "" : kv_errmsg());
        fail();
    }
    if (got_len != len || (len > 0 && memcmp(got, value, len) != 0)) {
        print_bytes("wrong value for key", key, key_len);
        print_bytes("  expected", value, len);
        print_bytes("  got     ", got, got_len);
        kv_free(got);
        fail();
    }
    kv_free(got);
}

void tdb_expect(kv_db *db, const kv_read_options *ro, kv_cf *cf, const char *key, const char *value)
{
    tdb_expect_bytes(db, ro, cf, key, strlen(key), value, strlen(value));
}

void tdb_expect_missing(kv_db *db, const kv_read_options *ro, kv_cf *cf, const char *key)
{
    char *got = NULL;
    size_t got_len = 0;
    int rc = kv_get(db, ro, cf, key, strlen(key), &got, &got_len);
    if (rc != KV_NOT_FOUND) {
        fprintf(stderr, "key %s: expected KV_NOT_FOUND, got %s (%d)", key, kv_strerror(rc), rc);
        if (rc == KV_OK)
            print_bytes(" with value", got, got_len);
        else
            fprintf(stderr, ": %s\n", kv_errmsg());
        if (rc == KV_OK)
            kv_free(got);
        fail();
    }
}

void tdb_fill_value(uint64_t id, char *out, size_t len)
{
    /* splitmix64 stream seeded by id: cheap, and different ids differ in
     * every 8-byte word, so a value can never be mistaken for another. */
    uint64_t state = id * 0x2545f4914f6cdd1dull + 0x1234567;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        size_t n = len - i < 8 ? len - i : 8;
        memcpy(out + i, &z, n);
    }
}

static bool has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);
    return n >= s && strcmp(name + n - s, suffix) == 0;
}

char *tdb_newest_file(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *best = NULL;
    unsigned long long best_number = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!has_suffix(e->d_name, suffix))
            continue;
        unsigned long long number = strtoull(e->d_name, NULL, 10);
        if (best == NULL || number > best_number) {
            free(best);
            size_t n = strlen(dir) + strlen(e->d_name) + 2;
            best = malloc(n);
            assert_non_null(best);
            snprintf(best, n, "%s/%s", dir, e->d_name);
            best_number = number;
        }
    }
    closedir(d);
    return best;
}

int tdb_count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (has_suffix(e->d_name, suffix))
            count++;
    closedir(d);
    return count;
}

uint64_t tdb_file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "stat %s: %s\n", path, strerror(errno));
        fail();
    }
    return (uint64_t)st.st_size;
}

void tdb_flip_byte(const char *path, uint64_t offset)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char byte;
    assert_int_equal(pread(fd, &byte, 1, (off_t)offset), 1);
    byte ^= 0x5a;
    assert_int_equal(pwrite(fd, &byte, 1, (off_t)offset), 1);
    close(fd);
}

void tdb_truncate(const char *path, uint64_t size)
{
    assert_int_equal(truncate(path, (off_t)size), 0);
}

void tdb_write_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
}

char *tdb_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "open %s: %s\n", path, strerror(errno));
        fail();
    }
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    char *buf = malloc((size_t)st.st_size + 1);
    assert_non_null(buf);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    if (len)
        *len = got;
    return buf;
}

const char *tdb_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *tdb_dir_fingerprint(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char **names = NULL;
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        names = realloc(names, (count + 1) * sizeof(*names));
        assert_non_null(names);
        names[count++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof(*names), compare_names);

    size_t cap = 64 + count * 300, used = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    out[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        struct stat st;
        assert_int_equal(lstat(path, &st), 0);
        uint64_t hash = 1469598103934665603ull; /* FNV-1a */
        if (S_ISREG(st.st_mode)) {
            size_t len;
            char *data = tdb_read_file(path, &len);
            for (size_t j = 0; j < len; j++)
                hash = (hash ^ (unsigned char)data[j]) * 1099511628211ull;
            free(data);
        }
        used +=
            (size_t)snprintf(out + used, cap - used, "%s mode=%o size=%lld hash=%016" PRIx64 "\n",
                             names[i], (unsigned)st.st_mode, (long long)st.st_size, hash);
        free(names[i]);
    }
    free(names);
    return out;
}

static const char *watchdog_phase = "";

static void watchdog_fired(int sig)
{
    (void)sig;
    static const char prefix[] = "\nWATCHDOG: test hung in phase: ";
    ssize_t ignored = write(2, prefix, sizeof(prefix) - 1);
    ignored = write(2, watchdog_phase, strlen(watchdog_phase));
    ignored = write(2, "\n", 1);
    (void)ignored;
    abort();
}

void tdb_watchdog(unsigned seconds, const char *phase)
{
    watchdog_phase = phase ? phase : "";
    signal(SIGALRM, watchdog_fired);
    alarm(seconds);
}

uint64_t tdb_property_u64(kv_db *db, kv_cf *cf, const char *name)
{
    char *value = NULL;
    int rc = kv_get_property(db, cf, name, &value);
    if (rc != KV_OK) {
        fprintf(stderr, "kv_get_property(%s): %s: %s\n", name, kv_strerror(rc), kv_errmsg());
        fail();
    }
    assert_non_null(value);
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (end == value || errno != 0) {
        fprintf(stderr, "property %s is not a number: \"%s\"\n", name, value);
        kv_free(value);
        fail();
    }
    kv_free(value);
    return v;
}
