"""The LLM engine's batching: concurrent requests generated together, up to the batch size."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from workbench_dsl.backends.deployer._llm_engine import ContextTooLong, Engine, Sequence

PROMPTS = ["Return the", "a b c d e f g h i", "Open", "The default value of the argument is"]


def _engine(tiny_llm: Path, **kw: object) -> Engine:
    return Engine(tiny_llm, endpoint="chat", revision=f"r{id(kw)}", **kw)  # type: ignore[arg-type]


async def _one(engine: Engine, prompt: str, **kw: object) -> tuple[str, str | None, int]:
    text, finish, used = "", None, 0
    seq = Sequence(engine.encode(prompt), **{"max_tokens": 8, "temperature": 0.0, **kw})  # type: ignore[arg-type]
    async for event in engine.generate(seq):
        assert event.error is None
        text += event.delta
        if event.finish_reason:
            finish, used = event.finish_reason, event.completion_tokens
    return text, finish, used


def _all(engine: Engine, prompts: list[str], **kw: object) -> list[tuple[str, str | None, int]]:
    async def go() -> list[tuple[str, str | None, int]]:
        return list(await asyncio.gather(*(_one(engine, p, **kw) for p in prompts)))

    return asyncio.run(go())


def test_concurrent_requests_are_generated_in_one_batch_with_the_same_tokens(
    tiny_llm: Path,
) -> None:
    single = _engine(tiny_llm, max_batch_size=1)
    batched = _engine(tiny_llm, max_batch_size=4, batch_wait_ms=2000)
    try:
        alone = _all(single, PROMPTS)
        together = _all(batched, PROMPTS)
        assert single.batch_sizes == [1, 1, 1, 1]  # max_batch_size=1 never batches
        assert batched.batch_sizes == [4]
        # Left padding and the attention mask make batching invisible in the output.
        assert together == alone
        # Five at once with room for four: a batch of four, then one.
        _all(batched, [*PROMPTS, "x"])
        assert batched.batch_sizes[1:] == [4, 1]
    finally:
        single.close()
        batched.close()


def test_each_sequence_stops_on_its_own(tiny_llm: Path) -> None:
    engine = _engine(tiny_llm, max_batch_size=4, batch_wait_ms=2000)
    try:

        async def go() -> list[tuple[str, str | None, int]]:
            return list(
                await asyncio.gather(
                    _one(engine, "Return the", max_tokens=3),
                    _one(engine, "Return the", max_tokens=9),
                    _one(engine, "Return the", max_tokens=9, temperature=0.8, top_p=0.9, seed=1),
                    _one(engine, "Return the", max_tokens=9, temperature=0.8, top_p=0.9, seed=1),
                )
            )

        short, long, sampled, again = asyncio.run(go())
        assert engine.batch_sizes == [4]
        assert short[1:] == ("length", 3) and long[1:] == ("length", 9)
        assert long[0].startswith(short[0])
        assert sampled == again  # the same seed samples the same tokens
        stop = long[0][len(short[0]) : len(short[0]) + 2]
        if stop.strip():  # a stop string ends the text before it
            text, finish, _ = _all(engine, ["Return the"], max_tokens=9, stop=(stop,))[0]
            assert finish == "stop" and stop not in text
    finally:
        engine.close()


def test_a_prompt_beyond_the_context_length_is_refused_with_the_limit(tiny_llm: Path) -> None:
    engine = _engine(tiny_llm, max_model_len=64)
    try:
        assert engine.context_length == 64
        with pytest.raises(ContextTooLong, match=r"context length is 64 tokens; the prompt has 60"):
            engine.check_length(60, 16)
        engine.check_length(48, 16)
        with pytest.raises(ValueError, match=r"beyond the model's context length of 128"):
            Engine(tiny_llm, endpoint="chat", revision="x", max_model_len=512)
    finally:
        engine.close()

    async def late() -> list[str | None]:
        seq = Sequence(engine.encode("Open"), max_tokens=2)
        return [e.error async for e in engine.generate(seq)]

    # A revision that stopped serving answers at once, never leaves a request hanging.
    assert asyncio.run(late()) == [
        f"revision {engine.revision} stopped serving; send the request again"
    ]


def test_chat_uses_the_tokenizer_template_else_the_plain_fallback(
    tiny_llm: Path, tmp_path: Path
) -> None:
    from workbench_dsl.tiny_llm import build_tiny_llm

    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    engine = _engine(tiny_llm)
    plain = Engine(
        build_tiny_llm(tmp_path / "plain", chat_template=False), endpoint="c", revision="p"
    )
    try:
        assert engine.chat_prompt(chat) == "<|system|>Be brief.\n<|user|>hi\n<|assistant|>"
        assert plain.chat_prompt(chat) == "system: Be brief.\nuser: hi\nassistant:"
    finally:
        engine.close()
        plain.close()


def test_without_transformers_an_llm_deploy_fails_in_one_line_naming_the_extra(
    tiny_llm: Path, monkeypatch: pytest.MonkeyPatch, workbench_home: Path
) -> None:
    import sys

    from workbench_dsl.backends.deployer import DeployError, DeploySpec, LLMOptions
    from workbench_dsl.backends.deployer.local import LocalDeployer
    from workbench_dsl.paths import LocalRoot

    monkeypatch.setitem(sys.modules, "transformers", None)  # as if not installed
    spec = DeploySpec(
        endpoint="chat",
        model_uri="models:/chat/1",
        storage=str(tiny_llm),
        flavor="transformers",
        kind="llm",
        llm=LLMOptions(),
    )
    with pytest.raises(DeployError) as e:
        LocalDeployer(LocalRoot(workbench_home)).deploy(spec)
    assert str(e.value) == (
        "endpoint chat: LLM endpoints need Transformers: pip install 'workbench-dsl[llm]'"
    )
