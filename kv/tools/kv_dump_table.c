/*
 * kv_dump_table.c — the SST part of kv_dump (layout in FORMAT.md): the
 * footer, metaindex, properties and filter, every data block found through
 * the index with its entries, and the range tombstones. Each block's
 * checksum is verified as it is read; the entries' order, the index keys,
 * the block layout and the property counts are checked against each other;
 * finally the table reader opens and verifies the file the way the engine
 * would.
 */
#include "kv_dump.h"

#include "block.h"
#include "bloom.h"
#include "coding.h"
#include "dbformat.h"
#include "env.h"
#include "error.h"
#include "table.h"
#include "table_format.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct table_dump {
    const char *name;
    const kv_dump_options *options;
    kv_random *file;
    kv_buf out;
    int status; /* first problem found */
    uint64_t blocks_verified;
} table_dump;

/* Reports a problem (the thread's message) and remembers the first. */
static int table_problem(table_dump *d, int status)
{
    kv_dump_flush(&d->out);
    kv_dump_report(status);
    if (d->status == 0)
        d->status = status;
    return status;
}

static int table_corruption(table_dump *d, const char *what, uint64_t offset)
{
    return table_problem(
        d, kv_error(KV_CORRUPTION, "%s: %s at offset %" PRIu64, d->name, what, offset));
}

/* kv_ikey_compare, but safe for keys too short to be internal keys (only
 * a damaged file has them; they are reported where they are printed). */
static int safe_ikey_compare(kv_slice a, kv_slice b)
{
    if (a.size < 8 || b.size < 8)
        return kv_slice_compare(a, b);
    return kv_ikey_compare(a, b);
}

/* Reads the block at h (checksum verified, decompressed) and prints a line
 * about it. NULL after reporting the problem. */
static char *table_read_raw(table_dump *d, const char *what, const kv_block_handle *h, size_t *size)
{
    char *contents;
    int rc = kv_read_block(d->file, d->name, h, &contents, size);
    if (rc < 0) {
        table_problem(d, rc);
        return NULL;
    }
    d->blocks_verified++;
    kv_dump_appendf(&d->out, "%s: offset %" PRIu64 ", %" PRIu64 " bytes stored", what, h->offset,
                    h->size);
    if (*size != h->size)
        kv_dump_appendf(&d->out, " (%zu uncompressed)", *size);
    kv_buf_append(&d->out, ", checksum ok\n", 14);
    kv_dump_flush(&d->out);
    return contents;
}

/* Reads and parses the block at h; NULL after reporting the problem. */
static kv_block *table_read_block(table_dump *d, const char *what, const kv_block_handle *h)
{
    size_t size;
    char *contents = table_read_raw(d, what, h, &size);
    if (contents == NULL)
        return NULL;
    kv_block *block;
    int rc = kv_block_create(contents, size, d->name, &block);
    if (rc < 0) {
        table_corruption(d, "malformed block", h->offset);
        return NULL;
    }
    return block;
}

/* A block handle that is the whole of `value`. */
static bool decode_handle_value(kv_slice value, kv_block_handle *h)
{
    return kv_block_handle_decode(&value, h) && value.size == 0;
}

/* Notes an iterator's error, naming the block. */
static void check_iter(table_dump *d, kv_iter *it, const char *what, uint64_t offset)
{
    if (kv_iter_status(it) < 0) {
        char message[64];
        snprintf(message, sizeof(message), "malformed entry in the %s block", what);
        table_corruption(d, message, offset);
    }
}

