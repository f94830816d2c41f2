"""Images a run showed, as the live view and `codeact show` print them: a line per step, never bytes."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from codeact import CodeAgent
from codeact.cli.view import LiveView
from codeact.models import ScriptedModel
from codeact.runs.events import ImagesShown
from codeact.runs.store import RunStore
from codeact.sandbox.process import ProcessSandbox
from tests.cli._helpers import cli, fenced


def test_the_view_lists_images_as_escaped_text() -> None:
    buffer = io.StringIO()
    LiveView(Console(file=buffer, width=200, color_system=None)).show(
        ImagesShown(2, ("640x480 png, 12 KB", "[bold]x[/bold]" + "y" * 500))
    )
    text = buffer.getvalue()
    assert "[image: 640x480 png, 12 KB]" in text
    assert "[bold]x[/bold]" in text and "y" * 81 not in text  # markup shown as text, descriptions bounded


def test_codeact_show_prints_the_images_of_a_recorded_run(tmp_path: Path) -> None:
    shown = "import numpy as np\ndisplay(np.zeros((480, 640, 3), dtype=np.uint8))"
    store = RunStore(tmp_path / "runs.db")
    result = CodeAgent(ScriptedModel([fenced(shown), fenced("final_answer(1)")]), sandbox=ProcessSandbox,
                       store=store).run("draw")
    store.close()

    out = cli(tmp_path, "show", result.run_id or "")

    assert out.returncode == 0, out.stdout
    assert "[image: 640x480 png, " in out.stdout
    assert "iVBOR" not in out.stdout  # no base64 of the PNG
