"""@serve's logging, scale-to-zero and kind='llm' options: checked when the pipeline is built."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from workbench_dsl import serve
from workbench_dsl.backends.deployer import LLMOptions
from workbench_dsl.backends.lineage.launchers import parse
from workbench_dsl.cli.app import app
from workbench_dsl.errors import PipelineDefinitionError
from workbench_dsl.runtime.serve_settings import ServeSettings

HERE = Path(__file__).name


def _settings(step: Any) -> ServeSettings:
    launcher = parse(step.component.component_spec.implementation.container.command[-1])
    assert launcher is not None
    return ServeSettings.from_json(launcher.config)


def test_an_llm_endpoint_is_a_stub_and_carries_its_knobs() -> None:
    @serve(kind="llm", endpoint="chat", max_model_len=256, max_batch_size=4, dtype="float32")
    def chat():
        """A tiny chat model."""

    settings = _settings(chat)
    assert settings.kind == "llm"
    assert settings.llm == LLMOptions(max_model_len=256, max_batch_size=4, dtype="float32")
    assert settings.predictor_source is None and settings.predictor_name is None
    assert (settings.log_requests, settings.scale_to_zero_after) == (True, 300)
    spec = chat.component.component_spec
    assert set(spec.inputs) == {"model_uri"} and set(spec.outputs) == {"url", "revision"}


@pytest.mark.parametrize("body", ["...", "pass", '"""doc"""\n    ...'])
def test_stub_bodies_are_accepted(tmp_path: Path, body: str) -> None:
    src = tmp_path / "stub.py"
    src.write_text(
        "from workbench_dsl import serve\n\n"
        f"@serve(kind='llm', endpoint='chat')\ndef chat():\n    {body}\n",
        encoding="utf-8",
    )
    from workbench_dsl.compile.loader import import_module

    assert import_module(str(src)).chat.settings.kind == "llm"


def test_an_llm_function_with_code_is_refused_at_its_line() -> None:
    def chat(model, instances):
        """Post-processing would be silently dropped."""
        return [x.upper() for x in instances]

    with pytest.raises(PipelineDefinitionError) as info:
        serve(kind="llm", endpoint="chat")(chat)
    message = str(info.value)
    assert f"{HERE}:{chat.__code__.co_firstlineno}: chat: " in message
    assert "must be a stub" in message and "in the client" in message
    assert "\n" not in message


def test_llm_knobs_on_a_predictive_endpoint_are_refused() -> None:
    def predict(model, instances):
        return instances

    with pytest.raises(PipelineDefinitionError) as info:
        serve(endpoint="p", max_batch_size=16, dtype="float16")(predict)
    assert f"{HERE}:{predict.__code__.co_firstlineno}: predict: " in str(info.value)
    assert "max_batch_size=16, dtype='float16' are LLM options" in str(info.value)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"request_log_sample": 0}, "request_log_sample must be a share"),
        ({"request_log_max_mb": 0}, "request_log_max_mb must be a whole number of MiB >= 1"),
        ({"scale_to_zero_after": 5}, "scale_to_zero_after must be a whole number of seconds"),
        ({"kind": "llm", "max_model_len": -1}, "max_model_len must be"),
        ({"kind": "llm", "dtype": "fp8"}, "dtype='fp8' must be one of"),
        ({"kind": "generative"}, "kind='generative' must be one of"),
    ],
)
def test_bad_new_options_name_the_file_and_line(options: dict[str, Any], words: str) -> None:
    def step():
        """Stub."""

    def predict(model, instances):
        return instances

    fn = step if options.get("kind") == "llm" else predict
    with pytest.raises(PipelineDefinitionError, match=words) as info:
        serve(endpoint="e", **options)(fn)
    assert f"{HERE}:{fn.__code__.co_firstlineno}: {fn.__name__}: " in str(info.value)


def _project(tmp_path: Path, serve_line: str) -> Path:
    (tmp_path / "workbench.toml").write_text(
        textwrap.dedent(
            """
            [profiles.gpu-2]
            cpu = "8"
            memory = "32Gi"
            accelerator = "nvidia.com/gpu"
            accelerator_count = 2
            """
        ),
        encoding="utf-8",
    )
    mod = tmp_path / "llm.py"
    mod.write_text(
        textwrap.dedent(
            f"""
            from workbench_dsl import pipeline, serve

            {serve_line}
            def chat():
                '''Chat.'''

            @pipeline(name="p")
            def p(uri: str = "models:/m/1"):
                chat(model_uri=uri)
            """
        ),
        encoding="utf-8",
    )
    return mod


def test_tensor_parallelism_beyond_the_profiles_gpus_exits_2(tmp_path: Path) -> None:
    mod = _project(
        tmp_path,
        '@serve(kind="llm", endpoint="chat", profile="gpu-2", tensor_parallel_size=4)',
    )
    r = CliRunner().invoke(app, ["compile", f"{mod}:p", "-o", str(tmp_path / "p.yaml")])
    assert r.exit_code == 2, r.output
    assert "llm.py:4: @serve chat(): tensor_parallel_size=4 needs 4 GPUs" in r.output
    assert "'gpu-2' gives 2" in r.output
    assert not (tmp_path / "p.yaml").exists()


def test_tensor_parallelism_within_the_profile_compiles(tmp_path: Path) -> None:
    mod = _project(
        tmp_path,
        '@serve(kind="llm", endpoint="chat", profile="gpu-2", tensor_parallel_size=2)',
    )
    out = tmp_path / "p.yaml"
    r = CliRunner().invoke(app, ["compile", f"{mod}:p", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.exists()


def test_a_context_length_beyond_a_constant_model_dirs_is_refused_at_the_call(
    tmp_path: Path,
) -> None:
    model = tmp_path / "tiny"
    model.mkdir()
    (model / "config.json").write_text('{"max_position_embeddings": 128}', encoding="utf-8")
    mod = tmp_path / "ctx.py"
    mod.write_text(
        textwrap.dedent(
            f"""
            from workbench_dsl import pipeline, serve

            @serve(kind="llm", endpoint="chat", max_model_len=512)
            def chat():
                '''Chat.'''

            @pipeline(name="p")
            def p():
                chat(model_uri={str(model)!r})
            """
        ),
        encoding="utf-8",
    )
    r = CliRunner().invoke(app, ["compile", f"{mod}:p", "-o", str(tmp_path / "p.yaml")])
    assert r.exit_code == 2, r.output
    assert "ctx.py:10: chat(): max_model_len=512 is beyond the context length of" in r.output
    assert "(128 tokens); use max_model_len <= 128" in r.output
