#!/usr/bin/env bash
# test_cli.sh — the lsmfs command line: bad input always gets a clear
# message and a non-zero exit status and changes nothing; the daemon goes to
# the background only once mounted; a second daemon on a mounted data
# directory and a data directory of a newer format are refused; fusermount3
# -u, umount, `mount -t fuse.lsmfs` and an /etc/fstab line work, and an
# unmount persists everything.
#
# ctest runs it with LSMFS_BIN and KV_TEST_TMPDIR set (tests/CMakeLists.txt).
# The mount(8) cases install LSMFS_BIN as /usr/local/bin/lsmfs with
# scripts/install (the only place mount.fuse3 finds it, see there) and add a
# line to /etc/fstab; both are put back as they were when the test ends,
# whatever happens. They are skipped, saying why, when not run as root or
# when LSMFS_TEST_NO_SYSTEM_CHANGES=1.
# Cases are functions that run_case calls indirectly.
# shellcheck disable=SC2317
set -uo pipefail

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE_DIR=$(cd "$TESTS_DIR/../.." && pwd)
# shellcheck source=tests/fuse/lib.sh
source "$TESTS_DIR/lib.sh"
lsmfs_test_init test_cli

# The on-disk format version this lsmfs writes (fuse/schema.h).
FORMAT_VERSION=$(awk '$1 == "#define" && $2 == "FS_FORMAT_VERSION" { print $3 }' \
    "$SOURCE_DIR/fuse/schema.h")
INSTALLED=/usr/local/bin/lsmfs

# run_lsmfs ARGS...: runs lsmfs (time-limited) and sets RC, OUT and ERR.
# Fails the case if a sanitizer reported anything.
RC=0
OUT=
ERR=
run_lsmfs() {
    local out=$SCRATCH/cli.out err=$SCRATCH/cli.err
    RC=0
    timeout -k 5 60 "$LSMFS_BIN" "$@" >"$out" 2>"$err" || RC=$?
    OUT=$(cat "$out")
    ERR=$(cat "$err")
    log_is_clean "$err"
}

# expect_refused PATTERN ARGS...: lsmfs ARGS exits non-zero, with a message on
# stderr that matches the extended regex PATTERN and is printable text.
expect_refused() {
    local pattern=$1
    shift
    run_lsmfs "$@" || return
    if ((RC == 0)); then
        fail_because "lsmfs $* exited 0"
        return 1
    fi
    if ((RC == 124 || RC == 137)); then
        fail_because "lsmfs $* did not finish in 60 s"
        return 1
    fi
    if [[ -z $ERR ]]; then
        fail_because "lsmfs $* (exit $RC) printed no message on stderr"
        return 1
    fi
    if LC_ALL=C grep -q '[^[:print:][:space:]]' <<<"$ERR"; then
        fail_because "lsmfs $* printed unprintable bytes: $(LC_ALL=C cat -v <<<"$ERR" | head -n 3)"
        return 1
    fi
    if ! grep -Eq -- "$pattern" <<<"$ERR"; then
        fail_because "lsmfs $* (exit $RC): the message does not match /$pattern/:"
        sed 's/^/        | /' <<<"$ERR" | head -n 10 >&2
        return 1
    fi
    echo "    exit $RC: $(head -n 1 <<<"$ERR")"
}

# snapshot PATH: a listing of PATH's entries, sizes and checksums (to show
# that a refused command changed nothing).
snapshot() {
    if [[ ! -e $1 ]]; then
        echo "absent"
        return
    fi
    (
        cd "$(dirname "$1")" || exit 1
        find "$(basename "$1")" -printf '%p %y %m %s %T@\n' | LC_ALL=C sort
        find "$(basename "$1")" -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
    )
}

# expect_unchanged DESCRIPTION PATH SNAPSHOT
expect_unchanged() {
    local now
    now=$(snapshot "$2")
    [[ $now == "$3" ]] && return 0
    fail_because "$1: $2 changed"
    diff <(echo "$3") <(echo "$now") | head -n 10 | sed 's/^/        | /' >&2
    return 1
}

# expect_not_mounted MOUNTPOINT
expect_not_mounted() {
    if is_mounted "$1"; then
        fail_because "$1 is mounted"
        return 1
    fi
    local pids
    pids=$(lsmfs_daemons "$1")
    [[ -z $pids ]] || fail_because "an lsmfs daemon for $1 is running: $pids"
}

