/*
 * fsck.c — the offline check of an lsmfs data directory.
 *
 * Phases: (1) open the kv database, which replays and so checks the
 * MANIFEST and every WAL; read the superblock; (2) read every block of
 * every live SST and check its checksum; (3) read every inode into a table;
 * (4) walk the directory entries, counting each inode's names, each
 * directory's entries and subdirectories, and each directory's parent;
 * (5) orphan records and extended attributes; (6) the data blocks of each
 * file; (7) compare what was counted with what the inodes say.
 *
 * With repair, fixes go into one WriteBatch (synced): orphans and stale
 * records are reclaimed, counts rewritten from what was counted, entries
 * pointing nowhere removed, data past a file's end dropped, and inodes no
 * entry reaches linked into /lost+found as "#INO".
 */
#include "fsck.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "kv.h"
#include "schema.h"

/* What fsck knows of one inode. */
struct checked_inode {
    uint64_t ino; /* 0: empty slot */
    struct fs_inode inode;
    uint64_t names;        /* directory entries naming it */
    uint64_t entries;      /* directories: entries in it */
    uint64_t subdirs;      /* directories: subdirectories in it */
    uint64_t found_parent; /* directories: the directory an entry for it is in */
    uint64_t blocks;       /* data keys stored */
    bool orphan_record, has_xattrs, dirty;
};

struct inode_map {
    struct checked_inode *slots;
    size_t capacity, count; /* capacity a power of two */
};

struct fsck {
    const struct fsck_options *options;
    struct fsck_report *report;
    kv_db *db;
    kv_cf *meta, *data;
    struct fs_super super;
    struct inode_map inodes;
    kv_write_batch *fixes;
    time_t last_progress;
};

static uint64_t hash_ino(uint64_t ino)
{
    ino ^= ino >> 33;
    ino *= 0xff51afd7ed558ccdULL;
    return ino ^ (ino >> 33);
}

static struct checked_inode *map_find(struct inode_map *map, uint64_t ino)
{
    if (map->capacity == 0)
        return NULL;
    for (size_t i = hash_ino(ino) & (map->capacity - 1);; i = (i + 1) & (map->capacity - 1)) {
        if (map->slots[i].ino == ino)
            return &map->slots[i];
        if (map->slots[i].ino == 0)
            return NULL;
    }
}

static struct checked_inode *map_insert(struct inode_map *map, uint64_t ino)
{
    if ((map->count + 1) * 2 > map->capacity) {
        size_t capacity = map->capacity ? map->capacity * 2 : 1024;
        struct checked_inode *slots = calloc(capacity, sizeof(*slots));
        if (slots == NULL)
            return NULL;
        for (size_t i = 0; i < map->capacity; i++) {
            if (map->slots[i].ino == 0)
                continue;
            size_t j = hash_ino(map->slots[i].ino) & (capacity - 1);
            while (slots[j].ino != 0)
                j = (j + 1) & (capacity - 1);
            slots[j] = map->slots[i];
        }
        free(map->slots);
        map->slots = slots;
        map->capacity = capacity;
    }
    size_t i = hash_ino(ino) & (map->capacity - 1);
    while (map->slots[i].ino != 0 && map->slots[i].ino != ino)
        i = (i + 1) & (map->capacity - 1);
    if (map->slots[i].ino == 0) {
        map->slots[i].ino = ino;
        map->count++;
    }
    return &map->slots[i];
}

