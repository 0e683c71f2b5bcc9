#!/usr/bin/env bash
# Run fuzz targets for a while each and print the executions each ran.
#
#   fuzz/run.sh [SECONDS] [TARGET...]      (default: 20 s, every target)
#
# Built once on the stable toolchain without a sanitizer (`--sanitizer
# none`); set FUZZ_SANITIZER=address (with RUSTC_BOOTSTRAP=1 on stable) for
# AddressSanitizer. New inputs go to fuzz/corpus-new/TARGET (git ignores
# it); the seed corpus fuzz/corpus/TARGET is only read. A crash stops the
# run with libFuzzer's report, the input saved in fuzz/artifacts/TARGET/,
# and a non-zero exit. See fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-20}
shift || true
sanitizer=${FUZZ_SANITIZER:-none}
if (($#)); then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

start=$SECONDS
cargo fuzz build --sanitizer "$sanitizer"
echo "fuzz: built in $((SECONDS - start)) s"

summary=()
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus-new/$t"
  log=$(mktemp)
  # -timeout: one input taking 10 s is a finding (a hang), not a wait.
  if ! cargo fuzz run --sanitizer "$sanitizer" "$t" \
    "$PWD/fuzz/corpus-new/$t" "$PWD/fuzz/corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" | cut -c1-400
    rm -f "$log"
    echo "fuzz: $t FAILED (input in fuzz/artifacts/$t/; see fuzz/README.md)" >&2
    exit 1
  fi
  runs=$(sed -n 's/^Done \([0-9]*\) runs in .*/\1/p' "$log" | tail -n 1)
  rm -f "$log"
  summary+=("$(printf '%-20s %10s executions in %s s' "$t" "${runs:-?}" "$secs")")
  echo "fuzz: ${summary[-1]}"
done
echo "fuzz: every target ran ($((SECONDS - start)) s in all, build included):"
printf '  %s\n' "${summary[@]}"
