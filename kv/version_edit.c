/*
 * version_edit.c — VersionEdit (version_edit.h): the change to the file
 * set that one MANIFEST record carries, its encoding as (varint32 tag,
 * fields) pairs, and the reference-counted metadata of an SST file.
 *
 * Tag numbers follow LevelDB (log number 2, next file 3, last sequence 4,
 * deleted file 6, new file 7) and RocksDB (column family tags 200-203)
 * where the concept is the same; the field layouts are our own and are
 * listed in FORMAT.md. Numbers are never reused: a new field gets a new tag,
 * and old libraries then refuse the MANIFEST instead of misreading it.
 */
#include "version_edit.h"

#include "coding.h"
#include "error.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

enum version_edit_tag {
    TAG_FORMAT_VERSION = 1,       /* varint32 */
    TAG_LOG_NUMBER = 2,           /* varint64 */
    TAG_NEXT_FILE_NUMBER = 3,     /* varint64 */
    TAG_LAST_SEQUENCE = 4,        /* varint64 */
    TAG_DELETED_FILE = 6,         /* varint32 level, varint64 number */
    TAG_NEW_FILE = 7,             /* see encode_new_file */
    TAG_BLOB_LINKS = 8,           /* see encode_new_file */
    TAG_COLUMN_FAMILY = 200,      /* varint32 */
    TAG_COLUMN_FAMILY_ADD = 201,  /* length-prefixed name */
    TAG_COLUMN_FAMILY_DROP = 202, /* no fields */
    TAG_MAX_COLUMN_FAMILY = 203,  /* varint32 */
};

/* ---- file metadata ---- */

kv_file_meta *kv_file_meta_create(void)
{
    kv_file_meta *f = kv_calloc(1, sizeof(*f));
    atomic_init(&f->refs, 1);
    return f;
}

kv_file_meta *kv_file_meta_copy(const kv_file_meta *src)
{
    kv_file_meta *f = kv_file_meta_create();
    f->number = src->number;
    f->file_size = src->file_size;
    kv_buf_set(&f->smallest, src->smallest.data, src->smallest.size);
    kv_buf_set(&f->largest, src->largest.data, src->largest.size);
    f->smallest_seq = src->smallest_seq;
    f->largest_seq = src->largest_seq;
    f->num_entries = src->num_entries;
    f->num_deletions = src->num_deletions;
    f->num_range_deletions = src->num_range_deletions;
    if (src->num_blob_links > 0) {
        f->blob_links = kv_malloc(src->num_blob_links * sizeof(*f->blob_links));
        memcpy(f->blob_links, src->blob_links, src->num_blob_links * sizeof(*f->blob_links));
        f->num_blob_links = src->num_blob_links;
        for (size_t i = 0; i < f->num_blob_links; i++)
            if (f->blob_links[i].file != NULL)
                kv_blob_file_ref(f->blob_links[i].file);
    }
    return f;
}

void kv_file_meta_bind_blobs(kv_file_meta *f, kv_blob_set *set)
{
    for (size_t i = 0; i < f->num_blob_links; i++)
        if (f->blob_links[i].file == NULL)
            f->blob_links[i].file = kv_blob_set_get(set, f->blob_links[i].number);
}

void kv_file_meta_ref(kv_file_meta *f)
{
    int old = atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    assert(old > 0);
    (void)old;
}

void kv_file_meta_unref(kv_file_meta *f)
{
    int old = atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel);
    assert(old > 0);
    if (old > 1)
        return;
    kv_buf_free(&f->smallest);
    kv_buf_free(&f->largest);
    for (size_t i = 0; i < f->num_blob_links; i++)
        kv_blob_file_unref(f->blob_links[i].file);
    free(f->blob_links);
    free(f);
}

/* ---- building an edit ---- */

void kv_version_edit_init(kv_version_edit *edit)
{
    memset(edit, 0, sizeof(*edit));
}

void kv_version_edit_free(kv_version_edit *edit)
{
    for (size_t i = 0; i < edit->num_added; i++)
        kv_file_meta_unref(edit->added[i].meta);
    free(edit->added);
    free(edit->deleted);
    free(edit->column_family_name);
    kv_version_edit_init(edit);
}

