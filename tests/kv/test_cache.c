/* test_cache.c — the sharded LRU cache: eviction order, pinning handles,
 * erase, deleters, capacity, and concurrent use. */
#include "testutil.h"

#include "cache.h"
#include "coding.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Values are integers cast to pointers; the deleter records them. */
#define MAX_DELETED 1024
static int deleted_keys[MAX_DELETED];
static intptr_t deleted_values[MAX_DELETED];
static int num_deleted;

static void record_deleter(kv_slice key, void *value)
{
    assert_int_equal(key.size, 4);
    if (num_deleted < MAX_DELETED) {
        deleted_keys[num_deleted] = (int)kv_decode_fixed32(key.data);
        deleted_values[num_deleted] = (intptr_t)value;
    }
    num_deleted++;
}

static kv_slice int_key(int k, char *buf)
{
    kv_encode_fixed32(buf, (uint32_t)k);
    return kv_slice_make(buf, 4);
}

/* The value cached for k, or -1. */
static intptr_t lookup(kv_cache *cache, int k)
{
    char buf[4];
    kv_cache_handle *h = kv_cache_lookup(cache, int_key(k, buf));
    if (h == NULL)
        return -1;
    intptr_t v = (intptr_t)kv_cache_value(h);
    kv_cache_release(cache, h);
    return v;
}

static void insert(kv_cache *cache, int k, intptr_t v, size_t charge)
{
    char buf[4];
    kv_cache_release(cache,
                     kv_cache_insert(cache, int_key(k, buf), (void *)v, charge, record_deleter));
}

static int setup(void **state)
{
    (void)state;
    num_deleted = 0;
    return 0;
}

static void test_hit_and_miss(void **state)
{
    (void)state;
    kv_cache *cache = kv_cache_create(1000, -1);
    assert_int_equal(lookup(cache, 100), -1);
    insert(cache, 100, 101, 1);
    assert_int_equal(lookup(cache, 100), 101);
    assert_int_equal(lookup(cache, 200), -1);
    assert_int_equal(lookup(cache, 300), -1);
    insert(cache, 200, 201, 1);
    assert_int_equal(lookup(cache, 100), 101);
    assert_int_equal(lookup(cache, 200), 201);
    assert_int_equal(kv_cache_hits(cache), 3);
    assert_int_equal(kv_cache_misses(cache), 3);

    /* Replacing a key deletes the old value. */
    insert(cache, 100, 102, 1);
    assert_int_equal(lookup(cache, 100), 102);
    assert_int_equal(num_deleted, 1);
    assert_int_equal(deleted_keys[0], 100);
    assert_int_equal(deleted_values[0], 101);
    assert_int_equal(kv_cache_total_charge(cache), 2);
    kv_cache_destroy(cache);
    assert_int_equal(num_deleted, 3);
}

static void test_lru_order(void **state)
{
    (void)state;
    kv_cache *cache = kv_cache_create(3, 0);
    insert(cache, 1, 10, 1);
    insert(cache, 2, 20, 1);
    insert(cache, 3, 30, 1);
    assert_int_equal(lookup(cache, 1), 10); /* 1 is now the newest */
    insert(cache, 4, 40, 1);                /* evicts 2, the oldest */
    assert_int_equal(num_deleted, 1);
    assert_int_equal(deleted_keys[0], 2);
    assert_int_equal(lookup(cache, 2), -1);
    assert_int_equal(lookup(cache, 3), 30);
    insert(cache, 5, 50, 1); /* evicts 1 (3 was just used) */
    assert_int_equal(deleted_keys[1], 1);
    assert_int_equal(lookup(cache, 1), -1);
    assert_int_equal(lookup(cache, 3), 30);
    assert_int_equal(lookup(cache, 4), 40);
    assert_int_equal(lookup(cache, 5), 50);
    /* A heavy entry pushes out several light ones. */
    insert(cache, 6, 60, 2);
    assert_int_equal(kv_cache_total_charge(cache), 3);
    assert_int_equal(lookup(cache, 3), -1);
    assert_int_equal(lookup(cache, 4), -1);
    assert_int_equal(lookup(cache, 5), 50);
    assert_int_equal(lookup(cache, 6), 60);
    kv_cache_destroy(cache);
    assert_int_equal(num_deleted, 6);
}

