/*
 * env_fault.c — the fault-injecting kv_env for tests (env_fault.h). Data
 * really goes to the base (posix) env; this env keeps two kinds of records
 * so that kv_env_fault_power_cut() can take back what a power cut would:
 *
 *  - file records: for each file written through this env, how many bytes of
 *    its data are durable (synced), and how far zeros written past them
 *    (kv_writable_prezero) durably extend the file. A power cut truncates
 *    the file to its durable data, then extends it with zeros to that.
 *    Files the env never wrote (existing files opened for reading) have no
 *    record and are durable as they are.
 *
 *  - name records: for each path whose directory entry changed (created,
 *    renamed onto, renamed away) since its directory was last synced, what
 *    the durable entry is: "absent", or "a file with these contents". A
 *    power cut puts that back: it deletes files whose creation was never made
 *    durable (even when their data was fsynced, as in LevelDB's
 *    FaultInjectionTestEnv) and undoes renames: the target gets its old
 *    contents back (or disappears) and the source reappears with the
 *    contents it had durably at the time of the rename. A sync of the
 *    directory drops its name records: the entries are now durable.
 *
 * Not simulated: removals are durable at once (a removed file does not come
 * back, as in LevelDB and RocksDB); data written after a rename to the
 * source's inode is not reflected in a restored source name; the state of
 * the real directory itself (mkdir) is assumed durable.
 *
 * One mutex guards all records, counters and fault settings. Records are
 * keyed by a normalized path (repeated and trailing slashes removed), so
 * "db//x" and "db/x" are one file.
 */
#include "env_fault.h"

#include "error.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct fault_file {
    uint64_t id; /* stored in kv_writable.env_state, survives renames */
    char *path;
    uint64_t synced;       /* bytes of data durable */
    uint64_t synced_zeros; /* durable size when zeros follow them, else 0 */
};

struct fault_name {
    char *path;
    char *dir;
    bool existed;    /* durable entry: a file (true) or nothing (false) */
    kv_buf contents; /* the durable file's contents, when existed */
};

struct fault_env {
    kv_env env; /* the handle given out; env.state points back here */
    kv_env *base;
    pthread_mutex_t mu;

    struct fault_file *files;
    size_t file_count, file_cap;
    uint64_t next_file_id;
    struct fault_name *names;
    size_t name_count, name_cap;

    uint64_t space_left; /* UINT64_MAX: unlimited */
    uint32_t error_one_in;
    uint64_t rng_state;
    bool active;

    uint64_t syncs;
    uint64_t bytes_written;
};

static struct fault_env *fault_of(kv_env *env)
{
    return env->state;
}

/* "a//b/c/" -> "a/b/c" (malloc'd). */
static char *normalize_path(const char *path)
{
    size_t n = strlen(path);
    char *out = kv_malloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (path[i] == '/' && o > 0 && out[o - 1] == '/')
            continue;
        out[o++] = path[i];
    }
    while (o > 1 && out[o - 1] == '/')
        o--;
    out[o] = '\0';
    return out;
}

/* Directory part of a normalized path ("." when none). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return kv_strdup(".");
    if (slash == path)
        return kv_strdup("/");
    return kv_memdup(path, (size_t)(slash - path));
}

/* ---- records (caller holds mu) ---- */

static struct fault_file *find_file_by_path(struct fault_env *fe, const char *path)
{
    for (size_t i = 0; i < fe->file_count; i++)
        if (strcmp(fe->files[i].path, path) == 0)
            return &fe->files[i];
    return NULL;
}

static struct fault_file *find_file_by_id(struct fault_env *fe, uint64_t id)
{
    for (size_t i = 0; i < fe->file_count; i++)
        if (fe->files[i].id == id)
            return &fe->files[i];
    return NULL;
}

static struct fault_file *add_file(struct fault_env *fe, const char *path)
{
    if (fe->file_count == fe->file_cap) {
        fe->file_cap = fe->file_cap ? fe->file_cap * 2 : 16;
        fe->files = kv_realloc(fe->files, fe->file_cap * sizeof(*fe->files));
    }
    struct fault_file *f = &fe->files[fe->file_count++];
    f->id = ++fe->next_file_id;
    f->path = kv_strdup(path);
    f->synced = 0;
    f->synced_zeros = 0;
    return f;
}

static void drop_file(struct fault_env *fe, struct fault_file *f)
{
    free(f->path);
    *f = fe->files[--fe->file_count];
}

