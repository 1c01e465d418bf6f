"""The local trainer runs a job's ranks as real processes: wiring, logs, failures, no orphans."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from workbench_dsl.backends.trainer.base import TrainingFailed, TrainingTimedOut, TrainJobSpec
from workbench_dsl.backends.trainer.local import LocalTrainer

# A rank program that does not import torch, so these tests cost milliseconds per rank.
PROGRAMS = {
    "wb_echo_env": """
        import json, os
        keys = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK",
                "MASTER_ADDR", "MASTER_PORT", "STEP_VAR"]
        print(json.dumps({k: os.environ.get(k) for k in keys}))
    """,
    "wb_rank1_fails": """
        import os, time
        if os.environ["RANK"] == "1":
            time.sleep(0.3)
            raise ValueError("bad batch at step 3")
        with open(os.path.join(os.environ["PID_DIR"], os.environ["RANK"]), "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)
    """,
    "wb_sleeper": """
        import os, time
        with open(os.path.join(os.environ["PID_DIR"], os.environ["RANK"]), "w") as f:
            f.write(str(os.getpid()))
        print("ready", flush=True)
        time.sleep(60)
    """,
    "wb_killed": """
        import os, signal
        if os.environ["RANK"] == "0":
            os.kill(os.getpid(), signal.SIGKILL)
    """,
}


@pytest.fixture
def programs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "programs"
    folder.mkdir()
    for name, text in PROGRAMS.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(text), encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(folder))
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    monkeypatch.setenv("PID_DIR", str(pid_dir))
    return pid_dir


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _wait_dead(pids: list[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return []
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def test_ranks_get_torchrun_environment_and_prefixed_logs(programs: Path) -> None:
    out = io.StringIO()
    spec = TrainJobSpec(
        name="fit", module="wb_echo_env", nodes=2, procs_per_node=2, env={"STEP_VAR": "x"}
    )
    LocalTrainer(out=out).run(spec)
    lines = sorted(out.getvalue().splitlines())
    assert len(lines) == 4
    import json

    seen = {}
    for line in lines:
        prefix, _, payload = line.partition("] ")
        env = json.loads(payload)
        assert prefix == f"[rank {env['RANK']}"
        seen[int(env["RANK"])] = env
    assert sorted(seen) == [0, 1, 2, 3]
    assert {e["MASTER_ADDR"] for e in seen.values()} == {"127.0.0.1"}
    assert len({e["MASTER_PORT"] for e in seen.values()}) == 1
    assert [seen[r]["LOCAL_RANK"] for r in range(4)] == ["0", "1", "0", "1"]
    assert [seen[r]["NODE_RANK"] for r in range(4)] == ["0", "0", "1", "1"]
    assert {e["WORLD_SIZE"] for e in seen.values()} == {"4"}
    assert {e["LOCAL_WORLD_SIZE"] for e in seen.values()} == {"2"}
    assert {e["STEP_VAR"] for e in seen.values()} == {"x"}


def test_one_failing_rank_stops_the_others_with_its_own_error(programs: Path) -> None:
    out = io.StringIO()
    spec = TrainJobSpec(name="fit", module="wb_rank1_fails", nodes=1, procs_per_node=3)
    start = time.monotonic()
    with pytest.raises(TrainingFailed) as info:
        LocalTrainer(out=out).run(spec)
    assert time.monotonic() - start < 15  # the sleeping ranks did not run their 60 s
    assert str(info.value) == "rank 1 failed: ValueError: bad batch at step 3"
    assert info.value.rank == 1 and info.value.error_type == "ValueError"
    assert "[rank 1] ValueError: bad batch at step 3" in out.getvalue()  # the traceback is logged
    pids = [int(p.read_text()) for p in programs.iterdir()]
    assert pids and _wait_dead(pids) == []


def test_a_rank_killed_by_a_signal_is_named(programs: Path) -> None:
    with pytest.raises(TrainingFailed, match=r"^rank 0 was killed by SIGKILL$"):
        LocalTrainer(out=io.StringIO()).run(
            TrainJobSpec(name="fit", module="wb_killed", nodes=2, procs_per_node=1)
        )


def test_timeout_stops_every_rank(programs: Path) -> None:
    spec = TrainJobSpec(name="fit", module="wb_sleeper", nodes=1, procs_per_node=2, timeout=1.0)
    with pytest.raises(TrainingTimedOut, match="fit: training timed out after 1s"):
        LocalTrainer(out=io.StringIO()).run(spec)
    pids = [int(p.read_text()) for p in programs.iterdir()]
    assert len(pids) == 2 and _wait_dead(pids) == []


_DRIVER = """
import sys
from workbench_dsl.backends.trainer.base import TrainJobSpec
from workbench_dsl.backends.trainer.local import LocalTrainer
LocalTrainer().run(TrainJobSpec(name="fit", module="wb_sleeper", nodes=2, procs_per_node=1))
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["cancel", "kill"])
def test_no_orphans_when_the_task_is_cancelled_or_killed(programs: Path, sig: int) -> None:
    # The task process (what the engine runs) drives the trainer; the engine then
    # cancels it (SIGTERM) or kills it on timeout (SIGKILL): no rank may survive.
    task = subprocess.Popen(
        [sys.executable, "-c", _DRIVER], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 20
        while len(list(programs.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = [int(p.read_text()) for p in programs.iterdir()]
        assert len(pids) == 2, "the ranks did not start"
        task.send_signal(sig)
        task.wait(timeout=15)
        assert _wait_dead(pids) == [], "ranks outlived their task"
    finally:
        if task.poll() is None:
            task.kill()
        task.wait()
        assert task.stdout is not None
        task.stdout.close()
