#!/usr/bin/env bash
# test_io_uring.sh — FUSE over io_uring (-o io_uring, fuse/fuse_uring.h):
# requests really go through the rings; callers pinned to each CPU (each
# queue) read back what they wrote, also after a remount through
# /dev/fuse; a kill -9 with callers in flight leaves no process hanging and
# the data directory mountable; -s keeps /dev/fuse; without the option the
# transport is /dev/fuse even when the kernel offers io_uring; an ordinary
# user's -o io_uring says why the parameter stays off.
#
# The mount tests themselves also run with -o io_uring (the *_io_uring
# tests of tests/CMakeLists.txt). Skipped on kernels without the transport,
# when not root, or with LSMFS_TEST_NO_SYSTEM_CHANGES=1 while the fuse
# module's enable_uring is off (turning it on is a change to the system).
# The parameter is put back as it was when the test ends.
# Cases are functions that run_case calls indirectly.
# shellcheck disable=SC2317
set -uo pipefail

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/fuse/lib.sh
source "$TESTS_DIR/lib.sh"
lsmfs_test_init test_io_uring

PARAM=/sys/module/fuse/parameters/enable_uring
ORIGINAL=
if [[ -r $PARAM ]]; then
    ORIGINAL=$(cat "$PARAM")
    EXIT_HOOKS+=("restore_param")
fi
restore_param() {
    if [[ -n $ORIGINAL && $(cat "$PARAM") != "$ORIGINAL" ]]; then
        echo "$ORIGINAL" >"$PARAM"
    fi
}
CPUS=$(nproc --all)

# uring_possible: returns 77 (with the reason) when this machine cannot run
# the io_uring cases.
uring_possible() {
    [[ -e $PARAM ]] || skip_because "the kernel has no FUSE over io_uring ($PARAM)" || return
    ((EUID == 0)) || skip_because "not root: cannot turn on $PARAM" || return
    if [[ ${LSMFS_TEST_NO_SYSTEM_CHANGES:-0} == 1 && $(cat "$PARAM") != Y ]]; then
        skip_because "LSMFS_TEST_NO_SYSTEM_CHANGES=1 and $PARAM is off"
        return
    fi
}

# transport MOUNTPOINT: the "fuse transport:" line of lsmfs stats.
transport() {
    "$LSMFS_BIN" stats "$1" | grep '^fuse transport:'
}

# uring_requests MOUNTPOINT: how many requests went through the rings.
uring_requests() {
    transport "$1" | sed -n 's/.*, \([0-9]*\) requests through them/\1/p'
}

# writer DIR CPU: pinned to CPU, creates, writes, renames, reads back and
# deletes files in DIR; leaves DIR/keep-CPU-N (N < 20) with known contents.
writer() {
    local dir=$1 cpu=$2
    taskset -c "$cpu" bash -c '
        dir=$1 cpu=$2 ref=$3
        mkdir -p "$dir/sub-$cpu" || exit 1
        for ((i = 0; i < 20; i++)); do
            f=$dir/sub-$cpu/f$i
            head -c $((i * 70001 + 1)) "$ref" >"$f.tmp" || exit 1
            mv "$f.tmp" "$dir/keep-$cpu-$i" || exit 1
            cmp -s <(head -c $((i * 70001 + 1)) "$ref") "$dir/keep-$cpu-$i" || exit 1
            touch "$f" && rm "$f" || exit 1
        done
        rmdir "$dir/sub-$cpu"
    ' writer "$dir" "$cpu" "$SCRATCH/ref"
}

# check_kept DIR: every DIR/keep-CPU-N holds the first N*70001+1 bytes of ref.
check_kept() {
    local dir=$1 cpu i
    for ((cpu = 0; cpu < CPUS; cpu++)); do
        for ((i = 0; i < 20; i++)); do
            cmp -s <(head -c $((i * 70001 + 1)) "$SCRATCH/ref") "$dir/keep-$cpu-$i" ||
                fail_because "$dir/keep-$cpu-$i differs from what was written" || return
        done
    done
}

case_rings_serve() {
    uring_possible || return
    local mnt=$SCRATCH/mnt-rings data=$SCRATCH/data-rings
    head -c $((20 * 70001 + 1)) /dev/urandom >"$SCRATCH/ref"
    lsmfs_mount "$data" "$mnt" -o io_uring || return
    expect_equal "enable_uring after -o io_uring" Y "$(cat "$PARAM")" || return
    expect_grep "transport" 'io_uring' <(transport "$mnt") || return
    local cpu status=0
    local -a pids=()
    for ((cpu = 0; cpu < CPUS; cpu++)); do
        writer "$mnt" "$cpu" &
        pids+=($!)
    done
    for cpu in "${pids[@]}"; do
        wait "$cpu" || status=1
    done
    ((status == 0)) || fail_because "a pinned writer failed" || return
    check_kept "$mnt" || return
    local served
    served=$(uring_requests "$mnt")
    ((served > 1000)) || fail_because "only '$served' requests went through the rings" || return
    lsmfs_unmount "$mnt" || return
    # The same data through /dev/fuse.
    lsmfs_mount "$data" "$mnt" -o no_io_uring || return
    expect_grep "transport" '/dev/fuse' <(transport "$mnt") || return
    check_kept "$mnt" || return
    lsmfs_unmount "$mnt"
}