static struct fault_name *find_name(struct fault_env *fe, const char *path)
{
    for (size_t i = 0; i < fe->name_count; i++)
        if (strcmp(fe->names[i].path, path) == 0)
            return &fe->names[i];
    return NULL;
}

static struct fault_name *add_name(struct fault_env *fe, const char *path, bool existed)
{
    assert(find_name(fe, path) == NULL);
    if (fe->name_count == fe->name_cap) {
        fe->name_cap = fe->name_cap ? fe->name_cap * 2 : 16;
        fe->names = kv_realloc(fe->names, fe->name_cap * sizeof(*fe->names));
    }
    struct fault_name *n = &fe->names[fe->name_count++];
    memset(n, 0, sizeof(*n));
    n->path = kv_strdup(path);
    n->dir = dir_of(path);
    n->existed = existed;
    return n;
}

static void drop_name(struct fault_env *fe, struct fault_name *n)
{
    free(n->path);
    free(n->dir);
    kv_buf_free(&n->contents);
    *n = fe->names[--fe->name_count];
}

static void drop_all_records(struct fault_env *fe)
{
    while (fe->file_count > 0)
        drop_file(fe, &fe->files[fe->file_count - 1]);
    while (fe->name_count > 0)
        drop_name(fe, &fe->names[fe->name_count - 1]);
}

/* The durable contents of the file now at `path`: its synced prefix if the
 * env wrote it, all of it otherwise. */
static int read_durable_contents(struct fault_env *fe, const char *path, kv_buf *out)
{
    int rc = kv_env_read_file(fe->base, path, out);
    if (rc != 0)
        return rc;
    struct fault_file *f = find_file_by_path(fe, path);
    if (f != NULL && f->synced < out->size)
        out->size = (size_t)f->synced;
    return 0;
}

/* ---- injected faults (caller holds mu) ---- */

static bool random_error(struct fault_env *fe)
{
    if (fe->error_one_in == 0)
        return false;
    /* splitmix64: reproducible from the seed, good enough for coin flips */
    uint64_t z = (fe->rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return z % fe->error_one_in == 0;
}

/* 0, or the error a dead disk or an unlucky draw gives to `what` on path. */
static int injected_error(struct fault_env *fe, const char *what, const char *path)
{
    if (!fe->active)
        return kv_error(KV_IO_ERROR, "%s: %s: file system inactive (fault injection)", what, path);
    if (random_error(fe))
        return kv_error(KV_IO_ERROR, "%s: %s: injected I/O error (fault injection)", what, path);
    return 0;
}

/* ---- ops ---- */

static int fault_new_writable(kv_env *env, const char *path, size_t buffer_size, kv_writable **out)
{
    struct fault_env *fe = fault_of(env);
    *out = NULL;
    char *norm = normalize_path(path);
    pthread_mutex_lock(&fe->mu);
    int rc = injected_error(fe, "create", path);
    if (rc == 0) {
        bool existed = kv_env_file_exists(path);
        rc = fe->base->ops->new_writable(fe->base, path, buffer_size, out);
        if (rc == 0) {
            /* O_TRUNC: whatever the file held is no longer durable. */
            struct fault_file *f = find_file_by_path(fe, norm);
            if (f == NULL)
                f = add_file(fe, norm);
            f->synced = 0;
            f->synced_zeros = 0;
            (*out)->env = env;
            (*out)->env_state = (void *)(uintptr_t)f->id;
            if (!existed && find_name(fe, norm) == NULL)
                add_name(fe, norm, false);
        }
    }
    pthread_mutex_unlock(&fe->mu);
    free(norm);
    return rc;
}

/* The budget is taken before a write and the write is refused whole when
 * it does not fit, so a full disk never leaves a partial record. */
static int take_space(struct fault_env *fe, const char *what, const kv_writable *file,
                      uint64_t offset, uint64_t n)
{
    pthread_mutex_lock(&fe->mu);
    int rc = injected_error(fe, "write", file->path);
    if (rc == 0 && fe->space_left != UINT64_MAX) {
        if (n > fe->space_left)
            rc = kv_error(KV_NO_SPACE,
                          "%s at offset %llu: %s: no space left on device (fault injection: "
                          "%llu bytes, %llu left)",
                          what, (unsigned long long)offset, file->path, (unsigned long long)n,
                          (unsigned long long)fe->space_left);
        else
            fe->space_left -= n;
    }
    pthread_mutex_unlock(&fe->mu);
    return rc;
}

/* After the write: counts what it wrote and gives back what it did not. */
static void settle_space(struct fault_env *fe, uint64_t taken, uint64_t written)
{
    pthread_mutex_lock(&fe->mu);
    fe->bytes_written += written;
    if (fe->space_left != UINT64_MAX)
        fe->space_left += taken - written;
    pthread_mutex_unlock(&fe->mu);
}

static int fault_writable_write(kv_writable *file, const char *data, size_t n)
{
    struct fault_env *fe = fault_of(file->env);
    int rc = take_space(fe, "write", file, file->flushed, n);
    if (rc != 0)
        return rc;
    uint64_t before = file->flushed;
    rc = fe->base->ops->writable_write(file, data, n);
    settle_space(fe, n, file->flushed - before);
    return rc;
}

static int fault_writable_sync(kv_writable *file)
{
    struct fault_env *fe = fault_of(file->env);
    pthread_mutex_lock(&fe->mu);
    int rc = injected_error(fe, "fdatasync", file->path);
    pthread_mutex_unlock(&fe->mu);
    if (rc != 0)
        return rc;
    rc = fe->base->ops->writable_sync(file);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&fe->mu);
    fe->syncs++;
    /* Found by id, so a file renamed while open is still followed. No
     * record: the tracking was reset by a power cut while this handle was
     * open (a misuse); nothing to remember. */
    struct fault_file *f = find_file_by_id(fe, (uint64_t)(uintptr_t)file->env_state);
    if (f != NULL && f->synced < file->flushed)
        f->synced = file->flushed;
    if (f != NULL && f->synced_zeros < file->zeroed_end)
        f->synced_zeros = file->zeroed_end;
    pthread_mutex_unlock(&fe->mu);
    return 0;
}

