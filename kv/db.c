/*
 * db.c — opening (with recovery), closing and destroying a database,
 * column families, snapshots, and deletion of obsolete files.
 *
 * Open: refuse a foreign directory before touching it; take the LOCK;
 * replay the MANIFEST (VersionSet), then every WAL the families still
 * need, into memtables; write a fresh MANIFEST; open a new WAL; delete what
 * is obsolete; start the background threads.
 */
#include "db_impl.h"

#include "error.h"
#include "env_fault.h"
#include "filename.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

kv_cf *kv_db_find_cf_by_id(kv_db *db, uint32_t id)
{
    for (size_t i = 0; i < db->num_cfs; i++)
        if (db->cfs[i]->id == id && !db->cfs[i]->dropped)
            return db->cfs[i];
    return NULL;
}

static kv_cf *add_cf(kv_db *db, uint32_t id, const char *name, uint64_t log_number,
                     kv_version *version)
{
    kv_cf *cf = kv_calloc(1, sizeof(*cf));
    cf->db = db;
    cf->id = id;
    cf->name = kv_strdup(name);
    cf->options = db->options.cf;
    for (int i = 0; i < db->options.num_cf_overrides; i++)
        if (strcmp(db->options.cf_overrides[i].name, name) == 0)
            cf->options = db->options.cf_overrides[i].options;
    cf->table_options = kv_cf_table_options(&cf->options);
    cf->mem = kv_memtable_create(db->next_memtable_id++);
    kv_memtable_list_init(&cf->imm);
    cf->current = version;
    kv_version_ref(version);
    cf->log_number = log_number;
    pthread_mutex_init(&cf->sv_mutex, NULL);
    kv_cf_install_super_version(cf);
    if (db->num_cfs == db->cfs_cap) {
        db->cfs_cap = db->cfs_cap ? db->cfs_cap * 2 : 4;
        db->cfs = kv_realloc(db->cfs, db->cfs_cap * sizeof(kv_cf *));
    }
    db->cfs[db->num_cfs++] = cf;
    return cf;
}

static void free_cf(kv_cf *cf)
{
    pthread_mutex_destroy(&cf->sv_mutex);
    for (int level = 0; level < KV_NUM_LEVELS; level++)
        kv_buf_free(&cf->compact_pointer[level]);
    kv_superversion_unref(cf->super_version);
    kv_memtable_unref(cf->mem);
    kv_memtable_list_free(&cf->imm);
    kv_version_unref(cf->current);
    free(cf->name);
    free(cf);
}

uint64_t kv_db_min_log_needed(kv_db *db)
{
    uint64_t min = db->wal_number;
    for (size_t i = 0; i < db->num_cfs; i++) {
        kv_cf *cf = db->cfs[i];
        if (cf->dropped)
            continue;
        bool holds_data = kv_memtable_num_entries(cf->mem) > 0 ||
                          kv_memtable_num_range_deletes(cf->mem) > 0 || cf->imm.count > 0;
        if (holds_data && cf->log_number < min)
            min = cf->log_number;
    }
    return min;
}

static bool table_is_live(kv_db *db, uint64_t number)
{
    for (size_t i = 0; i < db->num_pending_outputs; i++)
        if (db->pending_outputs[i] == number)
            return true;
    /* Compacted-away files wait in obsolete_files until no version uses
     * them; everything else a version references is in a current one. */
    for (size_t i = 0; i < db->num_obsolete_files; i++)
        if (db->obsolete_files[i]->number == number)
            return true;
    for (size_t c = 0; c < db->num_cfs; c++) {
        kv_version *v = db->cfs[c]->current;
        for (int level = 0; level < KV_NUM_LEVELS; level++)
            for (size_t i = 0; i < v->num_files[level]; i++)
                if (v->files[level][i]->number == number)
                    return true;
    }
    return false;
}

/* Paths to remove once the mutex is released. */
typedef struct doomed_files {
    char **paths;
    size_t count, capacity;
} doomed_files;

static void doom(doomed_files *d, char *path)
{
    if (d->count == d->capacity) {
        d->capacity = d->capacity ? 2 * d->capacity : 8;
        d->paths = kv_realloc(d->paths, d->capacity * sizeof(*d->paths));
    }
    d->paths[d->count++] = path;
}

/* Every table, MANIFEST and temporary file in the directory that nothing
 * refers to (at open, after a drop) goes into `doomed`. */
static void find_unreferenced_files(kv_db *db, doomed_files *doomed)
{
    char **names;
    size_t count;
    if (kv_env_list_dir(db->path, &names, &count) != 0)
        return;
    for (size_t i = 0; i < count; i++) {
        uint64_t number;
        enum kv_file_type type;
        if (!kv_parse_file_name(names[i], &number, &type))
            continue;
        bool obsolete = (type == KV_FILE_TABLE && !table_is_live(db, number)) ||
                        (type == KV_FILE_MANIFEST && number != db->versions.manifest_file_number) ||
                        type == KV_FILE_TEMP;
        if (!obsolete)
            continue;
        if (type == KV_FILE_TABLE)
            kv_table_cache_evict(db->table_cache, number);
        doom(doomed, kv_sprintf("%s/%s", db->path, names[i]));
        kv_info_log_printf(db->info_log, "deleted obsolete file %s", names[i]);
    }
    kv_env_free_names(names, count);
}

