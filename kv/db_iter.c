/*
 * db_iter.c — the user-visible iterator (LevelDB's DBIter): turns the
 * merged stream of internal entries from memtables and tables into the
 * user keys visible at a snapshot, hiding older versions, point deletions
 * and keys covered by range tombstones.
 *
 * Forward, the merged iterator sits on the entry being returned. Backward,
 * it sits just before all entries of the returned key, whose key and value
 * are kept in saved_key / saved_value.
 */
#include "db_impl.h"

#include "error.h"
#include "level_iterator.h"

#include <stdlib.h>
#include <string.h>

enum direction { FORWARD, REVERSE };

struct kv_iterator {
    kv_db *db;
    kv_superversion *sv;
    kv_iter *iter;                  /* merging iterator over internal keys */
    kv_frag_tombstones *tombstones; /* all sources' range tombstones, or NULL */
    kv_seq snapshot;
    enum direction direction;
    bool valid;
    int status;
    kv_buf saved_key;   /* forward: user key to skip; reverse: current user key */
    kv_buf saved_value; /* reverse: current value */
    bool saved_is_blob; /* reverse: saved_value is a blob index */
    kv_blob_readahead readahead;
};

static bool covered(kv_iterator *it, kv_slice user_key, kv_seq seq)
{
    return it->tombstones != NULL &&
           kv_frag_tombstones_max_covering(it->tombstones, user_key, it->snapshot) > seq;
}

static bool parse(kv_iterator *it, kv_slice *user_key, kv_seq *seq, int *type)
{
    if (kv_ikey_parse(kv_iter_key(it->iter), user_key, seq, type))
        return true;
    it->status = kv_error(KV_CORRUPTION, "iterator: malformed internal key");
    it->valid = false;
    return false;
}

/* Moves forward to the first visible entry, skipping entries of saved_key
 * when skipping is set. */
static void find_next_user_entry(kv_iterator *it, bool skipping)
{
    while (kv_iter_valid(it->iter)) {
        kv_slice user_key;
        kv_seq seq;
        int type;
        if (!parse(it, &user_key, &seq, &type))
            return;
        if (seq <= it->snapshot) {
            if (type == KV_TYPE_DELETION || covered(it, user_key, seq)) {
                kv_buf_set(&it->saved_key, user_key.data, user_key.size);
                skipping = true;
            } else if (kv_type_is_value(type)) {
                if (!(skipping && kv_slice_compare(user_key, kv_buf_slice(&it->saved_key)) <= 0)) {
                    it->valid = true;
                    kv_buf_clear(&it->saved_key);
                    return;
                }
            }
        }
        kv_iter_next(it->iter);
    }
    it->valid = false;
    kv_buf_clear(&it->saved_key);
}

/* Moves backward; leaves the newest visible version of the previous user
 * key in saved_key / saved_value. */
static void find_prev_user_entry(kv_iterator *it)
{
    bool have_value = false;
    while (kv_iter_valid(it->iter)) {
        kv_slice user_key;
        kv_seq seq;
        int type;
        if (!parse(it, &user_key, &seq, &type))
            return;
        if (seq <= it->snapshot) {
            if (have_value && kv_slice_compare(user_key, kv_buf_slice(&it->saved_key)) < 0)
                break; /* saved_key's newest visible version is decided */
            if (type == KV_TYPE_DELETION || covered(it, user_key, seq)) {
                have_value = false;
                kv_buf_clear(&it->saved_key);
                kv_buf_clear(&it->saved_value);
            } else if (kv_type_is_value(type)) {
                have_value = true;
                kv_buf_set(&it->saved_key, user_key.data, user_key.size);
                kv_slice v = kv_iter_value(it->iter);
                kv_buf_set(&it->saved_value, v.data, v.size);
                it->saved_is_blob = type == KV_TYPE_BLOB_INDEX;
            }
        }
        kv_iter_prev(it->iter);
    }
    if (!have_value) {
        it->valid = false;
        kv_buf_clear(&it->saved_key);
        kv_buf_clear(&it->saved_value);
        it->direction = FORWARD;
    } else {
        it->valid = true;
    }
}

static void update_status(kv_iterator *it)
{
    if (it->status == 0) {
        it->status = kv_iter_status(it->iter);
        if (it->status != 0)
            kv_db_log_read_error(it->db, it->status);
    }
    if (it->status != 0)
        it->valid = false;
}

