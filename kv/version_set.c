/*
 * version_set.c — Versions (immutable file lists) and the MANIFEST.
 *
 * The MANIFEST is a log (wal.h format) of VersionEdits. Every new MANIFEST
 * starts with a snapshot of the whole state (one edit with the counters,
 * then one edit per live column family listing its files), so a MANIFEST
 * can be replayed on its own and old ones can be deleted.
 */
#include "version_set.h"

#include "error.h"
#include "filename.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* ---- Version ---- */

kv_version *kv_version_create_empty(void)
{
    kv_version *v = kv_calloc(1, sizeof(*v));
    atomic_init(&v->refs, 1);
    return v;
}

void kv_version_ref(kv_version *v)
{
    atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
}

void kv_version_unref(kv_version *v)
{
    if (v == NULL)
        return;
    if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (int level = 0; level < KV_NUM_LEVELS; level++) {
        for (size_t i = 0; i < v->num_files[level]; i++)
            kv_file_meta_unref(v->files[level][i]);
        free(v->files[level]);
    }
    free(v);
}

/* Level 0: newest first (the larger sequence range wins; file number breaks
 * ties). Other levels: by smallest key. */
static int compare_level0(const void *a, const void *b)
{
    const kv_file_meta *fa = *(kv_file_meta *const *)a, *fb = *(kv_file_meta *const *)b;
    if (fa->largest_seq != fb->largest_seq)
        return fa->largest_seq > fb->largest_seq ? -1 : 1;
    return fa->number > fb->number ? -1 : (fa->number < fb->number ? 1 : 0);
}

static int compare_by_smallest(const void *a, const void *b)
{
    const kv_file_meta *fa = *(kv_file_meta *const *)a, *fb = *(kv_file_meta *const *)b;
    int r = kv_ikey_compare(kv_buf_slice(&fa->smallest), kv_buf_slice(&fb->smallest));
    if (r != 0)
        return r;
    return fa->number < fb->number ? -1 : (fa->number > fb->number ? 1 : 0);
}

/* Binds the blob links of the tables an edit adds. */
static void bind_blobs(kv_version_set *vs, const kv_version_edit *edit)
{
    if (vs->blobs == NULL)
        return;
    for (size_t i = 0; i < edit->num_added; i++)
        kv_file_meta_bind_blobs(edit->added[i].meta, vs->blobs);
}

int kv_version_apply(const kv_version *base, const kv_version_edit *edit, kv_version **out)
{
    for (size_t d = 0; d < edit->num_deleted; d++) {
        const kv_deleted_file *del = &edit->deleted[d];
        bool found = false;
        for (size_t i = 0; i < base->num_files[del->level] && !found; i++)
            found = base->files[del->level][i]->number == del->number;
        if (!found)
            return kv_error(KV_CORRUPTION,
                            "MANIFEST: edit deletes file %06llu at level %d, which is not there",
                            (unsigned long long)del->number, del->level);
    }
    kv_version *v = kv_version_create_empty();
    for (int level = 0; level < KV_NUM_LEVELS; level++) {
        size_t cap = base->num_files[level];
        for (size_t a = 0; a < edit->num_added; a++)
            cap += edit->added[a].level == level;
        v->files[level] = cap ? kv_malloc(cap * sizeof(kv_file_meta *)) : NULL;
        for (size_t i = 0; i < base->num_files[level]; i++) {
            kv_file_meta *f = base->files[level][i];
            bool deleted = false;
            for (size_t d = 0; d < edit->num_deleted && !deleted; d++)
                deleted = edit->deleted[d].level == level && edit->deleted[d].number == f->number;
            if (!deleted) {
                kv_file_meta_ref(f);
                v->files[level][v->num_files[level]++] = f;
            }
        }
        for (size_t a = 0; a < edit->num_added; a++) {
            if (edit->added[a].level != level)
                continue;
            kv_file_meta_ref(edit->added[a].meta);
            v->files[level][v->num_files[level]++] = edit->added[a].meta;
        }
        if (v->num_files[level] > 1)
            qsort(v->files[level], v->num_files[level], sizeof(kv_file_meta *),
                  level == 0 ? compare_level0 : compare_by_smallest);
        for (size_t i = 0; i < v->num_files[level]; i++)
            v->level_bytes[level] += v->files[level][i]->file_size;
    }
    *out = v;
    return 0;
}

uint64_t kv_version_level_bytes(const kv_version *v, int level)
{
    return v->level_bytes[level];
}

