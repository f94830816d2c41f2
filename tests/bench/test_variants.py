"""codeact-code variants (bench.variants) through the real runner and a real chat-completions server."""

from __future__ import annotations

from codeact.bench.agents import AGENT_CONFIGS
from codeact.bench.model import BenchModel
from codeact.bench.runner import run_bench
from codeact.bench.tasks import load_taskset
from codeact.bench.variants import VARIANTS
from tests.servers.chat_server import ChatServer, Recorded, Reply, chat

BLIND = "Thought: go.\n```python\nf = find_flights('LIS', 'OSL')\nfinal_answer(f[0]['flight'])\n```"


def blind_then_same(request: Recorded) -> Reply:
    """Always answers in one go, without looking: what a small model often does."""
    return chat(BLIND, usage=(300, 30))


def test_every_variant_is_a_bench_config() -> None:
    assert set(VARIANTS) <= set(AGENT_CONFIGS)
    assert {"codeact-code+repeatguard", "codeact-code+verify", "codeact-code+toolexample"} <= set(VARIANTS)


def test_the_verify_variant_sends_a_blind_answer_back_and_the_plain_agent_does_not(tmp_path) -> None:
    task = next(t for t in load_taskset("travel").tasks if t.id == "travel-fare-01")
    with ChatServer(default=blind_then_same) as server:
        model = BenchModel(f"openai-compat:{server.url}#m", label="scripted", sandbox="process")
        results = run_bench("travel", [task], ["codeact-code", "codeact-code+verify"], model, out_dir=tmp_path)
        prompts = [r.json["messages"][0]["content"] for r in server.requests if r.method == "POST"]
    by_agent = {r.agent: r for r in results}
    assert by_agent["codeact-code"].steps == 1 and by_agent["codeact-code+verify"].steps == 2
    assert by_agent["codeact-code"].output == "TP1204" and not by_agent["codeact-code"].solved
    assert all("def find_flights" in p for p in prompts)


def test_the_tool_example_variant_sends_its_own_prompt(tmp_path) -> None:
    task = load_taskset("travel").tasks[0]
    with ChatServer(default=blind_then_same) as server:
        model = BenchModel(f"openai-compat:{server.url}#m", label="scripted", sandbox="process")
        run_bench("travel", [task], ["codeact-code+toolexample"], model, out_dir=tmp_path)
        system = next(r.json["messages"][0]["content"] for r in server.requests if r.method == "POST")
    assert 'get_city_facts("Lisbon")' in system and "def convert_currency" in system
