/*
 * test_fsck.c — `lsmfs fsck` (fuse/fsck.c) against real data directories,
 * without a mount. Each test builds a small file system through the core
 * (fs_open, fs_create_node, fs_write, fs_link, fs_setxattr), closes it,
 * checks that fsck finds it clean, then damages it directly through kv
 * (the keys and values of fuse/schema.h) and checks, for each kind of
 * damage:
 *  - without repair: FSCK_DAMAGED, the exact number of problems, a message
 *    naming the damage, and nothing changed (a second run says the same);
 *  - with repair: FSCK_REPAIRED, every problem repaired;
 *  - once more: FSCK_CLEAN with no problem;
 *  - fs_open works and the tree reads right: every directory's entry count
 *    (st_size), link count and ".." agree with its entries, every file's
 *    link count with its names, file data, symlink and xattr intact, and
 *    an unreachable inode reachable as /lost+found/#INO.
 * Also: a byte flipped in an SST file is reported as damage naming the
 * file; a fresh file system is clean; a directory that is not an lsmfs
 * data directory cannot be checked (FSCK_FAILED).
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs.h"
#include "fsutil.h"
#include "fsck.h"
#include "kv.h"
#include "schema.h"

#define F1_SIZE 5000   /* two blocks, the second partial */
#define B_SIZE 100     /* one partial block */
#define BIG_SIZE 12288 /* three full blocks */
#define SYMLINK_TARGET "a/f1"
#define XATTR_NAME "user.tag"
#define XATTR_VALUE "hello"

/* The file system every test starts from:
 *   /a/            directory
 *   /a/sub/        directory
 *   /a/f1          5000 bytes, xattr user.tag=hello
 *   /a/link_b      hard link to /b
 *   /b             100 bytes
 *   /big           12288 bytes
 *   /s             symlink to a/f1                                        */
struct fixture {
    char *dir;
    uint64_t a, sub, f1, b, big, s;
};

/* ---- building ---- */

static struct fs *open_fs(const char *dir, size_t write_buffer_size)
{
    struct fs_options options;
    fsutil_options(&options, write_buffer_size);
    return fsutil_open(dir, &options);
}

/* The byte at offset i of the file whose contents are numbered `which`. */
static char content_byte(uint64_t which, uint64_t i)
{
    return (char)('A' + (which * 7 + i * 13 + i / 4096) % 26);
}

static void fill_content(char *buf, uint64_t which, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = content_byte(which, i);
}

static uint64_t make_node(struct fs *fs, uint64_t parent, const char *name, mode_t mode,
                          const char *target)
{
    struct stat st;
    int rc = fs_create_node(fs, fsutil_me(), parent, name, mode, 0, target, &st);
    if (rc != 0)
        fail_msg("fs_create_node %s: %d", name, rc);
    return st.st_ino;
}

static void write_content(struct fs *fs, uint64_t ino, uint64_t which, size_t size)
{
    char *buf = malloc(size);
    assert_non_null(buf);
    fill_content(buf, which, size);
    assert_int_equal(fs_open_file(fs, ino, O_WRONLY), 0);
    assert_int_equal(fs_write(fs, ino, 0, buf, size, false), (ssize_t)size);
    fs_release_file(fs, ino);
    free(buf);
}

static void build_fixture(struct fixture *fx, const char *name)
{
    memset(fx, 0, sizeof(*fx));
    fx->dir = kv_test_tmpdir(name);
    struct fs *fs = open_fs(fx->dir, 0);
    fx->a = make_node(fs, FS_ROOT_INO, "a", S_IFDIR | 0755, NULL);
    fx->sub = make_node(fs, fx->a, "sub", S_IFDIR | 0755, NULL);
    fx->f1 = make_node(fs, fx->a, "f1", S_IFREG | 0644, NULL);
    write_content(fs, fx->f1, 1, F1_SIZE);
    assert_int_equal(fs_setxattr(fs, fx->f1, XATTR_NAME, XATTR_VALUE, strlen(XATTR_VALUE), 0), 0);
    fx->b = make_node(fs, FS_ROOT_INO, "b", S_IFREG | 0644, NULL);
    write_content(fs, fx->b, 2, B_SIZE);
    struct stat st;
    assert_int_equal(fs_link(fs, fx->b, fx->a, "link_b", &st), 0);
    assert_int_equal(st.st_nlink, 2);
    fx->big = make_node(fs, FS_ROOT_INO, "big", S_IFREG | 0644, NULL);
    write_content(fs, fx->big, 3, BIG_SIZE);
    fx->s = make_node(fs, FS_ROOT_INO, "s", S_IFLNK | 0777, SYMLINK_TARGET);
    assert_int_equal(fs_close(fs), 0);
}

static void destroy_fixture(struct fixture *fx)
{
    kv_test_cleanup_dir(fx->dir);
    fx->dir = NULL;
}

/* ---- running fsck ---- */

/* Runs lsmfs_fsck on dir; its report text goes to *output (malloc'd). */
static int run_fsck(const char *dir, bool repair, struct fsck_report *report, char **output)
{
    size_t len = 0;
    FILE *out = open_memstream(output, &len);
    assert_non_null(out);
    struct fsck_options options = {.repair = repair, .progress = false, .out = out};
    int status = lsmfs_fsck(dir, &options, report);
    fclose(out);
    return status;
}

