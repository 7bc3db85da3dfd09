"""The chart's validating admission webhook, offline: the webhook configuration, its Service and the operator's
side of it, both TLS modes (the pair Helm generates, cert-manager), the values that shape it and the ones the
schema refuses; and the operator serving the chart's own certificate over TLS (on the embedded API server)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import json
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tests.integration.backends import running
from tksh import VERSION
from tksh.config import OperatorConfig
from tksh.sandbox.apiserver import EmbeddedAPIServer, project_crd_paths

from .helpers import CHART, NAMESPACE, Obj, crd_documents, env_of, of_kind, one, render, run_helm, template_args
from .webhook_tls import (
    SERVICE_DNS_NAMES,
    SERVICE_HOSTNAME,
    WEBHOOK_SERVICE,
    admission_review,
    certificate,
    dns_names,
    make_pair,
    post_over_tls,
    secret_pair,
    verify_server_certificate,
)

WEBHOOKS = {"review.tksh.kz": ("digitalobjects", "/review"), "accessgrants.tksh.kz": ("accessgrants", "/accessgrants")}
CERT_MANAGER = {"admission.certManager.enabled": "true"}
ADMINS = "tksh:administrators"


def webhooks(objs: list[Obj]) -> dict[str, Obj]:
    config = one(objs, "ValidatingWebhookConfiguration", WEBHOOK_SERVICE)
    return {w["name"]: w for w in config["webhooks"]}


def operator_container(objs: list[Obj]) -> Obj:
    (container,) = one(objs, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    return dict(container)


# --- the webhook configuration and the Service ----------------------------------------------------------------------


def test_webhooks_point_at_the_service_over_the_operator_pods(rendered_default: list[Obj]) -> None:
    found = webhooks(rendered_default)
    assert set(found) == set(WEBHOOKS)
    service = one(rendered_default, "Service", WEBHOOK_SERVICE)
    assert service["spec"]["type"] == "ClusterIP" and "clusterIP" not in service["spec"]  # not headless
    (port,) = service["spec"]["ports"]
    sts = one(rendered_default, "StatefulSet")
    assert service["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    container_ports = {p["name"]: p["containerPort"] for p in operator_container(rendered_default)["ports"]}
    assert port["targetPort"] == "webhook" and container_ports["webhook"] == 9443
    for name, (resource, path) in WEBHOOKS.items():
        hook = found[name]
        assert hook["clientConfig"]["service"] == {"name": WEBHOOK_SERVICE, "namespace": NAMESPACE, "path": path,
                                                  "port": port["port"]}
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["sideEffects"] == "None"
        assert hook["failurePolicy"] == "Fail"
        assert hook["matchPolicy"] == "Equivalent"
        assert hook["timeoutSeconds"] == 10
        assert hook["namespaceSelector"] == {} and hook["objectSelector"] == {}
        (rule,) = hook["rules"]
        assert rule == {"apiGroups": ["tksh.kz"], "apiVersions": [VERSION], "resources": [resource],
                        "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"}


def test_webhook_rules_match_the_crds() -> None:
    """Each rule names a served version and the plural of a namespaced CRD: a typo would match nothing."""
    crds = {c["spec"]["names"]["plural"]: c for c in crd_documents() if c["spec"]["group"] == "tksh.kz"}
    for resource, _ in WEBHOOKS.values():
        crd = crds[resource]
        assert crd["spec"]["scope"] == "Namespaced"
        served = {v["name"] for v in crd["spec"]["versions"] if v["served"]}
        assert VERSION in served, (resource, served)


def test_the_webhook_path_is_the_kopf_handler_id() -> None:
    """kopf serves a validating handler at /<id>: the review webhook's path is the handler's id."""
    from tksh.handlers.admission import WEBHOOK_ID

    assert WEBHOOKS["review.tksh.kz"][1] == f"/{WEBHOOK_ID}"


def test_operator_serves_the_webhook_with_the_mounted_pair(rendered_default: list[Obj]) -> None:
    pod = one(rendered_default, "StatefulSet")["spec"]["template"]["spec"]
    container = operator_container(rendered_default)
    env = {k: v["value"] for k, v in env_of(container).items() if "value" in v}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    mount = mounts["admission-tls"]
    assert mount["readOnly"] is True
    secret = volumes["admission-tls"]["secret"]
    assert secret["secretName"] == f"{WEBHOOK_SERVICE}-tls"
    assert secret["defaultMode"] == 0o440  # owner and the pod's group (fsGroup) only
    assert {i["key"]: i["path"] for i in secret["items"]} == {"tls.crt": "tls.crt", "tls.key": "tls.key"}
    assert env["TKSH_ADMISSION_PORT"] == "9443"
    assert env["TKSH_ADMISSION_CERTFILE"] == f"{mount['mountPath']}/tls.crt"
    assert env["TKSH_ADMISSION_KEYFILE"] == f"{mount['mountPath']}/tls.key"
    assert env["TKSH_ADMISSION_TIMEOUT"] == "10"  # the API server's wait: the webhook's reads take half of it
    assert "TKSH_ADMISSION_INSECURE" not in env and "TKSH_ADMISSION_ADDR" not in env  # TLS, every interface


def test_values_reach_every_webhook(helm: Path) -> None:
    selector = {"matchLabels": {"tksh.kz/checked": "yes"}}
    extra = ["--set-json", f"admission.namespaceSelector={json.dumps(selector)}",
             "--set-json", 'admission.objectSelector={"matchExpressions":[{"key":"x","operator":"Exists"}]}']
    objs = render(helm, set_values={"admission.failurePolicy": "Ignore", "admission.timeoutSeconds": "5",
                                    "admission.port": "10443", "admission.service.port": "8443"}, extra=extra)
    for hook in webhooks(objs).values():
        assert (hook["failurePolicy"], hook["timeoutSeconds"]) == ("Ignore", 5)
        assert hook["namespaceSelector"] == selector
        assert hook["objectSelector"] == {"matchExpressions": [{"key": "x", "operator": "Exists"}]}
        assert hook["clientConfig"]["service"]["port"] == 8443
    assert one(objs, "Service", WEBHOOK_SERVICE)["spec"]["ports"][0]["port"] == 8443
    container = operator_container(objs)
    assert {p["name"]: p["containerPort"] for p in container["ports"]}["webhook"] == 10443
    assert env_of(container)["TKSH_ADMISSION_PORT"]["value"] == "10443"
    assert env_of(container)["TKSH_ADMISSION_TIMEOUT"]["value"] == "5"


def test_network_policy_lets_the_api_server_reach_the_webhook(rendered_default: list[Obj], helm: Path) -> None:
    ingress = one(rendered_default, "NetworkPolicy", "tksh-operator")["spec"]["ingress"]
    webhook_rules = [r for r in ingress if {"port": "webhook", "protocol": "TCP"} in r["ports"]]
    assert webhook_rules == [{"ports": [{"port": "webhook", "protocol": "TCP"}]}]  # from anywhere by default
    peer = {"ipBlock": {"cidr": "10.0.0.0/8"}}
    objs = render(helm, extra=["--set-json", f"admission.networkPolicy.from={json.dumps([peer])}"])
    ingress = one(objs, "NetworkPolicy", "tksh-operator")["spec"]["ingress"]
    assert [r.get("from") for r in ingress if r["ports"][0]["port"] == "webhook"] == [[peer]]


def test_admission_off_renders_none_of_it(helm: Path) -> None:
    for extra in ({}, CERT_MANAGER):
        objs = render(helm, set_values={"admission.enabled": "false", **extra})
        kinds = {o["kind"] for o in objs}
        assert not kinds & {"ValidatingWebhookConfiguration", "Secret", "Certificate", "Issuer"}, kinds
        assert not [s for s in of_kind(objs, "Service") if s["metadata"]["name"] == WEBHOOK_SERVICE]
        container = operator_container(objs)
        assert not [name for name in env_of(container) if name.startswith("TKSH_ADMISSION")]
        assert {p["name"] for p in container["ports"]} == {"ops"}
        volumes = one(objs, "StatefulSet")["spec"]["template"]["spec"]["volumes"]
        assert "admission-tls" not in {v["name"] for v in volumes}
        (ingress,) = one(objs, "NetworkPolicy", "tksh-operator")["spec"]["ingress"]
        assert ingress["ports"] == [{"port": "ops", "protocol": "TCP"}]


# --- TLS: the pair Helm generates -----------------------------------------------------------------------------------


def test_generated_certificate_covers_the_service_and_the_ca_bundle_verifies_it(rendered_default: list[Obj]) -> None:
    secret = one(rendered_default, "Secret", f"{WEBHOOK_SERVICE}-tls")
    assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}  # the CA's private key is not kept
    pair = secret_pair(rendered_default)
    cert = certificate(pair.cert)
    assert len(x509.load_pem_x509_certificates(pair.ca)) == 1  # a fresh install trusts one CA
    assert dns_names(cert) == SERVICE_DNS_NAMES
    for name in SERVICE_DNS_NAMES:
        verify_server_certificate(pair, name)
    with pytest.raises(Exception, match=r"(?i)subject|name"):
        verify_server_certificate(pair, "tksh-admission.other-namespace.svc")
    # the caBundle of every webhook is the Secret's CA, and that CA is what signed the certificate
    for hook in webhooks(rendered_default).values():
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == pair.ca
    ca = certificate(pair.ca)
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # the key in the Secret is the certificate's key
    assert load_pem_private_key(pair.key, None).public_key() == cert.public_key()
    # valid for admission.generatedCert.validityDays (3650), and the annotation that upgrades read says when it ends
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    assert 3649 <= days <= 3650
    noted = datetime.datetime.fromisoformat(secret["metadata"]["annotations"]["tksh.kz/certificate-not-after"])
    assert abs(noted - cert.not_valid_after_utc) < datetime.timedelta(minutes=5)


def test_generated_certificate_validity_is_a_value(helm: Path) -> None:
    objs = render(helm, set_values={"admission.generatedCert.validityDays": "100"})
    cert = certificate(secret_pair(objs).cert)
    assert 99 <= (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 100
    # verification fails past the end: the check above can fail
    with pytest.raises(Exception, match=r"(?i)expired|validity|not valid"):
        verify_server_certificate(secret_pair(objs), SERVICE_HOSTNAME,
                                  at=cert.not_valid_after_utc + datetime.timedelta(days=1))


def test_release_and_namespace_name_the_certificate(helm: Path) -> None:
    objs = render(helm, release="prod", namespace="control")
    pair = secret_pair(objs, name="prod-tksh-admission-tls")
    assert dns_names(certificate(pair.cert)) == [
        "prod-tksh-admission", "prod-tksh-admission.control", "prod-tksh-admission.control.svc",
        "prod-tksh-admission.control.svc.cluster.local",
    ]
    service = one(objs, "Service", "prod-tksh-admission")["metadata"]
    assert service["namespace"] == "control"
    verify_server_certificate(pair, "prod-tksh-admission.control.svc")


# --- TLS: cert-manager ----------------------------------------------------------------------------------------------


def test_cert_manager_issues_the_certificate_from_a_ca_of_the_release(helm: Path) -> None:
    objs = render(helm, set_values=CERT_MANAGER)
    assert not of_kind(objs, "Secret")  # cert-manager makes it
    issuers = {i["metadata"]["name"]: i for i in of_kind(objs, "Issuer")}
    certs = {c["metadata"]["name"]: c for c in of_kind(objs, "Certificate")}
    assert set(issuers) == {f"{WEBHOOK_SERVICE}-selfsigned", f"{WEBHOOK_SERVICE}-ca"}
    assert set(certs) == {f"{WEBHOOK_SERVICE}-ca", WEBHOOK_SERVICE}
    for obj in [*issuers.values(), *certs.values()]:
        assert obj["apiVersion"] == "cert-manager.io/v1" and obj["metadata"]["namespace"] == NAMESPACE
    assert issuers[f"{WEBHOOK_SERVICE}-selfsigned"]["spec"] == {"selfSigned": {}}
    ca = certs[f"{WEBHOOK_SERVICE}-ca"]["spec"]
    assert ca["isCA"] is True and ca["duration"] == "87600h"
    assert ca["issuerRef"] == {"name": f"{WEBHOOK_SERVICE}-selfsigned", "kind": "Issuer", "group": "cert-manager.io"}
    assert issuers[f"{WEBHOOK_SERVICE}-ca"]["spec"] == {"ca": {"secretName": ca["secretName"]}}
    serving = certs[WEBHOOK_SERVICE]["spec"]
    assert serving["dnsNames"] == SERVICE_DNS_NAMES
    assert "isCA" not in serving and "server auth" in serving["usages"]
    assert (serving["duration"], serving["renewBefore"]) == ("8760h", "720h")
    assert serving["privateKey"]["rotationPolicy"] == "Always"
    assert serving["issuerRef"] == {"name": f"{WEBHOOK_SERVICE}-ca", "kind": "Issuer", "group": "cert-manager.io"}
    # the operator mounts the Secret cert-manager writes; the CA injector fills the caBundle from that Certificate
    volumes = {v["name"]: v for v in one(objs, "StatefulSet")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["admission-tls"]["secret"]["secretName"] == serving["secretName"] == f"{WEBHOOK_SERVICE}-cert"
    config = one(objs, "ValidatingWebhookConfiguration", WEBHOOK_SERVICE)
    assert config["metadata"]["annotations"] == {"cert-manager.io/inject-ca-from": f"{NAMESPACE}/{WEBHOOK_SERVICE}"}
    assert all("caBundle" not in w["clientConfig"] for w in config["webhooks"])


def test_cert_manager_with_an_existing_issuer(helm: Path) -> None:
    ref = {"name": "cluster-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    extra = ["--set-json", f"admission.certManager.issuerRef={json.dumps(ref)}"]
    objs = render(helm, set_values=CERT_MANAGER, extra=extra)
    assert not of_kind(objs, "Issuer")
    (cert,) = of_kind(objs, "Certificate")
    assert cert["metadata"]["name"] == WEBHOOK_SERVICE and cert["spec"]["issuerRef"] == ref


# --- values.schema.json and the template's own checks ---------------------------------------------------------------

BAD_ADMISSION_VALUES = [
    pytest.param({"admission.enabled": "yes"}, ["/admission/enabled", "want boolean"], id="enabled-bool"),
    pytest.param({"admission.failurePolicy": "Sometimes"}, ["/admission/failurePolicy", "Fail"], id="failure-policy"),
    pytest.param({"admission.timeoutSeconds": 31}, ["/admission/timeoutSeconds", "maximum"], id="timeout-max"),
    pytest.param({"admission.timeoutSeconds": 0}, ["/admission/timeoutSeconds", "minimum"], id="timeout-min"),
    pytest.param({"admission.port": 443}, ["/admission/port", "minimum"], id="privileged-port"),
    pytest.param({"admission.service.port": 70000}, ["/admission/service/port", "maximum"], id="service-port"),
    pytest.param({"admission.namespaceSelector": {"matchLabel": {"a": "b"}}}, ["/admission/namespaceSelector",
                                                                              "matchLabel"], id="selector-typo"),
    pytest.param({"admission.objectSelector": {"matchExpressions": [{"key": "a", "operator": "Equals"}]}},
                 ["/admission/objectSelector/matchExpressions/0/operator", "In"], id="selector-operator"),
    pytest.param({"admission.generatedCert.validityDays": 30}, ["/admission/generatedCert/validityDays", "minimum"],
                 id="validity-too-short"),
    pytest.param({"admission.certManager.duration": "1 year"}, ["/admission/certManager/duration", "pattern"],
                 id="cert-manager-duration"),
    pytest.param({"admission.certManager.issuerRef": {"kind": "ClusterIssuer"}},
                 ["/admission/certManager/issuerRef", "name"], id="issuer-without-name"),
    pytest.param({"admission.tls": {}}, ["/admission", "tls"], id="unknown-key"),
]


@pytest.mark.parametrize(("values", "expected"), BAD_ADMISSION_VALUES)
def test_schema_refuses_bad_admission_values(helm: Path, values: dict[str, Any], expected: list[str]) -> None:
    extra = [arg for key, value in values.items() for arg in ("--set-json", f"{key}={json.dumps(value)}")]
    proc = run_helm(helm, template_args(extra=extra), check=False)
    assert proc.returncode != 0, f"accepted {values}"
    assert "values don't meet the specifications of the schema" in proc.stderr
    for fragment in expected:
        assert fragment in proc.stderr, proc.stderr


def test_webhook_port_must_differ_from_the_ops_port(helm: Path) -> None:
    proc = run_helm(helm, template_args(set_values={"admission.port": "8080"}), check=False)
    assert proc.returncode != 0
    assert "admission.port: 8080 is already operator.opsPort" in proc.stderr


def test_notes_tell_how_the_webhook_is_served(helm: Path) -> None:
    args = ["install", "tksh", str(CHART), "--namespace", NAMESPACE, "--dry-run=client"]
    notes = run_helm(helm, args).stdout.split("NOTES:", 1)[1]
    assert "ValidatingWebhookConfiguration tksh-admission" in notes and "failurePolicy Fail" in notes
    assert "Secret tksh-admission-tls" in notes
    off = run_helm(helm, [*args, "--set", "admission.enabled=false"]).stdout.split("NOTES:", 1)[1]
    assert "spec.review is guarded by RBAC alone" in off


# --- the operator serves the chart's certificate --------------------------------------------------------------------


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def application(review: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"owner": {"bin": "140540001231", "name": "Test", "subjectType": "PropertyOwnersAssociation",
                                      "email": "owner@example.kz"}, "categories": [2]}
    if review is not None:
        spec["review"] = review
    return {"apiVersion": f"tksh.kz/{VERSION}", "kind": "DigitalObject",
            "metadata": {"name": "osi", "namespace": "apps"}, "spec": spec}


async def test_operator_serves_the_chart_certificate_to_the_service_name(
    rendered_default: list[Obj], tmp_path: Path, wait_until: Callable[..., Awaitable[Any]]
) -> None:
    """The operator, given the chart's Secret as the pod mounts it, answers over TLS that a client verifies with the
    webhook configuration's caBundle for the Service's name, exactly as the API server does in a cluster."""
    pair = secret_pair(rendered_default)
    ca = base64.b64decode(webhooks(rendered_default)["review.tksh.kz"]["clientConfig"]["caBundle"])
    certfile, keyfile = pair.write(tmp_path / "admission")
    port = free_port()
    async with EmbeddedAPIServer(crd_paths=project_crd_paths()) as api:
        config = OperatorConfig(server=api.url, ops_host="127.0.0.1", ops_port=0, standalone=True, fast=True,
                                admission_port=port, admission_addr="127.0.0.1", admission_certfile=str(certfile),
                                admission_keyfile=str(keyfile))
        async with running(config):
            approved = application({"decision": "Approved", "reviewer": "aigerim"})
            applicant = {"username": "owner", "groups": ["system:authenticated"]}
            admin = {"username": "aigerim", "groups": ["system:authenticated", ADMINS]}

            def call(userinfo: dict[str, Any], hostname: str = SERVICE_HOSTNAME, cadata: bytes = ca) -> dict[str, Any]:
                review = admission_review(uid="u-1", userinfo=userinfo, new=approved, old=application())
                status, body = post_over_tls(port, "/review", review, ca=cadata, server_hostname=hostname)
                assert status == 200, body
                return dict(body["response"])

            async def served() -> None:
                try:
                    answers.append(await asyncio.to_thread(call, applicant))
                except ssl.SSLError:
                    raise  # a TLS failure is not "not yet"
                except OSError as exc:
                    raise AssertionError(f"not listening yet: {exc}") from exc

            answers: list[dict[str, Any]] = []
            await wait_until(served)
            refused = answers[-1]
            assert refused["allowed"] is False and refused["status"]["code"] == 403
            assert refused["status"]["message"].startswith("spec.review: ")
            assert (await asyncio.to_thread(call, admin))["allowed"] is True
            # the same server is not trusted under another name, nor with another CA
            with pytest.raises(ssl.SSLCertVerificationError, match=r"(?i)hostname|match"):
                await asyncio.to_thread(call, admin, "tksh-admission.elsewhere.svc")
            with pytest.raises(ssl.SSLCertVerificationError, match=r"(?i)unknown ca|issuer|self.signed"):
                await asyncio.to_thread(call, admin, SERVICE_HOSTNAME, make_pair(["other"]).ca)


def test_an_equivalent_pair_for_loopback(rendered_default: list[Obj]) -> None:
    """The real-API-server test uses a pair with the chart's names plus 127.0.0.1 (its API server has no cluster
    network to reach a Service): the same names as the chart's certificate, verifiable the same way."""
    chart = certificate(secret_pair(rendered_default).cert)
    loopback = make_pair(dns_names(chart), ["127.0.0.1"])
    assert dns_names(certificate(loopback.cert)) == dns_names(chart)
    verify_server_certificate(loopback, SERVICE_HOSTNAME)
