#!/usr/bin/env bash
# Peak memory of verify-manifest on very long signed lists:
#
#   benches/manifest-memory.sh [--lines 1000000,3600000] [--bin PATH] [--baseline PATH]
#
# For each line count N, makes a release directory holding N distinct names
# (hard links to 60 small files: a real file behind every line, without
# N data blocks on disk), the sha256sum list of them (names of at most 7
# characters, so that 3.6 M lines fit under the 256 MiB list cap), signed
# with pkgsign; then prints the peak RSS (`/usr/bin/time -v`, maximum
# resident set size) and the wall time of `verify-manifest` and
# `verify-manifest --json`, with `--jobs 1` and with all cores, against the
# target of 64 MiB. Last, the refusal of an oversized (sparse, 300 MiB) list.
# --baseline PATH measures a second binary (an older pkgsign) the same way.
# Prints PASS/FAIL per run; exits 0 unless something could not run.

set -euo pipefail

LINES=1000000,3600000
BIN=
BASELINE=
TARGET_KIB=$((64 * 1024))

die() { echo "error: $*" >&2; exit 1; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --lines) LINES=${2:?}; shift 2 ;;
        --bin) BIN=${2:?}; shift 2 ;;
        --baseline) BASELINE=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
[[ -z $BASELINE ]] || BASELINE=$(realpath "$BASELINE")
[[ -x /usr/bin/time ]] || die "/usr/bin/time is needed (apt-get install time)"
for t in sha256sum python3 truncate; do command -v "$t" >/dev/null || die "$t is needed"; done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$BIN" keygen --output-dir keys --name bench >/dev/null 2>&1 || die "keygen failed"

# measure LABEL BIN ARGS...: one run, stdout to /dev/null; prints the peak
# RSS and wall time, and PASS/FAIL against the target.
measure() {
    local label=$1 bin=$2; shift 2
    local rc=0
    /usr/bin/time -v -o time.txt "$bin" "$@" >/dev/null 2>stderr.txt || rc=$?
    local kib wall
    kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' time.txt)
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' time.txt)
    local verdict=PASS
    ((kib <= TARGET_KIB)) || verdict=FAIL
    printf '%-58s exit %d  peak RSS %7.1f MiB  wall %8s  %s\n' \
        "$label" "$rc" "$(awk -v k="$kib" 'BEGIN {print k / 1024}')" "$wall" "$verdict"
    if ((rc > 1)); then sed 's/^/    /' stderr.txt | head -3; fi
}

IFS=, read -r -a counts <<< "$LINES"
for n in "${counts[@]}"; do
    rel=rel-$n
    mkdir "$rel"
    python3 - "$rel" "$n" <<'EOF'
import hashlib, os, sys
rel, n = sys.argv[1], int(sys.argv[2])
bases = 60                      # ext4 allows 65000 links per file
digests = []
for b in range(bases):
    data = b"small file %d\n" % b
    path = os.path.join(rel, "base%02d" % b)
    with open(path, "wb") as f:
        f.write(data)
    digests.append(hashlib.sha256(data).hexdigest())
with open(os.path.join(rel, "SHA256SUMS"), "w") as out:
    for i in range(n):
        name = "%x" % i          # at most 7 characters up to 268 M lines
        b = i % bases
        os.link(os.path.join(rel, "base%02d" % b), os.path.join(rel, name))
        out.write("%s  %s\n" % (digests[b], name))
EOF
    "$BIN" sign-package --package "$rel/SHA256SUMS" --private-key keys/bench.pem --quiet >/dev/null \
        || die "signing the list failed"
    size=$(stat -c %s "$rel/SHA256SUMS")
    echo "== $n lines ($((size / 1024 / 1024)) MiB list), all-cores = $(nproc)"
    for bin in "$BIN" $BASELINE; do
        tag=""
        [[ $bin == "$BIN" ]] || tag=" [baseline]"
        for jobs in 1 "$(nproc)"; do
            for json in "" --json; do
                measure "verify-manifest --jobs $jobs ${json:-(text)}$tag" "$bin" \
                    verify-manifest "$rel/SHA256SUMS" --public-key keys/bench.pub \
                    --jobs "$jobs" $json
            done
        done
    done
    rm -rf "$rel"
done

echo "== oversized list (300 MiB, sparse)"
mkdir big
truncate -s 300M big/SHA256SUMS
printf 'x\n' > small
"$BIN" sign-package --package small --private-key keys/bench.pem --quiet >/dev/null
cp small.sig big/SHA256SUMS.sig
for bin in "$BIN" $BASELINE; do
    tag=""
    [[ $bin == "$BIN" ]] || tag=" [baseline]"
    measure "verify-manifest of a 300 MiB list (refused)$tag" "$bin" \
        verify-manifest big/SHA256SUMS --public-key keys/bench.pub
done
