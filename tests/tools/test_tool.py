import subprocess
import sys
from typing import Optional

import pytest

from codeact import Tool, ToolError, tool
from codeact.tools import to_tools


def test_tool_reads_signature_and_docstring():
    @tool
    def weather(city: str, unit: str = "C", *, days: Optional[int] = None) -> str:  # noqa: UP045 - the rendering of Optional is under test
        """Current weather for a city.

        Args:
            city: Name of the city.
            unit: "C" or "F".
        """
        return f"{city} 20{unit}"

    assert weather.name == "weather"
    assert weather.python_signature() == "weather(city: str, unit: str = 'C', *, days: Optional[int] = None) -> str"
    assert weather.summary == "Current weather for a city."
    assert weather.param_docs == {"city": "Name of the city.", "unit": '"C" or "F".'}
    assert weather("Rome") == "Rome 20C"


def test_json_schema_for_native_tool_calls():
    @tool
    def add(a: int, b: float = 1.5) -> float:
        """Add numbers.

        Args:
            a: first
        """
        return a + b

    schema = add.json_schema()
    assert schema["required"] == ["a"]
    assert schema["properties"]["a"] == {"type": "integer", "description": "first"}
    assert schema["properties"]["b"]["default"] == 1.5
    assert add.spec().name == "add"


def test_missing_type_hint_is_a_clear_error():
    def f(x) -> str:  # noqa: ANN001
        """Doc."""
        return x

    with pytest.raises(ToolError, match="parameter `x` has no type hint"):
        tool(f)


def test_missing_docstring_is_a_clear_error():
    def f(x: int) -> int:
        return x

    with pytest.raises(ToolError, match="has no description"):
        tool(f)


def test_stateful_tool_subclass_keeps_state_on_host():
    class Counter(Tool):
        name = "count"

        def __init__(self) -> None:
            self.n = 0

        def forward(self, step: int = 1) -> int:
            """Increase the counter and return it."""
            self.n += step
            return self.n

    counter = Counter().validate()
    assert counter(2) == 2 and counter() == 3
    assert counter.python_signature() == "count(step: int = 1) -> int"


def test_async_tool_is_awaited():
    @tool
    async def slow(x: int) -> int:
        """Double x later."""
        return x * 2

    assert slow(4) == 8


def test_duplicate_names_rejected():
    @tool
    def a(x: int) -> int:
        """A."""
        return x

    with pytest.raises(ToolError, match="unique"):
        to_tools([a, a])


def test_tool_defined_without_source_code():
    # python -c has no source file: signature and docstring must still be read.
    code = (
        "from codeact import tool\n"
        "def f(q: str, n: int = 3) -> list:\n"
        "    'Search things.'\n"
        "    return [q] * n\n"
        "t = tool(f)\n"
        "print(t.python_signature(), '|', t.summary, '|', t('x', 2))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "f(q: str, n: int = 3) -> list | Search things. | ['x', 'x']"


# -- defaults never carry what was not written as a literal (issue 8, item 8) ------------------

SECRET_KEY = "sk-test-" + "q" * 32
COMPUTED = {"region": "eu-" + "west"}


def test_only_literal_defaults_written_in_the_source_are_shown(monkeypatch):
    monkeypatch.setenv("WEATHER_API_KEY", SECRET_KEY)
    import os

    def weather(
        city: str,
        api_key: str = os.environ["WEATHER_API_KEY"],
        region: str = COMPUTED["region"],
        units: str = "C",
        days: int = -3,
        tags: tuple = ("a", 1),
        token: str = "literal-but-named-like-a-credential",
        *,
        pem: str = "-----BEGIN RSA PRIVATE KEY-----",
    ) -> str:
        """Weather."""
        return city

    t = tool(weather)
    signature = t.python_signature()
    assert signature == (
        "weather(city: str, api_key: str = ..., region: str = ..., units: str = 'C', days: int = -3, "
        "tags: tuple = ('a', 1), token: str = ..., *, pem: str = ...) -> str"
    )
    schema = t.json_schema()["properties"]
    assert "default" not in schema["api_key"] and "default" not in schema["region"]
    assert schema["units"]["default"] == "C" and schema["days"]["default"] == -3
    from codeact.sandbox.bridge import tool_definitions

    definitions = repr(tool_definitions({"weather": t}))
    assert SECRET_KEY not in definitions and "eu-west" not in definitions and "BEGIN RSA" not in definitions


def test_defaults_without_source_show_only_small_scalars_that_do_not_look_secret(monkeypatch):
    monkeypatch.setenv("SERVICE_TOKEN", "t0k3n-" + "z" * 20)
    namespace: dict = {}
    exec(  # no source file: inspect.getsource fails
        "def f(a: int = 1, b: str = 'x', c: str = " + repr("t0k3n-" + "z" * 20) + ", d: object = object()) -> int:\n"
        "    '''Doc.'''\n    return a\n",
        namespace,
    )
    assert tool(namespace["f"]).python_signature() == "f(a: int = 1, b: str = 'x', c: str = ..., d: object = ...) -> int"
