"""`codeact show` prints a team's run as a tree (each member's run under the call that ran it),
and `codeact runs` marks member runs; a member's run is a run of the manager's log."""

from __future__ import annotations

import json

from codeact import CodeAgent, tool
from codeact.models import ModelReply, ScriptedModel, Usage
from codeact.runs.store import RunStore
from tests._isolation import require_sandbox
from tests.cli._helpers import cli


def code(src: str) -> ModelReply:
    return ModelReply(f"Thought: do it.\n```python\n{src}\n```", Usage(40, 8))


@tool
def shelf(sku: str) -> int:
    """Units on the shelf.

    Args:
        sku: the product's SKU.
    """
    return 3


@require_sandbox()
def test_show_prints_member_runs_under_the_call_and_runs_marks_them(tmp_path):
    home = tmp_path / "home"
    store = RunStore(home / "runs.db")
    clerk = CodeAgent(ScriptedModel([code("print('counting [bold]')\nfinal_answer(shelf('KB-1') * 2)")]), [shelf],
                      name="clerk", description="Counts stock.")
    boss = ScriptedModel([code("n = clerk('Count KB-1 twice')\nfinal_answer(int(n) + 1)")])
    result = CodeAgent(boss, agents=[clerk], store=store).run("Stock of KB-1, doubled, plus one")
    assert result.output == 7
    child = store.children(result.run_id)[0]
    store.close()

    shown = cli(home, "show", result.run_id)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "team: 1 member run(s) (clerk), 48 tokens" in out
    assert "success · 1 steps · 96 tokens" in out  # the manager's total counts the member
    lines = out.splitlines()
    call = next(i for i, line in enumerate(lines) if "tool clerk(task='Count KB-1 twice') ok" in line)
    nested = next(i for i, line in enumerate(lines) if f"run {child.id}" in line)
    assert nested == call + 1 and lines[nested].startswith("    ")  # indented, right under the call
    member_code = next(line for line in lines if "shelf('KB-1')" in line)
    assert member_code.startswith("    ")
    assert "counting [bold]" in out  # the member's output, as data
    assert out.index(f"run {child.id}") < out.index("Final answer: 7")

    listed = [json.loads(line) for line in cli(home, "runs", "--json").stdout.splitlines()]
    assert {r["id"]: r["parent_run"] for r in listed} == {result.run_id: None, child.id: result.run_id}
    table = cli(home, "runs").stdout
    assert f"↳ clerk of {result.run_id}: Count KB-1 twice" in table
