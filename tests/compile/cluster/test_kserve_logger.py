"""``[cluster] request_log_uri``: every InferenceService stores its payloads there, as KServe accepts.

The InferenceService and canary patch a ``@serve`` step makes are checked against the
vendored CRD schemas (KServe 0.17 and 0.20) and the ported webhook rules, ``validateLogger``
included (kserve/kserve pkg/apis/serving/v1beta1/component.go).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from workbench_dsl import serve
from workbench_dsl.compile.cluster import check_object, check_patch
from workbench_dsl.compile.loader import import_module
from workbench_dsl.runtime.plan import plan_serve

TOML = """
[cluster]
namespace = "ml"
kserve_deployment_mode = "Knative"
{extra}
"""
MODULE = """
def predict(model, instances):
    return instances
"""


def _plan(tmp_path: Path, extra: str, **options: Any) -> list[Any]:
    from workbench_dsl.backends.lineage.launchers import parse

    (tmp_path / "workbench.toml").write_text(TOML.format(extra=extra), encoding="utf-8")
    (tmp_path / "steps.py").write_text(textwrap.dedent(MODULE), encoding="utf-8")
    mod = import_module(str(tmp_path / "steps.py"))
    step = serve(endpoint="churn", **options)(mod.predict)
    launcher = parse(step.component.component_spec.implementation.container.command[-1])
    assert launcher is not None
    return plan_serve("predict", launcher.config, {"model_uri": "models:/churn/3"})


def _accepted(obj: Any) -> list[str]:
    found = list(obj.problems)
    found += check_patch(obj.base, obj.body) if obj.base is not None else check_object(obj.body)
    return found


def test_the_logger_stores_every_payload_under_the_configured_uri(tmp_path: Path) -> None:
    created, patch = _plan(
        tmp_path,
        'request_log_uri = "s3://ml-logs/requests/"\nrequest_log_service_account = "s3-writer"',
    )
    assert _accepted(created) == [] and _accepted(patch) == []
    logger = created.body["spec"]["predictor"]["logger"]
    assert logger == {
        "mode": "all",
        "url": "s3://ml-logs/requests",
        "metadataAnnotations": ["workbench.dev/model-uri"],
        "storage": {
            "path": "payloads",
            "key": "credentials",
            "parameters": {"format": "json"},
            "serviceAccountName": "s3-writer",
        },
    }
    # The model version each record names is the annotation the pods carry.
    assert created.body["metadata"]["annotations"]["workbench.dev/model-uri"] == "models:/churn/3"
    assert patch.body["spec"]["predictor"]["logger"] == logger


def test_without_the_setting_nothing_changes(tmp_path: Path) -> None:
    created, patch = _plan(tmp_path, "")
    assert "logger" not in created.body["spec"]["predictor"]
    assert _accepted(created) == []
    # A canary patch clears a logger an earlier deployment set.
    assert patch.body["spec"]["predictor"]["logger"] is None


def test_log_requests_false_sets_no_logger(tmp_path: Path) -> None:
    created, _ = _plan(tmp_path, 'request_log_uri = "s3://ml-logs/r"', log_requests=False)
    assert "logger" not in created.body["spec"]["predictor"]


@pytest.mark.parametrize(
    ("extra", "options", "message"),
    [
        ('request_log_uri = "s3://ml-logs/r"', {"request_log_sample": 0.1}, "no sample rate"),
        ('request_log_uri = "http://sink.ml"', {}, "must be an object-store URL"),
    ],
)
def test_what_kserve_cannot_log_is_a_problem_before_anything_is_sent(
    tmp_path: Path, extra: str, options: dict[str, Any], message: str
) -> None:
    created, _ = _plan(tmp_path, extra, **options)
    assert any(message in p for p in created.problems), created.problems


def test_the_ported_webhook_rule_refuses_an_incomplete_storage_spec(tmp_path: Path) -> None:
    created, _ = _plan(tmp_path, 'request_log_uri = "s3://ml-logs/r"')
    body = json.loads(json.dumps(created.body))
    del body["spec"]["predictor"]["logger"]["storage"]["key"]
    assert any("invalid logger storage configuration" in p for p in check_object(body))
    body["spec"]["predictor"]["logger"]["mode"] = "everything"
    assert any("logger" in p and "mode" in p for p in check_object(body))
