/*
 * kv_bench.c — db_bench-style benchmark of the kv engine through its public
 * API (kv.h), run side by side with RocksDB (rocksdb/c.h) and LevelDB
 * (leveldb/c.h) in the same process, on the same machine, with the same
 * settings. The peers are compiled in when KV_BENCH_ROCKSDB / KV_BENCH_LEVELDB
 * are defined (kv/tools/CMakeLists.txt does so when Debian's librocksdb-dev /
 * libleveldb-dev are installed).
 *
 * Usage: kv_bench [--option=value ...]; kv_bench --help lists the options.
 *
 * Workloads (--benchmarks, run in the order given; each engine runs the
 * whole list, then closes, before the next engine starts, so that no
 * engine's background compaction runs during another one's measurement):
 *   fillseq       fresh database; num puts in ascending key order
 *   fillrandom    fresh database; num puts of keys uniform in [0, num); keys
 *                 repeat, as in db_bench, so ~63% of them end up present
 *   overwrite     num puts of random keys into the existing database
 *   readrandom    num gets of random keys in [0, num); counts the hits
 *   readseq       one iterator from the first key over up to num entries
 *   deleterandom  deletes every key present, once each, in random order
 *                 (random deletes of existing keys: no misses)
 *   fillsync      fresh database; sync_num puts of random keys, each with
 *                 sync=true (WAL fsync before the put returns)
 * "Fresh" means the engine's directory (DB/ENGINE) is removed and the
 * database created anew; the other workloads use the data the preceding ones
 * left, as db_bench does. Every repetition starts from an empty directory.
 * Caches are not dropped before reads (that needs root and disturbs other
 * users): the OS page cache holds what the writes left, so reads measure the
 * engine's own path more than the disk.
 *
 * Key i is its decimal index zero-padded to key_size bytes (db_bench's
 * "%016d"). Values are random printable bytes built from repeated fragments
 * so that they compress to about half, like db_bench's generator. The random
 * key sequences are seeded identically for every engine.
 *
 * Settings common to all engines: write buffer (memtable) size, snappy or no
 * compression, bloom filter bits per key, block cache size, 4096-byte data
 * blocks, WAL on without per-write fsync (except fillsync). Everything else
 * (level sizes, file sizes, background threads) is each engine's default.
 *
 * Output (stable; scripts may parse it). Header lines "Name:  value"
 * (Compiled, Engines, Benchmarks, Keys, Values, Entries, Settings,
 * Directory, Repeat, CPU, Note), then
 * for each repetition "== repetition R of N: engines A, B, C" and one line
 * per (engine, workload) as it finishes:
 *
 *   ENGINE   WORKLOAD     : X micros/op; Y ops/sec; Z MB/s[; wamp W; space S; tail T][; found F of
 * N]
 *
 *   micros/op, ops/sec  wall time of the workload (CLOCK_MONOTONIC) / ops;
 *                       "n/a" for both when there was nothing to do
 *   MB/s                user bytes per second (MB = 2^20): key + value per
 *                       put, get hit and entry read; key per delete
 *   wamp                (writing workloads) bytes the process sent to storage
 *                       during the workload / user bytes written. From the
 *                       /proc/self/io write_bytes delta: WAL, flushes and
 *                       compactions done by the end of the workload, counted
 *                       when pages are dirtied (a page rewritten while still
 *                       dirty counts once, so fillsync, which cleans the
 *                       WAL page at each put, shows ~4096 / record size);
 *                       "wamp n/a" where the file system does not account
 *                       (tmpfs)
 *   space               (writing workloads) size of the files in the
 *                       directory at the end (du --apparent-size) / live
 *                       data (keys present x (key_size + value_size));
 *                       absent when nothing is live. Apparent, not
 *                       allocated, size: RocksDB fallocates each WAL to
 *                       ~1.1 x write buffer, which would swamp small runs
 *                       (the JSON has both: dir_bytes and du_bytes)
 *   tail T              (puts of 10+ ops) throughput over the last 10% of the
 *                       puts / throughput over the first 10%: below 1, the
 *                       engine slows as the data grows (issue 3: >= 0.7)
 *   found F of N        (readrandom) gets that found their key
 *
 * or "ENGINE   WORKLOAD     : error: MESSAGE" (that engine then skips the
 * rest of the repetition). With --repeat=N > 1, "== median of N repetitions"
 * follows, lines in the same format, each figure the median of its own
 * values over the successful runs. Last, when kv and at least one peer ran,
 * "== kv / best peer (ops/sec)" and one line per workload:
 *
 *   WORKLOAD     : R (kv Y ops/sec; best peer ENGINE Y ops/sec)
 *
 * ("WORKLOAD     : n/a" where a side has no figure).
 *
 * --json=FILE writes the settings, every run's raw figures, the medians and
 * the ratios. Exit status: 0; 1 if any run failed; 2 for bad arguments.
 */
#include "kv.h"
#include "kv_bench.h"

#include <assert.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MIB (1024.0 * 1024.0)

/* ---- settings and helpers ---- */

static const char *const DEFAULT_BENCHMARKS =
    "fillseq,fillsync,fillrandom,overwrite,readrandom,readseq,deleterandom";

char bench_error[1024];

void bench_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(bench_error, sizeof bench_error, fmt, ap);
    va_end(ap);
}

void *bench_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "kv_bench: out of memory (%zu bytes)\n", n);
        abort();
    }
    return p;
}

void *bench_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL) {
        fprintf(stderr, "kv_bench: out of memory (%zu x %zu bytes)\n", count, size);
        abort();
    }
    return p;
}

/* ---- workloads ---- */

typedef enum workload_kind {
    FILLSEQ,
    FILLRANDOM,
    OVERWRITE,
    READRANDOM,
    READSEQ,
    DELETERANDOM,
    FILLSYNC,
} workload_kind;

