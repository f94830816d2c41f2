"""codeact vs smolagents, measured in one run on one machine: execution speed, per-step framework
overhead, import time, and system prompt size.

Run: .venv/bin/python benchmarks/vs_smolagents.py [--repeat 5] [--steps 20] [--parts 1,2,3,4]
Needs smolagents (`pip install 'codeact[bench-peers]'`). Every time is the best of --repeat runs. Prompt sizes are counted with the
embedded model's own tokenizer (llama.cpp, vocabulary only) when the weights are available,
otherwise in words (the table says which).

1. A CPU-bound action snippet in smolagents' `LocalPythonExecutor` (an AST interpreter), in
   codeact's default sandbox (a real CPython kernel in another process, reached over RPC), and
   in plain `exec` in this process (the floor).
2. Per-step framework overhead: each framework's agent driven by a zero-latency scripted model
   for N trivial steps; (time of an N+1-step run - time of a 1-step run) / N, so kernel start-up
   and other one-off costs are reported apart. codeact with its defaults (run log, compaction)
   and bare (both off).
3. `import` time of each package in a fresh interpreter.
4. The system prompt each agent sends with the same tools (the `shop` task set's six).
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

__all__ = ["main"]

SNIPPET = """
def sieve(n):
    flags = [True] * (n + 1)
    flags[0] = flags[1] = False
    for i in range(2, int(n ** 0.5) + 1):
        if flags[i]:
            for j in range(i * i, n + 1, i):
                flags[j] = False
    return sum(flags)

k = 0
for i in range(200_000):
    k = (k * 31 + i) % 1_000_003
result = sieve(100_000) + k
"""


def _best_time(fn: Callable[[], Any], repeat: int) -> float:
    """Best of `repeat`, as timeit advises: on a shared machine, slower runs measure the neighbours."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return min(samples)


# -- 1. executing one CPU-bound action ----------------------------------------------------------


def bench_execution(repeat: int) -> dict[str, float]:
    from smolagents.local_python_executor import LocalPythonExecutor

    from codeact.sandbox import default_sandbox

    namespace: dict[str, Any] = {}
    compiled = compile(SNIPPET, "<action>", "exec")
    plain = _best_time(lambda: exec(compiled, namespace), repeat)  # noqa: S102 - the baseline
    expected = namespace["result"]

    executor = LocalPythonExecutor(additional_authorized_imports=[])
    executor.send_tools({})

    def smol() -> None:
        executor(SNIPPET)
        assert executor.state["result"] == expected

    smol_s = _best_time(smol, repeat)

    sandbox = default_sandbox()
    sandbox.start({})
    try:
        sandbox.execute("x = 1")  # kernel warm

        def ours() -> None:
            run = sandbox.execute(SNIPPET + "\nresult", timeout=120)
            assert run.ok and run.result == repr(expected), run

        ours_s = _best_time(ours, repeat)
        kind = sandbox.kind
    finally:
        sandbox.close()
    return {"plain exec": plain, f"codeact sandbox ({kind})": ours_s, "smolagents LocalPythonExecutor": smol_s}


# -- 2. per-step overhead with a zero-latency model ---------------------------------------------


# codeact's defaults log every run (SQLite) and estimate prompt sizes for compaction; the "bare"
# rows turn both off to show what the loop itself costs.
_LOG = tempfile.mkdtemp(prefix="codeact-bench-")
DEFAULTS: dict[str, Any] = {"store": os.path.join(_LOG, "runs.db")}
BARE: dict[str, Any] = {"store": False, "compaction": None}


def _codeact_code_run(steps: int, options: dict[str, Any]) -> None:
    from codeact import CodeAgent
    from codeact.models import ScriptedModel

    replies = [f"Thought: step {i}.\n```python\nx{i} = {i} + 1\n```" for i in range(steps - 1)]
    replies.append("Thought: done.\n```python\nfinal_answer(1)\n```")
    result = CodeAgent(ScriptedModel(replies), max_steps=steps + 1, **options).run("count")
    assert result.success and len(result.steps) == steps, result


