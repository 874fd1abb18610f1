#!/usr/bin/env bash
# Builds the current wireguard-go (module golang.zx2c4.com/wireguard, its main package at the
# module root) for the benchmark's `wireguard-go-current` anchor, from the Go module proxy alone:
#
#   go install -trimpath -ldflags='-s -w' golang.zx2c4.com/wireguard@$VERSION
#
# into a temp GOBIN, then moved to $PODTUN_CACHE_DIR/wireguard-go-$VERSION/wireguard-go (the
# rename is the last step, so a half-finished build is never taken as done). When that file is
# already there this is a no-op that needs no Go. Not part of CI: bench/run.ts calls it when the
# binary is missing. Progress goes to stderr; the last stdout line is the binary's path.
#
# Environment:
#   PODTUN_CACHE_DIR             cache root (default /var/cache/podtun-test; GOMODCACHE and
#                                GOCACHE under it, shared with lab/kube/build-control-plane.sh)
#   PODTUN_WIREGUARD_GO_VERSION  module version (default: the pseudo-version below, the newest
#                                the proxy served on 2026-12-03; `go list -m -json
#                                golang.zx2c4.com/wireguard@latest` names a newer one). Its go.mod
#                                says go 1.23.1, so the machine's Go 1.26 builds it as it is.
set -euo pipefail

VERSION="${PODTUN_WIREGUARD_GO_VERSION:-v0.0.0-20260522210424-ecfc5a8d5446}"
CACHE_DIR="${PODTUN_CACHE_DIR:-/var/cache/podtun-test}"

log() { printf 'build-wireguard-go: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ "$VERSION" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] ||
  die "PODTUN_WIREGUARD_GO_VERSION must be a module version like v0.0.0-20260522210424-ecfc5a8d5446, got '$VERSION'"

OUT_DIR="$CACHE_DIR/wireguard-go-$VERSION"
BINARY="$OUT_DIR/wireguard-go"
if [[ -x "$BINARY" ]]; then
  echo "$BINARY"
  exit 0
fi

# The machine's own Go first (/usr/local/go/bin), as in .ci/run.
export PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null 2>&1 ||
  die "'go' not found in PATH (install Go 1.23 or later, e.g. /usr/local/go/bin)"

export GOWORK=off
export GOFLAGS=-buildvcs=false
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export CGO_ENABLED=0
export GOMODCACHE="$CACHE_DIR/gomod"
export GOCACHE="$CACHE_DIR/gocache"

mkdir -p "$OUT_DIR" "$GOMODCACHE" "$GOCACHE" ||
  die "cannot create $OUT_DIR (set PODTUN_CACHE_DIR to a writable directory)"

# Two benches on one machine must not build into the same directory at once.
exec 9>"$OUT_DIR/.lock"
flock 9 || die "cannot lock $OUT_DIR/.lock"
if [[ -x "$BINARY" ]]; then
  echo "$BINARY"
  exit 0
fi

work="$(mktemp -d "$OUT_DIR/work.XXXXXX")"
trap 'rm -rf "$work"' EXIT

started=$SECONDS
log "$(go version); building golang.zx2c4.com/wireguard@$VERSION"
GOBIN="$work" go install -trimpath -ldflags='-s -w' "golang.zx2c4.com/wireguard@$VERSION" >&2 ||
  die "go install golang.zx2c4.com/wireguard@$VERSION failed (see above; GOPROXY=$(go env GOPROXY))"
# The module's root package is named after the module's last element.
[[ -x "$work/wireguard" ]] || die "the build produced no $work/wireguard"
"$work/wireguard" --version >&2 || die "the built binary does not run"
mv -f "$work/wireguard" "$BINARY"
log "done in $((SECONDS - started))s: $BINARY"
echo "$BINARY"
