"""An LLM endpoint on a cluster: KServe's Hugging Face runtime, with vLLM when the profile gives GPUs.

The predictor is a ``model`` of format ``huggingface`` (the
``kserve-huggingfaceserver`` ClusterServingRuntime selects itself for it) whose
``args`` carry the knobs. The flags are the ones the server's parsers define in
kserve/kserve ``python/huggingfaceserver/huggingfaceserver/__main__.py``
(v0.17.0 to v0.20.0 and master, unchanged): ``--backend`` (``auto``,
``huggingface``, ``vllm``) and ``--max_model_len``/``--dtype`` are its own; with
the vLLM backend it adds vLLM's engine flags (``--max-model-len``,
``--max-num-seqs``, ``--tensor-parallel-size``, ``--dtype``). It reads them with
``parse_known_args``, so a flag the chosen backend does not define is dropped
without a word: each backend gets only its own.

vLLM in the runtime's image is a CUDA build and does not start without a GPU,
so a profile without ``nvidia.com/gpu`` gets the Transformers backend, which
generates one request at a time. The OpenAI-compatible API is served under
``/openai/v1`` (``completions``, ``chat/completions``, ``models``).
See https://kserve.github.io/website/docs/model-serving/generative-inference/overview
"""

from __future__ import annotations

from typing import Any

from workbench_dsl.backends.deployer._llm_options import LLMOptions

#: The model format the Hugging Face ServingRuntime supports (``supportedModelFormats``).
MODEL_FORMAT = "huggingface"
#: The GPU resource vLLM's CUDA build runs on.
GPU_RESOURCE = "nvidia.com/gpu"
#: Where the OpenAI-compatible routes live, below the InferenceService's URL.
OPENAI_ROUTE = "/openai/v1"


def gpus(resources: dict[str, dict[str, str]]) -> int:
    """The ``nvidia.com/gpu`` a replica gets (its limit; a GPU request must equal it)."""
    for part in ("limits", "requests"):
        value = str((resources.get(part) or {}).get(GPU_RESOURCE) or "")
        if value.isdigit():
            return int(value)
    return 0


def backend(resources: dict[str, dict[str, str]]) -> str:
    """``vllm`` with GPUs, else ``huggingface`` (Transformers)."""
    return "vllm" if gpus(resources) > 0 else "huggingface"


def args(llm: LLMOptions, resources: dict[str, dict[str, str]]) -> list[str]:
    """The server's arguments for these knobs, spelt as the chosen backend's parser defines them."""
    if backend(resources) == "vllm":
        out = ["--backend=vllm"]
        if llm.max_model_len is not None:
            out.append(f"--max-model-len={llm.max_model_len}")
        return [
            *out,
            f"--max-num-seqs={llm.max_batch_size}",
            f"--tensor-parallel-size={llm.tensor_parallel_size}",
            f"--dtype={llm.dtype}",
        ]
    out = ["--backend=huggingface"]
    if llm.max_model_len is not None:
        out.append(f"--max_model_len={llm.max_model_len}")
    return [*out, f"--dtype={llm.dtype}"]


def problems(endpoint: str, llm: LLMOptions, resources: dict[str, dict[str, str]]) -> list[str]:
    """What the runtime cannot do of these knobs with these resources (empty: all of it)."""
    found = []
    count = gpus(resources)
    if count == 0 and llm.max_batch_size > 1:
        found.append(
            f"endpoint {endpoint}: max_batch_size={llm.max_batch_size} needs vLLM, which runs "
            f"only with GPUs; without {GPU_RESOURCE} in the profile KServe's Transformers "
            f"backend generates one request at a time: use a profile with GPUs or "
            f"max_batch_size=1"
        )
    if llm.tensor_parallel_size > max(count, 1):
        found.append(
            f"endpoint {endpoint}: tensor_parallel_size={llm.tensor_parallel_size} needs as many "
            f"GPUs per replica, the profile gives {count}"
        )
    return found


def model_spec(
    storage: str, llm: LLMOptions, resources: dict[str, dict[str, str]], requirements: Any
) -> Any:
    """The predictor's ``model`` (KServe SDK model): format, storage, arguments, resources."""
    from kserve.models import V1beta1ModelFormat, V1beta1ModelSpec

    return V1beta1ModelSpec(
        model_format=V1beta1ModelFormat(name=MODEL_FORMAT),
        protocol_version="v2",
        storage_uri=storage,
        args=args(llm, resources),
        resources=requirements,
    )
