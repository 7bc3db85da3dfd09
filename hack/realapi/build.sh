#!/usr/bin/env bash
# Builds the real kube-apiserver and etcd that tests/realapi runs, from the Go module proxy, with the
# machine's Go toolchain, at the versions pinned in hack/realapi/go.mod (+ go.sum). Idempotent:
#
#   ${TKSH_CACHE_DIR:-$HOME/.cache/tksh}/realapi/<k8s-version>-<etcd-version>/bin/{kube-apiserver,etcd}
#
# When both binaries are there it prints their paths and exits at once; otherwise it builds them (about
# 10 minutes on 2 cores the first time, see docs/testing.md) and then prints their paths.
# stdout: exactly two lines, the kube-apiserver path then the etcd path. Progress goes to stderr.
#
# Options: --print-versions  print "<k8s-version> <etcd-version>" and exit (no Go needed).
#          --force           rebuild even when the cache holds both binaries.
# Environment: TKSH_CACHE_DIR (cache root), GOFLAGS/GOPROXY/GOCACHE/GOMODCACHE as usual for Go.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
gomod="${here}/go.mod"

# The pins live in go.mod only: read them from there, so the two can never disagree.
pin() { awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' "${gomod}"; }
k8s_version="$(pin k8s.io/kubernetes)"
etcd_version="$(pin go.etcd.io/etcd/server/v3)"
if [[ -z "${k8s_version}" || -z "${etcd_version}" ]]; then
    echo "build.sh: cannot read the pinned versions from ${gomod}" >&2
    exit 2
fi

force=0
for arg in "$@"; do
    case "${arg}" in
        --print-versions) echo "${k8s_version} ${etcd_version}"; exit 0 ;;
        --force) force=1 ;;
        *) echo "build.sh: unknown argument: ${arg}" >&2; exit 2 ;;
    esac
done

cache_root="${TKSH_CACHE_DIR:-${HOME}/.cache/tksh}"
dest="${cache_root}/realapi/${k8s_version}-${etcd_version}"
bin="${dest}/bin"

done_already() { [[ -x "${bin}/kube-apiserver" && -x "${bin}/etcd" ]]; }
print_paths() { printf '%s\n%s\n' "${bin}/kube-apiserver" "${bin}/etcd"; }

if [[ "${force}" == 0 ]] && done_already; then
    print_paths
    exit 0
fi

if ! command -v go > /dev/null 2>&1; then
    echo "build.sh: Go is not installed (needed once to build kube-apiserver ${k8s_version} and etcd ${etcd_version})" >&2
    exit 3
fi

mkdir -p "${dest}"
# One builder at a time per cache folder: a second caller waits, then finds the binaries there.
if command -v flock > /dev/null 2>&1; then
    exec 9> "${dest}/.build.lock"
    flock 9
    if [[ "${force}" == 0 ]] && done_already; then
        print_paths
        exit 0
    fi
fi

started=$(date +%s)
tmp="$(mktemp -d "${dest}/.build.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT

# The version that `/version` reports: the same -X flags as kubernetes' hack/lib/version.sh. The build date is
# the release's publication time from the module proxy (reproducible), not the time of this build.
k8s_mm="${k8s_version#v}"
k8s_major="${k8s_mm%%.*}"
k8s_minor="${k8s_mm#*.}"
k8s_minor="${k8s_minor%%.*}"
build_date="$(cd "${here}" && go mod download -json "k8s.io/kubernetes@${k8s_version}" \
    | sed -n 's/.*"Info": "\(.*\)".*/\1/p' | xargs -r cat 2> /dev/null \
    | sed -n 's/.*"Time":"\([^"]*\)".*/\1/p')"
build_date="${build_date:-1970-01-01T00:00:00Z}"
ldflags="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldflags+=" -X ${pkg}.gitVersion=${k8s_version}"
    ldflags+=" -X ${pkg}.gitMajor=${k8s_major}"
    ldflags+=" -X ${pkg}.gitMinor=${k8s_minor}"
    ldflags+=" -X ${pkg}.gitTreeState=clean"
    ldflags+=" -X ${pkg}.buildDate=${build_date}"
done

export CGO_ENABLED=0
export GOWORK=off  # a go.work above this folder must not change what is built
cd "${here}"
echo "build.sh: building kube-apiserver ${k8s_version} (Go $(go env GOVERSION)) into ${bin} ..." >&2
go build -trimpath -ldflags="${ldflags}" -o "${tmp}/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
echo "build.sh: kube-apiserver built after $(( $(date +%s) - started ))s; building etcd ${etcd_version} ..." >&2
go build -trimpath -ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=${etcd_version}" \
    -o "${tmp}/etcd" go.etcd.io/etcd/server/v3

"${tmp}/kube-apiserver" --version >&2
"${tmp}/etcd" --version >&2

mkdir -p "${bin}"
mv -f "${tmp}/kube-apiserver" "${bin}/kube-apiserver"
mv -f "${tmp}/etcd" "${bin}/etcd"
echo "build.sh: built in $(( $(date +%s) - started ))s" >&2
print_paths
