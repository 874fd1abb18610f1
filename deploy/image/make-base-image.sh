#!/usr/bin/env bash
# Makes the base image deploy/Containerfile builds FROM when no container registry is reachable:
# Debian bookworm (minbase) plus this host's Node 20, imported into local container storage as
# localhost/podtun-base:bookworm-node20. Real users build FROM the official Node 20 image instead;
# this one mirrors its layout (node, npm and the Node headers under /usr/local) so the same
# Containerfile works on both.
#
# Usage: deploy/image/make-base-image.sh [IMAGE]      (root; prints the image id last)
#   env PODTUN_DEBIAN_MIRROR   Debian mirror (default http://deb.debian.org/debian)
#   env PODTUN_DEBIAN_SECURITY security mirror (default http://deb.debian.org/debian-security)
#
# Flow:
#  1. find this host's Node 20: the node binary, npm's package folder (where `npm` really lives),
#     and the headers node-gyp needs to build the addon offline (<prefix>/include/node);
#  2. stamp = sha256 of this script, the mirrors, the node binary, npm's version and the headers'
#     node_version.h; when IMAGE exists with that stamp in its label, stop ("up to date");
#  3. mmdebstrap --variant=minbase bookworm into a tar, with Node copied in by hooks and checked
#     to run inside the chroot; docs, man pages and locales excluded and apt set to keep no
#     caches, as in Debian's slim images (both stay in the image: later installs are slim too);
#  4. podman import the tar with PATH, CMD and labels (the stamp among them).
#
# Why mmdebstrap rather than debootstrap: measured here, both take about 1.5 min (the downloads
# dominate: 98 s debootstrap, 88 s mmdebstrap), but mmdebstrap writes the tar podman imports
# directly (no rootfs folder to clean up), applies the dpkg excludes while unpacking (127 MB
# against 206 MB), cleans the apt lists and caches itself, and copies Node in through hooks.
set -euo pipefail

