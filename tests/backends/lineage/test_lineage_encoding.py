"""Lineage events are written exactly as before the fast paths: shared parts, run ids, times."""

import json
import re
import uuid
from datetime import UTC, datetime

from workbench_dsl.backends.lineage import emitter
from workbench_dsl.backends.lineage import facets as F
from workbench_dsl.backends.lineage.events import now_iso


def _reference(event: dict) -> str:
    """What the file held before: sorted keys, nulls dropped, encoded whole."""

    def drop(o):  # type: ignore[no-untyped-def]
        if isinstance(o, dict):
            return {k: drop(v) for k, v in o.items() if v is not None}
        if isinstance(o, list):
            return [drop(v) for v in o if v is not None]
        return o

    return json.dumps(drop(event), sort_keys=True, default=str)


def test_shared_parts_are_written_as_the_plain_dicts_would_be() -> None:
    parent = F.parent_facet("ns", "pipe", "run1")
    job = {"jobType": F.job_type("TASK"), "sourceCode": F.source_code('print("null")\n')}
    for with_null in (False, True):
        event = {
            "eventType": "COMPLETE",
            "run": {
                "runId": F.run_uuid("run1", "t"),
                "facets": {"parent": emitter.Shared(parent), "x": None if with_null else 1},
            },
            "job": {"name": "pipe.t", "facets": emitter.Shared(job)},
            "inputs": [],
            "outputs": [{"name": "a", "facets": {"v": [1, None, "\u00e9"]}}],
        }
        plain = {
            **event,
            "run": {**event["run"], "facets": {**event["run"]["facets"], "parent": parent}},
            "job": {"name": "pipe.t", "facets": job},
        }
        assert emitter.dumps(event) == _reference(plain)
        assert emitter.plain(event) == json.loads(_reference(plain))


def test_a_string_that_looks_like_a_shared_token_is_kept() -> None:
    event = {"a": "\x00S12345", "b": emitter.Shared({"k": "v"})}
    assert json.loads(emitter.dumps(event)) == {"a": "\x00S12345", "b": {"k": "v"}}


def test_run_ids_are_uuid5_of_the_run_and_task() -> None:
    for run_id, task in [("run1", None), ("run1", "fit"), ("a8ba681b4723", "for-loop-2[7]/x")]:
        key = run_id if task is None else f"{run_id}/{task}"
        assert F.run_uuid(run_id, task) == str(uuid.uuid5(F._RUN_NS, key))


def test_event_times_are_utc_milliseconds() -> None:
    before = datetime.now(UTC)
    text = now_iso()
    after = datetime.now(UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text)
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= when <= after
