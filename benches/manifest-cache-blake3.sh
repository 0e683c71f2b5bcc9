#!/usr/bin/env bash
# Release-scale verification, in one run:
#
#   benches/manifest-cache-blake3.sh [--files 20] [--file-size 12M] [--big 1G] [--rounds 5] [--bin PATH]
#
#  1. makes --files files of --file-size random bytes, a sha256sum list of
#     them, signed with pkgsign, and times `verify-manifest` with all cores
#     against `--jobs 1`, alternately; prints the ratio (target: at most 0.6);
#  2. times `verify-manifest --cache` cold (a fresh cache each run, so every
#     file is hashed) against warm (the cache of a previous run), alternately;
#     prints cold / warm (target: at least 50);
#  3. makes one --big file and times `sign-package --hash blake3` against
#     `sign-package --hash sha256` on it, alternately; prints sha256 / blake3
#     (target: at least 3).
# All on cached data (files are read once first). Medians of --rounds runs.
# Prints PASS/FAIL per target; exits 0 unless something could not run.

set -euo pipefail

FILES=20
FILE_SIZE=12M
BIG=1G
ROUNDS=5
BIN=

die() { echo "error: $*" >&2; exit 1; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --files) FILES=${2:?}; shift 2 ;;
        --file-size) FILE_SIZE=${2:?}; shift 2 ;;
        --big) BIG=${2:?}; shift 2 ;;
        --rounds) ROUNDS=${2:?}; shift 2 ;;
        --bin) BIN=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z $BIN ]]; then
    (cd "$root" && cargo build --release --quiet) || die "cargo build --release failed"
    BIN=$root/target/release/pkgsign
fi
[[ -x $BIN ]] || die "$BIN is not an executable"
BIN=$(realpath "$BIN")
for t in sha256sum head python3; do command -v "$t" >/dev/null || die "$t is needed"; done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

"$BIN" keygen --output-dir keys --name bench >/dev/null 2>&1 || die "keygen failed"
mkdir rel
for i in $(seq 1 "$FILES"); do head -c "$FILE_SIZE" /dev/urandom > "rel/file-$i.bin"; done
(cd rel && sha256sum -- *.bin > SHA256SUMS)
"$BIN" sign-package --package rel/SHA256SUMS --private-key keys/bench.pem >/dev/null || die "signing the list failed"
cat rel/* > /dev/null
sleep 1.2   # files changed in the last second are never cached (racy writes)

# now_ns; run CMD...; prints elapsed seconds
elapsed() {
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1 || die "failed: $*"
    t1=$(date +%s%N)
    echo "$(( t1 - t0 ))"
}
median() { python3 -c 'import sys,statistics; v=[int(x) for x in sys.argv[1:]]; print(int(statistics.median(v)))' "$@"; }
ms() { python3 -c "print(f'{$1/1e6:.1f}')"; }
ratio() { python3 -c "print(f'{$1/$2:.3f}')"; }
verdict() { python3 -c "import sys; print('PASS' if ($1) else 'FAIL')"; }

VM=("$BIN" verify-manifest rel/SHA256SUMS --public-key keys/bench.pub --quiet)

# 1. all cores vs --jobs 1
all=(); one=()
for r in $(seq 1 "$ROUNDS"); do
    all+=("$(elapsed "${VM[@]}")")
    one+=("$(elapsed "${VM[@]}" --jobs 1)")
done
m_all=$(median "${all[@]}"); m_one=$(median "${one[@]}")
r1=$(ratio "$m_all" "$m_one")
echo "verify-manifest, $FILES files of $FILE_SIZE: all cores $(ms "$m_all") ms, --jobs 1 $(ms "$m_one") ms"
echo "  ratio all/--jobs 1 = $r1 (target <= 0.6): $(verdict "$r1 <= 0.6")"

# 2. cache cold vs warm. A warm run takes a few ms, so process start-up
# timed from bash would dominate: hyperfine times these (it is installed by
# .ci/run), with a fresh cache prepared before every cold run.
command -v hyperfine >/dev/null || die "hyperfine is needed (apt-get install hyperfine)"
"${VM[@]}" --cache warm.json >/dev/null 2>&1 || die "warming the cache failed"
hmedian() { python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["results"][0]["median"]*1e9))' "$1"; }
runs=$(( ROUNDS * 6 ))
hyperfine -N --runs "$runs" --prepare "rm -f $work/cold.json $work/cold.json.lock" \
    --export-json cold.hf.json "${VM[*]} --cache cold.json" >/dev/null 2>&1 || die "hyperfine (cold) failed"
hyperfine -N --warmup 3 --runs "$runs" --export-json warm.hf.json \
    "${VM[*]} --cache warm.json" >/dev/null 2>&1 || die "hyperfine (warm) failed"
m_cold=$(hmedian cold.hf.json); m_warm=$(hmedian warm.hf.json)
r2=$(ratio "$m_cold" "$m_warm")
echo "verify-manifest --cache: cold $(ms "$m_cold") ms, warm $(ms "$m_warm") ms (hyperfine medians of $runs runs)"
echo "  ratio cold/warm = $r2 (target >= 50): $(verdict "$r2 >= 50")"

# 3. blake3 vs sha256 signing of one big file
head -c "$BIG" /dev/urandom > big.bin
cat big.bin > /dev/null
b3=(); s2=()
for r in $(seq 1 "$ROUNDS"); do
    b3+=("$(elapsed "$BIN" sign-package --package big.bin --private-key keys/bench.pem --hash blake3 --output b3.sig)")
    s2+=("$(elapsed "$BIN" sign-package --package big.bin --private-key keys/bench.pem --hash sha256 --output s2.sig)")
done
m_b3=$(median "${b3[@]}"); m_s2=$(median "${s2[@]}")
r3=$(ratio "$m_s2" "$m_b3")
echo "sign-package of $BIG: --hash sha256 $(ms "$m_s2") ms, --hash blake3 $(ms "$m_b3") ms"
echo "  ratio sha256/blake3 = $r3 (target >= 3): $(verdict "$r3 >= 3")"
