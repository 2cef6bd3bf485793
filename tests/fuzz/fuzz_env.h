/*
 * fuzz_env.h — an in-memory kv_env for the fuzz targets: files are byte
 * buffers keyed by path, so a target hands the engine's real readers (and
 * writers) a "file" made of the fuzzer's input without touching a disk.
 *
 * Each kv_random opened on it reads from its own malloc'd copy of exactly
 * the file's size, so AddressSanitizer catches a read one byte past the
 * end. Paths ending in ".sst" are "mapped" (kv_random.map set to that
 * copy), as env_posix.c maps table files, so table reads take the same
 * kv_random_view path as in production.
 *
 * Not thread-safe; one env per fuzz input.
 */
#ifndef LSMFS_FUZZ_ENV_H
#define LSMFS_FUZZ_ENV_H

#include "env.h"

kv_env *fuzz_env_create(void);
/* Frees the env and every file still in it. Handles opened on it must be
 * closed first. */
void fuzz_env_destroy(kv_env *env);

/* Creates or replaces the file `path` with a copy of data[0..size). */
void fuzz_env_put_file(kv_env *env, const char *path, const void *data, size_t size);

/* The current contents of `path` (borrowed, valid until the file changes),
 * or false when there is no such file. */
bool fuzz_env_get_file(kv_env *env, const char *path, kv_slice *contents);

#endif
