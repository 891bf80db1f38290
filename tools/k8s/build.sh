#!/usr/bin/env bash
# Builds the pinned Kubernetes test binaries (see go.mod) into a cache shared by every clone on this
# machine, one binary at a time (a kube-apiserver link needs several GB of RAM), and skips any already there.
# The directory is $MESHPLANE_K8S_TOOLS, else ${XDG_CACHE_HOME:-~/.cache}/meshplane/k8s/<go.sum hash>/bin;
# tests/k8s/cluster.py computes the same default.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
hash="$(sha256sum "$here/go.sum" | cut -c1-16)"
bin="${MESHPLANE_K8S_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/meshplane/k8s/$hash/bin}"
mkdir -p "$bin"
command -v go >/dev/null || PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || { echo "k8s-tools: needs Go (1.26+) and the Go module proxy" >&2; exit 1; }

version() { (cd "$here" && go list -m -f '{{.Version}}' "$1"); }
kube="$(version k8s.io/kubernetes)"
kube_minor="$(echo "$kube" | cut -d. -f2)"
helm="$(version helm.sh/helm/v3)"
# The version strings a release build stamps (hack/lib/version.sh, helm's Makefile), so `kubectl version`
# and the apiserver's /version say v1.37.x and helm's default capabilities match the server.
kv=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kv+=" -X $pkg.gitVersion=$kube -X $pkg.gitMajor=1 -X $pkg.gitMinor=$kube_minor -X $pkg.gitTreeState=clean"
done
hv="-X helm.sh/helm/v3/internal/version.version=$helm -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
hv+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$kube_minor"
hv+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$kube_minor"

build() {  # name package ldflags
  local name="$1" pkg="$2" ldflags="$3"
  [ -x "$bin/$name" ] && return 0
  echo "k8s-tools: building $name ($pkg) into $bin"
  local start=$SECONDS
  (cd "$here" && CGO_ENABLED=0 go build -p 2 -trimpath -ldflags "-s -w $ldflags" -o "$bin/.$name.tmp" "$pkg")
  mv "$bin/.$name.tmp" "$bin/$name"  # only a finished binary counts as present
  echo "k8s-tools: $name built in $((SECONDS - start)) s" | tee -a "$bin/../build-times.txt"
}

build etcd go.etcd.io/etcd/server/v3 ""
build kubectl k8s.io/kubernetes/cmd/kubectl "$kv"
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$kv"
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$kv"
build helm helm.sh/helm/v3/cmd/helm "$hv"
echo "k8s-tools: $bin"