void kv_db_delete_obsolete_files(kv_db *db, bool scan_directory)
{
    doomed_files doomed = {0};
    uint64_t min_log = kv_db_min_log_needed(db);
    size_t kept = 0;
    for (size_t i = 0; i < db->num_alive_wals; i++) {
        uint64_t number = db->alive_wals[i];
        if (number < min_log && number != db->wal_number) {
            db->alive_wal_bytes -= db->alive_wal_sizes[i];
            doom(&doomed, kv_log_file_name(db->path, number));
            kv_info_log_printf(db->info_log, "deleted obsolete WAL %06" PRIu64 ".log", number);
        } else {
            db->alive_wal_sizes[kept] = db->alive_wal_sizes[i];
            db->alive_wals[kept++] = number;
        }
    }
    db->num_alive_wals = kept;

    /* Our reference is the last one: no version, hence no reader, uses the
     * file any more. */
    kept = 0;
    for (size_t i = 0; i < db->num_obsolete_files; i++) {
        kv_file_meta *f = db->obsolete_files[i];
        if (atomic_load(&f->refs) > 1) {
            db->obsolete_files[kept++] = f;
            continue;
        }
        kv_table_cache_evict(db->table_cache, f->number);
        doom(&doomed, kv_table_file_name(db->path, f->number));
        atomic_fetch_add(&db->stats.obsolete_files_deleted, 1);
        kv_info_log_printf(db->info_log, "deleted obsolete table %06" PRIu64 ".sst", f->number);
        kv_file_meta_unref(f);
    }
    db->num_obsolete_files = kept;
    if (scan_directory)
        find_unreferenced_files(db, &doomed);

    /* Blob files nothing refers to any more (blob.h). */
    size_t num_blobs;
    uint64_t *blobs = kv_blob_set_take_unused(&db->blobs, 0, &num_blobs);
    for (size_t i = 0; i < num_blobs; i++) {
        /* A closed file not synced yet: its descriptor would keep the
         * space, and nothing needs its data any more. */
        for (size_t u = 0; u < db->num_unsynced_blobs; u++) {
            char *name = kv_blob_file_name(db->path, blobs[i]);
            bool same = strcmp(db->unsynced_blobs[u]->path, name) == 0;
            free(name);
            if (same) {
                kv_writable_close(db->unsynced_blobs[u]);
                db->unsynced_blobs[u] = db->unsynced_blobs[--db->num_unsynced_blobs];
                break;
            }
        }
        doom(&doomed, kv_blob_file_name(db->path, blobs[i]));
        atomic_fetch_add(&db->stats.blob_files_deleted, 1);
        kv_info_log_printf(db->info_log, "deleted obsolete blob file %06" PRIu64 ".blob", blobs[i]);
    }
    free(blobs);

    /* Removing a large file takes milliseconds (the file system frees its
     * extents): do it without the mutex, so that writers, which take the
     * mutex, do not wait for it. Nothing can bring these files back into
     * use meanwhile: file numbers are never reused. */
    if (doomed.count == 0)
        return;
    pthread_mutex_unlock(&db->mutex);
    for (size_t i = 0; i < doomed.count; i++) {
        kv_env_remove(db->env, doomed.paths[i]);
        free(doomed.paths[i]);
    }
    free(doomed.paths);
    pthread_mutex_lock(&db->mutex);
}

/* ---- open ---- */

/* Is `dir` a database (CURRENT), empty, or something else? Decided before
 * anything in it is touched. */
static int check_directory(const kv_options *options, const char *path, bool *exists)
{
    char **names;
    size_t count;
    *exists = false;
    int rc = kv_env_list_dir(path, &names, &count);
    if (rc != 0) {
        if (!options->create_if_missing)
            return kv_error(KV_INVALID_ARGUMENT,
                            "%s: no database here (and create_if_missing is off)", path);
        rc = kv_env_mkdir(path);
        if (rc != 0)
            return rc;
        return 0;
    }
    bool has_current = false, has_foreign = false, has_ours = false;
    for (size_t i = 0; i < count; i++) {
        uint64_t number;
        enum kv_file_type type;
        if (strcmp(names[i], ".") == 0 || strcmp(names[i], "..") == 0)
            continue;
        if (!kv_parse_file_name(names[i], &number, &type))
            has_foreign = true;
        else if (type == KV_FILE_CURRENT)
            has_current = true;
        else if (type != KV_FILE_LOCK && type != KV_FILE_INFO_LOG)
            has_ours = true;
    }
    kv_env_free_names(names, count);
    if (has_current) {
        *exists = true;
        if (options->error_if_exists)
            return kv_error(KV_EXISTS, "%s: a database exists here (error_if_exists is set)", path);
        return 0;
    }
    if (has_ours)
        return kv_error(KV_CORRUPTION,
                        "%s: has database files but no CURRENT file; refusing to guess (restore "
                        "CURRENT or remove the directory)",
                        path);
    if (has_foreign)
        return kv_error(KV_INVALID_ARGUMENT,
                        "%s: not a kv database (no CURRENT file) and not empty; refusing to use it",
                        path);
    if (!options->create_if_missing)
        return kv_error(KV_INVALID_ARGUMENT, "%s: no database here (and create_if_missing is off)",
                        path);
    return 0;
}

