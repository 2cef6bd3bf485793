/*
 * skiplist.c — LevelDB's SkipList in C: an ordered set of arena-allocated
 * entries with one writer and lock-free readers.
 *
 * Why readers need no lock: a node is fully initialized (key, and its own
 * next pointers) before it is linked, and linking is a release store of
 * the predecessor's next pointer; readers follow next pointers with
 * acquire loads, so a reader that reaches a node sees it complete. Nodes
 * are never unlinked or freed before the arena, so a reader can never hold
 * a dangling pointer. There are no back pointers: prev is a search for the
 * last node before the current key.
 */
#include "skiplist.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdint.h>

#define SKIPLIST_MAX_HEIGHT 12
#define SKIPLIST_BRANCHING 4

typedef struct skip_node skip_node;

struct skip_node {
    const char *key;
    /* next[0] is the lowest level; the array has the node's height. */
    _Atomic(skip_node *) next[];
};

struct kv_skiplist {
    kv_arena *arena;
    kv_skiplist_compare_fn compare;
    skip_node *head;
    /* Height of the tallest node. Readers may see a stale value: a smaller
     * one only makes the search start lower; a larger one finds head's new
     * levels either NULL or already linked, both of which are fine. */
    atomic_int max_height;
    atomic_size_t count;
    uint32_t random_state; /* writer only */
    skip_node *pending;    /* writer only: from allocate_key, not yet inserted */
};

static skip_node *node_next(const skip_node *node, int level)
{
    return atomic_load_explicit(&((skip_node *)node)->next[level], memory_order_acquire);
}

static void node_set_next(skip_node *node, int level, skip_node *next)
{
    atomic_store_explicit(&node->next[level], next, memory_order_release);
}

static skip_node *node_new(kv_skiplist *list, const char *key, int height)
{
    size_t bytes = sizeof(skip_node) + (size_t)height * sizeof(_Atomic(skip_node *));
    skip_node *node = kv_arena_allocate_aligned(list->arena, bytes);
    node->key = key;
    for (int i = 0; i < height; i++)
        atomic_init(&node->next[i], NULL);
    return node;
}

/* Park–Miller minimal standard generator, as LevelDB uses: cheap and good
 * enough to pick heights. */
static uint32_t next_random(kv_skiplist *list)
{
    uint64_t product = (uint64_t)list->random_state * 16807u;
    uint32_t value = (uint32_t)((product >> 31) + (product & 0x7fffffffu));
    if (value > 0x7fffffffu)
        value = (value & 0x7fffffffu) + (value >> 31);
    list->random_state = value;
    return value;
}

/* Height with P(height >= h + 1) = (1/branching)^h, capped at the max. */
static int random_height(kv_skiplist *list)
{
    int height = 1;
    while (height < SKIPLIST_MAX_HEIGHT && next_random(list) % SKIPLIST_BRANCHING == 0)
        height++;
    return height;
}

static int current_max_height(const kv_skiplist *list)
{
    return atomic_load_explicit(&((kv_skiplist *)list)->max_height, memory_order_relaxed);
}

/* The first node with key >= target (NULL if none). When prev is given, it
 * receives at each level the last node with key < target. */
static skip_node *find_greater_or_equal(const kv_skiplist *list, const char *target,
                                        skip_node **prev)
{
    skip_node *node = list->head;
    int level = current_max_height(list) - 1;
    /* The node last found >= target: one level down, node's next is often
     * that same node, known without comparing again (RocksDB's
     * InlineSkipList does the same). */
    skip_node *last_bigger = NULL;
    for (;;) {
        skip_node *next = node_next(node, level);
        if (next != NULL && next != last_bigger && list->compare(next->key, target) < 0) {
            node = next;
        } else {
            if (prev != NULL)
                prev[level] = node;
            if (level == 0)
                return next;
            last_bigger = next;
            level--;
        }
    }
}

/* The last node with key < target, or head if there is none. */
static skip_node *find_less_than(const kv_skiplist *list, const char *target)
{
    skip_node *node = list->head;
    int level = current_max_height(list) - 1;
    for (;;) {
        assert(node == list->head || list->compare(node->key, target) < 0);
        skip_node *next = node_next(node, level);
        if (next != NULL && list->compare(next->key, target) < 0) {
            node = next;
        } else {
            if (level == 0)
                return node;
            level--;
        }
    }
}

/* The last node, or head if the list is empty. */
static skip_node *find_last(const kv_skiplist *list)
{
    skip_node *node = list->head;
    int level = current_max_height(list) - 1;
    for (;;) {
        skip_node *next = node_next(node, level);
        if (next != NULL) {
            node = next;
        } else {
            if (level == 0)
                return node;
            level--;
        }
    }
}

