#!/usr/bin/env bash
# `apply --install-dir` against the unsafe pair `verify-package && tar -xzf`:
#
#   benches/apply.sh [--runs 5] [--bin PATH] [--cache DIR] [--keep]
#
# Needs `cargo build --release` first (builds nothing; --bin defaults to
# target/release/pkgsign). Makes, once, a ~256 MiB .tar.gz of a few thousand
# files of mixed content (text-like and random, gzip ratio ~2.5x), kept in
# --cache (default ${XDG_CACHE_HOME:-~/.cache}/pkgsign-bench-apply); an
# Ed25519 key and a v2 signature (--name app --release-version 1.0.0) in a
# temp dir on the same file system as the install directories. Warms the
# page cache, then times with hyperfine in one run (--runs runs each, after
# one warm-up run each):
#   ref:       pkgsign verify-package --name app && tar -xzf PKG -C fresh-dir
#   ref+sync:  the same, then `sync` (the durability apply gives; for reading)
#   apply:     pkgsign apply --name app --install-dir fresh-dir --state-dir fresh
# Each run starts from an empty install directory and state directory, and
# the file system is synced before it (hyperfine --prepare, not timed), so
# apply's syncfs writes only what that run wrote.
# Then one apply under `/usr/bin/time` (peak RSS) and one under
# `strace -T` (time spent in fsync/syncfs). Prints medians, the ratio and
# PASS/FAIL: apply / ref at most 1.0, peak RSS under 32 MiB; load averages
# before and after. Exits 0 unless something could not run.

set -euo pipefail

RUNS=5
BIN=
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/pkgsign-bench-apply
KEEP=

die() { echo "error: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) RUNS=${2:?}; shift 2 ;;
        --bin) BIN=${2:?}; shift 2 ;;
        --cache) CACHE=${2:?}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
for tool in hyperfine python3 tar gzip; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$root/target/release/pkgsign}
[[ -x $BIN ]] || die "$BIN is not executable (run cargo build --release first)"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# The archive: made once. Deterministic (seeded), so every machine gets the
# same bytes: 3,050 files in 420 directories, sizes log-normal (median 96
# KiB, 8 MiB at most); ~15% of the files random (already compressed assets),
# the rest text-like (Zipf-distributed words and punctuation) that gzip -6
# shrinks ~3.2x; ~2.5x in all.
PKG=$CACHE/app.tar.gz
if [[ ! -s $PKG ]]; then
    echo "making $PKG (once) ..."
    mkdir -p -m 700 "$CACHE"
    tree=$(mktemp -d "$CACHE/tree.XXXXXX")
    python3 - "$tree" <<'EOF'
import math, os, random, sys
root = sys.argv[1]
NFILES = 3050
rng = random.Random(20260101)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randint(2, 10)))
         for _ in range(600)]
weights = [1 / (i + 1) for i in range(len(words))]  # Zipf, as in real text
punct = [" ", " ", " ", " ", ", ", "(", ") ", ".", " = ", ";\n", "\n", "\n    ", ": ", '"']
def text(n):
    out, size = [], 0
    while size < n:
        chunk = rng.choices(words, weights, k=4096)
        seps = rng.choices(punct, k=4096)
        s = "".join(w + p for w, p in zip(chunk, seps))
        out.append(s); size += len(s)
    return "".join(out).encode()[:n]
total_rand = total = 0
for i in range(NFILES):
    d = os.path.join(root, "app", "d%02d" % (i % 60), "s%d" % (i % 7))
    os.makedirs(d, exist_ok=True)
    size = min(int(rng.lognormvariate(math.log(96 * 1024), 1.2)), 8 << 20)
    rand = rng.random() < 0.15
    data = rng.randbytes(size) if rand else text(size)
    total += size; total_rand += size if rand else 0
    with open(os.path.join(d, "f%04d.%s" % (i, "bin" if rand else "txt")), "wb") as f:
        f.write(data)
print(f"  {total / 2**20:.0f} MiB in {NFILES} files, {100 * total_rand / total:.0f}% random")
EOF
    tar --sort=name --mtime=@1767225600 --owner=0 --group=0 --numeric-owner \
        -C "$tree" -czf "$PKG.tmp" app
    rm -rf "$tree"
    mv "$PKG.tmp" "$PKG"
fi
pkg_bytes=$(stat -c %s "$PKG")
raw_bytes=$(gzip -dc "$PKG" | wc -c)
nfiles=$(tar -tzf "$PKG" | wc -l)

