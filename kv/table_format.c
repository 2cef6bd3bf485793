/*
 * table_format.c — block handles, the footer, reading and writing blocks
 * with their trailer (compression type + masked CRC32C), and the
 * properties block. Shared by the table builder, the reader and kv_dump.
 */
#include "table_format.h"

#include "block.h"
#include "coding.h"
#include "crc32c.h"
#include "error.h"

#include <assert.h>
#include <snappy-c.h>
#include <stddef.h>
#include <stdlib.h>

/* The footer's two handles are padded to this many bytes. */
#define FOOTER_HANDLES_SIZE (2 * KV_BLOCK_HANDLE_MAX_LENGTH)

/* Snappy's densest element (a 3-byte copy of 64 bytes) expands ~21.3
 * times; a declared length beyond this cannot be genuine and must not
 * become an allocation. */
#define SNAPPY_MAX_EXPANSION 22

void kv_block_handle_encode(const kv_block_handle *h, kv_buf *dst)
{
    kv_put_varint64(dst, h->offset);
    kv_put_varint64(dst, h->size);
}

bool kv_block_handle_decode(kv_slice *input, kv_block_handle *h)
{
    return kv_get_varint64(input, &h->offset) && kv_get_varint64(input, &h->size);
}

void kv_footer_encode(const kv_footer *f, kv_buf *dst)
{
    size_t start = dst->size;
    kv_block_handle_encode(&f->metaindex, dst);
    kv_block_handle_encode(&f->index, dst);
    assert(dst->size - start <= FOOTER_HANDLES_SIZE);
    size_t handles_end = start + FOOTER_HANDLES_SIZE;
    while (dst->size < handles_end)
        kv_buf_append_byte(dst, 0);
    kv_put_fixed32(dst, f->format_version);
    kv_put_fixed64(dst, KV_TABLE_MAGIC);
    assert(dst->size - start == KV_FOOTER_SIZE);
}

int kv_footer_decode(kv_slice input, const char *name, kv_footer *f)
{
    if (input.size != KV_FOOTER_SIZE)
        return kv_error(KV_CORRUPTION, "%s: not an SST file (footer of %zu bytes)", name,
                        input.size);
    uint64_t magic = kv_decode_fixed64(input.data + FOOTER_HANDLES_SIZE + 4);
    if (magic != KV_TABLE_MAGIC)
        return kv_error(KV_CORRUPTION, "%s: not an SST file (bad magic number)", name);
    f->format_version = kv_decode_fixed32(input.data + FOOTER_HANDLES_SIZE);
    if (f->format_version > KV_TABLE_FORMAT_VERSION)
        return kv_error(KV_NOT_SUPPORTED,
                        "%s: SST format version %u is newer than this library's (%u)", name,
                        f->format_version, KV_TABLE_FORMAT_VERSION);
    if (f->format_version < 1)
        return kv_error(KV_CORRUPTION, "%s: bad SST format version %u", name, f->format_version);
    kv_slice handles = kv_slice_make(input.data, FOOTER_HANDLES_SIZE);
    if (!kv_block_handle_decode(&handles, &f->metaindex) ||
        !kv_block_handle_decode(&handles, &f->index))
        return kv_error(KV_CORRUPTION, "%s: malformed block handles in the footer", name);
    return 0;
}

/* Decompresses a snappy block (checksum already verified). */
static int block_uncompress_snappy(const char *name, uint64_t offset, const char *stored,
                                   size_t stored_size, char **out, size_t *out_size)
{
    size_t length;
    if (snappy_uncompressed_length(stored, stored_size, &length) != SNAPPY_OK ||
        length / SNAPPY_MAX_EXPANSION > stored_size)
        return kv_error(KV_CORRUPTION, "%s: corrupted compressed block at offset %llu", name,
                        (unsigned long long)offset);
    char *contents = kv_malloc(length);
    size_t got = length;
    if (snappy_uncompress(stored, stored_size, contents, &got) != SNAPPY_OK || got != length) {
        free(contents);
        return kv_error(KV_CORRUPTION, "%s: corrupted compressed block at offset %llu", name,
                        (unsigned long long)offset);
    }
    *out = contents;
    *out_size = length;
    return 0;
}

