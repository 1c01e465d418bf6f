"""The LLM version tags and the context length read from a Transformers config.json."""

from __future__ import annotations

import json
from pathlib import Path

from workbench_dsl.backends.registry import llm_tags


def test_context_length_from_the_keys_model_families_use() -> None:
    assert llm_tags.context_length_from_config({"n_positions": 1024, "n_ctx": 512}) == 1024
    assert llm_tags.context_length_from_config({"max_position_embeddings": 4096}) == 4096
    assert llm_tags.context_length_from_config({"max_seq_len": 2048}) == 2048
    assert llm_tags.context_length_from_config({"text_config": {"n_positions": 77}}) == 77
    assert llm_tags.context_length_from_config({"max_position_embeddings": 0}) is None
    assert llm_tags.context_length_from_config({"hidden_size": 64}) is None


def test_read_config_of_a_saved_model_dir(tmp_path: Path) -> None:
    assert llm_tags.read_config(tmp_path) is None
    (tmp_path / "config.json").write_text(json.dumps({"n_positions": 64}), encoding="utf-8")
    config = llm_tags.read_config(tmp_path)
    assert config is not None and llm_tags.context_length_from_config(config) == 64
    (tmp_path / "config.json").write_text("[1, 2]", encoding="utf-8")
    assert llm_tags.read_config(tmp_path) is None


def test_tag_names_and_reading_them_back() -> None:
    assert llm_tags.TAGS == (
        "llm.architecture",
        "llm.context_length",
        "llm.parameters",
        "llm.size_bytes",
    )
    assert llm_tags.context_length_from_tags({llm_tags.TAG_CONTEXT_LENGTH: "2048"}) == 2048
    assert llm_tags.context_length_from_tags({llm_tags.TAG_CONTEXT_LENGTH: "n/a"}) is None
    assert llm_tags.context_length_from_tags({}) is None