uint64_t kv_version_total_files(const kv_version *v)
{
    uint64_t n = 0;
    for (int level = 0; level < KV_NUM_LEVELS; level++)
        n += v->num_files[level];
    return n;
}

/* ---- VersionSet ---- */

void kv_version_set_init(kv_version_set *vs, kv_env *env, const char *dbpath, kv_info_log *info_log,
                         uint64_t max_manifest_file_size)
{
    memset(vs, 0, sizeof(*vs));
    vs->env = env;
    vs->dbpath = kv_strdup(dbpath);
    vs->info_log = info_log;
    vs->next_file_number = 2;
    atomic_init(&vs->last_sequence, 0);
    vs->max_manifest_file_size = max_manifest_file_size;
}

void kv_version_set_free(kv_version_set *vs)
{
    if (vs->manifest)
        kv_log_writer_close(vs->manifest);
    for (size_t i = 0; i < vs->num_cfs; i++) {
        free(vs->cfs[i].name);
        kv_version_unref(vs->cfs[i].version);
    }
    free(vs->cfs);
    free(vs->dbpath);
    memset(vs, 0, sizeof(*vs));
}

kv_cf_record *kv_version_set_find_cf(kv_version_set *vs, uint32_t id)
{
    for (size_t i = 0; i < vs->num_cfs; i++)
        if (vs->cfs[i].id == id && !vs->cfs[i].dropped)
            return &vs->cfs[i];
    return NULL;
}

static kv_cf_record *add_cf_record(kv_version_set *vs, uint32_t id, const char *name)
{
    if (vs->num_cfs == vs->cfs_cap) {
        vs->cfs_cap = vs->cfs_cap ? vs->cfs_cap * 2 : 4;
        vs->cfs = kv_realloc(vs->cfs, vs->cfs_cap * sizeof(kv_cf_record));
    }
    kv_cf_record *r = &vs->cfs[vs->num_cfs++];
    memset(r, 0, sizeof(*r));
    r->id = id;
    r->name = kv_strdup(name);
    r->version = kv_version_create_empty();
    if (id > vs->max_column_family)
        vs->max_column_family = id;
    return r;
}

/* Writes a new MANIFEST with the whole state and makes it CURRENT. */
int kv_version_set_write_snapshot(kv_version_set *vs)
{
    uint64_t number = kv_version_set_new_file_number(vs);
    char *path = kv_manifest_file_name(vs->dbpath, number);
    kv_writable *file;
    int rc = kv_env_new_writable(vs->env, path, 64 * 1024, &file);
    if (rc != 0) {
        free(path);
        return rc;
    }
    kv_log_writer *writer = kv_log_writer_create(file);
    kv_buf record = {0};

    kv_version_edit header;
    kv_version_edit_init(&header);
    header.has_format_version = true;
    header.format_version = KV_MANIFEST_FORMAT_VERSION;
    header.has_next_file_number = true;
    header.next_file_number = vs->next_file_number;
    header.has_last_sequence = true;
    header.last_sequence = kv_version_set_last_sequence(vs);
    header.has_max_column_family = true;
    header.max_column_family = vs->max_column_family;
    kv_version_edit_encode(&header, &record);
    kv_version_edit_free(&header);
    rc = kv_log_writer_add_record(writer, kv_buf_slice(&record));

    for (size_t i = 0; i < vs->num_cfs && rc == 0; i++) {
        kv_cf_record *cf = &vs->cfs[i];
        if (cf->dropped)
            continue;
        kv_version_edit edit;
        kv_version_edit_init(&edit);
        kv_version_edit_set_cf_add(&edit, cf->id, cf->name);
        edit.has_log_number = true;
        edit.log_number = cf->log_number;
        for (int level = 0; level < KV_NUM_LEVELS; level++)
            for (size_t f = 0; f < cf->version->num_files[level]; f++)
                kv_version_edit_add_file(&edit, level, cf->version->files[level][f]);
        kv_buf_clear(&record);
        kv_version_edit_encode(&edit, &record);
        kv_version_edit_free(&edit);
        rc = kv_log_writer_add_record(writer, kv_buf_slice(&record));
    }
    kv_buf_free(&record);
    if (rc == 0)
        rc = kv_writable_sync(kv_log_writer_file(writer));
    if (rc == 0)
        rc = kv_set_current_file(vs->env, vs->dbpath, number);
    if (rc != 0) {
        kv_log_writer_close(writer);
        kv_env_remove(vs->env, path);
        free(path);
        return rc;
    }
    free(path);
    if (vs->manifest)
        kv_log_writer_close(vs->manifest);
    vs->manifest = writer;
    vs->manifest_file_number = number;
    kv_info_log_printf(vs->info_log, "MANIFEST-%06llu written (next file %llu, last sequence %llu)",
                       (unsigned long long)number, (unsigned long long)vs->next_file_number,
                       (unsigned long long)kv_version_set_last_sequence(vs));
    return 0;
}

