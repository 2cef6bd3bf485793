/*
 * test_crash_kill.c — lsmfs killed with SIGKILL in the middle of a mixed
 * workload, remounted, checked, and the workload continued on the same
 * store, cycle after cycle (50; KV_TEST_LONG=1: 1000; LSMFS_CRASH_CYCLES=N
 * overrides). tests/crash/README.md explains the checks in prose.
 *
 * Each cycle:
 *  1. Two worker processes run a random workload through the mount: create,
 *     write, append, truncate, rename (also over an existing file, also
 *     directories), link, unlink (also of open files: orphans), mkdir,
 *     rmdir, fsync, fdatasync, fsyncdir, syncfs, open, close — each in its
 *     own subtree (w0/, w1/) and in a shared directory (shared/, names
 *     prefixed by the worker). Every file's data is self-describing 8-byte
 *     words (file tag, write version, word index), so any byte read back
 *     says which write of which file put it there.
 *  2. Each worker logs every operation to a file outside the mount: a
 *     BEGIN record before the system call, END after it succeeded, FAILED
 *     with the errno if it failed (then it exits). After every
 *     fsync/fdatasync/fsyncdir/syncfs it also appends the synced objects'
 *     expected state (file: path, size, content hash; directory: its
 *     entries) to a sync log, with O_APPEND and fsync on the host file
 *     system.
 *  3. After 50..1500 ms (some cycles: the moment a large write or the
 *     fsync of a large file is in progress) the daemon gets SIGKILL, the
 *     dead mount is detached (fusermount3 -u -z), the workers see
 *     ENOTCONN/EIO and exit.
 *  4. The parent replays each log into a model of the worker's namespace
 *     and data: the state after every END-ed operation, and, when the last
 *     operation was in flight, also the state with it applied; the store
 *     must match one of the two (see check_model for exactly what is
 *     required). fsck runs on the data directory before the remount (see
 *     check_fsck_after_crash for what "clean" means), the daemon is
 *     started again, the tree is read back and checked, and the models are
 *     rebuilt from what was read so that the next cycle continues from it.
 *  Every 10 cycles the mount is unmounted cleanly (the daemon must exit 0,
 *  its log without sanitizer reports) and fsck must find the store clean
 *  with no problem at all; the mount then alternates between the writeback
 *  cache (lsmfs's default) and -o no_writeback_cache.
 *
 * What the durability contract promises and the checks use:
 *  - an operation lsmfs answered is in the WAL, and kill -9 loses none:
 *    every END-ed namespace change (create, mkdir, rename, link, unlink,
 *    rmdir, truncate) must be there, with the inode numbers the workers
 *    saw; an in-flight one may or may not be;
 *  - with the writeback cache, write() is answered by the kernel; the data
 *    reaches lsmfs when the kernel writes the pages back, at the latest at
 *    fsync or close (FUSE flush writes the dirty pages back and waits for
 *    lsmfs's answers). So after fsync/fdatasync/close of a file its data up
 *    to then must be there byte for byte; later writes may or may not be
 *    (any mixture of pages), but a present byte is always one the file held
 *    at some moment since then. Without the writeback cache a write is
 *    answered by lsmfs, so an END-ed write must be there too.
 *  - syncfs on FUSE writes the kernel's dirty pages back but sends nothing
 *    to the daemon, so it is not used as a data sync point of a file here.
 */
#include "mountutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsck.h"

#define WORKERS 2
#define DEFAULT_CYCLES 50
#define LONG_CYCLES 1000
#define CLEAN_REMOUNT_EVERY 10
#define MAX_FAILURES 5

#define MAX_NODES 64  /* inodes in one worker's model */
#define MAX_PATHS 128 /* names in one worker's model */
#define PATH_LEN 112  /* relative to the mount point, NUL included */
#define MAX_DEPTH 4   /* slashes in a path */
#define MAX_OPEN 12   /* descriptors a worker keeps open */
#define MAX_LINKS 5   /* names per file */
#define WORD 8        /* data is written and truncated in whole words */
#define MAX_FILE_BYTES (2u << 20)
#define WORKER_BYTES (6u << 20) /* all files of a worker together */
#define LARGE_WRITE (256u << 10)
#define MAX_WRITE (1u << 20)
#define MAX_LOST 1024
#define VERSION_MAX 0xfffffu

#define MOUNT_OPTIONS_WRITEBACK "write_buffer_size=256K"
#define MOUNT_OPTIONS_WRITETHROUGH "write_buffer_size=256K,no_writeback_cache"

/* ---- data words ---- */

/* The word at index `index` of a file with tag `uid` as written by its
 * write number `version`; never 0 (version >= 1). */
static uint64_t data_word(uint32_t uid, uint32_t version, uint64_t index)
{
    return ((uint64_t)(uid & 0xffffffu) << 40) | ((uint64_t)(version & VERSION_MAX) << 20) |
           (index & 0xfffffu);
}

static uint32_t word_uid(uint64_t word)
{
    return (uint32_t)(word >> 40) & 0xffffffu;
}
static uint32_t word_version(uint64_t word)
{
    return (uint32_t)(word >> 20) & VERSION_MAX;
}
static uint64_t word_index(uint64_t word)
{
    return word & 0xfffffu;
}

/* ---- operations and log records ---- */

enum op_kind {
    OP_NONE = 0,
    OP_CREATE,     /* path: new file, left open */
    OP_MKDIR,      /* path */
    OP_OPEN,       /* node (path: one of its names) */
    OP_CLOSE,      /* node */
    OP_WRITE,      /* node, offset, length, version: pwrite on the open descriptor */
    OP_APPEND,     /* node, path, offset (= size), length, version: open O_APPEND, write, close */
    OP_TRUNCATE,   /* node, length: ftruncate on the open descriptor */
    OP_OPEN_TRUNC, /* node, path: open O_TRUNC, close */
    OP_RENAME,     /* path -> path2 (path2 may be an existing file) */
    OP_LINK,       /* node, path -> path2 */
    OP_UNLINK,     /* path */
    OP_RMDIR,      /* path */
    OP_FSYNC,      /* node (length: its size, for the kill timing) */
    OP_FDATASYNC,  /* node */
    OP_FSYNCDIR,   /* path */
    OP_SYNCFS,
    OP_KINDS
};

static const char *op_names[OP_KINDS] = {
    "none",   "create",   "mkdir",      "open",     "close", "write",
    "append", "truncate", "open_trunc", "rename",   "link",  "unlink",
    "rmdir",  "fsync",    "fdatasync",  "fsyncdir", "syncfs"};

struct op {
    uint32_t kind;
    int32_t node;     /* the inode's slot in the model */
    uint32_t name_id; /* new names and tags: counters the op used (0: none) */
    uint32_t uid_id;
    uint32_t uid;     /* create: the file's data tag */
    uint32_t version; /* write, append */
    uint64_t offset, length;
    uint64_t ino; /* create, mkdir: the new inode number (END records only) */
    char path[PATH_LEN];
    char path2[PATH_LEN];
};

#define RECORD_MAGIC 0x6c736d63u
enum { REC_BEGIN = 'B', REC_END = 'E', REC_FAILED = 'X' };
/* error of a FAILED record when the kernel disagreed with the model (an
 * O_APPEND write that did not land at the model's size). */
#define ERROR_MODEL_MISMATCH 100000

struct record {
    uint32_t magic;
    uint32_t type;
    int32_t error;
    uint32_t unused;
    uint64_t seq;
    int64_t time_ns; /* CLOCK_MONOTONIC */
    struct op op;
};

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the model of one worker's part of the tree ---- */

struct node {
    bool used, is_dir, fixed, open;
    uint64_t ino;         /* 0: not known (a create in flight) */
    uint32_t uid;         /* tag of the words this file's writes put */
    uint32_t version;     /* highest write version so far */
    uint64_t size;        /* as the kernel sees it now */
    uint64_t floor;       /* the stored size is at least this... */
    uint64_t ceiling;     /* ...and at most this */
    size_t cap;           /* words allocated in the arrays below */
    uint64_t *cur;        /* the contents now */
    uint64_t *synced;     /* the contents certainly stored (at the last sync) */
    uint32_t *touched;    /* first write version since then that covered the word; 0: none */
    uint64_t data_seq;    /* last operation that changed the data or size */
    uint64_t entries_seq; /* directories: last operation that changed the entries */
};

struct name {
    bool used;
    int node;
    char path[PATH_LEN];
};

struct model {
    int worker;
    bool writeback;
    uint32_t next_name, next_uid;
    uint64_t seq;
    struct node nodes[MAX_NODES];
    struct name names[MAX_PATHS];
    /* inodes whose last name went away since the cycle began */
    uint64_t lost[MAX_LOST];
    int nlost;
    bool lost_overflow;
};

static void *must_realloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL && n > 0)
        abort();
    return q;
}

static void node_reserve(struct node *n, uint64_t words)
{
    if (words <= n->cap)
        return;
    size_t cap = n->cap ? n->cap : 512;
    while (cap < words)
        cap *= 2;
    n->cur = must_realloc(n->cur, cap * sizeof(uint64_t));
    n->synced = must_realloc(n->synced, cap * sizeof(uint64_t));
    n->touched = must_realloc(n->touched, cap * sizeof(uint32_t));
    memset(n->cur + n->cap, 0, (cap - n->cap) * sizeof(uint64_t));
    memset(n->synced + n->cap, 0, (cap - n->cap) * sizeof(uint64_t));
    memset(n->touched + n->cap, 0, (cap - n->cap) * sizeof(uint32_t));
    n->cap = cap;
}

static void node_clear(struct node *n)
{
    free(n->cur);
    free(n->synced);
    free(n->touched);
    memset(n, 0, sizeof(*n));
}

static void node_write(struct node *n, uint64_t offset, uint64_t length, uint32_t version)
{
    uint64_t first = offset / WORD, end = (offset + length) / WORD;
    node_reserve(n, end);
    for (uint64_t p = first; p < end; p++) {
        n->cur[p] = data_word(n->uid, version, p);
        if (n->touched[p] == 0)
            n->touched[p] = version;
    }
    if (offset + length > n->size)
        n->size = offset + length;
    if (n->size > n->ceiling)
        n->ceiling = n->size;
    if (version > n->version)
        n->version = version;
}

/* A truncate lsmfs answered: the size is exactly `size` in the store, the
 * words past it are gone (the kernel drops its pages past it too). */
