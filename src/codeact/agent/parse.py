"""Extract the code action from a model's free-text reply.

The prompt asks for a thought and a ```python block, but models vary: small local models forget
the closing fence, use bare ``` or `<code>` tags, glue the fence onto a code line, or hallucinate
an "Observation:" after the code. A brittle parser turns each of those into a wasted step, so this
one accepts every reasonable shape, notes what it repaired, and never raises. Regexes find the
few lines that hold a fence or a tag (none can backtrack badly) and Python looks only at those,
so a 10 MB reply parses in well under a second (a few seconds if it is nothing but fences);
`ast` only checks replies small enough to parse cheaply.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Collection
from dataclasses import dataclass

from codeact.agent.observation import OUTPUT_SLOT

__all__ = ["CodeAction", "NoCode", "idle_code_message", "parse_code", "stated_answer", "strip_redefinitions"]

_PYTHON_LANGS = frozenset({"python", "py", "python3", "py3", "ipython", "ipython3"})
_AST_LIMIT = 50_000  # chars; above this `ast` is skipped (0.5 s per 440 KB on a slow core)
# Only lines holding ``` ~~~ or </code> can open or close a block; the lazy part fails in one pass.
_MARKED_LINE = re.compile(r"^[^\n]*?(?:```|~~~|</code>)[^\n]*", re.MULTILINE)
_OPEN = re.compile(r"[ \t]*(`{3,}|~{3,})([^`\n]*)")  # fullmatch on one line
_CLOSE = re.compile(r"[ \t]*(`{3,}|~{3,})[ \t]*(?:</code>)?[ \t]*")  # fullmatch on one line
_GLUED_OPEN = re.compile(r"(?<!`)```[ \t]*(?:python3?|py)[ \t]*$", re.IGNORECASE)
_OPENER = re.compile(r"^[ \t]*(?:```|~~~)|<code>", re.MULTILINE)
_OBSERVATION = re.compile(r"^Observation:", re.MULTILINE)
_LANG = re.compile(r"[{.]?([A-Za-z0-9_+-]*)")
_SHAPES = re.compile(  # lines that only code has; used when `ast` cannot decide
    r"^[ \t]*(?:(?:def|class|import|return)\s|from\s+[\w.]+\s+import\s|[A-Za-z_][\w.]*\(|"
    r"[A-Za-z_][\w.]*(?:\[[^\]\n]*\])?[ \t]*[-+*/%|&]?=[^=])",
    re.MULTILINE,
)


@dataclass(frozen=True)
class CodeAction:
    """Code to run, found in a reply.

    Args:
        code: the code to run; several blocks are joined in order with blank lines.
        thought: the prose before the first block, stripped.
        blocks: how many blocks were found.
        repaired: notes on what was repaired, e.g. "unterminated fence", for the run log.
    """

    code: str
    thought: str
    blocks: int
    repaired: tuple[str, ...] = ()


@dataclass(frozen=True)
class NoCode:
    """No code in the reply; `message` goes back to the model as the observation.

    `before_tools` is the observation for a run in which no function has been called yet: an
    answer in words then can only be a guess, and a short hint that says so gets code back.
    `after_output` is the one right after a step that printed something, with `OUTPUT_SLOT` where
    that output goes: the answer is to come from it.
    """

    message: str
    before_tools: str = ""
    after_output: str = ""


def parse_code(text: str, *, tool_names: Collection[str] = ()) -> CodeAction | NoCode:
    """Find the code action in a model reply; never raises.

    Tries, in order: fenced blocks (python-tagged, or bare ones that look like Python), then
    `<code>` tags, then a reply that is entirely code.

    Args:
        text: the model's reply.
        tool_names: calls to these count as code when deciding whether untagged text is Python.
    """
    known = frozenset(tool_names) | {"final_answer", "print"}
    text = text.replace("\r\n", "\n").replace("<end_code>", "")
    notes: list[str] = []
    cut = _observation_cut(text)
    if cut < len(text):
        text = text[:cut]
        notes.append("dropped a hallucinated Observation")
    deep = len(text) <= _AST_LIMIT
    blocks, thought, others = _fenced_blocks(text, known, deep, notes)
    if not blocks:
        blocks, thought = _tagged_blocks(text, known, deep, notes)
    if blocks:
        thought = thought.strip().removesuffix("<code>").rstrip()
        return CodeAction("\n\n".join(blocks), thought, len(blocks), tuple(dict.fromkeys(notes)))
    if deep and not others:
        # A pure-code reply, maybe after a line or two of prose; `Thought: ok` parses as an
        # annotated assignment, so such a line is always prose.
        lines = text.split("\n")
        first = 1 if lines[0].lstrip().lower().startswith("thought:") else 0
        for skip in range(first, min(first + 3, len(lines))):
            code = _tidy("\n".join(lines[skip:]))
            if _is_python(code, known, use_ast=True, strict=True):
                thought = "\n".join(lines[:skip]).strip()
                return CodeAction(code, thought, 1, (*notes, "no fences"))
    answer = _answer_in_prose(text) if deep and not others else None
    if answer is not None:
        return CodeAction(answer, text.strip(), 1, (*notes, "final_answer in prose"))
    return NoCode(*_no_code_messages(list(others)))


_PROSE_CALL_TRIES = 16  # closing parentheses tried as the call's end: a literal answer is short


def _answer_in_prose(text: str) -> str | None:
    """`final_answer(<a literal>)` written inside a sentence, as code; None when there is not exactly one.

    Told that the code to finish is a call of final_answer, the 1.5B replied `The code is
    final_answer("ZAR")` four steps running, the right answer each time. Only a literal counts:
    `final_answer(value)` in prose is an echo of the instructions, not an answer.
    """
    if text.count("final_answer(") != 1:
        return None
    start = text.index("final_answer(")
    closers = [i + 1 for i, ch in enumerate(text[start:], start) if ch == ")"]
    for end in closers[:_PROSE_CALL_TRIES]:
        tree = _parse(text[start:end])
        if tree is None or len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
            continue  # not one whole expression yet: try the next ")"
        call = tree.body[0].value
        if not (isinstance(call, ast.Call) and len(call.args) == 1 and not call.keywords):
            return None
        value = _literal(call.args[0])
        return text[start:end] if value is not _NOT_LITERAL and value is not Ellipsis else None
    return None


_NOT_LITERAL = object()


def _literal(node: ast.expr) -> object:
    """`ast.literal_eval(node)`, or `_NOT_LITERAL` for a node that is not a literal."""
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return _NOT_LITERAL


# "Final answer: X" opening a line (after markup), or "the final answer is X" anywhere; not "before
# the final answer: let me check", which a reply that goes on working may say.
_STATED = re.compile(r"(?:^[ \t>#*_-]*final answer[ \t*_]*[:=]|\bfinal answer is\b)[ \t]*(?P<rest>[^\n]*)",
                     re.IGNORECASE | re.MULTILINE)
_BOXED = re.compile(r"\\boxed\{([^{}\n]*)\}")
_STATED_MAX = 200  # chars: an answer stated in a sentence is short; longer is an explanation


def stated_answer(text: str) -> str | None:
    """`final_answer(<value>)` for the answer a reply without code states in words, or None.

    "Final answer: 10.5", "The final answer is 9455.", "**Final Answer:** `ZAR`" each state one:
    the value after the last such phrase, on its line, with markup and a closing full stop removed
    (a Python literal when it reads as one, else the text). The loop takes it only after a step
    that showed output (`loop.agent_loop`): the 1.5B printed 10.5, then wrote "Final answer: 10.5"
    and, told that no code was found, echoed the observations until the step limit.
    """
    matches = list(_STATED.finditer(text))
    if not matches:
        return None
    raw = matches[-1].group("rest")
    boxed = _BOXED.search(raw)
    raw = boxed.group(1) if boxed else raw
    value_text = raw.strip().strip("*`$ ").removesuffix(".").strip("*`$ ")
    if not any(ch.isalnum() for ch in value_text) or len(value_text) > _STATED_MAX:
        return None
    tree = _parse(value_text)
    value = _NOT_LITERAL
    if tree is not None and len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr):
        value = _literal(tree.body[0].value)
    if value is _NOT_LITERAL or (isinstance(value, tuple) and not value_text.startswith("(")):
        value = value_text  # text; and "1,073.33" is a number written with a separator, not a tuple
    if value is None or value is Ellipsis or value == "":
        return None
    return f"final_answer({value!r})"


def strip_redefinitions(code: str, names: Collection[str]) -> tuple[str, list[str]]:
    """Remove top-level `def`, `class` and assignments that redefine any of `names`.

    Small models often write their own `def final_answer(x): print(x)`, which shadows the real
    one so the run never ends (removing it lifted a 1.5B model from 8/18 to 16/18 tasks). The rest
    of the source is kept verbatim, comments included. Code that does not parse is returned as is.

    Returns:
        The new code and the removed names, in order of first removal.
    """
    tree = _parse(code)
    if tree is None:
        return code, []
    lines = _split_lines(code)
    removed: list[str] = []
    body = tree.body
    for i in reversed(range(len(body))):
        hit = [n for n in _defined_names(body[i]) if n in names and not _binds_own_result(body[i], n)]
        if not hit:
            continue
        removed[:0] = hit
        node = body[i]
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        last = node.end_lineno or node.lineno
        if _shares_a_line(body, i, first, last):  # `x = 1; final_answer = print`: replace just this statement
            lines[first - 1 : last] = [_splice_pass(lines[first - 1 : last], node)]
        else:
            del lines[first - 1 : last]
    return "".join(lines), list(dict.fromkeys(removed))


def idle_code_message(code: str, removed: Collection[str]) -> str | None:
    """Why `code` would run nothing (only comments, `pass` or `...`), or None when it has statements.

    Read in the embedded models' runs: 25 of 60 runs of the 0.5B and 13 of 211 of the 1.5B had
    such a step. The 0.5B copied a tool's `def` from the prompt, which the loop removes, and the
    1.5B wrote `# Your code here`; told only that "the code ran without output", both did it again.
    """
    tree = _parse(code)
    if tree is None or any(not _idle(stmt) for stmt in tree.body):
        return None
    if removed:
        names = ", ".join(removed)
        return (f"Nothing ran: your code only defined {names}, which you already have (the real one is "
                "defined for you, so your definition was removed). Call it instead of defining it, and "
                "print what it returns.")
    return ("Nothing ran: your code block held only comments. Write the Python statements for this step: "
            "call your functions and print what they return.")


def _idle(stmt: ast.stmt) -> bool:
    """`pass`, `...` or a bare string: a statement that does nothing."""
    return isinstance(stmt, ast.Pass) or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                                          and (stmt.value.value is Ellipsis or isinstance(stmt.value.value, str)))


def _observation_cut(text: str) -> int:
    """Where to cut off an "Observation:" line the model invented, and all after it.

    Counts only after a code opener, or, with no opener at all, anywhere but the first line, so
    a reply that starts by restating the last observation keeps its code.
    """
    opener = _OPENER.search(text)
    obs = _OBSERVATION.search(text, opener.start() if opener else 0)
    if obs and not opener and not text[: obs.start()].strip():
        obs = _OBSERVATION.search(text, obs.end())
    return obs.start() if obs else len(text)


def _fenced_blocks(
    text: str, known: frozenset[str], deep: bool, notes: list[str]
) -> tuple[list[str], str, Collection[str]]:
    """Python blocks between fences, the prose before the first, and the other blocks seen."""
    blocks: list[str] = []
    others: dict[str, None] = {}  # an ordered set: the message names each kind once
    thought = ""
    marks = [m.span() for m in _MARKED_LINE.finditer(text)]
    k = 0
    while k < len(marks):
        start, end = marks[k]
        line = text[start:end]
        opening = _OPEN.fullmatch(line)
        glued = None if opening else _GLUED_OPEN.search(line)
        k += 1
        if not opening and not glued:
            continue
        fence, lang = (opening.group(1), _language(opening.group(2))) if opening else ("```", "python")
        body, k, how = _block_body(text, marks, k, fence, end + 1)
        code = "" if not body or body.isspace() else _tidy(body)
        python = lang in _PYTHON_LANGS or (not lang and _is_python(code, known, use_ast=deep))
        if python and code:
            if not blocks:
                thought = text[:start] + (line[: glued.start()] if glued else "")
                if glued:
                    notes.append("opening fence at the end of a prose line")
            blocks.append(code)
            if how:
                notes.append(how)
        elif python:
            others["an empty ```python block"] = None
        elif lang or code:
            others[f"a ```{lang} block"] = None
    return blocks, thought, others


def _block_body(
    text: str, marks: list[tuple[int, int]], k: int, fence: str, begin: int
) -> tuple[str, int, str]:
    """A block's text from `begin`, the index of the first mark after it, and a repair note."""
    for j in range(k, len(marks)):
        start, end = marks[j]
        line = text[start:end]
        close = _CLOSE.fullmatch(line)
        if (close and close.group(1)[0] == fence[0] and len(close.group(1)) >= len(fence)) or (
            line.strip() == "</code>"
        ):
            return text[begin:start], j + 1, ""
        head = _glued_close(line) if fence[0] == "`" else None
        if head is not None:
            return text[begin:start] + head, j + 1, "closing fence on a code line"
    body = text[begin:].rstrip()
    last = body.rfind("\n") + 1
    if not body[last:].strip().strip("`"):
        body = body[:last]  # a fence cut off by the token limit
    return body, len(marks), "unterminated fence"