/* Zeros take space like data, and are durable at the next sync. */
static int fault_writable_prezero(kv_writable *file, uint64_t end)
{
    struct fault_env *fe = fault_of(file->env);
    uint64_t from = file->zeroed_end > file->flushed ? file->zeroed_end : file->flushed;
    if (end <= from)
        return 0;
    uint64_t n = end - from;
    int rc = take_space(fe, "write (zeros)", file, from, n);
    if (rc != 0)
        return rc;
    rc = fe->base->ops->writable_prezero(file, end);
    settle_space(fe, n, file->zeroed_end > from ? file->zeroed_end - from : 0);
    return rc;
}

static int fault_writable_close(kv_writable *file)
{
    struct fault_env *fe = fault_of(file->env);
    return fe->base->ops->writable_close(file);
}

static int fault_new_random(kv_env *env, const char *path, kv_random **out)
{
    struct fault_env *fe = fault_of(env);
    int rc = fe->base->ops->new_random(fe->base, path, out);
    if (rc == 0)
        (*out)->env = env;
    return rc;
}

static int fault_random_read(kv_random *file, uint64_t offset, size_t n, char *scratch, size_t *got)
{
    struct fault_env *fe = fault_of(file->env);
    return fe->base->ops->random_read(file, offset, n, scratch, got);
}

static void fault_random_close(kv_random *file)
{
    struct fault_env *fe = fault_of(file->env);
    fe->base->ops->random_close(file);
}

/* Before the first undurable change of a name, remember its durable state:
 * absent, or the file now there with its durable contents. Fills *pending
 * (to commit or discard) or leaves it empty when the name already has a
 * record, which holds the older, durable state. */
static int note_name_before_change(struct fault_env *fe, const char *path,
                                   struct fault_name *pending)
{
    memset(pending, 0, sizeof(*pending));
    if (find_name(fe, path) != NULL)
        return 0; /* the older record holds the durable state */
    pending->path = kv_strdup(path);
    pending->dir = dir_of(path);
    pending->existed = kv_env_file_exists(path);
    if (pending->existed)
        return read_durable_contents(fe, path, &pending->contents);
    return 0;
}

static void commit_name(struct fault_env *fe, struct fault_name *pending)
{
    if (pending->path == NULL)
        return;
    struct fault_name *n = add_name(fe, pending->path, pending->existed);
    n->contents = pending->contents;
    free(pending->path);
    free(pending->dir);
}

static void discard_name(struct fault_name *pending)
{
    free(pending->path);
    free(pending->dir);
    kv_buf_free(&pending->contents);
}