/* Runs fsck and fails the test, printing its report, unless it returns
 * `status` with `problems` problems (problems < 0: any number). Returns the
 * report text (malloc'd). */
static char *expect_fsck(const char *dir, bool repair, int status, int64_t problems,
                         struct fsck_report *report)
{
    char *output = NULL;
    int got = run_fsck(dir, repair, report, &output);
    if (got != status || (problems >= 0 && report->problems != (uint64_t)problems)) {
        fprintf(stderr, "---- fsck%s %s ----\n%s---- end ----\n", repair ? " --repair" : "", dir,
                output);
        free(output);
        fail_msg("fsck%s: status %d with %" PRIu64 " problems (%" PRIu64
                 " repaired), expected status %d with %" PRId64 " problems",
                 repair ? " --repair" : "", got, report->problems, report->repaired, status,
                 problems);
    }
    return output;
}

static void expect_clean(const char *dir)
{
    struct fsck_report report;
    free(expect_fsck(dir, false, FSCK_CLEAN, 0, &report));
    assert_int_equal(report.repaired, 0);
}

/* The whole cycle for one kind of damage: reported (problems, a line
 * containing `message`, `orphans` orphans), unchanged by a check, repaired,
 * clean afterwards. */
static void expect_found_and_repaired(const char *dir, int64_t problems, uint64_t orphans,
                                      const char *message)
{
    struct fsck_report report;
    char *output = expect_fsck(dir, false, FSCK_DAMAGED, problems, &report);
    if (strstr(output, message) == NULL) {
        fprintf(stderr, "---- fsck %s ----\n%s---- end ----\n", dir, output);
        free(output);
        fail_msg("fsck's report does not say \"%s\"", message);
    }
    assert_int_equal(report.repaired, 0);
    assert_int_equal(report.orphans, orphans);
    free(output);

    /* A check without repair changes nothing. */
    free(expect_fsck(dir, false, FSCK_DAMAGED, problems, &report));

    /* Repair finds the same problems (not also the consequences of its own
     * fixes, such as the counts of a /lost+found it just filled). */
    output = expect_fsck(dir, true, FSCK_REPAIRED, -1, &report);
    if (report.problems != (uint64_t)problems || report.repaired != report.problems) {
        fprintf(stderr, "---- fsck --repair %s ----\n%s---- end ----\n", dir, output);
        free(output);
        fail_msg("fsck --repair: %" PRIu64 " problems, %" PRIu64 " repaired", report.problems,
                 report.repaired);
    }
    free(output);
    expect_clean(dir);
}

/* ---- damaging through kv ---- */

struct store {
    kv_db *db;
    kv_cf *meta, *data;
};

static void store_open(struct store *s, const char *dir)
{
    kv_options options;
    kv_options_init(&options);
    int rc = kv_open(&options, dir, &s->db);
    if (rc != KV_OK)
        fail_msg("kv_open %s: %s", dir, kv_errmsg());
    s->meta = kv_get_cf(s->db, FS_META_CF);
    s->data = kv_get_cf(s->db, FS_DATA_CF);
    assert_non_null(s->meta);
    assert_non_null(s->data);
}

static void store_close(struct store *s)
{
    assert_int_equal(kv_close(s->db), KV_OK);
    memset(s, 0, sizeof(*s));
}

static bool store_has(struct store *s, kv_cf *cf, const char *key, size_t key_len)
{
    char *value;
    size_t value_len;
    int rc = kv_get(s->db, NULL, cf, key, key_len, &value, &value_len);
    if (rc == KV_OK)
        kv_free(value);
    else
        assert_int_equal(rc, KV_NOT_FOUND);
    return rc == KV_OK;
}

static void inode_get(struct store *s, uint64_t ino, struct fs_inode *inode)
{
    char key[FS_INODE_KEY_LEN];
    char *value;
    size_t value_len;
    assert_int_equal(kv_get(s->db, NULL, s->meta, key, fs_key_inode(key, ino), &value, &value_len),
                     KV_OK);
    assert_int_equal(fs_inode_decode(value, value_len, inode), 0);
    kv_free(value);
}

static void inode_put(struct store *s, uint64_t ino, const struct fs_inode *inode)
{
    char key[FS_INODE_KEY_LEN], value[FS_INODE_LEN];
    assert_int_equal(kv_put(s->db, NULL, s->meta, key, fs_key_inode(key, ino), value,
                            fs_inode_encode(value, inode)),
                     KV_OK);
}

static void dentry_put(struct store *s, uint64_t parent, const char *name, uint64_t ino,
                       mode_t type)
{
    char key[FS_KEY_MAX], value[FS_DENTRY_LEN];
    assert_int_equal(kv_put(s->db, NULL, s->meta, key,
                            fs_key_dentry(key, parent, name, strlen(name)), value,
                            fs_dentry_encode(value, ino, type)),
                     KV_OK);
}

static void dentry_delete(struct store *s, uint64_t parent, const char *name)
{
    char key[FS_KEY_MAX];
    size_t key_len = fs_key_dentry(key, parent, name, strlen(name));
    assert_true(store_has(s, s->meta, key, key_len));
    assert_int_equal(kv_delete(s->db, NULL, s->meta, key, key_len), KV_OK);
}

/* Removes the entry parent/name of inode `ino` and fixes the parent's entry
 * count, so that the only damage is an inode no entry reaches. */
