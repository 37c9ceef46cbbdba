#!/usr/bin/env bash
# The test command of README.md: everything the test suite needs, then the suite.
# Safe to run on a fresh machine; installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

source tests/memlock.sh

cargo test --workspace

# The Node.js client (shardsfu-client) against the real binary.
cargo build -p shardsfu-control
if ! command -v npm >/dev/null 2>&1; then
    echo "tests/run.sh: installing Node.js and npm (apt-get)" >&2
    as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm ||
        { as_root apt-get update && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm; } || {
        echo "could not install Node.js >= 18 with npm; install it and run again" >&2
        exit 1
    }
fi
(cd control/node-client && npm ci --no-audit --no-fund && SHARDSFU_BIN="$PWD/../../target/debug/shardsfu" npm test)

# A real browser: headless Chromium with a fake camera publishes and consumes through the binary.
SHARDSFU_BIN="$PWD/target/debug/shardsfu" bash tests/browser/run.sh
