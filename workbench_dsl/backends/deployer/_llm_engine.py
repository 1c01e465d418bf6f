"""The generation engine of one LLM revision: a Transformers causal LM on CPU with batching.

Requests wait in a queue; one worker thread takes the first, collects more
until ``max_batch_size`` are waiting or ``batch_wait_ms`` passed since the
first arrived, and generates for all of them together: prompts left-padded to
one length, one forward pass per token for the whole batch with the KV cache,
each sequence stopping on its own (end-of-sequence token, a ``stop`` string,
or its ``max_tokens``) with its own sampling (greedy at temperature 0, else
temperature and top-p). Requests that arrive while a batch runs form the
next batch (static batching: a KV cache per batch keeps this simple and
correct; continuous batching, as vLLM does it, is the cluster's).
``max_batch_size=1`` generates one request at a time.

Tokens go back to the asking coroutine through its event loop as they are
made, so streaming and time to first token are real.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Histogram

#: How users install what an LLM endpoint needs (the one line every such error ends with).
INSTALL_HINT = "pip install 'workbench-dsl[llm]'"

PROMPT_TOKENS = Counter(
    "workbench_llm_prompt_tokens_total",
    "Prompt tokens of accepted LLM requests.",
    ["endpoint", "revision"],
)
COMPLETION_TOKENS = Counter(
    "workbench_llm_completion_tokens_total",
    "Tokens generated for LLM requests.",
    ["endpoint", "revision"],
)
TIME_TO_FIRST_TOKEN = Histogram(
    "workbench_llm_time_to_first_token_seconds",
    "From a request's arrival to its first generated token.",
    ["endpoint", "revision"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BATCH_SIZE = Histogram(
    "workbench_llm_batch_size",
    "Sequences generated together in one batch.",
    ["endpoint", "revision"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)


class ContextTooLong(ValueError):
    """A prompt (with its max_tokens) beyond the context length; the message names the limit."""


def transformers_dir(storage: Path) -> Path:
    """The ``save_pretrained`` directory of a revision: the storage itself or its ``model/``."""
    if (storage / "config.json").is_file():
        return storage
    if (storage / "model" / "config.json").is_file():
        return storage / "model"
    raise FileNotFoundError(f"no Transformers model (config.json) in {storage} or {storage}/model")


def import_transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise RuntimeError(f"LLM endpoints need Transformers: {INSTALL_HINT}") from None
    return transformers


#: The seeds a torch generator takes (``manual_seed``: a signed or unsigned 64-bit value).
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1


@dataclass
class Sequence:
    """One sequence to generate, and the channel its events go back through."""

    prompt_ids: list[int]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    arrived: float = field(default_factory=time.monotonic)
    cancelled: bool = False
    loop: asyncio.AbstractEventLoop | None = None
    events: asyncio.Queue[Event] | None = None

    def __post_init__(self) -> None:
        # Checked here, not in the batch: a seed torch refuses would fail every neighbour.
        if self.seed is not None and not SEED_MIN <= self.seed <= SEED_MAX:
            raise ValueError(f"seed must be between {SEED_MIN} and {SEED_MAX} (got {self.seed})")


@dataclass(frozen=True)
class Event:
    """A piece of text (``delta``), or the end (``finish_reason`` set) with the token counts."""

    delta: str = ""
    finish_reason: str | None = None
    completion_tokens: int = 0
    error: str | None = None


class Engine:
    """A loaded revision that generates text; thread-safe to call from the server's event loop.

    Args:
        path: A Transformers directory (or an MLflow model keeping one under ``model/``).
        endpoint: The endpoint's name (metric label).
        revision: The revision's name (metric label).
        max_batch_size: Most sequences generated together (1: no batching).
        batch_wait_ms: Longest a first request waits for others to join its batch.
        max_model_len: The context length to serve (None: the model's own).
        dtype: ``auto`` (the model's), ``float32``, ``bfloat16`` or ``float16``.
    """

    def __init__(
        self,
        path: Path,
        *,
        endpoint: str,
        revision: str,
        max_batch_size: int = 8,
        batch_wait_ms: float = 10.0,
        max_model_len: int | None = None,
        dtype: str = "auto",
    ) -> None:
        transformers = import_transformers()
        import torch

        from workbench_dsl.backends.registry._transformers import context_length

        self.torch = torch
        self.dir = transformers_dir(path)
        self.endpoint, self.revision = endpoint, revision
        self.max_batch_size = max(1, int(max_batch_size))
        self.batch_wait_s = max(0.0, float(batch_wait_ms)) / 1000.0
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.dir)
        torch_dtype: Any = "auto" if dtype == "auto" else getattr(torch, dtype)
        self.model = transformers.AutoModelForCausalLM.from_pretrained(self.dir, dtype=torch_dtype)
        self.model.eval()
        own = context_length(self.model.config.to_dict())
        if max_model_len is not None and own is not None and max_model_len > own:
            raise ValueError(
                f"max_model_len={max_model_len} is beyond the model's context length of {own} tokens"
            )
        limit = max_model_len or own
        if limit is None:
            raise ValueError(
                f"{self.dir}/config.json names no context length (max_position_embeddings): "
                f"set max_model_len in @serve"
            )
        self.context_length = int(limit)
        self.eos_ids = _eos_ids(self.model, self.tokenizer)
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = next(iter(self.eos_ids), 0)
        #: Sizes of the batches generated so far (the newest last; tests and the bench read it).
        self.batch_sizes: list[int] = []
        self._queue: queue.Queue[Sequence | None] = queue.Queue()
        self._closed = False
        self._labels = (endpoint, revision)
        self._worker = threading.Thread(target=self._run, name=f"llm-{revision}", daemon=True)
        self._worker.start()

    # -- what the OpenAI routes call ------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """The prompt for a chat: the tokenizer's chat template, else a plain fallback.

        The fallback (documented in docs/register-serve.md): each message as
        ``ROLE: CONTENT`` on its own line, then ``assistant:`` for the reply.
        """
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
            return str(text)
        lines = [f"{m['role']}: {m['content']}" for m in messages]
        return "\n".join([*lines, "assistant:"])

    def check_length(self, prompt_tokens: int, max_tokens: int) -> None:
        total = prompt_tokens + max_tokens
        if total > self.context_length:
            raise ContextTooLong(
                f"this model's context length is {self.context_length} tokens; the prompt has "
                f"{prompt_tokens} tokens and max_tokens asks for {max_tokens} more ({total}): "
                f"shorten the prompt or lower max_tokens"
            )

    async def generate(self, seq: Sequence) -> AsyncIterator[Event]:
        """Queue ``seq`` and yield its events as they are made; cancels it if the caller leaves."""
        if self._closed:
            yield Event(error=f"revision {self.revision} stopped serving; send the request again")
            return
        seq.loop = asyncio.get_running_loop()
        seq.events = asyncio.Queue()
        seq.arrived = time.monotonic()
        PROMPT_TOKENS.labels(*self._labels).inc(len(seq.prompt_ids))
        self._queue.put(seq)
        try:
            while True:
                event = await seq.events.get()
                yield event
                if event.finish_reason is not None or event.error is not None:
                    return
        finally:
            seq.cancelled = True  # the worker stops generating for a client that went away

    def close(self) -> None:
        """Stop after the running batch; what still waits is answered with an error, never left hanging."""
        self._closed = True
        self._queue.put(None)

    # -- the worker thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                self._drain()
                return
            batch = [first]
            deadline = first.arrived + self.batch_wait_s
            while len(batch) < self.max_batch_size:
                wait = deadline - time.monotonic()
                try:
                    nxt = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # seen again once this batch is done
                    break
                batch.append(nxt)
            batch = [s for s in batch if not s.cancelled]
            if not batch:
                continue
            self.batch_sizes.append(len(batch))
            BATCH_SIZE.labels(*self._labels).observe(len(batch))
            try:
                self._generate(batch)
            except Exception as e:  # a model error ends this batch, never the server
                for s in batch:
                    _send(s, Event(error=f"{type(e).__name__}: {e}"))

    def _drain(self) -> None:
        while True:
            try:
                seq = self._queue.get_nowait()
            except queue.Empty:
                return
            if seq is not None:
                _send(seq, Event(error=f"revision {self.revision} stopped serving"))

    def _generate(self, batch: list[Sequence]) -> None:
        torch = self.torch
        width = max(len(s.prompt_ids) for s in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, s in enumerate(batch):  # left padding: every prompt ends at the last column
            ids[i, width - len(s.prompt_ids) :] = torch.tensor(s.prompt_ids, dtype=torch.long)
            mask[i, width - len(s.prompt_ids) :] = 1
        states = [_State(s, self) for s in batch]
        with torch.inference_mode():
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            out = self.model(
                input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True
            )
            while True:
                logits = out.logits[:, -1, :].float()
                chosen = [st.choose(logits[i]) for i, st in enumerate(states)]
                for st, token in zip(states, chosen, strict=True):
                    st.take(token)
                if all(st.done for st in states):
                    return
                step = torch.tensor(
                    [
                        [t if not st.done else self.pad_id]
                        for st, t in zip(states, chosen, strict=True)
                    ],
                    dtype=torch.long,
                )
                mask = torch.cat([mask, torch.ones((len(batch), 1), dtype=torch.long)], dim=1)
                out = self.model(
                    input_ids=step,
                    attention_mask=mask,
                    position_ids=mask.sum(-1, keepdim=True) - 1,
                    use_cache=True,
                    **self._cache_arg(out),
                )

    def _cache_arg(self, out: Any) -> dict[str, Any]:
        """The KV cache for the next step: ``cache`` in Transformers 5, ``past_key_values`` before."""
        if "cache" in out:
            return {"cache": out["cache"]}
        return {"past_key_values": out.past_key_values}


class _State:
    """One sequence's progress inside a batch: its tokens, text sent so far, sampler."""

    def __init__(self, seq: Sequence, engine: Engine) -> None:
        self.seq, self.engine = seq, engine
        self.tokens: list[int] = []
        self.sent = 0  # characters of the text already sent
        self.done = seq.cancelled
        self.hold = max((len(s) for s in seq.stop), default=1) - 1
        self.generator = None
        if seq.temperature > 0:
            self.generator = engine.torch.Generator()
            self.generator.manual_seed(
                seq.seed if seq.seed is not None else uuid.uuid4().int & ((1 << 63) - 1)
            )

    def choose(self, logits: Any) -> int:
        if self.done:
            return int(self.engine.pad_id)
        torch = self.engine.torch
        if self.generator is None:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / self.seq.temperature, dim=-1)
        if self.seq.top_p < 1.0:
            ordered, index = torch.sort(probs, descending=True)
            # Keep the smallest set whose mass reaches top_p (the first token always stays).
            drop = ordered.cumsum(-1) - ordered > self.seq.top_p
            ordered[drop] = 0.0
            probs = torch.zeros_like(probs).scatter(0, index, ordered)
        return int(torch.multinomial(probs, 1, generator=self.generator))

    def take(self, token: int) -> None:
        if self.done:
            return
        seq = self.seq
        if seq.cancelled:
            self.done = True
            return
        if not self.tokens:
            TIME_TO_FIRST_TOKEN.labels(*self.engine._labels).observe(time.monotonic() - seq.arrived)
        if token in self.engine.eos_ids:
            self._finish("stop")
            return
        self.tokens.append(token)
        text = self._text()
        for stop in seq.stop:
            at = text.find(stop)
            if at >= 0:
                self._finish("stop", text[:at])
                return
        if len(self.tokens) >= seq.max_tokens:
            self._finish("length", text)
            return
        # Hold back what could be the start of a stop string, or half a UTF-8 character.
        safe = len(text) - self.hold
        while safe > self.sent and text[safe - 1] == "\ufffd":
            safe -= 1
        if safe > self.sent:
            _send(seq, Event(delta=text[self.sent : safe]))
            self.sent = safe

    def _text(self) -> str:
        return str(self.engine.tokenizer.decode(self.tokens, skip_special_tokens=True))

    def _finish(self, reason: str, text: str | None = None) -> None:
        self.done = True
        if text is None:
            text = self._text()
        COMPLETION_TOKENS.labels(*self.engine._labels).inc(len(self.tokens))
        if len(text) > self.sent:
            _send(self.seq, Event(delta=text[self.sent :]))
        _send(self.seq, Event(finish_reason=reason, completion_tokens=len(self.tokens)))


def _send(seq: Sequence, event: Event) -> None:
    if seq.loop is not None and seq.events is not None and not seq.loop.is_closed():
        seq.loop.call_soon_threadsafe(seq.events.put_nowait, event)


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(int(v) for v in value)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return frozenset(ids)