def _codeact_json_run(steps: int, options: dict[str, Any]) -> None:
    from codeact.agent.tool_calling_agent import ToolCallingAgent
    from codeact.bench.shop import get_stock
    from codeact.models import ModelReply, ScriptedModel, ToolCall

    replies = [ModelReply("", tool_calls=(ToolCall(f"c{i}", "get_stock", {"sku": "KB-100"}),)) for i in range(steps - 1)]
    replies.append(ModelReply("", tool_calls=(ToolCall("end", "final_answer", {"answer": 1}),)))
    result = ToolCallingAgent(ScriptedModel(replies), [get_stock], max_steps=steps + 1, **options).run("count")
    assert result.success and len(result.steps) == steps, result


def _smol_model(replies: list[Any]) -> Any:
    import smolagents

    class Scripted(smolagents.Model):
        def __init__(self) -> None:
            super().__init__(model_id="scripted")
            self.replies = list(replies)

        def generate(self, messages: Any, stop_sequences: Any = None, response_format: Any = None,
                     tools_to_call_from: Any = None, **kwargs: Any) -> Any:
            reply = self.replies.pop(0)
            usage = smolagents.TokenUsage(input_tokens=0, output_tokens=0)
            if isinstance(reply, str):
                return smolagents.ChatMessage(role=smolagents.MessageRole.ASSISTANT, content=reply, token_usage=usage)
            return smolagents.ChatMessage(role=smolagents.MessageRole.ASSISTANT, content="", tool_calls=[reply],
                                          token_usage=usage)

    return Scripted()


def _smol_code_run(steps: int) -> None:
    import smolagents

    replies = [f"Thought: step {i}.\n<code>\nx{i} = {i} + 1\n</code>" for i in range(steps - 1)]
    replies.append("Thought: done.\n<code>\nfinal_answer(1)\n</code>")
    agent = smolagents.CodeAgent(tools=[], model=_smol_model(replies), max_steps=steps + 1,
                                 verbosity_level=smolagents.LogLevel.OFF)
    result = agent.run("count", return_full_result=True)
    assert result.state == "success" and result.output == 1, result


def _smol_json_run(steps: int) -> None:
    import smolagents
    from smolagents.models import ChatMessageToolCall, ChatMessageToolCallFunction

    from codeact.bench._smolagents import to_smolagents_tool
    from codeact.bench.shop import get_stock

    def call(i: int, name: str, arguments: dict[str, Any]) -> Any:
        return ChatMessageToolCall(ChatMessageToolCallFunction(arguments, name), f"c{i}", "function")

    replies = [call(i, "get_stock", {"sku": "KB-100"}) for i in range(steps - 1)]
    replies.append(call(steps, "final_answer", {"answer": 1}))
    agent = smolagents.ToolCallingAgent(tools=[to_smolagents_tool(get_stock)], model=_smol_model(replies),
                                        max_steps=steps + 1, verbosity_level=smolagents.LogLevel.OFF)
    result = agent.run("count", return_full_result=True)
    assert result.state == "success" and result.output == 1, result


def bench_overhead(steps: int, repeat: int) -> dict[str, tuple[float, float]]:
    """{agent: (seconds for a 1-step run, seconds per extra step)}."""
    out = {}
    for name, run in [
        ("codeact CodeAgent", functools.partial(_codeact_code_run, options=DEFAULTS)),
        ("codeact CodeAgent, bare", functools.partial(_codeact_code_run, options=BARE)),
        ("smolagents CodeAgent", _smol_code_run),
        ("codeact ToolCallingAgent", functools.partial(_codeact_json_run, options=DEFAULTS)),
        ("codeact ToolCallingAgent, bare", functools.partial(_codeact_json_run, options=BARE)),
        ("smolagents ToolCallingAgent", _smol_json_run),
    ]:
        run(2)  # warm imports and caches
        one = _best_time(lambda run=run: run(1), repeat)
        many = _best_time(lambda run=run: run(steps + 1), repeat)
        out[name] = (one, (many - one) / steps)
    return out


# -- 3. import time ----------------------------------------------------------------------------


def bench_import(repeat: int) -> dict[str, float]:
    out = {}
    for module in ("codeact", "smolagents"):
        code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
        samples = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                        check=True).stdout) for _ in range(repeat)]
        out[module] = min(samples)
    return out


# -- 4. system prompt size ---------------------------------------------------------------------


