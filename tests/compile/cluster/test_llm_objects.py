"""Every LLM InferenceService @serve(kind="llm") can make is accepted by KServe 0.17-0.21, or refused
with the reason before anything is created; the ported rules are shown able to fail."""

from __future__ import annotations

import itertools
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from workbench_dsl import serve
from workbench_dsl.compile.cluster import check_object, check_patch
from workbench_dsl.compile.cluster._huggingface import go_duration
from workbench_dsl.compile.loader import import_module
from workbench_dsl.config import load_config
from workbench_dsl.errors import PipelineDefinitionError
from workbench_dsl.runtime.plan import plan_serve

TOML = """
[cluster]
namespace = "ml"
kserve_deployment_mode = "{mode}"

[profiles.cpu-only]
cpu = "4"
memory = "16Gi"

[profiles.gpu-1]
cpu = "8"
memory = "32Gi"
accelerator = "nvidia.com/gpu"
accelerator_count = 1

[profiles.gpu-4]
cpu = "32"
memory = "128Gi"
accelerator = "nvidia.com/gpu"
accelerator_count = 4
node_selector = {{ "cloud.google.com/gke-accelerator" = "nvidia-l4" }}
tolerations = [{{ key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" }}]
"""
GPUS = {"cpu-only": 0, "gpu-1": 1, "gpu-4": 4}
#: (max_model_len, max_batch_size, batch_wait_ms, tensor_parallel_size, dtype)
KNOBS = [
    (None, 1, 0, 1, "auto"),
    (256, 8, 10, 1, "float16"),
    (4096, 64, 50, 2, "bfloat16"),
    (128, 1, 5, 4, "float32"),
    (None, 16, 10, 8, "auto"),
]


def _project(tmp_path: Path, mode: str) -> Any:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "workbench.toml").write_text(TOML.format(mode=mode), encoding="utf-8")
    (tmp_path / "steps.py").write_text(
        textwrap.dedent(
            '''
            def chat():
                """An LLM endpoint."""
            '''
        ),
        encoding="utf-8",
    )
    return import_module(str(tmp_path / "steps.py"))


def _accepted(obj: Any) -> list[str]:
    found = list(obj.problems)
    found += check_patch(obj.base, obj.body) if obj.base is not None else check_object(obj.body)
    return found


@pytest.mark.parametrize("mode", ["Knative", "Standard"])
def test_every_llm_inferenceservice_is_accepted_or_refused_with_its_reason(
    tmp_path: Path, mode: str
) -> None:
    mod = _project(tmp_path, mode)
    config = load_config(tmp_path)
    outcomes = {"accepted": 0, "refused at build": 0, "refused for the cluster": 0}
    # Scale to zero with Knative's shortest and longest idle time, and none.
    replicas = ((0, 2, 10), (0, 2, 3600), (1, 1, 300))
    for knobs, percent, auth, profile, (low, high, idle) in itertools.product(
        KNOBS, (10, 100), ("none", "token"), GPUS, replicas
    ):
        max_len, batch, wait, tp, dtype = knobs
        step = serve(
            kind="llm",
            endpoint="chat",
            max_model_len=max_len,
            max_batch_size=batch,
            batch_wait_ms=wait,
            tensor_parallel_size=tp,
            dtype=dtype,  # type: ignore[arg-type]
            canary_percent=percent,
            auth=auth,
            profile=profile,
            min_replicas=low,
            max_replicas=high,
            scale_to_zero_after=idle,
        )(mod.chat)
        case = (knobs, percent, auth, profile, low, idle, mode)
        try:
            cfg = step.launcher_settings(config).to_json()
        except PipelineDefinitionError as e:
            standard = mode == "Standard" and (percent < 100 or low == 0)
            assert standard or tp > GPUS[profile], case
            assert str(e).startswith(f"{mod.__file__}:2: @serve chat(): "), str(e)
            outcomes["refused at build"] += 1
            continue
        created, patch = plan_serve("chat", cfg, {"model_uri": "models:/chat/1"})
        model = created.body["spec"]["predictor"]["model"]
        assert model["modelFormat"] == {"name": "huggingface"}
        gpus = GPUS[profile]
        assert model["args"][0] == ("--backend=vllm" if gpus else "--backend=huggingface")
        if gpus:
            assert model["resources"]["limits"]["nvidia.com/gpu"] == str(gpus)
            assert f"--max-num-seqs={batch}" in model["args"]
            assert f"--tensor-parallel-size={tp}" in model["args"]
        assert f"--dtype={dtype}" in model["args"]
        assert any(str(max_len) in a for a in model["args"]) == (max_len is not None)
        assert created.body["spec"]["predictor"]["minReplicas"] == low
        annotations = created.body["metadata"]["annotations"]
        retention = annotations.get("autoscaling.knative.dev/scale-to-zero-pod-retention-period")
        assert retention == (f"{idle}s" if low == 0 else None), case
        expected = []
        if gpus == 0 and batch > 1:
            expected.append("max_batch_size")
        if auth == "token":
            expected.append("auth='token'")
        for obj in (created, patch):
            found = _accepted(obj)
            assert len(found) == len(expected), (case, found)
            assert all(word in f for word, f in zip(expected, found, strict=True)), found
        outcomes["refused for the cluster" if expected else "accepted"] += 1
    assert all(outcomes.values()), outcomes


