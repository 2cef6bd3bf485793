/*
 * fs_dir.c — open directories. opendir takes a kv snapshot of the meta
 * family, so one listing sees the directory as it was at opendir, however
 * long it takes and whatever changes meanwhile. (It keeps nothing of the
 * data family: the space of files deleted while a directory is open, as
 * rm -r holds one, comes back without waiting for it to close.) Offsets are ordinals in that listing
 * (1 after ".", 2 after "..", n+2 after the n-th entry), so they stay
 * valid for the life of the handle; reading on from where the last call
 * stopped continues the same kv iterator, any other offset re-seeks.
 */
#include "fs_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct fs_dir {
    uint64_t ino;
    uint64_t parent; /* for ".." (as of opendir or the last rewind) */
    const kv_snapshot *snapshot;
    kv_iterator *it;   /* positioned at the entry with ordinal `position` */
    uint64_t position; /* ordinal of the next entry the iterator yields */
    pthread_mutex_t mutex;
};

int fs_opendir(struct fs *fs, uint64_t ino, struct fs_dir **out)
{
    struct fs_inode inode;
    fs_lock_inode(fs, ino);
    int rc = fs_inode_load(fs, ino, &inode);
    fs_unlock_inode(fs, ino);
    if (rc != 0)
        return rc;
    if (!S_ISDIR(inode.mode))
        return -ENOTDIR;
    struct fs_dir *dir = calloc(1, sizeof(*dir));
    if (dir == NULL)
        return -ENOMEM;
    dir->ino = ino;
    dir->parent = inode.parent != 0 ? inode.parent : ino;
    dir->snapshot = kv_snapshot_create_cf(fs->db, fs->meta);
    pthread_mutex_init(&dir->mutex, NULL);
    fs_inode_table_ref(fs->inodes, ino, 0, 1);
    *out = dir;
    return 0;
}

void fs_releasedir(struct fs *fs, struct fs_dir *dir)
{
    if (dir->it != NULL)
        kv_iterator_destroy(dir->it);
    kv_snapshot_release(fs->db, dir->snapshot);
    pthread_mutex_destroy(&dir->mutex);
    uint64_t ino = dir->ino;
    free(dir);
    fs_release_file(fs, ino);
}

/* Takes a new snapshot (and the current parent) for a listing from the
 * start. The first listing after opendir keeps opendir's snapshot. */
static int dir_refresh(struct fs *fs, struct fs_dir *dir)
{
    if (dir->it == NULL)
        return 0; /* nothing read yet: opendir's snapshot is fresh */
    struct fs_inode inode;
    fs_lock_inode(fs, dir->ino);
    int rc = fs_inode_load(fs, dir->ino, &inode);
    fs_unlock_inode(fs, dir->ino);
    if (rc != 0)
        return rc;
    kv_iterator_destroy(dir->it);
    dir->it = NULL;
    kv_snapshot_release(fs->db, dir->snapshot);
    dir->snapshot = kv_snapshot_create_cf(fs->db, fs->meta);
    dir->parent = inode.parent != 0 ? inode.parent : dir->ino;
    return 0;
}

/* Positions the iterator at the entry with ordinal `offset` (>= 2). */
static int dir_seek(struct fs *fs, struct fs_dir *dir, uint64_t offset)
{
    if (dir->it != NULL && dir->position == offset)
        return 0;
    if (dir->it == NULL) {
        kv_read_options ro;
        kv_read_options_init(&ro);
        ro.snapshot = dir->snapshot;
        dir->it = kv_iterator_create(fs->db, &ro, fs->meta);
        if (dir->it == NULL)
            return -ENOMEM;
    }
    char prefix[FS_KEY_MAX];
    size_t prefix_len = fs_key_dentry(prefix, dir->ino, "", 0);
    kv_iterator_seek(dir->it, prefix, prefix_len);
    dir->position = 2;
    /* An unusual offset (seekdir to an old telldir): walk to it. */
    while (dir->position < offset && kv_iterator_valid(dir->it)) {
        size_t len;
        const char *key = kv_iterator_key(dir->it, &len);
        if (len < prefix_len || memcmp(key, prefix, prefix_len) != 0)
            break;
        kv_iterator_next(dir->it);
        dir->position++;
    }
    return fs_errno(kv_iterator_status(dir->it));
}

/* Fills st for one entry; with plus, references and loads the inode as it
 * is now. Returns whether a reference was taken. */
static bool entry_attributes(struct fs *fs, uint64_t ino, mode_t type, bool plus, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    st->st_mode = type;
    if (!plus)
        return false;
    struct fs_inode inode;
    fs_lock_inode(fs, ino);
    fs_inode_table_ref(fs->inodes, ino, 1, 0);
    int rc = fs_inode_load(fs, ino, &inode);
    if (rc != 0)
        fs_inode_table_unref(fs->inodes, ino, 1, 0);
    fs_unlock_inode(fs, ino);
    if (rc != 0)
        return false;
    fs_fill_stat(fs, ino, &inode, st);
    return true;
}

int fs_readdir(struct fs *fs, struct fs_dir *dir, uint64_t offset, bool plus, fs_dir_filler filler,
               void *ctx)
{
    pthread_mutex_lock(&dir->mutex);
    struct stat st;
    int rc = 0;
    if (offset == 0) {
        /* A listing from the start (rewinddir) sees the directory as it is
         * now, as POSIX asks: a new snapshot. */
        rc = dir_refresh(fs, dir);
        if (rc != 0)
            goto out;
    }
    for (; offset < 2; offset++) {
        memset(&st, 0, sizeof(st));
        st.st_ino = offset == 0 ? dir->ino : dir->parent;
        st.st_mode = S_IFDIR;
        if (!filler(ctx, offset == 0 ? "." : "..", &st, false, offset + 1))
            goto out;
    }
    rc = dir_seek(fs, dir, offset);
    if (rc != 0)
        goto out;
    char prefix[FS_KEY_MAX];
    size_t prefix_len = fs_key_dentry(prefix, dir->ino, "", 0);
    char name[FS_NAME_MAX + 1];
    for (; kv_iterator_valid(dir->it); kv_iterator_next(dir->it), dir->position++) {
        size_t key_len, value_len;
        const char *key = kv_iterator_key(dir->it, &key_len);
        if (key_len < prefix_len || memcmp(key, prefix, prefix_len) != 0)
            break;
        uint64_t parent, ino;
        const char *name_ptr;
        size_t name_len;
        mode_t type;
        const char *value = kv_iterator_value(dir->it, &value_len);
        if (value == NULL || !fs_key_parse_dentry(key, key_len, &parent, &name_ptr, &name_len) ||
            fs_dentry_decode(value, value_len, &ino, &type) != 0) {
            rc = -EIO;
            break;
        }
        memcpy(name, name_ptr, name_len);
        name[name_len] = '\0';
        bool referenced = entry_attributes(fs, ino, type, plus, &st);
        if (!filler(ctx, name, &st, referenced, dir->position + 1)) {
            if (referenced)
                fs_forget(fs, ino, 1);
            break;
        }
    }
    if (rc == 0)
        rc = fs_errno(kv_iterator_status(dir->it));
out:
    pthread_mutex_unlock(&dir->mutex);
    return rc;
}
