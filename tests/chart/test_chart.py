"""The chart offline: lint, render, validation against Kubernetes' schemas, the values schema, pod security,
peering and replicas, the environment the operator reads, labels and network policy."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tksh.config import ConfigError, OperatorConfig
from tksh.resources import generate

from .helpers import (
    CHART,
    CRDS,
    NAMESPACE,
    REPO_ROOT,
    VALUES_ALL,
    VALUES_NAMESPACED,
    Obj,
    bound_roles,
    containers,
    crd_documents,
    env_of,
    of_kind,
    one,
    render,
    run_helm,
    template_args,
    workloads,
)

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion: the pod-index label) and the newest schema that
# kubernetes-validate ships (the real tier's kube-apiserver is v1.37 too).
KUBE_VERSIONS = ("1.28", "1.37")
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "ClusterKopfPeering", "KopfPeering"}
VALUE_SETS = {
    "default": [],
    "all": [VALUES_ALL],
    "namespaced": [VALUES_NAMESPACED],
}


def values_ids() -> list[Any]:
    return [pytest.param(files, id=name) for name, files in VALUE_SETS.items()]


# --- lint and render ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("values_files", values_ids())
def test_lint_strict(helm: Path, values_files: list[Path]) -> None:
    args = ["lint", "--strict", str(CHART)]
    for path in values_files:
        args += ["--values", str(path)]
    proc = run_helm(helm, args, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_default_render_has_the_operator_and_nothing_optional(rendered_default: list[Obj]) -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in rendered_default)
    assert kinds == sorted([
        ("ServiceAccount", "tksh-operator"),
        ("StatefulSet", "tksh-operator"),
        ("Service", "tksh-operator"),
        ("PodDisruptionBudget", "tksh-operator"),
        ("NetworkPolicy", "tksh-operator"),
        ("ClusterKopfPeering", "tksh"),
        ("ClusterRole", "tksh-operator-read"),
        ("ClusterRole", "tksh-operator-write"),
        ("ClusterRoleBinding", "tksh-operator-read"),
        ("ClusterRoleBinding", "tksh-operator-write"),
        ("ClusterRole", "tksh-viewer"),
        ("ClusterRole", "tksh-admin"),
        ("ClusterRoleBinding", "tksh-admin"),
    ])
    # namespaced objects land in the release namespace
    for obj in rendered_default:
        if obj["kind"] in ("ServiceAccount", "StatefulSet", "Service", "PodDisruptionBudget", "NetworkPolicy"):
            assert obj["metadata"]["namespace"] == NAMESPACE


def test_everything_enabled_renders_authz_and_monitoring(rendered_all: list[Obj]) -> None:
    names = {(o["kind"], o["metadata"]["name"]) for o in rendered_all}
    for expected in [
        ("Deployment", "tksh-authz"),
        ("Service", "tksh-authz"),
        ("ServiceAccount", "tksh-authz"),
        ("ClusterRole", "tksh-authz-read"),
        ("ClusterRoleBinding", "tksh-authz-read"),
        ("PodDisruptionBudget", "tksh-authz"),
        ("NetworkPolicy", "tksh-authz"),
        ("ServiceMonitor", "tksh-operator"),
        ("PrometheusRule", "tksh-operator"),
        ("ClusterRoleBinding", "tksh-viewer"),
    ]:
        assert expected in names


def test_authz_is_read_only(rendered_all: list[Obj]) -> None:
    role = one(rendered_all, "ClusterRole", "tksh-authz-read")
    verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
    assert verbs <= {"get", "list", "watch"}


def test_release_name_prefixes_every_object(helm: Path) -> None:
    objs = render(helm, release="prod")
    for obj in objs:
        if obj["kind"] == "ClusterKopfPeering":
            continue  # named by operator.peering.name
        assert obj["metadata"]["name"].startswith("prod-tksh"), obj["metadata"]["name"]


# --- offline validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("values_files", values_ids())
def test_rendered_objects_validate_against_kubernetes_schemas(
    helm: Path, kubernetes_validate: Any, values_files: list[Path], kube_version: str
) -> None:
    objs = render(helm, values_files)
    checked = 0
    for obj in objs:
        if obj["kind"] in CRD_KINDS:
            continue  # custom kinds: see the tests below
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']} is invalid for Kubernetes {kube_version}: {exc}")
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_crds_validate_against_kubernetes_schemas(kubernetes_validate: Any, kube_version: str) -> None:
    for crd in crd_documents():
        kubernetes_validate.validate(crd, kube_version, strict=True)


def test_offline_validation_catches_a_wrong_field(rendered_default: list[Obj], kubernetes_validate: Any) -> None:
    """The validator is strict: an unknown or mistyped field is refused (so the test above can fail)."""
    sts = copy.deepcopy(one(rendered_default, "StatefulSet"))
    sts["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, "1.37", strict=True)
    sts = copy.deepcopy(one(rendered_default, "StatefulSet"))
    sts["spec"]["replicas"] = "2"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, "1.37", strict=True)


@pytest.mark.parametrize("values_files", values_ids())
def test_peering_objects_match_the_peering_crds(helm: Path, values_files: list[Path]) -> None:
    crds = {c["spec"]["names"]["kind"]: c for c in crd_documents() if c["spec"]["group"] == "kopf.dev"}
    assert set(crds) == {"ClusterKopfPeering", "KopfPeering"}
    objs = render(helm, values_files)
    peerings = [o for o in objs if o["kind"] in crds]
    assert peerings
    for obj in peerings:
        crd = crds[obj["kind"]]
        assert obj["apiVersion"] == f"kopf.dev/{crd['spec']['versions'][0]['name']}"
        assert ("namespace" in obj["metadata"]) == (crd["spec"]["scope"] == "Namespaced")
        jsonschema.validate(obj, crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def test_service_monitor_scrapes_the_metrics_service(rendered_all: list[Obj]) -> None:
    """A CRD kind (monitoring.coreos.com/v1): checked against what the Prometheus Operator needs."""
    monitor = one(rendered_all, "ServiceMonitor")
    service = one(rendered_all, "Service", "tksh-operator")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rule = one(rendered_all, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    # the alerts select the scrape job the ServiceMonitor produces: the Service's name
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert any(f'job="{service["metadata"]["name"]}"' in e for e in exprs)


def test_kopf_peering_crds_are_kept_apart_from_the_generated_ones() -> None:
    """`tksh crds --write` owns only *.tksh.kz.yaml: the hand-written kopf-peering.yaml must not count as drift."""
    assert (CRDS / "kopf-peering.yaml").is_file()
    assert not (CRDS / "kopf-peering.yaml").name.endswith(".tksh.kz.yaml")
    assert generate.check_drift(REPO_ROOT) == []


# --- pod security, probes, resources --------------------------------------------------------------------------------


def dockerfile_user() -> int:
    text = (REPO_ROOT / "Dockerfile").read_text()
    (user,) = re.findall(r"^USER\s+(\d+)", text, flags=re.MULTILINE)
    return int(user)


@pytest.mark.parametrize("values_files", values_ids())
def test_pod_security_on_every_workload_and_container(helm: Path, values_files: list[Path]) -> None:
    uid = dockerfile_user()
    objs = render(helm, values_files)
    found = list(workloads(objs))
    assert found
    for workload in found:
        where = f"{workload['kind']} {workload['metadata']['name']}"
        pod = workload["spec"]["template"]["spec"]
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True, where
        assert psc["runAsUser"] == uid, where
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod.get("hostNetwork", False) is False and pod.get("hostPID", False) is False, where
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in containers(workload):
            at = f"{where} container {container['name']}"
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True, at
            assert sc["runAsUser"] == uid, at
            assert sc["allowPrivilegeEscalation"] is False, at
            assert sc["readOnlyRootFilesystem"] is True, at
            assert sc.get("privileged", False) is False, at
            assert sc["capabilities"]["drop"] == ["ALL"], at
            assert not sc["capabilities"].get("add"), at
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, at
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], at
            assert container["resources"]["requests"].keys() >= {"cpu", "memory"}, at
            assert container["resources"]["limits"].keys() >= {"memory"}, at
            ports = {p["name"] for p in container["ports"]}
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", at
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", at
            assert container["livenessProbe"]["httpGet"]["port"] in ports, at
            assert container["readinessProbe"]["httpGet"]["port"] in ports, at


def test_image_runs_the_operator_command(rendered_default: list[Obj], rendered_all: list[Obj]) -> None:
    """The Dockerfile's ENTRYPOINT is `tksh`: the container passes global flags, then the subcommand."""
    assert re.search(r'^ENTRYPOINT \["tksh"\]', (REPO_ROOT / "Dockerfile").read_text(), flags=re.MULTILINE)
    (container,) = one(rendered_default, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "tksh:0.1.0"  # the chart's appVersion
    assert container["args"][-1] == "operator"
    assert "command" not in container
    (container,) = one(rendered_all, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.kz/tksh/tksh:0.1.0"


# --- replicas and peering -------------------------------------------------------------------------------------------


def operator_env(objs: list[Obj]) -> dict[str, Obj]:
    (container,) = one(objs, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    return env_of(container)


def test_two_replicas_with_peering_by_default(rendered_default: list[Obj]) -> None:
    sts = one(rendered_default, "StatefulSet")
    env = operator_env(rendered_default)
    assert sts["spec"]["replicas"] == 2
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    assert env["TKSH_STANDALONE"]["value"] == "false"
    peering = one(rendered_default, "ClusterKopfPeering")
    assert env["TKSH_PEERING_NAME"]["value"] == peering["metadata"]["name"] == "tksh"
    # each replica a distinct priority: its pod index (kopf pauses every replica that shares a priority)
    assert env["TKSH_PRIORITY"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['apps.kubernetes.io/pod-index']"
    )
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    pdb = one(rendered_default, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    # peering rules in the operator's roles
    resources = {r for role in of_kind(rendered_default, "ClusterRole") for rule in role["rules"]
                 for r in rule["resources"]}
    assert "clusterkopfpeerings" in resources


def test_standalone_is_one_replica_without_peering(helm: Path) -> None:
    objs = render(helm, set_values={"operator.replicas": "1", "operator.peering.enabled": "false"})
    env = operator_env(objs)
    assert one(objs, "StatefulSet")["spec"]["replicas"] == 1
    assert env["TKSH_STANDALONE"]["value"] == "true"
    assert "TKSH_PRIORITY" not in env and "TKSH_PEERING_NAME" not in env
    assert not of_kind(objs, "ClusterKopfPeering") and not of_kind(objs, "PodDisruptionBudget")
    for role in of_kind(objs, "ClusterRole"):
        assert all(r["apiGroups"] != ["kopf.dev"] for r in role["rules"]), role["metadata"]["name"]


def test_namespaced_operator_peers_in_each_namespace(helm: Path) -> None:
    objs = render(helm, [VALUES_NAMESPACED])
    env = operator_env(objs)
    assert env["TKSH_NAMESPACES"]["value"] == "tksh-apps,tksh-grants"
    peerings = of_kind(objs, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["tksh-apps", "tksh-grants"]
    assert not of_kind(objs, "ClusterKopfPeering")
    roles = bound_roles(objs, "tksh-operator", NAMESPACE)
    cluster_resources = {r for role in roles if role["kind"] == "ClusterRole" for rule in role["rules"]
                         for r in rule["resources"]}
    assert "clusterkopfpeerings" not in cluster_resources
    peering_roles = [r for r in roles if r["kind"] == "Role"]
    assert sorted(r["metadata"]["namespace"] for r in peering_roles) == ["tksh-apps", "tksh-grants"]
    for role in peering_roles:
        patch = [rule for rule in role["rules"] if "patch" in rule["verbs"]]
        assert patch == [{"apiGroups": ["kopf.dev"], "resources": ["kopfpeerings"], "resourceNames": ["tksh"],
                          "verbs": ["patch"]}]


def test_operator_environment_is_what_the_operator_reads(rendered_all: list[Obj]) -> None:
    """The chart's TKSH_* variables parse with the operator's own OperatorConfig.from_env, to the values given."""
    env = operator_env(rendered_all)
    assert all(name.startswith("TKSH_") or name in ("POD_ID", "EXTRA") for name in env)
    plain = {name: e["value"] for name, e in env.items() if "value" in e}
    # what the downward API and the Secret would give a pod
    plain["TKSH_PRIORITY"] = "1"
    plain["TKSH_LOG_MASK_KEY"] = "secret"
    config = OperatorConfig.from_env(plain)
    assert config.standalone is False
    assert config.peering_name == "tksh"
    assert config.priority == 1
    assert config.ops_port == 8080
    assert (config.smtp_host, config.smtp_port, config.smtp_sender) == ("smtp.example.kz", 587, "tksh@example.kz")
    assert config.administrators_group == "tksh:administrators"
    assert config.administrator_mailbox == "reviews@example.kz"
    assert config.timezone == "Asia/Almaty"
    assert config.namespaces == ()
    secret = env["TKSH_LOG_MASK_KEY"]["valueFrom"]["secretKeyRef"]
    assert secret == {"name": "tksh-log-mask", "key": "mask-key"}


def test_operator_environment_of_the_defaults_parses(rendered_default: list[Obj], helm: Path) -> None:
    plain = {n: e["value"] for n, e in operator_env(rendered_default).items() if "value" in e}
    config = OperatorConfig.from_env({**plain, "TKSH_PRIORITY": "0"})
    assert (config.standalone, config.smtp_port, config.ops_port) == (False, 25, 8080)
    namespaced = {n: e["value"] for n, e in operator_env(render(helm, [VALUES_NAMESPACED])).items() if "value" in e}
    assert OperatorConfig.from_env({**namespaced, "TKSH_PRIORITY": "0"}).namespaces == ("tksh-apps", "tksh-grants")
    with pytest.raises(ConfigError):  # the same parser refuses what the values schema refuses
        OperatorConfig.from_env({**plain, "TKSH_OPS_PORT": "70000"})


# --- values.schema.json ---------------------------------------------------------------------------------------------

BAD_VALUES = [
    pytest.param({"operator.replicas": 2, "operator.peering.enabled": False}, ["/operator/replicas", "want 1"],
                 id="replicas-without-peering"),
    pytest.param({"operator.replicas": 0}, ["/operator/replicas", "minimum"], id="no-replicas"),
    pytest.param({"operator.replicas": "two"}, ["/operator/replicas", "want integer"], id="replicas-not-a-number"),
    pytest.param({"operator.logLevel": "LOUD"}, ["/operator/logLevel", "DEBUG"], id="log-level-enum"),
    pytest.param({"operator.opsPort": 70000}, ["/operator/opsPort", "maximum"], id="port-range"),
    pytest.param({"operator.peering.name": "Bad_Name"}, ["/operator/peering/name", "pattern"], id="peering-name"),
    pytest.param({"operator.namespaces": ["UPPER"]}, ["/operator/namespaces/0", "pattern"], id="namespace-name"),
    pytest.param({"image.pullPolicy": "Sometimes"}, ["/image/pullPolicy", "IfNotPresent"], id="pull-policy"),
    pytest.param({"image.digest": "latest"}, ["/image/digest", "pattern"], id="digest"),
    pytest.param({"operator.smtp.port": -1}, ["/operator/smtp/port", "minimum"], id="smtp-port"),
    pytest.param({"operator.typo": 1}, ["/operator", "typo"], id="unknown-key"),
    pytest.param({"authz.enabled": "maybe"}, ["/authz/enabled", "want boolean"], id="authz-enabled-bool"),
    pytest.param({"metrics.prometheusRule.for.operatorDown": "5 minutes"},
                 ["/metrics/prometheusRule/for/operatorDown", "pattern"], id="alert-duration"),
    pytest.param({"networkPolicy.apiServer.ports": []}, ["/networkPolicy/apiServer/ports", "minItems"],
                 id="api-server-ports"),
    pytest.param({"operator.resources": "small"}, ["/operator/resources", "want object"], id="resources-type"),
]


@pytest.mark.parametrize(("values", "expected"), BAD_VALUES)
def test_schema_refuses_bad_values(helm: Path, values: dict[str, Any], expected: list[str]) -> None:
    extra = [arg for key, value in values.items() for arg in ("--set-json", f"{key}={json.dumps(value)}")]
    proc = run_helm(helm, template_args(extra=extra), check=False)
    assert proc.returncode != 0, f"accepted {values}"
    message = proc.stderr
    assert "values don't meet the specifications of the schema" in message
    for fragment in expected:
        assert fragment in message, message


def test_replicas_without_peering_are_refused_by_the_template_too(helm: Path) -> None:
    """Even with the schema skipped, the template refuses it with a message that says why."""
    values = {"operator.replicas": "2", "operator.peering.enabled": "false"}
    proc = run_helm(helm, template_args(set_values=values, extra=["--skip-schema-validation"]), check=False)
    assert proc.returncode != 0
    assert "operator.replicas: more than 1 replica needs operator.peering.enabled=true" in proc.stderr


def test_schema_documents_every_value() -> None:
    """Every key of values.yaml is declared in values.schema.json (so none is accepted unchecked)."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = yaml.safe_load((CHART / "values.schema.json").read_text())

    def walk(value: Any, node: dict[str, Any], path: str) -> None:
        if isinstance(value, dict) and node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, f"{path}: unknown keys must be refused"
            for key, sub in value.items():
                assert key in node["properties"], f"{path}.{key} is not in values.schema.json"
                walk(sub, node["properties"][key], f"{path}.{key}")

    walk(values, schema, "")
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(values, schema)


# --- labels, selectors, network policy ------------------------------------------------------------------------------


def test_labels_and_selectors(rendered_all: list[Obj]) -> None:
    for obj in rendered_all:
        labels = obj["metadata"]["labels"]
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                    "app.kubernetes.io/managed-by", "app.kubernetes.io/part-of", "helm.sh/chart"):
            assert key in labels, f"{obj['kind']} {obj['metadata']['name']} lacks {key}"
    for workload in workloads(rendered_all):
        pod_labels = workload["spec"]["template"]["metadata"]["labels"]
        assert workload["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        component = pod_labels["app.kubernetes.io/component"]
        service = one(rendered_all, "Service", workload["metadata"]["name"])
        assert service["spec"]["selector"].items() <= pod_labels.items()
        assert service["spec"]["selector"]["app.kubernetes.io/component"] == component
        policy = one(rendered_all, "NetworkPolicy", workload["metadata"]["name"])
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    # the operator and the decision point select only their own pods
    operator = one(rendered_all, "Service", "tksh-operator")["spec"]["selector"]
    authz_pods = one(rendered_all, "Deployment", "tksh-authz")["spec"]["template"]["metadata"]["labels"]
    assert not operator.items() <= authz_pods.items()


def test_operator_network_policy(rendered_default: list[Obj], rendered_all: list[Obj]) -> None:
    policy = one(rendered_default, "NetworkPolicy", "tksh-operator")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"port": "ops", "protocol": "TCP"}]  # the metrics (ops) port only
    assert ingress["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    egress_ports = [sorted((p["port"], p["protocol"]) for p in rule["ports"]) for rule in policy["egress"]]
    assert egress_ports == [[(53, "TCP"), (53, "UDP")], [(443, "TCP"), (6443, "TCP")], [(25, "TCP")]]
    assert policy["egress"][0]["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert "to" not in policy["egress"][1] and "to" not in policy["egress"][2]  # any address on those ports
    narrowed = one(rendered_all, "NetworkPolicy", "tksh-operator")["spec"]
    assert narrowed["egress"][1]["to"] == [{"ipBlock": {"cidr": "10.0.0.10/32"}}]
    assert narrowed["egress"][2] == {"ports": [{"port": 587, "protocol": "TCP"}],
                                     "to": [{"ipBlock": {"cidr": "192.0.2.25/32"}}]}
    (container,) = one(rendered_default, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    assert {p["name"] for p in container["ports"]} == {"ops"}


def test_network_policy_can_be_turned_off(helm: Path) -> None:
    assert not of_kind(render(helm, set_values={"networkPolicy.enabled": "false"}), "NetworkPolicy")


def test_human_roles(rendered_default: list[Obj], rendered_all: list[Obj]) -> None:
    kinds = {crd["spec"]["names"]["plural"] for crd in crd_documents() if crd["spec"]["group"] == "tksh.kz"}
    viewer = one(rendered_default, "ClusterRole", "tksh-viewer")
    (rule,) = viewer["rules"]
    assert (rule["apiGroups"], set(rule["resources"]), rule["verbs"]) == (["tksh.kz"], kinds, ["get", "list", "watch"])
    for verb in ("view", "edit", "admin"):
        assert viewer["metadata"]["labels"][f"rbac.authorization.k8s.io/aggregate-to-{verb}"] == "true"
    admin = one(rendered_default, "ClusterRole", "tksh-admin")
    (rule,) = admin["rules"]
    assert set(rule["resources"]) == kinds  # no status subresource: that is the operator's
    assert {"create", "update", "patch", "delete"} <= set(rule["verbs"])
    assert not any(k.startswith("rbac.authorization.k8s.io/aggregate") for k in admin["metadata"]["labels"])
    binding = one(rendered_default, "ClusterRoleBinding", "tksh-admin")
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                    "name": "tksh:administrators"}]
    aggregated = one(rendered_all, "ClusterRole", "tksh-admin")["metadata"]["labels"]
    assert aggregated["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"


def test_notes_tell_what_runs_and_how_to_upgrade_crds(helm: Path) -> None:
    args = ["install", "tksh", str(CHART), "--namespace", NAMESPACE, "--dry-run=client"]
    notes = run_helm(helm, args).stdout.split("NOTES:", 1)[1]
    assert "kopf peering \"tksh\" on" in notes
    assert "kubectl apply --server-side -f charts/tksh/crds/" in notes
    assert "`tksh authz` is not deployed (authz.enabled=false" in notes
    standalone = run_helm(helm, [*args, "--set", "operator.replicas=1", "--set", "operator.peering.enabled=false"])
    assert "standalone (no peering): one replica." in standalone.stdout
