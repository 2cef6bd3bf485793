/*
 * error.c — per-thread error messages (see error.h). The message buffer is
 * thread-local so concurrent callers never see each other's messages.
 */
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define KV_ERRMSG_SIZE 1024

static _Thread_local char thread_message[KV_ERRMSG_SIZE];

const char *kv_strerror(int status)
{
    switch (status) {
    case KV_OK:
        return "ok";
    case KV_NOT_FOUND:
        return "not found";
    case KV_CORRUPTION:
        return "corruption";
    case KV_IO_ERROR:
        return "I/O error";
    case KV_INVALID_ARGUMENT:
        return "invalid argument";
    case KV_NO_SPACE:
        return "no space left on device";
    case KV_BUSY:
        return "busy";
    case KV_EXISTS:
        return "already exists";
    case KV_NOT_SUPPORTED:
        return "not supported";
    case KV_SHUTDOWN:
        return "shutting down";
    default:
        return "unknown error";
    }
}

const char *kv_errmsg(void)
{
    return thread_message[0] ? thread_message : "no error";
}

int kv_error(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(thread_message, sizeof(thread_message), fmt, ap);
    va_end(ap);
    return status;
}

int kv_error_errno(int err, const char *what, const char *path)
{
    int status = (err == ENOSPC || err == EDQUOT) ? KV_NO_SPACE : KV_IO_ERROR;
    return kv_error(status, "%s: %s: %s", what, path ? path : "", strerror(err));
}

int kv_error_wrap(int status, const char *prefix)
{
    char old[KV_ERRMSG_SIZE];
    memcpy(old, thread_message, sizeof(old));
    return kv_error(status, "%s: %s", prefix, old);
}

void kv_error_copy(char *buf, size_t buf_size)
{
    if (buf_size == 0)
        return;
    snprintf(buf, buf_size, "%s", thread_message);
}
