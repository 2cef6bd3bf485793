/*
 * fs.h — the lsmfs file-system core: inodes, directory entries, file data
 * and extended attributes over kv. It knows nothing of FUSE; lowlevel.c
 * decodes requests, calls one function here and replies. Tests drive it
 * directly, without a mount.
 *
 * Contracts shared by every function:
 *  - returns 0 (or a byte count) on success, a negative errno on failure,
 *    the errno that Linux's own file systems give for the same mistake;
 *  - permission checks are the kernel's (the mount uses default_permissions);
 *    the core checks what the kernel cannot: existence, types, emptiness,
 *    name lengths, flags;
 *  - every change is one atomic kv WriteBatch, written to the WAL before the
 *    function returns (durable against a killed daemon); fs_fsync makes it
 *    durable against power loss;
 *  - functions named "lookup"-like (fs_lookup, fs_create_node, fs_link and
 *    each readdirplus entry) add one kernel reference to the returned inode,
 *    which fs_forget takes back.
 * All functions are thread-safe.
 */
#ifndef LSMFS_FS_H
#define LSMFS_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "kv.h"

struct fs;

struct fs_options {
    uint32_t block_size;      /* data block size when formatting; 4096 */
    size_t cache_size;        /* kv block cache bytes; 64 MiB */
    size_t write_buffer_size; /* kv memtable bytes; 64 MiB */
    bool sync_writes;         /* fsync the WAL after every change */
    bool read_only;           /* refuse every change with EROFS */
    bool blob_files;          /* large writes' blocks go to kv blob files (kv/blob.h); on */
    bool kernel_write_times;  /* the kernel keeps written files' mtime and ctime and sends
                                 them with setattr (FUSE writeback cache): fs_write
                                 leaves them alone */
    struct kv_env *env;       /* NULL: the real file system (tests inject faults) */
};
void fs_options_init(struct fs_options *options);

/* Opens the file system in data directory `path`: formats it when the
 * directory is missing or empty; refuses a directory holding something else
 * or a newer format. Reclaims orphans a crash left behind. On failure writes
 * a one-line message into errbuf. */
int fs_open(const char *path, const struct fs_options *options, struct fs **out, char *errbuf,
            size_t errlen);
/* Persists and closes. Returns the first error kv reports. */
int fs_close(struct fs *fs);

kv_db *fs_db(struct fs *fs);
uint32_t fs_block_size(const struct fs *fs);

/* Who is asking: the caller's credentials (fuse_req_ctx). */
struct fs_caller {
    uid_t uid;
    gid_t gid;
    pid_t pid;
};

/* ---- inodes and names ---- */
int fs_lookup(struct fs *fs, uint64_t parent, const char *name, struct stat *st);
/* Drops nlookup kernel references; an unlinked inode with no references
 * and no open handles is reclaimed. */
void fs_forget(struct fs *fs, uint64_t ino, uint64_t nlookup);
int fs_getattr(struct fs *fs, uint64_t ino, struct stat *st);

/* Bits of fs_setattr's `to_set`. */
enum fs_set {
    FS_SET_MODE = 1 << 0,
    FS_SET_UID = 1 << 1,
    FS_SET_GID = 1 << 2,
    FS_SET_SIZE = 1 << 3,
    FS_SET_ATIME = 1 << 4,
    FS_SET_MTIME = 1 << 5,
    FS_SET_ATIME_NOW = 1 << 7,
    FS_SET_MTIME_NOW = 1 << 8,
    FS_SET_CTIME = 1 << 10,
    /* The caller lacks CAP_FSETID (a truncate) or it is a chown: a file
     * (not a directory) loses setuid, and setgid when group-exec is set,
     * unless FS_SET_MODE gives the mode outright (FUSE_HANDLE_KILLPRIV_V2:
     * the server clears the bits, as the Linux VFS does). */
    FS_SET_KILL_SUIDGID = 1 << 11,
};
/* Changes the attributes named in to_set. As Linux does, a size change
 * (any FS_SET_SIZE) or owner change (FS_SET_UID, FS_SET_GID) of a
 * non-directory also removes its security.capability attribute, in the
 * same batch. */
int fs_setattr(struct fs *fs, uint64_t ino, const struct stat *attr, int to_set, struct stat *st);

/* Creates a regular file, directory, symlink (target != NULL), fifo,
 * socket or device node named `name` in `parent`: owner is the caller (the
 * parent's group when the parent is setgid). -EEXIST if the name exists. */
int fs_create_node(struct fs *fs, const struct fs_caller *caller, uint64_t parent, const char *name,
                   mode_t mode, dev_t rdev, const char *target, struct stat *st);
int fs_link(struct fs *fs, uint64_t ino, uint64_t new_parent, const char *new_name,
            struct stat *st);
int fs_unlink(struct fs *fs, uint64_t parent, const char *name);
int fs_rmdir(struct fs *fs, uint64_t parent, const char *name);
/* flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE. */
int fs_rename(struct fs *fs, uint64_t parent, const char *name, uint64_t new_parent,
              const char *new_name, unsigned int flags);
/* Copies the target (not NUL-terminated) into buf; returns its length. */
ssize_t fs_readlink(struct fs *fs, uint64_t ino, char *buf, size_t size);

/* ---- open files ---- */
/* Counts an open handle (an unlinked file lives until the last release).
 * flags are open(2)'s; O_TRUNC truncates (and removes security.capability,
 * as fs_setattr's FS_SET_SIZE). */