typedef struct workload_def {
    const char *name;
    workload_kind kind;
    bool fresh_db; /* starts from an empty directory */
    bool writes;   /* reports wamp and space */
} workload_def;

static const workload_def WORKLOADS[] = {
    {"fillseq", FILLSEQ, true, true},      {"fillrandom", FILLRANDOM, true, true},
    {"overwrite", OVERWRITE, false, true}, {"readrandom", READRANDOM, false, false},
    {"readseq", READSEQ, false, false},    {"deleterandom", DELETERANDOM, false, true},
    {"fillsync", FILLSYNC, true, true},
};
#define WORKLOAD_COUNT (sizeof WORKLOADS / sizeof WORKLOADS[0])

/* splitmix64: small, fast, good enough to pick keys. */
typedef struct bench_rng {
    uint64_t state;
} bench_rng;

static uint64_t bench_rng_next(bench_rng *rng)
{
    uint64_t z = (rng->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0 (modulo bias is negligible for n << 2^64). */
static uint64_t bench_rng_uniform(bench_rng *rng, uint64_t n)
{
    return bench_rng_next(rng) % n;
}

/*
 * Value bytes, as db_bench makes them: 1 MiB (at least) of pieces of 100
 * bytes, each 50 random printable characters repeated, so that values
 * compress to about half. Values are consecutive windows of the buffer.
 */
typedef struct value_source {
    char *data;
    size_t size;
    size_t pos;
} value_source;

static void value_source_init(value_source *src, size_t value_size)
{
    src->size = (1u << 20) + value_size;
    src->data = bench_malloc(src->size);
    src->pos = 0;
    bench_rng rng = {.state = 301};
    char fragment[50];
    for (size_t off = 0; off < src->size; off += 100) {
        for (size_t i = 0; i < sizeof fragment; i++)
            fragment[i] = (char)(' ' + bench_rng_uniform(&rng, 95));
        for (size_t i = 0; i < 100 && off + i < src->size; i++)
            src->data[off + i] = fragment[i % sizeof fragment];
    }
}

static const char *value_source_next(value_source *src, size_t len)
{
    assert(len <= src->size);
    if (src->pos + len > src->size)
        src->pos = 0;
    const char *value = src->data + src->pos;
    src->pos += len;
    return value;
}

/* Key `index` as zero-padded decimal in key_size bytes (no terminator). */
static void format_key(char *key, size_t key_size, uint64_t index)
{
    for (size_t i = key_size; i > 0; i--) {
        key[i - 1] = (char)('0' + index % 10);
        index /= 10;
    }
}

/* ---- measuring ---- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The I/O counters of this process (all its threads) from /proc/self/io. */
typedef struct proc_io {
    bool available;
    uint64_t wchar;       /* bytes passed to write(2) and friends */
    uint64_t write_bytes; /* bytes sent (dirtied) towards storage */
    uint64_t read_bytes;  /* bytes fetched from storage */
    uint64_t cancelled_write_bytes;
} proc_io;

static proc_io read_proc_io(void)
{
    proc_io io = {0};
    FILE *f = fopen("/proc/self/io", "r");
    if (f == NULL)
        return io;
    char name[64];
    unsigned long long value;
    while (fscanf(f, "%63[^:]: %llu\n", name, &value) == 2) {
        if (strcmp(name, "wchar") == 0)
            io.wchar = value;
        else if (strcmp(name, "write_bytes") == 0)
            io.write_bytes = value;
        else if (strcmp(name, "read_bytes") == 0)
            io.read_bytes = value;
        else if (strcmp(name, "cancelled_write_bytes") == 0)
            io.cancelled_write_bytes = value;
    }
    io.available = true;
    fclose(f);
    return io;
}

static proc_io proc_io_delta(const proc_io *before, const proc_io *after)
{
    proc_io d = {.available = before->available && after->available};
    d.wchar = after->wchar - before->wchar;
    d.write_bytes = after->write_bytes - before->write_bytes;
    d.read_bytes = after->read_bytes - before->read_bytes;
    d.cancelled_write_bytes = after->cancelled_write_bytes - before->cancelled_write_bytes;
    return d;
}

/* nftw callbacks take no context: the one walk in progress uses these. */
static uint64_t walk_apparent_bytes, walk_allocated_bytes;
static int add_file_size(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F) {
        walk_apparent_bytes += (uint64_t)st->st_size;
        walk_allocated_bytes += (uint64_t)st->st_blocks * 512;
    }
    return 0;
}

/* Sizes of the files under dir: as ls counts them (apparent) and as du
 * does (allocated blocks, which include space an engine preallocated). */
static void directory_size(const char *dir, uint64_t *apparent, uint64_t *allocated)
{
    walk_apparent_bytes = 0;
    walk_allocated_bytes = 0;
    nftw(dir, add_file_size, 32, FTW_PHYS);
    *apparent = walk_apparent_bytes;
    *allocated = walk_allocated_bytes;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT) {
        bench_set_error("remove %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * Removes an engine's directory from an earlier workload or run. Refuses a
 * non-empty directory that holds no database (no CURRENT or LOCK file), so a
 * mistyped --db cannot wipe someone's files.
 */
static int remove_engine_dir(const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) != 0)
        return errno == ENOENT ? 0 : (bench_set_error("stat %s: %s", dir, strerror(errno)), -1);
    size_t n = strlen(dir) + 16;
    char *marker = bench_malloc(n);
    snprintf(marker, n, "%s/CURRENT", dir);
    bool is_db = access(marker, F_OK) == 0;
    snprintf(marker, n, "%s/LOCK", dir);
    is_db = is_db || access(marker, F_OK) == 0;
    free(marker);
    if (!is_db && rmdir(dir) == 0)
        return 0;
    if (!is_db) {
        bench_set_error("%s exists and holds no database; not removing it", dir);
        return -1;
    }
    return nftw(dir, remove_entry, 32, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

/* mkdir -p: creates dir and its missing parents. */
static int make_directories(const char *dir)
{
    char *path = strdup(dir);
    if (path == NULL)
        abort();
    int rc = 0;
    for (char *p = path + 1; rc == 0; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            bench_set_error("mkdir %s: %s", path, strerror(errno));
            rc = -1;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    free(path);
    return rc;
}

/* ---- running ---- */

/* What one (repetition, engine, workload) did. */
typedef struct run_result {
    bool ran;                       /* attempted */
    bool ok;                        /* finished without error */
    char error[sizeof bench_error]; /* when !ok */
    uint64_t ops;
    uint64_t found;      /* readrandom hits */
    uint64_t user_bytes; /* see MB/s above */
    uint64_t user_write_bytes;
    double seconds;
    proc_io io;          /* deltas over the workload */
    uint64_t dir_bytes;  /* writing workloads: file sizes in the directory at the end */
    uint64_t du_bytes;   /* the same, allocated blocks (du) */
    uint64_t live_bytes; /* writing workloads: live keys x (key + value) */
    double first_tenth_seconds, last_tenth_seconds; /* puts: time of the first / last 10% */
} run_result;

/* Figures derived from a run (or medians of them); NAN when not meaningful. */
typedef struct run_figures {
    double micros_per_op, ops_per_sec, mb_per_sec, wamp, space, tail;
} run_figures;

typedef struct bench_runner {
    bench_settings settings;
    const bench_engine *engines[BENCH_MAX_ENGINES];
    size_t engine_count;
    const workload_def **workloads;
    size_t workload_count;
    run_result *results; /* [repeat][engine][workload] */
    value_source values;
    uint8_t *present;    /* bit i: key i is in the open database */
    uint64_t live_keys;  /* bits set in present */
    uint64_t *key_order; /* scratch for deleterandom */
    char *key;           /* key_size bytes */
} bench_runner;

static run_result *result_at(bench_runner *r, int rep, size_t engine, size_t workload)
{
    return &r->results[((size_t)rep * r->engine_count + engine) * r->workload_count + workload];
}

static bool key_present(const bench_runner *r, uint64_t k)
{
    return (r->present[k >> 3] >> (k & 7)) & 1;
}

static void mark_present(bench_runner *r, uint64_t k, bool present)
{
    uint8_t bit = (uint8_t)(1u << (k & 7));
    if (present && !(r->present[k >> 3] & bit)) {
        r->present[k >> 3] |= bit;
        r->live_keys++;
    } else if (!present && (r->present[k >> 3] & bit)) {
        r->present[k >> 3] &= (uint8_t)~bit;
        r->live_keys--;
    }
}

static void clear_present(bench_runner *r)
{
    memset(r->present, 0, (size_t)(r->settings.num + 7) / 8);
    r->live_keys = 0;
}

/* Puts `ops` keys: ascending from 0 when sequential, else random. */
static int run_puts(bench_runner *r, void *db, const bench_engine *engine, uint64_t ops,
                    bool sequential, bool sync, bench_rng *rng, run_result *res)
{
    const bench_settings *s = &r->settings;
    uint64_t tenth = ops / 10;
    double start = now_seconds();
    for (uint64_t i = 0; i < ops; i++) {
        if (tenth > 0 && i == tenth)
            res->first_tenth_seconds = now_seconds() - start;
        if (tenth > 0 && i == ops - tenth)
            res->last_tenth_seconds = now_seconds();
        uint64_t k = sequential ? i : bench_rng_uniform(rng, s->num);
        format_key(r->key, s->key_size, k);
        const char *value = value_source_next(&r->values, s->value_size);
        if (engine->put(db, r->key, s->key_size, value, s->value_size, sync) != 0)
            return -1;
        mark_present(r, k, true);
        res->ops++;
        res->user_write_bytes += s->key_size + s->value_size;
    }
    if (tenth > 0)
        res->last_tenth_seconds = now_seconds() - res->last_tenth_seconds;
    res->user_bytes = res->user_write_bytes;
    return 0;
}

static int run_readrandom(bench_runner *r, void *db, const bench_engine *engine, bench_rng *rng,
                          run_result *res)
{
    const bench_settings *s = &r->settings;
    for (uint64_t i = 0; i < s->num; i++) {
        uint64_t k = bench_rng_uniform(rng, s->num);
        format_key(r->key, s->key_size, k);
        bool found;
        size_t value_len;
        if (engine->get(db, r->key, s->key_size, &found, &value_len) != 0)
            return -1;
        if (found) {
            res->found++;
            res->user_bytes += s->key_size + value_len;
        }
        res->ops++;
    }
    return 0;
}

/* Lists the keys present in random order (Fisher-Yates); untimed. */
static uint64_t shuffle_present_keys(bench_runner *r, bench_rng *rng)
{
    uint64_t n = 0;
    for (uint64_t k = 0; k < r->settings.num; k++) {
        if (key_present(r, k))
            r->key_order[n++] = k;
    }
    for (uint64_t i = n; i > 1; i--) {
        uint64_t j = bench_rng_uniform(rng, i);
        uint64_t t = r->key_order[i - 1];
        r->key_order[i - 1] = r->key_order[j];
        r->key_order[j] = t;
    }
    return n;
}

static int run_deletes(bench_runner *r, void *db, const bench_engine *engine, uint64_t count,
                       run_result *res)
{
    const bench_settings *s = &r->settings;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t k = r->key_order[i];
        format_key(r->key, s->key_size, k);
        if (engine->del(db, r->key, s->key_size) != 0)
            return -1;
        mark_present(r, k, false);
        res->ops++;
        res->user_write_bytes += s->key_size;
    }
    res->user_bytes = res->user_write_bytes;
    return 0;
}

/* Runs one workload on the open database `db` and measures it. */
static void run_workload(bench_runner *r, void *db, const bench_engine *engine,
                         const workload_def *w, size_t position, const char *dir, run_result *res)
{
    const bench_settings *s = &r->settings;
    /* The same key sequence for every engine and repetition. */
    bench_rng rng = {.state = s->seed + 1000003u * (position + 1)};
    r->values.pos = 0;
    uint64_t delete_count = 0;
    if (w->kind == DELETERANDOM)
        delete_count = shuffle_present_keys(r, &rng);

    res->ran = true;
    proc_io io_before = read_proc_io();
    double start = now_seconds();
    int rc = 0;
    switch (w->kind) {
    case FILLSEQ:
        rc = run_puts(r, db, engine, s->num, true, false, &rng, res);
        break;
    case FILLRANDOM:
    case OVERWRITE:
        rc = run_puts(r, db, engine, s->num, false, false, &rng, res);
        break;
    case FILLSYNC:
        rc = run_puts(r, db, engine, s->sync_num, false, true, &rng, res);
        break;
    case READRANDOM:
        rc = run_readrandom(r, db, engine, &rng, res);
        break;
    case READSEQ:
        rc = engine->scan(db, s->num, &res->ops, &res->user_bytes);
        break;
    case DELETERANDOM:
        rc = run_deletes(r, db, engine, delete_count, res);
        break;
    }
    res->seconds = now_seconds() - start;
    proc_io io_after = read_proc_io();
    res->io = proc_io_delta(&io_before, &io_after);
    if (w->writes) {
        directory_size(dir, &res->dir_bytes, &res->du_bytes);
        res->live_bytes = r->live_keys * (s->key_size + s->value_size);
    }
    res->ok = rc == 0;
    if (!res->ok)
        snprintf(res->error, sizeof res->error, "%s", bench_error);
}

static run_figures figures_of(const run_result *res, const workload_def *w)
{
    run_figures f = {NAN, NAN, NAN, NAN, NAN, NAN};
    double seconds = res->seconds > 0 ? res->seconds : 1e-9;
    if (res->ops > 0) {
        f.micros_per_op = seconds * 1e6 / (double)res->ops;
        f.ops_per_sec = (double)res->ops / seconds;
    }
    f.mb_per_sec = (double)res->user_bytes / BENCH_MIB / seconds;
    if (w->writes && res->user_write_bytes > 0 && res->io.available && res->io.write_bytes > 0)
        f.wamp = (double)res->io.write_bytes / (double)res->user_write_bytes;
    if (w->writes && res->live_bytes > 0)
        f.space = (double)res->dir_bytes / (double)res->live_bytes;
    if (res->first_tenth_seconds > 0 && res->last_tenth_seconds > 0)
        f.tail = res->first_tenth_seconds / res->last_tenth_seconds;
    return f;
}

static void print_figures(const char *engine, const workload_def *w, const run_figures *f,
                          const run_result *res)
{
    /* A workload with nothing to do (readseq of an empty database) has no
     * per-op figures: "n/a" keeps the columns. */
    if (isnan(f->micros_per_op))
        printf("%-8s %-12s : %11s micros/op; %10s ops/sec; %8.1f MB/s", engine, w->name, "n/a",
               "n/a", f->mb_per_sec);
    else
        printf("%-8s %-12s : %11.3f micros/op; %10.0f ops/sec; %8.1f MB/s", engine, w->name,
               f->micros_per_op, f->ops_per_sec, f->mb_per_sec);
    if (w->writes) {
        if (isnan(f->wamp))
            printf("; wamp n/a");
        else
            printf("; wamp %.2f", f->wamp);
        if (!isnan(f->space))
            printf("; space %.2f", f->space);
        if (!isnan(f->tail))
            printf("; tail %.2f", f->tail);
    }
    if (w->kind == READRANDOM)
        printf("; found %llu of %llu", (unsigned long long)res->found,
               (unsigned long long)res->ops);
    printf("\n");
}

static void print_error(const char *engine, const workload_def *w, const char *message)
{
    printf("%-8s %-12s : error: %s\n", engine, w->name, message);
}

/*
 * Runs every workload on one engine for one repetition, each on the data the
 * previous ones left except where a workload starts fresh. Returns false if
 * something failed (the rest of this engine's repetition is skipped).
 */
static bool run_engine(bench_runner *r, int rep, size_t engine_index)
{
    const bench_engine *engine = r->engines[engine_index];
    size_t n = strlen(r->settings.db_dir) + strlen(engine->name) + 2;
    char *dir = bench_malloc(n);
    snprintf(dir, n, "%s/%s", r->settings.db_dir, engine->name);
    void *db = NULL;
    bool ok = true;
    for (size_t i = 0; i < r->workload_count && ok; i++) {
        const workload_def *w = r->workloads[i];
        run_result *res = result_at(r, rep, engine_index, i);
        if (db == NULL || w->fresh_db) {
            int rc = 0;
            if (db != NULL)
                rc = engine->close(db);
            db = NULL;
            if (rc == 0)
                rc = remove_engine_dir(dir);
            if (rc == 0 && mkdir(dir, 0755) != 0) {
                bench_set_error("mkdir %s: %s", dir, strerror(errno));
                rc = -1;
            }
            clear_present(r);
            if (rc == 0)
                rc = engine->open(&r->settings, dir, &db);
            if (rc != 0) {
                res->ran = true;
                snprintf(res->error, sizeof res->error, "%s", bench_error);
                print_error(engine->name, w, res->error);
                ok = false;
                break;
            }
        }
        run_workload(r, db, engine, w, i, dir, res);
        if (res->ok) {
            run_figures f = figures_of(res, w);
            print_figures(engine->name, w, &f, res);
        } else {
            print_error(engine->name, w, res->error);
            ok = false;
        }
        fflush(stdout);
    }
    if (db != NULL && engine->close(db) != 0) {
        printf("%-8s %-12s : error: %s\n", engine->name, "close", bench_error);
        ok = false;
    }
    free(dir);
    return ok;
}

/* ---- medians, ratios, JSON ---- */

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of the non-NaN values (sorts them in place); NAN if none. */
static double median(double *values, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isnan(values[i]))
            values[m++] = values[i];
    }
    if (m == 0)
        return NAN;
    qsort(values, m, sizeof *values, compare_doubles);
    return m % 2 ? values[m / 2] : (values[m / 2 - 1] + values[m / 2]) / 2;
}

/* Medians of one (engine, workload) over the successful repetitions;
 * *first_ok is one of them (for found counts), NULL if none succeeded. */
static run_figures median_figures(bench_runner *r, size_t e, size_t w, const run_result **first_ok)
{
    int reps = r->settings.repeat;
    double *columns[6];
    for (int c = 0; c < 6; c++)
        columns[c] = bench_calloc((size_t)reps, sizeof(double));
    size_t n = 0;
    *first_ok = NULL;
    for (int rep = 0; rep < reps; rep++) {
        const run_result *res = result_at(r, rep, e, w);
        if (!res->ok)
            continue;
        if (*first_ok == NULL)
            *first_ok = res;
        run_figures f = figures_of(res, r->workloads[w]);
        columns[0][n] = f.micros_per_op;
        columns[1][n] = f.ops_per_sec;
        columns[2][n] = f.mb_per_sec;
        columns[3][n] = f.wamp;
        columns[4][n] = f.space;
        columns[5][n] = f.tail;
        n++;
    }
    run_figures m = {median(columns[0], n), median(columns[1], n), median(columns[2], n),
                     median(columns[3], n), median(columns[4], n), median(columns[5], n)};
    for (int c = 0; c < 6; c++)
        free(columns[c]);
    return m;
}

/* Index of kv among the engines run, or -1. */
static int kv_engine_index(const bench_runner *r)
{
    for (size_t e = 0; e < r->engine_count; e++) {
        if (r->engines[e] == &bench_kv_engine)
            return (int)e;
    }
    return -1;
}

typedef struct workload_ratio {
    bool valid;
    double kv_ops_per_sec, peer_ops_per_sec, ratio;
    const char *peer;
} workload_ratio;

static workload_ratio ratio_for(bench_runner *r, size_t w)
{
    workload_ratio ratio = {.valid = false};
    int kv = kv_engine_index(r);
    if (kv < 0)
        return ratio;
    const run_result *any;
    ratio.kv_ops_per_sec = median_figures(r, (size_t)kv, w, &any).ops_per_sec;
    ratio.peer_ops_per_sec = NAN;
    for (size_t e = 0; e < r->engine_count; e++) {
        if ((int)e == kv)
            continue;
        double ops = median_figures(r, e, w, &any).ops_per_sec;
        if (!isnan(ops) && (isnan(ratio.peer_ops_per_sec) || ops > ratio.peer_ops_per_sec)) {
            ratio.peer_ops_per_sec = ops;
            ratio.peer = r->engines[e]->name;
        }
    }
    if (isnan(ratio.kv_ops_per_sec) || isnan(ratio.peer_ops_per_sec) || ratio.peer_ops_per_sec <= 0)
        return ratio;
    ratio.ratio = ratio.kv_ops_per_sec / ratio.peer_ops_per_sec;
    ratio.valid = true;
    return ratio;
}

static void print_medians(bench_runner *r)
{
    printf("== median of %d repetitions\n", r->settings.repeat);
    for (size_t e = 0; e < r->engine_count; e++) {
        for (size_t w = 0; w < r->workload_count; w++) {
            const run_result *first_ok;
            run_figures m = median_figures(r, e, w, &first_ok);
            if (first_ok == NULL)
                print_error(r->engines[e]->name, r->workloads[w], "no successful run");
            else
                print_figures(r->engines[e]->name, r->workloads[w], &m, first_ok);
        }
    }
}

static void print_ratios(bench_runner *r)
{
    if (kv_engine_index(r) < 0 || r->engine_count < 2)
        return;
    printf("== kv / best peer (ops/sec)\n");
    for (size_t w = 0; w < r->workload_count; w++) {
        workload_ratio ratio = ratio_for(r, w);
        if (!ratio.valid)
            printf("%-12s : n/a\n", r->workloads[w]->name);
        else
            printf("%-12s : %.2f (kv %.0f ops/sec; best peer %s %.0f ops/sec)\n",
                   r->workloads[w]->name, ratio.ratio, ratio.kv_ops_per_sec, ratio.peer,
                   ratio.peer_ops_per_sec);
    }
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* A number, or null for NaN (JSON has no NaN). */
static void json_number(FILE *f, double x)
{
    if (isnan(x) || isinf(x))
        fputs("null", f);
    else
        fprintf(f, "%.6g", x);
}

static void json_figures(FILE *f, const run_figures *fig)
{
    fputs("\"micros_per_op\": ", f);
    json_number(f, fig->micros_per_op);
    fputs(", \"ops_per_sec\": ", f);
    json_number(f, fig->ops_per_sec);
    fputs(", \"mb_per_sec\": ", f);
    json_number(f, fig->mb_per_sec);
    fputs(", \"wamp\": ", f);
    json_number(f, fig->wamp);
    fputs(", \"space\": ", f);
    json_number(f, fig->space);
    fputs(", \"tail\": ", f);
    json_number(f, fig->tail);
}

static void json_settings(FILE *f, const bench_settings *s)
{
    fprintf(f,
            "  \"settings\": {\"num\": %llu, \"key_size\": %zu, \"value_size\": %zu, "
            "\"sync_num\": %llu, \"write_buffer_size\": %zu, \"cache_size\": %zu, "
            "\"block_size\": %d, \"bloom_bits\": %d, \"compression\": \"%s\", \"repeat\": %d, "
            "\"seed\": %llu, \"db\": ",
            (unsigned long long)s->num, s->key_size, s->value_size, (unsigned long long)s->sync_num,
            s->write_buffer_size, s->cache_size, BENCH_BLOCK_SIZE, s->bloom_bits,
            s->snappy ? "snappy" : "none", s->repeat, (unsigned long long)s->seed);
    json_string(f, s->db_dir);
    fputs("},\n", f);
}

static void json_run(FILE *f, bench_runner *r, int rep, size_t e, size_t w)
{
    const run_result *res = result_at(r, rep, e, w);
    fputs("    {\"engine\": ", f);
    json_string(f, r->engines[e]->name);
    fputs(", \"workload\": ", f);
    json_string(f, r->workloads[w]->name);
    fprintf(f, ", \"repetition\": %d, \"ok\": %s", rep + 1, res->ok ? "true" : "false");
    if (!res->ok) {
        fputs(", \"error\": ", f);
        json_string(f, res->ran ? res->error : "not run");
    }
    fprintf(f,
            ", \"ops\": %llu, \"seconds\": %.9f, \"user_bytes\": %llu, "
            "\"user_write_bytes\": %llu, \"found\": %llu, \"io_available\": %s, "
            "\"write_bytes\": %llu, \"cancelled_write_bytes\": %llu, \"wchar\": %llu, "
            "\"read_bytes\": %llu, \"dir_bytes\": %llu, \"du_bytes\": %llu, "
            "\"live_bytes\": %llu, ",
            (unsigned long long)res->ops, res->seconds, (unsigned long long)res->user_bytes,
            (unsigned long long)res->user_write_bytes, (unsigned long long)res->found,
            res->io.available ? "true" : "false", (unsigned long long)res->io.write_bytes,
            (unsigned long long)res->io.cancelled_write_bytes, (unsigned long long)res->io.wchar,
            (unsigned long long)res->io.read_bytes, (unsigned long long)res->dir_bytes,
            (unsigned long long)res->du_bytes, (unsigned long long)res->live_bytes);
    run_figures fig =
        res->ok ? figures_of(res, r->workloads[w]) : (run_figures){NAN, NAN, NAN, NAN, NAN, NAN};
    json_figures(f, &fig);
    fputs("}", f);
}

static int write_json(bench_runner *r, const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "kv_bench: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "{\n  \"kv_bench_format\": 1,\n  \"kv_version\": \"%s\",\n", KV_VERSION_STRING);
    json_settings(f, &r->settings);
    fputs("  \"runs\": [\n", f);
    bool first = true;
    for (int rep = 0; rep < r->settings.repeat; rep++) {
        for (size_t e = 0; e < r->engine_count; e++) {
            for (size_t w = 0; w < r->workload_count; w++) {
                fputs(first ? "" : ",\n", f);
                first = false;
                json_run(f, r, rep, e, w);
            }
        }
    }
    fputs("\n  ],\n  \"medians\": [\n", f);
    first = true;
    for (size_t e = 0; e < r->engine_count; e++) {
        for (size_t w = 0; w < r->workload_count; w++) {
            const run_result *first_ok;
            run_figures m = median_figures(r, e, w, &first_ok);
            fputs(first ? "    {\"engine\": " : ",\n    {\"engine\": ", f);
            first = false;
            json_string(f, r->engines[e]->name);
            fputs(", \"workload\": ", f);
            json_string(f, r->workloads[w]->name);
            fputs(", ", f);
            json_figures(f, &m);
            fputs("}", f);
        }
    }
    fputs("\n  ],\n  \"ratios\": [\n", f);
    first = true;
    for (size_t w = 0; kv_engine_index(r) >= 0 && w < r->workload_count; w++) {
        workload_ratio ratio = ratio_for(r, w);
        fputs(first ? "    {\"workload\": " : ",\n    {\"workload\": ", f);
        first = false;
        json_string(f, r->workloads[w]->name);
        fputs(", \"kv_ops_per_sec\": ", f);
        json_number(f, ratio.valid ? ratio.kv_ops_per_sec : NAN);
        fputs(", \"best_peer\": ", f);
        if (ratio.valid)
            json_string(f, ratio.peer);
        else
            fputs("null", f);
        fputs(", \"best_peer_ops_per_sec\": ", f);
        json_number(f, ratio.valid ? ratio.peer_ops_per_sec : NAN);
        fputs(", \"ratio\": ", f);
        json_number(f, ratio.valid ? ratio.ratio : NAN);
        fputs("}", f);
    }
    fputs("\n  ]\n}\n", f);
    if (fclose(f) != 0) {
        fprintf(stderr, "kv_bench: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- command line ---- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: kv_bench [--option=value ...]\n"
            "  --benchmarks=LIST        comma-separated, run in order (default\n"
            "                           %s)\n"
            "                           fillseq fillrandom overwrite readrandom readseq\n"
            "                           deleterandom fillsync\n"
            "  --engines=LIST           kv, rocksdb, leveldb (default: all compiled in)\n"
            "  --db=DIR                 parent of one directory per engine (/tmp/kv_bench)\n"
            "  --num=N                  operations per workload and key space (1000000)\n"
            "  --value_size=BYTES       (100)\n"
            "  --key_size=BYTES         zero-padded decimal keys (16)\n"
            "  --sync_num=N             operations of fillsync (10000)\n"
            "  --repeat=R               repetitions, engine order rotated; medians (1)\n"
            "  --write_buffer_size=B    memtable size (64M)\n"
            "  --cache_size=B           block cache size (64M)\n"
            "  --bloom_bits=N           bloom filter bits per key, 0 for none (10)\n"
            "  --compression=snappy|none (snappy)\n"
            "  --seed=N                 base seed of the key sequences (301)\n"
            "  --quick                  num=100000, sync_num=1000 unless given: a demo/smoke run\n"
            "  --json=FILE              write all figures as JSON\n"
            "Sizes take a K, M or G suffix (powers of 1024).\n",
            DEFAULT_BENCHMARKS);
}

/* Parses a non-negative integer with an optional K/M/G suffix. */
static bool parse_size(const char *text, uint64_t *out)
{
    if (text[0] < '0' || text[0] > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0)
        return false;
    uint64_t scale = 1;
    if (*end == 'K' || *end == 'k')
        scale = 1ull << 10;
    else if (*end == 'M' || *end == 'm')
        scale = 1ull << 20;
    else if (*end == 'G' || *end == 'g')
        scale = 1ull << 30;
    if (scale != 1)
        end++;
    if (*end != '\0' || v > UINT64_MAX / scale)
        return false;
    *out = v * scale;
    return true;
}

/* Returns the value of "--name=value" if arg is that option, else NULL. */
static const char *option_value(const char *arg, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, n) != 0 || arg[2 + n] != '=')
        return NULL;
    return arg + 3 + n;
}

static int bad_argument(const char *arg)
{
    fprintf(stderr, "kv_bench: bad argument: %s (see --help)\n", arg);
    return 2;
}

/* Fills settings from argv; returns 0, or an exit status (help: -1). */
static int parse_arguments(int argc, char **argv, bench_settings *s)
{
    *s = (bench_settings){
        .num = 1000000,
        .value_size = 100,
        .key_size = 16,
        .benchmarks = DEFAULT_BENCHMARKS,
        .engines = NULL,
        .db_dir = "/tmp/kv_bench",
        .repeat = 1,
        .write_buffer_size = 64u << 20,
        .cache_size = 64u << 20,
        .bloom_bits = 10,
        .snappy = true,
        .sync_num = 10000,
        .json_path = NULL,
        .seed = 301,
    };
    bool quick = false, num_given = false, sync_num_given = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *v;
        uint64_t n;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return -1;
        } else if (strcmp(arg, "--quick") == 0) {
            quick = true;
        } else if ((v = option_value(arg, "benchmarks"))) {
            s->benchmarks = v;
        } else if ((v = option_value(arg, "engines"))) {
            s->engines = v;
        } else if ((v = option_value(arg, "db"))) {
            if (v[0] == '\0')
                return bad_argument(arg);
            s->db_dir = v;
        } else if ((v = option_value(arg, "json"))) {
            s->json_path = v;
        } else if ((v = option_value(arg, "compression"))) {
            if (strcmp(v, "snappy") == 0)
                s->snappy = true;
            else if (strcmp(v, "none") == 0)
                s->snappy = false;
            else
                return bad_argument(arg);
        } else if ((v = option_value(arg, "num"))) {
            if (!parse_size(v, &s->num) || s->num == 0)
                return bad_argument(arg);
            num_given = true;
        } else if ((v = option_value(arg, "sync_num"))) {
            if (!parse_size(v, &s->sync_num) || s->sync_num == 0)
                return bad_argument(arg);
            sync_num_given = true;
        } else if ((v = option_value(arg, "value_size"))) {
            if (!parse_size(v, &n) || n == 0 || n > (64u << 20))
                return bad_argument(arg);
            s->value_size = (size_t)n;
        } else if ((v = option_value(arg, "key_size"))) {
            if (!parse_size(v, &n) || n < 1 || n > 1024)
                return bad_argument(arg);
            s->key_size = (size_t)n;
        } else if ((v = option_value(arg, "repeat"))) {
            if (!parse_size(v, &n) || n < 1 || n > 1000)
                return bad_argument(arg);
            s->repeat = (int)n;
        } else if ((v = option_value(arg, "write_buffer_size"))) {
            if (!parse_size(v, &n) || n < 4096 || n > SIZE_MAX)
                return bad_argument(arg);
            s->write_buffer_size = (size_t)n;
        } else if ((v = option_value(arg, "cache_size"))) {
            if (!parse_size(v, &n) || n > SIZE_MAX)
                return bad_argument(arg);
            s->cache_size = (size_t)n;
        } else if ((v = option_value(arg, "bloom_bits"))) {
            if (!parse_size(v, &n) || n > 64)
                return bad_argument(arg);
            s->bloom_bits = (int)n;
        } else if ((v = option_value(arg, "seed"))) {
            if (!parse_size(v, &s->seed))
                return bad_argument(arg);
        } else {
            return bad_argument(arg);
        }
    }
    if (quick && !num_given)
        s->num = 100000;
    if (quick && !sync_num_given)
        s->sync_num = 1000;
    /* Every key index below num must fit in key_size decimal digits. */
    uint64_t limit = 1;
    for (size_t d = 0; d < s->key_size && limit <= s->num; d++)
        limit *= 10;
    if (limit < s->num) {
        fprintf(stderr, "kv_bench: --key_size=%zu is too small for --num=%llu\n", s->key_size,
                (unsigned long long)s->num);
        return 2;
    }
    return 0;
}

