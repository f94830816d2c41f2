"""Values across the wire, kernel side: what the kernel sends (`to_wire`) and rebuilds (`from_host`).

JSON plus the tagged forms of `wire.TAGS`, built explicitly; nothing is pickled. From the
kernel anything else arrives as a type name and a repr; from the host, as a typed record (a
dataclass's fields) or an opaque handle naming its type.
"""

import binascii

from .text import truncate_middle
from .wire import MAX_DEPTH, TAG

__all__ = ["HostObject", "HostRecord", "from_host", "to_wire"]

_REPR_LIMIT = 10_000


# -- values sent to the host ------------------------------------------------------------------


def to_wire(value: object, depth: int = 0) -> object:
    """`value` as JSON-compatible data; what JSON cannot say is tagged, anything else is a repr."""
    t = type(value)
    if value is None or t is bool or t is int or t is float or t is str:
        return value
    if depth >= MAX_DEPTH - 8:  # room for the frame around the value
        return _opaque(value)
    depth += 1
    if t is list:
        return [to_wire(v, depth) for v in value]  # type: ignore[attr-defined]
    if t is dict:
        items = value.items()  # type: ignore[attr-defined]
        if TAG not in value and all(type(k) is str for k in value):  # type: ignore[operator, attr-defined]
            return {k: to_wire(v, depth) for k, v in items}
        return {TAG: "dict", "items": [[to_wire(k, depth), to_wire(v, depth)] for k, v in items]}
    if t is tuple or t is set or t is frozenset:
        return {TAG: t.__name__, "items": [to_wire(v, depth) for v in value]}  # type: ignore[attr-defined]
    if t is bytes or t is bytearray:
        return {TAG: "bytes", "base64": binascii.b2a_base64(value, newline=False).decode()}  # type: ignore[arg-type]
    try:
        tagged = _tagged_scalar(value)
        if tagged is not None:
            return tagged
        for base in (bool, int, float, str):  # subclasses: enums, numpy.float64...
            if isinstance(value, base):
                return base(value)  # type: ignore[call-overload]
        if isinstance(value, (list, tuple, dict, set, frozenset)):  # namedtuple, OrderedDict...
            for container in (dict, tuple, list, set, frozenset):
                if isinstance(value, container):
                    return to_wire(container(value), depth)  # type: ignore[call-overload]
        if t.__module__ == "numpy" and hasattr(value, "tolist"):
            return to_wire(value.tolist(), depth)  # type: ignore[attr-defined]
        if hasattr(t, "__index__"):
            return int(value.__index__())  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - odd objects degrade to their repr
        pass
    return _opaque(value)


def _tagged_scalar(value: object) -> dict | None:
    """The tagged form of a datetime, Decimal, complex, UUID or path (exact types only), or None."""
    name = type(value).__name__
    module = type(value).__module__
    if module == "datetime" and name in ("datetime", "date", "time"):
        return {TAG: name, "iso": value.isoformat()}  # type: ignore[attr-defined]
    if module == "datetime" and name == "timedelta":
        return {TAG: "timedelta", "days": value.days, "seconds": value.seconds, "us": value.microseconds}  # type: ignore[attr-defined]
    if module in ("decimal", "_decimal", "_pydecimal") and name == "Decimal":
        return {TAG: "decimal", "text": str(value)}
    if type(value) is complex:
        return {TAG: "complex", "real": value.real, "imag": value.imag}
    if module == "uuid" and name == "UUID":
        return {TAG: "uuid", "hex": value.hex}  # type: ignore[attr-defined]
    if module == "pathlib" and name in ("Path", "PosixPath", "PurePath", "PurePosixPath"):
        return {TAG: "path", "path": str(value)}
    return None


def _opaque(value: object) -> dict[str, str]:
    t = type(value)
    try:
        text = repr(value)
    except Exception as exc:  # noqa: BLE001
        text = f"<{t.__qualname__} object; repr() failed: {type(exc).__name__}>"
    return {
        TAG: "repr",
        "type": f"{t.__module__}.{t.__qualname__}",
        "repr": truncate_middle(text, _REPR_LIMIT),
    }


# -- values from the host ---------------------------------------------------------------------


class HostObject:
    """A tool result of a type that is not sent into the sandbox: only its type name crosses.

    The object (and whatever it holds: clients, credentials) stays on the host.
    """

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<host object {self.type_name} (not sent into the sandbox)>"


class HostRecord:
    """A dataclass or pydantic model from a tool, rebuilt as its fields: `page.items` works."""

    _type_name: str
    _fields: dict

    def __init__(self, type_name: str, fields: dict) -> None:
        object.__setattr__(self, "_type_name", type_name)
        object.__setattr__(self, "_fields", fields)

    def __getattr__(self, name: str) -> object:
        fields = object.__getattribute__(self, "_fields")
        if name in fields:
            return fields[name]
        raise AttributeError(f"{self._type_name} has no field {name!r}; its fields: {', '.join(fields)}")

    def __setattr__(self, name: str, value: object) -> None:
        self._fields[name] = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HostRecord) and (self._type_name, self._fields) == (other._type_name, other._fields)

    __hash__ = None  # type: ignore[assignment]

    def __dir__(self) -> list:
        return list(self._fields)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._fields.items())
        return f"{self._type_name.rpartition('.')[2]}({inner})"

    def _asdict(self) -> dict:
        return dict(self._fields)


def from_host(data: object) -> object:
    """Rebuild a tool result the host encoded (parsed JSON, tagged forms as in TAGS)."""
    if isinstance(data, list):
        return [from_host(v) for v in data]
    if not isinstance(data, dict):
        return data
    tag = data.get(TAG)
    if tag is None:
        return {k: from_host(v) for k, v in data.items()}
    items = data.get("items")
    if tag in ("tuple", "set", "frozenset", "dict") and isinstance(items, list):
        values = [from_host(v) for v in items]
        if tag == "tuple":
            return tuple(values)
        if tag == "dict":
            return dict(values)  # type: ignore[arg-type]  # [key, value] pairs
        return (set if tag == "set" else frozenset)(values)
    if tag == "record":
        fields = data.get("fields")
        return HostRecord(str(data.get("type")), from_host(fields) if isinstance(fields, dict) else {})  # type: ignore[arg-type]
    if tag == "opaque":
        return HostObject(str(data.get("type")))
    if tag == "ndarray":
        return _ndarray(data)
    return _scalar_from_tag(tag, data)


def _scalar_from_tag(tag: object, data: dict) -> object:
    if tag == "bytes":
        return binascii.a2b_base64(data["base64"])
    if tag in ("datetime", "date", "time"):
        import datetime

        return getattr(datetime, tag).fromisoformat(data["iso"])  # type: ignore[arg-type]
    if tag == "timedelta":
        import datetime

        return datetime.timedelta(days=data["days"], seconds=data["seconds"], microseconds=data["us"])
    if tag == "decimal":
        import decimal

        return decimal.Decimal(data["text"])
    if tag == "complex":
        return complex(data["real"], data["imag"])
    if tag == "uuid":
        import uuid

        return uuid.UUID(hex=data["hex"])
    if tag == "path":
        import pathlib

        return pathlib.Path(data["path"])
    return data


def _ndarray(data: dict) -> object:
    import importlib

    try:  # numpy is the model's, when its environment has it: never a dependency of the guest
        numpy = importlib.import_module("numpy")
    except ImportError:
        return HostObject("numpy.ndarray (numpy is not installed in the sandbox)")
    raw = binascii.a2b_base64(data["base64"])
    return numpy.frombuffer(raw, dtype=numpy.dtype(data["dtype"])).reshape(data["shape"]).copy()
