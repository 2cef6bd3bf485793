/*
 * fuzz_env.c — the in-memory kv_env of the fuzz targets (fuzz_env.h).
 *
 * A file is a kv_buf in a small array searched linearly: a fuzz input
 * involves a handful of files. Writers append to the buffer directly
 * (kv_writable's own buffering still happens in env_posix.c's generic
 * code); readers get a private exact-size copy taken at open, which also
 * gives them the immutability a real reader may assume of a table file.
 */
#include "fuzz_env.h"

#include "error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct memory_file {
    char *path;
    kv_buf contents;
} memory_file;

typedef struct memory_fs {
    memory_file *files;
    size_t count, cap;
} memory_fs;

static memory_fs *fs_of(kv_env *env)
{
    return env->state;
}

static memory_file *find_file(memory_fs *fs, const char *path)
{
    for (size_t i = 0; i < fs->count; i++)
        if (strcmp(fs->files[i].path, path) == 0)
            return &fs->files[i];
    return NULL;
}

/* The file `path`, created empty when missing. */
static memory_file *find_or_create_file(memory_fs *fs, const char *path)
{
    memory_file *file = find_file(fs, path);
    if (file != NULL)
        return file;
    if (fs->count == fs->cap) {
        fs->cap = fs->cap ? 2 * fs->cap : 8;
        fs->files = kv_realloc(fs->files, fs->cap * sizeof(*fs->files));
    }
    file = &fs->files[fs->count++];
    file->path = kv_strdup(path);
    memset(&file->contents, 0, sizeof(file->contents));
    return file;
}

static void remove_file(memory_fs *fs, memory_file *file)
{
    free(file->path);
    kv_buf_free(&file->contents);
    *file = fs->files[--fs->count];
}

static bool is_table_path(const char *path)
{
    size_t len = strlen(path);
    return len > 4 && strcmp(path + len - 4, ".sst") == 0;
}

/* ---- writable files ---- */

static int memory_new_writable(kv_env *env, const char *path, size_t buffer_size, kv_writable **out)
{
    memory_file *target = find_or_create_file(fs_of(env), path);
    kv_buf_clear(&target->contents);
    kv_writable *file = kv_calloc(1, sizeof(*file));
    file->env = env;
    file->path = kv_strdup(path);
    file->fd = -1;
    file->buffer_size = buffer_size;
    if (buffer_size > 0)
        kv_buf_reserve(&file->buffer, buffer_size);
    *out = file;
    return 0;
}

/* Appends to the file named by the handle; a file removed or renamed away
 * while open is recreated, which no caller of this env does. */
static int memory_writable_write(kv_writable *file, const char *data, size_t n)
{
    memory_file *target = find_or_create_file(fs_of(file->env), file->path);
    kv_buf_append(&target->contents, data, n);
    file->flushed += n;
    return 0;
}

static int memory_writable_sync(kv_writable *file)
{
    return 0;
}

static int memory_writable_close(kv_writable *file)
{
    kv_buf_free(&file->buffer);
    free(file->path);
    free(file);
    return 0;
}

/* ---- random-access files ---- */

static int memory_new_random(kv_env *env, const char *path, kv_random **out)
{
    *out = NULL;
    memory_file *source = find_file(fs_of(env), path);
    if (source == NULL)
        return kv_error_errno(ENOENT, "open for reading", path);
    kv_random *file = kv_calloc(1, sizeof(*file));
    file->env = env;
    file->path = kv_strdup(path);
    file->fd = -1;
    file->size = source->contents.size;
    /* Exactly size bytes (malloc(0) for an empty file), so that reading
     * past the end is a heap overflow ASan reports. */
    char *copy = kv_malloc(source->contents.size);
    if (source->contents.size > 0)
        memcpy(copy, source->contents.data, source->contents.size);
    file->env_state = copy;
    if (file->size > 0 && is_table_path(path))
        file->map = copy;
    *out = file;
    return 0;
}

static int memory_random_read(kv_random *file, uint64_t offset, size_t n, char *scratch,
                              size_t *got)
{
    size_t available = offset >= file->size ? 0 : (size_t)(file->size - offset);
    size_t count = n < available ? n : available;
    if (count > 0)
        memcpy(scratch, (const char *)file->env_state + offset, count);
    *got = count;
    return 0;
}

static void memory_random_close(kv_random *file)
{
    free(file->env_state);
    free(file->path);
    free(file);
}

/* ---- directory operations ---- */

static int memory_rename(kv_env *env, const char *from, const char *to)
{
    memory_fs *fs = fs_of(env);
    memory_file *source = find_file(fs, from);
    if (source == NULL)
        return kv_error_errno(ENOENT, "rename", from);
    kv_buf contents = source->contents;
    memset(&source->contents, 0, sizeof(source->contents));
    remove_file(fs, source);
    memory_file *target = find_or_create_file(fs, to);
    kv_buf_free(&target->contents);
    target->contents = contents;
    return 0;
}

static int memory_remove(kv_env *env, const char *path)
{
    memory_fs *fs = fs_of(env);
    memory_file *file = find_file(fs, path);
    if (file == NULL)
        return kv_error_errno(ENOENT, "remove", path);
    remove_file(fs, file);
    return 0;
}

static int memory_sync_dir(kv_env *env, const char *dir)
{
    return 0;
}

static int memory_truncate(kv_env *env, const char *path, uint64_t size)
{
    memory_file *file = find_file(fs_of(env), path);
    if (file == NULL)
        return kv_error_errno(ENOENT, "truncate", path);
    size_t old_size = file->contents.size;
    kv_buf_resize(&file->contents, (size_t)size);
    if (size > old_size)
        memset(file->contents.data + old_size, 0, (size_t)size - old_size);
    return 0;
}

static int memory_sync_file(kv_env *env, const char *path)
{
    return find_file(fs_of(env), path) != NULL ? 0 : kv_error_errno(ENOENT, "sync", path);
}

static const struct kv_env_ops memory_ops = {
    .new_writable = memory_new_writable,
    .writable_write = memory_writable_write,
    .writable_sync = memory_writable_sync,
    .writable_close = memory_writable_close,
    .new_random = memory_new_random,
    .random_read = memory_random_read,
    .random_close = memory_random_close,
    .rename = memory_rename,
    .remove = memory_remove,
    .sync_dir = memory_sync_dir,
    .truncate = memory_truncate,
    .sync_file = memory_sync_file,
};

/* ---- public ---- */

kv_env *fuzz_env_create(void)
{
    kv_env *env = kv_calloc(1, sizeof(*env));
    env->ops = &memory_ops;
    env->state = kv_calloc(1, sizeof(memory_fs));
    return env;
}

void fuzz_env_destroy(kv_env *env)
{
    if (env == NULL)
        return;
    memory_fs *fs = fs_of(env);
    while (fs->count > 0)
        remove_file(fs, &fs->files[fs->count - 1]);
    free(fs->files);
    free(fs);
    free(env);
}

void fuzz_env_put_file(kv_env *env, const char *path, const void *data, size_t size)
{
    memory_file *file = find_or_create_file(fs_of(env), path);
    kv_buf_set(&file->contents, data, size);
}

bool fuzz_env_get_file(kv_env *env, const char *path, kv_slice *contents)
{
    memory_file *file = find_file(fs_of(env), path);
    if (file == NULL)
        return false;
    *contents = kv_buf_slice(&file->contents);
    return true;
}