int fs_open_file(struct fs *fs, uint64_t ino, int flags);
void fs_release_file(struct fs *fs, uint64_t ino);
/* Reads up to size bytes at offset; holes read as zeros; short at EOF. */
ssize_t fs_read(struct fs *fs, uint64_t ino, uint64_t offset, size_t size, char *buf);
/* Bits of fs_write's `flags`. */
enum fs_write_flag {
    FS_WRITE_APPEND = 1 << 0, /* at the end of the file, whatever offset says */
    /* The writer lacks CAP_FSETID: setuid goes, and setgid when group-exec
     * is set, in the same batch (FUSE_WRITE_KILL_SUIDGID). */
    FS_WRITE_KILL_SUIDGID = 1 << 1,
    /* Pages the kernel cached, written back later (FUSE_WRITE_CACHE). The
     * write(2)s that dirtied them went through the kernel's removal of
     * privileges then; a security.capability set since (cp -a sets it
     * before close) stays, as on a local file system. */
    FS_WRITE_WRITEBACK = 1 << 2,
    /* A write that only rewrites stored blocks keeps them in the tree
     * rather than in a blob file (kv_write_batch_keep_in_tree): for the
     * write-back of scattered rewrites, which the page cache merges into
     * long WRITEs pass after pass (dirty_limit.h), each leaving the last
     * pass's records in blob files as garbage. */
    FS_WRITE_REWRITES_IN_TREE = 1 << 3,
};
/* Writes size bytes at offset, extending the file. flags: enum
 * fs_write_flag. As write(2) on Linux, a write (unless FS_WRITE_WRITEBACK)
 * removes security.capability, in the same batch; it costs nothing for a
 * file without extended attributes. */
ssize_t fs_write(struct fs *fs, uint64_t ino, uint64_t offset, const char *buf, size_t size,
                 int flags);
/* What a write changed, for callers that ask. */
struct fs_write_info {
    uint64_t size_before;  /* the file's size before */
    uint64_t blocks_added; /* blocks stored where there were none (past the
                              end, or in a hole) */
};
/* fs_write that also fills *info (when it succeeds, and info is not NULL). */
ssize_t fs_write_info(struct fs *fs, uint64_t ino, uint64_t offset, const char *buf, size_t size,
                      int flags, struct fs_write_info *info);
/* Records an access as relatime does: atime is set to now when it is not
 * newer than mtime or ctime, or is a day old; otherwise nothing is written. */
int fs_note_access(struct fs *fs, uint64_t ino);
/* Makes every change so far durable (the WAL is shared, so this is syncfs). */
int fs_fsync(struct fs *fs);
/* mode: 0 or FALLOC_FL_KEEP_SIZE / PUNCH_HOLE / ZERO_RANGE combinations. */
int fs_fallocate(struct fs *fs, uint64_t ino, int mode, uint64_t offset, uint64_t length);
/* whence: SEEK_DATA or SEEK_HOLE; returns the offset found or -ENXIO. */
int64_t fs_lseek(struct fs *fs, uint64_t ino, int64_t offset, int whence);
ssize_t fs_copy_file_range(struct fs *fs, uint64_t ino_in, uint64_t off_in, uint64_t ino_out,
                           uint64_t off_out, size_t len);

/* ---- directories ---- */
struct fs_dir; /* an open directory: one consistent snapshot of its entries */
int fs_opendir(struct fs *fs, uint64_t ino, struct fs_dir **out);
void fs_releasedir(struct fs *fs, struct fs_dir *dir);
/* Called per entry with the offset of the entry after it; returns true to
 * go on, false when the reply buffer is full (the entry is then not
 * consumed). Without plus, st has only st_ino and st_mode's type bits. With
 * plus, `referenced` says st is complete and the entry's inode gained a
 * kernel reference (as fs_lookup gives); if the filler refuses the entry,
 * fs_readdir takes that reference back. An entry whose inode vanished after
 * opendir comes with referenced false. */
typedef bool (*fs_dir_filler)(void *ctx, const char *name, const struct stat *st, bool referenced,
                              uint64_t next_offset);
/* Lists entries from `offset` (0: the start; else a next_offset given
 * before), ".", ".." and then the snapshot's entries in name order. */
int fs_readdir(struct fs *fs, struct fs_dir *dir, uint64_t offset, bool plus, fs_dir_filler filler,
               void *ctx);

int fs_statfs(struct fs *fs, struct statvfs *st);

/* ---- extended attributes ---- flags: XATTR_CREATE / XATTR_REPLACE */
int fs_setxattr(struct fs *fs, uint64_t ino, const char *name, const char *value, size_t size,
                int flags);
/* size 0: returns the value's length; too small: -ERANGE. */
ssize_t fs_getxattr(struct fs *fs, uint64_t ino, const char *name, char *value, size_t size);
/* NUL-separated names; size 0: the length needed. */
ssize_t fs_listxattr(struct fs *fs, uint64_t ino, char *list, size_t size);
int fs_removexattr(struct fs *fs, uint64_t ino, const char *name);

/* ---- statistics ---- */
/* A malloc'd multi-line text: kv's memtables, levels, flushes,
 * compactions, stalls, cache hits, and lsmfs's inode table. */
char *fs_stats_text(struct fs *fs);

#endif /* LSMFS_FS_H */
