/*
 * block.c — reading SST blocks (format in block.h): validation of the
 * restart array, and an iterator that seeks by binary search over restart
 * points and decodes prefix-compressed entries. Every length taken from
 * the block is checked against the block's bounds, so a malformed block
 * yields KV_CORRUPTION and never a read outside it.
 */
#include "block.h"

#include "coding.h"
#include "error.h"

#include <assert.h>
#include <stdlib.h>

struct kv_block {
    char *data;
    bool owned;             /* data is malloc'd and freed with the block */
    size_t size;            /* whole contents, restart trailer included */
    size_t restarts_offset; /* end of the entries, start of the restart array */
    uint32_t num_restarts;
};

static uint32_t block_restart_point(const kv_block *block, uint32_t index)
{
    assert(index < block->num_restarts);
    return kv_decode_fixed32(block->data + block->restarts_offset + 4 * (size_t)index);
}

/* Checks that the restart array fits and that every restart point lies
 * inside the entries, strictly increasing from 0; readers then only need
 * to bound-check the entries themselves. */
static bool block_restarts_valid(const kv_block *block)
{
    if (block->restarts_offset == 0)
        return true; /* no entries: restart values are never used */
    if (block->num_restarts == 0 || block_restart_point(block, 0) != 0)
        return false;
    uint32_t previous = 0;
    for (uint32_t i = 1; i < block->num_restarts; i++) {
        uint32_t point = block_restart_point(block, i);
        if (point <= previous || point >= block->restarts_offset)
            return false;
        previous = point;
    }
    return true;
}

/* kv_block_create; owned says whether the block frees contents. */
static int block_create(char *contents, size_t size, bool owned, const char *name, kv_block **out)
{
    *out = NULL;
    if (size < sizeof(uint32_t)) {
        if (owned)
            free(contents);
        return kv_error(KV_CORRUPTION, "%s: block too short (%zu bytes)", name, size);
    }
    uint32_t num_restarts = kv_decode_fixed32(contents + size - sizeof(uint32_t));
    size_t max_restarts = (size - sizeof(uint32_t)) / sizeof(uint32_t);
    if (num_restarts > max_restarts) {
        if (owned)
            free(contents);
        return kv_error(KV_CORRUPTION, "%s: block restart count %u too large for %zu bytes", name,
                        num_restarts, size);
    }
    kv_block *block = kv_malloc(sizeof(*block));
    block->data = contents;
    block->owned = owned;
    block->size = size;
    block->num_restarts = num_restarts;
    block->restarts_offset = size - sizeof(uint32_t) * (1 + (size_t)num_restarts);
    if (block->restarts_offset > UINT32_MAX || !block_restarts_valid(block)) {
        kv_block_destroy(block);
        return kv_error(KV_CORRUPTION, "%s: malformed block restart array", name);
    }
    *out = block;
    return 0;
}

int kv_block_create(char *contents, size_t size, const char *name, kv_block **out)
{
    return block_create(contents, size, true, name, out);
}

int kv_block_create_borrowed(const char *contents, size_t size, const char *name, kv_block **out)
{
    return block_create((char *)contents, size, false, name, out);
}

bool kv_block_is_borrowed(const kv_block *block)
{
    return !block->owned;
}

void kv_block_destroy(kv_block *block)
{
    if (block == NULL)
        return;
    if (block->owned)
        free(block->data);
    free(block);
}

size_t kv_block_size(const kv_block *block)
{
    return block->size;
}

/* One decoded entry header; key_delta and value point into the block. */
typedef struct block_entry {
    uint32_t shared;
    kv_slice key_delta;
    kv_slice value;
    size_t next_offset; /* offset just past the entry */
} block_entry;

/* Decodes the entry at `offset` (< restarts_offset). False when a length
 * runs past the entries. `shared` is not checked here: it depends on the
 * previous key. */
static bool block_decode_entry(const kv_block *block, size_t offset, block_entry *entry)
{
    const char *p = block->data + offset;
    const char *limit = block->data + block->restarts_offset;
    uint32_t shared, non_shared, value_len;
    if ((p = kv_decode_varint32(p, limit, &shared)) == NULL ||
        (p = kv_decode_varint32(p, limit, &non_shared)) == NULL ||
        (p = kv_decode_varint32(p, limit, &value_len)) == NULL)
        return false;
    size_t room = (size_t)(limit - p);
    if (non_shared > room || value_len > room - non_shared)
        return false;
    entry->shared = shared;
    entry->key_delta = kv_slice_make(p, non_shared);
    entry->value = kv_slice_make(p + non_shared, value_len);
    entry->next_offset = (size_t)(p + non_shared + value_len - block->data);
    return true;
}

typedef struct block_iter {
    kv_iter base;
    const kv_block *block;
    kv_compare_fn compare;
    void (*release)(void *arg);
    void *release_arg;
    /* current == restarts_offset means "not positioned on an entry". */
    size_t current;
    size_t next_offset;
    uint32_t restart_index; /* last restart point <= current */
    kv_buf key;
    kv_slice value;
    int status;
} block_iter;

static void block_iter_invalidate(block_iter *it)
{
    it->current = it->block->restarts_offset;
    it->next_offset = it->block->restarts_offset;
    it->restart_index = it->block->num_restarts;
    kv_buf_clear(&it->key);
    it->value = kv_slice_make(NULL, 0);
}

static void block_iter_corrupt(block_iter *it, size_t offset)
{
    it->status = kv_error(KV_CORRUPTION, "malformed block entry at block offset %zu", offset);
    block_iter_invalidate(it);
}

