#!/usr/bin/env bash
# test_tools.sh — real workloads with ordinary tools on a real lsmfs mount,
# each one verified: cp -a and tar of system trees with diff -r and a
# metadata comparison, find, du and stat of sparse and dense files, rsync,
# git, sqlite3 (with two processes competing for the database lock), fio
# with verification, `lsmfs stats`, persistence across an unmount, kill -9
# after sync (and in the middle of a copy), and mv / ln / ln -s / rm -rf.
#
# ctest runs it with LSMFS_BIN and KV_TEST_TMPDIR set (tests/CMakeLists.txt);
# by hand:
#   LSMFS_BIN=build/fuse/lsmfs KV_TEST_TMPDIR=/tmp bash tests/fuse/test_tools.sh
# Tools that are not installed (rsync, git, sqlite3, fio) make their case
# SKIP, never pass; scripts/install-deps installs them all. Sized to finish in
# about a minute on two cores (a few minutes under ASan).
# Cases are functions that run_case calls indirectly.
# shellcheck disable=SC2317
set -uo pipefail

# shellcheck source=tests/fuse/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lsmfs_test_init test_tools

DATA=$SCRATCH/data
MNT=$SCRATCH/mnt
# Source trees: headers (bigger files) and documentation (many small files,
# symlinks, some of them dangling).
HEADERS=/usr/include
SMALL_FILES=/usr/share/doc
# Timeout of one heavy command (a copy, a diff), so that a hung mount fails
# the case instead of the whole run.
HEAVY=(timeout -k 10 300)

# ---- cases ----

case_mount_fresh() {
    check "mount a missing data directory" lsmfs_mount "$DATA" "$MNT" || return
    check "the data directory was formatted" test -f "$DATA/CURRENT" || return
    expect_equal "type in /proc/self/mounts" fuse.lsmfs "$(mount_field "$MNT" 3)" || return
    expect_equal "source in /proc/self/mounts" "$DATA" "$(mount_field "$MNT" 1)" || return
    expect_equal "entries of a fresh root" "" "$(ls -A "$MNT")"
}

case_cp_headers() {
    check "cp -a $HEADERS" "${HEAVY[@]}" cp -a "$HEADERS" "$MNT/include" || return
    check "diff -r" same_tree "$HEADERS" "$MNT/include" || return
    check "modes, owners, link counts, sizes, mtimes (ns)" \
        same_tree_metadata "$HEADERS" "$MNT/include"
}

case_cp_small_files() {
    check "cp -a $SMALL_FILES" "${HEAVY[@]}" cp -a "$SMALL_FILES" "$MNT/doc" || return
    check "diff -r" same_tree "$SMALL_FILES" "$MNT/doc" || return
    check "modes, owners, link counts, sizes, mtimes (ns)" \
        same_tree_metadata "$SMALL_FILES" "$MNT/doc"
}

case_tar_pipe() {
    mkdir -p "$MNT/tar" || return
    local parent name
    parent=$(dirname "$SMALL_FILES")
    name=$(basename "$SMALL_FILES")
    "${HEAVY[@]}" tar -C "$parent" --format=posix -cf - "$name" |
        "${HEAVY[@]}" tar -C "$MNT/tar" -xpf -
    local statuses=("${PIPESTATUS[@]}")
    expect_equal "exit status of tar c | tar x" "0 0" "${statuses[*]}" || return
    check "diff -r" same_tree "$SMALL_FILES" "$MNT/tar/$name" || return
    check "modes, owners, sizes, mtimes (s)" \
        same_tree_metadata "$SMALL_FILES" "$MNT/tar/$name" s || return
    # And back out: a tar of the copy lists the same members as one of the source.
    diff <(tar -C "$parent" -cf - "$name" | tar -tvf - | LC_ALL=C sort) \
        <(tar -C "$MNT/tar" -cf - "$name" | tar -tvf - | LC_ALL=C sort) >"$SCRATCH/tar-tv.diff" ||
        {
            fail_because "tar tv of the copy differs from the source"
            head -n 10 "$SCRATCH/tar-tv.diff" >&2
            return 1
        }
}

