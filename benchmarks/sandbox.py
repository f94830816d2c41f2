"""What isolation costs: cold start, warm session, per-exec and tool round trips, CPU speed, sessions held.

Run: .venv/bin/python benchmarks/sandbox.py [--sessions 200] [--runs 500]
Everything is measured in one run on one machine; the isolated `LocalSandbox` is compared with
the unisolated `ProcessSandbox` and with plain `exec` in this process, so ratios compare like
with like. Memory is the sessions' PSS (proportional set size: shared pages split between the
processes sharing them), read from /proc/<pid>/smaps_rollup.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import time

from codeact.sandbox import zygote as zygote_module
from codeact.sandbox.local import LocalSandbox
from codeact.sandbox.probe import probe
from codeact.sandbox.process import ProcessSandbox
from codeact.sandbox.session import SessionProcess
from codeact.tools import tool

__all__ = ["main"]

CPU_BOUND = """
def sieve(n):
    flags = [True] * (n + 1)
    flags[0] = flags[1] = False
    for i in range(2, int(n ** 0.5) + 1):
        if flags[i]:
            for j in range(i * i, n + 1, i):
                flags[j] = False
    return sum(flags)

total = 0
for _ in range(8):
    total += sieve(200_000)
k = 0
for i in range(300_000):
    k = (k * 31 + i) % 1_000_003
"""
TOOL_CALLS = 200


@tool
def echo(value: int) -> int:
    """Return the value."""
    return value


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def pss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def host_pid(session: SessionProcess) -> int:
    with open(f"/proc/self/fdinfo/{session.pidfd}") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Pid:"))


def mem_available_kib() -> int:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))


def cold_start() -> float:
    zygote_module.shutdown_all()
    started = time.perf_counter()
    with LocalSandbox() as sb:
        sb.start({})
        assert sb.execute("1").result == "1"
    return time.perf_counter() - started


def warm_session() -> float:
    started = time.perf_counter()
    sb = LocalSandbox()
    sb.start({})
    ready = time.perf_counter() - started
    sb.close()
    time.sleep(0.01)  # let the pool refill, as it would between real runs
    return ready


def on_demand_session() -> float:
    sb = LocalSandbox(tmp_size=64 << 20)  # not the pool's settings: forked on demand
    started = time.perf_counter()
    sb.start({})
    ready = time.perf_counter() - started
    sb.close()
    return ready


def exec_round_trip(sandbox: LocalSandbox | ProcessSandbox, runs: int) -> float:
    for _ in range(50):
        sandbox.execute("pass")
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        sandbox.execute("pass")
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def tool_round_trip(sandbox: LocalSandbox | ProcessSandbox) -> float:
    code = f"for i in range({TOOL_CALLS}):\n    echo(i)"
    sandbox.execute(code)
    best = min(sandbox.execute(code).duration_s for _ in range(5))
    return best / TOOL_CALLS


def cpu_times(local: LocalSandbox, process: ProcessSandbox, rounds: int) -> tuple[float, float, float]:
    """Best of `rounds` for plain exec, local and process, interleaved so load changes hit all three."""
    plain, in_local, in_process = [], [], []
    for _ in range(rounds):
        started = time.perf_counter()
        exec(compile(CPU_BOUND, "<bench>", "exec"), {})  # noqa: S102 - the baseline
        plain.append(time.perf_counter() - started)
        for sandbox, samples in ((local, in_local), (process, in_process)):
            run = sandbox.execute(CPU_BOUND)
            assert run.ok, run.error
            samples.append(run.duration_s)
    return min(plain), min(in_local), min(in_process)


def host_cpu(sandbox: LocalSandbox, *, idle_s: float, steps: int) -> tuple[float, float]:
    """Host CPU seconds per wall second of an open, idle sandbox; and host CPU seconds per step.

    The host's own CPU (`time.process_time`, all its threads): what the sandbox's threads (disk
    quota, zygote reader, egress) and the bridge cost the machine besides the kernel's work.
    """
    sandbox.execute("pass")
    time.sleep(0.2)
    cpu, wall = time.process_time(), time.perf_counter()
    time.sleep(idle_s)
    idle = (time.process_time() - cpu) / (time.perf_counter() - wall)
    cpu = time.process_time()
    for _ in range(steps):
        sandbox.execute("pass")
    return idle, (time.process_time() - cpu) / steps


def zygote_chain(outer: int) -> list[int]:
    """bwrap, bwrap's init inside the pid namespace, and the zygote: each the first child of the last."""
    chain = [outer]
    for _ in range(2):
        try:
            with open(f"/proc/{chain[-1]}/task/{chain[-1]}/children") as f:
                children = f.read().split()
        except OSError:
            break
        if not children:
            break
        chain.append(int(children[0]))
    return chain


