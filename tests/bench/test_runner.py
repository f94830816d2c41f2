"""The benchmark runner against a real chat-completions server: checking, resumption, reports."""

from __future__ import annotations

import json
import re
import threading

import pytest

from codeact.bench.model import BenchModel
from codeact.bench.report import render_markdown, summarize, write_report
from codeact.bench.runner import RESULTS_FILE, ResultsFile, run_bench
from codeact.bench.tasks import Task, load_taskset, load_tools, select_tasks
from codeact.errors import ConfigError
from tests.servers.chat_server import ChatServer, Recorded, Reply, chat

TASKS = (
    Task("t1", "What is 2 + 3?", 5),
    Task("t2", "What is 10 + 7?", 17),
    Task("t3", "What is 4 + 4?", 9),  # the scripted model answers 8: a wrong answer
)


def operands(request: Recorded) -> tuple[int, int]:
    """A and B of the "What is A + B?" a request asks."""
    question = next(m["content"] for m in request.json["messages"] if m["role"] == "user")
    a, b = map(int, re.findall(r"\d+", question)[:2])
    return a, b


def arithmetic(request: Recorded) -> Reply:
    """Answers "What is A + B?" correctly, in the format the asking agent config expects."""
    messages = request.json["messages"]
    a, b = operands(request)
    if messages[0]["content"].startswith("Answer the question"):  # no-agent
        return chat(f"Adding gives {a + b}.\nAnswer: {a + b}", usage=(20, 8))
    call = {"name": "final_answer", "arguments": {"answer": a + b}}
    return chat("Thought: easy.\n```json\n" + json.dumps(call) + "\n```", usage=(100, 20))


@pytest.fixture
def server():
    with ChatServer(default=arithmetic) as s:
        yield s


def bench_model(server) -> BenchModel:
    return BenchModel(f"openai-compat:{server.url}#test-model", label="scripted-server")


def posts(server) -> int:
    return sum(r.method == "POST" for r in server.requests)


def test_results_are_checked_and_written_per_task(server, tmp_path):
    seen = []
    results = run_bench("arith", TASKS, ["codeact-json", "no-agent"], bench_model(server), out_dir=tmp_path,
                        on_result=lambda r, resumed: seen.append((r.agent, r.task_id, resumed)))
    assert sorted((r.agent, r.task_id, r.solved) for r in results) == [
        ("codeact-json", "t1", True), ("codeact-json", "t2", True), ("codeact-json", "t3", False),
        ("no-agent", "t1", True), ("no-agent", "t2", True), ("no-agent", "t3", False)]
    wrong = next(r for r in results if r.task_id == "t3" and r.agent == "codeact-json")
    assert wrong.error_kind == "wrong_answer" and wrong.output == 8 and wrong.expected == 9
    assert wrong.prompt_tokens == 100 and wrong.completion_tokens == 20 and wrong.steps == 1
    lines = (tmp_path / RESULTS_FILE).read_text().splitlines()
    assert len(lines) == 6 and all(json.loads(line)["model"] == "scripted-server" for line in lines)
    assert all(not resumed for *_, resumed in seen)


def test_a_second_run_skips_finished_tasks(server, tmp_path):
    model = bench_model(server)
    run_bench("arith", TASKS[:2], ["codeact-json"], model, out_dir=tmp_path)
    calls_after_first = posts(server)
    seen = []
    results = run_bench("arith", TASKS, ["codeact-json"], model, out_dir=tmp_path,
                        on_result=lambda r, resumed: seen.append((r.task_id, resumed)))
    assert posts(server) == calls_after_first + 1  # only t3 ran
    assert sorted(seen) == [("t1", True), ("t2", True), ("t3", False)]
    assert len(results) == 3
    assert len((tmp_path / RESULTS_FILE).read_text().splitlines()) == 3


