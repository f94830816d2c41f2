"""Extracting the code action from model text: every shape models produce, and never a crash."""

from __future__ import annotations

import ast
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeact.agent.parse import (
    CodeAction,
    NoCode,
    idle_code_message,
    parse_code,
    stated_answer,
    strip_redefinitions,
)

# (id, reply, code, blocks, thought, repair note or None)
FOUND = [
    (
        "qwen thought and block",
        "Thought: I need the sum of the list.\n```python\nnums = [1, 2, 3]\nfinal_answer(sum(nums))\n```",
        "nums = [1, 2, 3]\nfinal_answer(sum(nums))",
        1,
        "Thought: I need the sum of the list.",
        None,
    ),
    ("py tag", "```py\nprint(1)\n```", "print(1)", 1, "", None),
    ("python3 tag", "```python3\nprint(1)\n```", "print(1)", 1, "", None),
    ("capitalised tag", "```Python\nprint(1)\n```", "print(1)", 1, "", None),
    ("info string after tag", '```python title="solve.py"\nprint(1)\n```', "print(1)", 1, "", None),
    ("tilde fence", "~~~python\nprint(1)\n~~~", "print(1)", 1, "", None),
    ("longer fence", "````python\ns = '''\n```\n'''\n````", "s = '''\n```\n'''", 1, "", None),
    (
        "indented fence",
        "1. Compute it:\n   ```python\n   x = 2\n   if x:\n       print(x)\n   ```",
        "x = 2\nif x:\n    print(x)",
        1,
        "1. Compute it:",
        None,
    ),
    (
        "bare fence with code",
        "Thought: go\n```\nx = len('abc')\nprint(x)\n```",
        "x = len('abc')\nprint(x)",
        1,
        "Thought: go",
        None,
    ),
    ("bare fence, syntax error", "```\ndef f(:\n    return 1\n```", "def f(:\n    return 1", 1, "", None),
    (
        "inline backticks in prose",
        "Thought: `len` of the ``` block below, then call `final_answer`.\n```python\nfinal_answer(len('ab'))\n```",
        "final_answer(len('ab'))",
        1,
        "Thought: `len` of the ``` block below, then call `final_answer`.",
        None,
    ),
    (
        "several blocks joined in order",
        "Thought: first load.\n```python\ndata = [3, 1]\n```\nThen sort.\n```python\ndata.sort()\nfinal_answer(data)\n```",
        "data = [3, 1]\n\ndata.sort()\nfinal_answer(data)",
        2,
        "Thought: first load.",
        None,
    ),
    (
        "json block ignored",
        'The input is:\n```json\n{"a": 1}\n```\n```python\nfinal_answer(1)\n```',
        "final_answer(1)",
        1,
        'The input is:\n```json\n{"a": 1}\n```',
        None,
    ),
    (
        "output block ignored",
        "```python\nprint(6 * 7)\n```\nThis prints:\n```output\n42\n```",
        "print(6 * 7)",
        1,
        "",
        None,
    ),
    (
        "bash block not run",
        "```bash\npip install numpy\n```\n```python\nimport numpy\n```",
        "import numpy",
        1,
        "```bash\npip install numpy\n```",
        None,
    ),
    (
        "hallucinated observation after the block",
        "Thought: add.\n```python\nprint(2 + 2)\n```\nObservation: 4\nThought: done.\n```python\nfinal_answer(4)\n```",
        "print(2 + 2)",
        1,
        "Thought: add.",
        "dropped a hallucinated Observation",
    ),
    (
        "observation inside an unterminated block",
        "```python\nprint(2 + 2)\nObservation: 4",
        "print(2 + 2)",
        1,
        "",
        "unterminated fence",
    ),
    (
        "observation restated before the code is kept",
        "Observation: the list was empty.\n```python\nfinal_answer([])\n```",
        "final_answer([])",
        1,
        "Observation: the list was empty.",
        None,
    ),
    (
        "smolagents end_code",
        "Thought: x\n```py\nfinal_answer(3)\n```<end_code>",
        "final_answer(3)",
        1,
        "Thought: x",
        None,
    ),
    (
        "end_code without fence",
        "```python\nfinal_answer(3)<end_code>",
        "final_answer(3)",
        1,
        "",
        "unterminated fence",
    ),
    ("code tags", "Thought: hi\n<code>\nfinal_answer(3)\n</code>", "final_answer(3)", 1, "Thought: hi", None),
    ("code tags inline", "<code>final_answer(3)</code>", "final_answer(3)", 1, "", None),
    (
        "code tags around a fence",
        "<code>\n```python\nfinal_answer(3)\n```\n</code>",
        "final_answer(3)",
        1,
        "",
        None,
    ),
    (
        "unterminated code tag",
        "Thought: t\n<code>\nx = 1\nfinal_answer(x)",
        "x = 1\nfinal_answer(x)",
        1,
        "Thought: t",
        "unterminated <code> tag",
    ),
    ("fence closed by </code>", "```python\nfinal_answer(1)\n</code>", "final_answer(1)", 1, "", None),
    (
        "unterminated fence",
        "Thought: t\n```python\nx = 1\nfinal_answer(x)\n",
        "x = 1\nfinal_answer(x)",
        1,
        "Thought: t",
        "unterminated fence",
    ),
    (
        "cut off inside the closing fence",
        "```python\nx = 1\nfinal_answer(x)\n``",
        "x = 1\nfinal_answer(x)",
        1,
        "",
        "unterminated fence",
    ),
    (
        "closing fence glued to code",
        "```python\nfinal_answer(5)```",
        "final_answer(5)",
        1,
        "",
        "closing fence on a code line",
    ),
    (
        "opening fence glued to prose",
        "Code:```python\nfinal_answer(5)\n```",
        "final_answer(5)",
        1,
        "Code:",
        "opening fence at the end of a prose line",
    ),
    (
        "crlf line ends",
        "Thought: t\r\n```python\r\nx = 1\r\nprint(x)\r\n```\r\n",
        "x = 1\nprint(x)",
        1,
        "Thought: t",
        None,
    ),
    ("no fences: pure code", "x = 6 * 7\nfinal_answer(x)", "x = 6 * 7\nfinal_answer(x)", 1, "", "no fences"),
    (
        "no fences after a thought",
        "Thought: ok\nx = 1\nfinal_answer(x)",
        "x = 1\nfinal_answer(x)",
        1,
        "Thought: ok",
        "no fences",
    ),
    ("no fences, tool call", "search('weather in Paris')", "search('weather in Paris')", 1, "", "no fences"),
]