def _counter() -> tuple[Callable[[str], int], str]:
    try:
        from llama_cpp import Llama

        from codeact.models._weights import ensure_weights

        vocab = Llama(str(ensure_weights("1.5b")), vocab_only=True, verbose=False)
        return (lambda text: len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=True)),
                "tokens (Qwen2.5-Coder tokenizer)")
    except Exception:  # noqa: BLE001 - no llama.cpp or weights here: fall back to words, and say so
        return (lambda text: len(text.split())), "words (no tokenizer available)"


def bench_prompts() -> tuple[dict[str, int], str]:
    import smolagents

    from codeact.agent.code_agent import CodeFormat
    from codeact.agent.tool_calling_agent import JsonFormat
    from codeact.bench._smolagents import to_smolagents_tool
    from codeact.bench.shop import TOOLS
    from codeact.tools.tool import to_tools

    count, unit = _counter()
    tools = to_tools(TOOLS)
    smol_tools = [to_smolagents_tool(t) for t in tools.values()]
    model = _smol_model([])
    prompts = {
        "codeact CodeAgent": CodeFormat(tools).system_prompt(),
        "smolagents CodeAgent": smolagents.CodeAgent(tools=smol_tools, model=model).initialize_system_prompt(),
        "codeact ToolCallingAgent (JSON in text)": JsonFormat(tools, mode="text").system_prompt(),
        "smolagents ToolCallingAgent": smolagents.ToolCallingAgent(tools=smol_tools, model=model)
        .initialize_system_prompt(),
    }
    return {name: count(text) for name, text in prompts.items()}, unit


# -- report ------------------------------------------------------------------------------------


def _table(title: str, rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |"

    return "\n".join([f"\n{title}", line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *map(line, rows)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--parts", default="1,2,3,4", help="which measurements to run, e.g. 2")
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",")}
    try:
        import smolagents
    except ImportError:
        sys.exit("this benchmark needs smolagents: pip install 'codeact[bench-peers]'")
    print(f"python {sys.version.split()[0]}, smolagents {smolagents.__version__}")

    if "1" in parts:
        _print_execution(args.repeat)
    if "2" in parts:
        _print_overhead(args.steps, args.repeat)
    if "3" in parts:
        _print_imports(args.repeat)
    if "4" in parts:
        _print_prompts()


def _print_execution(repeat: int) -> None:
    execution = bench_execution(repeat)
    floor = execution["plain exec"]
    print(_table(f"1. One CPU-bound action (best of {repeat})",
                 [(k, f"{v * 1000:.1f} ms", f"{v / floor:.2f}x") for k, v in execution.items()],
                 ("executor", "time", "vs plain exec")))


def _print_overhead(steps: int, repeat: int) -> None:
    overhead = bench_overhead(steps, repeat)
    rows = []
    for group in (("codeact CodeAgent", "codeact CodeAgent, bare", "smolagents CodeAgent"),
                  ("codeact ToolCallingAgent", "codeact ToolCallingAgent, bare", "smolagents ToolCallingAgent")):
        base = overhead[group[0]][1]
        for name in group:
            one, per = overhead[name]
            rows.append((name, f"{one * 1000:.1f} ms", f"{per * 1000:.2f} ms",
                         f"{per / base:.2f}x" if base > 0 else "n/a"))
    print(_table(f"2. Framework overhead, zero-latency scripted model ({steps} extra steps)", rows,
                 ("agent", "1-step run", "per extra step", "per step vs codeact")))


def _print_imports(repeat: int) -> None:
    imports = bench_import(repeat)
    print(_table("3. Import time in a fresh interpreter",
                 [(k, f"{v * 1000:.0f} ms", f"{v / imports['codeact']:.2f}x") for k, v in imports.items()],
                 ("import", "time", "vs codeact")))


def _print_prompts() -> None:
    sizes, unit = bench_prompts()
    rows = []
    for ours, theirs in (("codeact CodeAgent", "smolagents CodeAgent"),
                         ("codeact ToolCallingAgent (JSON in text)", "smolagents ToolCallingAgent")):
        rows += [(ours, str(sizes[ours]), "1.00x"), (theirs, str(sizes[theirs]), f"{sizes[theirs] / sizes[ours]:.2f}x")]
    print(_table(f"4. System prompt with the shop's 6 tools, in {unit}", rows, ("agent", "size", "vs codeact")))


if __name__ == "__main__":
    main()
