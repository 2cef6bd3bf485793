/*
 * table_builder.h — writes one SST file (LevelDB's TableBuilder): data
 * blocks of about block_size bytes, a bloom filter over user keys, the
 * range tombstones, properties, metaindex, index and footer.
 */
#ifndef KV_TABLE_BUILDER_H
#define KV_TABLE_BUILDER_H

#include "dbformat.h"
#include "env.h"
#include "table_format.h"

typedef struct kv_table_options {
    size_t block_size;
    int block_restart_interval;
    int bloom_bits_per_key; /* 0: no filter */
    int compression;        /* enum kv_compression */
} kv_table_options;

typedef struct kv_table_builder kv_table_builder;

/* Builds into `file` (borrowed; the caller syncs and closes it). */
kv_table_builder *kv_table_builder_create(const kv_table_options *options, kv_writable *file);
/* Requires: ikey (an internal key) greater than every key added before.
 * Returns the first write error, and keeps returning it. */
int kv_table_builder_add(kv_table_builder *b, kv_slice ikey, kv_slice value);
/* Range tombstones may come in any order. */
void kv_table_builder_add_range_tombstone(kv_table_builder *b, kv_slice begin, kv_slice end,
                                          kv_seq seq);
/* Writes everything after the data blocks. */
int kv_table_builder_finish(kv_table_builder *b);
void kv_table_builder_destroy(kv_table_builder *b);

uint64_t kv_table_builder_num_entries(const kv_table_builder *b); /* incl. range tombstones */
uint64_t kv_table_builder_file_size(const kv_table_builder *b);
/* Smallest and largest internal key covered, counting range tombstones
 * (a tombstone [b, e)@s covers b@s .. e@KV_MAX_SEQUENCE). Valid after
 * at least one entry; empty slices otherwise. */
kv_slice kv_table_builder_smallest(const kv_table_builder *b);
kv_slice kv_table_builder_largest(const kv_table_builder *b);
const kv_table_properties *kv_table_builder_properties(const kv_table_builder *b);
/* Moves the table's blob links (sorted by number, unbound) to the caller. */
struct kv_blob_link;
void kv_table_builder_take_blob_links(kv_table_builder *b, struct kv_blob_link **links,
                                      size_t *count);

#endif
