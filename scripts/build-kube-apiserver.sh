#!/usr/bin/env bash
# Builds kube-apiserver from the Kubernetes Go sources, for the tests that run a real Kubernetes API
# server (test/support/kube-apiserver.ts). Kubernetes publishes no kube-apiserver binary through a
# package registry, but the Go module proxy serves its sources, so we compile it here.
#
# The first build takes about 5 minutes on 2 cores (measured 4.5, of which under a minute downloading
# modules; allow 8 on a slower machine); the result is cached outside the checkout, keyed by version,
# and later runs only check that it runs. With Go's own build cache warm a rebuild takes seconds.
# Prints the binary's path as its last line of standard output; everything else goes to stderr.
#
#   KUBE_APISERVER_BIN  use this binary instead: only check that it runs, and print it
#   MULTIPLANE_CACHE    cache root (default: $XDG_CACHE_HOME/multiplane, or ~/.cache/multiplane)
#   GO                  the go command (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

KUBE_VERSION=v1.34.4
# Kubernetes' staging modules (k8s.io/api, k8s.io/apiserver, ...) are published as v0.<minor>.<patch>.
STAGING_VERSION=v0.${KUBE_VERSION#v1.}

log() { echo "build-kube-apiserver: $*" >&2; }
fail() { log "$*"; exit 1; }

if [ -n "${KUBE_APISERVER_BIN:-}" ]; then
  "$KUBE_APISERVER_BIN" --version >&2 || fail "KUBE_APISERVER_BIN=$KUBE_APISERVER_BIN does not run"
  echo "$KUBE_APISERVER_BIN"
  exit 0
fi

cache_dir=${MULTIPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/multiplane}/kube-apiserver-$KUBE_VERSION
bin=$cache_dir/kube-apiserver

# The version is stamped in at link time (below), so this also tells a stale or foreign binary apart.
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qxF "Kubernetes $KUBE_VERSION"; then
  echo "$bin"
  exit 0
fi

GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
[ -x "$GO" ] || command -v "$GO" >/dev/null || fail "no Go toolchain (go on PATH, /usr/local/go/bin/go, or GO=...): Go 1.24 or later is needed once to build kube-apiserver $KUBE_VERSION (or set KUBE_APISERVER_BIN)"

mkdir -p "$cache_dir"
work=$(mktemp -d "$cache_dir/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# k8s.io/kubernetes is not meant to be depended on: its go.mod requires every staging module at
# v0.0.0 and replaces it with a directory of its own repository (./staging/src/k8s.io/...), and a
# dependency's replaces don't apply to the module that builds it. So a throwaway wrapper module
# requires k8s.io/kubernetes and points each of those staging modules at its published version. The
# list comes from that go.mod itself, so a new staging module in a later release is picked up.
log "reading k8s.io/kubernetes@$KUBE_VERSION's go.mod"
gomod=$("$GO" mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
[ -f "$gomod" ] || fail "go mod download gave no go.mod for k8s.io/kubernetes@$KUBE_VERSION"
staging=$(sed -n 's#^[[:space:]]*\(replace[[:space:]]\{1,\}\)\{0,1\}\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/src/.*#\2#p' "$gomod" | sort -u)
[ -n "$staging" ] || fail "found no staging replaces in $gomod"
log "$(echo "$staging" | wc -l) staging modules, each replaced by its $STAGING_VERSION release"

{
  echo "module multiplane.local/kubeapiserver"
  echo
  # Kubernetes' own go and godebug lines: the main module's decide the runtime's GODEBUG defaults.
  grep -E '^(go|godebug) ' "$gomod"
  echo
  echo "require k8s.io/kubernetes $KUBE_VERSION"
  echo
  # A tool line keeps the package (and so everything it imports) in the module graph for go mod tidy.
  echo "tool k8s.io/kubernetes/cmd/kube-apiserver"
  echo
  echo "replace ("
  for m in $staging; do echo "	$m => $m $STAGING_VERSION"; done
  echo ")"
} > go.mod

export CGO_ENABLED=0
log "resolving modules (go mod tidy)"
"$GO" mod tidy >&2

# Kubernetes' own build stamps the version in with -X; without it the binary calls itself v0.0.0.
ver_pkg=k8s.io/component-base/version
client_ver_pkg=k8s.io/client-go/pkg/version
minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for p in $ver_pkg $client_ver_pkg; do
  ldflags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  ldflags+=" -X $p.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done

log "compiling k8s.io/kubernetes/cmd/kube-apiserver (about 5 minutes on 2 cores the first time)"
start=$(date +%s)
"$GO" build -trimpath -ldflags "$ldflags" -o "$work/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver >&2
log "compiled in $(( $(date +%s) - start )) s"

"$work/kube-apiserver" --version | grep -qxF "Kubernetes $KUBE_VERSION" || fail "the built binary does not report $KUBE_VERSION"
# Same directory, so the rename is atomic: a concurrent run sees either no binary or a whole one.
mv -f "$work/kube-apiserver" "$bin"
log "built $bin"
echo "$bin"
