/*
 * env_posix.c — the real file system behind kv_env (env.h), and the generic
 * kv_env_* / kv_writable_* / kv_random_* functions that dispatch through a
 * kv_env's ops, so that a wrapping env (env_fault.c) sees every write, sync,
 * rename and remove the engine makes.
 *
 * Every descriptor is opened with O_CLOEXEC: the daemon may run helpers, and
 * a leaked descriptor of the LOCK file would keep the database locked.
 */
#include "env.h"

#include "error.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct kv_file_lock {
    int fd;
    char *path;
};

/* kv_error_errno with the offset in the message, for errors at a position
 * in a file: "pwrite at offset 4096: /db/000012.log: No space left". */
static int io_error_at(int err, const char *what, const char *path, uint64_t offset)
{
    char what_at[96];
    snprintf(what_at, sizeof(what_at), "%s at offset %llu", what, (unsigned long long)offset);
    return kv_error_errno(err, what_at, path);
}

/* ---- posix ops ---- */

static int posix_new_writable(kv_env *env, const char *path, size_t buffer_size, kv_writable **out)
{
    *out = NULL;
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0)
        return kv_error_errno(errno, "open for writing", path);
    kv_writable *file = kv_calloc(1, sizeof(*file));
    file->env = env;
    file->path = kv_strdup(path);
    file->fd = fd;
    file->buffer_size = buffer_size;
    if (buffer_size > 0)
        kv_buf_reserve(&file->buffer, buffer_size);
    *out = file;
    return 0;
}

/* Writes all n bytes at the end of the file, retrying short writes and
 * EINTR. Advances file->flushed by every byte the kernel took, also when it
 * then fails (ENOSPC after a short write), so the caller knows exactly what
 * is still pending. */
static int posix_writable_write(kv_writable *file, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t done = write(file->fd, data, n);
        if (done < 0) {
            if (errno == EINTR)
                continue;
            return io_error_at(errno, "write", file->path, file->flushed);
        }
        assert((size_t)done <= n);
        data += done;
        n -= (size_t)done;
        file->flushed += (uint64_t)done;
    }
    return 0;
}

static int posix_writable_sync(kv_writable *file)
{
    while (fdatasync(file->fd) != 0) {
        if (errno != EINTR)
            return kv_error_errno(errno, "fdatasync", file->path);
    }
    return 0;
}

static int posix_writable_prezero(kv_writable *file, uint64_t end)
{
    static const char zeros[64 * 1024];
    uint64_t at = file->zeroed_end > file->flushed ? file->zeroed_end : file->flushed;
    while (at < end) {
        size_t n = end - at < sizeof(zeros) ? (size_t)(end - at) : sizeof(zeros);
        ssize_t done = pwrite(file->fd, zeros, n, (off_t)at);
        if (done < 0) {
            if (errno == EINTR)
                continue;
            return io_error_at(errno, "write (zeros)", file->path, at);
        }
        at += (uint64_t)done;
        file->zeroed_end = at;
    }
    return 0;
}

static int posix_writable_close(kv_writable *file)
{
    int rc = 0;
    /* Linux closes the descriptor even when close() reports EINTR: never
     * retry. An error here is a delayed write error (NFS, quota). */
    if (close(file->fd) != 0 && errno != EINTR)
        rc = kv_error_errno(errno, "close", file->path);
    kv_buf_free(&file->buffer);
    free(file->path);
    free(file);
    return rc;
}

static int posix_new_random(kv_env *env, const char *path, kv_random **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kv_error_errno(errno, "open for reading", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = kv_error_errno(errno, "fstat", path);
        close(fd);
        return rc;
    }
    kv_random *file = kv_calloc(1, sizeof(*file));
    file->env = env;
    file->path = kv_strdup(path);
    file->fd = fd;
    file->size = (uint64_t)st.st_size;
    /* Map immutable table files (as LevelDB does): reads then cost no
     * system call and no copy out of the page cache. The table cache
     * bounds how many are mapped at once. Blob files are mapped too, as
     * far as they go at open (they only grow; blob.c reads what lies
     * beyond with pread). */
    size_t len = strlen(path);
    bool table = len > 4 && strcmp(path + len - 4, ".sst") == 0;
    bool blob = len > 5 && strcmp(path + len - 5, ".blob") == 0;
    if (file->size > 0 && (table || blob)) {
        void *map = mmap(NULL, (size_t)file->size, PROT_READ, MAP_SHARED, fd, 0);
        if (map != MAP_FAILED)
            file->map = map;
    }
    *out = file;
    return 0;
}

/* pread until n bytes or end of file (pread may return fewer bytes than
 * asked for before EOF, e.g. after a signal). */