typedef struct replay_context {
    kv_db *db;
    uint64_t wal_number;
    kv_seq max_seq;
    int status;
} replay_context;

static int replay_entry(void *arg, uint32_t cf_id, kv_seq seq, int type, kv_slice key,
                        kv_slice value)
{
    replay_context *ctx = arg;
    if (seq > ctx->max_seq)
        ctx->max_seq = seq;
    kv_cf *cf = kv_db_find_cf_by_id(ctx->db, cf_id);
    /* Entries of dropped families, or already in a family's SSTs, are
     * skipped. */
    if (cf == NULL || ctx->wal_number < cf->log_number)
        return 0;
    kv_memtable_add(cf->mem, seq, type, key, value);
    if (type == KV_TYPE_BLOB_INDEX) {
        kv_blob_ref ref;
        if (!kv_blob_ref_decode(value, &ref))
            return kv_error(KV_CORRUPTION, "malformed blob index");
        kv_blob_file *f = kv_blob_set_get(&ctx->db->blobs, ref.file);
        kv_memtable_pin_blob(cf->mem, f);
        kv_blob_file_unref(f);
    }
    return 0;
}

/* Checks the values a batch's blob indexes point to. */
typedef struct blob_check {
    kv_db *db;
    uint64_t wal_number;
    bool lost; /* a value runs past the end of its file, or the file is gone */
    kv_buf scratch;
} blob_check;

static int check_blob_entry(void *arg, uint32_t cf_id, kv_seq seq, int type, kv_slice key,
                            kv_slice value)
{
    (void)seq;
    blob_check *check = arg;
    if (type != KV_TYPE_BLOB_INDEX)
        return 0;
    /* Entries replay_entry skips (already in a family's tables, or of a
     * dropped family) may point into blob files deleted since. */
    kv_cf *cf = kv_db_find_cf_by_id(check->db, cf_id);
    if (cf == NULL || check->wal_number < cf->log_number)
        return 0;
    kv_blob_ref ref;
    if (!kv_blob_ref_decode(value, &ref))
        return kv_error(KV_CORRUPTION, "malformed blob index");
    (void)key;
    char *path = kv_blob_file_name(check->db->path, ref.file);
    uint64_t size = 0;
    bool there = kv_env_file_size(path, &size) == 0 && ref.offset + ref.size <= size;
    free(path);
    /* Present and not zeros (a power cut can leave an appended block
     * allocated but unwritten): taken as written. Its checksum is checked
     * when it is read, so damage costs the reads of that value (EIO), as
     * in a table, not the writes logged after it. */
    if (there && kv_blob_set_read_record(&check->db->blobs, &ref, &check->scratch) == 0 &&
        check->scratch.size == ref.size) {
        for (size_t i = 0; i < check->scratch.size; i++)
            if (check->scratch.data[i] != 0)
                return 0;
    }
    check->lost = true;
    return 1; /* stop */
}

/* A batch's sequences must follow every sequence replayed before it: the
 * writer assigns them in increasing order across records and logs, and
 * burns them even when a write fails (db_write.c). Anything else is damage
 * the checksum did not catch, and must not reach the memtable, which
 * cannot hold the same (key, sequence) twice (skiplist.c asserts it does
 * not). Empty batches carry a sequence but use none. */
static int check_batch_order(const kv_write_batch *batch, kv_seq replayed_up_to)
{
    kv_seq first = kv_write_batch_sequence(batch);
    if (kv_write_batch_count(batch) > 0 && first <= replayed_up_to)
        return kv_error(KV_CORRUPTION,
                        "write batch: sequence %" PRIu64 " is not after %" PRIu64
                        ", the last one replayed before it",
                        first, replayed_up_to);
    return 0;
}

/* Replays one WAL into the memtables. Full memtables become immutable
 * (flushed once the background threads run). *replayed_up_to is the last
 * sequence replayed from earlier WALs on entry, and from this one on
 * return. The WAL is then made durable as read: a torn tail is cut off
 * (*torn set) and the file synced, so that the writes recovered from it
 * stay a prefix of what later WALs add. */