/* kv_read_block; with borrowed non-NULL, an uncompressed block of a mapped
 * file is returned in place (*borrowed set) instead of copied. */
static int read_block(kv_random *file, const char *name, const kv_block_handle *h, char **out,
                      size_t *out_size, bool *borrowed)
{
    if (borrowed != NULL)
        *borrowed = false;
    *out = NULL;
    *out_size = 0;
    /* Bound the handle by the file before allocating anything for it. */
    uint64_t file_size = file->size;
    if (h->offset > file_size || h->size > file_size - h->offset ||
        file_size - h->offset - h->size < KV_BLOCK_TRAILER_SIZE)
        return kv_error(KV_CORRUPTION,
                        "%s: block handle (size %llu) runs past the end of the file (%llu "
                        "bytes) at offset %llu",
                        name, (unsigned long long)h->size, (unsigned long long)file_size,
                        (unsigned long long)h->offset);
    size_t stored_size = (size_t)h->size;
    size_t n = stored_size + KV_BLOCK_TRAILER_SIZE;
    /* A mapped file is read in place; otherwise into buf. */
    char *buf = file->map ? NULL : kv_malloc(n);
    kv_slice view;
    int rc = kv_random_view(file, h->offset, n, buf, &view);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    if (view.size != n) {
        free(buf);
        return kv_error(KV_CORRUPTION, "%s: truncated block at offset %llu", name,
                        (unsigned long long)h->offset);
    }
    uint32_t expected = kv_crc32c_unmask(kv_decode_fixed32(view.data + stored_size + 1));
    uint32_t actual = kv_crc32c(view.data, stored_size + 1); /* contents and type byte */
    if (actual != expected) {
        free(buf);
        return kv_error(KV_CORRUPTION, "%s: block checksum mismatch at offset %llu", name,
                        (unsigned long long)h->offset);
    }
    int type = (unsigned char)view.data[stored_size];
    switch (type) {
    case KV_BLOCK_NONE:
        if (buf == NULL && borrowed != NULL) {
            *out = (char *)view.data;
            *out_size = stored_size;
            *borrowed = true;
            return 0;
        }
        if (buf == NULL)
            buf = kv_memdup(view.data, stored_size);
        *out = buf; /* the trailer's bytes may stay allocated, unused */
        *out_size = stored_size;
        return 0;
    case KV_BLOCK_SNAPPY:
        rc = block_uncompress_snappy(name, h->offset, view.data, stored_size, out, out_size);
        free(buf);
        return rc;
    default:
        free(buf);
        return kv_error(KV_CORRUPTION, "%s: unknown block compression type %d at offset %llu", name,
                        type, (unsigned long long)h->offset);
    }
}

int kv_read_block(kv_random *file, const char *name, const kv_block_handle *h, char **out,
                  size_t *out_size)
{
    return read_block(file, name, h, out, out_size, NULL);
}

int kv_read_block_borrowed(kv_random *file, const char *name, const kv_block_handle *h,
                           const char **out, size_t *out_size, bool *borrowed)
{
    char *contents;
    int rc = read_block(file, name, h, &contents, out_size, borrowed);
    *out = contents;
    return rc;
}

int kv_write_block(kv_writable *file, kv_slice contents, int compression, kv_block_handle *h,
                   kv_buf *scratch)
{
    kv_slice stored = contents;
    char type = KV_BLOCK_NONE;
    if (compression == KV_COMPRESSION_SNAPPY) {
        kv_buf_resize(scratch, snappy_max_compressed_length(contents.size));
        size_t compressed_size = scratch->size;
        /* Keep the compressed form only when it saves at least 1/8. */
        if (snappy_compress(contents.data, contents.size, scratch->data, &compressed_size) ==
                SNAPPY_OK &&
            compressed_size <= contents.size - contents.size / 8 && contents.size > 0) {
            stored = kv_slice_make(scratch->data, compressed_size);
            type = KV_BLOCK_SNAPPY;
        }
    } else {
        assert(compression == KV_COMPRESSION_NONE);
    }

    char trailer[KV_BLOCK_TRAILER_SIZE];
    trailer[0] = type;
    uint32_t crc = kv_crc32c_extend(kv_crc32c(stored.data, stored.size), trailer, 1);
    kv_encode_fixed32(trailer + 1, kv_crc32c_mask(crc));

    h->offset = file->size;
    h->size = stored.size;
    int rc = kv_writable_append(file, stored.data, stored.size);
    if (rc == 0)
        rc = kv_writable_append(file, trailer, sizeof(trailer));
    return rc;
}

