"""Tasks that run no program: ``dsl.importer`` and the kfp-kubernetes PVC stubs.

An importer brings an existing file or directory into the CAS (in the I/O pool,
answered by :class:`~.messages.Imported`). ``createpvc`` / ``deletepvc`` make and
remove a named local volume (DESIGN.md: volumes are named local directories);
``createpvc`` outputs the name a cluster would give the claim.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from workbench_dsl.engine import attempts as att
from workbench_dsl.engine import volumes
from workbench_dsl.engine.cache import task_key
from workbench_dsl.engine.graph import Node
from workbench_dsl.engine.orchestrator import messages as m
from workbench_dsl.engine.orchestrator.launch import context, executor_of
from workbench_dsl.engine.orchestrator.scopes import stub_kind
from workbench_dsl.engine.orchestrator.states import TaskState
from workbench_dsl.engine.placeholders import Resolver
from workbench_dsl.engine.spec import caching_enabled
from workbench_dsl.errors import UsageError

if TYPE_CHECKING:
    from workbench_dsl.engine.orchestrator.loop import Orchestrator

S = TaskState


def start_importer(o: Orchestrator, node: Node) -> None:
    _, executor = executor_of(o, node)
    imp = executor.get("importer") or {}
    src = imp.get("artifactUri") or {}
    if "runtimeParameter" in src:
        uri = node.params.get(src["runtimeParameter"])
    else:
        uri = src.get("constant")
        if isinstance(uri, dict):
            uri = uri.get("stringValue") or next(iter(uri.values()), None)
    if not uri:
        o.finish(node, S.FAILED, "importer: no artifact URI")
        return
    metadata = _resolve_struct(o, node, imp.get("metadata") or {})
    type_schema = dict(imp.get("typeSchema") or {})
    node.key = task_key(node.component, executor, {}, {"uri": uri, "metadata": metadata}, {})
    o.transition(node, S.RUNNING)
    o.obs.task_start(o.task_info(node))
    o.inflight_io += 1

    def work() -> None:
        try:
            result: Any = att.import_artifact(str(uri), type_schema, metadata, o.cas)
        except Exception as e:
            result = e
        o.post(m.Imported(node, result))

    o.io.submit(work)


def _resolve_struct(o: Orchestrator, node: Node, value: Any) -> Any:
    """Resolve placeholders in an importer's metadata (a JSON document, walked without recursion)."""
    ei = {"inputs": {"parameterValues": node.params, "artifacts": {}}, "outputs": {}}

    def one(v: Any) -> Any:
        if isinstance(v, str) and "{{$" in v:
            try:
                return Resolver(ei, context(o, node)).resolve_string(v)
            except ValueError:
                return v
        return v

    # Copy the document breadth-first: each container is rebuilt with resolved leaves.
    top: list[Any] = [value]
    todo: list[tuple[Any, Any, Any]] = [(top, 0, value)]
    while todo:
        parent, slot, v = todo.pop()
        if isinstance(v, dict):
            new_d: dict[Any, Any] = {}
            parent[slot] = new_d
            for k, child in v.items():
                new_d[one(k)] = child
                todo.append((new_d, one(k), child))
        elif isinstance(v, list):
            new_l: list[Any] = list(v)
            parent[slot] = new_l
            for i, child in enumerate(v):
                todo.append((new_l, i, child))
        else:
            parent[slot] = one(v)
    return top[0]


def on_imported(o: Orchestrator, node: Node, result: Any) -> None:
    if isinstance(result, Exception):
        node.error = (
            str(result)
            if isinstance(result, FileNotFoundError)
            else f"importer failed: {type(result).__name__}: {result}"
        )
        o.finish(node, S.FAILED, node.error)
        return
    entry, note = result
    if note:
        o.notice(note)
    node.out_artifacts = {"artifact": [entry]}
    o.finish(node, S.SUCCEEDED)


_NAME_AND_SUFFIX = (
    "failed to create pvc: at most one of pvc_name and pvc_name_suffix can be non-empty"
)