def hold_sessions(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8 * count + 256)), hard))
    gc.collect()
    available_before = mem_available_kib()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    boxes: list[LocalSandbox] = []
    started = time.perf_counter()
    try:
        for i in range(count):
            sb = LocalSandbox(timeout=60)
            sb.start({})
            run = sb.execute(f"data = list(range(1000)); me = {i}")
            assert run.ok, run.error
            boxes.append(sb)
        elapsed = time.perf_counter() - started
        assert all(sb.execute("me").result == str(i) for i, sb in enumerate(boxes))
        sessions = [sb._client.kernel for sb in boxes]
        pss = [pss_kib(host_pid(s)) for s in sessions if isinstance(s, SessionProcess)]
        zygote = boxes[0]._zygote
        assert zygote is not None
        zygote_pss = sum(pss_kib(p) for p in zygote_chain(zygote._process.pid))
        used = available_before - mem_available_kib()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"sessions held at once      {len(boxes):5d}  (all answered; started in {elapsed:.2f} s, "
              f"{elapsed / count * 1000:.1f} ms each)")
        print(f"  PSS per session          {statistics.mean(pss) / 1024:8.2f} MiB mean, "
              f"{max(pss) / 1024:.2f} MiB max; all sessions {sum(pss) / 1024:.0f} MiB")
        print(f"  zygote + bwrap PSS       {zygote_pss / 1024:8.2f} MiB")
        print(f"  host RSS growth          {(rss_after - rss_before) / 1024:8.2f} MiB")
        print(f"  MemAvailable drop        {used / 1024:8.0f} MiB  (whole machine, includes others' activity)")
    finally:
        for sb in boxes:
            sb.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--cpu-rounds", type=int, default=9)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds an open sandbox is left idle")
    args = parser.parse_args()

    started = time.perf_counter()
    report = probe(refresh=True)
    probe_s = time.perf_counter() - started
    if not report.usable:
        raise SystemExit(f"the isolated sandbox cannot run here: {report.missing}")
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; root={report.running_as_root}; "
          f"bwrap {report.bwrap_version}; Landlock ABI {report.landlock_abi}")
    print(f"probe (once per process)     {ms(probe_s)}")
    colds = [cold_start() for _ in range(3)]
    print(f"cold start (zygote + session + first result), median of 3 {ms(statistics.median(colds))}")
    zygote_module.shutdown_all()
    with LocalSandbox(preload=("numpy",)) as sb:
        started = time.perf_counter()
        sb.start({})
        sb.execute("import numpy")
        numpy_cold = time.perf_counter() - started
    print(f"cold start with preload=('numpy',)                      {ms(numpy_cold)}")
    warm = [warm_session() for _ in range(40)]
    print(f"warm session ready (pooled), median of 40               {ms(statistics.median(warm))}"
          f"  (min {ms(min(warm)).strip()})")
    demand = [on_demand_session() for _ in range(20)]
    print(f"new session forked on demand, median of 20              {ms(statistics.median(demand))}")

    with LocalSandbox(timeout=300) as local, ProcessSandbox(timeout=300) as process:
        local.start({"echo": echo})
        process.start({"echo": echo})
        local_exec, process_exec = exec_round_trip(local, args.runs), exec_round_trip(process, args.runs)
        print(f"per-exec round trip (median of {args.runs})  local {ms(local_exec)}   process {ms(process_exec)}")
        local_tool, process_tool = tool_round_trip(local), tool_round_trip(process)
        print(f"tool round trip                   local {ms(local_tool)}   process {ms(process_tool)}")
        idle, per_step = host_cpu(local, idle_s=args.idle, steps=args.runs)
        print(f"host CPU of an idle open sandbox  {idle * 1000:8.2f} ms per s ({idle:.2%} of a core, {args.idle:g} s)")
        print(f"host CPU per step ('pass')        {ms(per_step)}")
        plain, local_cpu, process_cpu = cpu_times(local, process, args.cpu_rounds)
        print(f"CPU-bound snippet: plain exec {ms(plain)}; local {local_cpu / plain:.3f}x, "
              f"process {process_cpu / plain:.3f}x (best of {args.cpu_rounds})")
    hold_sessions(args.sessions)


if __name__ == "__main__":
    main()
