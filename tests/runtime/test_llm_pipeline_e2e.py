"""End to end through the engine: `workbench run pipelines/llm_chat.py` builds a tiny model,
registers it, serves it as an LLM endpoint, and the endpoint answers concurrent OpenAI requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PIPELINE = REPO / "pipelines" / "llm_chat.py"


@pytest.mark.slow
def test_build_register_serve_and_query_a_tiny_llm(workbench_home: Path, tmp_path: Path) -> None:
    pytest.importorskip("transformers", reason="the llm extra is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env["WORKBENCH_HOME"] = str(workbench_home)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    run = subprocess.run(
        [sys.executable, "-m", "workbench_dsl", "run", str(PIPELINE), "-p", "context_length=128"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    from workbench_dsl.backends.deployer import local_deployer
    from workbench_dsl.backends.registry import llm_tags, open_registry

    try:
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        version = open_registry().get_version("chat", "1")
        assert version.tags["workbench.flavor"] == "transformers"
        assert version.tags[llm_tags.CONTEXT_LENGTH] == "128"
        info = local_deployer().get("chat")
        assert info.state == "running" and info.url.endswith("/openai/v1")
        assert info.revisions[0]["kind"] == "llm"
        assert info.revisions[0]["llm"]["max_batch_size"] == 4

        show = subprocess.run(
            [sys.executable, "-m", "workbench_dsl", "endpoints", "show", "chat"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "kind llm" in show.stdout and "max_batch_size=4" in show.stdout, show.stdout

        sys.path.insert(0, str(PIPELINE.parent))
        try:
            import llm_chat
        finally:
            sys.path.remove(str(PIPELINE.parent))
        answers = llm_chat.query(concurrent=4)
        assert len(answers) == 4 and all(isinstance(a, str) for a in answers)
        assert json.dumps(answers)  # plain strings
    finally:
        local_deployer().stop_all()
