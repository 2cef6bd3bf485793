/*
 * kv_dump.h — what the parts of kv_dump share: options, the printing of
 * keys and values, and the verdict of one file. kv_dump.c holds main and
 * the log-format files (WAL, MANIFEST) and CURRENT; kv_dump_table.c the
 * SST files.
 */
#ifndef KV_DUMP_H
#define KV_DUMP_H

#include "slice.h"

#include <stdbool.h>

typedef struct kv_dump_options {
    bool no_values; /* print keys only */
    bool hex;       /* keys and values in hex instead of escaped text */
} kv_dump_options;

/* Values longer than this are cut in the output (keys never are). */
#define KV_DUMP_MAX_VALUE 64

/* Appends s to dst as 'escaped text' (printable ASCII as is, the rest
 * \xNN) or, with --hex, as hex digits. */
void kv_dump_append_bytes(kv_buf *dst, kv_slice s, const kv_dump_options *options);
/* The same for a value: cut after KV_DUMP_MAX_VALUE bytes, noting the size. */
void kv_dump_append_value(kv_buf *dst, kv_slice value, const kv_dump_options *options);
/* 'user key' @ seq : TYPE (or the raw bytes when not an internal key). */
void kv_dump_append_ikey(kv_buf *dst, kv_slice ikey, const kv_dump_options *options);
void kv_dump_appendf(kv_buf *dst, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "blob NNNNNN.blob offset O (S bytes)" for a blob index. */
void kv_dump_append_blob_index(kv_buf *dst, kv_slice index);
/* Writes dst to stdout and clears it. */
void kv_dump_flush(kv_buf *dst);
/* Prints the thread's error message for `status` to stderr; returns it. */
int kv_dump_report(int status);

/* Prints the SST file at `path` (`name` is its base name). Returns 0 when
 * everything checked out, else a negative kv_status (the message has been
 * printed). */
int kv_dump_table(const char *path, const char *name, const kv_dump_options *options);

#endif