static int fault_rename(kv_env *env, const char *from, const char *to)
{
    struct fault_env *fe = fault_of(env);
    char *norm_from = normalize_path(from);
    char *norm_to = normalize_path(to);
    struct fault_name from_name, to_name;
    memset(&from_name, 0, sizeof(from_name));
    memset(&to_name, 0, sizeof(to_name));
    pthread_mutex_lock(&fe->mu);
    bool onto_itself = strcmp(norm_from, norm_to) == 0; /* rename(2) then does nothing */
    int rc = injected_error(fe, "rename", from);
    if (rc == 0 && !onto_itself)
        rc = note_name_before_change(fe, norm_to, &to_name);
    if (rc == 0 && !onto_itself)
        rc = note_name_before_change(fe, norm_from, &from_name);
    if (rc == 0)
        rc = fe->base->ops->rename(fe->base, from, to);
    if (rc == 0 && !onto_itself) {
        commit_name(fe, &to_name);
        commit_name(fe, &from_name);
        struct fault_file *old_target = find_file_by_path(fe, norm_to);
        if (old_target != NULL)
            drop_file(fe, old_target);
        struct fault_file *moved = find_file_by_path(fe, norm_from);
        if (moved != NULL) {
            free(moved->path);
            moved->path = kv_strdup(norm_to);
        }
    } else {
        discard_name(&to_name);
        discard_name(&from_name);
    }
    pthread_mutex_unlock(&fe->mu);
    free(norm_from);
    free(norm_to);
    return rc;
}

/* A removal is durable at once (see the top comment); a name record of the
 * path stays, so a file created or renamed away since the last directory
 * sync is still put back as it was durably. */
static int fault_remove(kv_env *env, const char *path)
{
    struct fault_env *fe = fault_of(env);
    char *norm = normalize_path(path);
    pthread_mutex_lock(&fe->mu);
    int rc = injected_error(fe, "remove", path);
    if (rc == 0)
        rc = fe->base->ops->remove(fe->base, path);
    if (rc == 0) {
        struct fault_file *f = find_file_by_path(fe, norm);
        if (f != NULL)
            drop_file(fe, f);
    }
    pthread_mutex_unlock(&fe->mu);
    free(norm);
    return rc;
}

static int fault_sync_dir(kv_env *env, const char *dir)
{
    struct fault_env *fe = fault_of(env);
    pthread_mutex_lock(&fe->mu);
    int rc = injected_error(fe, "fsync directory", dir);
    pthread_mutex_unlock(&fe->mu);
    if (rc != 0)
        return rc;
    rc = fe->base->ops->sync_dir(fe->base, dir);
    if (rc != 0)
        return rc;
    char *norm = normalize_path(dir);
    pthread_mutex_lock(&fe->mu);
    fe->syncs++;
    for (size_t i = 0; i < fe->name_count;) {
        if (strcmp(fe->names[i].dir, norm) == 0)
            drop_name(fe, &fe->names[i]); /* moves the last record to i */
        else
            i++;
    }
    pthread_mutex_unlock(&fe->mu);
    free(norm);
    return 0;
}

/* Truncation changes data, which is durable only after a sync: bytes below
 * min(old durable length, new size) stay durable, nothing more. */
static int fault_truncate(kv_env *env, const char *path, uint64_t size)
{
    struct fault_env *fe = fault_of(env);
    char *norm = normalize_path(path);
    pthread_mutex_lock(&fe->mu);
    int rc = injected_error(fe, "truncate", path);
    uint64_t old_size = 0;
    struct fault_file *f = find_file_by_path(fe, norm);
    if (rc == 0 && f == NULL)
        rc = kv_env_file_size(path, &old_size);
    if (rc == 0)
        rc = fe->base->ops->truncate(fe->base, path, size);
    if (rc == 0) {
        if (f == NULL) {
            f = add_file(fe, norm);
            f->synced = old_size;
        }
        if (f->synced > size)
            f->synced = size;
        if (f->synced_zeros > size)
            f->synced_zeros = size;
    }
    pthread_mutex_unlock(&fe->mu);
    free(norm);
    return rc;
}

static int fault_sync_file(kv_env *env, const char *path)
{
    struct fault_env *fe = fault_of(env);
    char *norm = normalize_path(path);
    pthread_mutex_lock(&fe->mu);
    int rc = injected_error(fe, "sync", path);
    if (rc == 0)
        rc = fe->base->ops->sync_file(fe->base, path);
    uint64_t size = 0;
    if (rc == 0)
        rc = kv_env_file_size(path, &size);
    if (rc == 0) {
        struct fault_file *f = find_file_by_path(fe, norm);
        if (f != NULL) /* a file not tracked counts as synced already */
            f->synced = size;
    }
    pthread_mutex_unlock(&fe->mu);
    free(norm);
    return rc;
}

