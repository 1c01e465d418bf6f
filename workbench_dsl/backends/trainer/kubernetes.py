"""Cluster trainer: a Kubeflow Trainer v2 TrainJob, created, followed and mapped to an outcome.

:meth:`KubernetesTrainer.run` creates the TrainJob (adopting it if a restarted
launcher finds it already there), streams the logs of its ``node`` pods into
this process's output, waits for the ``Complete`` or ``Failed`` condition, and
returns the result line rank 0 printed. If the launcher is cancelled (SIGTERM)
it deletes the TrainJob; if it is killed outright, the TrainJob's owner
reference to the launcher pod lets Kubernetes collect it.
See https://www.kubeflow.org/docs/components/trainer/
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from workbench_dsl.backends.trainer import manifest
from workbench_dsl.backends.trainer._process import Terminated, sigterm_raises
from workbench_dsl.backends.trainer.base import RESULT_MARKER, TrainingFailed, TrainJobSpec
from workbench_dsl.errors import UsageError

JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"
REPLICATED_JOB_LABEL = "jobset.sigs.k8s.io/replicatedjob-name"
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def current_namespace() -> str:
    """The namespace this pod runs in (``default`` outside a pod)."""
    try:
        return _NAMESPACE_FILE.read_text(encoding="utf-8").strip() or "default"
    except OSError:
        return "default"


def default_api_client() -> Any:
    """An API client from the in-cluster service account, else the kubeconfig."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, OSError) as e:
            raise UsageError(
                f"no Kubernetes cluster configured: no in-cluster service account and no "
                f"usable kube config ({' '.join(str(e).split())}); set KUBECONFIG or run "
                f"`kubectl config use-context NAME`"
            ) from None
    return client.ApiClient()


def api_error(e: Exception) -> str:
    """The API server's own message from an ApiException (its JSON Status), in one line."""
    body = getattr(e, "body", None)
    if body:
        try:
            return str(json.loads(body).get("message") or body)
        except (ValueError, AttributeError):
            return str(body)
    return f"{getattr(e, 'status', '')} {getattr(e, 'reason', e)}".strip()


def condition_state(obj: dict[str, Any], done: str = "Complete") -> tuple[str | None, str]:
    """``("Complete"|"Failed"|None, message)`` from a resource's status conditions."""
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("status") != "True":
            continue
        if c.get("type") in (done, "Failed"):
            reason = c.get("reason") or ""
            message = c.get("message") or ""
            text = f"{reason}: {message}" if reason and message else reason or message
            return c["type"], text
    return None, ""


#: Where a launcher's custom objects live: (group, version, namespace, plural).
Place = tuple[str, str, str, str]


def create_or_adopt(
    custom: Any, where: Place, body: dict[str, Any], *, what: str, failed: type[Exception]
) -> bool:
    """Create ``body`` with strict field validation; False when an object of its name is there
    already (a restarted launcher adopts it). Any other refusal raises ``failed`` with the
    API server's message about ``what``. ``custom`` is a ``CustomObjectsApi``.
    """
    from kubernetes.client.rest import ApiException

    try:
        custom.create_namespaced_custom_object(
            *where, body, field_validation=manifest.FIELD_VALIDATION
        )
    except ApiException as e:
        if e.status != 409:
            raise failed(f"could not create {what}: {api_error(e)}") from None
        return False
    return True


