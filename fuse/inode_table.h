/*
 * inode_table.h — the inodes the kernel knows about: for each, how many
 * lookups the kernel holds (nlookup, given back by forget), how many open
 * handles exist, and a cached copy of the inode record.
 *
 * An entry exists while nlookup + nopen > 0. The table's own (sharded)
 * mutexes protect its structure and the counters; the cached record is
 * protected by the inode's lock stripe in struct fs (fs_impl.h), which the
 * caller holds whenever it reads or changes `inode`/`cached`.
 */
#ifndef LSMFS_INODE_TABLE_H
#define LSMFS_INODE_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema.h"

struct fs_inode_table;

struct fs_inode_ref {
    bool cached; /* `inode` holds the record as stored */
    struct fs_inode inode;
};

struct fs_inode_table *fs_inode_table_create(void);
void fs_inode_table_destroy(struct fs_inode_table *table);

/* Adds lookups and opens to ino's entry, creating it. */
void fs_inode_table_ref(struct fs_inode_table *table, uint64_t ino, uint64_t lookups,
                        uint32_t opens);
/* Takes back lookups and opens (clamped at what is held). Returns true when
 * the entry is left with no references; the entry is then removed. */
bool fs_inode_table_unref(struct fs_inode_table *table, uint64_t ino, uint64_t lookups,
                          uint32_t opens);
/* Copies out the cached record; false if ino has no entry or no cached
 * record. Caller holds ino's stripe. */
bool fs_inode_table_get_cached(struct fs_inode_table *table, uint64_t ino, struct fs_inode *out);
/* Stores the record in ino's entry, if it has one. Caller holds ino's stripe. */
void fs_inode_table_set_cached(struct fs_inode_table *table, uint64_t ino,
                               const struct fs_inode *inode);
/* Open handle count of ino (0 without an entry). */
uint32_t fs_inode_table_opens(struct fs_inode_table *table, uint64_t ino);
/* Lookups + opens held on ino. */
bool fs_inode_table_in_use(struct fs_inode_table *table, uint64_t ino);
size_t fs_inode_table_count(struct fs_inode_table *table);

#endif /* LSMFS_INODE_TABLE_H */
