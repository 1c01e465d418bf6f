"""The ``kfp.Client`` connection options shared by ``submit`` and ``schedule --target kfp``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from workbench_dsl.schedule.kfp_client import KfpConnection

HOST = typer.Option(
    None,
    "--host",
    envvar="KF_PIPELINES_ENDPOINT",
    help="The KFP API URL (e.g. http://localhost:8080 after `kubectl port-forward`); "
    "default [cluster] host in workbench.toml.",
)
NAMESPACE = typer.Option(
    None, "--namespace", help="Your profile namespace on a multi-user KFP (kfp.Client namespace)."
)
TOKEN = typer.Option(
    None, "--token", envvar="KFP_TOKEN", help="Bearer token (kfp.Client existing_token)."
)
COOKIES = typer.Option(
    None, "--cookies", help="Cookie header for the API, e.g. 'authservice_session=...'."
)
SSL_CA_CERT = typer.Option(None, "--ssl-ca-cert", help="CA bundle to verify the host's TLS.")
PROXY = typer.Option(None, "--proxy", help="HTTP(S) proxy for the API.")
CLIENT_ID = typer.Option(None, "--client-id", help="IAP OAuth client id (kfp.Client client_id).")
OTHER_CLIENT_ID = typer.Option(None, "--other-client-id", help="kfp.Client other_client_id.")
OTHER_CLIENT_SECRET = typer.Option(
    None, "--other-client-secret", help="kfp.Client other_client_secret."
)
NO_VERIFY_SSL = typer.Option(False, "--no-verify-ssl", help="Do not verify the host's TLS.")
KFP_VERSION = typer.Option(
    None,
    "--kfp-version",
    help="The KFP version the server runs, when its healthz reports none (custom builds): "
    "from 2.16 deletes keep runs in flight (propagation_policy ORPHAN).",
)


def connection(
    host: str | None,
    namespace: str | None = None,
    token: str | None = None,
    cookies: str | None = None,
    ssl_ca_cert: str | None = None,
    proxy: str | None = None,
    client_id: str | None = None,
    other_client_id: str | None = None,
    other_client_secret: str | None = None,
    no_verify_ssl: bool = False,
    kfp_version: str | None = None,
) -> KfpConnection:
    """A connection from the options, with ``[cluster]`` in workbench.toml as defaults."""
    from workbench_dsl.config import load_config
    from workbench_dsl.errors import UsageError
    from workbench_dsl.schedule.kfp_client import KfpConnection, parse_version

    if ssl_ca_cert is not None and not Path(ssl_ca_cert).expanduser().is_file():
        raise UsageError(f"--ssl-ca-cert {ssl_ca_cert}: no such file; give the CA bundle (PEM)")
    if kfp_version is not None and parse_version(kfp_version) is None:
        raise UsageError(f"--kfp-version {kfp_version!r}: give a release, e.g. 2.16 or 2.17.0")
    cfg = load_config()
    host = host or cfg.get("cluster", "host")
    if not host:
        raise UsageError(
            "--host is required: the KFP API URL (or set [cluster] host in workbench.toml)"
        )
    return KfpConnection(
        host=str(host),
        namespace=namespace,
        token=token,
        cookies=cookies,
        ssl_ca_cert=ssl_ca_cert,
        proxy=proxy,
        client_id=client_id,
        other_client_id=other_client_id,
        other_client_secret=other_client_secret,
        verify_ssl=False if no_verify_ssl else None,
        kfp_version=kfp_version,
    )
