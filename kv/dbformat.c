/*
 * dbformat.c — internal keys: user_key || fixed64_le(sequence << 8 | type),
 * ordered by user key ascending, then by the packed trailer descending
 * (newest first).
 */
#include "dbformat.h"

#include "coding.h"

#include <assert.h>

void kv_ikey_append(kv_buf *dst, kv_slice user_key, kv_seq seq, int type)
{
    assert(seq <= KV_MAX_SEQUENCE);
    kv_buf_append(dst, user_key.data, user_key.size);
    kv_put_fixed64(dst, kv_pack_seq_type(seq, type));
}

static bool is_known_type(int type)
{
    return type == KV_TYPE_DELETION || type == KV_TYPE_VALUE || type == KV_TYPE_BLOB_INDEX ||
           type == KV_TYPE_RANGE_DELETION;
}

bool kv_ikey_parse(kv_slice ikey, kv_slice *user_key, kv_seq *seq, int *type)
{
    if (ikey.size < 8)
        return false;
    uint64_t packed = kv_decode_fixed64(ikey.data + ikey.size - 8);
    int parsed_type = (int)(packed & 0xff);
    if (!is_known_type(parsed_type))
        return false;
    if (user_key != NULL)
        *user_key = kv_ikey_user_key(ikey);
    if (seq != NULL)
        *seq = packed >> 8;
    if (type != NULL)
        *type = parsed_type;
    return true;
}

const char *kv_value_type_name(int type)
{
    switch (type) {
    case KV_TYPE_DELETION:
        return "DELETION";
    case KV_TYPE_VALUE:
        return "VALUE";
    case KV_TYPE_BLOB_INDEX:
        return "BLOB_INDEX";
    case KV_TYPE_RANGE_DELETION:
        return "RANGE_DELETION";
    default:
        return NULL;
    }
}

size_t kv_snapshot_stripe(const kv_seq *snapshots, size_t n, kv_seq seq)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (snapshots[mid] >= seq)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}
