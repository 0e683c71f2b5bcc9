#!/usr/bin/env bash
# Does the streaming reader's poller earn its keep? The reader thread of
# src/digest/stream.rs can wait for a free buffer in two ways: poll (sleep
# ~50 us between looks, while /proc/loadavg shows a free CPU) or block in a
# plain channel recv. This times both, on an idle and on a loaded machine,
# against `openssl dgst -sha256` measured in the same rounds.
#
#   benches/reader-wait.sh [--size 1G] [--rounds 5] [--runs 3] [--load N] [--max-wait 30]
#                          [--bins POLL BLOCK]
#
# What it does (docs/benchmarks.md, "The reader's wait", has the figures):
#  1. builds the working tree (`cargo build --release`) and a copy of it
#     with benches/reader-wait-blocking.patch applied, forward or in reverse,
#     whichever applies: so one binary polls and the other blocks, and
#     nothing else differs. The copy and its own target dir live in
#     target/reader-wait/ and are kept, so only the first run compiles the
#     dependencies a second time. (A shared target dir will not do: both
#     trees are the same package, so the copy's build would replace the
#     working tree's binary and fingerprints.) --bins skips the builds and
#     times two binaries built so before (say, copies of them);
#  2. makes a --size package of random bytes (default 1 GiB) in a temp dir,
#     removed on exit, signs it with a fresh ed25519 key, and warms the page
#     cache: these are CACHED-data figures;
#  3. per round, twice: "idle" (waits up to --max-wait s for the CPUs to be
#     90% idle; starts nothing) and "loaded" (--load busy loops, `yes >
#     /dev/null`, default one per CPU, stopped after the round). Each time
#     hyperfine runs `openssl dgst -sha256`, `checksum` and `verify-package`
#     with each binary, --runs runs each, in an order rotated every round;
#  4. records `uptime` and the CPU time other processes used during each
#     round (the busy loops count as "other"), so that you can see what
#     "idle" was;
#  5. prints, per case, the median wall time, the ratio to openssl, the
#     ratio poll / block, and the CPU time (user+sys) each one used.
# It does not decide: a benchmark reports; exit 0 unless something could not run.

set -euo pipefail

SIZE=1G
ROUNDS=5
RUNS=3
LOAD=
MAX_WAIT=30
BIN_POLL= BIN_BLOCK=

die() { echo "error: $*" >&2; exit 1; }
usage() { sed -n '8,9p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --size) SIZE=${2:?--size needs a value, like 64M or 1G}; shift 2 ;;
        --rounds) ROUNDS=${2:?}; shift 2 ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --load) LOAD=${2:?}; shift 2 ;;
        --max-wait) MAX_WAIT=${2:?}; shift 2 ;;
        --bins) BIN_POLL=${2:?--bins POLL BLOCK}; BIN_BLOCK=${3:?--bins POLL BLOCK}; shift 3 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
done
LOAD=${LOAD:-$(nproc)}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
[[ $LOAD =~ ^[1-9][0-9]*$ ]] || die "--load must be a positive integer"
[[ $MAX_WAIT =~ ^[0-9]+$ ]] || die "--max-wait must be a number of seconds"

for t in cargo openssl hyperfine jq patch numfmt git; do
    command -v "$t" >/dev/null || die "$t is needed"