void kv_version_edit_set_cf_add(kv_version_edit *edit, uint32_t cf, const char *name)
{
    edit->column_family = cf;
    edit->is_column_family_add = true;
    free(edit->column_family_name);
    edit->column_family_name = kv_strdup(name);
}

static void add_file_meta(kv_version_edit *edit, int level, kv_file_meta *meta)
{
    assert(level >= 0 && level < KV_NUM_LEVELS);
    if (edit->num_added == edit->added_cap) {
        edit->added_cap = edit->added_cap ? 2 * edit->added_cap : 4;
        edit->added = kv_realloc(edit->added, edit->added_cap * sizeof(*edit->added));
    }
    edit->added[edit->num_added].level = level;
    edit->added[edit->num_added].meta = meta;
    edit->num_added++;
}

void kv_version_edit_add_file(kv_version_edit *edit, int level, const kv_file_meta *meta)
{
    add_file_meta(edit, level, kv_file_meta_copy(meta));
}

void kv_version_edit_delete_file(kv_version_edit *edit, int level, uint64_t number)
{
    assert(level >= 0 && level < KV_NUM_LEVELS);
    if (edit->num_deleted == edit->deleted_cap) {
        edit->deleted_cap = edit->deleted_cap ? 2 * edit->deleted_cap : 4;
        edit->deleted = kv_realloc(edit->deleted, edit->deleted_cap * sizeof(*edit->deleted));
    }
    edit->deleted[edit->num_deleted].level = level;
    edit->deleted[edit->num_deleted].number = number;
    edit->num_deleted++;
}

/* ---- encoding ---- */

/* TAG_NEW_FILE fields: varint32 level, varint64 number, varint64 file size,
 * length-prefixed smallest and largest internal keys, varint64 smallest
 * and largest sequence, varint64 entries, deletions, range deletions. */
static void encode_new_file(kv_buf *dst, const kv_new_file *added)
{
    const kv_file_meta *f = added->meta;
    kv_put_varint32(dst, TAG_NEW_FILE);
    kv_put_varint32(dst, (uint32_t)added->level);
    kv_put_varint64(dst, f->number);
    kv_put_varint64(dst, f->file_size);
    kv_put_length_prefixed(dst, kv_buf_slice(&f->smallest));
    kv_put_length_prefixed(dst, kv_buf_slice(&f->largest));
    kv_put_varint64(dst, f->smallest_seq);
    kv_put_varint64(dst, f->largest_seq);
    kv_put_varint64(dst, f->num_entries);
    kv_put_varint64(dst, f->num_deletions);
    kv_put_varint64(dst, f->num_range_deletions);
    /* TAG_BLOB_LINKS: varint64 table number, varint32 count, then count
     * times varint64 blob file number, varint64 bytes. */
    if (f->num_blob_links > 0) {
        kv_put_varint32(dst, TAG_BLOB_LINKS);
        kv_put_varint64(dst, f->number);
        kv_put_varint32(dst, (uint32_t)f->num_blob_links);
        for (size_t i = 0; i < f->num_blob_links; i++) {
            kv_put_varint64(dst, f->blob_links[i].number);
            kv_put_varint64(dst, f->blob_links[i].bytes);
        }
    }
}