static int posix_random_read(kv_random *file, uint64_t offset, size_t n, char *scratch, size_t *got)
{
    size_t total = 0;
    while (total < n) {
        ssize_t r = pread(file->fd, scratch + total, n - total, (off_t)(offset + total));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            *got = total;
            return io_error_at(errno, "pread", file->path, offset + total);
        }
        if (r == 0)
            break; /* end of file */
        total += (size_t)r;
    }
    *got = total;
    return 0;
}

static void posix_random_close(kv_random *file)
{
    if (file->map != NULL)
        munmap((void *)file->map, (size_t)file->size);
    close(file->fd);
    free(file->path);
    free(file);
}

static int posix_rename(kv_env *env, const char *from, const char *to)
{
    if (rename(from, to) != 0) {
        int err = errno;
        return kv_error(err == ENOSPC || err == EDQUOT ? KV_NO_SPACE : KV_IO_ERROR,
                        "rename: %s -> %s: %s", from, to, strerror(err));
    }
    return 0;
}

static int posix_remove(kv_env *env, const char *path)
{
    if (unlink(path) != 0)
        return kv_error_errno(errno, "remove", path);
    return 0;
}

/* Opens path with open_flags and syncs it (fsync for a directory, whose
 * entries are its data; fdatasync for a file). */
static int sync_path(const char *path, int open_flags, bool directory)
{
    int fd = open(path, open_flags | O_CLOEXEC);
    if (fd < 0)
        return kv_error_errno(errno, directory ? "open directory" : "open", path);
    int rc = 0;
    while ((directory ? fsync(fd) : fdatasync(fd)) != 0) {
        if (errno != EINTR) {
            rc = kv_error_errno(errno, directory ? "fsync directory" : "fdatasync", path);
            break;
        }
    }
    close(fd);
    return rc;
}

static int posix_sync_dir(kv_env *env, const char *dir)
{
    (void)env;
    return sync_path(dir, O_RDONLY | O_DIRECTORY, true);
}

static int posix_truncate(kv_env *env, const char *path, uint64_t size)
{
    if (truncate(path, (off_t)size) != 0) {
        char what[64];
        snprintf(what, sizeof(what), "truncate to %llu bytes", (unsigned long long)size);
        return kv_error_errno(errno, what, path);
    }
    return 0;
}

static int posix_sync_file(kv_env *env, const char *path)
{
    (void)env;
    return sync_path(path, O_RDONLY, false);
}

static const struct kv_env_ops posix_ops = {
    .new_writable = posix_new_writable,
    .writable_write = posix_writable_write,
    .writable_sync = posix_writable_sync,
    .writable_prezero = posix_writable_prezero,
    .writable_close = posix_writable_close,
    .new_random = posix_new_random,
    .random_read = posix_random_read,
    .random_close = posix_random_close,
    .rename = posix_rename,
    .remove = posix_remove,
    .sync_dir = posix_sync_dir,
    .truncate = posix_truncate,
    .sync_file = posix_sync_file,
};

static kv_env posix_env = {&posix_ops, NULL};

kv_env *kv_env_posix(void)
{
    return &posix_env;
}

/* ---- generic functions: dispatch through env->ops ---- */

int kv_env_new_writable(kv_env *env, const char *path, size_t buffer_size, kv_writable **out)
{
    return env->ops->new_writable(env, path, buffer_size, out);
}

/* Hands data to the env's write; whatever the kernel did not take stays
 * pending in the buffer, so that a later flush retries exactly the missing
 * bytes (after ENOSPC, once space was freed). */
static int writable_write_or_keep(kv_writable *file, const char *data, size_t n)
{
    uint64_t before = file->flushed;
    int rc = file->env->ops->writable_write(file, data, n);
    uint64_t written = file->flushed - before;
    assert(written <= n);
    if (rc != 0)
        kv_buf_append(&file->buffer, data + written, n - written);
    else
        assert(written == n);
    return rc;
}

int kv_writable_flush(kv_writable *file)
{
    assert(file->size == file->flushed + file->buffer.size);
    if (file->buffer.size == 0)
        return 0;
    uint64_t before = file->flushed;
    int rc = file->env->ops->writable_write(file, file->buffer.data, file->buffer.size);
    size_t written = (size_t)(file->flushed - before);
    assert(written <= file->buffer.size);
    if (written == file->buffer.size) {
        kv_buf_clear(&file->buffer);
    } else {
        memmove(file->buffer.data, file->buffer.data + written, file->buffer.size - written);
        file->buffer.size -= written;
    }
    assert(rc != 0 || file->buffer.size == 0);
    if (file->start_writeback && file->fd >= 0 &&
        file->flushed - file->writeback_begin >= KV_WRITEBACK_BYTES) {
        /* Best effort: an error here resurfaces at the next fdatasync. */
        (void)sync_file_range(file->fd, (off_t)file->writeback_begin,
                              (off_t)(file->flushed - file->writeback_begin),
                              SYNC_FILE_RANGE_WRITE);
        file->writeback_begin = file->flushed;
    }
    return rc;
}

