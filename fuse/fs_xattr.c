/*
 * fs_xattr.c — extended attributes: one meta key fs_key_xattr(ino, name)
 * per attribute, its value the attribute's raw bytes.
 *
 * The inode flag FS_INODE_HAS_XATTRS is set by the first setxattr and
 * cleared when removexattr (or the removal of a capability by a write,
 * truncate or chown) takes the last attribute away. While it is clear,
 * getxattr, listxattr and removexattr answer from the (cached) inode
 * alone, and writes need not look for a capability to remove: most files
 * have no attributes at all.
 *
 * Changes (set, remove) run under the inode's stripe and are one batch
 * with the inode record (ctime). Reads take the stripe only to look at the
 * flag; the lookup itself runs unlocked.
 */
#include "fs_impl.h"

#include <errno.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Length of a valid name in *len; -EINVAL empty, -ERANGE too long. */
static int check_name(const char *name, size_t *len)
{
    *len = strnlen(name, FS_XATTR_NAME_MAX + 1);
    if (*len == 0)
        return -EINVAL;
    if (*len > FS_XATTR_NAME_MAX)
        return -ERANGE;
    return 0;
}

/* Loads ino's record under its stripe and reports whether it may have
 * attributes. */
static int may_have_xattrs(struct fs *fs, uint64_t ino, bool *has)
{
    struct fs_inode inode;
    fs_lock_inode(fs, ino);
    int rc = fs_inode_load(fs, ino, &inode);
    fs_unlock_inode(fs, ino);
    *has = rc == 0 && (inode.flags & FS_INODE_HAS_XATTRS);
    return rc;
}

/* Whether attribute `key` exists; asks kv only when the flag says it may. */
static int xattr_exists(struct fs *fs, const struct fs_inode *inode, const char *key,
                        size_t key_len, bool *exists)
{
    *exists = false;
    if (!(inode->flags & FS_INODE_HAS_XATTRS))
        return 0;
    char *value;
    size_t value_len;
    int rc = kv_get(fs->db, NULL, fs->meta, key, key_len, &value, &value_len);
    if (rc == KV_NOT_FOUND)
        return 0;
    if (rc != KV_OK)
        return fs_errno(rc);
    kv_free(value);
    *exists = true;
    return 0;
}

/* Whether ino has an attribute other than `except` (its key). */
static int has_other_xattr(struct fs *fs, uint64_t ino, const char *except, size_t except_len,
                           bool *other)
{
    *other = false;
    char prefix[FS_KEY_MAX];
    size_t prefix_len = fs_key_xattr(prefix, ino, "", 0);
    kv_iterator *it = kv_iterator_create(fs->db, NULL, fs->meta);
    if (it == NULL)
        return fs_errno(KV_IO_ERROR);
    for (kv_iterator_seek(it, prefix, prefix_len); kv_iterator_valid(it); kv_iterator_next(it)) {
        size_t len;
        const char *key = kv_iterator_key(it, &len);
        if (len < prefix_len || memcmp(key, prefix, prefix_len) != 0)
            break;
        if (len != except_len || memcmp(key, except, len) != 0) {
            *other = true;
            break;
        }
    }
    int rc = kv_iterator_status(it);
    kv_iterator_destroy(it);
    return rc == KV_OK ? 0 : fs_errno(rc);
}

int fs_batch_drop_capability(struct fs *fs, kv_write_batch *batch, uint64_t ino,
                             struct fs_inode *inode)
{
    static const char capability[] = "security.capability";
    char key[FS_KEY_MAX];
    size_t key_len = fs_key_xattr(key, ino, capability, sizeof(capability) - 1);
    bool exists, other;
    int rc = xattr_exists(fs, inode, key, key_len, &exists);
    if (rc != 0 || !exists)
        return rc;
    rc = has_other_xattr(fs, ino, key, key_len, &other);
    if (rc != 0)
        return rc;
    kv_write_batch_delete(batch, fs->meta, key, key_len);
    if (!other)
        inode->flags &= ~(uint32_t)FS_INODE_HAS_XATTRS;
    return 0;
}

