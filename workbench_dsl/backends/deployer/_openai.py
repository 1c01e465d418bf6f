"""The OpenAI-compatible routes of a local LLM endpoint, on KServe's REST server.

``POST /openai/v1/completions``, ``POST /openai/v1/chat/completions`` (both
with ``stream: true`` as server-sent events) and ``GET /openai/v1/models``:
the paths, the ``/openai`` prefix (``KSERVE_OPENAI_ROUTE_PREFIX``) and the
error body ``{"error": {"code", "message", "param", "type"}}`` of KServe's
own OpenAI protocol (kserve/protocol/rest/openai/endpoints.py and errors.py
in kserve 0.21), and the request and response shapes of the OpenAI API
(https://platform.openai.com/docs/api-reference/completions).

Why not KServe's ``OpenAIGenerativeModel`` and its data plane themselves:
in kserve 0.21 every module of ``kserve.protocol.rest.openai`` imports its
request and response types from vLLM (``kserve/protocol/rest/openai/types/
__init__.py``), and ``kserve[llm]`` pins ``vllm==0.24.0``, which brings its
own CUDA build of torch. Without vLLM, KServe's REST server skips the OpenAI
routes ("OpenAI endpoints not registered"). The routes here are registered on
the same KServe app, behind the same guard (token, Host, Origin, size and
time limits) as V1 and V2, and pick the stable or canary revision with the
same router.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations.
import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workbench_dsl.backends.deployer._llm_engine import (
    SEED_MAX,
    SEED_MIN,
    ContextTooLong,
    Engine,
    Sequence,
)

PREFIX = os.environ.get("KSERVE_OPENAI_ROUTE_PREFIX", "/openai")
REVISION_HEADER = "x-workbench-revision"
#: ``max_tokens`` of a completion that names none (the OpenAI API's default).
DEFAULT_COMPLETION_TOKENS = 16
MAX_STOPS = 4


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: int = 1
    stream: bool = False
    #: Up to four, as OpenAI's API takes: each is looked for after every token, in the
    #: thread that generates the whole batch.
    stop: str | Annotated[list[str], Field(max_length=MAX_STOPS)] | None = None
    #: What a torch generator takes (a wider seed would fail the whole batch it joins).
    seed: int | None = Field(default=None, ge=SEED_MIN, le=SEED_MAX)

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(s for s in self.stop if s)


class CompletionRequest(_Request):
    prompt: str | list[str]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")


class ChatCompletionRequest(_Request):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)


def _error_body(status: int, message: str, param: str, kind: str) -> dict[str, Any]:
    return {"error": {"code": str(status), "message": message, "param": param, "type": kind}}


def error(status: int, message: str, param: str = "", kind: str = "BadRequestError") -> Any:
    """An error in the OpenAI (and KServe) shape."""
    from fastapi.responses import JSONResponse

    return JSONResponse(_error_body(status, message, param, kind), status_code=status)


def add_openai_routes(app: Any, name: str, router: Any) -> None:
    """Register the OpenAI routes of endpoint ``name`` on KServe's FastAPI ``app``.

    ``router.pick()`` returns ``(revision, predictor)``; an LLM revision's
    predictor has ``.engine``.
    """
    from fastapi import Request
    from fastapi.responses import StreamingResponse

    started = int(time.time())

    async def parse(request: Request, model: type[_Request]) -> Any:
        try:
            body = await request.json()
        except ValueError as e:
            return error(400, f"the body is not valid JSON: {e}")
        except RecursionError:
            return error(400, "the body is not valid JSON: it is nested too deeply")
        try:
            parsed = model.model_validate(body)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return error(400, f"{where}: {first['msg']}", param=where)
        if parsed.model != name:
            return error(
                404,
                f"the model `{parsed.model}` does not exist (this endpoint serves `{name}`)",
                param="model",
                kind="NotFoundError",
            )
        if parsed.n != 1:
            return error(400, "only n=1 is supported", param="n")
        return parsed

    def engine_for() -> tuple[str, Engine | None]:
        revision, predictor = router.pick()
        return revision, getattr(predictor, "engine", None)

    def not_llm() -> Any:
        return error(
            400,
            f"endpoint {name} serves a predictive model, not a language model: "
            f"POST /v2/models/{name}/infer (or /v1/models/{name}:predict)",
        )

    async def completions(request: Request) -> Any:
        parsed = await parse(request, CompletionRequest)
        if not isinstance(parsed, CompletionRequest):
            return parsed
        revision, engine = engine_for()
        if engine is None:
            return not_llm()
        prompts = [parsed.prompt] if isinstance(parsed.prompt, str) else parsed.prompt
        if not prompts:
            return error(400, "prompt is empty", param="prompt")
        if len(prompts) > engine.max_batch_size:  # one request fills one batch at most
            return error(
                400,
                f"{len(prompts)} prompts in one request; this endpoint takes at most "
                f"{engine.max_batch_size} (its max_batch_size): send the others separately",
                param="prompt",
            )
        max_tokens = parsed.max_tokens or DEFAULT_COMPLETION_TOKENS
        try:
            seqs = [_sequence(engine, engine.encode(p), max_tokens, parsed) for p in prompts]
        except ContextTooLong as e:
            return error(400, str(e), param="max_tokens")
        ident = f"cmpl-{uuid.uuid4().hex}"
        headers = {REVISION_HEADER: revision}
        if parsed.stream:
            if len(seqs) != 1:
                return error(400, "stream with a list of prompts is not supported", "prompt")
            return StreamingResponse(
                _stream_completion(engine, seqs[0], ident, name),
                media_type="text/event-stream",
                headers=headers,
            )
        choices, usage = [], _Usage()
        # All prompts of the request at once: they can share a batch.
        done = await asyncio.gather(*(_collect(engine, seq) for seq in seqs))
        for i, (seq, (text, finish, used)) in enumerate(zip(seqs, done, strict=True)):
            if finish == "error":
                return error(500, text, kind="InternalServerError")
            usage.add(len(seq.prompt_ids), used)
            choices.append({"index": i, "text": text, "logprobs": None, "finish_reason": finish})
        return _json(
            {
                "id": ident,
                "object": "text_completion",
                "created": int(time.time()),
                "model": name,
                "choices": choices,
                "usage": usage.to_json(),
            },
            headers,
        )

    async def chat_completions(request: Request) -> Any:
        parsed = await parse(request, ChatCompletionRequest)
        if not isinstance(parsed, ChatCompletionRequest):
            return parsed
        revision, engine = engine_for()
        if engine is None:
            return not_llm()
        messages = [{"role": m.role, "content": m.text()} for m in parsed.messages]
        prompt_ids = engine.encode(engine.chat_prompt(messages))
        asked = parsed.max_completion_tokens or parsed.max_tokens
        max_tokens = asked or max(1, engine.context_length - len(prompt_ids))
        try:
            seq = _sequence(engine, prompt_ids, max_tokens, parsed)
        except ContextTooLong as e:
            return error(400, str(e), param="messages" if asked is None else "max_tokens")
        ident = f"chatcmpl-{uuid.uuid4().hex}"
        headers = {REVISION_HEADER: revision}
        if parsed.stream:
            return StreamingResponse(
                _stream_chat(engine, seq, ident, name),
                media_type="text/event-stream",
                headers=headers,
            )
        text, finish, used = await _collect(engine, seq)
        if finish == "error":
            return error(500, text, kind="InternalServerError")
        usage = _Usage()
        usage.add(len(prompt_ids), used)
        return _json(
            {
                "id": ident,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
                "usage": usage.to_json(),
            },
            headers,
        )

    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": name, "object": "model", "created": started, "owned_by": "workbench"}],
        }

    app.add_api_route(f"{PREFIX}/v1/completions", completions, methods=["POST"])
    app.add_api_route(f"{PREFIX}/v1/chat/completions", chat_completions, methods=["POST"])
    app.add_api_route(f"{PREFIX}/v1/models", models, methods=["GET"])


def _sequence(engine: Engine, prompt_ids: list[int], max_tokens: int, req: _Request) -> Sequence:
    if not prompt_ids:
        raise ContextTooLong("the prompt is empty")
    engine.check_length(len(prompt_ids), max_tokens)
    return Sequence(
        prompt_ids=prompt_ids,
        max_tokens=max_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        stop=req.stops(),
        seed=req.seed,
    )


class _Usage:
    def __init__(self) -> None:
        self.prompt = self.completion = 0

    def add(self, prompt: int, completion: int) -> None:
        self.prompt += prompt
        self.completion += completion

    def to_json(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.prompt + self.completion,
        }


def _json(body: dict[str, Any], headers: dict[str, str]) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(body, headers=headers)


async def _collect(engine: Engine, seq: Sequence) -> tuple[str, str, int]:
    """The whole text, its finish reason (``error``: the text is the error) and its token count."""
    parts: list[str] = []
    async for event in engine.generate(seq):
        if event.error is not None:
            return event.error, "error", 0
        parts.append(event.delta)
        if event.finish_reason is not None:
            return "".join(parts), event.finish_reason, event.completion_tokens
    return "".join(parts), "stop", 0


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _stream(
    engine: Engine,
    seq: Sequence,
    delta: Callable[[str], str],
    finish: Callable[[str], str],
    first: str | None = None,
) -> AsyncIterator[str]:
    """One generation as server-sent events: ``first`` if given, ``delta(text)`` for each
    piece, ``finish(reason)`` at its end, or KServe's error body when it fails; then ``[DONE]``.
    """
    if first is not None:
        yield first
    async for event in engine.generate(seq):
        if event.error is not None:
            yield _sse(_error_body(500, event.error, "", "InternalServerError"))
            break
        if event.delta:
            yield delta(event.delta)
        if event.finish_reason is not None:
            yield finish(event.finish_reason)
    yield "data: [DONE]\n\n"


def _stream_completion(engine: Engine, seq: Sequence, ident: str, name: str) -> AsyncIterator[str]:
    created = int(time.time())

    def chunk(text: str, finish: str | None) -> str:
        return _sse(
            {
                "id": ident,
                "object": "text_completion",
                "created": created,
                "model": name,
                "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
            }
        )

    return _stream(engine, seq, lambda t: chunk(t, None), lambda f: chunk("", f))


def _stream_chat(engine: Engine, seq: Sequence, ident: str, name: str) -> AsyncIterator[str]:
    created = int(time.time())

    def chunk(delta: dict[str, str], finish: str | None) -> str:
        return _sse(
            {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": name,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
        )

    return _stream(
        engine,
        seq,
        lambda t: chunk({"content": t}, None),
        lambda f: chunk({}, f),
        first=chunk({"role": "assistant", "content": ""}, None),
    )
