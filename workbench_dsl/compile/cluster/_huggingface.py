"""Rules a schema cannot say for an LLM InferenceService: server arguments, GPUs, Knative annotations.

Ported from where each is enforced:

* the arguments of a ``huggingface`` model as KServe's Hugging Face server reads
  them: kserve/kserve ``python/huggingfaceserver/huggingfaceserver/__main__.py``
  (v0.17.0-v0.20.0 and master): ``--backend`` is ``Backend[name]`` (``auto``,
  ``huggingface``, ``vllm``); vLLM's engine flags exist only when the vLLM
  backend is on, and ``parse_known_args`` drops any other flag unread; its
  ``--dtype`` choices; vLLM (a CUDA build in the image) needs a GPU, and
  ``--tensor-parallel-size`` GPUs per replica;
* extended resources such as ``nvidia.com/gpu`` cannot be overcommitted: a request
  needs a limit and equals it (kubernetes ``pkg/apis/core/validation/validation.go``,
  ``ValidateResourceRequirements``);
* Knative's ``autoscaling.knative.dev/scale-to-zero-pod-retention-period``: a Go
  duration from 0 to ``WindowMax`` (1h) (knative/serving v0.48
  ``pkg/apis/autoscaling/annotation_validation.go``, ``validateLastPodRetention``).
"""

from __future__ import annotations

import re
from typing import Any

RETENTION = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
#: Knative's WindowMax, in seconds.
WINDOW_MAX_S = 3600.0
GPU = "nvidia.com/gpu"
BACKENDS = ("auto", "huggingface", "vllm")
#: The engine flags vLLM's parser adds (those we emit, and the ones people set most).
VLLM_FLAGS = (
    "--max-model-len",
    "--max-num-seqs",
    "--tensor-parallel-size",
    "--gpu-memory-utilization",
    "--max-num-batched-tokens",
)
#: ``--dtype`` choices: the Transformers backend's, and vLLM's ModelConfig dtypes.
DTYPES = {
    "huggingface": ("auto", "float16", "float32", "bfloat16", "float", "half"),
    "vllm": ("auto", "half", "float16", "bfloat16", "float", "float32"),
}
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
_UNITS["h"] = 3600.0
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def go_duration(text: str) -> float | None:
    """Seconds in a Go ``time.ParseDuration`` string (``"300s"``, ``"4m21s"``), None if invalid."""
    sign = -1.0 if text.startswith("-") else 1.0
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0.0
    total, pos = 0.0, 0
    for m in _PART.finditer(body):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total if body and pos == len(body) else None


def knative_annotations(annotations: dict[str, Any]) -> list[str]:
    """What Knative's webhook refuses in the annotations KServe copies to a revision."""
    value = annotations.get(RETENTION)
    if value is None:
        return []
    seconds = go_duration(str(value))
    if seconds is None:
        return [f"metadata.annotations[{RETENTION}]: invalid value: {value}"]
    if not 0 <= seconds <= WINDOW_MAX_S:
        return [f"metadata.annotations[{RETENTION}]: expected 0s <= {value} <= 1h0m0s"]
    return []


def _quantity(resources: dict[str, Any], part: str, name: str) -> str | None:
    value = (resources.get(part) or {}).get(name)
    return None if value is None else str(value)


def extended_resources(where: str, resources: Any) -> list[str]:
    """Extended resources (``vendor/name``) are not overcommittable: request == limit."""
    if not isinstance(resources, dict):
        return []
    problems = []
    names = set(resources.get("requests") or {}) | set(resources.get("limits") or {})
    for name in sorted(n for n in names if "/" in n and "kubernetes.io/" not in n):
        request = _quantity(resources, "requests", name)
        limit = _quantity(resources, "limits", name)
        if request is not None and limit is None:
            problems.append(
                f"{where}.resources.limits[{name}]: Required value: Limit must be set for "
                f"non overcommitable resources"
            )
        elif request is not None and request != limit:
            problems.append(
                f"{where}.resources.requests[{name}]: Invalid value: {request!r}: must be "
                f"equal to {name} limit of {limit}"
            )
    return problems


def parse_args(args: Any) -> dict[str, str]:
    """``--flag=value`` and ``--flag value`` arguments as a dict (a bare flag maps to "")."""
    out: dict[str, str] = {}
    items = [str(a) for a in args or []]
    i = 0
    while i < len(items):
        arg = items[i]
        if arg.startswith("--") and "=" in arg:
            key, value = arg.split("=", 1)
            out[key] = value
        elif arg.startswith("--"):
            nxt = items[i + 1] if i + 1 < len(items) else None
            if nxt is not None and not nxt.startswith("--"):
                out[arg] = nxt
                i += 1
            else:
                out[arg] = ""
        i += 1
    return out


def _gpus(model: dict[str, Any]) -> int:
    limit = _quantity(model.get("resources") or {}, "limits", GPU) or "0"
    return int(limit) if limit.isdigit() else 0


def huggingface_model(model: dict[str, Any]) -> list[str]:
    """What KServe's Hugging Face server would refuse or drop in a ``huggingface`` model."""
    where = "spec.predictor.model.args"
    args = parse_args(model.get("args"))
    backend = args.get("--backend", "auto")
    if backend not in BACKENDS:
        return [f"{where}: --backend={backend} is not one of {', '.join(BACKENDS)}"]
    problems = []
    gpus = _gpus(model)
    if backend == "vllm" and gpus == 0:
        problems.append(
            f"{where}: --backend=vllm needs {GPU} in the model's resource limits (the "
            f"runtime's vLLM is a CUDA build and does not start without a GPU)"
        )
    tp = args.get("--tensor-parallel-size", "1")
    if backend == "vllm" and (not tp.isdigit() or int(tp) > max(gpus, 1)):
        problems.append(
            f"{where}: --tensor-parallel-size={tp} needs as many {GPU} per replica "
            f"(the limit is {gpus})"
        )
    if backend == "huggingface":
        dropped = [f for f in VLLM_FLAGS if f in args]
        if dropped:
            problems.append(
                f"{where}: {', '.join(dropped)} exist only with --backend=vllm; the "
                f"huggingface backend drops them unread"
            )
    dtype = args.get("--dtype")
    choices = DTYPES.get(backend, DTYPES["vllm"])
    if dtype is not None and dtype not in choices:
        problems.append(f"{where}: --dtype={dtype} is not one of {', '.join(choices)}")
    for flag in ("--max-model-len", "--max_model_len", "--max-num-seqs"):
        value = args.get(flag)
        if value is not None and (not value.isdigit() or int(value) < 1):
            problems.append(f"{where}: {flag}={value} must be a whole number >= 1")
    return problems
