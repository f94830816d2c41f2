"""Model specs as strings, for the CLI and config files: "openai:gpt-4o" -> a Model.

A spec is ``PREFIX`` or ``PREFIX:REST``; the prefix picks a factory from `MODELS`, which gets
REST and the caller's options. The built-in backends register here the same way a user's do::

    register_model("mine", lambda rest, **options: MyModel(rest, **options), form="mine:MODEL")
    resolve_model("mine:big")

Factories import their backend only when called, so resolving one spec never imports the
others' SDKs.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from codeact.errors import ConfigError
from codeact.models.base import Model

__all__ = ["MODELS", "ModelFactory", "known_forms", "register_model", "resolve_model"]

#: Builds a model from the text after "PREFIX:" ("" when there is none) and keyword options.
ModelFactory = Callable[..., Model]

#: Prefix -> factory. Extend it with `register_model`.
MODELS: dict[str, ModelFactory] = {}
#: Prefix -> how a spec of that kind is written, for help and error messages.
_FORMS: dict[str, str] = {}


def register_model(prefix: str, factory: ModelFactory, *, form: str | None = None) -> None:
    """Make `resolve_model` build models for specs starting with `prefix`.

    Args:
        prefix: the part before the first ":" (letters, digits, "-", "_", "."), e.g. "ollama".
        factory: called as ``factory(rest, **options)``.
        form: how the spec is written, shown in help; default "PREFIX:MODEL".
    """
    if not prefix or ":" in prefix or not prefix.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ConfigError(f"A model prefix is a name like 'ollama' (no ':'), got {prefix!r}.")
    MODELS[prefix] = factory
    _FORMS[prefix] = form or f"{prefix}:MODEL"


def resolve_model(spec: str, **options: Any) -> Model:
    """Build the model a spec names, passing `options` (e.g. temperature) to its constructor.

    Forms: ``local``, ``local-small``, ``openai:MODEL``, ``openai-compat:URL#MODEL``,
    ``anthropic:MODEL``, ``litellm:MODEL``, plus whatever `register_model` added. An OpenAI or
    openai-compat spec may end in ``#vision`` (the model reads images) or ``#text`` (it does not)
    where the guess from its name is wrong.
    """
    spec = spec.strip()
    prefix, _, rest = spec.partition(":")
    factory = MODELS.get(prefix)
    if factory is None:
        raise ConfigError(_unknown(spec, prefix, rest))
    return factory(rest, **options)


def known_forms() -> list[str]:
    """How each registered spec is written, in registration order."""
    return [_FORMS[p] for p in MODELS]


def _unknown(spec: str, prefix: str, rest: str) -> str:
    guesses: list[str] = []
    for close in difflib.get_close_matches(prefix, MODELS, n=2, cutoff=0.6):
        guesses.append(f"{close}:{rest}" if rest else close)
    if not guesses and not rest:
        # A bare model name: guess its provider from well-known name shapes.
        lowered = spec.lower()
        if lowered.startswith(("gpt-", "o1", "o3", "o4", "chatgpt")):
            guesses.append(f"openai:{spec}")
        elif lowered.startswith("claude"):
            guesses.append(f"anthropic:{spec}")
    hint = f" Did you mean {' or '.join(repr(g) for g in guesses)}?" if guesses else ""
    return f"Unknown model {spec!r}.{hint} Known forms: {', '.join(known_forms())}."


# -- built-in backends --------------------------------------------------------------------------


def _no_rest(prefix: str, rest: str) -> None:
    if rest:
        raise ConfigError(f"The model spec {prefix!r} takes nothing after it, got {prefix}:{rest!r}.")


def _need_model(prefix: str, rest: str) -> str:
    if not rest.strip():
        raise ConfigError(f"The model spec {prefix!r} needs a model name: {_FORMS[prefix]}.")
    return rest.strip()


def _local(rest: str, **options: Any) -> Model:
    _no_rest("local", rest)
    from codeact.models.local import LocalModel

    return LocalModel(size="1.5b", **options)


def _local_small(rest: str, **options: Any) -> Model:
    _no_rest("local-small", rest)
    from codeact.models.local import LocalModel

    return LocalModel(size="0.5b", **options)


def _image_flag(rest: str, options: dict[str, Any]) -> str:
    """`...#vision` / `...#text` at the end of a spec: the model does / does not read images."""
    for flag, value in (("#vision", True), ("#text", False)):
        if rest.endswith(flag):
            options.setdefault("supports_images", value)
            return rest[: -len(flag)]
    return rest


def _openai(rest: str, **options: Any) -> Model:
    from codeact.models.openai_compat import OpenAICompatible

    rest = _image_flag(rest, options)
    return OpenAICompatible(_need_model("openai", rest), **options)


def _openai_compat(rest: str, **options: Any) -> Model:
    from codeact.models.openai_compat import OpenAICompatible

    rest = _image_flag(rest, options)
    url, hash_, model = rest.rpartition("#") if "#" in rest else (rest, "", "")
    example = "openai-compat:http://127.0.0.1:8080/v1#qwen"
    if not hash_ or not model.strip():
        raise ConfigError(f"openai-compat needs a server URL and a model name after '#', e.g. {example}.")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise ConfigError(f"openai-compat needs an http(s) URL before '#', got {url!r}; e.g. {example}.")
    return OpenAICompatible(model.strip(), base_url=url, **options)


def _anthropic(rest: str, **options: Any) -> Model:
    from codeact.models.anthropic import Anthropic

    return Anthropic(_need_model("anthropic", rest), **options)


def _litellm(rest: str, **options: Any) -> Model:
    from codeact.models.litellm import LiteLLM

    return LiteLLM(_need_model("litellm", rest), **options)


register_model("local", _local, form="local")
register_model("local-small", _local_small, form="local-small")
register_model("openai", _openai, form="openai:MODEL")
register_model("openai-compat", _openai_compat, form="openai-compat:URL#MODEL")
register_model("anthropic", _anthropic, form="anthropic:MODEL")
register_model("litellm", _litellm, form="litellm:MODEL")