/* Splits a comma-separated list into its items (modifies the copy it makes). */
static size_t split_list(const char *list, char ***items)
{
    char *copy = strdup(list);
    if (copy == NULL)
        abort();
    size_t cap = 1;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    *items = bench_calloc(cap + 1, sizeof(char *));
    size_t n = 0;
    for (char *save = NULL, *item = strtok_r(copy, ",", &save); item != NULL;
         item = strtok_r(NULL, ",", &save))
        (*items)[n++] = item;
    if (n == 0)
        free(copy);
    return n;
}

static void free_list(char **items, size_t n)
{
    if (n > 0)
        free(items[0]); /* the copy all items point into */
    free(items);
}

/* Resolves --engines and --benchmarks into the runner; 0 or exit status 2. */
static int select_engines_and_workloads(bench_runner *r)
{
    char **names;
    if (r->settings.engines == NULL) {
        for (size_t i = 0; i < bench_engine_count; i++)
            r->engines[r->engine_count++] = bench_engines[i];
    } else {
        size_t n = split_list(r->settings.engines, &names);
        for (size_t i = 0; i < n; i++) {
            const bench_engine *found = NULL;
            for (size_t c = 0; c < bench_engine_count; c++) {
                if (strcmp(names[i], bench_engines[c]->name) == 0)
                    found = bench_engines[c];
            }
            bool duplicate = false;
            for (size_t e = 0; e < r->engine_count; e++)
                duplicate = duplicate || r->engines[e] == found;
            if (found == NULL || duplicate) {
                fprintf(stderr, "kv_bench: %s engine: %s (compiled in:",
                        found == NULL ? "unknown" : "repeated", names[i]);
                for (size_t c = 0; c < bench_engine_count; c++)
                    fprintf(stderr, " %s", bench_engines[c]->name);
                fprintf(stderr, ")\n");
                free_list(names, n);
                return 2;
            }
            r->engines[r->engine_count++] = found;
        }
        free_list(names, n);
    }
    if (r->engine_count == 0) {
        fprintf(stderr, "kv_bench: no engine selected\n");
        return 2;
    }

    size_t n = split_list(r->settings.benchmarks, &names);
    r->workloads = bench_calloc(n, sizeof *r->workloads);
    for (size_t i = 0; i < n; i++) {
        const workload_def *found = NULL;
        for (size_t w = 0; w < WORKLOAD_COUNT; w++) {
            if (strcmp(names[i], WORKLOADS[w].name) == 0)
                found = &WORKLOADS[w];
        }
        if (found == NULL) {
            fprintf(stderr, "kv_bench: unknown benchmark: %s\n", names[i]);
            free_list(names, n);
            return 2;
        }
        r->workloads[r->workload_count++] = found;
    }
    free_list(names, n);
    if (r->workload_count == 0) {
        fprintf(stderr, "kv_bench: no benchmark selected\n");
        return 2;
    }
    return 0;
}

