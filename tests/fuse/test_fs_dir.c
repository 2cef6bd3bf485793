/*
 * test_fs_dir.c — open directories of the lsmfs core (fs_dir.c) over a
 * real kv database, without a mount:
 *  - readdir lists "." (the directory), ".." (its parent, following a
 *    move) and then every entry exactly once in bytewise name order;
 *    offsets are stable: reading in small chunks and resuming at the
 *    returned next_offset, or seeking back to any offset returned before
 *    (telldir/seekdir), gives the same continuation;
 *  - a handle lists the directory as it was at opendir (a snapshot), even
 *    against a concurrent writer; a new opendir, or a rewind (readdir from
 *    offset 0 after a first listing, as rewinddir asks), sees the changes;
 *  - readdirplus gives each listed entry a kernel reference, and takes it
 *    back when the filler refuses the entry;
 *  - a large directory (100,000 entries; 1,000,000 with KV_TEST_LONG=1)
 *    listed completely and in order, before and after a reopen.
 */
#include "testutil.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "fsutil.h"
#include "schema.h"

/* ---- helpers ---- */

static struct fs *open_fs(const char *dir, size_t write_buffer_size)
{
    struct fs_options options;
    fsutil_options(&options, write_buffer_size);
    options.cache_size = 8u << 20;
    return fsutil_open(dir, &options);
}

static struct stat stat_of(struct fs *fs, uint64_t ino)
{
    struct stat st;
    assert_int_equal(fs_getattr(fs, ino, &st), 0);
    return st;
}

static uint64_t kernel_known(struct fs *fs)
{
    static const char label[] = "inodes known to the kernel ";
    char *text = fs_stats_text(fs);
    assert_non_null(text);
    const char *at = strstr(text, label);
    assert_non_null(at);
    uint64_t value = strtoull(at + strlen(label), NULL, 10);
    free(text);
    return value;
}

static bool has_inode_key(struct fs *fs, uint64_t ino)
{
    char key[FS_INODE_KEY_LEN];
    char *value;
    size_t len;
    int rc = kv_get(fs_db(fs), NULL, kv_get_cf(fs_db(fs), FS_META_CF), key, fs_key_inode(key, ino),
                    &value, &len);
    if (rc == 0)
        kv_free(value);
    else
        assert_int_equal(rc, KV_NOT_FOUND);
    return rc == 0;
}

