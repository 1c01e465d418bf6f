"""A local LLM endpoint end to end: a real KServe server on 127.0.0.1 running a tiny Transformers model.

OpenAI-compatible completions, chat, streaming and models; the 400 for a prompt
beyond the context length; bearer tokens and the Host rule; a canary split
between two model versions; batching of concurrent requests seen in /metrics.
"""

from __future__ import annotations

import http.client
import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from workbench_dsl.backends.deployer import DeploySpec, LLMOptions
from workbench_dsl.backends.deployer.local import LocalDeployer
from workbench_dsl.paths import LocalRoot

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDeployer]:
    d = LocalDeployer(LocalRoot(tmp_path_factory.mktemp("home")))
    try:
        yield d
    finally:
        d.stop_all()


class Client:
    """Raw HTTP to one endpoint (the openai package is not a dependency)."""

    def __init__(self, url: str, token: str | None) -> None:
        self.port = int(url.split(":")[2].split("/")[0])
        self.token = token

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        auth = {"authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            conn.request(
                method,
                path,
                body=None if body is None else json.dumps(body),
                headers={"content-type": "application/json", **auth, **(headers or {})},
            )
            resp = conn.getresponse()
            raw = resp.read().decode()
            got = {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()
        if got.get("content-type", "").startswith("text/event-stream"):
            return resp.status, raw, got
        return resp.status, json.loads(raw) if raw else None, got


def test_an_llm_endpoint_speaks_openai_batches_and_splits_a_canary(
    deployer: LocalDeployer, tiny_llm: Path, tmp_path: Path
) -> None:
    from workbench_dsl.tiny_llm import build_tiny_llm

    options = LLMOptions(max_batch_size=4, batch_wait_ms=300, max_model_len=64)
    first = deployer.deploy(
        DeploySpec(
            endpoint="chat",
            model_uri="models:/chat/1",
            storage=str(tiny_llm),
            flavor="transformers",
            auth="token",
            kind="llm",
            llm=options,
        )
    )
    assert first.url.endswith("/openai/v1") and first.token
    api = Client(first.url, first.token)
    base = "/openai/v1"

    assert api.call("GET", f"{base}/models")[1]["data"][0]["id"] == "chat"
    # Token auth and the Host rule hold on the OpenAI routes as on V1/V2.
    assert Client(first.url, None).call("GET", f"{base}/models")[0] == 401
    assert Client(first.url, "wrong").call("POST", f"{base}/completions", {})[0] == 401
    foreign = api.call("GET", f"{base}/models", headers={"host": "evil.example:80"})
    assert foreign[0] == 403
    page = {"model": "chat", "prompt": "x", "max_tokens": 1}
    cross = api.call("POST", f"{base}/completions", page, headers={"origin": "http://evil.example"})
    assert cross[0] == 403  # a web page on another site cannot use the endpoint

    status, reply, headers = api.call(
        "POST",
        f"{base}/completions",
        {"model": "chat", "prompt": "Return the", "max_tokens": 5, "temperature": 0},
    )
    assert status == 200, reply
    assert reply["object"] == "text_completion" and reply["model"] == "chat"
    assert reply["choices"][0]["finish_reason"] in ("length", "stop")
    assert reply["usage"]["completion_tokens"] <= 5
    assert headers["x-workbench-revision"] == first.revision
    both = {"model": "chat", "prompt": ["Open", "Return the"], "max_tokens": 3, "temperature": 0}
    status, reply, _ = api.call("POST", f"{base}/completions", both)
    assert status == 200 and [c["index"] for c in reply["choices"]] == [0, 1]

    status, reply, _ = api.call(
        "POST",
        f"{base}/chat/completions",
        {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
    )
    assert status == 200 and reply["choices"][0]["message"]["role"] == "assistant"

    # Streaming: server-sent events, one chunk per piece of text, then [DONE].
    status, raw, headers = api.call(
        "POST",
        f"{base}/chat/completions",
        {
            "model": "chat",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 6,
            "stream": True,
            "temperature": 0,
        },
    )
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = [line[len("data: ") :] for line in raw.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["object"] == "chat.completion.chunk"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] in ("length", "stop")

    # A completion streams the same text it returns whole (greedy).
    ask = {"model": "chat", "prompt": "Open the", "max_tokens": 5, "temperature": 0}
    whole = api.call("POST", f"{base}/completions", ask)[1]["choices"][0]["text"]
    raw = api.call("POST", f"{base}/completions", {**ask, "stream": True})[1]
    pieces = [
        json.loads(line[len("data: ") :])
        for line in raw.split("\n\n")
        if line.startswith("data: {")
    ]
    assert {p["object"] for p in pieces} == {"text_completion"}
    assert "".join(p["choices"][0]["text"] for p in pieces) == whole
    assert raw.rstrip().endswith("data: [DONE]")

    # Beyond the context length (max_model_len=64): a 400 that names the limit.
    status, reply, _ = api.call(
        "POST", f"{base}/completions", {"model": "chat", "prompt": "word " * 80, "max_tokens": 4}
    )
    assert status == 400
    assert "context length is 64 tokens" in reply["error"]["message"]
    assert api.call("POST", f"{base}/completions", {"model": "gpt-4", "prompt": "x"})[0] == 404

    # Eight concurrent requests with max_batch_size=4: generated in batches of up to four.
    before = _metrics(api)
    body = {"model": "chat", "prompt": "Open the", "max_tokens": 4, "temperature": 0}
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: api.call("POST", f"{base}/completions", body), range(8)))
    assert {r[0] for r in results} == {200}
    assert len({r[1]["choices"][0]["text"] for r in results}) == 1  # greedy: the same text
    after = _metrics(api)

    def grew(name: str, **labels: str) -> float:
        rev = first.revision
        return _value(after, name, rev, **labels) - _value(before, name, rev, **labels)

    assert grew("workbench_llm_batch_size_sum") == 8  # eight sequences...
    assert grew("workbench_llm_batch_size_count") <= 3  # ...in two or three batches
    assert grew("workbench_llm_batch_size_bucket", le="4.0") == grew(
        "workbench_llm_batch_size_count"
    )
    assert grew("workbench_llm_time_to_first_token_seconds_count") == 8
    assert grew("workbench_llm_completion_tokens_total") == sum(
        r[1]["usage"]["completion_tokens"] for r in results
    )
    assert grew("workbench_llm_prompt_tokens_total") == sum(
        r[1]["usage"]["prompt_tokens"] for r in results
    )

    # `workbench metrics` re-exposes them with every other endpoint's series.
    from workbench_dsl.telemetry.prometheus import exposition

    scraped = exposition(deployer.root).decode()
    assert _value(scraped, "workbench_llm_batch_size_sum", first.revision) >= 8
    assert _value(scraped, "workbench_llm_completion_tokens_total", first.revision) > 0
    assert "# TYPE workbench_llm_time_to_first_token_seconds histogram" in scraped

    # A second model version as a 50% canary: the same URL, the split by revision.
    other = build_tiny_llm(tmp_path / "v2", context_length=128, seed=1)
    second = deployer.deploy(
        DeploySpec(
            endpoint="chat",
            model_uri="models:/chat/2",
            storage=str(other),
            flavor="transformers",
            canary_percent=50,
            auth="token",
            kind="llm",
            llm=options,
        )
    )
    assert second.canary and second.url == first.url
    served = Counter(
        api.call("POST", f"{base}/completions", {**body, "max_tokens": 1})[2][
            "x-workbench-revision"
        ]
        for _ in range(10)
    )
    assert served == {first.revision: 5, second.revision: 5}
    info = deployer.get("chat")
    assert [r["kind"] for r in info.revisions] == ["llm", "llm"]
    assert info.revisions[0]["llm"]["max_batch_size"] == 4


def _metrics(api: Client) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def _value(text: str, name: str, revision: str, **labels: str) -> float:
    for line in text.splitlines():
        wanted = {"revision": revision, **labels}
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in wanted.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} for {revision} not in /metrics")