void kv_version_edit_encode(const kv_version_edit *edit, kv_buf *dst)
{
    if (edit->has_format_version) {
        kv_put_varint32(dst, TAG_FORMAT_VERSION);
        kv_put_varint32(dst, edit->format_version);
    }
    /* Family 0 is the default and needs no tag. */
    if (edit->column_family != 0) {
        kv_put_varint32(dst, TAG_COLUMN_FAMILY);
        kv_put_varint32(dst, edit->column_family);
    }
    if (edit->is_column_family_add) {
        assert(edit->column_family_name != NULL);
        kv_put_varint32(dst, TAG_COLUMN_FAMILY_ADD);
        kv_put_length_prefixed(dst, kv_slice_from_str(edit->column_family_name));
    }
    if (edit->is_column_family_drop)
        kv_put_varint32(dst, TAG_COLUMN_FAMILY_DROP);
    if (edit->has_log_number) {
        kv_put_varint32(dst, TAG_LOG_NUMBER);
        kv_put_varint64(dst, edit->log_number);
    }
    if (edit->has_next_file_number) {
        kv_put_varint32(dst, TAG_NEXT_FILE_NUMBER);
        kv_put_varint64(dst, edit->next_file_number);
    }
    if (edit->has_last_sequence) {
        kv_put_varint32(dst, TAG_LAST_SEQUENCE);
        kv_put_varint64(dst, edit->last_sequence);
    }
    if (edit->has_max_column_family) {
        kv_put_varint32(dst, TAG_MAX_COLUMN_FAMILY);
        kv_put_varint32(dst, edit->max_column_family);
    }
    for (size_t i = 0; i < edit->num_deleted; i++) {
        kv_put_varint32(dst, TAG_DELETED_FILE);
        kv_put_varint32(dst, (uint32_t)edit->deleted[i].level);
        kv_put_varint64(dst, edit->deleted[i].number);
    }
    for (size_t i = 0; i < edit->num_added; i++)
        encode_new_file(dst, &edit->added[i]);
}

/* ---- decoding ---- */

static int malformed(const char *name, const char *what, kv_slice input, size_t total)
{
    /* input points at the byte where decoding gave up; its distance from
     * the start locates the problem within the record. */
    size_t position = total - input.size;
    return kv_error(KV_CORRUPTION, "%s: malformed VersionEdit: %s at byte %zu of %zu", name, what,
                    position, total);
}

static bool get_level(kv_slice *input, int *level)
{
    uint32_t value;
    if (!kv_get_varint32(input, &value) || value >= KV_NUM_LEVELS)
        return false;
    *level = (int)value;
    return true;
}

/* An internal key: user key plus the 8-byte sequence/type trailer. */
static bool get_internal_key(kv_slice *input, kv_buf *dst)
{
    kv_slice key;
    if (!kv_get_length_prefixed(input, &key) || key.size < 8)
        return false;
    kv_buf_set(dst, key.data, key.size);
    return true;
}

static bool decode_new_file(kv_slice *input, kv_version_edit *edit)
{
    int level;
    if (!get_level(input, &level))
        return false;
    kv_file_meta *f = kv_file_meta_create();
    if (kv_get_varint64(input, &f->number) && kv_get_varint64(input, &f->file_size) &&
        get_internal_key(input, &f->smallest) && get_internal_key(input, &f->largest) &&
        kv_get_varint64(input, &f->smallest_seq) && kv_get_varint64(input, &f->largest_seq) &&
        kv_get_varint64(input, &f->num_entries) && kv_get_varint64(input, &f->num_deletions) &&
        kv_get_varint64(input, &f->num_range_deletions)) {
        add_file_meta(edit, level, f);
        return true;
    }
    kv_file_meta_unref(f);
    return false;
}

/* Blob links of a table added earlier in the same edit. */
static bool decode_blob_links(kv_slice *input, kv_version_edit *edit)
{
    uint64_t number;
    uint32_t count;
    if (!kv_get_varint64(input, &number) || !kv_get_varint32(input, &count) || count == 0 ||
        count > input->size / 2)
        return false;
    kv_file_meta *f = NULL;
    for (size_t i = 0; i < edit->num_added; i++)
        if (edit->added[i].meta->number == number)
            f = edit->added[i].meta;
    if (f == NULL || f->num_blob_links > 0)
        return false;
    uint64_t previous = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t blob, bytes;
        if (!kv_get_varint64(input, &blob) || !kv_get_varint64(input, &bytes) || blob <= previous)
            return false;
        kv_blob_links_add(&f->blob_links, &f->num_blob_links, blob, bytes);
        previous = blob;
    }
    return true;
}

