/*
 * flush_scheduler.h — column families waiting for a FlushJob (RocksDB's
 * FlushScheduler): a lock-free stack. Writers push with compare-and-swap;
 * the background side takes them. Pushes may come from any thread; takes
 * must be serialized (the db mutex does it), which is what makes the
 * compare-and-swap pop free of the ABA problem.
 */
#ifndef KV_FLUSH_SCHEDULER_H
#define KV_FLUSH_SCHEDULER_H

#include <stdatomic.h>
#include <stdbool.h>

struct kv_cf;

typedef struct kv_flush_scheduler_node {
    struct kv_cf *cf;
    struct kv_flush_scheduler_node *next;
} kv_flush_scheduler_node;

typedef struct kv_flush_scheduler {
    _Atomic(kv_flush_scheduler_node *) head;
} kv_flush_scheduler;

void kv_flush_scheduler_init(kv_flush_scheduler *fs);
/* Frees remaining nodes (the families are not touched). */
void kv_flush_scheduler_clear(kv_flush_scheduler *fs);
void kv_flush_scheduler_schedule(kv_flush_scheduler *fs, struct kv_cf *cf);
/* The most recently scheduled family, or NULL. */
struct kv_cf *kv_flush_scheduler_take_next(kv_flush_scheduler *fs);
bool kv_flush_scheduler_empty(kv_flush_scheduler *fs);

#endif
