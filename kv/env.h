/*
 * env.h — the one seam between kv and the file system (LevelDB's Env).
 * Every open, append, sync, rename and remove of the engine goes through a
 * kv_env, so tests can substitute the fault-injecting env (env_fault.h) that
 * simulates a power cut by dropping whatever was not synced, fails writes, or
 * fills the disk.
 *
 * All functions return 0 or a negative kv_status with a message naming the
 * path (kv_error_errno). ENOSPC maps to KV_NO_SPACE.
 */
#ifndef KV_ENV_H
#define KV_ENV_H

#include "slice.h"
#include <stdint.h>

typedef struct kv_env kv_env;
typedef struct kv_writable kv_writable; /* append-only file with a write buffer */
typedef struct kv_random kv_random;     /* read-only, positional reads */
typedef struct kv_file_lock kv_file_lock;

/* A kv_writable buffers appends in user space (buffer_size bytes, 0 = no
 * buffer); kv_writable_flush hands them to the kernel with write(2),
 * kv_writable_sync additionally calls fdatasync. For a file with
 * start_writeback set (tables, written by background threads), every
 * KV_WRITEBACK_BYTES handed over kv_writable_flush also asks the kernel to
 * start writing them to the disk (sync_file_range, not waiting for it:
 * RocksDB's bytes_per_sync), so that the final fdatasync has little left
 * to do and the disk is kept busy evenly. No promise of durability rests on
 * it. (The WAL is left alone: its writer is the foreground, and
 * sync_file_range can block on a busy disk.) */
#define KV_WRITEBACK_BYTES (1u << 20)
struct kv_writable {
    kv_env *env;
    char *path;
    int fd;
    uint64_t size;    /* bytes appended, flushed or not */
    uint64_t flushed; /* bytes handed to the kernel */
    /* With start_writeback, kv_writable_flush starts the write-back of
     * every KV_WRITEBACK_BYTES; bytes before writeback_begin are started. */
    bool start_writeback;
    uint64_t writeback_begin;
    kv_buf buffer;
    size_t buffer_size;
    /* End of the zeros kv_writable_prezero wrote past the data (0: none);
     * appends overwrite them. */
    uint64_t zeroed_end;
    void *env_state; /* owned by the env implementation */
};

struct kv_random {
    kv_env *env;
    char *path;
    int fd;
    uint64_t size;   /* at open */
    const char *map; /* the whole file mapped read-only, or NULL */
    void *env_state;
};

/* The operations an env implements. The posix env implements all; a
 * wrapping env (faults) forwards to a base env and adds its bookkeeping. */
struct kv_env_ops {
    int (*new_writable)(kv_env *env, const char *path, size_t buffer_size, kv_writable **out);
    /* Hands all n bytes to the kernel, advancing file->flushed by each byte
     * written, also when it then fails (so nothing is written twice). */
    int (*writable_write)(kv_writable *file, const char *data, size_t n);
    int (*writable_sync)(kv_writable *file);
    /* Optional (NULL: kv_writable_prezero does nothing): writes zeros from
     * max(file->flushed, file->zeroed_end) up to `end`, without moving
     * where appends go, and sets file->zeroed_end to how far it got. */
    int (*writable_prezero)(kv_writable *file, uint64_t end);
    int (*writable_close)(kv_writable *file);
    int (*new_random)(kv_env *env, const char *path, kv_random **out);
    int (*random_read)(kv_random *file, uint64_t offset, size_t n, char *scratch, size_t *got);
    void (*random_close)(kv_random *file);
    int (*rename)(kv_env *env, const char *from, const char *to);
    int (*remove)(kv_env *env, const char *path);
    int (*sync_dir)(kv_env *env, const char *dir);
    int (*truncate)(kv_env *env, const char *path, uint64_t size);
    /* fsync of an existing file by its path (after recovery reads it). */
    int (*sync_file)(kv_env *env, const char *path);
};

struct kv_env {
    const struct kv_env_ops *ops;
    void *state;
};

