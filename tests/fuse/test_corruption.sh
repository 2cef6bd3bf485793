#!/usr/bin/env bash
# test_corruption.sh — damaged files in a data directory, through a real
# mount: a flipped byte in an SST data block, or in a blob file record,
# makes the reads that touch it
# fail with EIO (never wrong bytes), names file and offset in the LOG, and
# leaves every other file readable (writes may stop: the engine turns
# read-only once a compaction meets the damage); a damaged CURRENT or MANIFEST makes the
# mount fail with a message naming the file.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lsmfs_test_init test_corruption
DATA=$SCRATCH/data
MNT=$SCRATCH/mnt

# flip_byte FILE OFFSET: xor one byte of FILE with 0x40 (coreutils only).
flip_byte() {
    local byte
    byte=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ') || return
    [[ -n $byte ]] || fail_because "flip_byte: $1 has no byte at offset $2" || return
    printf "$(printf '\\%03o' $((byte ^ 0x40)))" |
        dd of="$1" bs=1 seek="$2" count=1 conv=notrunc status=none
}

# make_store [OPTIONS...]: six files of 1.5 MB, written through a mount with
# these options.
make_store() {
    if is_mounted "$(realpath -m "$MNT")"; then
        lsmfs_unmount "$MNT" # left by a failed case
    fi
    rm -rf "$DATA"
    check "mount" lsmfs_mount "$DATA" "$MNT" -o write_buffer_size=256K "$@" || return
    local i
    for ((i = 1; i <= 6; i++)); do
        head -c 1500000 /dev/urandom >"$SCRATCH/f$i"
        cp "$SCRATCH/f$i" "$MNT/f$i" || return
    done
    check "unmount" lsmfs_unmount "$MNT"
}

# flipped_byte KIND [OPTIONS...]: flips a byte a third into the largest
# .KIND file (sst, blob) of a store made with OPTIONS.
flipped_byte() {
    local kind=$1
    shift
    make_store "$@" || return
    local sst
    sst=$(ls -S "$DATA"/*."$kind" | head -n 1)
    [[ -n $sst ]] || fail_because "no .$kind file was written" || return
    flip_byte "$sst" $(($(stat -c %s "$sst") / 3)) || return
    check "mount the damaged store" lsmfs_mount "$DATA" "$MNT" || return
    local i bad=0 good=0
    for ((i = 1; i <= 6; i++)); do
        if cmp "$SCRATCH/f$i" "$MNT/f$i" >/dev/null 2>"$SCRATCH/cmp.err"; then
            good=$((good + 1))
        elif grep -q "Input/output error" "$SCRATCH/cmp.err"; then
            bad=$((bad + 1))
        else
            fail_because "f$i reads back wrong without an error" || return
        fi
    done
    echo "    $bad files fail with EIO, $good read back intact"
    ((bad >= 1 && good >= 1)) || fail_because "want some files EIO and the others intact" || return
    expect_grep "the LOG names file and offset" \
        "read failed: corruption: $(basename "$sst"): .*offset [0-9]+" "$DATA/LOG" || return
    check "the mount keeps serving" ls -l "$MNT" >/dev/null || return
    # A compaction that reads the damaged block stops writes (the engine
    # turns read-only rather than build on damage, as RocksDB does), and the
    # daemon then reports it by exiting 1 at unmount: both are allowed here;
    # a crash or a sanitizer report is not.
    local mnt pid log status=0
    mnt=$(realpath "$MNT")
    pid=$(lsmfs_daemon_pid "$mnt") log=$(lsmfs_log "$mnt")
    check "unmount" fusermount3 -u "$mnt" || return
    check "the mount goes away" wait_for_unmount "$mnt" || return
    wait "$pid" || status=$?
    unset "DAEMON_PID_OF[$mnt]"
    ((status == 0 || status == 1)) || fail_because "the daemon exited with status $status" ||
        return
    check "no sanitizer report" log_is_clean "$log" || return
    status=0
    "$LSMFS_BIN" fsck --no-progress "$DATA" >"$SCRATCH/fsck.out" 2>&1 || status=$?
    expect_equal "fsck exit status on a damaged .$kind file" 4 "$status" || return
    expect_grep "fsck names the file" "$(basename "$sst")" "$SCRATCH/fsck.out"
}

# mount_refused NAME: the mount fails, and its message names NAME.
mount_refused() {
    local status=0 out=$SCRATCH/refused.out
    mkdir -p "$MNT"
    "$LSMFS_BIN" "$DATA" "$MNT" >"$out" 2>&1 || status=$?
    if is_mounted "$MNT"; then
        fusermount3 -u "$MNT"
        fail_because "a store with a damaged $1 mounted"
        return 1
    fi
    ((status != 0)) || fail_because "lsmfs exited 0 on a damaged $1" || return
    echo "    refused: $(head -n 1 "$out")"
    expect_grep "the message names $1" "$1" "$out"
}

current_damaged() {
    make_store || return
    printf 'MANIFEST-999999\n' >"$DATA/CURRENT"
    mount_refused CURRENT
}

manifest_damaged() {
    make_store || return
    local manifest
    manifest=$(ls "$DATA"/MANIFEST-* | head -n 1)
    flip_byte "$manifest" 20 || return
    mount_refused MANIFEST
}

run_case "a flipped SST byte: EIO for that data only, LOG and fsck name the file" \
    flipped_byte sst -o no_blob_files
run_case "a flipped blob file byte: EIO for that data only, LOG and fsck name the file" \
    flipped_byte blob
run_case "a damaged CURRENT refuses the mount, naming it" current_damaged
run_case "a damaged MANIFEST refuses the mount, naming it" manifest_damaged
lsmfs_test_finish
