#!/usr/bin/env bash
# The long run of the hostile-input property tests (issue 16): every
# property with PROPTEST_CASES cases (default 10^6), one after another,
# with the time each took. The test binaries are built first and then run
# directly, so editing the tree while this runs changes nothing.
#
#   perf/fuzz_long.sh [CASES]        # e.g. perf/fuzz_long.sh 1000000
set -euo pipefail
cd "$(dirname "$0")/.."
CASES="${1:-1000000}"

# package, test target ("lib" / "bin:NAME" for unit tests), test name
TARGETS=(
  "wirespeed hostile_input device_specs_never_panic"
  "wirespeed hostile_input pcap_images_never_panic"
  "wirespeed hostile_input stack_rx_counts_every_frame_and_frees_every_buffer"
  "wirespeed-apps bin:wirespeed config::tests::mutated_configs_never_panic"
  "pmd-igb hostile_device hostile_rx_writebacks_never_panic_or_deliver_garbage"
  "pmd-ice hostile_device hostile_rx_writebacks_never_panic_or_deliver_garbage"
  "pmd-ice hostile_device hostile_admin_completions_never_panic_or_hang"
)

bin_of() { # package target -> executable
  local pkg=$1 tgt=$2 sel
  case "$tgt" in
    lib) sel=(--lib) ;;
    bin:*) sel=(--bin "${tgt#bin:}") ;;
    *) sel=(--test "$tgt") ;;
  esac
  cargo test -q -p "$pkg" "${sel[@]}" --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    try: m=json.loads(l)
    except ValueError: continue
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["profile"]["test"]: print(m["executable"])' | tail -1
}

declare -A BIN
for t in "${TARGETS[@]}"; do
  read -r pkg tgt _ <<<"$t"
  BIN["$pkg/$tgt"]=$(bin_of "$pkg" "$tgt")
done

echo "PROPTEST_CASES=$CASES  $(date -u +%FT%TZ)  $(git rev-parse --short HEAD)"
for t in "${TARGETS[@]}"; do
  read -r pkg tgt name <<<"$t"
  start=$(date +%s.%N)
  out=$(PROPTEST_CASES="$CASES" "${BIN[$pkg/$tgt]}" --exact "$name" --nocapture 2>&1 || true)
  end=$(date +%s.%N)
  if ! grep -q "^test result: ok. 1 passed" <<<"$out"; then
    # --exact may not match a proptest-generated name: retry as a filter.
    out=$(PROPTEST_CASES="$CASES" "${BIN[$pkg/$tgt]}" "$name" --nocapture 2>&1 || true)
    end=$(date +%s.%N)
  fi
  verdict=$(grep -E "^test result:" <<<"$out" | tail -1)
  printf '%-55s %8.1f s  %s\n' "$pkg/$name" "$(echo "$end - $start" | bc)" "$verdict"
  grep -E "cases|e\.g\." <<<"$out" | sed 's/^/    /' | head -14 || true
  if ! grep -q " 0 failed" <<<"$verdict"; then echo "$out" | tail -40; exit 1; fi
done