/* ---- properties ---- */

/* Stored names, in bytewise order (a block's keys must be sorted). */
static const struct {
    const char *name;
    size_t offset;
} property_fields[] = {
    {"data_size", offsetof(kv_table_properties, data_size)},
    {"filter_size", offsetof(kv_table_properties, filter_size)},
    {"index_size", offsetof(kv_table_properties, index_size)},
    {"largest_seq", offsetof(kv_table_properties, largest_seq)},
    {"num_data_blocks", offsetof(kv_table_properties, num_data_blocks)},
    {"num_deletions", offsetof(kv_table_properties, num_deletions)},
    {"num_entries", offsetof(kv_table_properties, num_entries)},
    {"num_range_deletions", offsetof(kv_table_properties, num_range_deletions)},
    {"raw_key_size", offsetof(kv_table_properties, raw_key_size)},
    {"raw_value_size", offsetof(kv_table_properties, raw_value_size)},
    {"smallest_seq", offsetof(kv_table_properties, smallest_seq)},
};
#define NUM_PROPERTY_FIELDS (sizeof(property_fields) / sizeof(property_fields[0]))

void kv_table_properties_encode(const kv_table_properties *p, kv_buf *block_contents)
{
    kv_block_builder builder;
    kv_block_builder_init(&builder, 1);
    kv_buf value = {0};
    for (size_t i = 0; i < NUM_PROPERTY_FIELDS; i++) {
        assert(i == 0 || strcmp(property_fields[i - 1].name, property_fields[i].name) < 0);
        const uint64_t *field = (const uint64_t *)((const char *)p + property_fields[i].offset);
        kv_buf_clear(&value);
        kv_put_varint64(&value, *field);
        kv_block_builder_add(&builder, kv_slice_from_str(property_fields[i].name),
                             kv_buf_slice(&value));
    }
    kv_slice contents = kv_block_builder_finish(&builder);
    kv_buf_append(block_contents, contents.data, contents.size);
    kv_buf_free(&value);
    kv_block_builder_free(&builder);
}

int kv_table_properties_decode(kv_slice block_contents, const char *name, kv_table_properties *p)
{
    memset(p, 0, sizeof(*p));
    kv_block *block;
    int rc = kv_block_create(kv_memdup(block_contents.data, block_contents.size),
                             block_contents.size, name, &block);
    if (rc < 0)
        return rc;
    kv_iter *it = kv_block_iter_create(block, kv_slice_compare, NULL, NULL);
    for (kv_iter_seek_to_first(it); kv_iter_valid(it); kv_iter_next(it)) {
        kv_slice key = kv_iter_key(it);
        for (size_t i = 0; i < NUM_PROPERTY_FIELDS; i++) {
            if (!kv_slice_equal(key, kv_slice_from_str(property_fields[i].name)))
                continue;
            kv_slice value = kv_iter_value(it);
            uint64_t *field = (uint64_t *)((char *)p + property_fields[i].offset);
            if (!kv_get_varint64(&value, field)) {
                rc = kv_error(KV_CORRUPTION, "%s: malformed table property %s", name,
                              property_fields[i].name);
                goto out;
            }
        }
        /* Unknown names are skipped: a newer writer may add properties. */
    }
    if (kv_iter_status(it) < 0)
        rc = kv_error(KV_CORRUPTION, "%s: malformed properties block", name);
out:
    kv_iter_destroy(it);
    kv_block_destroy(block);
    return rc;
}
