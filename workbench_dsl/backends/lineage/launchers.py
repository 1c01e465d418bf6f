"""What lineage learns from a step's kind: model versions, endpoints, sweep results, source.

A launcher component (``@train``, ``@sweep``, ``@register``, ``@serve``) embeds a wrapper
that calls ``workbench_dsl.runtime.<kind>.launch(<user source>, <name>, <config json>,
locals())``; parsing that call (with :mod:`ast`, never executing it) gives the user's own
function source and the step's settings (the endpoint's name, the model's name).
Together with the task's parameters and the notes the step left
(:mod:`~workbench_dsl.backends.lineage.notes`) this yields the datasets and facets
for registered model versions (``models:/NAME``, version N), endpoints
(``endpoint:NAME``) and the sweep's best parameters.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench_dsl.backends.lineage import facets as F

MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


@dataclass(frozen=True)
class Launcher:
    """A parsed launcher call."""

    kind: str
    function: str
    user_source: str
    config: dict[str, Any] = field(default_factory=dict)


@functools.lru_cache(maxsize=256)
def parse(program: str) -> Launcher | None:
    """The launcher call in a lightweight component's program, or None for a plain one."""
    if "workbench_dsl.runtime." not in program:
        return None
    try:
        tree = ast.parse(program)
    except SyntaxError:
        return None
    kind = None
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "workbench_dsl.runtime."
        ):
            if any(a.name == "launch" for a in node.names):
                kind = (node.module or "").rsplit(".", 1)[-1]
        elif (
            kind
            and isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "launch"
            and len(node.args) >= 3
        ):
            try:
                source, name, cfg = (ast.literal_eval(a) for a in node.args[:3])
            except (ValueError, SyntaxError):
                return None
            if isinstance(cfg, str):
                try:
                    cfg = json.loads(cfg)
                except json.JSONDecodeError:
                    cfg = {}
            return Launcher(kind, str(name), str(source), cfg if isinstance(cfg, dict) else {})
    return None


def _model_dataset(namespace: str, uri: str, **extra: Any) -> dict[str, Any] | None:
    m = MODEL_URI.match(uri.strip())
    if not m:
        return None
    name, version = m["name"], m["version"]
    return {
        "namespace": namespace,
        "name": f"models:/{name}",
        "facets": {
            "version": F.spec_facet("version", datasetVersion=version),
            **extra,
        },
    }


