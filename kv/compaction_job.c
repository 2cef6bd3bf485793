/*
 * compaction_job.c — merges a compaction's input files into new files at the
 * output level (LevelDB's DoCompactionWork, RocksDB's CompactionJob).
 *
 * What is dropped, for each user key (entries arrive newest first):
 *  - a version shadowed by a newer one in the same snapshot stripe (no
 *    snapshot can tell them apart);
 *  - a point entry covered by a range tombstone of the inputs in the same
 *    stripe;
 *  - a point tombstone in the oldest stripe when no level below the output
 *    holds the key (nothing left for it to delete);
 *  - a range tombstone in the oldest stripe when no level below the output
 *    overlaps the compaction.
 * Outputs are cut at target_file_size, always between two user keys; each
 * output receives the range tombstones clipped to its own key range, so
 * files of one level never overlap.
 */
#include "compaction.h"

#include "error.h"
#include "filename.h"
#include "level_iterator.h"
#include "table_builder.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct compaction_state {
    kv_db *db;
    kv_compaction *c;
    kv_seq *snapshots; /* ascending */
    size_t num_snapshots;
    kv_frag_tombstones *tombstones; /* of all inputs, or NULL */
    bool bottommost;                /* nothing below output_level overlaps */

    /* current output */
    kv_writable *file;
    kv_table_builder *builder;
    kv_file_meta *meta;
    kv_buf lower; /* user key the current output starts at ("" with has_lower false) */
    bool has_lower;

    kv_file_meta **outputs;
    size_t num_outputs, outputs_cap;
    uint64_t *created; /* every output number taken, kept or not */
    size_t num_created;
    uint64_t bytes_read, bytes_written;

    /* Garbage collection (c->relocate_blob): the blob file the relocated
     * values go to, opened at the first one. */
    kv_writable *blob_out;
    kv_blob_file *blob_out_object; /* a reference */
    kv_buf blob_value, blob_record, blob_index;
    uint64_t relocated_bytes;
} compaction_state;

static size_t stripe_of(const compaction_state *s, kv_seq seq)
{
    return kv_snapshot_stripe(s->snapshots, s->num_snapshots, seq);
}

/* The newest sequence visible in a stripe. */
static kv_seq stripe_top(const compaction_state *s, size_t stripe)
{
    return stripe < s->num_snapshots ? s->snapshots[stripe] : KV_MAX_SEQUENCE;
}

/* True when no file below the output level may hold user_key (levels
 * below level 0 are sorted: a binary search each). */
static bool is_base_level_for_key(const compaction_state *s, kv_slice user_key)
{
    const kv_version *v = s->c->input_version;
    kv_buf probe = {0};
    kv_ikey_append(&probe, user_key, KV_MAX_SEQUENCE, KV_TYPE_FOR_SEEK);
    bool base = true;
    for (int level = s->c->output_level + 1; level < KV_NUM_LEVELS && base; level++) {
        size_t i = kv_find_file(v->files[level], v->num_files[level], kv_buf_slice(&probe));
        if (i < v->num_files[level] &&
            kv_slice_compare(user_key,
                             kv_ikey_user_key(kv_buf_slice(&v->files[level][i]->smallest))) >= 0)
            base = false;
    }
    kv_buf_free(&probe);
    return base;
}

static int open_output(compaction_state *s)
{
    kv_db *db = s->db;
    pthread_mutex_lock(&db->mutex);
    uint64_t number = kv_version_set_new_file_number(&db->versions);
    if (db->num_pending_outputs == db->pending_outputs_cap) {
        db->pending_outputs_cap = db->pending_outputs_cap ? db->pending_outputs_cap * 2 : 8;
        db->pending_outputs =
            kv_realloc(db->pending_outputs, db->pending_outputs_cap * sizeof(uint64_t));
    }
    db->pending_outputs[db->num_pending_outputs++] = number;
    pthread_mutex_unlock(&db->mutex);
    s->created = kv_realloc(s->created, (s->num_created + 1) * sizeof(uint64_t));
    s->created[s->num_created++] = number;

    char *path = kv_table_file_name(db->path, number);
    int rc = kv_env_new_writable(db->env, path, 256 * 1024, &s->file);
    free(path);
    if (rc != 0)
        return rc;
    s->file->start_writeback = true;
    s->meta = kv_file_meta_create();
    s->meta->number = number;
    s->meta->smallest_seq = KV_MAX_SEQUENCE;
    s->builder = kv_table_builder_create(&s->c->cf->table_options, s->file);
    return 0;
}

