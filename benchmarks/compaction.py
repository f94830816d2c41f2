"""Prompt tokens per task with and without compaction, on a 10-step scripted task.

Run: .venv/bin/python benchmarks/compaction.py

The task is a small data analysis done in ten steps, each printing what a model would print
(tables, lists, summaries: 1-4 KB per step), run in the real kernel. The model is scripted, so
every configuration does exactly the same work; only what the model is sent differs. Tokens
are counted with the embedded model's own tokenizer (Qwen2.5) when its weights are installed,
else estimated at four characters per token. All configurations run in this one process.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from codeact import CodeAgent
from codeact.agent.compaction import Compaction, estimate_tokens
from codeact.models.base import Message, Model, ModelReply, ToolSpec, Usage
from codeact.sandbox.process import ProcessSandbox

__all__ = ["main"]

STEPS = [
    """\
import random
random.seed(7)
cities = ['Rome', 'Paris', 'Oslo', 'Lima', 'Cairo', 'Delhi', 'Tokyo', 'Quito']
rows = [{'id': i, 'city': random.choice(cities), 'amount': round(random.uniform(5, 500), 2),
         'day': random.randint(1, 28)} for i in range(400)]
print(rows[:40])""",
    """\
by_city = {}
for r in rows:
    by_city.setdefault(r['city'], []).append(r['amount'])
for c, v in sorted(by_city.items()):
    print(c, len(v), sorted(v)[:12])""",
    """\
totals = {c: round(sum(v), 2) for c, v in by_city.items()}
for r in rows[40:90]:
    print(r)
print(totals)""",
    """\
by_day = {}
for r in rows:
    by_day[r['day']] = by_day.get(r['day'], 0) + r['amount']
for d in sorted(by_day):
    print(f'day {d:2d}: {by_day[d]:9.2f} ' + '#' * int(by_day[d] // 100))""",
    """\
big = [r for r in rows if r['amount'] > 400]
print(len(big))
for r in big:
    print(r)""",
    """\
import statistics
for c, v in sorted(by_city.items()):
    print(c, 'mean', round(statistics.mean(v), 2), 'median', round(statistics.median(v), 2), 'stdev', round(statistics.stdev(v), 2), 'quartiles', [round(q, 1) for q in statistics.quantiles(v)])""",
    """\
pairs = sorted(((a, b, round(totals[a] - totals[b], 2)) for a in totals for b in totals if a < b), key=lambda p: -abs(p[2]))
for p in pairs:
    print(p)""",
    """\
weekly = {}
for r in rows:
    weekly.setdefault((r['city'], (r['day'] - 1) // 7), []).append(r['amount'])
for k in sorted(weekly):
    print(k, round(sum(weekly[k]), 2), len(weekly[k]))""",
    """\
ranking = sorted(totals.items(), key=lambda kv: -kv[1])
for i, (c, t) in enumerate(ranking, 1):
    print(i, c, t, [r['id'] for r in rows if r['city'] == c][:25])""",
    """\
final_answer({'top_city': ranking[0][0], 'top_total': ranking[0][1], 'rows': len(rows)})""",
]


def step_reply(i: int, code: str) -> str:
    return f"Thought: step {i} of the analysis.\n```python\n{code}\n```"


class CountingModel(Model):
    """Replays the scripted replies and reports usage counted with a real tokenizer."""

    def __init__(self, replies: Sequence[str], count: Callable[[str], int], name: str = "scripted") -> None:
        self.replies = list(replies)
        self.count = count
        self.name = name
        self.prompts: list[int] = []

    def complete(self, messages: Sequence[Message], *, stop: Sequence[str] | None = None,
                 tools: Sequence[ToolSpec] | None = None) -> ModelReply:
        # ChatML, as Qwen sees it: <|im_start|>role\ncontent<|im_end|>\n per message.
        prompt = sum(self.count(m.content) + 5 for m in messages) + 3
        self.prompts.append(prompt)
        text = self.replies[len(self.prompts) - 1]
        return ModelReply(text, Usage(prompt, self.count(text)), finish_reason="stop")


def tokenizer() -> tuple[Callable[[str], int], str]:
    try:
        from llama_cpp import Llama

        from codeact.models._weights import weights_path

        path = weights_path("1.5b")
        if not path.exists():
            raise FileNotFoundError(path)
        vocab = Llama(model_path=str(path), vocab_only=True, verbose=False)
        return (lambda text: len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False)),
                "Qwen2.5 tokenizer")
    except Exception:  # noqa: BLE001 - any missing piece: fall back to the estimate
        return (lambda text: estimate_tokens([Message("user", text)]) - 4), "estimate (4 chars/token)"


def run(compaction: Compaction | None, count: Callable[[str], int]) -> tuple[int, int, list[int], object]:
    replies = [step_reply(i + 1, code) for i, code in enumerate(STEPS)]
    model = CountingModel(replies, count)
    agent = CodeAgent(model, sandbox=ProcessSandbox, compaction=compaction, max_steps=12, store=False)
    result = agent.run("Which city has the largest total amount in the generated sales data?")
    if result.status != "success" or len(result.steps) != len(STEPS):
        sys.exit(f"benchmark run failed: {result.status} {result.error}")
    return result.usage.prompt_tokens, max(model.prompts), model.prompts, result.output


def main(argv: Sequence[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    count, how = tokenizer()
    configs: list[tuple[str, Compaction | None]] = [
        ("off (every message verbatim)", None),
        ("default: Compaction()", Compaction()),
        ("Compaction(max_tokens=3000)", Compaction(max_tokens=3_000)),
        ("Compaction(max_tokens=2000, observation_chars=500)", Compaction(max_tokens=2_000, observation_chars=500)),
    ]
    print(f"10-step task, real kernel; tokens counted with: {how}\n")
    print(f"{'compaction':52} {'prompt tokens/task':>18} {'largest prompt':>15} {'vs off':>7}")
    baseline = None
    outputs = set()
    for label, policy in configs:
        total, largest, per_step, output = run(policy, count)
        outputs.add(repr(output))
        baseline = baseline or total
        print(f"{label:52} {total:18,} {largest:15,} {total / baseline:7.2f}")
        print(f"{'':52} per step: {', '.join(f'{p:,}' for p in per_step)}")
    assert len(outputs) == 1, "every configuration must reach the same answer"
    print(f"\nanswer (all configurations): {outputs.pop()}")


if __name__ == "__main__":
    main()