int kv_version_set_create_new(kv_version_set *vs)
{
    assert(vs->num_cfs == 0);
    add_cf_record(vs, 0, "default");
    vs->next_file_number = 1;
    return kv_version_set_write_snapshot(vs);
}

/* Applies one decoded edit during recovery. */
static int recover_apply(kv_version_set *vs, const kv_version_edit *edit, const char *name,
                         uint64_t offset)
{
    if (edit->has_format_version && edit->format_version > KV_MANIFEST_FORMAT_VERSION)
        return kv_error(KV_NOT_SUPPORTED,
                        "%s: on-disk format version %u is newer than this program reads "
                        "(up to version %u); use a newer lsmfs",
                        name, edit->format_version, KV_MANIFEST_FORMAT_VERSION);
    if (edit->has_next_file_number)
        vs->next_file_number = edit->next_file_number;
    if (edit->has_last_sequence)
        kv_version_set_publish_sequence(vs, edit->last_sequence);
    if (edit->has_max_column_family && edit->max_column_family > vs->max_column_family)
        vs->max_column_family = edit->max_column_family;

    kv_cf_record *cf;
    if (edit->is_column_family_add) {
        if (kv_version_set_find_cf(vs, edit->column_family) != NULL)
            return kv_error(KV_CORRUPTION,
                            "%s: column family %u added twice (record at offset %llu)", name,
                            edit->column_family, (unsigned long long)offset);
        cf = add_cf_record(vs, edit->column_family,
                           edit->column_family_name ? edit->column_family_name : "");
    } else {
        cf = kv_version_set_find_cf(vs, edit->column_family);
    }
    if (cf == NULL) {
        /* Edits of a dropped family that its drop did not yet make moot. */
        bool was_dropped = false;
        for (size_t i = 0; i < vs->num_cfs; i++)
            was_dropped |= vs->cfs[i].id == edit->column_family && vs->cfs[i].dropped;
        if (was_dropped)
            return 0;
        if (edit->num_added == 0 && edit->num_deleted == 0 && !edit->has_log_number &&
            !edit->is_column_family_drop)
            return 0; /* a header edit that only carries counters */
        return kv_error(KV_CORRUPTION, "%s: edit for unknown column family %u at offset %llu", name,
                        edit->column_family, (unsigned long long)offset);
    }
    if (edit->is_column_family_drop) {
        cf->dropped = true;
        return 0;
    }
    if (edit->has_log_number)
        cf->log_number = edit->log_number;
    if (edit->num_added || edit->num_deleted) {
        kv_version *v;
        bind_blobs(vs, edit);
        int rc = kv_version_apply(cf->version, edit, &v);
        if (rc != 0)
            return kv_error_wrap(rc, name);
        kv_version_unref(cf->version);
        cf->version = v;
    }
    return 0;
}

static int read_current(kv_version_set *vs, uint64_t *manifest_number, char **manifest_path)
{
    char *current = kv_current_file_name(vs->dbpath);
    kv_buf contents = {0};
    int rc = kv_env_read_file(vs->env, current, &contents);
    if (rc != 0) {
        free(current);
        kv_buf_free(&contents);
        return rc;
    }
    char *text = kv_memdup(contents.data, contents.size);
    kv_buf_free(&contents);
    size_t len = strlen(text);
    uint64_t number = 0;
    enum kv_file_type type;
    if (len < 2 || text[len - 1] != '\n' || (text[len - 1] = '\0', false) ||
        !kv_parse_file_name(text, &number, &type) || type != KV_FILE_MANIFEST) {
        rc = kv_error(KV_CORRUPTION, "%s: does not name a MANIFEST file", current);
        free(text);
        free(current);
        return rc;
    }
    free(text);
    free(current);
    *manifest_number = number;
    *manifest_path = kv_manifest_file_name(vs->dbpath, number);
    return 0;
}

