/*
 * cache.c — sharded LRU cache (contract in cache.h). Each shard has a
 * mutex, a chained hash table and two circular lists:
 *
 *   lru     entries in the cache that no client holds; eviction order,
 *           oldest first (the list head's next);
 *   in_use  entries in the cache that some client holds.
 *
 * An entry's refs count the clients' handles plus one while it is in the
 * cache. Entries erased or replaced while held live on in no list until
 * their last handle is released. Deleters run outside the shard mutex, so
 * a deleter may take its own locks (closing a table, for instance).
 */
#include "cache.h"

#include "bloom.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct kv_cache_handle {
    void *value;
    kv_cache_deleter_fn deleter;
    struct kv_cache_handle *next_hash;
    struct kv_cache_handle *next, *prev;
    size_t charge;
    uint32_t hash;
    uint32_t refs;
    bool in_cache;
    size_t key_size;
    char key[];
};

typedef struct cache_shard {
    pthread_mutex_t mutex;
    size_t capacity;
    size_t usage; /* charge of the entries in the cache */
    /* Dummy heads, allocated apart: a struct with a flexible array member
     * cannot be a member of another in ISO C. */
    kv_cache_handle *lru;
    kv_cache_handle *in_use;
    kv_cache_handle **buckets;
    size_t num_buckets; /* a power of two */
    size_t num_entries;
} cache_shard;

struct kv_cache {
    int shard_bits;
    cache_shard *shards;
    atomic_uint_fast64_t next_id;
    atomic_uint_fast64_t hits, misses;
};

static void list_remove(kv_cache_handle *e)
{
    e->next->prev = e->prev;
    e->prev->next = e->next;
    e->next = e->prev = NULL;
}

/* Appends e as the newest entry of the list headed by `head`. */
static void list_append(kv_cache_handle *head, kv_cache_handle *e)
{
    e->next = head;
    e->prev = head->prev;
    e->prev->next = e;
    e->next->prev = e;
}

static kv_slice entry_key(const kv_cache_handle *e)
{
    return kv_slice_make(e->key, e->key_size);
}

static void entry_free(kv_cache_handle *e)
{
    if (e->deleter)
        e->deleter(entry_key(e), e->value);
    free(e);
}

/* Entries whose last reference dropped under the mutex; freed after it. */
typedef struct free_list {
    kv_cache_handle *head; /* linked through next_hash */
} free_list;

static void free_list_run(free_list *list)
{
    kv_cache_handle *e = list->head;
    while (e) {
        kv_cache_handle *next = e->next_hash;
        entry_free(e);
        e = next;
    }
    list->head = NULL;
}

/* ---- hash table ---- */

static kv_cache_handle **table_find(cache_shard *shard, kv_slice key, uint32_t hash)
{
    kv_cache_handle **slot = &shard->buckets[hash & (shard->num_buckets - 1)];
    while (*slot && ((*slot)->hash != hash || !kv_slice_equal(entry_key(*slot), key)))
        slot = &(*slot)->next_hash;
    return slot;
}

static void table_grow(cache_shard *shard)
{
    size_t new_count = shard->num_buckets * 2;
    kv_cache_handle **buckets = kv_calloc(new_count, sizeof(*buckets));
    for (size_t i = 0; i < shard->num_buckets; i++) {
        kv_cache_handle *e = shard->buckets[i];
        while (e) {
            kv_cache_handle *next = e->next_hash;
            kv_cache_handle **slot = &buckets[e->hash & (new_count - 1)];
            e->next_hash = *slot;
            *slot = e;
            e = next;
        }
    }
    free(shard->buckets);
    shard->buckets = buckets;
    shard->num_buckets = new_count;
}

/* Inserts e, returning the entry it replaces (unlinked) or NULL. */
static kv_cache_handle *table_insert(cache_shard *shard, kv_cache_handle *e)
{
    kv_cache_handle **slot = table_find(shard, entry_key(e), e->hash);
    kv_cache_handle *old = *slot;
    e->next_hash = old ? old->next_hash : NULL;
    *slot = e;
    if (old == NULL && ++shard->num_entries > shard->num_buckets)
        table_grow(shard);
    return old;
}