def run_stub(o: Orchestrator, node: Node) -> None:
    """kfp-kubernetes ``CreatePVC`` makes a local volume (its output is the name), ``DeletePVC``
    removes it (``engine/volumes.py``)."""
    _, executor = executor_of(o, node)
    what = stub_kind(str((executor.get("container") or {}).get("image")))
    if what == "createpvc" and node.params.get("pvc_name") and node.params.get("pvc_name_suffix"):
        o.transition(node, S.RUNNING)
        o.obs.task_start(o.task_info(node))
        # As KFP's driver refuses it (backend/src/v2/driver/k8s.go, createPVC).
        o.finish(node, S.FAILED, _NAME_AND_SUFFIX)
        return
    if what == "createpvc" and node.params.get("pvc_name"):
        _create_named_pvc(o, node, executor)
        return
    o.transition(node, S.RUNNING)
    o.obs.task_start(o.task_info(node))
    try:
        if what == "createpvc":
            # As KFP's driver names it (backend/src/v2/driver/k8s.go, createPVC): a fresh
            # uuid + pvc_name_suffix, so each execution (each ParallelFor iteration, each
            # run) has a volume of its own.
            name = f"{uuid.uuid4()}{node.params.get('pvc_name_suffix') or ''}".lower()
            volumes.volume_dir(o.root.root, name, create=True)
            node.out_params = {"name": name}
        else:
            volumes.remove_volume(o.root.root, str(node.params.get("pvc_name") or ""))
    except UsageError as e:
        o.finish(node, S.FAILED, str(e))
        return
    o.finish(node, S.SUCCEEDED)


def _create_named_pvc(o: Orchestrator, node: Node, executor: dict[str, Any]) -> None:
    """``CreatePVC(pvc_name=NAME)``, as KFP's driver runs it (backend/src/v2/driver/k8s.go).

    The driver looks up its cache first (the fingerprint of the step's inputs, which hold
    the fixed name): on a hit it outputs the name and creates nothing. Otherwise it creates
    the claim, and Kubernetes refuses a name that exists (AlreadyExists): the task fails;
    a cache entry is written only with caching on (globally and for the task). One
    difference: on a hit whose claim was deleted since (``DeletePVC``), the driver
    creates nothing and the pods that mount it wait for a claim that is gone; here the
    volume is made again. A claim made elsewhere is ``mount_pvc``'s to use.
    """
    name = str(node.params["pvc_name"]).lower()
    key = task_key(node.component, executor, {}, node.params, {})
    use_cache = o.options.cache and caching_enabled(node.task)
    try:
        folder = volumes.volume_dir(o.root.root, name)
    except UsageError as e:
        o.finish(node, S.FAILED, str(e))
        return
    entry = o.recorder.store.cache_get(key) if use_cache and folder.exists() else None
    prev = o.prev.get(node.qname)
    if entry is not None or (prev is not None and prev["status"] == "SUCCEEDED"):
        # A cache hit, or a resumed run whose step made the claim before the interruption.
        o.transition(node, S.VERIFYING)
        node.duration_s = 0.0
        node.out_params = {"name": name}
        if entry is None:
            node.reused = True
        else:
            node.key, node.cached = key, True
            o.recorder.cache_hit(key)
        o.obs.task_start(o.task_info(node))
        o.finish(node, S.SUCCEEDED if entry is None else S.CACHED)
        return
    o.transition(node, S.RUNNING)
    o.obs.task_start(o.task_info(node))
    if folder.exists():
        o.finish(
            node,
            S.FAILED,
            f'failed to create pvc: persistentvolumeclaims "{name}" already exists (as '
            f"KFP's driver, CreatePVC makes a new claim: mount an existing one with "
            f"mount_pvc, or remove it first: workbench volumes rm {name})",
        )
        return
    volumes.volume_dir(o.root.root, name, create=True)
    node.out_params = {"name": name}
    if use_cache:
        node.key = key
        entry = {"key": key, "pipeline": o.spec.name, "component": node.comp_name}
        outputs = {"parameters": node.out_params, "artifacts": {}}
        o.recorder.store.cache_put(o.run_id, node.qname, {**entry, "outputs": outputs})
    o.finish(node, S.SUCCEEDED)