def _glued_close(line: str) -> str | None:
    """The code before a closing ``` (or </code>) glued onto the end of a code line, if any."""
    stripped = line.rstrip()
    for end in ("```", "</code>"):
        if stripped.endswith(end):
            head = stripped[: -len(end)]
            if head.strip() and not head.endswith("`"):
                return head
    return None


def _tagged_blocks(text: str, known: frozenset[str], deep: bool, notes: list[str]) -> tuple[list[str], str]:
    """Code inside `<code>...</code>` tags, and the prose before the first; str.find keeps it linear."""
    blocks: list[str] = []
    thought = ""
    pos = 0
    while (start := text.find("<code>", pos)) != -1:
        end = text.find("</code>", start)
        pos = len(text) if end == -1 else end + 7
        code = _tidy(text[start + 6 : pos if end == -1 else end])
        if _is_python(code, known, use_ast=deep):
            if not blocks:
                thought = text[:start]
            blocks.append(code)
            if end == -1:
                notes.append("unterminated <code> tag")
    return blocks, thought


def _tidy(text: str) -> str:
    """Drop blank lines around the code, trailing spaces, and indentation common to every line."""
    lines = text.rstrip().split("\n")
    lo = 0
    while lo < len(lines) and not lines[lo].strip():
        lo += 1
    lines = lines[lo:]
    if not lines or not lines[0][:1].isspace():
        return "\n".join(lines)
    indents = {ln[: len(ln) - len(ln.lstrip(" \t"))] for ln in lines if ln.strip()}
    prefix = min(indents, key=len)
    if prefix and all(i.startswith(prefix) for i in indents):
        lines = [ln.removeprefix(prefix) for ln in lines]
    return "\n".join(lines)