bool kv_iterator_valid(const kv_iterator *it)
{
    return it->valid;
}

void kv_iterator_seek_to_first(kv_iterator *it)
{
    it->direction = FORWARD;
    kv_buf_clear(&it->saved_value);
    kv_iter_seek_to_first(it->iter);
    find_next_user_entry(it, false);
    update_status(it);
}

void kv_iterator_seek_to_last(kv_iterator *it)
{
    it->direction = REVERSE;
    kv_buf_clear(&it->saved_value);
    kv_iter_seek_to_last(it->iter);
    find_prev_user_entry(it);
    update_status(it);
}

void kv_iterator_seek(kv_iterator *it, const void *target, size_t target_len)
{
    it->direction = FORWARD;
    kv_buf_clear(&it->saved_value);
    kv_buf_clear(&it->saved_key);
    kv_ikey_append(&it->saved_key, kv_slice_make(target, target_len), it->snapshot,
                   KV_TYPE_FOR_SEEK);
    kv_iter_seek(it->iter, kv_buf_slice(&it->saved_key));
    find_next_user_entry(it, false);
    update_status(it);
}

void kv_iterator_seek_for_prev(kv_iterator *it, const void *target, size_t target_len)
{
    kv_iterator_seek(it, target, target_len);
    if (!it->valid) {
        if (it->status == 0)
            kv_iterator_seek_to_last(it);
        return;
    }
    size_t len;
    const char *key = kv_iterator_key(it, &len);
    if (kv_slice_compare(kv_slice_make(key, len), kv_slice_make(target, target_len)) > 0)
        kv_iterator_prev(it);
}

void kv_iterator_next(kv_iterator *it)
{
    if (!it->valid)
        return;
    if (it->direction == REVERSE) {
        it->direction = FORWARD;
        /* The merged iterator is just before saved_key's entries: step into
         * them; find_next_user_entry skips past saved_key. */
        if (!kv_iter_valid(it->iter))
            kv_iter_seek_to_first(it->iter);
        else
            kv_iter_next(it->iter);
        if (!kv_iter_valid(it->iter)) {
            it->valid = false;
            kv_buf_clear(&it->saved_key);
            update_status(it);
            return;
        }
    } else {
        kv_slice user_key = kv_ikey_user_key(kv_iter_key(it->iter));
        kv_buf_set(&it->saved_key, user_key.data, user_key.size);
        kv_iter_next(it->iter);
    }
    find_next_user_entry(it, true);
    update_status(it);
}

void kv_iterator_prev(kv_iterator *it)
{
    if (!it->valid)
        return;
    if (it->direction == FORWARD) {
        /* Step back past every entry of the current key. */
        kv_slice user_key = kv_ikey_user_key(kv_iter_key(it->iter));
        kv_buf_set(&it->saved_key, user_key.data, user_key.size);
        for (;;) {
            kv_iter_prev(it->iter);
            if (!kv_iter_valid(it->iter)) {
                it->valid = false;
                kv_buf_clear(&it->saved_key);
                kv_buf_clear(&it->saved_value);
                update_status(it);
                return;
            }
            if (kv_slice_compare(kv_ikey_user_key(kv_iter_key(it->iter)),
                                 kv_buf_slice(&it->saved_key)) < 0)
                break;
        }
        it->direction = REVERSE;
    }
    find_prev_user_entry(it);
    update_status(it);
}

const char *kv_iterator_key(const kv_iterator *it, size_t *len)
{
    if (it->direction == FORWARD) {
        kv_slice k = kv_ikey_user_key(kv_iter_key(it->iter));
        *len = k.size;
        return k.data;
    }
    *len = it->saved_key.size;
    return it->saved_key.data;
}

/* Reads the value blob index `index` of key `key` points to; NULL (and
 * the iterator invalid) on error. */
static const char *blob_value(kv_iterator *it, kv_slice key, kv_slice index, size_t *len)
{
    kv_blob_ref ref;
    kv_slice value;
    int rc;
    if (!kv_blob_ref_decode(index, &ref))
        rc = kv_error(KV_CORRUPTION, "%s: malformed blob index (%zu bytes)", it->db->path,
                      index.size);
    else
        rc = kv_blob_set_read_ahead(&it->db->blobs, &ref, key, &it->readahead, &value);
    if (rc != 0) {
        it->status = rc;
        it->valid = false;
        kv_db_log_read_error(it->db, rc);
        *len = 0;
        return NULL;
    }
    *len = value.size;
    return value.data;
}

