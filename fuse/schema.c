/* schema.c — key and value codecs of the lsmfs on-disk layout (schema.h). */
#include "schema.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "coding.h"

enum { RECORD_VERSION = 1 };

uint64_t fs_be64_decode(const char *p)
{
    return kv_decode_big_endian64(p);
}

static size_t key_tag_ino(char *key, char tag, uint64_t ino)
{
    key[0] = tag;
    kv_encode_big_endian64(key + 1, ino);
    return FS_INODE_KEY_LEN;
}

size_t fs_key_super(char *key)
{
    key[0] = FS_TAG_SUPER;
    return 1;
}

size_t fs_key_inode(char *key, uint64_t ino)
{
    return key_tag_ino(key, FS_TAG_INODE, ino);
}

size_t fs_key_orphan(char *key, uint64_t ino)
{
    return key_tag_ino(key, FS_TAG_ORPHAN, ino);
}

size_t fs_key_dentry(char *key, uint64_t parent, const char *name, size_t name_len)
{
    size_t len = key_tag_ino(key, FS_TAG_DENTRY, parent);
    memcpy(key + len, name, name_len);
    return len + name_len;
}

size_t fs_key_xattr(char *key, uint64_t ino, const char *name, size_t name_len)
{
    size_t len = key_tag_ino(key, FS_TAG_XATTR, ino);
    memcpy(key + len, name, name_len);
    return len + name_len;
}

size_t fs_key_data(char *key, uint64_t ino, uint64_t block)
{
    kv_encode_big_endian64(key, ino);
    kv_encode_big_endian64(key + 8, block);
    return FS_DATA_KEY_LEN;
}

bool fs_key_parse_ino(const char *key, size_t len, char tag, uint64_t *ino)
{
    if (len != FS_INODE_KEY_LEN || key[0] != tag)
        return false;
    *ino = kv_decode_big_endian64(key + 1);
    return true;
}

static bool parse_named(const char *key, size_t len, char tag, uint64_t *ino, const char **name,
                        size_t *name_len, size_t name_max)
{
    if (len <= FS_INODE_KEY_LEN || key[0] != tag || len - FS_INODE_KEY_LEN > name_max)
        return false;
    *ino = kv_decode_big_endian64(key + 1);
    *name = key + FS_INODE_KEY_LEN;
    *name_len = len - FS_INODE_KEY_LEN;
    return true;
}

bool fs_key_parse_dentry(const char *key, size_t len, uint64_t *parent, const char **name,
                         size_t *name_len)
{
    return parse_named(key, len, FS_TAG_DENTRY, parent, name, name_len, FS_NAME_MAX);
}

bool fs_key_parse_xattr(const char *key, size_t len, uint64_t *ino, const char **name,
                        size_t *name_len)
{
    return parse_named(key, len, FS_TAG_XATTR, ino, name, name_len, FS_XATTR_NAME_MAX);
}

bool fs_key_parse_data(const char *key, size_t len, uint64_t *ino, uint64_t *block)
{
    if (len != FS_DATA_KEY_LEN)
        return false;
    *ino = kv_decode_big_endian64(key);
    *block = kv_decode_big_endian64(key + 8);
    return true;
}

/* ---- superblock ---- */

size_t fs_super_encode(char *buf, const struct fs_super *super)
{
    char *p = buf;
    memcpy(p, FS_MAGIC, 8);
    p += 8;
    *p++ = RECORD_VERSION;
    kv_encode_fixed32(p, super->format_version);
    p += 4;
    kv_encode_fixed32(p, super->block_size);
    p += 4;
    kv_encode_fixed64(p, super->next_ino);
    p += 8;
    kv_encode_fixed64(p, (uint64_t)super->created_ns);
    p += 8;
    memcpy(p, super->uuid, 16);
    p += 16;
    return (size_t)(p - buf);
}

