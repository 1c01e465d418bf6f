"""@register with a Hugging Face Transformers directory: flavor, size and the llm.* tags, gates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from test_register_runtime import execute, home, mlflow_template

from workbench_dsl import Input, Model, register
from workbench_dsl.backends.registry import llm_tags, open_registry


@register(model="chat", gate={"perplexity": "< 1000"}, alias="staging")
def evaluate_llm(model: Input[Model]) -> dict:
    import json
    from pathlib import Path

    config = json.loads((Path(model.path) / "config.json").read_text())
    # A real evaluation would generate; the gate only needs a number here.
    return {"perplexity": 10.0 * config["num_hidden_layers"]}


@register(model="chat", gate={"perplexity": "< 5"})
def strict(model: Input[Model]) -> dict:
    return {"perplexity": 20.0}


def test_a_transformers_directory_registers_with_its_flavor_size_and_tags(
    home: Path,
    tiny_llm: Path,
    tmp_path: Path,
) -> None:
    out = execute(evaluate_llm, tmp_path / "o", model=tiny_llm)
    assert out == {"promoted": True, "version": "1", "model_uri": "models:/chat/1"}

    registry = open_registry()
    v = registry.get_version("chat", "1")
    assert v.aliases == ("staging",)
    assert v.tags["workbench.flavor"] == "transformers"
    assert v.tags[llm_tags.ARCHITECTURE] == "LlamaForCausalLM"
    assert v.tags[llm_tags.CONTEXT_LENGTH] == "128"
    size = sum(f.stat().st_size for f in tiny_llm.rglob("*") if f.is_file())
    assert v.tags[llm_tags.SIZE_BYTES] == str(size)
    # Counted from the safetensors header; the same number torch counts.
    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(tiny_llm)
    assert v.tags[llm_tags.PARAMETERS] == str(sum(p.numel() for p in loaded.parameters()))

    # The registered files: the directory as it was, beside an MLmodel naming the flavor.
    from workbench_dsl.backends.deployer._predictors import model_dir

    stored = model_dir(registry.download_uri("chat", "1"))
    meta = yaml.safe_load((stored / "MLmodel").read_text())
    assert meta["flavors"]["transformers"]["model_binary"] == "model"
    assert meta["flavors"]["transformers"]["task"] == "text-generation"
    for f in tiny_llm.iterdir():
        assert (stored / "model" / f.name).read_bytes() == f.read_bytes()


def test_a_failed_gate_registers_no_transformers_model(
    home: Path,
    tiny_llm: Path,
    tmp_path: Path,
) -> None:
    out = execute(strict, tmp_path / "o", model=tiny_llm)
    assert out == {"promoted": False, "version": "", "model_uri": ""}
    assert open_registry().models() == []


def test_a_directory_without_weights_or_tokenizer_is_refused_in_one_line(
    home: Path,
    tiny_llm: Path,
    tmp_path: Path,
) -> None:
    from workbench_dsl.errors import JobFailed
    from workbench_dsl.runtime.register import RegisterSettings, register_evaluated

    broken = tmp_path / "broken"
    shutil.copytree(tiny_llm, broken)
    (broken / "tokenizer.json").unlink()
    (broken / "tokenizer_config.json").unlink()
    settings = RegisterSettings(model="chat", flavor="transformers")
    with pytest.raises(JobFailed, match=r"has no tokenizer \(tokenizer.json\)"):
        register_evaluated(str(broken), {"ok": 1}, settings)
    # Given by URI: a file:// URI of the directory registers too.
    out = register_evaluated(tiny_llm.as_uri(), {"ok": 1}, settings)
    assert out.model_uri == "models:/chat/1"
    assert json.loads((tiny_llm / "config.json").read_text())["model_type"] == "llama"


def test_serving_checks_max_model_len_against_the_registered_context_length(
    home: Path,
    tiny_llm: Path,
) -> None:
    from workbench_dsl.backends.deployer import LLMOptions
    from workbench_dsl.errors import JobFailed
    from workbench_dsl.runtime.register import RegisterSettings, register_evaluated
    from workbench_dsl.runtime.serve import deploy_model
    from workbench_dsl.runtime.serve_settings import ServeSettings

    register_evaluated(str(tiny_llm), {"ok": 1}, RegisterSettings(model="chat"))
    too_long = ServeSettings(endpoint="chat", kind="llm", llm=LLMOptions(max_model_len=512))
    with pytest.raises(
        JobFailed,
        match=r"max_model_len=512 is beyond the context length of models:/chat/1 \(128 tokens\)",
    ):
        deploy_model("models:/chat/1", too_long)

    import pickle

    other = home / "m.pkl"
    other.write_bytes(pickle.dumps({"predict": None}))
    register_evaluated(str(other), {"ok": 1}, RegisterSettings(model="chat", flavor="pyfunc"))
    llm = ServeSettings(endpoint="chat", kind="llm", llm=LLMOptions())
    with pytest.raises(JobFailed, match=r"serves a Hugging Face Transformers model, but"):
        deploy_model("models:/chat/2", llm)
