#!/usr/bin/env bash
# Verification against a large trusted-keys directory, and start-up, in one run:
#
#   benches/trust-scale.sh [--keys 1000] [--runs 300] [--bin PATH] [--cache DIR] [--keep]
#
# Makes a 1 KiB package signed by one Ed25519 key and three trusted-keys
# directories holding that key: alone; with --keys - 1 others listed in
# trust.toml; with --keys - 1 others dropped in by hand (no trust.toml; RSA
# and Ed25519 mixed). The other keys are made once and kept in --cache
# (default: ${XDG_CACHE_HOME:-~/.cache}/pkgsign-bench-keys). Then times, with
# hyperfine in one run (interleaved is not available; every command gets
# its warm-up): verify-package with each directory, `minisign -V` of the
# same package, and `pkgsign --version`. Medians of --runs whole-process
# runs. Prints the ratios and PASS/FAIL:
#   1,000-key / 1-key verify at most 1.3 (both kinds of directory);
#   pkgsign verify (1 key) / minisign -V at most 1.0.
# Exits 0 unless something could not run: it reports, it does not gate.

set -euo pipefail

KEYS=1000
RUNS=300
BIN=
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/pkgsign-bench-keys
KEEP=

die() { echo "error: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --keys) KEYS=${2:?}; shift 2 ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --bin) BIN=${2:?}; shift 2 ;;
        --cache) CACHE=${2:?}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
for tool in hyperfine minisign openssl python3; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done

root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z $BIN ]]; then
    (cd "$root" && cargo build --release --quiet) || die "cargo build failed"
    BIN=$root/target/release/pkgsign
fi
[[ -x $BIN ]] || die "$BIN is not executable"

# The other keys: made once (public keys only are kept), a fifth of them RSA.
mkdir -p -m 700 "$CACHE"
have=$(find "$CACHE" -name '*.pub' | wc -l)
if ((have < KEYS - 1)); then
    echo "making $((KEYS - 1 - have)) keys in $CACHE (once) ..."
    tmp=$(mktemp -d)
    for ((i = have; i < KEYS - 1; i++)); do
        if ((i % 5 == 0)); then
            openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/k.pem" 2>/dev/null
        else
            openssl genpkey -algorithm ED25519 -out "$tmp/k.pem"
        fi
        openssl pkey -in "$tmp/k.pem" -pubout -out "$CACHE/k$(printf %05d "$i").pub"
    done
    rm -rf "$tmp"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/pkgsign-trust-scale.XXXXXX")
trap '[[ -n $KEEP ]] && echo "kept $work" || rm -rf "$work"' EXIT
chmod 755 "$work"
cd "$work"
mkdir -m 700 keys
"$BIN" keygen --output-dir keys --name signer >/dev/null 2>&1
head -c 1024 /dev/urandom >pkg
"$BIN" sign-package --package pkg --private-key keys/signer.pem >/dev/null
minisign -G -W -p mini.pub -s mini.key >/dev/null </dev/null
minisign -S -s mini.key -m pkg -x pkg.minisig >/dev/null </dev/null

mkdir -m 755 one toml hand
"$BIN" trust add one keys/signer.pub >/dev/null
cp keys/signer.pub hand/
others=$(find "$CACHE" -name '*.pub' | sort | head -n $((KEYS - 1)))
# shellcheck disable=SC2086
cp $others hand/
# trust.toml listing them all, as `trust add` writes it (one trust add
# each would take minutes).
"$BIN" trust add toml keys/signer.pub >/dev/null
# shellcheck disable=SC2086
cp $others toml/
python3 - toml <<'EOF'
import base64, hashlib, subprocess, sys, pathlib
d = pathlib.Path(sys.argv[1])
out = [(d / "trust.toml").read_text()]
for p in sorted(d.glob("k*.pub")):
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(p), "-outform", "DER"],
                         check=True, capture_output=True).stdout
    fp = "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")
    out.append(f'\n[[key]]\nfingerprint = "{fp}"\nfile = "{p.name}"\nname = "{p.stem}"\n')
(d / "trust.toml").write_text("".join(out))
EOF
chmod 644 one/* toml/* hand/*
n_toml=$("$BIN" trust list toml --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["keys"]))')
n_hand=$(find hand -name '*.pub' | wc -l)
echo "keys: one 1, toml $n_toml (listed), hand $n_hand (dropped in by hand)"
for d in one toml hand; do
    "$BIN" verify-package --package pkg --trusted-keys "$d" -q || die "verify with $d failed"
done
minisign -V -q -p mini.pub -m pkg -x pkg.minisig || die "minisign -V failed"

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
v="$BIN verify-package --package pkg -q --trusted-keys"
hyperfine -N -w 30 -r "$RUNS" --export-json times.json \
    "$v one" "$v toml" "$v hand" \
    "minisign -V -q -p mini.pub -m pkg -x pkg.minisig" \
    "$BIN --version" >/dev/null 2>&1 || die "hyperfine failed"
echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - times.json <<'EOF'
import json, statistics, sys
r = json.load(open(sys.argv[1]))["results"]
med = [statistics.median(x["times"]) * 1000 for x in r]
names = ["verify, 1 key", "verify, 1,000 keys in trust.toml", "verify, 1,000 .pub by hand",
         "minisign -V", "pkgsign --version"]
for n, m, x in zip(names, med, r):
    print(f"  {n:34} {m:7.3f} ms  (user {x['user']*1000:.3f} sys {x['system']*1000:.3f})")
one, toml, hand, mini, ver = med
checks = [("1,000 toml / 1 key", toml / one, 1.3), ("1,000 .pub / 1 key", hand / one, 1.3),
          ("verify 1 key / minisign -V", one / mini, 1.0)]
for n, ratio, limit in checks:
    print(f"{'PASS' if ratio <= limit else 'FAIL'}: {n} = {ratio:.2f} (at most {limit})")
EOF