static const struct kv_env_ops fault_ops = {
    .new_writable = fault_new_writable,
    .writable_write = fault_writable_write,
    .writable_sync = fault_writable_sync,
    .writable_prezero = fault_writable_prezero,
    .writable_close = fault_writable_close,
    .new_random = fault_new_random,
    .random_read = fault_random_read,
    .random_close = fault_random_close,
    .rename = fault_rename,
    .remove = fault_remove,
    .sync_dir = fault_sync_dir,
    .truncate = fault_truncate,
    .sync_file = fault_sync_file,
};

/* ---- public ---- */

kv_env *kv_env_fault_create(void)
{
    struct fault_env *fe = kv_calloc(1, sizeof(*fe));
    fe->env.ops = &fault_ops;
    fe->env.state = fe;
    fe->base = kv_env_posix();
    pthread_mutex_init(&fe->mu, NULL);
    fe->space_left = UINT64_MAX;
    fe->active = true;
    return &fe->env;
}

void kv_env_fault_destroy(kv_env *env)
{
    if (env == NULL)
        return;
    struct fault_env *fe = fault_of(env);
    drop_all_records(fe);
    free(fe->files);
    free(fe->names);
    pthread_mutex_destroy(&fe->mu);
    free(fe);
}

/* Writes a name's durable contents back (through the base env, not
 * counted, never failed by injection). */
static int restore_file(struct fault_env *fe, const char *path, kv_slice contents)
{
    kv_writable *file;
    int rc = fe->base->ops->new_writable(fe->base, path, 0, &file);
    if (rc != 0)
        return rc;
    rc = kv_writable_append(file, contents.data, contents.size);
    int close_rc = kv_writable_close(file);
    return rc != 0 ? rc : close_rc;
}

int kv_env_fault_power_cut(kv_env *env)
{
    struct fault_env *fe = fault_of(env);
    int first_rc = 0;
    pthread_mutex_lock(&fe->mu);
    /* Data first: each file loses what was not synced. */
    for (size_t i = 0; i < fe->file_count; i++) {
        struct fault_file *f = &fe->files[i];
        struct stat st;
        if (stat(f->path, &st) != 0)
            continue; /* removed since */
        if ((uint64_t)st.st_size > f->synced) {
            int rc = fe->base->ops->truncate(fe->base, f->path, f->synced);
            /* Zeros synced past the data stay: writes over them since the
             * sync are lost, not the file's size. */
            if (rc == 0 && f->synced_zeros > f->synced)
                rc = fe->base->ops->truncate(fe->base, f->path, f->synced_zeros);
            if (rc != 0 && first_rc == 0)
                first_rc = rc;
        }
    }
    /* Then names: every entry goes back to its durable state. */
    for (size_t i = 0; i < fe->name_count; i++) {
        struct fault_name *n = &fe->names[i];
        int rc = 0;
        if (n->existed)
            rc = restore_file(fe, n->path, kv_buf_slice(&n->contents));
        else if (kv_env_file_exists(n->path))
            rc = fe->base->ops->remove(fe->base, n->path);
        if (rc != 0 && first_rc == 0)
            first_rc = rc;
    }
    /* What is on disk now is exactly the durable state. */
    drop_all_records(fe);
    pthread_mutex_unlock(&fe->mu);
    return first_rc;
}

void kv_env_fault_set_space_budget(kv_env *env, uint64_t bytes)
{
    struct fault_env *fe = fault_of(env);
    pthread_mutex_lock(&fe->mu);
    fe->space_left = bytes;
    pthread_mutex_unlock(&fe->mu);
}

void kv_env_fault_set_error_rate(kv_env *env, uint32_t one_in, uint64_t seed)
{
    struct fault_env *fe = fault_of(env);
    pthread_mutex_lock(&fe->mu);
    fe->error_one_in = one_in;
    fe->rng_state = seed;
    pthread_mutex_unlock(&fe->mu);
}

void kv_env_fault_set_filesystem_active(kv_env *env, bool active)
{
    struct fault_env *fe = fault_of(env);
    pthread_mutex_lock(&fe->mu);
    fe->active = active;
    pthread_mutex_unlock(&fe->mu);
}

uint64_t kv_env_fault_syncs(kv_env *env)
{
    struct fault_env *fe = fault_of(env);
    pthread_mutex_lock(&fe->mu);
    uint64_t syncs = fe->syncs;
    pthread_mutex_unlock(&fe->mu);
    return syncs;
}

uint64_t kv_env_fault_bytes_written(kv_env *env)
{
    struct fault_env *fe = fault_of(env);
    pthread_mutex_lock(&fe->mu);
    uint64_t bytes = fe->bytes_written;
    pthread_mutex_unlock(&fe->mu);
    return bytes;
}