static bool has_orphan_key(struct fs *fs, uint64_t ino)
{
    char key[FS_INODE_KEY_LEN];
    char *value;
    size_t len;
    int rc = kv_get(fs_db(fs), NULL, kv_get_cf(fs_db(fs), FS_META_CF), key, fs_key_orphan(key, ino),
                    &value, &len);
    if (rc == 0)
        kv_free(value);
    return rc == 0;
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* ---- collecting what readdir gives ---- */

struct seen {
    char *name;
    struct stat st;
    bool referenced;
    uint64_t next_offset;
};

struct collector {
    struct seen *items;
    size_t count, cap;
    size_t limit;            /* entries accepted per call; then the filler refuses */
    size_t accepted;         /* in the current call */
    const char *refuse_name; /* refuse this entry (once) */
    size_t offered;          /* entries offered, refused ones included */
};

static bool collect(void *ctx, const char *name, const struct stat *st, bool referenced,
                    uint64_t next_offset)
{
    struct collector *c = ctx;
    c->offered++;
    if (c->accepted >= c->limit)
        return false;
    if (c->refuse_name != NULL && strcmp(name, c->refuse_name) == 0) {
        c->refuse_name = NULL;
        return false;
    }
    if (c->count == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->items = realloc(c->items, c->cap * sizeof(*c->items));
    }
    c->items[c->count++] = (struct seen){strdup(name), *st, referenced, next_offset};
    c->accepted++;
    return true;
}

static void collector_init(struct collector *c, size_t limit)
{
    memset(c, 0, sizeof(*c));
    c->limit = limit;
}

/* Gives back the references readdirplus handed out. */
static void collector_forget(struct fs *fs, struct collector *c)
{
    for (size_t i = 0; i < c->count; i++)
        if (c->items[i].referenced) {
            fs_forget(fs, c->items[i].st.st_ino, 1);
            c->items[i].referenced = false;
        }
}

static void collector_free(struct collector *c)
{
    for (size_t i = 0; i < c->count; i++)
        free(c->items[i].name);
    free(c->items);
    memset(c, 0, sizeof(*c));
}

/* One readdir call from offset, accepting at most limit entries. */
static size_t read_some(struct fs *fs, struct fs_dir *dir, uint64_t offset, bool plus, size_t limit,
                        struct collector *c)
{
    c->limit = limit;
    c->accepted = 0;
    assert_int_equal(fs_readdir(fs, dir, offset, plus, collect, c), 0);
    return c->accepted;
}

/* The whole listing, `chunk` entries per call, each call resuming at the
 * next_offset of the last entry accepted. */
static void read_all(struct fs *fs, struct fs_dir *dir, bool plus, size_t chunk,
                     struct collector *c)
{
    collector_init(c, chunk);
    uint64_t offset = 0;
    while (read_some(fs, dir, offset, plus, chunk, c) > 0)
        offset = c->items[c->count - 1].next_offset;
}

/* ---- the expected contents ---- */

struct expected {
    char *name;
    uint64_t ino;
    mode_t type;
};

static int compare_expected(const void *a, const void *b)
{
    return strcmp(((const struct expected *)a)->name, ((const struct expected *)b)->name);
}

/* c holds "." (dir_ino), ".." (parent_ino) and then exactly
 * want[0..count) in order. */
static void check_listing(const struct collector *c, uint64_t dir_ino, uint64_t parent_ino,
                          const struct expected *want, size_t count)
{
    if (c->count != count + 2)
        fail_msg("listed %zu entries, expected %zu", c->count - 2, count);
    assert_string_equal(c->items[0].name, ".");
    assert_string_equal(c->items[1].name, "..");
    assert_int_equal(c->items[0].st.st_ino, dir_ino);
    assert_int_equal(c->items[1].st.st_ino, parent_ino);
    for (size_t i = 0; i < count; i++) {
        const struct seen *got = &c->items[i + 2];
        if (strcmp(got->name, want[i].name) != 0)
            fail_msg("entry %zu is \"%.80s\", expected \"%.80s\"", i, got->name, want[i].name);
        assert_int_equal(got->st.st_ino, want[i].ino);
        assert_int_equal(got->st.st_mode & S_IFMT, want[i].type);
    }
    /* offsets: nonzero, each used once */
    for (size_t i = 0; i < c->count; i++) {
        assert_true(c->items[i].next_offset != 0);
        if (i > 0)
            assert_true(c->items[i].next_offset != c->items[i - 1].next_offset);
    }
}

/* Two listings, same names, same inodes, same offsets. */
static void check_same(const struct collector *a, const struct collector *b)
{
    assert_int_equal(a->count, b->count);
    for (size_t i = 0; i < a->count; i++) {
        assert_string_equal(a->items[i].name, b->items[i].name);
        assert_int_equal(a->items[i].st.st_ino, b->items[i].st.st_ino);
        assert_int_equal(a->items[i].next_offset, b->items[i].next_offset);
    }
}

/* A random name of 1..max_len bytes: any byte but '/' and NUL. */
static void random_name(kv_test_rng *rng, char *out, size_t max_len)
{
    size_t len = 1 + kv_test_rng_uniform(rng, max_len);
    for (size_t i = 0; i < len; i++) {
        char ch;
        do {
            ch = (char)(kv_test_rng_uniform(rng, 4) == 0 ? 0x80 + kv_test_rng_uniform(rng, 128)
                                                         : 'a' + kv_test_rng_uniform(rng, 6));
        } while (ch == '/' || ch == '\0');
        out[i] = ch;
    }
    out[len] = '\0';
    if (strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
        out[0] = 'x';
}

static int setup(void **state)
{
    struct fs_options options;
    fsutil_options(&options, 256u << 10);
    options.cache_size = 8u << 20;
    *state = fsutil_fixture_create("fs_dir", &options);
    return 0;
}

/* Fills directory `dir` with `count` entries of random names and types;
 * returns them sorted by name (free the names). */
static struct expected *populate(struct fs *fs, uint64_t dir, size_t count, kv_test_rng *rng)
{
    struct expected *want = calloc(count, sizeof(*want));
    static const mode_t types[] = {S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, S_IFSOCK};
    for (size_t i = 0; i < count; i++) {
        char name[64];
        struct stat st;
        mode_t type = types[kv_test_rng_uniform(rng, 5)];
        int rc;
        do {
            random_name(rng, name, 12);
            rc = fs_create_node(fs, fsutil_me(), dir, name, type == S_IFLNK ? 0 : type | 0644, 0,
                                type == S_IFLNK ? "target" : NULL, &st);
        } while (rc == -EEXIST);
        assert_int_equal(rc, 0);
        fs_forget(fs, st.st_ino, 1);
        want[i] = (struct expected){strdup(name), st.st_ino, type};
    }
    qsort(want, count, sizeof(*want), compare_expected);
    return want;
}

static void expected_free(struct expected *want, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(want[i].name);
    free(want);
}

/* ---- order and offsets ---- */

static void test_order_and_offsets(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(4242));
    uint64_t d = fsutil_make_node(fs, FS_ROOT_INO, "d", S_IFDIR | 0755, NULL);
    /* neighbours before and after, so the listing must stop at its own keys */
    fsutil_make_node(fs, FS_ROOT_INO, "c", S_IFDIR | 0755, NULL);
    uint64_t e = fsutil_make_node(fs, FS_ROOT_INO, "e", S_IFDIR | 0755, NULL);
    fsutil_make_node(fs, e, "zzz", S_IFREG | 0644, NULL);
    const size_t count = 600;
    /* random names: some are prefixes of others, some have bytes >= 0x80 */
    struct expected *want = populate(fs, d, count, &rng);
    assert_int_equal(stat_of(fs, d).st_size, count);

    struct fs_dir *dir;
    assert_int_equal(fs_opendir(fs, d, &dir), 0);
    struct collector full;
    read_all(fs, dir, false, SIZE_MAX, &full);
    check_listing(&full, d, FS_ROOT_INO, want, count);
    for (size_t i = 0; i < full.count; i++) {
        assert_false(full.items[i].referenced);
        /* without plus: only the number and the type */
        assert_int_equal(full.items[i].st.st_mode & ~S_IFMT, 0);
        assert_int_equal(full.items[i].st.st_nlink, 0);
    }

    /* chunks of every small size, on this handle and on a fresh one */
    static const size_t chunks[] = {1, 2, 3, 5, 17, 64, 599, 601, 602, 1000};
    for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
        struct collector c;
        read_all(fs, dir, false, chunks[k], &c);
        check_same(&full, &c);
        collector_free(&c);
        struct fs_dir *other;
        assert_int_equal(fs_opendir(fs, d, &other), 0);
        read_all(fs, other, false, chunks[k], &c);
        check_same(&full, &c);
        collector_free(&c);
        fs_releasedir(fs, other);
    }

    /* seekdir to any offset told before: the same continuation, whatever
     * the handle did in between */
    struct fs_dir *second;
    assert_int_equal(fs_opendir(fs, d, &second), 0);
    for (int round = 0; round < 400; round++) {
        struct fs_dir *h = round % 3 == 0 ? second : dir;
        size_t from = kv_test_rng_uniform(&rng, full.count + 1); /* 0: from the start */
        uint64_t offset = from == 0 ? 0 : full.items[from - 1].next_offset;
        size_t limit = 1 + kv_test_rng_uniform(&rng, 40);
        struct collector c;
        collector_init(&c, limit);
        read_some(fs, h, offset, false, limit, &c);
        size_t expect = full.count - from < limit ? full.count - from : limit;
        assert_int_equal(c.count, expect);
        for (size_t i = 0; i < c.count; i++) {
            assert_string_equal(c.items[i].name, full.items[from + i].name);
            assert_int_equal(c.items[i].next_offset, full.items[from + i].next_offset);
        }
        collector_free(&c);
    }
    /* past the end: nothing, and no error */
    struct collector none;
    collector_init(&none, SIZE_MAX);
    read_some(fs, dir, full.items[full.count - 1].next_offset, false, SIZE_MAX, &none);
    assert_int_equal(none.count, 0);
    collector_free(&none);

    fs_releasedir(fs, second);
    fs_releasedir(fs, dir);

    /* ".." of a subdirectory is its parent, and follows it when moved */
    size_t sub = 0;
    while (want[sub].type != S_IFDIR)
        sub++;
    for (int moved = 0; moved < 2; moved++) {
        assert_int_equal(fs_opendir(fs, want[sub].ino, &dir), 0);
        struct collector c;
        read_all(fs, dir, false, SIZE_MAX, &c);
        check_listing(&c, want[sub].ino, moved ? e : d, NULL, 0);
        collector_free(&c);
        fs_releasedir(fs, dir);
        if (!moved)
            assert_int_equal(fs_rename(fs, d, want[sub].name, e, "moved", 0), 0);
    }
    collector_free(&full);
    expected_free(want, count);
    assert_int_equal(kernel_known(fs), 0);
}

