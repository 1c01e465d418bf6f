"""Trigger events: what ``workbench trigger add --on EVENT`` can wait for, parsed once.

An event is a small frozen dataclass per kind; :func:`parse_event` is the only place an
``--on`` string is read. ``dataset:PATH_OR_GLOB`` watches files' content digests (or, with
``--max-age``, their freshness); ``run:PIPELINE[:STATUS]`` waits for another pipeline's
runs to finish; ``drift:ENDPOINT`` waits for an endpoint's inputs to drift from its
model's training data (its thresholds come from ``--threshold``, :func:`parse_threshold`).
A new kind is one more dataclass here, one more branch in :func:`parse_event`, one more
evaluator in ``trigger_local`` and one more check in ``trigger_kfp``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from workbench_dsl.errors import UsageError

#: Terminal run statuses a ``run:`` event can wait for (the run store's own names).
RUN_STATUSES = ("SUCCEEDED", "FAILED", "CANCELLED")

_KNOWN = "dataset:PATH_OR_GLOB, run:PIPELINE[:STATUS] or drift:ENDPOINT"


class EventKind(enum.Enum):
    DATASET = "dataset"
    RUN = "run"
    DRIFT = "drift"


@dataclass(frozen=True)
class DatasetEvent:
    """Files matching ``pattern`` (relative to the trigger's directory) changed content."""

    pattern: str
    kind: EventKind = EventKind.DATASET

    def __str__(self) -> str:
        return f"dataset:{self.pattern}"


@dataclass(frozen=True)
class RunEvent:
    """A run of ``pipeline`` (its name in the run store) finished in one of ``statuses``."""

    pipeline: str
    statuses: tuple[str, ...] = RUN_STATUSES
    kind: EventKind = EventKind.RUN

    def __str__(self) -> str:
        tail = "" if self.statuses == RUN_STATUSES else ":" + self.statuses[0]
        return f"run:{self.pipeline}{tail}"


@dataclass(frozen=True)
class DriftEvent:
    """The inputs of endpoint ``endpoint`` drifted from its model's training data (a local
    endpoint's request log, or on KFP the requests KServe stored for the InferenceService).

    A feature drifted when its PSI reaches ``psi`` and its test's p-value is below
    ``p_value``; the endpoint did when at least ``features`` features did, judged on the
    requests its stable revision logged in the last ``window_s`` seconds (all it kept
    when None), and only once at least ``min_requests`` instances were logged.
    """

    endpoint: str
    psi: float = 0.2
    p_value: float = 0.01
    features: int = 1
    min_requests: int = 50
    window_s: float | None = None
    kind: EventKind = EventKind.DRIFT

    def __str__(self) -> str:
        return f"drift:{self.endpoint}"

    def options(self) -> dict[str, Any]:
        """The thresholds as stored beside the trigger (and shown by ``trigger show``)."""
        return {
            "psi": self.psi,
            "p": self.p_value,
            "features": self.features,
            "requests": self.min_requests,
            "since": self.window_s,
        }


Event = DatasetEvent | RunEvent | DriftEvent

#: ``--threshold`` keys of a drift: event and the DriftEvent fields they set.
THRESHOLD_KEYS = {
    "psi": "psi",
    "p": "p_value",
    "features": "features",
    "requests": "min_requests",
    "since": "window_s",
}


def parse_threshold(event: Event, items: list[str] | None) -> Event:
    """``--threshold psi=0.3,features=2`` (repeatable) applied to a drift: event."""
    import dataclasses

    if not items:
        return event
    if not isinstance(event, DriftEvent):
        raise UsageError(f"--threshold applies to drift: events only (got --on {event})")
    changes: dict[str, Any] = {}
    for item in ",".join(items).split(","):
        key, sep, value = item.strip().partition("=")
        if not item.strip():
            continue
        if not sep or key.strip() not in THRESHOLD_KEYS:
            raise UsageError(
                f"bad --threshold {item.strip()!r}: give KEY=VALUE with KEY one of "
                f"{', '.join(THRESHOLD_KEYS)} (e.g. psi=0.2 or features=2)"
            )
        key, value = key.strip(), value.strip()
        try:
            if key == "since":
                changes["window_s"] = parse_duration(value)
            elif key in ("features", "requests"):
                changes[THRESHOLD_KEYS[key]] = int(value)
                if int(value) < 1:
                    raise ValueError
            else:
                changes[THRESHOLD_KEYS[key]] = float(value)
                if not 0 <= float(value) <= (1 if key == "p" else 1e6):
                    raise ValueError
        except (ValueError, UsageError):
            raise UsageError(
                f"bad --threshold {key}={value!r}: psi is a number >= 0, p one from 0 to 1, "
                f"features and requests whole numbers >= 1, since a duration (6h)"
            ) from None
    return dataclasses.replace(event, **changes)


def drift_event(endpoint: str, options: dict[str, Any] | None) -> DriftEvent:
    """A stored drift: event with its stored thresholds."""
    o = options or {}
    d = DriftEvent(endpoint)
    return DriftEvent(
        endpoint,
        psi=float(o.get("psi", d.psi)),
        p_value=float(o.get("p", d.p_value)),
        features=int(o.get("features", d.features)),
        min_requests=int(o.get("requests", d.min_requests)),
        window_s=float(o["since"]) if o.get("since") else None,
    )


def parse_event(text: str) -> Event:
    """``--on`` text as an event, or a one-line UsageError saying what is accepted."""
    kind, sep, rest = text.strip().partition(":")
    if not sep or not rest.strip():
        raise UsageError(f"bad --on {text!r}: give {_KNOWN}")
    if kind == "dataset":
        return DatasetEvent(pattern=rest.strip())
    if kind == "run":
        pipeline, _, status = rest.partition(":")
        pipeline = pipeline.strip()
        if not pipeline:
            raise UsageError(f"bad --on {text!r}: name the pipeline, e.g. run:churn:SUCCEEDED")
        if not status:
            return RunEvent(pipeline=pipeline)
        status = status.strip().upper()
        if status not in RUN_STATUSES:
            raise UsageError(
                f"bad --on {text!r}: unknown run status {status!r} (known: {', '.join(RUN_STATUSES)})"
            )
        return RunEvent(pipeline=pipeline, statuses=(status,))
    if kind == "drift":
        from workbench_dsl.backends.deployer import check_endpoint_name

        endpoint = rest.strip()
        problem = check_endpoint_name(endpoint)
        if problem:
            raise UsageError(f"bad --on {text!r}: {problem}")
        return DriftEvent(endpoint=endpoint)
    raise UsageError(f"unknown event kind {kind!r} in --on {text!r} (known: {_KNOWN})")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``6h`` or ``2d`` in seconds, or a one-line UsageError."""
    m = _DURATION.match(text)
    if not m or float(m.group(1)) <= 0:
        raise UsageError(f"bad duration {text!r}: give a number and s, m, h or d, e.g. 6h")
    return float(m.group(1)) * _UNIT_S[m.group(2)]