/* Reports one problem; `fixed` says whether repair fixes it. */
static void problem(struct fsck *f, bool fixable, const char *fmt, ...)
{
    f->report->problems++;
    bool fixed = fixable && f->options->repair;
    if (fixed)
        f->report->repaired++;
    if (f->report->problems > 200) {
        if (f->report->problems == 201)
            fprintf(f->options->out, "(more problems: only counted from here on)\n");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(f->options->out, "%s: ", fixed ? "repaired" : fixable ? "problem" : "damage");
    vfprintf(f->options->out, fmt, ap);
    fputc('\n', f->options->out);
    va_end(ap);
}

static void progress(struct fsck *f, const char *what, uint64_t done, uint64_t total)
{
    if (!f->options->progress)
        return;
    time_t now = time(NULL);
    if (now == f->last_progress && done != total)
        return;
    f->last_progress = now;
    if (total > 0)
        fprintf(stderr, "\rfsck: %s %" PRIu64 "/%" PRIu64 " (%d%%)   ", what, done, total,
                (int)(done * 100 / total));
    else
        fprintf(stderr, "\rfsck: %s %" PRIu64 "   ", what, done);
    if (done == total)
        fputc('\n', stderr);
}

static void verify_progress(void *arg, uint64_t files_done, uint64_t files_total,
                            uint64_t bytes_done, uint64_t bytes_total)
{
    struct fsck *f = arg;
    f->report->sst_files = files_done;
    f->report->sst_bytes = bytes_done;
    (void)files_total;
    progress(f, "verifying SST checksums, bytes", bytes_done, bytes_total);
}

static void put_inode(struct fsck *f, const struct checked_inode *c)
{
    char key[FS_INODE_KEY_LEN], value[FS_INODE_LEN];
    size_t key_len = fs_key_inode(key, c->ino);
    kv_write_batch_put(f->fixes, f->meta, key, key_len, value, fs_inode_encode(value, &c->inode));
}

/* Removes everything of an inode (repair of an orphan). */
static void reclaim(struct fsck *f, uint64_t ino)
{
    char key[FS_KEY_MAX], end[FS_KEY_MAX];
    kv_write_batch_delete(f->fixes, f->meta, key, fs_key_inode(key, ino));
    kv_write_batch_delete(f->fixes, f->meta, key, fs_key_orphan(key, ino));
    size_t len = fs_key_xattr(key, ino, "", 0), end_len = fs_key_xattr(end, ino + 1, "", 0);
    kv_write_batch_delete_range(f->fixes, f->meta, key, len, end, end_len);
    fs_key_data(key, ino, 0);
    fs_key_data(end, ino + 1, 0);
    kv_write_batch_delete_range(f->fixes, f->data, key, FS_DATA_KEY_LEN, end, FS_DATA_KEY_LEN);
}

/* Iterates the keys of `cf` starting with `tag` (0: all keys). The
 * callback returns 0 to go on. */
static int scan(struct fsck *f, kv_cf *cf, char tag, const char *what,
                int (*visit)(struct fsck *f, const char *key, size_t key_len, const char *value,
                             size_t value_len))
{
    kv_iterator *it = kv_iterator_create(f->db, NULL, cf);
    if (it == NULL)
        return KV_IO_ERROR;
    uint64_t seen = 0;
    int rc = 0;
    if (tag != 0)
        kv_iterator_seek(it, &tag, 1);
    else
        kv_iterator_seek_to_first(it);
    for (; kv_iterator_valid(it) && rc == 0; kv_iterator_next(it)) {
        size_t key_len, value_len;
        const char *key = kv_iterator_key(it, &key_len);
        if (tag != 0 && (key_len == 0 || key[0] != tag))
            break;
        const char *value = kv_iterator_value(it, &value_len);
        if (value == NULL)
            break; /* a blob read failed: the status says why */
        rc = visit(f, key, key_len, value, value_len);
        if (++seen % 65536 == 0)
            progress(f, what, seen, 0);
    }
    if (rc == 0)
        rc = kv_iterator_status(it);
    kv_iterator_destroy(it);
    if (f->options->progress && seen >= 65536)
        progress(f, what, seen, seen);
    return rc;
}

static int visit_inode(struct fsck *f, const char *key, size_t key_len, const char *value,
                       size_t value_len)
{
    uint64_t ino;
    struct fs_inode inode;
    if (!fs_key_parse_ino(key, key_len, FS_TAG_INODE, &ino) || ino == 0) {
        problem(f, true, "malformed inode key (%zu bytes): removed", key_len);
        kv_write_batch_delete(f->fixes, f->meta, key, key_len);
        return 0;
    }
    if (fs_inode_decode(value, value_len, &inode) != 0) {
        problem(f, false, "inode %" PRIu64 ": malformed record (%zu bytes)", ino, value_len);
        return 0;
    }
    struct checked_inode *c = map_insert(&f->inodes, ino);
    if (c == NULL)
        return KV_IO_ERROR;
    c->inode = inode;
    if (ino >= f->super.next_ino) {
        problem(f, true, "inode %" PRIu64 " is past the superblock's next inode number %" PRIu64,
                ino, f->super.next_ino);
        f->super.next_ino = ino + 1;
        char skey[1], svalue[FS_SUPER_LEN];
        kv_write_batch_put(f->fixes, f->meta, skey, fs_key_super(skey), svalue,
                           fs_super_encode(svalue, &f->super));
    }
    f->report->inodes++;
    if (S_ISREG(inode.mode))
        f->report->files++;
    else if (S_ISDIR(inode.mode))
        f->report->directories++;
    else if (S_ISLNK(inode.mode))
        f->report->symlinks++;
    else
        f->report->specials++;
    return 0;
}

static int visit_dentry(struct fsck *f, const char *key, size_t key_len, const char *value,
                        size_t value_len)
{
    uint64_t parent, child;
    const char *name;
    size_t name_len;
    mode_t type;
    f->report->entries++;
    if (!fs_key_parse_dentry(key, key_len, &parent, &name, &name_len) ||
        memchr(name, '/', name_len) != NULL || memchr(name, '\0', name_len) != NULL) {
        problem(f, true, "malformed directory entry key (%zu bytes): removed", key_len);
        kv_write_batch_delete(f->fixes, f->meta, key, key_len);
        return 0;
    }
    struct checked_inode *dir = map_find(&f->inodes, parent);
    if (fs_dentry_decode(value, value_len, &child, &type) != 0) {
        problem(f, true, "directory %" PRIu64 ": entry \"%.*s\" malformed: removed", parent,
                (int)name_len, name);
        kv_write_batch_delete(f->fixes, f->meta, key, key_len);
        return 0;
    }
    struct checked_inode *c = map_find(&f->inodes, child);
    if (dir == NULL || !S_ISDIR(dir->inode.mode)) {
        problem(f, true,
                "entry \"%.*s\" -> %" PRIu64 " is in %" PRIu64
                ", which is not a directory: removed",
                (int)name_len, name, child, parent);
        kv_write_batch_delete(f->fixes, f->meta, key, key_len);
        return 0;
    }
    if (c == NULL) {
        problem(f, true,
                "directory %" PRIu64 ": entry \"%.*s\" -> %" PRIu64 " names no inode: removed",
                parent, (int)name_len, name, child);
        kv_write_batch_delete(f->fixes, f->meta, key, key_len);
        return 0;
    }
    if ((c->inode.mode & S_IFMT) != type) {
        problem(f, true, "directory %" PRIu64 ": entry \"%.*s\" has the wrong type: rewritten",
                parent, (int)name_len, name);
        char fixed[FS_DENTRY_LEN];
        kv_write_batch_put(f->fixes, f->meta, key, key_len, fixed,
                           fs_dentry_encode(fixed, child, c->inode.mode));
    }
    if (S_ISDIR(c->inode.mode)) {
        if (c->names > 0 || child == FS_ROOT_INO) {
            problem(f, false, "directory %" PRIu64 " has a second name \"%.*s\" in %" PRIu64, child,
                    (int)name_len, name, parent);
            return 0;
        }
        c->found_parent = parent;
        dir->subdirs++;
    }
    c->names++;
    dir->entries++;
    return 0;
}

static int visit_orphan(struct fsck *f, const char *key, size_t key_len, const char *value,
                        size_t value_len)
{
    uint64_t ino;
    if (!fs_key_parse_ino(key, key_len, FS_TAG_ORPHAN, &ino)) {
        problem(f, true, "malformed orphan key: removed");
        kv_write_batch_delete(f->fixes, f->meta, key, key_len);
        return 0;
    }
    struct checked_inode *c = map_find(&f->inodes, ino);
    if (c == NULL) {
        problem(f, true, "orphan record of missing inode %" PRIu64 ": removed", ino);
        kv_write_batch_delete(f->fixes, f->meta, key, key_len);
        return 0;
    }
    c->orphan_record = true;
    return 0;
}

static int visit_xattr(struct fsck *f, const char *key, size_t key_len, const char *value,
                       size_t value_len)
{
    uint64_t ino;
    const char *name;
    size_t name_len;
    f->report->xattrs++;
    if (!fs_key_parse_xattr(key, key_len, &ino, &name, &name_len)) {
        problem(f, true, "malformed xattr key: removed");
        kv_write_batch_delete(f->fixes, f->meta, key, key_len);
        return 0;
    }
    struct checked_inode *c = map_find(&f->inodes, ino);
    if (c == NULL) {
        problem(f, true, "xattr \"%.*s\" of missing inode %" PRIu64 ": removed", (int)name_len,
                name, ino);
        kv_write_batch_delete(f->fixes, f->meta, key, key_len);
        return 0;
    }
    c->has_xattrs = true;
    if (value_len > FS_XATTR_VALUE_MAX)
        problem(f, false, "inode %" PRIu64 ": xattr \"%.*s\" is %zu bytes", ino, (int)name_len,
                name, value_len);
    return 0;
}

static uint64_t blocks_spanned(const struct fsck *f, uint64_t size)
{
    return size / f->super.block_size + (size % f->super.block_size != 0);
}

static int visit_data(struct fsck *f, const char *key, size_t key_len, const char *value,
                      size_t value_len)
{
    uint64_t ino, block;
    if (!fs_key_parse_data(key, key_len, &ino, &block)) {
        problem(f, true, "malformed data key (%zu bytes): removed", key_len);
        kv_write_batch_delete(f->fixes, f->data, key, key_len);
        return 0;
    }
    f->report->data_blocks++;
    f->report->data_bytes += value_len;
    struct checked_inode *c = map_find(&f->inodes, ino);
    if (c == NULL) {
        problem(f, true, "data block %" PRIu64 " of missing inode %" PRIu64 ": removed", block,
                ino);
        kv_write_batch_delete(f->fixes, f->data, key, key_len);
        return 0;
    }
    const struct fs_inode *inode = &c->inode;
    if (S_ISLNK(inode->mode)) {
        if (block != 0 || value_len != inode->size || value_len == 0)
            problem(f, false,
                    "symlink %" PRIu64 ": target block %" PRIu64 " of %zu bytes, size %" PRIu64,
                    ino, block, value_len, inode->size);
        return 0;
    }
    if (!S_ISREG(inode->mode)) {
        problem(f, true, "inode %" PRIu64 " (not a file) has data block %" PRIu64 ": removed", ino,
                block);
        kv_write_batch_delete(f->fixes, f->data, key, key_len);
        return 0;
    }
    if (block >= blocks_spanned(f, inode->size)) {
        problem(f, true,
                "file %" PRIu64 ": data block %" PRIu64 " lies past its size %" PRIu64 ": removed",
                ino, block, inode->size);
        kv_write_batch_delete(f->fixes, f->data, key, key_len);
        return 0;
    }
    uint64_t start = block * f->super.block_size;
    if (value_len == 0 || value_len > f->super.block_size || start + value_len > inode->size) {
        problem(f, false,
                "file %" PRIu64 ": data block %" PRIu64 " holds %zu bytes past the "
                "file's size %" PRIu64,
                ino, block, value_len, inode->size);
    }
    c->blocks++;
    return 0;
}

/* Links an inode that no entry reaches into /lost+found as "#INO". */
static void link_lost(struct fsck *f, struct checked_inode *c, struct checked_inode *lost,
                      uint64_t lost_ino)
{
    char name[32], key[FS_KEY_MAX], value[FS_DENTRY_LEN];
    int name_len = snprintf(name, sizeof(name), "#%" PRIu64, c->ino);
    size_t key_len = fs_key_dentry(key, lost_ino, name, (size_t)name_len);
    kv_write_batch_put(f->fixes, f->meta, key, key_len, value,
                       fs_dentry_encode(value, c->ino, c->inode.mode));
    c->names++;
    lost->entries++;
    lost->inode.size++;
    lost->dirty = true;
    if (S_ISDIR(c->inode.mode)) {
        c->found_parent = lost_ino;
        lost->subdirs++;
        lost->inode.nlink++;
        c->inode.parent = lost_ino;
        c->dirty = true;
    }
}

/* The /lost+found directory, created in the repair batch if missing. */
static struct checked_inode *lost_and_found(struct fsck *f, uint64_t *lost_ino)
{
    struct checked_inode *root;
    char key[FS_KEY_MAX];
    size_t key_len = fs_key_dentry(key, FS_ROOT_INO, "lost+found", 10);
    char *value;
    size_t value_len;
    mode_t type;
    if (kv_get(f->db, NULL, f->meta, key, key_len, &value, &value_len) == KV_OK) {
        int rc = fs_dentry_decode(value, value_len, lost_ino, &type);
        kv_free(value);
        struct checked_inode *c = rc == 0 ? map_find(&f->inodes, *lost_ino) : NULL;
        if (c != NULL && S_ISDIR(c->inode.mode))
            return c;
        return NULL;
    }
    *lost_ino = f->super.next_ino++;
    char skey[1], svalue[FS_SUPER_LEN];
    kv_write_batch_put(f->fixes, f->meta, skey, fs_key_super(skey), svalue,
                       fs_super_encode(svalue, &f->super));
    struct checked_inode *c = map_insert(&f->inodes, *lost_ino);
    root = map_find(&f->inodes, FS_ROOT_INO); /* after the insert: the table may have moved */
    if (c == NULL || root == NULL)
        return NULL;
    int64_t now = (int64_t)time(NULL) * 1000000000;
    c->inode = (struct fs_inode){.mode = S_IFDIR | 0700,
                                 .nlink = 2,
                                 .generation = 1,
                                 .atime_ns = now,
                                 .mtime_ns = now,
                                 .ctime_ns = now,
                                 .btime_ns = now,
                                 .parent = FS_ROOT_INO};
    c->names = 1;
    c->found_parent = FS_ROOT_INO;
    c->dirty = true;
    char dvalue[FS_DENTRY_LEN];
    kv_write_batch_put(f->fixes, f->meta, key, key_len, dvalue,
                       fs_dentry_encode(dvalue, *lost_ino, S_IFDIR));
    root->entries++;
    root->subdirs++;
    root->inode.size++;
    root->inode.nlink++;
    root->dirty = true;
    fprintf(f->options->out, "repaired: created /lost+found (inode %" PRIu64 ")\n", *lost_ino);
    return c;
}

/* Phase 7: what was counted against what the inodes say. */
static void compare_counts(struct fsck *f)
{
    struct checked_inode *lost = NULL;
    uint64_t lost_ino = 0;
    bool unreachable = false;
    for (size_t i = 0; i < f->inodes.capacity; i++) {
        struct checked_inode *c = &f->inodes.slots[i];
        unreachable |= c->ino != 0 && c->ino != FS_ROOT_INO && c->names == 0 && c->inode.nlink > 0;
    }
    /* Created before the walks: creating it may grow (move) the table. */
    if (f->options->repair && unreachable)
        lost = lost_and_found(f, &lost_ino);
    for (size_t i = 0; i < f->inodes.capacity; i++) {
        struct checked_inode *c = &f->inodes.slots[i];
        if (c->ino == 0 || c->ino == FS_ROOT_INO || c->names > 0 || c->inode.nlink == 0)
            continue;
        /* Linked, but no entry reaches it. */
        problem(f, lost != NULL || !f->options->repair,
                "inode %" PRIu64 " has %" PRIu64 " links but no directory entry%s", c->ino,
                c->inode.nlink, f->options->repair && lost != NULL ? ": moved to /lost+found" : "");
        if (f->options->repair && lost != NULL && c != lost)
            link_lost(f, c, lost, lost_ino);
    }
    for (size_t i = 0; i < f->inodes.capacity; i++) {
        struct checked_inode *c = &f->inodes.slots[i];
        if (c->ino == 0)
            continue;
        struct fs_inode *inode = &c->inode;
        if (c->names == 0 && c->ino != FS_ROOT_INO && inode->nlink > 0)
            continue; /* reported above; /lost+found could not take it: keep it */
        if (c->names == 0 && c->ino != FS_ROOT_INO) {
            /* Unlinked: an orphan a crash left (the daemon reclaims these at
             * mount), or an inode whose names were lost. */
            f->report->orphans++;
            problem(f, true, "inode %" PRIu64 " is an orphan (no names%s): reclaimed", c->ino,
                    c->orphan_record ? ", orphan record" : ", no orphan record");
            reclaim(f, c->ino);
            continue;
        }
        if (c->orphan_record) {
            problem(f, true, "inode %" PRIu64 " has names but an orphan record: record removed",
                    c->ino);
            char key[FS_INODE_KEY_LEN];
            kv_write_batch_delete(f->fixes, f->meta, key, fs_key_orphan(key, c->ino));
        }
        uint64_t nlink = S_ISDIR(inode->mode) ? 2 + c->subdirs : c->names;
        if (inode->nlink != nlink) {
            problem(f, true, "inode %" PRIu64 ": link count %" PRIu64 ", counted %" PRIu64, c->ino,
                    inode->nlink, nlink);
            inode->nlink = nlink;
            c->dirty = true;
        }
        if (S_ISDIR(inode->mode)) {
            uint64_t parent = c->ino == FS_ROOT_INO ? FS_ROOT_INO : c->found_parent;
            if (inode->size != c->entries) {
                problem(f, true, "directory %" PRIu64 ": entry count %" PRIu64 ", counted %" PRIu64,
                        c->ino, inode->size, c->entries);
                inode->size = c->entries;
                c->dirty = true;
            }
            if (inode->parent != parent) {
                problem(f, true, "directory %" PRIu64 ": parent %" PRIu64 ", found in %" PRIu64,
                        c->ino, inode->parent, parent);
                inode->parent = parent;
                c->dirty = true;
            }
        }
        if (S_ISREG(inode->mode) && inode->blocks != c->blocks) {
            problem(f, true, "file %" PRIu64 ": %" PRIu64 " blocks recorded, %" PRIu64 " stored",
                    c->ino, inode->blocks, c->blocks);
            inode->blocks = c->blocks;
            c->dirty = true;
        }
        if (c->has_xattrs && !(inode->flags & FS_INODE_HAS_XATTRS)) {
            problem(f, true, "inode %" PRIu64 ": has xattrs but not the flag", c->ino);
            inode->flags |= FS_INODE_HAS_XATTRS;
            c->dirty = true;
        }
        if (c->dirty)
            put_inode(f, c);
    }
}

static int open_store(struct fsck *f, const char *path)
{
    char current[4096];
    snprintf(current, sizeof(current), "%s/CURRENT", path);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode) || stat(current, &st) != 0) {
        fprintf(stderr, "lsmfs fsck: %s: not an lsmfs data directory\n", path);
        return -1;
    }
    kv_options options;
    kv_options_init(&options);
    /* Recovery replays the MANIFEST and every WAL, checking each record. */
    int rc = kv_open(&options, path, &f->db);
    if (rc != KV_OK) {
        fprintf(stderr, "lsmfs fsck: %s: %s%s\n", path, kv_errmsg(),
                rc == KV_BUSY ? " (unmount it first)" : "");
        return -1;
    }
    f->meta = kv_get_cf(f->db, FS_META_CF);
    f->data = kv_get_cf(f->db, FS_DATA_CF);
    if (f->meta == NULL || f->data == NULL) {
        fprintf(stderr, "lsmfs fsck: %s: a kv database but not an lsmfs file system\n", path);
        return -1;
    }
    char key[1];
    char *value;
    size_t value_len;
    rc = kv_get(f->db, NULL, f->meta, key, fs_key_super(key), &value, &value_len);
    if (rc != KV_OK) {
        fprintf(stderr, "lsmfs fsck: %s: no superblock (%s)\n", path,
                rc == KV_NOT_FOUND ? "not an lsmfs file system" : kv_errmsg());
        return -1;
    }
    rc = fs_super_decode(value, value_len, &f->super);
    kv_free(value);
    if (rc == -EPROTO) {
        fprintf(stderr, "lsmfs fsck: %s: format version %u, this lsmfs reads up to %d\n", path,
                f->super.format_version, FS_FORMAT_VERSION);
        return -1;
    }
    if (rc != 0) {
        fprintf(stderr, "lsmfs fsck: %s: superblock damaged\n", path);
        return -1;
    }
    return 0;
}

