/* fuzz_checks.c — invariant checks shared by the fuzz targets (fuzz_checks.h). */
#include "fuzz_checks.h"

/* The answer max_covering must give, by a linear scan of the fragments. */
static kv_seq linear_max_covering(const kv_frag_tombstones *list, kv_slice user_key,
                                  kv_seq snapshot)
{
    for (size_t i = 0; i < kv_frag_tombstones_count(list); i++) {
        const kv_tombstone_fragment *f = kv_frag_tombstones_get(list, i);
        if (kv_slice_compare(f->begin, user_key) > 0 || kv_slice_compare(user_key, f->end) >= 0)
            continue;
        for (size_t j = 0; j < f->num_seqs; j++)
            if (f->seqs[j] <= snapshot)
                return f->seqs[j];
        return 0;
    }
    return 0;
}

void fuzz_check_tombstones(const kv_frag_tombstones *list)
{
    size_t count = kv_frag_tombstones_count(list);
    for (size_t i = 0; i < count; i++) {
        const kv_tombstone_fragment *f = kv_frag_tombstones_get(list, i);
        FUZZ_CHECK(kv_slice_compare(f->begin, f->end) < 0, "fragment %zu is empty", i);
        FUZZ_CHECK(f->num_seqs > 0, "fragment %zu has no sequence", i);
        for (size_t j = 1; j < f->num_seqs; j++)
            FUZZ_CHECK(f->seqs[j - 1] > f->seqs[j], "fragment %zu: sequences not descending", i);
        if (i > 0) {
            const kv_tombstone_fragment *previous = kv_frag_tombstones_get(list, i - 1);
            FUZZ_CHECK(kv_slice_compare(previous->end, f->begin) <= 0,
                       "fragments %zu and %zu overlap or are out of order", i - 1, i);
        }
    }
    /* Only the first few fragments: the scan is linear. */
    for (size_t i = 0; i < count && i < 64; i++) {
        const kv_tombstone_fragment *f = kv_frag_tombstones_get(list, i);
        kv_seq snapshots[3] = {KV_MAX_SEQUENCE, f->seqs[0], f->seqs[f->num_seqs - 1] - 1};
        kv_slice probes[2] = {f->begin, f->end};
        for (int p = 0; p < 2; p++)
            for (int s = 0; s < 3; s++)
                FUZZ_CHECK(kv_frag_tombstones_max_covering(list, probes[p], snapshots[s]) ==
                               linear_max_covering(list, probes[p], snapshots[s]),
                           "max_covering disagrees with a linear scan at fragment %zu", i);
    }
}