const char *kv_iterator_value(kv_iterator *it, size_t *len)
{
    if (it->direction == FORWARD) {
        kv_slice ikey = kv_iter_key(it->iter);
        kv_slice v = kv_iter_value(it->iter);
        int type = (int)(kv_decode_fixed64(ikey.data + ikey.size - 8) & 0xff);
        if (type == KV_TYPE_BLOB_INDEX)
            return blob_value(it, kv_ikey_user_key(ikey), v, len);
        *len = v.size;
        return v.data;
    }
    if (it->saved_is_blob)
        return blob_value(it, kv_buf_slice(&it->saved_key), kv_buf_slice(&it->saved_value), len);
    *len = it->saved_value.size;
    return it->saved_value.data ? it->saved_value.data : "";
}

int kv_iterator_status(const kv_iterator *it)
{
    return it->status;
}

void kv_iterator_destroy(kv_iterator *it)
{
    if (it == NULL)
        return;
    kv_iter_destroy(it->iter);
    if (it->tombstones)
        kv_frag_tombstones_unref(it->tombstones);
    kv_superversion_unref(it->sv);
    kv_buf_free(&it->saved_key);
    kv_buf_free(&it->saved_value);
    kv_blob_readahead_free(&it->db->blobs, &it->readahead);
    free(it);
}

static void collect_tombstones(kv_tombstone_set *set, kv_frag_tombstones *list)
{
    if (list == NULL)
        return;
    kv_tombstone_set_add_list(set, list);
}

kv_iterator *kv_db_iter_create(kv_db *db, kv_cf *cf, kv_superversion *sv, kv_seq snapshot,
                               bool fill_cache)
{
    (void)cf;
    const kv_version *v = sv->version;
    size_t max_children = 1 + sv->num_imm + kv_version_total_files(v);
    kv_iter **children = kv_malloc(max_children * sizeof(kv_iter *));
    size_t n = 0;
    kv_tombstone_set set = {0};
    int status = 0;

    children[n++] = kv_memtable_iter_create(sv->mem);
    kv_frag_tombstones *t = kv_memtable_range_tombstones(sv->mem);
    collect_tombstones(&set, t);
    if (t)
        kv_frag_tombstones_unref(t);
    for (size_t i = 0; i < sv->num_imm; i++) {
        children[n++] = kv_memtable_iter_create(sv->imm[i]);
        t = kv_memtable_range_tombstones(sv->imm[i]);
        collect_tombstones(&set, t);
        if (t)
            kv_frag_tombstones_unref(t);
    }
    for (int level = 0; level < KV_NUM_LEVELS; level++) {
        /* Level 0 files overlap: one iterator each. Deeper levels: one lazy
         * iterator per level. */
        if (level > 0 && v->num_files[level] > 0)
            children[n++] = kv_level_iter_create(db->table_cache, v->files[level],
                                                 v->num_files[level], fill_cache);
        for (size_t i = 0; i < v->num_files[level]; i++) {
            const kv_file_meta *f = v->files[level][i];
            if (level == 0)
                children[n++] =
                    kv_table_cache_iter(db->table_cache, f->number, f->file_size, fill_cache);
            if (f->num_range_deletions == 0)
                continue;
            kv_cache_handle *handle;
            int rc = kv_table_cache_find(db->table_cache, f->number, f->file_size, &handle);
            if (rc != 0) {
                if (status == 0)
                    status = rc;
                continue;
            }
            collect_tombstones(&set, kv_table_range_tombstones(kv_table_cache_table(handle)));
            kv_table_cache_release(db->table_cache, handle);
        }
    }

    kv_iterator *it = kv_calloc(1, sizeof(*it));
    it->db = db;
    it->sv = sv;
    it->snapshot = snapshot;
    it->iter = kv_merging_iter_create(kv_ikey_compare, children, n);
    free(children);
    if (set.count > 0)
        it->tombstones = kv_frag_tombstones_build(set.items, set.count, snapshot);
    kv_tombstone_set_free(&set);
    it->status = status;
    it->direction = FORWARD;
    return it;
}
