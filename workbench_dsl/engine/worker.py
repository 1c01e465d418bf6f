"""The warm worker: a fresh interpreter with kfp imported that forks one child per attempt.

Started by the task runner as ``python -m workbench_dsl.engine.worker`` (never
by forking the multithreaded engine). It stays single-threaded, so forking it is
safe; ``gc.freeze()`` keeps the imported modules' pages shared with children.
Forking a process with kfp loaded costs milliseconds, so the worker keeps a
couple of *spare* children forked ahead, each waiting on its own pipe: an
attempt starts by handing its request to a spare, and the replacement is forked
after the hand-off, off the attempt's path.

Protocol: one JSON object per line. On fd 0 the engine sends

* ``{"op": "python", "id", "env", "cwd", "log", "result", "program", "function",
  "executor_input", "paths"}``: run a lightweight component's ``program`` through
  ``kfp.dsl.executor_main`` (the same contract a cluster pod runs);
* ``{"op": "exec", "id", "env", "cwd", "log", "result", "argv"}``: run a program.

Both may carry ``"log_max"`` (bytes of output kept in the log; 0: no cap),
``"cgroup"`` (the attempt's cgroup directory, made by the child, which moves
itself there) and ``"memory_max"`` with ``"memory"`` (``"cgroup"``: written to
the attempt cgroup's ``memory.max``; ``"rlimit"``: ``RLIMIT_AS`` of the child).

On fd 1 the worker answers ``{"event": "ready"}`` once, then ``{"id", "event":
"started", "pid"}`` per attempt and ``{"id", "event": "exit", "code"}`` when it
ended (``code`` as ``Popen.returncode``: negative for a signal; ``"oom": true``
when the kernel killed a process of the attempt's cgroup for its ``memory.max``). A Python child
reports its code through a pipe just before it exits, which saves the
milliseconds the kernel takes to tear a large process down.

Every child leads its own session and process group, and its own cgroup where
the run has one (``cgroups.py``): when an attempt's main process ends, whatever
it left running in its group (and its cgroup) is killed too (a pod's processes
end with its container). A child's stdout and stderr are a pipe the worker
pumps into the attempt's log, up to ``log_max`` bytes. Each child writes
``{"ok": true}`` or ``{"error": "one line"}`` to its ``result`` file. When fd 0
closes (the engine is gone), the worker kills every process below it, again
and again until none is left (it is a child subreaper: whatever a task left
behind, however often it called ``setsid``, is re-parented to it), and exits,
so nothing a task started outlives the engine.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench_dsl import _env, _procs
from workbench_dsl.engine import cgroups, mounts
from workbench_dsl.engine.logs import LogPump
from workbench_dsl.engine.resources import confine

SPARES = 2
_owned: set[int] = set()  # the worker's own fds: every child closes them


@dataclass
class _Child:
    pid: int
    request_w: int  # spare: where its request goes; -1 once handed one
    status_r: int  # the child writes its exit code here before exiting
    out_r: int  # the child's stdout and stderr
    attempt: int | None = None
    reported: bool = False
    cgroup: Path | None = None


def main() -> None:
    proto_in, proto_out = os.dup(0), os.dup(1)  # non-inheritable: exec'd programs never see them
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # a stray print in the worker must never corrupt the protocol
    os.close(devnull)

    group = os.environ.pop(_env.WORKER_CGROUP, "")
    if group:  # before anything is forked: every child starts in the run's cgroup
        try:
            cgroups.enter(Path(group) / "worker")
        except OSError as exc:  # the tree kill still holds; each attempt tries its own
            print(f"[workbench] the warm worker could not enter {group}: {exc}", file=sys.stderr)

    _warm_up()

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the engine's to handle
    _become_subreaper()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    _owned.update((proto_in, proto_out, wake_r, wake_w))
    gc.collect()
    gc.freeze()

    server = _Server(proto_in, proto_out, wake_r)
    try:
        server.serve()
    finally:  # however the loop ends, no attempt outlives the worker
        server.shutdown()


class _Server:
    """The worker's loop: requests in, children forked and handed them, events out."""

    def __init__(self, proto_in: int, proto_out: int, wake_r: int) -> None:
        self.proto_in, self.proto_out, self.wake_r = proto_in, proto_out, wake_r
        self.spares: list[_Child] = []
        self.running: dict[int, _Child] = {}  # pid -> child
        self.by_status: dict[int, _Child] = {}  # status fd -> child
        self.pumps: dict[int, LogPump] = {}  # output fd -> its pump

    def serve(self) -> None:
        for _ in range(SPARES):
            self.spares.append(_fork_spare())
        self.send({"event": "ready", "pid": os.getpid()})
        lines = _Lines()
        while True:
            poller = select.poll()  # not select(): hundreds of attempts may hold fds > 1024
            for fd in (self.proto_in, self.wake_r, *self.by_status, *self.pumps):
                poller.register(fd, select.POLLIN)
            readable = [fd for fd, _ in poller.poll()]
            for fd in readable:
                if fd == self.wake_r:
                    try:
                        while os.read(fd, 512):
                            pass
                    except BlockingIOError:
                        pass
                elif fd in self.pumps:
                    if not self.pumps[fd].pump(drain=False):
                        _close_pump(self.pumps.pop(fd))
                elif fd in self.by_status:
                    child = self.by_status.pop(fd)
                    data = os.read(fd, 64)
                    if data:  # empty: the program was exec'd (or died); its reaping tells
                        child.reported = True
                        self.drain(child)  # what it printed before it ended is in the log
                        self.send(self.exit_event(child, int(data)))
            self.reap()
            if self.proto_in in readable:
                data = os.read(self.proto_in, 1 << 20)
                if not data:
                    return  # the engine is gone or done
                for line in lines.feed(data):
                    if line.strip():
                        self.start(json.loads(line))
                while len(self.spares) < SPARES:
                    self.spares.append(_fork_spare())

    def send(self, msg: dict[str, Any]) -> None:
        try:
            _write_all(self.proto_out, (json.dumps(msg) + "\n").encode())
        except OSError:  # the engine is gone: fd 0 closes too, and we shut down
            pass

    def exit_event(self, child: _Child, code: int) -> dict[str, Any]:
        event: dict[str, Any] = {"id": child.attempt, "event": "exit", "code": code}
        if child.cgroup is not None and cgroups.oom_killed(child.cgroup):
            event["oom"] = True
        return event

    def drain(self, child: _Child) -> None:
        pump = self.pumps.get(child.out_r)
        if pump is not None and not pump.pump(drain=True):
            _close_pump(self.pumps.pop(child.out_r))

    def start(self, req: dict[str, Any]) -> None:
        while True:
            child = self.spares.pop(0) if self.spares else _fork_spare()
            # Say which pid before handing the request over: the attempt may kill this
            # worker at once, and the engine must still know what to watch and kill.
            self.send({"id": req["id"], "event": "started", "pid": child.pid})
            try:
                _hand_off(child, req)
                break
            except OSError:  # that spare died: forget it, use another
                _close(child.status_r)
                _close(child.out_r)
        child.attempt = req["id"]
        child.cgroup = Path(req["cgroup"]) if req.get("cgroup") else None
        self.running[child.pid] = child
        self.by_status[child.status_r] = child
        try:
            log = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError:
            log = os.open(os.devnull, os.O_WRONLY)
        _owned.add(log)
        mask = tuple(v.encode("utf-8", "surrogateescape") for v in req.get("mask") or () if v)
        self.pumps[child.out_r] = LogPump(
            child.out_r, log, max(0, int(req.get("log_max") or 0)), mask=mask
        )

    def reap(self) -> None:
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None:
                return
            pid = info.si_pid
            try:  # while it is a zombie its pid (= its group) cannot be reused
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            child = self.running.get(pid)
            if child is not None and child.cgroup is not None:
                cgroups.kill(child.cgroup)  # whatever left its group, setsid or not
            _, status = os.waitpid(pid, 0)
            child = self.running.pop(pid, None)
            if child is not None:
                self.by_status.pop(child.status_r, None)
                _close(child.status_r)
                self.drain(child)
                if not child.reported:
                    code = os.waitstatus_to_exitcode(status)
                    self.send(self.exit_event(child, code))
                if child.cgroup is not None:
                    cgroups.remove(child.cgroup)
            else:
                for spare in [s for s in self.spares if s.pid == pid]:
                    self.spares.remove(spare)
                    _close(spare.request_w)
                    _close(spare.status_r)
                    _close(spare.out_r)

    def shutdown(self) -> None:
        for spare in self.spares:
            _close(spare.request_w)  # the spare reads EOF and exits
        for child in self.running.values():
            if child.cgroup is not None:
                cgroups.kill(child.cgroup)
        # Everything below us: attempts, spares, and whatever attempts left behind,
        # adopted by us as a subreaper. Killing a process re-parents its children to
        # us, so repeat until nothing is left (a task's double setsid included).
        for _ in range(1000):
            below = _procs.descendants(os.getpid())
            if not below:
                break
            for pid in below:
                for kill in (os.killpg, os.kill):
                    try:
                        kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            self.reap_all()
        self.reap_all()
        for child in self.running.values():
            if child.cgroup is not None:
                cgroups.remove(child.cgroup)

    def reap_all(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:  # some still dying, or just adopted: the caller kills again
                time.sleep(0.005)
                return
            child = self.running.get(pid)
            if child is not None and not child.reported:
                child.reported = True
                self.drain(child)
                self.send(self.exit_event(child, os.waitstatus_to_exitcode(status)))


def _warm_up() -> None:
    """Import what every attempt needs and run one no-op component through the executor.

    The dry run fills the caches a child would otherwise fill on every attempt
    (regexes of argparse and logging, time zone data, code paths of the
    executor), so forked children start from warm pages.
    """
    import logging
    import tempfile

    from kfp.dsl import executor_main

    saved_path, saved_argv, saved_stdout = list(sys.path), sys.argv, sys.stdout
    with tempfile.TemporaryDirectory(prefix="workbench-warmup-") as tmp:
        program = os.path.join(tmp, "ephemeral_component.py")
        with open(program, "w", encoding="utf-8") as f:
            f.write(_WARMUP_SOURCE)
        executor_input = {
            "inputs": {"parameterValues": {"x": 1}},
            "outputs": {
                "parameters": {"Output": {"outputFile": os.path.join(tmp, "Output")}},
                "outputFile": os.path.join(tmp, "executor_output.json"),
            },
        }
        sys.argv = [
            "executor_main",
            "--component_module_path",
            program,
            "--executor_input",
            json.dumps(executor_input),
            "--function_to_execute",
            "warm_up",
        ]
        try:
            with open(os.devnull, "w") as devnull:
                sys.stdout = devnull
                executor_main.executor_main()
        finally:
            sys.stdout, sys.argv = saved_stdout, saved_argv
            sys.path[:] = saved_path
            sys.modules.pop("ephemeral_component", None)
            root = logging.getLogger()
            for handler in list(root.handlers):
                root.removeHandler(handler)
            root.setLevel(logging.WARNING)


_WARMUP_SOURCE = """
import kfp
from kfp import dsl
from kfp.dsl import *
from typing import *

def warm_up(x: int) -> int:
    return x
"""


def _fork_spare() -> _Child:
    request_r, request_w = os.pipe()
    status_r, status_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        for fd in (*_owned, request_w, status_r, out_r):
            _close(fd)
        _spare(request_r, status_w, out_w)  # never returns
    os.close(request_r)
    os.close(status_w)
    os.close(out_w)
    os.set_blocking(out_r, False)
    _owned.update((request_w, status_r, out_r))
    return _Child(pid=pid, request_w=request_w, status_r=status_r, out_r=out_r)


def _hand_off(child: _Child, req: dict[str, Any]) -> None:
    data = json.dumps(req).encode()
    try:
        _write_all(child.request_w, len(data).to_bytes(8, "big") + data)
    finally:
        _close(child.request_w)
        child.request_w = -1


def _close_pump(pump: LogPump) -> None:
    _close(pump.out_r)
    _close(pump.log)


def _close(fd: int) -> None:
    _owned.discard(fd)
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass


def _become_subreaper() -> None:
    """Adopt what attempts leave behind (a daemon that left its session), so we can end it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER (Linux)
    except (OSError, AttributeError):
        pass


# -- in a forked child -------------------------------------------------------------


class _Lines:
    """Complete lines out of reads of any size, each byte looked at once.

    (Appending each read to one buffer and searching it from the start made a
    request of 100 MB -- a task input that large -- cost minutes: quadratic.)
    """

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            self._parts.append(data[start:end])
            out.append(b"".join(self._parts))
            self._parts = []
            start = end + 1
        if start < len(data):
            self._parts.append(data[start:])
        return out


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to a pipe; the rest is a view, never a copy (no quadratic cost)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _spare(request_r: int, status_w: int, out_w: int) -> None:
    code = 70
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        header = _read_exactly(request_r, 8)
        if len(header) < 8:  # the worker is shutting down
            os._exit(0)
        req = json.loads(_read_exactly(request_r, int.from_bytes(header, "big")))
        os.close(request_r)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        os.close(out_w)
        confine(req.get("cgroup"), req.get("memory_max"), req.get("memory"), req["op"] != "exec")
        if req.get("mounts") and not _mount(req):
            code = 1
            return
        os.chdir(req["cwd"])
        env = req["env"]
        for key in [k for k in os.environ if k not in env]:
            del os.environ[key]
        for key, value in env.items():
            if os.environ.get(key) != value:
                os.environ[key] = value
        if req["op"] == "exec":
            code = _exec(req)
        else:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
            code = _run_python(req)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        try:
            os.write(status_w, str(code).encode())
        except BaseException:
            pass
        os._exit(code)


def _mount(req: dict[str, Any]) -> bool:
    try:
        mounts.enter(req["mounts"])
    except OSError as exc:
        _result(req, {"error": f"cannot mount the task's volumes: {exc}"})
        print(f"[workbench] cannot mount the task's volumes: {exc}", file=sys.stderr)
        return False
    return True


def _exec(req: dict[str, Any]) -> int:
    """Become the program; return only when it cannot be run."""
    argv = req["argv"]
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # what programs expect (Python ignores it)
    try:
        os.execvpe(argv[0], argv, os.environ)
    except OSError as exc:
        why = "not found" if isinstance(exc, FileNotFoundError) else exc.strerror
        _result(req, {"error": f"cannot run program '{argv[0]}': {why}"})
        print(f"[workbench] cannot run program {argv[0]!r}: {exc}", file=sys.stderr)
        return 127


def _run_python(req: dict[str, Any]) -> int:
    sys.path[:0] = [*req.get("paths", []), req["cwd"]]
    program = req["program"]
    sys.argv = [
        "executor_main",
        "--component_module_path",
        program,
        "--executor_input",
        req["executor_input"],
        "--function_to_execute",
        req["function"],
    ]
    from kfp.dsl import executor_main

    try:
        executor_main.executor_main()
    except SystemExit as exc:
        if exc.code in (None, 0):
            _result(req, {"ok": True})
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)
        _result(req, {"error": f"SystemExit: {str(exc.code).splitlines()[0][:300]}"})
        return 1
    except BaseException as exc:
        traceback.print_exc()
        _result(req, {"error": describe(exc, program)})
        return 1
    _result(req, {"ok": True})
    return 0


def describe(exc: BaseException, program: str) -> str:
    """``Type: message (file:line, in function)`` for the user's innermost frame."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__
    where = None
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{os.path.basename(exc.filename)}:{exc.lineno}"
    else:
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename == program:
                where = f"{os.path.basename(frame.filename)}:{frame.lineno}, in {frame.name}"
    return f"{text} ({where})" if where else text


def _result(req: dict[str, Any], result: dict[str, Any]) -> None:
    # Read only once the process has ended: no need for a rename to make it atomic.
    fd = os.open(req["result"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(result).encode())
    finally:
        os.close(fd)


if __name__ == "__main__":
    main()
