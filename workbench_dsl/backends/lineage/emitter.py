"""Delivering lineage events without ever failing or stalling a run.

Work is handed to a background thread (the caller only enqueues). That thread
builds each event, appends it to the local events file (one JSON line, under an
``flock`` so several engines can share the file) and passes it on to a second
thread for the remote backend, if one is configured. A remote backend that is
down or slow costs the run nothing: the first failure prints one warning, later
events of the process are dropped for that backend (they are all in the local
file, and ``workbench lineage --push`` sends them later), and ``flush`` waits a
bounded time before giving up on what is still in flight.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from workbench_dsl.backends.lineage.config import LineageSettings

log = logging.getLogger(__name__)

Event = dict[str, Any]
#: A unit of work: an event, or a function that builds events (run on the worker thread).
Work = Event | Callable[[], Iterable[Event]]


class Shared:
    """A part of many events (a run's parent facet, a task job's facets), encoded once.

    An event holds it where the plain dict would be. :func:`dumps` writes its text in
    place, so the file gets exactly what the plain dict gives; :func:`plain` (what a
    remote backend is sent) puts the dict back. Never change ``value`` once shared.
    """

    __slots__ = ("__weakref__", "text", "value")

    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value
        self.text = dumps(value)
        _shared[id(self)] = self


# Shared parts by id, for dumps to put their text in place of their token.
_shared: weakref.WeakValueDictionary[int, Shared] = weakref.WeakValueDictionary()
_TOKEN = re.compile(r'"\\u0000S(\d+)"')


def _default(obj: Any) -> Any:
    if type(obj) is Shared:
        return f"\x00S{id(obj)}"  # encoded as "\u0000S<id>", replaced by its text after
    return str(obj)


# json.dumps with options builds an encoder per call; one built once writes the same text.
# Events are trees built here: no cycles to look for.
_ENCODER = json.JSONEncoder(sort_keys=True, default=_default, check_circular=False)


def dumps(event: Event) -> str:
    """One event as the OpenLineage file transport writes it (sorted keys, no nulls)."""
    text = _ENCODER.encode(event)
    # Any None, as a value or an item, is written as ``null``: without one there is
    # nothing to drop, and copying the event to drop nothing was most of this cost.
    # (A shared part's text has none: it was written by this function.)
    if "null" in text:
        text = _ENCODER.encode(_drop_nulls(event))
    if "\\u0000S" in text:
        text = _TOKEN.sub(_shared_text, text)
    return text


def _shared_text(m: re.Match[str]) -> str:
    shared = _shared.get(int(m.group(1)))
    return m.group(0) if shared is None else shared.text  # (a string that only looked like one)


def plain(event: Event) -> Event:
    """The event as plain dicts and lists, nulls dropped (what a remote backend is sent)."""
    return dict(_drop_nulls(event, expand=True))


def _drop_nulls(obj: Any, expand: bool = False) -> Any:
    # Recurses only into containers: most values are leaves, and a call per leaf was
    # most of the cost of writing the events of a big cached run.
    if type(obj) is Shared:
        return _drop_nulls(obj.value, expand) if expand else obj
    if isinstance(obj, dict):
        return {
            k: _drop_nulls(v, expand) if isinstance(v, (dict, list, Shared)) else v
            for k, v in obj.items()
            if v is not None
        }
    if isinstance(obj, list):
        return [
            _drop_nulls(v, expand) if isinstance(v, (dict, list, Shared)) else v
            for v in obj
            if v is not None
        ]
    return obj


def append_lines(path: Path, lines: list[str]) -> None:
    """Append whole lines to ``path`` under an exclusive lock (safe across processes)."""
    import fcntl

    data = "".join(line + "\n" for line in lines).encode("utf-8")
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:  # its folder first (not a mkdir per write: most exist)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)  # closing releases the lock


def _warn(message: str) -> None:
    print(f"warning: lineage: {message}", file=sys.stderr, flush=True)


_BATCH = 256


class _Lane:
    """A FIFO worked by one daemon thread, with a bounded wait for it to drain.

    With ``batch``, ``handle`` gets every item queued so far as one list: a run of
    thousands of cached tasks then appends its events in a few writes, not one
    locked write per event.

    ``put`` is on the engine's thread, twice per task: a C queue and a plain lock
    (a ``Condition``'s methods are Python code); the condition, on the same lock,
    is only signalled when the lane runs dry, for :meth:`wait`.
    """

    def __init__(self, name: str, handle: Callable[[Any], None], *, batch: bool = False) -> None:
        self._name = name
        self._handle = handle
        self._batch = batch
        self._items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = 0  # put and not yet handled (under _lock)
        self._thread: threading.Thread | None = None

    def put(self, item: Any) -> None:
        with self._lock:
            self._busy += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
        self._items.put(item)

    def _loop(self) -> None:
        get, get_nowait = self._items.get, self._items.get_nowait
        while True:
            item: Any = get()
            n = 1
            if self._batch:  # at most _BATCH, so events built at once stay few
                items = [item]
                with contextlib.suppress(queue.Empty):
                    while len(items) < _BATCH:
                        items.append(get_nowait())
                item, n = items, len(items)
            try:
                self._handle(item)
            except Exception:  # never let one bad item stop the lane
                log.debug("lineage %s: item failed", self._name, exc_info=True)
            finally:
                with self._lock:
                    self._busy -= n
                    if self._busy == 0:
                        self._idle.notify_all()

    def pending(self) -> int:
        with self._lock:
            return self._busy

    def wait(self, timeout: float) -> bool:
        """Wait until everything put so far is handled; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout=timeout)


