"""A multi-step scripted run, executed as its own process so a test can SIGKILL it.

    python crash_script.py run CALLS_FILE GO_FILE        -> prints the run id, then runs
    python crash_script.py resume RUN_ID CALLS_FILE GO_FILE

The tool appends each call to CALLS_FILE, so the test can see which tools ran, in which
process. Step 3 waits in the kernel until GO_FILE exists: the test kills the process there.
"""

import sys

from codeact import CodeAgent, tool
from codeact.models import ScriptedModel
from codeact.runs.events import RunStarted
from codeact.sandbox.process import ProcessSandbox


def code(src: str) -> str:
    return f"Thought: next step.\n```python\n{src}\n```"


def make_tool(calls_file: str):
    @tool
    def lookup(key: str) -> int:
        """A value for a key; logs the call to a file."""
        with open(calls_file, "a") as f:
            f.write(key + "\n")
        return {"a": 1, "b": 20, "c": 300, "d": 4000}[key]

    return lookup


def replies(go_file: str) -> list[str]:
    wait = f"import os, time\nwhile not os.path.exists({go_file!r}):\n    time.sleep(0.02)"
    return [
        code("a = lookup('a')\nprint('a is', a)"),
        code("b = lookup('b')\nprint('b is', b)"),
        code(f"c = lookup('c')\n{wait}\nprint('c is', c)"),
        code("final_answer(a + b + c + lookup('d'))"),
    ]


def main() -> None:
    mode = sys.argv[1]
    if mode == "run":
        calls_file, go_file = sys.argv[2:4]
        agent = CodeAgent(ScriptedModel(replies(go_file)), [make_tool(calls_file)], sandbox=ProcessSandbox)
        for event in agent.run("add up a, b, c and d", stream=True):
            if isinstance(event, RunStarted):
                print(event.run_id, flush=True)
    else:
        run_id, calls_file, go_file = sys.argv[2:5]
        # Steps 1-3 come from the log: the model only has to give step 4's reply.
        agent = CodeAgent(ScriptedModel(replies(go_file)[3:]), [make_tool(calls_file)], sandbox=ProcessSandbox)
        result = agent.resume(run_id)
        print(result.status, result.output, flush=True)


if __name__ == "__main__":
    main()