static int table_read_footer(table_dump *d, kv_footer *footer)
{
    uint64_t size = d->file->size;
    if (size < KV_FOOTER_SIZE)
        return table_problem(
            d,
            kv_error(KV_CORRUPTION, "%s: not an SST file (only %" PRIu64 " bytes)", d->name, size));
    char buf[KV_FOOTER_SIZE];
    size_t got;
    int rc = kv_random_read(d->file, size - KV_FOOTER_SIZE, KV_FOOTER_SIZE, buf, &got);
    if (rc == 0 && got != KV_FOOTER_SIZE)
        rc = kv_error(KV_IO_ERROR, "%s: short read of the footer", d->name);
    if (rc == 0)
        rc = kv_footer_decode(kv_slice_make(buf, KV_FOOTER_SIZE), d->name, footer);
    if (rc < 0)
        return table_problem(d, rc);
    /* The handles are zero-padded to 2 * KV_BLOCK_HANDLE_MAX_LENGTH bytes;
     * the decoder does not look at the padding, so check it here. */
    kv_slice handles = kv_slice_make(buf, 2 * KV_BLOCK_HANDLE_MAX_LENGTH);
    kv_block_handle ignored;
    if (kv_block_handle_decode(&handles, &ignored) && kv_block_handle_decode(&handles, &ignored)) {
        for (size_t i = 0; i < handles.size; i++)
            if (handles.data[i] != 0) {
                table_corruption(d, "nonzero footer padding", size - KV_FOOTER_SIZE);
                break;
            }
    }
    kv_dump_appendf(&d->out,
                    "footer: format version %" PRIu32 ", metaindex at offset %" PRIu64 " (%" PRIu64
                    " bytes), index at offset %" PRIu64 " (%" PRIu64 " bytes)\n",
                    footer->format_version, footer->metaindex.offset, footer->metaindex.size,
                    footer->index.offset, footer->index.size);
    kv_dump_flush(&d->out);
    return 0;
}

typedef struct meta_handles {
    bool has_filter, has_properties, has_range_del;
    kv_block_handle filter, properties, range_del;
} meta_handles;

static void table_dump_metaindex(table_dump *d, const kv_footer *footer, meta_handles *meta)
{
    memset(meta, 0, sizeof(*meta));
    kv_block *block = table_read_block(d, "metaindex block", &footer->metaindex);
    if (block == NULL)
        return;
    kv_iter *it = kv_block_iter_create(block, kv_slice_compare, NULL, NULL);
    for (kv_iter_seek_to_first(it); kv_iter_valid(it); kv_iter_next(it)) {
        kv_slice key = kv_iter_key(it);
        kv_block_handle h;
        kv_buf_append(&d->out, "  ", 2);
        kv_dump_append_bytes(&d->out, key, &(kv_dump_options){false, false});
        if (!decode_handle_value(kv_iter_value(it), &h)) {
            kv_buf_append(&d->out, " => (malformed handle)\n", 23);
            table_corruption(d, "malformed metaindex entry", footer->metaindex.offset);
            continue;
        }
        kv_dump_appendf(&d->out, " => offset %" PRIu64 ", %" PRIu64 " bytes", h.offset, h.size);
        if (kv_slice_equal(key, kv_slice_from_str(KV_META_FILTER))) {
            meta->has_filter = true;
            meta->filter = h;
        } else if (kv_slice_equal(key, kv_slice_from_str(KV_META_PROPERTIES))) {
            meta->has_properties = true;
            meta->properties = h;
        } else if (kv_slice_equal(key, kv_slice_from_str(KV_META_RANGE_DEL))) {
            meta->has_range_del = true;
            meta->range_del = h;
        } else {
            kv_buf_append(&d->out, " (unknown, ignored)", 19);
        }
        kv_buf_append_byte(&d->out, '\n');
        kv_dump_flush(&d->out);
    }
    check_iter(d, it, "metaindex", footer->metaindex.offset);
    kv_iter_destroy(it);
    kv_block_destroy(block);
    if (!meta->has_properties)
        table_corruption(d, "no properties block in the metaindex", footer->metaindex.offset);
}

/* Prints every property (known or not) and decodes the known ones into
 * *props for the cross-checks; false if there are none to check against. */
