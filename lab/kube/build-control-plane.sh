#!/usr/bin/env bash
# Builds a real Kubernetes control plane and node agent for tests from Go modules alone (no
# release tarballs, no images): kube-apiserver, kube-controller-manager, kube-scheduler and kubelet
# from k8s.io/kubernetes at one release, and etcd from go.etcd.io/etcd/server/v3 at the version
# that release pins.
#
# 1. Read the release's go.mod from the module proxy (go list -m).
# 2. Generate a throwaway module requiring k8s.io/kubernetes, with one `replace` per staging
#    module (the release replaces them with ./staging/src/... paths, which only work inside its
#    own repository; each is published as k8s.io/<name> v0.<minor>.<patch>).
# 3. Generate a second throwaway module whose main calls etcdmain.Main.
# 4. Build all three with CGO_ENABLED=0 -trimpath -ldflags='-s -w' into a temp dir, move them
#    into the cache bin dir and write a stamp last, so a half-finished run is never taken as done.
#
# Everything (binaries, GOMODCACHE, GOCACHE) lives under ${PODTUN_CACHE_DIR}, so a second run on
# the same machine is a no-op. Progress goes to stderr; the last stdout line is the bin dir.
#
# Environment:
#   PODTUN_CACHE_DIR     cache root (default /var/cache/podtun-test)
#   PODTUN_KUBE_VERSION  k8s.io/kubernetes release (default v1.35.4: its go.mod says go 1.25.0,
#                        so it builds with the machine's Go 1.26 without a toolchain switch)
#   PODTUN_ETCD_VERSION  go.etcd.io/etcd/server/v3 version (default: the one the release pins)
set -euo pipefail

KUBE_VERSION="${PODTUN_KUBE_VERSION:-v1.35.4}"
CACHE_DIR="${PODTUN_CACHE_DIR:-/var/cache/podtun-test}"
# Bump when the way the binaries are built changes, so old caches are rebuilt.
STAMP_FORMAT=2

log() { printf 'build-control-plane: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ "$KUBE_VERSION" =~ ^v1\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]] ||
  die "PODTUN_KUBE_VERSION must look like v1.35.4, got '$KUBE_VERSION'"
command -v go >/dev/null 2>&1 ||
  die "'go' not found in PATH (install Go 1.25 or later, e.g. /usr/local/go/bin, and add it to PATH)"

# Builds must not pick up a go.work, a vendor mode or a toolchain download from the caller.
export GOWORK=off
export GOFLAGS=-buildvcs=false
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export CGO_ENABLED=0
export GOMODCACHE="$CACHE_DIR/gomod"
export GOCACHE="$CACHE_DIR/gocache"

RELEASE_DIR="$CACHE_DIR/kube-$KUBE_VERSION"
BIN_DIR="$RELEASE_DIR/bin"
STAMP="$RELEASE_DIR/stamp"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet etcd)

mkdir -p "$RELEASE_DIR" "$GOMODCACHE" "$GOCACHE" ||
  die "cannot create $RELEASE_DIR (set PODTUN_CACHE_DIR to a writable directory)"

# Two CI jobs on one machine must not build into the same directory at once.
exec 9>"$RELEASE_DIR/.lock"
flock 9 || die "cannot lock $RELEASE_DIR/.lock"

log "$(go version)"

# The release's go.mod, fetched alone (a few KB) before the large module zip.
kube_gomod="$(go list -m -f '{{.GoMod}}' "k8s.io/kubernetes@$KUBE_VERSION")" ||
  die "k8s.io/kubernetes@$KUBE_VERSION not found through GOPROXY=$(go env GOPROXY)"
[[ -s "$kube_gomod" ]] || die "go.mod of k8s.io/kubernetes@$KUBE_VERSION is missing or empty"

# Prints the version a go.mod requires for a module (first match), or nothing.
required_version() {
  awk -v m="$2" '($1 == m && $2 ~ /^v/) { print $2; exit } ($1 == "require" && $2 == m) { print $3; exit }' "$1"
}
ETCD_VERSION="${PODTUN_ETCD_VERSION:-$(required_version "$kube_gomod" go.etcd.io/etcd/server/v3)}"
[[ -n "$ETCD_VERSION" ]] ||
  die "k8s.io/kubernetes@$KUBE_VERSION pins no go.etcd.io/etcd/server/v3; set PODTUN_ETCD_VERSION"

stamp_text="format=$STAMP_FORMAT kubernetes=$KUBE_VERSION etcd=$ETCD_VERSION"
all_built() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$BIN_DIR/$b" ]] || return 1; done
  [[ -f "$STAMP" && "$(cat "$STAMP")" == "$stamp_text" ]]
}
if all_built; then
  log "up to date ($stamp_text)"
  echo "$BIN_DIR"
  exit 0
fi