static int check(struct fsck *f, const char *path)
{
    if (open_store(f, path) != 0)
        return FSCK_FAILED;
    int rc = kv_verify_checksums(f->db, verify_progress, f);
    if (rc != KV_OK) {
        problem(f, false, "%s", kv_errmsg());
        return FSCK_DAMAGED;
    }
    rc = scan(f, f->meta, FS_TAG_INODE, "inodes", visit_inode);
    if (rc == 0) {
        struct checked_inode *root = map_find(&f->inodes, FS_ROOT_INO);
        if (root == NULL || !S_ISDIR(root->inode.mode)) {
            problem(f, false, "the root directory (inode 1) is missing or not a directory");
            return FSCK_DAMAGED;
        }
    }
    if (rc == 0)
        rc = scan(f, f->meta, FS_TAG_DENTRY, "directory entries", visit_dentry);
    if (rc == 0)
        rc = scan(f, f->meta, FS_TAG_ORPHAN, "orphans", visit_orphan);
    if (rc == 0)
        rc = scan(f, f->meta, FS_TAG_XATTR, "xattrs", visit_xattr);
    if (rc == 0)
        rc = scan(f, f->data, 0, "data blocks", visit_data);
    if (rc != 0) {
        problem(f, false, "reading: %s", kv_errmsg());
        return FSCK_DAMAGED;
    }
    compare_counts(f);
    if (f->options->repair && kv_write_batch_count(f->fixes) > 0) {
        kv_write_options sync = {.sync = true};
        rc = kv_write(f->db, &sync, f->fixes);
        if (rc != KV_OK) {
            fprintf(stderr, "lsmfs fsck: writing the repairs: %s\n", kv_errmsg());
            return FSCK_FAILED;
        }
    }
    if (f->report->problems == 0)
        return FSCK_CLEAN;
    return f->report->repaired == f->report->problems ? FSCK_REPAIRED : FSCK_DAMAGED;
}

