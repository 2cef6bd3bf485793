/*
 * fs_namespace.c — names and inodes: lookup, forget, getattr, setattr,
 * create, link, unlink, rmdir, rename, readlink, open and release.
 *
 * An operation that changes names first reads the dentries it needs
 * without locks (to learn which inodes are involved), then takes the lock
 * stripes of every inode involved, re-reads the dentries, and retries from
 * the start if one changed in between.
 */
#include "fs_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FS_LINK_MAX 65000

static int check_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0)
        return -ENOENT;
    if (len > FS_NAME_MAX)
        return -ENAMETOOLONG;
    return 0;
}

/* Reads dentry (parent, name). 0 with *ino and *type; -ENOENT; -EIO. */
static int dentry_get(struct fs *fs, uint64_t parent, const char *name, uint64_t *ino, mode_t *type)
{
    char key[FS_KEY_MAX];
    size_t key_len = fs_key_dentry(key, parent, name, strlen(name));
    char *value;
    size_t value_len;
    int rc = kv_get(fs->db, NULL, fs->meta, key, key_len, &value, &value_len);
    if (rc != KV_OK)
        return fs_errno(rc);
    rc = fs_dentry_decode(value, value_len, ino, type);
    kv_free(value);
    if (rc != 0)
        fprintf(stderr, "lsmfs: directory %llu: malformed entry \"%s\"\n",
                (unsigned long long)parent, name);
    return rc;
}

static void batch_put_dentry(struct fs *fs, kv_write_batch *batch, uint64_t parent,
                             const char *name, uint64_t ino, mode_t type)
{
    char key[FS_KEY_MAX], value[FS_DENTRY_LEN];
    size_t key_len = fs_key_dentry(key, parent, name, strlen(name));
    fs_dentry_encode(value, ino, type);
    kv_write_batch_put(batch, fs->meta, key, key_len, value, sizeof(value));
}

static void batch_delete_dentry(struct fs *fs, kv_write_batch *batch, uint64_t parent,
                                const char *name)
{
    char key[FS_KEY_MAX];
    size_t key_len = fs_key_dentry(key, parent, name, strlen(name));
    kv_write_batch_delete(batch, fs->meta, key, key_len);
}

static int load_directory(struct fs *fs, uint64_t ino, struct fs_inode *inode)
{
    int rc = fs_inode_load(fs, ino, inode);
    if (rc != 0)
        return rc;
    if (!S_ISDIR(inode->mode))
        return -ENOTDIR;
    if (inode->nlink == 0)
        return -ENOENT; /* removed while a process had it as its cwd */
    return 0;
}

/* ---- lookup, forget, getattr ---- */

int fs_lookup(struct fs *fs, uint64_t parent, const char *name, struct stat *st)
{
    int rc = check_name(name);
    if (rc != 0)
        return rc;
    uint64_t ino;
    mode_t type;
    rc = dentry_get(fs, parent, name, &ino, &type);
    for (;;) {
        if (rc != 0)
            return rc;
        struct fs_inode inode;
        fs_lock_inode(fs, ino);
        fs_inode_table_ref(fs->inodes, ino, 1, 0);
        rc = fs_inode_load(fs, ino, &inode);
        if (rc != 0)
            fs_inode_table_unref(fs->inodes, ino, 1, 0);
        fs_unlock_inode(fs, ino);
        if (rc == 0) {
            fs_fill_stat(fs, ino, &inode, st);
            return 0;
        }
        if (rc != -ENOENT)
            return rc;
        /* The entry was read without locks: a rename may have replaced it
         * (and reclaimed the inode it named) since. Read it again. */
        uint64_t again;
        rc = dentry_get(fs, parent, name, &again, &type);
        if (rc == 0 && again == ino) {
            fprintf(stderr, "lsmfs: directory %llu: entry \"%s\" names missing inode %llu\n",
                    (unsigned long long)parent, name, (unsigned long long)ino);
            return -EIO; /* damage, not a race: fsck repairs it */
        }
        ino = again;
    }
}