# (id, reply, text the message must hold)
NOT_FOUND = [
    ("plain prose", "I think the answer is 42.", "```python"),
    ("empty reply", "", "final_answer("),
    ("a single bare word", "Yes", "final_answer("),
    ("prose that parses", "Paris (France)", "final_answer("),
    ("only json", '```json\n{"answer": 42}\n```', "a ```json block"),
    ("only bash", "```bash\nls -la\n```", "a ```bash block"),
    ("bare fence with output", "The result:\n```\n42\n```", "no language"),
    ("bare fence with prose", "```\nThe answer is 42.\n```", "no language"),
    ("empty python block", "```python\n```", "empty ```python block"),
    ("inline code tag in prose", "Use <code>len</code> for that.", "final_answer("),
]


@pytest.mark.parametrize(
    ("reply", "code", "blocks", "thought", "note"), [c[1:] for c in FOUND], ids=[c[0] for c in FOUND]
)
def test_finds_code(reply: str, code: str, blocks: int, thought: str, note: str | None) -> None:
    action = parse_code(reply, tool_names=["search"])

    assert isinstance(action, CodeAction)
    assert (action.code, action.blocks, action.thought) == (code, blocks, thought)
    if note is None:
        assert action.repaired == ()
    else:
        assert note in action.repaired


@pytest.mark.parametrize(("reply", "hint"), [c[1:] for c in NOT_FOUND], ids=[c[0] for c in NOT_FOUND])
def test_no_code_explains_the_format(reply: str, hint: str) -> None:
    result = parse_code(reply)

    assert isinstance(result, NoCode)
    assert hint in result.message
    assert "```python block" in result.message and "final_answer(" in result.message