IMAGE=${1:-localhost/podtun-base:bookworm-node20}
MIRROR=${PODTUN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${PODTUN_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
SUITE=bookworm
STAMP_LABEL=io.podtun.base-stamp
# Bounds: a stalled mirror must not hang a test run.
MMDEBSTRAP_TIMEOUT_S=900
IMPORT_TIMEOUT_S=300

fail() {
  echo "make-base-image: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || fail "needs root (mmdebstrap --mode=root, podman's root storage)"
for tool in podman:podman mmdebstrap:mmdebstrap sha256sum:coreutils timeout:coreutils; do
  command -v "${tool%%:*}" >/dev/null || fail "\`${tool%%:*}\` is missing: apt-get install ${tool#*:}"
done

# 1. Node 20 on this host.
node_bin=$(readlink -f "$(command -v node || true)")
[ -x "$node_bin" ] || fail "no node on PATH: the base needs this host's Node 20"
node_version=$("$node_bin" --version)
case "$node_version" in
  v20.*) ;;
  *) fail "this host's node is $node_version; the base needs Node 20 (Debian bookworm's own nodejs is 18)" ;;
esac
npm_cli=$(readlink -f "$(command -v npm || true)")
npm_dir=$(dirname "$(dirname "$npm_cli")")
[ -f "$npm_dir/package.json" ] && [ "$(basename "$npm_dir")" = npm ] ||
  fail "cannot find npm's package folder (npm resolves to '$npm_cli')"
npm_version=$("$node_bin" -p "require('$npm_dir/package.json').version")
node_headers=$(dirname "$(dirname "$node_bin")")/include/node
[ -f "$node_headers/common.gypi" ] && [ -f "$node_headers/node_version.h" ] ||
  fail "no Node headers at $node_headers: node-gyp would download them, and nodejs.org is not reachable here"

# 2. Up to date?
stamp=$(
  {
    # Contents only: the same script run by another path is the same base.
    cat "$0" "$node_bin" "$node_headers/node_version.h" | sha256sum
    echo "$SUITE $MIRROR $SECURITY_MIRROR npm $npm_version"
  } | sha256sum | cut -d' ' -f1
)
existing=$(podman image inspect --format "{{ index .Labels \"$STAMP_LABEL\" }}" "$IMAGE" 2>/dev/null || true)
previous_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
if [ "$existing" = "$stamp" ]; then
  echo "base image: up to date ($IMAGE, Node $node_version, npm $npm_version)" >&2
  podman image inspect --format '{{.Id}}' "$IMAGE"
  exit 0
fi

started=$(date +%s)
work=$(mktemp -d /tmp/podtun-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "base image: making $IMAGE: Debian $SUITE minbase + Node $node_version (npm $npm_version) from $node_bin" >&2

# apt settings of Debian's own container images: no .deb or package cache left after an install,
# no translations, compressed lists. (With pkgcache "" mmdebstrap's own clean-up no longer finds
# the package caches made while building: a last hook removes them.)
mkdir "$work/apt.conf.d"
cat >"$work/apt.conf.d/docker-clean" <<'CONF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF
echo 'Acquire::Languages "none";' >"$work/apt.conf.d/docker-no-languages"
echo 'Acquire::GzipIndexes "true";' >"$work/apt.conf.d/docker-gzip-indexes"

# 3. The root filesystem, as a tar. Node goes where the official image keeps it: /usr/local.
# The merged-usr hook sets up merged /usr with usr-is-merged instead of the usrmerge package,
# which would bring perl (about 50 MB) into every image built on this one.
timeout "$MMDEBSTRAP_TIMEOUT_S" mmdebstrap \
  --variant=minbase --mode=root --format=tar --quiet \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --aptopt='APT::Install-Recommends "false"' \
  --customize-hook="copy-in $work/apt.conf.d/docker-clean $work/apt.conf.d/docker-no-languages $work/apt.conf.d/docker-gzip-indexes /etc/apt/apt.conf.d" \
  --customize-hook='mkdir -p "$1/usr/local/bin" "$1/usr/local/lib/node_modules" "$1/usr/local/include"' \
  --customize-hook="copy-in $node_bin /usr/local/bin" \
  --customize-hook="copy-in $npm_dir /usr/local/lib/node_modules" \
  --customize-hook="copy-in $node_headers /usr/local/include" \
  --customize-hook='ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm"' \
  --customize-hook='ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"' \
  --customize-hook='chroot "$1" env -i PATH=/usr/local/bin:/usr/bin:/bin node -e "process.exitCode = process.versions.node.startsWith(\"20.\") ? 0 : 1"' \
  --customize-hook='chroot "$1" env -i PATH=/usr/local/bin:/usr/bin:/bin npm --version >/dev/null' \
  --customize-hook='rm -f "$1"/var/cache/apt/*.bin' \
  "$SUITE" "$work/rootfs.tar" \
  "deb $MIRROR $SUITE main" \
  "deb $MIRROR $SUITE-updates main" \
  "deb $SECURITY_MIRROR $SUITE-security main" ||
  fail "mmdebstrap failed (or ran over ${MMDEBSTRAP_TIMEOUT_S} s); is $MIRROR reachable?"

# 4. Into local container storage.
timeout "$IMPORT_TIMEOUT_S" podman import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=${node_version#v}" \
  --change 'CMD ["node"]' \
  --change "LABEL $STAMP_LABEL=$stamp" \
  --change "LABEL org.opencontainers.image.title=podtun-base" \
  --change "LABEL org.opencontainers.image.description=\"Debian $SUITE minbase with Node $node_version, made locally by deploy/image/make-base-image.sh\"" \
  --message "make-base-image.sh: Debian $SUITE minbase + Node $node_version" \
  "$work/rootfs.tar" "$IMAGE" >/dev/null || fail "podman import failed"

# The image this one replaces is left untagged: remove it unless an image built on it still needs it.
new_id=$(podman image inspect --format '{{.Id}}' "$IMAGE")
if [ -n "$previous_id" ] && [ "$previous_id" != "$new_id" ]; then podman rmi "$previous_id" >/dev/null 2>&1 || true; fi

size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "base image: made $IMAGE in $(($(date +%s) - started)) s, $((size / 1000000)) MB" >&2
echo "$new_id"