void fs_forget(struct fs *fs, uint64_t ino, uint64_t nlookup)
{
    fs_lock_inode(fs, ino);
    struct fs_inode inode;
    bool cached = fs_inode_table_get_cached(fs->inodes, ino, &inode);
    if (fs_inode_table_unref(fs->inodes, ino, nlookup, 0) && (!cached || inode.nlink == 0))
        fs_reclaim_if_unused(fs, ino);
    fs_unlock_inode(fs, ino);
}

int fs_getattr(struct fs *fs, uint64_t ino, struct stat *st)
{
    struct fs_inode inode;
    fs_lock_inode(fs, ino);
    int rc = fs_inode_load(fs, ino, &inode);
    fs_unlock_inode(fs, ino);
    if (rc == 0)
        fs_fill_stat(fs, ino, &inode, st);
    return rc;
}

/* ---- setattr ---- */

static int64_t timespec_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

int fs_setattr(struct fs *fs, uint64_t ino, const struct stat *attr, int to_set, struct stat *st)
{
    struct fs_inode inode;
    fs_lock_inode(fs, ino);
    int rc = fs_inode_load(fs, ino, &inode);
    kv_write_batch *batch = kv_write_batch_create();
    int64_t now = fs_now_ns();
    /* Only a truncation frees space; it may use the reserve on a full disk. */
    bool shrinks = rc == 0 && (to_set & FS_SET_SIZE) && (uint64_t)attr->st_size < inode.size;
    uint64_t blocks_before = rc == 0 ? inode.blocks : 0;
    if (rc == 0 && (to_set & FS_SET_SIZE)) {
        if (S_ISDIR(inode.mode))
            rc = -EISDIR;
        else if (!S_ISREG(inode.mode))
            rc = -EINVAL;
        else if (inode.size != (uint64_t)attr->st_size) {
            rc = fs_file_resize(fs, batch, ino, &inode, (uint64_t)attr->st_size);
            inode.mtime_ns = now;
        } else {
            inode.mtime_ns = now; /* truncate to the same size still updates times */
        }
    }
    /* Linux drops a file's capability on truncate and chown, whoever asks. */
    if (rc == 0 && !S_ISDIR(inode.mode) && (to_set & (FS_SET_SIZE | FS_SET_UID | FS_SET_GID)))
        rc = fs_batch_drop_capability(fs, batch, ino, &inode);
    if (rc == 0) {
        if (to_set & FS_SET_MODE)
            inode.mode = (inode.mode & S_IFMT) | (attr->st_mode & 07777);
        else if ((to_set & FS_SET_KILL_SUIDGID) && !S_ISDIR(inode.mode))
            fs_inode_kill_suidgid(&inode);
        if (to_set & FS_SET_UID)
            inode.uid = attr->st_uid;
        if (to_set & FS_SET_GID)
            inode.gid = attr->st_gid;
        if (to_set & FS_SET_ATIME_NOW)
            inode.atime_ns = now;
        else if (to_set & FS_SET_ATIME)
            inode.atime_ns = timespec_ns(&attr->st_atim);
        if (to_set & FS_SET_MTIME_NOW)
            inode.mtime_ns = now;
        else if (to_set & FS_SET_MTIME)
            inode.mtime_ns = timespec_ns(&attr->st_mtim);
        inode.ctime_ns = (to_set & FS_SET_CTIME) ? timespec_ns(&attr->st_ctim) : now;
        fs_batch_put_inode(fs, batch, ino, &inode);
        rc = shrinks ? fs_commit_freeing(fs, batch) : fs_commit(fs, batch);
    }
    if (rc == 0 && shrinks && inode.blocks < blocks_before)
        fs_note_trimmed_data(fs, ino, blocks_before - inode.blocks);
    if (rc == 0) {
        fs_inode_cached(fs, ino, &inode);
        fs_fill_stat(fs, ino, &inode, st);
    }
    fs_unlock_inode(fs, ino);
    kv_write_batch_destroy(batch);
    return rc;
}

/* ---- create ---- */

