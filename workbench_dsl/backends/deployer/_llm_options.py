"""The knobs of an LLM endpoint (``@serve(kind="llm")``): context length, batching, parallelism, dtype.

One frozen type, read by both deployers: the local OpenAI-compatible model
server (Transformers on CPU) and the cluster's KServe Hugging Face runtime
(vLLM with GPUs). It lives in ``backends/`` because the backends import neither
``runtime`` nor ``dsl``; those import it from here.
See https://kserve.github.io/website/latest/modelserving/v1beta1/llm/huggingface/
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

#: What an endpoint serves: a classical model behind a predictor, or a generative model.
KINDS = ("predictive", "llm")
#: The weights' dtype ("auto": the model's own ``torch_dtype``, as KServe and vLLM read it).
DTYPES = ("auto", "float32", "float16", "bfloat16")


def _whole(value: Any, minimum: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= minimum


@dataclass(frozen=True)
class LLMOptions:
    """How an LLM endpoint runs its model.

    Attributes:
        max_model_len: Tokens of prompt plus completion at most (None: the model's own
            context length).
        max_batch_size: Sequences generated concurrently (1: no batching).
        batch_wait_ms: How long the server waits to fill a batch before it starts one.
        tensor_parallel_size: GPUs one replica shards the model over (cluster only).
        dtype: The weights' dtype, one of :data:`DTYPES`.
    """

    max_model_len: int | None = None
    max_batch_size: int = 8
    batch_wait_ms: int = 10
    tensor_parallel_size: int = 1
    dtype: str = "auto"

    def problem(self) -> str | None:
        """None when every knob is valid, else what is wrong with the first that is not."""
        if self.max_model_len is not None and not _whole(self.max_model_len, 1):
            return (
                f"max_model_len must be a whole number of tokens >= 1, or None for the "
                f"model's own context length (got {self.max_model_len!r})"
            )
        if not _whole(self.max_batch_size, 1):
            return (
                f"max_batch_size must be a whole number >= 1 (1: no batching) "
                f"(got {self.max_batch_size!r})"
            )
        if not _whole(self.batch_wait_ms, 0):
            return (
                f"batch_wait_ms must be a whole number of milliseconds >= 0 "
                f"(got {self.batch_wait_ms!r})"
            )
        if not _whole(self.tensor_parallel_size, 1):
            return (
                f"tensor_parallel_size must be a whole number >= 1 "
                f"(got {self.tensor_parallel_size!r})"
            )
        if self.dtype not in DTYPES:
            return f"dtype={self.dtype!r} must be one of {', '.join(map(repr, DTYPES))}"
        return None

    def context_problem(self, limit: int | None, model: str) -> str | None:
        """Why ``max_model_len`` cannot work with a model of context length ``limit`` (None: it can).

        ``limit`` None (the model records none) leaves the check to the server.
        """
        if limit is None or self.max_model_len is None or self.max_model_len <= limit:
            return None
        return (
            f"max_model_len={self.max_model_len} is beyond the context length of {model} "
            f"({limit} tokens); use max_model_len <= {limit}, or None for the model's own"
        )

    def to_json(self) -> dict[str, Any]:
        """Every knob by name (stable keys)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Any) -> LLMOptions:
        """Read what :meth:`to_json` wrote; ``ValueError`` for an unknown key or a bad value."""
        if not isinstance(data, dict):
            raise ValueError(f"llm options must be an object (got {data!r})")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"llm options: unknown field(s) {', '.join(unknown)}")
        options = cls(**data)
        problem = options.problem()
        if problem:
            raise ValueError(problem)
        return options
