/*
 * test_env.c — the posix env (buffered appends, reads, renames, listing,
 * the LOCK), the fault-injecting env (power cut, full disk, random errors,
 * dead disk) and a smoke test of the info LOG.
 */
#include "testutil.h"

#include "env.h"
#include "env_fault.h"
#include "info_log.h"
#include "kv.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---- */

static char *path_in(const char *dir, const char *name)
{
    return kv_sprintf("%s/%s", dir, name);
}

static uint64_t disk_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

/* Writes a file directly with stdio, bypassing every env. */
static void write_raw(const char *path, const char *contents)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(contents, 1, strlen(contents), f), strlen(contents));
    assert_int_equal(fclose(f), 0);
}

static void expect_contents(const char *path, const void *expected, size_t n)
{
    kv_buf got = {0};
    int rc = kv_env_read_file(kv_env_posix(), path, &got);
    if (rc != 0) {
        print_error("%s\n", kv_errmsg());
        fail();
    }
    if (got.size != n || (n > 0 && memcmp(got.data, expected, n) != 0)) {
        print_error("%s: %zu bytes, expected %zu\n", path, got.size, n);
        fail();
    }
    kv_buf_free(&got);
}

static void expect_str(const char *path, const char *expected)
{
    expect_contents(path, expected, strlen(expected));
}

static void expect_message_has(const char *needle)
{
    if (strstr(kv_errmsg(), needle) == NULL) {
        print_error("message \"%s\" lacks \"%s\"\n", kv_errmsg(), needle);
        fail();
    }
}

static void append_str(kv_writable *file, const char *s)
{
    assert_int_equal(kv_writable_append(file, s, strlen(s)), 0);
}

/* ---- posix env ---- */

