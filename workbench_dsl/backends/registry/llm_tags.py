"""What the registry records about a generative model: the version tags a server needs, one definition.

``@register`` writes these MLflow model-version tags for a Hugging Face
Transformers model directory (what ``save_pretrained`` writes); ``@serve(kind="llm")``
reads them before anything is deployed (a ``max_model_len`` beyond the
model's context length is refused with the model's limit). Both import the
names from here, so they cannot drift apart. Importing this module is cheap.
See https://huggingface.co/docs/transformers/main_classes/configuration
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: The flavor recorded (``workbench.flavor``) for a Transformers model directory.
FLAVOR = "transformers"
#: ``config.json``'s ``architectures[0]`` (e.g. ``GPT2LMHeadModel``).
TAG_ARCHITECTURE = "llm.architecture"
#: Tokens of prompt plus completion the model can attend to (a whole number, as text).
TAG_CONTEXT_LENGTH = "llm.context_length"
#: Parameters in all (a whole number, as text).
TAG_PARAMETERS = "llm.parameters"
#: The weights' size on disk in bytes (a whole number, as text).
TAG_SIZE_BYTES = "llm.size_bytes"
#: Every tag above.
TAGS = (TAG_ARCHITECTURE, TAG_CONTEXT_LENGTH, TAG_PARAMETERS, TAG_SIZE_BYTES)

#: ``config.json`` keys that hold the context length, in the order Transformers'
#: model families use them (GPT-2 ``n_positions``, Llama/Mistral/BERT
#: ``max_position_embeddings``, MPT ``max_seq_len``, ChatGLM ``seq_length``, ...).
CONTEXT_LENGTH_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "max_sequence_length",
    "n_ctx",
)


def _positive(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


def context_length_from_config(config: Mapping[str, Any]) -> int | None:
    """The context length a Transformers ``config.json`` declares (None when it names none).

    A nested ``text_config`` (multimodal models) is read when the top level has none.
    """
    for key in CONTEXT_LENGTH_KEYS:
        found = _positive(config.get(key))
        if found is not None:
            return found
    text = config.get("text_config")
    if isinstance(text, Mapping):
        return context_length_from_config(text)
    return None


def read_config(model_dir: str | Path) -> dict[str, Any] | None:
    """``model_dir/config.json`` as a dict, or None when it is missing or not a JSON object."""
    path = Path(model_dir) / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def context_length_from_tags(tags: Mapping[str, str]) -> int | None:
    """The context length a registered version's tags record (None when they record none)."""
    raw = str(tags.get(TAG_CONTEXT_LENGTH) or "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None
