"""Regenerate the vendored schemas under ``workbench_dsl/compile/cluster/schemas`` (run by hand).

Reads bare git mirrors of kserve/kserve, kubeflow/katib and kubeflow/trainer at
released tags, keeps each CRD's ``openAPIV3Schema`` (descriptions dropped, the
rest byte-for-byte the upstream structure) and writes one JSON file per object
kind and version with its source (repo, path, tag, commit, licence) beside it.

    python tests/compile/cluster/vendor_schemas.py /work/.mirror
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

OUT = Path(__file__).resolve().parents[3] / "workbench_dsl" / "compile" / "cluster" / "schemas"

#: (file, repo, tag, path, what to take)
CRDS = [
    (
        "kserve-0.17.0-inferenceservice",
        "kserve/kserve",
        "v0.17.0",
        "config/crd/full/serving.kserve.io_inferenceservices.yaml",
        "crd",
    ),
    (
        "kserve-0.20.0-inferenceservice",
        "kserve/kserve",
        "v0.20.0",
        "config/crd/full/serving.kserve.io_inferenceservices.yaml",
        "crd",
    ),
    (
        "kserve-master-inferenceservice",
        "kserve/kserve",
        "HEAD",
        "config/crd/full/serving.kserve.io_inferenceservices.yaml",
        "crd",
    ),
    (
        "trainer-2.1.0-trainjob",
        "kubeflow/trainer",
        "v2.1.0",
        "manifests/base/crds/trainer.kubeflow.org_trainjobs.yaml",
        "crd",
    ),
    (
        "trainer-2.2.0-trainjob",
        "kubeflow/trainer",
        "v2.2.0",
        "manifests/base/crds/trainer.kubeflow.org_trainjobs.yaml",
        "crd",
    ),
    (
        "trainer-2.3.0-trainjob",
        "kubeflow/trainer",
        "v2.3.0",
        "manifests/base/crds/trainer.kubeflow.org_trainjobs.yaml",
        "crd",
    ),
    (
        "batch-v1-job",
        "kubeflow/trainer",
        "v2.3.0",
        "manifests/base/crds/trainer.kubeflow.org_clustertrainingruntimes.yaml",
        "job",
    ),
    (
        "katib-0.19.0-experiment",
        "kubeflow/katib",
        "v0.19.0",
        "api/openapi-spec/swagger.json",
        "katib",
    ),
]
LICENCE = "Apache-2.0"


def _git(mirror: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(mirror), *args], check=True, capture_output=True, text=True
    ).stdout


def strip(node: Any, *, in_properties: bool = False) -> Any:
    """Drop documentation (``description``, ``example``) but never a property named so."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if not in_properties and k in ("description", "example") and isinstance(v, str):
                continue
            out[k] = strip(v, in_properties=k == "properties" and not in_properties)
        return out
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def _crd_schema(text: str) -> dict[str, Any]:
    doc = yaml.safe_load(text)
    (version,) = [v for v in doc["spec"]["versions"] if v.get("storage")]
    return {
        "group": doc["spec"]["group"],
        "version": version["name"],
        "kind": doc["spec"]["names"]["kind"],
        "schema": version["schema"]["openAPIV3Schema"],
    }


def _job_schema(text: str) -> dict[str, Any]:
    # JobSet's replicatedJobs[].template is a batch/v1 JobTemplateSpec: its spec is
    # the full structural schema of a Job's spec, as controller-gen wrote it.
    ctr = _crd_schema(text)["schema"]
    rj = ctr["properties"]["spec"]["properties"]["template"]["properties"]["spec"]
    template = rj["properties"]["replicatedJobs"]["items"]["properties"]["template"]
    return {
        "group": "batch",
        "version": "v1",
        "kind": "Job",
        "schema": {
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                "spec": template["properties"]["spec"],
            },
        },
    }


def _katib_schema(text: str) -> dict[str, Any]:
    # Katib's Experiment CRD preserves unknown fields; the webhook decodes into the
    # Go types, which drop what they do not know. Their OpenAPI is that truth.
    doc = json.loads(text)
    schemas = doc["components"]["schemas"]
    keep: dict[str, Any] = {}

    def walk(name: str) -> None:
        if name in keep:
            return
        keep[name] = schemas[name]
        text_ = json.dumps(schemas[name])
        for ref in {p.split('"')[0] for p in text_.split('"$ref": "#/components/schemas/')[1:]}:
            walk(ref)

    walk("v1beta1.Experiment")
    return {
        "group": "kubeflow.org",
        "version": "v1beta1",
        "kind": "Experiment",
        "schema": {"$ref": "#/components/schemas/v1beta1.Experiment"},
        "components": {"schemas": dict(sorted(keep.items()))},
    }


def main(mirrors: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, repo, tag, path, what in CRDS:
        mirror = mirrors / repo.replace("/", "+") / "repo"
        commit = _git(mirror, "rev-parse", f"{tag}^{{commit}}").strip()
        text = _git(mirror, "show", f"{commit}:{path}")
        body = {"crd": _crd_schema, "job": _job_schema, "katib": _katib_schema}[what](text)
        body = strip(body)
        source = {
            "repo": f"https://github.com/{repo}",
            "path": path,
            "ref": tag if tag != "HEAD" else "master",
            "commit": commit,
            "licence": LICENCE,
            "changes": "descriptions and examples dropped",
        }
        if what == "job":
            source["changes"] += "; spec.template.spec.replicatedJobs[].template.spec taken"
        out = {"source": source, **body}
        (OUT / f"{name}.json").write_text(
            json.dumps(out, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8"
        )
        print(f"{name}: {len(json.dumps(out)) // 1024} KiB")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