static void node_truncate(struct node *n, uint64_t size)
{
    node_reserve(n, size / WORD); /* cur covers the whole size (zeros past the old end) */
    for (uint64_t p = size / WORD; p < n->cap; p++) {
        n->cur[p] = 0;
        n->synced[p] = 0;
        n->touched[p] = 0;
    }
    n->size = n->floor = n->ceiling = size;
}

/* Everything the file holds now is stored. */
static void node_sync(struct node *n)
{
    for (size_t p = 0; p < n->cap; p++) {
        n->synced[p] = n->cur[p];
        n->touched[p] = 0;
    }
    n->floor = n->ceiling = n->size;
}

static struct model *model_clone(const struct model *m)
{
    struct model *c = malloc(sizeof(*c));
    assert_non_null(c);
    *c = *m;
    for (int i = 0; i < MAX_NODES; i++) {
        struct node *n = &c->nodes[i];
        if (n->cap == 0)
            continue;
        n->cur = malloc(n->cap * sizeof(uint64_t));
        n->synced = malloc(n->cap * sizeof(uint64_t));
        n->touched = malloc(n->cap * sizeof(uint32_t));
        assert_true(n->cur != NULL && n->synced != NULL && n->touched != NULL);
        memcpy(n->cur, m->nodes[i].cur, n->cap * sizeof(uint64_t));
        memcpy(n->synced, m->nodes[i].synced, n->cap * sizeof(uint64_t));
        memcpy(n->touched, m->nodes[i].touched, n->cap * sizeof(uint32_t));
    }
    return c;
}

static void model_free(struct model *m)
{
    if (m == NULL)
        return;
    for (int i = 0; i < MAX_NODES; i++)
        node_clear(&m->nodes[i]);
    free(m);
}

static int name_find(const struct model *m, const char *path)
{
    for (int i = 0; i < MAX_PATHS; i++)
        if (m->names[i].used && strcmp(m->names[i].path, path) == 0)
            return i;
    return -1;
}

static void name_add(struct model *m, const char *path, int node)
{
    for (int i = 0; i < MAX_PATHS; i++) {
        if (!m->names[i].used) {
            m->names[i].used = true;
            m->names[i].node = node;
            snprintf(m->names[i].path, PATH_LEN, "%s", path);
            return;
        }
    }
    abort(); /* the workers never exceed MAX_PATHS */
}

static int node_name_count(const struct model *m, int node)
{
    int count = 0;
    for (int i = 0; i < MAX_PATHS; i++)
        count += m->names[i].used && m->names[i].node == node;
    return count;
}

static int node_first_name(const struct model *m, int node)
{
    for (int i = 0; i < MAX_PATHS; i++)
        if (m->names[i].used && m->names[i].node == node)
            return i;
    return -1;
}

static int node_by_ino(const struct model *m, uint64_t ino)
{
    for (int i = 0; i < MAX_NODES; i++)
        if (m->nodes[i].used && m->nodes[i].ino == ino)
            return i;
    return -1;
}

static int free_node_slot(const struct model *m)
{
    for (int i = 0; i < MAX_NODES; i++)
        if (!m->nodes[i].used)
            return i;
    return -1;
}

static int used_names(const struct model *m)
{
    int count = 0;
    for (int i = 0; i < MAX_PATHS; i++)
        count += m->names[i].used;
    return count;
}

/* dir of "a/b/c" is "a/b". */
static void parent_path(const char *path, char *out)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash != NULL ? (size_t)(slash - path) : 0;
    memcpy(out, path, n);
    out[n] = '\0';
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

static bool is_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && path[n] == '/';
}

static int depth_of(const char *path)
{
    int depth = 0;
    for (; *path; path++)
        depth += *path == '/';
    return depth;
}

/* Entries (and subdirectories) the model has directly in `dir`. */
static int dir_entries(const struct model *m, const char *dir, int *subdirs)
{
    int count = 0, dirs = 0;
    char parent[PATH_LEN];
    for (int i = 0; i < MAX_PATHS; i++) {
        if (!m->names[i].used)
            continue;
        parent_path(m->names[i].path, parent);
        if (strcmp(parent, dir) != 0)
            continue;
        count++;
        dirs += m->nodes[m->names[i].node].is_dir;
    }
    if (subdirs != NULL)
        *subdirs = dirs;
    return count;
}

static void touch_parent(struct model *m, const char *path, uint64_t seq)
{
    char parent[PATH_LEN];
    parent_path(path, parent);
    int i = name_find(m, parent);
    if (i >= 0)
        m->nodes[m->names[i].node].entries_seq = seq;
}

static void note_lost(struct model *m, uint64_t ino)
{
    if (ino == 0)
        return;
    if (m->nlost == MAX_LOST)
        m->lost_overflow = true;
    else
        m->lost[m->nlost++] = ino;
}

/* Removes name i; an inode left without names is gone unless a worker
 * still has it open (an unlinked open file). */
static void drop_name(struct model *m, int i)
{
    int node = m->names[i].node;
    m->names[i].used = false;
    if (node_name_count(m, node) > 0)
        return;
    note_lost(m, m->nodes[node].ino);
    if (!m->nodes[node].open || m->nodes[node].is_dir)
        node_clear(&m->nodes[node]);
}

static void model_rename(struct model *m, const char *from, const char *to, uint64_t seq)
{
    int src = name_find(m, from);
    if (src < 0)
        abort();
    int dst = name_find(m, to);
    if (dst >= 0)
        drop_name(m, dst);
    if (m->nodes[m->names[src].node].is_dir) {
        size_t from_len = strlen(from);
        for (int i = 0; i < MAX_PATHS; i++) {
            if (!m->names[i].used || !is_under(m->names[i].path, from))
                continue;
            char moved[PATH_LEN];
            snprintf(moved, sizeof(moved), "%s%s", to, m->names[i].path + from_len);
            snprintf(m->names[i].path, PATH_LEN, "%s", moved);
        }
    }
    snprintf(m->names[src].path, PATH_LEN, "%s", to);
    touch_parent(m, from, seq);
    touch_parent(m, to, seq);
}

/* The counters a BEGIN record used: the names and tags it took are spent
 * whether or not the operation happened. */
static void model_note_counters(struct model *m, const struct op *op)
{
    if (op->name_id != 0 && op->name_id >= m->next_name)
        m->next_name = op->name_id + 1;
    if (op->uid_id != 0 && op->uid_id >= m->next_uid)
        m->next_uid = op->uid_id + 1;
}

/* Applies an operation to the model. `answered`: the operation returned
 * success (false for an in-flight write applied as "may have happened"). */
static void model_apply(struct model *m, const struct op *op, uint64_t seq, bool answered)
{
    struct node *n = op->node >= 0 && op->node < MAX_NODES ? &m->nodes[op->node] : NULL;
    model_note_counters(m, op);
    m->seq = seq;
    switch (op->kind) {
    case OP_CREATE:
    case OP_MKDIR:
        node_clear(n);
        n->used = true;
        n->is_dir = op->kind == OP_MKDIR;
        n->open = op->kind == OP_CREATE;
        n->uid = op->uid;
        n->ino = op->ino;
        n->data_seq = n->entries_seq = seq;
        name_add(m, op->path, op->node);
        touch_parent(m, op->path, seq);
        break;
    case OP_OPEN:
        n->open = true;
        break;
    case OP_CLOSE:
        /* With the writeback cache, close writes the file's dirty pages
         * back and waits for lsmfs's answers (FUSE flush), so what the
         * file held is stored: kill -9 loses none of it. */
        if (answered)
            node_sync(n);
        n->open = false;
        if (node_name_count(m, op->node) == 0)
            node_clear(n);
        break;
    case OP_WRITE:
    case OP_APPEND:
        node_write(n, op->offset, op->length, op->version);
        n->data_seq = seq;
        /* Write-through: lsmfs answered this write. An append closes its
         * descriptor, which writes the pages back (see OP_CLOSE). */
        if (answered && (!m->writeback || op->kind == OP_APPEND))
            node_sync(n);
        break;
    case OP_TRUNCATE:
    case OP_OPEN_TRUNC:
        node_truncate(n, op->length);
        n->data_seq = seq;
        break;
    case OP_FSYNC:
    case OP_FDATASYNC:
        node_sync(n);
        break;
    case OP_RENAME:
        model_rename(m, op->path, op->path2, seq);
        break;
    case OP_LINK:
        name_add(m, op->path2, op->node);
        touch_parent(m, op->path2, seq);
        break;
    case OP_UNLINK:
    case OP_RMDIR: {
        int i = name_find(m, op->path);
        if (i < 0)
            abort();
        drop_name(m, i);
        touch_parent(m, op->path, seq);
        break;
    }
    default:
        break;
    }
}

/* ---- a worker ---- */

struct worker {
    struct model *m;
    int id;
    int root_fd, log_fd, sync_fd;
    int fds[MAX_NODES];
    kv_test_rng rng;
    bool heavy;
    volatile int *stop;
    uint64_t *buf;
};

static uint64_t rnd(struct worker *w, uint64_t n)
{
    return kv_test_rng_uniform(&w->rng, n);
}

static uint64_t total_bytes(const struct model *m)
{
    uint64_t total = 0;
    for (int i = 0; i < MAX_NODES; i++)
        if (m->nodes[i].used && !m->nodes[i].is_dir)
            total += m->nodes[i].size;
    return total;
}

static int open_count(const struct model *m)
{
    int count = 0;
    for (int i = 0; i < MAX_NODES; i++)
        count += m->nodes[i].used && m->nodes[i].open;
    return count;
}

/* A random name whose node matches: dirs and/or files, fixed ones or not. */
static int random_name(struct worker *w, bool dirs, bool files, bool fixed)
{
    int chosen = -1, seen = 0;
    for (int i = 0; i < MAX_PATHS; i++) {
        const struct name *nm = &w->m->names[i];
        if (!nm->used)
            continue;
        const struct node *n = &w->m->nodes[nm->node];
        if ((n->is_dir ? !dirs : !files) || (n->fixed && !fixed))
            continue;
        if (rnd(w, (uint64_t)++seen) == 0)
            chosen = i;
    }
    return chosen;
}

/* A random file node (also unlinked open ones). */
static int random_file_node(struct worker *w, bool open_only)
{
    int chosen = -1, seen = 0;
    for (int i = 0; i < MAX_NODES; i++) {
        const struct node *n = &w->m->nodes[i];
        if (!n->used || n->is_dir || (open_only && !n->open))
            continue;
        if (rnd(w, (uint64_t)++seen) == 0)
            chosen = i;
    }
    return chosen;
}