int fs_create_node(struct fs *fs, const struct fs_caller *caller, uint64_t parent, const char *name,
                   mode_t mode, dev_t rdev, const char *target, struct stat *st)
{
    int rc = check_name(name);
    if (rc != 0)
        return rc == -ENOENT ? -EINVAL : rc;
    size_t target_len = target != NULL ? strlen(target) : 0;
    if (target != NULL) {
        if (target_len == 0)
            return -ENOENT;
        if (target_len > FS_SYMLINK_MAX)
            return -ENAMETOOLONG;
        mode = S_IFLNK | 0777;
    }
    switch (mode & S_IFMT) {
    case 0:
        mode |= S_IFREG;
        break;
    case S_IFREG:
    case S_IFDIR:
    case S_IFLNK:
    case S_IFIFO:
    case S_IFSOCK:
    case S_IFCHR:
    case S_IFBLK:
        break;
    default:
        return -EINVAL;
    }
    uint64_t ino;
    rc = fs_alloc_ino(fs, &ino);
    if (rc != 0)
        return rc;

    struct fs_lockset locks;
    const uint64_t inos[2] = {parent, ino};
    fs_lockset_acquire(fs, &locks, inos, 2);
    struct fs_inode dir;
    rc = load_directory(fs, parent, &dir);
    uint64_t existing;
    mode_t existing_type;
    if (rc == 0) {
        rc = dentry_get(fs, parent, name, &existing, &existing_type);
        rc = rc == 0 ? -EEXIST : rc == -ENOENT ? 0 : rc;
    }
    if (rc == 0 && S_ISDIR(mode) && dir.nlink >= FS_LINK_MAX)
        rc = -EMLINK;
    kv_write_batch *batch = kv_write_batch_create();
    struct fs_inode inode;
    if (rc == 0) {
        int64_t now = fs_now_ns();
        inode = (struct fs_inode){
            .mode = mode,
            .uid = caller->uid,
            .gid = caller->gid,
            .nlink = S_ISDIR(mode) ? 2 : 1,
            .size = target_len,
            .rdev = (S_ISCHR(mode) || S_ISBLK(mode)) ? rdev : 0,
            .generation = 1,
            .atime_ns = now,
            .mtime_ns = now,
            .ctime_ns = now,
            .btime_ns = now,
            .parent = S_ISDIR(mode) ? parent : 0,
        };
        if (dir.mode & S_ISGID) { /* BSD group semantics, as ext4 with a setgid dir */
            inode.gid = dir.gid;
            if (S_ISDIR(mode))
                inode.mode |= S_ISGID;
        }
        if (target != NULL) {
            char key[FS_DATA_KEY_LEN];
            kv_write_batch_put(batch, fs->data, key, fs_key_data(key, ino, 0), target, target_len);
        }
        fs_batch_put_inode(fs, batch, ino, &inode);
        batch_put_dentry(fs, batch, parent, name, ino, mode);
        dir.size++;
        if (S_ISDIR(mode))
            dir.nlink++;
        dir.mtime_ns = dir.ctime_ns = now;
        fs_batch_put_inode(fs, batch, parent, &dir);
        rc = fs_commit(fs, batch);
    }
    if (rc == 0) {
        fs_inode_table_ref(fs->inodes, ino, 1, 0);
        fs_inode_cached(fs, ino, &inode);
        fs_inode_cached(fs, parent, &dir);
        fs_fill_stat(fs, ino, &inode, st);
    }
    fs_lockset_release(fs, &locks);
    kv_write_batch_destroy(batch);
    return rc;
}