case_find_counts() {
    local tree source_count copy_count
    for tree in include doc; do
        local source=$HEADERS
        [[ $tree == doc ]] && source=$SMALL_FILES
        local kind
        for kind in "" "-type f" "-type d" "-type l"; do
            # shellcheck disable=SC2086 # $kind is zero or two words
            source_count=$(find "$source" $kind | wc -l)
            # shellcheck disable=SC2086
            copy_count=$(find "$MNT/$tree" $kind | wc -l)
            expect_equal "find $tree $kind | wc -l" "$source_count" "$copy_count" || return
        done
    done
}

case_du_stat() {
    local dir=$MNT/stat
    mkdir -p "$dir" || return
    local sparse=$dir/sparse
    check "truncate -s 1G" truncate -s 1G "$sparse" || return
    expect_equal "size of the sparse file" 1073741824 "$(stat -c %s "$sparse")" || return
    local kib
    kib=$(du -k "$sparse" | cut -f1)
    ((kib <= 64)) || fail_because "du of a 1 GiB hole is ${kib} KiB" || return
    # One byte in the middle: still sparse, the byte reads back, holes read as zeros.
    printf X | dd of="$sparse" bs=1 seek=$((512 << 20)) conv=notrunc status=none || return
    check "sync" sync "$sparse" || return
    expect_equal "size after writing inside" 1073741824 "$(stat -c %s "$sparse")" || return
    kib=$(du -k "$sparse" | cut -f1)
    ((kib >= 1 && kib <= 256)) ||
        fail_because "du of a 1 GiB file with one written byte is ${kib} KiB" || return
    expect_equal "the byte written at 512 MiB" X \
        "$(dd if="$sparse" bs=1 skip=$((512 << 20)) count=1 status=none)" || return
    check "the MiB before it reads as zeros" cmp -n 1048576 \
        <(dd if="$sparse" bs=1M skip=511 count=1 status=none) /dev/zero || return
    check "the last MiB reads as zeros" cmp -n 1048576 \
        <(dd if="$sparse" bs=1M skip=1023 count=1 status=none) /dev/zero || return

    # A dense file: du and st_blocks count its data.
    local dense=$dir/dense
    head -c $((8 << 20)) /dev/urandom >"$dense" || return
    check "sync" sync "$dense" || return
    kib=$(du -k "$dense" | cut -f1)
    ((kib >= 8192 && kib <= 8192 + 1024)) ||
        fail_because "du of an 8 MiB file is ${kib} KiB (st_blocks $(stat -c %b "$dense"))" ||
        return

    # Attributes set by the tools read back exactly.
    local file=$dir/attrs
    echo attrs >"$file" || return
    check "touch -d" touch -d '2001-02-03 04:05:06.123456789 UTC' "$file" || return
    expect_equal "mtime (ns)" "981173106.123456789" "$(stat -c %.9Y "$file")" || return
    check "chmod" chmod 0640 "$file" || return
    local owner
    owner="$(id -u):$(id -g)"
    if ((EUID == 0)); then
        owner=1234:5678
        check "chown" chown "$owner" "$file" || return
    fi
    expect_equal "mode and owner" "640 $owner" "$(stat -c '%a %u:%g' "$file")" || return
    check "truncate shrinks" truncate -s 3 "$file" || return
    expect_equal "content after truncate" att "$(cat "$file")" || return

    # statfs: df and stat -f give sane numbers.
    local statfs namemax bsize blocks available
    statfs=$(stat -f -c '%l %S %b %a' "$MNT") || return
    read -r namemax bsize blocks available <<<"$statfs"
    expect_equal "name length limit" 255 "$namemax" || return
    ((bsize >= 512 && blocks > 0 && available > 0 && available <= blocks)) ||
        fail_because "stat -f: block size $bsize, blocks $blocks, available $available" || return
    check "df" df -P "$MNT" >/dev/null
}

