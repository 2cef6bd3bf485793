/*
 * db_read.c — point lookups, statistics and properties.
 *
 * A get takes a reference to the family's SuperVersion and consults, newest
 * first, the active memtable, the immutable memtables, the level-0 files
 * (newest first) and one file per deeper level. Range tombstones of each
 * source are folded into the largest covering tombstone sequence seen so
 * far: the first point entry found is the answer unless a tombstone newer
 * than it covers the key.
 */
#include "db_impl.h"

#include "compaction.h"
#include "error.h"
#include "filename.h"
#include "level_iterator.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_cf(kv_db *db, kv_cf *cf)
{
    if (cf == NULL || cf->db != db)
        return kv_error(KV_INVALID_ARGUMENT, "no such column family handle");
    if (cf->dropped)
        return kv_error(KV_INVALID_ARGUMENT, "column family %s was dropped", cf->name);
    return 0;
}

/* check_cf, and that the read's snapshot (if any) keeps cf. */
static int check_read(kv_db *db, const kv_read_options *ro, kv_cf *cf)
{
    int rc = check_cf(db, cf);
    if (rc == 0 && ro != NULL && ro->snapshot != NULL && ro->snapshot->node.cf != NULL &&
        ro->snapshot->node.cf != cf)
        rc = kv_error(KV_INVALID_ARGUMENT, "a snapshot of family %s read in family %s",
                      ro->snapshot->node.cf->name, cf->name);
    return rc;
}

/* The family's SuperVersion and the sequence to read at: the snapshot's,
 * or the latest, taken together (see kv_cf_acquire_super_version). */
static kv_superversion *acquire_super_version(kv_db *db, kv_cf *cf, const kv_read_options *ro,
                                              kv_seq *snapshot)
{
    if (ro && ro->snapshot) {
        *snapshot = ro->snapshot->node.seq;
        return kv_cf_acquire_super_version(cf, NULL, NULL);
    }
    return kv_cf_acquire_super_version(cf, &db->versions.last_sequence, snapshot);
}

static bool key_in_file(const kv_file_meta *f, kv_slice user_key)
{
    return kv_slice_compare(user_key, kv_ikey_user_key(kv_buf_slice(&f->smallest))) >= 0 &&
           kv_slice_compare(user_key, kv_ikey_user_key(kv_buf_slice(&f->largest))) <= 0;
}

/* Looks the key up in one table. *tombstone is raised by the table's range
 * tombstones covering the key. */
static int get_from_file(kv_db *db, const kv_file_meta *f, kv_lookup *lookup, kv_seq *tombstone,
                         bool fill_cache)
{
    kv_cache_handle *handle;
    int rc = kv_table_cache_find(db->table_cache, f->number, f->file_size, &handle);
    if (rc != 0)
        return rc;
    kv_table *table = kv_table_cache_table(handle);
    if (f->num_range_deletions > 0) {
        kv_frag_tombstones *t = kv_table_range_tombstones(table);
        if (t != NULL) {
            kv_seq s = kv_frag_tombstones_max_covering(t, lookup->user_key, lookup->snapshot);
            if (s > *tombstone)
                *tombstone = s;
        }
    }
    rc = kv_table_get(table, lookup, fill_cache);
    kv_table_cache_release(db->table_cache, handle);
    return rc;
}

/* The file of a sorted level that may hold the key. Compared as internal
 * keys: a file whose range ends in a range tombstone's exclusive end K has
 * largest key K@max-sequence and does not hold K itself. */
static const kv_file_meta *find_file(const kv_version *v, int level, kv_slice lookup_ikey,
                                     kv_slice user_key)
{
    size_t i = kv_find_file(v->files[level], v->num_files[level], lookup_ikey);
    if (i < v->num_files[level] &&
        kv_slice_compare(user_key, kv_ikey_user_key(kv_buf_slice(&v->files[level][i]->smallest))) >=
            0)
        return v->files[level][i];
    return NULL;
}

/* True once the lookup is decided (found, deleted, or covered). */
static bool memtable_step(kv_memtable *mem, kv_lookup *lookup, kv_seq *tombstone)
{
    kv_seq s = kv_memtable_max_covering_tombstone(mem, lookup->user_key, lookup->snapshot);
    if (s > *tombstone)
        *tombstone = s;
    kv_memtable_get(mem, lookup);
    return lookup->state != KV_LOOKUP_NONE;
}