int kv_version_set_recover(kv_version_set *vs)
{
    uint64_t number = 0;
    char *path = NULL;
    int rc = read_current(vs, &number, &path);
    if (rc != 0)
        return rc;
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    kv_random *file;
    rc = kv_env_new_random(vs->env, path, &file);
    if (rc != 0) {
        char cause[512];
        kv_error_copy(cause, sizeof(cause));
        rc = kv_error(KV_CORRUPTION, "CURRENT names %s, which cannot be opened: %s", name, cause);
        free(path);
        return rc;
    }
    kv_log_reader *reader = kv_log_reader_create(file, file->size, name);
    kv_buf scratch = {0};
    kv_slice record;
    bool seen_header = false;
    while ((rc = kv_log_reader_read_record(reader, &record, &scratch)) == 1) {
        uint64_t offset = kv_log_reader_last_record_offset(reader);
        kv_version_edit edit;
        kv_version_edit_init(&edit);
        rc = kv_version_edit_decode(&edit, record, name);
        if (rc == 0 && !seen_header && !edit.has_format_version)
            rc = kv_error(KV_CORRUPTION,
                          "%s: first record has no format version; not a kv MANIFEST", name);
        seen_header = true;
        if (rc == 0)
            rc = recover_apply(vs, &edit, name, offset);
        kv_version_edit_free(&edit);
        if (rc != 0)
            break;
    }
    if (rc == 0 && !seen_header)
        rc = kv_error(KV_CORRUPTION, "%s: empty MANIFEST", name);
    if (rc == 0 && kv_version_set_find_cf(vs, 0) == NULL)
        rc = kv_error(KV_CORRUPTION, "%s: no default column family", name);
    if (rc == 0 && kv_log_reader_dropped_tail(reader) > 0)
        kv_info_log_printf(vs->info_log, "%s: ignored a torn final record (%llu bytes)", name,
                           (unsigned long long)kv_log_reader_dropped_tail(reader));
    kv_buf_free(&scratch);
    kv_log_reader_destroy(reader);
    kv_random_close(file);
    free(path);
    if (rc != 0)
        return rc;
    vs->manifest_file_number = number;
    return 0;
}

int kv_version_set_log_and_apply(kv_version_set *vs, kv_version_edit *edit,
                                 kv_version **new_version)
{
    kv_cf_record *cf = NULL;
    kv_version *v = NULL;
    int rc;
    if (!edit->is_column_family_add) {
        cf = kv_version_set_find_cf(vs, edit->column_family);
        if (cf == NULL)
            return kv_error(KV_INVALID_ARGUMENT, "column family %u does not exist",
                            edit->column_family);
        if (!edit->is_column_family_drop) {
            bind_blobs(vs, edit);
            rc = kv_version_apply(cf->version, edit, &v);
            if (rc != 0)
                return rc;
        }
    }

    if (vs->manifest == NULL ||
        kv_log_writer_file(vs->manifest)->size >= vs->max_manifest_file_size) {
        rc = kv_version_set_write_snapshot(vs);
        if (rc != 0) {
            kv_version_unref(v);
            return rc;
        }
    }
    edit->has_next_file_number = true;
    edit->next_file_number = vs->next_file_number;
    edit->has_last_sequence = true;
    edit->last_sequence = kv_version_set_last_sequence(vs);
    if (edit->is_column_family_add) {
        edit->has_max_column_family = true;
        edit->max_column_family = edit->column_family > vs->max_column_family
                                      ? edit->column_family
                                      : vs->max_column_family;
    }
    kv_buf record = {0};
    kv_version_edit_encode(edit, &record);
    rc = kv_log_writer_add_record(vs->manifest, kv_buf_slice(&record));
    if (rc == 0)
        rc = kv_writable_sync(kv_log_writer_file(vs->manifest));
    kv_buf_free(&record);
    if (rc != 0) {
        /* The MANIFEST may end in a partial record: never append to it
         * again. The next edit starts a fresh MANIFEST. */
        kv_log_writer_close(vs->manifest);
        vs->manifest = NULL;
        kv_version_unref(v);
        return rc;
    }

    if (edit->is_column_family_add) {
        cf = add_cf_record(vs, edit->column_family, edit->column_family_name);
        if (edit->has_log_number)
            cf->log_number = edit->log_number;
    } else if (edit->is_column_family_drop) {
        cf->dropped = true;
    } else {
        if (edit->has_log_number)
            cf->log_number = edit->log_number;
        kv_version_unref(cf->version);
        cf->version = v;
    }
    if (new_version) {
        *new_version = cf->version;
        kv_version_ref(cf->version);
    }
    return 0;
}
