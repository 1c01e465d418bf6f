"""A Hugging Face Transformers model directory (what ``save_pretrained`` writes), read without loading it.

https://huggingface.co/docs/transformers/main_classes/model#transformers.PreTrainedModel.save_pretrained
Everything here reads files only (``config.json`` and the safetensors headers):
registering a model must not cost a second copy of it in memory.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from workbench_dsl.backends.registry import llm_tags

#: Where an MLflow model keeps the directory (``MLmodel`` beside it names the flavor).
MODEL_SUBDIR = "model"


class NotTransformersDir(ValueError):
    """The path is not a Transformers model directory; the message says what is missing."""


@dataclass(frozen=True)
class TransformersModel:
    """What a server needs to know about a Transformers directory, before loading it."""

    path: Path
    architecture: str
    model_type: str
    context_length: int | None
    parameters: int | None
    size_bytes: int

    def tags(self) -> dict[str, str]:
        """The model-version tags (:mod:`.llm_tags`) that record it."""
        out = {
            llm_tags.ARCHITECTURE: self.architecture,
            llm_tags.SIZE_BYTES: str(self.size_bytes),
        }
        if self.context_length is not None:
            out[llm_tags.CONTEXT_LENGTH] = str(self.context_length)
        if self.parameters is not None:
            out[llm_tags.PARAMETERS] = str(self.parameters)
        return out


def is_transformers_dir(path: str | Path) -> bool:
    """Whether ``path`` looks like ``save_pretrained`` output: a config.json with a model_type."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    try:
        return "model_type" in json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def describe(path: str | Path) -> TransformersModel:
    """Read ``path``'s config and weight headers; raises :class:`NotTransformersDir`."""
    p = Path(path)
    try:
        config = json.loads((p / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotTransformersDir(
            f"{p} has no config.json: not a Transformers model directory"
        ) from None
    except ValueError as e:
        raise NotTransformersDir(f"{p}/config.json is not valid JSON: {e}") from None
    weights = sorted(p.glob("*.safetensors")) + sorted(p.glob("*.bin"))
    if not weights:
        raise NotTransformersDir(
            f"{p} has a config.json but no weights (*.safetensors or pytorch_model.bin): "
            f"write the model with save_pretrained"
        )
    if not any((p / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        raise NotTransformersDir(
            f"{p} has no tokenizer (tokenizer.json): save the tokenizer there too "
            f"(tokenizer.save_pretrained(path))"
        )
    archs = config.get("architectures") or []
    model_type = str(config.get("model_type", ""))
    return TransformersModel(
        path=p,
        architecture=str(archs[0]) if archs else model_type,
        model_type=model_type,
        context_length=context_length(config),
        parameters=_count_parameters(p),
        size_bytes=sum(f.stat().st_size for f in p.rglob("*") if f.is_file()),
    )


def context_length(config: dict[str, object]) -> int | None:
    """The model's context length in tokens from its config (None when it names none)."""
    return llm_tags.context_length_from_config(config)


def _count_parameters(path: Path) -> int | None:
    """Parameters counted from the safetensors headers (8-byte length, then JSON shapes).

    https://huggingface.co/docs/safetensors/index#format -- no tensor is read. A
    directory with only ``pytorch_model.bin`` (a pickle) gives None: counting
    would mean loading it.
    """
    files = sorted(path.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for f in files:
        with open(f, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            n = 1
            for dim in entry["shape"]:
                n *= int(dim)
            total += n
    return total


def mlmodel(info: TransformersModel, *, transformers_version: str | None) -> str:
    """An ``MLmodel`` file naming the transformers flavor for a directory kept under ``model/``.

    The layout is MLflow's own for a transformers model saved with its weights
    (``model_binary: model``), so ``mlflow models`` tooling recognises the flavor.
    """
    import yaml

    flavor: dict[str, object] = {
        "code": None,
        "framework": "pt",
        "instance_type": "TextGenerationPipeline",
        "model_binary": MODEL_SUBDIR,
        "pipeline_model_type": info.architecture,
        "source_model_name": str(info.path.name),
        "task": "text-generation",
    }
    if transformers_version:
        flavor["transformers_version"] = transformers_version
    return yaml.safe_dump({"flavors": {"transformers": flavor}}, sort_keys=True)