static bool table_dump_properties(table_dump *d, const meta_handles *meta,
                                  kv_table_properties *props)
{
    memset(props, 0, sizeof(*props));
    if (!meta->has_properties)
        return false;
    size_t size;
    char *contents = table_read_raw(d, "properties block", &meta->properties, &size);
    if (contents == NULL)
        return false;
    int rc = kv_table_properties_decode(kv_slice_make(contents, size), d->name, props);
    if (rc < 0)
        table_problem(d, rc);
    kv_block *block;
    if (kv_block_create(contents, size, d->name, &block) < 0) {
        table_corruption(d, "malformed block", meta->properties.offset);
        return false;
    }
    kv_iter *it = kv_block_iter_create(block, kv_slice_compare, NULL, NULL);
    for (kv_iter_seek_to_first(it); kv_iter_valid(it); kv_iter_next(it)) {
        kv_slice value = kv_iter_value(it);
        uint64_t number;
        kv_buf_append(&d->out, "  ", 2);
        kv_dump_append_bytes(&d->out, kv_iter_key(it), &(kv_dump_options){false, false});
        if (kv_get_varint64(&value, &number) && value.size == 0) {
            kv_dump_appendf(&d->out, ": %" PRIu64 "\n", number);
        } else {
            kv_buf_append(&d->out, ": (malformed)\n", 14);
            table_corruption(d, "malformed property value", meta->properties.offset);
        }
        kv_dump_flush(&d->out);
    }
    check_iter(d, it, "properties", meta->properties.offset);
    kv_iter_destroy(it);
    kv_block_destroy(block);
    return rc == 0;
}

static void table_dump_filter(table_dump *d, const meta_handles *meta)
{
    if (!meta->has_filter) {
        kv_buf_append(&d->out, "filter: none\n", 13);
        kv_dump_flush(&d->out);
        return;
    }
    size_t size;
    char *filter = table_read_raw(d, "filter block", &meta->filter, &size);
    if (filter == NULL)
        return;
    if (size >= 2)
        kv_dump_appendf(&d->out, "  bloom filter: %zu bits, %u probes\n", (size - 1) * 8,
                        (unsigned)(unsigned char)filter[size - 1]);
    else
        kv_dump_appendf(&d->out, "  bloom filter of %zu bytes: too short, ignored\n", size);
    kv_dump_flush(&d->out);
    free(filter);
}

/* What the data walk counts, to compare with the properties. */
typedef struct data_counts {
    uint64_t blocks, entries, deletions;
    uint64_t data_end; /* offset after the last data block's trailer */
} data_counts;

/* Prints one data entry and checks it is a point entry in order. */
static void table_dump_entry(table_dump *d, kv_slice key, kv_slice value, kv_buf *prev_key,
                             uint64_t block_offset, data_counts *counts)
{
    kv_slice user_key;
    kv_seq seq;
    int type;
    kv_buf_append(&d->out, "  ", 2);
    kv_dump_append_ikey(&d->out, key, d->options);
    if (!kv_ikey_parse(key, &user_key, &seq, &type) || type == KV_TYPE_RANGE_DELETION) {
        kv_buf_append_byte(&d->out, '\n');
        table_corruption(d, "bad internal key in the data block", block_offset);
        return;
    }
    if (type == KV_TYPE_VALUE && !d->options->no_values) {
        kv_buf_append(&d->out, " => ", 4);
        kv_dump_append_value(&d->out, value, d->options);
    }
    if (type == KV_TYPE_BLOB_INDEX) {
        kv_buf_append(&d->out, " => ", 4);
        kv_dump_append_blob_index(&d->out, value);
    }
    kv_buf_append_byte(&d->out, '\n');
    kv_dump_flush(&d->out);
    if (prev_key->size > 0 && safe_ikey_compare(kv_buf_slice(prev_key), key) >= 0)
        table_corruption(d, "keys out of order in the data block", block_offset);
    kv_buf_set(prev_key, key.data, key.size);
    counts->entries++;
    if (type == KV_TYPE_DELETION)
        counts->deletions++;
}