/* Adds the tombstones, clipped to [lower, upper), that must survive. */
static void add_clipped_tombstones(compaction_state *s, const kv_slice *upper)
{
    if (s->tombstones == NULL)
        return;
    kv_slice lower = kv_buf_slice(&s->lower);
    for (size_t i = 0; i < kv_frag_tombstones_count(s->tombstones); i++) {
        const kv_tombstone_fragment *frag = kv_frag_tombstones_get(s->tombstones, i);
        kv_slice begin = frag->begin, end = frag->end;
        if (s->has_lower && kv_slice_compare(begin, lower) < 0)
            begin = lower;
        if (upper && kv_slice_compare(end, *upper) > 0)
            end = *upper;
        if (kv_slice_compare(begin, end) >= 0)
            continue;
        for (size_t j = 0; j < frag->num_seqs; j++) {
            kv_seq seq = frag->seqs[j];
            /* A newer tombstone of the same stripe makes this one moot. */
            if (j > 0 && stripe_of(s, frag->seqs[j - 1]) == stripe_of(s, seq))
                continue;
            if (s->bottommost && stripe_of(s, seq) == 0)
                continue; /* nothing older left anywhere for it to delete */
            kv_table_builder_add_range_tombstone(s->builder, begin, end, seq);
            if (seq < s->meta->smallest_seq)
                s->meta->smallest_seq = seq;
            if (seq > s->meta->largest_seq)
                s->meta->largest_seq = seq;
            s->meta->num_range_deletions++;
        }
    }
}

/* Finishes the current output; upper is the first user key of the next
 * output (NULL for the last). An output that ends up empty is removed. */
static int finish_output(compaction_state *s, const kv_slice *upper)
{
    add_clipped_tombstones(s, upper);
    bool empty = kv_table_builder_num_entries(s->builder) == 0;
    int rc = 0;
    if (!empty)
        rc = kv_table_builder_finish(s->builder);
    if (rc == 0 && !empty) {
        kv_file_meta *m = s->meta;
        m->file_size = kv_table_builder_file_size(s->builder);
        kv_buf_set(&m->smallest, kv_table_builder_smallest(s->builder).data,
                   kv_table_builder_smallest(s->builder).size);
        kv_buf_set(&m->largest, kv_table_builder_largest(s->builder).data,
                   kv_table_builder_largest(s->builder).size);
        m->num_entries = kv_table_builder_properties(s->builder)->num_entries;
        kv_table_builder_take_blob_links(s->builder, &m->blob_links, &m->num_blob_links);
        rc = kv_writable_sync(s->file);
    }
    kv_table_builder_destroy(s->builder);
    s->builder = NULL;
    int close_rc = kv_writable_close(s->file);
    s->file = NULL;
    if (rc == 0)
        rc = close_rc;
    if (rc != 0 || empty) {
        char *path = kv_table_file_name(s->db->path, s->meta->number);
        kv_env_remove(s->db->env, path);
        free(path);
        kv_file_meta_unref(s->meta);
    } else {
        if (s->num_outputs == s->outputs_cap) {
            s->outputs_cap = s->outputs_cap ? s->outputs_cap * 2 : 4;
            s->outputs = kv_realloc(s->outputs, s->outputs_cap * sizeof(kv_file_meta *));
        }
        s->outputs[s->num_outputs++] = s->meta;
        s->bytes_written += s->meta->file_size;
    }
    s->meta = NULL;
    if (upper) {
        kv_buf_set(&s->lower, upper->data, upper->size);
        s->has_lower = true;
    }
    return rc;
}

static kv_iter *make_input_iterator(compaction_state *s)
{
    kv_compaction *c = s->c;
    kv_db *db = s->db;
    size_t n = c->level == 0 ? c->num_inputs[0] + 1 : 2;
    kv_iter **children = kv_malloc(n * sizeof(kv_iter *));
    size_t k = 0;
    if (c->level == 0) {
        for (size_t i = 0; i < c->num_inputs[0]; i++)
            children[k++] = kv_table_cache_iter(db->table_cache, c->inputs[0][i]->number,
                                                c->inputs[0][i]->file_size, false);
    } else {
        children[k++] =
            kv_level_iter_create(db->table_cache, c->inputs[0], c->num_inputs[0], false);
    }
    children[k++] = kv_level_iter_create(db->table_cache, c->inputs[1], c->num_inputs[1], false);
    kv_iter *iter = kv_merging_iter_create(kv_ikey_compare, children, k);
    free(children);
    return iter;
}

