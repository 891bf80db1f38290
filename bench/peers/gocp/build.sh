#!/usr/bin/env bash
# Builds the go-control-plane peer of bench/peer_fanout.py from the Go module proxy (versions pinned
# in go.mod/go.sum) into a cache shared by every clone on this machine, keyed by the peer's sources:
# ${XDG_CACHE_HOME:-~/.cache}/meshplane/bench-peer/<hash>/gocp ($MESHPLANE_BENCH_PEER overrides the
# binary's path). An existing binary is reused. The last line of output is the binary's path.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
hash="$(cat "$here/go.mod" "$here/go.sum" "$here"/*.go | sha256sum | cut -c1-16)"
binary="${MESHPLANE_BENCH_PEER:-${XDG_CACHE_HOME:-$HOME/.cache}/meshplane/bench-peer/$hash/gocp}"
if [ ! -x "$binary" ]; then
  command -v go >/dev/null || PATH="/usr/local/go/bin:$PATH"
  command -v go >/dev/null || { echo "bench-peer: needs Go (1.26+) and the Go module proxy" >&2; exit 1; }
  mkdir -p "$(dirname "$binary")"
  echo "bench-peer: building $binary" >&2
  (cd "$here" && CGO_ENABLED=0 go build -p 2 -trimpath -ldflags "-s -w" -o "$binary.tmp" .)
  mv "$binary.tmp" "$binary"  # only a finished binary counts as present
fi
echo "$binary"
