/* memtable_list.c — a family's immutable memtables (see memtable_list.h). */
#include "memtable_list.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void kv_memtable_list_init(kv_memtable_list *list)
{
    memset(list, 0, sizeof(*list));
}

void kv_memtable_list_free(kv_memtable_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        kv_memtable_unref(list->mems[i]);
    free(list->mems);
    free(list->flush_in_progress);
    memset(list, 0, sizeof(*list));
}

void kv_memtable_list_add(kv_memtable_list *list, kv_memtable *mem)
{
    if (list->count == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 4;
        list->mems = kv_realloc(list->mems, list->cap * sizeof(kv_memtable *));
        list->flush_in_progress = kv_realloc(list->flush_in_progress, list->cap * sizeof(bool));
    }
    list->mems[list->count] = mem;
    list->flush_in_progress[list->count] = false;
    list->count++;
}

size_t kv_memtable_list_num_not_flushing(const kv_memtable_list *list)
{
    size_t n = 0;
    for (size_t i = 0; i < list->count; i++)
        n += !list->flush_in_progress[i];
    return n;
}

void kv_memtable_list_pick(kv_memtable_list *list, kv_memtable ***picked, size_t *count)
{
    *picked = kv_malloc((list->count ? list->count : 1) * sizeof(kv_memtable *));
    *count = 0;
    for (size_t i = 0; i < list->count; i++) {
        if (list->flush_in_progress[i])
            continue;
        list->flush_in_progress[i] = true;
        kv_memtable_ref(list->mems[i]);
        (*picked)[(*count)++] = list->mems[i];
    }
}

static size_t index_of(const kv_memtable_list *list, const kv_memtable *mem)
{
    for (size_t i = 0; i < list->count; i++)
        if (list->mems[i] == mem)
            return i;
    assert(!"memtable not in the immutable list");
    return list->count;
}

void kv_memtable_list_rollback(kv_memtable_list *list, kv_memtable **picked, size_t count)
{
    for (size_t p = 0; p < count; p++) {
        size_t i = index_of(list, picked[p]);
        if (i < list->count)
            list->flush_in_progress[i] = false;
    }
}

void kv_memtable_list_remove(kv_memtable_list *list, kv_memtable **picked, size_t count)
{
    for (size_t p = 0; p < count; p++) {
        size_t i = index_of(list, picked[p]);
        if (i >= list->count)
            continue;
        /* Installation is in memtable order: the flushed ones are the oldest. */
        assert(i == 0);
        kv_memtable_unref(list->mems[i]);
        memmove(&list->mems[i], &list->mems[i + 1], (list->count - i - 1) * sizeof(kv_memtable *));
        memmove(&list->flush_in_progress[i], &list->flush_in_progress[i + 1],
                (list->count - i - 1) * sizeof(bool));
        list->count--;
    }
}

size_t kv_memtable_list_memory_usage(const kv_memtable_list *list)
{
    size_t total = 0;
    for (size_t i = 0; i < list->count; i++)
        total += kv_memtable_memory_usage(list->mems[i]);
    return total;
}