static int collect_tombstones(compaction_state *s)
{
    kv_tombstone_set set = {0};
    int rc = 0;
    for (int which = 0; which < 2 && rc == 0; which++) {
        for (size_t i = 0; i < s->c->num_inputs[which] && rc == 0; i++) {
            const kv_file_meta *f = s->c->inputs[which][i];
            if (f->num_range_deletions == 0)
                continue;
            kv_cache_handle *handle;
            rc = kv_table_cache_find(s->db->table_cache, f->number, f->file_size, &handle);
            if (rc != 0)
                break;
            kv_frag_tombstones *t = kv_table_range_tombstones(kv_table_cache_table(handle));
            if (t != NULL)
                kv_tombstone_set_add_list(&set, t);
            kv_table_cache_release(s->db->table_cache, handle);
        }
    }
    if (rc == 0 && set.count > 0)
        s->tombstones = kv_frag_tombstones_build(set.items, set.count, KV_MAX_SEQUENCE);
    kv_tombstone_set_free(&set);
    return rc;
}

#define PARTITION_MIN_BYTES (1u << 20)

/* True when the output should be cut between `previous` and `next` because
 * their partition prefixes differ (see kv_cf_options.partition_prefix_length). */
static bool partition_changes(const compaction_state *s, kv_slice previous, kv_slice next)
{
    size_t n = (size_t)s->c->cf->options.partition_prefix_length;
    if (n == 0 || kv_table_builder_file_size(s->builder) < PARTITION_MIN_BYTES)
        return false;
    size_t a = previous.size < n ? previous.size : n, b = next.size < n ? next.size : n;
    return a != b || memcmp(previous.data, next.data, a) != 0;
}

/* The merge itself; runs without the mutex. */
static int open_blob_output(compaction_state *s)
{
    kv_db *db = s->db;
    pthread_mutex_lock(&db->mutex);
    uint64_t number = kv_version_set_new_file_number(&db->versions);
    pthread_mutex_unlock(&db->mutex);
    s->blob_out_object = kv_blob_set_get(&db->blobs, number);
    char *path = kv_blob_file_name(db->path, number);
    int rc = kv_env_new_writable(db->env, path, 256 * 1024, &s->blob_out);
    free(path);
    if (rc != 0)
        return rc;
    s->blob_out->start_writeback = true;
    char header[KV_BLOB_HEADER_SIZE];
    kv_blob_header_encode(header);
    return kv_writable_append(s->blob_out, header, sizeof(header));
}

/* When value is a blob index into the file being collected, copies the
 * value to the compaction's blob file and points *value at a new index. */
static int relocate_value(compaction_state *s, kv_slice user_key, kv_slice *value)
{
    kv_blob_ref ref;
    if (!kv_blob_ref_decode(*value, &ref))
        return kv_error(KV_CORRUPTION, "compaction: malformed blob index in an input file");
    if (ref.file != s->c->relocate_blob)
        return 0;
    int rc = kv_blob_set_read(&s->db->blobs, &ref, user_key, &s->blob_value);
    if (rc == 0 && s->blob_out == NULL)
        rc = open_blob_output(s);
    if (rc != 0)
        return rc;
    kv_blob_ref moved = {s->blob_out_object->number, s->blob_out->size, 0};
    kv_buf_clear(&s->blob_record);
    moved.size =
        (uint32_t)kv_blob_record_append(&s->blob_record, user_key, kv_buf_slice(&s->blob_value));
    rc = kv_writable_append(s->blob_out, s->blob_record.data, s->blob_record.size);
    if (rc != 0)
        return rc;
    s->relocated_bytes += moved.size;
    kv_buf_clear(&s->blob_index);
    kv_blob_ref_encode(&moved, &s->blob_index);
    *value = kv_buf_slice(&s->blob_index);
    return 0;
}

/* Syncs and closes the compaction's blob file: the tables about to be
 * installed point into it. */
static int finish_blob_output(compaction_state *s)
{
    if (s->blob_out == NULL)
        return 0;
    int rc = kv_writable_sync(s->blob_out);
    atomic_store(&s->blob_out_object->size, s->blob_out->size);
    int close_rc = kv_writable_close(s->blob_out);
    s->blob_out = NULL;
    return rc != 0 ? rc : close_rc;
}