def _is_python(code: str, known: frozenset[str], *, use_ast: bool, strict: bool = False) -> bool:
    """Whether untagged text is code: it parses and does something (a call, an assignment...).

    `[1, 2]`, `42` or `Paris (France)` parse but are output or prose. When `ast` cannot decide
    (a syntax error, or a reply too large to parse cheaply), typical code lines decide, unless
    `strict`: code with a syntax error still runs, so the model sees the error and fixes it.
    """
    if not code.strip():
        return False
    tree = _parse(code) if use_ast else None
    if tree is None:
        return not strict and _SHAPES.search(code) is not None
    return any(_acts(stmt, known) for stmt in tree.body)


def _acts(stmt: ast.stmt, known: frozenset[str]) -> bool:
    """A statement other than `pass` or a bare expression, or an expression with a real call."""
    if isinstance(stmt, ast.Pass):
        return False
    if not isinstance(stmt, ast.Expr):
        return True
    return any(isinstance(node, ast.Call) and _real_call(node, known) for node in ast.walk(stmt.value))


def _real_call(call: ast.Call, known: frozenset[str]) -> bool:
    """Not prose that happens to parse, like `Paris (France)`: an unknown name applied to names."""
    if not isinstance(call.func, ast.Name) or call.func.id in known or call.keywords or not call.args:
        return True
    return not all(isinstance(arg, ast.Name) for arg in call.args)


