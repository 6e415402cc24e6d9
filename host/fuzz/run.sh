#!/usr/bin/env bash
# Runs one cargo-fuzz target for a set time, in one process (the default of
# libFuzzer; the machines this runs on are small and shared).
#
#   host/fuzz/run.sh TARGET [SECONDS]        # SECONDS defaults to 300
#
# Seeds: host/fuzz/seeds/TARGET, tests/data/fuzz/TARGET and, for inspect,
# tests/data/inspect (all read only).
# New inputs go to host/fuzz/corpus/TARGET, crashes to
# host/fuzz/artifacts/TARGET (both git-ignored). Targets: inspect, settings,
# reference, source_url, evaluate. See docs/fuzzing.md.
set -euo pipefail
target=${1:?usage: host/fuzz/run.sh TARGET [SECONDS]}
seconds=${2:-300}
fuzz=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$fuzz/../.." && pwd)

corpus=("$fuzz/corpus/$target" "$fuzz/seeds/$target")
mkdir -p "${corpus[0]}"
if [ -d "$root/tests/data/fuzz/$target" ]; then
  corpus+=("$root/tests/data/fuzz/$target")
fi
# The inspect samples the tests read are seeds too, used in place.
if [ "$target" = inspect ]; then
  corpus+=("$root/tests/data/inspect")
fi

# An absolute CARGO_TARGET_DIR: host/build.rs builds the guest (with this
# nightly) under $CARGO_TARGET_DIR/guest, so it stays out of the main
# workspace's target/ and never invalidates the stable build there.
# -a: debug assertions and overflow checks on.
cd "$fuzz/.."
CARGO_TARGET_DIR="$fuzz/target" exec cargo +nightly fuzz run -a "$target" "${corpus[@]}" -- \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