/* A new name of kind 'f' or 'd' in directory `dir`; false if too deep. */
static bool new_name_in(struct worker *w, const char *dir, char kind, char *out, struct op *op)
{
    if (depth_of(dir) + 1 > MAX_DEPTH)
        return false;
    uint32_t id = w->m->next_name;
    int n = strcmp(dir, "shared") == 0
                ? snprintf(out, PATH_LEN, "%s/w%d_%c%u", dir, w->id, kind, (unsigned)id)
                : snprintf(out, PATH_LEN, "%s/%c%u", dir, kind, (unsigned)id);
    if (n <= 0 || n >= PATH_LEN)
        return false;
    op->name_id = id;
    return true;
}

static uint64_t align_down(uint64_t v)
{
    return v / WORD * WORD;
}

/* A write length: mostly small, sometimes up to 128 KiB, sometimes large
 * (often in heavy cycles) to fill memtables and make flushes happen. */
static uint64_t write_length(struct worker *w)
{
    uint64_t r = rnd(w, 100);
    if (r < (w->heavy ? 45u : 4u))
        return LARGE_WRITE + align_down(rnd(w, MAX_WRITE - LARGE_WRITE + 1));
    if (r < (w->heavy ? 65u : 22u))
        return 4096 + align_down(rnd(w, 128 * 1024));
    return WORD + align_down(rnd(w, 8192));
}

/* An OPEN of `node` to do something on it next; false if impossible. */
static bool open_first(struct worker *w, int node, struct op *op)
{
    int name = node_first_name(w->m, node);
    if (name < 0 || open_count(w->m) >= MAX_OPEN)
        return false;
    op->kind = OP_OPEN;
    op->node = node;
    snprintf(op->path, PATH_LEN, "%s", w->m->names[name].path);
    return true;
}

/* Fills op with a valid operation of `kind` on the current model; false
 * if there is none (the caller picks another kind). */
static bool fill_op(struct worker *w, int kind, struct op *op)
{
    struct model *m = w->m;
    memset(op, 0, sizeof(*op));
    op->kind = (uint32_t)kind;
    op->node = -1;
    switch (kind) {
    case OP_CREATE:
    case OP_MKDIR: {
        int slot = free_node_slot(m);
        if (slot < 0 || slot >= MAX_NODES - 2 || used_names(m) >= MAX_PATHS - 8)
            return false;
        if (kind == OP_CREATE && open_count(m) >= MAX_OPEN)
            return false;
        int dir = random_name(w, true, false, true);
        if (dir < 0 ||
            !new_name_in(w, m->names[dir].path, kind == OP_CREATE ? 'f' : 'd', op->path, op))
            return false;
        op->node = slot;
        if (kind == OP_CREATE) {
            op->uid_id = m->next_uid;
            op->uid = m->next_uid * WORKERS + (uint32_t)w->id + 1;
            m->next_uid++;
        }
        m->next_name++;
        return true;
    }
    case OP_WRITE:
    case OP_APPEND: {
        int node = kind == OP_WRITE ? random_file_node(w, false) : -1;
        if (kind == OP_APPEND) {
            int name = random_name(w, false, true, false);
            if (name < 0)
                return false;
            node = m->names[name].node;
            snprintf(op->path, PATH_LEN, "%s", m->names[name].path);
        }
        if (node < 0)
            return false;
        struct node *n = &m->nodes[node];
        if (kind == OP_WRITE && !n->open)
            return open_first(w, node, op);
        if (n->version >= VERSION_MAX)
            return false;
        uint64_t length = write_length(w), offset;
        uint64_t r = rnd(w, 100);
        if (kind == OP_APPEND || r < 25)
            offset = n->size;
        else if (r < 85)
            offset = align_down(rnd(w, n->size + 1));
        else
            offset = n->size + align_down(rnd(w, 64 * 1024));
        if (offset >= MAX_FILE_BYTES)
            return false;
        if (offset + length > MAX_FILE_BYTES)
            length = MAX_FILE_BYTES - offset;
        if (length == 0)
            return false;
        uint64_t end = offset + length;
        if (end > n->size && total_bytes(m) + (end - n->size) > WORKER_BYTES)
            return false;
        op->node = node;
        op->offset = offset;
        op->length = length;
        op->version = n->version + 1;
        return true;
    }
    case OP_TRUNCATE: {
        int node = random_file_node(w, false);
        if (node < 0)
            return false;
        struct node *n = &m->nodes[node];
        if (!n->open)
            return open_first(w, node, op);
        uint64_t size = align_down(rnd(w, n->size + n->size / 2 + 4096));
        if (size > MAX_FILE_BYTES)
            size = MAX_FILE_BYTES;
        if (size > n->size && total_bytes(m) + (size - n->size) > WORKER_BYTES)
            return false;
        op->node = node;
        op->length = size;
        return true;
    }
    case OP_OPEN_TRUNC: {
        int name = random_name(w, false, true, false);
        if (name < 0)
            return false;
        op->node = m->names[name].node;
        snprintf(op->path, PATH_LEN, "%s", m->names[name].path);
        op->length = 0;
        return true;
    }
    case OP_RENAME: {
        int src = random_name(w, true, true, false);
        if (src < 0)
            return false;
        const char *from = m->names[src].path;
        const struct node *n = &m->nodes[m->names[src].node];
        snprintf(op->path, PATH_LEN, "%s", from);
        if (!n->is_dir && rnd(w, 100) < 30) {
            int dst = random_name(w, false, true, false);
            if (dst < 0 || m->names[dst].node == m->names[src].node)
                return false;
            snprintf(op->path2, PATH_LEN, "%s", m->names[dst].path);
            return true; /* replaces a file */
        }
        int dir = random_name(w, true, false, true);
        if (dir < 0)
            return false;
        const char *dir_path = m->names[dir].path;
        if (n->is_dir && (strcmp(dir_path, from) == 0 || is_under(dir_path, from)))
            return false;
        if (!new_name_in(w, dir_path, n->is_dir ? 'd' : 'f', op->path2, op))
            return false;
        if (n->is_dir) {
            /* Everything below must still fit the limits after the move. */
            size_t from_len = strlen(from), to_len = strlen(op->path2);
            int shift = depth_of(op->path2) - depth_of(from);
            for (int i = 0; i < MAX_PATHS; i++) {
                if (!m->names[i].used || !is_under(m->names[i].path, from))
                    continue;
                if (depth_of(m->names[i].path) + shift > MAX_DEPTH ||
                    strlen(m->names[i].path) - from_len + to_len >= PATH_LEN)
                    return false;
            }
        }
        m->next_name++;
        return true;
    }
    case OP_LINK: {
        int src = random_name(w, false, true, false);
        if (src < 0 || used_names(m) >= MAX_PATHS - 8)
            return false;
        int node = m->names[src].node;
        if (node_name_count(m, node) >= MAX_LINKS)
            return false;
        int dir = random_name(w, true, false, true);
        if (dir < 0 || !new_name_in(w, m->names[dir].path, 'f', op->path2, op))
            return false;
        op->node = node;
        snprintf(op->path, PATH_LEN, "%s", m->names[src].path);
        m->next_name++;
        return true;
    }
    case OP_UNLINK: {
        int name = random_name(w, false, true, false);
        if (name < 0)
            return false;
        op->node = m->names[name].node;
        snprintf(op->path, PATH_LEN, "%s", m->names[name].path);
        return true;
    }
    case OP_RMDIR: {
        int name = random_name(w, true, false, false);
        if (name < 0 || dir_entries(m, m->names[name].path, NULL) != 0)
            return false;
        op->node = m->names[name].node;
        snprintf(op->path, PATH_LEN, "%s", m->names[name].path);
        return true;
    }
    case OP_FSYNC:
    case OP_FDATASYNC: {
        int node = random_file_node(w, false);
        if (node < 0)
            return false;
        if (!m->nodes[node].open)
            return open_first(w, node, op);
        op->node = node;
        op->length = m->nodes[node].size;
        return true;
    }
    case OP_FSYNCDIR: {
        int name = random_name(w, true, false, true);
        if (name < 0)
            return false;
        op->node = m->names[name].node;
        snprintf(op->path, PATH_LEN, "%s", m->names[name].path);
        return true;
    }
    case OP_SYNCFS:
        return true;
    case OP_CLOSE: {
        int node = random_file_node(w, true);
        if (node < 0)
            return false;
        op->node = node;
        return true;
    }
    default:
        return false;
    }
}

/* Percent weights of the kinds. */
static const struct {
    int kind, weight, heavy_weight;
} op_weights[] = {
    {OP_CREATE, 9, 6},   {OP_MKDIR, 4, 2},      {OP_WRITE, 27, 34}, {OP_APPEND, 8, 8},
    {OP_TRUNCATE, 5, 4}, {OP_OPEN_TRUNC, 1, 1}, {OP_RENAME, 9, 6},  {OP_LINK, 4, 3},
    {OP_UNLINK, 7, 6},   {OP_RMDIR, 3, 2},      {OP_FSYNC, 9, 16},  {OP_FDATASYNC, 2, 3},
    {OP_FSYNCDIR, 4, 3}, {OP_SYNCFS, 1, 1},     {OP_CLOSE, 7, 5},
};

static void choose_op(struct worker *w, struct op *op)
{
    for (;;) {
        int total = 0;
        for (size_t i = 0; i < sizeof(op_weights) / sizeof(op_weights[0]); i++)
            total += w->heavy ? op_weights[i].heavy_weight : op_weights[i].weight;
        int r = (int)rnd(w, (uint64_t)total);
        for (size_t i = 0; i < sizeof(op_weights) / sizeof(op_weights[0]); i++) {
            r -= w->heavy ? op_weights[i].heavy_weight : op_weights[i].weight;
            if (r < 0) {
                if (fill_op(w, op_weights[i].kind, op))
                    return;
                break;
            }
        }
    }
}

static int write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t done = write(fd, p, n);
        if (done < 0 && errno == EINTR)
            continue;
        if (done <= 0)
            return -1;
        p += done;
        n -= (size_t)done;
    }
    return 0;
}

static void fill_words(struct worker *w, const struct op *op)
{
    const struct node *n = &w->m->nodes[op->node];
    uint64_t first = op->offset / WORD, count = op->length / WORD;
    for (uint64_t i = 0; i < count; i++)
        w->buf[i] = data_word(n->uid, op->version, first + i);
}

/* Writes length bytes of buf at offset (pwrite) or at the end (offset < 0).
 * Returns 0 or an errno; a short write is EIO. */