case_rsync() {
    command -v rsync >/dev/null || {
        skip_because "rsync is not installed (scripts/install-deps installs it)"
        return
    }
    # The source is a scratch copy on the local disk, so it can be changed.
    local source=$SCRATCH/rsync-source copy=$MNT/rsync
    check "copy the source" cp -a "$HEADERS/linux" "$source" || return
    check "rsync -a" "${HEAVY[@]}" rsync -a "$source/" "$copy/" || return
    check "diff -r" same_tree "$source" "$copy" || return
    check "metadata (s)" same_tree_metadata "$source" "$copy" s || return
    local again
    again=$(rsync -ai "$source/" "$copy/") || return
    expect_equal "a second rsync -ai finds nothing to do" "" "$again" || return
    # Changes, additions and deletions travel with --delete.
    echo appended >>"$source/types.h" || return
    rm -f "$source/kernel.h" || return
    mkdir -p "$source/new-dir" && echo new >"$source/new-dir/new-file" || return
    check "rsync -a --delete" rsync -a --delete "$source/" "$copy/" || return
    check "diff -r after the changes" same_tree "$source" "$copy" || return
    check "kernel.h was deleted" test ! -e "$copy/kernel.h"
}

case_git() {
    command -v git >/dev/null || {
        skip_because "git is not installed"
        return
    }
    local repo=$MNT/git/repo
    local -a git=(git -c user.name=lsmfs -c user.email=lsmfs@example.invalid
        -c init.defaultBranch=main -c gc.auto=0)
    mkdir -p "$repo" || return
    check "git init" "${git[@]}" -C "$repo" init -q || return
    check "copy sources" cp -a "$HEADERS/linux/." "$repo/" || return
    check "git add" "${git[@]}" -C "$repo" add -A || return
    check "git commit 1" "${git[@]}" -C "$repo" commit -q -m "first" || return
    # A second commit with modifications, a rename and a deletion.
    echo "/* changed */" >>"$repo/types.h" || return
    check "git mv" "${git[@]}" -C "$repo" mv kernel.h kernel-renamed.h || return
    check "git rm" "${git[@]}" -C "$repo" rm -q -r netfilter || return
    check "git commit 2" "${git[@]}" -C "$repo" commit -q -a -m "second" || return
    expect_equal "commits" 2 "$("${git[@]}" -C "$repo" rev-list --count HEAD)" || return
    expect_equal "git status after commit" "" "$("${git[@]}" -C "$repo" status --porcelain)" ||
        return
    check "git fsck --full --strict" "${git[@]}" -C "$repo" fsck --full --strict --no-progress ||
        return
    # gc packs the objects (temporary files, renames, mmap reads).
    check "git gc" "${git[@]}" -C "$repo" gc -q --prune=now || return
    check "git fsck after gc" "${git[@]}" -C "$repo" fsck --full --strict --no-progress ||
        return
    # A local clone hard-links the objects.
    check "git clone" "${git[@]}" clone -q "$repo" "$MNT/git/clone" || return
    check "git fsck of the clone" "${git[@]}" -C "$MNT/git/clone" fsck --full --no-progress ||
        return
    check "clone has the same files" diff -r --exclude=.git "$repo" "$MNT/git/clone"
}

# sqlite_insert DB WHO ROWS_PER_TRANSACTION TRANSACTIONS: inserts rows tagged
# WHO, each transaction retried by sqlite's busy timeout.
sqlite_insert() {
    local db=$1 who=$2 rows=$3 transactions=$4 i
    {
        echo ".bail on"
        echo ".timeout 20000"
        for ((i = 0; i < transactions; i++)); do
            echo "BEGIN IMMEDIATE;"
            echo "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $rows)"
            echo "  INSERT INTO t(who, n, payload) SELECT '$who', $i * $rows + x, randomblob(200) FROM c;"
            echo "COMMIT;"
        done
    } | sqlite3 "$db" >/dev/null
}