# new_dir NAME: a fresh empty directory in the scratch directory.
new_dir() {
    local dir=$SCRATCH/$1
    rm -rf "$dir" && mkdir -p "$dir" && echo "$dir"
}

# ---- help, version, bad options ----

case_help_version() {
    local flag
    for flag in --help -h; do
        run_lsmfs "$flag" || return
        expect_equal "exit status of lsmfs $flag" 0 "$RC" || return
        [[ $OUT == *"usage: lsmfs"*"DATADIR MOUNTPOINT"* ]] ||
            fail_because "lsmfs $flag: no usage on stdout: ${OUT:0:200}" || return
        [[ $OUT == *block_size=* && $OUT == *fusermount3* ]] ||
            fail_because "lsmfs $flag does not describe the options and unmounting" || return
    done
    for flag in --version -V; do
        run_lsmfs "$flag" || return
        expect_equal "exit status of lsmfs $flag" 0 "$RC" || return
        [[ $OUT =~ ^lsmfs\ [0-9]+\.[0-9]+ ]] ||
            fail_because "lsmfs $flag: no version on stdout: $OUT" || return
        [[ $OUT == *"format $FORMAT_VERSION"* ]] ||
            fail_because "lsmfs $flag does not name on-disk format $FORMAT_VERSION: $OUT" ||
            return
    done
    echo "    $OUT"
}

# A refused command must not format, create or touch the data directory:
# each bad-option case runs against an existing empty one and a missing one.
# refused_without_side_effects PATTERN OPTIONS...
refused_without_side_effects() {
    local pattern=$1
    shift
    local empty missing mountpoint
    empty=$(new_dir data-empty) && mountpoint=$(new_dir mnt) || return
    missing=$SCRATCH/data-missing
    rm -rf "$missing"
    expect_refused "$pattern" "$@" "$empty" "$mountpoint" || return
    expect_not_mounted "$mountpoint" || return
    expect_equal "entries in the empty DATADIR after a refused command" "" "$(ls -A "$empty")" ||
        return
    expect_refused "$pattern" -f "$@" "$missing" "$mountpoint" || return
    expect_not_mounted "$mountpoint" || return
    check "a missing DATADIR is not created by a refused command" test ! -e "$missing"
}

case_unknown_option() {
    refused_without_side_effects 'no-such-option' --no-such-option || return
    refused_without_side_effects 'no_such_mount_option' -o no_such_mount_option
}

case_bad_block_size() {
    refused_without_side_effects 'block_size=abc' -o block_size=abc || return
    refused_without_side_effects 'block_size=1000' -o block_size=1000 || return
    refused_without_side_effects 'block_size=64' -o block_size=64
}

case_bad_cache_size() {
    refused_without_side_effects 'cache_size=-1' -o cache_size=-1 || return
    refused_without_side_effects 'cache_size=12Q' -o cache_size=12Q
}

case_bad_other_values() {
    refused_without_side_effects 'max_threads=0' -o max_threads=0 || return
    refused_without_side_effects 'entry_timeout=soon' -o entry_timeout=soon || return
    refused_without_side_effects 'write_buffer_size=1' -o write_buffer_size=1 || return
    refused_without_side_effects 'busy_poll=soon' -o busy_poll=soon || return
    refused_without_side_effects 'busy_poll=-5' -o busy_poll=-5 || return
    refused_without_side_effects 'busy_poll=100001' -o busy_poll=100001 || return
    refused_without_side_effects 'dirty_limit=sometimes' -o dirty_limit=sometimes || return
    refused_without_side_effects 'dirty_limit=' -o dirty_limit=
}

# ---- arguments ----

case_missing_arguments() {
    local data=$SCRATCH/data-missing
    rm -rf "$data"
    expect_refused 'MOUNTPOINT' "$data" || return
    check "DATADIR not created" test ! -e "$data" || return
    expect_refused 'MOUNTPOINT|usage' || return
    expect_refused "unexpected argument|usage" "$data" "$SCRATCH/mnt" extra-argument || return
    check "DATADIR not created" test ! -e "$data"
}

case_bad_mountpoint() {
    local data=$SCRATCH/data-missing
    rm -rf "$data"
    expect_refused "$SCRATCH/no-such-dir.*(No such file|does not exist)" \
        "$data" "$SCRATCH/no-such-dir" || return
    check "DATADIR not created" test ! -e "$data" || return
    local file=$SCRATCH/mountpoint-file
    echo "keep me" >"$file" || return
    local before
    before=$(snapshot "$file")
    expect_refused "mountpoint-file.*not a directory" "$data" "$file" || return
    expect_refused "mountpoint-file.*not a directory" -f "$data" "$file" || return
    expect_unchanged "a file given as mount point" "$file" "$before" || return
    check "DATADIR not created" test ! -e "$data" || return
    local inside
    inside=$(new_dir data-with-mnt) && mkdir "$inside/mnt" || return
    expect_refused "inside the data directory" "$inside" "$inside/mnt" || return
    expect_not_mounted "$inside/mnt"
}

