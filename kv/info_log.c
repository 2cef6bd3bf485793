/*
 * info_log.c — the human-readable LOG of a data directory (info_log.h).
 * Each call formats one complete line (local time with microseconds, then
 * the message) and hands it to the kernel in a single write(2) under a
 * mutex, so lines from concurrent threads never interleave and a crash
 * loses at most the line being written. Best effort: errors are ignored.
 */
#include "info_log.h"

#include "filename.h"
#include "slice.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct kv_info_log {
    int fd;
    pthread_mutex_t mu;
};

kv_info_log *kv_info_log_open(const char *dbpath)
{
    char *path = kv_info_log_file_name(dbpath);
    char *old_path = kv_old_info_log_file_name(dbpath);
    /* Keep one previous LOG for whoever investigates the last run. A
     * failure (no LOG yet) is expected and harmless. */
    rename(path, old_path);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND | O_CLOEXEC, 0644);
    free(path);
    free(old_path);
    if (fd < 0)
        return NULL;
    kv_info_log *log = kv_malloc(sizeof(*log));
    log->fd = fd;
    pthread_mutex_init(&log->mu, NULL);
    return log;
}

void kv_info_log_close(kv_info_log *log)
{
    if (log == NULL)
        return;
    close(log->fd);
    pthread_mutex_destroy(&log->mu);
    free(log);
}

/* Writes all of line, retrying short writes; gives up silently on error. */
static void write_line(int fd, const char *line, size_t n)
{
    while (n > 0) {
        ssize_t done = write(fd, line, n);
        if (done < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        line += done;
        n -= (size_t)done;
    }
}

void kv_info_log_printf(kv_info_log *log, const char *fmt, ...)
{
    if (log == NULL)
        return;
    struct timeval now;
    gettimeofday(&now, NULL);
    struct tm local;
    time_t seconds = now.tv_sec;
    localtime_r(&seconds, &local);

    /* Format into a stack buffer; long messages get a heap buffer of the
     * exact size instead of being cut. */
    char stack_line[512];
    char *line = stack_line;
    size_t cap = sizeof(stack_line);
    for (int attempt = 0; attempt < 2; attempt++) {
        int prefix = snprintf(line, cap, "%04d/%02d/%02d-%02d:%02d:%02d.%06ld ",
                              local.tm_year + 1900, local.tm_mon + 1, local.tm_mday, local.tm_hour,
                              local.tm_min, local.tm_sec, (long)now.tv_usec);
        va_list ap;
        va_start(ap, fmt);
        int body = vsnprintf(line + prefix, cap - (size_t)prefix, fmt, ap);
        va_end(ap);
        if (body < 0)
            break;
        size_t n = (size_t)prefix + (size_t)body;
        if (n + 2 <= cap) {
            if (n == (size_t)prefix || line[n - 1] != '\n')
                line[n++] = '\n';
            pthread_mutex_lock(&log->mu);
            write_line(log->fd, line, n);
            pthread_mutex_unlock(&log->mu);
            break;
        }
        cap = n + 2;
        line = kv_malloc(cap);
    }
    if (line != stack_line)
        free(line);
}
