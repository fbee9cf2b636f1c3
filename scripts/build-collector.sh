#!/usr/bin/env bash
# Builds the stock OpenTelemetry Collector from upstream Go modules with the upstream builder (ocb)
# and leaves it at build/otelcol/otelcol. The build is cached outside the clone, keyed by the
# manifest, the builder version and the Go version, so a second run (or CI on the same machine)
# takes a second.
#   SPANBRIDGE_CACHE_DIR  cache root (default: ~/.cache/spanbridge)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
manifest="$root/collector-config/builder-config.yaml"
builder_version=v0.159.0
cache_root=${SPANBRIDGE_CACHE_DIR:-$HOME/.cache/spanbridge}
key=$( (cat "$manifest"; echo "$builder_version"; go version) | sha256sum | cut -c1-16)
cached="$cache_root/otelcol/$key/otelcol"
out="$root/build/otelcol/otelcol"

if [ ! -x "$cached" ]; then
  echo "build-collector: building the stock Collector (key $key); this takes several minutes the first time" >&2
  gobin="$cache_root/gobin/$builder_version"
  if [ ! -x "$gobin/builder" ]; then
    GOBIN="$gobin" go install "go.opentelemetry.io/collector/cmd/builder@$builder_version"
  fi
  work=$(mktemp -d "$cache_root/otelcol-work.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  cp "$manifest" "$work/manifest.yaml"
  (cd "$work" && "$gobin/builder" --config=manifest.yaml)
  mkdir -p "$(dirname "$cached")"
  mv "$work/otelcol-build/otelcol" "$cached.tmp" && mv "$cached.tmp" "$cached"
fi
mkdir -p "$(dirname "$out")"
if [ ! -x "$out" ] || ! cmp -s "$cached" "$out"; then cp "$cached" "$out"; fi
echo "build-collector: $out" >&2