static int get_internal(kv_db *db, kv_superversion *sv, kv_lookup *lookup, bool fill_cache)
{
    kv_seq tombstone = 0;
    bool decided = memtable_step(sv->mem, lookup, &tombstone);
    for (size_t i = 0; i < sv->num_imm && !decided; i++)
        decided = memtable_step(sv->imm[i], lookup, &tombstone);
    const kv_version *v = sv->version;
    for (size_t i = 0; i < v->num_files[0] && !decided; i++) {
        const kv_file_meta *f = v->files[0][i];
        if (!key_in_file(f, lookup->user_key))
            continue;
        int rc = get_from_file(db, f, lookup, &tombstone, fill_cache);
        if (rc != 0)
            return rc;
        decided = lookup->state != KV_LOOKUP_NONE;
    }
    kv_buf lookup_ikey = {0};
    if (!decided)
        kv_ikey_append(&lookup_ikey, lookup->user_key, lookup->snapshot, KV_TYPE_FOR_SEEK);
    for (int level = 1; level < KV_NUM_LEVELS && !decided; level++) {
        const kv_file_meta *f = find_file(v, level, kv_buf_slice(&lookup_ikey), lookup->user_key);
        if (f == NULL)
            continue;
        int rc = get_from_file(db, f, lookup, &tombstone, fill_cache);
        if (rc != 0) {
            kv_buf_free(&lookup_ikey);
            return rc;
        }
        decided = lookup->state != KV_LOOKUP_NONE;
    }
    kv_buf_free(&lookup_ikey);
    if (lookup->state == KV_LOOKUP_VALUE && tombstone > lookup->seq)
        lookup->state = KV_LOOKUP_DELETED;
    return 0;
}

int kv_db_read_blob(kv_db *db, kv_slice key, kv_slice index, kv_buf *out)
{
    kv_blob_ref ref;
    if (!kv_blob_ref_decode(index, &ref))
        return kv_error(KV_CORRUPTION, "%s: malformed blob index (%zu bytes)", db->path,
                        index.size);
    return kv_blob_set_read(&db->blobs, &ref, key, out);
}

int kv_get(kv_db *db, const kv_read_options *ro, kv_cf *cf, const void *key, size_t key_len,
           char **value, size_t *value_len)
{
    *value = NULL;
    *value_len = 0;
    int rc = check_read(db, ro, cf);
    if (rc != 0)
        return rc;
    kv_buf buf = {0};
    kv_lookup lookup;
    memset(&lookup, 0, sizeof(lookup));
    kv_superversion *sv = acquire_super_version(db, cf, ro, &lookup.snapshot);
    lookup.user_key = kv_slice_make(key, key_len);
    lookup.value = &buf;
    rc = get_internal(db, sv, &lookup, ro ? ro->fill_cache : true);
    /* The superversion keeps the blob file alive while it is read. */
    if (rc == 0 && lookup.state == KV_LOOKUP_VALUE && lookup.is_blob) {
        kv_buf index = buf;
        memset(&buf, 0, sizeof(buf));
        rc = kv_db_read_blob(db, lookup.user_key, kv_buf_slice(&index), &buf);
        kv_buf_free(&index);
    }
    kv_superversion_unref(sv);
    atomic_fetch_add_explicit(&db->stats.gets, 1, memory_order_relaxed);
    if (rc != 0) {
        kv_buf_free(&buf);
        kv_db_log_read_error(db, rc);
        return rc;
    }
    if (lookup.state != KV_LOOKUP_VALUE) {
        kv_buf_free(&buf);
        return KV_NOT_FOUND;
    }
    atomic_fetch_add_explicit(&db->stats.get_hits, 1, memory_order_relaxed);
    *value_len = buf.size;
    if (buf.data == NULL)
        buf.data = kv_malloc(1);
    *value = buf.data;
    return 0;
}

/* ---- iterators ---- */

kv_iterator *kv_iterator_create(kv_db *db, const kv_read_options *ro, kv_cf *cf)
{
    if (check_read(db, ro, cf) != 0)
        return NULL;
    kv_seq snapshot;
    kv_superversion *sv = acquire_super_version(db, cf, ro, &snapshot);
    return kv_db_iter_create(db, cf, sv, snapshot, ro ? ro->fill_cache : true);
}

/* ---- flush ---- */

typedef struct flush_args {
    kv_cf *cf; /* NULL: all */
} flush_args;

