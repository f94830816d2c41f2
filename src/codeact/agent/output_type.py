"""Typed answers: `output_type=` a pydantic model, dataclass, TypedDict or JSON schema.

The model is told the schema in one short line of the system prompt (a compact JSON schema:
the model can only build plain values, so it passes a dict); the answer is validated on the
host, and a validation error goes back to the model as an observation, like a final-answer
check's rejection. A JSON schema (a dict) is validated with `jsonschema` when it is installed,
else with a small built-in subset (type, properties, required, items, enum).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from codeact.errors import ConfigError

if TYPE_CHECKING:  # pydantic is imported when an output type is used, not by `import codeact`
    from pydantic import TypeAdapter, ValidationError

__all__ = ["AnswerType", "compact"]

_MAX_ERRORS = 5
_MAX_MESSAGE = 1_500


class AnswerType:
    """One output type: its schema (for the prompt and tool specs) and its validator."""

    def __init__(self, output_type: Any) -> None:
        self.output_type = output_type
        self._adapter: TypeAdapter[Any] | None = None
        if isinstance(output_type, Mapping):
            self.schema: dict[str, Any] = dict(output_type)
            if not self.schema:
                raise ConfigError("output_type: an empty JSON schema accepts anything; pass None instead")
        else:
            from pydantic import TypeAdapter

            try:
                self._adapter = TypeAdapter(output_type)
                self.schema = self._adapter.json_schema()
            except Exception as exc:  # noqa: BLE001 - pydantic's many schema errors: one config error
                raise ConfigError(f"output_type {output_type!r} is not a type pydantic can validate: {exc}") from exc

    def prompt_note(self) -> str:
        """The sentence the system prompt gains: short, the schema compacted."""
        return ("The final answer must match this JSON schema; pass plain values (dicts, lists), "
                f"not classes: {json.dumps(compact(self.schema), separators=(',', ':'), ensure_ascii=False)}")

    def parse(self, value: Any) -> Any:
        """The typed answer; ValueError with a short reason (for the model) when it does not fit."""
        if self._adapter is None:
            return _validate_schema(value, self.schema)
        from pydantic import ValidationError

        try:
            return self._adapter.validate_python(value)
        except ValidationError as exc:
            if isinstance(value, str | bytes):  # a JSON text of the answer (tool calls often send one)
                try:
                    return self._adapter.validate_json(value)
                except ValidationError:
                    pass
            raise ValueError(_describe(exc)) from None

    __call__ = parse


def compact(schema: Any) -> Any:
    """The schema without "title" keywords (pydantic adds one to every field: tokens, no meaning)."""
    if isinstance(schema, list):
        return [compact(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, item in schema.items():
        if key == "title" and isinstance(item, str):
            continue
        if key in ("properties", "$defs", "definitions") and isinstance(item, dict):
            out[key] = {name: compact(sub) for name, sub in item.items()}
        else:
            out[key] = compact(item)
    return out


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False)[:_MAX_ERRORS]:
        where = ".".join(str(part) for part in error.get("loc", ())) or "(the answer)"
        lines.append(f"{where}: {error.get('msg', 'invalid')}")
    more = exc.error_count() - len(lines)
    if more > 0:
        lines.append(f"... and {more} more")
    return "; ".join(lines)[:_MAX_MESSAGE]


def _validate_schema(value: Any, schema: dict[str, Any]) -> Any:
    if isinstance(value, str | bytes) and schema.get("type") not in (None, "string"):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    try:
        import jsonschema
    except ImportError:
        problems = _subset_problems(value, schema, "")
    else:
        validator = jsonschema.validators.validator_for(schema)(schema)
        problems = [f"{'.'.join(map(str, e.absolute_path)) or '(the answer)'}: {e.message}"
                    for e in list(validator.iter_errors(value))[:_MAX_ERRORS]]
    if problems:
        raise ValueError("; ".join(problems[:_MAX_ERRORS])[:_MAX_MESSAGE])
    return value


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list, tuple), "string": (str,), "integer": (int,),
    "number": (int, float), "boolean": (bool,), "null": (type(None),),
}


def _subset_problems(value: Any, schema: Any, where: str) -> list[str]:
    """The common part of JSON schema, for when `jsonschema` is not installed."""
    if not isinstance(schema, dict):
        return []
    at = where or "(the answer)"
    kinds = schema.get("type")
    if isinstance(kinds, str | list):
        names = [kinds] if isinstance(kinds, str) else kinds
        fits = any(isinstance(value, _TYPES.get(n, (object,))) and not (
            isinstance(value, bool) and n in ("integer", "number")) for n in names)
        if not fits:
            return [f"{at}: {type(value).__name__} is not of type {'/'.join(map(str, names))}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{at}: {value!r} is not one of {schema['enum']!r}"]
    problems: list[str] = []
    if isinstance(value, dict):
        for name in schema.get("required", ()):
            if name not in value:
                problems.append(f"{at}: '{name}' is a required property")
        for name, sub in (schema.get("properties") or {}).items():
            if name in value:
                problems += _subset_problems(value[name], sub, f"{where}.{name}" if where else name)
    if isinstance(value, list | tuple) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            problems += _subset_problems(item, schema["items"], f"{where}.{i}" if where else str(i))
    return problems[:_MAX_ERRORS]
