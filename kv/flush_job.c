/* flush_job.c — FlushJob and BuildTable (see flush_job.h). */
#include "flush_job.h"

#include "error.h"
#include "filename.h"
#include "table_builder.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int kv_build_table(kv_env *env, const char *dbpath, const kv_table_options *options, kv_iter *iter,
                   kv_frag_tombstones **tombstones, size_t num_tombstone_lists,
                   const kv_seq *snapshots, size_t num_snapshots, kv_file_meta *meta,
                   uint64_t *bytes_in)
{
    char *path = kv_table_file_name(dbpath, meta->number);
    kv_writable *file;
    int rc = kv_env_new_writable(env, path, 256 * 1024, &file);
    if (rc != 0) {
        free(path);
        return rc;
    }
    file->start_writeback = true;
    kv_table_builder *builder = kv_table_builder_create(options, file);
    kv_buf current_user_key = {0};
    bool have_key = false;
    size_t last_stripe = 0;
    kv_seq smallest_seq = KV_MAX_SEQUENCE, largest_seq = 0;
    uint64_t in = 0, deletions = 0;

    for (kv_iter_seek_to_first(iter); rc == 0 && kv_iter_valid(iter); kv_iter_next(iter)) {
        kv_slice ikey = kv_iter_key(iter), value = kv_iter_value(iter);
        kv_slice user_key;
        kv_seq seq;
        int type;
        if (!kv_ikey_parse(ikey, &user_key, &seq, &type)) {
            rc = kv_error(KV_CORRUPTION, "flush: malformed internal key in memtable");
            break;
        }
        in += ikey.size + value.size;
        size_t stripe = kv_snapshot_stripe(snapshots, num_snapshots, seq);
        if (have_key && kv_slice_equal(user_key, kv_buf_slice(&current_user_key))) {
            if (stripe == last_stripe)
                continue; /* shadowed by a newer version in the same stripe */
        } else {
            kv_buf_set(&current_user_key, user_key.data, user_key.size);
            have_key = true;
        }
        last_stripe = stripe;
        if (seq < smallest_seq)
            smallest_seq = seq;
        if (seq > largest_seq)
            largest_seq = seq;
        deletions += type == KV_TYPE_DELETION;
        rc = kv_table_builder_add(builder, ikey, value);
    }
    if (rc == 0)
        rc = kv_iter_status(iter);
    kv_buf_free(&current_user_key);

    uint64_t range_deletions = 0;
    for (size_t l = 0; l < num_tombstone_lists && rc == 0; l++) {
        kv_frag_tombstones *list = tombstones[l];
        for (size_t i = 0; i < kv_frag_tombstones_count(list); i++) {
            const kv_tombstone_fragment *frag = kv_frag_tombstones_get(list, i);
            for (size_t s = 0; s < frag->num_seqs; s++) {
                kv_table_builder_add_range_tombstone(builder, frag->begin, frag->end,
                                                     frag->seqs[s]);
                in += frag->begin.size + frag->end.size + 8;
                range_deletions++;
                if (frag->seqs[s] < smallest_seq)
                    smallest_seq = frag->seqs[s];
                if (frag->seqs[s] > largest_seq)
                    largest_seq = frag->seqs[s];
            }
        }
    }

    bool empty = kv_table_builder_num_entries(builder) == 0;
    if (rc == 0 && !empty)
        rc = kv_table_builder_finish(builder);
    if (rc == 0 && !empty) {
        meta->file_size = kv_table_builder_file_size(builder);
        kv_buf_set(&meta->smallest, kv_table_builder_smallest(builder).data,
                   kv_table_builder_smallest(builder).size);
        kv_buf_set(&meta->largest, kv_table_builder_largest(builder).data,
                   kv_table_builder_largest(builder).size);
        meta->smallest_seq = smallest_seq;
        meta->largest_seq = largest_seq;
        const kv_table_properties *props = kv_table_builder_properties(builder);
        meta->num_entries = props->num_entries;
        meta->num_deletions = deletions;
        meta->num_range_deletions = range_deletions;
        kv_table_builder_take_blob_links(builder, &meta->blob_links, &meta->num_blob_links);
    }
    kv_table_builder_destroy(builder);
    if (rc == 0 && !empty)
        rc = kv_writable_sync(file);
    int close_rc = kv_writable_close(file);
    if (rc == 0 && !empty)
        rc = close_rc;
    if (rc == 0 && !empty)
        rc = kv_env_sync_dir(env, dbpath); /* the new file's name must be durable */
    if (rc != 0 || empty) {
        kv_env_remove(env, path);
        meta->file_size = 0;
    }
    free(path);
    if (bytes_in)
        *bytes_in = in;
    return rc;
}

void kv_flush_job_init(kv_flush_job *job, kv_db *db, kv_cf *cf)
{
    memset(job, 0, sizeof(*job));
    job->db = db;
    job->cf = cf;
}

void kv_flush_job_free(kv_flush_job *job)
{
    for (size_t i = 0; i < job->num_mems; i++)
        kv_memtable_unref(job->mems[i]);
    free(job->mems);
    free(job->snapshots);
    if (job->meta)
        kv_file_meta_unref(job->meta);
    memset(job, 0, sizeof(*job));
}

void kv_flush_job_pick_memtables(kv_flush_job *job)
{
    kv_db *db = job->db;
    kv_memtable_list_pick(&job->cf->imm, &job->mems, &job->num_mems);
    job->file_number = kv_version_set_new_file_number(&db->versions);
    if (db->num_pending_outputs == db->pending_outputs_cap) {
        db->pending_outputs_cap = db->pending_outputs_cap ? db->pending_outputs_cap * 2 : 8;
        db->pending_outputs =
            kv_realloc(db->pending_outputs, db->pending_outputs_cap * sizeof(uint64_t));
    }
    db->pending_outputs[db->num_pending_outputs++] = job->file_number;
    job->snapshots = kv_db_snapshot_sequences(db, job->cf, &job->num_snapshots);
}