static void test_empty_and_errors(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    struct fs_dir *dir;
    /* the root of a fresh file system, and an empty directory */
    uint64_t empty = fsutil_make_node(fs, FS_ROOT_INO, "empty", S_IFDIR | 0700, NULL);
    fsutil_make_node(fs, empty, "gone", S_IFREG | 0600, NULL);
    assert_int_equal(fs_unlink(fs, empty, "gone"), 0);
    uint64_t dirs[2] = {empty, FS_ROOT_INO};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(fs_opendir(fs, dirs[i], &dir), 0);
        struct collector c;
        read_all(fs, dir, i == 1, SIZE_MAX, &c);
        if (i == 0) {
            check_listing(&c, empty, FS_ROOT_INO, NULL, 0);
        } else {
            assert_int_equal(c.count, 3);
            assert_string_equal(c.items[2].name, "empty");
            collector_forget(fs, &c);
        }
        collector_free(&c);
        fs_releasedir(fs, dir);
    }
    uint64_t file = fsutil_make_node(fs, FS_ROOT_INO, "file", S_IFREG | 0644, NULL);
    assert_int_equal(fs_opendir(fs, file, &dir), -ENOTDIR);
    assert_int_equal(fs_opendir(fs, file + 1000, &dir), -ENOENT);
    assert_int_equal(kernel_known(fs), 0);
}

