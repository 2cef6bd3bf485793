/*
 * fs.c — opening, formatting and closing an lsmfs data directory, and the
 * pieces every operation shares: lock stripes, inode load/store, commits,
 * inode numbers, reclamation of unlinked inodes.
 */
#include "fs_impl.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void fs_options_init(struct fs_options *options)
{
    memset(options, 0, sizeof(*options));
    options->block_size = 4096;
    options->cache_size = 64u << 20;
    options->write_buffer_size = 64u << 20;
    options->blob_files = true;
}

kv_db *fs_db(struct fs *fs)
{
    return fs->db;
}

uint32_t fs_block_size(const struct fs *fs)
{
    return fs->block_size;
}

int64_t fs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int fs_errno(int status)
{
    switch (status) {
    case KV_OK:
        return 0;
    case KV_NOT_FOUND:
        return -ENOENT;
    case KV_NO_SPACE:
        return -ENOSPC;
    case KV_INVALID_ARGUMENT:
        return -EINVAL;
    case KV_SHUTDOWN:
        return -ESHUTDOWN;
    default:
        /* Damage or a failing disk: the one place it is reported. */
        fprintf(stderr, "lsmfs: %s: %s\n", kv_strerror(status), kv_errmsg());
        return -EIO;
    }
}

/* ---- lock stripes ---- */

static int stripe_of(uint64_t ino)
{
    ino ^= ino >> 31;
    ino *= 0x9e3779b97f4a7c15ULL;
    return (int)(ino >> 54); /* top 10 bits: 0..1023 */
}

void fs_lockset_acquire(struct fs *fs, struct fs_lockset *set, const uint64_t *inos, int n)
{
    assert(n <= 4);
    set->count = 0;
    for (int i = 0; i < n; i++) {
        if (inos[i] == 0)
            continue;
        int s = stripe_of(inos[i]);
        int j = set->count;
        bool dup = false;
        for (int k = 0; k < set->count; k++)
            dup |= set->stripes[k] == s;
        if (dup)
            continue;
        /* insertion sort: stripes are always taken in ascending order */
        while (j > 0 && set->stripes[j - 1] > s) {
            set->stripes[j] = set->stripes[j - 1];
            j--;
        }
        set->stripes[j] = s;
        set->count++;
    }
    for (int i = 0; i < set->count; i++)
        pthread_mutex_lock(&fs->stripes[set->stripes[i]]);
}

void fs_lockset_release(struct fs *fs, struct fs_lockset *set)
{
    for (int i = set->count - 1; i >= 0; i--)
        pthread_mutex_unlock(&fs->stripes[set->stripes[i]]);
    set->count = 0;
}

void fs_lock_inode(struct fs *fs, uint64_t ino)
{
    pthread_mutex_lock(&fs->stripes[stripe_of(ino)]);
}

void fs_unlock_inode(struct fs *fs, uint64_t ino)
{
    pthread_mutex_unlock(&fs->stripes[stripe_of(ino)]);
}

/* ---- inode records ---- */

int fs_inode_load(struct fs *fs, uint64_t ino, struct fs_inode *inode)
{
    if (fs_inode_table_get_cached(fs->inodes, ino, inode))
        return 0;
    char key[FS_INODE_KEY_LEN];
    size_t key_len = fs_key_inode(key, ino);
    char *value;
    size_t value_len;
    int rc = kv_get(fs->db, NULL, fs->meta, key, key_len, &value, &value_len);
    if (rc != KV_OK)
        return fs_errno(rc);
    rc = fs_inode_decode(value, value_len, inode);
    kv_free(value);
    if (rc != 0) {
        fprintf(stderr, "lsmfs: inode %llu: malformed record (%zu bytes)\n",
                (unsigned long long)ino, value_len);
        return -EIO;
    }
    fs_inode_table_set_cached(fs->inodes, ino, inode);
    return 0;
}

void fs_batch_put_inode(struct fs *fs, kv_write_batch *batch, uint64_t ino,
                        const struct fs_inode *inode)
{
    char key[FS_INODE_KEY_LEN], value[FS_INODE_LEN];
    size_t key_len = fs_key_inode(key, ino);
    size_t value_len = fs_inode_encode(value, inode);
    kv_write_batch_put(batch, fs->meta, key, key_len, value, value_len);
}

void fs_inode_cached(struct fs *fs, uint64_t ino, const struct fs_inode *inode)
{
    fs_inode_table_set_cached(fs->inodes, ino, inode);
}

int fs_commit(struct fs *fs, kv_write_batch *batch)
{
    if (fs->options.read_only)
        return -EROFS;
    int rc = kv_write(fs->db, &fs->write_options, batch);
    if (rc != KV_OK) {
        rc = fs_errno(rc);
        if (rc == -ENOSPC)
            atomic_store(&fs->disk_full, true);
        return rc;
    }
    return 0;
}

/* Deletes the reserve file; true if there was one. */
static bool release_reserve(struct fs *fs)
{
    if (fs->reserve_path == NULL || unlink(fs->reserve_path) != 0)
        return false;
    atomic_fetch_add(&fs->reserve_released, 1);
    fprintf(stderr, "lsmfs: %s: disk full: released the %llu-byte reserve\n", fs->path,
            (unsigned long long)fs->reserve_size);
    return true;
}

