/* slice.c — kv_slice comparison, kv_buf growth and aborting allocators. */
#include "slice.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void out_of_memory(size_t n)
{
    fprintf(stderr, "kv: out of memory allocating %zu bytes\n", n);
    abort();
}

void *kv_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        out_of_memory(n);
    return p;
}

void *kv_calloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (p == NULL)
        out_of_memory(n * m);
    return p;
}

void *kv_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        out_of_memory(n);
    return q;
}

char *kv_strdup(const char *s)
{
    return kv_memdup(s, strlen(s));
}

char *kv_memdup(const void *p, size_t n)
{
    char *q = kv_malloc(n + 1);
    if (n)
        memcpy(q, p, n);
    q[n] = '\0';
    return q;
}

char *kv_sprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    char *s = kv_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void kv_buf_reserve(kv_buf *buf, size_t cap)
{
    if (cap <= buf->cap)
        return;
    size_t new_cap = buf->cap ? buf->cap : 64;
    while (new_cap < cap)
        new_cap *= 2;
    buf->data = kv_realloc(buf->data, new_cap);
    buf->cap = new_cap;
}

void kv_buf_append_byte(kv_buf *buf, char byte)
{
    kv_buf_reserve(buf, buf->size + 1);
    buf->data[buf->size++] = byte;
}

void kv_buf_resize(kv_buf *buf, size_t size)
{
    kv_buf_reserve(buf, size);
    buf->size = size;
}

void kv_buf_free(kv_buf *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->size = buf->cap = 0;
}
