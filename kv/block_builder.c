/*
 * block_builder.c — builds one SST block (format in block.h): keys are
 * prefix-compressed against the previous key, and every
 * restart_interval-th key is stored whole so readers can binary-search the
 * restart array.
 */
#include "block.h"

#include "coding.h"

#include <assert.h>
#include <stdlib.h>

static void push_restart(kv_block_builder *b, uint32_t offset)
{
    if (b->num_restarts == b->restarts_cap) {
        b->restarts_cap = b->restarts_cap ? 2 * b->restarts_cap : 16;
        b->restarts = kv_realloc(b->restarts, b->restarts_cap * sizeof(*b->restarts));
    }
    b->restarts[b->num_restarts++] = offset;
}

void kv_block_builder_init(kv_block_builder *b, int restart_interval)
{
    assert(restart_interval >= 1);
    memset(b, 0, sizeof(*b));
    b->restart_interval = restart_interval;
    push_restart(b, 0);
}

void kv_block_builder_free(kv_block_builder *b)
{
    kv_buf_free(&b->buffer);
    kv_buf_free(&b->last_key);
    free(b->restarts);
    memset(b, 0, sizeof(*b));
}

void kv_block_builder_reset(kv_block_builder *b)
{
    kv_buf_clear(&b->buffer);
    kv_buf_clear(&b->last_key);
    b->num_restarts = 0;
    push_restart(b, 0);
    b->counter = 0;
    b->finished = false;
}

void kv_block_builder_add(kv_block_builder *b, kv_slice key, kv_slice value)
{
    assert(!b->finished);
    assert(key.size <= UINT32_MAX && value.size <= UINT32_MAX);
    size_t shared = 0;
    if (b->counter < b->restart_interval) {
        size_t limit = key.size < b->last_key.size ? key.size : b->last_key.size;
        while (shared < limit && key.data[shared] == b->last_key.data[shared])
            shared++;
    } else {
        /* A restart point: the key is stored whole. */
        assert(b->buffer.size <= UINT32_MAX);
        push_restart(b, (uint32_t)b->buffer.size);
        b->counter = 0;
    }
    size_t non_shared = key.size - shared;

    char header[3 * KV_MAX_VARINT32_LENGTH];
    char *p = kv_encode_varint32(header, (uint32_t)shared);
    p = kv_encode_varint32(p, (uint32_t)non_shared);
    p = kv_encode_varint32(p, (uint32_t)value.size);
    kv_buf_append(&b->buffer, header, (size_t)(p - header));
    kv_buf_append(&b->buffer, key.data + shared, non_shared);
    kv_buf_append(&b->buffer, value.data, value.size);

    /* last_key = key, reusing the shared prefix already there. */
    kv_buf_resize(&b->last_key, shared);
    kv_buf_append(&b->last_key, key.data + shared, non_shared);
    b->counter++;
}

kv_slice kv_block_builder_finish(kv_block_builder *b)
{
    if (!b->finished) {
        for (size_t i = 0; i < b->num_restarts; i++)
            kv_put_fixed32(&b->buffer, b->restarts[i]);
        kv_put_fixed32(&b->buffer, (uint32_t)b->num_restarts);
        b->finished = true;
    }
    return kv_buf_slice(&b->buffer);
}

size_t kv_block_builder_size_estimate(const kv_block_builder *b)
{
    if (b->finished)
        return b->buffer.size;
    return b->buffer.size + b->num_restarts * sizeof(uint32_t) + sizeof(uint32_t);
}