int fs_setxattr(struct fs *fs, uint64_t ino, const char *name, const char *value, size_t size,
                int flags)
{
    /* POSIX ACLs are not supported (as ext4 mounted with noacl): storing one
     * as a plain attribute would let `cp -a` believe it set the mode. */
    if (strncmp(name, "system.posix_acl_", 17) == 0)
        return -EOPNOTSUPP;
    size_t name_len;
    int rc = check_name(name, &name_len);
    if (rc != 0)
        return rc;
    if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
        return -EINVAL;
    if (size > FS_XATTR_VALUE_MAX)
        return -E2BIG;
    char key[FS_KEY_MAX];
    size_t key_len = fs_key_xattr(key, ino, name, name_len);

    struct fs_inode inode;
    fs_lock_inode(fs, ino);
    rc = fs_inode_load(fs, ino, &inode);
    if (rc == 0 && flags != 0) {
        bool exists;
        rc = xattr_exists(fs, &inode, key, key_len, &exists);
        if (rc == 0 && exists && (flags & XATTR_CREATE))
            rc = -EEXIST;
        else if (rc == 0 && !exists && (flags & XATTR_REPLACE))
            rc = -ENODATA;
    }
    if (rc == 0) {
        kv_write_batch *batch = kv_write_batch_create();
        kv_write_batch_put(batch, fs->meta, key, key_len, value, size);
        inode.flags |= FS_INODE_HAS_XATTRS;
        inode.ctime_ns = fs_now_ns();
        fs_batch_put_inode(fs, batch, ino, &inode);
        rc = fs_commit(fs, batch);
        kv_write_batch_destroy(batch);
        if (rc == 0)
            fs_inode_cached(fs, ino, &inode);
    }
    fs_unlock_inode(fs, ino);
    return rc;
}

ssize_t fs_getxattr(struct fs *fs, uint64_t ino, const char *name, char *value, size_t size)
{
    size_t name_len;
    int rc = check_name(name, &name_len);
    if (rc != 0)
        return rc;
    bool has;
    rc = may_have_xattrs(fs, ino, &has);
    if (rc != 0)
        return rc;
    if (!has)
        return -ENODATA;
    char key[FS_KEY_MAX];
    size_t key_len = fs_key_xattr(key, ino, name, name_len);
    char *stored;
    size_t stored_len;
    rc = kv_get(fs->db, NULL, fs->meta, key, key_len, &stored, &stored_len);
    if (rc == KV_NOT_FOUND)
        return -ENODATA;
    if (rc != KV_OK)
        return fs_errno(rc);
    ssize_t result = (ssize_t)stored_len;
    if (size > 0) {
        if (size < stored_len)
            result = -ERANGE;
        else
            memcpy(value, stored, stored_len);
    }
    kv_free(stored);
    return result;
}

ssize_t fs_listxattr(struct fs *fs, uint64_t ino, char *list, size_t size)
{
    bool has;
    int rc = may_have_xattrs(fs, ino, &has);
    if (rc != 0 || !has)
        return rc;
    char prefix[FS_KEY_MAX];
    size_t prefix_len = fs_key_xattr(prefix, ino, "", 0);
    kv_iterator *it = kv_iterator_create(fs->db, NULL, fs->meta);
    if (it == NULL)
        return fs_errno(KV_IO_ERROR);
    size_t total = 0;
    ssize_t result = 0;
    for (kv_iterator_seek(it, prefix, prefix_len); kv_iterator_valid(it); kv_iterator_next(it)) {
        size_t len;
        const char *key = kv_iterator_key(it, &len);
        uint64_t key_ino;
        const char *name;
        size_t name_len;
        if (!fs_key_parse_xattr(key, len, &key_ino, &name, &name_len) || key_ino != ino)
            break;
        if (size > 0 && total + name_len + 1 > size) {
            result = -ERANGE;
            break;
        }
        if (size > 0) {
            memcpy(list + total, name, name_len);
            list[total + name_len] = '\0';
        }
        total += name_len + 1;
    }
    rc = kv_iterator_status(it);
    kv_iterator_destroy(it);
    if (rc != KV_OK)
        return fs_errno(rc);
    return result != 0 ? result : (ssize_t)total;
}

int fs_removexattr(struct fs *fs, uint64_t ino, const char *name)
{
    size_t name_len;
    int rc = check_name(name, &name_len);
    if (rc != 0)
        return rc;
    char key[FS_KEY_MAX];
    size_t key_len = fs_key_xattr(key, ino, name, name_len);

    struct fs_inode inode;
    fs_lock_inode(fs, ino);
    rc = fs_inode_load(fs, ino, &inode);
    bool exists = false, other = true;
    if (rc == 0)
        rc = xattr_exists(fs, &inode, key, key_len, &exists);
    if (rc == 0 && !exists)
        rc = -ENODATA;
    /* Clearing the flag with the last attribute keeps every later lookup
     * on this inode free. */
    if (rc == 0)
        rc = has_other_xattr(fs, ino, key, key_len, &other);
    if (rc == 0) {
        kv_write_batch *batch = kv_write_batch_create();
        kv_write_batch_delete(batch, fs->meta, key, key_len);
        if (!other)
            inode.flags &= ~(uint32_t)FS_INODE_HAS_XATTRS;
        inode.ctime_ns = fs_now_ns();
        fs_batch_put_inode(fs, batch, ino, &inode);
        rc = fs_commit(fs, batch);
        kv_write_batch_destroy(batch);
        if (rc == 0)
            fs_inode_cached(fs, ino, &inode);
    }
    fs_unlock_inode(fs, ino);
    return rc;
}
