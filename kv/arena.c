/*
 * arena.c — bump allocation from 4 KiB blocks; requests over 1 KiB get
 * a block of their own so the tail of the current block is not wasted.
 */
#include "arena.h"
#include "slice.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

#define ARENA_BLOCK_SIZE 4096
#define ARENA_ALIGN (sizeof(void *) > 8 ? sizeof(void *) : 8)

void kv_arena_init(kv_arena *arena)
{
    arena->alloc_ptr = NULL;
    arena->alloc_remaining = 0;
    arena->blocks = NULL;
    arena->num_blocks = arena->blocks_cap = 0;
    atomic_init(&arena->memory_usage, 0);
}

void kv_arena_destroy(kv_arena *arena)
{
    for (size_t i = 0; i < arena->num_blocks; i++)
        free(arena->blocks[i]);
    free(arena->blocks);
    kv_arena_init(arena);
}

static char *arena_new_block(kv_arena *arena, size_t bytes)
{
    if (arena->num_blocks == arena->blocks_cap) {
        arena->blocks_cap = arena->blocks_cap ? arena->blocks_cap * 2 : 16;
        arena->blocks = kv_realloc(arena->blocks, arena->blocks_cap * sizeof(char *));
    }
    char *block = kv_malloc(bytes);
    arena->blocks[arena->num_blocks++] = block;
    atomic_fetch_add_explicit(&arena->memory_usage, bytes + sizeof(char *), memory_order_relaxed);
    return block;
}

static void *arena_allocate_fallback(kv_arena *arena, size_t bytes)
{
    if (bytes > ARENA_BLOCK_SIZE / 4)
        return arena_new_block(arena, bytes);
    arena->alloc_ptr = arena_new_block(arena, ARENA_BLOCK_SIZE);
    arena->alloc_remaining = ARENA_BLOCK_SIZE;
    char *result = arena->alloc_ptr;
    arena->alloc_ptr += bytes;
    arena->alloc_remaining -= bytes;
    return result;
}

void *kv_arena_allocate(kv_arena *arena, size_t bytes)
{
    assert(bytes > 0);
    if (bytes <= arena->alloc_remaining) {
        char *result = arena->alloc_ptr;
        arena->alloc_ptr += bytes;
        arena->alloc_remaining -= bytes;
        return result;
    }
    return arena_allocate_fallback(arena, bytes);
}

void *kv_arena_allocate_aligned(kv_arena *arena, size_t bytes)
{
    size_t misalign = (uintptr_t)arena->alloc_ptr & (ARENA_ALIGN - 1);
    size_t slop = misalign ? ARENA_ALIGN - misalign : 0;
    size_t needed = bytes + slop;
    char *result;
    if (needed <= arena->alloc_remaining) {
        result = arena->alloc_ptr + slop;
        arena->alloc_ptr += needed;
        arena->alloc_remaining -= needed;
    } else {
        /* malloc'd blocks are always suitably aligned */
        result = arena_allocate_fallback(arena, bytes);
    }
    assert(((uintptr_t)result & (ARENA_ALIGN - 1)) == 0);
    return result;
}

size_t kv_arena_memory_usage(const kv_arena *arena)
{
    return atomic_load_explicit(&((kv_arena *)arena)->memory_usage, memory_order_relaxed);
}
