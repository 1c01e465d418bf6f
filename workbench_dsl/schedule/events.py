"""Trigger events: what ``workbench trigger add --on EVENT`` can wait for, parsed once.

An event is a small frozen dataclass per kind; :func:`parse_event` is the only place an
``--on`` string is read. ``dataset:PATH_OR_GLOB`` watches files' content digests (or, with
``--max-age``, their freshness); ``run:PIPELINE[:STATUS]`` waits for another pipeline's
runs to finish. A new kind (an endpoint's drift, say) is one more dataclass here, one more
branch in :func:`parse_event` and one more evaluator in ``trigger_local``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from workbench_dsl.errors import UsageError

#: Terminal run statuses a ``run:`` event can wait for (the run store's own names).
RUN_STATUSES = ("SUCCEEDED", "FAILED", "CANCELLED")

_KNOWN = "dataset:PATH_OR_GLOB or run:PIPELINE[:STATUS]"


class EventKind(enum.Enum):
    DATASET = "dataset"
    RUN = "run"


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


Event = DatasetEvent | RunEvent


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
    raise UsageError(f"unknown event kind {kind!r} in --on {text!r} (known: {_KNOWN})")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``6h`` or ``2d`` in seconds, or a one-line UsageError."""
    m = _DURATION.match(text)
    if not m or float(m.group(1)) <= 0:
        raise UsageError(f"bad duration {text!r}: give a number and s, m, h or d, e.g. 6h")
    return float(m.group(1)) * _UNIT_S[m.group(2)]