class Emitter:
    """Sends events to the local file and the configured backend, off the caller's thread.

    Args:
        settings: Where events go (see :func:`~workbench_dsl.backends.lineage.config.load_settings`).
        warn: Where the one warning about an unreachable backend goes (default: stderr).
        transport: An OpenLineage ``Transport`` to use as the remote backend (tests);
            default: built from ``settings.remote`` on first use.
    """

    def __init__(
        self,
        settings: LineageSettings,
        *,
        warn: Callable[[str], None] | None = None,
        transport: Any = None,
    ) -> None:
        self.settings = settings
        self._warn = warn or _warn
        self._transport = transport
        self._remote_wanted = settings.remote is not None or transport is not None
        self._remote_down = False
        self._dropped = 0
        self._sent = 0
        self._local = _Lane("lineage-local", self._write_local, batch=True)
        self._remote = _Lane("lineage-remote", self._send_remote)

    # -- the caller's side: cheap ----------------------------------------------------------

    def submit(self, work: Work) -> None:
        """Queue an event (or a function that builds events) for delivery."""
        if not self.settings.enabled:
            return
        self._local.put(work)

    def flush(self, timeout: float = 5.0, remote_timeout: float = 2.0) -> bool:
        """Wait (bounded) until queued events are written and sent; True if all were.

        Events the remote backend has not taken by then are dropped with one warning;
        they stay in the local file.
        """
        ok = self._local.wait(timeout)
        if self._remote_wanted and not self._remote.wait(remote_timeout):
            left = self._remote.pending()
            if not self._remote_down:
                self._remote_down = True
                self._warn(
                    f"{self.settings.remote_label or 'the lineage backend'} did not take "
                    f"{left} event(s) in time; not waiting for it "
                    f"({self._kept_where()})"
                )
            ok = False
        return ok

    @property
    def dropped(self) -> int:
        """Events the remote backend did not get."""
        return self._dropped + (self._remote.pending() if self._remote_down else 0)

    @property
    def sent(self) -> int:
        return self._sent

    # -- the worker threads ---------------------------------------------------------------

    def _write_local(self, works: list[Work]) -> None:
        events: list[Event] = []
        for work in works:
            try:
                events.extend([work] if isinstance(work, dict) else work())
            except Exception:  # one bad item must not lose the others' events
                log.debug("lineage: building an event failed", exc_info=True)
        if not events:
            return
        if self.settings.events_file is not None:
            try:
                append_lines(self.settings.events_file, [dumps(ev) for ev in events])
            except OSError as e:
                self._warn_once_local(e)
        if self._remote_wanted:
            for ev in events:
                self._remote.put(ev)

    _local_warned = False

    def _warn_once_local(self, e: OSError) -> None:
        if not self._local_warned:
            self._local_warned = True
            self._warn(f"cannot write {self.settings.events_file}: {e}")

    def _send_remote(self, event: Event) -> None:
        if self._remote_down:
            self._dropped += 1
            return
        try:
            transport = self._remote_transport()
            if transport is None:
                self._dropped += 1
                return
            transport.emit(plain(event))
            self._sent += 1
        except Exception as e:
            self._dropped += 1
            if not self._remote_down:
                self._remote_down = True
                reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
                self._warn(
                    f"cannot send events to {self.settings.remote_label or 'the lineage backend'} "
                    f"({reason}); dropping the rest of this run's events for it "
                    f"({self._kept_where()})"
                )

    def _kept_where(self) -> str:
        if self.settings.events_file is None:
            return "they are lost"
        return f"they are kept in {self.settings.events_file}; `workbench lineage --push` sends them later"

    def _remote_transport(self) -> Any:
        if self._transport is None:
            self._transport = build_transport(self.settings)
            if self._transport is None:
                self._remote_wanted = False
        return self._transport


def build_transport(settings: LineageSettings) -> Any:
    """The OpenLineage transport for ``settings.remote`` (None when it adds nothing)."""
    if settings.remote is None:
        return None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from openlineage.client import OpenLineageClient

        # The client logs "will use X transport" at INFO; keep the CLI quiet.
        logging.getLogger("openlineage.client").setLevel(logging.WARNING)
        # The client copies OPENLINEAGE_URL into OPENLINEAGE__TRANSPORT__... variables of
        # os.environ; keep the process environment as it was (it resolves its config now).
        saved = dict(os.environ)
        try:
            if "config" in settings.remote:
                client = OpenLineageClient(config=settings.remote["config"])
            else:
                client = OpenLineageClient()
        finally:
            for key in set(os.environ) - set(saved):
                del os.environ[key]
    transport = client.transport
    if getattr(transport, "kind", None) in ("noop", None):
        return None
    if _same_file(transport, settings.events_file):
        return None  # the configured file transport *is* the local events file
    return transport


def _same_file(transport: Any, events_file: Path | None) -> bool:
    path = getattr(getattr(transport, "config", None), "log_file_path", None)
    if getattr(transport, "kind", None) != "file" or not path or events_file is None:
        return False
    with contextlib.suppress(OSError):
        return Path(path).expanduser().resolve() == events_file.resolve()
    return False