int fs_link(struct fs *fs, uint64_t ino, uint64_t new_parent, const char *new_name, struct stat *st)
{
    int rc = check_name(new_name);
    if (rc != 0)
        return rc;
    struct fs_lockset locks;
    const uint64_t inos[2] = {new_parent, ino};
    fs_lockset_acquire(fs, &locks, inos, 2);
    struct fs_inode dir, inode;
    rc = load_directory(fs, new_parent, &dir);
    if (rc == 0)
        rc = fs_inode_load(fs, ino, &inode);
    if (rc == 0 && S_ISDIR(inode.mode))
        rc = -EPERM;
    if (rc == 0 && inode.nlink == 0)
        rc = -ENOENT;
    if (rc == 0 && inode.nlink >= FS_LINK_MAX)
        rc = -EMLINK;
    if (rc == 0) {
        uint64_t existing;
        mode_t type;
        rc = dentry_get(fs, new_parent, new_name, &existing, &type);
        rc = rc == 0 ? -EEXIST : rc == -ENOENT ? 0 : rc;
    }
    kv_write_batch *batch = kv_write_batch_create();
    if (rc == 0) {
        int64_t now = fs_now_ns();
        inode.nlink++;
        inode.ctime_ns = now;
        dir.size++;
        dir.mtime_ns = dir.ctime_ns = now;
        batch_put_dentry(fs, batch, new_parent, new_name, ino, inode.mode);
        fs_batch_put_inode(fs, batch, ino, &inode);
        fs_batch_put_inode(fs, batch, new_parent, &dir);
        rc = fs_commit(fs, batch);
    }
    if (rc == 0) {
        fs_inode_table_ref(fs->inodes, ino, 1, 0);
        fs_inode_cached(fs, ino, &inode);
        fs_inode_cached(fs, new_parent, &dir);
        fs_fill_stat(fs, ino, &inode, st);
    }
    fs_lockset_release(fs, &locks);
    kv_write_batch_destroy(batch);
    return rc;
}

/* ---- the inodes one name operation touches ---- */

struct touched {
    uint64_t ino;
    struct fs_inode inode;
    bool dirty;
};

struct touch_set {
    struct touched items[4];
    int count;
    uint64_t reclaimed_ino, reclaimed_blocks; /* a file deleted by the batch */
};

/* The record of ino within the set, loaded on first use. */
static int touch(struct fs *fs, struct touch_set *set, uint64_t ino, struct fs_inode **out)
{
    for (int i = 0; i < set->count; i++) {
        if (set->items[i].ino == ino) {
            *out = &set->items[i].inode;
            return 0;
        }
    }
    struct touched *t = &set->items[set->count];
    int rc = fs_inode_load(fs, ino, &t->inode);
    if (rc != 0)
        return rc;
    t->ino = ino;
    t->dirty = false;
    set->count++;
    *out = &t->inode;
    return 0;
}

static void mark_dirty(struct touch_set *set, const struct fs_inode *inode)
{
    for (int i = 0; i < set->count; i++)
        if (&set->items[i].inode == inode)
            set->items[i].dirty = true;
}

/* One name of `victim` is gone: drop a link; when none is left, the inode
 * is reclaimed now or, while open or known to the kernel, made an orphan. */
static int drop_link(struct fs *fs, kv_write_batch *batch, struct touch_set *set,
                     uint64_t victim_ino, struct fs_inode *victim, int64_t now)
{
    if (S_ISDIR(victim->mode))
        victim->nlink = 0;
    else if (victim->nlink > 0)
        victim->nlink--;
    victim->ctime_ns = now;
    mark_dirty(set, victim);
    if (victim->nlink == 0) {
        if (fs_inode_table_in_use(fs->inodes, victim_ino)) {
            char key[FS_INODE_KEY_LEN], value[FS_ORPHAN_LEN];
            size_t key_len = fs_key_orphan(key, victim_ino);
            kv_write_batch_put(batch, fs->meta, key, key_len, value, fs_orphan_encode(value));
        } else {
            int rc = fs_batch_reclaim(fs, batch, victim_ino, victim);
            if (rc != 0)
                return rc;
            if (S_ISREG(victim->mode) && victim->blocks > 0) {
                set->reclaimed_ino = victim_ino; /* noted once committed */
                set->reclaimed_blocks = victim->blocks;
            }
            for (int i = 0; i < set->count; i++)
                if (set->items[i].ino == victim_ino)
                    set->items[i].dirty = false; /* its record is deleted, not rewritten */
        }
    }
    return 0;
}