/* Contract: on success all n bytes are appended (maybe still buffered). On
 * error the bytes stay accepted — pending in the buffer, counted in size —
 * and the next flush/sync/close tries again to write them; the file never
 * gets a hole or a duplicate. */
int kv_writable_append(kv_writable *file, const void *data, size_t n)
{
    assert(file->size == file->flushed + file->buffer.size);
    if (n == 0)
        return 0;
    if (file->buffer.size + n <= file->buffer_size) {
        kv_buf_append(&file->buffer, data, n);
        file->size += n;
        return 0;
    }
    int rc = kv_writable_flush(file);
    file->size += n;
    if (rc != 0) {
        kv_buf_append(&file->buffer, data, n);
        return rc;
    }
    /* Small appends start a new buffer; large ones bypass it (one copy
     * less, and one write instead of many). */
    if (n < file->buffer_size) {
        kv_buf_append(&file->buffer, data, n);
        return 0;
    }
    return writable_write_or_keep(file, data, n);
}

int kv_writable_sync(kv_writable *file)
{
    int rc = kv_writable_flush(file);
    if (rc != 0)
        return rc;
    return file->env->ops->writable_sync(file);
}

int kv_writable_prezero(kv_writable *file, uint64_t end)
{
    if (file->env->ops->writable_prezero == NULL || end <= file->size || end <= file->zeroed_end)
        return 0;
    /* Bytes still buffered land on zeros and overwrite them. */
    return file->env->ops->writable_prezero(file, end);
}

int kv_writable_trim_zeros(kv_writable *file)
{
    if (file->zeroed_end <= file->size)
        return 0;
    int rc = kv_writable_flush(file);
    if (rc == 0)
        rc = kv_env_truncate(file->env, file->path, file->size);
    if (rc == 0)
        file->zeroed_end = 0;
    return rc;
}

int kv_writable_close(kv_writable *file)
{
    if (file == NULL)
        return 0;
    int rc = kv_writable_flush(file);
    int close_rc = file->env->ops->writable_close(file);
    return rc != 0 ? rc : close_rc;
}

int kv_env_new_random(kv_env *env, const char *path, kv_random **out)
{
    return env->ops->new_random(env, path, out);
}

int kv_random_read(kv_random *file, uint64_t offset, size_t n, char *scratch, size_t *got)
{
    return file->env->ops->random_read(file, offset, n, scratch, got);
}

int kv_random_view(kv_random *file, uint64_t offset, size_t n, char *scratch, kv_slice *out)
{
    if (file->map != NULL) {
        size_t avail = offset >= file->size ? 0 : (size_t)(file->size - offset);
        *out = kv_slice_make(file->map + (offset < file->size ? offset : file->size),
                             n < avail ? n : avail);
        return 0;
    }
    size_t got = 0;
    int rc = kv_random_read(file, offset, n, scratch, &got);
    if (rc == 0)
        *out = kv_slice_make(scratch, got);
    return rc;
}

void kv_random_release_pages(kv_random *file, uint64_t begin, uint64_t end)
{
    if (file->map == NULL)
        return;
    static long page_size;
    if (page_size == 0)
        page_size = sysconf(_SC_PAGESIZE);
    uint64_t page = (uint64_t)page_size;
    if (end > file->size)
        end = file->size;
    uint64_t first = (begin + page - 1) / page * page, last = end / page * page;
    /* The mapping is read-only and file-backed: dropped pages come back
     * from the page cache (or the file) on the next touch. */
    if (first < last)
        madvise((void *)(file->map + first), (size_t)(last - first), MADV_DONTNEED);
}