static int replay_wal(kv_db *db, uint64_t number, bool check_marker, kv_seq *replayed_up_to,
                      bool *baseline, bool *torn, bool *hole_before)
{
    *torn = false;
    *hole_before = false;
    char *path = kv_log_file_name(db->path, number);
    const char *name = strrchr(path, '/') + 1;
    kv_random *file;
    int rc = kv_env_new_random(db->env, path, &file);
    if (rc != 0) {
        free(path);
        return rc;
    }
    kv_log_reader *reader = kv_log_reader_create(file, file->size, name);
    kv_buf scratch = {0};
    kv_write_batch batch;
    kv_write_batch_init(&batch);
    kv_slice record;
    uint64_t records = 0;
    uint64_t cut_at = UINT64_MAX; /* where a record lost its blob values */
    replay_context ctx = {db, number, 0, 0};
    while ((rc = kv_log_reader_read_record(reader, &record, &scratch)) == 1) {
        uint64_t offset = kv_log_reader_last_record_offset(reader);
        rc = kv_write_batch_set_contents(&batch, record);
        if (rc == 0 && kv_write_batch_count(&batch) == 0) {
            /* A marker (kv_db_new_wal): the WALs before must have held
             * writes up to its sequence. Without WALs before to compare
             * with, it is where the sequences start. */
            kv_seq marker = kv_write_batch_sequence(&batch);
            if (check_marker && records == 0 && marker > *replayed_up_to) {
                kv_info_log_printf(db->info_log,
                                   "%s: the WALs before it end at sequence %" PRIu64
                                   ", it follows %" PRIu64
                                   ": writes between were lost in a power cut",
                                   name, *replayed_up_to, kv_write_batch_sequence(&batch));
                *hole_before = true;
                break;
            }
            if (marker > *replayed_up_to)
                *replayed_up_to = marker;
            *baseline = true;
            records++;
            continue;
        }
        if (rc == 0)
            rc = check_batch_order(&batch, *replayed_up_to);
        if (rc == 0 && db->blobs_checked_at_replay) {
            /* The values a record points to went to blob files before the
             * record reached the WAL, and every sync syncs them first; a
             * record whose value is missing was never synced and lost its
             * value in a power cut: the WAL ends before it, as if torn. */
            blob_check check = {db, number, false, {0}};
            rc = kv_write_batch_iterate(&batch, check_blob_entry, &check);
            kv_buf_free(&check.scratch);
            if (check.lost) {
                kv_info_log_printf(db->info_log,
                                   "%s: the record at offset %" PRIu64
                                   " points to blob data lost in a power cut; the WAL ends there",
                                   name, offset);
                cut_at = offset;
                rc = 0;
                break;
            }
        }
        if (rc == 0) {
            ctx.max_seq = 0;
            rc = kv_write_batch_iterate(&batch, replay_entry, &ctx);
        }
        if (rc != 0) {
            /* kv_error_wrap, not kv_error(..., kv_errmsg()): the message
             * would be formatted into the buffer it is read from. */
            char where[128];
            snprintf(where, sizeof(where), "%s: bad record at offset %" PRIu64, name, offset);
            rc = kv_error_wrap(rc, where);
            break;
        }
        records++;
        *baseline = true;
        kv_seq last = kv_write_batch_sequence(&batch) + kv_write_batch_count(&batch) - 1;
        if (kv_write_batch_count(&batch) > 0)
            *replayed_up_to = last;
        if (kv_write_batch_count(&batch) > 0 && last > kv_version_set_last_sequence(&db->versions))
            kv_version_set_publish_sequence(&db->versions, last);
    }
    /* Full memtables become immutable at the end of a WAL, never in its
     * middle: a flush then says that the whole WAL is in tables (log number
     * past it), and no entry of it is replayed again at the next open. A
     * second replay of flushed entries could undo what happened to them
     * since (a blob index into a file collected since, an entry a range
     * tombstone deleted and compaction dropped with the tombstone). A WAL
     * holds at most about one memtable of each family (every switch starts
     * a new WAL), so this bounds the overshoot. */
    for (size_t i = 0; i < db->num_cfs; i++) {
        kv_cf *cf = db->cfs[i];
        if (!cf->dropped && kv_memtable_num_entries(cf->mem) > 0 &&
            kv_memtable_memory_usage(cf->mem) >= cf->options.write_buffer_size) {
            kv_memtable_set_next_log_number(cf->mem, number + 1);
            kv_memtable_list_add(&cf->imm, cf->mem);
            cf->mem = kv_memtable_create(db->next_memtable_id++);
        }
    }
    uint64_t dropped = kv_log_reader_dropped_tail(reader);
    if (*hole_before) {
        rc = 0; /* the caller drops this WAL and the later ones */
    } else if (rc == 0 && cut_at != UINT64_MAX) {
        *torn = true;
        rc = kv_env_truncate(db->env, path, cut_at);
    } else if (rc == 0 && dropped > 0) {
        if (kv_log_reader_tail_is_zeros(reader)) {
            /* Zeros written ahead of synced writes, or an append a crash
             * kept from the disk. Not torn: if writes were lost, the next
             * WAL's marker says so (the check above), and only then are
             * the later WALs dropped. */
            kv_info_log_printf(db->info_log,
                               "%s: cut %" PRIu64 " bytes of zeros after the last record", name,
                               dropped);
        } else {
            kv_info_log_printf(db->info_log, "%s: ignored a torn final record of %" PRIu64 " bytes",
                               name, dropped);
            *torn = true;
        }
        rc = kv_env_truncate(db->env, path, file->size - dropped);
    }
    if (rc == 0 && !*hole_before)
        rc = kv_env_sync_file(db->env, path);
    if (!*hole_before)
        kv_info_log_printf(db->info_log, "recovered %" PRIu64 " records from %s", records, name);
    kv_write_batch_free(&batch);
    kv_buf_free(&scratch);
    kv_log_reader_destroy(reader);
    kv_random_close(file);
    free(path);
    return rc < 0 ? rc : 0;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Checks that every table the MANIFEST names exists, bumps the file number
 * past everything present, and replays the WALs still needed. */
static int recover_files(kv_db *db)
{
    char **names;
    size_t count;
    int rc = kv_env_list_dir(db->path, &names, &count);
    if (rc != 0)
        return rc;
    uint64_t *wals = kv_malloc((count ? count : 1) * sizeof(uint64_t));
    size_t num_wals = 0;
    uint64_t min_log = UINT64_MAX;
    for (size_t i = 0; i < db->num_cfs; i++)
        if (!db->cfs[i]->dropped && db->cfs[i]->log_number < min_log)
            min_log = db->cfs[i]->log_number;
    for (size_t i = 0; i < count; i++) {
        uint64_t number;
        enum kv_file_type type;
        if (!kv_parse_file_name(names[i], &number, &type))
            continue;
        if (number >= db->versions.next_file_number)
            db->versions.next_file_number = number + 1;
        if (type == KV_FILE_LOG && number >= min_log)
            wals[num_wals++] = number;
        if (type == KV_FILE_BLOB) {
            kv_blob_file *f = kv_blob_set_get(&db->blobs, number); /* registered */
            char *path = kv_blob_file_name(db->path, number);
            uint64_t size = 0;
            if (kv_env_file_size(path, &size) == 0)
                atomic_store(&f->size, size);
            free(path);
            kv_blob_file_unref(f);
            db->blobs_checked_at_replay = true;
        }
    }
    /* Blob files are synced before any WAL that points into them is
     * replayed (and synced as read): a WAL record that survives must keep
     * its value, though the process that wrote both did not sync them. */
    for (size_t i = 0; i < count && rc == 0; i++) {
        uint64_t number;
        enum kv_file_type type;
        if (kv_parse_file_name(names[i], &number, &type) && type == KV_FILE_BLOB) {
            char *path = kv_blob_file_name(db->path, number);
            rc = kv_env_sync_file(db->env, path);
            free(path);
        }
    }
    /* Every file a version names must be there. */
    for (size_t c = 0; c < db->num_cfs && rc == 0; c++) {
        kv_version *v = db->cfs[c]->current;
        for (int level = 0; level < KV_NUM_LEVELS && rc == 0; level++) {
            for (size_t f = 0; f < v->num_files[level] && rc == 0; f++) {
                const kv_file_meta *meta = v->files[level][f];
                char *path = kv_table_file_name(db->path, meta->number);
                if (!kv_env_file_exists(path))
                    rc = kv_error(KV_CORRUPTION, "%s: missing (the MANIFEST lists it)", path);
                free(path);
                for (size_t b = 0; b < meta->num_blob_links && rc == 0; b++) {
                    path = kv_blob_file_name(db->path, meta->blob_links[b].number);
                    if (!kv_env_file_exists(path))
                        rc = kv_error(KV_CORRUPTION,
                                      "%s: missing (table %06" PRIu64 ".sst points into it)", path,
                                      meta->number);
                    free(path);
                }
            }
        }
    }
    kv_env_free_names(names, count);
    qsort(wals, num_wals, sizeof(uint64_t), compare_u64);
    kv_seq replayed_up_to = 0;
    size_t replayed = 0;
    /* A marker is checked against the WALs replayed before it once they
     * have shown where the sequences stood (the first WAL replayed follows
     * flushed ones, whose sequences are not counted here). */
    bool baseline = false;
    for (; replayed < num_wals && rc == 0; replayed++) {
        bool torn = false, hole_before = false;
        rc = replay_wal(db, wals[replayed], baseline, &replayed_up_to, &baseline, &torn,
                        &hole_before);
        if (rc == 0 && hole_before)
            break; /* this one and the later ones are dropped */
        if (rc == 0) {
            char *path = kv_log_file_name(db->path, wals[replayed]);
            uint64_t size = 0;
            kv_env_file_size(path, &size);
            free(path);
            kv_db_add_alive_wal(db, wals[replayed], size);
        }
        if (rc == 0 && torn) {
            replayed++;
            break;
        }
    }
    /* A torn WAL that is not the last, or a WAL whose marker shows that
     * the ones before it lost writes: a power cut came before they were
     * synced. Every promise of durability syncs the older WALs first
     * (kv_db_sync_closed_wals), so nothing in the newer ones was promised,
     * and replaying them would break the prefix: they are removed. */
    for (size_t i = replayed; i < num_wals && rc == 0; i++) {
        char *path = kv_log_file_name(db->path, wals[i]);
        kv_info_log_printf(db->info_log,
                           "%06" PRIu64 ".log: dropped, it follows WALs that lost writes in a "
                           "power cut (its own were not synced either)",
                           wals[i]);
        rc = kv_env_remove(db->env, path);
        free(path);
        if (rc == 0 && i + 1 == num_wals)
            rc = kv_env_sync_dir(db->env, db->path);
    }
    db->wal_appended_seq = replayed_up_to;
    free(wals);
    return rc;
}

static void db_free(kv_db *db)
{
    for (size_t i = 0; i < db->num_cfs; i++)
        free_cf(db->cfs[i]);
    free(db->cfs);
    if (db->wal)
        kv_log_writer_close(db->wal);
    for (size_t i = 0; i < db->num_unsynced_wals; i++)
        kv_writable_close(db->unsynced_wals[i]);
    free(db->unsynced_wals);
    kv_version_set_free(&db->versions);
    if (db->blob_writer != NULL)
        kv_writable_close(db->blob_writer);
    kv_blob_file_unref(db->blob_active);
    for (size_t i = 0; i < db->num_unsynced_blobs; i++)
        kv_writable_close(db->unsynced_blobs[i]);
    free(db->unsynced_blobs);
    kv_write_batch_free(&db->blob_group);
    kv_buf_free(&db->blob_records);
    kv_blob_set_free(&db->blobs);
    if (db->table_cache)
        kv_table_cache_destroy(db->table_cache);
    if (db->block_cache)
        kv_cache_destroy(db->block_cache);
    kv_flush_scheduler_clear(&db->flush_scheduler);
    kv_write_batch_free(&db->group_batch);
    free(db->alive_wals);
    free(db->alive_wal_sizes);
    free(db->pending_outputs);
    for (size_t i = 0; i < db->num_obsolete_files; i++)
        kv_file_meta_unref(db->obsolete_files[i]);
    free(db->obsolete_files);
    kv_info_log_close(db->info_log);
    if (db->lock)
        kv_env_unlock_file(db->lock);
    pthread_mutex_destroy(&db->mutex);
    pthread_mutex_destroy(&db->wal_sync_mutex);
    pthread_cond_destroy(&db->bg_cv);
    free(db->path);
    free(db);
}

static int open_locked(kv_db *db, bool exists)
{
    int rc;
    if (!exists) {
        rc = kv_version_set_create_new(&db->versions);
        if (rc != 0)
            return rc;
        /* Start over from what is on disk, as every later open does. */
        kv_version_set_free(&db->versions);
        kv_version_set_init(&db->versions, db->env, db->path, db->info_log,
                            db->options.max_manifest_file_size);
        db->versions.blobs = &db->blobs;
        kv_info_log_printf(db->info_log, "created a new database in %s", db->path);
    }
    rc = kv_version_set_recover(&db->versions);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < db->versions.num_cfs; i++) {
        kv_cf_record *r = &db->versions.cfs[i];
        if (!r->dropped)
            add_cf(db, r->id, r->name, r->log_number, r->version);
    }
    rc = recover_files(db);
    if (rc != 0)
        return rc;
    /* The first new WAL's marker: what the WALs kept hold (the last
     * sequence may be past it: numbers burnt by failed writes). */
    if (db->num_alive_wals == 0)
        db->wal_appended_seq = kv_version_set_last_sequence(&db->versions);
    /* A fresh MANIFEST holding just the current state, then a new WAL. */
    rc = kv_version_set_write_snapshot(&db->versions);
    if (rc == 0)
        rc = kv_db_new_wal(db);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < db->num_cfs; i++)
        kv_cf_install_super_version(db->cfs[i]);
    kv_db_delete_obsolete_files(db, true);
    rc = kv_db_start_background(db);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < db->num_cfs; i++)
        kv_db_maybe_schedule_flush(db, db->cfs[i]);
    kv_db_maybe_schedule_compaction(db);
    kv_info_log_printf(db->info_log,
                       "opened: %zu column families, last sequence %" PRIu64 ", WAL %06" PRIu64,
                       db->num_cfs, kv_version_set_last_sequence(&db->versions), db->wal_number);
    return 0;
}