def input_datasets(
    namespace: str, params: dict[str, Any], launcher: Launcher | None, found: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Model versions a task reads (parameters holding ``models:/NAME/N``)."""
    out = []
    seen = set()
    noted = [n.get("model_uri") for n in found if n.get("kind") == "endpoint"]
    for value in [*params.values(), *noted]:
        if isinstance(value, str):
            ds = _model_dataset(namespace, value)
            if ds and (ds["name"], value) not in seen:
                seen.add((ds["name"], value))
                out.append(ds)
    return out


def outputs(
    namespace: str,
    params: dict[str, Any],
    out_params: dict[str, Any],
    launcher: Launcher | None,
    found: list[dict[str, Any]],
    when: str,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Datasets and run facets for what a finished task registered, deployed or found."""
    datasets: list[dict[str, Any]] = []
    run_facets: dict[str, Any] = {}
    kind = launcher.kind if launcher else None
    config = launcher.config if launcher else {}
    by_kind = {n["kind"]: n for n in found}

    # A registered model version: the step's note, else a models:/NAME/N output.
    mv = by_kind.get("model_version")
    uri = (mv or {}).get("uri") or next(
        (v for v in out_params.values() if isinstance(v, str) and MODEL_URI.match(v)), None
    )
    if uri and MODEL_URI.match(uri):
        m = MODEL_URI.match(uri)
        assert m is not None
        promoted = (mv or {}).get("promoted", out_params.get("promoted"))
        alias = (mv or {}).get("alias") or config.get("alias")
        facet = F.custom_facet(
            "workbench_model_version",
            name=m["name"],
            version=m["version"],
            uri=uri,
            promoted=promoted if isinstance(promoted, bool) else None,
            alias=alias,
        )
        run_facets["workbench_model_version"] = facet
        ds = _model_dataset(namespace, uri)
        if ds:
            datasets.append(ds)

    # An endpoint: the step's note, else a serve step's (or any step's) url output
    # next to the model it was given.
    ep = by_kind.get("endpoint")
    url = (ep or {}).get("url") or out_params.get("url")
    model_in = (ep or {}).get("model_uri") or params.get("model_uri")
    if ep or (
        isinstance(url, str)
        and url.startswith(("http://", "https://"))
        and (kind == "serve" or model_in)
    ):
        name = (ep or {}).get("name") or config.get("endpoint") or params.get("endpoint")
        name = str(name or _endpoint_from_url(str(url or "")) or "unnamed")
        revision = (ep or {}).get("revision") or out_params.get("revision")
        datasets.append(
            {
                "namespace": namespace,
                "name": f"endpoint:{name}",
                "facets": {
                    "version": F.spec_facet("version", datasetVersion=str(revision or when)),
                    "workbench_endpoint": F.custom_facet(
                        "workbench_endpoint",
                        name=name,
                        url=url,
                        revision=revision,
                        modelUri=model_in if isinstance(model_in, str) else None,
                    ),
                },
            }
        )

    # A sweep's result.
    sw = by_kind.get("sweep")
    best = (sw or {}).get("best_params", out_params.get("best_params"))
    if isinstance(best, dict):
        value = (sw or {}).get("best_value", out_params.get("best_value"))
        run_facets["workbench_sweep"] = F.custom_facet(
            "workbench_sweep",
            bestParams=best,
            bestValue=value if isinstance(value, (int, float)) else None,
            objective=(sw or {}).get("objective") or config.get("objective"),
            goal=(sw or {}).get("goal") or config.get("goal"),
            trials=(sw or {}).get("trials"),
        )
    return datasets, run_facets


def _endpoint_from_url(url: str) -> str | None:
    # KServe paths name the model: /v1/models/NAME:predict, /v2/models/NAME/infer
    m = re.search(r"/v[12]/models/([^/:]+)", url)
    return m.group(1) if m else None


@functools.lru_cache(maxsize=64)
def source_location(path: str) -> dict[str, Any] | None:
    """A ``sourceCodeLocation`` facet for a pipeline module: git commit and path when it is
    in a git checkout, else the file's URL."""
    p = Path(path).resolve()
    if not p.exists():
        return None
    git = _git_info(p)
    if git is None:
        return F.spec_facet("sourceCodeLocation", type="file", url=p.as_uri(), path=str(p))
    top, sha, remote = git
    rel = p.relative_to(top).as_posix()
    return F.spec_facet(
        "sourceCodeLocation", type="git", url=p.as_uri(), repoUrl=remote, path=rel, version=sha
    )


def _git_info(p: Path) -> tuple[Path, str | None, str | None] | None:
    """(work tree, HEAD commit, origin URL), read from .git without running git."""
    for d in (p.parent, *p.parent.parents):
        git = d / ".git"
        if git.is_dir():
            break
    else:
        return None
    sha = None
    try:
        head = (git / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            ref_file = git / ref
            if ref_file.is_file():
                sha = ref_file.read_text().strip()
            elif (git / "packed-refs").is_file():
                for line in (git / "packed-refs").read_text().splitlines():
                    if line.endswith(" " + ref):
                        sha = line.split()[0]
        else:
            sha = head
    except OSError:
        pass
    remote = None
    try:
        section = None
        for line in (git / "config").read_text().splitlines():
            s = line.strip()
            if s.startswith("["):
                section = s
            elif section == '[remote "origin"]' and s.startswith("url"):
                remote = s.partition("=")[2].strip()
    except OSError:
        pass
    return d, sha, remote
