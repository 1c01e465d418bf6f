"""A local trigger as the store keeps it: what to run on which event, and a watched file.

Split from :mod:`.trigger_store` (which re-exports both) so that module holds the tables
and their transactions only.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from workbench_dsl.schedule.events import DriftEvent, Event, drift_event, parse_event


@dataclass
class Trigger:
    """One local trigger."""

    name: str
    id: str
    pipeline: str
    workdir: str
    params: dict[str, str]
    event: Event
    event_param: str | None
    max_age_s: float | None
    max_catchup: int
    max_concurrency: int
    paused: bool
    experiment: str
    created_at: float
    updated_at: float
    after: float
    #: What a drift: trigger passes the pipeline: input name -> KFP parameter type.
    event_inputs: dict[str, str] = field(default_factory=dict)

    def options(self) -> dict[str, Any]:
        """What is stored beside the event: a drift: event's thresholds and inputs."""
        if isinstance(self.event, DriftEvent):
            return {**self.event.options(), "inputs": self.event_inputs}
        return {}

    def to_json(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if isinstance(self.event, DriftEvent):
            extra["threshold"] = self.event.options()
            extra["event_inputs"] = self.event_inputs
        return {
            "name": self.name,
            "target": "local",
            "pipeline": self.pipeline,
            "workdir": self.workdir,
            "params": self.params,
            "on": str(self.event),
            "event_param": self.event_param,
            "max_age_s": self.max_age_s,
            "max_catchup": self.max_catchup,
            "max_concurrency": self.max_concurrency,
            "paused": self.paused,
            "experiment": self.experiment,
            **extra,
        }


@dataclass(frozen=True)
class FileSeen:
    """A watched file as a pass found it."""

    path: str
    digest: str
    size: int
    mtime_ns: int


def trigger_from_row(row: sqlite3.Row) -> Trigger:
    """A ``triggers`` row as a Trigger (a drift: event gets its stored thresholds)."""
    event = parse_event(row["event"])
    options = json.loads(row["options_json"] or "{}")
    if isinstance(event, DriftEvent):
        event = drift_event(event.endpoint, options)
    return Trigger(
        name=row["name"],
        id=row["id"],
        pipeline=row["pipeline"],
        workdir=row["workdir"],
        params=json.loads(row["params_json"] or "{}"),
        event=event,
        event_param=row["event_param"],
        max_age_s=row["max_age_s"],
        max_catchup=int(row["max_catchup"]),
        max_concurrency=int(row["max_concurrency"]),
        paused=bool(row["paused"]),
        experiment=row["experiment"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        after=row["after"],
        event_inputs=dict(options.get("inputs") or {}),
    )