/* Walks the index: every data block, in order, with its entries. */
static void table_dump_data(table_dump *d, const kv_footer *footer, data_counts *counts)
{
    memset(counts, 0, sizeof(*counts));
    kv_block *index = table_read_block(d, "index block", &footer->index);
    if (index == NULL)
        return;
    kv_buf prev_key = {0}, prev_index_key = {0};
    kv_iter *it = kv_block_iter_create(index, safe_ikey_compare, NULL, NULL);
    for (kv_iter_seek_to_first(it); kv_iter_valid(it); kv_iter_next(it)) {
        kv_slice index_key = kv_iter_key(it);
        kv_block_handle h;
        if (!decode_handle_value(kv_iter_value(it), &h)) {
            table_corruption(d, "malformed index entry", footer->index.offset);
            continue;
        }
        if (h.offset != counts->data_end)
            table_corruption(d, "data block not where the previous one ends", h.offset);
        if (prev_index_key.size > 0 &&
            safe_ikey_compare(kv_buf_slice(&prev_index_key), index_key) >= 0)
            table_corruption(d, "index keys out of order", footer->index.offset);
        kv_buf_set(&prev_index_key, index_key.data, index_key.size);
        counts->blocks++;
        counts->data_end = h.offset + h.size + KV_BLOCK_TRAILER_SIZE;

        char what[48];
        snprintf(what, sizeof(what), "\ndata block %" PRIu64, counts->blocks - 1);
        kv_block *block = table_read_block(d, what, &h);
        kv_buf_append(&d->out, "  index key ", 12);
        kv_dump_append_ikey(&d->out, index_key, d->options);
        kv_buf_append_byte(&d->out, '\n');
        kv_dump_flush(&d->out);
        if (block == NULL)
            continue;
        kv_iter *entries = kv_block_iter_create(block, safe_ikey_compare, NULL, NULL);
        for (kv_iter_seek_to_first(entries); kv_iter_valid(entries); kv_iter_next(entries))
            table_dump_entry(d, kv_iter_key(entries), kv_iter_value(entries), &prev_key, h.offset,
                             counts);
        check_iter(d, entries, "data", h.offset);
        kv_iter_destroy(entries);
        kv_block_destroy(block);
        /* The index key must not sort before the block's last key. */
        if (prev_key.size > 0 && safe_ikey_compare(kv_buf_slice(&prev_key), index_key) > 0)
            table_corruption(d, "index key smaller than its block's last key", h.offset);
    }
    check_iter(d, it, "index", footer->index.offset);
    kv_iter_destroy(it);
    kv_block_destroy(index);
    kv_buf_free(&prev_key);
    kv_buf_free(&prev_index_key);
    kv_buf_append_byte(&d->out, '\n');
    kv_dump_flush(&d->out);
}

/* Prints the range tombstones as stored: [begin, end) @ seq. */
static uint64_t table_dump_range_dels(table_dump *d, const meta_handles *meta)
{
    if (!meta->has_range_del) {
        kv_buf_append(&d->out, "range tombstones: none\n", 23);
        kv_dump_flush(&d->out);
        return 0;
    }
    kv_block *block = table_read_block(d, "range-del block", &meta->range_del);
    if (block == NULL)
        return 0;
    uint64_t count = 0;
    kv_buf prev_key = {0};
    kv_iter *it = kv_block_iter_create(block, safe_ikey_compare, NULL, NULL);
    for (kv_iter_seek_to_first(it); kv_iter_valid(it); kv_iter_next(it)) {
        kv_slice key = kv_iter_key(it), end = kv_iter_value(it);
        kv_slice begin;
        kv_seq seq;
        int type;
        count++;
        if (!kv_ikey_parse(key, &begin, &seq, &type) || type != KV_TYPE_RANGE_DELETION) {
            kv_buf_append(&d->out, "  ", 2);
            kv_dump_append_ikey(&d->out, key, d->options);
            kv_buf_append_byte(&d->out, '\n');
            table_corruption(d, "bad range tombstone key", meta->range_del.offset);
            continue;
        }
        kv_buf_append(&d->out, "  [", 3);
        kv_dump_append_bytes(&d->out, begin, d->options);
        kv_buf_append(&d->out, ", ", 2);
        kv_dump_append_bytes(&d->out, end, d->options);
        kv_dump_appendf(&d->out, ") @ %" PRIu64 "\n", seq);
        kv_dump_flush(&d->out);
        if (kv_slice_compare(begin, end) >= 0)
            table_corruption(d, "empty range tombstone", meta->range_del.offset);
        if (prev_key.size > 0 && safe_ikey_compare(kv_buf_slice(&prev_key), key) > 0)
            table_corruption(d, "range tombstones out of order", meta->range_del.offset);
        kv_buf_set(&prev_key, key.data, key.size);
    }
    check_iter(d, it, "range-del", meta->range_del.offset);
    kv_iter_destroy(it);
    kv_block_destroy(block);
    kv_buf_free(&prev_key);
    return count;
}