int lsmfs_fsck(const char *path, const struct fsck_options *options, struct fsck_report *report)
{
    struct fsck f = {.options = options, .report = report};
    memset(report, 0, sizeof(*report));
    f.fixes = kv_write_batch_create();
    int status = check(&f, path);
    if (status != FSCK_FAILED) {
        FILE *out = options->out;
        fprintf(out,
                "lsmfs fsck %s: %" PRIu64 " inodes (%" PRIu64 " files, %" PRIu64
                " directories, %" PRIu64 " symlinks, %" PRIu64 " other), %" PRIu64
                " entries, %" PRIu64 " data blocks (%" PRIu64 " bytes), %" PRIu64
                " xattrs, %" PRIu64 " orphans; %" PRIu64 " SST files (%" PRIu64
                " bytes) verified\n",
                path, report->inodes, report->files, report->directories, report->symlinks,
                report->specials, report->entries, report->data_blocks, report->data_bytes,
                report->xattrs, report->orphans, report->sst_files, report->sst_bytes);
        fprintf(out, "lsmfs fsck %s: %s: %" PRIu64 " problems, %" PRIu64 " repaired\n", path,
                status == FSCK_CLEAN      ? "clean"
                : status == FSCK_REPAIRED ? "repaired"
                                          : "DAMAGED",
                report->problems, report->repaired);
    }
    kv_write_batch_destroy(f.fixes);
    free(f.inodes.slots);
    if (f.db != NULL) {
        int rc = kv_close(f.db);
        if (rc != KV_OK && status != FSCK_FAILED) {
            fprintf(stderr, "lsmfs fsck: closing: %s\n", kv_errmsg());
            status = FSCK_FAILED;
        }
    }
    return status;
}