static bool decode_column_family_name(kv_slice *input, kv_version_edit *edit)
{
    kv_slice name;
    /* The name is kept as a C string: an embedded NUL would cut it. */
    if (!kv_get_length_prefixed(input, &name) || memchr(name.data, 0, name.size) != NULL)
        return false;
    free(edit->column_family_name);
    edit->column_family_name = kv_memdup(name.data, name.size);
    edit->is_column_family_add = true;
    return true;
}

/*
 * Decodes one edit. Every field must be complete and every tag known; the
 * message names the offending tag and where in the record it is. A format
 * version newer than KV_MANIFEST_FORMAT_VERSION is KV_NOT_SUPPORTED. On error
 * the edit may hold part of the input; kv_version_edit_free releases it.
 */
int kv_version_edit_decode(kv_version_edit *edit, kv_slice input, const char *name)
{
    assert(edit->num_added == 0 && edit->num_deleted == 0 && edit->column_family_name == NULL);
    const size_t total = input.size;
    while (input.size > 0) {
        kv_slice at_tag = input;
        uint32_t tag;
        if (!kv_get_varint32(&input, &tag))
            return malformed(name, "bad tag", at_tag, total);

        kv_slice at_field = input;
        bool ok;
        const char *field;
        switch (tag) {
        case TAG_FORMAT_VERSION:
            field = "format version";
            ok = kv_get_varint32(&input, &edit->format_version) && edit->format_version > 0;
            edit->has_format_version = true;
            /* Said first thing in a MANIFEST, so a newer one is refused
             * with its version rather than with its first unknown tag. */
            if (ok && edit->format_version > KV_MANIFEST_FORMAT_VERSION)
                return kv_error(KV_NOT_SUPPORTED,
                                "%s: MANIFEST format version %" PRIu32
                                " is newer than this library's (%d)",
                                name, edit->format_version, KV_MANIFEST_FORMAT_VERSION);
            break;
        case TAG_LOG_NUMBER:
            field = "log number";
            ok = kv_get_varint64(&input, &edit->log_number);
            edit->has_log_number = true;
            break;
        case TAG_NEXT_FILE_NUMBER:
            field = "next file number";
            ok = kv_get_varint64(&input, &edit->next_file_number);
            edit->has_next_file_number = true;
            break;
        case TAG_LAST_SEQUENCE:
            field = "last sequence";
            /* Sequences are 56 bits (dbformat.h); a larger one would become
             * the snapshot of every read after open. */
            ok = kv_get_varint64(&input, &edit->last_sequence) &&
                 edit->last_sequence <= KV_MAX_SEQUENCE;
            edit->has_last_sequence = true;
            break;
        case TAG_DELETED_FILE: {
            field = "deleted file";
            int level;
            uint64_t number;
            ok = get_level(&input, &level) && kv_get_varint64(&input, &number);
            if (ok)
                kv_version_edit_delete_file(edit, level, number);
            break;
        }
        case TAG_NEW_FILE:
            field = "new file";
            ok = decode_new_file(&input, edit);
            break;
        case TAG_BLOB_LINKS:
            field = "blob links";
            ok = decode_blob_links(&input, edit);
            break;
        case TAG_COLUMN_FAMILY:
            field = "column family";
            ok = kv_get_varint32(&input, &edit->column_family);
            break;
        case TAG_COLUMN_FAMILY_ADD:
            field = "column family add";
            ok = decode_column_family_name(&input, edit);
            break;
        case TAG_COLUMN_FAMILY_DROP:
            field = "column family drop";
            ok = true;
            edit->is_column_family_drop = true;
            break;
        case TAG_MAX_COLUMN_FAMILY:
            field = "max column family";
            ok = kv_get_varint32(&input, &edit->max_column_family);
            edit->has_max_column_family = true;
            break;
        default: {
            char what[48];
            snprintf(what, sizeof(what), "unknown tag %" PRIu32, tag);
            return malformed(name, what, at_tag, total);
        }
        }
        if (!ok) {
            char what[64];
            snprintf(what, sizeof(what), "bad %s field", field);
            return malformed(name, what, at_field, total);
        }
    }
    return 0;
}

