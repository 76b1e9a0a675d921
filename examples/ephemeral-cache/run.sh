#!/usr/bin/env bash
# Two ephemeral CI hosts (two empty stores) share the build cache through a registry, as BuildKit's
# --cache-to/--cache-from do. Needs the local registry and its busybox base (`npx tsx scripts/services.ts images`).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
registry="${REGISTRY:-127.0.0.1:5000}"
cache="$registry/examples/ephemeral-cache:buildcache"
kiln() { node "$repo/packages/cli/dist/main.js" "$@"; }

host_a="$(mktemp -d)"; host_b="$(mktemp -d)"
trap 'rm -rf "$host_a" "$host_b"' EXIT

echo "== host A: cold build, exports every step (mode=max) and pushes the image"
KILN_STORE="$host_a" kiln build --progress plain -t "$registry/examples/ephemeral-cache:1" --push \
  --cache-to "type=registry,ref=$cache,mode=max" "$here" 2>&1

echo "== host B: empty store, imports the cache: every step is CACHED, no layer is downloaded"
KILN_STORE="$host_b" kiln build --progress plain --explain --cache-from "$cache" "$here" 2>&1

echo "== host B: a new cache_invalidator value reruns the steps after the ARG, and says why"
KILN_STORE="$host_b" kiln build --progress plain --explain --build-arg "cache_invalidator=$(date +%s)" \
  --cache-from "$cache" "$here" 2>&1