static void test_append_flush_sync_read_back(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("env-append");
    char *path = path_in(dir, "f");
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(1));
    size_t total = 200000;
    char *data = malloc(total);
    assert_non_null(data);
    kv_test_rng_bytes(&rng, data, total);

    kv_writable *file;
    assert_int_equal(kv_env_new_writable(kv_env_posix(), path, 4096, &file), 0);
    assert_non_null(file);
    assert_string_equal(file->path, path);
    assert_int_equal(fcntl(file->fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    size_t done = 0;
    while (done < total) {
        /* Mix of tiny, buffer-sized and larger-than-buffer appends. */
        size_t n = kv_test_rng_uniform(&rng, 4) == 0 ? kv_test_rng_uniform(&rng, 10000)
                                                     : kv_test_rng_uniform(&rng, 100);
        if (n > total - done)
            n = total - done;
        assert_int_equal(kv_writable_append(file, data + done, n), 0);
        done += n;
        assert_int_equal(file->size, done);
        assert_true(file->flushed <= file->size);
        assert_int_equal(file->size - file->flushed, file->buffer.size);
        assert_int_equal(disk_size(path), file->flushed);
        if (kv_test_rng_uniform(&rng, 50) == 0) {
            assert_int_equal(kv_writable_flush(file), 0);
            assert_int_equal(file->flushed, done);
        }
    }
    assert_int_equal(kv_writable_sync(file), 0);
    assert_int_equal(file->flushed, total);
    assert_int_equal(disk_size(path), total);
    append_str(file, "tail");
    assert_int_equal(kv_writable_close(file), 0); /* close flushes */
    assert_int_equal(disk_size(path), total + 4);

    kv_buf back = {0};
    assert_int_equal(kv_env_read_file(kv_env_posix(), path, &back), 0);
    assert_int_equal(back.size, total + 4);
    assert_memory_equal(back.data, data, total);
    assert_memory_equal(back.data + total, "tail", 4);
    kv_buf_free(&back);

    /* Reopening for writing truncates. */
    assert_int_equal(kv_env_new_writable(kv_env_posix(), path, 0, &file), 0);
    assert_int_equal(disk_size(path), 0);
    assert_int_equal(kv_writable_close(file), 0);
    expect_contents(path, "", 0);

    free(data);
    free(path);
    kv_test_cleanup_dir(dir);
}

static void test_buffering(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("env-buffering");
    char *path = path_in(dir, "f");
    char big[1000];
    memset(big, 'b', sizeof(big));

    kv_writable *file;
    assert_int_equal(kv_env_new_writable(kv_env_posix(), path, 100, &file), 0);
    assert_int_equal(kv_writable_append(file, big, 30), 0);
    assert_int_equal(disk_size(path), 0); /* buffered */
    assert_int_equal(kv_writable_append(file, big, 70), 0);
    assert_int_equal(disk_size(path), 0); /* exactly full, still buffered */
    assert_int_equal(kv_writable_append(file, big, 1), 0);
    assert_int_equal(disk_size(path), 100); /* the full buffer went out first */
    assert_int_equal(file->buffer.size, 1);
    assert_int_equal(kv_writable_append(file, big, 500), 0);
    assert_int_equal(disk_size(path), 601); /* large append goes straight out */
    assert_int_equal(file->buffer.size, 0);
    assert_int_equal(kv_writable_append(file, big, 0), 0);
    assert_int_equal(kv_writable_flush(file), 0); /* empty flush is fine */
    assert_int_equal(kv_writable_close(file), 0);
    assert_int_equal(disk_size(path), 601);

    /* Unbuffered: every append reaches the kernel at once. */
    assert_int_equal(kv_env_new_writable(kv_env_posix(), path, 0, &file), 0);
    append_str(file, "abc");
    assert_int_equal(disk_size(path), 3);
    append_str(file, "d");
    assert_int_equal(disk_size(path), 4);
    assert_int_equal(kv_writable_close(file), 0);
    expect_str(path, "abcd");
    free(path);
    kv_test_cleanup_dir(dir);
}

/* /dev/full fails every write with ENOSPC: KV_NO_SPACE naming the file, and
 * the bytes stay pending instead of being lost or half-counted. */
static void test_enospc(void **state)
{
    (void)state;
    if (access("/dev/full", W_OK) != 0) {
        print_message("no /dev/full; skipped\n");
        skip();
    }
    kv_writable *file;
    assert_int_equal(kv_env_new_writable(kv_env_posix(), "/dev/full", 16, &file), 0);
    append_str(file, "0123456789");
    assert_int_equal(kv_writable_flush(file), KV_NO_SPACE);
    expect_message_has("/dev/full");
    assert_int_equal(file->size, 10);
    assert_int_equal(file->flushed, 0);
    assert_int_equal(file->buffer.size, 10);
    assert_int_equal(kv_writable_append(file, "0123456789", 10), KV_NO_SPACE);
    assert_int_equal(file->size, 20);
    assert_int_equal(file->buffer.size, 20);
    assert_int_equal(kv_writable_sync(file), KV_NO_SPACE);
    assert_int_equal(kv_writable_close(file), KV_NO_SPACE);
}

static void test_random_read(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("env-random");
    char *path = path_in(dir, "f");
    write_raw(path, "hello, world");

    kv_random *file;
    assert_int_equal(kv_env_new_random(kv_env_posix(), path, &file), 0);
    assert_int_equal(file->size, 12);
    assert_int_equal(fcntl(file->fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    char scratch[32];
    size_t got = 99;
    assert_int_equal(kv_random_read(file, 0, 5, scratch, &got), 0);
    assert_int_equal(got, 5);
    assert_memory_equal(scratch, "hello", 5);
    assert_int_equal(kv_random_read(file, 7, 5, scratch, &got), 0);
    assert_int_equal(got, 5);
    assert_memory_equal(scratch, "world", 5);
    /* Partial read at the end of the file. */
    assert_int_equal(kv_random_read(file, 9, 10, scratch, &got), 0);
    assert_int_equal(got, 3);
    assert_memory_equal(scratch, "rld", 3);
    assert_int_equal(kv_random_read(file, 12, 10, scratch, &got), 0);
    assert_int_equal(got, 0);
    assert_int_equal(kv_random_read(file, 1000, 10, scratch, &got), 0);
    assert_int_equal(got, 0);
    assert_int_equal(kv_random_read(file, 3, 0, scratch, &got), 0);
    assert_int_equal(got, 0);
    kv_random_close(file);
    kv_random_close(NULL);

    /* Empty file. */
    char *empty = path_in(dir, "empty");
    write_raw(empty, "");
    kv_buf buf = {0};
    kv_buf_append(&buf, "junk", 4);
    assert_int_equal(kv_env_read_file(kv_env_posix(), empty, &buf), 0);
    assert_int_equal(buf.size, 0);
    kv_buf_free(&buf);
    free(empty);
    free(path);
    kv_test_cleanup_dir(dir);
}

static void test_missing_files(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("env-missing");
    char *missing = path_in(dir, "no/such/file");
    kv_random *rfile = (kv_random *)1;
    assert_int_equal(kv_env_new_random(kv_env_posix(), missing, &rfile), KV_IO_ERROR);
    assert_null(rfile);
    expect_message_has(missing);
    kv_writable *wfile = (kv_writable *)1;
    assert_int_equal(kv_env_new_writable(kv_env_posix(), missing, 10, &wfile), KV_IO_ERROR);
    assert_null(wfile);
    expect_message_has(missing);
    kv_buf buf = {0};
    assert_int_equal(kv_env_read_file(kv_env_posix(), missing, &buf), KV_IO_ERROR);
    expect_message_has(missing);
    assert_int_equal(kv_env_remove(kv_env_posix(), missing), KV_IO_ERROR);
    expect_message_has(missing);
    assert_int_equal(kv_env_sync_dir(kv_env_posix(), missing), KV_IO_ERROR);
    expect_message_has(missing);
    assert_int_equal(kv_env_truncate(kv_env_posix(), missing, 0), KV_IO_ERROR);
    expect_message_has(missing);
    uint64_t size = 7;
    assert_int_equal(kv_env_file_size(missing, &size), KV_IO_ERROR);
    expect_message_has(missing);
    assert_false(kv_env_file_exists(missing));
    char **names;
    size_t count;
    assert_int_equal(kv_env_list_dir(missing, &names, &count), KV_IO_ERROR);
    expect_message_has(missing);
    free(missing);
    kv_test_cleanup_dir(dir);
}

static void test_rename_remove_truncate(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("env-rename");
    char *a = path_in(dir, "a"), *b = path_in(dir, "b");
    write_raw(a, "first");
    write_raw(b, "second");
    kv_env *env = kv_env_posix();
    assert_int_equal(kv_env_rename(env, a, b), 0); /* replaces b */
    assert_false(kv_env_file_exists(a));
    expect_str(b, "first");
    assert_int_equal(kv_env_rename(env, a, b), KV_IO_ERROR);
    expect_message_has(a);
    assert_int_equal(kv_env_truncate(env, b, 2), 0);
    expect_str(b, "fi");
    assert_int_equal(kv_env_remove(env, b), 0);
    assert_false(kv_env_file_exists(b));
    assert_int_equal(kv_env_remove(env, b), KV_IO_ERROR);
    assert_int_equal(kv_env_sync_dir(env, dir), 0);

    /* Whole-file write: atomic replace, no temporary left over. */
    assert_int_equal(kv_env_write_file_synced(env, a, kv_slice_from_str("v1")), 0);
    expect_str(a, "v1");
    assert_int_equal(kv_env_write_file_synced(env, a, kv_slice_from_str("version 2")), 0);
    expect_str(a, "version 2");
    assert_int_equal(kv_env_write_file_synced(env, a, kv_slice_make("", 0)), 0);
    expect_str(a, "");
    char **names;
    size_t count;
    assert_int_equal(kv_env_list_dir(dir, &names, &count), 0);
    assert_int_equal(count, 1);
    assert_string_equal(names[0], "a");
    kv_env_free_names(names, count);
    free(a);
    free(b);
    kv_test_cleanup_dir(dir);
}

static void test_dir_functions(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("env-dir");
    char **names;
    size_t count = 99;
    assert_int_equal(kv_env_list_dir(dir, &names, &count), 0);
    assert_int_equal(count, 0);
    kv_env_free_names(names, count);

    const char *made[] = {"zeta", "000002.sst", "LOCK", "CURRENT", "000010.log", "sub"};
    for (size_t i = 0; i < 5; i++) {
        char *p = path_in(dir, made[i]);
        write_raw(p, made[i]);
        assert_true(kv_env_file_exists(p));
        uint64_t size;
        assert_int_equal(kv_env_file_size(p, &size), 0);
        assert_int_equal(size, strlen(made[i]));
        free(p);
    }
    char *sub = path_in(dir, "sub");
    assert_int_equal(kv_env_mkdir(sub), 0);
    assert_int_equal(kv_env_mkdir(sub), 0); /* exists: fine */
    assert_true(kv_env_file_exists(sub));
    char *file_path = path_in(dir, "zeta");
    assert_int_not_equal(kv_env_mkdir(file_path), 0); /* a file is in the way */
    expect_message_has(file_path);
    char *deep = path_in(dir, "x/y");
    assert_int_equal(kv_env_mkdir(deep), KV_IO_ERROR);
    expect_message_has(deep);

    assert_int_equal(kv_env_list_dir(dir, &names, &count), 0);
    const char *sorted[] = {"000002.sst", "000010.log", "CURRENT", "LOCK", "sub", "zeta"};
    assert_int_equal(count, 6);
    for (size_t i = 0; i < count; i++)
        assert_string_equal(names[i], sorted[i]);
    kv_env_free_names(names, count);
    free(sub);
    free(file_path);
    free(deep);
    kv_test_cleanup_dir(dir);
}

/* In a forked child, tries to take the lock; exit status: 0 taken,
 * 1 KV_BUSY with the expected message, 2 anything else. */
static int lock_in_child(const char *lock_path)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        kv_file_lock *lock;
        int rc = kv_env_lock_file(lock_path, &lock);
        if (rc == 0)
            _exit(0);
        if (rc == KV_BUSY && strstr(kv_errmsg(), lock_path) != NULL &&
            strstr(kv_errmsg(), "held by another process") != NULL)
            _exit(1);
        _exit(2);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_lock(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("env-lock");
    char *lock_path = path_in(dir, "LOCK");
    kv_file_lock *lock;
    assert_int_equal(kv_env_lock_file(lock_path, &lock), 0);
    assert_non_null(lock);
    assert_true(kv_env_file_exists(lock_path));

    assert_int_equal(lock_in_child(lock_path), 1);
    /* A second lock from this same process is refused too. */
    kv_file_lock *second = (kv_file_lock *)1;
    assert_int_equal(kv_env_lock_file(lock_path, &second), KV_BUSY);
    assert_null(second);
    expect_message_has(lock_path);
    expect_message_has("is another lsmfs or kv program using this directory?");

    kv_env_unlock_file(lock);
    assert_int_equal(lock_in_child(lock_path), 0);
    assert_int_equal(kv_env_lock_file(lock_path, &lock), 0);
    kv_env_unlock_file(lock);
    kv_env_unlock_file(NULL);

    char *bad = path_in(dir, "missing/LOCK");
    assert_int_equal(kv_env_lock_file(bad, &lock), KV_IO_ERROR);
    expect_message_has(bad);
    free(bad);
    free(lock_path);
    kv_test_cleanup_dir(dir);
}

static void test_now_micros(void **state)
{
    (void)state;
    uint64_t a = kv_env_now_micros();
    usleep(2000);
    uint64_t b = kv_env_now_micros();
    assert_true(b >= a + 2000);
    assert_true(b < a + 10 * 1000 * 1000);
}

/* ---- fault env ---- */

/* A new file whose directory is synced once, so its name is durable. */
static kv_writable *durable_new_file(kv_env *env, const char *dir, const char *path,
                                     size_t buffer_size)
{
    kv_writable *file;
    assert_int_equal(kv_env_new_writable(env, path, buffer_size, &file), 0);
    assert_int_equal(kv_env_sync_dir(env, dir), 0);
    return file;
}

static void test_fault_unsynced_data_dropped(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("fault-unsynced");
    char *path = path_in(dir, "000001.log"), *never = path_in(dir, "never-synced");
    kv_env *env = kv_env_fault_create();

    kv_writable *file = durable_new_file(env, dir, path, 8);
    append_str(file, "synced|");
    assert_int_equal(kv_writable_sync(file), 0);
    append_str(file, "flushed but not synced|");
    assert_int_equal(kv_writable_flush(file), 0);
    append_str(file, "in buffer");
    assert_int_equal(kv_writable_close(file), 0);
    expect_str(path, "synced|flushed but not synced|in buffer");

    kv_writable *other = durable_new_file(env, dir, never, 0);
    append_str(other, "lost");
    assert_int_equal(kv_writable_close(other), 0);

    assert_int_equal(kv_env_fault_power_cut(env), 0);
    expect_str(path, "synced|");
    expect_str(never, ""); /* the name survives, the data does not */

    /* Tracking was reset: a second power cut changes nothing. */
    assert_int_equal(kv_env_fault_power_cut(env), 0);
    expect_str(path, "synced|");

    /* After the cut the file is just a durable file: reopening for reading
     * and another cut keep it. */
    kv_random *r;
    assert_int_equal(kv_env_new_random(env, path, &r), 0);
    char scratch[16];
    size_t got;
    assert_int_equal(kv_random_read(r, 0, sizeof(scratch), scratch, &got), 0);
    assert_int_equal(got, 7);
    kv_random_close(r);
    assert_int_equal(kv_env_fault_power_cut(env), 0);
    expect_str(path, "synced|");

    kv_env_fault_destroy(env);
    free(path);
    free(never);
    kv_test_cleanup_dir(dir);
}

static void test_fault_new_files_need_dir_sync(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("fault-dirsync");
    char *lost = path_in(dir, "lost"), *kept = path_in(dir, "kept");
    char *late = path_in(dir, "late");
    kv_env *env = kv_env_fault_create();

    /* Directory synced after the file's sync: kept whole. */
    kv_writable *file;
    assert_int_equal(kv_env_new_writable(env, kept, 0, &file), 0);
    append_str(file, "data");
    assert_int_equal(kv_writable_sync(file), 0);
    assert_int_equal(kv_writable_close(file), 0);
    /* Directory synced before the file's data: kept, with the data synced
     * after. */
    kv_writable *late_file;
    assert_int_equal(kv_env_new_writable(env, late, 0, &late_file), 0);
    assert_int_equal(kv_env_sync_dir(env, dir), 0);
    append_str(late_file, "late data");
    assert_int_equal(kv_writable_sync(late_file), 0);
    assert_int_equal(kv_writable_close(late_file), 0);

    /* Created and fsynced after the last directory sync: gone. */
    assert_int_equal(kv_env_new_writable(env, lost, 0, &file), 0);
    append_str(file, "data");
    assert_int_equal(kv_writable_sync(file), 0);
    assert_int_equal(kv_writable_close(file), 0);

    assert_true(kv_env_file_exists(lost));
    assert_int_equal(kv_env_fault_power_cut(env), 0);
    assert_false(kv_env_file_exists(lost));
    expect_str(late, "late data");
    expect_str(kept, "data");

    /* A sync of some other directory does not count. */
    char *sub = path_in(dir, "sub");
    assert_int_equal(kv_env_mkdir(sub), 0);
    assert_int_equal(kv_env_new_writable(env, lost, 0, &file), 0);
    assert_int_equal(kv_writable_close(file), 0);
    assert_int_equal(kv_env_sync_dir(env, sub), 0);
    /* The same directory spelled with a trailing slash counts. */
    char *late_sub = path_in(sub, "x");
    assert_int_equal(kv_env_new_writable(env, late_sub, 0, &file), 0);
    assert_int_equal(kv_writable_close(file), 0);
    char *sub_slash = kv_sprintf("%s/", sub);
    assert_int_equal(kv_env_sync_dir(env, sub_slash), 0);
    assert_int_equal(kv_env_fault_power_cut(env), 0);
    assert_false(kv_env_file_exists(lost));
    assert_true(kv_env_file_exists(late_sub));

    kv_env_fault_destroy(env);
    free(sub);
    free(sub_slash);
    free(late_sub);
    free(lost);
    free(kept);
    free(late);
    kv_test_cleanup_dir(dir);
}

static void test_fault_rename(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("fault-rename");
    char *target = path_in(dir, "CURRENT"), *tmp = path_in(dir, "CURRENT.tmp");
    char *a = path_in(dir, "a"), *b = path_in(dir, "b");
    write_raw(target, "old\n"); /* existing before the env: durable */
    write_raw(a, "durable a");
    kv_env *env = kv_env_fault_create();

    /* Replace by rename without a directory sync: undone by the cut. */
    kv_writable *file;
    assert_int_equal(kv_env_new_writable(env, tmp, 0, &file), 0);
    append_str(file, "new\n");
    assert_int_equal(kv_writable_sync(file), 0);
    assert_int_equal(kv_writable_close(file), 0);
    assert_int_equal(kv_env_rename(env, tmp, target), 0);
    expect_str(target, "new\n");
    /* Rename of a durable file, also not made durable. */
    assert_int_equal(kv_env_rename(env, a, b), 0);
    assert_int_equal(kv_env_fault_power_cut(env), 0);
    expect_str(target, "old\n");
    assert_false(kv_env_file_exists(tmp));
    expect_str(a, "durable a");
    assert_false(kv_env_file_exists(b));

    /* The same with the directory synced: it stays. */
    assert_int_equal(kv_env_write_file_synced(env, target, kv_slice_from_str("newer\n")), 0);
    assert_int_equal(kv_env_rename(env, a, b), 0);
    assert_int_equal(kv_env_sync_dir(env, dir), 0);
    assert_int_equal(kv_env_fault_power_cut(env), 0);
    expect_str(target, "newer\n");
    assert_false(kv_env_file_exists(tmp));
    assert_false(kv_env_file_exists(a));
    expect_str(b, "durable a");

    /* Rename carries the synced length with the file: the unsynced tail
     * is dropped at the new name. */
    assert_int_equal(kv_env_new_writable(env, a, 0, &file), 0);
    append_str(file, "kept");
    assert_int_equal(kv_writable_sync(file), 0);
    append_str(file, "+dropped");
    assert_int_equal(kv_writable_close(file), 0);
    assert_int_equal(kv_env_rename(env, a, b), 0);
    assert_int_equal(kv_env_rename(env, b, b), 0); /* onto itself: nothing */
    assert_int_equal(kv_env_sync_dir(env, dir), 0);
    assert_int_equal(kv_env_fault_power_cut(env), 0);
    expect_str(b, "kept");
    assert_false(kv_env_file_exists(a));

    /* Failed rename changes no records. */
    assert_int_equal(kv_env_rename(env, a, target), KV_IO_ERROR);
    assert_int_equal(kv_env_fault_power_cut(env), 0);
    expect_str(target, "newer\n");

    kv_env_fault_destroy(env);
    free(target);
    free(tmp);
    free(a);
    free(b);
    kv_test_cleanup_dir(dir);
}

static void test_fault_existing_files_durable(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("fault-existing");
    char *old = path_in(dir, "000003.sst"), *gone = path_in(dir, "000004.sst");
    write_raw(old, "table contents");
    write_raw(gone, "obsolete");
    kv_env *env = kv_env_fault_create();
    kv_buf buf = {0};
    assert_int_equal(kv_env_read_file(env, old, &buf), 0);
    assert_int_equal(buf.size, 14);
    kv_buf_free(&buf);
    assert_int_equal(kv_env_remove(env, gone), 0);
    /* Truncation of a durable file is durable only up to the new size. */
    char *grown = path_in(dir, "grown");
    write_raw(grown, "abc");
    assert_int_equal(kv_env_truncate(env, grown, 10), 0);
    assert_int_equal(disk_size(grown), 10);
    assert_int_equal(kv_env_fault_power_cut(env), 0);
    expect_str(old, "table contents");
    assert_false(kv_env_file_exists(gone)); /* removals are durable at once */
    expect_str(grown, "abc");
    kv_env_fault_destroy(env);
    free(old);
    free(gone);
    free(grown);
    kv_test_cleanup_dir(dir);
}

static void test_fault_space_budget(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("fault-space");
    char *path = path_in(dir, "f"), *other = path_in(dir, "g");
    kv_env *env = kv_env_fault_create();
    char data[200];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)('a' + i % 26);

    kv_env_fault_set_space_budget(env, 100);
    kv_writable *file;
    assert_int_equal(kv_env_new_writable(env, path, 0, &file), 0);
    assert_int_equal(kv_writable_append(file, data, 60), 0);
    assert_int_equal(kv_writable_append(file, data + 60, 50), KV_NO_SPACE);
    expect_message_has(path);
    assert_int_equal(disk_size(path), 60); /* nothing partial */
    assert_int_equal(file->size, 110);
    assert_int_equal(kv_writable_sync(file), KV_NO_SPACE);
    assert_int_equal(kv_env_fault_bytes_written(env), 60);

    /* A write that fits still goes through. */
    kv_writable *small;
    assert_int_equal(kv_env_new_writable(env, other, 0, &small), 0);
    assert_int_equal(kv_writable_append(small, "0123456789", 10), 0);
    assert_int_equal(kv_writable_close(small), 0);

    /* Space freed: the pending bytes go out, exactly once. */
    kv_env_fault_set_space_budget(env, 1000);
    assert_int_equal(kv_writable_sync(file), 0);
    assert_int_equal(disk_size(path), 110);
    assert_int_equal(kv_writable_append(file, data + 110, 90), 0);
    assert_int_equal(kv_writable_close(file), 0);
    expect_contents(path, data, 200);
    assert_int_equal(kv_env_fault_bytes_written(env), 210);

    /* Buffered writable: the buffer is kept across KV_NO_SPACE. */
    kv_env_fault_set_space_budget(env, 30);
    assert_int_equal(kv_env_new_writable(env, path, 64, &file), 0);
    assert_int_equal(kv_writable_append(file, data, 40), 0); /* buffered */
    assert_int_equal(kv_writable_append(file, data + 40, 40), KV_NO_SPACE);
    assert_int_equal(disk_size(path), 0);
    assert_int_equal(kv_writable_close(file), KV_NO_SPACE); /* frees anyway */
    assert_int_equal(disk_size(path), 0);
    kv_env_fault_set_space_budget(env, UINT64_MAX);
    assert_int_equal(kv_env_new_writable(env, path, 64, &file), 0);
    assert_int_equal(kv_writable_append(file, data, 200), 0);
    assert_int_equal(kv_writable_close(file), 0);
    expect_contents(path, data, 200);

    kv_env_fault_destroy(env);
    free(path);
    free(other);
    kv_test_cleanup_dir(dir);
}

/* Runs `ops` unbuffered 1-byte appends + syncs; returns a bitmap-ish
 * signature of which failed, and counts failures. */
static uint64_t run_with_errors(const char *path, uint32_t one_in, uint64_t seed, int ops,
                                int *failures)
{
    kv_env *env = kv_env_fault_create();
    kv_writable *file;
    assert_int_equal(kv_env_new_writable(env, path, 0, &file), 0);
    kv_env_fault_set_error_rate(env, one_in, seed);
    uint64_t signature = 0;
    *failures = 0;
    for (int i = 0; i < ops; i++) {
        int rc = i % 2 ? kv_writable_append(file, "x", 1) : kv_writable_sync(file);
        if (rc != 0) {
            assert_int_equal(rc, KV_IO_ERROR);
            (*failures)++;
            signature = signature * 31 + (uint64_t)i;
        }
    }
    kv_env_fault_set_error_rate(env, 0, 0);
    assert_int_equal(kv_writable_close(file), 0);
    /* Every append went out exactly once in the end. */
    assert_int_equal(disk_size(path), (uint64_t)ops / 2);
    kv_env_fault_destroy(env);
    return signature;
}

static void test_fault_error_rate(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("fault-errors");
    char *path = path_in(dir, "f");
    int failures;
    uint64_t s1 = run_with_errors(path, 4, 11, 2000, &failures);
    assert_true(failures > 350 && failures < 650);
    int again;
    assert_int_equal(run_with_errors(path, 4, 11, 2000, &again), s1); /* reproducible */
    assert_int_equal(again, failures);
    uint64_t s2 = run_with_errors(path, 4, 12, 2000, &again);
    assert_int_not_equal(s2, s1);
    run_with_errors(path, 0, 11, 2000, &again);
    assert_int_equal(again, 0);
    run_with_errors(path, 1, 11, 200, &again);
    assert_int_equal(again, 200);
    free(path);
    kv_test_cleanup_dir(dir);
}

static void test_fault_inactive_filesystem(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("fault-inactive");
    char *path = path_in(dir, "f"), *other = path_in(dir, "g");
    kv_env *env = kv_env_fault_create();
    kv_writable *file = durable_new_file(env, dir, path, 0);
    append_str(file, "before|");
    assert_int_equal(kv_writable_sync(file), 0);

    kv_env_fault_set_filesystem_active(env, false);
    assert_int_equal(kv_writable_append(file, "during|", 7), KV_IO_ERROR);
    expect_message_has(path);
    expect_message_has("inactive");
    assert_int_equal(kv_writable_sync(file), KV_IO_ERROR);
    assert_int_equal(kv_env_sync_dir(env, dir), KV_IO_ERROR);
    kv_writable *g = (kv_writable *)1;
    assert_int_equal(kv_env_new_writable(env, other, 0, &g), KV_IO_ERROR);
    assert_null(g);
    assert_false(kv_env_file_exists(other));
    assert_int_equal(kv_env_rename(env, path, other), KV_IO_ERROR);
    assert_int_equal(kv_env_remove(env, path), KV_IO_ERROR);
    assert_int_equal(kv_env_write_file_synced(env, other, kv_slice_from_str("x")), KV_IO_ERROR);
    expect_str(path, "before|");
    /* Reads still work. */
    kv_buf buf = {0};
    assert_int_equal(kv_env_read_file(env, path, &buf), 0);
    kv_buf_free(&buf);

    kv_env_fault_set_filesystem_active(env, true);
    assert_int_equal(kv_writable_sync(file), 0);
    expect_str(path, "before|during|");
    assert_int_equal(kv_writable_close(file), 0);
    assert_int_equal(kv_env_fault_power_cut(env), 0);
    expect_str(path, "before|during|");
    kv_env_fault_destroy(env);
    free(path);
    free(other);
    kv_test_cleanup_dir(dir);
}

static void test_fault_counters(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("fault-counters");
    char *path = path_in(dir, "f");
    kv_env *env = kv_env_fault_create();
    assert_int_equal(kv_env_fault_syncs(env), 0);
    assert_int_equal(kv_env_fault_bytes_written(env), 0);
    kv_writable *file;
    assert_int_equal(kv_env_new_writable(env, path, 10, &file), 0);
    append_str(file, "12345");
    assert_int_equal(kv_env_fault_bytes_written(env), 0); /* still buffered */
    assert_int_equal(kv_writable_sync(file), 0);
    assert_int_equal(kv_env_fault_bytes_written(env), 5);
    assert_int_equal(kv_env_sync_dir(env, dir), 0);
    assert_int_equal(kv_env_fault_syncs(env), 2);
    append_str(file, "0123456789abc");
    assert_int_equal(kv_writable_close(file), 0);
    assert_int_equal(kv_env_fault_bytes_written(env), 18);
    kv_env_fault_destroy(env);
    free(path);
    kv_test_cleanup_dir(dir);
}

struct writer_arg {
    kv_env *env;
    char *path;
    uint64_t seed;
    uint64_t synced; /* out: length at the last successful sync */
};

static void *fault_writer_thread(void *p)
{
    struct writer_arg *arg = p;
    kv_test_rng rng;
    kv_test_rng_init(&rng, arg->seed);
    kv_writable *file;
    if (kv_env_new_writable(arg->env, arg->path, 256, &file) != 0)
        return (void *)1;
    char chunk[300];
    for (int i = 0; i < 300; i++) {
        size_t n = kv_test_rng_uniform(&rng, sizeof(chunk));
        memset(chunk, 'a' + (int)(arg->seed % 26), n);
        if (kv_writable_append(file, chunk, n) != 0)
            return (void *)1;
        if (kv_test_rng_uniform(&rng, 20) == 0) {
            if (kv_writable_sync(file) != 0)
                return (void *)1;
            arg->synced = file->size;
        }
    }
    return kv_writable_close(file) == 0 ? NULL : (void *)1;
}

/* Several threads write and sync their own files through one fault env. */
static void test_fault_threads(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("fault-threads");
    kv_env *env = kv_env_fault_create();
    enum { THREADS = 4 };
    pthread_t threads[THREADS];
    struct writer_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        char name[16];
        snprintf(name, sizeof(name), "%06d.log", i);
        args[i] = (struct writer_arg){env, path_in(dir, name), (uint64_t)i + 100, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, fault_writer_thread, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        void *result;
        assert_int_equal(pthread_join(threads[i], &result), 0);
        assert_null(result);
    }
    assert_int_equal(kv_env_sync_dir(env, dir), 0);
    assert_int_equal(kv_env_fault_power_cut(env), 0);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(disk_size(args[i].path), args[i].synced);
        free(args[i].path);
    }
    kv_env_fault_destroy(env);
    kv_test_cleanup_dir(dir);
}

/* ---- info LOG ---- */

/* "YYYY/MM/DD-HH:MM:SS.uuuuuu " */
static bool has_timestamp(const char *line)
{
    const char *shape = "dddd/dd/dd-dd:dd:dd.dddddd ";
    for (size_t i = 0; shape[i] != '\0'; i++) {
        if (shape[i] == 'd' ? (line[i] < '0' || line[i] > '9') : line[i] != shape[i])
            return false;
    }
    return true;
}

struct log_thread_arg {
    kv_info_log *log;
    int id;
};

static void *log_thread(void *p)
{
    struct log_thread_arg *arg = p;
    for (int i = 0; i < 200; i++)
        kv_info_log_printf(arg->log, "thread %d line %d %s", arg->id, i,
                           "padding padding padding padding");
    return NULL;
}

static void test_info_log(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("info-log");
    char *log_path = path_in(dir, "LOG"), *old_path = path_in(dir, "LOG.old");

    kv_info_log *log = kv_info_log_open(dir);
    assert_non_null(log);
    kv_info_log_printf(log, "first run: %d files", 3);
    kv_info_log_printf(log, "with newline\n");
    char long_message[2000];
    memset(long_message, 'L', sizeof(long_message) - 1);
    long_message[sizeof(long_message) - 1] = '\0';
    kv_info_log_printf(log, "%s", long_message);
    kv_info_log_close(log);
    kv_info_log_printf(NULL, "ignored %d", 1);
    kv_info_log_close(NULL);

    kv_buf contents = {0};
    assert_int_equal(kv_env_read_file(kv_env_posix(), log_path, &contents), 0);
    kv_buf_append_byte(&contents, '\0');
    char *text = contents.data;
    assert_true(has_timestamp(text));
    assert_memory_equal(text + 27, "first run: 3 files\n", 19);
    char *second = strchr(text, '\n') + 1;
    assert_true(has_timestamp(second));
    assert_memory_equal(second + 27, "with newline\n", 13);
    char *third = strchr(second, '\n') + 1;
    assert_true(has_timestamp(third));
    assert_memory_equal(third + 27, long_message, sizeof(long_message) - 1);
    assert_string_equal(third + 27 + sizeof(long_message) - 1, "\n");
    kv_buf_free(&contents);

    /* Reopening keeps the previous LOG as LOG.old. */
    log = kv_info_log_open(dir);
    assert_non_null(log);
    uint64_t new_size, old_size;
    assert_int_equal(kv_env_file_size(log_path, &new_size), 0);
    assert_int_equal(new_size, 0);
    assert_int_equal(kv_env_file_size(old_path, &old_size), 0);
    assert_true(old_size > 2000);

    /* Concurrent lines never interleave. */
    enum { THREADS = 4 };
    pthread_t threads[THREADS];
    struct log_thread_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (struct log_thread_arg){log, i};
        assert_int_equal(pthread_create(&threads[i], NULL, log_thread, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    kv_info_log_close(log);
    assert_int_equal(kv_env_read_file(kv_env_posix(), log_path, &contents), 0);
    kv_buf_append_byte(&contents, '\0');
    int lines = 0;
    for (char *line = contents.data; *line != '\0'; line = strchr(line, '\n') + 1) {
        assert_true(has_timestamp(line));
        int id, i;
        char tail[64];
        assert_int_equal(sscanf(line + 27, "thread %d line %d %63[^\n]", &id, &i, tail), 3);
        assert_string_equal(tail, "padding padding padding padding");
        lines++;
    }
    assert_int_equal(lines, THREADS * 200);
    kv_buf_free(&contents);

    /* No directory: no LOG, and no crash. */
    char *missing = path_in(dir, "missing");
    assert_null(kv_info_log_open(missing));
    free(missing);
    free(log_path);
    free(old_path);
    kv_test_cleanup_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_flush_sync_read_back),
        cmocka_unit_test(test_buffering),
        cmocka_unit_test(test_enospc),
        cmocka_unit_test(test_random_read),
        cmocka_unit_test(test_missing_files),
        cmocka_unit_test(test_rename_remove_truncate),
        cmocka_unit_test(test_dir_functions),
        cmocka_unit_test(test_lock),
        cmocka_unit_test(test_now_micros),
        cmocka_unit_test(test_fault_unsynced_data_dropped),
        cmocka_unit_test(test_fault_new_files_need_dir_sync),
        cmocka_unit_test(test_fault_rename),
        cmocka_unit_test(test_fault_existing_files_durable),
        cmocka_unit_test(test_fault_space_budget),
        cmocka_unit_test(test_fault_error_rate),
        cmocka_unit_test(test_fault_inactive_filesystem),
        cmocka_unit_test(test_fault_counters),
        cmocka_unit_test(test_fault_threads),
        cmocka_unit_test(test_info_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
