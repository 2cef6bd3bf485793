/*
 * block.h — SST blocks (LevelDB's block format): entries with keys
 * prefix-compressed against the previous key, and every
 * restart_interval-th key stored whole at a restart point.
 *
 *   entry   := varint32 shared || varint32 non_shared || varint32 value_len
 *              || key_delta[non_shared] || value[value_len]
 *   trailer := fixed32 restart_offset[num_restarts] || fixed32 num_restarts
 */
#ifndef KV_BLOCK_H
#define KV_BLOCK_H

#include "dbformat.h"
#include "iterator.h"

typedef struct kv_block_builder {
    kv_buf buffer;
    uint32_t *restarts;
    size_t num_restarts, restarts_cap;
    int restart_interval;
    int counter; /* entries since the last restart */
    bool finished;
    kv_buf last_key;
} kv_block_builder;

void kv_block_builder_init(kv_block_builder *b, int restart_interval);
void kv_block_builder_free(kv_block_builder *b);
void kv_block_builder_reset(kv_block_builder *b);
/* Requires: key greater than every key added since reset (in the order of
 * the block's comparator). */
void kv_block_builder_add(kv_block_builder *b, kv_slice key, kv_slice value);
/* Appends the restart trailer; the contents stay valid until reset. */
kv_slice kv_block_builder_finish(kv_block_builder *b);
size_t kv_block_builder_size_estimate(const kv_block_builder *b);
static inline bool kv_block_builder_empty(const kv_block_builder *b)
{
    return b->buffer.size == 0;
}

/* A parsed, immutable block. Owns its contents (malloc'd), or borrows
 * them (bytes of a memory-mapped file that outlives the block). */
typedef struct kv_block kv_block;

/* Takes ownership of contents (malloc'd, `size` bytes). KV_CORRUPTION
 * (message with `name`) when the restart trailer is malformed. */
int kv_block_create(char *contents, size_t size, const char *name, kv_block **out);
/* The same over contents the block does not own: they must stay valid and
 * unchanged until the block is destroyed. */
int kv_block_create_borrowed(const char *contents, size_t size, const char *name, kv_block **out);
bool kv_block_is_borrowed(const kv_block *block);
void kv_block_destroy(kv_block *block);
size_t kv_block_size(const kv_block *block);

/* Iterates the block in `compare` order. The block must outlive the
 * iterator unless release/arg is given: release(arg) runs at destroy (used
 * to drop a block-cache handle). A malformed entry makes the iterator
 * invalid with KV_CORRUPTION. */
kv_iter *kv_block_iter_create(const kv_block *block, kv_compare_fn compare,
                              void (*release)(void *arg), void *arg);

#endif
