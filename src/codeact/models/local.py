"""The embedded default model: Qwen2.5-Coder-Instruct GGUF run in-process by llama.cpp on the CPU.

Agent steps resend a growing conversation whose beginning never changes. llama.cpp keeps the
previous call's tokens in its KV cache and only evaluates the part after the longest common
prefix, so as long as the rendered prompt of step N is a byte-identical prefix of step N+1, each
step pays only for the new observation. We render the prompt ourselves with the GGUF's own chat
template (a pure function of the messages), tokenize it once, and keep one `Llama` object alive.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeact._optional import require
from codeact.errors import ConfigError, ModelError
from codeact.models._weights import MODELS, ensure_weights
from codeact.models.base import Message, Model, ModelReply, ToolCall, ToolSpec, Usage, check_max_tokens
from codeact.models.openai_wire import to_openai_tools

__all__ = ["LOCAL_MAX_TOKENS", "LocalModel", "LocalStats"]

_NAMES = {"1.5b": "local", "0.5b": "local-small"}
#: The embedded model's default reply cap: about a minute of decoding on two CPU cores.
LOCAL_MAX_TOKENS = 1024
_TAGS = re.compile(r"</?tool_call>")


@dataclass(frozen=True)
class LocalStats:
    """What one call cost, from llama.cpp's own counters.

    Attributes:
        prompt_tokens: tokens in the rendered prompt.
        reused_tokens: leading prompt tokens already in the KV cache from the previous call.
        prefill_tokens: prompt tokens llama.cpp evaluated in batches in this call (llama.cpp
            counts a lone re-evaluated token, as after a full cache hit, as decoding).
        prefill_s: seconds spent evaluating them.
        decode_tokens: tokens evaluated one at a time: generated tokens fed back.
        decode_s: seconds spent on them.
        first_token_s: seconds from the call to the first streamed text (streaming only).
    """

    prompt_tokens: int
    reused_tokens: int
    prefill_tokens: int
    prefill_s: float
    decode_tokens: int
    decode_s: float
    first_token_s: float | None = None


class LocalModel(Model):
    """Run a Qwen2.5-Coder-Instruct GGUF in this process with llama.cpp.

    Constructing is cheap; weights are assembled (once, into the user cache) and loaded on the
    first call, or by `load()`. Calls are serialized by a lock: one llama.cpp context serves one
    generation at a time.

    Args:
        size: "1.5b" (extra `local`) or "0.5b" (extra `local-small`).
        model_path: use this GGUF file instead of the packaged weights.
        n_ctx: context window in tokens (prompt plus reply).
        n_threads: CPU threads for prompt and generation; defaults to every usable core
            (llama-cpp-python's own default, half the cores, is much slower on small machines).
        temperature: 0 means greedy decoding, which makes runs reproducible.
        max_tokens: longest reply in tokens; None means 1024. A reply that hits it (or the end
            of the context window) has finish_reason "length".
        seed: sampling seed, used when temperature > 0.
        verbose: let llama.cpp print its load and timing logs to stderr.
    """

    def __init__(
        self,
        size: str = "1.5b",
        *,
        model_path: str | Path | None = None,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = LOCAL_MAX_TOKENS,
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        size = size.lower()
        if size not in MODELS:
            known = ", ".join(repr(k) for k in MODELS)
            raise ConfigError(f"Unknown local model size {size!r}; choose one of {known}.")
        max_tokens = check_max_tokens(max_tokens, LOCAL_MAX_TOKENS, owner="LocalModel")
        if n_ctx < 16:
            raise ConfigError(f"LocalModel needs n_ctx >= 16 (got {n_ctx}).")
        if n_threads is not None and n_threads < 1:
            raise ConfigError(f"LocalModel n_threads must be >= 1 (got {n_threads}).")
        self.size = size
        self.model_path = Path(model_path).expanduser() if model_path is not None else None
        self.n_ctx = n_ctx
        self.n_threads = n_threads or _usable_cpus()
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.verbose = verbose
        self.name = f"local:{self.model_path.stem}" if self.model_path else _NAMES[size]
        #: Counters of the most recent call (None before the first).
        self.last_stats: LocalStats | None = None
        self._lock = threading.RLock()
        self._llm: Any = None
        self._formatter: Any = None
        self._perf_context: Any = None

    # -- loading ---------------------------------------------------------------------------

    def load(self) -> None:
        """Assemble (if needed) and load the weights now instead of on the first call."""
        with self._lock:
            self._load()

    def _load(self) -> Any:
        if self._llm is not None:
            return self._llm
        extra = MODELS[self.size].extra
        try:
            llama_cpp = require("llama_cpp", extra=extra, feature="The embedded local model")
            chat_format = require(
                "llama_cpp.llama_chat_format", extra=extra, feature="The embedded local model"
            )
        except (OSError, RuntimeError) as exc:  # installed, but its shared library does not load
            raise ModelError(
                f"llama_cpp is installed but does not load ({exc}); rebuild it with scripts/install.sh"
            ) from exc
        _refuse_amx_build(llama_cpp.llama_print_system_info().decode("utf-8", "replace"))
        path = self.model_path or ensure_weights(self.size)
        if not path.is_file():
            raise ConfigError(f"LocalModel(model_path=...): no such file: {path}")
        try:
            llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                seed=self.seed,
                verbose=self.verbose,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"llama.cpp could not load {path}: {exc}") from exc
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            llm.close()
            raise ModelError(f"{path} has no chat template in its GGUF metadata; LocalModel needs one.")
        self._formatter = chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=llm.detokenize([llm.token_eos()], special=True).decode("utf-8", "replace"),
            bos_token=llm.detokenize([llm.token_bos()], special=True).decode("utf-8", "replace"),
        )
        self._perf_context = llama_cpp.llama_perf_context
        self._llm = llm
        return llm

    def close(self) -> None:
        """Free the weights and the KV cache; a later call loads them again."""
        with self._lock:
            if self._llm is not None:
                self._llm.close()
            self._llm = None
            self._formatter = None

    # -- prompts ---------------------------------------------------------------------------

    def render(self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None = None) -> str:
        """The exact prompt text the model sees for `messages` (loads the model for its template)."""
        with self._lock:
            self._load()
            return self._render(messages, tools)

    def _render(self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None) -> str:
        if not messages:
            raise ConfigError("LocalModel needs at least one message.")
        try:
            wire_tools = to_openai_tools(tools) if tools else None
            result = self._formatter(messages=[_to_template(m) for m in messages], tools=wire_tools)
        except Exception as exc:  # jinja2 errors, raise_exception() in templates
            raise ConfigError(f"The model's chat template rejected these messages: {exc}") from exc
        return str(result.prompt)

    def _tokens(self, llm: Any, prompt: str) -> list[int]:
        tokens: list[int] = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        if len(tokens) >= self.n_ctx:
            raise ModelError(
                f"The prompt is {len(tokens)} tokens but the context window is {self.n_ctx}; "
                f"pass LocalModel(n_ctx=...) larger, or shorten the conversation."
            )
        return tokens

    # -- generation ------------------------------------------------------------------------

    # Model's defaults do the rest: one attempt (no retry policy), stop cutting, a worker thread
    # for the async form.

    def request(
        self, messages: Sequence[Message], *, stop: Sequence[str] | None, tools: Sequence[ToolSpec] | None
    ) -> ModelReply:
        with self._lock:
            llm = self._load()
            tokens = self._tokens(llm, self._render(messages, tools))
            reused, before = _common_prefix(llm, tokens), self._perf(llm)
            try:
                out = llm.create_completion(prompt=tokens, stream=False, **self._sampling(tokens, stop))
            except Exception as exc:
                llm.reset()
                raise ModelError(f"llama.cpp failed while generating: {exc}") from exc
            self.last_stats = self._stats(llm, len(tokens), reused, before)
        choice = out["choices"][0]
        usage = Usage(out["usage"]["prompt_tokens"], out["usage"]["completion_tokens"])
        text, calls = (
            _split_tool_calls(choice["text"], {t.name for t in tools}) if tools else (choice["text"], ())
        )
        finish = choice.get("finish_reason")
        if calls and finish != "length":
            finish = "tool_calls"
        return ModelReply(text, usage, tool_calls=calls, finish_reason=finish, raw=out)

    def request_stream(self, messages: Sequence[Message], *, stop: Sequence[str] | None) -> Iterator[str | ModelReply]:
        """Yield text as it is generated, then the ModelReply; holds the model until exhausted or closed."""
        with self._lock:
            llm = self._load()
            start = time.perf_counter()
            tokens = self._tokens(llm, self._render(messages, None))
            reused, before = _common_prefix(llm, tokens), self._perf(llm)
            chunks = llm.create_completion(prompt=tokens, stream=True, **self._sampling(tokens, stop))
            parts: list[str] = []
            finish: str | None = None
            first: float | None = None
            try:
                for chunk in chunks:
                    choice = chunk["choices"][0]
                    finish = choice.get("finish_reason") or finish
                    if choice["text"]:
                        first = first if first is not None else time.perf_counter() - start
                        parts.append(choice["text"])
                        yield choice["text"]
            except Exception as exc:
                llm.reset()
                raise ModelError(f"llama.cpp failed while generating: {exc}") from exc
            finally:
                chunks.close()
            self.last_stats = self._stats(llm, len(tokens), reused, before, first)
            # Every sampled token but the last was fed back into the context; the last one (often
            # the end-of-turn token) is counted too, so this can be one more than `complete` reports.
            generated = llm.n_tokens - len(tokens) + 1 if finish is not None else 0
        usage = Usage(len(tokens), generated)
        yield ModelReply("".join(parts), usage, finish_reason=finish)

    def _sampling(self, tokens: list[int], stop: Sequence[str] | None) -> dict[str, Any]:
        return {
            "max_tokens": min(self.max_tokens, self.n_ctx - len(tokens)),
            "temperature": self.temperature,
            "seed": self.seed,
            "repeat_penalty": 1.0,
            "stop": [stop] if isinstance(stop, str) else [s for s in stop or () if s],
        }

    def _perf(self, llm: Any) -> Any:
        return self._perf_context(llm.ctx)

    def _stats(
        self, llm: Any, prompt_tokens: int, reused: int, before: Any, first: float | None = None
    ) -> LocalStats:
        after = self._perf(llm)
        return LocalStats(
            prompt_tokens=prompt_tokens,
            reused_tokens=reused,
            prefill_tokens=after.n_p_eval - before.n_p_eval,
            prefill_s=(after.t_p_eval_ms - before.t_p_eval_ms) / 1000,
            decode_tokens=after.n_eval - before.n_eval,
            decode_s=(after.t_eval_ms - before.t_eval_ms) / 1000,
            first_token_s=first,
        )


def _refuse_amx_build(system_info: str) -> None:
    """Fail clearly instead of segfaulting: llama.cpp's AMX path crashes on the first token here.

    A default `pip install llama-cpp-python` compiles for the build machine's CPU, and on CPUs
    with AMX the repacked weights crash generation (ggml-org/llama.cpp#20824). The process would
    die without a word, so check the build first; CODEACT_LLAMA_ALLOW_AMX=1 skips the check.
    """
    if "AMX_INT8 = 1" in system_info and os.environ.get("CODEACT_LLAMA_ALLOW_AMX") != "1":
        raise ModelError(
            "This llama-cpp-python build uses AMX, which crashes on the first generated token. "
            "Rebuild it portably with scripts/install.sh, or: CMAKE_ARGS='-DGGML_NATIVE=OFF' "
            "pip install --no-cache-dir --force-reinstall --no-deps llama-cpp-python. "
            "(Set CODEACT_LLAMA_ALLOW_AMX=1 to try anyway.)"
        )


def _usable_cpus() -> int:
    """CPUs this process may run on (affinity masks and cpusets shrink it below os.cpu_count())."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _common_prefix(llm: Any, tokens: list[int]) -> int:
    """How many leading tokens of `tokens` are already in the KV cache."""
    cached = llm.input_ids[: llm.n_tokens]
    n = 0
    for a, b in zip(cached, tokens):
        if a != b:
            break
        n += 1
    return n


def _to_template(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        data["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    if message.tool_call_id is not None:
        data["tool_call_id"] = message.tool_call_id
    return data


def _split_tool_calls(text: str, names: set[str]) -> tuple[str, tuple[ToolCall, ...]]:
    """Pull Qwen's `{"name": ..., "arguments": {...}}` tool calls out of `text`.

    `<tool_call>` and `</tool_call>` are special tokens that llama.cpp leaves out of the text, so
    we look for JSON objects naming one of the offered tools, with or without the tags.
    """
    decoder = json.JSONDecoder()
    calls: list[ToolCall] = []
    kept: list[str] = []
    pos = 0
    while (start := text.find("{", pos)) != -1:
        try:
            data, end = decoder.raw_decode(text, start)
        except ValueError:
            kept.append(text[pos : start + 1])
            pos = start + 1
            continue
        if (
            isinstance(data, dict)
            and data.get("name") in names
            and isinstance(data.get("arguments", {}), dict)
        ):
            calls.append(ToolCall(f"call_{uuid.uuid4().hex[:12]}", data["name"], data.get("arguments", {})))
            kept.append(text[pos:start])
        else:
            kept.append(text[pos:end])
        pos = end
    kept.append(text[pos:])
    if not calls:
        return text, ()
    return _TAGS.sub("", "".join(kept)).strip(), tuple(calls)
