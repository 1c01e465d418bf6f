"""ServeSettings: the one typed contract from @serve to the launcher and the deployers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from workbench_dsl.backends.deployer import DeploySpec, LLMOptions
from workbench_dsl.compute import ClusterSettings, Resources
from workbench_dsl.errors import JobFailed
from workbench_dsl.runtime.serve import Located, _check_llm_model, deploy_model, settings_for
from workbench_dsl.runtime.serve_settings import ServeOptionError, ServeSettings
from workbench_dsl.runtime.settings import SettingsError


def _llm(**knobs: Any) -> ServeSettings:
    return ServeSettings(endpoint="chat", kind="llm", llm=LLMOptions(**knobs))


def test_round_trip_through_json_is_exact() -> None:
    settings = ServeSettings(
        endpoint="chat",
        min_replicas=0,
        max_replicas=2,
        log_requests=False,
        request_log_sample=0.25,
        request_log_max_mb=8,
        scale_to_zero_after=60,
        kind="llm",
        llm=LLMOptions(max_model_len=256, max_batch_size=4, dtype="bfloat16"),
        step="chat",
        profile="gpu-1",
        cluster=ClusterSettings(
            resources=Resources(cpu="4", accelerator="nvidia.com/gpu", accelerator_count=1)
        ),
    )
    text = json.dumps(settings.to_json(), sort_keys=True)
    assert ServeSettings.from_json(json.loads(text)) == settings


def test_the_deploy_spec_carries_every_new_field() -> None:
    settings = _llm(max_model_len=128, max_batch_size=1, batch_wait_ms=0)
    settings = settings.with_inputs({"request_log_sample": 1, "scale_to_zero_after": 30})
    spec = settings.deploy_spec("models:/m/1", "/tmp/m", "transformers", run_id="r1")
    assert isinstance(spec, DeploySpec)
    assert (spec.kind, spec.llm) == ("llm", LLMOptions(128, 1, 0, 1, "auto"))
    assert (spec.log_requests, spec.request_log_sample, spec.request_log_max_mb) == (
        True,
        1.0,
        64,
    )
    assert isinstance(spec.request_log_sample, float)
    assert spec.scale_to_zero_after == 30
    assert spec.predictor_source is None and spec.run_id == "r1"


def test_from_json_refuses_unknown_keys_and_wrong_types() -> None:
    good = ServeSettings(endpoint="e").to_json()
    with pytest.raises(SettingsError, match=r"unknown field\(s\) replicas"):
        ServeSettings.from_json({**good, "replicas": 2})
    with pytest.raises(SettingsError, match="endpoint must be a string or null"):
        ServeSettings.from_json({**good, "endpoint": 3})
    with pytest.raises(SettingsError, match="request_log_sample must be a share"):
        ServeSettings.from_json({**good, "request_log_sample": "all"})
    with pytest.raises(SettingsError, match=r"llm options: unknown field\(s\) top_k"):
        ServeSettings.from_json({**good, "kind": "llm", "llm": {"top_k": 3}})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"request_log_sample": 0.0},
            r"request_log_sample must be a share of requests, 0 < x <= 1",
        ),
        ({"request_log_sample": 1.5}, r"request_log_sample must be a share"),
        ({"request_log_max_mb": 0}, r"request_log_max_mb must be a whole number of MiB >= 1"),
        ({"log_requests": "yes"}, r"log_requests must be True or False"),
        ({"scale_to_zero_after": 9}, r"scale_to_zero_after must be a whole number of seconds"),
        ({"scale_to_zero_after": 3601}, r"from 10 to 3600"),
        ({"kind": "chat"}, r"kind='chat' must be one of 'predictive', 'llm'"),
        ({"kind": "llm"}, r"kind='llm' needs its LLM options"),
        ({"llm": LLMOptions()}, r"LLM options need kind='llm'"),
        ({"kind": "llm", "llm": LLMOptions(), "protocol": "v1"}, r"speaks the OpenAI API"),
        ({"kind": "llm", "llm": LLMOptions(max_batch_size=0)}, r"max_batch_size must be"),
        ({"kind": "llm", "llm": LLMOptions(max_model_len=0)}, r"max_model_len must be"),
        ({"kind": "llm", "llm": LLMOptions(batch_wait_ms=-1)}, r"batch_wait_ms must be"),
        ({"kind": "llm", "llm": LLMOptions(dtype="int8")}, r"dtype='int8' must be one of"),
        (
            {"kind": "llm", "llm": LLMOptions(tensor_parallel_size=0)},
            r"tensor_parallel_size must be",
        ),
    ],
)
def test_bad_values_are_refused_with_the_option_named(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ServeOptionError, match=message):
        ServeSettings(endpoint="e", **options)


def test_tensor_parallelism_needs_the_profiles_gpus() -> None:
    gpus = ClusterSettings(resources=Resources(accelerator="nvidia.com/gpu", accelerator_count=2))
    settings = ServeSettings(
        endpoint="e", kind="llm", llm=LLMOptions(tensor_parallel_size=4), profile="gpu-2"
    )
    problem = ServeSettings(**{**settings.__dict__, "cluster": gpus}).compute_problem()
    assert problem is not None
    assert "tensor_parallel_size=4 needs 4 GPUs" in problem and "'gpu-2' gives 2" in problem
    ok = ServeSettings(**{**settings.__dict__, "llm": LLMOptions(tensor_parallel_size=2)})
    assert ServeSettings(**{**ok.__dict__, "cluster": gpus}).compute_problem() is None
    # One replica on CPU (no GPUs) is a valid LLM endpoint: Transformers runs it.
    assert _llm().compute_problem() is None


def test_prebuilt_inputs_override_and_are_checked_again() -> None:
    config = ServeSettings().to_json()
    settings = settings_for(config, {"endpoint": "churn", "canary_percent": 5, "model_uri": "x"})
    assert (settings.endpoint, settings.canary_percent) == ("churn", 5)
    with pytest.raises(JobFailed, match="canary_percent must be a whole number from 0 to 100"):
        settings_for(config, {"endpoint": "churn", "canary_percent": 500})
    with pytest.raises(JobFailed, match="scale_to_zero_after"):
        settings_for(config, {"endpoint": "churn", "scale_to_zero_after": 1})


def _hf_dir(path: Path, **config: Any) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return path


def test_a_context_length_beyond_the_models_is_refused_before_deploying(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH_BACKEND", "local")
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    model = _hf_dir(tmp_path / "tiny", architectures=["GPT2LMHeadModel"], n_positions=128)
    with pytest.raises(JobFailed) as info:
        deploy_model(str(model), _llm(max_model_len=256))
    assert f"max_model_len=256 is beyond the context length of {model} (128 tokens)" in str(
        info.value
    )
    assert "use max_model_len <= 128" in str(info.value)
    assert not (tmp_path / "home").exists()  # nothing was deployed, not even a local root


def test_the_registered_versions_tag_gives_the_limit_when_the_files_are_remote() -> None:
    from workbench_dsl.backends.registry import llm_tags

    found = Located("s3://models/chat/3", "transformers", {llm_tags.TAG_CONTEXT_LENGTH: "64"})
    with pytest.raises(JobFailed, match=r"models:/chat/3 \(64 tokens\)"):
        _check_llm_model("models:/chat/3", found, _llm(max_model_len=65))
    _check_llm_model("models:/chat/3", found, _llm(max_model_len=64))
    _check_llm_model("models:/chat/3", found, _llm())  # None: the model's own
    sklearn = Located("s3://models/churn/1", "sklearn", {})
    with pytest.raises(JobFailed, match="is a sklearn model"):
        _check_llm_model("models:/churn/1", sklearn, _llm())