case_kill9_in_flight() {
    uring_possible || return
    local mnt=$SCRATCH/mnt-kill data=$SCRATCH/data-kill
    lsmfs_mount "$data" "$mnt" -o io_uring || return
    local cpu
    local -a pids=()
    for ((cpu = 0; cpu < CPUS; cpu++)); do
        # In the mount (cwd): once it is detached, names still reach the
        # dead mount and fail, not the folder under it.
        taskset -c "$cpu" bash -c 'cd "$1" || exit 1; for ((i = 0; ; i++)); do
                echo "$i" >"f-$2-$((i % 50))" || exit 0; done' loop "$mnt" "$cpu" &
        pids+=($!)
    done
    sleep 1
    lsmfs_kill9 "$mnt" || return
    # Every caller gets an error and ends: none hangs in the dead rings.
    local pid
    for pid in "${pids[@]}"; do
        wait_until_gone "$pid" 20 || {
            kill -KILL "${pids[@]}" 2>/dev/null
            fail_because "a caller still waits 20 s after the daemon died"
            return 1
        }
    done
    lsmfs_mount "$data" "$mnt" -o io_uring || return
    check "ls after the remount" ls "$mnt" >/dev/null || return
    expect_grep "transport after the kill" 'io_uring' <(transport "$mnt") || return
    lsmfs_unmount "$mnt"
}

case_single_thread_keeps_dev_fuse() {
    uring_possible || return
    local mnt=$SCRATCH/mnt-single data=$SCRATCH/data-single
    lsmfs_mount "$data" "$mnt" -s -o io_uring || return
    check "a write" bash -c "echo hello >$mnt/x" || return
    expect_grep "transport" '/dev/fuse' <(transport "$mnt") || return
    lsmfs_unmount "$mnt"
}

case_default_keeps_dev_fuse() {
    uring_possible || return
    [[ -z ${LSMFS_TEST_MOUNT_OPTIONS:-} ]] || skip_because "LSMFS_TEST_MOUNT_OPTIONS is set" || return
    echo Y >"$PARAM"
    local mnt=$SCRATCH/mnt-default data=$SCRATCH/data-default
    lsmfs_mount "$data" "$mnt" || return
    check "a write" bash -c "echo hello >$mnt/x" || return
    expect_grep "transport" '/dev/fuse' <(transport "$mnt") || return
    lsmfs_unmount "$mnt"
}

case_refused_without_root() {
    [[ -e $PARAM ]] || skip_because "the kernel has no FUSE over io_uring ($PARAM)" || return
    ((EUID == 0)) || skip_because "not root: cannot switch to another user" || return
    [[ ${LSMFS_TEST_NO_SYSTEM_CHANGES:-0} != 1 ]] ||
        skip_because "LSMFS_TEST_NO_SYSTEM_CHANGES=1: the parameter must be off" || return
    echo N >"$PARAM"
    # An ordinary user cannot turn the parameter on: lsmfs says so before
    # mounting, and mounts through /dev/fuse (where this machine lets an
    # ordinary user open /dev/fuse at all).
    local dir=$SCRATCH/user
    mkdir -p "$dir/mnt" && chown -R nobody "$dir" && chmod 755 "$SCRATCH" || return
    local log=$dir/lsmfs.log
    runuser -u nobody -- "$LSMFS_BIN" -f -o io_uring "$dir/data" "$dir/mnt" >"$log" 2>&1 &
    local pid=$! deadline=$((SECONDS + LSMFS_TEST_TIMEOUT))
    until is_mounted "$dir/mnt" || ! pid_running "$pid"; do
        ((SECONDS < deadline)) || break
        sleep 0.05
    done
    expect_grep "the warning" 'cannot turn on FUSE over io_uring .*enable_uring.*: Permission denied' \
        "$log" || return
    expect_equal "enable_uring" N "$(cat "$PARAM")" || return
    if ! is_mounted "$dir/mnt"; then
        stop_process "$pid"
        wait "$pid" 2>/dev/null
        # Only the mount itself may have failed, and only for /dev/fuse.
        expect_grep "why it did not mount" 'failed to open /dev/fuse: Permission denied' "$log"
        return
    fi
    local status=0
    expect_grep "transport" '/dev/fuse' <(runuser -u nobody -- "$LSMFS_BIN" stats "$dir/mnt") ||
        status=1
    runuser -u nobody -- fusermount3 -u "$dir/mnt" || status=1
    wait_until_gone "$pid" || status=1
    return $status
}

run_case "as an ordinary user, -o io_uring says why it is off" case_refused_without_root
run_case "rings serve pinned callers, data read back through /dev/fuse" case_rings_serve
run_case "kill -9 with callers in flight" case_kill9_in_flight
run_case "-s keeps /dev/fuse" case_single_thread_keeps_dev_fuse
run_case "without -o io_uring, /dev/fuse" case_default_keeps_dev_fuse
lsmfs_test_finish
