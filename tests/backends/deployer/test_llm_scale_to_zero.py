"""An LLM endpoint scales to zero: a real activator and a real KServe server running the tiny model.

``@serve(kind="llm", min_replicas=0)`` locally: idle, the model server stops; a
burst of OpenAI requests (completion, chat, a streamed completion, the model
list) arriving while it sleeps wakes it once and every one is answered; a stream
that waits longer than the idle time between two chunks is passed on chunk by
chunk and never counted idle, and one whose client leaves stops counting at once;
the LLM series reach ``/metrics`` through the activator; ``endpoints show``
reports the cold starts.
"""

from __future__ import annotations

import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from workbench_dsl import _procs
from workbench_dsl.backends.deployer import DeploySpec, LLMOptions, local_deployer
from workbench_dsl.backends.deployer._process import http as request
from workbench_dsl.backends.deployer.local import LocalDeployer
from workbench_dsl.cli.app import app
from workbench_dsl.paths import LocalRoot
from workbench_dsl.telemetry.prometheus import exposition

pytestmark = pytest.mark.slow

IDLE_S = 3
#: A batch of fewer than MAX_BATCH sequences waits this long before it generates: a
#: lone streamed chat sends its first chunk, then nothing for longer than IDLE_S.
BATCH_WAIT_MS = 4500
MAX_BATCH = 3
BASE = "/openai/v1"


def _call(port: int, token: str, method: str, path: str, body: Any = None) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(
            method,
            path,
            body=None if body is None else json.dumps(body),
            headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
        )
        resp = conn.getresponse()
        raw = resp.read().decode()
    finally:
        conn.close()
    assert resp.status == 200, raw
    if resp.getheader("content-type", "").startswith("text/event-stream"):
        return [json.loads(e[6:]) if e != "data: [DONE]" else e for e in raw.split("\n\n") if e]
    return json.loads(raw)


def _status(d: LocalDeployer) -> dict[str, Any]:
    row = d.store.get("chat")
    assert row is not None
    _, reply, _ = request(
        "GET", f"http://127.0.0.1:{row.port}/_workbench/status", None, {}, timeout=5
    )
    assert isinstance(reply, dict)
    return reply


def _wait_asleep(d: LocalDeployer) -> None:
    deadline = time.monotonic() + IDLE_S + 15
    while _status(d)["scale"] != "scaled to zero":
        assert time.monotonic() < deadline, _status(d)
        time.sleep(0.2)


def _value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} not in /metrics")


def test_an_llm_endpoint_sleeps_wakes_for_openai_requests_and_streams_through(
    workbench_home: Path, tiny_llm: Path
) -> None:
    d = local_deployer()
    try:
        _scenario(d, workbench_home, tiny_llm)
    finally:
        d.stop_all()


