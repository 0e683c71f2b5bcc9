#!/usr/bin/env bash
# pkgsign against `openssl dgst -sha256`, on the same file, in one run.
#
#   benches/vs-openssl.sh [--size 1G] [--rounds 5] [--small-runs 300]
#                         [--bin PATH] [--max-wait 10] [--no-hash-speed]
#
# What it does (docs/benchmarks.md explains how to read the output):
#  1. builds target/release/pkgsign if needed (or uses --bin);
#  2. makes a package of --size random bytes (default 1 GiB) in a temp dir,
#     removed on exit, and an ed25519 and an RSA-3072 key with pkgsign keygen;
#  3. warms the page cache, so that every tool reads the file from memory,
#     never from the disk: these are CACHED-data figures;
#  4. times, alternately (one run of each per round, in a rotating order,
#     --rounds rounds), `openssl dgst -sha256 FILE`, `pkgsign sign-package`
#     (pkgsign format, SHA-256) and `pkgsign verify-package`, each with both
#     keys; takes the median wall time of each and prints pkgsign / openssl;
#  5. prints each one's peak RSS (GNU time's %M), and verify's peak RSS on a
#     1 KiB package beside the big one;
#  6. times verify-package of a 1 KiB package (median whole-process wall time
#     over --small-runs runs, with hyperfine when present);
#  7. compares in-memory SHA-256 speed: sha2 (pkgsign's hasher) vs openssl.
#
# Targets: sign and verify of the package at most 0.90x openssl's wall time;
# peak RSS at most 16 MiB whatever the size; verify of 1 KiB at most 3 ms.
# Each is printed as PASS or FAIL. The exit status is 0 unless something
# could not run (a missing tool, a failed build, a pkgsign error): a
# benchmark reports, it does not gate.
#
# The machine should be otherwise idle: with 2 cores, one busy process
# elsewhere takes the core that pkgsign's reader thread runs on. Before each
# timed run the script waits (up to --max-wait seconds) for the CPUs to be
# idle, and says how many runs had to start on a busy machine.

set -euo pipefail

SIZE=1G
ROUNDS=5
SMALL_RUNS=300
BIN=
MAX_WAIT=10
HASH_SPEED=1

die() { echo "error: $*" >&2; exit 1; }
usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --size) SIZE=${2:?--size needs a value, like 64M or 1G}; shift 2 ;;
        --rounds) ROUNDS=${2:?}; shift 2 ;;
        --small-runs) SMALL_RUNS=${2:?}; shift 2 ;;
        --bin) BIN=${2:?}; shift 2 ;;
        --max-wait) MAX_WAIT=${2:?}; shift 2 ;;
        --no-hash-speed) HASH_SPEED=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ $SMALL_RUNS =~ ^[1-9][0-9]*$ ]] || die "--small-runs must be a positive integer"
[[ $MAX_WAIT =~ ^[0-9]+$ ]] || die "--max-wait must be a number of seconds"

# ---------------------------------------------------------------- tools ---
[[ -n ${EPOCHREALTIME:-} ]] || die "bash 5 or later is needed (for \$EPOCHREALTIME)"
command -v openssl >/dev/null || die "openssl is not installed (apt-get install openssl)"
command -v numfmt >/dev/null || die "numfmt (coreutils) is not installed"
if ! /usr/bin/time -f %M true >/dev/null 2>&1; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "installing GNU time (for peak RSS)..." >&2
        apt-get install -y -qq time >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq time >/dev/null 2>&1; } \
            || die "could not install GNU time: apt-get install time"
    fi
    /usr/bin/time -f %M true >/dev/null 2>&1 \
        || die "GNU time is needed at /usr/bin/time for peak RSS: apt-get install time"
fi
HAVE_HYPERFINE=0
command -v hyperfine >/dev/null && HAVE_HYPERFINE=1

