/* level_iterator.c — lazy concatenation of a level's files (see header). */
#include "level_iterator.h"

#include <stdlib.h>

typedef struct level_iter {
    kv_iter base;
    kv_table_cache *tc;
    kv_file_meta *const *files;
    size_t count;
    size_t index; /* file under the cursor; count when invalid */
    kv_iter *file_iter;
    bool fill_cache;
    int status;
} level_iter;

size_t kv_find_file(kv_file_meta *const *files, size_t count, kv_slice ikey)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (kv_ikey_compare(kv_buf_slice(&files[mid]->largest), ikey) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void set_file(level_iter *it, size_t index)
{
    if (it->file_iter != NULL) {
        if (it->status == 0)
            it->status = kv_iter_status(it->file_iter);
        kv_iter_destroy(it->file_iter);
        it->file_iter = NULL;
    }
    it->index = index;
    if (index < it->count) {
        const kv_file_meta *f = it->files[index];
        it->file_iter = kv_table_cache_iter(it->tc, f->number, f->file_size, it->fill_cache);
    }
}

/* Moves on to later files while the current one is exhausted. */
static void skip_empty_forward(level_iter *it)
{
    while (it->file_iter == NULL || !kv_iter_valid(it->file_iter)) {
        if (it->file_iter != NULL && kv_iter_status(it->file_iter) != 0) {
            set_file(it, it->count); /* keep the error, stop */
            return;
        }
        if (it->index + 1 >= it->count) {
            set_file(it, it->count);
            return;
        }
        set_file(it, it->index + 1);
        kv_iter_seek_to_first(it->file_iter);
    }
}

static void skip_empty_backward(level_iter *it)
{
    while (it->file_iter == NULL || !kv_iter_valid(it->file_iter)) {
        if (it->file_iter != NULL && kv_iter_status(it->file_iter) != 0) {
            set_file(it, it->count);
            return;
        }
        if (it->index == 0 || it->index >= it->count) {
            set_file(it, it->count);
            return;
        }
        set_file(it, it->index - 1);
        kv_iter_seek_to_last(it->file_iter);
    }
}

static bool level_valid(kv_iter *base)
{
    level_iter *it = (level_iter *)base;
    return it->file_iter != NULL && kv_iter_valid(it->file_iter);
}

static void level_seek_to_first(kv_iter *base)
{
    level_iter *it = (level_iter *)base;
    set_file(it, 0);
    if (it->file_iter == NULL)
        return;
    kv_iter_seek_to_first(it->file_iter);
    skip_empty_forward(it);
}

static void level_seek_to_last(kv_iter *base)
{
    level_iter *it = (level_iter *)base;
    if (it->count == 0) {
        set_file(it, 0);
        return;
    }
    set_file(it, it->count - 1);
    kv_iter_seek_to_last(it->file_iter);
    skip_empty_backward(it);
}

static void level_seek(kv_iter *base, kv_slice target)
{
    level_iter *it = (level_iter *)base;
    size_t index = kv_find_file(it->files, it->count, target);
    set_file(it, index);
    if (it->file_iter == NULL)
        return;
    kv_iter_seek(it->file_iter, target);
    skip_empty_forward(it);
}

static void level_next(kv_iter *base)
{
    level_iter *it = (level_iter *)base;
    kv_iter_next(it->file_iter);
    skip_empty_forward(it);
}

static void level_prev(kv_iter *base)
{
    level_iter *it = (level_iter *)base;
    kv_iter_prev(it->file_iter);
    skip_empty_backward(it);
}

static kv_slice level_key(kv_iter *base)
{
    return kv_iter_key(((level_iter *)base)->file_iter);
}

static kv_slice level_value(kv_iter *base)
{
    return kv_iter_value(((level_iter *)base)->file_iter);
}

static int level_status(kv_iter *base)
{
    level_iter *it = (level_iter *)base;
    if (it->status != 0)
        return it->status;
    return it->file_iter ? kv_iter_status(it->file_iter) : 0;
}

static void level_destroy(kv_iter *base)
{
    level_iter *it = (level_iter *)base;
    kv_iter_destroy(it->file_iter);
    free(it);
}

static const struct kv_iter_ops level_iter_ops = {
    level_valid, level_seek_to_first, level_seek_to_last, level_seek,   level_next,
    level_prev,  level_key,           level_value,        level_status, level_destroy,
};

kv_iter *kv_level_iter_create(kv_table_cache *tc, kv_file_meta *const *files, size_t count,
                              bool fill_cache)
{
    level_iter *it = kv_calloc(1, sizeof(*it));
    it->base.ops = &level_iter_ops;
    it->tc = tc;
    it->files = files;
    it->count = count;
    it->index = count;
    it->fill_cache = fill_cache;
    return &it->base;
}