# sqlite_check DB EXPECTED_TOTAL: integrity_check is ok and the row count matches.
sqlite_check() {
    local db=$1 expected=$2
    expect_equal "PRAGMA integrity_check of $(basename "$db")" ok \
        "$(sqlite3 "$db" 'PRAGMA integrity_check;')" || return
    expect_equal "rows in $(basename "$db")" "$expected" \
        "$(sqlite3 "$db" 'SELECT count(*) FROM t;')"
}

# sqlite_workload JOURNAL_MODE: 10k rows in transactions, then two
# concurrent writers, then the lock held by one process blocks the other.
sqlite_workload() {
    local mode=$1
    local db=$MNT/sqlite/test-$mode.db
    mkdir -p "$MNT/sqlite" || return
    expect_equal "journal mode" "$mode" \
        "$(sqlite3 "$db" "PRAGMA journal_mode=$mode;
            CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT, n INTEGER, payload BLOB);" |
            tr '[:upper:]' '[:lower:]')" || return
    check "10 transactions of 1000 rows" sqlite_insert "$db" main 1000 10 || return
    sqlite_check "$db" 10000 || return

    # Two processes, many small transactions each, at the same time.
    sqlite_insert "$db" writer-a 10 150 &
    local writer_a=$!
    sqlite_insert "$db" writer-b 10 150 &
    local writer_b=$!
    local status_a=0 status_b=0
    wait "$writer_a" || status_a=$?
    wait "$writer_b" || status_b=$?
    expect_equal "exit status of the concurrent writers" "0 0" "$status_a $status_b" || return
    sqlite_check "$db" 13000 || return
    expect_equal "rows per writer" "writer-a|1500 writer-b|1500" \
        "$(sqlite3 "$db" "SELECT who, count(*) FROM t WHERE who LIKE 'writer-%' GROUP BY who ORDER BY who;" |
            tr '\n' ' ' | sed 's/ $//')" || return
    expect_equal "the writers' rows are distinct" 1500 \
        "$(sqlite3 "$db" "SELECT count(DISTINCT n) FROM t WHERE who = 'writer-a';")" || return

    # Locking: while one process holds an exclusive transaction, another one
    # with a short busy timeout is refused; after COMMIT it gets through.
    local fifo=$SCRATCH/sqlite-$mode.fifo locked=$SCRATCH/sqlite-$mode.locked
    rm -f "$fifo" "$locked"
    mkfifo "$fifo" || return
    sqlite3 "$db" <"$fifo" >"$SCRATCH/sqlite-$mode.holder.out" 2>&1 &
    local holder=$!
    exec {holder_input}>"$fifo"
    echo "BEGIN EXCLUSIVE; INSERT INTO t(who, n) VALUES ('holder', 1);" >&"$holder_input"
    echo ".shell touch $locked" >&"$holder_input"
    local deadline=$((SECONDS + LSMFS_TEST_TIMEOUT))
    until [[ -e $locked ]]; do
        if ((SECONDS >= deadline)) || ! pid_running "$holder"; then
            exec {holder_input}>&-
            wait "$holder"
            fail_because "the sqlite3 holding the lock did not start"
            show_log "$SCRATCH/sqlite-$mode.holder.out"
            return 1
        fi
        sleep 0.05
    done
    local blocked_output blocked_status=0
    blocked_output=$(sqlite3 -cmd ".timeout 200" "$db" \
        "INSERT INTO t(who, n) VALUES ('blocked', 1);" 2>&1) || blocked_status=$?
    echo "COMMIT;" >&"$holder_input"
    exec {holder_input}>&-
    local holder_status=0
    wait "$holder" || holder_status=$?
    ((blocked_status != 0)) && [[ $blocked_output == *locked* ]] ||
        fail_because "a second writer got in while another process held an exclusive" \
            "transaction (exit $blocked_status: $blocked_output)" || return
    expect_equal "exit status of the lock holder" 0 "$holder_status" || return
    check "the second writer after COMMIT" sqlite3 -cmd ".timeout 5000" "$db" \
        "INSERT INTO t(who, n) VALUES ('after', 1);" || return
    sqlite_check "$db" 13002
}