/* ---- snapshots ---- */

static void test_snapshot(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    uint64_t d = fsutil_make_node(fs, FS_ROOT_INO, "d", S_IFDIR | 0755, NULL);
    uint64_t other = fsutil_make_node(fs, FS_ROOT_INO, "other", S_IFDIR | 0755, NULL);
    const size_t count = 200;
    struct expected *before = calloc(count, sizeof(*before));
    for (size_t i = 0; i < count; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%04zu", 2 * i); /* even numbers */
        before[i] = (struct expected){strdup(name),
                                      fsutil_make_node(fs, d, name, S_IFREG | 0644, NULL), S_IFREG};
    }

    /* handles opened before the changes: one read partly before them, two
     * read only after them. Each lists the directory as it was at opendir. */
    struct fs_dir *old, *unread, *unread_plus;
    assert_int_equal(fs_opendir(fs, d, &old), 0);
    assert_int_equal(fs_opendir(fs, d, &unread), 0);
    assert_int_equal(fs_opendir(fs, d, &unread_plus), 0);
    struct collector c;
    collector_init(&c, 0);
    assert_int_equal(read_some(fs, old, 0, false, 52, &c), 52); /* ".", "..", n0000 .. n0098 */
    uint64_t resume = c.items[c.count - 1].next_offset;

    /* change everything around the position reached */
    for (int i = 1; i < 400; i += 4) { /* odd numbers, on both sides */
        char name[16];
        snprintf(name, sizeof(name), "n%04d", i);
        fsutil_make_node(fs, d, name, S_IFDIR | 0755, NULL);
    }
    for (int i = 0; i < 400; i += 16) { /* removals, on both sides */
        char name[16];
        snprintf(name, sizeof(name), "n%04d", i);
        assert_int_equal(fs_unlink(fs, d, name), 0);
    }
    assert_int_equal(fs_rename(fs, d, "n0102", d, "a-renamed", 0), 0);
    assert_int_equal(fs_rename(fs, d, "n0302", other, "moved", 0), 0);
    assert_int_equal(fs_rename(fs, d, "n0010", d, "n0390", RENAME_EXCHANGE), 0);
    fsutil_make_node(fs, d, "zzz-new", S_IFREG | 0644, NULL);

    /* the old handle goes on as if nothing happened */
    while (read_some(fs, old, resume, false, 7, &c) > 0)
        resume = c.items[c.count - 1].next_offset;
    check_listing(&c, d, FS_ROOT_INO, before, count);
    /* seeking back (to any offset but 0) stays in the same snapshot */
    struct collector again;
    collector_init(&again, SIZE_MAX);
    read_some(fs, old, c.items[1].next_offset, false, SIZE_MAX, &again);
    assert_int_equal(again.count, count);
    for (size_t i = 0; i < count; i++)
        assert_string_equal(again.items[i].name, c.items[i + 2].name);
    collector_free(&again);
    /* the first listing of a handle, even from 0, is opendir's */
    read_all(fs, unread, false, 5, &again);
    check_same(&c, &again);
    collector_free(&again);
    collector_free(&c);
    fs_releasedir(fs, unread);

    /* a new handle sees the new state; so does the old handle rewound
     * (readdir from 0 again, as rewinddir does: POSIX asks for the
     * directory as it is now) */
    struct fs_dir *fresh;
    assert_int_equal(fs_opendir(fs, d, &fresh), 0);
    for (int pass = 0; pass < 2; pass++) {
        read_all(fs, pass == 0 ? fresh : old, false, 10, &c);
        size_t now_count = c.count - 2;
        assert_int_equal(stat_of(fs, d).st_size, now_count);
        assert_int_equal(now_count, count + 100 - 25 - 2 + 1 + 1);
        bool saw_renamed = false, saw_new = false;
        for (size_t i = 2; i < c.count; i++) {
            saw_renamed |= strcmp(c.items[i].name, "a-renamed") == 0;
            saw_new |= strcmp(c.items[i].name, "zzz-new") == 0;
            assert_true(strcmp(c.items[i].name, "n0000") != 0);
            assert_true(strcmp(c.items[i].name, "n0302") != 0);
            if (i > 2)
                assert_true(strcmp(c.items[i - 1].name, c.items[i].name) < 0);
        }
        assert_true(saw_renamed && saw_new);
        collector_free(&c);
    }
    fs_releasedir(fs, fresh);

    /* readdirplus from a handle opened before the changes: entries whose
     * inode is gone come unreferenced; living ones with their current
     * attributes */
    read_all(fs, unread_plus, true, SIZE_MAX, &c);
    assert_int_equal(c.count, count + 2);
    for (size_t i = 2; i < c.count; i++) {
        const struct seen *s = &c.items[i];
        int number = atoi(s->name + 1);
        bool unlinked = number % 16 == 0;
        assert_int_equal(s->st.st_ino, before[i - 2].ino);
        if (unlinked) {
            assert_false(s->referenced);
            assert_false(has_inode_key(fs, s->st.st_ino));
        } else {
            assert_true(s->referenced);
            assert_int_equal(s->st.st_nlink, 1);
            assert_int_equal(s->st.st_mode, S_IFREG | 0644);
        }
    }
    fs_releasedir(fs, unread_plus);
    collector_forget(fs, &c);
    collector_free(&c);
    fs_releasedir(fs, old);
    assert_int_equal(kernel_known(fs), 0);
    expected_free(before, count);
}