static void wake_maintenance(struct fs *fs)
{
    pthread_mutex_lock(&fs->maintenance_mutex);
    pthread_cond_signal(&fs->maintenance_cond);
    pthread_mutex_unlock(&fs->maintenance_mutex);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fs_commit_freeing(struct fs *fs, kv_write_batch *batch)
{
    int rc = fs_commit(fs, batch);
    if (rc != -ENOSPC)
        return rc;
    /* With the reserve given up (or already gone), flush now: writes are
     * refused while full memtables cannot be flushed. Space may still be
     * short for a moment: a compaction that ran out of it holds its
     * partial output until it fails, and the files of deleted inodes are
     * dropped by the maintenance thread. So wait for it, with growing
     * pauses, rather than refuse a deletion on a disk that deletions are
     * emptying. */
    release_reserve(fs);
    int64_t deadline = now_ms() + FS_FREEING_WAIT_MS;
    int pause_ms = 10;
    bool waited = false;
    for (;;) {
        kv_flush(fs->db, NULL, true);
        rc = fs_commit(fs, batch);
        if (rc != -ENOSPC || now_ms() >= deadline)
            break;
        if (!waited) {
            waited = true;
            atomic_fetch_add(&fs->space_waits, 1);
        }
        wake_maintenance(fs);
        struct timespec pause = {0, (long)pause_ms * 1000000};
        nanosleep(&pause, NULL);
        pause_ms = pause_ms < 250 ? pause_ms * 2 : 500;
    }
    if (rc == -ENOSPC)
        fprintf(stderr, "lsmfs: %s: disk full: a deletion found no space for %d s\n", fs->path,
                FS_FREEING_WAIT_MS / 1000);
    return rc;
}

void fs_ino_spans_add(struct fs_ino_span *spans, int *count, uint64_t ino)
{
    struct fs_ino_span *s = spans;
    int n = *count, i = 0;
    while (i < n && s[i].hi + 1 < ino)
        i++;
    /* s[i] (if any) is the first span that ends at or after ino - 1. */
    if (i < n && s[i].lo <= ino + 1) {
        if (ino < s[i].lo)
            s[i].lo = ino;
        if (ino > s[i].hi)
            s[i].hi = ino;
        if (i + 1 < n && s[i].hi + 1 >= s[i + 1].lo) { /* it now touches the next */
            s[i].hi = s[i + 1].hi;
            memmove(&s[i + 1], &s[i + 2], (size_t)(n - i - 2) * sizeof(*s));
            *count = n - 1;
        }
        return;
    }
    if (n == FS_SETTLE_RANGES) {
        int closest = 0;
        for (int j = 1; j + 1 < n; j++)
            if (s[j + 1].lo - s[j].hi < s[closest + 1].lo - s[closest].hi)
                closest = j;
        uint64_t pair_gap = s[closest + 1].lo - s[closest].hi;
        /* Or ino joins a neighbour, when that bridges a smaller gap. */
        uint64_t left_gap = i > 0 ? ino - s[i - 1].hi : UINT64_MAX;
        uint64_t right_gap = i < n ? s[i].lo - ino : UINT64_MAX;
        if (left_gap <= pair_gap && left_gap <= right_gap) {
            s[i - 1].hi = ino;
            return;
        }
        if (right_gap <= pair_gap) {
            s[i].lo = ino;
            return;
        }
        s[closest].hi = s[closest + 1].hi;
        memmove(&s[closest + 1], &s[closest + 2], (size_t)(n - closest - 2) * sizeof(*s));
        *count = n - 1;
        fs_ino_spans_add(spans, count, ino); /* the merged span may hold ino now */
        return;
    }
    memmove(&s[i + 1], &s[i], (size_t)(n - i) * sizeof(*s));
    s[i].lo = s[i].hi = ino;
    *count = n + 1;
}

/* Data of ino was freed: counted and its inode noted for the settling
 * compaction, or compacted at once on a full disk. */
static void note_freed(struct fs *fs, uint64_t ino, uint64_t blocks, int what_when_full)
{
    if (atomic_load(&fs->disk_full)) {
        /* Compacting the deletions away needs room for its output. */
        release_reserve(fs);
        fs_request_compaction(fs, ino, what_when_full);
        return;
    }
    uint64_t seq = kv_latest_sequence(fs->db); /* at or past the deletion's */
    pthread_mutex_lock(&fs->maintenance_mutex);
    fs_ino_spans_add(fs->freed, &fs->freed_count, ino);
    if (seq > fs->freed_seq)
        fs->freed_seq = seq;
    int64_t now = now_ms();
    if (fs->freed_bytes == 0)
        fs->freed_first_ms = now;
    uint64_t before = fs->freed_bytes;
    fs->freed_bytes += blocks * fs->block_size;
    fs->freed_last_ms = now;
    /* The thread learns when the spans fall due as the count crosses a
     * threshold; later frees only put that off, which it finds when it
     * wakes. */
    if ((before < FS_SETTLE_BYTES && fs->freed_bytes >= FS_SETTLE_BYTES) ||
        (before < FS_COMPACT_FREED_BYTES && fs->freed_bytes >= FS_COMPACT_FREED_BYTES))
        pthread_cond_signal(&fs->maintenance_cond);
    pthread_mutex_unlock(&fs->maintenance_mutex);
}

void fs_note_deleted_data(struct fs *fs, uint64_t ino, uint64_t blocks)
{
    if (!atomic_load(&fs->disk_full) && blocks * fs->block_size >= FS_DROP_DELETED_BYTES)
        fs_request_compaction(fs, ino, FS_SPACE_DROP);
    note_freed(fs, ino, blocks, FS_SPACE_DROP | FS_SPACE_COMPACT);
}

void fs_note_trimmed_data(struct fs *fs, uint64_t ino, uint64_t blocks)
{
    note_freed(fs, ino, blocks, FS_SPACE_COMPACT);
}

void fs_request_compaction(struct fs *fs, uint64_t ino, int what)
{
    const int capacity = (int)(sizeof(fs->requests) / sizeof(fs->requests[0]));
    pthread_mutex_lock(&fs->maintenance_mutex);
    int i = 0;
    while (i < fs->request_count && fs->requests[i].ino != ino)
        i++;
    if (i < fs->request_count) {
        fs->requests[i].what |= what;
    } else if (i < capacity) {
        fs->requests[i].ino = ino;
        fs->requests[i].what = what;
        fs->request_count++;
    } else {
        fs->compact_all = true;
    }
    pthread_cond_signal(&fs->maintenance_cond);
    pthread_mutex_unlock(&fs->maintenance_mutex);
}

/* Creates the reserve file when it is missing and the disk has room for
 * it four times over. */
static void ensure_reserve(struct fs *fs)
{
    if (fs->reserve_path == NULL || access(fs->reserve_path, F_OK) == 0)
        return;
    struct statvfs device;
    if (statvfs(fs->path, &device) != 0 ||
        (uint64_t)device.f_bavail * device.f_frsize < 4 * fs->reserve_size)
        return;
    int fd = open(fs->reserve_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    int rc = posix_fallocate(fd, 0, (off_t)fs->reserve_size);
    if (rc == 0)
        rc = fsync(fd);
    close(fd);
    if (rc != 0)
        unlink(fs->reserve_path);
}

/* Drops the SST files that hold only blocks of deleted inode ino. Its
 * blocks are all deleted, and nothing reads data through an older
 * snapshot, so this is safe (kv_delete_files_in_range's contract). */
static void drop_deleted_files(struct fs *fs, uint64_t ino)
{
    char begin[FS_DATA_KEY_LEN], end[FS_DATA_KEY_LEN];
    fs_key_data(begin, ino, 0);
    fs_key_data(end, ino + 1, 0);
    kv_delete_files_in_range(fs->db, fs->data, begin, sizeof(begin), end, sizeof(end), NULL);
}

/* 0 when the freed data is due to be compacted (FS_SETTLE_BYTES), the
 * milliseconds until it is, or -1 when too little has gathered
 * (maintenance_mutex held). */
static int64_t settle_due_in_ms(struct fs *fs)
{
    if (fs->freed_bytes < FS_SETTLE_BYTES)
        return -1;
    /* A snapshot of the data older than the frees (a read under way)
     * would keep what they delete through the compaction: wait until it
     * is released. (Directories hold snapshots of the meta family only.) */
    if (kv_oldest_snapshot_sequence(fs->db, fs->data) < fs->freed_seq)
        return FS_SETTLE_MS;
    if (fs->freed_bytes >= FS_COMPACT_FREED_BYTES)
        return 0;
    int64_t due = fs->freed_last_ms + FS_SETTLE_MS;
    if (due > fs->freed_first_ms + FS_SETTLE_MAX_MS) /* a trickle of frees */
        due = fs->freed_first_ms + FS_SETTLE_MAX_MS;
    int64_t left = due - now_ms();
    return left > 0 ? left : 0;
}

/* Takes the spans of freed inodes (maintenance_mutex held) when they are
 * due, or when `any` and there are some; the count taken. */
static int take_freed(struct fs *fs, bool any, struct fs_ino_span *out)
{
    if (fs->freed_count == 0 || (!any && settle_due_in_ms(fs) != 0))
        return 0;
    int count = fs->freed_count;
    memcpy(out, fs->freed, (size_t)count * sizeof(*out));
    fs->freed_count = 0;
    fs->freed_bytes = 0;
    return count;
}

/* Compacts the data key ranges of the inode spans. */
static void compact_spans(struct fs *fs, const struct fs_ino_span *spans, int count)
{
    for (int i = 0; i < count; i++) {
        char begin[FS_DATA_KEY_LEN], end[FS_DATA_KEY_LEN];
        fs_key_data(begin, spans[i].lo, 0);
        fs_key_data(end, spans[i].hi + 1, 0);
        kv_compact_range(fs->db, fs->data, begin, sizeof(begin), end, sizeof(end));
    }
}

static void *maintenance_main(void *arg)
{
    struct fs *fs = arg;
    /* Inodes deleted while the disk was full: their files are dropped
     * again on every round until space is back (a file that a compaction
     * was using when the inode was deleted could not be dropped then). */
    uint64_t retry[64];
    int retry_count = 0;
    pthread_mutex_lock(&fs->maintenance_mutex);
    while (!fs->maintenance_stop) {
        int64_t settle_in = settle_due_in_ms(fs);
        if (fs->request_count == 0 && !fs->compact_all && settle_in != 0) {
            int64_t wait_ms = atomic_load(&fs->disk_full) ? 1000 : 5000;
            if (settle_in > 0 && settle_in < wait_ms)
                wait_ms = settle_in;
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += wait_ms / 1000;
            until.tv_nsec += (wait_ms % 1000) * 1000000;
            if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&fs->maintenance_cond, &fs->maintenance_mutex, &until);
            if (fs->maintenance_stop)
                break;
        }
        struct fs_space_request requests[sizeof(fs->requests) / sizeof(fs->requests[0])];
        int count = fs->request_count;
        bool all = fs->compact_all;
        memcpy(requests, fs->requests, (size_t)count * sizeof(requests[0]));
        fs->request_count = 0;
        fs->compact_all = false;
        struct fs_ino_span settle[FS_SETTLE_RANGES];
        int settle_count = take_freed(fs, false, settle);
        pthread_mutex_unlock(&fs->maintenance_mutex);

        bool full = atomic_load(&fs->disk_full);
        for (int i = 0; i < count; i++) {
            if (!(requests[i].what & FS_SPACE_DROP))
                continue;
            drop_deleted_files(fs, requests[i].ino);
            if (full && retry_count < (int)(sizeof(retry) / sizeof(retry[0])))
                retry[retry_count++] = requests[i].ino;
        }
        for (int i = 0; i < retry_count; i++)
            drop_deleted_files(fs, retry[i]);
        if (all) {
            kv_compact_range(fs->db, fs->data, NULL, 0, NULL, 0);
            kv_compact_range(fs->db, fs->meta, NULL, 0, NULL, 0);
        } else {
            for (int i = 0; i < count; i++) {
                if (!(requests[i].what & FS_SPACE_COMPACT))
                    continue;
                char begin[FS_DATA_KEY_LEN], end[FS_DATA_KEY_LEN];
                fs_key_data(begin, requests[i].ino, 0);
                fs_key_data(end, requests[i].ino + 1, 0);
                kv_compact_range(fs->db, fs->data, begin, sizeof(begin), end, sizeof(end));
            }
            compact_spans(fs, settle, settle_count);
        }
        struct statvfs device;
        if (full && statvfs(fs->path, &device) == 0 &&
            (uint64_t)device.f_bavail * device.f_frsize >= 4 * fs->reserve_size) {
            atomic_store(&fs->disk_full, false);
            retry_count = 0;
        }
        if (!fs->options.read_only)
            ensure_reserve(fs);
        pthread_mutex_lock(&fs->maintenance_mutex);
    }
    pthread_mutex_unlock(&fs->maintenance_mutex);
    return NULL;
}

/* Sizes and creates the reserve, starts the maintenance thread. */
static void start_maintenance(struct fs *fs)
{
    struct statvfs device;
    uint64_t total =
        statvfs(fs->path, &device) == 0 ? (uint64_t)device.f_blocks * device.f_frsize : 0;
    /* 1% of the device, from 4 MiB to 256 MiB: room to write deletions
     * and to compact them. */
    uint64_t size = total / 100;
    size = size < (4u << 20) ? (4u << 20) : size > (256u << 20) ? (256u << 20) : size;
    size_t n = strlen(fs->path) + sizeof("/lsmfs.reserve");
    fs->reserve_path = malloc(n);
    if (fs->reserve_path != NULL)
        snprintf(fs->reserve_path, n, "%s/lsmfs.reserve", fs->path);
    fs->reserve_size = size;
    if (!fs->options.read_only)
        ensure_reserve(fs);
    fs->maintenance_started =
        pthread_create(&fs->maintenance_thread, NULL, maintenance_main, fs) == 0;
}

static void stop_maintenance(struct fs *fs)
{
    if (fs->maintenance_started) {
        pthread_mutex_lock(&fs->maintenance_mutex);
        fs->maintenance_stop = true;
        pthread_cond_signal(&fs->maintenance_cond);
        pthread_mutex_unlock(&fs->maintenance_mutex);
        pthread_join(fs->maintenance_thread, NULL);
        fs->maintenance_started = false;
    }
    free(fs->reserve_path);
    fs->reserve_path = NULL;
}

void fs_fill_stat(const struct fs *fs, uint64_t ino, const struct fs_inode *inode, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    st->st_mode = inode->mode;
    st->st_nlink = inode->nlink;
    st->st_uid = inode->uid;
    st->st_gid = inode->gid;
    st->st_rdev = inode->rdev;
    st->st_size = (off_t)inode->size;
    st->st_blksize = 1 << 20; /* = max_write: cp and stdio then move 1 MiB at a time */
    st->st_blocks = (blkcnt_t)(inode->blocks * (fs->block_size / 512));
    st->st_atim = fs_timespec(inode->atime_ns);
    st->st_mtim = fs_timespec(inode->mtime_ns);
    st->st_ctim = fs_timespec(inode->ctime_ns);
}

struct timespec fs_timespec(int64_t ns)
{
    /* Floor division: a time before 1970 still has 0 <= tv_nsec < 1e9. */
    int64_t sec = ns / 1000000000, rest = ns % 1000000000;
    if (rest < 0) {
        sec--;
        rest += 1000000000;
    }
    return (struct timespec){.tv_sec = (time_t)sec, .tv_nsec = (long)rest};
}

/* ---- inode numbers ---- */

static int super_store(struct fs *fs, const struct fs_super *super)
{
    char key[1], value[FS_SUPER_LEN];
    size_t value_len = fs_super_encode(value, super);
    int rc = kv_put(fs->db, &fs->write_options, fs->meta, key, fs_key_super(key), value, value_len);
    return rc == KV_OK ? 0 : fs_errno(rc);
}

int fs_alloc_ino(struct fs *fs, uint64_t *ino)
{
    pthread_mutex_lock(&fs->super_mutex);
    if (fs->next_ino >= fs->super.next_ino) {
        /* Reserve the next range before handing out any number in it. The
         * WAL is replayed as a prefix, so a create that follows this write
         * can never survive a crash without it. */
        struct fs_super super = fs->super;
        super.next_ino = fs->next_ino + FS_INO_BATCH;
        int rc = super_store(fs, &super);
        if (rc != 0) {
            pthread_mutex_unlock(&fs->super_mutex);
            return rc;
        }
        fs->super = super;
    }
    *ino = fs->next_ino++;
    pthread_mutex_unlock(&fs->super_mutex);
    return 0;
}

/* ---- reclamation ---- */

#define POINT_DELETE_MAX 32

void fs_batch_delete_blocks(struct fs *fs, kv_write_batch *batch, uint64_t ino, uint64_t first,
                            uint64_t end)
{
    char begin[FS_DATA_KEY_LEN], limit[FS_DATA_KEY_LEN];
    if (first >= end)
        return;
    if (end - first <= POINT_DELETE_MAX) {
        for (uint64_t block = first; block < end; block++)
            kv_write_batch_delete(batch, fs->data, begin, fs_key_data(begin, ino, block));
        return;
    }
    fs_key_data(begin, ino, first);
    fs_key_data(limit, ino, end);
    kv_write_batch_delete_range(batch, fs->data, begin, sizeof(begin), limit, sizeof(limit));
}

int fs_batch_reclaim(struct fs *fs, kv_write_batch *batch, uint64_t ino,
                     const struct fs_inode *inode)
{
    char key[FS_KEY_MAX];
    size_t len = fs_key_inode(key, ino);
    kv_write_batch_delete(batch, fs->meta, key, len);
    len = fs_key_orphan(key, ino);
    kv_write_batch_delete(batch, fs->meta, key, len);
    if (S_ISLNK(inode->mode))
        fs_batch_delete_blocks(fs, batch, ino, 0, 1);
    else if (S_ISREG(inode->mode) && inode->blocks > 0)
        fs_batch_delete_blocks(fs, batch, ino, 0, fs_blocks_spanned(fs, inode->size));
    if (!(inode->flags & FS_INODE_HAS_XATTRS))
        return 0;
    /* An inode has few attributes: delete them one by one. */
    kv_iterator *it = kv_iterator_create(fs->db, NULL, fs->meta);
    if (it == NULL)
        return -ENOMEM;
    size_t prefix_len = fs_key_xattr(key, ino, "", 0);
    char prefix[FS_INODE_KEY_LEN];
    memcpy(prefix, key, prefix_len);
    for (kv_iterator_seek(it, prefix, prefix_len); kv_iterator_valid(it); kv_iterator_next(it)) {
        const char *k = kv_iterator_key(it, &len);
        if (len < prefix_len || memcmp(k, prefix, prefix_len) != 0)
            break;
        kv_write_batch_delete(batch, fs->meta, k, len);
    }
    int rc = fs_errno(kv_iterator_status(it));
    kv_iterator_destroy(it);
    return rc;
}

/* Reads the stored record of ino, bypassing the cache. */
static int inode_read_stored(struct fs *fs, uint64_t ino, struct fs_inode *inode)
{
    char key[FS_INODE_KEY_LEN];
    char *value;
    size_t value_len;
    int rc = kv_get(fs->db, NULL, fs->meta, key, fs_key_inode(key, ino), &value, &value_len);
    if (rc != KV_OK)
        return fs_errno(rc);
    rc = fs_inode_decode(value, value_len, inode);
    kv_free(value);
    return rc;
}

void fs_reclaim_if_unused(struct fs *fs, uint64_t ino)
{
    if (ino == FS_ROOT_INO || fs_inode_table_in_use(fs->inodes, ino))
        return;
    /* The entry (and its cache) is gone: read the stored record. */
    struct fs_inode inode;
    if (inode_read_stored(fs, ino, &inode) != 0 || inode.nlink > 0)
        return;
    kv_write_batch *batch = kv_write_batch_create();
    if (fs_batch_reclaim(fs, batch, ino, &inode) == 0 && fs_commit_freeing(fs, batch) == 0) {
        atomic_fetch_add(&fs->orphans_reclaimed, 1);
        /* Its space comes back only once its data's deletions are
         * compacted (fs_note_deleted_data). */
        if (S_ISREG(inode.mode) && inode.blocks > 0)
            fs_note_deleted_data(fs, ino, inode.blocks);
    }
    /* On failure the orphan record stays and the next mount reclaims it. */
    kv_write_batch_destroy(batch);
}

/* Reclaims every orphan record left by an earlier run (no handle and no
 * kernel reference survives a remount). */
static int reclaim_orphans(struct fs *fs)
{
    char prefix[1] = {FS_TAG_ORPHAN};
    int rc = 0;
    kv_iterator *it = kv_iterator_create(fs->db, NULL, fs->meta);
    if (it == NULL)
        return fs_errno(KV_IO_ERROR);
    kv_write_batch *batch = kv_write_batch_create();
    uint64_t count = 0;
    /* The regular files with data among them, noted once committed. */
    struct reclaimed_file {
        uint64_t ino, blocks;
    } *files = NULL;
    size_t file_count = 0;
    for (kv_iterator_seek(it, prefix, 1); kv_iterator_valid(it); kv_iterator_next(it)) {
        size_t len;
        const char *key = kv_iterator_key(it, &len);
        uint64_t ino;
        if (len == 0 || key[0] != FS_TAG_ORPHAN)
            break;
        if (!fs_key_parse_ino(key, len, FS_TAG_ORPHAN, &ino))
            continue;
        struct fs_inode inode;
        rc = inode_read_stored(fs, ino, &inode);
        if (rc == -ENOENT) { /* only the orphan record is left */
            kv_write_batch_delete(batch, fs->meta, key, len);
            rc = 0;
        } else if (rc == 0 && inode.nlink == 0) {
            rc = fs_batch_reclaim(fs, batch, ino, &inode);
            if (rc == 0 && S_ISREG(inode.mode) && inode.blocks > 0) {
                struct reclaimed_file *grown = realloc(files, (file_count + 1) * sizeof(*files));
                if (grown == NULL) {
                    rc = -ENOMEM;
                    break;
                }
                files = grown;
                files[file_count].ino = ino;
                files[file_count++].blocks = inode.blocks;
            }
        } else if (rc == 0) {
            kv_write_batch_delete(batch, fs->meta, key, len); /* linked again: keep it */
        }
        if (rc != 0)
            break;
        count++;
    }
    if (rc == 0)
        rc = fs_errno(kv_iterator_status(it));
    kv_iterator_destroy(it);
    if (rc == 0 && count > 0 && !fs->options.read_only)
        rc = fs_errno(kv_write(fs->db, &fs->write_options, batch));
    kv_write_batch_destroy(batch);
    if (rc == 0 && !fs->options.read_only)
        for (size_t i = 0; i < file_count; i++)
            fs_note_deleted_data(fs, files[i].ino, files[i].blocks);
    free(files);
    if (rc != 0)
        return rc;
    atomic_fetch_add(&fs->orphans_reclaimed, count);
    return 0;
}

/* ---- open, format, close ---- */

static void set_error(char *errbuf, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (errbuf != NULL && errlen > 0)
        snprintf(errbuf, errlen, fmt, a, b);
}

/* 1 if the directory is missing or empty, 0 if it has entries, -errno. */
static int dir_is_empty(const char *path)
{
    DIR *dir = opendir(path);
    if (dir == NULL)
        return errno == ENOENT ? 1 : -errno;
    struct dirent *entry;
    int empty = 1;
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0) {
            empty = 0;
            break;
        }
    }
    closedir(dir);
    return empty;
}

