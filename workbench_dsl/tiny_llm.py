"""A tiny causal language model built on the spot, for tests, examples and benchmarks (no download).

A randomly initialised Llama-style model (2 layers, 64 dimensions) and a
byte-level BPE tokenizer trained with the ``tokenizers`` library on the
docstrings of a few standard-library modules, saved with ``save_pretrained``:
the same directory layout as any model from the Hugging Face Hub, built in
well under a second once Transformers is imported. Its text is noise; its
shapes, tokenizer and chat template are real.
"""

from __future__ import annotations

from pathlib import Path

#: The chat template the tiny model ships (Jinja, as Transformers renders it).
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
EOS = "<|endoftext|>"


def corpus() -> list[str]:
    """Local text to train the tokenizer on: docstrings of standard-library modules."""
    import collections
    import inspect
    import json
    import os
    import random
    import string
    import textwrap

    docs = []
    for module in (json, os, collections, inspect, textwrap, string, random):
        for _, obj in inspect.getmembers(module):
            doc = inspect.getdoc(obj)
            if doc:
                docs.append(doc)
    return docs


def build_tiny_llm(
    path: str | Path,
    *,
    context_length: int = 256,
    vocab_size: int = 512,
    layers: int = 2,
    hidden: int = 64,
    seed: int = 0,
    chat_template: bool = True,
) -> Path:
    """Write a tiny random causal LM and its tokenizer to ``path`` (``save_pretrained`` layout).

    Args:
        path: The directory to write (created).
        context_length: ``max_position_embeddings`` of the model.
        vocab_size: The BPE vocabulary size to train.
        layers: Decoder layers.
        hidden: Hidden size (4 attention heads).
        seed: Seed of the random weights: the same seed gives the same model.
        chat_template: Whether the tokenizer carries a chat template.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOS, eos_token=EOS, pad_token=EOS
    )
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    eos = tok.token_to_id(EOS)
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=context_length,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
