/* coding.c — fixed, big-endian, varint and length-prefixed encodings. */
#include "coding.h"

void kv_encode_fixed32(char *dst, uint32_t value)
{
    unsigned char *p = (unsigned char *)dst;
    p[0] = (unsigned char)value;
    p[1] = (unsigned char)(value >> 8);
    p[2] = (unsigned char)(value >> 16);
    p[3] = (unsigned char)(value >> 24);
}

void kv_encode_fixed64(char *dst, uint64_t value)
{
    kv_encode_fixed32(dst, (uint32_t)value);
    kv_encode_fixed32(dst + 4, (uint32_t)(value >> 32));
}

void kv_encode_big_endian64(char *dst, uint64_t value)
{
    for (int i = 7; i >= 0; i--) {
        dst[i] = (char)(value & 0xff);
        value >>= 8;
    }
}

uint64_t kv_decode_big_endian64(const char *src)
{
    const unsigned char *p = (const unsigned char *)src;
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = (value << 8) | p[i];
    return value;
}

void kv_put_fixed32(kv_buf *dst, uint32_t value)
{
    char buf[4];
    kv_encode_fixed32(buf, value);
    kv_buf_append(dst, buf, sizeof(buf));
}

void kv_put_fixed64(kv_buf *dst, uint64_t value)
{
    char buf[8];
    kv_encode_fixed64(buf, value);
    kv_buf_append(dst, buf, sizeof(buf));
}

char *kv_encode_varint64(char *dst, uint64_t value)
{
    unsigned char *p = (unsigned char *)dst;
    while (value >= 0x80) {
        *p++ = (unsigned char)(value | 0x80);
        value >>= 7;
    }
    *p++ = (unsigned char)value;
    return (char *)p;
}

char *kv_encode_varint32(char *dst, uint32_t value)
{
    return kv_encode_varint64(dst, value);
}

void kv_put_varint32(kv_buf *dst, uint32_t value)
{
    char buf[KV_MAX_VARINT32_LENGTH];
    char *end = kv_encode_varint32(buf, value);
    kv_buf_append(dst, buf, (size_t)(end - buf));
}

void kv_put_varint64(kv_buf *dst, uint64_t value)
{
    char buf[KV_MAX_VARINT64_LENGTH];
    char *end = kv_encode_varint64(buf, value);
    kv_buf_append(dst, buf, (size_t)(end - buf));
}

void kv_put_length_prefixed(kv_buf *dst, kv_slice value)
{
    kv_put_varint32(dst, (uint32_t)value.size);
    kv_buf_append(dst, value.data, value.size);
}

int kv_varint_length(uint64_t value)
{
    int len = 1;
    while (value >= 0x80) {
        value >>= 7;
        len++;
    }
    return len;
}

const char *kv_decode_varint64(const char *p, const char *limit, uint64_t *value)
{
    uint64_t result = 0;
    for (unsigned shift = 0; shift <= 63 && p < limit; shift += 7) {
        uint64_t byte = *(const unsigned char *)p++;
        if (shift == 63 && byte > 1)
            return NULL; /* overflows 64 bits */
        result |= (byte & 0x7f) << shift;
        if ((byte & 0x80) == 0) {
            *value = result;
            return p;
        }
    }
    return NULL;
}

const char *kv_decode_varint32_slow(const char *p, const char *limit, uint32_t *value)
{
    uint32_t result = 0;
    for (unsigned shift = 0; shift <= 28 && p < limit; shift += 7) {
        uint32_t byte = *(const unsigned char *)p++;
        if (shift == 28 && byte > 0x0f)
            return NULL; /* overflows 32 bits */
        result |= (byte & 0x7f) << shift;
        if ((byte & 0x80) == 0) {
            *value = result;
            return p;
        }
    }
    return NULL;
}

bool kv_get_fixed32(kv_slice *input, uint32_t *value)
{
    if (input->size < 4)
        return false;
    *value = kv_decode_fixed32(input->data);
    kv_slice_remove_prefix(input, 4);
    return true;
}

bool kv_get_fixed64(kv_slice *input, uint64_t *value)
{
    if (input->size < 8)
        return false;
    *value = kv_decode_fixed64(input->data);
    kv_slice_remove_prefix(input, 8);
    return true;
}

bool kv_get_varint32(kv_slice *input, uint32_t *value)
{
    const char *limit = input->data + input->size;
    const char *q = kv_decode_varint32(input->data, limit, value);
    if (q == NULL)
        return false;
    *input = kv_slice_make(q, (size_t)(limit - q));
    return true;
}

bool kv_get_varint64(kv_slice *input, uint64_t *value)
{
    const char *limit = input->data + input->size;
    const char *q = kv_decode_varint64(input->data, limit, value);
    if (q == NULL)
        return false;
    *input = kv_slice_make(q, (size_t)(limit - q));
    return true;
}

bool kv_get_length_prefixed(kv_slice *input, kv_slice *value)
{
    uint32_t len;
    if (!kv_get_varint32(input, &len) || input->size < len)
        return false;
    *value = kv_slice_make(input->data, len);
    kv_slice_remove_prefix(input, len);
    return true;
}