static void make_uuid(uint8_t uuid[16])
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, uuid, 16) : -1;
    if (fd >= 0)
        close(fd);
    if (n != 16) {
        uint64_t t = (uint64_t)fs_now_ns() ^ (uint64_t)getpid() << 32;
        memcpy(uuid, &t, 8);
        memcpy(uuid + 8, &t, 8);
    }
    uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);
    uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
}

/* Writes the superblock and the root directory of a fresh file system. */
static int format(struct fs *fs)
{
    int64_t now = fs_now_ns();
    fs->super.format_version = FS_FORMAT_VERSION;
    fs->super.block_size = fs->options.block_size;
    fs->super.next_ino = FS_ROOT_INO + 1;
    fs->super.created_ns = now;
    make_uuid(fs->super.uuid);
    struct fs_inode root = {
        .mode = S_IFDIR | 0755,
        .uid = getuid(),
        .gid = getgid(),
        .nlink = 2,
        .generation = 1,
        .atime_ns = now,
        .mtime_ns = now,
        .ctime_ns = now,
        .btime_ns = now,
        .parent = FS_ROOT_INO,
    };
    kv_write_batch *batch = kv_write_batch_create();
    char key[1], value[FS_SUPER_LEN];
    size_t value_len = fs_super_encode(value, &fs->super);
    kv_write_batch_put(batch, fs->meta, key, fs_key_super(key), value, value_len);
    fs_batch_put_inode(fs, batch, FS_ROOT_INO, &root);
    kv_write_options sync = {.sync = true};
    int rc = kv_write(fs->db, &sync, batch);
    kv_write_batch_destroy(batch);
    return rc;
}

