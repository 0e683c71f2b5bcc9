#!/usr/bin/env bash
# `pkgsign serve` (issue 11) against its references, in one run:
#
#   benches/serve.sh [--bin PATH] [--keep]
#
# Builds target/release/pkgsign (`cargo build --release`) unless --bin is
# given. Installs nothing: needs wrk, curl, openssl and python3 (Debian:
# `apt-get install -y wrk curl openssl python3`). Everything runs on this
# machine, against 127.0.0.1 only; every server it starts it stops.
#
# 1. verify-signature of a 1 KiB body (Ed25519, v2 signature from
#    `pkgsign sign-package`, in X-Pkgsign-Signature), with
#    `wrk -t2 -c64 -d10s --latency` and a Lua script (POST, bearer token,
#    application/octet-stream): requests/s and p99, with an audit log
#    (one line per verification) and without one; /healthz the same way
#    (the HTTP stack's own ceiling). Reference: `pkgsign verify-package` of
#    the same file spawned once per request, in a serial loop and two at a
#    time (xargs -P2); ratios printed. Every wrk run must show no non-2xx
#    response and no socket error, and a curl beforehand must get 200 and
#    "verified": true.
# 2. Upload of a 1 GiB package (`curl -T` POST to /api/v1/update/signed, a
#    fresh --release-version each run) against `openssl dgst -sha256` of the
#    same file; page cache warm for both; best of 3 each. For reading, the
#    time of a durable copy of the file (`dd conv=fsync`): the store must
#    write and sync what it accepts, openssl only reads.
# 3. 64 concurrent uploads of 100 MiB (64 names, one signature each), on a
#    fresh server: its peak RSS (VmHWM of /proc/PID/status) and wall time.
#
# Sizes and counts from the environment, for a quick run:
#   WRK_DURATION=10s WRK_CONNS=64 WRK_THREADS=2 SPAWN_RUNS=300
#   UPLOAD_MIB=1024 UPLOAD_RUNS=3 CONC_MIB=100 CONC_N=64
# e.g. `UPLOAD_MIB=64 CONC_MIB=8 CONC_N=16 WRK_DURATION=3s benches/serve.sh`.
# Prints PASS/FAIL per target; exits 0 unless something could not run.

set -euo pipefail

BIN=
KEEP=
die() { echo "error: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --bin) BIN=${2:?}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

WRK_DURATION=${WRK_DURATION:-10s}
WRK_CONNS=${WRK_CONNS:-64}
WRK_THREADS=${WRK_THREADS:-2}
SPAWN_RUNS=${SPAWN_RUNS:-300}
UPLOAD_MIB=${UPLOAD_MIB:-1024}
UPLOAD_RUNS=${UPLOAD_RUNS:-3}
CONC_MIB=${CONC_MIB:-100}
CONC_N=${CONC_N:-64}

for tool in wrk curl openssl python3; do
    command -v "$tool" >/dev/null \
        || die "$tool is needed (Debian/Ubuntu: apt-get install -y wrk curl openssl python3)"
done
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z $BIN ]]; then
    (cd "$root" && cargo build --release --quiet) || die "cargo build --release failed"
    BIN=${CARGO_TARGET_DIR:-$root/target}/release/pkgsign
fi
[[ -x $BIN ]] || die "$BIN is not executable"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

