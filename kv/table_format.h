/*
 * table_format.h — pieces of the SST file format shared by the builder, the
 * reader and kv_dump (layout in FORMAT.md):
 *
 *   data block* || filter block || range-deletion block || properties block
 *   || metaindex block || index block || footer
 *
 * Every block is followed by a 5-byte trailer: compression type (1) ||
 * masked crc32c (4) of the stored block bytes and the type byte.
 * Footer (52 bytes): metaindex handle || index handle (varints, zero-padded
 * to 40 bytes) || fixed32 format version || fixed64 magic.
 */
#ifndef KV_TABLE_FORMAT_H
#define KV_TABLE_FORMAT_H

#include "env.h"

#define KV_TABLE_MAGIC 0x6b764c534d535354ull /* "kvLSMSST" */
/* 2: the table may hold blob indexes (type 0x02); tables without any are
 * still written as version 1. */
#define KV_TABLE_FORMAT_VERSION 2
#define KV_BLOCK_TRAILER_SIZE 5
#define KV_BLOCK_HANDLE_MAX_LENGTH 20
#define KV_FOOTER_SIZE 52

/* Names of meta blocks in the metaindex. */
#define KV_META_FILTER "filter.bloom"
#define KV_META_RANGE_DEL "rangedel"
#define KV_META_PROPERTIES "properties"

enum kv_block_compression { KV_BLOCK_NONE = 0, KV_BLOCK_SNAPPY = 1 };

typedef struct kv_block_handle {
    uint64_t offset, size; /* size excludes the trailer */
} kv_block_handle;

void kv_block_handle_encode(const kv_block_handle *h, kv_buf *dst);
bool kv_block_handle_decode(kv_slice *input, kv_block_handle *h);

typedef struct kv_footer {
    kv_block_handle metaindex, index;
    uint32_t format_version;
} kv_footer;

void kv_footer_encode(const kv_footer *f, kv_buf *dst); /* KV_FOOTER_SIZE bytes */
/* KV_CORRUPTION if the magic is wrong ("not an SST file"), KV_NOT_SUPPORTED
 * for a newer format version; messages name `name`. */
int kv_footer_decode(kv_slice input, const char *name, kv_footer *f);

/* Reads the block at h from file, verifies its checksum, decompresses.
 * On success out holds the uncompressed contents (malloc'd, caller frees)
 * and *out_size its size. Errors name the file and offset:
 * "000012.sst: block checksum mismatch at offset 81920". */
int kv_read_block(kv_random *file, const char *name, const kv_block_handle *h, char **out,
                  size_t *out_size);

/* kv_read_block, except that an uncompressed block of a memory-mapped file
 * is not copied: *out points into the mapping and *borrowed is set (the
 * contents live as long as the file stays open; the caller frees nothing).
 * Otherwise *borrowed is false and *out is malloc'd as above. The checksum
 * is verified either way. */
int kv_read_block_borrowed(kv_random *file, const char *name, const kv_block_handle *h,
                           const char **out, size_t *out_size, bool *borrowed);

/* Appends block contents + trailer to a writable, compressing when it
 * saves at least 1/8 (compression = enum kv_compression). On success *h
 * describes where it went. */
int kv_write_block(kv_writable *file, kv_slice contents, int compression, kv_block_handle *h,
                   kv_buf *scratch);

/* Table properties, stored in the properties block as name -> varint64. */
typedef struct kv_table_properties {
    uint64_t num_entries; /* point entries, incl. deletions */
    uint64_t num_deletions;
    uint64_t num_range_deletions;
    uint64_t num_data_blocks;
    uint64_t raw_key_size, raw_value_size;
    uint64_t data_size, index_size, filter_size;
    uint64_t smallest_seq, largest_seq;
} kv_table_properties;

void kv_table_properties_encode(const kv_table_properties *p, kv_buf *block_contents);
int kv_table_properties_decode(kv_slice block_contents, const char *name, kv_table_properties *p);

#endif