/* A writer keeps exactly one of the names x0..x9 in the directory (it
 * renames one into another) and churns other names; every listing, read
 * slowly in small chunks, must show exactly one x. */
struct churn {
    struct fs *fs;
    uint64_t dir;
    atomic_int stop;
    uint64_t renames;
    char failure[128];
};

static void *churn_writer(void *arg)
{
    struct churn *w = arg;
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(99));
    int current = 0;
    while (!atomic_load(&w->stop)) {
        int next = (int)kv_test_rng_uniform(&rng, 10);
        char from[8], to[8], noise[16];
        snprintf(from, sizeof(from), "x%d", current);
        snprintf(to, sizeof(to), "x%d", next);
        int rc = fs_rename(w->fs, w->dir, from, w->dir, to, 0);
        if (rc != 0) {
            snprintf(w->failure, sizeof(w->failure), "rename %s %s: %s", from, to, strerror(-rc));
            return NULL;
        }
        current = next;
        w->renames++;
        snprintf(noise, sizeof(noise), "noise%d", (int)kv_test_rng_uniform(&rng, 50));
        struct stat st;
        rc = fs_create_node(w->fs, fsutil_me(), w->dir, noise, S_IFREG | 0644, 0, NULL, &st);
        if (rc == 0)
            fs_forget(w->fs, st.st_ino, 1);
        else if (rc == -EEXIST)
            rc = fs_unlink(w->fs, w->dir, noise);
        if (rc != 0) {
            snprintf(w->failure, sizeof(w->failure), "noise %s: %s", noise, strerror(-rc));
            return NULL;
        }
    }
    return NULL;
}

