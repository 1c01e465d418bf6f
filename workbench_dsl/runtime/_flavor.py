"""Reading a step's model artifact and telling its MLflow flavor (sklearn, pytorch, pyfunc, transformers)."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

from workbench_dsl.errors import JobFailed

_HINTS = {"sklearn": "sklearn", "scikit-learn": "sklearn", "torch": "pytorch", "pytorch": "pytorch"}


def load_model_artifact(
    path: str | Path, flavor: str = "auto", hint: str | None = None
) -> tuple[Any, str]:
    """The model in a ``Model`` artifact and its flavor.

    A directory holding an ``MLmodel`` file is an MLflow model already: its path is
    returned as is (flavor ``mlflow``). Otherwise the file (or the only file in the
    directory) is unpickled, or read with ``torch.load`` when it is a torch archive.

    Args:
        path: The artifact's local path.
        flavor: ``auto`` to detect, or ``sklearn``, ``pytorch``, ``pyfunc``.
        hint: The artifact's ``framework`` metadata, when the producing step set it.
    """
    p = _local_path(path)
    if p.is_dir() and (p / "MLmodel").is_file():
        return str(p), "mlflow"
    if flavor == "transformers" or (
        flavor == "auto" and p.is_dir() and (p / "config.json").is_file()
    ):
        return str(_transformers_dir(p)), "transformers"
    if p.is_dir():
        files = [f for f in p.rglob("*") if f.is_file()]
        if len(files) != 1:
            raise JobFailed(
                f"the model artifact {p} is a directory with {len(files)} files and no MLmodel; "
                f"write one pickled model file, or save an MLflow model there"
            )
        p = files[0]
    if not p.exists():
        raise JobFailed(f"the model artifact {p} does not exist (did the training step write it?)")
    obj = _load_file(p)
    if flavor == "auto":
        flavor = _HINTS.get((hint or "").lower()) or detect_flavor(obj)
    return obj, flavor


def _local_path(path: str | Path) -> Path:
    """The local path of an artifact path or a ``file://`` URI (other schemes: an error)."""
    text = str(path)
    if text.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(text).path))
    if "://" in text:
        raise JobFailed(
            f"cannot register {text}: only a local path or a file:// URI can be read here "
            f"(copy the model into a step's Output[Model] first)"
        )
    return Path(text)


def _transformers_dir(p: Path) -> Path:
    """``p`` checked to be a Transformers directory (config, weights, tokenizer)."""
    from workbench_dsl.backends.registry._transformers import NotTransformersDir, describe

    try:
        describe(p)
    except NotTransformersDir as e:
        raise JobFailed(str(e)) from None
    return p


def _load_file(p: Path) -> Any:
    with open(p, "rb") as f:
        head = f.read(4)
    if head[:2] == b"PK":
        # torch.save writes a zip archive.
        try:
            import torch
        except ImportError:
            raise JobFailed(
                f"{p} looks like a torch archive but torch is not installed "
                f"(install the extra: pip install 'workbench-dsl[torch]')"
            ) from None
        return torch.load(p, weights_only=False, map_location="cpu")
    try:
        with open(p, "rb") as f:
            return pickle.load(f)
    except Exception as pickle_error:
        try:
            import joblib

            return joblib.load(p)
        except Exception:
            raise JobFailed(
                f"cannot read the model artifact {p}: {type(pickle_error).__name__}: "
                f"{pickle_error} (write it with pickle, joblib or torch.save)"
            ) from None


def detect_flavor(obj: Any) -> str:
    """``sklearn`` for estimators, ``pytorch`` for ``torch.nn.Module``, ``pyfunc`` for anything with ``predict``."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.nn.Module):
        return "pytorch"
    module = type(obj).__module__.split(".")[0]
    if module == "sklearn" or (
        hasattr(obj, "get_params") and hasattr(obj, "fit") and hasattr(obj, "predict")
    ):
        return "sklearn"
    if callable(getattr(obj, "predict", None)):
        return "pyfunc"
    raise JobFailed(
        f"cannot tell the MLflow flavor of a {type(obj).__module__}.{type(obj).__qualname__}: "
        f"it is not a scikit-learn estimator or torch module and has no predict(); "
        f"pass flavor='sklearn', 'pytorch' or 'pyfunc' to @register"
    )