case_foreign_datadir() {
    local foreign mountpoint
    foreign=$(new_dir foreign) && mountpoint=$(new_dir mnt) || return
    head -c 4096 /dev/urandom >"$foreign/precious.bin" || return
    mkdir "$foreign/sub" && echo "notes" >"$foreign/sub/notes.txt" || return
    local before
    before=$(snapshot "$foreign")
    expect_refused "foreign.*not an lsmfs data directory" "$foreign" "$mountpoint" || return
    expect_refused "foreign.*not an lsmfs data directory" -f "$foreign" "$mountpoint" || return
    expect_not_mounted "$mountpoint" || return
    expect_unchanged "a foreign DATADIR" "$foreign" "$before" || return
    # A regular file as DATADIR.
    local file=$SCRATCH/datadir-file
    echo "not a directory" >"$file" || return
    before=$(snapshot "$file")
    expect_refused "datadir-file.*(Not a directory|not a directory)" "$file" "$mountpoint" ||
        return
    expect_unchanged "a file given as DATADIR" "$file" "$before" || return
    # Read-only on an empty directory: nothing to mount, nothing written.
    local empty
    empty=$(new_dir data-empty) || return
    expect_refused "read-only" -o ro "$empty" "$mountpoint" || return
    expect_equal "entries of the empty DATADIR" "" "$(ls -A "$empty")"
}

# ---- a second daemon ----

case_second_daemon() {
    local data=$SCRATCH/data-shared mountpoint mountpoint2
    rm -rf "$data"
    mountpoint=$(new_dir mnt-first) && mountpoint2=$(new_dir mnt-second) || return
    check "first mount" lsmfs_mount "$data" "$mountpoint" || return
    echo "first" >"$mountpoint/file" || return
    ln -sfn "$data" "$SCRATCH/data-link" || return
    local spelling
    for spelling in "$data" "$data/" "$SCRATCH/data-link" "$SCRATCH/./data-shared"; do
        expect_refused "already mounted at $mountpoint" "$spelling" "$mountpoint2" || return
        expect_refused "already mounted at $mountpoint" -f "$spelling" "$mountpoint2" || return
        expect_not_mounted "$mountpoint2" || return
    done
    # The first mount keeps working.
    expect_equal "file written before" first "$(cat "$mountpoint/file")" || return
    echo "second" >"$mountpoint/file2" && mkdir "$mountpoint/dir" || return
    expect_equal "file written after" second "$(cat "$mountpoint/file2")" || return
    expect_equal "entries" "dir file file2" "$(ls "$mountpoint" | tr '\n' ' ' | sed 's/ $//')" ||
        return
    check "unmount of the first" lsmfs_unmount "$mountpoint" || return
    # Once unmounted, the data directory can be mounted again elsewhere.
    check "mount at the second mount point" lsmfs_mount "$data" "$mountpoint2" || return
    expect_equal "file after remount" second "$(cat "$mountpoint2/file2")" || return
    check "unmount" lsmfs_unmount "$mountpoint2"
}

# ---- a newer on-disk format ----

