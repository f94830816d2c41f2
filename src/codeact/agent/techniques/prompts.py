"""System prompt variants of the code agent, to be measured against the shipped template.

- "tools-first": the functions are listed before the instructions and the example, so a small
  model reads what it has before how to use it.
- "tool-example": the worked example calls a tool, prints its result, and answers in a second
  step from what it saw; one more rule says to take every fact from the tools.
- "tools-compact": each tool as one bullet (signature: summary; arguments) instead of a Python
  `def` with its docstring; a small model shown `def` blocks tends to copy them into its code,
  hundreds of tokens a step (the loop then strips the copies again).
- "units": the shipped template with one more rule: values from the functions carry a unit or
  currency, to be converted to what the task asks before answering (the 1.5B answered hotel rates
  in CHF and INR to questions asking EUR, having printed the `currency` field).
- "example-only": the shipped template without its empty "```python # your code```" block: the reply
  format is shown by the worked example alone (the 1.5B sent that empty block back as its action,
  four steps running in one `records` run).

Use one with `CodeAgent(prompt_template=prompt_variant("tool-example"))`.
"""

from __future__ import annotations

from collections.abc import Mapping

from codeact.agent.prompt import load_template
from codeact.errors import ConfigError
from codeact.tools.tool import Tool

__all__ = ["PROMPT_VARIANTS", "prompt_variant", "render_tool_lines"]

PROMPT_VARIANTS: dict[str, str] = {
    "default": "code_agent.txt",
    "tools-first": "code_agent_tools_first.txt",
    "tool-example": "code_agent_tool_example.txt",
    "tools-compact": "code_agent_tools_compact.txt",
    "units": "code_agent_units.txt",
    "example-only": "code_agent_example_only.txt",
}


def prompt_variant(name: str) -> str:
    """The text of a code-agent prompt variant, for `prompt_template=`."""
    if name not in PROMPT_VARIANTS:
        raise ConfigError(f"unknown prompt variant {name!r}; known: {', '.join(PROMPT_VARIANTS)}")
    return load_template(PROMPT_VARIANTS[name])


def render_tool_lines(tools: Mapping[str, Tool]) -> str:
    """Each tool as one bullet: `- name(args) -> type: summary (args: a: what; b: what)`.

    Fills a template's `{tool_lines}`; tools with `in_prompt = False` are left out, as in `{tools}`.
    """
    lines = []
    for t in tools.values():
        if getattr(t, "in_prompt", True) is False:
            continue
        summary = " ".join(t.summary.split())
        _, _, args = t.docstring().partition("Args:")
        described = "; ".join(" ".join(line.split()).rstrip(".") for line in args.strip().splitlines() if line.strip())
        lines.append(f"- {t.python_signature()}: {summary}" + (f" (args: {described})" if described else ""))
    return "\n".join(lines)
