"""Helpers for the dashboard's tests: a client on loopback, a small compiled spec, runs written
through the run store's own API (as the engine writes them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from workbench_dsl.engine.store import RunStore
from workbench_dsl.paths import LocalRoot
from workbench_dsl.ui.app import create_app
from workbench_dsl.ui.security import Access

TOKEN = "tok-3f9a1c77e2"
PORT = 8765
ORIGIN = f"http://127.0.0.1:{PORT}"
XSS = "<script>alert(1)</script>"


def make_client(
    root: Path, *, client_host: str = "127.0.0.1", logged_in: bool = False
) -> TestClient:
    """A client of a fresh dashboard app for ``root``, calling from ``client_host``."""
    app = create_app(LocalRoot(root), Access(token=TOKEN, port=PORT), metrics_interval=None)
    c = TestClient(app, base_url=ORIGIN, client=(client_host, 50000), follow_redirects=False)
    if logged_in:
        c.cookies.set(f"workbench_ui_token_{PORT}", TOKEN)
    return c


def csrf_of(c: TestClient) -> str:
    return str(c.app.state.access.csrf)  # type: ignore[attr-defined]


def _component(label: str) -> dict[str, Any]:
    return {"executorLabel": f"exec-{label}"}


def spec_text(first: str = "load") -> str:
    """A compiled pipeline: ``first`` -> train -> condition-1 { deploy }, as KFP writes it."""
    spec = {
        "pipelineInfo": {"name": "demo"},
        "root": {
            "dag": {
                "tasks": {
                    first: {"componentRef": {"name": "comp-load"}, "taskInfo": {"name": first}},
                    "train": {
                        "componentRef": {"name": "comp-train"},
                        "dependentTasks": [first],
                        "inputs": {
                            "artifacts": {
                                "data": {
                                    "taskOutputArtifact": {
                                        "outputArtifactKey": "data",
                                        "producerTask": first,
                                    }
                                }
                            }
                        },
                        "taskInfo": {"name": "train"},
                    },
                    "condition-1": {
                        "componentRef": {"name": "comp-condition-1"},
                        "dependentTasks": ["train"],
                        "taskInfo": {"name": "condition-1"},
                    },
                }
            }
        },
        "components": {
            "comp-load": _component("load"),
            "comp-train": _component("train"),
            "comp-deploy": _component("deploy"),
            "comp-condition-1": {
                "dag": {
                    "tasks": {
                        "deploy": {
                            "componentRef": {"name": "comp-deploy"},
                            "taskInfo": {"name": "deploy"},
                        }
                    }
                }
            },
        },
        "deploymentSpec": {
            "executors": {
                f"exec-{n}": {"container": {"image": "python:3.11"}}
                for n in ("load", "train", "deploy")
            }
        },
    }
    return json.dumps(spec)


def add_run(
    store: RunStore,
    run_id: str,
    pipeline: str,
    *,
    status: str = "SUCCEEDED",
    tasks: dict[str, dict[str, Any]] | None = None,
    spec: str | None = None,
    params: dict[str, Any] | None = None,
    cost: float = 0.0,
) -> None:
    """A run with ``tasks`` (name -> task row fields), ended with ``status`` unless RUNNING."""
    store.create_run(
        run_id, pipeline, spec or spec_text(), "", params or {}, {"cache": True}, "demo.py"
    )
    rows = [(name, {"kind": "container", **fields}) for name, fields in (tasks or {}).items()]
    store.upsert_tasks(run_id, rows)
    if status != "RUNNING":
        store.finish_run(run_id, status, None, {}, cost)


def attempt(
    store: RunStore,
    root: Path,
    run_id: str,
    task: str,
    number: int,
    *,
    status: str = "SUCCEEDED",
    log: str = "",
    fields: dict[str, Any] | None = None,
) -> Path:
    """One attempt of ``task`` with its log file (left open, RUNNING, when status says so)."""
    log_path = root / "runs" / run_id / "logs" / f"{task}.{number}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text(log, encoding="utf-8")
    store.start_attempt(
        run_id,
        task,
        number,
        str(log_path),
        str(root / "work"),
        {"status": "RUNNING", "attempts": number, "log_path": str(log_path), "kind": "container"},
    )
    if status != "RUNNING":
        store.finish_attempt(
            run_id,
            task,
            number,
            status,
            0.5,
            0 if status == "SUCCEEDED" else 1,
            None if status == "SUCCEEDED" else "boom",
            task_fields={"status": status, "duration_s": 0.5, **(fields or {})},
        )
    return log_path


def artifact(path: Path, title: str, name: str, metadata: dict[str, Any] | None = None) -> dict:
    """An output artifact record as the engine stores it in ``outputs_json``."""
    return {
        "name": name,
        "uri": str(path),
        "type": {"schemaTitle": title, "schemaVersion": "0.0.1"},
        "metadata": metadata or {},
        "size": path.stat().st_size if path.exists() else 0,
        "sha256": None,
    }