static int write_data(int fd, const void *buf, uint64_t length, int64_t offset)
{
    uint64_t done = 0;
    while (done < length) {
        ssize_t n = offset >= 0 ? pwrite(fd, (const char *)buf + done, length - done,
                                         (off_t)((uint64_t)offset + done))
                                : write(fd, (const char *)buf + done, length - done);
        if (n < 0)
            return errno;
        if (n == 0)
            return EIO;
        done += (uint64_t)n;
    }
    return 0;
}

/* Runs op through the mount. Returns 0 or the errno. */
static int perform(struct worker *w, struct op *op)
{
    struct stat st;
    int fd, rc = 0;
    int *slot = op->node >= 0 ? &w->fds[op->node] : NULL;
    switch (op->kind) {
    case OP_CREATE:
        fd = openat(w->root_fd, op->path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644);
        if (fd < 0)
            return errno;
        if (fstat(fd, &st) != 0) {
            rc = errno;
            close(fd);
            return rc;
        }
        op->ino = st.st_ino;
        *slot = fd;
        return 0;
    case OP_MKDIR:
        if (mkdirat(w->root_fd, op->path, 0755) != 0)
            return errno;
        if (fstatat(w->root_fd, op->path, &st, AT_SYMLINK_NOFOLLOW) != 0)
            return errno;
        op->ino = st.st_ino;
        return 0;
    case OP_OPEN:
        fd = openat(w->root_fd, op->path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            return errno;
        *slot = fd;
        return 0;
    case OP_CLOSE:
        rc = close(*slot) != 0 ? errno : 0;
        *slot = -1;
        return rc;
    case OP_WRITE:
        fill_words(w, op);
        return write_data(*slot, w->buf, op->length, (int64_t)op->offset);
    case OP_APPEND: {
        fd = openat(w->root_fd, op->path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd < 0)
            return errno;
        fill_words(w, op);
        rc = write_data(fd, w->buf, op->length, -1);
        off_t at = rc == 0 ? lseek(fd, 0, SEEK_CUR) : 0;
        if (close(fd) != 0 && rc == 0)
            rc = errno;
        if (rc == 0 && (uint64_t)at != op->offset + op->length)
            rc = ERROR_MODEL_MISMATCH; /* the kernel's end of file is not the model's */
        return rc;
    }
    case OP_TRUNCATE:
        return ftruncate(*slot, (off_t)op->length) != 0 ? errno : 0;
    case OP_OPEN_TRUNC:
        fd = openat(w->root_fd, op->path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (fd < 0)
            return errno;
        return close(fd) != 0 ? errno : 0;
    case OP_RENAME:
        return renameat(w->root_fd, op->path, w->root_fd, op->path2) != 0 ? errno : 0;
    case OP_LINK:
        return linkat(w->root_fd, op->path, w->root_fd, op->path2, 0) != 0 ? errno : 0;
    case OP_UNLINK:
        return unlinkat(w->root_fd, op->path, 0) != 0 ? errno : 0;
    case OP_RMDIR:
        return unlinkat(w->root_fd, op->path, AT_REMOVEDIR) != 0 ? errno : 0;
    case OP_FSYNC:
        return fsync(*slot) != 0 ? errno : 0;
    case OP_FDATASYNC:
        return fdatasync(*slot) != 0 ? errno : 0;
    case OP_FSYNCDIR:
        fd = openat(w->root_fd, op->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return errno;
        rc = fsync(fd) != 0 ? errno : 0;
        close(fd);
        return rc;
    case OP_SYNCFS:
        return syncfs(w->root_fd) != 0 ? errno : 0;
    default:
        return EINVAL;
    }
}

static void log_record(struct worker *w, int type, uint64_t seq, int error, const struct op *op)
{
    struct record rec;
    memset(&rec, 0, sizeof(rec));
    rec.magic = RECORD_MAGIC;
    rec.type = (uint32_t)type;
    rec.error = error;
    rec.seq = seq;
    rec.time_ns = monotonic_ns();
    rec.op = *op;
    if (write_all(w->log_fd, &rec, sizeof(rec)) != 0)
        _exit(3);
}

static int compare_cstrings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The names the model has directly in `dir`, sorted, joined by spaces
 * into out; returns how many. */
static int dir_names_text(const struct model *m, const char *dir, char *out, size_t len)
{
    const char *names[MAX_PATHS];
    int count = 0;
    char parent[PATH_LEN];
    for (int i = 0; i < MAX_PATHS; i++) {
        if (!m->names[i].used)
            continue;
        parent_path(m->names[i].path, parent);
        if (strcmp(parent, dir) == 0)
            names[count++] = base_name(m->names[i].path);
    }
    qsort(names, (size_t)count, sizeof(names[0]), compare_cstrings);
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < count && used < len; i++) {
        int n = snprintf(out + used, len - used, "%s%s", i ? " " : "", names[i]);
        if (n > 0)
            used += (size_t)n;
    }
    return count;
}

static uint64_t node_hash(const struct node *n)
{
    return lsmfs_fnv1a(LSMFS_FNV_SEED, n->cur, n->size);
}

/* After a sync: the expected state of what it synced, in the sync log
 * (O_APPEND, then fsync of the host file). */
static void log_sync(struct worker *w, const struct op *op, uint64_t seq)
{
    const struct model *m = w->m;
    static char line[16384], names[12288];
    int n = 0;
    if (op->kind == OP_FSYNC || op->kind == OP_FDATASYNC) {
        const struct node *node = &m->nodes[op->node];
        int name = node_first_name(m, op->node);
        if (name < 0)
            return; /* unlinked: nothing to find again */
        n = snprintf(line, sizeof(line),
                     "S %" PRIu64 " %" PRIu64 " %" PRIu64 " %016" PRIx64 " %s\n", seq, node->ino,
                     node->size, node_hash(node), m->names[name].path);
    } else if (op->kind == OP_FSYNCDIR) {
        int count = dir_names_text(m, op->path, names, sizeof(names));
        n = snprintf(line, sizeof(line), "D %" PRIu64 " %" PRIu64 " %s %d %s\n", seq,
                     m->nodes[op->node].ino, op->path, count, names);
    } else {
        n = snprintf(line, sizeof(line), "F %" PRIu64 "\n", seq);
    }
    if (n <= 0 || (size_t)n >= sizeof(line) || write_all(w->sync_fd, line, (size_t)n) != 0 ||
        fsync(w->sync_fd) != 0)
        _exit(3);
}

/* The worker process: runs operations until told to stop or one fails. */
static void worker_main(struct model *m, int id, const char *mountpoint, const char *log_path,
                        const char *sync_path, uint64_t seed, bool heavy, volatile int *stop)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    struct worker w = {.m = m, .id = id, .heavy = heavy, .stop = stop};
    kv_test_rng_init(&w.rng, seed);
    for (int i = 0; i < MAX_NODES; i++)
        w.fds[i] = -1;
    w.buf = malloc(MAX_WRITE);
    w.log_fd = open(log_path, O_WRONLY | O_APPEND | O_CLOEXEC);
    w.sync_fd = open(sync_path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (w.buf == NULL || w.log_fd < 0 || w.sync_fd < 0)
        _exit(3);
    struct op op;
    w.root_fd = open(mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w.root_fd < 0) {
        memset(&op, 0, sizeof(op));
        log_record(&w, REC_FAILED, m->seq + 1, errno, &op);
        _exit(0);
    }
    while (!*stop) {
        choose_op(&w, &op);
        uint64_t seq = m->seq + 1;
        log_record(&w, REC_BEGIN, seq, 0, &op);
        int error = perform(&w, &op);
        if (error != 0) {
            log_record(&w, REC_FAILED, seq, error, &op);
            _exit(0);
        }
        log_record(&w, REC_END, seq, 0, &op);
        model_apply(m, &op, seq, true);
        if (op.kind == OP_FSYNC || op.kind == OP_FDATASYNC || op.kind == OP_FSYNCDIR ||
            op.kind == OP_SYNCFS)
            log_sync(&w, &op, seq);
    }
    _exit(0);
}

/* ---- what the store holds ---- */

struct actual_entry {
    char path[PATH_LEN];
    bool is_dir;
    uint64_t ino, nlink, size;
    int file; /* index into files, or -1 */
};

struct actual_file {
    uint64_t ino, size;
    uint64_t *words;
};

struct actual {
    struct actual_entry *entries;
    int count, cap;
    struct actual_file *files;
    int nfiles, files_cap;
    char error[512]; /* a problem reading the tree */
};

static void actual_free(struct actual *a)
{
    for (int i = 0; i < a->nfiles; i++)
        free(a->files[i].words);
    free(a->files);
    free(a->entries);
    memset(a, 0, sizeof(*a));
}

static int actual_find(const struct actual *a, const char *path)
{
    for (int i = 0; i < a->count; i++)
        if (strcmp(a->entries[i].path, path) == 0)
            return i;
    return -1;
}

/* Reads a file's bytes (once per inode). */
static int actual_read_file(struct actual *a, const char *abs, uint64_t ino, uint64_t size)
{
    for (int i = 0; i < a->nfiles; i++)
        if (a->files[i].ino == ino)
            return i;
    if (a->nfiles == a->files_cap) {
        a->files_cap = a->files_cap ? a->files_cap * 2 : 32;
        a->files = must_realloc(a->files, (size_t)a->files_cap * sizeof(*a->files));
    }
    struct actual_file *f = &a->files[a->nfiles];
    f->ino = ino;
    f->size = size;
    f->words = calloc(size / WORD + 2, sizeof(uint64_t));
    assert_non_null(f->words);
    int fd = open(abs, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(a->error, sizeof(a->error), "open %.300s: %s", abs, strerror(errno));
        free(f->words);
        return -1;
    }
    uint64_t done = 0;
    for (;;) {
        ssize_t n = pread(fd, (char *)f->words + done, size + WORD - done, (off_t)done);
        if (n < 0) {
            snprintf(a->error, sizeof(a->error), "read %.300s at %" PRIu64 ": %s", abs, done,
                     strerror(errno));
            break;
        }
        if (n == 0)
            break;
        done += (uint64_t)n;
        if (done > size)
            break;
    }
    close(fd);
    if (a->error[0] == '\0' && done != size)
        snprintf(a->error, sizeof(a->error), "%.300s: read %" PRIu64 " bytes, size %" PRIu64, abs,
                 done, size);
    if (a->error[0] == '\0' && size % WORD != 0)
        snprintf(a->error, sizeof(a->error), "%.300s: size %" PRIu64 " is not a multiple of %d",
                 abs, size, WORD);
    if (a->error[0] != '\0') {
        free(f->words);
        return -1;
    }
    return a->nfiles++;
}

static void actual_add(struct actual *a, const char *mnt, const char *rel)
{
    char abs[PATH_MAX];
    snprintf(abs, sizeof(abs), "%s/%s", mnt, rel);
    struct stat st;
    if (lstat(abs, &st) != 0) {
        snprintf(a->error, sizeof(a->error), "lstat %s: %s", rel, strerror(errno));
        return;
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
        snprintf(a->error, sizeof(a->error), "%s: neither a file nor a directory (mode %o)", rel,
                 (unsigned)st.st_mode);
        return;
    }
    if (strlen(rel) >= PATH_LEN) {
        snprintf(a->error, sizeof(a->error), "%s: unexpectedly long name", rel);
        return;
    }
    if (a->count == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->entries = must_realloc(a->entries, (size_t)a->cap * sizeof(*a->entries));
    }
    struct actual_entry *e = &a->entries[a->count++];
    snprintf(e->path, PATH_LEN, "%s", rel);
    e->is_dir = S_ISDIR(st.st_mode);
    e->ino = st.st_ino;
    e->nlink = st.st_nlink;
    e->size = (uint64_t)st.st_size;
    e->file = e->is_dir ? -1 : actual_read_file(a, abs, e->ino, e->size);
    if (!e->is_dir)
        return;
    DIR *dir = opendir(abs);
    if (dir == NULL) {
        snprintf(a->error, sizeof(a->error), "opendir %s: %s", rel, strerror(errno));
        return;
    }
    /* Collect first: recursion must not hold many directory streams. */
    char(*children)[PATH_LEN] = NULL;
    int nchildren = 0, cap = 0;
    struct dirent *d;
    while ((d = readdir(dir)) != NULL) {
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
            continue;
        if (nchildren == cap) {
            cap = cap ? cap * 2 : 16;
            children = must_realloc(children, (size_t)cap * PATH_LEN);
        }
        if (strlen(d->d_name) + strlen(rel) + 2 > PATH_LEN) {
            snprintf(a->error, sizeof(a->error), "%.200s/%.200s: unexpectedly long name", rel,
                     d->d_name);
            break;
        }
        memcpy(children[nchildren++], d->d_name, strlen(d->d_name) + 1);
    }
    closedir(dir);
    for (int i = 0; i < nchildren && a->error[0] == '\0'; i++) {
        char child[PATH_MAX];
        snprintf(child, sizeof(child), "%s/%s", rel, children[i]);
        actual_add(a, mnt, child);
    }
    free(children);
}

/* The part of the tree that belongs to worker `id`: w<id>/ and below, the
 * shared directory itself, and shared/w<id>_* and below. */
static void actual_gather(struct actual *a, const char *mnt, int id)
{
    memset(a, 0, sizeof(*a));
    char top[32];
    snprintf(top, sizeof(top), "w%d", id);
    actual_add(a, mnt, top);
    if (a->error[0] != '\0')
        return;
    char abs[PATH_MAX];
    snprintf(abs, sizeof(abs), "%s/shared", mnt);
    struct stat st;
    if (lstat(abs, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(a->error, sizeof(a->error), "shared is missing or not a directory");
        return;
    }
    if (a->count == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->entries = must_realloc(a->entries, (size_t)a->cap * sizeof(*a->entries));
    }
    struct actual_entry *e = &a->entries[a->count++];
    snprintf(e->path, PATH_LEN, "shared");
    e->is_dir = true;
    e->ino = st.st_ino;
    e->nlink = st.st_nlink;
    e->size = (uint64_t)st.st_size;
    e->file = -1;
    DIR *dir = opendir(abs);
    if (dir == NULL) {
        snprintf(a->error, sizeof(a->error), "opendir shared: %s", strerror(errno));
        return;
    }
    char prefix[16];
    snprintf(prefix, sizeof(prefix), "w%d_", id);
    char(*mine)[PATH_LEN] = NULL;
    int nmine = 0, cap = 0;
    struct dirent *d;
    while ((d = readdir(dir)) != NULL) {
        if (strncmp(d->d_name, prefix, strlen(prefix)) != 0)
            continue;
        if (nmine == cap) {
            cap = cap ? cap * 2 : 16;
            mine = must_realloc(mine, (size_t)cap * PATH_LEN);
        }
        if (strlen(d->d_name) + 8 > PATH_LEN) {
            snprintf(a->error, sizeof(a->error), "shared/%.200s: unexpectedly long name",
                     d->d_name);
            break;
        }
        memcpy(mine[nmine], "shared/", 7);
        memcpy(mine[nmine++] + 7, d->d_name, strlen(d->d_name) + 1);
    }
    closedir(dir);
    for (int i = 0; i < nmine && a->error[0] == '\0'; i++)
        actual_add(a, mnt, mine[i]);
    free(mine);
}

/* ---- checking a model against the store ---- */

/* The file's stored bytes against what the model allows: a size in
 * [floor, ceiling]; each word either the one stored at the last sync or a
 * word of this file, at this index, from a write since then that covered
 * it. */
static bool check_data(const struct node *n, const struct actual_file *f, const char *path,
                       char *why, size_t len)
{
    if (f->size < n->floor || f->size > n->ceiling) {
        snprintf(why, len,
                 "%s (ino %" PRIu64 "): size %" PRIu64 ", expected %" PRIu64 "..%" PRIu64
                 " (now %" PRIu64 ")",
                 path, f->ino, f->size, n->floor, n->ceiling, n->size);
        return false;
    }
    for (uint64_t p = 0; p < f->size / WORD; p++) {
        uint64_t got = f->words[p];
        uint64_t synced = p < n->cap ? n->synced[p] : 0;
        if (got == synced)
            continue;
        uint32_t since = p < n->cap ? n->touched[p] : 0;
        if (since != 0 && word_uid(got) == (n->uid & 0xffffffu) &&
            word_index(got) == (p & 0xfffffu) && word_version(got) >= since &&
            word_version(got) <= n->version)
            continue;
        snprintf(why, len,
                 "%s (ino %" PRIu64 ", size %" PRIu64 "): bytes at offset %" PRIu64
                 " hold %016" PRIx64 " (tag %u version %u index %" PRIu64 "); synced %016" PRIx64
                 ", later writes of tag %u versions %u..%u%s",
                 path, f->ino, f->size, p * WORD, got, word_uid(got), word_version(got),
                 word_index(got), synced, n->uid & 0xffffffu, since, n->version,
                 since == 0 ? " (none since the sync: must be the synced bytes)" : "");
        return false;
    }
    return true;
}

/* Whether the store's part of worker m->worker matches the model: the
 * same names with the same types and inode numbers; each file's link
 * count its number of names and its data as check_data allows; each
 * directory's link count 2 + its subdirectories and its size (lsmfs: the
 * entry count) its entries (the shared directory is checked later, with
 * both workers' entries). */
static bool check_model(const struct model *m, const struct actual *a, char *why, size_t len)
{
    if (a->error[0] != '\0') {
        snprintf(why, len, "reading the tree: %s", a->error);
        return false;
    }
    for (int i = 0; i < MAX_PATHS; i++) {
        const struct name *nm = &m->names[i];
        if (!nm->used)
            continue;
        const struct node *n = &m->nodes[nm->node];
        int k = actual_find(a, nm->path);
        if (k < 0) {
            snprintf(why, len, "%s (%s, ino %" PRIu64 ") is missing", nm->path,
                     n->is_dir ? "directory" : "file", n->ino);
            return false;
        }
        const struct actual_entry *e = &a->entries[k];
        if (e->is_dir != n->is_dir) {
            snprintf(why, len, "%s is a %s, expected a %s", nm->path,
                     e->is_dir ? "directory" : "file", n->is_dir ? "directory" : "file");
            return false;
        }
        if (n->ino != 0 && e->ino != n->ino) {
            snprintf(why, len, "%s is inode %" PRIu64 ", expected %" PRIu64, nm->path, e->ino,
                     n->ino);
            return false;
        }
        if (n->is_dir && strcmp(nm->path, "shared") != 0) {
            int subdirs, entries = dir_entries(m, nm->path, &subdirs);
            if (e->nlink != (uint64_t)(2 + subdirs) || e->size != (uint64_t)entries) {
                snprintf(why, len,
                         "directory %s: nlink %" PRIu64 " size %" PRIu64
                         ", expected nlink %d and %d entries",
                         nm->path, e->nlink, e->size, 2 + subdirs, entries);
                return false;
            }
        } else if (!n->is_dir) {
            int names = node_name_count(m, nm->node);
            if (e->nlink != (uint64_t)names) {
                snprintf(why, len, "%s: nlink %" PRIu64 ", expected %d", nm->path, e->nlink, names);
                return false;
            }
            if (node_first_name(m, nm->node) == i &&
                !check_data(n, &a->files[e->file], nm->path, why, len))
                return false;
        }
    }
    for (int k = 0; k < a->count; k++) {
        if (name_find(m, a->entries[k].path) < 0) {
            snprintf(why, len, "%s (ino %" PRIu64 ") exists but should not", a->entries[k].path,
                     a->entries[k].ino);
            return false;
        }
    }
    return true;
}

/* Makes the model the store's state as read: every name, inode number and
 * byte, all of it stored (a clean mount loses nothing answered). Counters
 * go on; files get new data tags, so older words read as history. */
static void model_rebuild(struct model *m, const struct actual *a)
{
    for (int i = 0; i < MAX_NODES; i++)
        node_clear(&m->nodes[i]);
    memset(m->names, 0, sizeof(m->names));
    m->nlost = 0;
    m->lost_overflow = false;
    char top[32];
    snprintf(top, sizeof(top), "w%d", m->worker);
    for (int k = 0; k < a->count; k++) {
        const struct actual_entry *e = &a->entries[k];
        int node = node_by_ino(m, e->ino);
        if (node < 0) {
            node = free_node_slot(m);
            assert_true(node >= 0);
            struct node *n = &m->nodes[node];
            n->used = true;
            n->is_dir = e->is_dir;
            n->fixed = strcmp(e->path, top) == 0 || strcmp(e->path, "shared") == 0;
            n->ino = e->ino;
            if (!e->is_dir) {
                const struct actual_file *f = &a->files[e->file];
                n->uid = m->next_uid * WORKERS + (uint32_t)m->worker + 1;
                m->next_uid++;
                if (f->size > 0) {
                    node_reserve(n, f->size / WORD);
                    memcpy(n->cur, f->words, f->size / WORD * sizeof(uint64_t));
                    memcpy(n->synced, f->words, f->size / WORD * sizeof(uint64_t));
                }
                n->size = n->floor = n->ceiling = f->size;
            }
        }
        name_add(m, e->path, node);
    }
}

/* ---- replaying a worker's log ---- */

struct replay {
    struct model *m0; /* after every END-ed operation (and an in-flight write) */
    struct model *m1; /* m0 with the in-flight operation applied, or NULL */
    struct op inflight;
    bool has_inflight;
    uint64_t ended;         /* END records */
    uint64_t created[4096]; /* inode numbers END-ed creates and mkdirs got */
    int ncreated;
    uint64_t ended_by_kind[OP_KINDS];
    char failure[1024]; /* the log itself shows a failure */
};

static bool changes_state(int kind)
{
    switch (kind) {
    case OP_CREATE:
    case OP_MKDIR:
    case OP_TRUNCATE:
    case OP_OPEN_TRUNC:
    case OP_RENAME:
    case OP_LINK:
    case OP_UNLINK:
    case OP_RMDIR:
        return true;
    default:
        return false;
    }
}

static char *read_host_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 1 << 16, used = 0;
    char *data = malloc(cap + 1);
    assert_non_null(data);
    size_t n;
    while ((n = fread(data + used, 1, cap - used, f)) > 0) {
        used += n;
        if (used == cap) {
            cap *= 2;
            data = must_realloc(data, cap + 1);
        }
    }
    fclose(f);
    data[used] = '\0';
    *len = used;
    return data;
}

/* Replays the log at `path` onto m (which becomes r->m0). kill_ns: when
 * the daemon was killed; a failure before it is a test failure. */
static void replay_log(struct replay *r, struct model *m, const char *path, int64_t kill_ns)
{
    memset(r, 0, sizeof(*r));
    r->m0 = m;
    size_t len;
    char *data = read_host_file(path, &len);
    const struct record *pending = NULL;
    bool failed = false;
    for (size_t off = 0; off + sizeof(struct record) <= len; off += sizeof(struct record)) {
        const struct record *rec = (const struct record *)(data + off);
        if (rec->magic != RECORD_MAGIC || failed) {
            snprintf(r->failure, sizeof(r->failure), "%s: bad record at %zu", path, off);
            break;
        }
        if (rec->op.kind >= OP_KINDS) {
            snprintf(r->failure, sizeof(r->failure), "%s: bad operation at %zu", path, off);
            break;
        }
        if (rec->type == REC_BEGIN) {
            model_note_counters(m, &rec->op);
            pending = rec;
        } else if (rec->type == REC_END) {
            if (pending == NULL || pending->seq != rec->seq) {
                snprintf(r->failure, sizeof(r->failure), "%s: END without BEGIN", path);
                break;
            }
            model_apply(m, &rec->op, rec->seq, true);
            if ((rec->op.kind == OP_CREATE || rec->op.kind == OP_MKDIR) && r->ncreated < 4096)
                r->created[r->ncreated++] = rec->op.ino;
            r->ended++;
            r->ended_by_kind[rec->op.kind]++;
            pending = NULL;
        } else if (rec->type == REC_FAILED) {
            failed = true;
            if (rec->error == ERROR_MODEL_MISMATCH) {
                snprintf(r->failure, sizeof(r->failure),
                         "%s %s: the kernel's end of file was not %" PRIu64 " after the append",
                         op_names[rec->op.kind], rec->op.path, rec->op.offset + rec->op.length);
            } else if (rec->time_ns < kill_ns) {
                snprintf(r->failure, sizeof(r->failure),
                         "%s %s%s%s failed with %s %.1f ms before the daemon was killed",
                         op_names[rec->op.kind], rec->op.path, rec->op.path2[0] ? " -> " : "",
                         rec->op.path2, lsmfs_errno_name(rec->error),
                         (double)(kill_ns - rec->time_ns) / 1e6);
            }
            if (rec->op.kind != OP_NONE) {
                r->inflight = rec->op;
                r->has_inflight = true;
            }
            pending = NULL;
        }
    }
    if (pending != NULL) {
        r->inflight = pending->op;
        r->has_inflight = true;
    }
    if (r->has_inflight) {
        uint64_t seq = m->seq + 1;
        if (r->inflight.kind == OP_WRITE || r->inflight.kind == OP_APPEND) {
            /* Pages of a write in progress may have been written back. */
            model_apply(m, &r->inflight, seq, false);
        } else if (changes_state((int)r->inflight.kind)) {
            r->m1 = model_clone(m);
            model_apply(r->m1, &r->inflight, seq, true);
        }
    }
    free(data);
}

/* ---- sync records ---- */

struct sync_counts {
    uint64_t files_checked, dirs_checked, skipped, syncfs;
};

static int actual_children_text(const struct actual *a, const char *dir, char *out, size_t len)
{
    const char *names[1024];
    int count = 0;
    char parent[PATH_LEN];
    for (int k = 0; k < a->count && count < 1024; k++) {
        parent_path(a->entries[k].path, parent);
        if (strcmp(parent, dir) == 0)
            names[count++] = base_name(a->entries[k].path);
    }
    qsort(names, (size_t)count, sizeof(names[0]), compare_cstrings);
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < count && used < len; i++) {
        int n = snprintf(out + used, len - used, "%s%s", i ? " " : "", names[i]);
        if (n > 0)
            used += (size_t)n;
    }
    return count;
}

/* Checks the sync log's records whose objects nothing changed since: the
 * file (same name, no data change since) holds exactly the recorded size
 * and bytes; the directory (same name, no entry change since) exactly the
 * recorded entries. */
static bool check_sync_log(const char *path, const struct model *m, const struct actual *a,
                           struct sync_counts *counts, char *why, size_t len)
{
    size_t size;
    char *text = read_host_file(path, &size);
    bool ok = true;
    static char names[12288], actual_names[12288];
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line != NULL && ok;
         line = strtok_r(NULL, "\n", &save)) {
        uint64_t seq, ino, bytes, hash;
        char obj[PATH_LEN];
        int count, used = 0;
        if (line[0] == 'F') {
            counts->syncfs++;
            continue;
        }
        if (line[0] == 'S' &&
            sscanf(line, "S %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNx64 " %111s", &seq, &ino,
                   &bytes, &hash, obj) == 5) {
            int node = node_by_ino(m, ino);
            int name = name_find(m, obj);
            if (node < 0 || name < 0 || m->names[name].node != node ||
                m->nodes[node].data_seq >= seq) {
                counts->skipped++;
                continue;
            }
            int k = actual_find(a, obj);
            const struct actual_file *f =
                k >= 0 && a->entries[k].file >= 0 ? &a->files[a->entries[k].file] : NULL;
            uint64_t got = f != NULL ? lsmfs_fnv1a(LSMFS_FNV_SEED, f->words, f->size) : 0;
            if (f == NULL || f->size != bytes || got != hash) {
                snprintf(why, len,
                         "fsync'ed %s (ino %" PRIu64 ", operation %" PRIu64 "): size %" PRIu64
                         " hash %016" PRIx64 ", the sync log says size %" PRIu64
                         " hash %016" PRIx64,
                         obj, ino, seq, f != NULL ? f->size : 0, got, bytes, hash);
                ok = false;
            }
            counts->files_checked++;
        } else if (line[0] == 'D' && sscanf(line, "D %" SCNu64 " %" SCNu64 " %111s %d %n", &seq,
                                            &ino, obj, &count, &used) == 4) {
            snprintf(names, sizeof(names), "%s", used > 0 ? line + used : "");
            int node = node_by_ino(m, ino);
            int name = name_find(m, obj);
            if (node < 0 || name < 0 || m->names[name].node != node ||
                m->nodes[node].entries_seq >= seq) {
                counts->skipped++;
                continue;
            }
            int got = actual_children_text(a, obj, actual_names, sizeof(actual_names));
            if (got != count || strcmp(names, actual_names) != 0) {
                snprintf(why, len,
                         "fsyncdir'ed %s (operation %" PRIu64 "): entries \"%.200s\", the sync "
                         "log says \"%.200s\"",
                         obj, seq, actual_names, names);
                ok = false;
            }
            counts->dirs_checked++;
        } else {
            snprintf(why, len, "%s: unreadable line \"%.100s\"", path, line);
            ok = false;
        }
    }
    free(text);
    return ok;
}

