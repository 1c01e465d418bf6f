"""What the replay and runs-as-data tests share: a small pipeline, the CLI as a user runs it."""

import os
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from kfp import dsl
from kfp.dsl import Dataset, Input, Output


@dsl.component(base_image="python:3.11")
def make_table(rows: int, table: Output[Dataset]) -> None:
    with open(table.path, "w") as f:
        f.write("\n".join(str(i) for i in range(1, rows + 1)))


@dsl.component(base_image="python:3.11")
def divide(table: Input[Dataset], denominator: float, result: Output[Dataset]) -> float:
    with open(table.path) as f:
        total = sum(float(line) for line in f if line.strip())
    ratio = total / denominator
    with open(result.path, "w") as f:
        f.write(str(ratio))
    return ratio


@dsl.container_component
def shout(word: str, said: dsl.OutputPath(str)):  # type: ignore[no-untyped-def]
    return dsl.ContainerSpec(
        image="alpine:3",
        command=["sh", "-c", 'mkdir -p "$(dirname "$1")" && printf "%s!" "$0" > "$1"'],
        args=[word, said],
    )


@dsl.pipeline(name="replayable")
def replayable(rows: int = 4, denominator: float = 2.0) -> float:
    t = make_table(rows=rows)
    shout(word="hey")
    return divide(table=t.outputs["table"], denominator=denominator).outputs["Output"]


def wb(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    # Replays leave their scratch directory (on purpose): keep it under the test's home.
    env = dict(os.environ, WORKBENCH_HOME=str(home), TMPDIR=str(home))
    return subprocess.run(
        [sys.executable, "-m", "workbench_dsl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def counts(home: Path) -> dict[str, int]:
    c = sqlite3.connect(home / "runs.db")
    try:
        return {
            t: c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("runs", "tasks", "attempts", "artifacts", "cache")
        }
    finally:
        c.close()


def read_until(fd: int, wanted: str, deadline: float, seen: list[str]) -> str:
    """Read the pty ``fd`` until ``wanted`` shows up; all of it so far."""
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096).decode(errors="replace")
            except OSError:
                break
            if not chunk:
                break
            seen.append(chunk)
            if wanted in "".join(seen):
                return "".join(seen)
    raise AssertionError(f"never saw {wanted!r} in:\n{''.join(seen)}")
