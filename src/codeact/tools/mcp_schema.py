"""JSON schemas of MCP tools as Python type text: what the model sees of an MCP tool's stub.

An MCP tool describes its arguments with `inputSchema` and its result with `outputSchema`.
The stub in the sandbox is a plain function, so each schema becomes annotation *text*
(`str`, `list[int]`, `Literal['a', 'b']`, `Address`), and each nested object with named
properties becomes a `TypedDict` whose definition is shown in the tool's docstring. Schemas
come from a server we do not control: depth, count and text are bounded, and anything too
complex to say in a type reads as `dict`/`Any`.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["SchemaTypes", "python_name"]

_MAX_DEPTH = 6
_MAX_TYPES = 20
_MAX_TEXT = 200
_SIMPLE = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}


def python_name(name: str, taken: set[str] | None = None) -> str:
    """`name` as a Python identifier (not a keyword), unique among `taken` (which it joins)."""
    text = re.sub(r"\W", "_", name[:64]) or "_"
    if text[0].isdigit():
        text = "_" + text
    if keyword.iskeyword(text) or text in {"self"}:
        text += "_"
    if taken is not None:
        base, n = text, 2
        while text in taken:
            text, n = f"{base}_{n}", n + 1
        taken.add(text)
    return text


class SchemaTypes:
    """Turns one tool's schemas into type text, collecting the TypedDicts they need.

    Args:
        root: the schema holding `$defs` (the input or output schema).
    """

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.typed_dicts: dict[str, list[str]] = {}  # name -> its field lines

    def type_text(self, schema: Any, depth: int = 0) -> str:
        """The Python annotation text for `schema`."""
        if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
            return "Any"
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return self.type_text(self._resolve(ref), depth + 1)
        if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
            values = [v for v in schema["enum"][:_MAX_TYPES] if isinstance(v, (str, int, float, bool)) or v is None]
            text = f"Literal[{', '.join(repr(v) for v in values)}]"
            return text if values and len(text) <= _MAX_TEXT else "str"
        if "const" in schema and isinstance(schema["const"], (str, int, float, bool)):
            return f"Literal[{schema['const']!r}]"[:_MAX_TEXT]
        for union in ("anyOf", "oneOf"):
            options = schema.get(union)
            if isinstance(options, list) and options:
                texts = list(dict.fromkeys(self.type_text(o, depth + 1) for o in options[:_MAX_TYPES]))
                return "Any" if "Any" in texts else " | ".join(texts)
        kind = schema.get("type")
        if isinstance(kind, list):
            texts = list(dict.fromkeys(self.type_text({**schema, "type": k}, depth + 1) for k in kind[:8]))
            return "Any" if "Any" in texts else " | ".join(texts)
        if kind in _SIMPLE:
            return _SIMPLE[kind]
        if kind == "array":
            return f"list[{self.type_text(schema.get('items'), depth + 1)}]"
        if kind == "object" or "properties" in schema:
            return self._object(schema, depth)
        return "Any"

    def _object(self, schema: Mapping[str, Any], depth: int) -> str:
        properties = schema.get("properties")
        if not isinstance(properties, Mapping) or not properties:
            extra = schema.get("additionalProperties")
            return f"dict[str, {self.type_text(extra, depth + 1)}]" if isinstance(extra, Mapping) else "dict"
        title = schema.get("title")
        if not isinstance(title, str) or len(self.typed_dicts) >= _MAX_TYPES or len(properties) > 50:
            return "dict"
        name = python_name(title)
        name = name[0].upper() + name[1:]
        if name in self.typed_dicts:
            return name
        self.typed_dicts[name] = []  # claimed first: a recursive type refers to itself by name
        listed = schema.get("required")
        required = listed if isinstance(listed, list) else []
        lines = []
        for key, sub in list(properties.items())[:50]:
            text = self.type_text(sub, depth + 1)
            if key not in required:
                text = f"NotRequired[{text}]"
            lines.append(f"{key}: {text}" if str(key).isidentifier() else f"{key!r}: {text}")
        self.typed_dicts[name] = lines
        return name

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            return None
        node: Any = self.root
        for part in ref[2:].split("/")[:_MAX_DEPTH]:
            node = node.get(part) if isinstance(node, Mapping) else None
        return node

    def definitions(self) -> str:
        """The TypedDicts used, as Python class definitions ('' when none)."""
        blocks = []
        for name, lines in self.typed_dicts.items():
            body = "\n".join(f"    {line}" for line in lines) or "    pass"
            blocks.append(f"class {name}(TypedDict):\n{body}")
        return "\n".join(blocks)
