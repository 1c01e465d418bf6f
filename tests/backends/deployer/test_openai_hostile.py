"""The OpenAI-compatible routes given hostile bodies: each is a 400 with the OpenAI error body,
checked before any model runs (the router here serves nothing, so a body that got past the
checks would get another status)."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from workbench_dsl.backends.deployer._llm_engine import Sequence
from workbench_dsl.backends.deployer._openai import add_openai_routes
from workbench_dsl.backends.deployer._router import RouterModel

NAME = "chat"


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    add_openai_routes(app, NAME, RouterModel(NAME))
    return TestClient(app, raise_server_exceptions=False)


def _chat(**extra: object) -> dict[str, object]:
    return {"model": NAME, "messages": [{"role": "user", "content": "hi"}], **extra}


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # deeper than any parser's stack
        b'{"model": "chat", "messages": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
        json.dumps(_chat(seed=2**64)).encode(),  # no generator takes it
        json.dumps(_chat(seed=-(2**63) - 1)).encode(),
        b'{"model": "chat", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
        json.dumps(_chat(max_tokens=-1)).encode(),
        json.dumps(_chat(n=2)).encode(),
        # Each is looked for after every token, in the batch's thread: OpenAI allows four.
        json.dumps(_chat(stop=[chr(0x4E00 + i) for i in range(100_000)])).encode(),
        json.dumps(_chat(stop=["a", "b", "c", "d", "e"])).encode(),
        b"\xff\xfe not json",
    ],
)
def test_a_hostile_body_is_a_400_with_the_openai_error_body(
    client: TestClient, body: bytes
) -> None:
    for route in ("/openai/v1/chat/completions", "/openai/v1/completions"):
        reply = client.post(route, content=body, headers={"content-type": "application/json"})
        assert reply.status_code == 400, (route, body[:80], reply.status_code, reply.text[:200])
        assert reply.json()["error"]["type"] == "BadRequestError"


def test_a_sequence_refuses_a_seed_no_generator_takes() -> None:
    # Checked when the request is read: inside a batch it would fail its neighbours too.
    for seed in (2**64, -(2**63) - 1):
        with pytest.raises(ValueError, match="seed"):
            Sequence([1, 2], max_tokens=1, seed=seed)
    assert Sequence([1], max_tokens=1, seed=2**64 - 1).seed == 2**64 - 1
