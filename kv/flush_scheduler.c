/*
 * flush_scheduler.c — a Treiber stack of column families to flush.
 *
 * Push is a compare-and-swap loop and may race with other pushes and with
 * a take. Take is a compare-and-swap too, but only one thread takes at a
 * time (callers hold the db mutex), so a node cannot be popped and pushed
 * back between our load of head and our CAS: no ABA.
 */
#include "flush_scheduler.h"

#include "slice.h"

#include <stdlib.h>

void kv_flush_scheduler_init(kv_flush_scheduler *fs)
{
    atomic_init(&fs->head, NULL);
}

void kv_flush_scheduler_clear(kv_flush_scheduler *fs)
{
    kv_flush_scheduler_node *node = atomic_exchange(&fs->head, NULL);
    while (node) {
        kv_flush_scheduler_node *next = node->next;
        free(node);
        node = next;
    }
}

void kv_flush_scheduler_schedule(kv_flush_scheduler *fs, struct kv_cf *cf)
{
    kv_flush_scheduler_node *node = kv_malloc(sizeof(*node));
    node->cf = cf;
    node->next = atomic_load_explicit(&fs->head, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&fs->head, &node->next, node,
                                                  memory_order_release, memory_order_relaxed)) {
        /* node->next now holds the current head; retry */
    }
}

struct kv_cf *kv_flush_scheduler_take_next(kv_flush_scheduler *fs)
{
    kv_flush_scheduler_node *node = atomic_load_explicit(&fs->head, memory_order_acquire);
    while (node != NULL &&
           !atomic_compare_exchange_weak_explicit(&fs->head, &node, node->next,
                                                  memory_order_acquire, memory_order_acquire)) {
        /* node now holds the current head; retry */
    }
    if (node == NULL)
        return NULL;
    struct kv_cf *cf = node->cf;
    free(node);
    return cf;
}

bool kv_flush_scheduler_empty(kv_flush_scheduler *fs)
{
    return atomic_load_explicit(&fs->head, memory_order_acquire) == NULL;
}