work=$(mktemp -d "${TMPDIR:-/tmp}/pkgsign-bench-apply.XXXXXX")
trap '[[ -n $KEEP ]] && echo "kept $work" || rm -rf "$work"' EXIT
cd "$work"
cp "$PKG" app.tar.gz   # on the same file system as the install dirs
mkdir -m 700 keys
"$BIN" keygen --output-dir keys --name signer >/dev/null 2>&1
"$BIN" sign-package --package app.tar.gz --private-key keys/signer.pem \
    --name app --release-version 1.0.0 >/dev/null
pub=$work/keys/signer.pub
"$BIN" verify-package --package app.tar.gz --public-key "$pub" --name app -q \
    || die "verify-package failed"
"$BIN" apply --package app.tar.gz --public-key "$pub" --name app \
    --state-dir st-check --install-dir inst-check >/dev/null || die "apply failed"
[[ $(tar -tzf app.tar.gz | grep -vc '/$') -eq $(find inst-check/current/ -type f | wc -l) ]] \
    || die "apply did not extract every file"
rm -rf st-check inst-check

# The page cache: the package read twice, then checked resident.
sync
cat app.tar.gz >/dev/null; cat app.tar.gz >/dev/null
if command -v fincore >/dev/null; then
    echo "page cache: $(fincore -n -o RES,SIZE app.tar.gz)"
fi
echo "package: $((pkg_bytes / 1048576)) MiB .tar.gz, $((raw_bytes / 1048576)) MiB of tar ($nfiles entries), ratio $(python3 -c "print(f'{$raw_bytes / $pkg_bytes:.2f}')")"
echo "machine: $(nproc) CPUs, $(uname -r), $(df -T . | awk 'NR==2 {print $2}') at $(df . | awk 'NR==2 {print $6}')"

verify="$BIN verify-package --package app.tar.gz --public-key $pub --name app -q"
ref="$verify && tar -xzf app.tar.gz -C out"
refsync="$ref && sync"
apply="$BIN apply --package app.tar.gz --public-key $pub --name app --state-dir st --install-dir inst"
# Not timed: an empty target and a clean file system before every run.
prep_ref="rm -rf out st inst && mkdir out && sync"
prep_apply="rm -rf out st inst && sync"

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine -w 1 -r "$RUNS" --export-json times.json \
    -p "$prep_ref" -p "$prep_ref" -p "$prep_apply" \
    -n ref -n ref+sync -n apply \
    "$ref" "$refsync" "$apply" >/dev/null 2>&1 || die "hyperfine failed"
echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"

# Peak RSS of one apply (fresh state), and where it waits on the disk.
rm -rf st inst && sync
rss_kib=
if [[ -x /usr/bin/time ]]; then
    /usr/bin/time -f %M -o rss.txt $apply >/dev/null
    rss_kib=$(tail -n1 rss.txt)
fi
sync_s=
if command -v strace >/dev/null; then
    rm -rf st inst && sync
    strace -f -T -e trace=fsync,fdatasync,syncfs -o strace.txt $apply >/dev/null
    sync_s=$(python3 -c '
import re, sys
print(sum(float(m) for m in re.findall(r"<([0-9.]+)>", open("strace.txt").read())))')
fi
rm -rf st inst out

python3 - times.json "${rss_kib:-}" "${sync_s:-}" <<'EOF'
import json, statistics, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
med = {k: statistics.median(x["times"]) for k, x in r.items()}
for k, x in r.items():
    print(f"  {k:9} median {med[k]:6.3f} s  (min {min(x['times']):.3f}, max {max(x['times']):.3f};"
          f" user {x['user']:.3f} sys {x['system']:.3f})")
ratio = med["apply"] / med["ref"]
print(f"  apply / ref+sync = {med['apply'] / med['ref+sync']:.2f}")
if sys.argv[3]:
    s = float(sys.argv[3])
    print(f"  apply's fsync + syncfs (one run under strace): {s:.3f} s;"
          f" apply without them ~{(med['apply'] - s) / med['ref']:.2f}x ref")
print(f"{'PASS' if ratio <= 1.0 else 'FAIL'}: apply / (verify-package && tar -xzf) = {ratio:.2f} (at most 1.0)")
if sys.argv[2]:
    mib = int(sys.argv[2]) / 1024
    print(f"{'PASS' if mib < 32 else 'FAIL'}: apply peak RSS = {mib:.1f} MiB (under 32)")
EOF