/* ---- debug string ---- */

/* Printable ASCII as is (backslash and quote escaped), the rest as \xNN. */
static void append_escaped(kv_buf *dst, kv_slice s)
{
    for (size_t i = 0; i < s.size; i++) {
        unsigned char c = (unsigned char)s.data[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
            kv_buf_append_byte(dst, (char)c);
        } else {
            char esc[5];
            snprintf(esc, sizeof(esc), "\\x%02x", c);
            kv_buf_append(dst, esc, 4);
        }
    }
}

static void append_format(kv_buf *dst, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void append_format(kv_buf *dst, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char line[256];
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    assert(n >= 0 && (size_t)n < sizeof(line));
    kv_buf_append(dst, line, (size_t)n);
}

/* 'user key' @ seq : TYPE, or the raw bytes when not an internal key. */
static void append_internal_key(kv_buf *dst, kv_slice ikey)
{
    if (ikey.size < 8) {
        kv_buf_append(dst, "(bad key) '", 11);
        append_escaped(dst, ikey);
        kv_buf_append_byte(dst, '\'');
        return;
    }
    uint64_t trailer = kv_decode_fixed64(ikey.data + ikey.size - 8);
    unsigned type = (unsigned)(trailer & 0xff);
    kv_buf_append_byte(dst, '\'');
    append_escaped(dst, kv_slice_make(ikey.data, ikey.size - 8));
    append_format(dst, "' @ %" PRIu64 " : ", trailer >> 8);
    if (kv_value_type_name((int)type) != NULL)
        append_format(dst, "%s", kv_value_type_name((int)type));
    else
        append_format(dst, "type %u", type);
}

void kv_version_edit_debug_string(const kv_version_edit *edit, kv_buf *dst)
{
    if (edit->has_format_version)
        append_format(dst, "format_version: %" PRIu32 "\n", edit->format_version);
    append_format(dst, "column_family: %" PRIu32 "\n", edit->column_family);
    if (edit->is_column_family_add) {
        kv_buf_append(dst, "column_family_add: '", 20);
        append_escaped(dst, kv_slice_from_str(edit->column_family_name));
        kv_buf_append(dst, "'\n", 2);
    }
    if (edit->is_column_family_drop)
        kv_buf_append(dst, "column_family_drop\n", 19);
    if (edit->has_log_number)
        append_format(dst, "log_number: %" PRIu64 "\n", edit->log_number);
    if (edit->has_next_file_number)
        append_format(dst, "next_file_number: %" PRIu64 "\n", edit->next_file_number);
    if (edit->has_last_sequence)
        append_format(dst, "last_sequence: %" PRIu64 "\n", edit->last_sequence);
    if (edit->has_max_column_family)
        append_format(dst, "max_column_family: %" PRIu32 "\n", edit->max_column_family);
    for (size_t i = 0; i < edit->num_deleted; i++)
        append_format(dst, "deleted_file: level %d #%06" PRIu64 "\n", edit->deleted[i].level,
                      edit->deleted[i].number);
    for (size_t i = 0; i < edit->num_added; i++) {
        const kv_file_meta *f = edit->added[i].meta;
        append_format(dst, "new_file: level %d #%06" PRIu64 " size %" PRIu64 " keys [",
                      edit->added[i].level, f->number, f->file_size);
        append_internal_key(dst, kv_buf_slice(&f->smallest));
        kv_buf_append(dst, " .. ", 4);
        append_internal_key(dst, kv_buf_slice(&f->largest));
        append_format(dst,
                      "] seqs [%" PRIu64 " .. %" PRIu64 "] entries %" PRIu64 " deletions %" PRIu64
                      " range_deletions %" PRIu64 "\n",
                      f->smallest_seq, f->largest_seq, f->num_entries, f->num_deletions,
                      f->num_range_deletions);
        for (size_t j = 0; j < f->num_blob_links; j++)
            append_format(dst, "  blob_link: #%06" PRIu64 " bytes %" PRIu64 "\n",
                          f->blob_links[j].number, f->blob_links[j].bytes);
    }
}