BYTES=$(numfmt --from=iec "$SIZE" 2>/dev/null) || die "--size $SIZE: use a number of bytes or 64K, 64M, 1G"
[[ $BYTES -ge 1 ]] || die "--size must be at least 1 byte"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z $BIN ]]; then
    command -v cargo >/dev/null || die "cargo is not installed; give --bin PATH to a built pkgsign"
    echo "building pkgsign (cargo build --release)..." >&2
    (cd "$REPO" && cargo build --release --quiet) || die "cargo build --release failed"
    BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/pkgsign
    [[ $BIN = /* ]] || BIN=$REPO/$BIN
fi
[[ -x $BIN ]] || die "$BIN is not an executable pkgsign"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pkgsign-bench.XXXXXX") || die "cannot make a temp dir"
cleanup() { rm -rf -- "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

free_kib=$(df -Pk "$WORK" | awk 'NR==2 {print $4}')
(( free_kib * 1024 > BYTES + (64 << 20) )) \
    || die "not enough space in $WORK for a $SIZE package (set TMPDIR elsewhere or use --size)"

# ------------------------------------------------------------- helpers ---
# Share of the CPUs idle over a quarter second, in percent.
idle_pct() {
    local _ u n s i w q r st u2 n2 s2 i2 w2 q2 r2 st2
    read -r _ u n s i w q r st _ < /proc/stat
    sleep 0.25
    read -r _ u2 n2 s2 i2 w2 q2 r2 st2 _ < /proc/stat
    local total=$(( (u2+n2+s2+i2+w2+q2+r2+st2) - (u+n+s+i+w+q+r+st) ))
    (( total > 0 )) || { echo 100; return; }
    echo $(( 100 * (i2 - i) / total ))
}
BUSY_STARTS=0
TIMED_RUNS=0
NOISY_KEPT=0
# Wait (bounded) until nothing else is running, so that pkgsign and openssl
# are measured on the same, quiet machine.
wait_quiet() {
    [[ -r /proc/stat ]] || return 0
    local deadline=$(( SECONDS + MAX_WAIT ))
    while (( $(idle_pct) < 90 )); do
        if (( SECONDS >= deadline )); then
            BUSY_STARTS=$((BUSY_STARTS + 1))
            return 0
        fi
    done
}
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)
# CPU time (ticks) used so far by everything on the machine.
busy_ticks() {
    if [[ -r /proc/stat ]]; then
        awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
    else
        echo 0
    fi
}

# run_timed NAME CMD...: one run; wall seconds and peak RSS (KiB) appended
# to $WORK/NAME.t and $WORK/NAME.rss. A run during which other processes
# used more than 0.1 CPU-second is done again (twice at most): it measured
# the neighbours as much as the command. A failing command stops the script.
run_timed() {
    local name=$1; shift
    local attempt start end b0 b1 rss u s other
    for attempt in 0 1 2; do
        wait_quiet
        b0=$(busy_ticks)
        start=$EPOCHREALTIME
        if ! /usr/bin/time -f '%M %U %S' -o "$WORK/rss.tmp" "$@" >"$WORK/out.tmp" 2>&1; then
            cat "$WORK/out.tmp" >&2
            die "this failed to run: $*"
        fi
        end=$EPOCHREALTIME
        b1=$(busy_ticks)
        read -r rss u s < <(tail -n 1 "$WORK/rss.tmp")
        other=$(awk -v b0="$b0" -v b1="$b1" -v hz="$HZ" -v u="$u" -v s="$s" \
            'BEGIN { o = (b1 - b0) / hz - u - s; printf "%.2f", (o > 0 ? o : 0) }')
        if awk -v o="$other" 'BEGIN { exit !(o <= 0.10) }' || [[ $attempt == 2 ]]; then
            break
        fi
    done
    awk -v o="$other" 'BEGIN { exit !(o > 0.10) }' && NOISY_KEPT=$((NOISY_KEPT + 1))
    TIMED_RUNS=$((TIMED_RUNS + 1))
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.6f\n", e - s }' >>"$WORK/$name.t"
    echo "$rss" >>"$WORK/$name.rss"
    echo "$other" >>"$WORK/$name.other"
}
median() { sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maxof() { sort -g "$1" | tail -n 1; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
verdict() { # verdict OK TEXT
    if [[ $1 == 1 ]]; then echo "PASS  $2"; else echo "FAIL  $2"; fi
}

# ---------------------------------------------------------------- setup ---
PKG=$WORK/package.bin
SMALL=$WORK/small.bin
echo "making a $(numfmt --to=iec-i "$BYTES")B package of random bytes in $WORK..." >&2
head -c "$BYTES" /dev/urandom >"$PKG"
head -c 1024 /dev/urandom >"$SMALL"
# Written pages are dirty: flush them now, so that no writeback runs during
# the measurements.
sync "$PKG" "$SMALL"
setup() { # run a setup command quietly; show its output if it fails
    "$@" >"$WORK/setup.out" 2>&1 || { cat "$WORK/setup.out" >&2; die "this failed to run: $*"; }
}
setup "$BIN" keygen --output-dir "$WORK" --name ed --algorithm ed25519
setup "$BIN" keygen --output-dir "$WORK" --name rsa --algorithm rsa --bits 3072
for k in ed rsa; do
    setup "$BIN" sign-package --package "$PKG" --private-key "$WORK/$k.pem" --output "$WORK/pkg.$k.sig"
    setup "$BIN" sign-package --package "$SMALL" --private-key "$WORK/$k.pem" --output "$WORK/small.$k.sig"
done
# Warm the page cache: every measured run reads the package from memory.
cat "$PKG" >/dev/null
cat "$PKG" >/dev/null
cached="unknown"
if command -v fincore >/dev/null; then
    cached=$(fincore -b -n -o RES,SIZE "$PKG" 2>/dev/null | awk '$2 > 0 { printf "%.0f%%", 100 * $1 / $2 }')
fi

# ------------------------------------------------- interleaved big runs ---
NAMES=(openssl sign-ed25519 sign-rsa3072 verify-ed25519 verify-rsa3072)
run_one() {
    case "$1" in
        openssl) run_timed openssl openssl dgst -sha256 "$PKG" ;;
        sign-ed25519) run_timed "$1" "$BIN" sign-package --package "$PKG" --private-key "$WORK/ed.pem" --hash sha256 --format pkgsign --output "$WORK/out.sig" ;;
        sign-rsa3072) run_timed "$1" "$BIN" sign-package --package "$PKG" --private-key "$WORK/rsa.pem" --hash sha256 --format pkgsign --output "$WORK/out.sig" ;;
        verify-ed25519) run_timed "$1" "$BIN" verify-package --package "$PKG" --signature "$WORK/pkg.ed.sig" --public-key "$WORK/ed.pub" ;;
        verify-rsa3072) run_timed "$1" "$BIN" verify-package --package "$PKG" --signature "$WORK/pkg.rsa.sig" --public-key "$WORK/rsa.pub" ;;
    esac
}
echo "timing $ROUNDS interleaved rounds of ${#NAMES[@]} commands on the $(numfmt --to=iec-i "$BYTES")B package..." >&2
# One untimed run of each first (loads the binaries and libraries).
for n in "${NAMES[@]}"; do run_one "$n"; done
for n in "${NAMES[@]}"; do rm -f "$WORK/$n.t" "$WORK/$n.rss" "$WORK/$n.other"; done
TIMED_RUNS=0 BUSY_STARTS=0 NOISY_KEPT=0
for ((r = 0; r < ROUNDS; r++)); do
    # Rotate the order each round so that no command always runs first.
    for ((j = 0; j < ${#NAMES[@]}; j++)); do
        run_one "${NAMES[$(( (r + j) % ${#NAMES[@]} ))]}"
    done
done
BIG_RUNS=$TIMED_RUNS BIG_BUSY=$BUSY_STARTS BIG_NOISY=$NOISY_KEPT

# ----------------------------------------------- small package: RSS, ms ---
for k in ed rsa; do
    for ((i = 0; i < 5; i++)); do
        run_timed "small-verify-$k" "$BIN" verify-package --package "$SMALL" --signature "$WORK/small.$k.sig" --public-key "$WORK/$k.pub"
    done
done

small_ms() { # small_ms KEY -> median ms
    local k=$1
    local cmd=("$BIN" verify-package --package "$SMALL" --signature "$WORK/small.$k.sig" --public-key "$WORK/$k.pub")
    wait_quiet
    if [[ $HAVE_HYPERFINE == 1 ]]; then
        hyperfine -N --style none --warmup 20 --runs "$SMALL_RUNS" \
            --export-json "$WORK/hf.json" "$(printf '%q ' "${cmd[@]}")" >/dev/null 2>&1 \
            || die "hyperfine failed on: ${cmd[*]}"
        grep -o '"median": *[0-9.e+-]*' "$WORK/hf.json" | head -n 1 \
            | awk -F: '{ printf "%.3f", $2 * 1000 }'
    else
        : >"$WORK/loop.t"
        for ((i = 0; i < 20; i++)); do "${cmd[@]}" >/dev/null; done
        for ((i = 0; i < SMALL_RUNS; i++)); do
            local s=$EPOCHREALTIME
            "${cmd[@]}" >/dev/null || die "this failed to run: ${cmd[*]}"
            local e=$EPOCHREALTIME
            awk -v s="$s" -v e="$e" 'BEGIN { printf "%.6f\n", e - s }' >>"$WORK/loop.t"
        done
        median "$WORK/loop.t" | awk '{ printf "%.3f", $1 * 1000 }'
    fi
}
echo "timing verify-package of a 1 KiB package, $SMALL_RUNS runs per key..." >&2
SMALL_ED_MS=$(small_ms ed)
SMALL_RSA_MS=$(small_ms rsa)
OPENSSL_SMALL_MS=
if [[ $HAVE_HYPERFINE == 1 ]]; then
    hyperfine -N --style none --warmup 20 --runs "$SMALL_RUNS" --export-json "$WORK/hf.json" \
        "openssl dgst -sha256 $SMALL" >/dev/null 2>&1 \
        && OPENSSL_SMALL_MS=$(grep -o '"median": *[0-9.e+-]*' "$WORK/hf.json" | head -n 1 | awk -F: '{ printf "%.3f", $2 * 1000 }')
fi

# ------------------------------------------------ in-memory SHA-256 speed ---
SHA2_MBPS= OPENSSL_MBPS= OPENSSL_SOFT_MBPS=
if [[ $HASH_SPEED == 1 ]]; then
    echo "measuring in-memory SHA-256 speed (sha2 vs openssl)..." >&2
    wait_quiet
    if out=$(cd "$REPO" && cargo test --release --quiet --bench sha256_throughput -- --nocapture 2>&1); then
        SHA2_MBPS=$(grep -o 'sha256-in-memory-MBps [0-9]*' <<<"$out" | awk '{ print $2 }')
    else
        echo "$out" >&2
        die "the sha256_throughput bench failed to build or run"
    fi
    ossl_speed() { openssl speed -evp sha256 -bytes 1048576 -seconds 2 2>/dev/null | awk '/^sha256/ { sub(/k$/, "", $2); printf "%.0f", $2 / 1000 }'; }
    wait_quiet
    OPENSSL_MBPS=$(ossl_speed)
    # The same with SHA-NI masked off (the SHA bit of CPUID leaf 7 EBX):
    # what a SHA-256 without the instructions does on this CPU.
    wait_quiet
    OPENSSL_SOFT_MBPS=$(OPENSSL_ia32cap=":~0x20000000" ossl_speed)
fi

# --------------------------------------------------------------- report ---
OSSL=$(median "$WORK/openssl.t")
echo
echo "== pkgsign vs openssl dgst -sha256"
echo "machine:  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, kernel $(uname -r)"
echo "          SHA-NI: $(grep -qw sha_ni /proc/cpuinfo && echo yes || echo no); $(openssl version | cut -d' ' -f1-2); pkgsign $(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo '?') ($BIN)"
echo "package:  $(numfmt --to=iec-i "$BYTES")B ($BYTES bytes) of random data; page cache warm (resident: $cached): cached reads, no disk I/O"
echo "method:   $ROUNDS interleaved rounds, rotating order; median wall time per command; peak RSS by GNU time"
echo "load:     $BIG_NOISY of $BIG_RUNS timed runs kept although other processes used > 0.1 CPU-s during them (each redone twice first);"
echo "          $BIG_BUSY runs started on a busy machine (after waiting up to ${MAX_WAIT}s for idle)"
echo
printf "%-16s %9s %10s %10s %6s  %s\n" "command" "median s" "x openssl" "peak RSS" "noisy" "all runs (s)"
for n in "${NAMES[@]}"; do
    m=$(median "$WORK/$n.t")
    ratio=$(awk -v a="$m" -v b="$OSSL" 'BEGIN { printf "%.3f", a / b }')
    noisy=$(awk '$1 > 0.10 { c++ } END { print c + 0 }' "$WORK/$n.other")
    printf "%-16s %9.3f %10s %6s MiB %6s  %s\n" "$n" "$m" "${ratio}x" "$(mib "$(maxof "$WORK/$n.rss")")" "$noisy" \
        "$(tr '\n' ' ' <"$WORK/$n.t" | awk '{ for (i = 1; i <= NF; i++) printf "%.3f ", $i }')"
done
echo
echo "peak RSS of verify-package: 1 KiB package $(mib "$(maxof "$WORK/small-verify-ed.rss")") MiB (ed25519), $(mib "$(maxof "$WORK/small-verify-rsa.rss")") MiB (rsa); $(numfmt --to=iec-i "$BYTES")B package $(mib "$(maxof "$WORK/verify-ed25519.rss")") MiB (ed25519), $(mib "$(maxof "$WORK/verify-rsa3072.rss")") MiB (rsa)"
echo "verify-package of a 1 KiB package, median of $SMALL_RUNS runs ($([[ $HAVE_HYPERFINE == 1 ]] && echo hyperfine -N || echo shell loop)): ed25519 $SMALL_ED_MS ms, rsa-3072 $SMALL_RSA_MS ms${OPENSSL_SMALL_MS:+ (openssl dgst -sha256 of it: $OPENSSL_SMALL_MS ms)}"
if [[ $HASH_SPEED == 1 ]]; then
    echo "in-memory SHA-256, 1 MiB blocks: sha2 (pkgsign) $SHA2_MBPS MB/s; openssl $OPENSSL_MBPS MB/s; openssl without SHA-NI $OPENSSL_SOFT_MBPS MB/s"
fi

echo
echo "== targets"
worst_rss=0
for f in "$WORK"/sign-*.rss "$WORK"/verify-*.rss "$WORK"/small-verify-*.rss; do
    v=$(maxof "$f")
    (( v > worst_rss )) && worst_rss=$v
done
for n in sign-ed25519 sign-rsa3072 verify-ed25519 verify-rsa3072; do
    m=$(median "$WORK/$n.t")
    ratio=$(awk -v a="$m" -v b="$OSSL" 'BEGIN { printf "%.3f", a / b }')
    ok=$(awk -v r="$ratio" 'BEGIN { print (r <= 0.90) ? 1 : 0 }')
    verdict "$ok" "$n of $(numfmt --to=iec-i "$BYTES")B: ${ratio}x openssl dgst -sha256 wall time (target <= 0.90x)"
done
verdict "$(( worst_rss <= 16384 ? 1 : 0 ))" "peak RSS, every pkgsign run above: at most $(mib "$worst_rss") MiB (target <= 16 MiB)"
for k in ed rsa; do
    v=$([[ $k == ed ]] && echo "$SMALL_ED_MS" || echo "$SMALL_RSA_MS")
    ok=$(awk -v v="$v" 'BEGIN { print (v <= 3.0) ? 1 : 0 }')
    verdict "$ok" "verify-package of 1 KiB ($k): median $v ms (target <= 3 ms)"
done
if [[ $HASH_SPEED == 1 ]]; then
    ok=$(awk -v a="$SHA2_MBPS" -v b="$OPENSSL_MBPS" 'BEGIN { print (a >= 0.9 * b) ? 1 : 0 }')
    verdict "$ok" "sha2 uses SHA-NI: in-memory SHA-256 at $SHA2_MBPS MB/s, openssl $OPENSSL_MBPS MB/s (check: within 10%)"
fi
if (( BIG_NOISY > 0 )); then
    echo "note: $BIG_NOISY of $BIG_RUNS timed runs shared the CPUs with other processes; run again on an idle machine for figures you can compare"
fi