int kv_open(const kv_options *options, const char *path, kv_db **out)
{
    *out = NULL;
    kv_options defaults;
    if (options == NULL) {
        kv_options_init(&defaults);
        options = &defaults;
    }
    if (path == NULL || path[0] == '\0')
        return kv_error(KV_INVALID_ARGUMENT, "no database path given");
    int rc = kv_options_validate(options);
    if (rc != 0)
        return rc;
    bool exists;
    rc = check_directory(options, path, &exists);
    if (rc != 0)
        return rc;

    kv_db *db = kv_calloc(1, sizeof(*db));
    db->path = kv_strdup(path);
    db->options = *options;
    db->env = options->env ? options->env : kv_env_posix();
    pthread_mutex_init(&db->mutex, NULL);
    pthread_mutex_init(&db->wal_sync_mutex, NULL);
    pthread_cond_init(&db->bg_cv, NULL);
    db->snapshots.next = db->snapshots.prev = &db->snapshots;
    kv_flush_scheduler_init(&db->flush_scheduler);
    kv_write_batch_init(&db->group_batch);
    db->next_memtable_id = 1;

    char *lock_path = kv_lock_file_name(path);
    rc = kv_env_lock_file(lock_path, &db->lock);
    free(lock_path);
    if (rc == 0) /* another process may have created it meanwhile */
        rc = check_directory(options, path, &exists);
    if (rc != 0) {
        char message[512];
        kv_error_copy(message, sizeof(message));
        db_free(db);
        return kv_error(rc, "%s", message);
    }
    db->info_log = kv_info_log_open(path);
    kv_version_set_init(&db->versions, db->env, path, db->info_log,
                        options->max_manifest_file_size);
    kv_blob_set_init(&db->blobs, db->env, path);
    db->versions.blobs = &db->blobs;
    kv_write_batch_init(&db->blob_group);
    db->blobs_enabled = options->cf.blob_min_size > 0;
    for (int i = 0; i < options->num_cf_overrides; i++)
        db->blobs_enabled |= options->cf_overrides[i].options.blob_min_size > 0;
    db->block_cache = kv_cache_create(options->block_cache_size, -1);
    db->table_cache =
        kv_table_cache_create(db->env, path, options->max_open_files, db->block_cache);

    pthread_mutex_lock(&db->mutex);
    rc = open_locked(db, exists);
    pthread_mutex_unlock(&db->mutex);
    if (rc != 0) {
        char message[1024];
        kv_error_copy(message, sizeof(message));
        kv_info_log_printf(db->info_log, "open failed: %s", message);
        if (db->num_bg_threads)
            kv_db_stop_background(db);
        db_free(db);
        return kv_error(rc, "%s", message);
    }
    *out = db;
    return 0;
}

