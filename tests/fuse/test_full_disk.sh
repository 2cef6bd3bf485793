#!/usr/bin/env bash
# test_full_disk.sh — lsmfs on a full disk: DATADIR on a 200 MiB tmpfs,
# files written until the disk is full. Writers must get ENOSPC, what was
# synced before must read back intact, deleting files must work on the full
# disk and give the space back, writing must resume, the daemon must exit
# cleanly and fsck must find the store clean. And deletions must wait for
# space that is short only for a moment, rather than fail. On a disk with
# room to spare, the space of deleted files must come back within seconds.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lsmfs_test_init test_full_disk
SMALL=$SCRATCH/small
MNT=$SCRATCH/mnt
SMALL2=$SCRATCH/small2
MNT2=$SCRATCH/mnt2
SMALL3=$SCRATCH/small3
MNT3=$SCRATCH/mnt3
# After the lsmfs mounts are gone (exit hooks run after unmounting).
lsmfs_on_exit 'if mountpoint -q "$SMALL"; then umount "$SMALL" || umount -l "$SMALL"; fi'
lsmfs_on_exit 'if mountpoint -q "$SMALL2"; then umount "$SMALL2" || umount -l "$SMALL2"; fi'
lsmfs_on_exit 'if mountpoint -q "$SMALL3"; then umount "$SMALL3" || umount -l "$SMALL3"; fi'

# used_kib [DIR]: KiB used on DIR's file system (default: $SMALL).
used_kib() { df -k --output=used "${1:-$SMALL}" | tail -n 1 | tr -d ' '; }

# fill_up FILE: writes zeros to FILE until the disk is full.
fill_up() { dd if=/dev/zero of="$1" bs=4k status=none 2>/dev/null; true; }

full_disk() {
    [[ $(id -u) == 0 ]] || return "$(skip_because "mounting a tmpfs needs root")"
    mkdir -p "$SMALL" && check "mount a 200 MiB tmpfs" mount -t tmpfs -o size=200m tmpfs "$SMALL" ||
        return
    local data=$SMALL/data
    check "mount lsmfs on it" lsmfs_mount "$data" "$MNT" -o write_buffer_size=1M || return
    head -c 10000000 /dev/urandom >"$SCRATCH/keep"
    check "write a file" cp "$SCRATCH/keep" "$MNT/keep" || return
    check "sync it" sync "$MNT/keep" || return

    local i enospc=0
    for ((i = 1; i <= 25; i++)); do
        if ! dd if=/dev/urandom of="$MNT/big$i" bs=1M count=10 conv=fsync status=none \
            2>"$SCRATCH/dd.err"; then
            grep -q "No space left on device" "$SCRATCH/dd.err" ||
                fail_because "dd big$i failed, but not with ENOSPC: $(cat "$SCRATCH/dd.err")" ||
                return
            enospc=$((enospc + 1))
        fi
    done
    ((enospc > 0)) || fail_because "250 MB fit on a 200 MiB disk: no ENOSPC" || return
    echo "    $enospc of 25 writers got ENOSPC; disk used: $(used_kib) KiB"
    check "the synced file is intact on the full disk" cmp "$SCRATCH/keep" "$MNT/keep" || return
    check "the mount still lists" ls "$MNT" >/dev/null || return

    check "delete files on the full disk" rm -f "$MNT"/big* || return
    local before
    before=$(used_kib)
    for ((i = 0; i < 60; i++)); do
        (($(used_kib) < 60 * 1024)) && break
        sleep 0.5
    done
    echo "    disk used after deleting: $(used_kib) KiB (was $before KiB)"
    if (($(used_kib) >= 60 * 1024)); then
        ls -la "$data" >"$SCRATCH/data.ls"
        cp "$data/LOG" "$SCRATCH/data.LOG"
        "$LSMFS_BIN" stats "$MNT" >"$SCRATCH/stats.txt" 2>&1
        fail_because "space not given back within 30 s (see $SCRATCH/data.ls, data.LOG, stats.txt)"
        return
    fi
    check "writing resumes" dd if=/dev/urandom of="$MNT/after" bs=1M count=20 conv=fsync \
        status=none || return
    check "the synced file is still intact" cmp "$SCRATCH/keep" "$MNT/keep" || return
    check "unmount; the daemon exits cleanly" lsmfs_unmount "$MNT" || return
    check "fsck finds the store clean" "$LSMFS_BIN" fsck --no-progress "$data" || return
    umount "$SMALL"
}

