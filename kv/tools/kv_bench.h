/*
 * kv_bench.h — what kv_bench's driver (kv_bench.c: workloads, measuring,
 * reporting) and its engine adapters (kv_bench_engines.c: kv, RocksDB,
 * LevelDB) share: the settings every engine is opened with and the
 * interface each engine implements. kv_bench is single-threaded.
 */
#ifndef KV_BENCH_H
#define KV_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Data block size (uncompressed) of every engine's tables. */
#define BENCH_BLOCK_SIZE 4096
/* kv, RocksDB, LevelDB. */
#define BENCH_MAX_ENGINES 3

typedef struct bench_settings {
    uint64_t num;             /* operations per workload; key space [0, num) */
    size_t value_size;        /* bytes per value */
    size_t key_size;          /* bytes per key */
    const char *benchmarks;   /* comma-separated workload names */
    const char *engines;      /* comma-separated engine names; NULL: all */
    const char *db_dir;       /* parent of one directory per engine */
    int repeat;               /* repetitions; medians when > 1 */
    size_t write_buffer_size; /* memtable size */
    size_t cache_size;        /* block cache bytes */
    int bloom_bits;           /* bloom filter bits per key; 0: none */
    bool snappy;              /* compression: snappy or none */
    uint64_t sync_num;        /* operations of fillsync */
    const char *json_path;    /* NULL: no JSON */
    uint64_t seed;            /* base seed of the key sequences */
} bench_settings;

/*
 * One engine behind a common interface. Every function returns 0 or -1 with
 * bench_error set. open creates the database in an empty directory `dir`
 * with the settings shared by all engines.
 */
typedef struct bench_engine {
    const char *name;
    /* The library's version ("1.23"), or NULL where its C API has none. */
    const char *(*version)(void);
    int (*open)(const bench_settings *settings, const char *dir, void **db);
    int (*close)(void *db);
    int (*put)(void *db, const char *key, size_t key_len, const char *value, size_t value_len,
               bool sync);
    /* *found tells whether the key exists; *value_len is its value's size. */
    int (*get)(void *db, const char *key, size_t key_len, bool *found, size_t *value_len);
    int (*del)(void *db, const char *key, size_t key_len);
    /* Iterates from the first key over at most `limit` entries; returns the
     * number read and the bytes of their keys and values. */
    int (*scan)(void *db, uint64_t limit, uint64_t *entries, uint64_t *bytes);
} bench_engine;

/* Every engine compiled in, kv first. */
extern const bench_engine *const bench_engines[];
extern const size_t bench_engine_count;
extern const bench_engine bench_kv_engine;

/* The message of the last failed engine call or file operation. */
extern char bench_error[1024];
void bench_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* malloc and calloc that abort when memory runs out. */
void *bench_malloc(size_t n);
void *bench_calloc(size_t count, size_t size);

#endif /* KV_BENCH_H */