static int do_compaction_work(compaction_state *s)
{
    int rc = collect_tombstones(s);
    if (rc != 0)
        return rc;
    kv_iter *iter = make_input_iterator(s);
    kv_buf current_key = {0};
    bool have_key = false;
    size_t last_stripe = 0;
    for (kv_iter_seek_to_first(iter); rc == 0 && kv_iter_valid(iter); kv_iter_next(iter)) {
        if (s->db->shutting_down) {
            rc = kv_error(KV_SHUTDOWN, "compaction stopped: database is closing");
            break;
        }
        kv_slice ikey = kv_iter_key(iter), value = kv_iter_value(iter);
        kv_slice user_key;
        kv_seq seq;
        int type;
        if (!kv_ikey_parse(ikey, &user_key, &seq, &type)) {
            rc = kv_error(KV_CORRUPTION, "compaction: malformed internal key in an input file");
            break;
        }
        s->bytes_read += ikey.size + value.size;
        size_t stripe = stripe_of(s, seq);
        bool new_key = !have_key || !kv_slice_equal(user_key, kv_buf_slice(&current_key));
        if (!new_key && stripe == last_stripe)
            continue; /* shadowed in its stripe */
        last_stripe = stripe;
        if (new_key) {
            /* Cut outputs only between user keys: at the target size, and
             * where the partition prefix changes. */
            if (s->builder != NULL &&
                (kv_table_builder_file_size(s->builder) >= s->c->max_output_file_size ||
                 partition_changes(s, kv_buf_slice(&current_key), user_key))) {
                rc = finish_output(s, &user_key);
                if (rc != 0)
                    break;
            }
            kv_buf_set(&current_key, user_key.data, user_key.size);
            have_key = true;
        }
        if (s->tombstones != NULL &&
            kv_frag_tombstones_max_covering(s->tombstones, user_key, stripe_top(s, stripe)) > seq)
            continue; /* deleted by a range tombstone of its stripe */
        if (type == KV_TYPE_DELETION && stripe == 0 && is_base_level_for_key(s, user_key))
            continue; /* nothing older below; older versions here are shadowed */
        if (s->builder == NULL && (rc = open_output(s)) != 0)
            break;
        if (type == KV_TYPE_BLOB_INDEX && s->c->relocate_blob != 0 &&
            (rc = relocate_value(s, user_key, &value)) != 0)
            break;
        rc = kv_table_builder_add(s->builder, ikey, value);
        if (seq < s->meta->smallest_seq)
            s->meta->smallest_seq = seq;
        if (seq > s->meta->largest_seq)
            s->meta->largest_seq = seq;
        s->meta->num_deletions += type == KV_TYPE_DELETION;
    }
    if (rc == 0)
        rc = kv_iter_status(iter);
    kv_iter_destroy(iter);
    kv_buf_free(&current_key);
    /* Tombstones may outlive every point key (or there may be no point key
     * at all): they still need a home unless all of them can go. */
    if (rc == 0 && s->builder == NULL && s->tombstones != NULL) {
        rc = open_output(s);
    }
    if (s->builder != NULL) {
        int finish_rc = finish_output(s, NULL);
        if (rc == 0)
            rc = finish_rc;
    }
    if (rc == 0)
        rc = finish_blob_output(s);
    if (rc == 0 && (s->num_outputs > 0 || s->blob_out_object != NULL))
        rc = kv_env_sync_dir(s->db->env, s->db->path);
    return rc;
}

static void forget_pending_outputs(kv_db *db, const uint64_t *numbers, size_t n)
{
    for (size_t f = 0; f < n; f++) {
        for (size_t i = 0; i < db->num_pending_outputs; i++) {
            if (db->pending_outputs[i] == numbers[f]) {
                db->pending_outputs[i] = db->pending_outputs[--db->num_pending_outputs];
                break;
            }
        }
    }
}