/* ---- fsck after a crash ---- */

/* Inodes that lost their last name in this cycle, all workers together
 * (with the operations in flight: a superset). */
struct lost_set {
    uint64_t inos[WORKERS * MAX_LOST];
    int count;
    bool overflow;
};

static void lost_set_add(struct lost_set *set, const struct replay *r)
{
    const struct model *m = r->m1 != NULL ? r->m1 : r->m0;
    set->overflow |= m->lost_overflow;
    for (int i = 0; i < m->nlost; i++)
        set->inos[set->count++] = m->lost[i];
}

static bool in_lost(const struct lost_set *set, uint64_t ino)
{
    if (set->overflow)
        return true;
    for (int i = 0; i < set->count; i++)
        if (set->inos[i] == ino)
            return true;
    return false;
}

/* fsck of a data directory a kill left. "Clean" here means: the only
 * problems are orphans — inodes without names, each with its orphan
 * record, each one that lost its last name in this cycle (unlinked while
 * open or while the kernel still knew it; the daemon reclaims them at
 * mount). With repair they are reclaimed, and a second fsck must then find
 * nothing at all. Returns the number of orphans, or -1 (why says it). */
static int64_t check_fsck_after_crash(const char *datadir, bool repair, const struct lost_set *lost,
                                      char *why, size_t len)
{
    char *output = NULL;
    size_t output_len = 0;
    FILE *out = open_memstream(&output, &output_len);
    assert_non_null(out);
    struct fsck_options options = {.repair = repair, .progress = false, .out = out};
    struct fsck_report report;
    int status = lsmfs_fsck(datadir, &options, &report);
    fclose(out);
    int64_t orphans = 0;
    bool ok = true;
    char *copy = strdup(output);
    assert_non_null(copy);
    for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line != NULL && ok;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "lsmfs fsck ", 11) == 0)
            continue;
        uint64_t ino;
        int end = 0;
        const char *text = strncmp(line, "repaired: ", 10) == 0 ? line + 10
                           : strncmp(line, "problem: ", 9) == 0 ? line + 9
                                                                : NULL;
        if (text != NULL &&
            sscanf(text, "inode %" SCNu64 " is an orphan (no names, orphan record): reclaimed%n",
                   &ino, &end) == 1 &&
            text[end] == '\0') {
            if (!in_lost(lost, ino)) {
                snprintf(why, len,
                         "fsck: orphan inode %" PRIu64 " is none that lost its last name "
                         "in this cycle",
                         ino);
                ok = false;
            }
            orphans++;
            continue;
        }
        snprintf(why, len, "fsck%s after the kill: \"%.300s\"", repair ? " --repair" : "", line);
        ok = false;
    }
    free(copy);
    int expected = orphans == 0 ? FSCK_CLEAN : repair ? FSCK_REPAIRED : FSCK_DAMAGED;
    if (ok && (status != expected || report.problems != (uint64_t)orphans ||
               report.orphans != (uint64_t)orphans)) {
        snprintf(why, len,
                 "fsck%s after the kill: status %d, %" PRIu64 " problems, %" PRIu64
                 " orphans; %" PRId64 " orphan lines",
                 repair ? " --repair" : "", status, report.problems, report.orphans, orphans);
        ok = false;
    }
    if (!ok)
        fprintf(stderr, "---- fsck%s %s ----\n%s---- end ----\n", repair ? " --repair" : "",
                datadir, output);
    free(output);
    return ok ? orphans : -1;
}

