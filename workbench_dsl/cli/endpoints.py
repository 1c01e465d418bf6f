"""``workbench endpoints``: the model endpoints deployed by ``@serve`` / ``deploy`` steps.

Local endpoints are KServe model servers on 127.0.0.1 that outlive the run;
``up`` starts the recorded ones again (after a reboot, say), ``stop`` frees the
port. ``--namespace`` acts on a cluster's InferenceServices instead (kube config).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from workbench_dsl.cli._common import handle_errors, print_json

if TYPE_CHECKING:
    from workbench_dsl.backends.deployer import Deployer
    from workbench_dsl.backends.deployer.local import LocalDeployer

ORDER = 62

endpoints_app = typer.Typer(
    name="endpoints",
    help="Model endpoints: list, predict, promote or roll back a canary, drift, stop, up.",
    no_args_is_help=True,
)

NAMESPACE_HELP = "Act on the KServe InferenceService in this namespace (cluster) instead"


def _local() -> LocalDeployer:
    from workbench_dsl.backends.deployer import local_deployer

    return local_deployer()


def _deployer(namespace: str | None) -> Deployer:
    from workbench_dsl.backends.deployer import kserve_deployer

    return kserve_deployer(namespace) if namespace else _local()


def _errors(fn: Any) -> Any:
    """Deployment problems are the user's to act on: one line, exit 1."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from workbench_dsl.backends.deployer import DeployError
        from workbench_dsl.errors import JobFailed

        try:
            return fn(*args, **kwargs)
        except DeployError as e:
            from workbench_dsl.backends.deployer.local import EndpointNotFound
            from workbench_dsl.errors import UsageError

            raise (UsageError if isinstance(e, EndpointNotFound) else JobFailed)(str(e)) from None

    return handle_errors(wrapper)


#: States in which a local endpoint answers requests (a sleeping one after its cold start).
ANSWERING = ("running", "scaled to zero", "starting")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _scale_line(info: Any, *, detail: bool) -> str | None:
    """How a local endpoint scales, when it scales to zero (and, with ``detail``, idle/cost)."""
    scale = getattr(info, "scale", None)
    if scale is None:
        return None
    parts = []
    if scale.min_replicas == 0:
        parts.append(f"scales to zero after {scale.scale_to_zero_after}s idle")
        parts.append(
            f"cold start last {_seconds(scale.last_cold_start_s)}, "
            f"median {_seconds(scale.median_cold_start_s)} ({scale.cold_starts})"
        )
        if scale.last_cold_start_error:
            parts.append(f"last cold start failed: {scale.last_cold_start_error}")
    if detail and scale.idle_ratio is not None:
        minutes = (scale.idle_window_s or 0) / 60
        parts.append(f"idle {scale.idle_ratio:.0%} of the last {minutes:g} min")
    if detail and scale.cost_per_hour:
        parts.append(f"${scale.cost_per_hour:g}/hour while running")
    return "; ".join(parts) if parts else None


def _print_endpoint(info: Any, *, detail: bool = False) -> None:
    split = f"{info.stable} 100%" if info.stable else "no revision serving"
    if info.canary:
        split = f"{info.stable} {100 - info.canary_percent}%, canary {info.canary} {info.canary_percent}%"
    auth = "  (bearer token)" if info.auth == "token" else ""
    typer.echo(f"{info.name}  {info.state}  {info.url}{auth}\n    {split}")
    line = _scale_line(info, detail=detail)
    if line:
        typer.echo(f"    {line}")


