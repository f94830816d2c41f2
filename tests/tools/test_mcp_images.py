"""Image content from a real MCP server (tests/mcp_servers/image_server.py, stdio) reaches the model as
images, never as base64 text; called from model code in the real LocalSandbox."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeact import CodeAgent
from codeact.models import ScriptedModel
from codeact.models.images import Image
from codeact.sandbox.local import LocalSandbox
from codeact.tools.mcp import MCPClient, StdioServer
from tests._isolation import require_sandbox

ROOT = Path(__file__).resolve().parents[2]


def code(src: str) -> str:
    return f"Thought: use the tool.\n```python\n{src}\n```"


@pytest.fixture(scope="module")
def client() -> Iterator[MCPClient]:
    with MCPClient(StdioServer(sys.executable, ("-m", "tests.mcp_servers.image_server"), cwd=str(ROOT))) as mcp:
        yield mcp


def tool(client: MCPClient, name: str):  # type: ignore[no-untyped-def]
    return next(t for t in client.tools if t.name == name)


def test_image_content_becomes_an_image_and_text_stays_text(client: MCPClient) -> None:
    caption, image = tool(client, "chart").function(width=8, height=6)
    assert caption == "a 8x6 chart"
    assert isinstance(image, Image) and (image.mime, image.width, image.height) == ("image/png", 8, 6)
    assert image.source == "tool:chart" and image.data.startswith(b"\x89PNG")
    only = tool(client, "snapshot").function()
    assert isinstance(only, Image) and only.width == 5


def test_an_image_that_is_not_one_is_a_note_not_base64(client: MCPClient) -> None:
    note = tool(client, "bogus").function()
    assert note == "[an image from bogus not shown: not a PNG, JPEG, GIF or WebP image (its first bytes say otherwise)]"


@require_sandbox()
def test_mcp_images_reach_the_model_with_the_observation(client: MCPClient) -> None:
    src = "caption, picture = chart(16, 9)\nprint(caption, picture.width, picture.mime)\nbogus()"
    seeing = ScriptedModel([code(src), code("final_answer('seen')")], supports_images=True)
    agent = CodeAgent(seeing, tools=client.tools, sandbox=LocalSandbox)
    result = agent.run("draw a chart")

    observation = seeing.calls[1][-1]
    assert result.status == "success", result
    assert "a 16x9 chart 16 image/png" in observation.content
    assert [(i.width, i.height, i.source) for i in observation.images] == [(16, 9, "tool:chart")]
    assert "an image from bogus not shown" in observation.content
    assert [i.describe() for i in result.images] == [observation.images[0].describe()]
    log = json.dumps(agent.store.raw_events(result.run_id or "")) if agent.store else ""
    assert "PHNjcmlwdD5" not in log  # the bogus image's base64 is nowhere in the record


@require_sandbox()
def test_a_text_only_model_gets_a_note_for_an_mcp_image(client: MCPClient) -> None:
    model = ScriptedModel([code("chart()"), code("final_answer(1)")])
    CodeAgent(model, tools=client.tools, sandbox=LocalSandbox, store=False).run("draw")
    observation = model.calls[1][-1]
    assert observation.images == ()
    assert "[image: 8x6 png, " in observation.content and "does not accept images" in observation.content
