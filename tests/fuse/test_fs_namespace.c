/*
 * test_fs_namespace.c — the namespace of the lsmfs core (fs_namespace.c)
 * over a real kv database, without a mount:
 *  - a randomized model of a tree of files, directories, symlinks, fifos,
 *    devices and hard links, driven through create/link/unlink/rmdir/
 *    rename (0, NOREPLACE, EXCHANGE)/setattr/lookup/forget/open/release
 *    with the kernel's lookup counts simulated, reopens now and then, and
 *    the whole tree compared with the model through the API and through
 *    the raw kv keys;
 *  - orphans: an inode unlinked while open or known to the kernel lives
 *    until its last reference, then every key of it goes; those left when
 *    the session ends are reclaimed by fs_close, and after a kill (a copy
 *    of the data directory taken while open) by the next open;
 *  - a consistency checker over the raw keys (a small fsck);
 *  - concurrent creates, renames and unlinks, renames A->B against
 *    B->A across two directories (no deadlock), and lookups of a name
 *    that a rename keeps replacing (never missing);
 *  - inode numbers never reused; name and symlink target limits.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "fsutil.h"
#include "schema.h"

/* ---- helpers ---- */

static struct fs *open_fs(const char *dir)
{
    struct fs_options options;
    fsutil_options(&options, 256u << 10); /* small: flushes and SST reads happen */
    return fsutil_open(dir, &options);
}

static void reopen(struct fs **fs, const char *dir)
{
    assert_int_equal(fs_close(*fs), 0);
    *fs = open_fs(dir);
}

/* Looks parent/name up (0 if absent) and gives the reference back. */
static uint64_t ino_of(struct fs *fs, uint64_t parent, const char *name)
{
    struct stat st;
    int rc = fs_lookup(fs, parent, name, &st);
    if (rc == -ENOENT)
        return 0;
    assert_int_equal(rc, 0);
    fs_forget(fs, st.st_ino, 1);
    return st.st_ino;
}

static struct stat stat_of(struct fs *fs, uint64_t ino)
{
    struct stat st;
    assert_int_equal(fs_getattr(fs, ino, &st), 0);
    return st;
}

static kv_cf *family(struct fs *fs, const char *name)
{
    kv_cf *cf = kv_get_cf(fs_db(fs), name);
    assert_non_null(cf);
    return cf;
}

/* Number of keys of `cf` that begin with prefix. */
static uint64_t count_prefix(struct fs *fs, const char *cf_name, const char *prefix, size_t len)
{
    kv_iterator *it = kv_iterator_create(fs_db(fs), NULL, family(fs, cf_name));
    assert_non_null(it);
    uint64_t count = 0;
    for (kv_iterator_seek(it, prefix, len); kv_iterator_valid(it); kv_iterator_next(it)) {
        size_t key_len;
        const char *key = kv_iterator_key(it, &key_len);
        if (key_len < len || memcmp(key, prefix, len) != 0)
            break;
        count++;
    }
    assert_int_equal(kv_iterator_status(it), 0);
    kv_iterator_destroy(it);
    return count;
}

static bool has_inode_key(struct fs *fs, uint64_t ino)
{
    char key[FS_INODE_KEY_LEN];
    return count_prefix(fs, FS_META_CF, key, fs_key_inode(key, ino)) == 1;
}

static bool has_orphan_key(struct fs *fs, uint64_t ino)
{
    char key[FS_INODE_KEY_LEN];
    return count_prefix(fs, FS_META_CF, key, fs_key_orphan(key, ino)) == 1;
}

static uint64_t data_keys(struct fs *fs, uint64_t ino)
{
    char key[FS_DATA_KEY_LEN];
    fs_key_data(key, ino, 0);
    return count_prefix(fs, FS_DATA_CF, key, 8);
}

static uint64_t xattr_keys(struct fs *fs, uint64_t ino)
{
    char key[FS_KEY_MAX];
    return count_prefix(fs, FS_META_CF, key, fs_key_xattr(key, ino, "", 0));
}

static uint64_t orphan_keys(struct fs *fs)
{
    char tag = FS_TAG_ORPHAN;
    return count_prefix(fs, FS_META_CF, &tag, 1);
}

/* Nothing of ino is stored any more. */
static void assert_reclaimed(struct fs *fs, uint64_t ino)
{
    assert_false(has_inode_key(fs, ino));
    assert_false(has_orphan_key(fs, ino));
    assert_int_equal(data_keys(fs, ino), 0);
    assert_int_equal(xattr_keys(fs, ino), 0);
    struct stat st;
    assert_int_equal(fs_getattr(fs, ino, &st), -ENOENT);
}

/* A number from fs_stats_text's first line ("... <label> N ..."). */
static uint64_t stats_number(struct fs *fs, const char *label)
{
    char *text = fs_stats_text(fs);
    assert_non_null(text);
    const char *at = strstr(text, label);
    if (at == NULL)
        fprintf(stderr, "no \"%s\" in stats:\n%s\n", label, text);
    assert_non_null(at);
    uint64_t value = strtoull(at + strlen(label), NULL, 10);
    free(text);
    return value;
}

static uint64_t kernel_known(struct fs *fs)
{
    return stats_number(fs, "inodes known to the kernel ");
}

static uint64_t orphans_reclaimed(struct fs *fs)
{
    return stats_number(fs, "orphans reclaimed ");
}

/* A byte of the payload a test writes into file ino. */
static char payload_byte(uint64_t ino, uint64_t i)
{
    return (char)(ino * 131 + i * 7 + (i >> 9));
}

static void write_payload(struct fs *fs, uint64_t ino, uint64_t len)
{
    char *buf = malloc(len + 1);
    for (uint64_t i = 0; i < len; i++)
        buf[i] = payload_byte(ino, i);
    assert_int_equal(fs_write(fs, ino, 0, buf, len, 0), (ssize_t)len);
    free(buf);
}

static void check_payload(struct fs *fs, uint64_t ino, uint64_t len)
{
    char *buf = malloc(len + 16);
    assert_int_equal(fs_read(fs, ino, 0, len + 16, buf), (ssize_t)len);
    for (uint64_t i = 0; i < len; i++)
        if (buf[i] != payload_byte(ino, i))
            fail_msg("inode %" PRIu64 ": byte %" PRIu64 " differs", ino, i);
    free(buf);
}

/* ---- a consistency checker over the raw keys (a small fsck) ---- */

struct fsck_inode {
    uint64_t ino;
    struct fs_inode inode;
    uint64_t names;    /* D entries naming it */
    uint64_t entries;  /* D entries in it (directories) */
    uint64_t subdirs;  /* of which directories */
    uint64_t named_in; /* the directory of (the last) entry naming it */
    uint64_t data_keys, xattr_keys;
    bool orphan; /* an O key */
    bool reached;
};

struct fsck_dentry {
    uint64_t parent, child;
};

struct fsck_report {
    struct fsck_inode *inodes; /* in ino order */
    size_t inode_count, inode_cap;
    struct fsck_dentry *dentries; /* in (parent, name) order */
    size_t dentry_count, dentry_cap;
    size_t orphan_count;
};

static struct fsck_inode *fsck_find(struct fsck_report *r, uint64_t ino)
{
    size_t lo = 0, hi = r->inode_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->inodes[mid].ino < ino)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < r->inode_count && r->inodes[lo].ino == ino ? &r->inodes[lo] : NULL;
}

static void fsck_free(struct fsck_report *r)
{
    free(r->inodes);
    free(r->dentries);
    memset(r, 0, sizeof(*r));
}

/* A failed invariant: says which and where, then fails the test. */
#define FSCK_CHECK(cond, ino)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail_msg("fsck: inode %" PRIu64 ": %s", (uint64_t)(ino), #cond);                       \
    } while (0)

/* Reads every key of both families and checks the invariants of
 * FORMAT.md: entries name existing inodes of their type in existing
 * directories; nlink is the number of names (directories: 2 + subdirs,
 * one name); a directory's size is its entry count; every inode but the
 * root is reachable from the root, or is an orphan (O key, nlink 0, no
 * name); no directory is reached twice (no cycles, no linked
 * directories); a directory records the directory holding it (what ".."
 * lists); data keys belong to regular files (below their size) or
 * symlinks (the target); xattr keys to inodes flagged HAS_XATTRS; inode
 * numbers are below the superblock's next_ino. Fills r (fsck_free it). */
