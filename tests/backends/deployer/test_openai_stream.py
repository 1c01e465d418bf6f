"""The OpenAI routes' server-sent events, completion and chat, from a real engine on the tiny model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

from workbench_dsl.backends.deployer._llm_engine import Engine, Sequence
from workbench_dsl.backends.deployer._openai import _stream_chat, _stream_completion


def _events(stream: AsyncIterator[str]) -> list[str]:
    async def go() -> list[str]:
        return [chunk async for chunk in stream]

    raw = asyncio.run(go())
    assert all(c.startswith("data: ") and c.endswith("\n\n") for c in raw)
    return [c[len("data: ") : -2] for c in raw]


def _seq(engine: Engine) -> Sequence:
    return Sequence(engine.encode("Open the"), max_tokens=4, temperature=0.0)


def test_a_completion_and_a_chat_stream_their_text_then_the_finish_then_done(
    tiny_llm: Path,
) -> None:
    engine = Engine(tiny_llm, endpoint="chat", revision="r1", max_batch_size=1)
    try:
        text = _events(_stream_completion(engine, _seq(engine), "cmpl-1", "chat"))
        chat = _events(_stream_chat(engine, _seq(engine), "chatcmpl-1", "chat"))
    finally:
        engine.close()
    assert text[-1] == chat[-1] == "[DONE]"
    pieces = [json.loads(e) for e in text[:-1]]
    assert {(p["id"], p["object"], p["model"]) for p in pieces} == {
        ("cmpl-1", "text_completion", "chat")
    }
    assert [p["choices"][0]["finish_reason"] for p in pieces][-1] in ("length", "stop")
    assert all(p["choices"][0]["finish_reason"] is None for p in pieces[:-1])
    assert pieces[-1]["choices"][0]["text"] == ""
    chunks = [json.loads(e) for e in chat[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"][0]["finish_reason"] == pieces[-1]["choices"][0]["finish_reason"]
    # Greedy: the chat's deltas are the completion's pieces, one for one.
    said = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
    assert said == [p["choices"][0]["text"] for p in pieces[:-1]] and "".join(said)


def test_an_error_ends_either_stream_with_the_openai_error_body_then_done(
    tiny_llm: Path,
) -> None:
    engine = Engine(tiny_llm, endpoint="chat", revision="r2", max_batch_size=1)
    engine.close()  # a stopped revision answers with an error event
    text = _events(_stream_completion(engine, _seq(engine), "cmpl-2", "chat"))
    chat = _events(_stream_chat(engine, _seq(engine), "chatcmpl-2", "chat"))
    error = {
        "error": {
            "code": "500",
            "message": "revision r2 stopped serving; send the request again",
            "param": "",
            "type": "InternalServerError",
        }
    }
    assert [json.loads(e) for e in text[:-1]] == [error] and text[-1] == "[DONE]"
    assert json.loads(chat[0])["choices"][0]["delta"]["role"] == "assistant"
    assert [json.loads(e) for e in chat[1:-1]] == [error] and chat[-1] == "[DONE]"


def test_a_request_holds_at_most_one_batch_of_prompts(tiny_llm: Path) -> None:
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    from workbench_dsl.backends.deployer._openai import add_openai_routes

    engine = Engine(tiny_llm, endpoint="chat", revision="r3", max_batch_size=2)

    class OneRevision:  # the router's interface: the revision to serve and its predictor
        def __init__(self, engine: Engine) -> None:
            self.engine = engine

        def pick(self) -> tuple[str, object]:
            return "r3", self

    app = FastAPI()
    add_openai_routes(app, "chat", OneRevision(engine))
    try:
        client = TestClient(app)
        body = {"model": "chat", "prompt": ["Open the"] * 3, "max_tokens": 1}
        reply = client.post("/openai/v1/completions", json=body)
        assert reply.status_code == 400
        assert reply.json()["error"]["message"] == (
            "3 prompts in one request; this endpoint takes at most 2 (its max_batch_size): "
            "send the others separately"
        )
        body["prompt"] = ["Open the"] * 2
        reply = client.post("/openai/v1/completions", json=body)
        assert reply.status_code == 200, reply.text
        assert len(reply.json()["choices"]) == 2
    finally:
        engine.close()
