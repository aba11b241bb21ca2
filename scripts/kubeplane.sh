#!/usr/bin/env bash
# kubeplane.sh builds a real Kubernetes control plane for the Kubernetes tier
# test (test/kube): kube-apiserver, kube-controller-manager and kube-scheduler
# from the k8s.io/kubernetes module, and kwok for fake nodes. etcd comes from
# Debian (apt-get install etcd-server).
#
# The binaries are built in a wrapper module outside Lathe's module (the
# kubernetes module's dependency graph must not leak into Lathe's go.mod) and
# cached under the Go cache's parent folder, so a second run is instant.
# It prints the folder holding the binaries on its last line.
#
#   scripts/kubeplane.sh            # build (or reuse) and print the bin folder
#   LATHE_KUBEPLANE_DIR=/x scripts/kubeplane.sh
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
staging="v0${K8S_VERSION#v1}" # k8s.io/api etc. are published as v0.37.x

dir="${LATHE_KUBEPLANE_DIR:-$(dirname "$(go env GOCACHE)")/lathe-kubeplane}/$K8S_VERSION"
bin="$dir/bin"
mkdir -p "$bin"

have() { [ -x "$bin/$1" ]; }

if ! have kube-apiserver || ! have kube-controller-manager || ! have kube-scheduler; then
	mod="$dir/wrapper"
	mkdir -p "$mod"
	cd "$mod"
	gomod="$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
	{
		echo "module lathe.local/kubeplane"
		echo
		echo "go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')"
		echo
		echo "require k8s.io/kubernetes $K8S_VERSION"
		echo
		# Each ./staging replace of the kubernetes module points at a folder
		# that only exists in its git tree: use the published module instead.
		grep -E '^[[:space:]]*k8s\.io/[^ ]+ => \./staging/' "$gomod" |
			awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
	} >go.mod
	cat >tools.go <<'GO'
//go:build tools

package kubeplane

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
	GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
	GOFLAGS=-mod=mod go get "k8s.io/kubernetes@$K8S_VERSION"
	ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
	for c in kube-apiserver kube-controller-manager kube-scheduler; do
		if ! have "$c"; then
			echo "kubeplane: building $c $K8S_VERSION (minutes)" >&2
			GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$bin/$c.tmp" "k8s.io/kubernetes/cmd/$c"
			mv "$bin/$c.tmp" "$bin/$c"
		fi
	done
fi

if ! have kwok; then
	echo "kubeplane: installing kwok $KWOK_VERSION" >&2
	GOBIN="$bin" go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
fi

# kwok's stages: nodes become Ready and keep a heartbeat, pods of a scheduled node become Running
# and pods being deleted go away. Without its pod-complete stage: a pod ends when the test, which
# runs the pod's command itself, says so (as a kubelet would).
stages="$(dirname "$bin")/kwok-stages.yaml"
if [ ! -s "$stages" ]; then
	kwokdir="$(cd "$dir" && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
	{
		for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml pod/fast/pod-ready.yaml pod/fast/pod-delete.yaml; do
			echo "---"
			cat "$kwokdir/kustomize/stage/$f"
		done
	} >"$stages.tmp"
	mv "$stages.tmp" "$stages"
fi

if ! command -v etcd >/dev/null && [ ! -x /usr/bin/etcd ]; then
	echo "kubeplane: etcd missing: apt-get install etcd-server" >&2
	exit 1
fi

echo "$bin"