static void fsck_run(struct fs *fs, bool allow_orphans, struct fsck_report *r)
{
    memset(r, 0, sizeof(*r));
    kv_db *db = fs_db(fs);
    kv_cf *meta = family(fs, FS_META_CF), *data = family(fs, FS_DATA_CF);

    char super_key[1];
    char *value;
    size_t value_len;
    assert_int_equal(kv_get(db, NULL, meta, super_key, fs_key_super(super_key), &value, &value_len),
                     0);
    struct fs_super super;
    assert_int_equal(fs_super_decode(value, value_len, &super), 0);
    kv_free(value);
    uint32_t block_size = super.block_size;

    kv_iterator *it = kv_iterator_create(db, NULL, meta);
    assert_non_null(it);
    /* inodes */
    char tag = FS_TAG_INODE;
    for (kv_iterator_seek(it, &tag, 1); kv_iterator_valid(it); kv_iterator_next(it)) {
        size_t key_len, len;
        const char *key = kv_iterator_key(it, &key_len);
        if (key_len == 0 || key[0] != FS_TAG_INODE)
            break;
        uint64_t ino;
        assert_true(fs_key_parse_ino(key, key_len, FS_TAG_INODE, &ino));
        if (r->inode_count == r->inode_cap) {
            r->inode_cap = r->inode_cap ? 2 * r->inode_cap : 256;
            r->inodes = realloc(r->inodes, r->inode_cap * sizeof(*r->inodes));
        }
        struct fsck_inode *n = &r->inodes[r->inode_count++];
        memset(n, 0, sizeof(*n));
        n->ino = ino;
        const char *v = kv_iterator_value(it, &len);
        FSCK_CHECK(fs_inode_decode(v, len, &n->inode) == 0, ino);
        FSCK_CHECK(ino < super.next_ino, ino);
    }
    FSCK_CHECK(fsck_find(r, FS_ROOT_INO) != NULL, FS_ROOT_INO);
    /* directory entries */
    tag = FS_TAG_DENTRY;
    for (kv_iterator_seek(it, &tag, 1); kv_iterator_valid(it); kv_iterator_next(it)) {
        size_t key_len, len;
        const char *key = kv_iterator_key(it, &key_len);
        if (key_len == 0 || key[0] != FS_TAG_DENTRY)
            break;
        uint64_t parent_ino, child_ino;
        const char *name;
        size_t name_len;
        mode_t type;
        assert_true(fs_key_parse_dentry(key, key_len, &parent_ino, &name, &name_len));
        const char *v = kv_iterator_value(it, &len);
        FSCK_CHECK(fs_dentry_decode(v, len, &child_ino, &type) == 0, parent_ino);
        FSCK_CHECK(name_len >= 1 && name_len <= FS_NAME_MAX, parent_ino);
        FSCK_CHECK(memchr(name, '/', name_len) == NULL && memchr(name, 0, name_len) == NULL,
                   parent_ino);
        struct fsck_inode *parent = fsck_find(r, parent_ino);
        FSCK_CHECK(parent != NULL && S_ISDIR(parent->inode.mode), parent_ino);
        struct fsck_inode *child = fsck_find(r, child_ino);
        FSCK_CHECK(child != NULL, child_ino);
        FSCK_CHECK((child->inode.mode & S_IFMT) == type, child_ino);
        FSCK_CHECK(child_ino != FS_ROOT_INO && child_ino != parent_ino, child_ino);
        child->names++;
        child->named_in = parent_ino;
        parent->entries++;
        if (S_ISDIR(child->inode.mode))
            parent->subdirs++;
        if (r->dentry_count == r->dentry_cap) {
            r->dentry_cap = r->dentry_cap ? 2 * r->dentry_cap : 256;
            r->dentries = realloc(r->dentries, r->dentry_cap * sizeof(*r->dentries));
        }
        r->dentries[r->dentry_count++] = (struct fsck_dentry){parent_ino, child_ino};
    }
    /* orphans */
    tag = FS_TAG_ORPHAN;
    for (kv_iterator_seek(it, &tag, 1); kv_iterator_valid(it); kv_iterator_next(it)) {
        size_t key_len;
        const char *key = kv_iterator_key(it, &key_len);
        if (key_len == 0 || key[0] != FS_TAG_ORPHAN)
            break;
        uint64_t ino;
        assert_true(fs_key_parse_ino(key, key_len, FS_TAG_ORPHAN, &ino));
        struct fsck_inode *n = fsck_find(r, ino);
        FSCK_CHECK(n != NULL, ino); /* an orphan record without its inode */
        FSCK_CHECK(n->inode.nlink == 0, ino);
        n->orphan = true;
        r->orphan_count++;
    }
    /* extended attributes */
    tag = FS_TAG_XATTR;
    for (kv_iterator_seek(it, &tag, 1); kv_iterator_valid(it); kv_iterator_next(it)) {
        size_t key_len;
        const char *key = kv_iterator_key(it, &key_len);
        if (key_len == 0 || key[0] != FS_TAG_XATTR)
            break;
        uint64_t ino;
        const char *name;
        size_t name_len;
        assert_true(fs_key_parse_xattr(key, key_len, &ino, &name, &name_len));
        struct fsck_inode *n = fsck_find(r, ino);
        FSCK_CHECK(n != NULL, ino);
        FSCK_CHECK(n->inode.flags & FS_INODE_HAS_XATTRS, ino);
        n->xattr_keys++;
    }
    assert_int_equal(kv_iterator_status(it), 0);
    kv_iterator_destroy(it);

    /* file data */
    it = kv_iterator_create(db, NULL, data);
    assert_non_null(it);
    for (kv_iterator_seek_to_first(it); kv_iterator_valid(it); kv_iterator_next(it)) {
        size_t key_len, len;
        const char *key = kv_iterator_key(it, &key_len);
        uint64_t ino, block;
        assert_true(fs_key_parse_data(key, key_len, &ino, &block));
        kv_iterator_value(it, &len);
        struct fsck_inode *n = fsck_find(r, ino);
        FSCK_CHECK(n != NULL, ino); /* data of a reclaimed inode */
        if (S_ISLNK(n->inode.mode)) {
            FSCK_CHECK(block == 0 && len == n->inode.size, ino);
        } else {
            FSCK_CHECK(S_ISREG(n->inode.mode), ino);
            FSCK_CHECK(len >= 1 && len <= block_size, ino);
            FSCK_CHECK(block * block_size + len <= n->inode.size, ino);
        }
        n->data_keys++;
    }
    assert_int_equal(kv_iterator_status(it), 0);
    kv_iterator_destroy(it);

    /* per-inode invariants */
    for (size_t i = 0; i < r->inode_count; i++) {
        struct fsck_inode *n = &r->inodes[i];
        bool dir = S_ISDIR(n->inode.mode);
        if (n->ino == FS_ROOT_INO) {
            FSCK_CHECK(dir && n->names == 0 && !n->orphan, n->ino);
            FSCK_CHECK(n->inode.parent == FS_ROOT_INO, n->ino);
            FSCK_CHECK(n->inode.nlink == 2 + n->subdirs, n->ino);
        } else if (n->names == 0) {
            /* no name left: only an orphan may stay */
            FSCK_CHECK(n->orphan, n->ino);
            FSCK_CHECK(n->inode.nlink == 0, n->ino);
            FSCK_CHECK(n->entries == 0, n->ino);
        } else if (dir) {
            FSCK_CHECK(n->names == 1, n->ino);
            FSCK_CHECK(n->inode.nlink == 2 + n->subdirs, n->ino);
            FSCK_CHECK(!n->orphan, n->ino);
            FSCK_CHECK(n->inode.parent == n->named_in, n->ino); /* what ".." lists */
        } else {
            FSCK_CHECK(n->inode.nlink == n->names, n->ino);
            FSCK_CHECK(!n->orphan, n->ino);
            FSCK_CHECK(n->inode.parent == 0, n->ino); /* only directories have one */
        }
        if (dir)
            FSCK_CHECK(n->inode.size == n->entries, n->ino);
        if (S_ISLNK(n->inode.mode))
            FSCK_CHECK(n->data_keys == 1 && n->inode.size >= 1 && n->inode.size <= FS_SYMLINK_MAX,
                       n->ino);
        if (S_ISREG(n->inode.mode))
            FSCK_CHECK(n->inode.blocks == n->data_keys, n->ino);
        if (!S_ISREG(n->inode.mode) && !S_ISLNK(n->inode.mode))
            FSCK_CHECK(n->data_keys == 0, n->ino);
    }
    if (!allow_orphans && r->orphan_count != 0)
        fail_msg("fsck: %zu orphan records with nothing open", r->orphan_count);

    /* reachability: a walk from the root over the entries (grouped by parent) */
    uint64_t *queue = malloc((r->inode_count + 1) * sizeof(*queue));
    size_t head = 0, tail = 0;
    queue[tail++] = FS_ROOT_INO;
    fsck_find(r, FS_ROOT_INO)->reached = true;
    while (head < tail) {
        uint64_t dir_ino = queue[head++];
        size_t lo = 0, hi = r->dentry_count;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (r->dentries[mid].parent < dir_ino)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (size_t d = lo; d < r->dentry_count && r->dentries[d].parent == dir_ino; d++) {
            struct fsck_inode *child = fsck_find(r, r->dentries[d].child);
            if (S_ISDIR(child->inode.mode)) {
                FSCK_CHECK(!child->reached, child->ino); /* a cycle */
                assert_true(tail <= r->inode_count);
                queue[tail++] = child->ino;
            }
            child->reached = true;
        }
    }
    free(queue);
    for (size_t i = 0; i < r->inode_count; i++)
        FSCK_CHECK(r->inodes[i].reached || r->inodes[i].orphan, r->inodes[i].ino);
}

static void fsck_clean(struct fs *fs, bool allow_orphans)
{
    struct fsck_report r;
    fsck_run(fs, allow_orphans, &r);
    fsck_free(&r);
}

/* ---- listing a directory through the API ---- */

struct listed {
    char *name;
    uint64_t ino;
    mode_t type;
};

struct listing {
    struct listed *items;
    size_t count, cap;
};

static bool collect_entry(void *ctx, const char *name, const struct stat *st, bool referenced,
                          uint64_t next_offset)
{
    (void)next_offset;
    struct listing *l = ctx;
    assert_false(referenced);
    if (l->count == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->items = realloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->count++] = (struct listed){strdup(name), st->st_ino, st->st_mode & S_IFMT};
    return true;
}

static void listing_free(struct listing *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i].name);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

/* Lists directory ino (".", ".." and its entries) into l; ".." must be
 * `parent`. */
static void list_dir(struct fs *fs, uint64_t ino, uint64_t parent, struct listing *l)
{
    memset(l, 0, sizeof(*l));
    struct fs_dir *dir;
    assert_int_equal(fs_opendir(fs, ino, &dir), 0);
    assert_int_equal(fs_readdir(fs, dir, 0, false, collect_entry, l), 0);
    fs_releasedir(fs, dir);
    assert_true(l->count >= 2);
    assert_string_equal(l->items[0].name, ".");
    assert_string_equal(l->items[1].name, "..");
    assert_int_equal(l->items[0].ino, ino);
    if (l->items[1].ino != parent)
        fail_msg("directory %" PRIu64 ": \"..\" is %" PRIu64 ", expected %" PRIu64, ino,
                 l->items[1].ino, parent);
}

/* ---- the model ---- */

struct model_node {
    uint64_t ino;
    mode_t mode;
    uint32_t uid, gid;
    uint64_t rdev;
    bool exists;   /* its inode is stored: it has a name, or is an orphan */
    bool unlinked; /* lost its last name (a directory: removed) */
    uint64_t payload;
    char *target;
    bool atime_known, mtime_known;
    int64_t atime_ns, mtime_ns;
    bool has_xattr;
    uint64_t kernel_refs; /* lookups the simulated kernel holds */
    uint32_t opens;
    struct fs_dir *dir_handle;
    size_t live_pos; /* in model.live while it exists */
};

struct model_entry {
    int parent, child;
    char *name;
};

enum model_op {
    OP_CREATE,
    OP_LINK,
    OP_UNLINK,
    OP_RMDIR,
    OP_RENAME,
    OP_RENAME_NOREPLACE,
    OP_RENAME_EXCHANGE,
    OP_SETATTR,
    OP_LOOKUP,
    OP_COUNT
};
static const char *const op_names[OP_COUNT] = {"create",          "link",    "unlink",
                                               "rmdir",           "rename",  "rename-noreplace",
                                               "rename-exchange", "setattr", "lookup"};

/* Outcome classes counted per operation. */
enum outcome {
    OUT_OK,
    OUT_ENOENT,
    OUT_EEXIST,
    OUT_ENOTEMPTY,
    OUT_ENOTDIR,
    OUT_EISDIR,
    OUT_EPERM,
    OUT_OTHER,
    OUT_COUNT
};
static const char *const outcome_names[OUT_COUNT] = {"ok",      "ENOENT", "EEXIST", "ENOTEMPTY",
                                                     "ENOTDIR", "EISDIR", "EPERM",  "other"};

static enum outcome outcome_of(int rc)
{
    switch (rc) {
    case 0:
        return OUT_OK;
    case -ENOENT:
        return OUT_ENOENT;
    case -EEXIST:
        return OUT_EEXIST;
    case -ENOTEMPTY:
        return OUT_ENOTEMPTY;
    case -ENOTDIR:
        return OUT_ENOTDIR;
    case -EISDIR:
        return OUT_EISDIR;
    case -EPERM:
        return OUT_EPERM;
    default:
        return OUT_OTHER;
    }
}
#define BIT(outcome) (1u << (outcome))

/* Things the random run must have done at least once. */
enum milestone {
    MS_DIR_MOVED_ACROSS,  /* rename of a directory to another parent */
    MS_FILE_REPLACED,     /* rename over an existing non-directory */
    MS_DIR_REPLACED,      /* rename of a directory over an empty one */
    MS_EXCHANGE_DIR_FILE, /* exchange of a directory and a non-directory across parents */
    MS_ORPHAN_MADE,
    MS_ORPHAN_RECLAIMED, /* at the last forget or release */
    MS_RECLAIMED_AT_OPEN,
    MS_SETGID_INHERITED,
    MS_REOPEN,
    MS_COUNT
};
static const char *const milestone_names[MS_COUNT] = {"dir moved across parents",
                                                      "file replaced",
                                                      "empty dir replaced",
                                                      "dir<->file exchanged across parents",
                                                      "orphan made",
                                                      "orphan reclaimed at last reference",
                                                      "orphan reclaimed at open",
                                                      "setgid group inherited",
                                                      "reopen"};

#define NAME_POOL 16
#define MODEL_MAX_ENTRIES 400 /* keeps each step's cost bounded in long runs */

struct model {
    struct fs *fs;
    char *path;
    kv_test_rng rng;
    uint64_t step;
    struct model_node *nodes; /* every node ever created, in ino order */
    size_t node_count, node_cap;
    int *live; /* the nodes that exist, in no order */
    size_t live_count;
    struct model_entry *entries;
    size_t entry_count, entry_cap;
    uint64_t max_ino;
    char *names[NAME_POOL];
    uint64_t outcomes[OP_COUNT][OUT_COUNT];
    uint64_t milestones[MS_COUNT];
};

static uint64_t rnd(struct model *m, uint64_t n)
{
    return kv_test_rng_uniform(&m->rng, n);
}

static bool is_dir(struct model *m, int i)
{
    return S_ISDIR(m->nodes[i].mode);
}

static int model_add_node(struct model *m, uint64_t ino, mode_t mode, uint32_t uid, uint32_t gid)
{
    if (m->node_count == m->node_cap) {
        m->node_cap = m->node_cap ? 2 * m->node_cap : 256;
        m->nodes = realloc(m->nodes, m->node_cap * sizeof(*m->nodes));
    }
    struct model_node *n = &m->nodes[m->node_count];
    memset(n, 0, sizeof(*n));
    n->ino = ino;
    n->mode = mode;
    n->uid = uid;
    n->gid = gid;
    n->exists = true;
    if (ino > m->max_ino)
        m->max_ino = ino;
    m->live = realloc(m->live, m->node_cap * sizeof(*m->live));
    n->live_pos = m->live_count;
    m->live[m->live_count++] = (int)m->node_count;
    return (int)m->node_count++;
}

/* Node i's inode is reclaimed: it leaves the live set. */
static void model_gone(struct model *m, int i)
{
    struct model_node *n = &m->nodes[i];
    assert_true(n->exists);
    n->exists = false;
    int last = m->live[--m->live_count];
    m->live[n->live_pos] = last;
    m->nodes[last].live_pos = n->live_pos;
}

static void model_add_entry(struct model *m, int parent, const char *name, int child)
{
    if (m->entry_count == m->entry_cap) {
        m->entry_cap = m->entry_cap ? 2 * m->entry_cap : 256;
        m->entries = realloc(m->entries, m->entry_cap * sizeof(*m->entries));
    }
    m->entries[m->entry_count++] = (struct model_entry){parent, child, strdup(name)};
}

static void model_remove_entry(struct model *m, int e)
{
    free(m->entries[e].name);
    m->entries[e] = m->entries[--m->entry_count];
}

static int model_find(struct model *m, int parent, const char *name)
{
    for (size_t e = 0; e < m->entry_count; e++)
        if (m->entries[e].parent == parent && strcmp(m->entries[e].name, name) == 0)
            return (int)e;
    return -1;
}

static uint64_t model_names(struct model *m, int i)
{
    uint64_t n = 0;
    for (size_t e = 0; e < m->entry_count; e++)
        n += m->entries[e].child == i;
    return n;
}

static uint64_t model_entry_count(struct model *m, int dir)
{
    uint64_t n = 0;
    for (size_t e = 0; e < m->entry_count; e++)
        n += m->entries[e].parent == dir;
    return n;
}