static int open_family(struct fs *fs, const char *name, kv_cf **out, bool create)
{
    *out = kv_get_cf(fs->db, name);
    if (*out != NULL)
        return KV_OK;
    if (!create)
        return KV_NOT_FOUND;
    return kv_create_cf(fs->db, name, out);
}

int fs_open(const char *path, const struct fs_options *options, struct fs **out, char *errbuf,
            size_t errlen)
{
    *out = NULL;
    uint32_t bs = options->block_size;
    if (bs < 512 || bs > (1u << 20) || (bs & (bs - 1)) != 0) {
        set_error(errbuf, errlen, "%s: block size must be a power of two from 512 to 1 MiB%s", path,
                  "");
        return -EINVAL;
    }
    int empty = dir_is_empty(path);
    if (empty < 0) {
        set_error(errbuf, errlen, "%s: %s", path, strerror(-empty));
        return empty;
    }
    if (empty && options->read_only) {
        set_error(errbuf, errlen, "%s: no file system to mount read-only%s", path, "");
        return -EINVAL;
    }
    if (!empty) {
        char current[4096];
        snprintf(current, sizeof(current), "%s/CURRENT", path);
        if (access(current, F_OK) != 0) {
            set_error(errbuf, errlen,
                      "%s: not an lsmfs data directory (it is not empty and has no CURRENT "
                      "file)%s",
                      path, "");
            return -EINVAL;
        }
    }

    struct fs *fs = calloc(1, sizeof(*fs));
    if (fs == NULL)
        return -ENOMEM;
    fs->path = strdup(path);
    fs->options = *options;
    fs->write_options.sync = options->sync_writes;
    fs->inodes = fs_inode_table_create();
    pthread_mutex_init(&fs->super_mutex, NULL);
    pthread_mutex_init(&fs->maintenance_mutex, NULL);
    pthread_cond_init(&fs->maintenance_cond, NULL);
    for (int i = 0; i < FS_LOCK_STRIPES; i++)
        pthread_mutex_init(&fs->stripes[i], NULL);
    if (fs->path == NULL || fs->inodes == NULL) {
        fs_close(fs);
        return -ENOMEM;
    }

    kv_options kvo;
    kv_options_init(&kvo);
    kvo.create_if_missing = empty;
    kvo.block_cache_size = options->cache_size;
    kvo.cf.write_buffer_size = options->write_buffer_size;
    /* One memtable filling while one flushes: the daemon's memory stays
     * near 2 * write_buffer_size + cache_size per busy family whatever is
     * written (a writer outrunning the flush waits for it, which is the
     * steady state of a long write anyway). */
    kvo.cf.max_write_buffer_number = 2;
    /* Compaction output is cut at inode boundaries (data keys begin with
     * the inode number), so a large file's blocks fill whole SST files,
     * which deleting the file drops at once (kv_delete_files_in_range). */
    kvo.cf.partition_prefix_length = 8;
    /* File data: 16 KiB blocks (four 4 KiB file blocks each) keep the
     * index of a table, which every open table holds in memory, a quarter
     * of the size; a read then checks 16 KiB instead of 4, a small cost
     * next to its FUSE round trip. Metadata keeps 4 KiB blocks. */
    kvo.num_cf_overrides = 1;
    snprintf(kvo.cf_overrides[0].name, sizeof(kvo.cf_overrides[0].name), "%s", FS_DATA_CF);
    kvo.cf_overrides[0].options = kvo.cf;
    kvo.cf_overrides[0].options.block_size = 16u << 10;
    /* With blob files, the blocks of a large write (at least
     * blob_min_batch_bytes, 64 KiB, of whole blocks in one write group) are
     * written once, to a blob file, instead of to the WAL and then a
     * level-0 table; small writes stay in the tree. */
    if (options->blob_files)
        kvo.cf_overrides[0].options.blob_min_size =
            options->block_size < 16 ? 16 : options->block_size;
    kvo.env = options->env;
    /* The daemon's descriptors are bounded by the table cache. */
    kvo.max_open_files = 1000;
    if (empty)
        mkdir(path, 0700);
    int rc = kv_open(&kvo, path, &fs->db);
    if (rc != KV_OK) {
        set_error(errbuf, errlen, "%s: %s", path, kv_errmsg());
        fs_close(fs);
        return rc == KV_BUSY ? -EBUSY : fs_errno(rc);
    }
    rc = open_family(fs, FS_META_CF, &fs->meta, empty);
    if (rc == KV_OK)
        rc = open_family(fs, FS_DATA_CF, &fs->data, empty);
    if (rc == KV_NOT_FOUND) {
        set_error(errbuf, errlen, "%s: a kv database but not an lsmfs file system%s", path, "");
        fs_close(fs);
        return -EINVAL;
    }
    if (rc == KV_OK && empty)
        rc = format(fs);
    if (rc != KV_OK) {
        set_error(errbuf, errlen, "%s: %s", path, kv_errmsg());
        fs_close(fs);
        return fs_errno(rc);
    }

    char key[1];
    char *value = NULL;
    size_t value_len = 0;
    rc = kv_get(fs->db, NULL, fs->meta, key, fs_key_super(key), &value, &value_len);
    if (rc == KV_OK) {
        rc = fs_super_decode(value, value_len, &fs->super);
        kv_free(value);
        if (rc == -EPROTO) {
            char versions[64];
            snprintf(versions, sizeof(versions), "%u, this lsmfs reads up to %u",
                     fs->super.format_version, FS_FORMAT_VERSION);
            set_error(errbuf, errlen, "%s: file system format version %s", path, versions);
            fs_close(fs);
            return -EPROTO;
        }
        if (rc != 0) {
            set_error(errbuf, errlen, "%s: superblock damaged or foreign%s", path, "");
            fs_close(fs);
            return -EINVAL;
        }
    } else {
        set_error(errbuf, errlen, "%s: no lsmfs superblock (%s)", path,
                  rc == KV_NOT_FOUND ? "not an lsmfs file system" : kv_errmsg());
        fs_close(fs);
        return rc == KV_NOT_FOUND ? -EINVAL : fs_errno(rc);
    }
    fs->block_size = fs->super.block_size;
    fs->next_ino = fs->super.next_ino; /* numbers reserved before are skipped */

    rc = reclaim_orphans(fs);
    if (rc != 0) {
        set_error(errbuf, errlen, "%s: reclaiming orphans: %s", path, strerror(-rc));
        fs_close(fs);
        return rc;
    }
    start_maintenance(fs);
    fs->opened = true;
    *out = fs;
    return 0;
}