static void unlink_behind_back(struct store *s, uint64_t parent, const char *name)
{
    dentry_delete(s, parent, name);
    struct fs_inode dir;
    inode_get(s, parent, &dir);
    dir.size--;
    inode_put(s, parent, &dir);
}

/* ---- reading the tree back ---- */

struct listed_entry {
    char name[FS_NAME_MAX + 1];
    uint64_t ino;
    mode_t type;
};

struct listing {
    struct listed_entry *entries;
    size_t count, cap;
};

static bool collect_entry(void *ctx, const char *name, const struct stat *st, bool referenced,
                          uint64_t next_offset)
{
    struct listing *l = ctx;
    (void)referenced;
    (void)next_offset;
    if (l->count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->entries = realloc(l->entries, l->cap * sizeof(*l->entries));
        assert_non_null(l->entries);
    }
    struct listed_entry *e = &l->entries[l->count++];
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->ino = st->st_ino;
    e->type = st->st_mode & S_IFMT;
    return true;
}

static void list_dir(struct fs *fs, uint64_t ino, struct listing *l)
{
    struct fs_dir *dir;
    assert_int_equal(fs_opendir(fs, ino, &dir), 0);
    l->count = 0;
    assert_int_equal(fs_readdir(fs, dir, 0, false, collect_entry, l), 0);
    fs_releasedir(fs, dir);
}

/* Names counted per inode while walking. */
struct name_count {
    uint64_t ino;
    uint64_t names;
};

struct walk {
    struct name_count counts[2048];
    int n;
    uint64_t directories, files;
};

static void count_name(struct walk *w, uint64_t ino)
{
    for (int i = 0; i < w->n; i++) {
        if (w->counts[i].ino == ino) {
            w->counts[i].names++;
            return;
        }
    }
    assert_true(w->n < 2048);
    w->counts[w->n].ino = ino;
    w->counts[w->n].names = 1;
    w->n++;
}

/* Walks the directory `ino` (whose parent is `parent`) and below: its
 * entry count, link count and ".." must agree with what it lists. */
static void walk_dir(struct fs *fs, struct walk *w, uint64_t ino, uint64_t parent)
{
    struct listing l = {0};
    list_dir(fs, ino, &l);
    assert_true(l.count >= 2);
    assert_string_equal(l.entries[0].name, ".");
    assert_int_equal(l.entries[0].ino, ino);
    assert_string_equal(l.entries[1].name, "..");
    if (l.entries[1].ino != parent)
        fail_msg("directory %" PRIu64 ": \"..\" is %" PRIu64 ", expected %" PRIu64, ino,
                 l.entries[1].ino, parent);
    uint64_t subdirs = 0;
    for (size_t i = 2; i < l.count; i++) {
        struct stat st;
        int rc = fs_getattr(fs, l.entries[i].ino, &st);
        if (rc != 0)
            fail_msg("directory %" PRIu64 ": entry \"%s\" -> %" PRIu64 ": getattr %d", ino,
                     l.entries[i].name, l.entries[i].ino, rc);
        assert_int_equal(st.st_mode & S_IFMT, l.entries[i].type);
        count_name(w, l.entries[i].ino);
        if (S_ISDIR(st.st_mode)) {
            subdirs++;
            walk_dir(fs, w, l.entries[i].ino, ino);
        } else {
            w->files++;
        }
    }
    w->directories++;
    struct stat st;
    assert_int_equal(fs_getattr(fs, ino, &st), 0);
    if ((uint64_t)st.st_size != l.count - 2 || st.st_nlink != 2 + subdirs)
        fail_msg("directory %" PRIu64 ": size %lld nlink %lu, but %zu entries, %" PRIu64
                 " subdirectories",
                 ino, (long long)st.st_size, (unsigned long)st.st_nlink, l.count - 2, subdirs);
    free(l.entries);
}

static uint64_t lookup(struct fs *fs, uint64_t parent, const char *name)
{
    struct stat st;
    int rc = fs_lookup(fs, parent, name, &st);
    if (rc != 0)
        fail_msg("lookup %" PRIu64 "/%s: %d", parent, name, rc);
    return st.st_ino;
}

static void expect_content(struct fs *fs, uint64_t ino, uint64_t which, size_t size)
{
    struct stat st;
    assert_int_equal(fs_getattr(fs, ino, &st), 0);
    assert_int_equal(st.st_size, size);
    char *want = malloc(size), *got = malloc(size + 1);
    assert_non_null(want);
    assert_non_null(got);
    fill_content(want, which, size);
    assert_int_equal(fs_read(fs, ino, 0, size + 1, got), (ssize_t)size);
    assert_memory_equal(got, want, size);
    free(want);
    free(got);
}

/* Where the fixture's f1 is expected after repair. */
enum f1_place { F1_IN_A, F1_IN_LOST_AND_FOUND };

/* Opens the repaired file system and checks the tree: counts everywhere,
 * and the fixture's objects with their contents. */