static void test_handles_pin_entries(void **state)
{
    (void)state;
    kv_cache *cache = kv_cache_create(2, 0);
    char buf[4];
    kv_cache_handle *pinned =
        kv_cache_insert(cache, int_key(1, buf), (void *)10, 1, record_deleter);
    for (int k = 2; k < 20; k++)
        insert(cache, k, k * 10, 1);
    /* 1 survived every eviction; it is still findable and usable. */
    assert_int_equal((intptr_t)kv_cache_value(pinned), 10);
    assert_int_equal(lookup(cache, 1), 10);
    assert_int_equal(num_deleted, 17);
    /* Usage may exceed capacity while entries are held. */
    kv_cache_handle *held[5];
    for (int k = 0; k < 5; k++)
        held[k] =
            kv_cache_insert(cache, int_key(100 + k, buf), (void *)(intptr_t)k, 1, record_deleter);
    assert_int_equal(kv_cache_total_charge(cache), 6);
    for (int k = 0; k < 5; k++)
        kv_cache_release(cache, held[k]);
    kv_cache_release(cache, pinned);
    insert(cache, 200, 2000, 1); /* now the cache shrinks back */
    assert_int_equal(kv_cache_total_charge(cache), 2);
    kv_cache_destroy(cache);
    assert_int_equal(num_deleted, 25);
}

static void test_erase(void **state)
{
    (void)state;
    kv_cache *cache = kv_cache_create(100, 2);
    kv_cache_erase(cache, kv_slice_from_str("none")); /* no-op */
    insert(cache, 1, 10, 1);
    insert(cache, 2, 20, 1);
    char buf[4];
    kv_cache_erase(cache, int_key(1, buf));
    assert_int_equal(num_deleted, 1);
    assert_int_equal(deleted_values[0], 10);
    assert_int_equal(lookup(cache, 1), -1);
    assert_int_equal(lookup(cache, 2), 20);

    /* Erasing a held entry: gone from the cache at once, deleted at release. */
    kv_cache_handle *h = kv_cache_lookup(cache, int_key(2, buf));
    kv_cache_erase(cache, int_key(2, buf));
    assert_int_equal(lookup(cache, 2), -1);
    assert_int_equal(num_deleted, 1);
    assert_int_equal((intptr_t)kv_cache_value(h), 20);
    kv_cache_release(cache, h);
    assert_int_equal(num_deleted, 2);
    assert_int_equal(kv_cache_total_charge(cache), 0);

    /* Replaced while held: the old value lives until released. */
    h = kv_cache_insert(cache, int_key(3, buf), (void *)30, 1, record_deleter);
    insert(cache, 3, 31, 1);
    assert_int_equal(num_deleted, 2);
    assert_int_equal(lookup(cache, 3), 31);
    kv_cache_release(cache, h);
    assert_int_equal(num_deleted, 3);
    assert_int_equal(deleted_values[2], 30);
    kv_cache_destroy(cache);
    assert_int_equal(num_deleted, 4);
}

static void test_prune_and_zero_capacity(void **state)
{
    (void)state;
    kv_cache *cache = kv_cache_create(1000, -1);
    for (int k = 0; k < 50; k++)
        insert(cache, k, k, 1);
    char buf[4];
    kv_cache_handle *h = kv_cache_lookup(cache, int_key(7, buf));
    kv_cache_prune(cache);
    assert_int_equal(num_deleted, 49);
    assert_int_equal(kv_cache_total_charge(cache), 1);
    kv_cache_release(cache, h);
    kv_cache_destroy(cache);
    assert_int_equal(num_deleted, 50);

    num_deleted = 0;
    cache = kv_cache_create(0, 0);
    h = kv_cache_insert(cache, int_key(1, buf), (void *)1, 1, record_deleter);
    assert_int_equal((intptr_t)kv_cache_value(h), 1);
    assert_int_equal(lookup(cache, 1), -1); /* nothing is kept */
    kv_cache_release(cache, h);
    assert_int_equal(num_deleted, 1);
    kv_cache_destroy(cache);
}

