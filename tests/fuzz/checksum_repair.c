/*
 * checksum_repair.c — makes a log's or a table's checksums match its bytes
 * (checksum_repair.h). The walks mirror the readers' own (wal_reader.c,
 * table.c) but only locate structures; they validate nothing else.
 */
#include "checksum_repair.h"

#include "block.h"
#include "coding.h"
#include "crc32c.h"
#include "table_format.h"
#include "wal.h"

#include <snappy-c.h>
#include <stdlib.h>

/* More child blocks than a table built by the seeds has, by far; bounds the
 * work on an index that is mostly garbage. */
#define MAX_REPAIRED_BLOCKS 4096
/* Uncompressed parent blocks larger than this are not walked. */
#define MAX_PARENT_BLOCK_SIZE (4u << 20)

void fuzz_repair_log_checksums(char *data, size_t size)
{
    for (size_t block_start = 0; block_start < size; block_start += KV_LOG_BLOCK_SIZE) {
        size_t left = size - block_start;
        size_t block_end = block_start + (left < KV_LOG_BLOCK_SIZE ? left : KV_LOG_BLOCK_SIZE);
        size_t pos = block_start;
        while (block_end - pos >= KV_LOG_HEADER_SIZE) {
            char *header = data + pos;
            size_t length = (size_t)(unsigned char)header[4] | (size_t)(unsigned char)header[5]
                                                                   << 8;
            if (header[6] == KV_LOG_ZERO || KV_LOG_HEADER_SIZE + length > block_end - pos)
                break;
            uint32_t crc =
                kv_crc32c_extend(kv_crc32c(header + 6, 1), header + KV_LOG_HEADER_SIZE, length);
            kv_encode_fixed32(header, kv_crc32c_mask(crc));
            pos += KV_LOG_HEADER_SIZE + length;
        }
    }
}

/* True when the block at h, with its trailer, lies inside the file. */
static bool block_in_file(size_t size, const kv_block_handle *h)
{
    return h->offset <= size && h->size <= size - h->offset &&
           size - h->offset - h->size >= KV_BLOCK_TRAILER_SIZE;
}

static void repair_block_trailer(char *data, size_t size, const kv_block_handle *h)
{
    if (!block_in_file(size, h))
        return;
    char *stored = data + h->offset;
    uint32_t crc = kv_crc32c(stored, (size_t)h->size + 1); /* contents and type byte */
    kv_encode_fixed32(stored + h->size + 1, kv_crc32c_mask(crc));
}

/* The uncompressed contents of the block at h (malloc'd), or NULL when it
 * cannot be had. */
static char *block_contents(const char *data, size_t size, const kv_block_handle *h,
                            size_t *contents_size)
{
    if (!block_in_file(size, h) || h->size > MAX_PARENT_BLOCK_SIZE)
        return NULL;
    const char *stored = data + h->offset;
    size_t stored_size = (size_t)h->size;
    switch (stored[stored_size]) {
    case KV_BLOCK_NONE:
        *contents_size = stored_size;
        return kv_memdup(stored, stored_size);
    case KV_BLOCK_SNAPPY: {
        size_t length;
        if (snappy_uncompressed_length(stored, stored_size, &length) != SNAPPY_OK ||
            length > MAX_PARENT_BLOCK_SIZE)
            return NULL;
        char *contents = kv_malloc(length + 1);
        size_t got = length;
        if (snappy_uncompress(stored, stored_size, contents, &got) != SNAPPY_OK || got != length) {
            free(contents);
            return NULL;
        }
        *contents_size = length;
        return contents;
    }
    default:
        return NULL;
    }
}

/* Appends to handles[] (from *count on, at most `limit` in all) the block
 * handles stored as the values of the block at h (an index or a
 * metaindex). */
static void collect_child_handles(const char *data, size_t size, const kv_block_handle *h,
                                  kv_block_handle *handles, size_t *count, size_t limit)
{
    size_t contents_size;
    char *contents = block_contents(data, size, h, &contents_size);
    if (contents == NULL)
        return;
    kv_block *block;
    if (kv_block_create(contents, contents_size, "repair", &block) != 0)
        return; /* contents freed by kv_block_create */
    kv_iter *it = kv_block_iter_create(block, kv_slice_compare, NULL, NULL);
    for (kv_iter_seek_to_first(it); kv_iter_valid(it) && *count < limit; kv_iter_next(it)) {
        kv_slice value = kv_iter_value(it);
        if (kv_block_handle_decode(&value, &handles[*count]))
            (*count)++;
    }
    kv_iter_destroy(it);
    kv_block_destroy(block);
}

void fuzz_repair_table_checksums(char *data, size_t size)
{
    if (size < KV_FOOTER_SIZE)
        return;
    /* Parse the footer's handles even when its magic or version is wrong:
     * the reader refuses those before reading any block anyway. */
    kv_footer footer;
    kv_slice handles_area = kv_slice_make(data + size - KV_FOOTER_SIZE, KV_FOOTER_SIZE - 12);
    if (!kv_block_handle_decode(&handles_area, &footer.metaindex) ||
        !kv_block_handle_decode(&handles_area, &footer.index))
        return;

    kv_block_handle *children = kv_malloc(2 * MAX_REPAIRED_BLOCKS * sizeof(*children));
    size_t count = 0;
    collect_child_handles(data, size, &footer.index, children, &count, MAX_REPAIRED_BLOCKS);
    collect_child_handles(data, size, &footer.metaindex, children, &count,
                          count + MAX_REPAIRED_BLOCKS);
    for (size_t i = 0; i < count; i++)
        repair_block_trailer(data, size, &children[i]);
    repair_block_trailer(data, size, &footer.metaindex);
    repair_block_trailer(data, size, &footer.index);
    free(children);
}