static bool block_iter_valid(kv_iter *base)
{
    block_iter *it = (block_iter *)base;
    return it->status == 0 && it->current < it->block->restarts_offset;
}

/* Moves to the entry at next_offset; false at the end or on corruption. */
static bool block_iter_parse_next(block_iter *it)
{
    const kv_block *block = it->block;
    it->current = it->next_offset;
    if (it->current >= block->restarts_offset) {
        block_iter_invalidate(it);
        return false;
    }
    block_entry entry;
    if (!block_decode_entry(block, it->current, &entry) || entry.shared > it->key.size) {
        block_iter_corrupt(it, it->current);
        return false;
    }
    kv_buf_resize(&it->key, entry.shared);
    kv_buf_append(&it->key, entry.key_delta.data, entry.key_delta.size);
    it->value = entry.value;
    it->next_offset = entry.next_offset;
    while (it->restart_index + 1 < block->num_restarts &&
           block_restart_point(block, it->restart_index + 1) <= it->current)
        it->restart_index++;
    return true;
}

/* Positions just before restart point `index`: the next parse reads it. */
static void block_iter_seek_to_restart(block_iter *it, uint32_t index)
{
    kv_buf_clear(&it->key);
    it->restart_index = index;
    it->next_offset = block_restart_point(it->block, index);
}

static bool block_is_empty(const kv_block *block)
{
    return block->restarts_offset == 0 || block->num_restarts == 0;
}

static void block_iter_seek_to_first(kv_iter *base)
{
    block_iter *it = (block_iter *)base;
    if (it->status != 0 || block_is_empty(it->block)) {
        block_iter_invalidate(it);
        return;
    }
    block_iter_seek_to_restart(it, 0);
    block_iter_parse_next(it);
}

static void block_iter_seek_to_last(kv_iter *base)
{
    block_iter *it = (block_iter *)base;
    if (it->status != 0 || block_is_empty(it->block)) {
        block_iter_invalidate(it);
        return;
    }
    block_iter_seek_to_restart(it, it->block->num_restarts - 1);
    while (block_iter_parse_next(it) && it->next_offset < it->block->restarts_offset) {
    }
}

static void block_iter_next(kv_iter *base)
{
    block_iter *it = (block_iter *)base;
    assert(block_iter_valid(base));
    block_iter_parse_next(it);
}

static void block_iter_prev(kv_iter *base)
{
    block_iter *it = (block_iter *)base;
    assert(block_iter_valid(base));
    /* Back up to the last restart point before the current entry, then
     * decode forward to the entry just before it. */
    size_t original = it->current;
    while (block_restart_point(it->block, it->restart_index) >= original) {
        if (it->restart_index == 0) {
            block_iter_invalidate(it);
            return;
        }
        it->restart_index--;
    }
    block_iter_seek_to_restart(it, it->restart_index);
    while (block_iter_parse_next(it) && it->next_offset < original) {
    }
}

static void block_iter_seek(kv_iter *base, kv_slice target)
{
    block_iter *it = (block_iter *)base;
    const kv_block *block = it->block;
    if (it->status != 0 || block_is_empty(block)) {
        block_iter_invalidate(it);
        return;
    }
    /* Binary search for the last restart point whose key is < target. */
    uint32_t left = 0, right = block->num_restarts - 1;
    while (left < right) {
        uint32_t mid = left + (right - left + 1) / 2;
        size_t offset = block_restart_point(block, mid);
        block_entry entry;
        if (!block_decode_entry(block, offset, &entry) || entry.shared != 0) {
            block_iter_corrupt(it, offset);
            return;
        }
        if (it->compare(entry.key_delta, target) < 0)
            left = mid;
        else
            right = mid - 1;
    }
    block_iter_seek_to_restart(it, left);
    while (block_iter_parse_next(it)) {
        if (it->compare(kv_buf_slice(&it->key), target) >= 0)
            return;
    }
}

static kv_slice block_iter_key(kv_iter *base)
{
    block_iter *it = (block_iter *)base;
    assert(block_iter_valid(base));
    return kv_buf_slice(&it->key);
}

static kv_slice block_iter_value(kv_iter *base)
{
    block_iter *it = (block_iter *)base;
    assert(block_iter_valid(base));
    return it->value;
}

static int block_iter_status(kv_iter *base)
{
    return ((block_iter *)base)->status;
}

static void block_iter_destroy(kv_iter *base)
{
    block_iter *it = (block_iter *)base;
    kv_buf_free(&it->key);
    if (it->release)
        it->release(it->release_arg);
    free(it);
}

static const struct kv_iter_ops block_iter_ops = {
    .valid = block_iter_valid,
    .seek_to_first = block_iter_seek_to_first,
    .seek_to_last = block_iter_seek_to_last,
    .seek = block_iter_seek,
    .next = block_iter_next,
    .prev = block_iter_prev,
    .key = block_iter_key,
    .value = block_iter_value,
    .status = block_iter_status,
    .destroy = block_iter_destroy,
};

kv_iter *kv_block_iter_create(const kv_block *block, kv_compare_fn compare,
                              void (*release)(void *arg), void *arg)
{
    block_iter *it = kv_calloc(1, sizeof(*it));
    it->base.ops = &block_iter_ops;
    it->block = block;
    it->compare = compare;
    it->release = release;
    it->release_arg = arg;
    block_iter_invalidate(it);
    return &it->base;
}