static uint64_t model_nlink(struct model *m, int i)
{
    if (!is_dir(m, i))
        return model_names(m, i);
    if (m->nodes[i].unlinked)
        return 0;
    uint64_t n = 2;
    for (size_t e = 0; e < m->entry_count; e++)
        n += m->entries[e].parent == i && is_dir(m, m->entries[e].child);
    return n;
}

/* Whether directory a is b or lies below b. */
static bool model_within(struct model *m, int a, int b)
{
    for (;;) {
        if (a == b)
            return true;
        if (a == 0)
            return false;
        int e;
        for (e = 0; e < (int)m->entry_count && m->entries[e].child != a; e++)
            ;
        assert_true(e < (int)m->entry_count);
        a = m->entries[e].parent;
    }
}

static bool model_held(const struct model_node *n)
{
    return n->kernel_refs > 0 || n->opens > 0 || n->dir_handle != NULL;
}

/* After a reference went away: an unlinked inode nobody holds is gone,
 * every key of it with it. */
static void model_settle(struct model *m, int i)
{
    struct model_node *n = &m->nodes[i];
    if (n->exists && n->unlinked && !model_held(n)) {
        model_gone(m, i);
        assert_reclaimed(m->fs, n->ino);
        m->milestones[MS_ORPHAN_RECLAIMED]++;
    }
}

/* Node i lost a name: with none left it is reclaimed now or, while held,
 * kept as an orphan. */
static void model_name_dropped(struct model *m, int i)
{
    struct model_node *n = &m->nodes[i];
    if (!is_dir(m, i) && model_names(m, i) > 0)
        return;
    n->unlinked = true;
    if (model_held(n)) {
        assert_true(has_orphan_key(m->fs, n->ino));
        assert_true(has_inode_key(m->fs, n->ino));
        m->milestones[MS_ORPHAN_MADE]++;
    } else {
        model_gone(m, i);
        assert_reclaimed(m->fs, n->ino);
    }
}

static void model_forget(struct model *m, int i, uint64_t count)
{
    assert_true(m->nodes[i].kernel_refs >= count);
    fs_forget(m->fs, m->nodes[i].ino, count);
    m->nodes[i].kernel_refs -= count;
    model_settle(m, i);
}

/* The kernel got a reference to node i: it keeps it a while, or (mostly)
 * drops the dentry at once. */
static void model_referenced(struct model *m, int i)
{
    m->nodes[i].kernel_refs++;
    if (rnd(m, 2) != 0)
        model_forget(m, i, 1);
}

/* Records rc as the outcome of op and checks it against the set of
 * acceptable errors (none: success expected). */
static void model_expect(struct model *m, enum model_op op, int rc, unsigned errors,
                         const char *what)
{
    enum outcome got = outcome_of(rc);
    m->outcomes[op][got]++;
    bool ok = errors == 0 ? rc == 0 : (rc != 0 && (errors & BIT(got)));
    if (!ok) {
        char want[128] = "";
        for (int o = 1; o < OUT_COUNT; o++)
            if (errors & BIT(o)) {
                strcat(want, " ");
                strcat(want, outcome_names[o]);
            }
        fail_msg("step %" PRIu64 ": %s %s: got %d (%s), expected%s", m->step, op_names[op], what,
                 rc, rc ? strerror(-rc) : "ok", errors ? want : " success");
    }
}

/* ---- random choices ---- */

static bool linked_dir(struct model *m, int i)
{
    return is_dir(m, i) && !m->nodes[i].unlinked;
}

static bool orphan(struct model *m, int i)
{
    return m->nodes[i].unlinked;
}

static bool referenced(struct model *m, int i)
{
    return m->nodes[i].kernel_refs > 0;
}

static bool has_handle(struct model *m, int i)
{
    return m->nodes[i].opens > 0 || m->nodes[i].dir_handle != NULL;
}

/* A random existing node for which `which` holds; -1 if there is none. */
static int pick_live(struct model *m, bool (*which)(struct model *, int))
{
    int count = 0;
    for (size_t k = 0; k < m->live_count; k++)
        count += which(m, m->live[k]);
    if (count == 0)
        return -1;
    int chosen = (int)rnd(m, (uint64_t)count);
    for (size_t k = 0; k < m->live_count; k++)
        if (which(m, m->live[k]) && chosen-- == 0)
            return m->live[k];
    fail();
    return -1;
}

static int pick_dir(struct model *m)
{
    int dir = pick_live(m, linked_dir);
    assert_true(dir >= 0); /* the root at least */
    return dir;
}

/* A name in dir: often one that exists there, else one from the pool. */
static void pick_name(struct model *m, int dir, char *out)
{
    if (rnd(m, 2) == 0) {
        int count = 0;
        for (size_t e = 0; e < m->entry_count; e++)
            count += m->entries[e].parent == dir;
        if (count > 0) {
            int k = (int)rnd(m, (uint64_t)count);
            for (size_t e = 0; e < m->entry_count; e++)
                if (m->entries[e].parent == dir && k-- == 0) {
                    strcpy(out, m->entries[e].name);
                    return;
                }
        }
    }
    strcpy(out, m->names[rnd(m, NAME_POOL)]);
}

/* An existing node: mostly one with a name, sometimes an orphan or the root. */
static int pick_node(struct model *m)
{
    uint64_t r = rnd(m, 20);
    if (r == 0)
        return 0;
    if (r <= 2) {
        int i = pick_live(m, orphan);
        if (i >= 0)
            return i;
    }
    if (m->entry_count == 0)
        return 0;
    return m->entries[rnd(m, m->entry_count)].child;
}

/* ---- operations ---- */

static void op_create(struct model *m)
{
    int dir = pick_dir(m);
    char name[FS_NAME_MAX + 1];
    pick_name(m, dir, name);
    static const mode_t perms[] = {0644, 0600, 0755, 0700, 0640, 01777};
    mode_t perm = perms[rnd(m, sizeof(perms) / sizeof(perms[0]))];
    mode_t mode;
    char *target = NULL;
    dev_t rdev = 0;
    uint64_t kind = rnd(m, 10);
    if (kind < 4) {
        mode = S_IFREG | perm;
    } else if (kind < 7) {
        mode = S_IFDIR | perm;
    } else if (kind < 9) {
        size_t len = rnd(m, 50) == 0 ? FS_SYMLINK_MAX : 1 + rnd(m, 80);
        target = malloc(len + 1);
        for (size_t i = 0; i < len; i++)
            target[i] = (char)('!' + rnd(m, 94));
        target[len] = '\0';
        mode = S_IFLNK | 0777;
    } else if (rnd(m, 2)) {
        mode = S_IFIFO | perm;
    } else {
        mode = S_IFCHR | 0600;
        rdev = makedev(1 + rnd(m, 10), rnd(m, 100));
    }
    struct fs_caller caller = {
        .uid = 1000 + (uid_t)rnd(m, 3), .gid = 2000 + (gid_t)rnd(m, 3), .pid = 1};
    unsigned errors = model_find(m, dir, name) >= 0 ? BIT(OUT_EEXIST) : 0;
    struct stat st;
    int rc = fs_create_node(m->fs, &caller, m->nodes[dir].ino, name, target ? 0 : mode, rdev,
                            target, &st);
    model_expect(m, OP_CREATE, rc, errors, name);
    if (rc != 0) {
        free(target);
        return;
    }
    assert_true(st.st_ino > m->max_ino); /* never reused */
    uint32_t gid = caller.gid;
    if (m->nodes[dir].mode & S_ISGID) {
        gid = m->nodes[dir].gid;
        if (S_ISDIR(mode))
            mode |= S_ISGID;
        m->milestones[MS_SETGID_INHERITED]++;
    }
    int i = model_add_node(m, st.st_ino, mode, caller.uid, gid);
    struct model_node *n = &m->nodes[i];
    n->target = target;
    n->rdev = rdev;
    model_add_entry(m, dir, name, i);
    m->nodes[dir].mtime_known = false;
    assert_int_equal(st.st_mode, mode);
    assert_int_equal(st.st_uid, n->uid);
    assert_int_equal(st.st_gid, n->gid);
    assert_int_equal(st.st_nlink, S_ISDIR(mode) ? 2 : 1);
    assert_int_equal(st.st_rdev, rdev);
    if (S_ISREG(mode) && rnd(m, 3) != 0) {
        /* small files (deleted key by key) and, now and then, one of more
         * than 32 blocks (deleted with a range tombstone) */
        uint64_t r = rnd(m, 24);
        n->payload = r == 0  ? 32 * 4096 + 1 + rnd(m, 200000)
                     : r < 8 ? 1 + rnd(m, 12000)
                             : 1 + rnd(m, 200);
        write_payload(m->fs, n->ino, n->payload);
    }
    model_referenced(m, i);
}

static void op_link(struct model *m)
{
    int src = pick_node(m);
    int dir = pick_dir(m);
    char name[FS_NAME_MAX + 1];
    pick_name(m, dir, name);
    unsigned errors = 0;
    if (is_dir(m, src))
        errors |= BIT(OUT_EPERM);
    if (m->nodes[src].unlinked)
        errors |= BIT(OUT_ENOENT);
    if (model_find(m, dir, name) >= 0)
        errors |= BIT(OUT_EEXIST);
    struct stat st;
    int rc = fs_link(m->fs, m->nodes[src].ino, m->nodes[dir].ino, name, &st);
    model_expect(m, OP_LINK, rc, errors, name);
    if (rc != 0)
        return;
    model_add_entry(m, dir, name, src);
    m->nodes[dir].mtime_known = false;
    assert_int_equal(st.st_ino, m->nodes[src].ino);
    assert_int_equal(st.st_nlink, model_nlink(m, src));
    model_referenced(m, src);
}

static bool held_with_name(struct model *m, int i)
{
    return i != 0 && !m->nodes[i].unlinked && model_held(&m->nodes[i]);
}

static void op_remove(struct model *m, bool directory)
{
    int dir = pick_dir(m);
    char name[FS_NAME_MAX + 1];
    pick_name(m, dir, name);
    /* now and then a name of a node the kernel or a handle holds: orphans */
    int held = rnd(m, 4) == 0 ? pick_live(m, held_with_name) : -1;
    for (size_t k = 0; held >= 0 && k < m->entry_count; k++)
        if (m->entries[k].child == held) {
            dir = m->entries[k].parent;
            strcpy(name, m->entries[k].name);
            break;
        }
    int e = model_find(m, dir, name);
    unsigned errors = 0;
    int child = e >= 0 ? m->entries[e].child : -1;
    if (e < 0)
        errors = BIT(OUT_ENOENT);
    else if (directory && !is_dir(m, child))
        errors = BIT(OUT_ENOTDIR);
    else if (!directory && is_dir(m, child))
        errors = BIT(OUT_EISDIR);
    else if (directory && model_entry_count(m, child) > 0)
        errors = BIT(OUT_ENOTEMPTY);
    uint64_t parent = m->nodes[dir].ino;
    int rc = directory ? fs_rmdir(m->fs, parent, name) : fs_unlink(m->fs, parent, name);
    model_expect(m, directory ? OP_RMDIR : OP_UNLINK, rc, errors, name);
    if (rc != 0)
        return;
    model_remove_entry(m, e);
    m->nodes[dir].mtime_known = false;
    model_name_dropped(m, child);
}

static void op_rename(struct model *m)
{
    int from = pick_dir(m);
    int to = rnd(m, 2) ? from : pick_dir(m);
    char name[FS_NAME_MAX + 1], new_name[FS_NAME_MAX + 1];
    pick_name(m, from, name);
    pick_name(m, to, new_name);
    static const unsigned all_flags[] = {0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE};
    unsigned flags = all_flags[rnd(m, 4)];
    enum model_op op = flags == 0                  ? OP_RENAME
                       : flags == RENAME_NOREPLACE ? OP_RENAME_NOREPLACE
                                                   : OP_RENAME_EXCHANGE;
    int e_src = model_find(m, from, name), e_dst = model_find(m, to, new_name);
    int src = e_src >= 0 ? m->entries[e_src].child : -1;
    int dst = e_dst >= 0 ? m->entries[e_dst].child : -1;
    /* The kernel refuses, before asking the file system, to move a
     * directory below itself (EINVAL) or to exchange one with its own
     * descendant: the core relies on that. */
    if (src >= 0 && is_dir(m, src) && model_within(m, to, src))
        return;
    if (dst >= 0 && is_dir(m, dst) && (flags & RENAME_EXCHANGE) && model_within(m, from, dst))
        return;
    unsigned errors = 0;
    if (src < 0) {
        errors = BIT(OUT_ENOENT);
    } else {
        if ((flags & RENAME_NOREPLACE) && dst >= 0)
            errors |= BIT(OUT_EEXIST);
        if ((flags & RENAME_EXCHANGE) && dst < 0)
            errors |= BIT(OUT_ENOENT);
        if (flags == 0 && dst >= 0 && dst != src) {
            if (is_dir(m, src) && !is_dir(m, dst))
                errors |= BIT(OUT_ENOTDIR);
            if (!is_dir(m, src) && is_dir(m, dst))
                errors |= BIT(OUT_EISDIR);
            if (is_dir(m, dst) && model_entry_count(m, dst) > 0)
                errors |= BIT(OUT_ENOTEMPTY);
        }
    }
    int rc = fs_rename(m->fs, m->nodes[from].ino, name, m->nodes[to].ino, new_name, flags);
    char what[2 * FS_NAME_MAX + 64];
    snprintf(what, sizeof(what), "%" PRIu64 "/%.40s -> %" PRIu64 "/%.40s", m->nodes[from].ino, name,
             m->nodes[to].ino, new_name);
    model_expect(m, op, rc, errors, what);
    if (rc != 0 || src == dst)
        return; /* two names of one inode: nothing happens */
    m->nodes[from].mtime_known = false;
    m->nodes[to].mtime_known = false;
    if (flags & RENAME_EXCHANGE) {
        m->entries[e_src].child = dst;
        m->entries[e_dst].child = src;
        if (from != to && is_dir(m, src) != is_dir(m, dst))
            m->milestones[MS_EXCHANGE_DIR_FILE]++;
        return;
    }
    free(m->entries[e_src].name);
    m->entries[e_src].name = strdup(new_name);
    m->entries[e_src].parent = to;
    if (is_dir(m, src) && from != to)
        m->milestones[MS_DIR_MOVED_ACROSS]++;
    if (dst >= 0) {
        m->milestones[is_dir(m, dst) ? MS_DIR_REPLACED : MS_FILE_REPLACED]++;
        model_remove_entry(m, e_dst);
        model_name_dropped(m, dst);
    }
}