int kv_close(kv_db *db)
{
    if (db == NULL)
        return 0;
    /* Let queued writers finish, then stop the background threads between
     * jobs. Unflushed memtables are safe in the WAL. */
    pthread_mutex_lock(&db->mutex);
    while (db->writers_head != NULL) {
        pthread_mutex_unlock(&db->mutex);
        nanosleep(&(struct timespec){0, 1000000}, NULL);
        pthread_mutex_lock(&db->mutex);
    }
    pthread_mutex_unlock(&db->mutex);
    kv_db_stop_background(db);
    int rc = 0;
    pthread_mutex_lock(&db->mutex);
    if (db->wal != NULL) {
        (void)kv_writable_trim_zeros(kv_log_writer_file(db->wal)); /* best effort */
        rc = kv_log_writer_close(db->wal);
        db->wal = NULL;
    }
    if (db->blob_writer != NULL) {
        int close_rc = kv_writable_close(db->blob_writer);
        db->blob_writer = NULL;
        if (rc == 0)
            rc = close_rc;
    }
    /* Closed WALs still unsynced are closed as they are: nothing promised
     * their durability (and recovery copes with their loss). */
    for (size_t i = 0; i < db->num_unsynced_wals; i++) {
        int close_rc = kv_writable_close(db->unsynced_wals[i]);
        if (rc == 0)
            rc = close_rc;
    }
    db->num_unsynced_wals = 0;
    if (rc == 0 && db->bg_error != 0)
        rc = kv_error(db->bg_error, "%s", db->bg_errmsg);
    kv_info_log_printf(db->info_log, "closed");
    pthread_mutex_unlock(&db->mutex);
    db_free(db);
    return rc;
}

