"""The four layouts a conversation is written in, one JSON object per example.

- `openai`: OpenAI chat fine-tuning: `{"messages": [...], "tools": [...]}`, `weight` 0/1 on
  each assistant message.
- `sharegpt`: LLaMA-Factory's ShareGPT: `{"conversations": [{"from": "human"|"gpt", "value"}],
  "system": ..., "tools": "<json>"}` (observations are human turns: that is how a code agent
  sees them).
- `trl`: TRL's conversational form: `{"messages": [{"role", "content"}], "tools": [...]}`.
- `codeactinstruct`: CodeActInstruct's: `{"id", "conversations": [{"role", "content"}]}` with the
  code of each assistant turn in `<execute>...</execute>` and observations as user turns.
Formats without per-turn weights take the conversation as given: drop failed turns first
(`--failed-steps drop`) to keep them out of training.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from codeact.export.examples import Conversation

__all__ = ["FORMATS", "codeactinstruct", "openai", "sharegpt", "trl"]

_CODE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)


def openai(conv: Conversation) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for turn in conv.turns:
        message: dict[str, Any] = {"role": turn.role, "content": turn.content}
        if turn.role == "assistant":
            message["weight"] = int(turn.train)
        messages.append(message)
    row: dict[str, Any] = {"messages": messages}
    if conv.tools:
        row["tools"] = list(conv.tools)
    return row


def sharegpt(conv: Conversation) -> dict[str, Any]:
    system = "\n\n".join(t.content for t in conv.turns if t.role == "system")
    turns = [{"from": "gpt" if t.role == "assistant" else "human", "value": t.content}
             for t in conv.turns if t.role != "system"]
    row: dict[str, Any] = {"conversations": turns, "system": system}
    row["tools"] = json.dumps(list(conv.tools)) if conv.tools else ""
    return row


def trl(conv: Conversation) -> dict[str, Any]:
    row: dict[str, Any] = {"messages": [{"role": t.role, "content": t.content} for t in conv.turns]}
    if conv.tools:
        row["tools"] = list(conv.tools)
    return row


def codeactinstruct(conv: Conversation) -> dict[str, Any]:
    turns = []
    for t in conv.turns:
        content = t.content
        if t.role == "assistant":
            content = _CODE.sub(lambda m: f"<execute>\n{m.group(1).rstrip()}\n</execute>", content)
        turns.append({"role": t.role, "content": content})
    return {"id": conv.run_id, "conversations": turns}


FORMATS: dict[str, Callable[[Conversation], dict[str, Any]]] = {
    "openai": openai, "sharegpt": sharegpt, "trl": trl, "codeactinstruct": codeactinstruct,
}