def _scenario(d: LocalDeployer, home: Path, model: Path) -> None:
    info = d.deploy(
        DeploySpec(
            endpoint="chat",
            model_uri="models:/chat/1",
            storage=str(model),
            flavor="transformers",
            auth="token",
            kind="llm",
            llm=LLMOptions(max_batch_size=MAX_BATCH, batch_wait_ms=BATCH_WAIT_MS, max_model_len=64),
            min_replicas=0,
            scale_to_zero_after=IDLE_S,
        )
    )
    assert info.url.endswith(BASE) and info.token
    row = d.store.get("chat")
    assert row is not None
    port, token = row.port, info.token
    server = _status(d)["model_server_pid"]
    _wait_asleep(d)
    assert not _procs.alive(server)
    asleep = d.get("chat").scale
    assert asleep is not None and asleep.cold_starts == 1  # the deploy's

    # A burst while asleep: one cold start, every kind of OpenAI request answered.
    ask = {"model": "chat", "prompt": "Open the", "max_tokens": 4, "temperature": 0}
    chat = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    burst = [
        ("POST", f"{BASE}/completions", ask),
        ("POST", f"{BASE}/chat/completions", chat),
        ("POST", f"{BASE}/completions", {**ask, "stream": True}),
        ("GET", f"{BASE}/models", None),
    ]
    with ThreadPoolExecutor(len(burst)) as pool:
        done, said, streamed, models = pool.map(lambda r: _call(port, token, *r), burst)
    assert done["object"] == "text_completion" and done["usage"]["completion_tokens"] <= 4
    assert said["choices"][0]["message"]["role"] == "assistant"
    assert streamed[-1] == "data: [DONE]" and {c["object"] for c in streamed[:-1]} == {
        "text_completion"
    }
    assert streamed[-2]["choices"][0]["finish_reason"] in ("length", "stop")
    assert models["data"][0]["id"] == "chat"
    woke = d.get("chat").scale
    assert woke is not None and woke.cold_starts == 2 and woke.last_cold_start_error is None
    server = _status(d)["model_server_pid"]

    # A lone streamed chat: its first chunk comes at once, the rest after the batch wait,
    # longer than the idle time. The chunk is passed on, and the endpoint stays up.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(
        "POST",
        f"{BASE}/chat/completions",
        body=json.dumps({**chat, "stream": True, "temperature": 0}),
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
    )
    resp = conn.getresponse()
    assert resp.status == 200
    first = resp.readline()
    first_at = time.monotonic()
    assert json.loads(first[6:])["choices"][0]["delta"]["role"] == "assistant"
    mid = _status(d)
    assert (mid["scale"], mid["in_flight"], mid["model_server_pid"]) == ("running", 1, server)

    # Mid-stream: the LLM series of the burst, through the activator and `workbench metrics`.
    revision = info.revision
    conn2 = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn2.request("GET", "/metrics")
    scraped = conn2.getresponse().read().decode()
    conn2.close()
    assert _value(scraped, "workbench_llm_batch_size_sum", revision=revision) >= MAX_BATCH
    assert (
        _value(scraped, "workbench_llm_time_to_first_token_seconds_count", revision=revision) >= 3
    )
    assert _value(scraped, "workbench_llm_completion_tokens_total", revision=revision) > 0
    assert _value(scraped, "workbench_endpoint_replicas", endpoint="chat") == 1
    assert _value(scraped, "workbench_endpoint_cold_start_seconds_count", endpoint="chat") >= 1
    text = exposition(LocalRoot(home)).decode()
    assert _value(text, "workbench_llm_prompt_tokens_total", endpoint="chat") > 0
    assert _value(text, "workbench_endpoint_replicas", endpoint="chat") == 1

    rest = resp.read().decode()
    conn.close()
    assert time.monotonic() - first_at > IDLE_S  # not buffered: it came before the rest
    assert rest.rstrip().endswith("data: [DONE]")
    assert '"finish_reason":"length"' in rest or '"finish_reason":"stop"' in rest
    after = d.get("chat").scale
    assert after is not None and after.cold_starts == 2, "the model stopped mid-stream"
    assert _status(d)["model_server_pid"] == server

    runner = CliRunner(env={"WORKBENCH_HOME": str(home)})
    shown = runner.invoke(app, ["endpoints", "show", "chat"])
    assert shown.exit_code == 0, shown.output
    assert f"scales to zero after {IDLE_S}s idle" in shown.stdout
    assert after.last_cold_start_s is not None
    assert f"cold start last {after.last_cold_start_s:.1f}s" in shown.stdout
    assert f"127.0.0.1:{port}{BASE}" in shown.stdout

    # A client that leaves mid-stream is no longer in flight (its generation is cancelled),
    # long before its batch wait would have ended; then the endpoint goes to sleep.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(
        "POST",
        f"{BASE}/chat/completions",
        body=json.dumps({**chat, "stream": True}),
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
    )
    resp = conn.getresponse()
    assert resp.readline().startswith(b"data: {") and _status(d)["in_flight"] == 1
    left_at = time.monotonic()
    conn.close()
    while _status(d)["in_flight"]:
        assert time.monotonic() - left_at < BATCH_WAIT_MS / 2000, "still in flight"
        time.sleep(0.05)
    _wait_asleep(d)
    assert not _procs.alive(server)
