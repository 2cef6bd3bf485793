/*
 * slice.h — byte strings that do not own their memory (kv_slice) and a
 * growable owned buffer (kv_buf), plus allocation helpers that abort on
 * out-of-memory (an engine cannot make progress without memory; LevelDB and
 * RocksDB behave the same way).
 */
#ifndef KV_SLICE_H
#define KV_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct kv_slice {
    const char *data;
    size_t size;
} kv_slice;

static inline kv_slice kv_slice_make(const void *data, size_t size)
{
    kv_slice s = {(const char *)data, size};
    return s;
}

static inline kv_slice kv_slice_from_str(const char *str)
{
    return kv_slice_make(str, strlen(str));
}

/* Bytewise three-way comparison; a shorter prefix sorts first. */
static inline int kv_slice_compare(kv_slice a, kv_slice b)
{
    size_t n = a.size < b.size ? a.size : b.size;
    int r = n ? memcmp(a.data, b.data, n) : 0;
    if (r != 0)
        return r;
    return a.size < b.size ? -1 : (a.size > b.size ? 1 : 0);
}

static inline bool kv_slice_equal(kv_slice a, kv_slice b)
{
    return a.size == b.size && (a.size == 0 || memcmp(a.data, b.data, a.size) == 0);
}

static inline void kv_slice_remove_prefix(kv_slice *s, size_t n)
{
    s->data += n;
    s->size -= n;
}

/* An owned, growable byte buffer. A zero-initialized kv_buf is empty and
 * valid. */
typedef struct kv_buf {
    char *data;
    size_t size;
    size_t cap;
} kv_buf;

void kv_buf_reserve(kv_buf *buf, size_t cap);
static inline void kv_buf_append(kv_buf *buf, const void *data, size_t n)
{
    if (n == 0)
        return;
    if (buf->size + n > buf->cap)
        kv_buf_reserve(buf, buf->size + n);
    memcpy(buf->data + buf->size, data, n);
    buf->size += n;
}
void kv_buf_append_byte(kv_buf *buf, char byte);
/* Replaces the contents. */
static inline void kv_buf_set(kv_buf *buf, const void *data, size_t n)
{
    buf->size = 0;
    kv_buf_append(buf, data, n);
}
void kv_buf_resize(kv_buf *buf, size_t size); /* new bytes undefined */
static inline void kv_buf_clear(kv_buf *buf)
{
    buf->size = 0;
}
void kv_buf_free(kv_buf *buf);
static inline kv_slice kv_buf_slice(const kv_buf *buf)
{
    return kv_slice_make(buf->data, buf->size);
}

void *kv_malloc(size_t n);                /* aborts on failure */
void *kv_calloc(size_t n, size_t m);      /* aborts on failure */
void *kv_realloc(void *p, size_t n);      /* aborts on failure */
char *kv_strdup(const char *s);           /* aborts on failure */
char *kv_memdup(const void *p, size_t n); /* copy, plus a NUL after n bytes */
char *kv_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* malloc'd */

#endif
