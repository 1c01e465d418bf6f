"""Numbers reach a component as a cluster hands them over.

On a cluster the driver writes the ExecutorInput with Go's protojson, which prints a
whole double (every number in a protobuf Value is a double) without a fraction: the
compiled default ``[1.0, 'a']`` arrives as ``[1, 'a']``, ``2.0`` as ``2``, and so does
a logged metric ``1.0`` a downstream task reads from the artifact's metadata
(kubeflow/pipelines backend/src/v2/driver: ``protojson.Marshal(executorInput)``).
"""

from pathlib import Path
from typing import Any

import pytest

from workbench_dsl.engine.attempts import executor_input


def test_whole_doubles_reach_the_component_as_protojson_prints_them(tmp_path: Path) -> None:
    params: dict[str, Any] = {
        "l": [1.0, "a", 2.5],
        "d": {"k": [3.0], "b": True},
        "f": 2.0,
        "g": 0.5,
        "flag": False,
    }
    got = executor_input({}, params, {}, tmp_path / "w")["inputs"]["parameterValues"]
    assert got == {"l": [1, "a", 2.5], "d": {"k": [3], "b": True}, "f": 2, "g": 0.5, "flag": False}
    assert isinstance(got["l"][0], int) and isinstance(got["f"], int)
    assert got["d"]["b"] is True and got["flag"] is False


def test_whole_doubles_in_input_artifact_metadata_arrive_whole(tmp_path: Path) -> None:
    art = {"name": "m", "uri": "/x", "metadata": {"loss": 1.0, "rows": [[1.0, 0.5]], "ok": True}}
    got = executor_input({}, {}, {"m": [art]}, tmp_path / "w")["inputs"]["artifacts"]
    metadata = got["m"]["artifacts"][0]["metadata"]
    assert metadata == {"loss": 1, "rows": [[1, 0.5]], "ok": True}
    assert isinstance(metadata["loss"], int) and isinstance(metadata["rows"][0][0], int)


@pytest.mark.slow
def test_a_list_default_of_whole_numbers_indexes_like_on_a_cluster(run_kfp: Any) -> None:
    from kfp import dsl
    from kfp.dsl import Input, Metrics, Output

    @dsl.component
    def show(xs: list, d: dict, m: Input[Metrics]) -> str:
        return repr((xs, d, list(range(xs[0])), m.metadata))

    @dsl.component
    def score(m: Output[Metrics]):
        m.log_metric("loss", 1.0)

    @dsl.pipeline
    def numbers(xs: list = [2, "a"], d: dict = {"k": [1]}) -> str:  # noqa: B006 (KFP defaults)
        return show(xs=xs, d=d, m=score().outputs["m"]).output

    summary = run_kfp(numbers)
    assert summary.status == "SUCCEEDED"
    assert summary.outputs["Output"] == "([2, 'a'], {'k': [1]}, [0, 1], {'loss': 1})"
