"""Files out: what a run created, changed or deleted in its workspace, in the result and the log."""

from __future__ import annotations

import json

from codeact import CodeAgent
from codeact.agent.files_out import MAX_LISTED, changes
from codeact.events import FilesChanged, RunFinished
from codeact.models import ScriptedModel
from codeact.runs.store import RunStore
from codeact.sandbox.local import LocalSandbox
from tests._isolation import require_sandbox
from tests.cli import _helpers


def code(src: str) -> str:
    return f"Thought: do it.\n```python\n{src}\n```"


@require_sandbox()
def test_created_changed_and_deleted_files_are_listed_and_logged(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("same")  # there before the runs, left alone
    first = "open('notes.txt', 'w').write('one')\nopen('gone.txt', 'w').write('bye')\nfinal_answer('set up')"
    second = ("import os\nos.makedirs('out', exist_ok=True)\n"
              "open('out/report.csv', 'w').write('a,b\\n1,2\\n')\n"
              "open('notes.txt', 'a').write(' two')\nos.remove('gone.txt')\nfinal_answer('ok')")
    store = RunStore(tmp_path / "runs.db")
    sandbox = LocalSandbox(workspace=work)  # kept across runs: each run lists its own changes
    try:
        agent = CodeAgent(ScriptedModel([code(first), code(second)]), sandbox=sandbox, store=store)
        setup = agent.run("set up")
        result = agent.run("write a report")
    finally:
        sandbox.close()
    assert [(f.path, f.change) for f in setup.files] == [("gone.txt", "created"), ("notes.txt", "created")]
    assert result.status == "success", (result.error, [s.observation for s in result.steps])
    listed = {f.path: (f.change, f.size, f.type) for f in result.files}
    assert listed == {
        "gone.txt": ("deleted", 0, "text/plain"),
        "notes.txt": ("changed", 7, "text/plain"),
        "out/report.csv": ("created", 8, "text/csv"),
    }
    events = store.events(result.run_id)
    kinds = [e.kind for e in events]
    assert kinds[-2:] == ["files_changed", "run_finished"]
    logged = next(e for e in events if isinstance(e, FilesChanged))
    assert logged.files == result.files and logged.more == 0
    store.close()


@require_sandbox()
def test_a_run_that_writes_nothing_lists_nothing_and_streams_no_event():
    events = list(CodeAgent(ScriptedModel([code("final_answer(1)")]), store=False).run("t", stream=True))
    assert not any(isinstance(e, FilesChanged) for e in events)
    assert isinstance(events[-1], RunFinished) and events[-1].result.files == ()


def test_the_listing_is_capped():
    after = {f"f{i:04}.png": (1, 1, False) for i in range(MAX_LISTED + 5)}
    found = changes({}, after)
    assert len(found) == MAX_LISTED + 5 and found[0].type == "image/png"


@require_sandbox()
def test_json_output_lists_the_files(tmp_path):
    from tests.servers.chat_server import ChatServer, chat

    reply = chat(_helpers.fenced("open('hello.txt', 'w').write('hi')\nfinal_answer('done')"))
    with ChatServer([reply]) as server:
        proc = _helpers.codeact(tmp_path, "run", "Write hello", "--model", f"openai-compat:{server.url}#test",
                                "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    assert data["files"] == [{"path": "hello.txt", "change": "created", "size": 2, "type": "text/plain"}]
    shown = _helpers.cli(tmp_path, "show", data["run_id"])
    assert shown.returncode == 0 and "files: created hello.txt (2 bytes)" in shown.stdout