static void expect_tree(const struct fixture *fx, enum f1_place f1_place)
{
    struct fs *fs = open_fs(fx->dir, 0);
    struct walk w = {0};
    walk_dir(fs, &w, FS_ROOT_INO, FS_ROOT_INO);
    for (int i = 0; i < w.n; i++) {
        struct stat st;
        assert_int_equal(fs_getattr(fs, w.counts[i].ino, &st), 0);
        if (!S_ISDIR(st.st_mode) && st.st_nlink != w.counts[i].names)
            fail_msg("inode %" PRIu64 ": nlink %lu, but %" PRIu64 " names", w.counts[i].ino,
                     (unsigned long)st.st_nlink, w.counts[i].names);
    }
    assert_int_equal(lookup(fs, FS_ROOT_INO, "a"), fx->a);
    assert_int_equal(lookup(fs, fx->a, "sub"), fx->sub);
    assert_int_equal(lookup(fs, FS_ROOT_INO, "b"), fx->b);
    assert_int_equal(lookup(fs, fx->a, "link_b"), fx->b);
    assert_int_equal(lookup(fs, FS_ROOT_INO, "big"), fx->big);
    assert_int_equal(lookup(fs, FS_ROOT_INO, "s"), fx->s);
    if (f1_place == F1_IN_A) {
        assert_int_equal(lookup(fs, fx->a, "f1"), fx->f1);
    } else {
        struct stat st;
        assert_int_equal(fs_lookup(fs, fx->a, "f1", &st), -ENOENT);
        uint64_t lost = lookup(fs, FS_ROOT_INO, "lost+found");
        assert_int_equal(fs_getattr(fs, lost, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        char name[32];
        snprintf(name, sizeof(name), "#%" PRIu64, fx->f1);
        assert_int_equal(lookup(fs, lost, name), fx->f1);
    }
    expect_content(fs, fx->f1, 1, F1_SIZE);
    expect_content(fs, fx->b, 2, B_SIZE);
    expect_content(fs, fx->big, 3, BIG_SIZE);
    char value[64];
    assert_int_equal(fs_getxattr(fs, fx->f1, XATTR_NAME, value, sizeof(value)),
                     (ssize_t)strlen(XATTR_VALUE));
    assert_memory_equal(value, XATTR_VALUE, strlen(XATTR_VALUE));
    char target[64];
    assert_int_equal(fs_readlink(fs, fx->s, target, sizeof(target)),
                     (ssize_t)strlen(SYMLINK_TARGET));
    assert_memory_equal(target, SYMLINK_TARGET, strlen(SYMLINK_TARGET));
    assert_int_equal(fs_close(fs), 0);
}

/* ---- setup ---- */

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    if (fx->dir != NULL)
        destroy_fixture(fx);
    free(fx);
    return 0;
}

/* Builds the fixture and checks that it starts clean. */
static struct store start(void **state, const char *name)
{
    struct fixture *fx = *state;
    build_fixture(fx, name);
    expect_clean(fx->dir);
    struct store s;
    store_open(&s, fx->dir);
    return s;
}

/* ---- the damage ---- */

static void test_fixture_is_clean(void **state)
{
    struct fixture *fx = *state;
    build_fixture(fx, "fsck-fixture");
    struct fsck_report report;
    free(expect_fsck(fx->dir, false, FSCK_CLEAN, 0, &report));
    assert_int_equal(report.inodes, 7); /* root, a, sub, f1, b, big, s */
    assert_int_equal(report.directories, 3);
    assert_int_equal(report.files, 3);
    assert_int_equal(report.symlinks, 1);
    assert_int_equal(report.entries, 7); /* a, sub, f1, link_b, b, big, s */
    assert_int_equal(report.xattrs, 1);
    assert_int_equal(report.orphans, 0);
    /* f1: 2 blocks, b: 1, big: 3, the symlink's target: 1 */
    assert_int_equal(report.data_blocks, 7);
    /* --repair on a clean file system changes nothing */
    free(expect_fsck(fx->dir, true, FSCK_CLEAN, 0, &report));
    expect_tree(fx, F1_IN_A);
}

static void test_file_wrong_nlink(void **state)
{
    struct fixture *fx = *state;
    struct store s = start(state, "fsck-nlink");
    struct fs_inode inode;
    inode_get(&s, fx->b, &inode);
    assert_int_equal(inode.nlink, 2);
    inode.nlink = 5;
    inode_put(&s, fx->b, &inode);
    store_close(&s);
    expect_found_and_repaired(fx->dir, 1, 0, "link count 5, counted 2");
    expect_tree(fx, F1_IN_A);
}

static void test_directory_wrong_nlink(void **state)
{
    struct fixture *fx = *state;
    struct store s = start(state, "fsck-dir-nlink");
    struct fs_inode inode;
    inode_get(&s, fx->a, &inode);
    assert_int_equal(inode.nlink, 3);
    inode.nlink = 9;
    inode_put(&s, fx->a, &inode);
    store_close(&s);
    expect_found_and_repaired(fx->dir, 1, 0, "link count 9, counted 3");
    expect_tree(fx, F1_IN_A);
}

static void test_directory_wrong_entry_count(void **state)
{
    struct fixture *fx = *state;
    struct store s = start(state, "fsck-dir-size");
    struct fs_inode inode;
    inode_get(&s, fx->a, &inode);
    assert_int_equal(inode.size, 3); /* sub, f1, link_b */
    inode.size = 17;
    inode_put(&s, fx->a, &inode);
    store_close(&s);
    expect_found_and_repaired(fx->dir, 1, 0, "entry count 17, counted 3");
    expect_tree(fx, F1_IN_A);
}

static void test_directory_wrong_parent(void **state)
{
    struct fixture *fx = *state;
    struct store s = start(state, "fsck-dir-parent");
    struct fs_inode inode;
    inode_get(&s, fx->sub, &inode);
    assert_int_equal(inode.parent, fx->a);
    inode.parent = fx->big;
    inode_put(&s, fx->sub, &inode);
    store_close(&s);
    char message[96];
    snprintf(message, sizeof(message), "parent %" PRIu64 ", found in %" PRIu64, fx->big, fx->a);
    expect_found_and_repaired(fx->dir, 1, 0, message);
    expect_tree(fx, F1_IN_A); /* walk_dir checks ".." of sub */
}

static void test_directory_wrong_entry_count_and_parent(void **state)
{
    struct fixture *fx = *state;
    struct store s = start(state, "fsck-dir-both");
    struct fs_inode inode;
    inode_get(&s, fx->sub, &inode);
    inode.parent = 4000;
    inode.size = 2;
    inode_put(&s, fx->sub, &inode);
    store_close(&s);
    expect_found_and_repaired(fx->dir, 2, 0, "entry count 2, counted 0");
    expect_tree(fx, F1_IN_A);
}

static void test_entry_to_missing_inode(void **state)
{
    struct fixture *fx = *state;
    struct store s = start(state, "fsck-ghost-entry");
    dentry_put(&s, fx->a, "ghost", 3999, S_IFREG);
    store_close(&s);
    expect_found_and_repaired(fx->dir, 1, 0, "entry \"ghost\" -> 3999 names no inode");
    expect_tree(fx, F1_IN_A);
}

static void test_unreachable_inode_goes_to_lost_and_found(void **state)
{
    struct fixture *fx = *state;
    struct store s = start(state, "fsck-lost");
    unlink_behind_back(&s, fx->a, "f1");
    store_close(&s);
    char message[96];
    snprintf(message, sizeof(message), "inode %" PRIu64 " has 1 links but no directory entry",
             fx->f1);
    /* One problem: an inode with a link count but no entry is not also an
     * orphan to reclaim (repair keeps it, in /lost+found). */
    expect_found_and_repaired(fx->dir, 1, 0, message);
    expect_tree(fx, F1_IN_LOST_AND_FOUND);

    /* A second loss goes into the existing /lost+found. */
    store_open(&s, fx->dir);
    unlink_behind_back(&s, FS_ROOT_INO, "big");
    store_close(&s);
    snprintf(message, sizeof(message), "inode %" PRIu64 " has 1 links but no directory entry",
             fx->big);
    expect_found_and_repaired(fx->dir, 1, 0, message);
    struct fs *fs = open_fs(fx->dir, 0);
    struct walk w = {0};
    walk_dir(fs, &w, FS_ROOT_INO, FS_ROOT_INO);
    uint64_t lost = lookup(fs, FS_ROOT_INO, "lost+found");
    char name[32];
    snprintf(name, sizeof(name), "#%" PRIu64, fx->big);
    assert_int_equal(lookup(fs, lost, name), fx->big);
    expect_content(fs, fx->big, 3, BIG_SIZE);
    assert_int_equal(fs_close(fs), 0);
}

static void test_unreachable_directory_goes_to_lost_and_found(void **state)
{
    struct fixture *fx = *state;
    struct store s = start(state, "fsck-lost-dir");
    unlink_behind_back(&s, fx->a, "sub");
    struct fs_inode dir;
    inode_get(&s, fx->a, &dir);
    dir.nlink--; /* the subdirectory's ".." is gone with it */
    inode_put(&s, fx->a, &dir);
    store_close(&s);
    char message[96];
    snprintf(message, sizeof(message), "inode %" PRIu64 " has 2 links but no directory entry",
             fx->sub);
    expect_found_and_repaired(fx->dir, 1, 0, message);
    struct fs *fs = open_fs(fx->dir, 0);
    struct walk w = {0};
    walk_dir(fs, &w, FS_ROOT_INO, FS_ROOT_INO); /* checks ".." of #sub: lost+found */
    uint64_t lost = lookup(fs, FS_ROOT_INO, "lost+found");
    char name[32];
    snprintf(name, sizeof(name), "#%" PRIu64, fx->sub);
    assert_int_equal(lookup(fs, lost, name), fx->sub);
    struct stat st;
    assert_int_equal(fs_lookup(fs, fx->a, "sub", &st), -ENOENT);
    assert_int_equal(fs_close(fs), 0);
}

/* Leaves fx->dir as a kill of the daemon would, with an orphan: a file
 * unlinked while the kernel still knew the inode (fs_create_node gives a
 * kernel reference), with its data. A clean fs_close would reclaim it, so
 * the directory becomes a copy taken before (fsutil_killed_copy). */
static uint64_t make_orphan(struct fixture *fx)
{
    struct fs *fs = open_fs(fx->dir, 0);
    uint64_t ino = make_node(fs, fx->a, "doomed", S_IFREG | 0644, NULL);
    write_content(fs, ino, 4, 9000);
    assert_int_equal(fs_setxattr(fs, ino, "user.x", "y", 1, 0), 0);
    assert_int_equal(fs_unlink(fs, fx->a, "doomed"), 0);
    char *killed = fsutil_killed_copy(fs, fx->dir);
    assert_int_equal(fs_close(fs), 0);
    char command[3 * 4096 + 64];
    snprintf(command, sizeof(command), "rm -rf '%s' && mv '%s' '%s'", fx->dir, killed, fx->dir);
    assert_int_equal(system(command), 0);
    free(killed);
    return ino;
}

static void expect_nothing_left_of(const char *dir, uint64_t ino)
{
    struct store s;
    store_open(&s, dir);
    char key[FS_KEY_MAX];
    assert_false(store_has(&s, s.meta, key, fs_key_inode(key, ino)));
    assert_false(store_has(&s, s.meta, key, fs_key_orphan(key, ino)));
    assert_false(store_has(&s, s.meta, key, fs_key_xattr(key, ino, "user.x", 6)));
    for (uint64_t block = 0; block < 4; block++)
        assert_false(store_has(&s, s.data, key, fs_key_data(key, ino, block)));
    store_close(&s);
}

static void test_orphan_with_record(void **state)
{
    struct fixture *fx = *state;
    build_fixture(fx, "fsck-orphan");
    uint64_t ino = make_orphan(fx);
    struct store s;
    store_open(&s, fx->dir);
    char key[FS_KEY_MAX];
    assert_true(store_has(&s, s.meta, key, fs_key_orphan(key, ino)));
    store_close(&s);
    char message[96];
    snprintf(message, sizeof(message), "inode %" PRIu64 " is an orphan (no names, orphan record)",
             ino);
    expect_found_and_repaired(fx->dir, 1, 1, message);
    expect_nothing_left_of(fx->dir, ino);
    expect_tree(fx, F1_IN_A);
}

static void test_orphan_without_record(void **state)
{
    struct fixture *fx = *state;
    build_fixture(fx, "fsck-orphan-norecord");
    uint64_t ino = make_orphan(fx);
    struct store s;
    store_open(&s, fx->dir);
    char key[FS_KEY_MAX];
    size_t key_len = fs_key_orphan(key, ino);
    assert_true(store_has(&s, s.meta, key, key_len));
    assert_int_equal(kv_delete(s.db, NULL, s.meta, key, key_len), KV_OK);
    store_close(&s);
    char message[96];
    snprintf(message, sizeof(message),
             "inode %" PRIu64 " is an orphan (no names, no orphan record)", ino);
    expect_found_and_repaired(fx->dir, 1, 1, message);
    expect_nothing_left_of(fx->dir, ino);
    expect_tree(fx, F1_IN_A);
}

static void test_orphan_record_without_inode(void **state)
{
    struct fixture *fx = *state;
    struct store s = start(state, "fsck-orphan-stale");
    char key[FS_INODE_KEY_LEN], value[FS_ORPHAN_LEN];
    assert_int_equal(
        kv_put(s.db, NULL, s.meta, key, fs_key_orphan(key, 3998), value, fs_orphan_encode(value)),
        KV_OK);
    store_close(&s);
    expect_found_and_repaired(fx->dir, 1, 0, "orphan record of missing inode 3998");
    expect_tree(fx, F1_IN_A);
}

static void test_data_block_past_size(void **state)
{
    struct fixture *fx = *state;
    struct store s = start(state, "fsck-data-past");
    char key[FS_DATA_KEY_LEN];
    assert_int_equal(kv_put(s.db, NULL, s.data, key, fs_key_data(key, fx->f1, 6), "junk", 4),
                     KV_OK);
    store_close(&s);
    char message[96];
    snprintf(message, sizeof(message), "file %" PRIu64 ": data block 6 lies past its size", fx->f1);
    expect_found_and_repaired(fx->dir, 1, 0, message);
    expect_tree(fx, F1_IN_A);
    store_open(&s, fx->dir);
    assert_false(store_has(&s, s.data, key, fs_key_data(key, fx->f1, 6)));
    store_close(&s);
}

static void test_wrong_blocks_count(void **state)
{
    struct fixture *fx = *state;
    struct store s = start(state, "fsck-blocks");
    struct fs_inode inode;
    inode_get(&s, fx->big, &inode);
    assert_int_equal(inode.blocks, 3);
    inode.blocks = 11;
    inode_put(&s, fx->big, &inode);
    store_close(&s);
    char message[96];
    snprintf(message, sizeof(message), "file %" PRIu64 ": 11 blocks recorded, 3 stored", fx->big);
    expect_found_and_repaired(fx->dir, 1, 0, message);
    expect_tree(fx, F1_IN_A);
    struct fs *fs = open_fs(fx->dir, 0);
    struct stat st;
    assert_int_equal(fs_getattr(fs, fx->big, &st), 0);
    assert_int_equal(st.st_blocks, 3 * 4096 / 512);
    assert_int_equal(fs_close(fs), 0);
}

static void test_xattr_of_missing_inode(void **state)
{
    struct fixture *fx = *state;
    struct store s = start(state, "fsck-xattr");
    char key[FS_KEY_MAX];
    size_t key_len = fs_key_xattr(key, 3997, "user.ghost", 10);
    assert_int_equal(kv_put(s.db, NULL, s.meta, key, key_len, "v", 1), KV_OK);
    store_close(&s);
    expect_found_and_repaired(fx->dir, 1, 0, "xattr \"user.ghost\" of missing inode 3997");
    expect_tree(fx, F1_IN_A);
    store_open(&s, fx->dir);
    assert_false(store_has(&s, s.meta, key, key_len));
    store_close(&s);
}

/* A name "lost+found" that is not a directory: an unreachable inode cannot
 * be linked there, so repair must leave it alone (report it as damage it
 * could not repair), never reclaim an inode that still has links. */
static void test_unreachable_inode_kept_without_lost_and_found(void **state)
{
    struct fixture *fx = *state;
    build_fixture(fx, "fsck-lost-blocked");
    struct fs *fs = open_fs(fx->dir, 0);
    make_node(fs, FS_ROOT_INO, "lost+found", S_IFREG | 0644, NULL);
    assert_int_equal(fs_close(fs), 0);
    expect_clean(fx->dir);
    struct store s;
    store_open(&s, fx->dir);
    unlink_behind_back(&s, fx->a, "f1");
    store_close(&s);

    struct fsck_report report;
    char *output = expect_fsck(fx->dir, true, FSCK_DAMAGED, -1, &report);
    free(output);
    store_open(&s, fx->dir);
    char key[FS_KEY_MAX];
    bool inode_kept = store_has(&s, s.meta, key, fs_key_inode(key, fx->f1));
    bool data_kept = store_has(&s, s.data, key, fs_key_data(key, fx->f1, 0));
    store_close(&s);
    if (!inode_kept || !data_kept)
        fail_msg("fsck --repair reclaimed inode %" PRIu64 " (1 link, no entry) when it could "
                 "not put it in /lost+found: inode %s, data %s",
                 fx->f1, inode_kept ? "kept" : "deleted", data_kept ? "kept" : "deleted");
}

/* /lost+found created when fsck's inode table is exactly at a size where
 * one more inode makes it grow (512 and 1024 inodes): the unreachable
 * inode must still land in /lost+found and the counts be right. */
static void check_lost_and_found_at_size(struct fixture *fx, const char *name, int total_inodes)
{
    fx->dir = kv_test_tmpdir(name);
    const char *dir = fx->dir;
    struct fs *fs = open_fs(dir, 0);
    uint64_t victim = 0;
    for (int i = 1; i < total_inodes; i++) { /* the root is the first */
        char file[32];
        snprintf(file, sizeof(file), "f%04d", i);
        uint64_t ino = make_node(fs, FS_ROOT_INO, file, S_IFREG | 0644, NULL);
        if (i == total_inodes / 2) {
            victim = ino;
            write_content(fs, ino, 5, 6000);
        }
    }
    assert_int_equal(fs_close(fs), 0);
    struct fsck_report report;
    free(expect_fsck(dir, false, FSCK_CLEAN, 0, &report));
    assert_int_equal(report.inodes, (uint64_t)total_inodes);

    struct store s;
    store_open(&s, dir);
    char file[32];
    snprintf(file, sizeof(file), "f%04d", total_inodes / 2);
    unlink_behind_back(&s, FS_ROOT_INO, file);
    store_close(&s);
    char message[96];
    snprintf(message, sizeof(message), "inode %" PRIu64 " has 1 links but no directory entry",
             victim);
    expect_found_and_repaired(dir, 1, 0, message);

    fs = open_fs(dir, 0);
    struct walk w = {0};
    walk_dir(fs, &w, FS_ROOT_INO, FS_ROOT_INO);
    assert_int_equal(w.files, (uint64_t)total_inodes - 1);
    uint64_t lost = lookup(fs, FS_ROOT_INO, "lost+found");
    snprintf(file, sizeof(file), "#%" PRIu64, victim);
    assert_int_equal(lookup(fs, lost, file), victim);
    expect_content(fs, victim, 5, 6000);
    assert_int_equal(fs_close(fs), 0);
    destroy_fixture(fx);
}

static void test_lost_and_found_when_inode_table_grows(void **state)
{
    check_lost_and_found_at_size(*state, "fsck-lost-512", 512);
    check_lost_and_found_at_size(*state, "fsck-lost-1024", 1024);
}

/* ---- damage kv finds ---- */

/* Flips a byte in the middle of the largest file named *suffix (".sst",
 * ".blob") of a store written with or without blob files. */
static void check_flipped_byte(struct fixture *fx, const char *name, const char *suffix,
                               bool blob_files)
{
    memset(fx, 0, sizeof(*fx));
    fx->dir = kv_test_tmpdir(name);
    /* Incompressible data through small memtables: several SST files. */
    struct fs_options options;
    fsutil_options(&options, 256u << 10);
    options.blob_files = blob_files;
    struct fs *fs = fsutil_open(fx->dir, &options);
    uint64_t ino = make_node(fs, FS_ROOT_INO, "data", S_IFREG | 0644, NULL);
    kv_test_rng rng;
    kv_test_rng_init(&rng, 42);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    assert_int_equal(fs_open_file(fs, ino, O_WRONLY), 0);
    for (int i = 0; i < 3; i++) {
        kv_test_rng_bytes(&rng, buf, 1 << 20);
        assert_int_equal(fs_write(fs, ino, (uint64_t)i << 20, buf, 1 << 20, false), 1 << 20);
    }
    fs_release_file(fs, ino);
    free(buf);
    assert_int_equal(kv_flush(fs_db(fs), NULL, true), KV_OK);
    assert_int_equal(fs_close(fs), 0);
    expect_clean(fx->dir);

    /* The largest file: its middle is inside a data block or record. */
    size_t suffix_len = strlen(suffix);
    DIR *d = opendir(fx->dir);
    assert_non_null(d);
    char largest[256] = "";
    off_t largest_size = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n <= suffix_len || strcmp(e->d_name + n - suffix_len, suffix) != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", fx->dir, e->d_name);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        if (st.st_size > largest_size) {
            largest_size = st.st_size;
            snprintf(largest, sizeof(largest), "%s", e->d_name);
        }
    }
    closedir(d);
    if (largest_size < 64 * 1024)
        fail_msg("no %s file of 64 KiB or more in %s (largest %lld bytes)", suffix, fx->dir,
                 (long long)largest_size);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", fx->dir, largest);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char byte;
    off_t middle = largest_size / 2;
    assert_int_equal(pread(fd, &byte, 1, middle), 1);
    byte ^= 0x5a;
    assert_int_equal(pwrite(fd, &byte, 1, middle), 1);
    close(fd);

    struct fsck_report report;
    char *output = NULL;
    int status = run_fsck(fx->dir, false, &report, &output);
    if (status != FSCK_DAMAGED || strstr(output, largest) == NULL || report.problems == 0) {
        fprintf(stderr, "---- fsck %s ----\n%s---- end ----\n", fx->dir, output);
        free(output);
        fail_msg("fsck after flipping byte %lld of %s: status %d, %" PRIu64
                 " problems; expected DAMAGED naming the file",
                 (long long)middle, largest, status, report.problems);
    }
    free(output);
    /* Repair cannot fix a damaged file: still damaged, and says so again. */
    status = run_fsck(fx->dir, true, &report, &output);
    if (status != FSCK_DAMAGED || strstr(output, largest) == NULL) {
        fprintf(stderr, "---- fsck --repair %s ----\n%s---- end ----\n", fx->dir, output);
        free(output);
        fail_msg("fsck --repair after flipping a byte of %s: status %d", largest, status);
    }
    free(output);
}

