"""Compaction: old observations cut, older steps summarized, the log keeps everything."""

import itertools

import pytest

from codeact import CodeAgent
from codeact.agent.compaction import Compaction, Compactor, estimate_tokens
from codeact.errors import ConfigError
from codeact.models import ScriptedModel
from codeact.models.base import Message
from codeact.runs.store import RunStore
from codeact.sandbox.process import ProcessSandbox

HEAD = [Message("system", "You are an agent."), Message("user", "Task: count")]


def turn(i, observation):
    return (i, [Message("assistant", f"Thought: step {i}\n```python\nprint(data_{i})\n```"),
                Message("user", f"Observation:\n{observation}")])


def test_old_observations_are_cut_and_recent_ones_kept():
    compactor = Compactor(Compaction(observation_chars=200, keep_recent=2, max_tokens=None))
    turns = [turn(i, f"{i}" * 5000) for i in range(1, 5)]
    messages = compactor.prompt(HEAD, turns)
    observations = [m.content for m in messages if m.content.startswith("Observation")]
    assert [len(o) < 400 for o in observations] == [True, True, False, False]
    assert "characters cut" in observations[0]
    assert messages[:2] == HEAD
    assert all(m.role == "assistant" and "print(data_" in m.content for m in messages[2::2])


def test_older_steps_are_summarized_past_the_token_limit_and_stay_summarized():
    compactor = Compactor(Compaction(observation_chars=1000, keep_recent=2, max_tokens=600, digest_chars=60))
    turns = []
    sizes, prefixes = [], []
    for i in range(1, 9):
        turns.append(turn(i, f"result {i}: " + "x" * 900))
        messages = compactor.prompt(HEAD, turns)
        sizes.append(estimate_tokens(messages))
        prefixes.append(messages[1].content)
    assert compactor.summarized_steps > 0
    task = prefixes[-1]
    assert task.startswith("Task: count\n\nEarlier steps, summarized")
    assert "Step 1:" in task and "result 1" in task
    assert max(sizes) < 1500  # without compaction step 8 alone would be ~2,000
    # Alternation is kept: after the task message come assistant/user pairs.
    assert [m.role for m in messages[2:]] == ["assistant", "user"] * (len(messages[2:]) // 2)
    # Once summarized, a prefix stays put until the next batch is folded in.
    changes = sum(1 for a, b in itertools.pairwise(prefixes) if a != b)
    assert changes < len(prefixes) - 1


def test_policy_is_checked():
    with pytest.raises(ConfigError):
        Compaction(keep_recent=0)
    with pytest.raises(ConfigError):
        Compaction(max_tokens=10)


def code(src):
    return f"Thought: step.\n```python\n{src}\n```"


def ten_step_model():
    replies = [code(f"rows_{i} = ['row %d of batch {i}' % n for n in range(150)]\nprint(rows_{i})") for i in range(1, 10)]
    replies.append(code("final_answer(len(rows_1) + len(rows_9))"))
    return ScriptedModel(replies)


def run(compaction, store):
    model = ten_step_model()
    result = CodeAgent(model, sandbox=ProcessSandbox, compaction=compaction, max_steps=12, store=store).run("t")
    assert result.output == 300
    return result, model


def test_compaction_cuts_prompt_tokens_of_a_ten_step_run_and_the_log_keeps_everything(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    plain, plain_model = run(None, store)
    small, small_model = run(Compaction(max_tokens=3_000), store)
    assert len(plain.steps) == len(small.steps) == 10
    assert small.usage.prompt_tokens < plain.usage.prompt_tokens * 0.6
    # Later prompts stop growing with the step number.
    plain_sizes = [estimate_tokens(calls) for calls in plain_model.calls]
    small_sizes = [estimate_tokens(calls) for calls in small_model.calls]
    assert plain_sizes[-1] > 2.5 * plain_sizes[2]
    assert max(small_sizes) < 0.5 * max(plain_sizes)
    assert small_sizes[-1] < 1.5 * small_sizes[2]
    # The model saw truncated history, the log has every observation whole.
    observed = [e for e in store.events(small.run_id) if e.kind == "observed"]
    assert all("characters cut" not in e.observation for e in observed)
    assert "row 149 of batch 1" in observed[0].observation