static int install(kv_db *db, kv_compaction *c, kv_file_meta *const *outputs, size_t n)
{
    kv_cf *cf = c->cf;
    kv_version_edit edit;
    kv_version_edit_init(&edit);
    edit.column_family = cf->id;
    for (int which = 0; which < 2; which++)
        for (size_t i = 0; i < c->num_inputs[which]; i++)
            kv_version_edit_delete_file(&edit, which == 0 ? c->level : c->output_level,
                                        c->inputs[which][i]->number);
    for (size_t i = 0; i < n; i++) {
        kv_version_edit_add_file(&edit, c->output_level, outputs[i]);
        /* The edit holds a copy; the version must hold `outputs[i]` itself,
         * so that a moved file keeps one meta object (whose references
         * decide when the file may be deleted) in old and new versions. */
        kv_new_file *added = &edit.added[edit.num_added - 1];
        kv_file_meta_unref(added->meta);
        kv_file_meta_ref(outputs[i]);
        added->meta = outputs[i];
    }
    kv_version *v = NULL;
    int rc = kv_version_set_log_and_apply(&db->versions, &edit, &v);
    kv_version_edit_free(&edit);
    if (rc != 0)
        return rc;
    kv_version_unref(cf->current);
    cf->current = v;
    kv_cf_install_super_version(cf);
    /* Inputs die with the versions that hold them, except a file that
     * moved: it lives on under another (copied) meta of the same number. */
    for (int which = 0; which < 2; which++) {
        for (size_t i = 0; i < c->num_inputs[which]; i++) {
            bool moved = false;
            for (size_t o = 0; o < n && !moved; o++)
                moved = outputs[o]->number == c->inputs[which][i]->number;
            if (!moved)
                kv_db_add_obsolete_file(db, c->inputs[which][i]);
        }
    }
    return 0;
}

static int run_trivial_move(kv_db *db, kv_compaction *c)
{
    int rc = install(db, c, c->inputs[0], c->num_inputs[0]);
    if (rc != 0)
        return rc;
    atomic_fetch_add(&db->stats.trivial_moves, 1);
    uint64_t bytes = 0;
    char numbers[128] = "";
    size_t used = 0;
    for (size_t i = 0; i < c->num_inputs[0]; i++) {
        bytes += c->inputs[0][i]->file_size;
        if (used < sizeof(numbers) - 16)
            used += (size_t)snprintf(numbers + used, sizeof(numbers) - used, "%s%06" PRIu64,
                                     i ? "," : "", c->inputs[0][i]->number);
    }
    kv_info_log_printf(db->info_log,
                       "compaction cf=%s trivial move of %zu files [%s] (%" PRIu64
                       " bytes) from level %d to level %d",
                       c->cf->name, c->num_inputs[0], numbers, bytes, c->level, c->output_level);
    return 0;
}

/* The inputs' version is not needed once the result is installed; letting
 * it go now lets this very call delete the compacted-away files. */
static void release_inputs(kv_compaction *c)
{
    kv_version_unref(c->input_version);
    c->input_version = NULL;
}

