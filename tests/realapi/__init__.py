"""The real tier: a real kube-apiserver + etcd built from source (see docs/testing.md)."""
