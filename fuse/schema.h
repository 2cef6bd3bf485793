/*
 * schema.h — how lsmfs stores a file system in kv: the keys of the two
 * column families and the byte layout of every value. The one module that
 * encodes and decodes them (fuse/FORMAT.md describes the same bytes in
 * prose). Pure functions; no kv calls, so fsck and the fuzzers use it too.
 *
 *   meta family                          data family
 *   "S"                 superblock       ino(8) block(8)  file data block,
 *                                                         or symlink target
 *   "I" ino(8)          inode
 *   "D" parent(8) name  directory entry
 *   "X" ino(8) name     extended attribute
 *   "O" ino(8)          orphan (unlinked while open)
 *
 * Integers in keys are big-endian so keys sort by number; integers in
 * values are little-endian fixed width (kv's coding). Every value starts
 * with a one-byte record version, so a newer daemon can read older records.
 */
#ifndef LSMFS_SCHEMA_H
#define LSMFS_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FS_FORMAT_VERSION 1
#define FS_MAGIC "lsmfs\0fs" /* 8 bytes at the start of the superblock */
#define FS_ROOT_INO 1
#define FS_NAME_MAX 255
#define FS_SYMLINK_MAX 4095
#define FS_XATTR_NAME_MAX 255
#define FS_XATTR_VALUE_MAX 65536

#define FS_META_CF "meta"
#define FS_DATA_CF "data"

enum fs_key_tag {
    FS_TAG_SUPER = 'S',
    FS_TAG_INODE = 'I',
    FS_TAG_DENTRY = 'D',
    FS_TAG_XATTR = 'X',
    FS_TAG_ORPHAN = 'O',
};

/* Longest encoded key: tag + ino + longest name. */
#define FS_KEY_MAX (1 + 8 + FS_XATTR_NAME_MAX + 1)
#define FS_INODE_KEY_LEN 9
#define FS_DATA_KEY_LEN 16

/* ---- keys ---- (each returns the key length written into `key`) */
size_t fs_key_super(char *key);
size_t fs_key_inode(char *key, uint64_t ino);
size_t fs_key_orphan(char *key, uint64_t ino);
/* name_len <= FS_NAME_MAX; name_len 0 gives the prefix of all entries of
 * `parent` (and of all xattrs of `ino`). */
size_t fs_key_dentry(char *key, uint64_t parent, const char *name, size_t name_len);
size_t fs_key_xattr(char *key, uint64_t ino, const char *name, size_t name_len);
size_t fs_key_data(char *key, uint64_t ino, uint64_t block);

/* Splits a key of a given tag; false if it is not a well-formed one. */
bool fs_key_parse_ino(const char *key, size_t len, char tag, uint64_t *ino);
bool fs_key_parse_dentry(const char *key, size_t len, uint64_t *parent, const char **name,
                         size_t *name_len);
bool fs_key_parse_xattr(const char *key, size_t len, uint64_t *ino, const char **name,
                        size_t *name_len);
bool fs_key_parse_data(const char *key, size_t len, uint64_t *ino, uint64_t *block);
uint64_t fs_be64_decode(const char *p);

/* ---- superblock ---- */
struct fs_super {
    uint32_t format_version;
    uint32_t block_size; /* bytes per data block; fixed at format */
    uint64_t next_ino;   /* inode numbers below this may be in use */
    int64_t created_ns;  /* format time */
    uint8_t uuid[16];
};
#define FS_SUPER_LEN (8 + 1 + 4 + 4 + 8 + 8 + 16)
size_t fs_super_encode(char *buf, const struct fs_super *super);
/* 0; -EINVAL for something that is not an lsmfs superblock; -EPROTO for a
 * newer format version (super->format_version says which). */
int fs_super_decode(const char *buf, size_t len, struct fs_super *super);

/* ---- inode ---- */
enum fs_inode_flag {
    FS_INODE_HAS_XATTRS = 1u << 0, /* some X key may exist: skip lookups when clear */
};

struct fs_inode {
    uint32_t mode; /* type and permission bits, as st_mode */
    uint32_t uid, gid;
    uint32_t flags; /* enum fs_inode_flag */
    uint64_t nlink;
    uint64_t size;   /* bytes; for a directory, its entry count */
    uint64_t blocks; /* data blocks stored (holes not counted) */
    uint64_t rdev;
    uint64_t generation;
    int64_t atime_ns, mtime_ns, ctime_ns, btime_ns;
    uint64_t parent; /* directories: the directory holding it (root: itself) */
};
/* An inode value has a fixed size. A symlink's target is its data block 0
 * (so every inode update rewrites the same few bytes). */
#define FS_INODE_LEN (1 + 4 * 4 + 8 * 10)
size_t fs_inode_encode(char *buf, const struct fs_inode *inode);
/* 0 or -EIO (malformed). */
int fs_inode_decode(const char *buf, size_t len, struct fs_inode *inode);

/* ---- directory entry ---- */
#define FS_DENTRY_LEN (1 + 8 + 1)
size_t fs_dentry_encode(char *buf, uint64_t ino, mode_t type);
/* *type is the S_IFMT bits of the child. 0 or -EIO. */
int fs_dentry_decode(const char *buf, size_t len, uint64_t *ino, mode_t *type);

/* ---- orphan ---- an empty-payload record; its key says everything */
#define FS_ORPHAN_LEN 1
size_t fs_orphan_encode(char *buf);

#endif /* LSMFS_SCHEMA_H */