/* Writes the dirty records into the batch, commits, refreshes caches. */
static int commit_touched(struct fs *fs, kv_write_batch *batch, struct touch_set *set)
{
    for (int i = 0; i < set->count; i++)
        if (set->items[i].dirty)
            fs_batch_put_inode(fs, batch, set->items[i].ino, &set->items[i].inode);
    int rc = fs_commit_freeing(fs, batch);
    if (rc == 0 && set->reclaimed_ino != 0)
        fs_note_deleted_data(fs, set->reclaimed_ino, set->reclaimed_blocks);
    if (rc == 0)
        for (int i = 0; i < set->count; i++)
            if (set->items[i].dirty)
                fs_inode_cached(fs, set->items[i].ino, &set->items[i].inode);
    return rc;
}

/* ---- unlink, rmdir ---- */

static int remove_name(struct fs *fs, uint64_t parent, const char *name, bool directory)
{
    int rc = check_name(name);
    if (rc != 0)
        return rc;
    if (directory && strcmp(name, ".") == 0)
        return -EINVAL;
    if (directory && strcmp(name, "..") == 0)
        return -ENOTEMPTY;
    for (;;) {
        uint64_t ino;
        mode_t type;
        rc = dentry_get(fs, parent, name, &ino, &type);
        if (rc != 0)
            return rc;
        struct fs_lockset locks;
        const uint64_t inos[2] = {parent, ino};
        fs_lockset_acquire(fs, &locks, inos, 2);
        uint64_t again;
        rc = dentry_get(fs, parent, name, &again, &type);
        if (rc == 0 && again != ino) {
            fs_lockset_release(fs, &locks);
            continue; /* renamed over meanwhile: start again */
        }
        struct touch_set set = {.count = 0};
        struct fs_inode *dir = NULL, *victim = NULL;
        if (rc == 0)
            rc = touch(fs, &set, parent, &dir);
        if (rc == 0)
            rc = touch(fs, &set, ino, &victim);
        if (rc == 0 && directory && !S_ISDIR(victim->mode))
            rc = -ENOTDIR;
        if (rc == 0 && !directory && S_ISDIR(victim->mode))
            rc = -EISDIR;
        if (rc == 0 && directory && victim->size > 0)
            rc = -ENOTEMPTY;
        kv_write_batch *batch = kv_write_batch_create();
        if (rc == 0) {
            int64_t now = fs_now_ns();
            batch_delete_dentry(fs, batch, parent, name);
            dir->size--;
            if (directory)
                dir->nlink--;
            dir->mtime_ns = dir->ctime_ns = now;
            mark_dirty(&set, dir);
            rc = drop_link(fs, batch, &set, ino, victim, now);
            if (rc == 0)
                rc = commit_touched(fs, batch, &set);
        }
        fs_lockset_release(fs, &locks);
        kv_write_batch_destroy(batch);
        return rc;
    }
}

int fs_unlink(struct fs *fs, uint64_t parent, const char *name)
{
    return remove_name(fs, parent, name, false);
}

int fs_rmdir(struct fs *fs, uint64_t parent, const char *name)
{
    return remove_name(fs, parent, name, true);
}

/* ---- rename ---- */

/* The checks and the batch of a rename, under the locks of every inode
 * involved. src/dst_ino as read under the locks (dst_ino 0: no target). */