def _isvc(args: list[str], limits: dict[str, str] | None = None) -> dict[str, Any]:
    resources = {"requests": dict(limits or {}), "limits": dict(limits or {})}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "chat",
            "annotations": {"serving.kserve.io/deploymentMode": "Knative"},
        },
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "huggingface"},
                    "storageUri": "s3://b/m",
                    "args": args,
                    "resources": resources,
                }
            }
        },
    }


@pytest.mark.parametrize(
    ("args", "limits", "words"),
    [
        (["--backend=vllm"], None, "--backend=vllm needs nvidia.com/gpu"),
        (
            ["--backend=vllm", "--tensor-parallel-size=4"],
            {"nvidia.com/gpu": "2"},
            "--tensor-parallel-size=4 needs as many nvidia.com/gpu",
        ),
        (["--backend=huggingface", "--max-num-seqs=8"], None, "drops them unread"),
        (["--backend=tgi"], None, "--backend=tgi is not one of"),
        (["--backend=vllm", "--dtype=fp8"], {"nvidia.com/gpu": "1"}, "--dtype=fp8 is not one of"),
        (["--backend=huggingface", "--max_model_len=0"], None, "must be a whole number >= 1"),
    ],
)
def test_the_ported_huggingface_rules_refuse_what_the_server_refuses(
    args: list[str], limits: dict[str, str] | None, words: str
) -> None:
    assert any(words in p for p in check_object(_isvc(args, limits))), check_object(
        _isvc(args, limits)
    )


def test_gpu_requests_must_equal_limits_and_retention_is_at_most_an_hour() -> None:
    body = _isvc(["--backend=vllm"], {"nvidia.com/gpu": "1"})
    assert check_object(body) == []
    uneven = json.loads(json.dumps(body))
    uneven["spec"]["predictor"]["model"]["resources"]["requests"]["nvidia.com/gpu"] = "2"
    assert any("must be equal to nvidia.com/gpu limit of 1" in p for p in check_object(uneven))
    del uneven["spec"]["predictor"]["model"]["resources"]["limits"]["nvidia.com/gpu"]
    assert any("Limit must be set" in p for p in check_object(uneven))
    key = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
    for value, ok in (("300s", True), ("4m21s", True), ("0", True), ("311m", False), ("5x", False)):
        body["metadata"]["annotations"][key] = value
        assert (check_object(body) == []) is ok, value
    assert go_duration("1h0m0s") == 3600 and go_duration("-42s") == -42 and go_duration("") is None


def test_a_scale_to_zero_llm_inferenceservice_is_checked_by_the_knative_rules(
    tmp_path: Path,
) -> None:
    mod = _project(tmp_path, "Knative")
    step = serve(kind="llm", endpoint="chat", max_batch_size=1, min_replicas=0)(mod.chat)
    cfg = step.launcher_settings(load_config(tmp_path)).to_json()
    created, _ = plan_serve("chat", cfg, {"model_uri": "models:/chat/1"})
    assert _accepted(created) == []
    standard = json.loads(json.dumps(created.body))
    standard["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "Standard"
    assert any("0 (scale to zero) needs the Knative" in p for p in check_object(standard))
    too_long = json.loads(json.dumps(created.body))
    too_long["metadata"]["annotations"][
        "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
    ] = "3601s"
    assert any("<= 1h0m0s" in p for p in check_object(too_long))