static kv_cache_handle *table_remove(cache_shard *shard, kv_slice key, uint32_t hash)
{
    kv_cache_handle **slot = table_find(shard, key, hash);
    kv_cache_handle *e = *slot;
    if (e) {
        *slot = e->next_hash;
        e->next_hash = NULL;
        shard->num_entries--;
    }
    return e;
}

/* ---- reference counting (shard mutex held) ---- */

static void entry_ref(cache_shard *shard, kv_cache_handle *e)
{
    if (e->refs == 1 && e->in_cache) { /* leaving the lru list */
        list_remove(e);
        list_append(shard->in_use, e);
    }
    e->refs++;
}

static void entry_unref(cache_shard *shard, kv_cache_handle *e, free_list *dead)
{
    assert(e->refs > 0);
    e->refs--;
    if (e->refs == 0) {
        assert(!e->in_cache);
        e->next_hash = dead->head;
        dead->head = e;
    } else if (e->in_cache && e->refs == 1) { /* no client left: evictable */
        list_remove(e);
        list_append(shard->lru, e);
    }
}

/* Takes e (already unlinked from the hash table) out of the cache. */
static void entry_finish_erase(cache_shard *shard, kv_cache_handle *e, free_list *dead)
{
    assert(e->in_cache);
    list_remove(e);
    e->in_cache = false;
    shard->usage -= e->charge;
    entry_unref(shard, e, dead);
}

static void shard_evict_to_capacity(cache_shard *shard, free_list *dead)
{
    while (shard->usage > shard->capacity && shard->lru->next != shard->lru) {
        kv_cache_handle *oldest = shard->lru->next;
        assert(oldest->refs == 1);
        kv_cache_handle *removed = table_remove(shard, entry_key(oldest), oldest->hash);
        assert(removed == oldest);
        (void)removed;
        entry_finish_erase(shard, oldest, dead);
    }
}

/* ---- the sharded cache ---- */

static uint32_t cache_hash(kv_slice key)
{
    return kv_bloom_hash(key);
}

static cache_shard *cache_shard_for(kv_cache *cache, uint32_t hash)
{
    return &cache->shards[cache->shard_bits ? hash >> (32 - cache->shard_bits) : 0];
}

kv_cache *kv_cache_create(size_t capacity, int num_shard_bits)
{
    if (num_shard_bits < 0)
        num_shard_bits = 4;
    assert(num_shard_bits <= 16);
    kv_cache *cache = kv_calloc(1, sizeof(*cache));
    cache->shard_bits = num_shard_bits;
    size_t num_shards = (size_t)1 << num_shard_bits;
    cache->shards = kv_calloc(num_shards, sizeof(*cache->shards));
    size_t per_shard = (capacity + num_shards - 1) / num_shards;
    for (size_t i = 0; i < num_shards; i++) {
        cache_shard *shard = &cache->shards[i];
        pthread_mutex_init(&shard->mutex, NULL);
        shard->capacity = per_shard;
        shard->lru = kv_calloc(1, sizeof(*shard->lru));
        shard->in_use = kv_calloc(1, sizeof(*shard->in_use));
        shard->lru->next = shard->lru->prev = shard->lru;
        shard->in_use->next = shard->in_use->prev = shard->in_use;
        shard->num_buckets = 16;
        shard->buckets = kv_calloc(shard->num_buckets, sizeof(*shard->buckets));
    }
    atomic_init(&cache->next_id, 1);
    atomic_init(&cache->hits, 0);
    atomic_init(&cache->misses, 0);
    return cache;
}

void kv_cache_destroy(kv_cache *cache)
{
    if (cache == NULL)
        return;
    size_t num_shards = (size_t)1 << cache->shard_bits;
    for (size_t i = 0; i < num_shards; i++) {
        cache_shard *shard = &cache->shards[i];
        assert(shard->in_use->next == shard->in_use); /* no handles held */
        free_list dead = {NULL};
        while (shard->lru->next != shard->lru) {
            kv_cache_handle *e = shard->lru->next;
            table_remove(shard, entry_key(e), e->hash);
            entry_finish_erase(shard, e, &dead);
        }
        free_list_run(&dead);
        free(shard->buckets);
        free(shard->lru);
        free(shard->in_use);
        pthread_mutex_destroy(&shard->mutex);
    }
    free(cache->shards);
    free(cache);
}

