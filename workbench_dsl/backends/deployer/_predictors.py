"""Loading one revision inside a model server: the flavor's model, or the user's predictor around it.

A user predictor is either a function ``predict(model, instances)`` (``model``
is the loaded model: the scikit-learn estimator, the torch module, or an MLflow
pyfunc) or a class with ``load(self, model_dir)`` and ``predict(self, instances)``
(``model_dir`` is the local MLflow model directory). ``instances`` is a list,
one item per instance, for both protocols.
"""

from __future__ import annotations

import hashlib
import inspect
import linecache
import pickle
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

_PRELUDE = "from typing import *\n"


class Predictor:
    """A loaded revision: ``predict(instances)`` returns one prediction per instance."""

    def __init__(self, fn: Callable[[Any], Any], *, takes_list: bool) -> None:
        self._fn = fn
        self.takes_list = takes_list

    def predict(self, instances: Any) -> Any:
        return self._fn(instances)

    def close(self) -> None:
        """Release what the revision holds once it stops serving (a no-op for most)."""


class LLMPredictor(Predictor):
    """An LLM revision: served on the OpenAI routes; V1/V2 predictions are refused with where to go."""

    def __init__(self, engine: Any) -> None:
        super().__init__(self._refuse, takes_list=True)
        self.engine = engine

    def _refuse(self, instances: Any) -> Any:
        name = self.engine.endpoint
        raise ValueError(
            f"endpoint {name} serves a language model: POST /openai/v1/completions or "
            f"/openai/v1/chat/completions with model {name!r}"
        )

    def close(self) -> None:
        self.engine.close()


def load_llm_revision(
    storage: str, options: dict[str, Any], endpoint: str, revision: str
) -> LLMPredictor:
    """Load an LLM revision (a Transformers directory) with its knobs (``LLMOptions`` fields)."""
    from workbench_dsl.backends.deployer._llm_engine import Engine

    tp = int(options.get("tensor_parallel_size") or 1)
    if tp > 1:
        # vLLM's knob on a cluster; here the model runs in this one process.
        print(
            f"{revision}: tensor_parallel_size={tp} applies on a cluster; the local server "
            f"runs the model in one process",
            flush=True,
        )
    engine = Engine(
        model_dir(storage),
        endpoint=endpoint,
        revision=revision,
        max_batch_size=int(options.get("max_batch_size") or 8),
        batch_wait_ms=float(options.get("batch_wait_ms", 10)),
        max_model_len=options.get("max_model_len"),
        dtype=str(options.get("dtype") or "auto"),
    )
    return LLMPredictor(engine)


def model_dir(storage: str) -> Path:
    """The local directory of a revision's MLflow model (``file://`` URIs accepted)."""
    if storage.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(storage).path))
    return Path(storage)


def load_native(path: Path, flavor: str) -> Any:
    """The model object of an MLflow model directory, loaded the cheapest way its flavor allows."""
    import yaml

    meta_file = path / "MLmodel"
    if not meta_file.is_file():
        raise FileNotFoundError(f"no MLmodel file in {path}: not an MLflow model directory")
    meta = yaml.safe_load(meta_file.read_text(encoding="utf-8")) or {}
    flavors = meta.get("flavors", {})
    sk = flavors.get("sklearn")
    if sk and sk.get("serialization_format") in ("pickle", "cloudpickle"):
        # Read model.pkl directly: importing mlflow costs the server 2 s of start-up.
        with open(path / sk.get("pickled_model", "model.pkl"), "rb") as f:
            return pickle.load(f)
    from workbench_dsl.backends.registry.mlflow_registry import _import_mlflow

    mlflow = _import_mlflow()
    if "pytorch" in flavors:
        import mlflow.pytorch

        model = mlflow.pytorch.load_model(str(path), map_location="cpu")
        model.eval()
        return model
    if sk:
        import mlflow.sklearn

        return mlflow.sklearn.load_model(str(path))
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(str(path))


def native_predict(model: Any) -> Callable[[Any], Any]:
    """``instances -> predictions`` for a model object of any supported flavor."""
    import numpy as np

    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):

        def predict_torch(instances: Any) -> Any:
            with torch.no_grad():
                x = torch.as_tensor(np.asarray(instances), dtype=torch.float32)
                return model(x).numpy()

        return predict_torch

    def predict(instances: Any) -> Any:
        # Arrays and DataFrames (kserve's decoding of the request) go in as they are.
        if not hasattr(instances, "shape"):
            instances = np.asarray(instances)
        return model.predict(instances)

    return predict


def load_user_code(source: str, name: str) -> Any:
    """Define the user's predictor (function or class) from its source, in a module of its own."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    mod_name = f"workbench_predictor_{name}_{digest}"
    existing = sys.modules.get(mod_name)
    if existing is not None and hasattr(existing, name):
        return getattr(existing, name)
    filename = f"<predictor {name}>"
    text = _PRELUDE + source
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    module = types.ModuleType(mod_name)
    module.__dict__["__file__"] = filename
    sys.modules[mod_name] = module
    exec(compile(text, filename, "exec", dont_inherit=True), module.__dict__)
    obj = module.__dict__.get(name)
    if obj is None:
        raise RuntimeError(f"the predictor source does not define {name!r}")
    return obj


def load_revision(
    storage: str, flavor: str, predictor_source: str | None, predictor_name: str | None
) -> Predictor:
    """Load a revision: raises whatever the model or the user's code raises while loading."""
    path = model_dir(storage)
    if predictor_source and predictor_name:
        user = load_user_code(predictor_source, predictor_name)
        if inspect.isclass(user):
            instance: Any = user()
            if hasattr(instance, "load"):
                instance.load(str(path))
            return Predictor(instance.predict, takes_list=True)
        model = load_native(path, flavor)
        return Predictor(lambda instances: user(model, instances), takes_list=True)
    return Predictor(native_predict(load_native(path, flavor)), takes_list=False)