static int rename_locked(struct fs *fs, uint64_t parent, const char *name, uint64_t src_ino,
                         uint64_t new_parent, const char *new_name, uint64_t dst_ino,
                         unsigned int flags)
{
    struct touch_set set = {.count = 0};
    struct fs_inode *from_dir, *to_dir, *src, *dst = NULL;
    int rc = touch(fs, &set, parent, &from_dir);
    if (rc == 0)
        rc = touch(fs, &set, new_parent, &to_dir);
    if (rc == 0)
        rc = touch(fs, &set, src_ino, &src);
    if (rc == 0 && dst_ino != 0)
        rc = touch(fs, &set, dst_ino, &dst);
    if (rc != 0)
        return rc;
    if (!S_ISDIR(from_dir->mode) || !S_ISDIR(to_dir->mode))
        return -ENOTDIR;
    if (to_dir->nlink == 0)
        return -ENOENT;
    if ((flags & RENAME_EXCHANGE) && dst == NULL)
        return -ENOENT;
    if ((flags & RENAME_NOREPLACE) && dst != NULL)
        return -EEXIST;
    if (src_ino == dst_ino)
        return 0; /* two names of one inode: POSIX says do nothing */
    bool src_dir = S_ISDIR(src->mode), dst_dir = dst != NULL && S_ISDIR(dst->mode);
    if (dst != NULL && !(flags & RENAME_EXCHANGE)) {
        if (src_dir && !dst_dir)
            return -ENOTDIR;
        if (!src_dir && dst_dir)
            return -EISDIR;
        if (dst_dir && dst->size > 0)
            return -ENOTEMPTY;
    }
    if (src_dir && parent != new_parent && !(dst_dir && dst != NULL) &&
        to_dir->nlink >= FS_LINK_MAX)
        return -EMLINK;

    int64_t now = fs_now_ns();
    kv_write_batch *batch = kv_write_batch_create();
    batch_put_dentry(fs, batch, new_parent, new_name, src_ino, src->mode);
    if (flags & RENAME_EXCHANGE) {
        batch_put_dentry(fs, batch, parent, name, dst_ino, dst->mode);
        if (parent != new_parent && src_dir != dst_dir) {
            /* a directory changed parents in one direction only */
            if (src_dir) {
                from_dir->nlink--;
                to_dir->nlink++;
            } else {
                from_dir->nlink++;
                to_dir->nlink--;
            }
        }
        dst->ctime_ns = now;
        if (dst_dir)
            dst->parent = parent;
        mark_dirty(&set, dst);
    } else {
        batch_delete_dentry(fs, batch, parent, name);
        from_dir->size--;
        if (dst == NULL)
            to_dir->size++;
        if (src_dir) {
            from_dir->nlink--;
            if (dst == NULL)
                to_dir->nlink++;
        }
        if (dst != NULL) {
            if (dst_dir)
                to_dir->nlink--; /* the replaced directory's ".." goes away */
            if (src_dir)
                to_dir->nlink++;
            rc = drop_link(fs, batch, &set, dst_ino, dst, now);
            if (rc != 0) {
                kv_write_batch_destroy(batch);
                return rc;
            }
        }
    }
    src->ctime_ns = now;
    if (src_dir)
        src->parent = new_parent;
    from_dir->mtime_ns = from_dir->ctime_ns = now;
    to_dir->mtime_ns = to_dir->ctime_ns = now;
    mark_dirty(&set, src);
    mark_dirty(&set, from_dir);
    mark_dirty(&set, to_dir);
    rc = commit_touched(fs, batch, &set);
    kv_write_batch_destroy(batch);
    return rc;
}

int fs_rename(struct fs *fs, uint64_t parent, const char *name, uint64_t new_parent,
              const char *new_name, unsigned int flags)
{
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
        return -EINVAL;
    if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
        return -EINVAL;
    int rc = check_name(name);
    if (rc == 0)
        rc = check_name(new_name);
    if (rc != 0)
        return rc;
    for (;;) {
        uint64_t src_ino, dst_ino = 0;
        mode_t type;
        rc = dentry_get(fs, parent, name, &src_ino, &type);
        if (rc != 0)
            return rc;
        rc = dentry_get(fs, new_parent, new_name, &dst_ino, &type);
        if (rc == -ENOENT)
            dst_ino = 0;
        else if (rc != 0)
            return rc;
        struct fs_lockset locks;
        const uint64_t inos[4] = {parent, new_parent, src_ino, dst_ino};
        fs_lockset_acquire(fs, &locks, inos, 4);
        uint64_t src_again, dst_again = 0;
        rc = dentry_get(fs, parent, name, &src_again, &type);
        if (rc == 0) {
            rc = dentry_get(fs, new_parent, new_name, &dst_again, &type);
            if (rc == -ENOENT) {
                dst_again = 0;
                rc = 0;
            }
        }
        if (rc == 0 && (src_again != src_ino || dst_again != dst_ino)) {
            fs_lockset_release(fs, &locks);
            continue;
        }
        if (rc == 0)
            rc = rename_locked(fs, parent, name, src_ino, new_parent, new_name, dst_ino, flags);
        fs_lockset_release(fs, &locks);
        return rc;
    }
}

