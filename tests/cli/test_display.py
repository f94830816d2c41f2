"""Text that is not ours is shown as the characters it is: `run`, `show` and `runs`, end to end.

A real HTTP model server scripts the replies; the code runs in the process sandbox (what is shown
does not depend on isolation). Brackets must survive exactly, control sequences must arrive as
visible escapes, and no ESC byte may reach the output.
"""

import json

from tests.cli._helpers import cli, codeact, fenced, no_control
from tests.servers.chat_server import ChatServer, chat

TASK = "Find all words matching [a-z]+ in x[i], [link](http://x) and key=[value]; then [/]"
BRACKETS = ["Find all words matching [a-z]+", "x[i]", "[link](http://x)", "key=[value]", "then [/]"]
PRINTED = ("print('[bold]not bold[/] [/] clip:\\x1b]52;c;cm0gLXJmIH4=\\x07 link:\\x1b]8;;http://evil\\x07here"
           "\\x1b]8;;\\x07 up:\\x1b[5A\\x1b[2K title:\\x1b]0;owned\\x07 csi:\\x9b2J rlo:\\u202eabc')")
ANSWER = "x[i] [/] \x1b]52;c;aGk=\x07done \x1b]0;t\x07"


def run_it(home, *extra):
    replies = [chat(fenced(PRINTED, thought="I will look [at] it \x1b[31mred\x1b[0m."), usage=(10, 5)),
               chat(fenced(f"final_answer({ANSWER!r})"), usage=(12, 3))]
    with ChatServer(replies) as server:
        return codeact(home, "run", TASK, "--model", f"openai-compat:{server.url}#[m]", "--sandbox",
                       "process", *extra)


def test_run_show_and_runs_show_text_exactly_and_no_control(tmp_path):
    proc = run_it(tmp_path)
    assert proc.returncode == 0, proc.stderr
    for out in (proc.stdout, proc.stderr):
        assert "\x1b" not in out and no_control(out)
    assert proc.stdout == "x[i] [/] \\x1b]52;c;aGk=\\x07done \\x1b]0;t\\x07\n"
    for text in BRACKETS + ["[bold]not bold[/] [/]", "clip:\\x1b]52;c;cm0gLXJmIH4=\\x07",
                            "link:\\x1b]8;;http://evil\\x07here", "up:\\x1b[5A\\x1b[2K", "title:\\x1b]0;owned\\x07",
                            "csi:\\x9b2J", "rlo:\\u202eabc", "I will look [at] it \\x1b[31mred\\x1b[0m."]:
        assert text in proc.stderr, text

    (run,) = [json.loads(line) for line in cli(tmp_path, "runs", "--json").stdout.splitlines()]
    shown = cli(tmp_path, "show", run["id"])
    assert shown.returncode == 0, shown.output
    assert "\x1b" not in shown.stdout and no_control(shown.stdout)
    for text in BRACKETS + ["[bold]not bold[/] [/]", "clip:\\x1b]52;c;cm0gLXJmIH4=\\x07", "title:\\x1b]0;owned"]:
        assert text in shown.stdout, text

    table = cli(tmp_path, "runs")
    assert "\x1b" not in table.stdout and no_control(table.stdout)
    assert TASK in table.stdout and "[m]" in table.stdout


def test_json_carries_the_answer_exactly_without_raw_control(tmp_path):
    proc = run_it(tmp_path, "--json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and no_control(proc.stdout)
    data = json.loads(proc.stdout)
    assert data["output"] == ANSWER
    assert "\x1b]52;c;cm0gLXJmIH4=\x07" in data["steps"][0]["observation"]


def test_a_task_that_closes_markup_does_not_crash_the_view_or_show(tmp_path):
    with ChatServer([chat(fenced("final_answer('[/]')"))]) as server:
        proc = codeact(tmp_path, "run", "[/] [/bold] [red", "--model", f"openai-compat:{server.url}#m",
                       "--sandbox", "process")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[/]\n"
    assert "[/] [/bold] [red" in proc.stderr and "MarkupError" not in proc.stderr
    (run,) = [json.loads(line) for line in cli(tmp_path, "runs", "--json").stdout.splitlines()]
    assert run["status"] == "success"
    shown = cli(tmp_path, "show", run["id"])
    assert shown.returncode == 0 and shown.exception is None
    assert "[/] [/bold] [red" in shown.stdout


def test_errors_and_hints_keep_their_brackets(tmp_path):
    # The missing-extra hint names an extra in brackets, which Rich markup used to eat.
    proc = codeact(tmp_path, "run", "hi", "--tool", "nosuch_[mod]:fn", "--sandbox", "process")
    assert proc.returncode == 2
    assert "nosuch_[mod]" in proc.stderr
    missing = codeact(tmp_path, "run", "hi", "--model", "litellm:gpt-4o", "--sandbox", "process")
    assert missing.returncode == 2
    assert "pip install 'codeact[litellm]'" in missing.stderr