int kv_destroy(const char *path, const kv_options *options)
{
    (void)options;
    char **names;
    size_t count;
    if (kv_env_list_dir(path, &names, &count) != 0)
        return 0;
    char *lock_path = kv_lock_file_name(path);
    kv_file_lock *lock;
    int rc = kv_env_lock_file(lock_path, &lock);
    if (rc != 0) {
        free(lock_path);
        kv_env_free_names(names, count);
        return rc;
    }
    for (size_t i = 0; i < count; i++) {
        uint64_t number;
        enum kv_file_type type;
        if (!kv_parse_file_name(names[i], &number, &type) || type == KV_FILE_LOCK)
            continue;
        char *file = kv_sprintf("%s/%s", path, names[i]);
        remove(file);
        free(file);
    }
    kv_env_free_names(names, count);
    kv_env_unlock_file(lock);
    remove(lock_path);
    free(lock_path);
    remove(path); /* only if now empty */
    return 0;
}

/* ---- column families ---- */

kv_cf *kv_default_cf(kv_db *db)
{
    pthread_mutex_lock(&db->mutex);
    kv_cf *cf = kv_db_find_cf_by_id(db, 0);
    pthread_mutex_unlock(&db->mutex);
    return cf;
}

kv_cf *kv_get_cf(kv_db *db, const char *name)
{
    kv_cf *found = NULL;
    pthread_mutex_lock(&db->mutex);
    for (size_t i = 0; i < db->num_cfs && !found; i++)
        if (!db->cfs[i]->dropped && strcmp(db->cfs[i]->name, name) == 0)
            found = db->cfs[i];
    pthread_mutex_unlock(&db->mutex);
    return found;
}

const char *kv_cf_name(const kv_cf *cf)
{
    return cf->name;
}
uint32_t kv_cf_id(const kv_cf *cf)
{
    return cf->id;
}

typedef struct create_cf_args {
    const char *name;
    kv_cf *result;
} create_cf_args;

static int create_cf_op(kv_db *db, void *arg)
{
    create_cf_args *a = arg;
    for (size_t i = 0; i < db->num_cfs; i++)
        if (!db->cfs[i]->dropped && strcmp(db->cfs[i]->name, a->name) == 0)
            return kv_error(KV_EXISTS, "column family \"%s\" already exists", a->name);
    uint32_t id = db->versions.max_column_family + 1;
    kv_version_edit edit;
    kv_version_edit_init(&edit);
    kv_version_edit_set_cf_add(&edit, id, a->name);
    edit.has_log_number = true;
    edit.log_number = db->wal_number;
    int rc = kv_version_set_log_and_apply(&db->versions, &edit, NULL);
    kv_version_edit_free(&edit);
    if (rc != 0)
        return rc;
    kv_cf_record *r = kv_version_set_find_cf(&db->versions, id);
    a->result = add_cf(db, id, a->name, db->wal_number, r->version);
    kv_info_log_printf(db->info_log, "created column family %s (id %u)", a->name, id);
    return 0;
}