# Fails with the needed Go when the local one is older than a go.mod's `go` line.
require_go() {
  local need="$1" what="$2" have
  have="$(go env GOVERSION)"
  have="${have#go}"
  if [[ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n1)" != "$need" ]]; then
    die "$what needs Go $need or later, but the first 'go' in PATH ($(command -v go)) is $have: put a newer one first (e.g. PATH=/usr/local/go/bin:\$PATH)"
  fi
}
kube_go="$(awk '$1 == "go" { print $2; exit }' "$kube_gomod")"
[[ -n "$kube_go" ]] || die "no 'go' line in $kube_gomod"
require_go "$kube_go" "k8s.io/kubernetes@$KUBE_VERSION"

work="$(mktemp -d "$RELEASE_DIR/work.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/kube" "$work/etcd" "$work/bin"

# Staging modules are tagged v0.<minor>.<patch> for release v1.<minor>.<patch>.
staging_version="v0.${KUBE_VERSION#v1.}"

# Writes the kube module: the release's go and godebug lines (they set the runtime defaults the
# release was tested with), its non-staging replaces verbatim, and staging -> published versions.
write_kube_module() {
  local dir="$1" m count=0
  (cd "$dir" && go mod init podtun.test/kube-control-plane >/dev/null 2>&1) ||
    die "go mod init failed in $dir"
  (cd "$dir" && go mod edit -go="$kube_go") || die "go mod edit -go=$kube_go failed"
  # godebug lines: either `godebug k=v` or inside a `godebug (...)` block.
  while read -r kv; do
    (cd "$dir" && go mod edit -godebug="$kv") || die "go mod edit -godebug=$kv failed"
  done < <(awk '
    $1 == "godebug" && $2 == "(" { inblock = 1; next }
    inblock && $1 == ")" { inblock = 0; next }
    inblock && NF { print $1; next }
    $1 == "godebug" && NF == 2 { print $2 }' "$kube_gomod")
  while read -r m target; do
    if [[ "$target" == ./staging/src/* ]]; then
      (cd "$dir" && go mod edit -replace="$m=$m@$staging_version") || die "replace $m failed"
      count=$((count + 1))
    else
      die "k8s.io/kubernetes@$KUBE_VERSION replaces $m with '$target', which this script does not know how to map"
    fi
  done < <(awk '
    $1 == "replace" && $2 == "(" { inblock = 1; next }
    inblock && $1 == ")" { inblock = 0; next }
    inblock && $2 == "=>" { print $1, $3; next }
    $1 == "replace" && $3 == "=>" { print $2, $4 }' "$kube_gomod")
  ((count > 0)) || die "found no ./staging replaces in k8s.io/kubernetes@$KUBE_VERSION's go.mod"
  log "kube module: $count staging modules replaced with $staging_version"
}

write_etcd_module() {
  local dir="$1"
  (cd "$dir" && go mod init podtun.test/etcd >/dev/null 2>&1) || die "go mod init failed in $dir"
  cat >"$dir/main.go" <<'EOF'
// etcd built from go.etcd.io/etcd/server/v3 for podtun's Kubernetes tests.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
}

# What hack/lib/version.sh stamps into release builds, so /version and user agents are real.
kube_minor="${KUBE_VERSION#v1.}"
kube_minor="${kube_minor%%.*}"
kube_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$kube_minor"
  kube_ldflags+=" -X $pkg.gitTreeState=clean"
done

started=$SECONDS
log "building kubernetes $KUBE_VERSION and etcd $ETCD_VERSION into $BIN_DIR (first build: many minutes)"

write_kube_module "$work/kube"
(
  cd "$work/kube"
  go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" \
    "k8s.io/kubernetes/cmd/kube-controller-manager@$KUBE_VERSION" \
    "k8s.io/kubernetes/cmd/kube-scheduler@$KUBE_VERSION" \
    "k8s.io/kubernetes/cmd/kubelet@$KUBE_VERSION" >&2
  go build -trimpath -ldflags="$kube_ldflags" -o "$work/bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet >&2
) || die "building the kubernetes $KUBE_VERSION binaries failed (see above)"
log "kubernetes built after $((SECONDS - started))s"

write_etcd_module "$work/etcd"
(
  cd "$work/etcd"
  go get "go.etcd.io/etcd/server/v3/etcdmain@$ETCD_VERSION" >&2
  go build -trimpath -ldflags="-s -w" -o "$work/bin/etcd" . >&2
) || die "building etcd $ETCD_VERSION failed (see above)"
log "etcd built after $((SECONDS - started))s"

for b in "${BINARIES[@]}"; do
  [[ -x "$work/bin/$b" ]] || die "the build produced no $b"
done
# Stamp removed first and written last: an interrupted install is rebuilt next time.
rm -f "$STAMP"
mkdir -p "$BIN_DIR"
for b in "${BINARIES[@]}"; do mv -f "$work/bin/$b" "$BIN_DIR/$b"; done
printf '%s\n' "$stamp_text" >"$STAMP"
log "done in $((SECONDS - started))s: $(cd "$BIN_DIR" && du -sh . | cut -f1) of binaries"
echo "$BIN_DIR"