work=$(mktemp -d "${TMPDIR:-/tmp}/pkgsign-bench-serve.XXXXXX")
SERVER_PID=
stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
cleanup() {
    stop_server
    if [[ -n $KEEP ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
cd "$work"
need_mib=$((UPLOAD_MIB * (UPLOAD_RUNS + 2) + CONC_MIB * (CONC_N + 1) + 64))
avail_mib=$(df -Pm . | awk 'NR==2 {print $4}')
((avail_mib > need_mib)) || die "needs ~$need_mib MiB free in $work, has $avail_mib (set TMPDIR)"

# Keys, tokens, trusted keys.
mkdir -m 700 keys trusted store
"$BIN" keygen --output-dir keys --name signer >/dev/null 2>&1 || die "keygen failed"
cp keys/signer.pub trusted/
VERIFY_TOKEN=bench-verify-$(openssl rand -hex 16)
UPLOAD_TOKEN=bench-upload-$(openssl rand -hex 16)
sha() { printf %s "$1" | openssl dgst -sha256 -r | cut -d' ' -f1; }
{
    echo "bench-verify verify $(sha "$VERIFY_TOKEN")"
    echo "bench-upload upload $(sha "$UPLOAD_TOKEN")"
} >tokens
chmod 600 tokens

# config AUDIT(yes|no): the service's configuration file. The upload rate
# limit is raised so that the benchmark's own uploads are not refused.
write_config() {
    {
        echo "[service]"
        echo "listen = \"127.0.0.1:0\""
        echo "tokens_file = \"$work/tokens\""
        echo "trusted_keys = \"$work/trusted\""
        echo "release_store = \"$work/store\""
        [[ $1 == yes ]] && echo "audit_log = \"$work/audit.log\""
        echo "[service.limits]"
        echo "uploads_per_minute = 100000"
        echo "upload_burst = 10000"
    } >"serve-$1.toml"
}
write_config yes
write_config no

# start_server AUDIT: a fresh store; sets SERVER_PID and URL.
start_server() {
    stop_server
    rm -rf store && mkdir -m 700 store
    rm -f audit.log
    "$BIN" serve --config "serve-$1.toml" 2>server.err &
    SERVER_PID=$!
    local i
    for i in $(seq 100); do
        URL=$(head -n1 server.err 2>/dev/null | sed -n 's/^listening on //p')
        [[ -n $URL ]] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || { cat server.err >&2; die "serve did not start"; }
        sleep 0.05
    done
    die "serve printed no address in 5 s"
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(uname -r)"
echo "pkgsign: $BIN ($(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "$(wrk --version 2>&1 | head -n1 | cut -d' ' -f1-2), $(curl --version | head -n1 | cut -d' ' -f1-2), $(openssl version)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- 1. verify
head -c 1024 /dev/urandom >small.bin
"$BIN" sign-package --package small.bin --private-key keys/signer.pem \
    --name small --release-version 1.0.0 >/dev/null || die "sign-package failed"
SIG_B64=$(base64 -w0 small.bin.sig)
cat >verify.lua <<EOF
local f = assert(io.open("$work/small.bin", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Authorization"] = "Bearer $VERIFY_TOKEN"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["X-Pkgsign-Signature"] = "$SIG_B64"
EOF

# run_wrk NAME PATH [LUA]: wrk's report in wrk-NAME.txt; refuses a run with
# a non-2xx response or a socket error.
run_wrk() {
    local name=$1 path=$2 lua=${3:-}
    local TIMEFORMAT="wrk_cpu %U %S"   # wrk's own CPU time, for the split
    { time wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$WRK_DURATION" --latency \
        ${lua:+-s "$lua"} "$URL$path" >"wrk-$name.txt" 2>&1; } 2>"wrk-$name.time" \
        || { cat "wrk-$name.txt" >&2; die "wrk failed"; }
    cat "wrk-$name.time" >>"wrk-$name.txt"
    if grep -q -e 'Non-2xx' -e 'Socket errors' "wrk-$name.txt"; then
        cat "wrk-$name.txt" >&2
        die "wrk $name: some requests failed (see above)"
    fi
    # CPU time the server used during the run, for the split with wrk.
    echo "server_cpu_ticks $(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")" >>"wrk-$name.txt"
}

for audit in yes no; do
    start_server "$audit"
    code=$(curl -sS -o probe.json -w '%{http_code}' -X POST --data-binary @small.bin \
        -H "Authorization: Bearer $VERIFY_TOKEN" -H 'Content-Type: application/octet-stream' \
        -H "X-Pkgsign-Signature: $SIG_B64" "$URL/api/v1/security/verify-signature")
    [[ $code == 200 ]] && grep -q '"verified":true' probe.json \
        || { cat probe.json >&2; die "verify-signature probe got $code"; }
    if [[ $audit == yes ]]; then
        ticks0=$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")
        run_wrk healthz /healthz
        echo "server_cpu_ticks_before $ticks0" >>wrk-healthz.txt
    fi
    ticks0=$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")
    [[ $audit == yes ]] && lines0=$(wc -l <audit.log)
    run_wrk "verify-audit-$audit" /api/v1/security/verify-signature verify.lua
    echo "server_cpu_ticks_before $ticks0" >>"wrk-verify-audit-$audit.txt"
    if [[ $audit == yes ]]; then
        echo "audit_lines $(($(wc -l <audit.log) - lines0))" >>wrk-verify-audit-yes.txt
    fi
    stop_server
done

# The reference: one process per request.
spawn="$BIN verify-package --package small.bin --trusted-keys trusted --name small -q"
$spawn || die "verify-package refused the 1 KiB package"
t0=$(date +%s.%N)
for ((i = 0; i < SPAWN_RUNS; i++)); do $spawn; done
t1=$(date +%s.%N)
seq "$SPAWN_RUNS" | xargs -P2 -I{} $spawn
t2=$(date +%s.%N)
echo "$SPAWN_RUNS $t0 $t1 $t2" >spawn.txt

# ---------------------------------------------------------------- 2. upload
head -c $((UPLOAD_MIB << 20)) /dev/urandom >big.bin
for ((i = 1; i <= UPLOAD_RUNS; i++)); do
    "$BIN" sign-package --package big.bin --private-key keys/signer.pem \
        --name big --release-version "1.0.$i" --output "big-$i.sig" >/dev/null
done
sync
cat big.bin >/dev/null; cat big.bin >/dev/null
start_server no
# upload FILE SIG: POST it, streamed (curl -T, no 100-continue wait); the
# HTTP status on stdout.
upload() {
    curl -sS -o /dev/null -w '%{http_code}' -X POST -T "$1" -H 'Expect:' \
        -H "Authorization: Bearer $UPLOAD_TOKEN" -H 'Content-Type: application/octet-stream' \
        -H "X-Pkgsign-Signature: $(base64 -w0 "$2")" "$URL/api/v1/update/signed"
}
: >upload.txt
for ((i = 1; i <= UPLOAD_RUNS; i++)); do
    t0=$(date +%s.%N)
    openssl dgst -sha256 big.bin >/dev/null
    t1=$(date +%s.%N)
    code=$(upload big.bin "big-$i.sig")
    t2=$(date +%s.%N)
    [[ $code == 201 ]] || { cat server.err >&2; die "upload $i got HTTP $code"; }
    # For reading only: what a durable copy of the file alone costs here.
    dd if=big.bin of=copy.bin bs=1M conv=fsync status=none
    t3=$(date +%s.%N)
    rm -f copy.bin
    echo "$t0 $t1 $t2 $t3" >>upload.txt
done
cmp -s big.bin "store/big/1.0.$UPLOAD_RUNS/package" || die "the stored package differs"
stop_server
rm -f big.bin

# ------------------------------------------------------ 3. concurrent uploads
head -c $((CONC_MIB << 20)) /dev/urandom >mid.bin
for ((i = 1; i <= CONC_N; i++)); do
    "$BIN" sign-package --package mid.bin --private-key keys/signer.pem \
        --name "mid-$i" --release-version 1.0.0 --output "mid-$i.sig" >/dev/null
done
cat mid.bin >/dev/null
start_server no
hwm_start=$(awk '/^VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
t0=$(date +%s.%N)
pids=()
for ((i = 1; i <= CONC_N; i++)); do
    upload mid.bin "mid-$i.sig" >"conc-$i.code" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || die "an upload's curl failed"; done
t1=$(date +%s.%N)
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
stored=0
for ((i = 1; i <= CONC_N; i++)); do
    [[ $(<"conc-$i.code") == 201 ]] && stored=$((stored + 1))
done
((stored == CONC_N)) || { cat server.err >&2; die "only $stored of $CONC_N uploads were stored"; }
echo "$CONC_N $CONC_MIB $t0 $t1 $hwm_start $hwm" >conc.txt
stop_server
echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- report
python3 - "$(getconf CLK_TCK)" "$UPLOAD_MIB" <<'EOF'
import re, sys
hz = int(sys.argv[1]); upload_mib = int(sys.argv[2])
UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
def wrk(name):
    t = open(f"wrk-{name}.txt").read()
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", t).group(1))
    v, u = re.search(r"^\s+99%\s+([0-9.]+)(us|ms|s|m)\s*$", t, re.M).groups()
    p50v, p50u = re.search(r"^\s+50%\s+([0-9.]+)(us|ms|s|m)\s*$", t, re.M).groups()
    n = int(re.search(r"^\s+(\d+) requests in ([0-9.]+)(s|m|ms)", t, re.M).group(1))
    secs = float(re.search(r"requests in ([0-9.]+)s", t).group(1))
    ticks = int(re.search(r"^server_cpu_ticks (\d+)", t, re.M).group(1)) - \
        int(re.search(r"^server_cpu_ticks_before (\d+)", t, re.M).group(1))
    audit = re.search(r"^audit_lines (\d+)", t, re.M)
    wu, ws = re.search(r"^wrk_cpu ([0-9.]+) ([0-9.]+)", t, re.M).groups()
    return dict(rps=rps, p99=float(v) * UNIT[u], p50=float(p50v) * UNIT[p50u], n=n,
                cpu=ticks / hz / secs, wrk=(float(wu) + float(ws)) / secs,
                us=1e6 * ticks / hz / n, audit=int(audit.group(1)) if audit else None)
h, va, vn = wrk("healthz"), wrk("verify-audit-yes"), wrk("verify-audit-no")
runs, t0, t1, t2 = open("spawn.txt").read().split()
runs = int(runs)
serial = runs / (float(t1) - float(t0)); par = runs / (float(t2) - float(t1))
print(f"verify-signature, 1 KiB body, Ed25519 (wrk, same machine; Little's law: mean latency"
      f" = connections / req/s):")
for name, r in (("/healthz (no auth, no body)", h), ("verify, audit log", va), ("verify, no audit log", vn)):
    print(f"  {name:28} {r['rps']:9.0f} req/s  p50 {r['p50']:6.2f} ms  p99 {r['p99']:6.2f} ms"
          f"  CPU: server {r['cpu']:.2f} cores ({r['us']:.0f} us/request), wrk {r['wrk']:.2f}"
          f"  ({r['n']} requests)")
if va["audit"] is not None:
    print(f"  audit lines written during the run: {va['audit']} (requests: {va['n']})")
print(f"  verify-package spawned per request: {serial:.0f} req/s serial, {par:.0f} req/s two at a time")
for name, r in (("audit log", va), ("no audit log", vn)):
    print(f"  serve / spawn ({name}): {r['rps'] / serial:.1f}x serial, {r['rps'] / par:.1f}x two at a time")
for name, r in (("audit log", va), ("no audit log", vn)):
    ok = r["rps"] >= 8000 and r["p99"] < 10
    print(f"{'PASS' if ok else 'FAIL'}: verify-signature ({name}) {r['rps']:.0f} req/s"
          f" (at least 8000), p99 {r['p99']:.2f} ms (under 10)")
rows = [tuple(map(float, l.split())) for l in open("upload.txt")]
ossl = min(b - a for a, b, c, d in rows); up = min(c - b for a, b, c, d in rows)
dd = min(d - c for a, b, c, d in rows)
print(f"upload of {upload_mib} MiB: best of {len(rows)}: curl POST {up:.3f} s"
      f" ({upload_mib / up:.0f} MiB/s), openssl dgst -sha256 {ossl:.3f} s ({upload_mib / ossl:.0f} MiB/s)")
print("  all runs (openssl, upload, dd conv=fsync): "
      + ", ".join(f"({b - a:.3f}, {c - b:.3f}, {d - c:.3f})" for a, b, c, d in rows))
print(f"  for reading: a durable copy alone (dd bs=1M conv=fsync) {dd:.3f} s = {dd / ossl:.2f}x openssl")
print(f"{'PASS' if up / ossl <= 1.25 else 'FAIL'}: upload / openssl dgst -sha256 = {up / ossl:.2f} (at most 1.25)")
n, mib, c0, c1, hs, hw = open("conc.txt").read().split()
n, mib, hs, hw = int(n), int(mib), int(hs), int(hw)
wall = float(c1) - float(c0)
print(f"{n} concurrent uploads of {mib} MiB: {wall:.1f} s ({n * mib / wall:.0f} MiB/s in all);"
      f" server VmHWM {hs / 1024:.1f} MiB at start, {hw / 1024:.1f} MiB peak")
print(f"{'PASS' if hw / 1024 < 128 else 'FAIL'}: peak RSS of serve during {n} x {mib} MiB uploads"
      f" = {hw / 1024:.1f} MiB (under 128)")
EOF