@endpoints_app.command("list")
@_errors
def list_endpoints(
    namespace: str | None = typer.Option(None, "--namespace", help=NAMESPACE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List endpoints: URL, state, revisions and the canary split."""
    infos = _deployer(namespace).list()
    if as_json:
        print_json([i.to_json() for i in infos])
        return
    if not infos:
        typer.echo("no endpoints (a @serve or deploy step creates them)")
        return
    for info in infos:
        _print_endpoint(info)


@endpoints_app.command("show")
@_errors
def show_endpoint(
    name: str = typer.Argument(
        ..., metavar="NAME", help="The endpoint's name (see: workbench endpoints list)."
    ),
    namespace: str | None = typer.Option(None, "--namespace", help=NAMESPACE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one endpoint, how it scales (cold starts, idle share) and every revision deployed to it."""
    info = _deployer(namespace).get(name)
    if as_json:
        print_json(info.to_json())
        return
    _print_endpoint(info, detail=True)
    for r in info.revisions:
        error = f"  {r['error']}" if r.get("error") else ""
        typer.echo(f"    {r['revision']}  {r['state']}  {r['model_uri']}{error}")
        if r.get("kind") == "llm":
            knobs = "  ".join(f"{k}={v}" for k, v in sorted((r.get("llm") or {}).items()))
            typer.echo(f"      kind llm  {knobs}".rstrip())


@endpoints_app.command("predict")
@_errors
def predict(
    name: str = typer.Argument(
        ..., metavar="NAME", help="The endpoint's name (see: workbench endpoints list)."
    ),
    data: str = typer.Option(
        ...,
        "--data",
        "-d",
        help="JSON: a list of instances ([[1.0, 2.0]]), a whole V1/V2 request, or @file.json",
    ),
    token: str | None = typer.Option(
        None, "--token", envvar="WORKBENCH_ENDPOINT_TOKEN", help="Bearer token (auth='token')."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the whole JSON reply."),
) -> None:
    """Send a prediction request to a local endpoint and print the reply."""
    from workbench_dsl.cli._predict_request import read_data, request_body
    from workbench_dsl.errors import JobFailed

    value = read_data(data)
    deployer = _local()
    info = deployer.get(name)
    if info.state not in ANSWERING:
        what = "does not answer" if info.state == "not answering" else "is not running"
        raise JobFailed(f"endpoint {name} {what}; start it with `workbench endpoints up {name}`")
    status, reply, revision = deployer.predict(
        name, request_body(value, info.protocol), token=token
    )
    if status >= 400:
        detail = reply.get("error", reply) if isinstance(reply, dict) else reply
        raise JobFailed(f"HTTP {status}: {detail}")
    if as_json:
        print_json(reply)
    else:
        outputs = reply.get("predictions") if isinstance(reply, dict) else None
        if outputs is None and isinstance(reply, dict) and reply.get("outputs"):
            outputs = [o.get("data") for o in reply["outputs"]]
            outputs = outputs[0] if len(outputs) == 1 else outputs
        typer.echo(json.dumps(outputs if outputs is not None else reply))
    typer.echo(f"served by {revision}", err=True)


@endpoints_app.command("promote")
@_errors
def promote(
    name: str = typer.Argument(
        ..., metavar="NAME", help="The endpoint's name (see: workbench endpoints list)."
    ),
    namespace: str | None = typer.Option(None, "--namespace", help=NAMESPACE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Send all traffic to the canary: it becomes the stable revision."""
    info = _deployer(namespace).promote(name)
    print_json(info.to_json()) if as_json else _print_endpoint(info)


@endpoints_app.command("rollback")
@_errors
def rollback(
    name: str = typer.Argument(
        ..., metavar="NAME", help="The endpoint's name (see: workbench endpoints list)."
    ),
    namespace: str | None = typer.Option(None, "--namespace", help=NAMESPACE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Drop the canary: all traffic back to the stable revision."""
    info = _deployer(namespace).rollback(name)
    print_json(info.to_json()) if as_json else _print_endpoint(info)


@endpoints_app.command("stop")
@_errors
def stop(
    names: list[str] = typer.Argument(None, metavar="NAME...", help="Endpoints to stop."),
    all_: bool = typer.Option(False, "--all", help="Stop every local endpoint."),
    namespace: str | None = typer.Option(
        None, "--namespace", help="Delete the InferenceService in this namespace instead"
    ),
) -> None:
    """Stop endpoint servers and free their ports (records stay: `up` starts them again)."""
    from workbench_dsl.errors import UsageError

    deployer = _deployer(namespace)
    if all_ and not namespace:
        names = [i.name for i in deployer.list()]
        if not names:
            typer.echo("no local endpoints")
            return
    if not names:
        raise UsageError("name the endpoints to stop, or pass --all")
    for name in names:
        deployer.stop(name)
        typer.echo(f"stopped {name}")


@endpoints_app.command("up")
@_errors
def up(
    names: list[str] = typer.Argument(None, metavar="[NAME...]", help="Default: every endpoint."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Start the recorded local endpoints that are down or whose model does not answer.

    Each comes back on its port with its revisions."""
    infos = _local().up(names or None)
    if as_json:
        print_json([i.to_json() for i in infos])
        return
    if not infos:
        typer.echo("no endpoints to start")
    for info in infos:
        _print_endpoint(info)


@endpoints_app.command("token")
@_errors
def token(
    name: str = typer.Argument(
        ..., metavar="NAME", help="The endpoint's name (see: workbench endpoints list)."
    ),
) -> None:
    """Make a new bearer token for a local endpoint (shown once; the old one stops working).

    A run's deploy step never shows a token (its output is a log file): after a run
    creates an endpoint with auth="token", this is how its owner gets one.
    """
    new = _local().rotate_token(name)
    typer.echo(new)
    typer.echo(
        f"the endpoint {name} now needs: Authorization: Bearer <this token> "
        f"(stored hashed; it is not shown again)",
        err=True,
    )


def _since(text: str | None) -> float | None:
    """``--since``: a duration back from now (``90m``, ``6h``, ``2d``) or a time (ISO 8601)."""
    import time
    from datetime import datetime

    from workbench_dsl.errors import UsageError
    from workbench_dsl.schedule.events import parse_duration

    if text is None:
        return None
    if text.strip()[-1:] in ("s", "m", "h", "d") and text.strip()[:1].isdigit():
        return time.time() - parse_duration(text)
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise UsageError(
            f"bad --since {text!r}: give a duration (90m, 6h, 2d) or a time "
            f"(2026-12-02T18:00, local unless it names a zone)"
        ) from None


@endpoints_app.command("drift")
@_errors
def drift(
    name: str = typer.Argument(
        ..., metavar="NAME", help="The endpoint's name (see: workbench endpoints list)."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Only requests from this long ago (6h, 2d) or this time (ISO 8601)."
    ),
    revision: str | None = typer.Option(
        None, "--revision", help="The revision whose requests to compare (default: the stable one)."
    ),
    psi: float = typer.Option(
        0.2, "--psi", min=0.0, help="PSI at or above which a feature drifted."
    ),
    p_value: float = typer.Option(
        0.01, "--p-value", min=0.0, max=1.0, help="Test p-value below which a feature drifted."
    ),
    min_requests: int = typer.Option(
        50, "--min-requests", min=1, help="Fewest logged instances worth comparing."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Compare an endpoint's recent inputs with the data its model was trained on (per feature).

    The training data is found through lineage (endpoint <- model version <- training
    dataset); each feature gets its population stability index and a two-sample test
    (Kolmogorov-Smirnov, or chi-square for a categorical one). See docs/drift.md.
    """
    from workbench_dsl.backends.drift.report import DriftError, drift_report
    from workbench_dsl.backends.drift.stats import Thresholds
    from workbench_dsl.errors import UsageError
    from workbench_dsl.paths import local_root

    t = Thresholds(psi=psi, p_value=p_value, min_requests=min_requests)
    try:
        report = drift_report(
            local_root().ensure(), name, revision=revision, since=_since(since), thresholds=t
        )
    except DriftError as e:
        raise UsageError(str(e)) from None
    if as_json:
        print_json(report.to_json())
        return
    ref = report.reference
    typer.echo(
        f"{name} revision {report.revision}: {report.instances} instance(s) in "
        f"{report.requests} request(s) against {ref.dataset} @ {(ref.version or '')[:19]} "
        f"({ref.model_uri})"
    )
    if ref.note:
        typer.echo(f"note: {ref.note}")
    width = max([len("feature"), *(len(f.name) for f in report.features)])
    typer.echo(f"{'feature':<{width}}  {'kind':<11}  {'psi':>7}  test  {'p-value':>9}  verdict")
    for f in report.features:
        verdict = "DRIFTED" if f.drifted else "ok"
        typer.echo(
            f"{f.name:<{width}}  {f.kind:<11}  {f.psi:>7.3f}  {f.test:<4}  {f.p_value:>9.2g}  {verdict}"
        )
    n = len(report.drifted_features)
    typer.echo(
        f"{n} of {len(report.features)} feature(s) drifted (psi >= {t.psi:g} and p < {t.p_value:g})"
        + (f": {', '.join(report.drifted_features)}" if n else "")
    )


def register(app: typer.Typer) -> None:
    app.add_typer(endpoints_app)
