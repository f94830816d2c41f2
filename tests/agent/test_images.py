"""Images in and out of a run, through the real kernel: task images, display(), notes, the log."""

from __future__ import annotations

import base64
from pathlib import Path

from codeact import CodeAgent
from codeact.models import ScriptedModel
from codeact.models.openai_compat import OpenAICompatible
from codeact.runs.events import ImagesShown, ModelRequested, Observed, event_to_dict
from codeact.runs.store import RunStore
from codeact.sandbox.local import LocalSandbox
from codeact.sandbox.process import ProcessSandbox
from tests._isolation import require_sandbox
from tests.models.test_images import png
from tests.servers.chat_server import ChatServer, chat

SHOW = f"import base64\ndisplay(base64.b64decode({base64.b64encode(png(3, 3)).decode()!r}))\nprint('shown')"


def code(src: str) -> str:
    return f"Thought: go.\n```python\n{src}\n```"


def test_a_displayed_image_reaches_a_model_that_reads_images(tmp_path: Path) -> None:
    model = ScriptedModel([code(SHOW), code("final_answer('a red square')")], supports_images=True)
    agent = CodeAgent(model, sandbox=ProcessSandbox, store=RunStore(tmp_path / "runs.db"))

    events = list(agent.run("draw", stream=True))

    observation = model.calls[1][-1]
    assert observation.role == "user" and "shown" in observation.content
    assert [(i.width, i.height, i.source) for i in observation.images] == [(3, 3, "display")]
    shown = [e for e in events if isinstance(e, ImagesShown)]
    assert len(shown) == 1 and shown[0].step == 1 and shown[0].shown[0].startswith("3x3 png, ")
    result = events[-1].result  # type: ignore[attr-defined]
    assert result.images == observation.images and result.images[0].data == png(3, 3)
    assert "data" not in str(event_to_dict(shown[0]))  # listed for the user, never as bytes


def test_a_text_only_model_gets_a_note_instead(tmp_path: Path) -> None:
    model = ScriptedModel([code(SHOW), code("final_answer(1)")])
    result = CodeAgent(model, sandbox=ProcessSandbox, store=False).run("draw")

    observation = model.calls[1][-1]
    assert result.status == "success" and observation.images == ()
    assert "[image: 3x3 png, " in observation.content and "does not accept images" in observation.content
    assert len(result.images) == 1  # still listed for the user


def test_task_images_go_with_the_task_and_the_log_keeps_them(tmp_path: Path) -> None:
    picture = tmp_path / "cat.png"
    picture.write_bytes(png(4, 2))
    store = RunStore(tmp_path / "runs.db")
    model = ScriptedModel([code(SHOW), code("final_answer('cat')")], supports_images=True)
    result = CodeAgent(model, sandbox=ProcessSandbox, store=store).run("what is this?", images=[picture])

    task = model.calls[0][1]
    assert task.role == "user" and [(i.width, i.height, i.source) for i in task.images] == [(4, 2, "user")]
    events = store.events(result.run_id or "")
    requested = [e for e in events if isinstance(e, ModelRequested)]
    assert requested[0].messages[1].images == task.images  # read back whole, for resume
    observed = next(e for e in events if isinstance(e, Observed))
    assert observed.execution is not None and observed.execution.images[0].data == png(3, 3)
    listed = next(e for e in events if isinstance(e, ImagesShown))
    assert listed.shown[0].startswith("3x3 png") and listed.images == ()


def test_a_chat_turn_takes_images(tmp_path: Path) -> None:
    model = ScriptedModel([code("final_answer(1)"), code("final_answer(2)")], supports_images=True)
    with CodeAgent(model, sandbox=ProcessSandbox, store=False).chat() as chat_:
        chat_.send("first")
        chat_.send("and this?", images=[png(2, 2)])
    assert model.calls[1][-1].content.endswith("and this?") and model.calls[1][-1].images[0].width == 2
    assert all(not m.images for m in model.calls[0])


@require_sandbox()
def test_images_reach_an_openai_compatible_server_as_content_parts(tmp_path: Path) -> None:
    """The real LocalSandbox, the real SDK, a real HTTP server recording what it got."""
    with ChatServer([chat(code(SHOW)), chat(code("final_answer('red')"))]) as server:
        model = OpenAICompatible("llava", base_url=server.url, stream_replies=False)
        agent = CodeAgent(model, sandbox=LocalSandbox, store=False)
        result = agent.run("what colour?", images=[png(2, 2)])
        sent = [r.json["messages"] for r in server.requests]

    assert result.status == "success" and result.output == "red"
    task_parts = sent[0][1]["content"]
    assert task_parts[0]["type"] == "text" and task_parts[1]["type"] == "image_url"
    assert task_parts[1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(png(2, 2)).decode()
    observation_parts = sent[1][-1]["content"]
    assert "shown" in observation_parts[0]["text"]
    assert observation_parts[1]["image_url"]["url"].endswith(base64.b64encode(png(3, 3)).decode())


def test_a_tool_calling_agent_shows_the_images_its_tools_return() -> None:
    from codeact import ToolCallingAgent, tool
    from codeact.models.base import ModelReply, ToolCall
    from codeact.models.images import Image, to_image

    @tool
    def screenshot() -> Image:
        """A screenshot of the page."""
        return to_image(png(6, 4), source="tool:screenshot")

    model = ScriptedModel([
        ModelReply("", tool_calls=(ToolCall("c1", "screenshot", {}),)),
        ModelReply("", tool_calls=(ToolCall("c2", "final_answer", {"answer": "seen"}),)),
    ], supports_images=True)
    result = ToolCallingAgent(model, [screenshot], store=False).run("look at the page")

    tool_message = model.calls[1][-1]
    assert result.output == "seen" and tool_message.role == "tool"
    assert [(i.width, i.height) for i in tool_message.images] == [(6, 4)]
    assert [i.source for i in result.images] == ["tool:screenshot"]


def test_only_a_model_that_reads_images_is_told_about_display() -> None:
    seeing = CodeAgent(ScriptedModel([], supports_images=True), sandbox=ProcessSandbox, store=False)
    blind = CodeAgent(ScriptedModel([]), sandbox=ProcessSandbox, store=False)
    assert "display(obj)" in seeing._format().system_prompt()
    assert "display(" not in blind._format().system_prompt()


def test_a_step_that_only_shows_an_image_is_not_called_silent() -> None:
    model = ScriptedModel([code("import numpy as np\ndisplay(np.zeros((2, 2)))"), code("final_answer(1)")],
                          supports_images=True)
    CodeAgent(model, sandbox=ProcessSandbox, store=False).run("draw")
    observation = model.calls[1][-1]
    assert "showed 1 image (below)" in observation.content and "without output" not in observation.content


def test_resume_shows_the_model_the_images_it_saw(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.db")
    first = CodeAgent(ScriptedModel([code(SHOW)], supports_images=True), sandbox=ProcessSandbox, store=store)
    failed = first.run("draw", images=[png(4, 2)])
    assert failed.status == "model_error"

    model = ScriptedModel([code("final_answer('done')")], supports_images=True)
    result = CodeAgent(model, sandbox=ProcessSandbox, store=store).resume(failed.run_id or "")

    assert result.status == "success"
    prompt = model.calls[0]
    assert [(i.width, i.height) for i in prompt[1].images] == [(4, 2)]  # the task's image, from the log
    assert [(i.width, i.height) for i in prompt[-1].images] == [(3, 3)]  # step 1's, from its execution
