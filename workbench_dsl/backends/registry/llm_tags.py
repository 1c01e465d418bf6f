"""The model-version tags an LLM endpoint reads: what a registered Transformers model is.

Written by ``@register`` for a Hugging Face Transformers directory, read by
``@serve(kind="llm")`` (a context length beyond the model's is refused) and
shown by ``workbench models show``.
"""

from __future__ import annotations

#: The model class, from config.json ``architectures`` (else ``model_type``): ``LlamaForCausalLM``.
ARCHITECTURE = "llm.architecture"
#: The longest sequence (prompt + completion) in tokens: ``max_position_embeddings`` and kin.
CONTEXT_LENGTH = "llm.context_length"
#: The number of parameters, counted from the weight files' headers (no model is loaded).
PARAMETERS = "llm.parameters"
#: Bytes of the whole directory (weights, config, tokenizer).
SIZE_BYTES = "llm.size_bytes"

ALL = (ARCHITECTURE, CONTEXT_LENGTH, PARAMETERS, SIZE_BYTES)
