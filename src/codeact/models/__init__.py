"""Model backends: one contract (`Model`: a backend writes `request`, the base owns retries, stops and async).

The contract and the scripted test double load eagerly; every backend loads on first access
(module `__getattr__`), so `import codeact.models` imports no SDK (openai, anthropic, litellm,
llama_cpp) and stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from codeact.models.base import Message, Model, ModelReply, ToolCall, ToolSpec, Usage
from codeact.models.images import Image
from codeact.models.scripted import ScriptedModel

if TYPE_CHECKING:
    from codeact.models.anthropic import Anthropic
    from codeact.models.litellm import LiteLLM
    from codeact.models.local import LocalModel
    from codeact.models.openai_compat import OpenAICompatible
    from codeact.models.registry import register_model, resolve_model

__all__ = [
    "Anthropic",
    "Image",
    "LiteLLM",
    "LocalModel",
    "Message",
    "Model",
    "ModelReply",
    "OpenAICompatible",
    "ScriptedModel",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "register_model",
    "resolve_model",
]

_LAZY = {
    "Anthropic": "codeact.models.anthropic",
    "LiteLLM": "codeact.models.litellm",
    "LocalModel": "codeact.models.local",
    "OpenAICompatible": "codeact.models.openai_compat",
    "register_model": "codeact.models.registry",
    "resolve_model": "codeact.models.registry",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'codeact.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