done
BYTES=$(numfmt --from=iec "$SIZE" 2>/dev/null) || die "--size $SIZE: use a number of bytes or 64M, 1G"
(( BYTES > 8 << 20 )) || die "--size must be over 8 MiB: smaller files are read without the reader thread"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PATCH=$REPO/benches/reader-wait-blocking.patch
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
[[ $TARGET = /* ]] || TARGET=$REPO/$TARGET

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pkgsign-reader-wait.XXXXXX") || die "cannot make a temp dir"
LOAD_PIDS=()
stop_load() {
    local p
    for p in "${LOAD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${LOAD_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    LOAD_PIDS=()
}
cleanup() { stop_load; rm -rf -- "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# --------------------------------------------------------------- builds ---
if [[ -n $BIN_POLL ]]; then
    cp "$BIN_POLL" "$WORK/pkgsign-poll" && cp "$BIN_BLOCK" "$WORK/pkgsign-block" || die "cannot copy --bins"
    CUR=given VARIANT=given
else
    # The variant's tree: the working tree's tracked (and new, unignored) files
    # that the build reads, with the patch applied. Files are replaced only when
    # their content changed, so that a second run recompiles nothing.
    VAR=$TARGET/reader-wait/tree
    VAR_TARGET=$TARGET/reader-wait/target
    STAGE=$WORK/stage
    mkdir -p "$STAGE" "$VAR"
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard -- src Cargo.toml Cargo.lock build.rs \
        | xargs -0 cp --parents -p -t "$STAGE" --)
    if patch -p1 -s -f --dry-run -d "$STAGE" <"$PATCH" >/dev/null 2>&1; then
        patch -p1 -s -f -d "$STAGE" <"$PATCH" >/dev/null
        CUR=poll VARIANT=block
    elif patch -p1 -s -f -R --dry-run -d "$STAGE" <"$PATCH" >/dev/null 2>&1; then
        patch -p1 -s -f -R -d "$STAGE" <"$PATCH" >/dev/null
        CUR=block VARIANT=poll
    else
        die "$PATCH applies to src/digest/stream.rs neither forward nor in reverse; remake it (diff -u of the polling and the blocking stream.rs)"
    fi
    (cd "$STAGE" && find . -type f -print0) | while IFS= read -r -d '' f; do
        if ! cmp -s "$STAGE/$f" "$VAR/$f"; then
            mkdir -p "$(dirname "$VAR/$f")"
            cp -p "$STAGE/$f" "$VAR/$f"
        fi
    done
    (cd "$VAR" && find . -type f -print0) | while IFS= read -r -d '' f; do
        [[ -e $STAGE/$f ]] || rm -f -- "$VAR/$f"
    done
    echo "building the $VARIANT variant in $VAR (cargo build --release)..." >&2
    (cd "$VAR" && CARGO_TARGET_DIR=$VAR_TARGET cargo build --release --quiet) || die "cargo build --release of the variant failed"
    cp "$VAR_TARGET/release/pkgsign" "$WORK/pkgsign-$VARIANT"
    echo "building the working tree ($CUR) (cargo build --release)..." >&2
    (cd "$REPO" && cargo build --release --quiet) || die "cargo build --release failed"
    cp "$TARGET/release/pkgsign" "$WORK/pkgsign-$CUR"
fi
# Only the polling binary reads /proc/loadavg: make sure each is what it says.
grep -q loadavg "$WORK/pkgsign-poll" || die "the polling build does not read /proc/loadavg"
! grep -q loadavg "$WORK/pkgsign-block" || die "the blocking build still reads /proc/loadavg"
POLL=$WORK/pkgsign-poll
BLOCK=$WORK/pkgsign-block

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
wait_quiet() {
    local deadline=$(( SECONDS + MAX_WAIT ))
    while (( $(idle_pct) < 90 )); do
        if (( SECONDS >= deadline )); then
            BUSY_STARTS=$((BUSY_STARTS + 1))
            return 0
        fi
    done
}
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
median() { sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# ---------------------------------------------------------------- setup ---
PKG=$WORK/package.bin
echo "making a $(numfmt --to=iec-i "$BYTES")B package of random bytes in $WORK..." >&2
head -c "$BYTES" /dev/urandom >"$PKG"
sync "$PKG"
"$POLL" keygen --output-dir "$WORK" --name ed >/dev/null 2>&1 || die "keygen failed"
"$POLL" sign-package --package "$PKG" --private-key "$WORK/ed.pem" --output "$WORK/pkg.sig" >/dev/null 2>&1 \
    || die "sign-package failed"
cat "$PKG" >/dev/null
cat "$PKG" >/dev/null
WANT=$(openssl dgst -sha256 -r "$PKG" | cut -d' ' -f1)
for b in "$POLL" "$BLOCK"; do
    got=$("$b" checksum "$PKG" | cut -d' ' -f1)
    [[ $got == "$WANT" ]] || die "$b checksum gives $got, openssl $WANT"
    "$b" verify-package --package "$PKG" --signature "$WORK/pkg.sig" --public-key "$WORK/ed.pub" >/dev/null 2>&1 \
        || die "$b verify-package failed"
done

NAMES=(openssl checksum-poll checksum-block verify-poll verify-block)
cmd_of() {
    case "$1" in
        openssl) echo "openssl dgst -sha256 $PKG" ;;
        checksum-poll) echo "$POLL checksum $PKG" ;;
        checksum-block) echo "$BLOCK checksum $PKG" ;;
        verify-poll) echo "$POLL verify-package --package $PKG --signature $WORK/pkg.sig --public-key $WORK/ed.pub" ;;
        verify-block) echo "$BLOCK verify-package --package $PKG --signature $WORK/pkg.sig --public-key $WORK/ed.pub" ;;
    esac
}

# round CASE R: one hyperfine run of every command, in an order rotated by R.
round() {
    local case=$1 r=$2 args=() j n b0 b1 t0 t1
    for ((j = 0; j < ${#NAMES[@]}; j++)); do
        n=${NAMES[$(( (r + j) % ${#NAMES[@]} ))]}
        args+=(-n "$n" "$(cmd_of "$n")")
    done
    # The 4th field of /proc/loadavg (runnable/total tasks) is what the
    # poller looks at: it polls only while runnable <= CPUs.
    echo "$case round $((r + 1)): $(uptime | sed 's/^ *//'); runnable/total $(cut -d' ' -f4 /proc/loadavg)" >>"$WORK/uptime.log"
    b0=$(busy_ticks) t0=$EPOCHREALTIME
    hyperfine -N --style none --warmup 1 --runs "$RUNS" --export-json "$WORK/hf.json" "${args[@]}" \
        >/dev/null 2>"$WORK/hf.err" || { cat "$WORK/hf.err" >&2; die "hyperfine failed"; }
    b1=$(busy_ticks) t1=$EPOCHREALTIME
    jq -r '.results[] | .command as $c | .times[] | "\($c) \(.)"' "$WORK/hf.json" \
        | while read -r c t; do echo "$t" >>"$WORK/$case.$c.t"; done
    jq -r '.results[] | "\(.command) \(.user + .system)"' "$WORK/hf.json" \
        | while read -r c cpu; do echo "$cpu" >>"$WORK/$case.$c.cpu"; done
    # CPU-seconds of everything else during the round: all busy time, less
    # what the measured commands used (their timed runs plus one warm-up).
    local own
    own=$(jq -r --argjson k "$(( RUNS + 1 ))" '[.results[] | (.user + .system) * $k] | add' "$WORK/hf.json")
    awk -v b0="$b0" -v b1="$b1" -v hz="$HZ" -v own="$own" -v t0="$t0" -v t1="$t1" \
        'BEGIN { o = (b1 - b0) / hz - own; if (o < 0) o = 0; printf "%.2f\n", o / (t1 - t0) }' >>"$WORK/$case.others"
}

echo "timing $ROUNDS rounds x ${#NAMES[@]} commands x $RUNS runs, idle and with $LOAD busy loops..." >&2
for ((r = 0; r < ROUNDS; r++)); do
    wait_quiet
    round idle "$r"
    for ((i = 0; i < LOAD; i++)); do
        yes >/dev/null &
        LOAD_PIDS+=($!)
    done
    sleep 0.5
    round loaded "$r"
    stop_load
done

# --------------------------------------------------------------- report ---
echo
echo "== the reader's wait: poll (/proc/loadavg) vs block, against openssl dgst -sha256"
echo "machine:  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) CPUs, kernel $(uname -r); $(openssl version | cut -d' ' -f1-2)"
echo "pkgsign:  $(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo '?') ($CUR) and the same with $(basename "$PATCH") ($VARIANT)"
echo "package:  $(numfmt --to=iec-i "$BYTES")B of random data, page cache warm: cached reads"
echo "method:   $ROUNDS rounds; each: hyperfine -N, 1 warm-up + $RUNS runs per command, order rotated; medians over all runs"
echo "idle:     nothing started by the bench; each idle round waited up to ${MAX_WAIT}s for 90% idle CPUs ($BUSY_STARTS started busy)"
echo "loaded:   $LOAD busy loops (yes > /dev/null) running through the round"
for case in idle loaded; do
    echo
    echo "-- $case: CPUs used by other processes during each round: $(tr '\n' ' ' <"$WORK/$case.others")"
    OSSL=$(median "$WORK/$case.openssl.t")
    printf "%-15s %9s %10s %11s  %s\n" "command" "median s" "x openssl" "CPU s (med)" "all runs (s)"
    for n in "${NAMES[@]}"; do
        m=$(median "$WORK/$case.$n.t")
        printf "%-15s %9.3f %9.3fx %11.3f  %s\n" "$n" "$m" "$(awk -v a="$m" -v b="$OSSL" 'BEGIN { print a / b }')" \
            "$(median "$WORK/$case.$n.cpu")" \
            "$(sort -g "$WORK/$case.$n.t" | tr '\n' ' ' | awk '{ for (i = 1; i <= NF; i++) printf "%.3f ", $i }')"
    done
    for what in checksum verify; do
        p=$(median "$WORK/$case.$what-poll.t")
        b=$(median "$WORK/$case.$what-block.t")
        echo "$what: poll / block = $(awk -v p="$p" -v b="$b" 'BEGIN { printf "%.3f", p / b }') (below 1: polling is faster)"
    done
done
echo
echo "uptime at the start of each round:"
sed 's/^/  /' "$WORK/uptime.log"