static void print_header(const bench_runner *r)
{
    const bench_settings *s = &r->settings;
    printf("Compiled:   ");
    for (size_t e = 0; e < bench_engine_count; e++) {
        const bench_engine *engine = bench_engines[e];
        const char *version = engine->version != NULL ? engine->version() : NULL;
        printf("%s%s%s%s", e ? ", " : "", engine->name, version ? " " : "", version ? version : "");
    }
    printf("\n");
    printf("Engines:    ");
    for (size_t e = 0; e < r->engine_count; e++)
        printf("%s%s", e ? ", " : "", r->engines[e]->name);
    printf("\n");
    printf("Benchmarks: ");
    for (size_t w = 0; w < r->workload_count; w++)
        printf("%s%s", w ? "," : "", r->workloads[w]->name);
    printf("\n");
    printf("Keys:       %zu bytes each (zero-padded decimal)\n", s->key_size);
    printf("Values:     %zu bytes each (about %zu after compression)\n", s->value_size,
           s->value_size / 2);
    printf("Entries:    %llu (fillsync: %llu)\n", (unsigned long long)s->num,
           (unsigned long long)s->sync_num);
    printf("Settings:   write buffer %zu, block cache %zu, block size %d, bloom %d bits/key, "
           "compression %s, WAL without per-write fsync\n",
           s->write_buffer_size, s->cache_size, BENCH_BLOCK_SIZE, s->bloom_bits,
           s->snappy ? "snappy" : "none");
    printf("Directory:  %s/ENGINE\n", s->db_dir);
    printf("Repeat:     %d\n", s->repeat);
    FILE *cpuinfo = fopen("/proc/cpuinfo", "r");
    if (cpuinfo != NULL) {
        char line[256];
        int cpus = 0;
        char model[256] = "";
        while (fgets(line, sizeof line, cpuinfo) != NULL) {
            if (strncmp(line, "model name", 10) == 0) {
                cpus++;
                const char *colon = strchr(line, ':');
                if (colon != NULL)
                    snprintf(model, sizeof model, "%s", colon + 2);
            }
        }
        fclose(cpuinfo);
        model[strcspn(model, "\n")] = '\0';
        printf("CPU:        %d x %s\n", cpus, model);
    }
    printf("Note:       caches are not dropped before reads\n");
}

