/*
 * error.h — the one error path of kv. A failing function records a message
 * for the calling thread and returns a negative kv_status:
 *
 *     return kv_error(KV_CORRUPTION, "%s: block checksum mismatch at offset %llu", ...);
 *
 * kv_errmsg() (public) returns the calling thread's latest message. Messages
 * name the file and offset when a file is involved.
 */
#ifndef KV_ERROR_H
#define KV_ERROR_H

#include "kv.h"

/* Records a printf-style message for this thread and returns `status`. */
int kv_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Maps an errno from a failed system call to a status (ENOSPC/EDQUOT ->
 * KV_NO_SPACE, others KV_IO_ERROR) and records "<what>: <path>: <strerror>". */
int kv_error_errno(int err, const char *what, const char *path);

/* Prefixes the thread's current message with "prefix: " (keeps the status). */
int kv_error_wrap(int status, const char *prefix);

/* Copies the thread's message into buf (for handing errors across threads). */
void kv_error_copy(char *buf, size_t buf_size);

#endif