int fs_super_decode(const char *buf, size_t len, struct fs_super *super)
{
    if (len < 8 + 1 + 4 || memcmp(buf, FS_MAGIC, 8) != 0)
        return -EINVAL;
    const char *p = buf + 9;
    super->format_version = kv_decode_fixed32(p);
    if (super->format_version > FS_FORMAT_VERSION)
        return -EPROTO;
    /* After the version test, so that a newer format is reported as such
     * even if it also changed the record version. */
    if (len < FS_SUPER_LEN || super->format_version == 0 || buf[8] != RECORD_VERSION)
        return -EINVAL;
    p += 4;
    super->block_size = kv_decode_fixed32(p);
    p += 4;
    super->next_ino = kv_decode_fixed64(p);
    p += 8;
    super->created_ns = (int64_t)kv_decode_fixed64(p);
    p += 8;
    memcpy(super->uuid, p, 16);
    if (super->block_size < 512 || super->block_size > (1u << 20) ||
        (super->block_size & (super->block_size - 1)) != 0 || super->next_ino <= FS_ROOT_INO)
        return -EINVAL;
    return 0;
}

/* ---- inode ---- */

size_t fs_inode_encode(char *buf, const struct fs_inode *inode)
{
    char *p = buf;
    *p++ = RECORD_VERSION;
    const uint32_t words[4] = {inode->mode, inode->uid, inode->gid, inode->flags};
    for (int i = 0; i < 4; i++, p += 4)
        kv_encode_fixed32(p, words[i]);
    const uint64_t quads[10] = {inode->nlink,
                                inode->size,
                                inode->blocks,
                                inode->rdev,
                                inode->generation,
                                (uint64_t)inode->atime_ns,
                                (uint64_t)inode->mtime_ns,
                                (uint64_t)inode->ctime_ns,
                                (uint64_t)inode->btime_ns,
                                inode->parent};
    for (int i = 0; i < 10; i++, p += 8)
        kv_encode_fixed64(p, quads[i]);
    return (size_t)(p - buf);
}

int fs_inode_decode(const char *buf, size_t len, struct fs_inode *inode)
{
    if (len != FS_INODE_LEN || buf[0] != RECORD_VERSION)
        return -EIO;
    const char *p = buf + 1;
    uint32_t words[4];
    for (int i = 0; i < 4; i++, p += 4)
        words[i] = kv_decode_fixed32(p);
    uint64_t quads[10];
    for (int i = 0; i < 10; i++, p += 8)
        quads[i] = kv_decode_fixed64(p);
    inode->mode = words[0];
    inode->uid = words[1];
    inode->gid = words[2];
    inode->flags = words[3];
    inode->nlink = quads[0];
    inode->size = quads[1];
    inode->blocks = quads[2];
    inode->rdev = quads[3];
    inode->generation = quads[4];
    inode->atime_ns = (int64_t)quads[5];
    inode->mtime_ns = (int64_t)quads[6];
    inode->ctime_ns = (int64_t)quads[7];
    inode->btime_ns = (int64_t)quads[8];
    inode->parent = quads[9];
    return 0;
}

/* ---- directory entry ---- */

static char type_code(mode_t type)
{
    switch (type & S_IFMT) {
    case S_IFREG:
        return 'f';
    case S_IFDIR:
        return 'd';
    case S_IFLNK:
        return 'l';
    case S_IFIFO:
        return 'p';
    case S_IFSOCK:
        return 's';
    case S_IFCHR:
        return 'c';
    case S_IFBLK:
        return 'b';
    default:
        return 0;
    }
}

static mode_t type_from_code(char code)
{
    switch (code) {
    case 'f':
        return S_IFREG;
    case 'd':
        return S_IFDIR;
    case 'l':
        return S_IFLNK;
    case 'p':
        return S_IFIFO;
    case 's':
        return S_IFSOCK;
    case 'c':
        return S_IFCHR;
    case 'b':
        return S_IFBLK;
    default:
        return 0;
    }
}

size_t fs_dentry_encode(char *buf, uint64_t ino, mode_t type)
{
    buf[0] = RECORD_VERSION;
    kv_encode_fixed64(buf + 1, ino);
    buf[9] = type_code(type);
    return FS_DENTRY_LEN;
}

int fs_dentry_decode(const char *buf, size_t len, uint64_t *ino, mode_t *type)
{
    if (len != FS_DENTRY_LEN || buf[0] != RECORD_VERSION)
        return -EIO;
    *ino = kv_decode_fixed64(buf + 1);
    *type = type_from_code(buf[9]);
    if (*type == 0 || *ino < FS_ROOT_INO)
        return -EIO;
    return 0;
}

size_t fs_orphan_encode(char *buf)
{
    buf[0] = RECORD_VERSION;
    return FS_ORPHAN_LEN;
}
