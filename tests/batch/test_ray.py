"""The batch on a real local Ray cluster (started here, 2 CPUs on 127.0.0.1), scripted models."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from codeact.batch import AgentConfig, run_batch
from codeact.batch.engine import batch_id_for
from codeact.batch.ray_engine import NAMESPACE, RESOURCE, node_store, worker_name
from codeact.batch.worker import find_run
from codeact.bench.tasks import Task
from codeact.runs.store import RunStore

STEP1 = "Thought: compute.\n```python\nx = eval({question})\n```"
SLOW = "Thought: wait.\n```python\nimport time\nif x == 21:\n    time.sleep(3)\ny = x\n```"
FINAL = "Thought: done.\n```python\nfinal_answer(x)\n```"
CONFIG = AgentConfig(model="scripted", replies=(STEP1, SLOW, FINAL), max_steps=5)
TASKS = [Task(f"t{i}", f"{i} * 7", i * 7) for i in range(5)]


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, resources={RESOURCE: 2}, include_dashboard=False, namespace=NAMESPACE,
             _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_a_worker_killed_mid_batch_leaves_no_task_run_twice_and_results_match_the_local_engine(
        cluster: None, tmp_path: Path) -> None:
    out = tmp_path / "ray"
    batch_id = batch_id_for(out)
    killed: list[str] = []

    def kill_the_slow_task_worker() -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not killed:
            if node_store(batch_id).exists():
                with RunStore(node_store(batch_id)) as store:
                    record = find_run(store, batch_id, "t3")
                if record is not None and record.steps >= 1:
                    time.sleep(0.5)  # inside step 2's sleep
                    name = record.meta["batch_worker"]
                    ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=False)
                    killed.append(name)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_slow_task_worker)
    killer.start()
    results = run_batch(TASKS, CONFIG, out=out, concurrency=2, ray=True, requests_per_second=1000)
    killer.join()
    assert killed and killed[0] in {worker_name(batch_id, 0), worker_name(batch_id, 1)}
    assert [(r.task_id, r.status, r.output, r.solved) for r in results] == [
        (t.id, "success", t.answer, True) for t in TASKS]
    by_id = {r.task_id: r for r in results}
    assert by_id["t3"].attempts == 2 and all(r.attempts == 1 for r in results if r.task_id != "t3")

    with RunStore(out / "runs.db") as store:  # the driver's store holds every run, once
        runs = store.runs(limit=None)
        assert sorted(r.meta["batch_task"] for r in runs) == [t.id for t in TASKS]
        assert all(r.status == "success" for r in runs)
        kinds = [e["kind"] for e in store.raw_events(by_id["t3"].run_id or "")]
    assert kinds.count("run_resumed") == 1
    assert kinds.count("model_replied") == 3  # steps paid for before the kill were not paid again
    assert kinds.count("run_finished") == 1
    rate = ray.get_actor("codeact-rate:scripted", namespace=NAMESPACE)
    assert ray.get(rate.count.remote()) >= 3 * len(TASKS)  # every model call went through the shared limit

    node_store(batch_id).unlink()
    local = run_batch(TASKS, CONFIG, out=tmp_path / "local", concurrency=2)
    assert all(a.same_outcome(b) for a, b in zip(results, local, strict=True))