static void forget_pending_output(kv_db *db, uint64_t number)
{
    for (size_t i = 0; i < db->num_pending_outputs; i++) {
        if (db->pending_outputs[i] == number) {
            db->pending_outputs[i] = db->pending_outputs[--db->num_pending_outputs];
            return;
        }
    }
}

/* WriteLevel0Table: runs without the mutex. */
static int write_level0_table(kv_flush_job *job, uint64_t *bytes_in)
{
    kv_db *db = job->db;
    kv_iter **children = kv_malloc(job->num_mems * sizeof(kv_iter *));
    kv_frag_tombstones **tombstones = kv_malloc(job->num_mems * sizeof(kv_frag_tombstones *));
    size_t num_tombstones = 0;
    for (size_t i = 0; i < job->num_mems; i++) {
        children[i] = kv_memtable_iter_create(job->mems[i]);
        kv_frag_tombstones *t = kv_memtable_range_tombstones(job->mems[i]);
        if (t != NULL)
            tombstones[num_tombstones++] = t;
    }
    kv_iter *iter = kv_merging_iter_create(kv_ikey_compare, children, job->num_mems);
    free(children);
    job->meta = kv_file_meta_create();
    job->meta->number = job->file_number;
    int rc =
        kv_build_table(db->env, db->path, &job->cf->table_options, iter, tombstones, num_tombstones,
                       job->snapshots, job->num_snapshots, job->meta, bytes_in);
    kv_iter_destroy(iter);
    for (size_t i = 0; i < num_tombstones; i++)
        kv_frag_tombstones_unref(tombstones[i]);
    free(tombstones);
    return rc;
}

int kv_flush_job_run(kv_flush_job *job)
{
    kv_db *db = job->db;
    kv_cf *cf = job->cf;
    uint64_t start = kv_env_now_micros();
    uint64_t bytes_in = 0;
    if (job->num_mems == 0)
        return 0;

    pthread_mutex_unlock(&db->mutex);
    /* The closed WALs are synced below; start their write-back now, so
     * that it runs while the table is built. */
    kv_db_start_closed_wal_writeback(db);
    int rc = write_level0_table(job, &bytes_in);
    /* The table makes the memtables' writes durable: the WALs before them
     * must be too, or a power cut could keep these writes and lose older
     * ones (the WALs they are in are closed: a switch opened a new one). */
    if (rc == 0)
        rc = kv_db_sync_closed_wals(db);
    pthread_mutex_lock(&db->mutex);

    if (rc == 0 && cf->dropped)
        rc = kv_error(KV_INVALID_ARGUMENT, "column family %s was dropped during its flush",
                      cf->name);
    if (rc == 0) {
        kv_version_edit edit;
        kv_version_edit_init(&edit);
        edit.column_family = cf->id;
        edit.has_log_number = true;
        /* Every WAL older than the one that was current when the newest
         * flushed memtable was switched out holds nothing more of ours. */
        uint64_t log_number = kv_memtable_next_log_number(job->mems[job->num_mems - 1]);
        edit.log_number = log_number;
        if (job->meta->file_size > 0)
            kv_version_edit_add_file(&edit, 0, job->meta);
        kv_version *v = NULL;
        rc = kv_version_set_log_and_apply(&db->versions, &edit, &v);
        kv_version_edit_free(&edit);
        if (rc == 0) {
            kv_version_unref(cf->current);
            cf->current = v;
            if (log_number > cf->log_number)
                cf->log_number = log_number;
            kv_memtable_list_remove(&cf->imm, job->mems, job->num_mems);
            kv_cf_install_super_version(cf);
        }
    }
    forget_pending_output(db, job->file_number);
    uint64_t micros = kv_env_now_micros() - start;
    if (rc != 0) {
        char message[512];
        kv_error_copy(message, sizeof(message));
        kv_memtable_list_rollback(&cf->imm, job->mems, job->num_mems);
        char *path = kv_table_file_name(db->path, job->file_number);
        kv_env_remove(db->env, path);
        free(path);
        kv_info_log_printf(db->info_log, "flush of column family %s failed: %s", cf->name, message);
        return kv_error(rc, "%s", message);
    }
    cf->level_stats[0].bytes_written += job->meta->file_size;
    cf->level_stats[0].micros += micros;
    atomic_fetch_add(&db->stats.flushes, 1);
    atomic_fetch_add(&db->stats.flush_bytes_in, bytes_in);
    atomic_fetch_add(&db->stats.flush_bytes_out, job->meta->file_size);
    atomic_fetch_add(&db->stats.sst_bytes_written, job->meta->file_size);
    atomic_fetch_add(&db->stats.flush_micros, micros);
    kv_info_log_printf(
        db->info_log,
        "flush cf=%s memtables=%zu keys=%" PRIu64 " range_deletions=%" PRIu64 " bytes_in=%" PRIu64
        " bytes_out=%" PRIu64 " file=%06" PRIu64 " duration_ms=%.1f level0_files=%zu",
        cf->name, job->num_mems, job->meta->num_entries, job->meta->num_range_deletions, bytes_in,
        job->meta->file_size, job->file_number, micros / 1000.0, cf->current->num_files[0]);
    kv_db_delete_obsolete_files(db, false);
    return 0;
}
