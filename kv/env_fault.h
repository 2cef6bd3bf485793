/*
 * env_fault.h — a kv_env for tests that wraps the posix env and simulates
 * what a power cut or a full disk does to an engine (LevelDB's
 * FaultInjectionTestEnv, extended):
 *
 *  - Data really goes to the file system, but the env remembers, per file,
 *    how many bytes were synced, and which files were created or renamed
 *    since their directory was last synced.
 *  - kv_env_fault_power_cut() truncates every file to its synced length,
 *    deletes files whose creation was never made durable by a directory
 *    sync, and undoes renames that were not made durable. The database must
 *    be closed (or its threads stopped) before calling it; tests then reopen.
 *  - Injected errors: after a budget of written bytes every write fails with
 *    KV_NO_SPACE (a full disk); or each write/sync fails with probability p.
 *
 * Thread-safe.
 */
#ifndef KV_ENV_FAULT_H
#define KV_ENV_FAULT_H

#include "env.h"

kv_env *kv_env_fault_create(void);
void kv_env_fault_destroy(kv_env *env);

/* Simulates losing power: see above. Returns 0 or an error of the real fs. */
int kv_env_fault_power_cut(kv_env *env);

/* From now on, writes fail with KV_NO_SPACE once `bytes` more bytes have been
 * written (UINT64_MAX: never). A write that does not fit is not performed at
 * all (like a short write followed by ENOSPC, it leaves nothing partial). */
void kv_env_fault_set_space_budget(kv_env *env, uint64_t bytes);

/* Each write and each sync fails with KV_IO_ERROR with probability
 * one_in > 0 ? 1/one_in : 0, drawn from `seed`. */
void kv_env_fault_set_error_rate(kv_env *env, uint32_t one_in, uint64_t seed);

/* When set, writes and syncs fail with KV_IO_ERROR (a dead disk). */
void kv_env_fault_set_filesystem_active(kv_env *env, bool active);

/* Counters: syncs performed, bytes written. */
uint64_t kv_env_fault_syncs(kv_env *env);
uint64_t kv_env_fault_bytes_written(kv_env *env);

#endif