int kv_compaction_run(kv_db *db, kv_compaction *c)
{
    kv_cf *cf = c->cf;
    uint64_t start = kv_env_now_micros();
    if (kv_compaction_is_trivial_move(c)) {
        int rc = run_trivial_move(db, c);
        release_inputs(c);
        if (rc == 0)
            kv_db_delete_obsolete_files(db, false);
        return rc;
    }

    compaction_state s;
    memset(&s, 0, sizeof(s));
    s.db = db;
    s.c = c;
    s.snapshots = kv_db_snapshot_sequences(db, c->cf, &s.num_snapshots);
    /* Bottommost: no deeper level overlaps the compaction's key range. */
    s.bottommost = true;
    {
        kv_slice lo, hi;
        kv_file_meta **all =
            kv_malloc((c->num_inputs[0] + c->num_inputs[1]) * sizeof(kv_file_meta *));
        memcpy(all, c->inputs[0], c->num_inputs[0] * sizeof(kv_file_meta *));
        if (c->num_inputs[1])
            memcpy(all + c->num_inputs[0], c->inputs[1], c->num_inputs[1] * sizeof(kv_file_meta *));
        lo = kv_ikey_user_key(kv_buf_slice(&all[0]->smallest));
        hi = kv_ikey_user_key(kv_buf_slice(&all[0]->largest));
        for (size_t i = 1; i < c->num_inputs[0] + c->num_inputs[1]; i++) {
            kv_slice a = kv_ikey_user_key(kv_buf_slice(&all[i]->smallest));
            kv_slice b = kv_ikey_user_key(kv_buf_slice(&all[i]->largest));
            if (kv_slice_compare(a, lo) < 0)
                lo = a;
            if (kv_slice_compare(b, hi) > 0)
                hi = b;
        }
        for (int level = c->output_level + 1; level < KV_NUM_LEVELS && s.bottommost; level++) {
            kv_file_meta **over;
            size_t count;
            kv_version_overlapping_inputs(c->input_version, level, &lo, &hi, &over, &count);
            s.bottommost = count == 0;
            free(over);
        }
        free(all);
    }

    pthread_mutex_unlock(&db->mutex);
    int rc = do_compaction_work(&s);
    if (s.builder != NULL) { /* failed mid-output */
        kv_table_builder_destroy(s.builder);
        kv_writable_close(s.file);
        char *path = kv_table_file_name(db->path, s.meta->number);
        kv_env_remove(db->env, path);
        free(path);
        kv_file_meta_unref(s.meta);
        s.meta = NULL;
    }
    pthread_mutex_lock(&db->mutex);

    if (rc == 0 && cf->dropped)
        rc = kv_error(KV_INVALID_ARGUMENT, "column family %s was dropped during compaction",
                      cf->name);
    if (rc == 0)
        rc = install(db, c, s.outputs, s.num_outputs);
    forget_pending_outputs(db, s.created, s.num_created);
    uint64_t micros = kv_env_now_micros() - start;
    if (rc != 0) {
        char message[512];
        kv_error_copy(message, sizeof(message));
        for (size_t i = 0; i < s.num_outputs; i++) {
            char *path = kv_table_file_name(db->path, s.outputs[i]->number);
            kv_env_remove(db->env, path);
            free(path);
        }
        kv_info_log_printf(db->info_log, "compaction cf=%s level %d -> %d failed: %s", cf->name,
                           c->level, c->output_level, message);
        kv_error(rc, "%s", message);
    } else {
        uint64_t files_in = c->num_inputs[0] + c->num_inputs[1];
        struct kv_level_stats *ls = &cf->level_stats[c->output_level];
        ls->compactions++;
        ls->bytes_read += s.bytes_read;
        ls->bytes_written += s.bytes_written;
        ls->micros += micros;
        ls->files_in += files_in;
        ls->files_out += s.num_outputs;
        atomic_fetch_add(&db->stats.compactions, 1);
        atomic_fetch_add(&db->stats.compaction_bytes_read, s.bytes_read);
        atomic_fetch_add(&db->stats.compaction_bytes_written, s.bytes_written);
        atomic_fetch_add(&db->stats.sst_bytes_written, s.bytes_written);
        atomic_fetch_add(&db->stats.compaction_micros, micros);
        kv_info_log_printf(
            db->info_log,
            "compaction cf=%s level %d -> %d%s score %.2f: inputs %zu+%zu files, "
            "outputs %zu files, bytes_read=%" PRIu64 " bytes_written=%" PRIu64
            " range_tombstones=%zu duration_ms=%.1f",
            cf->name, c->level, c->output_level, c->manual ? " (manual)" : "", c->score,
            c->num_inputs[0], c->num_inputs[1], s.num_outputs, s.bytes_read, s.bytes_written,
            s.tombstones ? kv_frag_tombstones_count(s.tombstones) : (size_t)0, micros / 1000.0);
    }
    if (s.blob_out != NULL) { /* failed mid-way */
        kv_writable_close(s.blob_out);
        s.blob_out = NULL;
    }
    if (s.blob_out_object != NULL) {
        if (rc != 0) {
            char *path = kv_blob_file_name(db->path, s.blob_out_object->number);
            kv_env_remove(db->env, path);
            free(path);
        } else {
            atomic_fetch_add(&db->stats.blob_gc_runs, 1);
            atomic_fetch_add(&db->stats.blob_gc_bytes_relocated, s.relocated_bytes);
            kv_info_log_printf(db->info_log,
                               "blob gc: moved %" PRIu64 " bytes of %06" PRIu64
                               ".blob to %06" PRIu64 ".blob",
                               s.relocated_bytes, c->relocate_blob, s.blob_out_object->number);
        }
        kv_blob_file_unref(s.blob_out_object); /* the new tables hold theirs */
    }
    kv_buf_free(&s.blob_value);
    kv_buf_free(&s.blob_record);
    kv_buf_free(&s.blob_index);
    for (size_t i = 0; i < s.num_outputs; i++)
        kv_file_meta_unref(s.outputs[i]);
    free(s.outputs);
    free(s.created);
    free(s.snapshots);
    kv_buf_free(&s.lower);
    if (s.tombstones)
        kv_frag_tombstones_unref(s.tombstones);
    release_inputs(c);
    if (rc == 0)
        kv_db_delete_obsolete_files(db, false);
    return rc;
}
