/*
 * fuzz_schema.c — the codecs of the lsmfs on-disk layout (fuse/schema.c):
 * the input is read as every kind of value (superblock, inode, directory
 * entry) and every kind of key (inode, orphan, dentry, xattr, data) at
 * once; each decoder must refuse it or accept it in a way the encoder
 * reproduces byte for byte, as fuse/FORMAT.md describes the bytes.
 */
#include "fuzz_checks.h"

#include "schema.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

/* Record version of every versioned value (fuse/FORMAT.md). */
#define RECORD_VERSION 1

static void fuzz_super(const char *data, size_t size)
{
    struct fs_super super;
    int rc = fs_super_decode(data, size, &super);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -EPROTO, "fs_super_decode returned %d", rc);
    if (rc == -EPROTO)
        FUZZ_CHECK(super.format_version > FS_FORMAT_VERSION, "-EPROTO for format version %u",
                   super.format_version);
    if (rc != 0)
        return;
    /* FORMAT.md: 49 bytes (the decoder also takes longer values; only
     * the 49 are compared); record version 1; block size a power of two
     * in 512 .. 1 MiB; inode numbers below next_ino may be in use. */
    FUZZ_CHECK(size >= FS_SUPER_LEN, "a superblock of %zu bytes accepted", size);
    FUZZ_CHECK(data[8] == RECORD_VERSION, "a superblock of record version %d accepted",
               (unsigned char)data[8]);
    FUZZ_CHECK(super.format_version >= 1 && super.format_version <= FS_FORMAT_VERSION,
               "format version %u accepted", super.format_version);
    FUZZ_CHECK(super.block_size >= 512 && super.block_size <= (1u << 20) &&
                   (super.block_size & (super.block_size - 1)) == 0,
               "block size %u accepted", super.block_size);
    FUZZ_CHECK(super.next_ino > FS_ROOT_INO, "next_ino %llu accepted",
               (unsigned long long)super.next_ino);
    char encoded[FS_SUPER_LEN];
    FUZZ_CHECK(fs_super_encode(encoded, &super) == FS_SUPER_LEN, "superblock length");
    FUZZ_CHECK(memcmp(encoded, data, FS_SUPER_LEN) == 0,
               "a decoded superblock does not encode to the same bytes");
}

static void fuzz_inode(const char *data, size_t size)
{
    struct fs_inode inode;
    int rc = fs_inode_decode(data, size, &inode);
    FUZZ_CHECK(rc == 0 || rc == -EIO, "fs_inode_decode returned %d", rc);
    if (rc != 0)
        return;
    FUZZ_CHECK(size == FS_INODE_LEN && data[0] == RECORD_VERSION,
               "an inode of %zu bytes, record version %d accepted", size, (unsigned char)data[0]);
    char encoded[FS_INODE_LEN];
    FUZZ_CHECK(fs_inode_encode(encoded, &inode) == FS_INODE_LEN, "inode length");
    FUZZ_CHECK(memcmp(encoded, data, FS_INODE_LEN) == 0,
               "a decoded inode does not encode to the same bytes");
}

static void fuzz_dentry(const char *data, size_t size)
{
    uint64_t ino;
    mode_t type;
    int rc = fs_dentry_decode(data, size, &ino, &type);
    FUZZ_CHECK(rc == 0 || rc == -EIO, "fs_dentry_decode returned %d", rc);
    if (rc != 0)
        return;
    FUZZ_CHECK(ino >= FS_ROOT_INO, "a dentry naming inode %llu accepted", (unsigned long long)ino);
    FUZZ_CHECK((type & ~(mode_t)S_IFMT) == 0 && type != 0, "dentry type %o", (unsigned)type);
    char encoded[FS_DENTRY_LEN];
    FUZZ_CHECK(fs_dentry_encode(encoded, ino, type) == FS_DENTRY_LEN, "dentry length");
    FUZZ_CHECK(size == FS_DENTRY_LEN && memcmp(encoded, data, FS_DENTRY_LEN) == 0,
               "a decoded dentry does not encode to the same bytes");
}

static void fuzz_keys(const char *data, size_t size)
{
    char key[FS_KEY_MAX];
    uint64_t ino, block;
    const char *name;
    size_t name_len;
    static const char ino_tags[] = {FS_TAG_INODE, FS_TAG_ORPHAN, FS_TAG_SUPER, FS_TAG_DENTRY};
    for (size_t t = 0; t < sizeof(ino_tags); t++) {
        if (!fs_key_parse_ino(data, size, ino_tags[t], &ino))
            continue;
        FUZZ_CHECK(size == FS_INODE_KEY_LEN && data[0] == ino_tags[t], "inode key accepted");
        size_t len =
            ino_tags[t] == FS_TAG_ORPHAN ? fs_key_orphan(key, ino) : fs_key_inode(key, ino);
        if (ino_tags[t] == FS_TAG_INODE || ino_tags[t] == FS_TAG_ORPHAN)
            FUZZ_CHECK(len == size && memcmp(key, data, size) == 0, "inode key round trip");
    }
    if (fs_key_parse_dentry(data, size, &ino, &name, &name_len)) {
        FUZZ_CHECK(name_len >= 1 && name_len <= FS_NAME_MAX, "dentry name of %zu bytes", name_len);
        FUZZ_CHECK(name >= data && name + name_len == data + size, "dentry name outside the key");
        size_t len = fs_key_dentry(key, ino, name, name_len);
        FUZZ_CHECK(len == size && memcmp(key, data, size) == 0, "dentry key round trip");
    }
    if (fs_key_parse_xattr(data, size, &ino, &name, &name_len)) {
        FUZZ_CHECK(name_len >= 1 && name_len <= FS_XATTR_NAME_MAX, "xattr name of %zu bytes",
                   name_len);
        FUZZ_CHECK(name >= data && name + name_len == data + size, "xattr name outside the key");
        size_t len = fs_key_xattr(key, ino, name, name_len);
        FUZZ_CHECK(len == size && memcmp(key, data, size) == 0, "xattr key round trip");
    }
    if (fs_key_parse_data(data, size, &ino, &block)) {
        size_t len = fs_key_data(key, ino, block);
        FUZZ_CHECK(len == size && memcmp(key, data, size) == 0, "data key round trip");
    }
    /* The prefix of all entries of a directory (name_len 0). */
    if (size >= 8) {
        uint64_t parent = fs_be64_decode(data);
        size_t len = fs_key_dentry(key, parent, "", 0);
        FUZZ_CHECK(len == FS_INODE_KEY_LEN && key[0] == FS_TAG_DENTRY &&
                       fs_be64_decode(key + 1) == parent,
                   "dentry prefix");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* libFuzzer's data is an exact-size heap copy: a read past its end is
     * an overflow ASan reports. */
    const char *bytes = (const char *)data;
    fuzz_super(bytes, size);
    fuzz_inode(bytes, size);
    fuzz_dentry(bytes, size);
    fuzz_keys(bytes, size);
    return 0;
}