static void test_flipped_sst_byte(void **state)
{
    check_flipped_byte(*state, "fsck-sst", ".sst", false);
}

static void test_flipped_blob_byte(void **state)
{
    check_flipped_byte(*state, "fsck-blob", ".blob", true);
}

static void test_fresh_fs_is_clean(void **state)
{
    struct fixture *fx = *state;
    memset(fx, 0, sizeof(*fx));
    fx->dir = kv_test_tmpdir("fsck-fresh");
    struct fs *fs = open_fs(fx->dir, 0);
    assert_int_equal(fs_close(fs), 0);
    struct fsck_report report;
    free(expect_fsck(fx->dir, false, FSCK_CLEAN, 0, &report));
    assert_int_equal(report.inodes, 1);
    assert_int_equal(report.directories, 1);
    assert_int_equal(report.entries, 0);
    free(expect_fsck(fx->dir, true, FSCK_CLEAN, 0, &report));
}

static void test_not_lsmfs_cannot_be_checked(void **state)
{
    struct fixture *fx = *state;
    memset(fx, 0, sizeof(*fx));
    fx->dir = kv_test_tmpdir("fsck-foreign");
    struct fsck_report report;
    char *output = NULL;
    char path[4096];

    /* An empty directory. */
    snprintf(path, sizeof(path), "%s/empty", fx->dir);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(run_fsck(path, false, &report, &output), FSCK_FAILED);
    free(output);

    /* A directory holding something else. */
    snprintf(path, sizeof(path), "%s/other", fx->dir);
    assert_int_equal(mkdir(path, 0755), 0);
    char file[4200];
    snprintf(file, sizeof(file), "%s/notes.txt", path);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("not a file system\n", f);
    fclose(f);
    assert_int_equal(run_fsck(path, true, &report, &output), FSCK_FAILED);
    free(output);

    /* No such directory. */
    snprintf(path, sizeof(path), "%s/missing", fx->dir);
    assert_int_equal(run_fsck(path, false, &report, &output), FSCK_FAILED);
    free(output);

    /* A kv database, but not lsmfs's: no meta and data families. */
    snprintf(path, sizeof(path), "%s/kvdb", fx->dir);
    kv_options options;
    kv_options_init(&options);
    options.create_if_missing = true;
    kv_db *db;
    assert_int_equal(kv_open(&options, path, &db), KV_OK);
    assert_int_equal(kv_put(db, NULL, kv_default_cf(db), "k", 1, "v", 1), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    assert_int_equal(run_fsck(path, true, &report, &output), FSCK_FAILED);
    free(output);
    /* and fsck left it as it was */
    assert_int_equal(kv_open(&options, path, &db), KV_OK);
    assert_null(kv_get_cf(db, FS_META_CF));
    assert_int_equal(kv_close(db), KV_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fixture_is_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_wrong_nlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_wrong_nlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_wrong_entry_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_wrong_parent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_wrong_entry_count_and_parent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_entry_to_missing_inode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_inode_goes_to_lost_and_found, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_directory_goes_to_lost_and_found, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_orphan_with_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orphan_without_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orphan_record_without_inode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_block_past_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_blocks_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xattr_of_missing_inode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_inode_kept_without_lost_and_found, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_flipped_sst_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_blob_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fresh_fs_is_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_lsmfs_cannot_be_checked, setup, teardown),
        /* last: fsck's use-after-free there aborts an ASan build */
        cmocka_unit_test_setup_teardown(test_lost_and_found_when_inode_table_grows, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