case_sqlite() {
    command -v sqlite3 >/dev/null || {
        skip_because "sqlite3 is not installed (scripts/install-deps installs it)"
        return
    }
    echo "    rollback journal (delete)"
    sqlite_workload delete || return
    echo "    write-ahead log (wal: shared mmap of the -shm file)"
    sqlite_workload wal
}

# run_fio NAME FIO-ARGS...: runs one fio job in $MNT/fio; fails on a non-zero
# exit, an error count, or a verification message.
run_fio() {
    local name=$1
    shift
    local output=$SCRATCH/fio-$name.out status=0 filename=$name.dat arg
    for arg in "$@"; do
        [[ $arg == --filename=* ]] && filename=${arg#--filename=}
    done
    mkdir -p "$MNT/fio" || return
    # From the scratch directory and with no verify state saved: fio would
    # leave local-*-verify.state files in its working directory.
    (cd "$SCRATCH" && "${HEAVY[@]}" fio --name="$name" --directory="$MNT/fio" \
        --filename="$filename" --verify_state_save=0 --group_reporting "$@") >"$output" 2>&1 ||
        status=$?
    if ((status != 0)) || ! grep -q 'err= 0' "$output" || grep -E 'err= *[1-9]' "$output" ||
        grep -Eiq 'verify: bad|bad magic|crc32c: verify|verify failed' "$output"; then
        fail_because "fio $name: exit status $status, errors in its output:"
        grep -Ei 'err=|verify|error' "$output" | head -n 20 | sed 's/^/        | /' >&2
        return 1
    fi
    grep -E '^ +(READ|WRITE):' "$output" | sed "s/^ */    $name: /"
}

case_fio() {
    command -v fio >/dev/null || {
        skip_because "fio is not installed (scripts/install-deps installs it)"
        return
    }
    run_fio randwrite-verify --rw=randwrite --bs=4k --size=64m --ioengine=psync \
        --verify=crc32c --do_verify=1 || return
    run_fio direct-verify --rw=randwrite --bs=4k --size=16m --ioengine=psync --direct=1 \
        --verify=crc32c --do_verify=1 || return
    run_fio mmap-verify --rw=randwrite --bs=4k --size=16m --ioengine=mmap \
        --verify=crc32c --do_verify=1 || return
    run_fio seq-1m --rw=write --bs=1m --size=128m --ioengine=psync \
        --verify=crc32c --do_verify=1 || return
    # A read-only job over the file written above (fio would lay out a new
    # file under the job's own name).
    run_fio seq-1m-read --rw=read --bs=1m --size=128m --ioengine=psync \
        --filename=seq-1m.dat || return
    check "the read job read the written file" test ! -e "$MNT/fio/seq-1m-read.dat" || return
    expect_equal "size of the 1 MiB-block file" $((128 << 20)) \
        "$(stat -c %s "$MNT/fio/seq-1m.dat")"
}

case_stats() {
    local output=$SCRATCH/stats.out
    check "lsmfs stats" "$LSMFS_BIN" stats "$MNT" >"$output" || return
    expect_grep "a level table" '^level +files +bytes' "$output" || return
    expect_grep "level 0 line" '^ +0 +[0-9]+ +[0-9]+' "$output" || return
    expect_grep "memtable lines" 'memtable [0-9]+ bytes' "$output" || return
    expect_grep "write counters" '^writes: [1-9][0-9]* keys' "$output"
}

# Everything mounted so far, compared before and after an unmount + remount.
case_persistence() {
    local manifest=$SCRATCH/manifest.sha256
    local before=$SCRATCH/listing.before after=$SCRATCH/listing.after
    # Checksums of the files written in place (not the copied trees: diff
    # checks those against their sources), and the metadata of every entry
    # including inode numbers and ctimes.
    local dir dirs=()
    for dir in fio sqlite git rsync stat; do
        [[ -d $MNT/$dir ]] && dirs+=("$dir")
    done
    (cd "$MNT" && find "${dirs[@]}" -type f ! -name sparse -print0 |
        LC_ALL=C sort -z | xargs -0 -r sha256sum) >"$manifest" || return
    (cd "$MNT" && find . -printf '%p %i %y %m %U:%G %n %T@ %C@\n' | LC_ALL=C sort) >"$before" ||
        return
    check "unmount (fusermount3 -u)" lsmfs_unmount "$MNT" || return
    check "remount" lsmfs_mount "$DATA" "$MNT" || return
    (cd "$MNT" && find . -printf '%p %i %y %m %U:%G %n %T@ %C@\n' | LC_ALL=C sort) >"$after" ||
        return
    diff "$before" "$after" >"$SCRATCH/listing.diff" || {
        fail_because "names, inode numbers, modes, owners, links or times changed" \
            "across the remount (< before, > after):"
        head -n 20 "$SCRATCH/listing.diff" | sed 's/^/        | /' >&2
        return 1
    }
    check "diff -r $HEADERS" same_tree "$HEADERS" "$MNT/include" || return
    check "diff -r $SMALL_FILES" same_tree "$SMALL_FILES" "$MNT/doc" || return
    check "diff -r tar copy" same_tree "$SMALL_FILES" "$MNT/tar/$(basename "$SMALL_FILES")" ||
        return
    check "file checksums" bash -c "cd '$MNT' && sha256sum --quiet -c '$manifest'" || return
    expect_equal "sparse file size" 1073741824 "$(stat -c %s "$MNT/stat/sparse")" || return
    expect_equal "sparse file byte" X \
        "$(dd if="$MNT/stat/sparse" bs=1 skip=$((512 << 20)) count=1 status=none)" || return
    local db
    for db in "$MNT"/sqlite/*.db; do
        [[ -e $db ]] || continue
        sqlite_check "$db" 13002 || return
    done
    if [[ -d $MNT/git/repo ]]; then
        check "git fsck after remount" git -C "$MNT/git/repo" fsck --full --strict --no-progress ||
            return
    fi
}

case_mv_ln_rm() {
    # mv: a whole tree, a file across directories, a file over another.
    check "mv a tree" mv "$MNT/include" "$MNT/include-moved" || return
    check "old name gone" test ! -e "$MNT/include" || return
    check "diff -r after mv" same_tree "$HEADERS" "$MNT/include-moved" || return
    mkdir -p "$MNT/ops/a" "$MNT/ops/b" || return
    echo one >"$MNT/ops/a/one" && echo two >"$MNT/ops/b/two" || return
    check "mv across directories" mv "$MNT/ops/a/one" "$MNT/ops/b/one" || return
    expect_equal "moved file" "one" "$(cat "$MNT/ops/b/one")" || return
    check "mv over an existing file" mv "$MNT/ops/b/one" "$MNT/ops/b/two" || return
    expect_equal "replaced file" "one" "$(cat "$MNT/ops/b/two")" || return
    expect_equal "entries of b" "two" "$(ls "$MNT/ops/b")" || return
    expect_equal "entries of a" "" "$(ls -A "$MNT/ops/a")" || return
    mkdir -p "$MNT/ops/full1" "$MNT/ops/full2" && touch "$MNT/ops/full1/x" "$MNT/ops/full2/y" ||
        return
    if mv -T "$MNT/ops/full1" "$MNT/ops/full2" 2>/dev/null; then
        fail_because "mv of a directory over a non-empty directory succeeded"
        return 1
    fi
    check "mv a directory over an empty one" mv -T "$MNT/ops/full1" "$MNT/ops/a" || return
    check "moved directory content" test -f "$MNT/ops/a/x" || return

    # ln: hard links share the inode and the data; the last name keeps it.
    local f=$MNT/ops/linked
    echo data >"$f" || return
    check "ln" ln "$f" "$MNT/ops/b/hard" || return
    expect_equal "link count" 2 "$(stat -c %h "$f")" || return
    expect_equal "same inode" "$(stat -c %i "$f")" "$(stat -c %i "$MNT/ops/b/hard")" || return
    echo more >>"$MNT/ops/b/hard" || return
    expect_equal "write through the other name" "data more" "$(tr '\n' ' ' <"$f" | sed 's/ $//')" ||
        return
    check "rm one name" rm "$f" || return
    expect_equal "link count after rm" 1 "$(stat -c %h "$MNT/ops/b/hard")" || return
    expect_equal "data after rm" "data more" \
        "$(tr '\n' ' ' <"$MNT/ops/b/hard" | sed 's/ $//')" || return
    if ln "$MNT/ops/a" "$MNT/ops/dirlink" 2>/dev/null; then
        fail_because "a hard link to a directory was made"
        return 1
    fi
    check "ln of a whole tree (cp -al)" cp -al "$MNT/include-moved/linux" "$MNT/ops/linux-links" ||
        return
    expect_equal "link count of a linked header" 2 "$(stat -c %h "$MNT/ops/linux-links/types.h")" ||
        return

    # ln -s: relative, absolute, dangling, and a long target.
    check "ln -s relative" ln -s ../include-moved/stdio.h "$MNT/ops/stdio-link" || return
    expect_equal "readlink" ../include-moved/stdio.h "$(readlink "$MNT/ops/stdio-link")" || return
    check "read through the symlink" cmp "$HEADERS/stdio.h" "$MNT/ops/stdio-link" || return
    check "ln -s absolute to a directory" ln -s "$MNT/include-moved/linux" "$MNT/ops/linux-dir" ||
        return
    check "follow a symlinked directory" test -f "$MNT/ops/linux-dir/types.h" || return
    check "ln -s dangling" ln -s does-not-exist "$MNT/ops/dangling" || return
    check "dangling link is a link that leads nowhere" \
        bash -c "test -L '$MNT/ops/dangling' && ! test -e '$MNT/ops/dangling'" || return
    local long_target
    long_target=$(head -c 4000 /dev/zero | tr '\0' 'x')
    check "ln -s with a 4000-byte target" ln -s "$long_target" "$MNT/ops/long-link" || return
    expect_equal "long target reads back" "$long_target" "$(readlink "$MNT/ops/long-link")" ||
        return
    expect_equal "symlink size" 4000 "$(stat -c %s "$MNT/ops/long-link")" || return

    # rm -rf of the big trees.
    local before
    before=$(find "$MNT" | wc -l)
    local removed
    removed=$(find "$MNT/include-moved" "$MNT/doc" "$MNT/tar" | wc -l)
    check "rm -rf" "${HEAVY[@]}" rm -rf "$MNT/include-moved" "$MNT/doc" "$MNT/tar" || return
    check "trees gone" test ! -e "$MNT/include-moved" -a ! -e "$MNT/doc" -a ! -e "$MNT/tar" ||
        return
    expect_equal "entries left" $((before - removed)) "$(find "$MNT" | wc -l)" || return
    check "symlink into the removed tree now dangles" test ! -e "$MNT/ops/stdio-link" || return
    check "hard-linked copy survives its source" cmp "$HEADERS/linux/types.h" \
        "$MNT/ops/linux-links/types.h" || return
    expect_equal "its link count" 1 "$(stat -c %h "$MNT/ops/linux-links/types.h")" || return
    check "rm -rf the rest of ops" rm -rf "$MNT/ops" || return
    check "ops gone" test ! -e "$MNT/ops"
}

case_kill9_after_sync() {
    local dir=$MNT/crash
    mkdir -p "$dir" || return
    check "copy a tree" cp -a "$HEADERS/linux" "$dir/linux" || return
    head -c $((16 << 20)) /dev/urandom >"$dir/big" || return
    local big_sum
    big_sum=$(sha256sum <"$dir/big") || return
    check "sync" sync || return
    # Answered after the sync, never synced: lsmfs's contract is that an
    # answered operation is in the WAL, so kill -9 of the daemon loses none.
    mkdir "$dir/made-after-sync" && mv "$dir/big" "$dir/big-renamed" || return
    check "kill -9 the daemon" lsmfs_kill9 "$MNT" || return
    check "remount" lsmfs_mount "$DATA" "$MNT" || return
    check "synced tree intact" same_tree "$HEADERS/linux" "$dir/linux" || return
    check "mkdir answered before the kill" test -d "$dir/made-after-sync" || return
    check "rename answered before the kill" test -f "$dir/big-renamed" -a ! -e "$dir/big" ||
        return
    expect_equal "synced data" "$big_sum" "$(sha256sum <"$dir/big-renamed")" || return
    check "metadata of the synced tree (ns)" same_tree_metadata "$HEADERS/linux" "$dir/linux"
}

case_kill9_mid_copy() {
    local dir=$MNT/crash
    # A copy in flight when the daemon dies: what was synced stays intact,
    # the half-copied tree can be walked and removed, new files work.
    local before=$SCRATCH/crash-listing
    (cd "$dir" && find linux -printf '%p %i %m %s %T@\n' | LC_ALL=C sort) >"$before" || return
    check "sync" sync || return
    cp -a "$SMALL_FILES" "$dir/in-flight" 2>/dev/null &
    local copier=$!
    sleep 1
    check "kill -9 the daemon during cp" lsmfs_kill9 "$MNT" || return
    wait "$copier" 2>/dev/null
    check "remount" lsmfs_mount "$DATA" "$MNT" || return
    check "synced tree intact" same_tree "$HEADERS/linux" "$dir/linux" || return
    check "its inode numbers, modes, sizes and times" diff "$before" \
        <(cd "$dir" && find linux -printf '%p %i %m %s %T@\n' | LC_ALL=C sort) || return
    check "the half-copied tree can be walked" bash -c "find '$dir/in-flight' >/dev/null" ||
        return
    check "and read" bash -c "find '$dir/in-flight' -type f -print0 | xargs -0 -r cat >/dev/null" ||
        return
    check "and removed" rm -rf "$dir/in-flight" || return
    echo after >"$dir/new-file" && expect_equal "a new file" after "$(cat "$dir/new-file")"
}

case_final_unmount() {
    check "unmount (fusermount3 -u) with exit status 0" lsmfs_unmount "$MNT" || return
    check "no lsmfs daemon left on $MNT" test -z "$(lsmfs_daemons "$MNT")"
}

run_case "mount a fresh data directory" case_mount_fresh
if ! is_mounted "$MNT"; then
    echo "$TEST_NAME: nothing mounted, the other cases cannot run" >&2
    lsmfs_test_finish
fi
run_case "cp -a $HEADERS, diff -r, metadata" case_cp_headers
run_case "cp -a $SMALL_FILES (small files, symlinks), diff -r, metadata" case_cp_small_files
run_case "tar c | tar x of $SMALL_FILES, diff -r" case_tar_pipe
run_case "find | wc -l equals the sources" case_find_counts
run_case "du and stat: sparse 1G file, dense file, times, modes, statfs" case_du_stat
run_case "rsync -a, rsync -ai finds nothing, rsync --delete" case_rsync
run_case "git init, commits, gc, fsck, clone" case_git
run_case "sqlite3: 10k rows, concurrent writers, locking, integrity" case_sqlite
run_case "fio with verify: 4k random, O_DIRECT, mmap, 1 MiB sequential" case_fio
run_case "lsmfs stats MNT" case_stats
run_case "persistence: unmount, remount, compare everything" case_persistence
run_case "mv, ln, ln -s, rm -rf" case_mv_ln_rm
run_case "kill -9 after sync, remount, synced files intact" case_kill9_after_sync
run_case "kill -9 during cp, remount, walk and remove the debris" case_kill9_mid_copy
run_case "final unmount" case_final_unmount
lsmfs_test_finish
