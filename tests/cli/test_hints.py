"""Every `--option` a message names exists on the command line (issue 9, item 5).

Hints are found by reading the source: every string literal in `src/codeact` (f-strings
included, docstrings and comments not) that reads like a sentence and names `--something`. The
options of other programs are told apart by where they stand: after `pip install`, or in the
usage line of an internal script; a bare argv token such as "--unshare-pid" is not a sentence.
"""

import ast
import re
from pathlib import Path

import typer

from codeact.cli import _register, app

SRC = Path(__file__).resolve().parents[2] / "src" / "codeact"
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
FOREIGN = [re.compile(r"pip install(?:\s+--[\w-]+)+"),  # pip's own options
           re.compile(r"usage: \w+\.py .*")]  # internal scripts (kernel, zygote) state their own usage


def cli_options() -> set[str]:
    _register()
    names: set[str] = set()
    pending = [typer.main.get_command(app)]
    while pending:  # commands, and the commands of sub-groups (`codeact mcp serve`)
        command = pending.pop()
        for param in command.params:
            names.update(param.opts + param.secondary_opts)
        pending.extend(getattr(command, "commands", {}).values())
    return {n for n in names if n.startswith("--")}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
        # attribute docstrings: a string statement right after an assignment
        for child in getattr(node, "body", []) if isinstance(getattr(node, "body", None), list) else []:
            if isinstance(child, ast.Expr) and isinstance(child.value, ast.Constant):
                ids.add(id(child.value))
    return ids


def hints() -> list[tuple[str, str, str]]:
    """(file:line, option, text) for each option named in a message."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in skip:
                continue
            text = node.value
            if not re.search(r"\s", text.strip()):
                continue  # an argv token, not a sentence
            for pattern in FOREIGN:
                text = pattern.sub("", text)
            for option in OPTION.findall(text):
                found.append((f"{path.relative_to(SRC)}:{node.lineno}", option, node.value))
    return found


def test_hints_are_found():
    found = {(where.split(":")[0], option) for where, option, _ in hints()}
    # The ones issue 9 names, so the scan itself cannot silently find nothing.
    assert ("runs/store.py", "--store") in found
    assert ("runs/pricing.py", "--prices") in found
    assert ("sandbox/zygote.py", "--sandbox") in found


def test_every_option_a_hint_names_exists():
    options = cli_options()
    missing = [f"{where}: {option} in {text!r}" for where, option, text in hints() if option not in options]
    assert not missing, "hints name options the CLI does not have:\n" + "\n".join(missing)


def test_run_log_option_is_on_every_command_that_opens_the_log():
    _register()
    group = typer.main.get_command(app)
    for name in ("run", "runs", "show", "resume", "replay"):
        opts = {o for p in group.commands[name].params for o in p.opts}  # type: ignore[attr-defined]
        assert "--store" in opts, name
    run_opts = {o for p in group.commands["run"].params for o in p.opts}  # type: ignore[attr-defined]
    assert {"--max-tokens", "--max-seconds", "--max-cost", "--prices", "--max-reply-tokens"} <= run_opts
    assert "--version" in {o for p in group.params for o in p.opts}