int kv_create_cf(kv_db *db, const char *name, kv_cf **out)
{
    if (name == NULL || name[0] == '\0' || strlen(name) > 255)
        return kv_error(KV_INVALID_ARGUMENT, "column family name must be 1 to 255 bytes");
    create_cf_args args = {name, NULL};
    int rc = kv_db_write_impl(db, false, NULL, create_cf_op, &args);
    if (rc == 0 && out)
        *out = args.result;
    return rc;
}

static int drop_cf_op(kv_db *db, void *arg)
{
    kv_cf *cf = arg;
    if (cf->dropped)
        return kv_error(KV_INVALID_ARGUMENT, "column family %s is already dropped", cf->name);
    if (cf->id == 0)
        return kv_error(KV_INVALID_ARGUMENT, "the default column family cannot be dropped");
    kv_version_edit edit;
    kv_version_edit_init(&edit);
    edit.column_family = cf->id;
    edit.is_column_family_drop = true;
    int rc = kv_version_set_log_and_apply(&db->versions, &edit, NULL);
    kv_version_edit_free(&edit);
    if (rc != 0)
        return rc;
    cf->dropped = true;
    kv_info_log_printf(db->info_log, "dropped column family %s (id %u)", cf->name, cf->id);
    kv_version *empty = kv_version_create_empty();
    kv_version_unref(cf->current);
    cf->current = empty;
    kv_db_delete_obsolete_files(db, true);
    return 0;
}

int kv_drop_cf(kv_db *db, kv_cf *cf)
{
    return kv_db_write_impl(db, false, NULL, drop_cf_op, cf);
}

int kv_list_cfs(kv_db *db, char ***names, size_t *count)
{
    pthread_mutex_lock(&db->mutex);
    *names = kv_malloc((db->num_cfs ? db->num_cfs : 1) * sizeof(char *));
    *count = 0;
    for (size_t i = 0; i < db->num_cfs; i++)
        if (!db->cfs[i]->dropped)
            (*names)[(*count)++] = kv_strdup(db->cfs[i]->name);
    pthread_mutex_unlock(&db->mutex);
    return 0;
}

void kv_free_cf_names(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

/* ---- snapshots ---- */

const kv_snapshot *kv_snapshot_create(kv_db *db)
{
    return kv_snapshot_create_cf(db, NULL);
}

const kv_snapshot *kv_snapshot_create_cf(kv_db *db, kv_cf *cf)
{
    if (cf != NULL && (cf->db != db || cf->dropped))
        return NULL;
    kv_snapshot *s = kv_calloc(1, sizeof(*s));
    s->node.cf = cf;
    pthread_mutex_lock(&db->mutex);
    s->node.seq = kv_version_set_last_sequence(&db->versions);
    /* append at the tail: the list stays ordered oldest first */
    s->node.prev = db->snapshots.prev;
    s->node.next = &db->snapshots;
    db->snapshots.prev->next = &s->node;
    db->snapshots.prev = &s->node;
    pthread_mutex_unlock(&db->mutex);
    return s;
}

uint64_t kv_latest_sequence(kv_db *db)
{
    pthread_mutex_lock(&db->mutex);
    uint64_t seq = kv_version_set_last_sequence(&db->versions);
    pthread_mutex_unlock(&db->mutex);
    return seq;
}

uint64_t kv_oldest_snapshot_sequence(kv_db *db, kv_cf *cf)
{
    pthread_mutex_lock(&db->mutex);
    uint64_t seq = kv_db_oldest_snapshot(db, cf);
    pthread_mutex_unlock(&db->mutex);
    return seq;
}

void kv_snapshot_release(kv_db *db, const kv_snapshot *snapshot)
{
    if (snapshot == NULL)
        return;
    kv_snapshot *s = (kv_snapshot *)snapshot;
    pthread_mutex_lock(&db->mutex);
    s->node.prev->next = s->node.next;
    s->node.next->prev = s->node.prev;
    pthread_mutex_unlock(&db->mutex);
    free(s);
}

kv_seq *kv_db_snapshot_sequences(kv_db *db, const kv_cf *cf, size_t *count)
{
    size_t n = 0;
    for (kv_snapshot_node *s = db->snapshots.next; s != &db->snapshots; s = s->next)
        n++;
    kv_seq *seqs = kv_malloc((n ? n : 1) * sizeof(kv_seq));
    *count = 0;
    for (kv_snapshot_node *s = db->snapshots.next; s != &db->snapshots; s = s->next)
        if (s->cf == NULL || s->cf == cf)
            seqs[(*count)++] = s->seq; /* the list is oldest first */
    return seqs;
}

uint64_t kv_snapshot_sequence(const kv_snapshot *snapshot)
{
    return snapshot->node.seq;
}

void kv_free(void *ptr)
{
    free(ptr);
}