static int64_t random_time_ns(struct model *m)
{
    return (int64_t)(1000000000 + rnd(m, 1000000000)) * 1000000000 + (int64_t)rnd(m, 1000000000);
}

static void op_setattr(struct model *m)
{
    int i = pick_node(m);
    struct model_node *n = &m->nodes[i];
    struct stat attr;
    memset(&attr, 0, sizeof(attr));
    int to_set = 0;
    if (rnd(m, 3) == 0 && !S_ISLNK(n->mode)) { /* chmod does not reach a symlink */
        to_set |= FS_SET_MODE;
        attr.st_mode = (mode_t)rnd(m, 07777 + 1);
    }
    if (rnd(m, 3) == 0) {
        to_set |= FS_SET_UID;
        attr.st_uid = 1000 + (uid_t)rnd(m, 5);
    }
    if (rnd(m, 3) == 0) {
        to_set |= FS_SET_GID;
        attr.st_gid = 2000 + (gid_t)rnd(m, 5);
    }
    int64_t atime = random_time_ns(m), mtime = random_time_ns(m);
    switch (rnd(m, 4)) {
    case 0:
        to_set |= FS_SET_ATIME;
        break;
    case 1:
        to_set |= FS_SET_ATIME_NOW;
        break;
    }
    switch (rnd(m, 4)) {
    case 0:
        to_set |= FS_SET_MTIME;
        break;
    case 1:
        to_set |= FS_SET_MTIME_NOW;
        break;
    }
    attr.st_atim.tv_sec = atime / 1000000000;
    attr.st_atim.tv_nsec = atime % 1000000000;
    attr.st_mtim.tv_sec = mtime / 1000000000;
    attr.st_mtim.tv_nsec = mtime % 1000000000;
    if (to_set == 0) {
        to_set = FS_SET_UID;
        attr.st_uid = n->uid;
    }
    if (rnd(m, 4) == 0)
        to_set |= FS_SET_KILL_SUIDGID;
    struct stat st;
    int rc = fs_setattr(m->fs, n->ino, &attr, to_set, &st);
    model_expect(m, OP_SETATTR, rc, 0, "");
    if (to_set & FS_SET_MODE) {
        n->mode = (n->mode & S_IFMT) | (attr.st_mode & 07777);
    } else if ((to_set & FS_SET_KILL_SUIDGID) && !S_ISDIR(n->mode)) {
        n->mode &= ~(mode_t)S_ISUID;
        if (n->mode & S_IXGRP)
            n->mode &= ~(mode_t)S_ISGID;
    }
    if (to_set & FS_SET_UID)
        n->uid = attr.st_uid;
    if (to_set & FS_SET_GID)
        n->gid = attr.st_gid;
    if (to_set & (FS_SET_ATIME | FS_SET_ATIME_NOW)) {
        n->atime_known = (to_set & FS_SET_ATIME) != 0;
        n->atime_ns = atime;
    }
    if (to_set & (FS_SET_MTIME | FS_SET_MTIME_NOW)) {
        n->mtime_known = (to_set & FS_SET_MTIME) != 0;
        n->mtime_ns = mtime;
    }
    assert_int_equal(st.st_ino, n->ino);
    assert_int_equal(st.st_mode, n->mode);
    assert_int_equal(st.st_uid, n->uid);
    assert_int_equal(st.st_gid, n->gid);
    assert_int_equal(st.st_nlink, model_nlink(m, i));
    if (n->atime_known)
        assert_int_equal((int64_t)st.st_atim.tv_sec * 1000000000 + st.st_atim.tv_nsec, n->atime_ns);
    if (n->mtime_known)
        assert_int_equal((int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec, n->mtime_ns);
}

static void op_lookup(struct model *m)
{
    int dir = pick_dir(m);
    char name[FS_NAME_MAX + 1];
    pick_name(m, dir, name);
    int e = model_find(m, dir, name);
    struct stat st;
    int rc = fs_lookup(m->fs, m->nodes[dir].ino, name, &st);
    model_expect(m, OP_LOOKUP, rc, e < 0 ? BIT(OUT_ENOENT) : 0, name);
    if (rc != 0)
        return;
    int i = m->entries[e].child;
    assert_int_equal(st.st_ino, m->nodes[i].ino);
    assert_int_equal(st.st_mode, m->nodes[i].mode);
    assert_int_equal(st.st_nlink, model_nlink(m, i));
    model_referenced(m, i);
}

/* Gives back some of the references the kernel kept. */
static void op_forget(struct model *m)
{
    int i = pick_live(m, referenced);
    if (i >= 0)
        model_forget(m, i, 1 + rnd(m, m->nodes[i].kernel_refs));
}

/* Opens a file or a directory, or releases a handle. */
static void op_open_or_release(struct model *m)
{
    if (rnd(m, 2) == 0) {
        int i = pick_node(m);
        struct model_node *n = &m->nodes[i];
        if (S_ISREG(n->mode)) {
            assert_int_equal(fs_open_file(m->fs, n->ino, O_RDWR), 0);
            n->opens++;
        } else if (S_ISDIR(n->mode) && n->dir_handle == NULL) {
            assert_int_equal(fs_opendir(m->fs, n->ino, &n->dir_handle), 0);
        }
        return;
    }
    int i = pick_live(m, has_handle);
    if (i < 0)
        return;
    struct model_node *n = &m->nodes[i];
    if (n->opens > 0) {
        fs_release_file(m->fs, n->ino);
        n->opens--;
    } else {
        fs_releasedir(m->fs, n->dir_handle);
        n->dir_handle = NULL;
    }
    model_settle(m, i);
}

static void op_setxattr(struct model *m)
{
    int i = pick_node(m);
    struct model_node *n = &m->nodes[i];
    if (!S_ISREG(n->mode) && !S_ISDIR(n->mode))
        return; /* user.* attributes are for files and directories */
    assert_int_equal(fs_setxattr(m->fs, n->ino, "user.model", "x", 1, 0), 0);
    n->has_xattr = true;
}

/* ---- comparing the file system with the model ---- */

static void model_check_attrs(struct model *m, int i, const struct stat *st)
{
    struct model_node *n = &m->nodes[i];
    assert_int_equal(st->st_ino, n->ino);
    if (st->st_mode != n->mode)
        fail_msg("inode %" PRIu64 ": mode %o, expected %o", n->ino, st->st_mode, n->mode);
    assert_int_equal(st->st_nlink, model_nlink(m, i));
    assert_int_equal(st->st_uid, n->uid);
    assert_int_equal(st->st_gid, n->gid);
    uint64_t size = S_ISDIR(n->mode)   ? model_entry_count(m, i)
                    : S_ISLNK(n->mode) ? strlen(n->target)
                                       : n->payload;
    assert_int_equal(st->st_size, size);
    if (S_ISCHR(n->mode))
        assert_int_equal(st->st_rdev, n->rdev);
    if (n->atime_known)
        assert_int_equal((int64_t)st->st_atim.tv_sec * 1000000000 + st->st_atim.tv_nsec,
                         n->atime_ns);
    if (n->mtime_known)
        assert_int_equal((int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
                         n->mtime_ns);
    if (S_ISLNK(n->mode)) {
        char buf[FS_SYMLINK_MAX + 2];
        ssize_t len = fs_readlink(m->fs, n->ino, buf, sizeof(buf));
        assert_int_equal(len, (ssize_t)strlen(n->target));
        assert_memory_equal(buf, n->target, (size_t)len);
    }
}

static int compare_entry_names(const void *a, const void *b)
{
    const struct model_entry *x = *(const struct model_entry *const *)a;
    const struct model_entry *y = *(const struct model_entry *const *)b;
    return strcmp(x->name, y->name);
}

/* Lists dir through the API and compares it, and everything below it,
 * with the model. */
static void model_check_dir(struct model *m, int dir)
{
    struct listing l;
    int parent = 0; /* the root's ".." is itself */
    for (size_t e = 0; dir != 0 && e < m->entry_count; e++)
        if (m->entries[e].child == dir)
            parent = m->entries[e].parent;
    list_dir(m->fs, m->nodes[dir].ino, m->nodes[parent].ino, &l);
    size_t count = 0;
    const struct model_entry **expected = malloc((m->entry_count + 1) * sizeof(*expected));
    for (size_t e = 0; e < m->entry_count; e++)
        if (m->entries[e].parent == dir)
            expected[count++] = &m->entries[e];
    qsort(expected, count, sizeof(*expected), compare_entry_names);
    if (l.count != count + 2)
        fail_msg("directory %" PRIu64 ": %zu entries listed, model has %zu", m->nodes[dir].ino,
                 l.count - 2, count);
    for (size_t k = 0; k < count; k++) {
        const struct listed *got = &l.items[k + 2];
        const struct model_entry *want = expected[k];
        struct model_node *child = &m->nodes[want->child];
        if (strcmp(got->name, want->name) != 0)
            fail_msg("directory %" PRIu64 ": entry %zu is \"%.60s\", expected \"%.60s\"",
                     m->nodes[dir].ino, k, got->name, want->name);
        assert_int_equal(got->ino, child->ino);
        assert_int_equal(got->type, child->mode & S_IFMT);
        struct stat st;
        assert_int_equal(fs_lookup(m->fs, m->nodes[dir].ino, got->name, &st), 0);
        fs_forget(m->fs, st.st_ino, 1);
        model_check_attrs(m, want->child, &st);
        if (S_ISDIR(child->mode))
            model_check_dir(m, want->child);
    }
    free(expected);
    listing_free(&l);
}

/* Compares the raw keys with the model: exactly the model's inodes are
 * stored (each live one, and no more of them), orphan records exactly for
 * the unlinked ones still held. */
static void model_check_raw(struct model *m, bool allow_orphans)
{
    struct fsck_report r;
    fsck_run(m->fs, allow_orphans, &r);
    for (size_t k = 0; k < m->live_count; k++) {
        int i = m->live[k];
        struct model_node *n = &m->nodes[i];
        struct fsck_inode *stored = fsck_find(&r, n->ino);
        if (stored == NULL)
            fail_msg("inode %" PRIu64 " is missing", n->ino);
        assert_int_equal(stored->orphan, n->unlinked);
        assert_int_equal(stored->xattr_keys, n->has_xattr ? 1 : 0);
        assert_int_equal(stored->inode.nlink, model_nlink(m, i));
    }
    if (r.inode_count != m->live_count)
        fail_msg("%zu inodes stored, %zu expected: some were not reclaimed", r.inode_count,
                 m->live_count);
    assert_int_equal(r.dentry_count, m->entry_count);
    fsck_free(&r);
}

static void model_check(struct model *m)
{
    struct stat st;
    assert_int_equal(fs_getattr(m->fs, FS_ROOT_INO, &st), 0);
    model_check_attrs(m, 0, &st);
    model_check_dir(m, 0);
    for (size_t k = 0; k < m->live_count; k++) {
        int i = m->live[k];
        struct model_node *n = &m->nodes[i];
        if (n->unlinked) {
            /* an orphan is still fully usable through its inode number */
            assert_int_equal(fs_getattr(m->fs, n->ino, &st), 0);
            model_check_attrs(m, i, &st);
        }
        if (n->payload > 0 && (n->unlinked || rnd(m, 8) == 0))
            check_payload(m->fs, n->ino, n->payload);
    }
    /* some of the reclaimed ones: gone for good */
    for (int k = 0; k < 16; k++) {
        struct model_node *n = &m->nodes[rnd(m, m->node_count)];
        if (!n->exists)
            assert_int_equal(fs_getattr(m->fs, n->ino, &st), -ENOENT);
    }
    model_check_raw(m, true);
}

/* Closes and opens the file system. A clean unmount gives every reference
 * back first; a crash does not, and the next open reclaims the orphans. */
static void model_reopen(struct model *m, bool clean)
{
    /* downwards: model_gone moves the last live node into the hole */
    for (size_t k = m->live_count; k-- > 0;) {
        int i = m->live[k];
        struct model_node *n = &m->nodes[i];
        if (n->dir_handle != NULL) {
            fs_releasedir(m->fs, n->dir_handle);
            n->dir_handle = NULL;
            model_settle(m, i);
        }
        if (clean && n->exists) {
            while (n->opens > 0) {
                fs_release_file(m->fs, n->ino);
                n->opens--;
            }
            if (n->kernel_refs > 0)
                model_forget(m, i, n->kernel_refs);
            model_settle(m, i);
        }
    }
    if (clean)
        assert_int_equal(kernel_known(m->fs), 0);
    reopen(&m->fs, m->path);
    m->milestones[MS_REOPEN]++;
    for (size_t k = m->live_count; k-- > 0;) {
        int i = m->live[k];
        struct model_node *n = &m->nodes[i];
        n->kernel_refs = 0;
        n->opens = 0;
        if (n->unlinked) {
            model_gone(m, i);
            assert_reclaimed(m->fs, n->ino);
            m->milestones[MS_RECLAIMED_AT_OPEN]++;
        }
    }
    assert_int_equal(orphan_keys(m->fs), 0);
    model_check_raw(m, false);
}

static void model_init(struct model *m, const char *name, uint64_t seed)
{
    memset(m, 0, sizeof(*m));
    m->path = kv_test_tmpdir(name);
    m->fs = open_fs(m->path);
    kv_test_rng_init(&m->rng, seed);
    struct stat st = stat_of(m->fs, FS_ROOT_INO);
    model_add_node(m, FS_ROOT_INO, st.st_mode, st.st_uid, st.st_gid);
    /* a small pool, so names collide; some long, some not ASCII */
    static const char *const short_names[] = {
        "a", "b", "c", "d", "e", "f", "g", "h", "ab", "a b", "\xc3\xa9t\xc3\xa9", "\xff", "Z"};
    size_t k = 0;
    for (; k < sizeof(short_names) / sizeof(short_names[0]); k++)
        m->names[k] = strdup(short_names[k]);
    for (int len = FS_NAME_MAX; k < NAME_POOL; k++, len -= 7) {
        m->names[k] = malloc(FS_NAME_MAX + 1);
        memset(m->names[k], 'l' + (int)k % 3, (size_t)len);
        m->names[k][len] = '\0';
    }
}

static void model_destroy(struct model *m)
{
    for (size_t i = 0; i < m->node_count; i++)
        free(m->nodes[i].target);
    for (size_t e = 0; e < m->entry_count; e++)
        free(m->entries[e].name);
    for (int k = 0; k < NAME_POOL; k++)
        free(m->names[k]);
    free(m->nodes);
    free(m->live);
    free(m->entries);
    assert_int_equal(fs_close(m->fs), 0);
    kv_test_cleanup_dir(m->path);
}

static void model_run(uint64_t steps, uint64_t seed)
{
    struct model m;
    model_init(&m, "fs_namespace_model", seed);
    printf("model: seed %" PRIu64 ", %" PRIu64 " steps\n", seed, steps);
    for (m.step = 1; m.step <= steps; m.step++) {
        uint64_t r = rnd(&m, 100);
        if (r < 30 && m.entry_count >= MODEL_MAX_ENTRIES)
            r = 30 + r % 18; /* the tree is big enough: remove instead */
        if (r < 22)
            op_create(&m);
        else if (r < 30)
            op_link(&m);
        else if (r < 40)
            op_remove(&m, false);
        else if (r < 48)
            op_remove(&m, true);
        else if (r < 68)
            op_rename(&m);
        else if (r < 76)
            op_setattr(&m);
        else if (r < 84)
            op_lookup(&m);
        else if (r < 90)
            op_forget(&m);
        else if (r < 97)
            op_open_or_release(&m);
        else
            op_setxattr(&m);
        if (m.step % 37 == 0)
            model_check(&m);
        if (rnd(&m, 250) == 0) {
            /* mostly a crash while orphans exist: the next open reclaims them */
            bool orphans = pick_live(&m, orphan) >= 0;
            model_reopen(&m, orphans ? rnd(&m, 4) == 0 : rnd(&m, 2) == 0);
        }
    }
    model_check(&m);
    model_reopen(&m, false);
    model_check(&m);
    model_reopen(&m, true);
    model_check(&m);

    printf("%-18s", "outcomes");
    for (int o = 0; o < OUT_COUNT; o++)
        printf(" %9s", outcome_names[o]);
    printf("\n");
    for (int op = 0; op < OP_COUNT; op++) {
        printf("%-18s", op_names[op]);
        for (int o = 0; o < OUT_COUNT; o++)
            printf(" %9" PRIu64, m.outcomes[op][o]);
        printf("\n");
    }
    for (int ms = 0; ms < MS_COUNT; ms++)
        printf("%-40s %" PRIu64 "\n", milestone_names[ms], m.milestones[ms]);

    /* The run must have reached every case it is meant to check. */
    static const struct {
        enum model_op op;
        enum outcome outcome;
    } required[] = {
        {OP_CREATE, OUT_OK},
        {OP_CREATE, OUT_EEXIST},
        {OP_LINK, OUT_OK},
        {OP_LINK, OUT_EEXIST},
        {OP_LINK, OUT_EPERM},
        {OP_LINK, OUT_ENOENT},
        {OP_UNLINK, OUT_OK},
        {OP_UNLINK, OUT_ENOENT},
        {OP_UNLINK, OUT_EISDIR},
        {OP_RMDIR, OUT_OK},
        {OP_RMDIR, OUT_ENOENT},
        {OP_RMDIR, OUT_ENOTDIR},
        {OP_RMDIR, OUT_ENOTEMPTY},
        {OP_RENAME, OUT_OK},
        {OP_RENAME, OUT_ENOENT},
        {OP_RENAME, OUT_ENOTDIR},
        {OP_RENAME, OUT_EISDIR},
        {OP_RENAME, OUT_ENOTEMPTY},
        {OP_RENAME_NOREPLACE, OUT_OK},
        {OP_RENAME_NOREPLACE, OUT_EEXIST},
        {OP_RENAME_EXCHANGE, OUT_OK},
        {OP_RENAME_EXCHANGE, OUT_ENOENT},
        {OP_SETATTR, OUT_OK},
        {OP_LOOKUP, OUT_OK},
        {OP_LOOKUP, OUT_ENOENT},
    };
    for (size_t k = 0; k < sizeof(required) / sizeof(required[0]); k++)
        if (m.outcomes[required[k].op][required[k].outcome] == 0)
            fail_msg("the run never saw %s -> %s", op_names[required[k].op],
                     outcome_names[required[k].outcome]);
    for (int ms = 0; ms < MS_COUNT; ms++)
        if (m.milestones[ms] == 0)
            fail_msg("the run never reached: %s", milestone_names[ms]);
    model_destroy(&m);
}

static void test_model(void **state)
{
    (void)state;
    model_run(kv_test_long_mode() ? 200000 : 20000, kv_test_seed(20240611));
}

/* ---- orphans ---- */

static int setup(void **state)
{
    struct fs_options options;
    fsutil_options(&options, 256u << 10); /* small: flushes and SST reads happen */
    *state = fsutil_fixture_create("fs_namespace", &options);
    return 0;
}

/* A file with 3+ blocks of data and an xattr; the kernel reference of the
 * create is kept (returned in the caller's hands). */
static uint64_t make_full_file(struct fs *fs, uint64_t parent, const char *name, uint64_t size)
{
    struct stat st;
    assert_int_equal(fs_create_node(fs, fsutil_me(), parent, name, S_IFREG | 0644, 0, NULL, &st),
                     0);
    write_payload(fs, st.st_ino, size);
    assert_int_equal(fs_setxattr(fs, st.st_ino, "user.tag", "orphan", 6, 0), 0);
    assert_true(has_inode_key(fs, st.st_ino));
    assert_int_equal(data_keys(fs, st.st_ino), (size + 4095) / 4096);
    assert_int_equal(xattr_keys(fs, st.st_ino), 1);
    return st.st_ino;
}

/* Unlinked while open: readable and writable until the last of release and
 * forget, in either order; then every key of it is gone. */
static void test_orphan_lives_until_last_reference(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    for (int release_first = 0; release_first < 2; release_first++) {
        /* a small file and one of more than 32 blocks (reclaimed with a
         * range tombstone rather than key by key) */
        const uint64_t size = release_first ? 3 * 4096 + 100 : 50 * 4096 + 7;
        uint64_t reclaimed_before = orphans_reclaimed(fs);
        uint64_t ino = make_full_file(fs, FS_ROOT_INO, "victim", size);
        assert_int_equal(fs_open_file(fs, ino, O_RDWR), 0);
        assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "victim"), 0);

        struct stat st;
        assert_int_equal(fs_lookup(fs, FS_ROOT_INO, "victim", &st), -ENOENT);
        st = stat_of(fs, ino);
        assert_int_equal(st.st_nlink, 0);
        assert_int_equal(st.st_size, size);
        assert_int_equal(stat_of(fs, FS_ROOT_INO).st_size, 0);
        assert_true(has_orphan_key(fs, ino));
        assert_true(has_inode_key(fs, ino));
        check_payload(fs, ino, size);
        /* still writable, and the write persists in the orphan */
        assert_int_equal(fs_write(fs, ino, size, "tail", 4, 0), 4);
        char tail[128];
        assert_int_equal(fs_read(fs, ino, size, 4, tail), 4);
        assert_memory_equal(tail, "tail", 4);
        char value[16];
        assert_int_equal(fs_getxattr(fs, ino, "user.tag", value, sizeof(value)), 6);
        assert_int_equal(fs_link(fs, ino, FS_ROOT_INO, "again", &st), -ENOENT);
        {
            struct fsck_report r;
            fsck_run(fs, true, &r);
            assert_int_equal(r.orphan_count, 1);
            fsck_free(&r);
        }

        if (release_first)
            fs_release_file(fs, ino);
        else
            fs_forget(fs, ino, 1);
        /* one reference left: nothing reclaimed yet */
        assert_true(has_inode_key(fs, ino));
        assert_true(has_orphan_key(fs, ino));
        assert_int_equal(data_keys(fs, ino), (size + 4 + 4095) / 4096);
        assert_int_equal(stat_of(fs, ino).st_size, size + 4);
        assert_int_equal(fs_read(fs, ino, size, 100, tail), 4);
        assert_memory_equal(tail, "tail", 4);
        if (release_first)
            fs_forget(fs, ino, 1);
        else
            fs_release_file(fs, ino);
        assert_reclaimed(fs, ino);
        assert_int_equal(orphans_reclaimed(fs), reclaimed_before + 1);
        assert_int_equal(kernel_known(fs), 0);
        fsck_clean(fs, false);
    }
}