kv_cache_handle *kv_cache_insert(kv_cache *cache, kv_slice key, void *value, size_t charge,
                                 kv_cache_deleter_fn deleter)
{
    uint32_t hash = cache_hash(key);
    cache_shard *shard = cache_shard_for(cache, hash);
    kv_cache_handle *e = kv_malloc(sizeof(*e) + key.size);
    e->value = value;
    e->deleter = deleter;
    e->next_hash = e->next = e->prev = NULL;
    e->charge = charge;
    e->hash = hash;
    e->refs = 1; /* the returned handle */
    e->in_cache = false;
    e->key_size = key.size;
    if (key.size)
        memcpy(e->key, key.data, key.size);

    free_list dead = {NULL};
    pthread_mutex_lock(&shard->mutex);
    /* A zero-capacity cache caches nothing: the entry lives while held. */
    if (shard->capacity > 0) {
        e->refs++;
        e->in_cache = true;
        list_append(shard->in_use, e);
        shard->usage += charge;
        kv_cache_handle *old = table_insert(shard, e);
        if (old)
            entry_finish_erase(shard, old, &dead);
        shard_evict_to_capacity(shard, &dead);
    }
    pthread_mutex_unlock(&shard->mutex);
    free_list_run(&dead);
    return e;
}

kv_cache_handle *kv_cache_lookup(kv_cache *cache, kv_slice key)
{
    uint32_t hash = cache_hash(key);
    cache_shard *shard = cache_shard_for(cache, hash);
    pthread_mutex_lock(&shard->mutex);
    kv_cache_handle *e = *table_find(shard, key, hash);
    if (e)
        entry_ref(shard, e);
    pthread_mutex_unlock(&shard->mutex);
    atomic_fetch_add_explicit(e ? &cache->hits : &cache->misses, 1, memory_order_relaxed);
    return e;
}

void kv_cache_release(kv_cache *cache, kv_cache_handle *handle)
{
    cache_shard *shard = cache_shard_for(cache, handle->hash);
    free_list dead = {NULL};
    pthread_mutex_lock(&shard->mutex);
    entry_unref(shard, handle, &dead);
    pthread_mutex_unlock(&shard->mutex);
    free_list_run(&dead);
}

void *kv_cache_value(kv_cache_handle *handle)
{
    return handle->value;
}

void kv_cache_erase(kv_cache *cache, kv_slice key)
{
    uint32_t hash = cache_hash(key);
    cache_shard *shard = cache_shard_for(cache, hash);
    free_list dead = {NULL};
    pthread_mutex_lock(&shard->mutex);
    kv_cache_handle *e = table_remove(shard, key, hash);
    if (e)
        entry_finish_erase(shard, e, &dead);
    pthread_mutex_unlock(&shard->mutex);
    free_list_run(&dead);
}

void kv_cache_prune(kv_cache *cache)
{
    size_t num_shards = (size_t)1 << cache->shard_bits;
    for (size_t i = 0; i < num_shards; i++) {
        cache_shard *shard = &cache->shards[i];
        free_list dead = {NULL};
        pthread_mutex_lock(&shard->mutex);
        while (shard->lru->next != shard->lru) {
            kv_cache_handle *e = shard->lru->next;
            table_remove(shard, entry_key(e), e->hash);
            entry_finish_erase(shard, e, &dead);
        }
        pthread_mutex_unlock(&shard->mutex);
        free_list_run(&dead);
    }
}

uint64_t kv_cache_new_id(kv_cache *cache)
{
    return atomic_fetch_add_explicit(&cache->next_id, 1, memory_order_relaxed);
}

size_t kv_cache_total_charge(kv_cache *cache)
{
    size_t total = 0;
    size_t num_shards = (size_t)1 << cache->shard_bits;
    for (size_t i = 0; i < num_shards; i++) {
        pthread_mutex_lock(&cache->shards[i].mutex);
        total += cache->shards[i].usage;
        pthread_mutex_unlock(&cache->shards[i].mutex);
    }
    return total;
}

uint64_t kv_cache_hits(kv_cache *cache)
{
    return atomic_load_explicit(&cache->hits, memory_order_relaxed);
}

uint64_t kv_cache_misses(kv_cache *cache)
{
    return atomic_load_explicit(&cache->misses, memory_order_relaxed);
}