static void test_snapshot_against_writer(void **state)
{
    struct fs_fixture *fx = *state;
    struct churn w = {.fs = fx->fs};
    w.dir = fsutil_make_node(fx->fs, FS_ROOT_INO, "d", S_IFDIR | 0755, NULL);
    fsutil_make_node(fx->fs, w.dir, "x0", S_IFREG | 0644, NULL);
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof(name), "stable%02d", i);
        fsutil_make_node(fx->fs, w.dir, name, S_IFREG | 0644, NULL);
    }
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, churn_writer, &w), 0);
    int listings = kv_test_long_mode() ? 3000 : 300;
    for (int i = 0; i < listings && w.failure[0] == '\0'; i++) {
        struct fs_dir *dir;
        assert_int_equal(fs_opendir(fx->fs, w.dir, &dir), 0);
        struct collector c;
        collector_init(&c, 0);
        uint64_t offset = 0;
        while (read_some(fx->fs, dir, offset, i % 2 == 1, 4, &c) > 0) {
            offset = c.items[c.count - 1].next_offset;
            sched_yield();
        }
        int xs = 0, stable = 0;
        for (size_t k = 2; k < c.count; k++) {
            xs += c.items[k].name[0] == 'x';
            stable += strncmp(c.items[k].name, "stable", 6) == 0;
            if (k > 2)
                assert_true(strcmp(c.items[k - 1].name, c.items[k].name) < 0);
        }
        collector_forget(fx->fs, &c);
        if (xs != 1 || stable != 40) {
            atomic_store(&w.stop, 1);
            pthread_join(thread, NULL);
            fail_msg("listing %d: %d x names, %d stable names", i, xs, stable);
        }
        collector_free(&c);
        fs_releasedir(fx->fs, dir);
    }
    atomic_store(&w.stop, 1);
    pthread_join(thread, NULL);
    if (w.failure[0] != '\0')
        fail_msg("writer: %s", w.failure);
    printf("snapshot against writer: %d listings, %" PRIu64 " renames meanwhile\n", listings,
           w.renames);
    assert_true(w.renames > 0);
    assert_int_equal(kernel_known(fx->fs), 0);
}

/* ---- readdirplus references ---- */

static void test_readdirplus_references(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    uint64_t d = fsutil_make_node(fs, FS_ROOT_INO, "d", S_IFDIR | 0755, NULL);
    const int count = 100;
    for (int i = 0; i < count; i++) {
        char name[16];
        snprintf(name, sizeof(name), "f%03d", i);
        fsutil_make_node(fs, d, name, i % 10 == 0 ? S_IFDIR | 0700 : S_IFREG | 0640, NULL);
    }
    /* a hard link: the same inode listed twice, referenced twice */
    struct stat st;
    assert_int_equal(fs_lookup(fs, d, "f001", &st), 0);
    uint64_t linked = st.st_ino;
    assert_int_equal(fs_link(fs, linked, d, "f001-link", &st), 0);
    fs_forget(fs, linked, 2);
    assert_int_equal(kernel_known(fs), 0);

    struct fs_dir *dir;
    assert_int_equal(fs_opendir(fs, d, &dir), 0);
    assert_int_equal(kernel_known(fs), 1); /* the open directory */
    struct collector c;
    read_all(fs, dir, true, SIZE_MAX, &c);
    assert_int_equal(c.count, count + 3);
    size_t referenced = 0;
    for (size_t i = 2; i < c.count; i++) {
        const struct seen *s = &c.items[i];
        assert_true(s->referenced);
        referenced++;
        /* complete attributes, as a lookup gives */
        struct stat now = stat_of(fs, s->st.st_ino);
        assert_int_equal(s->st.st_mode, now.st_mode);
        assert_int_equal(s->st.st_nlink, now.st_nlink);
        assert_int_equal(s->st.st_uid, now.st_uid);
        assert_int_equal(s->st.st_size, now.st_size);
        assert_int_equal(s->st.st_mtim.tv_nsec, now.st_mtim.tv_nsec);
        if (s->st.st_ino == linked)
            assert_int_equal(s->st.st_nlink, 2);
    }
    assert_int_equal(referenced, count + 1);
    assert_int_equal(kernel_known(fs), 1 + count); /* f001 twice, one inode */
    collector_forget(fs, &c);
    assert_int_equal(kernel_known(fs), 1);
    collector_free(&c);

    /* a filler that takes k entries per call: the refused one each time is
     * not referenced, and the next call starts with it */
    for (size_t k = 1; k <= 7; k += 3) {
        read_all(fs, dir, true, k, &c);
        assert_int_equal(c.count, count + 3);
        size_t held = 0;
        for (size_t i = 0; i < c.count; i++)
            held += c.items[i].referenced;
        assert_int_equal(held, count + 1);
        assert_int_equal(kernel_known(fs), 1 + count);
        collector_forget(fs, &c);
        assert_int_equal(kernel_known(fs), 1);
        collector_free(&c);
    }

    /* refuse one entry: it must not stay referenced. Unlinking it then
     * reclaims it at once (a leaked reference would keep an orphan). */
    collector_init(&c, SIZE_MAX);
    c.refuse_name = "f051";
    assert_int_equal(fs_readdir(fs, dir, 0, true, collect, &c), 0);
    assert_int_equal(c.count, 2 + 52); /* f000 .. f050 and f001-link */
    assert_string_equal(c.items[c.count - 1].name, "f050");
    assert_int_equal(kernel_known(fs), 1 + 51);
    uint64_t resume = c.items[c.count - 1].next_offset;
    collector_forget(fs, &c);
    collector_free(&c);
    assert_int_equal(kernel_known(fs), 1);
    uint64_t victim;
    {
        struct stat vst;
        assert_int_equal(fs_lookup(fs, d, "f051", &vst), 0);
        victim = vst.st_ino;
        fs_forget(fs, victim, 1);
    }
    assert_int_equal(fs_unlink(fs, d, "f051"), 0);
    assert_false(has_inode_key(fs, victim));
    assert_false(has_orphan_key(fs, victim));
    /* resuming where it stopped offers the refused entry again; its inode
     * is gone now, so it comes unreferenced */
    collector_init(&c, 1);
    read_some(fs, dir, resume, true, 1, &c);
    assert_int_equal(c.count, 1);
    assert_string_equal(c.items[0].name, "f051");
    assert_int_equal(c.items[0].st.st_ino, victim);
    assert_false(c.items[0].referenced);
    collector_free(&c);
    assert_int_equal(kernel_known(fs), 1);

    /* the same with a living entry: refused, then listed referenced */
    collector_init(&c, SIZE_MAX);
    c.refuse_name = "f061";
    assert_int_equal(fs_readdir(fs, dir, resume, true, collect, &c), 0);
    assert_int_equal(c.count, 1 + 9); /* f051 .. f060 */
    resume = c.items[c.count - 1].next_offset;
    collector_forget(fs, &c);
    collector_free(&c);
    assert_int_equal(kernel_known(fs), 1);
    collector_init(&c, 1);
    read_some(fs, dir, resume, true, 1, &c);
    assert_string_equal(c.items[0].name, "f061");
    assert_true(c.items[0].referenced);
    assert_int_equal(kernel_known(fs), 2);
    collector_forget(fs, &c);
    collector_free(&c);

    fs_releasedir(fs, dir);
    assert_int_equal(kernel_known(fs), 0);
}