def test_a_torn_last_line_only_reruns_that_task(server, tmp_path):
    model = bench_model(server)
    run_bench("arith", TASKS[:2], ["no-agent"], model, out_dir=tmp_path)
    path = tmp_path / RESULTS_FILE
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n" + lines[1][:25])  # as if killed while writing
    before = posts(server)
    run_bench("arith", TASKS[:2], ["no-agent"], model, out_dir=tmp_path)
    assert posts(server) == before + 1
    assert len(ResultsFile(path).load()) == 2


def test_another_model_label_does_not_reuse_results(server, tmp_path):
    run_bench("arith", TASKS[:1], ["no-agent"], bench_model(server), out_dir=tmp_path)
    before = posts(server)
    other = BenchModel(f"openai-compat:{server.url}#test-model", label="another-model")
    run_bench("arith", TASKS[:1], ["no-agent"], other, out_dir=tmp_path)
    assert posts(server) == before + 1


def test_a_crashing_config_is_recorded_and_the_rest_go_on(tmp_path):
    broken = BenchModel("openai-compat:http://127.0.0.1:9/v1#m", label="nowhere",  # port 9: refused
                        options={"max_retries": 0})
    results = run_bench("arith", TASKS[:1], ["no-agent"], broken, out_dir=tmp_path)
    assert results[0].error_kind == "model_error" and not results[0].solved


