"""Counting a chat request's prompt tokens the way llama.cpp does, from a GGUF file alone.

A served llama.cpp model streams no token counts, and an export must check each example against
the target model's context. Both need the count the model itself would see: the request rendered
with the GGUF's own chat template (llama-cpp-python picks it when the template is not one of its
named formats, as for Qwen) and tokenized with the GGUF's vocabulary. Only the vocabulary is
loaded (0.6 s, ~100 MB for the embedded models), never the weights, and no context: a context
would warn on stderr about its training length.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from codeact._optional import require

__all__ = ["PromptCounter"]


class PromptCounter:
    """`counter(messages, tools)`: the prompt tokens of an OpenAI-style chat request for one GGUF.

    Loaded on the first count; safe to share between threads. It pickles as its path, so a
    batch can hand it to worker processes (each loads the vocabulary once).

    Args:
        path: the GGUF file.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._loaded: tuple[Any, Any] | None = None  # (vocabulary-only model, chat formatter)
        self._lock = threading.Lock()

    def __call__(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
        with self._lock:
            if self._loaded is None:
                self._loaded = _load(self.path)
            model, formatter = self._loaded
            rendered = formatter(messages=messages, tools=tools)
            return len(model.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special,
                                      special=True))

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]


def _load(path: Path) -> tuple[Any, Any]:
    llama_cpp = require("llama_cpp", extra="local", feature="Counting tokens with a GGUF's tokenizer")
    from llama_cpp import llama_chat_format
    from llama_cpp._internals import LlamaModel

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = LlamaModel(path_model=str(path), params=params, verbose=False)
    formatter = llama_chat_format.Jinja2ChatFormatter(
        template=model.metadata()["tokenizer.chat_template"],
        eos_token=model.token_get_text(model.token_eos()),
        bos_token=model.token_get_text(model.token_bos()),
    )
    return model, formatter