def _parse(code: str) -> ast.Module | None:
    """`ast.parse`, or None on any failure (syntax, NULs, surrogates, nesting too deep)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for "\d" and friends
            return ast.parse(code)
    except (SyntaxError, ValueError, UnicodeError, MemoryError, RecursionError, OverflowError):
        return None


def _split_lines(code: str) -> list[str]:
    """`code` cut after each line break `ast` counts (\\n, \\r\\n, a lone \\r), the breaks kept."""
    return re.split(r"(?<=\n)|(?<=\r)(?!\n)", code)


def _shares_a_line(body: list[ast.stmt], i: int, first: int, last: int) -> bool:
    """Whether top-level statement `i`, on lines `first`..`last`, shares one with a neighbour (`x = 1; f()`)."""
    return (i > 0 and (body[i - 1].end_lineno or 0) >= first) or (i + 1 < len(body) and body[i + 1].lineno <= last)


def _binds_own_result(node: ast.stmt, name: str) -> bool:
    """`office = office("Oslo")`: the name is rebound to what the tool returned, not to an imitation.
    Small models write this often; removing it broke the step, while keeping it costs nothing (the
    kernel puts the tools back before the next step)."""
    value = getattr(node, "value", None) if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
    return value is not None and any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name for n in ast.walk(value)
    )


def _defined_names(node: ast.AST) -> list[str]:
    """Names a top-level statement binds (`a.b = ...` and `a[0] = ...` bind none)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [name for target in node.targets for name in _defined_names(target)]
    if isinstance(node, ast.AnnAssign):
        return _defined_names(node.target)
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, (ast.Tuple, ast.List)):
        return [name for elt in node.elts for name in _defined_names(elt)]
    if isinstance(node, ast.Starred):
        return _defined_names(node.value)
    return []