/* fsck that must find nothing at all (after repair, or after a clean
 * unmount). */
static bool check_fsck_clean(const char *datadir, const char *when, char *why, size_t len)
{
    char *output = NULL;
    size_t output_len = 0;
    FILE *out = open_memstream(&output, &output_len);
    assert_non_null(out);
    struct fsck_options options = {.repair = false, .progress = false, .out = out};
    struct fsck_report report;
    int status = lsmfs_fsck(datadir, &options, &report);
    fclose(out);
    bool ok = status == FSCK_CLEAN && report.problems == 0;
    if (!ok) {
        fprintf(stderr, "---- fsck %s (%s) ----\n%s---- end ----\n", datadir, when, output);
        snprintf(why, len, "fsck %s: status %d, %" PRIu64 " problems", when, status,
                 report.problems);
    }
    free(output);
    return ok;
}

/* ---- the test ---- */

struct totals {
    uint64_t ended, ended_by_kind[OP_KINDS];
    uint64_t inflight, inflight_applied;
    uint64_t orphans;
    uint64_t heavy_kills;
    struct sync_counts sync;
    int writeback_cycles, writethrough_cycles;
};

static int failures;

static void report_failure(int cycle, const char *what)
{
    failures++;
    fprintf(stderr, "crash_kill: cycle %d: FAILURE: %s\n", cycle, what);
}

