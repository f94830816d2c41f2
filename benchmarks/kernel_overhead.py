"""What the kernel costs: per-step round trip, tool round trip, and CPU-bound speed vs plain exec.

Run: .venv/bin/python benchmarks/kernel_overhead.py [--runs 2000]
Everything is measured in one run on one machine, so the ratios compare like with like.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from codeact.sandbox.process import ProcessSandbox
from codeact.tools import tool

__all__ = ["main"]

SIEVE = """
def sieve(n):
    flags = [True] * (n + 1)
    flags[0] = flags[1] = False
    for i in range(2, int(n ** 0.5) + 1):
        if flags[i]:
            for j in range(i * i, n + 1, i):
                flags[j] = False
    return sum(flags)

def work():
    total = 0
    for _ in range(REPEAT):
        total += sieve(200_000)
    k = 0
    for i in range(300_000):
        k = (k * 31 + i) % 1_000_003
    return total + k

result = work()
"""


@tool
def noop() -> None:
    """Do nothing."""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed_steps(sandbox: ProcessSandbox, code: str, runs: int) -> list[float]:
    for _ in range(50):  # warm up
        sandbox.execute(code)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run = sandbox.execute(code)
        samples.append(time.perf_counter() - started)
        assert run.ok, run.error
    return samples


def cpu_seconds_in_process(code: str) -> float:
    namespace: dict = {}
    started = time.perf_counter()
    exec(compile(code, "<bench>", "exec"), namespace)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--cpu-rounds", type=int, default=5)
    args = parser.parse_args()

    with ProcessSandbox(timeout=120) as sandbox:
        started = time.perf_counter()
        sandbox.start({"noop": noop})
        start_s = time.perf_counter() - started

        step = timed_steps(sandbox, "pass", args.runs)
        assign = timed_steps(sandbox, "x = 1", args.runs)
        calls = 100
        tool_steps = timed_steps(sandbox, f"for _ in range({calls}):\n    noop()", max(args.runs // 10, 20))
        per_call = [(s - statistics.median(step)) / calls for s in tool_steps]

        # Size the CPU snippet to 0.25-0.5 s here, then alternate kernel and in-process runs.
        repeat = 1
        while cpu_seconds_in_process(SIEVE.replace("REPEAT", str(repeat))) < 0.25 and repeat < 64:
            repeat *= 2
        code = SIEVE.replace("REPEAT", str(repeat))
        sandbox.execute(code)
        kernel_s, local_s = [], []
        for _ in range(args.cpu_rounds):
            run = sandbox.execute(code)
            assert run.ok, run.error
            kernel_s.append(run.duration_s)
            local_s.append(cpu_seconds_in_process(code))

    ms = 1000.0
    print(f"python {sys.version.split()[0]}, {args.runs} runs per figure")
    print(f"kernel start (spawn + hello + tools):  {start_s * ms:8.2f} ms")
    print(
        f"step round trip `pass`:  median {statistics.median(step) * ms:.3f} ms   p95 {percentile(step, 0.95) * ms:.3f} ms"
    )
    print(
        f"step round trip `x = 1`: median {statistics.median(assign) * ms:.3f} ms   p95 {percentile(assign, 0.95) * ms:.3f} ms"
    )
    print(
        f"tool round trip (no-op): median {statistics.median(per_call) * ms:.3f} ms   "
        f"p95 {percentile(per_call, 0.95) * ms:.3f} ms   (from {calls} calls per step)"
    )
    k, p = statistics.median(kernel_s), statistics.median(local_s)
    print(
        f"CPU-bound snippet: kernel {k:.3f} s, plain exec here {p:.3f} s -> kernel speed {p / k:.2f}x of plain exec"
    )


if __name__ == "__main__":
    main()
