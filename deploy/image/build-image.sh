#!/usr/bin/env bash
# Builds podtun's image from deploy/Containerfile with podman and prints its id on the last line
# of stdout; the build log, time and size go to stderr. (`buildah bud` takes the same flags.)
#
# Usage: deploy/image/build-image.sh [CONTEXT]       (root; CONTEXT defaults to the repo root)
#   env PODTUN_BASE_IMAGE  the BASE_IMAGE build argument (default localhost/podtun-base:bookworm-node20,
#                          made by make-base-image.sh; docker.io/library/node:20-bookworm-slim where
#                          a registry is reachable)
#   env PODTUN_IMAGE       the tag (default localhost/podtun:dev); the build stage is tagged
#                          PODTUN_IMAGE with "-build" appended to its tag, as the next build's cache
#   env NODE_EXTRA_CA_CERTS when set (a TLS-intercepting proxy between this host and the npm
#                          registry), handed to the build's `npm ci` as the secret ca-bundle
#
# The RUN steps reach the npm registry and the Debian mirror through the host's network
# (--network=host): the default network would create a bridge with an address in the root
# network namespace, and nothing here needs one.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
context=$(cd "${1:-$root}" && pwd)
BASE_IMAGE=${PODTUN_BASE_IMAGE:-localhost/podtun-base:bookworm-node20}
IMAGE=${PODTUN_IMAGE:-localhost/podtun:dev}
# Bound: the first build (apt, npm ci, the addon, tsc, the CNI executables) takes minutes, not hours.
BUILD_TIMEOUT_S=${PODTUN_BUILD_TIMEOUT_S:-1800}

fail() {
  echo "build-image: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || fail "needs root (podman's root storage; rootless podman needs subuids set up)"
command -v podman >/dev/null || fail "podman is not installed: apt-get install podman"
[ -f "$context/package.json" ] || fail "$context is not the repository root (no package.json)"

version=$(node -p "require('$context/package.json').version" 2>/dev/null || echo dev)
revision=$(git -C "$context" rev-parse HEAD 2>/dev/null || echo unknown)
iidfile=$(mktemp /tmp/podtun-iid.XXXXXX)
trap 'rm -f "$iidfile"' EXIT

# The CAs this host's Node trusts beyond its own go to the build's npm too, as a secret (the
# Containerfile reads it in one RUN step; it is never stored in a layer).
secret=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then
  [ -r "$NODE_EXTRA_CA_CERTS" ] || fail "NODE_EXTRA_CA_CERTS names $NODE_EXTRA_CA_CERTS, which cannot be read"
  secret=(--secret "id=ca-bundle,src=$NODE_EXTRA_CA_CERTS")
fi

previous_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
build() {
  timeout "$BUILD_TIMEOUT_S" podman build \
    --network=host \
    --layers \
    --file "$here/../Containerfile" \
    --ignorefile "$here/../Containerfile.dockerignore" \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    --build-arg "PODTUN_VERSION=$version" \
    --build-arg "PODTUN_REVISION=$revision" \
    "${secret[@]}" \
    "$@" \
    "$context" >&2 || fail "the build failed or ran over ${BUILD_TIMEOUT_S} s (log above)"
}

started=$(date +%s)
echo "build-image: podman build $IMAGE from $context (BASE_IMAGE=$BASE_IMAGE)" >&2
# The build stage first, tagged: its layers stay the next build's cache instead of dangling.
# The second build reuses them.
build --target build --tag "$IMAGE-build"
build --iidfile "$iidfile" --tag "$IMAGE"
id=$(cat "$iidfile")
id=${id#sha256:} # as podman image inspect prints it

# What earlier builds left: the image this one replaced, and build-stage layers no tag reaches
# any more (each pass frees the next layer down; layers shared with this build stay).
if [ -n "$previous_id" ] && [ "$previous_id" != "$id" ]; then podman rmi "$previous_id" >/dev/null 2>&1 || true; fi
for _ in $(seq 1 20); do
  pruned=$(podman image prune --force --filter label=io.podtun.stage=build 2>/dev/null || true)
  [ -n "$pruned" ] || break
done
size=$(podman image inspect --format '{{.Size}}' "$IMAGE" 2>/dev/null || echo 0)
echo "build-image: built $IMAGE in $(($(date +%s) - started)) s, $((size / 1000000)) MB" >&2
echo "$id"
