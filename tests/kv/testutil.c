#include "testutil.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *path)
{
    nftw(path, remove_entry, 64, FTW_DEPTH | FTW_PHYS);
}

char *kv_test_tmpdir(const char *name)
{
    const char *base = getenv("KV_TEST_TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    mkdir(base, 0755);
    size_t n = strlen(base) + strlen(name) + 64;
    char *path = malloc(n);
    assert_non_null(path);
    snprintf(path, n, "%s/kvtest-%s-%ld", base, name, (long)getpid());
    remove_tree(path);
    if (mkdir(path, 0755) != 0) {
        fprintf(stderr, "mkdir %s: %s\n", path, strerror(errno));
        fail();
    }
    return path;
}

void kv_test_cleanup_dir(char *path)
{
    if (path == NULL)
        return;
    remove_tree(path);
    free(path);
}

void kv_test_rng_init(kv_test_rng *rng, uint64_t seed)
{
    rng->state = seed ? seed : 0x9e3779b97f4a7c15ull;
}

uint64_t kv_test_rng_next(kv_test_rng *rng)
{
    /* splitmix64 */
    uint64_t z = (rng->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t kv_test_rng_uniform(kv_test_rng *rng, uint64_t n)
{
    return kv_test_rng_next(rng) % n;
}

void kv_test_rng_bytes(kv_test_rng *rng, char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)(kv_test_rng_next(rng) & 0xff);
}

bool kv_test_long_mode(void)
{
    const char *v = getenv("KV_TEST_LONG");
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

uint64_t kv_test_seed(uint64_t default_seed)
{
    const char *v = getenv("KV_TEST_SEED");
    if (v == NULL || v[0] == '\0')
        return default_seed;
    return strtoull(v, NULL, 0);
}
