"""The long tail of providers through LiteLLM (`pip install 'codeact[litellm]'`).

LiteLLM speaks the chat-completions shape for every provider, so requests and replies reuse the
OpenAI-compatible conversion, and its exceptions subclass the `openai` SDK's, so the same retry
and error conversion applies. Parameters a provider does not support (e.g. `stop`) are dropped
by LiteLLM (`drop_params=True`); stop sequences are cut client-side regardless.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from codeact._optional import require
from codeact.errors import ConfigError
from codeact.models._retry import Failure, RetryPolicy, sdk_classifier
from codeact.models.base import DEFAULT_MAX_TOKENS, Message, Model, ModelReply, ToolSpec, check_max_tokens
from codeact.models.openai_wire import reply_from_completion, to_openai_messages, to_openai_tools

__all__ = ["LiteLLM"]


class LiteLLM(Model):
    """Any model LiteLLM knows, named the LiteLLM way, e.g. "bedrock/anthropic.claude-3-haiku".

    Args:
        model: the LiteLLM model string.
        api_key: passed to LiteLLM; by default it reads the provider's own env variable.
        api_base: a custom endpoint, if the provider needs one.
        temperature: sampling temperature; None leaves the provider's default.
        max_tokens: cap on generated tokens per call; None means `DEFAULT_MAX_TOKENS` (2048).
        extra_params: more keyword arguments for `litellm.completion`.
        timeout: seconds to wait for one response.
        max_retries: retries on 408/429/5xx, timeouts and connection errors.
        retry_delay: backoff ceiling of the first retry in seconds; doubles per retry.
        name: shown in logs; default "litellm:MODEL".
        supports_images: whether the model reads images (sent as chat-completions image parts);
            None asks LiteLLM's model table (`litellm.supports_vision`), which says False for
            models it does not know.
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        api_base: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = DEFAULT_MAX_TOKENS,
        extra_params: Mapping[str, Any] | None = None,
        timeout: float = 120.0,
        max_retries: int = 4,
        retry_delay: float = 0.5,
        name: str | None = None,
        supports_images: bool | None = None,
    ) -> None:
        self._litellm = require("litellm", extra="litellm", feature="The LiteLLM backend")
        import openai

        if not model:
            raise ConfigError("LiteLLM needs a model name, e.g. LiteLLM('bedrock/anthropic.claude-3-haiku').")
        self.model = model
        self.api_key = api_key
        self.api_base = api_base
        self.temperature = temperature
        self.max_tokens = check_max_tokens(max_tokens, DEFAULT_MAX_TOKENS, owner="LiteLLM")
        self.extra_params = dict(extra_params or {})
        self.timeout = timeout
        self.retry = RetryPolicy(max_retries=max_retries, base_delay=retry_delay)
        self.name = name or f"litellm:{model}"
        self.supports_images = _supports_vision(self._litellm, model) if supports_images is None else supports_images
        self.where = api_base or f"litellm:{model}"
        self._classify = sdk_classifier(openai)

    # -- one attempt (retries, stop cutting and the async form's retries come from Model) --------

    def request(
        self, messages: Sequence[Message], *, stop: Sequence[str] | None, tools: Sequence[ToolSpec] | None
    ) -> ModelReply:
        response = self._litellm.completion(**self._params(messages, stop, tools))
        return reply_from_completion(response, url=self.where)

    async def arequest(
        self, messages: Sequence[Message], *, stop: Sequence[str] | None, tools: Sequence[ToolSpec] | None
    ) -> ModelReply:
        response = await self._litellm.acompletion(**self._params(messages, stop, tools))
        return reply_from_completion(response, url=self.where)

    def classify(self, exc: BaseException) -> Failure | None:
        return self._classify(exc)

    def _params(
        self, messages: Sequence[Message], stop: Sequence[str] | None, tools: Sequence[ToolSpec] | None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(messages),
            "timeout": self.timeout,
            "num_retries": 0,  # ours, not LiteLLM's
            "drop_params": True,
        }
        optional = {
            "api_key": self.api_key,
            "api_base": self.api_base,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stop": [s for s in stop or () if s] or None,
            "tools": to_openai_tools(tools) if tools else None,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        params.update(self.extra_params)
        return params


def _supports_vision(litellm: Any, model: str) -> bool:
    """LiteLLM's own table of model capabilities; False when it does not know the model."""
    check = getattr(litellm, "supports_vision", None)
    if check is None:
        return False
    try:
        return bool(check(model=model))
    except Exception:  # noqa: BLE001 - an unknown model or provider: treat it as text-only
        return False