/* The real file system. A process-wide singleton; never freed. */
kv_env *kv_env_posix(void);

/* Creates (truncating) `path` for appending. */
int kv_env_new_writable(kv_env *env, const char *path, size_t buffer_size, kv_writable **out);
/* On error the bytes stay pending in the buffer (and counted in size); a
 * later flush, sync or close retries them. */
int kv_writable_append(kv_writable *file, const void *data, size_t n);
int kv_writable_flush(kv_writable *file);
int kv_writable_sync(kv_writable *file); /* flush + fdatasync */
/* Makes the file at least `end` bytes long by writing zeros past its data
 * (not synced here). Appends then overwrite blocks that exist, and once the
 * zeros are synced an fdatasync after such appends has no file size or
 * block allocation to commit, only the data: on ext4 a journal commit less
 * per sync. Does nothing when `end` is already covered or the env does not
 * implement it. Readers of a log must take the zeros for its end (the WAL
 * reader does: wal.h). */
int kv_writable_prezero(kv_writable *file, uint64_t end);
/* Flushes and cuts the zeros kv_writable_prezero left past the data (the
 * cut is durable at the next sync). */
int kv_writable_trim_zeros(kv_writable *file);
/* Flushes and closes; frees the handle even on error. */
int kv_writable_close(kv_writable *file);

int kv_env_new_random(kv_env *env, const char *path, kv_random **out);
/* Reads up to n bytes at offset into scratch; *got < n only at end of file. */
int kv_random_read(kv_random *file, uint64_t offset, size_t n, char *scratch, size_t *got);
void kv_random_close(kv_random *file);
/* Like kv_random_read, but without a copy when the file is mapped: *out
 * points into the mapping (valid until the file is closed) or into scratch
 * (n bytes), and is shorter than n only at end of file. Table files are
 * immutable once written, which is what makes the mapping safe. */
int kv_random_view(kv_random *file, uint64_t offset, size_t n, char *scratch, kv_slice *out);
/* Unmaps the whole pages of [begin, end) of a memory-mapped file from the
 * process (they stay in the page cache, and a later view maps them again):
 * sequential scans call it behind them, so that the pages a scan or a
 * compaction read do not stay counted in the process's resident memory.
 * Does nothing for a file that is not mapped. */
void kv_random_release_pages(kv_random *file, uint64_t begin, uint64_t end);

/* Whole-file helpers. kv_env_write_file_synced writes `path` via a temporary
 * file, fsyncs it, renames it over `path` and fsyncs the directory. */
int kv_env_read_file(kv_env *env, const char *path, kv_buf *out);
int kv_env_write_file_synced(kv_env *env, const char *path, kv_slice contents);

int kv_env_rename(kv_env *env, const char *from, const char *to);
int kv_env_remove(kv_env *env, const char *path);
int kv_env_sync_dir(kv_env *env, const char *dir);
int kv_env_truncate(kv_env *env, const char *path, uint64_t size);
/* Asks the kernel to start writing the dirty pages of the file open as fd
 * to the disk, without waiting (sync_file_range); best effort. */
void kv_start_writeback_fd(int fd);
/* fsync of the existing file at path. */
int kv_env_sync_file(kv_env *env, const char *path);

/* These act on the real file system directly (the fault env need not see
 * them): directory listing, creation, existence, size, and the LOCK. */
int kv_env_list_dir(const char *dir, char ***names,
                    size_t *count); /* free with kv_env_free_names */
void kv_env_free_names(char **names, size_t count);
int kv_env_mkdir(const char *dir); /* 0 if it already exists */
bool kv_env_file_exists(const char *path);
int kv_env_file_size(const char *path, uint64_t *size);
/* flock(LOCK_EX|LOCK_NB) on `path`, creating it: KV_BUSY with a message
 * naming the directory when another process holds it. */
int kv_env_lock_file(const char *path, kv_file_lock **out);
void kv_env_unlock_file(kv_file_lock *lock);

uint64_t kv_env_now_micros(void); /* monotonic */

#endif