/* Only the kernel's lookup holds it (no open handle). */
static void test_orphan_held_by_lookup(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    uint64_t ino = make_full_file(fs, FS_ROOT_INO, "f", 5000);
    struct stat st;
    assert_int_equal(fs_lookup(fs, FS_ROOT_INO, "f", &st), 0); /* 2 references */
    assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "f"), 0);
    assert_true(has_orphan_key(fs, ino));
    fs_forget(fs, ino, 1);
    assert_true(has_orphan_key(fs, ino));
    check_payload(fs, ino, 5000);
    fs_forget(fs, ino, 1);
    assert_reclaimed(fs, ino);

    /* forget of several lookups at once */
    ino = make_full_file(fs, FS_ROOT_INO, "g", 100);
    for (int i = 0; i < 4; i++)
        assert_int_equal(fs_lookup(fs, FS_ROOT_INO, "g", &st), 0);
    assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "g"), 0);
    fs_forget(fs, ino, 4);
    assert_true(has_orphan_key(fs, ino));
    fs_forget(fs, ino, 1);
    assert_reclaimed(fs, ino);
    fsck_clean(fs, false);
}

/* Nobody holds it: unlink reclaims at once, without an orphan record. */
static void test_unlink_unused_reclaims_at_once(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    for (uint64_t size = 9000; size < 1000000; size *= 10) {
        uint64_t ino = make_full_file(fs, FS_ROOT_INO, "f", size);
        fs_forget(fs, ino, 1);
        assert_int_equal(kernel_known(fs), 0);
        assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "f"), 0);
        assert_reclaimed(fs, ino);
    }

    /* the last of two hard links */
    uint64_t ino = make_full_file(fs, FS_ROOT_INO, "a", 4097);
    struct stat st;
    assert_int_equal(fs_link(fs, ino, FS_ROOT_INO, "b", &st), 0);
    assert_int_equal(st.st_nlink, 2);
    fs_forget(fs, ino, 2);
    assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "a"), 0);
    assert_int_equal(stat_of(fs, ino).st_nlink, 1);
    check_payload(fs, ino, 4097);
    assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "b"), 0);
    assert_reclaimed(fs, ino);

    /* a rename over an unused file */
    uint64_t victim = make_full_file(fs, FS_ROOT_INO, "victim", 10);
    fs_forget(fs, victim, 1);
    uint64_t winner = fsutil_make_node(fs, FS_ROOT_INO, "winner", S_IFREG | 0600, NULL);
    assert_int_equal(fs_rename(fs, FS_ROOT_INO, "winner", FS_ROOT_INO, "victim", 0), 0);
    assert_reclaimed(fs, victim);
    assert_int_equal(ino_of(fs, FS_ROOT_INO, "victim"), winner);
    assert_int_equal(orphan_keys(fs), 0);
    fsck_clean(fs, false);
}

