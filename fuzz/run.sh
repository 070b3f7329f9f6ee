#!/bin/sh
# Runs every fuzz target for a bounded time (default 60 s each) and prints what libFuzzer
# reports: executions and any crash (saved under fuzz/artifacts/<target>/).
# Needs a nightly toolchain and `cargo install cargo-fuzz`.
set -eu
cd "$(dirname "$0")/.."
secs="${1:-60}"
for target in stats campaign replay_csv; do
    echo "== $target ($secs s)"
    cargo +nightly fuzz run "$target" -- -max_total_time="$secs" -print_final_stats=1 2>&1 |
        grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+== ERROR|SUMMARY|Done)" || true
done