def test_no_code_hint_holds_nothing_to_copy_as_code() -> None:
    # Copied whole, an example answer became the 1.5B's answer, and a comment-only example block its code.
    result = parse_code("no code here")
    assert isinstance(result, NoCode)
    copied = parse_code(f"Thought: as told.\n{result.message}")
    assert isinstance(copied, NoCode) and "answer now" not in result.message
    assert isinstance(parse_code(f"Thought: as told.\n{result.before_tools}"), NoCode)
    assert isinstance(parse_code(f"Thought: as told.\n{result.after_output}"), NoCode)


@pytest.mark.parametrize(("reply", "hint"), [c[1:] for c in NOT_FOUND], ids=[c[0] for c in NOT_FOUND])
def test_no_code_before_any_tool_call_says_an_answer_would_be_a_guess(reply: str, hint: str) -> None:
    result = parse_code(reply)
    assert isinstance(result, NoCode)
    if hint != "final_answer(":  # nothing to finish with yet: a function must run first
        assert hint in result.before_tools  # what was found, as in the usual hint
    assert "final_answer" not in result.before_tools
    if hint != "final_answer(":
        assert hint in result.after_output
    assert result.after_output.count("{output}") == 1 and "final_answer(...)" in result.after_output
    assert "would be a guess" in result.before_tools and "```python block" in result.before_tools


def test_tool_names_decide_untagged_calls() -> None:
    assert isinstance(parse_code("lookup(city)"), NoCode)
    assert parse_code("lookup(city)", tool_names={"lookup"}) == CodeAction(
        "lookup(city)", "", 1, ("no fences",)
    )


# strip_redefinitions: (id, code, names, expected code, removed)
STRIPS = [
    (
        "def shadowing final_answer",
        "def final_answer(x):\n    print(x)\n\nresult = 2 + 2\nfinal_answer(result)\n",
        ["final_answer"],
        "\nresult = 2 + 2\nfinal_answer(result)\n",
        ["final_answer"],
    ),
    (
        "decorated and commented",
        "# helper\n@cache\ndef search(q):  # mine\n    return q\nsearch('x')  # keep\n",
        ["search"],
        "# helper\nsearch('x')  # keep\n",
        ["search"],
    ),
    (
        "async def and class",
        "async def a():\n    pass\nclass b:\n    pass\nc = 1\n",
        ["a", "b"],
        "c = 1\n",
        ["a", "b"],
    ),
    (
        "assignment",
        "final_answer = print\nfinal_answer(1)",
        ["final_answer"],
        "final_answer(1)",
        ["final_answer"],
    ),
    ("annotated and tuple", "f: int = 1\ng, (h, *i) = 1, (2, 3)\n", ["f", "i"], "", ["f", "i"]),
    (
        "a tool's name rebound to its own result is kept",
        "office = office('Oslo')\nrate: float = fx(office['currency'])\nprint(rate)\n",
        ["office", "fx"],
        "office = office('Oslo')\nrate: float = fx(office['currency'])\nprint(rate)\n",
        [],
    ),
    (
        "rebound to another call is still removed",
        "office = lambda city: {'city': city}\nfx = print(1)\n",
        ["office", "fx"],
        "",
        ["office", "fx"],
    ),
    (
        "shares a line",
        "x = 1; final_answer = print; y = 2\n",
        ["final_answer"],
        "x = 1; pass; y = 2\n",
        ["final_answer"],
    ),
    (
        "non-ascii before it",
        "s = 'é'; final_answer = 3\n",
        ["final_answer"],
        "s = 'é'; pass\n",
        ["final_answer"],
    ),
    (
        "attribute and nested kept",
        "obj.final_answer = 1\nif x:\n    def final_answer(): pass\n",
        ["final_answer"],
        "obj.final_answer = 1\nif x:\n    def final_answer(): pass\n",
        [],
    ),
    (
        "other names kept",
        "def helper():\n    return 1\n",
        ["final_answer"],
        "def helper():\n    return 1\n",
        [],
    ),
    (
        "removed twice, named once",
        "def final_answer(x): pass\nfinal_answer = 1\nprint(2)",
        ["final_answer"],
        "print(2)",
        ["final_answer"],
    ),
    ("syntax error unchanged", "def final_answer(:\n", ["final_answer"], "def final_answer(:\n", []),
]