# Builds $SCRATCH/set-format-version, which rewrites the superblock's format
# version through kv's public API and fuse/schema.c (what a newer lsmfs
# would write). Prints why not when it cannot (no compiler, no libraries).
build_format_tool() {
    local build_dir
    build_dir=$(dirname "$(dirname "$LSMFS_BIN")")
    local kv_lib=$build_dir/kv/libkv.a core_lib=$build_dir/fuse/liblsmfs_core.a
    if ! command -v cc >/dev/null; then
        echo "no C compiler"
        return 1
    fi
    if [[ ! -f $kv_lib || ! -f $core_lib ]]; then
        echo "$kv_lib or $core_lib is missing (LSMFS_BIN is not in a build tree)"
        return 1
    fi
    local -a flags=()
    if grep -q '^LSMFS_SANITIZE:BOOL=ON' "$build_dir/CMakeCache.txt" 2>/dev/null; then
        # shellcheck disable=SC2054 # one compiler flag with a comma
        flags=(-fsanitize=address,undefined)
    fi
    cat >"$SCRATCH/set_format_version.c" <<'EOF'
/* set-format-version DATADIR newer SAVEFILE: saves the superblock value to
 * SAVEFILE and writes it back with format version FS_FORMAT_VERSION + 1.
 * set-format-version DATADIR restore SAVEFILE: writes SAVEFILE back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "schema.h"

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    kv_options options;
    kv_options_init(&options);
    kv_db *db;
    if (kv_open(&options, argv[1], &db) != KV_OK) {
        fprintf(stderr, "kv_open %s: %s\n", argv[1], kv_errmsg());
        return 1;
    }
    kv_cf *meta = kv_get_cf(db, FS_META_CF);
    char key[1];
    size_t key_len = fs_key_super(key);
    char buf[FS_SUPER_LEN * 2];
    size_t len = 0;
    int rc = 1;
    if (meta == NULL) {
        fprintf(stderr, "no column family %s\n", FS_META_CF);
    } else if (strcmp(argv[2], "newer") == 0) {
        char *value;
        size_t value_len;
        struct fs_super super;
        FILE *save = fopen(argv[3], "wb");
        if (kv_get(db, NULL, meta, key, key_len, &value, &value_len) != KV_OK) {
            fprintf(stderr, "no superblock: %s\n", kv_errmsg());
        } else {
            if (fs_super_decode(value, value_len, &super) != 0) {
                fprintf(stderr, "superblock does not decode\n");
            } else if (save == NULL || fwrite(value, 1, value_len, save) != value_len) {
                fprintf(stderr, "cannot save the superblock to %s\n", argv[3]);
            } else {
                super.format_version = FS_FORMAT_VERSION + 1;
                len = fs_super_encode(buf, &super);
                rc = 0;
            }
            kv_free(value);
        }
        if (save != NULL && fclose(save) != 0)
            rc = 1;
    } else if (strcmp(argv[2], "restore") == 0) {
        FILE *save = fopen(argv[3], "rb");
        if (save != NULL) {
            len = fread(buf, 1, sizeof(buf), save);
            fclose(save);
            rc = len > 0 ? 0 : 1;
        }
    }
    if (rc == 0) {
        kv_write_options sync = {.sync = true};
        if (kv_put(db, &sync, meta, key, key_len, buf, len) != KV_OK) {
            fprintf(stderr, "kv_put: %s\n", kv_errmsg());
            rc = 1;
        }
    }
    if (kv_close(db) != KV_OK)
        rc = 1;
    return rc;
}
EOF
    if ! cc -std=c11 -D_GNU_SOURCE "${flags[@]}" -I"$SOURCE_DIR/kv/include" -I"$SOURCE_DIR/kv" \
        -I"$SOURCE_DIR/fuse" -o "$SCRATCH/set-format-version" "$SCRATCH/set_format_version.c" \
        "$core_lib" "$kv_lib" -lsnappy -lpthread >"$SCRATCH/cc.log" 2>&1; then
        echo "it does not compile against this build tree: $(head -n 3 "$SCRATCH/cc.log")"
        return 1
    fi
}

case_newer_format() {
    [[ -n $FORMAT_VERSION ]] || {
        fail_because "FS_FORMAT_VERSION not found in $SOURCE_DIR/fuse/schema.h"
        return 1
    }
    local why
    if ! why=$(build_format_tool); then
        skip_because "cannot build the superblock tool: $why"
        return
    fi
    local data=$SCRATCH/data-newer mountpoint
    rm -rf "$data"
    mountpoint=$(new_dir mnt) || return
    check "format" lsmfs_mount "$data" "$mountpoint" || return
    echo "kept across the refusal" >"$mountpoint/file" || return
    check "unmount" lsmfs_unmount "$mountpoint" || return
    check "write format version $((FORMAT_VERSION + 1))" \
        "$SCRATCH/set-format-version" "$data" newer "$SCRATCH/superblock.saved" || return
    local newer=$((FORMAT_VERSION + 1))
    expect_refused "version.*$newer.*$FORMAT_VERSION" "$data" "$mountpoint" || return
    expect_refused "version.*$newer.*$FORMAT_VERSION" -f "$data" "$mountpoint" || return
    expect_not_mounted "$mountpoint" || return
    # Nothing was lost: with the version put back, the file is there.
    check "restore format version $FORMAT_VERSION" \
        "$SCRATCH/set-format-version" "$data" restore "$SCRATCH/superblock.saved" || return
    check "mount after restoring" lsmfs_mount "$data" "$mountpoint" || return
    expect_equal "file" "kept across the refusal" "$(cat "$mountpoint/file")" || return
    check "unmount" lsmfs_unmount "$mountpoint"
}

# ---- daemon mode, fusermount3 -u, umount ----

# wait_daemons_gone MOUNTPOINT PIDS: the daemons exit after an unmount.
wait_daemons_gone() {
    local mountpoint=$1 pid
    shift
    for pid in "$@"; do
        wait_until_gone "$pid" ||
            fail_because "daemon $pid of $mountpoint still running after the unmount" || return
    done
}

case_daemonize() {
    local data=$SCRATCH/data-daemon mountpoint
    rm -rf "$data"
    mountpoint=$(new_dir mnt-daemon) || return
    remember_mountpoint "$mountpoint"
    local -a sanitizer_env
    mapfile -t sanitizer_env < <(lsmfs_sanitizer_env daemon)
    # Relative paths (the daemon changes directory to / once mounted),
    # unique to this run so that the daemon can be found by its arguments.
    local relative
    relative=$(basename "$SCRATCH")
    local status=0
    (cd "$(dirname "$SCRATCH")" && env "${sanitizer_env[@]}" timeout -k 5 60 "$LSMFS_BIN" \
        "$relative/data-daemon" "$relative/mnt-daemon" >"$SCRATCH/daemon.out" 2>&1) ||
        status=$?
    expect_equal "exit status of lsmfs without -f" 0 "$status" || {
        show_log "$SCRATCH/daemon.out"
        return 1
    }
    # Mounted by the time the command returns: no waiting here.
    check "mounted when lsmfs returned" is_mounted "$mountpoint" || return
    expect_equal "source (absolute)" "$data" "$(mount_field "$mountpoint" 1)" || return
    expect_equal "output of a successful mount" "" "$(cat "$SCRATCH/daemon.out")" || return
    local pids
    pids=$(lsmfs_daemons "$relative/mnt-daemon")
    [[ -n $pids ]] || fail_because "no lsmfs process serves $mountpoint" || return
    local pid
    for pid in $pids; do
        # Field 4 after "pid (comm) " in /proc/PID/stat is the session id.
        [[ $(awk '{ sub(/^.*\) /, ""); print $4 }' "/proc/$pid/stat") == "$pid" ]] ||
            fail_because "daemon $pid did not detach into its own session" || return
    done
    echo "daemon" >"$mountpoint/file" || return
    check "lsmfs stats" bash -c "'$LSMFS_BIN' stats '$mountpoint' | grep -q memtable" || return
    check "fusermount3 -u" fusermount3 -u "$mountpoint" || return
    # shellcheck disable=SC2086 # one pid per word
    wait_daemons_gone "$mountpoint" $pids || return

    # Again, unmounted with umount this time.
    status=0
    env "${sanitizer_env[@]}" timeout -k 5 60 "$LSMFS_BIN" "$data" "$mountpoint" \
        >"$SCRATCH/daemon.out" 2>&1 || status=$?
    expect_equal "exit status of the second mount" 0 "$status" || return
    check "mounted" is_mounted "$mountpoint" || return
    expect_equal "file after remount" daemon "$(cat "$mountpoint/file")" || return
    echo "umount" >"$mountpoint/file2" || return
    pids=$(lsmfs_daemons "$mountpoint")
    check "umount" umount "$mountpoint" || return
    # shellcheck disable=SC2086
    wait_daemons_gone "$mountpoint" $pids || return
    check "sanitizer reports of the daemons" sanitizer_reports_clean daemon || return

    check "remount in the foreground" lsmfs_mount "$data" "$mountpoint" || return
    expect_equal "files after umount" "daemon umount" \
        "$(cat "$mountpoint/file" "$mountpoint/file2" | tr '\n' ' ' | sed 's/ $//')" || return
    check "unmount" lsmfs_unmount "$mountpoint"
}

# ---- unmount persists everything ----

case_umount_persists() {
    local data=$SCRATCH/data-persist mountpoint
    rm -rf "$data"
    mountpoint=$(new_dir mnt-persist) || return
    check "mount" lsmfs_mount "$data" "$mountpoint" || return
    # Writes still in the kernel's cache (writeback) and metadata of every
    # kind, then umount at once: no sync before.
    cp -a /usr/include/linux "$mountpoint/tree" || return
    head -c $((24 << 20)) /dev/urandom >"$SCRATCH/big" || return
    cp "$SCRATCH/big" "$mountpoint/big" || return
    mkdir -p "$mountpoint/a/b/c" && echo deep >"$mountpoint/a/b/c/file" || return
    mv "$mountpoint/a/b" "$mountpoint/moved" && ln -s moved/c "$mountpoint/link" || return
    ln "$mountpoint/big" "$mountpoint/big-hardlink" && chmod 0604 "$mountpoint/big" || return
    truncate -s 10G "$mountpoint/sparse" && rm "$mountpoint/tree/types.h" || return
    local before
    before=$(cd "$mountpoint" && find . -printf '%p %i %y %m %n %s %T@\n' | LC_ALL=C sort) ||
        return
    check "umount (exit status 0 of the daemon)" lsmfs_unmount "$mountpoint" umount || return
    check "remount" lsmfs_mount "$data" "$mountpoint" || return
    local after
    after=$(cd "$mountpoint" && find . -printf '%p %i %y %m %n %s %T@\n' | LC_ALL=C sort) ||
        return
    [[ $before == "$after" ]] || {
        fail_because "entries changed across umount (< before, > after):"
        diff <(echo "$before") <(echo "$after") | head -n 20 | sed 's/^/        | /' >&2
        return 1
    }
    check "data of the big file" cmp "$SCRATCH/big" "$mountpoint/big-hardlink" || return
    check "tree" bash -c "diff -r -x types.h /usr/include/linux '$mountpoint/tree'" || return
    expect_equal "through the symlink" deep "$(cat "$mountpoint/link/file")" || return
    check "unmount" lsmfs_unmount "$mountpoint"
}

# ---- mount(8): mount -t fuse.lsmfs and /etc/fstab ----

SYSTEM_LOCK_FD=
SYSTEM_INSTALL_WHY_NOT=
# with_system_install: installs LSMFS_BIN as $INSTALLED with scripts/install,
# once per run, under a lock that keeps other runs of this test out, and
# registers the restoring of what was there. When it cannot, returns 1 with
# the reason in SYSTEM_INSTALL_WHY_NOT. (Not to be run in a subshell: the
# lock and the exit hooks belong to this shell.)
with_system_install() {
    SYSTEM_INSTALL_WHY_NOT=
    if [[ ${LSMFS_TEST_NO_SYSTEM_CHANGES:-0} == 1 ]]; then
        SYSTEM_INSTALL_WHY_NOT="LSMFS_TEST_NO_SYSTEM_CHANGES=1"
        return 1
    fi
    if ((EUID != 0)); then
        SYSTEM_INSTALL_WHY_NOT="not root: cannot install $INSTALLED or edit /etc/fstab"
        return 1
    fi
    if [[ ! -x /sbin/mount.fuse3 && ! -x /usr/sbin/mount.fuse3 ]]; then
        SYSTEM_INSTALL_WHY_NOT="mount.fuse3 is missing (Debian package fuse3)"
        return 1
    fi
    [[ -n $SYSTEM_LOCK_FD ]] && return 0
    local lock_dir=/run/lock
    [[ -d $lock_dir && -w $lock_dir ]] || lock_dir=/tmp
    exec {SYSTEM_LOCK_FD}>"$lock_dir/lsmfs-test-system-install.lock" || return 1
    if ! flock -w 600 "$SYSTEM_LOCK_FD"; then
        SYSTEM_INSTALL_WHY_NOT="another test run held the install lock for 10 minutes"
        return 1
    fi
    lsmfs_on_exit 'exec {SYSTEM_LOCK_FD}>&-'
    if [[ -e $INSTALLED || -L $INSTALLED ]]; then
        cp -a "$INSTALLED" "$SCRATCH/installed-lsmfs.saved" || return 1
        lsmfs_on_exit "restore_installed '$SCRATCH/installed-lsmfs.saved'"
    else
        lsmfs_on_exit "restore_installed ''"
    fi
    if ! bash "$SOURCE_DIR/scripts/install" "$LSMFS_BIN" >"$SCRATCH/install.log" 2>&1; then
        SYSTEM_INSTALL_WHY_NOT="scripts/install failed: $(tail -n 3 "$SCRATCH/install.log")"
        return 1
    fi
    sed 's/^/    /' "$SCRATCH/install.log"
}

# restore_installed SAVED: puts SAVED back as $INSTALLED, or removes
# $INSTALLED when SAVED is empty (nothing was installed before the test).
restore_installed() {
    if [[ -n $1 ]]; then
        mv -f "$1" "$INSTALLED" && echo "$TEST_NAME: restored the previous $INSTALLED" >&2
    else
        rm -f "$INSTALLED" && echo "$TEST_NAME: removed the $INSTALLED this test installed" >&2
    fi
}

# wait_mount8_daemons_gone MOUNTPOINT: after umount, the daemon mount(8)
# started exits (its pid is found through /proc before the unmount).
MOUNT8_PIDS=
note_mount8_daemons() {
    MOUNT8_PIDS=$(lsmfs_daemons "$1")
    [[ -n $MOUNT8_PIDS ]] || fail_because "no lsmfs process serves $1"
}

# check_installed_daemon: the daemon is the installed binary, i.e. mount
# really went through $INSTALLED.
check_installed_daemon() {
    local pid exe
    for pid in $MOUNT8_PIDS; do
        exe=$(readlink "/proc/$pid/exe")
        expect_equal "binary of the daemon mount(8) started" "$INSTALLED" "${exe% (deleted)}" ||
            return
    done
}

case_mount_type() {
    if ! with_system_install; then
        skip_because "mount -t fuse.lsmfs needs lsmfs installed in $INSTALLED:" \
            "$SYSTEM_INSTALL_WHY_NOT"
        return
    fi
    local data=$SCRATCH/data-mount8 mountpoint
    rm -rf "$data"
    mountpoint=$(new_dir mnt-mount8) || return
    remember_mountpoint "$mountpoint"
    local -a sanitizer_env
    mapfile -t sanitizer_env < <(lsmfs_sanitizer_env mount8)
    # An lsmfs option travels through mount and mount.fuse3: block size 8K.
    check "mount -t fuse.lsmfs -o block_size=8K" env "${sanitizer_env[@]}" \
        timeout -k 5 60 mount -t fuse.lsmfs -o block_size=8K "$data" "$mountpoint" || return
    check "mounted" is_mounted "$mountpoint" || return
    expect_equal "type" fuse.lsmfs "$(mount_field "$mountpoint" 3)" || return
    expect_equal "source" "$data" "$(mount_field "$mountpoint" 1)" || return
    expect_equal "block size given through -o" 8192 "$(stat -f -c %S "$mountpoint")" || return
    note_mount8_daemons "$mountpoint" && check_installed_daemon || return
    echo "through mount(8)" >"$mountpoint/file" && mkdir "$mountpoint/dir" || return
    check "umount" umount "$mountpoint" || return
    # shellcheck disable=SC2086
    wait_daemons_gone "$mountpoint" $MOUNT8_PIDS || return
    # Refused mounts report through mount(8) too.
    local foreign
    foreign=$(new_dir foreign-mount8) && echo x >"$foreign/x" || return
    if timeout -k 5 60 mount -t fuse.lsmfs "$foreign" "$mountpoint" 2>"$SCRATCH/mount8.err"; then
        fail_because "mount -t fuse.lsmfs of a foreign directory succeeded"
        return 1
    fi
    expect_grep "message of a refused mount(8)" "not an lsmfs data directory" \
        "$SCRATCH/mount8.err" || return
    expect_not_mounted "$mountpoint" || return
    # And back: everything is there.
    check "mount -t fuse.lsmfs again" env "${sanitizer_env[@]}" \
        timeout -k 5 60 mount -t fuse.lsmfs "$data" "$mountpoint" || return
    expect_equal "file after umount and mount" "through mount(8)" "$(cat "$mountpoint/file")" ||
        return
    check "directory" test -d "$mountpoint/dir" || return
    note_mount8_daemons "$mountpoint" || return
    check "umount" umount "$mountpoint" || return
    # shellcheck disable=SC2086
    wait_daemons_gone "$mountpoint" $MOUNT8_PIDS || return
    check "sanitizer reports" sanitizer_reports_clean mount8
}

FSTAB_LINES=()
# restore_fstab SAVED: removes this test's lines from /etc/fstab, keeping
# its inode and mode, and checks the result equals SAVED (the file before).
restore_fstab() {
    local saved=$1 line filtered=$SCRATCH/fstab.filtered
    ((${#FSTAB_LINES[@]} > 0)) || return 0
    cp /etc/fstab "$filtered" || return 1
    for line in "${FSTAB_LINES[@]}"; do
        grep -vxF -- "$line" "$filtered" >"$filtered.next"
        mv "$filtered.next" "$filtered"
    done
    cat "$filtered" >/etc/fstab || return 1
    FSTAB_LINES=()
    if cmp -s "$saved" /etc/fstab; then
        echo "$TEST_NAME: /etc/fstab restored" >&2
    else
        echo "$TEST_NAME: warning: /etc/fstab differs from the copy saved before the test" \
            "($saved); someone else changed it meanwhile?" >&2
        return 1
    fi
}

case_fstab() {
    if ! with_system_install; then
        skip_because "an /etc/fstab mount needs lsmfs installed in $INSTALLED:" \
            "$SYSTEM_INSTALL_WHY_NOT"
        return
    fi
    if [[ ! -f /etc/fstab || -L /etc/fstab || ! -w /etc/fstab ]]; then
        skip_because "/etc/fstab is not a writable regular file"
        return
    fi
    local data=$SCRATCH/data-fstab mountpoint
    rm -rf "$data"
    mountpoint=$(new_dir mnt-fstab) || return
    remember_mountpoint "$mountpoint"
    cp -p /etc/fstab "$SCRATCH/fstab.saved" || return
    FSTAB_LINES=("# lsmfs tests/fuse/test_cli.sh (pid $$): removed when the test ends"
        "$data $mountpoint fuse.lsmfs defaults,noauto 0 0")
    lsmfs_on_exit "restore_fstab '$SCRATCH/fstab.saved'"
    printf '%s\n' "${FSTAB_LINES[@]}" >>/etc/fstab || return
    local -a sanitizer_env
    mapfile -t sanitizer_env < <(lsmfs_sanitizer_env fstab)
    check "mount MOUNTPOINT" env "${sanitizer_env[@]}" timeout -k 5 60 mount "$mountpoint" ||
        return
    check "mounted" is_mounted "$mountpoint" || return
    expect_equal "type" fuse.lsmfs "$(mount_field "$mountpoint" 3)" || return
    expect_equal "source" "$data" "$(mount_field "$mountpoint" 1)" || return
    note_mount8_daemons "$mountpoint" && check_installed_daemon || return
    cp -a /usr/include/linux "$mountpoint/tree" && echo fstab >"$mountpoint/file" || return
    check "umount MOUNTPOINT" umount "$mountpoint" || return
    # shellcheck disable=SC2086
    wait_daemons_gone "$mountpoint" $MOUNT8_PIDS || return
    check "mount by source (DATADIR)" env "${sanitizer_env[@]}" timeout -k 5 60 mount "$data" ||
        return
    check "mounted at the fstab mount point" is_mounted "$mountpoint" || return
    expect_equal "file after umount and mount" fstab "$(cat "$mountpoint/file")" || return
    check "tree after umount and mount" same_tree /usr/include/linux "$mountpoint/tree" || return
    note_mount8_daemons "$mountpoint" || return
    check "umount" umount "$mountpoint" || return
    # shellcheck disable=SC2086
    wait_daemons_gone "$mountpoint" $MOUNT8_PIDS || return
    check "sanitizer reports" sanitizer_reports_clean fstab || return
    check "/etc/fstab put back" restore_fstab "$SCRATCH/fstab.saved"
}

# ---- lsmfs stats ----

case_stats_errors() {
    expect_refused 'usage: lsmfs stats' stats || return
    expect_refused 'not an lsmfs mount' stats "$SCRATCH" || return
    expect_refused 'No such file' stats "$SCRATCH/no-such-dir"
}

run_case "--help and --version exit 0" case_help_version
run_case "unknown options are refused, DATADIR untouched" case_unknown_option
run_case "-o block_size=abc / 1000 / 64 are refused" case_bad_block_size
run_case "-o cache_size=-1 / 12Q are refused" case_bad_cache_size
run_case "bad max_threads, entry_timeout, write_buffer_size, busy_poll, dirty_limit are refused" case_bad_other_values
run_case "missing MOUNTPOINT, extra arguments" case_missing_arguments
run_case "nonexistent mount point, a file, inside DATADIR" case_bad_mountpoint
run_case "a foreign DATADIR is refused and left as it was" case_foreign_datadir
run_case "a second daemon on a mounted DATADIR is refused" case_second_daemon
run_case "a newer on-disk format is refused, naming the versions" case_newer_format
run_case "without -f: daemonizes once mounted; fusermount3 -u and umount" case_daemonize
run_case "umount persists everything" case_umount_persists
run_case "mount -t fuse.lsmfs (lsmfs installed in PATH)" case_mount_type
run_case "/etc/fstab line + mount MOUNTPOINT" case_fstab
run_case "lsmfs stats errors" case_stats_errors
lsmfs_test_finish
