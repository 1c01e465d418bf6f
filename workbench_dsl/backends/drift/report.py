"""An endpoint's drift report: its logged inputs against its model's training data, per feature.

Used by ``workbench endpoints drift``, the ``/metrics`` of ``workbench metrics serve`` (through
:func:`cached_report`, so a scrape costs a stat of the log when nothing changed) and the
scheduler's ``drift:`` triggers.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from workbench_dsl.backends.drift.reference import (
    Reference,
    ReferenceNotFound,
    feature_columns,
    find_reference,
    load_frame,
)
from workbench_dsl.backends.drift.stats import FeatureDrift, Thresholds, compare
from workbench_dsl.paths import LocalRoot

#: The newest logged instances compared at most: plenty for the statistics, and it bounds
#: the cost of a report whatever the log's size.
MAX_INSTANCES = 20_000


class DriftError(Exception):
    """No report can be made: the message says why (one line) and what to do."""


class TooFewRequests(DriftError):
    """Not enough logged requests yet: no verdict (a trigger waits for more)."""


@dataclass
class DriftReport:
    endpoint: str
    revision: str
    since: float | None
    requests: int
    instances: int
    reference: Reference
    thresholds: Thresholds
    features: list[FeatureDrift] = field(default_factory=list)

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    @property
    def drifted(self) -> bool:
        return len(self.drifted_features) >= self.thresholds.features

    @property
    def max_psi(self) -> float:
        return max((f.psi for f in self.features), default=0.0)

    def to_json(self) -> dict[str, Any]:
        t = self.thresholds
        return {
            "endpoint": self.endpoint,
            "revision": self.revision,
            "since": self.since,
            "requests": self.requests,
            "instances": self.instances,
            "reference": self.reference.to_json(),
            "thresholds": {
                "psi": t.psi,
                "p_value": t.p_value,
                "features": t.features,
                "min_requests": t.min_requests,
            },
            "drifted": self.drifted,
            "drifted_features": self.drifted_features,
            "max_psi": round(self.max_psi, 6),
            "features": [f.to_json() for f in self.features],
        }


def _rows(records: list[dict[str, Any]]) -> tuple[list[Any], list[str] | None]:
    """One row per instance, and the column names when the model was given tables."""
    rows: list[Any] = []
    names: list[str] | None = None
    for rec in records:
        ins = rec.get("inputs")
        if rec.get("names"):
            names = [str(n) for n in rec["names"]]
        if isinstance(ins, list):
            rows.extend(ins)
        elif ins is not None:
            rows.append(ins)
    return rows, names


def drift_report(
    root: LocalRoot,
    endpoint: str,
    *,
    revision: str | None = None,
    since: float | None = None,
    thresholds: Thresholds | None = None,
) -> DriftReport:
    """Compare what ``endpoint``'s revision (default: its stable one) was asked since ``since``
    with the data its model was trained on; raises :class:`DriftError` when it cannot."""

    from workbench_dsl.backends.deployer._store import EndpointStore
    from workbench_dsl.backends.deployer.requestlog import log_dir, read_requests, read_settings

    t = thresholds or Thresholds()
    store = EndpointStore(root.runs_db)
    row = store.get(endpoint) if root.runs_db.exists() else None
    if row is None:
        known = ", ".join(r.name for r in store.all()) if root.runs_db.exists() else ""
        raise DriftError(f"no endpoint named {endpoint!r} (known: {known or 'none'})")
    revision = revision or row.stable
    if revision is None:
        raise DriftError(f"endpoint {endpoint} serves no revision yet")
    rev = store.revision(endpoint, revision)
    if rev is None:
        known = ", ".join(r.revision for r in store.revisions(endpoint))
        raise DriftError(f"endpoint {endpoint} has no revision {revision!r} (revisions: {known})")
    directory = root.endpoints / endpoint
    records: list[dict[str, Any]] = []
    seen = 0
    for rec in read_requests(log_dir(directory), since=since, revision=revision, newest_first=True):
        records.append(rec)
        ins = rec.get("inputs")
        seen += len(ins) if isinstance(ins, list) else 1
        if seen >= MAX_INSTANCES:
            break
    records.reverse()
    rows, names = _rows(records)
    if len(rows) < t.min_requests:
        off = (
            ""
            if read_settings(directory).log_requests
            else " (its request log is off: @serve(log_requests=False))"
        )
        window = (
            f" since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}" if since else ""
        )
        raise TooFewRequests(
            f"too few logged requests for {endpoint} revision {revision}{window}: "
            f"{len(rows)} instance(s) in {len(records)} request(s), at least {t.min_requests} "
            f"needed{off}; send more traffic, widen --since or lower --min-requests"
        )
    try:
        ref = find_reference(root, endpoint, revision, rev.model_uri)
        frame = load_frame(ref)
    except ReferenceNotFound as e:
        raise DriftError(str(e)) from None
    features = compare_logged(ref, frame, rows, names, t, f"{endpoint} revision {revision}")
    return DriftReport(
        endpoint=endpoint,
        revision=revision,
        since=since,
        requests=len(records),
        instances=len(rows),
        reference=ref,
        thresholds=t,
        features=features,
    )


def compare_logged(
    ref: Reference, frame: Any, rows: list[Any], names: list[str] | None, t: Thresholds, what: str
) -> list[FeatureDrift]:
    """Each feature of the logged ``rows`` against the training table ``frame``.

    Shared by the local report and the cluster's ``drift:`` check (:mod:`.cluster`), so both
    judge the same way; ``what`` names the logged traffic in errors.
    """
    import pandas as pd

    try:
        if names is None and rows and isinstance(rows[0], dict):
            current = pd.DataFrame(rows)
            columns = [c for c in feature_columns(ref, frame, None) if c in current.columns]
        else:
            flat = [r if isinstance(r, list) else [r] for r in rows]
            width = len(flat[0])
            if any(len(r) != width for r in flat):
                raise DriftError(
                    f"the logged instances of {what} differ in length: "
                    f"compare one input shape at a time (--since)"
                )
            columns = names or feature_columns(ref, frame, width)
            current = pd.DataFrame(flat, columns=columns)
    except ReferenceNotFound as e:
        raise DriftError(str(e)) from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DriftError(
            f"the logged inputs name {', '.join(missing)}, which the training dataset "
            f"{ref.dataset} lacks"
        )
    return [compare(c, frame[c].to_numpy(), current[c].to_numpy(), t) for c in columns]


_cache: dict[tuple[Any, ...], tuple[float, Any, DriftReport | DriftError]] = {}
_lock = threading.Lock()
#: A report is recomputed at most this often, even when the log moves on at every request.
CACHE_TTL_S = 30.0


def cached_report(
    root: LocalRoot,
    endpoint: str,
    *,
    revision: str | None = None,
    since_s: float | None = None,
    thresholds: Thresholds | None = None,
) -> DriftReport | DriftError:
    """The report (or, when none can be made, the error that says why), recomputed at most every
    ``CACHE_TTL_S`` and only when the request log or the lineage changed (or, with a window
    of the last ``since_s`` seconds, when the window moved on)."""
    from workbench_dsl.backends.deployer.requestlog import log_dir, log_state

    t = thresholds or Thresholds()
    try:
        st = root.lineage_events.stat()
        lineage: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
    except OSError:
        lineage = None
    key = (str(root.root), endpoint, revision, since_s, t)
    state = (log_state(log_dir(root.endpoints / endpoint)), lineage)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        made, was, value = hit
        if now - made < CACHE_TTL_S or (was == state and since_s is None):
            return value
    since = time.time() - since_s if since_s else None
    result: DriftReport | DriftError
    try:
        result = drift_report(root, endpoint, revision=revision, since=since, thresholds=t)
    except DriftError as e:
        result = e
    with _lock:
        _cache[key] = (now, state, result)
    return result
