/*
 * bloom.h — the per-file bloom filter over user keys (a full filter as in
 * RocksDB's block-based table: one filter for the whole SST).
 *
 * Filter layout: bit array || 1 byte k (number of probes). Probes use
 * double hashing of a 32-bit hash of the key (LevelDB's scheme).
 */
#ifndef KV_BLOOM_H
#define KV_BLOOM_H

#include "slice.h"

uint32_t kv_bloom_hash(kv_slice key);

/* Appends a filter for the n key hashes at `bits_per_key` to out. */
void kv_bloom_build(int bits_per_key, const uint32_t *hashes, size_t n, kv_buf *out);

/* False only if the key was certainly not added. A malformed filter
 * answers true (never hides data). */
bool kv_bloom_may_match(kv_slice filter, kv_slice key);

#endif