# A deletion that finds no space (here: another file holds all of it, and
# the reserve is gone) waits for space to come back rather than fail; on a
# disk that deletions are emptying, a compaction short of space holds its
# partial output only until it fails.
deletion_waits() {
    [[ $(id -u) == 0 ]] || return "$(skip_because "mounting a tmpfs needs root")"
    mkdir -p "$SMALL2" && check "mount a 64 MiB tmpfs" mount -t tmpfs -o size=64m tmpfs "$SMALL2" ||
        return
    local data=$SMALL2/data
    check "mount lsmfs on it" lsmfs_mount "$data" "$MNT2" -o write_buffer_size=1M || return
    # Long names, so that deleting them writes well over a MiB of log.
    local long i
    long=$(printf 'n%.0s' {1..200})
    mkdir "$MNT2/dir" || return
    for ((i = 0; i < 6000; i++)); do
        : >"$MNT2/dir/$long.$i" || fail_because "create file $i" || return
    done
    check "sync" sync -f "$MNT2" || return
    fill_up "$SMALL2/hog1"
    check "the reserve exists" test -f "$data/lsmfs.reserve" || return
    rm -f "$data/lsmfs.reserve"
    fill_up "$SMALL2/hog2"
    rm -rf "$MNT2/dir" 2>"$SCRATCH/rm.err" &
    local rm_pid=$! waits=0 started=$SECONDS polls=""
    for ((i = 0; i < 200; i++)); do
        waits=$("$LSMFS_BIN" stats "$MNT2" | sed -n 's/.*deletions that waited for space \([0-9]*\).*/\1/p')
        polls+=" $((SECONDS - started))s:${waits:-?}"
        ((waits > 0)) && break
        pid_running "$rm_pid" || break
        sleep 0.1
    done
    rm -f "$SMALL2/hog1" "$SMALL2/hog2"
    local status=0
    wait "$rm_pid" || status=$?
    if ((status != 0)); then
        # What the poll saw (seconds since rm began: waits), and the daemon.
        echo "    stats polls:$polls; rm ended after $((SECONDS - started)) s"
        show_log "$(lsmfs_log "$MNT2")"
        fail_because "rm -rf failed on the full disk: $(head -n 3 "$SCRATCH/rm.err")"
        return
    fi
    ((waits > 0)) || fail_because "no deletion waited for space: the disk was not full" || return
    echo "    deletions that waited for space: $waits"
    check "the directory is gone" test ! -e "$MNT2/dir" || return
    check "unmount; the daemon exits cleanly" lsmfs_unmount "$MNT2" || return
    check "fsck finds the store clean" "$LSMFS_BIN" fsck --no-progress "$data" || return
    umount "$SMALL2"
}

# On a disk with room to spare, the space of deleted files comes back
# too, and soon, with nothing else written: their data is in blob files,
# which garbage collection takes only once the deletions are compacted into
# the tables that index it (fs_impl.h, FS_SETTLE_BYTES).
# space_back DATADIR KIB WHAT: waits up to 30 s for the disk of $SMALL3 to
# use under KIB KiB; fails saying WHAT did not come back.
space_back() {
    local i
    for ((i = 0; i < 60; i++)); do
        (($(used_kib "$SMALL3") < $2)) && break
        sleep 0.5
    done
    echo "    disk used: $(used_kib "$SMALL3") KiB (waited for under $2)"
    if (($(used_kib "$SMALL3") >= $2)); then
        ls -la "$1" >"$SCRATCH/roomy.ls"
        "$LSMFS_BIN" stats "$MNT3" >"$SCRATCH/roomy-stats.txt" 2>&1
        fail_because "under $3 came back within 30 s (see $SCRATCH/roomy.ls, roomy-stats.txt)"
        return 1
    fi
}

roomy_disk() {
    [[ $(id -u) == 0 ]] || return "$(skip_because "mounting a tmpfs needs root")"
    mkdir -p "$SMALL3" && check "mount a 400 MiB tmpfs" mount -t tmpfs -o size=400m tmpfs "$SMALL3" ||
        return
    local data=$SMALL3/data i
    check "mount lsmfs on it" lsmfs_mount "$data" "$MNT3" || return
    head -c 20971520 /dev/urandom >"$SCRATCH/f5"
    for ((i = 1; i <= 5; i++)); do
        local source=/dev/urandom
        ((i == 5)) && source=$SCRATCH/f5
        check "write file $i" dd if="$source" of="$MNT3/f$i" bs=1M count=20 conv=fsync \
            status=none || return
    done
    local before
    before=$(used_kib "$SMALL3")
    # 40 MiB (the space comes back a second after the deletions), then 40
    # more: each time, more than half of the blob file holding them.
    check "delete 2 of the 5 files" rm "$MNT3/f1" "$MNT3/f2" || return
    space_back "$data" $((before - 25 * 1024)) "25 MiB of 40" || return
    check "delete 2 more" rm "$MNT3/f3" "$MNT3/f4" || return
    space_back "$data" $((before - 50 * 1024)) "50 MiB of 80" || return
    # A directory open while its files are deleted (as rm -r holds one):
    # its snapshot is of the meta family only, and the space comes back
    # while it is still open.
    mkdir "$MNT3/d" || return
    for ((i = 1; i <= 20; i++)); do
        dd if=/dev/urandom of="$MNT3/d/f$i" bs=1M count=4 status=none || return
    done
    check "sync the directory's files" sync -f "$MNT3" || return
    before=$(used_kib "$SMALL3")
    exec 9<"$MNT3/d"
    check "delete 80 MiB with their directory open" rm "$MNT3"/d/f* || return
    space_back "$data" $((before - 60 * 1024)) "60 MiB of 80 with the directory open" || return
    exec 9<&-
    check "the file kept reads back" cmp "$SCRATCH/f5" "$MNT3/f5" || return
    check "unmount; the daemon exits cleanly" lsmfs_unmount "$MNT3" || return
    check "fsck finds the store clean" "$LSMFS_BIN" fsck --no-progress "$data" || return
    umount "$SMALL3"
}

run_case "full disk: ENOSPC, nothing lost, deletions give space back" full_disk
run_case "full disk: a deletion waits for space that comes back" deletion_waits
run_case "roomy disk: deleted files give their space back" roomy_disk
lsmfs_test_finish