def _language(info: str) -> str:
    """The language word of a fence's info string: "Python title=x" -> "python", "{py}" -> "py"."""
    match = _LANG.match(info.strip())
    return match.group(1).lower() if match else ""


def _splice_pass(lines: list[str], node: ast.stmt) -> str:
    """Replace one statement that shares its line(s) with others by `pass`."""
    head = lines[0].encode()[: node.col_offset].decode(errors="replace")
    tail = lines[-1].encode()[node.end_col_offset or 0 :].decode(errors="replace")
    return f"{head}pass{tail}"


def _no_code_messages(others: list[str]) -> tuple[str, str, str]:
    """The observations for a reply without code: in general, before any function was called, right after output."""
    found = ""
    if others:
        kinds = ", ".join(others).replace("a ``` block", "a ``` block with no language")
        found = f"Your reply had {kinds}; only non-empty ```python blocks are run. "
    # Nothing here to copy whole: the 1.5B copied the example answer this hint once had ("I know
    # the answer now") and answered a number it had never seen, then the comment-only block it had
    # next ("# the code: call your functions, ...") as its code.
    general = (
        f"{found}No code to run was found. Every reply needs a short thought, then one ```python block "
        "with the code for this step, code that calls your functions and prints what you need to see. "
        "If what you have seen already answers the task, that block calls final_answer(...) with the answer."
    )
    # Before any call the 1.5B answered from nowhere ("The office checksum of 'hello' is 10.") and,
    # shown the general hint, wrote the same sentence until the step limit; told this, it wrote
    # `print(encode_message('hello'))`.
    before_tools = (
        f"{found}No code to run was found, and none of your functions has been called yet: an answer now "
        "would be a guess. Write a ```python block that calls your functions and prints the result."
    )
    # Right after output the 1.5B wrote its earlier guess again ("... is 12." after printing 3767;
    # "The currency ... is ZAR." after printing ZAR) and kept writing it under the general hint;
    # shown its own output beside "an answer in words is not taken", it called final_answer(3767).
    after_output = (
        f"{found}No code to run was found. An answer in words is not taken: answers come from your code's "
        f"output. The output your code printed last was:\n{OUTPUT_SLOT}\nWrite a ```python block: "
        "final_answer(...) with the value from that output, or the code for the next step."
    )
    return general, before_tools, after_output
