/*
 * coding.h — integer encodings used by every on-disk format (see FORMAT.md):
 * fixed-width little-endian, varint (LEB128 as in LevelDB), big-endian for
 * keys that must sort numerically, and length-prefixed byte strings.
 */
#ifndef KV_CODING_H
#define KV_CODING_H

#include "slice.h"

#define KV_MAX_VARINT32_LENGTH 5
#define KV_MAX_VARINT64_LENGTH 10

void kv_encode_fixed32(char *dst, uint32_t value);
void kv_encode_fixed64(char *dst, uint64_t value);
/* Inline: the key comparisons and block parsing of every read call them.
 * Byte assembly compiles to one load on little-endian machines. */
static inline uint32_t kv_decode_fixed32(const char *src)
{
    const unsigned char *p = (const unsigned char *)src;
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t kv_decode_fixed64(const char *src)
{
    return (uint64_t)kv_decode_fixed32(src) | ((uint64_t)kv_decode_fixed32(src + 4) << 32);
}
void kv_encode_big_endian64(char *dst, uint64_t value);
uint64_t kv_decode_big_endian64(const char *src);

void kv_put_fixed32(kv_buf *dst, uint32_t value);
void kv_put_fixed64(kv_buf *dst, uint64_t value);
void kv_put_varint32(kv_buf *dst, uint32_t value);
void kv_put_varint64(kv_buf *dst, uint64_t value);
void kv_put_length_prefixed(kv_buf *dst, kv_slice value); /* varint32 length + bytes */

/* Writes a varint at dst (which has room for KV_MAX_VARINT64_LENGTH); returns
 * the byte past it. */
char *kv_encode_varint32(char *dst, uint32_t value);
char *kv_encode_varint64(char *dst, uint64_t value);
int kv_varint_length(uint64_t value);

/* Decoders consume from *input and return false on truncated/overlong input
 * (leaving *input unspecified). */
bool kv_get_fixed32(kv_slice *input, uint32_t *value);
bool kv_get_fixed64(kv_slice *input, uint64_t *value);
bool kv_get_varint32(kv_slice *input, uint32_t *value);
bool kv_get_varint64(kv_slice *input, uint64_t *value);
bool kv_get_length_prefixed(kv_slice *input, kv_slice *value);

/* Raw pointer decoders: parse a varint in [p, limit); NULL on error.
 * kv_decode_varint32 handles the one-byte case inline (lengths in entries
 * and blocks are almost always below 128) and calls the general decoder
 * for the rest. */
const char *kv_decode_varint32_slow(const char *p, const char *limit, uint32_t *value);
static inline const char *kv_decode_varint32(const char *p, const char *limit, uint32_t *value)
{
    if (p < limit && (*(const unsigned char *)p & 0x80) == 0) {
        *value = *(const unsigned char *)p;
        return p + 1;
    }
    return kv_decode_varint32_slow(p, limit, value);
}
const char *kv_decode_varint64(const char *p, const char *limit, uint64_t *value);

#endif