static void test_capacity_bound(void **state)
{
    (void)state;
    kv_cache *cache = kv_cache_create(1000, 4);
    for (int k = 0; k < 20000; k++) {
        insert(cache, k, k, 10);
        assert_true(kv_cache_total_charge(cache) <= 1000 + 16 * 10);
    }
    /* Recent keys are mostly present; old ones gone. */
    int recent = 0;
    for (int k = 19990; k < 20000; k++)
        recent += lookup(cache, k) == k;
    assert_true(recent >= 8);
    assert_int_equal(lookup(cache, 0), -1);
    assert_true(kv_cache_total_charge(cache) >= 500);
    kv_cache_destroy(cache);
    assert_int_equal(num_deleted, 20000);
}

static void test_new_id(void **state)
{
    (void)state;
    kv_cache *cache = kv_cache_create(10, 0);
    uint64_t a = kv_cache_new_id(cache), b = kv_cache_new_id(cache);
    assert_int_not_equal(a, b);
    assert_int_not_equal(a, 0);
    kv_cache_destroy(cache);
}

/* ---- concurrency ---- */

typedef struct thread_value {
    uint32_t key;
    atomic_int *live;
} thread_value;

static atomic_int live_values;

static void thread_deleter(kv_slice key, void *value)
{
    thread_value *v = value;
    if (kv_decode_fixed32(key.data) != v->key) /* cmocka asserts are not thread-safe */
        abort();
    atomic_fetch_sub(v->live, 1);
    free(v);
}

typedef struct thread_args {
    kv_cache *cache;
    uint64_t seed;
} thread_args;

static void *cache_worker(void *arg)
{
    thread_args *a = arg;
    kv_test_rng rng;
    kv_test_rng_init(&rng, a->seed);
    kv_cache_handle *held[8] = {0};
    char buf[4];
    for (int i = 0; i < 100000; i++) {
        uint32_t k = (uint32_t)kv_test_rng_uniform(&rng, 500);
        kv_slice key = int_key((int)k, buf);
        int slot = (int)kv_test_rng_uniform(&rng, 8);
        if (held[slot]) {
            thread_value *v = kv_cache_value(held[slot]);
            if (v->key > 500) /* never true; reads the value under ASan/TSan */
                abort();
            kv_cache_release(a->cache, held[slot]);
            held[slot] = NULL;
        }
        uint64_t op = kv_test_rng_uniform(&rng, 10);
        if (op < 6) {
            kv_cache_handle *h = kv_cache_lookup(a->cache, key);
            if (h) {
                thread_value *v = kv_cache_value(h);
                if (v->key != k)
                    abort();
                held[slot] = h;
            }
        } else if (op < 9) {
            thread_value *v = malloc(sizeof(*v));
            v->key = k;
            v->live = &live_values;
            atomic_fetch_add(&live_values, 1);
            held[slot] = kv_cache_insert(a->cache, key, v, 1 + k % 3, thread_deleter);
        } else {
            kv_cache_erase(a->cache, key);
        }
    }
    for (int s = 0; s < 8; s++)
        if (held[s])
            kv_cache_release(a->cache, held[s]);
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    atomic_init(&live_values, 0);
    kv_cache *cache = kv_cache_create(200, 2);
    pthread_t threads[4];
    thread_args args[4];
    for (int t = 0; t < 4; t++) {
        args[t].cache = cache;
        args[t].seed = kv_test_seed(100) + (uint64_t)t;
        assert_int_equal(pthread_create(&threads[t], NULL, cache_worker, &args[t]), 0);
    }
    for (int t = 0; t < 4; t++)
        pthread_join(threads[t], NULL);
    assert_true(kv_cache_total_charge(cache) <= 200 + 4 * 3);
    assert_true(kv_cache_hits(cache) > 0 && kv_cache_misses(cache) > 0);
    assert_int_equal(kv_cache_hits(cache) + kv_cache_misses(cache) >= 4 * 50000, 1);
    kv_cache_destroy(cache);
    assert_int_equal(atomic_load(&live_values), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_hit_and_miss, setup),
        cmocka_unit_test_setup(test_lru_order, setup),
        cmocka_unit_test_setup(test_handles_pin_entries, setup),
        cmocka_unit_test_setup(test_erase, setup),
        cmocka_unit_test_setup(test_prune_and_zero_capacity, setup),
        cmocka_unit_test_setup(test_capacity_bound, setup),
        cmocka_unit_test_setup(test_new_id, setup),
        cmocka_unit_test_setup(test_concurrent, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
