#!/usr/bin/env bash
# sign-package with an Ed25519 key on a PKCS#11 token (SoftHSM2) against an Ed25519 key file:
#
#   benches/pkcs11.sh [--runs 5] [--bin PATH] [--module PATH] [--keep]
#
# Needs `cargo build --release` first (builds nothing; --bin defaults to
# target/release/pkgsign), SoftHSM2 (--module defaults to
# /usr/lib/softhsm/libsofthsm2.so) and python3. In a temp dir: a fresh
# SoftHSM2 token (its own softhsm2.conf), an Ed25519 key made on it with
# `keygen --pkcs11` and an Ed25519 key file made with `keygen`. They are two
# different keys of the same algorithm (a token key is the same key as a
# file key only if imported, which defeats the point): the work per
# signature is the same, the token only adds loading the module, logging in
# and one CKM_EDDSA over the ~300-byte statement. A 1 KiB and a 1 GiB
# package (random, page cache warmed). Times, in one run, with no shell:
#   pkgsign sign-package --package PKG --private-key KEY --output SIG -q
# with the file key and the token key in interleaved pairs, the order
# swapped every pair (hyperfine runs all runs of one command, then the next:
# on a shared machine the drift between the two was larger than the
# difference): one warm-up pair, then 20 x --runs pairs on 1 KiB and --runs
# pairs on 1 GiB. Prints medians (wall; user and sys), the ratios token /
# file and PASS/FAIL: on 1 GiB at most 1.05 (ratio of the medians; the
# median of the per-pair ratios is printed too); the 1 KiB ratio is printed
# only (the fixed cost of the module and the login). Load averages before
# and after. Exits 0 unless something could not run.

set -euo pipefail

RUNS=5
BIN=
MODULE=/usr/lib/softhsm/libsofthsm2.so
KEEP=

die() { echo "error: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) RUNS=${2:?}; shift 2 ;;
        --bin) BIN=${2:?}; shift 2 ;;
        --module) MODULE=${2:?}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
for tool in python3 softhsm2-util; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done
[[ -f $MODULE ]] || die "$MODULE: no PKCS#11 module (apt install softhsm2, or give --module)"
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$root/target/release/pkgsign}
[[ -x $BIN ]] || die "$BIN is not executable (run cargo build --release first)"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

work=$(mktemp -d "${TMPDIR:-/tmp}/pkgsign-bench-pkcs11.XXXXXX")
trap '[[ -n $KEEP ]] && echo "kept $work" || rm -rf "$work"' EXIT
cd "$work"

# The token: its own store, never the machine's.
mkdir -m 700 tokens keys
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$work" >softhsm2.conf
export SOFTHSM2_CONF=$work/softhsm2.conf
unset PKGSIGN_PKCS11_MODULE PKGSIGN_PKCS11_PIN PKGSIGN_CONFIG PKGSIGN_AUDIT_LOG PKGSIGN_PASSPHRASE
softhsm2-util --init-token --free --label bench --so-pin 0000 --pin 1234 >/dev/null \
    || die "softhsm2-util --init-token failed"
(umask 077 && echo 1234 >pin)
uri='pkcs11:token=bench;object=signer'
"$BIN" keygen --output-dir keys --name token --pkcs11 "$uri" \
    --pkcs11-module "$MODULE" --pin-file pin >/dev/null 2>&1 || die "keygen --pkcs11 failed"
"$BIN" keygen --output-dir keys --name file >/dev/null 2>&1 || die "keygen failed"

head -c 1024 /dev/urandom >pkg-1k
head -c 1G /dev/urandom >pkg-1g
token="--private-key $uri --pkcs11-module $MODULE --pin-file pin"
file="--private-key keys/file.pem"
for size in 1k 1g; do
    for k in token file; do
        key=${!k}
        # shellcheck disable=SC2086 # the key arguments are split on purpose
        "$BIN" sign-package --package pkg-$size $key --output $k-$size.sig -q \
            || die "sign-package with the $k key failed"
        "$BIN" verify-package --package pkg-$size --signature $k-$size.sig \
            --public-key keys/$k.pub -q || die "the $k key's signature does not verify"
    done
done
cat pkg-1g >/dev/null; cat pkg-1g >/dev/null
echo "packages: 1 KiB and 1 GiB, random; keys: Ed25519 on SoftHSM2 $(softhsm2-util --version) and in a file"
echo "machine: $(nproc) CPUs, $(uname -r), $(df -T . | awk 'NR==2 {print $2}') at $(df . | awk 'NR==2 {print $6}')"

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$RUNS" "$BIN" "$uri" "$MODULE" <<'EOF'
import os, statistics, subprocess, sys, time
runs, bin, uri, module = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
keys = {
    "file": ["--private-key", "keys/file.pem"],
    "token": ["--private-key", uri, "--pkcs11-module", module, "--pin-file", "pin"],
}
def once(size, k):
    argv = [bin, "sign-package", "--package", f"pkg-{size}", *keys[k],
            "--output", f"{k}-{size}.sig", "-q"]
    t0 = time.perf_counter()
    p = subprocess.Popen(argv)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"error: {' '.join(argv)} failed")
    return wall, ru.ru_utime, ru.ru_stime
# Interleaved pairs, the order swapped every pair, so that a drift in the
# machine's load hits both sides alike; one warm-up pair per size.
res, ratios = {}, {}
for size, n in [("1k", runs * 20), ("1g", runs)]:
    once(size, "file"); once(size, "token")
    for i in range(n):
        order = ["file", "token"] if i % 2 == 0 else ["token", "file"]
        pair = {k: once(size, k) for k in order}
        for k, v in pair.items():
            res.setdefault(f"{k}-{size}", []).append(v)
        ratios.setdefault(size, []).append(pair["token"][0] / pair["file"][0])
med = {}
for size in ["1k", "1g"]:
    for k in ["file", "token"]:
        xs = res[f"{k}-{size}"]
        w = [x[0] * 1000 for x in xs]
        med[f"{k}-{size}"] = statistics.median(w)
        print(f"  {k:5} {size}: median {statistics.median(w):8.1f} ms  (min {min(w):.1f}, max {max(w):.1f};"
              f" user {statistics.median(x[1] for x in xs) * 1000:.1f}, sys {statistics.median(x[2] for x in xs) * 1000:.1f}; {len(xs)} runs)")
small = med["token-1k"] / med["file-1k"]
big = med["token-1g"] / med["file-1g"]
print(f"  token / file on 1 KiB = {small:.2f} (+{med['token-1k'] - med['file-1k']:.1f} ms: module, login, one CKM_EDDSA)")
print(f"  token / file on 1 GiB, median of the per-pair ratios = {statistics.median(ratios['1g']):.3f}")
print(f"{'PASS' if big <= 1.05 else 'FAIL'}: token / file on 1 GiB = {big:.3f} (ratio of medians; at most 1.05)")
EOF
echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"