static int flush_switch_op(kv_db *db, void *arg)
{
    flush_args *a = arg;
    db->flush_paused_until = 0; /* asked for: retry a flush that failed for space now */
    for (size_t i = 0; i < db->num_cfs; i++) {
        kv_cf *cf = db->cfs[i];
        if (cf->dropped || (a->cf != NULL && a->cf != cf))
            continue;
        if (kv_memtable_num_entries(cf->mem) == 0 && kv_memtable_num_range_deletes(cf->mem) == 0)
            continue;
        int rc = kv_db_switch_memtable(db, cf);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int kv_flush(kv_db *db, kv_cf *cf, bool wait)
{
    if (cf != NULL) {
        int rc = check_cf(db, cf);
        if (rc != 0)
            return rc;
    }
    flush_args args = {cf};
    int rc = kv_db_write_impl(db, false, NULL, flush_switch_op, &args);
    if (rc != 0 || !wait)
        return rc;
    pthread_mutex_lock(&db->mutex);
    for (size_t i = 0; i < db->num_cfs && rc == 0; i++)
        if (!db->cfs[i]->dropped && (cf == NULL || cf == db->cfs[i]))
            rc = kv_db_wait_for_flush(db, db->cfs[i]);
    pthread_mutex_unlock(&db->mutex);
    return rc;
}

/* ---- statistics and properties ---- */

void kv_get_stats(kv_db *db, kv_stats *out)
{
    kv_stats_counters *c = &db->stats;
    memset(out, 0, sizeof(*out));
    out->keys_written = atomic_load(&c->keys_written);
    out->bytes_written = atomic_load(&c->bytes_written);
    out->wal_bytes = atomic_load(&c->wal_bytes);
    out->wal_syncs = atomic_load(&c->wal_syncs);
    out->wal_writes = atomic_load(&c->wal_writes);
    out->write_groups = atomic_load(&c->write_groups);
    out->grouped_writes = atomic_load(&c->grouped_writes);
    out->flushes = atomic_load(&c->flushes);
    out->flush_bytes_in = atomic_load(&c->flush_bytes_in);
    out->flush_bytes_out = atomic_load(&c->flush_bytes_out);
    out->flush_micros = atomic_load(&c->flush_micros);
    out->compactions = atomic_load(&c->compactions);
    out->compaction_bytes_read = atomic_load(&c->compaction_bytes_read);
    out->compaction_bytes_written = atomic_load(&c->compaction_bytes_written);
    out->compaction_micros = atomic_load(&c->compaction_micros);
    out->stall_micros = atomic_load(&c->stall_micros);
    out->stall_slowdowns = atomic_load(&c->stall_slowdowns);
    out->stall_stops = atomic_load(&c->stall_stops);
    out->gets = atomic_load(&c->gets);
    out->get_hits = atomic_load(&c->get_hits);
    out->sst_bytes_written = atomic_load(&c->sst_bytes_written);
    out->trivial_moves = atomic_load(&c->trivial_moves);
    out->obsolete_files_deleted = atomic_load(&c->obsolete_files_deleted);
    out->blob_bytes_written = atomic_load(&c->blob_bytes_written);
    out->blob_files = kv_blob_set_count(&db->blobs, NULL);
    out->blob_files_deleted = atomic_load(&c->blob_files_deleted);
    out->blob_gc_runs = atomic_load(&c->blob_gc_runs);
    out->blob_gc_bytes_relocated = atomic_load(&c->blob_gc_bytes_relocated);
    out->block_cache_hits = kv_cache_hits(db->block_cache);
    out->block_cache_misses = kv_cache_misses(db->block_cache);
}

static void append_stats(kv_db *db, kv_buf *out)
{
    kv_stats s;
    kv_get_stats(db, &s);
    char line[512];
    pthread_mutex_lock(&db->mutex);
    for (size_t i = 0; i < db->num_cfs; i++) {
        kv_cf *cf = db->cfs[i];
        if (cf->dropped)
            continue;
        snprintf(line, sizeof(line),
                 "column family %s (id %u): memtable %zu bytes, %" PRIu64
                 " entries; %zu immutable memtables\n",
                 cf->name, cf->id, kv_memtable_memory_usage(cf->mem),
                 kv_memtable_num_entries(cf->mem), cf->imm.count);
        kv_buf_append(out, line, strlen(line));
        for (int level = 0; level < KV_NUM_LEVELS; level++) {
            if (cf->current->num_files[level] == 0)
                continue;
            snprintf(line, sizeof(line), "  level %d: %zu files, %" PRIu64 " bytes\n", level,
                     cf->current->num_files[level], kv_version_level_bytes(cf->current, level));
            kv_buf_append(out, line, strlen(line));
        }
    }
    pthread_mutex_unlock(&db->mutex);
    snprintf(line, sizeof(line),
             "writes: %" PRIu64 " keys, %" PRIu64 " bytes, %" PRIu64 " groups (%" PRIu64
             " writers), WAL %" PRIu64 " bytes, %" PRIu64 " syncs\n",
             s.keys_written, s.bytes_written, s.write_groups, s.grouped_writes, s.wal_bytes,
             s.wal_syncs);
    kv_buf_append(out, line, strlen(line));
    snprintf(line, sizeof(line),
             "flushes: %" PRIu64 ", %" PRIu64 " bytes in, %" PRIu64 " bytes out, %.1f s\n",
             s.flushes, s.flush_bytes_in, s.flush_bytes_out, s.flush_micros / 1e6);
    kv_buf_append(out, line, strlen(line));
    snprintf(line, sizeof(line),
             "compactions: %" PRIu64 " (%" PRIu64 " trivial moves), %" PRIu64
             " bytes read, %" PRIu64 " bytes written, %.1f s; %" PRIu64 " obsolete files deleted\n",
             s.compactions, s.trivial_moves, s.compaction_bytes_read, s.compaction_bytes_written,
             s.compaction_micros / 1e6, s.obsolete_files_deleted);
    kv_buf_append(out, line, strlen(line));
    snprintf(line, sizeof(line),
             "blob files: %" PRIu64 " (%" PRIu64 " deleted), %" PRIu64 " bytes written; %" PRIu64
             " garbage collections moved %" PRIu64 " bytes\n",
             s.blob_files, s.blob_files_deleted, s.blob_bytes_written, s.blob_gc_runs,
             s.blob_gc_bytes_relocated);
    kv_buf_append(out, line, strlen(line));
    snprintf(line, sizeof(line), "stalls: %.3f s, %" PRIu64 " slowdowns, %" PRIu64 " stops\n",
             s.stall_micros / 1e6, s.stall_slowdowns, s.stall_stops);
    kv_buf_append(out, line, strlen(line));
    snprintf(line, sizeof(line),
             "reads: %" PRIu64 " gets (%" PRIu64 " found), block cache %" PRIu64 " hits, %" PRIu64
             " misses\n",
             s.gets, s.get_hits, s.block_cache_hits, s.block_cache_misses);
    kv_buf_append(out, line, strlen(line));
}

/* One line per level: files, bytes, and what compactions into it read and
 * wrote; then the write amplification (bytes written to SSTs per byte
 * flushed). */
static void append_level_stats(kv_db *db, kv_cf *cf, kv_buf *out)
{
    char line[256];
    snprintf(line, sizeof(line),
             "level files      bytes   compactions    read_bytes   write_bytes\n");
    kv_buf_append(out, line, strlen(line));
    pthread_mutex_lock(&db->mutex);
    uint64_t written = 0, flushed = cf->level_stats[0].bytes_written;
    for (int level = 0; level < KV_NUM_LEVELS; level++) {
        const struct kv_level_stats *ls = &cf->level_stats[level];
        written += ls->bytes_written;
        snprintf(line, sizeof(line),
                 "%5d %5zu %10" PRIu64 " %13" PRIu64 " %13" PRIu64 " %13" PRIu64 "\n", level,
                 cf->current->num_files[level], kv_version_level_bytes(cf->current, level),
                 ls->compactions, ls->bytes_read, ls->bytes_written);
        kv_buf_append(out, line, strlen(line));
    }
    pthread_mutex_unlock(&db->mutex);
    snprintf(line, sizeof(line), "write amplification (SST bytes written / bytes flushed): %.2f\n",
             flushed ? (double)written / (double)flushed : 0.0);
    kv_buf_append(out, line, strlen(line));
}

int kv_get_property(kv_db *db, kv_cf *cf, const char *name, char **value)
{
    *value = NULL;
    if (cf == NULL)
        cf = kv_default_cf(db);
    int rc = check_cf(db, cf);
    if (rc != 0)
        return rc;
    if (strcmp(name, "kv.levelstats") == 0) {
        kv_buf out = {0};
        append_level_stats(db, cf, &out);
        kv_buf_append_byte(&out, '\0');
        *value = out.data;
        return 0;
    }
    if (strcmp(name, "kv.stats") == 0) {
        kv_buf out = {0};
        append_stats(db, &out);
        kv_buf_append_byte(&out, '\0');
        *value = out.data;
        return 0;
    }
    uint64_t number = 0;
    bool known = true;
    int level;
    pthread_mutex_lock(&db->mutex);
    if (strcmp(name, "kv.num-immutable-mem-table") == 0)
        number = cf->imm.count;
    else if (strcmp(name, "kv.cur-size-active-mem-table") == 0)
        number = kv_memtable_memory_usage(cf->mem);
    else if (strcmp(name, "kv.num-entries-active-mem-table") == 0)
        number = kv_memtable_num_entries(cf->mem);
    else if (strcmp(name, "kv.estimate-pending-compaction-bytes") == 0)
        number = kv_compaction_pending_bytes(&cf->options, cf->current);
    else if (strcmp(name, "kv.total-sst-files-size") == 0 ||
             strcmp(name, "kv.live-sst-files-size") == 0) {
        for (level = 0; level < KV_NUM_LEVELS; level++)
            number += kv_version_level_bytes(cf->current, level);
    } else if (sscanf(name, "kv.num-files-at-level%d", &level) == 1 && level >= 0 &&
               level < KV_NUM_LEVELS)
        number = cf->current->num_files[level];
    else
        known = false;
    pthread_mutex_unlock(&db->mutex);
    if (!known)
        return kv_error(KV_NOT_FOUND, "unknown property \"%s\"", name);
    *value = kv_sprintf("%" PRIu64, number);
    return 0;
}

void kv_db_log_read_error(kv_db *db, int status)
{
    if (status != KV_CORRUPTION && status != KV_IO_ERROR)
        return;
    kv_info_log_printf(db->info_log, "read failed: %s: %s", kv_strerror(status), kv_errmsg());
}

/* ---- verification ---- */

int kv_verify_checksums(kv_db *db, kv_verify_progress progress, void *arg)
{
    /* Pin one version per family, so that no file goes away meanwhile. */
    pthread_mutex_lock(&db->mutex);
    size_t count = db->num_cfs;
    kv_version **versions = kv_calloc(count > 0 ? count : 1, sizeof(*versions));
    uint64_t files_total = 0, bytes_total = 0;
    for (size_t i = 0; i < count; i++) {
        if (db->cfs[i]->dropped)
            continue;
        versions[i] = db->cfs[i]->current;
        kv_version_ref(versions[i]);
        for (int level = 0; level < KV_NUM_LEVELS; level++) {
            files_total += versions[i]->num_files[level];
            for (size_t f = 0; f < versions[i]->num_files[level]; f++)
                bytes_total += versions[i]->files[level][f]->file_size;
        }
    }
    pthread_mutex_unlock(&db->mutex);
    /* The blob files the pinned tables point into (they keep them), counted
     * by their size on disk; files no table points to are garbage, and a
     * file being written by a compaction is not complete yet. */
    size_t num_blobs = 0;
    uint64_t *blobs = NULL;
    for (size_t i = 0; i < count; i++) {
        for (int level = 0; versions[i] != NULL && level < KV_NUM_LEVELS; level++) {
            for (size_t f = 0; f < versions[i]->num_files[level]; f++) {
                const kv_file_meta *meta = versions[i]->files[level][f];
                for (size_t l = 0; l < meta->num_blob_links; l++) {
                    uint64_t number = meta->blob_links[l].number;
                    bool seen = false;
                    for (size_t k = 0; k < num_blobs && !seen; k++)
                        seen = blobs[k] == number;
                    if (!seen) {
                        blobs = kv_realloc(blobs, (num_blobs + 1) * sizeof(*blobs));
                        blobs[num_blobs++] = number;
                    }
                }
            }
        }
    }
    files_total += num_blobs;
    for (size_t i = 0; i < num_blobs; i++) {
        char *path = kv_blob_file_name(db->path, blobs[i]);
        uint64_t size = 0;
        kv_env_file_size(path, &size);
        bytes_total += size;
        free(path);
    }

    int rc = 0;
    uint64_t files_done = 0, bytes_done = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        const kv_version *v = versions[i];
        for (int level = 0; v != NULL && level < KV_NUM_LEVELS && rc == 0; level++) {
            for (size_t f = 0; f < v->num_files[level] && rc == 0; f++) {
                const kv_file_meta *meta = v->files[level][f];
                kv_cache_handle *handle;
                rc = kv_table_cache_find(db->table_cache, meta->number, meta->file_size, &handle);
                if (rc != 0)
                    break;
                rc = kv_table_verify(kv_table_cache_table(handle));
                kv_table_cache_release(db->table_cache, handle);
                kv_db_log_read_error(db, rc);
                files_done++;
                bytes_done += meta->file_size;
                if (progress != NULL)
                    progress(arg, files_done, files_total, bytes_done, bytes_total);
            }
        }
    }
    /* Every record of every blob file, garbage included. */
    for (size_t i = 0; i < num_blobs && rc == 0; i++) {
        uint64_t bytes = 0;
        rc = kv_blob_set_verify_file(&db->blobs, blobs[i], &bytes);
        kv_db_log_read_error(db, rc);
        files_done++;
        bytes_done += bytes;
        if (progress != NULL)
            progress(arg, files_done, files_total, bytes_done, bytes_total);
    }
    free(blobs);
    for (size_t i = 0; i < count; i++)
        if (versions[i] != NULL)
            kv_version_unref(versions[i]);
    free(versions);
    return rc;
}

/* ---- dropping whole files ---- */

int kv_delete_files_in_range(kv_db *db, kv_cf *cf, const void *begin, size_t begin_len,
                             const void *end, size_t end_len, uint64_t *files_dropped)
{
    if (files_dropped != NULL)
        *files_dropped = 0;
    int rc = check_cf(db, cf);
    if (rc != 0)
        return rc;
    kv_slice lo = kv_slice_make(begin, begin_len), hi = kv_slice_make(end, end_len);
    pthread_mutex_lock(&db->mutex);
    /* A compaction of the family may be using any of its files: wait for it
     * to end, and hold the family's compaction slot while the edit is
     * written (the MANIFEST write releases the mutex). */
    db->manual_compactions_waiting++;
    while (cf->compaction_running && !db->shutting_down && !cf->dropped)
        pthread_cond_wait(&db->bg_cv, &db->mutex);
    if (db->shutting_down || cf->dropped) {
        db->manual_compactions_waiting--;
        pthread_cond_broadcast(&db->bg_cv);
        pthread_mutex_unlock(&db->mutex);
        return kv_error(KV_SHUTDOWN, "database is closing or the family was dropped");
    }
    cf->compaction_running = true;
    kv_version_edit edit;
    kv_version_edit_init(&edit);
    edit.column_family = cf->id;
    const kv_version *v = cf->current;
    kv_file_meta **dropped = kv_calloc(1, sizeof(*dropped));
    size_t count = 0, cap = 1;
    for (int level = 0; level < KV_NUM_LEVELS; level++) {
        for (size_t i = 0; i < v->num_files[level]; i++) {
            kv_file_meta *f = v->files[level][i];
            /* A file with a deletion of its own may be what hides an older
             * key elsewhere: keep it (compaction will deal with it). */
            if (f->num_deletions > 0 || f->num_range_deletions > 0)
                continue;
            kv_slice smallest = kv_ikey_user_key(kv_buf_slice(&f->smallest));
            kv_slice largest = kv_ikey_user_key(kv_buf_slice(&f->largest));
            if (kv_slice_compare(smallest, lo) < 0 || kv_slice_compare(largest, hi) >= 0)
                continue;
            kv_version_edit_delete_file(&edit, level, f->number);
            if (count == cap) {
                cap *= 2;
                dropped = kv_realloc(dropped, cap * sizeof(*dropped));
            }
            kv_file_meta_ref(f);
            dropped[count++] = f;
        }
    }
    if (count > 0) {
        kv_version *nv = NULL;
        rc = kv_version_set_log_and_apply(&db->versions, &edit, &nv);
        if (rc == 0) {
            kv_version_unref(cf->current);
            cf->current = nv;
            kv_cf_install_super_version(cf);
            for (size_t i = 0; i < count; i++)
                kv_db_add_obsolete_file(db, dropped[i]);
            kv_info_log_printf(db->info_log, "[%s] dropped %zu files wholly inside a deleted range",
                               cf->name, count);
            if (files_dropped != NULL)
                *files_dropped = count;
        }
    }
    for (size_t i = 0; i < count; i++)
        kv_file_meta_unref(dropped[i]);
    if (rc == 0 && count > 0)
        kv_db_delete_obsolete_files(db, false); /* those no reader holds go now */
    free(dropped);
    kv_version_edit_free(&edit);
    cf->compaction_running = false;
    db->manual_compactions_waiting--;
    pthread_cond_broadcast(&db->bg_cv);
    pthread_mutex_unlock(&db->mutex);
    return rc;
}