ssize_t fs_readlink(struct fs *fs, uint64_t ino, char *buf, size_t size)
{
    struct fs_inode inode;
    fs_lock_inode(fs, ino);
    int rc = fs_inode_load(fs, ino, &inode);
    fs_unlock_inode(fs, ino);
    if (rc != 0)
        return rc;
    if (!S_ISLNK(inode.mode))
        return -EINVAL;
    char key[FS_DATA_KEY_LEN];
    char *value;
    size_t value_len;
    rc = kv_get(fs->db, NULL, fs->data, key, fs_key_data(key, ino, 0), &value, &value_len);
    if (rc != KV_OK)
        return rc == KV_NOT_FOUND ? -EIO : fs_errno(rc);
    size_t n = value_len < size ? value_len : size;
    memcpy(buf, value, n);
    kv_free(value);
    return (ssize_t)n;
}

/* ---- open, release ---- */

int fs_open_file(struct fs *fs, uint64_t ino, int flags)
{
    struct fs_inode inode;
    fs_lock_inode(fs, ino);
    int rc = fs_inode_load(fs, ino, &inode);
    if (rc == 0 && (flags & O_TRUNC) && S_ISREG(inode.mode) && inode.size > 0) {
        uint64_t blocks_before = inode.blocks;
        kv_write_batch *batch = kv_write_batch_create();
        rc = fs_file_resize(fs, batch, ino, &inode, 0);
        if (rc == 0)
            rc = fs_batch_drop_capability(fs, batch, ino, &inode);
        if (rc == 0) {
            inode.mtime_ns = inode.ctime_ns = fs_now_ns();
            fs_batch_put_inode(fs, batch, ino, &inode);
            rc = fs_commit_freeing(fs, batch);
        }
        if (rc == 0) {
            if (inode.blocks < blocks_before)
                fs_note_trimmed_data(fs, ino, blocks_before - inode.blocks);
            fs_inode_cached(fs, ino, &inode);
        }
        kv_write_batch_destroy(batch);
    }
    if (rc == 0)
        fs_inode_table_ref(fs->inodes, ino, 0, 1);
    fs_unlock_inode(fs, ino);
    return rc;
}

void fs_release_file(struct fs *fs, uint64_t ino)
{
    fs_lock_inode(fs, ino);
    struct fs_inode inode;
    bool cached = fs_inode_table_get_cached(fs->inodes, ino, &inode);
    if (fs_inode_table_unref(fs->inodes, ino, 0, 1) && (!cached || inode.nlink == 0))
        fs_reclaim_if_unused(fs, ino);
    fs_unlock_inode(fs, ino);
}

int fs_note_access(struct fs *fs, uint64_t ino)
{
    if (fs->options.read_only)
        return 0;
    const int64_t day = 24LL * 3600 * 1000000000;
    int64_t now = fs_now_ns();
    struct fs_inode inode;
    fs_lock_inode(fs, ino);
    int rc = fs_inode_load(fs, ino, &inode);
    if (rc == 0 && (inode.atime_ns <= inode.mtime_ns || inode.atime_ns <= inode.ctime_ns ||
                    now - inode.atime_ns >= day)) {
        inode.atime_ns = now;
        kv_write_batch *batch = kv_write_batch_create();
        fs_batch_put_inode(fs, batch, ino, &inode);
        rc = fs_commit(fs, batch);
        if (rc == 0)
            fs_inode_cached(fs, ino, &inode);
        kv_write_batch_destroy(batch);
    }
    fs_unlock_inode(fs, ino);
    return rc;
}
