//go:build tools

// Package realapi pins the real kube-apiserver and etcd that tests/realapi runs (see build.sh).
package realapi

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
