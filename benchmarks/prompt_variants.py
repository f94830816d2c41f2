"""System prompt size of each code-agent prompt variant, per task set, next to smolagents' prompts.

Every token of a system prompt is paid on every step (DESIGN: prompts are short), so a prompt
variant's cost is measured here without a model: the embedded model's tokenizer counts the
system prompt each config sends with a task set's tools.

    python benchmarks/prompt_variants.py [--sets travel,records,shop]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from vs_smolagents import _counter, _smol_model  # noqa: E402  (the same tokenizer and stub model)


def prompts_for(taskset: str) -> dict[str, str]:
    import smolagents

    from codeact.agent.code_agent import CodeFormat
    from codeact.agent.techniques import PROMPT_VARIANTS, prompt_variant
    from codeact.agent.tool_calling_agent import JsonFormat
    from codeact.bench._smolagents import to_smolagents_tool
    from codeact.bench.tasks import load_taskset, load_tools

    tools = load_tools(load_taskset(taskset).tasks[0].tools)
    prompts = {f"codeact-code ({name})": CodeFormat(tools, template_text=prompt_variant(name)).system_prompt()
               for name in PROMPT_VARIANTS}
    prompts["codeact-json"] = JsonFormat(tools, mode="text").system_prompt()
    smol_tools = [to_smolagents_tool(t) for t in tools.values()]
    model = _smol_model([])
    prompts["smolagents-code"] = smolagents.CodeAgent(tools=smol_tools, model=model).initialize_system_prompt()
    prompts["smolagents-json"] = smolagents.ToolCallingAgent(tools=smol_tools, model=model).initialize_system_prompt()
    return prompts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="travel,records")
    args = parser.parse_args(argv)
    count, unit = _counter()
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    table = {s: {name: count(text) for name, text in prompts_for(s).items()} for s in sets}
    names = list(next(iter(table.values())))
    base = {s: table[s]["codeact-code (default)"] for s in sets}
    print(f"System prompt in {unit}; ratio against codeact-code's default prompt with the same tools\n")
    print("| config | " + " | ".join(sets) + " |")
    print("|---|" + "---|" * len(sets))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{table[s][name]:,} ({table[s][name] / base[s]:.2f}x)" for s in sets) + " |")


if __name__ == "__main__":
    main()