/* A directory removed while open: an orphan until releasedir and forget. */
static void test_orphan_directory(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    struct stat st;
    assert_int_equal(
        fs_create_node(fs, fsutil_me(), FS_ROOT_INO, "d", S_IFDIR | 0755, 0, NULL, &st), 0);
    uint64_t d = st.st_ino;
    assert_int_equal(fs_setxattr(fs, d, "user.x", "1", 1, 0), 0);
    struct fs_dir *handle;
    assert_int_equal(fs_opendir(fs, d, &handle), 0);
    assert_int_equal(stat_of(fs, FS_ROOT_INO).st_nlink, 3);
    assert_int_equal(fs_rmdir(fs, FS_ROOT_INO, "d"), 0);
    assert_int_equal(stat_of(fs, FS_ROOT_INO).st_nlink, 2);
    assert_int_equal(stat_of(fs, d).st_nlink, 0);
    assert_true(has_orphan_key(fs, d));
    /* nothing can be created in a removed directory */
    assert_int_equal(fs_create_node(fs, fsutil_me(), d, "x", S_IFREG | 0644, 0, NULL, &st),
                     -ENOENT);
    uint64_t f = fsutil_make_node(fs, FS_ROOT_INO, "f", S_IFREG | 0644, NULL);
    assert_int_equal(fs_link(fs, f, d, "x", &st), -ENOENT);
    assert_int_equal(fs_rename(fs, FS_ROOT_INO, "f", d, "x", 0), -ENOENT);
    struct listing l = {0};
    assert_int_equal(fs_readdir(fs, handle, 0, false, collect_entry, &l), 0);
    assert_int_equal(l.count, 2);
    listing_free(&l);
    fs_releasedir(fs, handle);
    assert_true(has_orphan_key(fs, d)); /* the kernel still knows it */
    fs_forget(fs, d, 1);
    assert_reclaimed(fs, d);

    /* an empty directory replaced by a rename while the kernel knows it */
    assert_int_equal(
        fs_create_node(fs, fsutil_me(), FS_ROOT_INO, "e", S_IFDIR | 0755, 0, NULL, &st), 0);
    uint64_t e = st.st_ino;
    fsutil_make_node(fs, FS_ROOT_INO, "g", S_IFDIR | 0755, NULL);
    assert_int_equal(stat_of(fs, FS_ROOT_INO).st_nlink, 4);
    assert_int_equal(fs_rename(fs, FS_ROOT_INO, "g", FS_ROOT_INO, "e", 0), 0);
    assert_int_equal(stat_of(fs, FS_ROOT_INO).st_nlink, 3);
    assert_int_equal(stat_of(fs, e).st_nlink, 0);
    assert_true(has_orphan_key(fs, e));
    fs_forget(fs, e, 1);
    assert_reclaimed(fs, e);
    fsck_clean(fs, false);
}

/* What is left once the orphans of test_orphans_reclaimed are gone. */
static void expect_orphans_gone(struct fs *fs, const uint64_t *gone, size_t count,
                                uint64_t survivor)
{
    assert_int_equal(orphan_keys(fs), 0);
    for (size_t i = 0; i < count; i++)
        assert_reclaimed(fs, gone[i]);
    assert_int_equal(ino_of(fs, FS_ROOT_INO, "replaced"), survivor);
    check_payload(fs, survivor, 7000);
    struct listing l;
    list_dir(fs, FS_ROOT_INO, FS_ROOT_INO, &l);
    assert_int_equal(l.count, 3);
    assert_string_equal(l.items[2].name, "replaced");
    listing_free(&l);
    assert_int_equal(stat_of(fs, FS_ROOT_INO).st_size, 1);
    assert_int_equal(stat_of(fs, FS_ROOT_INO).st_nlink, 2);
    fsck_clean(fs, false);
}

/* Orphans left when the session ends (a handle or a kernel reference never
 * given back) are reclaimed by fs_close; after a kill, by the next open:
 * no O key, no I key, no data or xattr key left. */
static void test_orphans_reclaimed(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    /* open, the kernel's reference already given back */
    uint64_t opened = make_full_file(fs, FS_ROOT_INO, "opened", 3 * 4096);
    assert_int_equal(fs_open_file(fs, opened, O_RDONLY), 0);
    fs_forget(fs, opened, 1);
    assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "opened"), 0);
    /* held by a lookup only */
    uint64_t looked_up = make_full_file(fs, FS_ROOT_INO, "looked_up", 4096 + 1);
    assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "looked_up"), 0);
    /* replaced by a rename while open */
    uint64_t replaced = make_full_file(fs, FS_ROOT_INO, "replaced", 300000);
    assert_int_equal(fs_open_file(fs, replaced, O_RDWR), 0);
    uint64_t survivor = make_full_file(fs, FS_ROOT_INO, "survivor", 7000);
    fs_forget(fs, survivor, 1);
    assert_int_equal(fs_rename(fs, FS_ROOT_INO, "survivor", FS_ROOT_INO, "replaced", 0), 0);
    /* a removed directory the kernel still knows */
    struct stat st;
    assert_int_equal(
        fs_create_node(fs, fsutil_me(), FS_ROOT_INO, "dir", S_IFDIR | 0700, 0, NULL, &st), 0);
    uint64_t dir = st.st_ino;
    assert_int_equal(fs_rmdir(fs, FS_ROOT_INO, "dir"), 0);
    assert_int_equal(orphan_keys(fs), 4);
    fsck_clean(fs, true);
    const uint64_t gone[] = {opened, looked_up, replaced, dir};
    char *killed = fsutil_killed_copy(fs, fx->dir);

    /* A clean close leaves nothing for the next open. */
    reopen(&fx->fs, fx->dir);
    assert_int_equal(orphans_reclaimed(fx->fs), 0);
    expect_orphans_gone(fx->fs, gone, 4, survivor);

    /* After a kill, the next open reclaims them. */
    fs = open_fs(killed);
    assert_int_equal(orphans_reclaimed(fs), 4);
    expect_orphans_gone(fs, gone, 4, survivor);
    /* and nothing is left to do at the open after */
    assert_int_equal(fs_close(fs), 0);
    fs = open_fs(killed);
    assert_int_equal(orphans_reclaimed(fs), 0);
    fsck_clean(fs, false);
    assert_int_equal(fs_close(fs), 0);
    char command[4200];
    snprintf(command, sizeof(command), "rm -rf '%s'", killed);
    assert_int_equal(system(command), 0);
    free(killed);
}

/* ---- hard links, rename details ---- */

static void test_links_and_renames(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    struct stat st;
    uint64_t a = fsutil_make_node(fs, FS_ROOT_INO, "a", S_IFDIR | 0755, NULL);
    uint64_t b = fsutil_make_node(fs, FS_ROOT_INO, "b", S_IFDIR | 0755, NULL);
    uint64_t f = fsutil_make_node(fs, a, "f", S_IFREG | 0644, NULL);
    uint64_t s = fsutil_make_node(fs, a, "s", 0, "f");
    /* link a file, a symlink; a directory is EPERM */
    assert_int_equal(fs_link(fs, f, b, "f2", &st), 0);
    fs_forget(fs, f, 1);
    assert_int_equal(st.st_nlink, 2);
    assert_int_equal(fs_link(fs, s, b, "s2", &st), 0);
    fs_forget(fs, s, 1);
    assert_int_equal(fs_link(fs, a, b, "a2", &st), -EPERM);
    assert_int_equal(fs_link(fs, f, b, "f2", &st), -EEXIST);
    assert_int_equal(fs_link(fs, f, f, "x", &st), -ENOTDIR);
    assert_int_equal(stat_of(fs, b).st_size, 2);
    assert_int_equal(stat_of(fs, b).st_nlink, 2);

    /* rename between two names of one inode does nothing */
    assert_int_equal(fs_rename(fs, a, "f", b, "f2", 0), 0);
    assert_int_equal(ino_of(fs, a, "f"), f);
    assert_int_equal(ino_of(fs, b, "f2"), f);
    assert_int_equal(fs_rename(fs, a, "f", b, "f2", RENAME_NOREPLACE), -EEXIST);
    assert_int_equal(fs_rename(fs, a, "f", b, "f2", RENAME_EXCHANGE), 0);
    assert_int_equal(stat_of(fs, f).st_nlink, 2);
    /* bad flags */
    assert_int_equal(fs_rename(fs, a, "f", b, "x", RENAME_NOREPLACE | RENAME_EXCHANGE), -EINVAL);
    assert_int_equal(fs_rename(fs, a, "f", b, "x", 0x80), -EINVAL);

    /* a directory moves across parents: link counts follow */
    uint64_t sub = fsutil_make_node(fs, a, "sub", S_IFDIR | 0755, NULL);
    fsutil_make_node(fs, sub, "inner", S_IFREG | 0644, NULL);
    assert_int_equal(stat_of(fs, a).st_nlink, 3);
    assert_int_equal(fs_rename(fs, a, "sub", b, "sub", 0), 0);
    assert_int_equal(stat_of(fs, a).st_nlink, 2);
    assert_int_equal(stat_of(fs, b).st_nlink, 3);
    assert_int_equal(stat_of(fs, sub).st_nlink, 2);
    assert_int_equal(ino_of(fs, sub, "inner") != 0, true);
    struct listing l;
    list_dir(fs, sub, b, &l); /* ".." follows the move */
    listing_free(&l);
    /* a directory over a non-empty one; over a file; a file over a directory */
    uint64_t full = fsutil_make_node(fs, a, "full", S_IFDIR | 0755, NULL);
    fsutil_make_node(fs, full, "x", S_IFREG | 0644, NULL);
    assert_int_equal(fs_rename(fs, b, "sub", a, "full", 0), -ENOTEMPTY);
    assert_int_equal(fs_rename(fs, b, "sub", a, "f", 0), -ENOTDIR);
    assert_int_equal(fs_rename(fs, a, "f", a, "full", 0), -EISDIR);
    /* exchange a directory and a file across parents */
    assert_int_equal(fs_rename(fs, b, "sub", a, "s", RENAME_EXCHANGE), 0);
    assert_int_equal(ino_of(fs, a, "s"), sub);
    assert_int_equal(ino_of(fs, b, "sub"), s);
    assert_int_equal(stat_of(fs, a).st_nlink, 4); /* full, s (the dir) */
    assert_int_equal(stat_of(fs, b).st_nlink, 2);
    list_dir(fs, sub, a, &l);
    listing_free(&l);
    /* a directory over an empty directory in another parent */
    uint64_t empty = fsutil_make_node(fs, b, "empty", S_IFDIR | 0755, NULL);
    assert_int_equal(stat_of(fs, b).st_nlink, 3);
    assert_int_equal(fs_rename(fs, a, "s", b, "empty", 0), 0);
    assert_reclaimed(fs, empty);
    assert_int_equal(stat_of(fs, a).st_nlink, 3);
    assert_int_equal(stat_of(fs, b).st_nlink, 3);
    assert_int_equal(stat_of(fs, a).st_size, 2); /* f, full */
    assert_int_equal(stat_of(fs, b).st_size, 4); /* empty (sub), f2, s2, sub (symlink) */
    /* missing source, missing exchange target */
    assert_int_equal(fs_rename(fs, a, "nope", b, "x", 0), -ENOENT);
    assert_int_equal(fs_rename(fs, a, "f", b, "nope", RENAME_EXCHANGE), -ENOENT);
    /* readlink */
    char buf[16];
    assert_int_equal(fs_readlink(fs, s, buf, sizeof(buf)), 1);
    assert_int_equal(buf[0], 'f');
    assert_int_equal(fs_readlink(fs, f, buf, sizeof(buf)), -EINVAL);
    fsck_clean(fs, false);
    reopen(&fx->fs, fx->dir);
    fsck_clean(fx->fs, false);
    assert_int_equal(stat_of(fx->fs, b).st_size, 4);
}

/* ---- inode numbers ---- */

static void test_inode_numbers_never_reused(void **state)
{
    struct fs_fixture *fx = *state;
    uint64_t last = fsutil_make_node(fx->fs, FS_ROOT_INO, "first", S_IFREG | 0644, NULL);
    assert_int_equal(fs_unlink(fx->fs, FS_ROOT_INO, "first"), 0);
    assert_reclaimed(fx->fs, last);
    for (int round = 0; round < 4; round++) {
        /* within one run: strictly increasing, across a reservation range */
        int count = round == 1 ? 5000 : 10;
        for (int i = 0; i < count; i++) {
            char name[32];
            snprintf(name, sizeof(name), "r%d-%d", round, i);
            uint64_t ino = fsutil_make_node(fx->fs, FS_ROOT_INO, name, S_IFREG | 0644, NULL);
            assert_true(ino > last);
            last = ino;
            if (i % 2 == 0)
                assert_int_equal(fs_unlink(fx->fs, FS_ROOT_INO, name), 0);
        }
        reopen(&fx->fs, fx->dir);
        if (round == 2)
            reopen(&fx->fs, fx->dir); /* an open with no create between */
    }
    uint64_t ino = fsutil_make_node(fx->fs, FS_ROOT_INO, "last", S_IFREG | 0644, NULL);
    assert_true(ino > last);
    fsck_clean(fx->fs, false);
}