/* ---- a large directory ---- */

static void large_name(char *out, size_t n)
{
    snprintf(out, 32, "entry-%08zu", n);
}

/* Checks a listing of the large directory as it streams by (a million
 * entries need not be kept), recording each entry's next_offset. */
struct large_check {
    const uint64_t *inos;
    size_t count;
    size_t seen; /* entries accepted, "." and ".." included */
    uint64_t *offsets;
    size_t limit, accepted;
    char failure[160];
};

static bool large_filler(void *ctx, const char *name, const struct stat *st, bool referenced,
                         uint64_t next_offset)
{
    struct large_check *lc = ctx;
    if (lc->accepted >= lc->limit || lc->failure[0] != '\0')
        return false;
    char want[32];
    uint64_t want_ino = 0;
    if (lc->seen < 2) {
        strcpy(want, lc->seen == 0 ? "." : "..");
    } else if (lc->seen - 2 < lc->count) {
        large_name(want, lc->seen - 2);
        want_ino = lc->inos[lc->seen - 2];
    } else {
        strcpy(want, "(the end)");
    }
    if (strcmp(name, want) != 0 || (want_ino != 0 && st->st_ino != want_ino) || referenced)
        snprintf(lc->failure, sizeof(lc->failure),
                 "entry %zu: %.40s (ino %" PRIu64 "), expected %s", lc->seen, name,
                 (uint64_t)st->st_ino, want);
    lc->offsets[lc->seen++] = next_offset;
    lc->accepted++;
    return true;
}

/* Lists the large directory in kernel-sized chunks and checks every
 * entry, then seeks back to a few offsets far into it. */