@pytest.mark.parametrize(
    ("code", "names", "expected", "removed"), [c[1:] for c in STRIPS], ids=[c[0] for c in STRIPS]
)
def test_strip_redefinitions(code: str, names: list[str], expected: str, removed: list[str]) -> None:
    assert strip_redefinitions(code, names) == (expected, removed)


FRAGMENTS = st.sampled_from(
    ["```", "```python", "```py", "~~~", "python", "\n", "\r\n", " ", "    ", "`", "<code>", "</code>",
     "<end_code>", "Observation:", "Thought:", "final_answer(1)", "x = ", "print(", ")", "(" * 200,
     "\x00", "\ud800", "é", "json", "\t"]
)  # fmt: skip
REPLIES = st.text() | st.lists(FRAGMENTS | st.text(max_size=8), max_size=40).map("".join)


@given(REPLIES)
@settings(max_examples=400, deadline=None)
def test_parse_code_never_raises(reply: str) -> None:
    result = parse_code(reply, tool_names=("search",))

    if isinstance(result, CodeAction):
        assert result.code.strip() and result.blocks >= 1
    else:
        assert "final_answer(" in result.message


SNIPPETS = st.sampled_from(
    ["x = 1", "print('a `b` c')", "final_answer(x)", "for i in range(3):\n    total += i", "",
     "# comment with ``` inside", 's = """\n  text\n"""', "if x:\n    pass\nelse:\n    y = (", "    indented()",
     "name = 'Zürich'", "print('Observation: not a line start')", "def f(a):\n\n    return a  "]
)  # fmt: skip
LINE = st.text(
    st.characters(exclude_characters="\n\r`~<", exclude_categories=("Cs",)), min_size=1, max_size=30
)


@st.composite
def fence_free_code(draw: st.DrawFn) -> str:
    """Code with no fence lines, starting unindented and ending without blank space."""
    middle = draw(st.lists(SNIPPETS | LINE, max_size=8))
    first = draw(SNIPPETS.filter(lambda s: s != "" and not s[0].isspace()))
    last = draw(st.sampled_from(["final_answer(x)", "print(y)"]))
    lines = [first, *middle, last]
    return "\n".join(ln for ln in lines if not ln.startswith("Observation:"))


@given(fence_free_code())
@settings(max_examples=300, deadline=None)
def test_wrapped_code_parses_back_exactly(code: str) -> None:
    action = parse_code(f"Thought: x\n```python\n{code}\n```")

    assert action == CodeAction(code, "Thought: x", 1)


@given(st.lists(st.sampled_from(["def final_answer(v):\n    print(v)", "final_answer = print", "x = 1", "# note",
                                 "final_answer(x)", "class final_answer: pass", "y = 2; final_answer = 3"]), max_size=8))  # fmt: skip
def test_stripped_code_still_parses_and_defines_nothing(parts: list[str]) -> None:
    code, _ = strip_redefinitions("\n".join(parts), {"final_answer"})

    tree = ast.parse(code)
    assert not any(
        isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == "final_answer"
        for node in tree.body
    )
    assert not any(
        isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "final_answer" for t in node.targets)
        for node in tree.body
    )


@given(st.text())
def test_strip_redefinitions_never_raises(code: str) -> None:
    new, removed = strip_redefinitions(code, {"final_answer"})
    assert isinstance(new, str) and isinstance(removed, list)


def test_ten_megabyte_reply_parses_quickly() -> None:
    body = "rows = [r for r in range(10)]  # `x` and ``` here\n" * 220_000
    reply = (
        "Thought: a `big` one, see ``` below.\n```python\n"
        + body
        + "final_answer(rows)\n```\nObservation: x\n"
    )

    start = time.perf_counter()
    action = parse_code(reply)
    elapsed = time.perf_counter() - start

    assert len(reply) > 10_000_000
    assert isinstance(action, CodeAction) and action.code.endswith("final_answer(rows)")
    assert elapsed < 5  # about 0.3 s on a slow 2-core machine; a quadratic path would take minutes