/* The daemon reports damage and failing I/O on stderr (fs_errno); the log
 * of a daemon (killed or not) must hold no such line. */
static void check_daemon_log(const struct lsmfs_mount *m, int cycle)
{
    FILE *f = fopen(m->log_path, "r");
    if (f == NULL)
        return;
    static const char *markers[] = {"error", "corrupt", "damage", "mismatch", "checksum"};
    char line[1024];
    while (fgets(line, sizeof(line), f) != NULL) {
        char lower[1024];
        size_t n = strlen(line);
        for (size_t i = 0; i <= n; i++)
            lower[i] = (char)(line[i] >= 'A' && line[i] <= 'Z' ? line[i] - 'A' + 'a' : line[i]);
        for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++) {
            if (strstr(lower, markers[i]) != NULL) {
                char what[1200];
                snprintf(what, sizeof(what), "%.150s: %.1000s", m->log_path, line);
                report_failure(cycle, what);
                break;
            }
        }
    }
    fclose(f);
}

/* Every inode number the test has seen: lsmfs never hands one out twice,
 * not even after a crash. */
struct ino_set {
    uint64_t *inos;
    size_t count, cap;
};

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool ino_set_has(const struct ino_set *set, uint64_t ino)
{
    return set->count > 0 &&
           bsearch(&ino, set->inos, set->count, sizeof(uint64_t), compare_u64) != NULL;
}

/* Adds inos (sorted set semantics). */
static void ino_set_add(struct ino_set *set, const uint64_t *inos, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (set->count == set->cap) {
            set->cap = set->cap ? set->cap * 2 : 1024;
            set->inos = must_realloc(set->inos, set->cap * sizeof(uint64_t));
        }
        set->inos[set->count++] = inos[i];
    }
    qsort(set->inos, set->count, sizeof(uint64_t), compare_u64);
    size_t kept = 0;
    for (size_t i = 0; i < set->count; i++)
        if (kept == 0 || set->inos[kept - 1] != set->inos[i])
            set->inos[kept++] = set->inos[i];
    set->count = kept;
}

/* The inodes this cycle's creates got must be new: seen neither before
 * nor twice in the cycle. Then remembers them and every inode in the
 * models. */
static void check_new_inodes(struct ino_set *seen, const struct replay *replays,
                             struct model *const *models, int cycle)
{
    struct ino_set now = {0};
    for (int w = 0; w < WORKERS; w++) {
        for (int i = 0; i < replays[w].ncreated; i++) {
            uint64_t ino = replays[w].created[i];
            if (ino_set_has(seen, ino) || ino_set_has(&now, ino)) {
                char what[160];
                snprintf(what, sizeof(what),
                         "worker %d created inode %" PRIu64 ", a number handed out before", w, ino);
                report_failure(cycle, what);
            }
            ino_set_add(&now, &ino, 1);
        }
    }
    ino_set_add(seen, now.inos, now.count);
    free(now.inos);
    for (int w = 0; w < WORKERS; w++)
        for (int i = 0; i < MAX_NODES; i++)
            if (models[w]->nodes[i].used)
                ino_set_add(seen, &models[w]->nodes[i].ino, 1);
}

/* Whether a worker's last record is a large write or the sync of a large
 * file, in progress. */
static bool heavy_op_in_progress(const char *log_path)
{
    int fd = open(log_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    bool heavy = false;
    if (fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof(struct record)) {
        struct record rec;
        off_t at = (off_t)((size_t)st.st_size / sizeof(rec) - 1) * (off_t)sizeof(rec);
        if (pread(fd, &rec, sizeof(rec), at) == (ssize_t)sizeof(rec) && rec.type == REC_BEGIN)
            heavy = (rec.op.kind == OP_WRITE || rec.op.kind == OP_APPEND ||
                     rec.op.kind == OP_FSYNC || rec.op.kind == OP_FDATASYNC) &&
                    rec.op.length >= LARGE_WRITE;
    }
    close(fd);
    return heavy;
}

static void create_empty(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
}

/* Waits for the workers (they exit on their first failed call). */
static void wait_workers(const pid_t *pids, int cycle)
{
    for (int i = 0; i < WORKERS; i++) {
        int status = 0;
        pid_t r = 0;
        for (int waited = 0; waited < 60000; waited += 5) {
            r = waitpid(pids[i], &status, WNOHANG);
            if (r != 0)
                break;
            lsmfs_sleep_ms(5);
        }
        if (r == 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], &status, 0);
            report_failure(cycle, "a worker did not exit within 60 s of the kill");
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            char what[128];
            snprintf(what, sizeof(what), "worker %d ended with status 0x%x", i, status);
            report_failure(cycle, what);
        }
    }
}

/* Root and shared directory: root holds exactly w0, w1, shared; the
 * shared directory's counts are both workers' together. */
static bool check_top(const char *mnt, struct model *const *models, char *why, size_t len)
{
    struct stat st;
    DIR *dir = opendir(mnt);
    if (dir == NULL) {
        snprintf(why, len, "opendir %s: %s", mnt, strerror(errno));
        return false;
    }
    char names[256] = "";
    struct dirent *d;
    int count = 0;
    while ((d = readdir(dir)) != NULL) {
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
            continue;
        count++;
        if (strcmp(d->d_name, "w0") != 0 && strcmp(d->d_name, "w1") != 0 &&
            strcmp(d->d_name, "shared") != 0)
            snprintf(names, sizeof(names), "%s", d->d_name);
    }
    closedir(dir);
    if (count != 3 || names[0] != '\0') {
        snprintf(why, len, "the root holds %d entries (unexpected: \"%s\")", count, names);
        return false;
    }
    if (stat(mnt, &st) != 0 || st.st_nlink != 5 || st.st_size != 3) {
        snprintf(why, len, "root: nlink %lu size %lld, expected 5 and 3",
                 (unsigned long)st.st_nlink, (long long)st.st_size);
        return false;
    }
    int entries = 0, subdirs = 0;
    for (int w = 0; w < WORKERS; w++) {
        int s;
        entries += dir_entries(models[w], "shared", &s);
        subdirs += s;
    }
    char shared[PATH_MAX];
    snprintf(shared, sizeof(shared), "%s/shared", mnt);
    if (stat(shared, &st) != 0 || st.st_nlink != (nlink_t)(2 + subdirs) || st.st_size != entries) {
        snprintf(why, len, "shared: nlink %lu size %lld, expected %d and %d",
                 (unsigned long)st.st_nlink, (long long)st.st_size, 2 + subdirs, entries);
        return false;
    }
    dir = opendir(shared);
    if (dir == NULL) {
        snprintf(why, len, "opendir shared: %s", strerror(errno));
        return false;
    }
    bool ok = true;
    while ((d = readdir(dir)) != NULL) {
        if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0 &&
            strncmp(d->d_name, "w0_", 3) != 0 && strncmp(d->d_name, "w1_", 3) != 0) {
            snprintf(why, len, "shared/%s belongs to no worker", d->d_name);
            ok = false;
        }
    }
    closedir(dir);
    return ok;
}

static int cycles_wanted(void)
{
    const char *env = getenv("LSMFS_CRASH_CYCLES");
    if (env != NULL && atoi(env) > 0)
        return atoi(env);
    return kv_test_long_mode() ? LONG_CYCLES : DEFAULT_CYCLES;
}

static void set_options(struct lsmfs_mount *m, bool writeback)
{
    free(m->options);
    m->options = strdup(writeback ? MOUNT_OPTIONS_WRITEBACK : MOUNT_OPTIONS_WRITETHROUGH);
    assert_non_null(m->options);
}

/* Reads the tree back; checks each worker's part against M0 or M1 and the
 * sync log, then the top directories; rebuilds the models from what was
 * read. Returns false after reporting a failure. */
