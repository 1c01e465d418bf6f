"""A pyfunc wrapper for any pickled object with a ``predict`` method (pickled by value)."""

from __future__ import annotations

from typing import Any

try:
    from mlflow.pyfunc import PythonModel as _Base
except ImportError:  # pragma: no cover - only imported where mlflow is
    _Base = object  # type: ignore[assignment,misc]


class PickledPredictor(_Base):  # type: ignore[misc,valid-type]
    """Serves ``obj.predict(model_input)``."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    # No annotations: MLflow reads predict's type hints as an input schema.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return self.obj.predict(model_input)
