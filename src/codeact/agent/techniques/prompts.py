"""System prompt variants of the code agent, to be measured against the shipped template.

- "tools-first": the functions are listed before the instructions and the example, so a small
  model reads what it has before how to use it.
- "tool-example": the worked example calls a tool, prints its result, and answers in a second
  step from what it saw; one more rule says to take every fact from the tools.

Use one with `CodeAgent(prompt_template=prompt_variant("tool-example"))`.
"""

from __future__ import annotations

from codeact.agent.prompt import load_template
from codeact.errors import ConfigError

__all__ = ["PROMPT_VARIANTS", "prompt_variant"]

PROMPT_VARIANTS: dict[str, str] = {
    "default": "code_agent.txt",
    "tools-first": "code_agent_tools_first.txt",
    "tool-example": "code_agent_tool_example.txt",
}


def prompt_variant(name: str) -> str:
    """The text of a code-agent prompt variant, for `prompt_template=`."""
    if name not in PROMPT_VARIANTS:
        raise ConfigError(f"unknown prompt variant {name!r}; known: {', '.join(PROMPT_VARIANTS)}")
    return load_template(PROMPT_VARIANTS[name])
