/*
 * fuzz_version_edit.c — the VersionEdit codec (version_edit.c): the input
 * is one MANIFEST record. Decoding must fail cleanly or give an edit that
 * encodes to a canonical form which decodes to the same edit and encodes
 * to the same bytes again; the debug string (kv_dump, the LOG) must print
 * any decoded edit.
 */
#include "fuzz_checks.h"

#include "version_edit.h"

#include "kv.h"

#include <stdint.h>
#include <stdlib.h>

static bool same_file_meta(const kv_file_meta *a, const kv_file_meta *b)
{
    return a->number == b->number && a->file_size == b->file_size &&
           kv_slice_equal(kv_buf_slice(&a->smallest), kv_buf_slice(&b->smallest)) &&
           kv_slice_equal(kv_buf_slice(&a->largest), kv_buf_slice(&b->largest)) &&
           a->smallest_seq == b->smallest_seq && a->largest_seq == b->largest_seq &&
           a->num_entries == b->num_entries && a->num_deletions == b->num_deletions &&
           a->num_range_deletions == b->num_range_deletions;
}

/* Field-by-field equality of two edits (what encode writes). */
static void check_same_edit(const kv_version_edit *a, const kv_version_edit *b)
{
    FUZZ_CHECK(a->has_format_version == b->has_format_version &&
                   (!a->has_format_version || a->format_version == b->format_version),
               "format version");
    FUZZ_CHECK(a->column_family == b->column_family, "column family");
    FUZZ_CHECK(a->is_column_family_add == b->is_column_family_add, "column family add");
    if (a->is_column_family_add)
        FUZZ_CHECK(strcmp(a->column_family_name, b->column_family_name) == 0, "column family name");
    FUZZ_CHECK(a->is_column_family_drop == b->is_column_family_drop, "column family drop");
    FUZZ_CHECK(a->has_log_number == b->has_log_number &&
                   (!a->has_log_number || a->log_number == b->log_number),
               "log number");
    FUZZ_CHECK(a->has_next_file_number == b->has_next_file_number &&
                   (!a->has_next_file_number || a->next_file_number == b->next_file_number),
               "next file number");
    FUZZ_CHECK(a->has_last_sequence == b->has_last_sequence &&
                   (!a->has_last_sequence || a->last_sequence == b->last_sequence),
               "last sequence");
    FUZZ_CHECK(a->has_max_column_family == b->has_max_column_family &&
                   (!a->has_max_column_family || a->max_column_family == b->max_column_family),
               "max column family");
    FUZZ_CHECK(a->num_deleted == b->num_deleted, "deleted files %zu != %zu", a->num_deleted,
               b->num_deleted);
    for (size_t i = 0; i < a->num_deleted; i++)
        FUZZ_CHECK(a->deleted[i].level == b->deleted[i].level &&
                       a->deleted[i].number == b->deleted[i].number,
                   "deleted file %zu", i);
    FUZZ_CHECK(a->num_added == b->num_added, "new files %zu != %zu", a->num_added, b->num_added);
    for (size_t i = 0; i < a->num_added; i++)
        FUZZ_CHECK(a->added[i].level == b->added[i].level &&
                       same_file_meta(a->added[i].meta, b->added[i].meta),
                   "new file %zu", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kv_version_edit edit;
    kv_version_edit_init(&edit);
    int rc = kv_version_edit_decode(&edit, kv_slice_make(data, size), "MANIFEST-000003");
    FUZZ_CHECK(rc == 0 || rc == KV_CORRUPTION || rc == KV_NOT_SUPPORTED, "decode returned %d", rc);
    if (rc == 0) {
        kv_buf text = {0};
        kv_version_edit_debug_string(&edit, &text);
        kv_buf_free(&text);

        kv_buf encoded = {0};
        kv_version_edit_encode(&edit, &encoded);
        kv_version_edit decoded;
        kv_version_edit_init(&decoded);
        rc = kv_version_edit_decode(&decoded, kv_buf_slice(&encoded), "re-encoded");
        FUZZ_CHECK(rc == 0, "an encoded edit does not decode: %s", kv_errmsg());
        check_same_edit(&edit, &decoded);
        kv_buf encoded_again = {0};
        kv_version_edit_encode(&decoded, &encoded_again);
        FUZZ_CHECK(kv_slice_equal(kv_buf_slice(&encoded), kv_buf_slice(&encoded_again)),
                   "encoding is not canonical");
        kv_buf_free(&encoded_again);
        kv_buf_free(&encoded);
        kv_version_edit_free(&decoded);
    }
    kv_version_edit_free(&edit);
    return 0;
}