static bool verify_and_rebuild(struct lsmfs_mount *m, struct model **models, struct replay *replays,
                               char sync_paths[][PATH_MAX], int cycle, struct totals *t)
{
    char why[2048];
    bool all_ok = true;
    for (int w = 0; w < WORKERS; w++) {
        struct replay *r = &replays[w];
        struct actual a;
        actual_gather(&a, m->mountpoint, w);
        char why0[1024] = "", why1[1024] = "";
        bool ok = check_model(r->m0, &a, why0, sizeof(why0));
        const struct model *accepted = r->m0;
        if (!ok && r->m1 != NULL) {
            ok = check_model(r->m1, &a, why1, sizeof(why1));
            accepted = r->m1;
        }
        if (r->has_inflight) {
            t->inflight++;
            t->inflight_applied += ok && accepted == r->m1;
        }
        if (!ok) {
            snprintf(why, sizeof(why),
                     "worker %d: the store does not match the answered operations (%s)", w, why0);
            if (r->has_inflight)
                snprintf(why + strlen(why), sizeof(why) - strlen(why),
                         "; in flight at the kill: %s %s %s%s%s%s", op_names[r->inflight.kind],
                         r->inflight.path, r->inflight.path2,
                         r->m1 != NULL ? " (and with it applied: " : "", r->m1 != NULL ? why1 : "",
                         r->m1 != NULL ? ")" : "");
            report_failure(cycle, why);
            all_ok = false;
        } else if (!check_sync_log(sync_paths[w], accepted, &a, &t->sync, why, sizeof(why))) {
            report_failure(cycle, why);
            all_ok = false;
        }
        /* Go on from what the store holds, whatever the verdict. */
        struct model *next = models[w];
        next->next_name =
            accepted->next_name > next->next_name ? accepted->next_name : next->next_name;
        if (r->m1 != NULL && r->m1->next_name > next->next_name)
            next->next_name = r->m1->next_name;
        next->next_uid = accepted->next_uid > next->next_uid ? accepted->next_uid : next->next_uid;
        if (r->m1 != NULL && r->m1->next_uid > next->next_uid)
            next->next_uid = r->m1->next_uid;
        next->seq = accepted->seq + 1;
        if (a.error[0] == '\0') {
            model_rebuild(next, &a);
        } else {
            /* Unreadable: go on from the model; nothing is open any more. */
            for (int i = 0; i < MAX_NODES; i++) {
                next->nodes[i].open = false;
                if (next->nodes[i].used && node_name_count(next, i) == 0)
                    node_clear(&next->nodes[i]);
            }
        }
        actual_free(&a);
    }
    if (all_ok && !check_top(m->mountpoint, models, why, sizeof(why))) {
        report_failure(cycle, why);
        all_ok = false;
    }
    return all_ok;
}

static void test_crash_kill(void **state)
{
    (void)state;
    int cycles = cycles_wanted();
    uint64_t seed = kv_test_seed(0x6c736d66636b696cull);
    kv_test_rng rng;
    kv_test_rng_init(&rng, seed);
    fprintf(stderr, "crash_kill: %d cycles, seed %" PRIu64 " (KV_TEST_SEED)\n", cycles, seed);
    int64_t started = monotonic_ns();

    struct lsmfs_mount *m = lsmfs_mount_create("crash_kill", MOUNT_OPTIONS_WRITEBACK);
    bool writeback = true;
    const char *tops[] = {"w0", "w1", "shared"};
    for (int i = 0; i < 3; i++)
        EXPECT_OK(mkdir(lsmfs_path(m, "%s", tops[i]), 0755));
    int root = (int)EXPECT_OK(open(m->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    EXPECT_OK(fsync(root));
    close(root);

    struct model *models[WORKERS];
    for (int w = 0; w < WORKERS; w++) {
        models[w] = calloc(1, sizeof(struct model));
        assert_non_null(models[w]);
        models[w]->worker = w;
        models[w]->next_name = 1;
        models[w]->next_uid = 1;
        struct actual a;
        actual_gather(&a, m->mountpoint, w);
        assert_true(a.error[0] == '\0');
        model_rebuild(models[w], &a);
        actual_free(&a);
    }
    volatile int *stop =
        mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(stop != MAP_FAILED);

    struct totals t;
    memset(&t, 0, sizeof(t));
    char log_paths[WORKERS][PATH_MAX], sync_paths[WORKERS][PATH_MAX];
    for (int w = 0; w < WORKERS; w++) {
        snprintf(log_paths[w], PATH_MAX, "%s/ops-w%d.log", m->scratch, w);
        snprintf(sync_paths[w], PATH_MAX, "%s/sync-w%d.log", m->scratch, w);
    }

    struct ino_set seen_inodes = {0};
    for (int w = 0; w < WORKERS; w++)
        for (int i = 0; i < MAX_NODES; i++)
            if (models[w]->nodes[i].used)
                ino_set_add(&seen_inodes, &models[w]->nodes[i].ino, 1);
    int cycle;
    for (cycle = 0; cycle < cycles && failures < MAX_FAILURES; cycle++) {
        bool heavy = cycle % 3 == 2;
        writeback ? t.writeback_cycles++ : t.writethrough_cycles++;
        for (int w = 0; w < WORKERS; w++) {
            models[w]->writeback = writeback;
            create_empty(log_paths[w]);
            create_empty(sync_paths[w]);
        }
        *stop = 0;
        pid_t pids[WORKERS];
        for (int w = 0; w < WORKERS; w++) {
            uint64_t worker_seed = kv_test_rng_next(&rng);
            fflush(stdout);
            fflush(stderr);
            pids[w] = fork();
            assert_true(pids[w] >= 0);
            if (pids[w] == 0)
                worker_main(models[w], w, m->mountpoint, log_paths[w], sync_paths[w], worker_seed,
                            heavy, stop);
        }

        lsmfs_sleep_ms(50 + (int)kv_test_rng_uniform(&rng, 1451));
        if (heavy) {
            /* Aim the kill at a large write or a large fsync in progress. */
            for (int waited = 0; waited < 1500; waited += 2) {
                bool hit = false;
                for (int w = 0; w < WORKERS; w++)
                    hit |= heavy_op_in_progress(log_paths[w]);
                if (hit) {
                    t.heavy_kills++;
                    break;
                }
                lsmfs_sleep_ms(2);
            }
        }
        int64_t kill_ns = monotonic_ns();
        lsmfs_mount_kill(m);
        *stop = 1;
        wait_workers(pids, cycle);
        check_daemon_log(m, cycle);

        struct replay replays[WORKERS];
        for (int w = 0; w < WORKERS; w++) {
            replay_log(&replays[w], models[w], log_paths[w], kill_ns);
            models[w] = model_clone(replays[w].m0); /* the next cycle's base, rebuilt below */
            t.ended += replays[w].ended;
            for (int k = 0; k < OP_KINDS; k++)
                t.ended_by_kind[k] += replays[w].ended_by_kind[k];
            if (replays[w].failure[0] != '\0') {
                char why[1200];
                snprintf(why, sizeof(why), "worker %d: %s", w, replays[w].failure);
                report_failure(cycle, why);
            }
        }

        /* fsck before the remount: odd cycles check only (the daemon then
         * reclaims the orphans at mount), even cycles repair. */
        bool repair = cycle % 2 == 0;
        char why[1024];
        static struct lost_set lost;
        memset(&lost, 0, sizeof(lost));
        for (int w = 0; w < WORKERS; w++)
            lost_set_add(&lost, &replays[w]);
        int64_t orphans = check_fsck_after_crash(m->datadir, repair, &lost, why, sizeof(why));
        if (orphans < 0)
            report_failure(cycle, why);
        else if (repair && !check_fsck_clean(m->datadir, "after --repair", why, sizeof(why)))
            report_failure(cycle, why);
        if (orphans > 0)
            t.orphans += (uint64_t)orphans;

        lsmfs_mount_start(m);
        if (!repair && orphans >= 0) {
            char *stats = lsmfs_mount_stats(m);
            uint64_t reclaimed = lsmfs_stats_number(stats, "orphans reclaimed ");
            free(stats);
            if (reclaimed != (uint64_t)orphans) {
                snprintf(why, sizeof(why),
                         "the daemon reclaimed %" PRIu64 " orphans at mount, fsck found %" PRId64,
                         reclaimed, orphans);
                report_failure(cycle, why);
            }
        }

        verify_and_rebuild(m, models, replays, sync_paths, cycle, &t);
        check_new_inodes(&seen_inodes, replays, models, cycle);
        check_daemon_log(m, cycle);
        for (int w = 0; w < WORKERS; w++) {
            model_free(replays[w].m0);
            model_free(replays[w].m1);
        }

        if ((cycle + 1) % CLEAN_REMOUNT_EVERY == 0 || cycle + 1 == cycles) {
            lsmfs_mount_stop(m);
            check_daemon_log(m, cycle);
            if (!check_fsck_clean(m->datadir, "after a clean unmount", why, sizeof(why)))
                report_failure(cycle, why);
            writeback = (cycle + 1) / CLEAN_REMOUNT_EVERY % 3 != 2;
            set_options(m, writeback);
            if (cycle + 1 < cycles)
                lsmfs_mount_start(m);
        }
        if ((cycle + 1) % 10 == 0)
            fprintf(stderr, "crash_kill: %d cycles, %" PRIu64 " operations answered, %.0f s\n",
                    cycle + 1, t.ended, (double)(monotonic_ns() - started) / 1e9);
    }

    double seconds = (double)(monotonic_ns() - started) / 1e9;
    fprintf(stderr,
            "crash_kill: %d cycles run (%d with the writeback cache, %d without) in %.1f s; "
            "%" PRIu64 " operations answered:",
            cycle, t.writeback_cycles, t.writethrough_cycles, seconds, t.ended);
    for (int k = 1; k < OP_KINDS; k++)
        fprintf(stderr, " %s %" PRIu64, op_names[k], t.ended_by_kind[k]);
    fprintf(stderr,
            "\ncrash_kill: in flight at the kill %" PRIu64 " (found applied %" PRIu64
            "); kills during a large write/fsync %" PRIu64 "; orphans after kills %" PRIu64
            "; sync records checked: %" PRIu64 " files, %" PRIu64 " directories (%" PRIu64
            " superseded, %" PRIu64 " syncfs); failures %d\n",
            t.inflight, t.inflight_applied, t.heavy_kills, t.orphans, t.sync.files_checked,
            t.sync.dirs_checked, t.sync.skipped, t.sync.syncfs, failures);

    free(seen_inodes.inos);
    for (int w = 0; w < WORKERS; w++)
        model_free(models[w]);
    munmap((void *)stop, sizeof(int));
    if (lsmfs_is_mounted(m))
        lsmfs_mount_stop(m);
    if (failures > 0) {
        fprintf(stderr, "crash_kill: data directory kept: %s\n", m->datadir);
        fail_msg("%d failures in %d cycles (seed %" PRIu64 ")", failures, cycle, seed);
    }
    lsmfs_mount_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_kill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