@pytest.mark.parametrize(
    "reply",
    ["x" * 1_000_000, " " * 1_000_000 + "`", "`" * 1_000_000, "\n" * 1_000_000, "```\n" * 250_000,
     "<code>" * 160_000, "a```python\n" * 100_000, "Observation:\n" * 80_000, "```\n" + "x = (\n" * 150_000],
    ids=["one line", "spaces", "backticks", "newlines", "fences", "open tags", "glued", "observations", "bare"],
)  # fmt: skip
def test_pathological_megabyte_replies_stay_linear(reply: str) -> None:
    start = time.perf_counter()
    parse_code(reply)
    assert time.perf_counter() - start < 3


@pytest.mark.parametrize(
    ("code", "removed", "idle"),
    [
        ("# Your code here\n", [], True),
        ("pass\n...\n'a note'\n", [], True),
        ("\n", ["list_hotels"], True),
        ("# look first\nprint(1)", [], False),
        ("x = 1  # set", [], False),
        ("def helper():\n    pass", [], False),  # a new function is work the model may call later
        ("if True:\n    # nothing yet\n    pass", [], False),
        ("def broken(:", [], False),  # the kernel reports the SyntaxError
    ],
)
def test_idle_code_message_only_for_code_that_runs_nothing(code: str, removed: list[str], idle: bool) -> None:
    message = idle_code_message(code, removed)
    assert (message is not None) == idle
    if message and removed:
        assert "list_hotels" in message


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ('The code is final_answer("ZAR")', 'final_answer("ZAR")'),  # the 1.5B, four steps running
        ("So the total is final_answer(142.24).", "final_answer(142.24)"),
        ('Answer: final_answer("a (b)") as asked', 'final_answer("a (b)")'),
        ("It returns final_answer([1, 2]) now", "final_answer([1, 2])"),
    ],
)
def test_a_literal_final_answer_in_prose_is_taken_as_code(reply: str, code: str) -> None:
    action = parse_code(reply)
    assert isinstance(action, CodeAction)
    assert action.code == code and "final_answer in prose" in action.repaired


@pytest.mark.parametrize(
    "reply",
    [
        "The code is final_answer(value) with that value.",  # an echo of the instructions
        "I will call final_answer(...) once I know more.",
        "Either final_answer(1) or maybe final_answer(2), not sure.",
        "Call final_answer(answer=3) then.",
        "final_answer( is what I call at the end",
    ],
)
def test_prose_without_exactly_one_literal_answer_stays_no_code(reply: str) -> None:
    assert isinstance(parse_code(reply), NoCode)


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ("The result is 10.5 hours ahead of New York.\n\nFinal answer: 10.5", "final_answer(10.5)"),  # the 1.5B
        ("The final answer is 9455.", "final_answer(9455)"),  # the embedded model, in a newcomer's terminal
        ("**Final Answer:** `ZAR`", "final_answer('ZAR')"),
        ("### Final answer = -5", "final_answer(-5)"),
        ("So the final answer is $\\boxed{42}$.", "final_answer(42)"),
        ('the final answer is "LH7620"', "final_answer('LH7620')"),
        ("Final answer: 1,073.33", "final_answer('1,073.33')"),  # a separator, not a tuple
        ("Final answer: [1, 2]", "final_answer([1, 2])"),
        ("Final answer: 3\nThinking again...\nFinal answer: 4", "final_answer(4)"),  # the last one stated
    ],
)
def test_an_answer_stated_in_words_is_read_as_final_answer_code(reply: str, code: str) -> None:
    assert isinstance(parse_code(reply), NoCode)  # not code: the loop decides whether to take it
    assert stated_answer(reply) == code


@pytest.mark.parametrize(
    "reply",
    [
        "Your final answer was rejected: you answered without looking",  # an echo of a rejection
        "Call final_answer(...) with the answer.",
        "Final answer:",
        "Final answer: ...",
        "Final answer: None",
        "The answer depends on the fare.",
        "Final answer: " + "x" * 300,  # an explanation, not an answer
        "Before the final answer: let me check the fare.",  # a reply that goes on working
    ],
)
def test_text_that_states_no_answer_gives_none(reply: str) -> None:
    assert stated_answer(reply) is None
