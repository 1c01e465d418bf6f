"""OpenLineage facets as plain dicts: the spec's facets we use and this project's own.

Built as dicts (not the client's attrs classes) so emitting costs no import of the
``openlineage`` package on the engine's hot path; the schema URLs are the ones the
installed ``openlineage-python`` uses (a test keeps them equal) and every event
validates against the spec's JSON schema in the tests.

Spec: https://openlineage.io/docs/spec/facets/ . Our custom facets are prefixed
``workbench_`` and described by the JSON schemas in ``schemas/`` beside this file.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from typing import Any

from workbench_dsl._version import __version__

SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
RUN_EVENT_SCHEMA = f"{SPEC}#/$defs/RunEvent"
PRODUCER = f"https://github.com/workbench-dsl/workbench-dsl/tree/v{__version__}"
#: Where our custom facets' schemas are published (the files in ``schemas/``).
CUSTOM_SCHEMA_BASE = (
    "https://raw.githubusercontent.com/workbench-dsl/workbench-dsl/main/"
    "workbench_dsl/backends/lineage/schemas"
)

_SPEC_FACETS = {
    "parent": "1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet",
    "errorMessage": "1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
    "nominalTime": "1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet",
    "processing_engine": "1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet",
    "executionParameters": (
        "1-0-0/ExecutionParametersRunFacet.json#/$defs/ExecutionParametersRunFacet"
    ),
    "jobType": "2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
    "sourceCode": "1-0-1/SourceCodeJobFacet.json#/$defs/SourceCodeJobFacet",
    "sourceCodeLocation": "1-1-0/SourceCodeLocationJobFacet.json#/$defs/SourceCodeLocationJobFacet",
    "schema": "1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    "version": "1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet",
    "outputStatistics": (
        "1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet"
    ),
    "inputStatistics": (
        "1-0-0/InputStatisticsInputDatasetFacet.json#/$defs/InputStatisticsInputDatasetFacet"
    ),
}
SPEC_FACET_URLS = {k: f"https://openlineage.io/spec/facets/{v}" for k, v in _SPEC_FACETS.items()}

#: Our facets: key -> schema file in ``schemas/``.
CUSTOM_FACETS = {
    "workbench_run": "WorkbenchRunFacet",
    "workbench_task": "WorkbenchTaskRunFacet",
    "workbench_sweep": "WorkbenchSweepRunFacet",
    "workbench_model_version": "WorkbenchModelVersionRunFacet",
    "workbench_artifact": "WorkbenchArtifactDatasetFacet",
    "workbench_endpoint": "WorkbenchEndpointDatasetFacet",
}

# Stable run ids: the same engine run (or KFP run) and task always map to the same UUID,
# so events sent from the local engine and from components on a cluster line up.
_RUN_NS = uuid.UUID("7b0d9c1e-3f1a-5e55-9a7e-0b6f3c2d8e41")
_RUN_NS_BYTES = _RUN_NS.bytes


@functools.lru_cache(maxsize=4096)  # a task's START and end events ask for the same one
def run_uuid(run_id: str, task: str | None = None) -> str:
    """The OpenLineage runId of a pipeline run (``task=None``) or of one of its tasks.

    ``str(uuid.uuid5(_RUN_NS, key))``, computed without the ``UUID`` object (a fifth of
    the cost, paid once per task of a run of thousands).
    """
    key = run_id if task is None else f"{run_id}/{task}"
    h = bytearray(hashlib.sha1(_RUN_NS_BYTES + key.encode()).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50  # version 5
    h[8] = (h[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def spec_facet(key: str, **fields: Any) -> dict[str, Any]:
    """A facet defined by the OpenLineage spec (``key`` is its name in the facets map)."""
    return {"_producer": PRODUCER, "_schemaURL": SPEC_FACET_URLS[key], **fields}


def custom_facet(key: str, **fields: Any) -> dict[str, Any]:
    """One of this project's facets (schemas in ``schemas/``)."""
    name = CUSTOM_FACETS[key]
    url = f"{CUSTOM_SCHEMA_BASE}/{name}.json#/$defs/{name}"
    return {"_producer": PRODUCER, "_schemaURL": url, **fields}


def parent_facet(namespace: str, pipeline: str, run_id: str) -> dict[str, Any]:
    """Links a task's run to its pipeline run (which is also the root)."""
    run = {"runId": run_uuid(run_id)}
    job = {"namespace": namespace, "name": pipeline}
    return spec_facet("parent", run=run, job=job, root={"run": dict(run), "job": dict(job)})


def job_type(kind: str) -> dict[str, Any]:
    return spec_facet("jobType", processingType="BATCH", integration="WORKBENCH", jobType=kind)


def processing_engine() -> dict[str, Any]:
    try:
        from importlib.metadata import version

        kfp_version = version("kfp")
    except Exception:
        kfp_version = "unknown"
    return spec_facet(
        "processing_engine",
        name="workbench-dsl",
        version=__version__,
        openlineageAdapterVersion=f"kfp-{kfp_version}",
    )


def execution_parameters(params: dict[str, Any]) -> dict[str, Any]:
    from workbench_dsl.backends.lineage.inspect import short_json

    return spec_facet(
        "executionParameters",
        parameters=[{"key": k, "value": short_json(v)} for k, v in sorted(params.items())],
    )


def error_message(message: str) -> dict[str, Any]:
    return spec_facet("errorMessage", message=message, programmingLanguage="python")


def source_code(source: str) -> dict[str, Any]:
    return spec_facet("sourceCode", language="python", sourceCode=source)
