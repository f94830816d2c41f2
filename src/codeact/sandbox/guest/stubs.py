"""Tool stubs in the kernel: plain functions with each tool's real signature that call the host.

A stub packs the call as the code made it (parameters left at their defaults are not sent,
so the host applies the real defaults) and turns the host's error into `ToolCallError`.
"""

__all__ = ["ToolCallError"]

_HERE = (lambda: None).__code__.co_filename
"""This file: stubs are compiled under its name, so their frames are dropped from tracebacks."""


# -- tools ------------------------------------------------------------------------------------


class ToolCallError(Exception):
    """A tool failed on the host. `type_name` and `message` are those of the host's exception.

    When the host's type is a builtin exception (ValueError, KeyError...), the raised object is
    also an instance of it, so `except ValueError:` around a tool call works.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.message = message

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


_error_classes: dict[str, type] = {}


def _tool_error(type_name: object, message: object) -> ToolCallError:
    import builtins

    name = type_name if isinstance(type_name, str) else "Exception"
    cls = _error_classes.get(name)
    if cls is None:
        cls = ToolCallError
        base = getattr(builtins, name, None)
        if isinstance(base, type) and issubclass(base, Exception) and base is not Exception:
            try:
                cls = type("ToolCallError", (ToolCallError, base), {"__module__": "builtins"})
            except TypeError:
                pass
        _error_classes[name] = cls
    return cls(name, message if isinstance(message, str) else "")


class _Default:
    """A tool parameter's default as the model should see it; the host applies the real one."""

    __slots__ = ("text",)

    def __init__(self, text: object) -> None:
        self.text = text if isinstance(text, str) and text else "..."

    def __repr__(self) -> str:
        return self.text


class _Annotation(str):
    """An annotation kept as text (as under `from __future__ import annotations`), shown bare."""

    def __repr__(self) -> str:
        return str(self)


def _pack(posonly: tuple, poskw: tuple, varargs: tuple, kwonly: tuple, varkw: dict) -> tuple[list, dict]:
    """The call as the code made it: parameters left at their defaults are not sent."""
    args = [v for v in posonly if type(v) is not _Default]
    kwargs: dict[str, object] = {}
    if varargs:
        args.extend(v for _, v in poskw)
        args.extend(varargs)
    else:
        kwargs.update((k, v) for k, v in poskw if type(v) is not _Default)
    kwargs.update((k, v) for k, v in kwonly if type(v) is not _Default)
    kwargs.update(varkw)
    return args, kwargs


def _make_stub(spec: dict, call: object) -> object:
    """A plain function with the tool's signature and docstring that calls the host."""
    name = spec.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"bad tool name {name!r}")
    namespace: dict = {"_pack": _pack, "_call": call, "_name": name}
    try:
        fn = _generated_stub(name, spec, namespace)
    except Exception:  # noqa: BLE001 - an odd signature still gets a working stub
        exec(
            compile(
                f"def {name}(*args, **kwargs):\n    return _call(_name, list(args), kwargs)\n", _HERE, "exec"
            ),
            namespace,
        )
        fn = namespace[name]
        fn.__doc__ = f"{spec.get('signature') or name + '(...)'}\n\n{spec.get('doc') or ''}"
        return fn
    fn.__doc__ = spec.get("doc") or None
    return fn


def _generated_stub(name: str, spec: dict, namespace: dict) -> object:
    kinds = ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD", "KEYWORD_ONLY")
    texts: dict[str, list[str]] = {k: [] for k in kinds}
    names: dict[str, list[str]] = {k: [] for k in kinds}
    annotations: dict[str, _Annotation] = {}
    varargs = varkw = None
    for i, p in enumerate(spec.get("params") or ()):
        pname, kind = p["name"], p["kind"]
        # a leading underscore could shadow the stub's own helpers (_call, _pack, _d0...)
        if not isinstance(pname, str) or not pname.isidentifier() or pname.startswith("_"):
            raise ValueError(f"bad parameter name {pname!r}")
        if isinstance(p.get("annotation"), str):
            annotations[pname] = _Annotation(p["annotation"])
        text = pname
        if p.get("has_default"):
            namespace[f"_d{i}"] = _Default(p.get("default"))
            text = f"{pname}=_d{i}"
        if kind == "VAR_POSITIONAL":
            varargs = pname
        elif kind == "VAR_KEYWORD":
            varkw = pname
        else:
            texts[kind].append(text)
            names[kind].append(pname)
    parts = (
        texts["POSITIONAL_ONLY"]
        + (["/"] if texts["POSITIONAL_ONLY"] else [])
        + texts["POSITIONAL_OR_KEYWORD"]
    )
    if varargs:
        parts.append(f"*{varargs}")
    elif texts["KEYWORD_ONLY"]:
        parts.append("*")
    parts += texts["KEYWORD_ONLY"]
    if varkw:
        parts.append(f"**{varkw}")
    if isinstance(spec.get("returns"), str):
        annotations["return"] = _Annotation(spec["returns"])
    posonly = "".join(f"{n}, " for n in names["POSITIONAL_ONLY"])
    poskw = "".join(f"({n!r}, {n}), " for n in names["POSITIONAL_OR_KEYWORD"])
    kwonly = "".join(f"({n!r}, {n}), " for n in names["KEYWORD_ONLY"])
    source = (
        f"def {name}({', '.join(parts)}):\n"
        f"    return _call(_name, *_pack(({posonly}), ({poskw}), {varargs or '()'}, ({kwonly}), {varkw or '{}'}))\n"
    )
    exec(compile(source, _HERE, "exec"), namespace)
    fn = namespace[name]
    fn.__annotations__ = annotations
    fn.__module__ = "tools"
    return fn
