"""display() in the real kernel: images out of the sandbox, bounded there and checked again on the host."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import pytest

from codeact import tool
from codeact.models.images import Image, to_image
from codeact.sandbox._codec import STEP_IMAGES, images_from_kernel
from codeact.sandbox.guest.display import MAX_IMAGE_BYTES, MAX_IMAGES_PER_STEP
from codeact.sandbox.local import LocalSandbox
from tests._isolation import require_sandbox
from tests.models.test_images import jpeg_header, png

pytestmark = require_sandbox()


@pytest.fixture
def sandbox() -> Iterator[LocalSandbox]:
    with LocalSandbox(timeout=30) as sb:
        sb.start({})
        yield sb


def pixels(image: Image) -> tuple[int, int, object]:
    """Decode a PNG the kernel made (a test may trust it) to check the encoder's output."""
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(image.data)) as opened:
        return opened.width, opened.height, opened.getpixel((0, 0))


def test_raw_png_bytes_and_saved_files_are_shown(sandbox: LocalSandbox) -> None:
    data = base64.b64encode(png(5, 3)).decode()
    execution = sandbox.execute(
        f"import base64\nraw = base64.b64decode({data!r})\ndisplay(raw)\n"
        "open('chart.png', 'wb').write(raw)\ndisplay_image('chart.png')\nprint('done')"
    )
    assert execution.error is None and execution.stdout.strip() == "done"
    assert [(i.format, i.width, i.height, i.source) for i in execution.images] == [("png", 5, 3, "display")] * 2
    assert execution.images[0].data == png(5, 3)
    assert sandbox.execute("1").images == ()  # the next step starts empty


def test_pil_images_and_numpy_arrays_are_encoded_inside_the_sandbox(sandbox: LocalSandbox) -> None:
    execution = sandbox.execute(
        "from PIL import Image as P\nimport numpy as np\n"
        "display(P.new('RGB', (64, 48), (255, 0, 0)))\n"
        "rgb = np.zeros((10, 20, 3), dtype=np.uint8); rgb[..., 2] = 200\ndisplay(rgb)\n"
        "display(np.full((4, 6), 0.5))"
    )
    assert execution.error is None, execution.error
    assert [(i.width, i.height) for i in execution.images] == [(64, 48), (20, 10), (6, 4)]
    assert pixels(execution.images[0]) == (64, 48, (255, 0, 0))
    assert pixels(execution.images[1]) == (20, 10, (0, 0, 200))
    assert pixels(execution.images[2]) == (6, 4, 128)


def test_what_cannot_be_shown_is_a_note_the_model_reads(sandbox: LocalSandbox) -> None:
    execution = sandbox.execute(
        "import numpy as np\n"
        "display(b'<svg>not a raster image</svg>')\n"
        "display(np.zeros((5000, 5000), dtype=np.uint8))\n"
        f"open('big.png', 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + bytes({MAX_IMAGE_BYTES}))\n"
        "display_image('big.png')\n"
        "display_image('missing.png')\n"
        "print('still running')"
    )
    assert execution.error is None and "still running" in execution.stdout
    assert execution.images == ()
    assert "not a PNG, JPEG, GIF or WebP" in execution.stderr
    assert "5000x5000 pixels is over the limit" in execution.stderr
    assert "over the 2,097,152-byte limit" in execution.stderr
    assert "cannot read 'missing.png'" in execution.stderr


def test_a_step_shows_at_most_the_limit(sandbox: LocalSandbox) -> None:
    data = base64.b64encode(png(2, 2)).decode()
    execution = sandbox.execute(
        f"import base64\nfor _ in range({MAX_IMAGES_PER_STEP + 2}): display(base64.b64decode({data!r}))"
    )
    assert len(execution.images) == MAX_IMAGES_PER_STEP
    assert execution.stderr.count(f"a step shows at most {MAX_IMAGES_PER_STEP} images") == 2


def test_wrong_types_raise_a_type_error_in_the_code(sandbox: LocalSandbox) -> None:
    execution = sandbox.execute("display({'a': 1})")
    assert execution.error is not None and execution.error.type == "TypeError"
    assert "matplotlib figure, a PIL image" in execution.error.message


def test_the_host_checks_images_again_when_the_kernel_lies(sandbox: LocalSandbox) -> None:
    """Code that goes around display()'s checks reaches the host's: magic bytes, header size, count."""
    bomb = base64.b64encode(jpeg_header(60_000, 60_000)).decode()
    fake = base64.b64encode(b"<script>alert(1)</script>").decode()
    good = base64.b64encode(png(3, 3)).decode()
    execution = sandbox.execute(
        "items = display.__self__.items\n"
        f"items.append({{'mime': 'image/png', 'base64': {bomb!r}}})\n"
        f"items.append({{'mime': 'image/png', 'base64': {fake!r}}})\n"
        "items.append({'mime': 'image/png', 'base64': '!!! not base64 !!!'})\n"
        "items.append('nonsense')\n"
        f"items.extend([{{'mime': 'text/html', 'base64': {good!r}}}] * 6)\n"
    )
    assert execution.error is None
    assert [(i.mime, i.width) for i in execution.images] == [("image/png", 3)] * MAX_IMAGES_PER_STEP
    assert "image 1 not shown: 60000x60000 pixels is over the limit" in execution.stderr
    assert "image 2 not shown: not a PNG, JPEG, GIF or WebP" in execution.stderr
    assert "image 3 not shown" in execution.stderr and "image 4 not shown: malformed" in execution.stderr
    assert "2 more image(s) not shown" in execution.stderr


def test_frames_with_malformed_images_never_raise() -> None:
    for junk in ("x", 5, {"a": 1}, [None, [], {"base64": None}, {"base64": "A" * (STEP_IMAGES.max_bytes * 2)}]):
        images, notes = images_from_kernel(junk)
        assert images == [] and notes


def test_images_a_tool_returns_are_shown_with_the_step() -> None:
    screenshot = to_image(png(7, 7), source="tool:screenshot")

    @tool
    def take_screenshot() -> Image:
        """Take a screenshot."""
        return screenshot

    with LocalSandbox(timeout=30) as sb:
        sb.start({"take_screenshot": take_screenshot})
        execution = sb.execute("shot = take_screenshot()\nprint(shot.width, shot.mime)")
    assert execution.error is None, execution.error
    assert execution.stdout.split() == ["7", "image/png"]
    assert execution.images == (screenshot,)


def test_matplotlib_figures_save_themselves_as_png(sandbox: LocalSandbox) -> None:
    """matplotlib is not in this venv: a stand-in of its Figure and Axes types, recognised by their
    module the way display() recognises the real ones, shows the duck-typed path."""
    data = base64.b64encode(png(12, 8)).decode()
    execution = sandbox.execute(
        "import base64\n"
        "class Figure:\n"
        "    dpi = 2\n"
        "    def get_size_inches(self): return (6.0, 4.0)\n"
        f"    def savefig(self, out, format): out.write(base64.b64decode({data!r}))\n"
        "class Axes:\n"
        "    figure = Figure()\n"
        "Figure.__module__ = Axes.__module__ = 'matplotlib.figure'\n"
        "display(Figure(), Axes())\n"
        "Figure.dpi = 10_000\n"
        "display(Figure())"
    )
    assert execution.error is None, execution.error
    assert [(i.width, i.height) for i in execution.images] == [(12, 8), (12, 8)]
    assert "60000x40000 pixels is over the limit" in execution.stderr  # checked before it is drawn