kv_skiplist *kv_skiplist_create(kv_arena *arena, kv_skiplist_compare_fn compare)
{
    kv_skiplist *list = kv_arena_allocate_aligned(arena, sizeof(*list));
    list->arena = arena;
    list->compare = compare;
    list->random_state = 0xdeadbeef & 0x7fffffffu;
    list->pending = NULL;
    atomic_init(&list->max_height, 1);
    atomic_init(&list->count, 0);
    list->head = node_new(list, NULL, SKIPLIST_MAX_HEIGHT);
    return list;
}

/* Links a node that is not reachable yet (its key set, its height
 * `height`) into the list. */
static void link_node(kv_skiplist *list, skip_node *node, int height)
{
    skip_node *prev[SKIPLIST_MAX_HEIGHT];
    skip_node *found = find_greater_or_equal(list, node->key, prev);
    assert(found == NULL || list->compare(found->key, node->key) != 0);
    (void)found;

    int max_height = current_max_height(list);
    if (height > max_height) {
        for (int level = max_height; level < height; level++)
            prev[level] = list->head;
        /* Relaxed is enough: a reader seeing the new height before the
         * node is linked finds NULL at head's new levels and drops down. */
        atomic_store_explicit(&list->max_height, height, memory_order_relaxed);
    }

    for (int level = 0; level < height; level++) {
        /* The node is not reachable yet, so its own pointers need no
         * ordering; publishing it through prev is the release store. */
        atomic_store_explicit(&node->next[level], node_next(prev[level], level),
                              memory_order_relaxed);
        node_set_next(prev[level], level, node);
    }
    atomic_fetch_add_explicit(&list->count, 1, memory_order_release);
}

void kv_skiplist_insert(kv_skiplist *list, const char *key)
{
    int height = random_height(list);
    link_node(list, node_new(list, key, height), height);
}

/* The node's height is kept in its next[0] slot (as a small integer)
 * until insert_allocated links it: the slot is overwritten then. */
char *kv_skiplist_allocate_key(kv_skiplist *list, size_t key_size)
{
    assert(list->pending == NULL);
    int height = random_height(list);
    size_t node_bytes = sizeof(skip_node) + (size_t)height * sizeof(_Atomic(skip_node *));
    skip_node *node = kv_arena_allocate_aligned(list->arena, node_bytes + key_size);
    char *key = (char *)node + node_bytes;
    node->key = key;
    for (int i = 0; i < height; i++)
        atomic_init(&node->next[i], NULL);
    atomic_init(&node->next[0], (skip_node *)(uintptr_t)height);
    list->pending = node;
    return key;
}

void kv_skiplist_insert_allocated(kv_skiplist *list, const char *key)
{
    skip_node *node = list->pending;
    assert(node != NULL && node->key == key);
    (void)key;
    list->pending = NULL;
    int height = (int)(uintptr_t)atomic_load_explicit(&node->next[0], memory_order_relaxed);
    link_node(list, node, height);
}

bool kv_skiplist_contains(const kv_skiplist *list, const char *key)
{
    skip_node *node = find_greater_or_equal(list, key, NULL);
    return node != NULL && list->compare(node->key, key) == 0;
}

size_t kv_skiplist_count(const kv_skiplist *list)
{
    return atomic_load_explicit(&((kv_skiplist *)list)->count, memory_order_acquire);
}

void kv_skiplist_iter_init(kv_skiplist_iter *it, const kv_skiplist *list)
{
    it->list = list;
    it->node = NULL;
}

bool kv_skiplist_iter_valid(const kv_skiplist_iter *it)
{
    return it->node != NULL;
}

const char *kv_skiplist_iter_key(const kv_skiplist_iter *it)
{
    assert(kv_skiplist_iter_valid(it));
    return ((const skip_node *)it->node)->key;
}

void kv_skiplist_iter_next(kv_skiplist_iter *it)
{
    assert(kv_skiplist_iter_valid(it));
    skip_node *node = node_next(it->node, 0);
    it->node = node;
    /* Scans chase one pointer per entry, each usually a cache miss (nodes
     * are in insertion order, not key order): start loading the following
     * node (and the key after it, allocate_key's layout) while the caller
     * works on this one. */
    if (node != NULL) {
        const skip_node *following = node_next(node, 0);
        if (following != NULL) {
            __builtin_prefetch(following);
            __builtin_prefetch((const char *)following + 64);
        }
    }
}

void kv_skiplist_iter_prev(kv_skiplist_iter *it)
{
    assert(kv_skiplist_iter_valid(it));
    skip_node *node = find_less_than(it->list, kv_skiplist_iter_key(it));
    it->node = node == it->list->head ? NULL : node;
}

void kv_skiplist_iter_seek(kv_skiplist_iter *it, const char *target)
{
    it->node = find_greater_or_equal(it->list, target, NULL);
}

void kv_skiplist_iter_seek_to_first(kv_skiplist_iter *it)
{
    it->node = node_next(it->list->head, 0);
}

void kv_skiplist_iter_seek_to_last(kv_skiplist_iter *it)
{
    skip_node *node = find_last(it->list);
    it->node = node == it->list->head ? NULL : node;
}
