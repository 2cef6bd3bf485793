/*
 * version_edit.h — a change to the database's file set, as recorded in the
 * MANIFEST (LevelDB/RocksDB VersionEdit). Each MANIFEST record is one
 * encoded edit; replaying them rebuilds the VersionSet.
 *
 * Encoding: a sequence of (varint32 tag, fields) — see FORMAT.md. Unknown
 * tags make decoding fail (KV_CORRUPTION), so an old library never silently
 * misreads a newer MANIFEST; the format version tag says which library
 * can read it.
 */
#ifndef KV_VERSION_EDIT_H
#define KV_VERSION_EDIT_H

#include "blob.h"
#include "dbformat.h"

#include <stdatomic.h>

#define KV_NUM_LEVELS 7
/* 2: new_file records may be followed by blob_links (blob files). */
#define KV_MANIFEST_FORMAT_VERSION 2

/* Metadata of one SST file. */
typedef struct kv_file_meta {
    uint64_t number;
    uint64_t file_size;
    kv_buf smallest, largest; /* internal keys, range tombstones included */
    kv_seq smallest_seq, largest_seq;
    uint64_t num_entries, num_deletions, num_range_deletions;
    /* Blob files the table has indexes into, sorted by number; each bound
     * link's file holds a reference (kv_file_meta_bind_blobs). */
    kv_blob_link *blob_links;
    size_t num_blob_links;
    /* Runtime only (not encoded). */
    atomic_int refs; /* versions are released from any thread */
    bool being_compacted;
} kv_file_meta;

kv_file_meta *kv_file_meta_create(void);
kv_file_meta *kv_file_meta_copy(const kv_file_meta *src); /* refs = 1 */
void kv_file_meta_ref(kv_file_meta *f);
void kv_file_meta_unref(kv_file_meta *f); /* frees at zero */
/* Binds every unbound link to its object in `set` (taking a reference).
 * Called when the table enters the version set. */
void kv_file_meta_bind_blobs(kv_file_meta *f, kv_blob_set *set);

typedef struct kv_deleted_file {
    int level;
    uint64_t number;
} kv_deleted_file;

typedef struct kv_new_file {
    int level;
    kv_file_meta *meta; /* owned by the edit (one reference) */
} kv_new_file;

typedef struct kv_version_edit {
    bool has_format_version;
    uint32_t format_version;
    uint32_t column_family; /* family the file and log fields apply to; 0 default */
    bool is_column_family_add;
    char *column_family_name; /* with is_column_family_add */
    bool is_column_family_drop;
    bool has_log_number; /* WALs below log_number hold nothing of this family */
    uint64_t log_number;
    bool has_next_file_number;
    uint64_t next_file_number;
    bool has_last_sequence;
    kv_seq last_sequence;
    bool has_max_column_family;
    uint32_t max_column_family;
    kv_deleted_file *deleted;
    size_t num_deleted, deleted_cap;
    kv_new_file *added;
    size_t num_added, added_cap;
} kv_version_edit;

void kv_version_edit_init(kv_version_edit *edit);
void kv_version_edit_free(kv_version_edit *edit); /* frees fields; edit reusable after init */
void kv_version_edit_set_cf_add(kv_version_edit *edit, uint32_t cf, const char *name);
void kv_version_edit_add_file(kv_version_edit *edit, int level,
                              const kv_file_meta *meta); /* copies */
void kv_version_edit_delete_file(kv_version_edit *edit, int level, uint64_t number);

void kv_version_edit_encode(const kv_version_edit *edit, kv_buf *dst);
/* `edit` must be freshly initialized. KV_CORRUPTION with a message
 * (prefixed by `name`) on malformed input or unknown tags. */
int kv_version_edit_decode(kv_version_edit *edit, kv_slice input, const char *name);

/* One line per field, for kv_dump and the LOG. Appends to dst. */
void kv_version_edit_debug_string(const kv_version_edit *edit, kv_buf *dst);

#endif