int fs_close(struct fs *fs)
{
    if (fs == NULL)
        return 0;
    int rc = 0;
    stop_maintenance(fs);
    /* The session is over: no handle and no kernel reference is left, so
     * the inodes still waiting for one (the kernel need not send every
     * FORGET before it unmounts, and a reclaim may have found the disk
     * full) go now, and a clean unmount leaves no orphan behind. What
     * fails here is reclaimed at the next mount. */
    if (fs->opened && !fs->options.read_only) {
        int reclaim_rc = reclaim_orphans(fs);
        if (reclaim_rc != 0)
            fprintf(stderr, "lsmfs: %s: reclaiming orphans at close: %s (the next mount will)\n",
                    fs->path, strerror(-reclaim_rc));
        /* Data freed but not compacted yet: the next mount would not know
         * of it. (A failure leaves it to later compactions.) */
        struct fs_ino_span spans[FS_SETTLE_RANGES];
        pthread_mutex_lock(&fs->maintenance_mutex);
        int span_count = take_freed(fs, true, spans);
        pthread_mutex_unlock(&fs->maintenance_mutex);
        compact_spans(fs, spans, span_count);
    }
    if (fs->db != NULL) {
        rc = kv_sync_wal(fs->db);
        int close_rc = kv_close(fs->db);
        if (rc == KV_OK)
            rc = close_rc;
        rc = rc == KV_OK ? 0 : fs_errno(rc);
    }
    fs_inode_table_destroy(fs->inodes);
    for (int i = 0; i < FS_LOCK_STRIPES; i++)
        pthread_mutex_destroy(&fs->stripes[i]);
    pthread_mutex_destroy(&fs->super_mutex);
    pthread_mutex_destroy(&fs->maintenance_mutex);
    pthread_cond_destroy(&fs->maintenance_cond);
    free(fs->path);
    free(fs);
    return rc;
}

