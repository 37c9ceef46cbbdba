#!/usr/bin/env bash
# The real-browser proof: headless Chromium (mediasoup-client) <-> a real shardsfu binary
# (driven by shardsfu-client). Installs only what is missing, so it is safe to run again:
#   - Chromium (Debian's `chromium` package) when /usr/bin/chromium (or $CHROMIUM_BIN) is absent,
#   - the node client's and this test's npm packages (npm ci) when their lockfiles changed,
#   - the shardsfu binary (cargo build -p shardsfu-control) unless SHARDSFU_BIN is set.
# Then `node --test`. Extra arguments go to node --test (e.g. --test-name-pattern=udp).
# SHARDSFU_LOG=debug gives the server's debug log in failure messages.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

fail() {
    echo "tests/browser: $*" >&2
    exit 1
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# glommio registers io_uring buffers: the server needs a memlock limit of at least 512 KiB.
memlock=$(ulimit -l)
if [ "$memlock" != "unlimited" ] && [ "$memlock" -lt 512 ]; then
    ulimit -l 512 2>/dev/null || fail "memlock limit is ${memlock} KiB; shardsfu needs 512 KiB: run 'ulimit -l 512' as root"
fi

chromium="${CHROMIUM_BIN:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
    [ -z "${CHROMIUM_BIN:-}" ] || fail "CHROMIUM_BIN=$CHROMIUM_BIN is not an executable"
    echo "tests/browser: installing chromium (apt-get)" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium ||
        { as_root apt-get update && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } ||
        fail "could not install chromium with apt-get; install it, or set CHROMIUM_BIN"
    [ -x "$chromium" ] || fail "apt-get installed chromium but $chromium is still missing"
fi

command -v node >/dev/null || fail "node is not installed (Node.js 18 or later is needed)"
command -v npm >/dev/null || fail "npm is not installed"

# npm ci when node_modules is missing or older than the lockfile (a stamp records the last one).
npm_ci() {
    local dir="$1" stamp="$1/node_modules/.shardsfu-npm-ci"
    if [ ! -f "$stamp" ] || [ "$dir/package-lock.json" -nt "$stamp" ] || [ "$dir/package.json" -nt "$stamp" ]; then
        echo "tests/browser: npm ci in ${dir#"$root"/}" >&2
        (cd "$dir" && npm ci --no-audit --no-fund) || fail "npm ci failed in $dir"
        touch "$stamp"
    fi
}
npm_ci "$root/control/node-client"
# The client's dist/ is built by `prepare` on npm ci; rebuild it when its sources are newer.
if [ -n "$(find "$root/control/node-client/src" -newer "$root/control/node-client/dist/index.js" -print -quit 2>/dev/null)" ] ||
    [ ! -f "$root/control/node-client/dist/index.js" ]; then
    (cd "$root/control/node-client" && npm run build) || fail "building shardsfu-client (npm run build) failed"
fi
npm_ci "$here"

if [ -z "${SHARDSFU_BIN:-}" ]; then
    (cd "$root" && cargo build -p shardsfu-control) || fail "cargo build -p shardsfu-control failed"
    export SHARDSFU_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/shardsfu"
fi
[ -x "$SHARDSFU_BIN" ] || fail "SHARDSFU_BIN=$SHARDSFU_BIN is not an executable"
export CHROMIUM_BIN="$chromium"

cd "$here"
node --test --test-concurrency=1 "$@" media.test.mjs ||
    fail "FAILED: a browser could not publish or consume media through shardsfu (the messages above say where it stopped; SHARDSFU_LOG=debug for the server's debug log)"
