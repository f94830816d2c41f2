"""The one signature codec and argument binder: what the kernel's stubs and a replay's stand-ins share."""

import inspect

import pytest

from codeact.tools import tool
from codeact.tools.signature import GENERIC_PARAMS, bind_arguments, describe_params, signature_from_params


@tool
def search(query: str, limit: int = 5, *, site: str | None = None) -> list[str]:
    """Search the web."""
    return [query] * limit


def test_a_signature_survives_the_codec_with_its_literal_defaults() -> None:
    params = describe_params(search)
    assert params[1] == {"name": "limit", "kind": "POSITIONAL_OR_KEYWORD", "has_default": True,
                         "annotation": "int", "default": "5"}
    rebuilt = signature_from_params(params)
    assert str(rebuilt) == "(query: str, limit: int = 5, *, site: str | None = None)"
    assert bind_arguments(rebuilt, ["q"], {"site": "x"}) == bind_arguments(search.signature, ["q"], {"site": "x"})


def test_a_computed_default_is_not_carried() -> None:
    secret = "sk-" + "a" * 40

    @tool
    def call(token: str = secret) -> str:
        """Call with a token."""
        return token

    assert describe_params(call)[0]["default"] == "..."


def test_arguments_are_recorded_by_parameter_name() -> None:
    assert bind_arguments(search.signature, ["q", 3], {}) == bind_arguments(search.signature, [], {"query": "q", "limit": 3})
    with pytest.raises(TypeError):
        bind_arguments(search.signature, [], {"nope": 1})
    assert bind_arguments(None, [1, 2], {"a": 3}) == {"a": 3, "*args": [1, 2]}
    generic = signature_from_params(GENERIC_PARAMS)
    assert [p.kind for p in generic.parameters.values()] == [inspect.Parameter.VAR_POSITIONAL,
                                                             inspect.Parameter.VAR_KEYWORD]