/* ---- names and targets ---- */

static void test_name_limits(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    char name255[FS_NAME_MAX + 1], name255b[FS_NAME_MAX + 1], name256[FS_NAME_MAX + 2];
    memset(name255, 'n', FS_NAME_MAX);
    name255[FS_NAME_MAX] = '\0';
    memset(name255b, 'm', FS_NAME_MAX);
    name255b[FS_NAME_MAX] = '\0';
    memset(name256, 'o', FS_NAME_MAX + 1);
    name256[FS_NAME_MAX + 1] = '\0';
    struct stat st;

    uint64_t f = fsutil_make_node(fs, FS_ROOT_INO, name255, S_IFREG | 0644, NULL);
    assert_int_equal(ino_of(fs, FS_ROOT_INO, name255), f);
    assert_int_equal(fs_link(fs, f, FS_ROOT_INO, name255b, &st), 0);
    fs_forget(fs, f, 1);
    struct listing l;
    list_dir(fs, FS_ROOT_INO, FS_ROOT_INO, &l);
    assert_int_equal(l.count, 4);
    assert_string_equal(l.items[2].name, name255b);
    assert_string_equal(l.items[3].name, name255);
    listing_free(&l);
    assert_int_equal(fs_rename(fs, FS_ROOT_INO, name255b, FS_ROOT_INO, "short", 0), 0);
    assert_int_equal(fs_rename(fs, FS_ROOT_INO, "short", FS_ROOT_INO, name255b, 0), 0);

    uint64_t d = fsutil_make_node(fs, FS_ROOT_INO, "d", S_IFDIR | 0755, NULL);
    assert_int_equal(
        fs_create_node(fs, fsutil_me(), FS_ROOT_INO, name256, S_IFREG | 0644, 0, NULL, &st),
        -ENAMETOOLONG);
    assert_int_equal(fs_create_node(fs, fsutil_me(), d, name256, S_IFDIR | 0755, 0, NULL, &st),
                     -ENAMETOOLONG);
    assert_int_equal(fs_create_node(fs, fsutil_me(), d, name256, 0, 0, "t", &st), -ENAMETOOLONG);
    assert_int_equal(fs_lookup(fs, FS_ROOT_INO, name256, &st), -ENAMETOOLONG);
    assert_int_equal(fs_link(fs, f, FS_ROOT_INO, name256, &st), -ENAMETOOLONG);
    assert_int_equal(fs_rename(fs, FS_ROOT_INO, name255, FS_ROOT_INO, name256, 0), -ENAMETOOLONG);
    assert_int_equal(fs_rename(fs, FS_ROOT_INO, name256, FS_ROOT_INO, "x", 0), -ENAMETOOLONG);
    assert_int_equal(fs_unlink(fs, FS_ROOT_INO, name256), -ENAMETOOLONG);
    assert_int_equal(fs_rmdir(fs, FS_ROOT_INO, name256), -ENAMETOOLONG);
    assert_int_equal(stat_of(fs, FS_ROOT_INO).st_size, 3);
    assert_int_equal(stat_of(fs, d).st_size, 0);

    /* any byte but '/' and NUL */
    char odd[256];
    for (int i = 0; i < 254; i++)
        odd[i] = (char)(i + 1 == '/' ? 0xfe : i + 1);
    odd[254] = '\0';
    uint64_t o = fsutil_make_node(fs, d, odd, S_IFREG | 0644, NULL);
    assert_int_equal(ino_of(fs, d, odd), o);

    /* symlink targets: up to 4095 bytes */
    char target[FS_SYMLINK_MAX + 2];
    for (int i = 0; i < FS_SYMLINK_MAX + 1; i++)
        target[i] = (char)('a' + i % 26);
    target[FS_SYMLINK_MAX + 1] = '\0';
    assert_int_equal(fs_create_node(fs, fsutil_me(), d, "long", 0, 0, target, &st), -ENAMETOOLONG);
    target[FS_SYMLINK_MAX] = '\0';
    assert_int_equal(fs_create_node(fs, fsutil_me(), d, "long", 0, 0, target, &st), 0);
    uint64_t link = st.st_ino;
    fs_forget(fs, link, 1);
    assert_int_equal(st.st_size, FS_SYMLINK_MAX);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(fs_create_node(fs, fsutil_me(), d, "empty", 0, 0, "", &st), -ENOENT);
    assert_int_equal(stat_of(fs, d).st_size, 2);
    char buf[FS_SYMLINK_MAX + 10];
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(fs_readlink(fx->fs, link, buf, sizeof(buf)), FS_SYMLINK_MAX);
        assert_memory_equal(buf, target, FS_SYMLINK_MAX);
        assert_int_equal(fs_readlink(fx->fs, link, buf, 10), 10); /* truncated, as readlink(2) */
        assert_memory_equal(buf, target, 10);
        assert_int_equal(stat_of(fx->fs, link).st_size, FS_SYMLINK_MAX);
        assert_int_equal(ino_of(fx->fs, d, odd), o);
        assert_int_equal(ino_of(fx->fs, FS_ROOT_INO, name255b), f);
        reopen(&fx->fs, fx->dir);
    }
    fsck_clean(fx->fs, false);
}

/* ---- concurrency ---- */

#define SHARED_DIRS 4
#define WORKERS 4

struct worker {
    pthread_t thread;
    struct fs *fs;
    uint64_t dirs[SHARED_DIRS];
    uint64_t seed;
    int ops;
    uint64_t done[OUT_COUNT];
    char failure[256];
    atomic_int *stop;
};

/* Records an unexpected result; the worker then stops. */
static bool worker_expect(struct worker *w, const char *op, int rc, unsigned allowed)
{
    enum outcome o = outcome_of(rc);
    w->done[o]++;
    if (o == OUT_OK || (allowed & BIT(o)))
        return true;
    snprintf(w->failure, sizeof(w->failure), "%s: %d (%s)", op, rc, strerror(-rc));
    atomic_store(w->stop, 1);
    return false;
}

static void *namespace_worker(void *arg)
{
    struct worker *w = arg;
    kv_test_rng rng;
    kv_test_rng_init(&rng, w->seed);
    struct fs *fs = w->fs;
    struct fs_caller caller = {.uid = 1000, .gid = 1000, .pid = 1};
    const unsigned all_errors =
        BIT(OUT_ENOENT) | BIT(OUT_EEXIST) | BIT(OUT_ENOTEMPTY) | BIT(OUT_ENOTDIR) | BIT(OUT_EISDIR);
    for (int i = 0; i < w->ops && !atomic_load(w->stop); i++) {
        uint64_t from = w->dirs[kv_test_rng_uniform(&rng, SHARED_DIRS)];
        uint64_t to = w->dirs[kv_test_rng_uniform(&rng, SHARED_DIRS)];
        char name[16], new_name[16], inner[16];
        snprintf(name, sizeof(name), "%c%d", kv_test_rng_uniform(&rng, 3) ? 'f' : 's',
                 (int)kv_test_rng_uniform(&rng, 8));
        snprintf(new_name, sizeof(new_name), "%c%d", kv_test_rng_uniform(&rng, 3) ? 'f' : 's',
                 (int)kv_test_rng_uniform(&rng, 8));
        snprintf(inner, sizeof(inner), "g%d", (int)kv_test_rng_uniform(&rng, 4));
        struct stat st, st2;
        int rc;
        switch (kv_test_rng_uniform(&rng, 12)) {
        case 0:
        case 1:
            rc = fs_create_node(fs, &caller, from, name,
                                name[0] == 's' ? S_IFDIR | 0755 : S_IFREG | 0644, 0, NULL, &st);
            if (worker_expect(w, "create", rc, BIT(OUT_EEXIST)) && rc == 0)
                fs_forget(fs, st.st_ino, 1);
            break;
        case 2:
        case 3:
        case 4: {
            static const unsigned flag_choice[] = {0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE};
            rc = fs_rename(fs, from, name, to, new_name, flag_choice[kv_test_rng_uniform(&rng, 4)]);
            worker_expect(w, "rename", rc, all_errors);
            break;
        }
        case 5:
            rc = fs_unlink(fs, from, name);
            worker_expect(w, "unlink", rc, BIT(OUT_ENOENT) | BIT(OUT_EISDIR));
            break;
        case 6:
            rc = fs_rmdir(fs, from, name);
            worker_expect(w, "rmdir", rc, BIT(OUT_ENOENT) | BIT(OUT_ENOTDIR) | BIT(OUT_ENOTEMPTY));
            break;
        case 7:
            rc = fs_lookup(fs, from, name, &st);
            if (!worker_expect(w, "lookup", rc, BIT(OUT_ENOENT)) || rc != 0)
                break;
            rc = fs_link(fs, st.st_ino, to, new_name, &st2);
            /* ENOENT: unlinked between the lookup and the link */
            if (worker_expect(w, "link", rc, BIT(OUT_EEXIST) | BIT(OUT_EPERM) | BIT(OUT_ENOENT)) &&
                rc == 0)
                fs_forget(fs, st2.st_ino, 1);
            fs_forget(fs, st.st_ino, 1);
            break;
        case 8:
        case 9:
        case 10: {
            /* inside a subdirectory that others may move or remove */
            rc = fs_lookup(fs, from, name, &st);
            if (!worker_expect(w, "lookup", rc, BIT(OUT_ENOENT)) || rc != 0)
                break;
            if (S_ISDIR(st.st_mode)) {
                if (kv_test_rng_uniform(&rng, 2)) {
                    rc = fs_create_node(fs, &caller, st.st_ino, inner, S_IFREG | 0644, 0, NULL,
                                        &st2);
                    /* ENOENT: the directory was removed meanwhile */
                    if (worker_expect(w, "create inside", rc, BIT(OUT_EEXIST) | BIT(OUT_ENOENT)) &&
                        rc == 0)
                        fs_forget(fs, st2.st_ino, 1);
                } else {
                    rc = fs_unlink(fs, st.st_ino, inner);
                    worker_expect(w, "unlink inside", rc, BIT(OUT_ENOENT));
                }
            } else {
                rc = fs_getattr(fs, st.st_ino, &st2);
                worker_expect(w, "getattr", rc, 0);
            }
            fs_forget(fs, st.st_ino, 1);
            break;
        }
        default: {
            struct fs_dir *dir;
            rc = fs_opendir(fs, from, &dir);
            if (!worker_expect(w, "opendir", rc, 0))
                break;
            struct listing l = {0};
            rc = fs_readdir(fs, dir, 0, false, collect_entry, &l);
            worker_expect(w, "readdir", rc, 0);
            for (size_t k = 3; k < l.count; k++)
                if (strcmp(l.items[k - 1].name, l.items[k].name) >= 0)
                    worker_expect(w, "readdir order", -EILSEQ, 0);
            listing_free(&l);
            fs_releasedir(fs, dir);
            break;
        }
        }
    }
    return NULL;
}

/* Joins a thread; after `seconds` (a deadlock: the runs take about a
 * second) aborts rather than hang. */
static void join_or_fail(pthread_t thread, int seconds, const char *what)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += seconds;
    int rc = pthread_timedjoin_np(thread, NULL, &deadline);
    if (rc == ETIMEDOUT) {
        /* The stuck threads hold locks of this file system: no fsutil_fixture_teardown
         * can run safely, so end the whole test program here. */
        fprintf(stderr, "%s: still running after %d s: a deadlock\n", what, seconds);
        fflush(NULL);
        abort();
    }
    assert_int_equal(rc, 0);
}

/* Checks through the API what fsck checks in the keys, for every
 * directory: listing order, "..", size, link counts (names counted over
 * the whole tree for non-directories). */
struct name_count {
    uint64_t ino, names, nlink;
};

static void api_count_names(struct fs *fs, uint64_t dir, uint64_t parent, struct name_count *counts,
                            size_t *count, size_t cap)
{
    struct listing l;
    list_dir(fs, dir, parent, &l);
    struct stat dir_st = stat_of(fs, dir);
    assert_int_equal(dir_st.st_size, l.count - 2);
    uint64_t subdirs = 0;
    for (size_t k = 2; k < l.count; k++) {
        if (k > 2)
            assert_true(strcmp(l.items[k - 1].name, l.items[k].name) < 0);
        struct stat st;
        assert_int_equal(fs_lookup(fs, dir, l.items[k].name, &st), 0);
        fs_forget(fs, st.st_ino, 1);
        assert_int_equal(st.st_ino, l.items[k].ino);
        if (S_ISDIR(st.st_mode)) {
            subdirs++;
            api_count_names(fs, st.st_ino, dir, counts, count, cap);
            continue;
        }
        size_t c;
        for (c = 0; c < *count && counts[c].ino != st.st_ino; c++)
            ;
        if (c == *count) {
            assert_true(*count < cap);
            counts[(*count)++] = (struct name_count){st.st_ino, 0, st.st_nlink};
        }
        counts[c].names++;
    }
    assert_int_equal(dir_st.st_nlink, 2 + subdirs);
    listing_free(&l);
}

