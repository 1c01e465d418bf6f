"""A component that only tests or rewrites a URI's scheme runs locally, as on a cluster.

``uri.replace('gs://', '/gcs/')`` and ``uri.startswith('s3://')`` are how KFP
components map an artifact's URI to its mounted path; they fetch nothing, so the
preflight must not refuse them as remote reads.
"""

from typing import Any

import pytest


@pytest.mark.slow
def test_scheme_checks_in_component_source_are_not_remote_reads(run_kfp: Any) -> None:
    from kfp import dsl
    from kfp.dsl import Dataset, Output

    @dsl.component
    def where(d: Output[Dataset]) -> str:
        with open(d.path, "w") as f:
            f.write("x")
        local = d.uri.replace("gs://", "/gcs/").removeprefix("s3://")
        return "remote" if d.uri.startswith(("gs://", "s3://")) else str(local == d.uri)

    @dsl.pipeline
    def scheme_checks() -> str:
        return where().outputs["Output"]

    summary = run_kfp(scheme_checks)
    assert summary.status == "SUCCEEDED"
    assert summary.outputs["Output"] == "True"


def test_a_url_a_component_fetches_is_still_refused() -> None:
    from workbench_dsl.engine.remote_needs import _source_problems

    source = "import urllib.request\nurllib.request.urlopen('https://example.com/x.csv')\n"
    assert _source_problems("t", source) == [
        "task t reads https://example.com/x.csv: it needs the network"
    ]
