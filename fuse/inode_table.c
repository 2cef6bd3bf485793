/* inode_table.c — a sharded chained hash table of kernel-known inodes. */
#include "inode_table.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS 64

struct entry {
    uint64_t ino;
    uint64_t nlookup;
    uint32_t nopen;
    struct fs_inode_ref ref;
    struct entry *next;
};

struct shard {
    pthread_mutex_t mutex;
    struct entry **buckets;
    size_t bucket_count; /* a power of two */
    size_t count;
};

struct fs_inode_table {
    struct shard shards[SHARDS];
};

static uint64_t hash_ino(uint64_t ino)
{
    ino ^= ino >> 33;
    ino *= 0xff51afd7ed558ccdULL;
    ino ^= ino >> 33;
    return ino;
}

static struct shard *shard_of(struct fs_inode_table *table, uint64_t ino)
{
    return &table->shards[hash_ino(ino) % SHARDS];
}

static struct entry **slot_of(struct shard *shard, uint64_t ino)
{
    struct entry **slot = &shard->buckets[(hash_ino(ino) / SHARDS) & (shard->bucket_count - 1)];
    while (*slot != NULL && (*slot)->ino != ino)
        slot = &(*slot)->next;
    return slot;
}

static void grow(struct shard *shard)
{
    size_t new_count = shard->bucket_count * 2;
    struct entry **buckets = calloc(new_count, sizeof(*buckets));
    if (buckets == NULL)
        return; /* stay at the current size: longer chains, still correct */
    for (size_t i = 0; i < shard->bucket_count; i++) {
        struct entry *e = shard->buckets[i];
        while (e != NULL) {
            struct entry *next = e->next;
            size_t b = (hash_ino(e->ino) / SHARDS) & (new_count - 1);
            e->next = buckets[b];
            buckets[b] = e;
            e = next;
        }
    }
    free(shard->buckets);
    shard->buckets = buckets;
    shard->bucket_count = new_count;
}

struct fs_inode_table *fs_inode_table_create(void)
{
    struct fs_inode_table *table = calloc(1, sizeof(*table));
    if (table == NULL)
        return NULL;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_init(&table->shards[i].mutex, NULL);
        table->shards[i].bucket_count = 64;
        table->shards[i].buckets = calloc(64, sizeof(struct entry *));
        if (table->shards[i].buckets == NULL) {
            fs_inode_table_destroy(table);
            return NULL;
        }
    }
    return table;
}

void fs_inode_table_destroy(struct fs_inode_table *table)
{
    if (table == NULL)
        return;
    for (int i = 0; i < SHARDS; i++) {
        struct shard *shard = &table->shards[i];
        for (size_t b = 0; shard->buckets != NULL && b < shard->bucket_count; b++) {
            struct entry *e = shard->buckets[b];
            while (e != NULL) {
                struct entry *next = e->next;
                free(e);
                e = next;
            }
        }
        free(shard->buckets);
        pthread_mutex_destroy(&shard->mutex);
    }
    free(table);
}

void fs_inode_table_ref(struct fs_inode_table *table, uint64_t ino, uint64_t lookups,
                        uint32_t opens)
{
    struct shard *shard = shard_of(table, ino);
    pthread_mutex_lock(&shard->mutex);
    struct entry **slot = slot_of(shard, ino);
    if (*slot == NULL) {
        /* The kernel's references must be counted even if memory is short;
         * losing one would reclaim a file in use. Keep trying. */
        struct entry *e;
        while ((e = calloc(1, sizeof(*e))) == NULL)
            sched_yield();
        e->ino = ino;
        *slot = e;
        shard->count++;
        if (shard->count > shard->bucket_count * 2) {
            grow(shard);
            slot = slot_of(shard, ino);
        }
    }
    (*slot)->nlookup += lookups;
    (*slot)->nopen += opens;
    pthread_mutex_unlock(&shard->mutex);
}

bool fs_inode_table_unref(struct fs_inode_table *table, uint64_t ino, uint64_t lookups,
                          uint32_t opens)
{
    struct shard *shard = shard_of(table, ino);
    pthread_mutex_lock(&shard->mutex);
    struct entry **slot = slot_of(shard, ino);
    bool unused = true;
    if (*slot != NULL) {
        struct entry *e = *slot;
        e->nlookup -= lookups < e->nlookup ? lookups : e->nlookup;
        e->nopen -= opens < e->nopen ? opens : e->nopen;
        unused = e->nlookup == 0 && e->nopen == 0;
        if (unused) {
            *slot = e->next;
            shard->count--;
            free(e);
        }
    }
    pthread_mutex_unlock(&shard->mutex);
    return unused;
}

bool fs_inode_table_get_cached(struct fs_inode_table *table, uint64_t ino, struct fs_inode *out)
{
    struct shard *shard = shard_of(table, ino);
    pthread_mutex_lock(&shard->mutex);
    struct entry *e = *slot_of(shard, ino);
    bool found = e != NULL && e->ref.cached;
    if (found)
        *out = e->ref.inode;
    pthread_mutex_unlock(&shard->mutex);
    return found;
}

void fs_inode_table_set_cached(struct fs_inode_table *table, uint64_t ino,
                               const struct fs_inode *inode)
{
    struct shard *shard = shard_of(table, ino);
    pthread_mutex_lock(&shard->mutex);
    struct entry *e = *slot_of(shard, ino);
    if (e != NULL) {
        e->ref.inode = *inode;
        e->ref.cached = true;
    }
    pthread_mutex_unlock(&shard->mutex);
}

uint32_t fs_inode_table_opens(struct fs_inode_table *table, uint64_t ino)
{
    struct shard *shard = shard_of(table, ino);
    pthread_mutex_lock(&shard->mutex);
    struct entry *e = *slot_of(shard, ino);
    uint32_t opens = e != NULL ? e->nopen : 0;
    pthread_mutex_unlock(&shard->mutex);
    return opens;
}

bool fs_inode_table_in_use(struct fs_inode_table *table, uint64_t ino)
{
    struct shard *shard = shard_of(table, ino);
    pthread_mutex_lock(&shard->mutex);
    bool in_use = *slot_of(shard, ino) != NULL;
    pthread_mutex_unlock(&shard->mutex);
    return in_use;
}

size_t fs_inode_table_count(struct fs_inode_table *table)
{
    size_t total = 0;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&table->shards[i].mutex);
        total += table->shards[i].count;
        pthread_mutex_unlock(&table->shards[i].mutex);
    }
    return total;
}