static void check_large_listing(struct fs *fs, uint64_t d, const uint64_t *inos, size_t count,
                                const char *when)
{
    struct large_check lc = {.inos = inos, .count = count, .limit = 120};
    lc.offsets = calloc(count + 3, sizeof(*lc.offsets));
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    struct fs_dir *dir;
    assert_int_equal(fs_opendir(fs, d, &dir), 0);
    uint64_t offset = 0;
    for (;;) {
        lc.accepted = 0;
        assert_int_equal(fs_readdir(fs, dir, offset, false, large_filler, &lc), 0);
        if (lc.failure[0] != '\0')
            fail_msg("%s", lc.failure);
        if (lc.accepted == 0)
            break;
        offset = lc.offsets[lc.seen - 1];
    }
    double elapsed = seconds_since(&start);
    printf("large directory %s: %zu entries listed in %.2f s (%.0f entries/s)\n", when, lc.seen - 2,
           elapsed, (double)(lc.seen - 2) / elapsed);
    assert_int_equal(lc.seen, count + 2);
    /* seekdir far into the listing */
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(5));
    for (int round = 0; round < 10; round++) {
        size_t from = 2 + kv_test_rng_uniform(&rng, count + 1); /* entry index to resume at */
        struct collector part;
        collector_init(&part, 5);
        read_some(fs, dir, lc.offsets[from - 1], false, 5, &part);
        assert_int_equal(part.count, count + 2 - from < 5 ? count + 2 - from : 5);
        for (size_t i = 0; i < part.count; i++) {
            char want[32];
            large_name(want, from - 2 + i);
            assert_string_equal(part.items[i].name, want);
            assert_int_equal(part.items[i].next_offset, lc.offsets[from + i]);
        }
        collector_free(&part);
    }
    fs_releasedir(fs, dir);
    free(lc.offsets);
}

static void test_large_directory(void **state)
{
    (void)state;
    char *path = kv_test_tmpdir("fs_dir_large");
    struct fs *fs = open_fs(path, 4u << 20);
    size_t count = kv_test_long_mode() ? 1000000 : 100000;
    uint64_t *inos = calloc(count, sizeof(*inos));
    uint64_t d = fsutil_make_node(fs, FS_ROOT_INO, "big", S_IFDIR | 0755, NULL);

    /* created in a scattered order (7919 is prime to 10^5 and 10^6) */
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (size_t i = 0; i < count; i++) {
        size_t n = (i * 7919) % count;
        char name[32];
        large_name(name, n);
        struct stat st;
        int rc = fs_create_node(fs, fsutil_me(), d, name, S_IFREG | 0644, 0, NULL, &st);
        if (rc != 0)
            fail_msg("create %s: %s", name, strerror(-rc));
        fs_forget(fs, st.st_ino, 1);
        inos[n] = st.st_ino;
    }
    double elapsed = seconds_since(&start);
    printf("large directory: %zu creates in %.2f s (%.0f creates/s)\n", count, elapsed,
           (double)count / elapsed);
    struct stat st = stat_of(fs, d);
    assert_int_equal(st.st_size, count);
    assert_int_equal(st.st_nlink, 2);

    check_large_listing(fs, d, inos, count, "after creating");

    /* readdirplus over the first few thousand entries, references balanced */
    struct fs_dir *dir;
    assert_int_equal(fs_opendir(fs, d, &dir), 0);
    struct collector c;
    collector_init(&c, 0);
    uint64_t offset = 0;
    while (c.count < 5000 && read_some(fs, dir, offset, true, 100, &c) > 0)
        offset = c.items[c.count - 1].next_offset;
    for (size_t i = 2; i < c.count; i++) {
        assert_true(c.items[i].referenced);
        assert_int_equal(c.items[i].st.st_ino, inos[i - 2]);
    }
    assert_int_equal(kernel_known(fs), 1 + c.count - 2);
    collector_forget(fs, &c);
    collector_free(&c);
    fs_releasedir(fs, dir);
    assert_int_equal(kernel_known(fs), 0);

    assert_int_equal(fs_close(fs), 0);
    clock_gettime(CLOCK_MONOTONIC, &start);
    fs = open_fs(path, 4u << 20);
    printf("large directory: reopen in %.2f s\n", seconds_since(&start));
    assert_int_equal(stat_of(fs, d).st_size, count);
    check_large_listing(fs, d, inos, count, "after reopen");
    assert_int_equal(fs_close(fs), 0);
    free(inos);
    kv_test_cleanup_dir(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order_and_offsets, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_errors, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_against_writer, setup,
                                        fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_readdirplus_references, setup,
                                        fsutil_fixture_teardown),
        cmocka_unit_test(test_large_directory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