static void check_count(table_dump *d, const char *what, uint64_t found, uint64_t property)
{
    if (found == property)
        return;
    char message[128];
    snprintf(message, sizeof(message), "%s: %" PRIu64 " found, properties say %" PRIu64, what,
             found, property);
    table_problem(d, kv_error(KV_CORRUPTION, "%s: %s", d->name, message));
}

/* Opens the file with the engine's table reader and verifies it. */
static void table_cross_check(table_dump *d, const char *path)
{
    kv_random *file;
    int rc = kv_env_new_random(kv_env_posix(), path, &file);
    if (rc < 0) {
        table_problem(d, rc);
        return;
    }
    kv_table *table;
    rc = kv_table_open(file, file->size, d->name, NULL, &table); /* takes the file */
    if (rc < 0) {
        table_problem(d, rc);
        return;
    }
    rc = kv_table_verify(table);
    if (rc < 0)
        table_problem(d, rc);
    else
        kv_buf_append(&d->out, "table reader: opened and verified\n", 34);
    kv_dump_flush(&d->out);
    kv_table_close(table);
}

int kv_dump_table(const char *path, const char *name, const kv_dump_options *options)
{
    table_dump d = {.name = name, .options = options};
    int rc = kv_env_new_random(kv_env_posix(), path, &d.file);
    if (rc < 0)
        return kv_dump_report(rc);
    kv_dump_appendf(&d.out, "%s: table, %" PRIu64 " bytes\n", name, d.file->size);
    kv_dump_flush(&d.out);

    kv_footer footer;
    if (table_read_footer(&d, &footer) == 0) {
        meta_handles meta;
        kv_table_properties props;
        data_counts counts;
        table_dump_metaindex(&d, &footer, &meta);
        bool have_props = table_dump_properties(&d, &meta, &props);
        table_dump_filter(&d, &meta);
        table_dump_data(&d, &footer, &counts);
        uint64_t range_dels = table_dump_range_dels(&d, &meta);
        if (have_props && d.status == 0) {
            check_count(&d, "data blocks", counts.blocks, props.num_data_blocks);
            check_count(&d, "entries", counts.entries, props.num_entries);
            check_count(&d, "deletions", counts.deletions, props.num_deletions);
            check_count(&d, "range tombstones", range_dels, props.num_range_deletions);
            check_count(&d, "data bytes", counts.data_end, props.data_size);
        }
        if (d.status == 0)
            table_cross_check(&d, path);
        kv_dump_appendf(&d.out,
                        "%s: %" PRIu64 " blocks with good checksums; %" PRIu64
                        " entries in %" PRIu64 " data blocks, %" PRIu64 " range tombstones%s\n",
                        name, d.blocks_verified, counts.entries, counts.blocks, range_dels,
                        d.status == 0 ? "" : "; PROBLEMS FOUND (see above)");
        kv_dump_flush(&d.out);
    }
    kv_random_close(d.file);
    kv_buf_free(&d.out);
    return d.status;
}
