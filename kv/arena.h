/*
 * arena.h — bump allocator for a memtable: many small allocations freed all
 * at once. One writer allocates at a time (the memtable's writer is
 * serialized); memory_usage may be read from any thread.
 */
#ifndef KV_ARENA_H
#define KV_ARENA_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct kv_arena {
    char *alloc_ptr;
    size_t alloc_remaining;
    char **blocks;
    size_t num_blocks, blocks_cap;
    atomic_size_t memory_usage;
} kv_arena;

void kv_arena_init(kv_arena *arena);
void kv_arena_destroy(kv_arena *arena);
void *kv_arena_allocate(kv_arena *arena, size_t bytes);
/* Aligned to max(sizeof(void *), 8). */
void *kv_arena_allocate_aligned(kv_arena *arena, size_t bytes);
size_t kv_arena_memory_usage(const kv_arena *arena);

#endif
