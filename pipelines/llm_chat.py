"""Build a tiny chat model -> register it (gate) -> serve it as an LLM endpoint (OpenAI API).

    workbench run pipelines/llm_chat.py
    workbench endpoints show chat            # kind llm and its knobs
    python pipelines/llm_chat.py query       # four concurrent requests, batched by the server

Nothing is downloaded: the first step builds a randomly initialised
Llama-style model (2 layers, 64 dimensions) and a BPE tokenizer trained on
standard-library docstrings, and saves them with ``save_pretrained`` -- the
layout of any Hugging Face model. Its replies are noise; everything around
them is real. Needs the llm extra: ``pip install 'workbench-dsl[llm]'``.
"""

from workbench_dsl import If, Input, Model, Output, develop, pipeline, register, serve


@develop
def build_model(context_length: int, model: Output[Model]):
    """A tiny random causal LM and its tokenizer, as save_pretrained writes them."""
    from workbench_dsl.tiny_llm import build_tiny_llm

    build_tiny_llm(model.path, context_length=context_length)
    model.metadata["framework"] = "transformers"


@register(model="chat", gate={"prompt_tokens": "< 64"}, alias="staging")
def evaluate(model: Input[Model]) -> dict:
    """How many tokens the tokenizer makes of a sentence (a stand-in for a real evaluation)."""
    import os

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(os.path.join(model.path, "tokenizer.json"))
    ids = tokenizer.encode("Return a new dictionary with the keys of the mapping.").ids
    return {"prompt_tokens": len(ids)}


@serve(kind="llm", endpoint="chat", max_model_len=128, max_batch_size=4, batch_wait_ms=50)
def chat():
    """The chat endpoint: OpenAI's completions and chat completions at /openai/v1."""


@pipeline(name="llm-chat")
def llm_chat(context_length: int = 256):
    """Build, register and serve a tiny chat model."""
    built = build_model(context_length=context_length)
    version = evaluate(model=built.outputs["model"])
    with If(version.outputs["promoted"] == True):  # noqa: E712 - KFP conditions compare channels
        chat(model_uri=version.outputs["model_uri"])


def query(concurrent: int = 4) -> list[str]:
    """Ask the running endpoint ``concurrent`` questions at once (raw HTTP; no openai package)."""
    import json
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    from workbench_dsl.backends.deployer import local_deployer

    url = local_deployer().get("chat").url

    def ask(i: int) -> str:
        body = {
            "model": "chat",
            "messages": [{"role": "user", "content": f"Question {i}: what does os.path.join do?"}],
            "max_tokens": 16,
        }
        req = urllib.request.Request(
            f"{url}/chat/completions",
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            return str(json.loads(resp.read())["choices"][0]["message"]["content"])

    with ThreadPoolExecutor(concurrent) as pool:
        return list(pool.map(ask, range(concurrent)))


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["query"]:
        for answer in query():
            print(repr(answer))