static void api_check_tree(struct fs *fs)
{
    size_t cap = 100000, count = 0;
    struct name_count *counts = malloc(cap * sizeof(*counts));
    api_count_names(fs, FS_ROOT_INO, FS_ROOT_INO, counts, &count, cap);
    for (size_t c = 0; c < count; c++)
        if (counts[c].names != counts[c].nlink)
            fail_msg("inode %" PRIu64 ": nlink %" PRIu64 ", %" PRIu64 " names", counts[c].ino,
                     counts[c].nlink, counts[c].names);
    free(counts);
}

static void test_concurrent_namespace(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    uint64_t dirs[SHARED_DIRS];
    for (int d = 0; d < SHARED_DIRS; d++) {
        char name[8];
        snprintf(name, sizeof(name), "D%d", d);
        dirs[d] = fsutil_make_node(fs, FS_ROOT_INO, name, S_IFDIR | 0755, NULL);
    }
    atomic_int stop = 0;
    struct worker workers[WORKERS];
    uint64_t seed = kv_test_seed(777);
    int ops = kv_test_long_mode() ? 40000 : 4000;
    for (int t = 0; t < WORKERS; t++) {
        memset(&workers[t], 0, sizeof(workers[t]));
        workers[t].fs = fs;
        memcpy(workers[t].dirs, dirs, sizeof(dirs));
        workers[t].seed = seed + (uint64_t)t * 1000003;
        workers[t].ops = ops;
        workers[t].stop = &stop;
        assert_int_equal(pthread_create(&workers[t].thread, NULL, namespace_worker, &workers[t]),
                         0);
    }
    for (int t = 0; t < WORKERS; t++)
        join_or_fail(workers[t].thread, 90, "namespace worker");
    uint64_t total[OUT_COUNT] = {0};
    for (int t = 0; t < WORKERS; t++) {
        if (workers[t].failure[0] != '\0')
            fail_msg("worker %d: %s", t, workers[t].failure);
        for (int o = 0; o < OUT_COUNT; o++)
            total[o] += workers[t].done[o];
    }
    printf("concurrent:");
    for (int o = 0; o < OUT_COUNT; o++)
        printf(" %s %" PRIu64, outcome_names[o], total[o]);
    printf("\n");
    assert_true(total[OUT_OK] > (uint64_t)ops);
    assert_int_equal(kernel_known(fs), 0);
    fsck_clean(fs, false);
    api_check_tree(fs);
    reopen(&fx->fs, fx->dir);
    assert_int_equal(orphans_reclaimed(fx->fs), 0);
    fsck_clean(fx->fs, false);
    api_check_tree(fx->fs);
}

/* Renames A->B in one thread while B->A in another, across two
 * directories: exchanges of files and of directories, a file and a
 * directory moving back and forth. No deadlock, nothing lost. */
struct cross {
    pthread_t thread;
    struct fs *fs;
    uint64_t p, q;
    bool reverse;
    int rounds;
    uint64_t moved;
    char failure[256];
};

static void *cross_worker(void *arg)
{
    struct cross *c = arg;
    uint64_t here = c->reverse ? c->q : c->p, there = c->reverse ? c->p : c->q;
    const char *file = c->reverse ? "y" : "x", *other_file = c->reverse ? "x" : "y";
    const char *dir = c->reverse ? "dy" : "dx", *other_dir = c->reverse ? "dx" : "dy";
    for (int i = 0; i < c->rounds; i++) {
        int rc = fs_rename(c->fs, here, file, there, other_file, RENAME_EXCHANGE);
        if (rc == 0)
            rc = fs_rename(c->fs, here, dir, there, other_dir, RENAME_EXCHANGE);
        if (rc != 0) {
            snprintf(c->failure, sizeof(c->failure), "exchange: %s", strerror(-rc));
            return NULL;
        }
        /* a file and a directory ping-pong between the two */
        rc = fs_rename(c->fs, here, "a", there, "a", 0);
        if (rc != 0 && rc != -ENOENT) {
            snprintf(c->failure, sizeof(c->failure), "rename file: %s", strerror(-rc));
            return NULL;
        }
        c->moved += rc == 0;
        rc = fs_rename(c->fs, here, "m", there, "m", RENAME_NOREPLACE);
        if (rc != 0 && rc != -ENOENT && rc != -EEXIST) {
            snprintf(c->failure, sizeof(c->failure), "rename dir: %s", strerror(-rc));
            return NULL;
        }
        c->moved += rc == 0;
    }
    return NULL;
}

static void test_concurrent_cross_renames(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    uint64_t p = fsutil_make_node(fs, FS_ROOT_INO, "P", S_IFDIR | 0755, NULL);
    uint64_t q = fsutil_make_node(fs, FS_ROOT_INO, "Q", S_IFDIR | 0755, NULL);
    uint64_t x = fsutil_make_node(fs, p, "x", S_IFREG | 0644, NULL);
    uint64_t y = fsutil_make_node(fs, q, "y", S_IFREG | 0644, NULL);
    uint64_t dx = fsutil_make_node(fs, p, "dx", S_IFDIR | 0755, NULL);
    uint64_t dy = fsutil_make_node(fs, q, "dy", S_IFDIR | 0755, NULL);
    fsutil_make_node(fs, dx, "in-dx", S_IFREG | 0644, NULL);
    uint64_t a = fsutil_make_node(fs, p, "a", S_IFREG | 0644, NULL);
    uint64_t mdir = fsutil_make_node(fs, q, "m", S_IFDIR | 0755, NULL);
    struct cross workers[4];
    int rounds = kv_test_long_mode() ? 20000 : 2500;
    for (int t = 0; t < 4; t++) {
        memset(&workers[t], 0, sizeof(workers[t]));
        workers[t].fs = fs;
        workers[t].p = p;
        workers[t].q = q;
        workers[t].reverse = t % 2;
        workers[t].rounds = rounds;
        assert_int_equal(pthread_create(&workers[t].thread, NULL, cross_worker, &workers[t]), 0);
    }
    uint64_t moved = 0;
    for (int t = 0; t < 4; t++) {
        join_or_fail(workers[t].thread, 90, "cross rename");
        if (workers[t].failure[0] != '\0')
            fail_msg("worker %d: %s", t, workers[t].failure);
        moved += workers[t].moved;
    }
    printf("cross renames: %d exchanges per thread, %" PRIu64 " moves\n", 2 * rounds, moved);
    assert_true(moved > 0);
    /* every name present exactly once, link counts right */
    uint64_t in_p_x = ino_of(fs, p, "x"), in_q_y = ino_of(fs, q, "y");
    assert_true((in_p_x == x && in_q_y == y) || (in_p_x == y && in_q_y == x));
    uint64_t in_p_dx = ino_of(fs, p, "dx"), in_q_dy = ino_of(fs, q, "dy");
    assert_true((in_p_dx == dx && in_q_dy == dy) || (in_p_dx == dy && in_q_dy == dx));
    assert_true((ino_of(fs, p, "a") == a) != (ino_of(fs, q, "a") == a));
    bool m_in_p = ino_of(fs, p, "m") == mdir;
    assert_true(m_in_p != (ino_of(fs, q, "m") == mdir));
    assert_int_equal(stat_of(fs, p).st_nlink, 3 + m_in_p);
    assert_int_equal(stat_of(fs, q).st_nlink, 3 + !m_in_p);
    assert_int_equal(stat_of(fs, p).st_size + stat_of(fs, q).st_size, 6);
    assert_int_equal(stat_of(fs, dx).st_size, 1);
    assert_int_equal(kernel_known(fs), 0);
    fsck_clean(fs, false);
    api_check_tree(fs);
}

/* rename(2) replaces its target atomically: no one looking the name up
 * may find it missing. One thread keeps replacing "target" (create "tmp",
 * rename it over "target": the old inode is reclaimed), another keeps
 * looking "target" up. */
struct replacer {
    struct fs *fs;
    int rounds;
    atomic_int done;
    char failure[128];
};

static void *replace_target(void *arg)
{
    struct replacer *r = arg;
    for (int i = 0; i < r->rounds && r->failure[0] == '\0'; i++) {
        struct stat st;
        int rc =
            fs_create_node(r->fs, fsutil_me(), FS_ROOT_INO, "tmp", S_IFREG | 0644, 0, NULL, &st);
        if (rc == 0) {
            fs_forget(r->fs, st.st_ino, 1);
            rc = fs_rename(r->fs, FS_ROOT_INO, "tmp", FS_ROOT_INO, "target", 0);
        }
        if (rc != 0)
            snprintf(r->failure, sizeof(r->failure), "round %d: %s", i, strerror(-rc));
    }
    atomic_store(&r->done, 1);
    return NULL;
}

static void test_lookup_during_replacing_rename(void **state)
{
    struct fs_fixture *fx = *state;
    struct replacer r = {.fs = fx->fs, .rounds = kv_test_long_mode() ? 50000 : 5000};
    fsutil_make_node(fx->fs, FS_ROOT_INO, "target", S_IFREG | 0644, NULL);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, replace_target, &r), 0);
    uint64_t found = 0, missing = 0, other = 0;
    while (!atomic_load(&r.done)) {
        struct stat st;
        int rc = fs_lookup(fx->fs, FS_ROOT_INO, "target", &st);
        if (rc == 0)
            fs_forget(fx->fs, st.st_ino, 1);
        found += rc == 0;
        missing += rc == -ENOENT;
        other += rc != 0 && rc != -ENOENT;
    }
    join_or_fail(thread, 90, "replacer");
    printf("lookups during %d replacing renames: %" PRIu64 " found, %" PRIu64 " missing\n",
           r.rounds, found, missing);
    if (r.failure[0] != '\0')
        fail_msg("replacer: %s", r.failure);
    assert_int_equal(other, 0);
    assert_int_equal(missing, 0);
    assert_int_equal(kernel_known(fx->fs), 0);
    fsck_clean(fx->fs, false);
}

/* FS_SET_KILL_SUIDGID (a truncate without CAP_FSETID, any chown): a
 * non-directory loses setuid, and setgid when group-exec is set; a mode
 * given in the same call wins; a directory keeps its bits. Stored with the
 * rest of the change. */
static void test_setattr_kills_suidgid(void **state)
{
    struct fs_fixture *fx = *state;
    static const struct {
        mode_t mode;
        int to_set;
        mode_t after;
    } cases[] = {
        {S_IFREG | 06777, FS_SET_SIZE | FS_SET_KILL_SUIDGID, S_IFREG | 0777},
        {S_IFREG | 06766, FS_SET_SIZE | FS_SET_KILL_SUIDGID, S_IFREG | 02766},
        {S_IFREG | 06755, FS_SET_UID | FS_SET_GID | FS_SET_KILL_SUIDGID, S_IFREG | 0755},
        {S_IFREG | 04755, FS_SET_KILL_SUIDGID, S_IFREG | 0755},
        {S_IFREG | 06777, FS_SET_SIZE, S_IFREG | 06777},
        {S_IFREG | 06777, FS_SET_UID, S_IFREG | 06777},
        {S_IFREG | 0755, FS_SET_MODE | FS_SET_KILL_SUIDGID, S_IFREG | 06711},
        {S_IFIFO | 06777, FS_SET_UID | FS_SET_KILL_SUIDGID, S_IFIFO | 0777},
        {S_IFDIR | 06775, FS_SET_UID | FS_SET_KILL_SUIDGID, S_IFDIR | 06775},
    };
    uint64_t inos[sizeof(cases) / sizeof(cases[0])];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%zu", i);
        inos[i] = fsutil_make_node(fx->fs, FS_ROOT_INO, name, cases[i].mode, NULL);
        struct stat attr, st;
        memset(&attr, 0, sizeof(attr));
        attr.st_size = 3;
        attr.st_uid = 1000;
        attr.st_gid = 1000;
        attr.st_mode = 06711;
        assert_int_equal(fs_setattr(fx->fs, inos[i], &attr, cases[i].to_set, &st), 0);
        assert_int_equal(st.st_mode, cases[i].after);
    }
    reopen(&fx->fs, fx->dir);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(stat_of(fx->fs, inos[i]).st_mode, cases[i].after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_orphan_lives_until_last_reference, setup,
                                        fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_orphan_held_by_lookup, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_unlink_unused_reclaims_at_once, setup,
                                        fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_orphan_directory, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_orphans_reclaimed, setup,
                                        fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_links_and_renames, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_inode_numbers_never_reused, setup,
                                        fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_name_limits, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_namespace, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_cross_renames, setup,
                                        fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_lookup_during_replacing_rename, setup,
                                        fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_setattr_kills_suidgid, setup, fsutil_fixture_teardown),
        cmocka_unit_test(test_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