void kv_start_writeback_fd(int fd)
{
    if (fd >= 0)
        (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

void kv_random_close(kv_random *file)
{
    if (file != NULL)
        file->env->ops->random_close(file);
}

int kv_env_read_file(kv_env *env, const char *path, kv_buf *out)
{
    kv_buf_clear(out);
    kv_random *file;
    int rc = kv_env_new_random(env, path, &file);
    if (rc != 0)
        return rc;
    /* Read by chunks until a short read: the size at open is only a hint
     * (the file may be growing). */
    size_t chunk = file->size > 0 && file->size < (1u << 20) ? (size_t)file->size + 1 : 1u << 20;
    for (;;) {
        kv_buf_reserve(out, out->size + chunk);
        size_t got = 0;
        rc = kv_random_read(file, out->size, chunk, out->data + out->size, &got);
        if (rc != 0)
            break;
        out->size += got;
        if (got < chunk)
            break;
    }
    kv_random_close(file);
    return rc;
}

/* The directory part of a path ("." when there is none), malloc'd. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return kv_strdup(".");
    if (slash == path)
        return kv_strdup("/");
    return kv_memdup(path, (size_t)(slash - path));
}

int kv_env_write_file_synced(kv_env *env, const char *path, kv_slice contents)
{
    char *tmp_path = kv_sprintf("%s.tmp", path);
    char *dir = dir_of(path);
    kv_writable *file;
    int rc = kv_env_new_writable(env, tmp_path, 0, &file);
    if (rc == 0) {
        rc = kv_writable_append(file, contents.data, contents.size);
        if (rc == 0)
            rc = kv_writable_sync(file);
        int close_rc = kv_writable_close(file);
        if (rc == 0)
            rc = close_rc;
        if (rc == 0)
            rc = kv_env_rename(env, tmp_path, path);
        if (rc != 0) {
            /* Best effort; the caller wants the first error's message. */
            char message[512];
            kv_error_copy(message, sizeof(message));
            env->ops->remove(env, tmp_path);
            kv_error(rc, "%s", message);
        }
        if (rc == 0)
            rc = kv_env_sync_dir(env, dir);
    }
    free(dir);
    free(tmp_path);
    return rc;
}

int kv_env_rename(kv_env *env, const char *from, const char *to)
{
    return env->ops->rename(env, from, to);
}

int kv_env_remove(kv_env *env, const char *path)
{
    return env->ops->remove(env, path);
}

int kv_env_sync_dir(kv_env *env, const char *dir)
{
    return env->ops->sync_dir(env, dir);
}

int kv_env_sync_file(kv_env *env, const char *path)
{
    return env->ops->sync_file(env, path);
}

int kv_env_truncate(kv_env *env, const char *path, uint64_t size)
{
    return env->ops->truncate(env, path, size);
}

/* ---- direct functions (the real file system, whatever the env) ---- */

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the entries of dir except "." and "..", sorted by name. */
int kv_env_list_dir(const char *dir, char ***names, size_t *count)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir); /* glibc opens it O_CLOEXEC */
    if (d == NULL)
        return kv_error_errno(errno, "opendir", dir);
    char **list = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        errno = 0;
        struct dirent *entry = readdir(d);
        if (entry == NULL) {
            if (errno != 0) {
                int rc = kv_error_errno(errno, "readdir", dir);
                closedir(d);
                kv_env_free_names(list, n);
                return rc;
            }
            break;
        }
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            list = kv_realloc(list, cap * sizeof(*list));
        }
        list[n++] = kv_strdup(entry->d_name);
    }
    closedir(d);
    if (n > 1)
        qsort(list, n, sizeof(*list), compare_names);
    *names = list;
    *count = n;
    return 0;
}

void kv_env_free_names(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

int kv_env_mkdir(const char *dir)
{
    if (mkdir(dir, 0755) == 0)
        return 0;
    int err = errno;
    struct stat st;
    if (err == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (err == EEXIST)
        return kv_error(KV_IO_ERROR, "mkdir: %s: exists and is not a directory", dir);
    return kv_error_errno(err, "mkdir", dir);
}

bool kv_env_file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

int kv_env_file_size(const char *path, uint64_t *size)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        *size = 0;
        return kv_error_errno(errno, "stat", path);
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

/* flock locks belong to the open file description, so a second open+flock
 * of the same LOCK fails even inside one process: opening one database twice
 * in a process is refused like a second process is. The lock is released by
 * the kernel if the process dies. */
int kv_env_lock_file(const char *path, kv_file_lock **out)
{
    *out = NULL;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return kv_error_errno(errno, "open lock file", path);
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        if (err == EINTR)
            continue;
        close(fd);
        if (err == EWOULDBLOCK)
            return kv_error(KV_BUSY,
                            "%s: held by another process (is another lsmfs or kv program "
                            "using this directory?)",
                            path);
        return kv_error_errno(err, "flock", path);
    }
    kv_file_lock *lock = kv_malloc(sizeof(*lock));
    lock->fd = fd;
    lock->path = kv_strdup(path);
    *out = lock;
    return 0;
}

void kv_env_unlock_file(kv_file_lock *lock)
{
    if (lock == NULL)
        return;
    flock(lock->fd, LOCK_UN);
    close(lock->fd);
    free(lock->path);
    free(lock);
}

uint64_t kv_env_now_micros(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
