"""How the operator connects: an explicit server, a kubeconfig file, or the cluster's own credentials."""

from __future__ import annotations

from typing import Any

import kopf

from tksh.handlers import Context


def connection_from_kubeconfig(path: str) -> kopf.ConnectionInfo:
    """The current context of a kubeconfig file as kopf credentials (certificates, token, CA)."""
    import kubernetes

    client_config = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=path, client_configuration=client_config)  # type: ignore[no-untyped-call]
    # The client keeps a kubeconfig's token under "BearerToken" (v37) or "authorization" (older).
    header = (
        client_config.get_api_key_with_prefix("BearerToken")
        or client_config.get_api_key_with_prefix("authorization")
        or ""
    )
    scheme, _, token = header.partition(" ")
    return kopf.ConnectionInfo(
        server=client_config.host,
        ca_path=client_config.ssl_ca_cert,
        insecure=not client_config.verify_ssl,
        scheme=scheme or None,
        token=token or None,
        certificate_path=client_config.cert_file,
        private_key_path=client_config.key_file,
        default_namespace="default",
    )


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    @kopf.on.login(registry=registry, id="login")
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        if ctx.config.server:
            return kopf.ConnectionInfo(server=ctx.config.server, default_namespace="default")
        if ctx.config.kubeconfig:
            return connection_from_kubeconfig(ctx.config.kubeconfig)
        # In a cluster: the pod's service account; on a workstation: $KUBECONFIG or ~/.kube/config.
        return kopf.login_via_client(**kwargs)
