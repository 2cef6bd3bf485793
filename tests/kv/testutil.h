/*
 * testutil.h — shared helpers for the kv tests: scratch directories, a
 * seeded random generator, and the long-mode switch.
 *
 *   KV_TEST_TMPDIR  where scratch directories go (ctest sets it; else /tmp)
 *   KV_TEST_LONG=1  run the long variants of randomized tests
 *   KV_TEST_SEED=N  override the fixed seed of randomized tests
 */
#ifndef KV_TESTUTIL_H
#define KV_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* A fresh, empty directory named after `name` (malloc'd path). */
char *kv_test_tmpdir(const char *name);
/* rm -rf path, then free(path). */
void kv_test_cleanup_dir(char *path);

typedef struct kv_test_rng {
    uint64_t state;
} kv_test_rng;

void kv_test_rng_init(kv_test_rng *rng, uint64_t seed);
uint64_t kv_test_rng_next(kv_test_rng *rng);
/* Uniform in [0, n); n > 0. */
uint64_t kv_test_rng_uniform(kv_test_rng *rng, uint64_t n);
/* Fills buf with n random bytes. */
void kv_test_rng_bytes(kv_test_rng *rng, char *buf, size_t n);

bool kv_test_long_mode(void);
/* KV_TEST_SEED if set, else default_seed. */
uint64_t kv_test_seed(uint64_t default_seed);

#endif