int main(int argc, char **argv)
{
    bench_runner runner = {0};
    bench_runner *r = &runner;
    int rc = parse_arguments(argc, argv, &r->settings);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    rc = select_engines_and_workloads(r);
    if (rc != 0)
        return rc;
    if (make_directories(r->settings.db_dir) != 0) {
        fprintf(stderr, "kv_bench: %s\n", bench_error);
        return 1;
    }

    const bench_settings *s = &r->settings;
    r->results =
        bench_calloc((size_t)s->repeat * r->engine_count * r->workload_count, sizeof *r->results);
    value_source_init(&r->values, s->value_size);
    r->present = bench_calloc((size_t)(s->num + 7) / 8, 1);
    r->key_order = bench_calloc((size_t)s->num, sizeof *r->key_order);
    r->key = bench_malloc(s->key_size);

    print_header(r);
    bool all_ok = true;
    for (int rep = 0; rep < s->repeat; rep++) {
        /* Rotate the order so that no engine always runs first (warm page
         * cache, other users' load) — each takes every position in turn. */
        printf("== repetition %d of %d: engines", rep + 1, s->repeat);
        for (size_t i = 0; i < r->engine_count; i++)
            printf("%s %s", i ? "," : "", r->engines[(i + (size_t)rep) % r->engine_count]->name);
        printf("\n");
        fflush(stdout);
        for (size_t i = 0; i < r->engine_count; i++)
            all_ok = run_engine(r, rep, (i + (size_t)rep) % r->engine_count) && all_ok;
    }
    if (s->repeat > 1)
        print_medians(r);
    print_ratios(r);
    if (s->json_path != NULL && write_json(r, s->json_path) != 0)
        all_ok = false;

    free(r->key);
    free(r->key_order);
    free(r->present);
    free(r->values.data);
    free(r->workloads);
    free(r->results);
    return all_ok ? 0 : 1;
}
