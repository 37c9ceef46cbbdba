#!/usr/bin/env bash
# Run every fuzz target for a while (default 20 s each) on the stable toolchain.
# Usage: bash fuzz/run.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-20}"
# The control_api target starts shards in-process.
source ../tests/memlock.sh

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cargo fuzz build -s none
for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target"
    dirs=("corpus/$target")
    for d in seeds regressions; do
        [ -d "$d/$target" ] && dirs+=("$d/$target")
    done
    echo "fuzz: $target for ${seconds}s"
    cargo fuzz run -s none "$target" "${dirs[@]}" -- -max_total_time="$seconds"
done