def test_unknown_agent_configs_fail_before_any_work(server, tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'codeact-json'"):
        run_bench("arith", TASKS, ["codeact-jsn"], bench_model(server), out_dir=tmp_path)
    assert posts(server) == 0


def test_report_summarises_each_agent(server, tmp_path):
    results = run_bench("arith", TASKS, ["codeact-json", "no-agent"], bench_model(server), out_dir=tmp_path)
    summaries = summarize(results, ["codeact-json", "no-agent"])
    json_summary = summaries[0]
    assert (json_summary.agent, json_summary.solved, json_summary.tasks) == ("codeact-json", 2, 3)
    assert json_summary.prompt_tokens_per_task == 100
    assert json_summary.prompt_tokens_per_solved == 150  # 300 tokens spent for 2 solved
    assert json_summary.errors == {"wrong_answer": 1}
    assert 0.2 < json_summary.ci_low < 0.67 < json_summary.ci_high < 1.0
    table = render_markdown(summaries)
    assert "| codeact-json | 2/3 | 0 | 67% (" in table and "wrong_answer 1" in table
    md, js = write_report(tmp_path, summaries, {"taskset": "arith", "model": "scripted-server", "tasks": 3})
    assert json.loads(js.read_text())["agents"]["no-agent"]["solved"] == 2
    assert "| no-agent | 2/3" in md.read_text()


def test_shipped_task_sets_load_and_sample_reproducibly():
    gsm8k = load_taskset("gsm8k")
    assert len(gsm8k.tasks) == 100 and all(isinstance(t.answer, (int, float)) for t in gsm8k.tasks)
    assert select_tasks(gsm8k.tasks, limit=5, seed=1) == select_tasks(gsm8k.tasks, limit=5, seed=1)
    assert select_tasks(gsm8k.tasks, limit=5, seed=1) != select_tasks(gsm8k.tasks, limit=5, seed=2)
    assert select_tasks(gsm8k.tasks, limit=3) == gsm8k.tasks[:3]
    assert set(load_tools("codeact.bench.shop")) >= {"search_products", "get_price", "convert_currency"}


def test_bad_task_files_say_what_is_wrong(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "question": "q"}\n')
    with pytest.raises(ConfigError, match="bad.jsonl:1: a task needs answer"):
        load_taskset(path)
    path.write_text('{"id": "a", "question": "q", "answer": 1}\n{"id": "a", "question": "q", "answer": 1}\n')
    with pytest.raises(ConfigError, match="duplicate task id 'a'"):
        load_taskset(path)
    with pytest.raises(ConfigError, match="neither a shipped set"):
        load_taskset("no-such-set")


def test_a_model_call_that_times_out_is_its_own_failure_kind(tmp_path):
    with ChatServer([Reply(delay=5, body={})] * 2) as server:
        model = BenchModel(f"openai-compat:{server.url}#m", label="silent", options={"timeout": 0.5, "max_retries": 1})
        settled = []
        model.settle = lambda: settled.append(1)
        (result,) = run_bench("arith", TASKS[:1], ["codeact-json"], model, out_dir=tmp_path)
    assert result.error_kind == "model_timeout" and result.status == "model_error"
    assert result.model_timeouts == 2  # the first, retried after settle; the second ended the run
    assert settled == [1]
    summary = summarize([result], ["codeact-json"])[0]
    assert summary.errors == {"model_timeout": 1} and summary.model_timeouts == 2


def test_every_config_gets_the_same_reply_cap(server, tmp_path):
    model = BenchModel(f"openai-compat:{server.url}#test-model", label="capped", max_tokens=333)
    run_bench("arith", TASKS[:1], ["codeact-json", "no-agent"], model, out_dir=tmp_path)
    assert {r.json["max_tokens"] for r in server.requests if r.method == "POST"} == {333}


def test_concurrency_runs_that_many_tasks_at_once_on_the_batch_pool(tmp_path):
    together = threading.Barrier(2, timeout=60)  # passes only when two requests are in flight at once

    def both_at_once(request: Recorded) -> Reply:
        together.wait()
        return arithmetic(request)

    with ChatServer(default=both_at_once) as server:
        results = run_bench("arith", TASKS[:2], ["no-agent"], bench_model(server), out_dir=tmp_path, concurrency=2)
    assert sorted((r.task_id, r.solved) for r in results) == [("t1", True), ("t2", True)]
    rows = ResultsFile(tmp_path / RESULTS_FILE).load()
    assert set(rows) == {("arith", "scripted-server", "no-agent", "t1"), ("arith", "scripted-server", "no-agent", "t2")}


def looks_then_answers_in_words(request: Recorded) -> Reply:
    """The code agent prints, and answers in words only when the step limit asks for an answer."""
    a, b = operands(request)
    if "step limit" in request.json["messages"][-1]["content"]:
        return chat(f"The sum is {a + b}.", usage=(100, 10))
    return chat(f"Thought: look first.\n```python\nprint({a}, {b})\n```", usage=(100, 10))


def looks_until_the_end(request: Recorded) -> Reply:
    """The code agent prints the sum every step, the last one included, and never calls final_answer."""
    a, b = operands(request)
    return chat(f"```python\nprint({a + b})\n```", usage=(100, 10))


def test_an_answer_in_words_at_the_step_limit_counts_like_smolagents_summary(tmp_path):
    with ChatServer(default=looks_then_answers_in_words) as server:
        model = BenchModel(f"openai-compat:{server.url}#m", label="scripted", sandbox="process")
        results = run_bench("arith", TASKS[:1], ["codeact-code"], model, out_dir=tmp_path, max_steps=1)
    [result] = results
    assert (result.status, result.answered, result.solved, result.steps) == ("max_steps", True, True, 2)
    assert result.output == "The sum is 5."
    [summary] = summarize(results, ["codeact-code"])
    assert (summary.solved, summary.solved_at_limit) == (1, 1)
    assert "| codeact-code | 1/1 | 1 | 100% (" in render_markdown([summary])


def test_printed_output_at_the_step_limit_is_not_an_answer(tmp_path):
    with ChatServer(default=looks_until_the_end) as server:
        model = BenchModel(f"openai-compat:{server.url}#m", label="scripted", sandbox="process")
        results = run_bench("arith", TASKS[:1], ["codeact-code"], model, out_dir=tmp_path, max_steps=1)
    [result] = results
    assert (result.status, result.answered, result.solved) == ("max_steps", False, False)
    assert result.output == "5" and result.error_kind == "max_steps"
    [summary] = summarize(results, ["codeact-code"])
    assert (summary.solved, summary.solved_at_limit) == (0, 0)
