#!/usr/bin/env bash
# `trust update` at scale, in one run:
#
#   benches/lineage-update.sh [--keys 1000] [--rotations 2] [--rounds 5] [--bin PATH] [--keep]
#
# Makes a coordinator with --keys lineages (one keygen each, all trusted),
# copies its trusted-keys directory as a worker's, then rotates every key
# --rotations times (--keys x --rotations statements, 2,000 by default).
# Times `trust update` of a fresh copy of the worker's directory over all the
# statements (target: under 1 s for 2,000 statements against 1,000 keys), and,
# as the reference measured in the same run, `trust list` of the result,
# which loads the whole store once and verifies nothing. Medians of --rounds.
# Prints PASS/FAIL; exits 0 unless something could not run.

set -euo pipefail

KEYS=1000
ROTATIONS=2
ROUNDS=5
BIN=
KEEP=

die() { echo "error: $*" >&2; exit 1; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --keys) KEYS=${2:?}; shift 2 ;;
        --rotations) ROTATIONS=${2:?}; shift 2 ;;
        --rounds) ROUNDS=${2:?}; shift 2 ;;
        --bin) BIN=${2:?}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z $BIN ]]; then
    (cd "$root" && cargo build --release --quiet) || die "cargo build failed"
    BIN=$root/target/release/pkgsign
fi
[[ -x $BIN ]] || die "$BIN is not executable"

work=$(mktemp -d "${TMPDIR:-/tmp}/pkgsign-lineage-bench.XXXXXX")
trap '[[ -n $KEEP ]] && echo "kept $work" || rm -rf "$work"' EXIT
chmod 700 "$work"
keys=$work/keys trusted=$work/trusted
mkdir -m 700 "$keys"

echo "making $KEYS lineages and $((KEYS * ROTATIONS)) statements in $work ..."
for ((i = 0; i < KEYS; i++)); do
    "$BIN" keygen --output-dir "$keys" --name "k$i" >/dev/null 2>&1
    "$BIN" trust add "$trusted" "$keys/k$i.pub" >/dev/null
done
# The workers' copies are made now, before the rotations: the timed runs
# then create files in directories made minutes earlier, as a real worker's
# is, not right after deleting thousands of files (ext4 makes inode
# allocation slow for about a minute after that; see docs/benchmarks.md).
for ((r = 0; r < ROUNDS; r++)); do
    cp -a "$trusted" "$work/worker-$r"
done
for ((r = 0; r < ROTATIONS; r++)); do
    for ((i = 0; i < KEYS; i++)); do
        "$BIN" key-rotate --keys-dir "$keys" --trusted-keys "$trusted" --name "k$i" >/dev/null
    done
done
n=$(find "$trusted/lineage" -name '*.stmt' | wc -l)
echo "statements: $n; keys in the worker's directory: $KEYS"

ms() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
up=() ls=()
for ((r = 0; r < ROUNDS; r++)); do
    t0=$(ms)
    "$BIN" trust update "$work/worker-$r" --from "$trusted/lineage" >"$work/out" ||
        die "trust update failed: $(grep -v '^applied' "$work/out" | head -3)"
    t1=$(ms)
    "$BIN" trust list "$work/worker-$r" >/dev/null
    t2=$(ms)
    up+=($(((t1 - t0) / 1000))) ls+=($(((t2 - t1) / 1000)))
done
applied=$(grep -c '^applied' "$work/out")
u=$(printf '%s\n' "${up[@]}" | median) l=$(printf '%s\n' "${ls[@]}" | median)
printf 'trust update: %d statements applied in %.1f ms (median of %d)\n' "$applied" "$(echo "$u / 1000" | bc -l)" "$ROUNDS"
printf 'trust list (reference: one load of the %d keys, no signature checked): %.1f ms\n' "$((KEYS * (ROTATIONS + 1)))" "$(echo "$l / 1000" | bc -l)"
printf 'ratio update / list: %.2f\n' "$(echo "$u / $l" | bc -l)"
if ((u < 1000000)); then echo "PASS: under 1 s"; else echo "FAIL: 1 s or more"; fi
