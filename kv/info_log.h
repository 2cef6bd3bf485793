/*
 * info_log.h — the LOG file: one timestamped line per event (open,
 * recovery, flush, compaction, errors) for people reading what the engine
 * did. Best effort: failures to write the LOG are ignored. Thread-safe.
 */
#ifndef KV_INFO_LOG_H
#define KV_INFO_LOG_H

typedef struct kv_info_log kv_info_log;

/* Opens dbpath/LOG for appending (the previous LOG becomes LOG.old).
 * Returns NULL if it cannot (the engine runs without a LOG). */
kv_info_log *kv_info_log_open(const char *dbpath);
void kv_info_log_close(kv_info_log *log);
/* "2026/11/25-09:01:02.123456 <message>\n"; log may be NULL. */
void kv_info_log_printf(kv_info_log *log, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