int fs_statfs(struct fs *fs, struct statvfs *st)
{
    struct statvfs device;
    if (statvfs(fs->path, &device) != 0)
        return -errno;
    memset(st, 0, sizeof(*st));
    uint64_t unit = device.f_frsize ? device.f_frsize : device.f_bsize;
    st->f_bsize = fs->block_size;
    st->f_frsize = fs->block_size;
    st->f_blocks = device.f_blocks * unit / fs->block_size;
    st->f_bfree = device.f_bfree * unit / fs->block_size;
    st->f_bavail = device.f_bavail * unit / fs->block_size;
    /* Inodes are keys: as many as space allows, roughly one per 256 bytes. */
    st->f_files = st->f_blocks * (fs->block_size / 256);
    pthread_mutex_lock(&fs->super_mutex);
    uint64_t used = fs->next_ino - FS_ROOT_INO;
    pthread_mutex_unlock(&fs->super_mutex);
    uint64_t room = st->f_bavail * (fs->block_size / 256);
    st->f_files = used + room;
    st->f_ffree = room;
    st->f_favail = room;
    st->f_namemax = FS_NAME_MAX;
    st->f_fsid = device.f_fsid;
    return 0;
}

int fs_fsync(struct fs *fs)
{
    int rc = kv_sync_wal(fs->db);
    return rc == KV_OK ? 0 : fs_errno(rc);
}