def delete_quietly(custom: Any, where: Place, name: str) -> None:
    """Delete object ``name`` and, in the background, what it owns (a cancelled launcher's
    cleanup: an error is ignored, the owner reference to the launcher pod collects it anyway)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    with contextlib.suppress(ApiException):
        custom.delete_namespaced_custom_object(
            *where, name, body=client.V1DeleteOptions(propagation_policy="Background")
        )


class KubernetesTrainer:
    """Runs a :class:`TrainJobSpec` as a TrainJob.

    Args:
        api_client: A ``kubernetes.client.ApiClient`` (default: in-cluster config).
        namespace: Where to create it (default: this pod's namespace).
        poll_s: Seconds between status reads.
        out: Where pod logs go (default stdout, which is the step's log).
    """

    def __init__(
        self,
        *,
        api_client: Any = None,
        namespace: str | None = None,
        poll_s: float = 2.0,
        out: IO[str] | None = None,
    ) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.poll_s = poll_s
        self.out = out

    def run(
        self, spec: TrainJobSpec, *, name: str | None = None, owner: dict[str, str] | None = None
    ) -> dict[str, Any] | None:
        """Create the TrainJob ``name`` (default ``spec.name``), follow it, return rank 0's result."""
        name = name or spec.name
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        api = self.api_client or default_api_client()
        ns = self.namespace or current_namespace()
        custom = client.CustomObjectsApi(api)
        core = client.CoreV1Api(api)
        out = self.out or sys.stdout
        body = manifest.build_trainjob(spec, name=name, namespace=ns, owner=owner)
        where = (manifest.GROUP, manifest.VERSION, ns, manifest.PLURAL)
        # Strict: a Trainer older than v2.2 has no spec.runtimePatches and would drop
        # the profile's scheduling silently; strict validation makes it an error.
        if create_or_adopt(
            custom, where, body, what=f"TrainJob {ns}/{name}", failed=TrainingFailed
        ):
            out.write(f"created TrainJob {ns}/{name} ({spec.nodes} x {spec.procs_per_node})\n")
        else:
            out.write(f"TrainJob {ns}/{name} exists already (a restarted launcher): following it\n")
        out.flush()
        follower = _LogFollower(core, ns, name, out, prefix_nodes=spec.nodes > 1)
        with sigterm_raises():
            try:
                while True:
                    try:
                        job = custom.get_namespaced_custom_object(
                            manifest.GROUP, manifest.VERSION, ns, manifest.PLURAL, name
                        )
                    except ApiException as e:
                        if e.status == 404:
                            raise TrainingFailed(
                                f"TrainJob {ns}/{name} was deleted before it finished"
                            ) from None
                        raise
                    follower.follow_new_pods()
                    state, message = condition_state(job)
                    if state == "Complete":
                        break
                    if state == "Failed":
                        follower.join()
                        raise TrainingFailed(f"TrainJob {ns}/{name} failed: {message}")
                    time.sleep(self.poll_s)
            except (Terminated, KeyboardInterrupt):
                out.write(f"cancelled: deleting TrainJob {ns}/{name}\n")
                delete_quietly(custom, where, name)
                raise
        follower.follow_new_pods()
        follower.join()
        return follower.result


class _LogFollower:
    """One thread per ``node`` pod, streaming its trainer container's log."""

    def __init__(self, core: Any, ns: str, job: str, out: IO[str], prefix_nodes: bool) -> None:
        self.core = core
        self.ns = ns
        self.job = job
        self.out = out
        self.prefix_nodes = prefix_nodes
        self.threads: dict[str, threading.Thread] = {}
        self.result: dict[str, Any] | None = None
        self.lock = threading.Lock()

    def follow_new_pods(self) -> None:
        pods = self.core.list_namespaced_pod(
            self.ns,
            label_selector=(
                f"{JOBSET_NAME_LABEL}={self.job},{REPLICATED_JOB_LABEL}={manifest.NODE}"
            ),
        )
        for pod in pods.items:
            pod_name = pod.metadata.name
            phase = pod.status.phase if pod.status else None
            if pod_name in self.threads or phase not in ("Running", "Succeeded", "Failed"):
                continue
            index = int((pod.metadata.labels or {}).get(INDEX_LABEL, "0"))
            t = threading.Thread(target=self._stream, args=(pod_name, index), daemon=True)
            self.threads[pod_name] = t
            t.start()

    def _stream(self, pod: str, index: int) -> None:
        prefix = f"[node {index}] " if self.prefix_nodes else ""
        try:
            resp = self.core.read_namespaced_pod_log(
                pod, self.ns, container=manifest.NODE, follow=True, _preload_content=False
            )
            pending = b""
            for chunk in resp.stream(4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                self._emit(lines, prefix, index)
            if pending:
                self._emit([pending], prefix, index)
            resp.release_conn()
        except Exception as e:  # a log stream that breaks must not fail the job
            with self.lock:
                self.out.write(f"{prefix}(log stream of pod {pod} ended: {e})\n")

    def _emit(self, lines: list[bytes], prefix: str, index: int) -> None:
        with self.lock:
            for raw in lines:
                line = raw.decode("utf-8", "replace")
                if line.startswith(RESULT_MARKER):
                    if index == 0:
                        self.result = json.loads(line[len(RESULT_MARKER) :])
                    continue
                self.out.write(f"{prefix}{line}\n")
            self.out.flush()

    def join(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for t in self.threads.values():
            t.join(max(0.0, deadline - time.monotonic()))
