"""Images a message carries: one value type, checked and bounded without decoding a pixel.

Images come from the user (`run(task, images=[...])`), from code in the sandbox (`display(...)`)
and from tools (an MCP server's image content). The last two are untrusted, so the host never
hands them to an image library: it checks the magic bytes, reads the width and height from the
PNG, JPEG, GIF or WebP header with `struct` (a bounded walk), and bounds the bytes, the pixels
and the count (`ImageLimits`). Backends render an `Image` as their API's image part; a model
that does not accept images gets `Image.note()` instead: its size and format as text.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeact.errors import ConfigError

__all__ = [
    "MIME_TYPES",
    "Image",
    "ImageLimits",
    "check_image",
    "find_images",
    "image_header",
    "to_image",
    "to_images",
]

#: The formats codeact accepts, by the name `image_header` gives them.
MIME_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_WALK = 4_096  # segments read before a JPEG without a frame header is refused


@dataclass(frozen=True)
class ImageLimits:
    """What one image, and the images of one step, may be.

    Args:
        max_bytes: bytes of one encoded image.
        max_pixels: width x height, as its header says (a small file can announce a huge image).
        max_side: pixels of its longer side.
        max_count: images of one step (or of one `run(images=...)`).
    """

    max_bytes: int = 5 * 1024 * 1024
    max_pixels: int = 50_000_000
    max_side: int = 16_384
    max_count: int = 16


@dataclass(frozen=True)
class Image:
    """An encoded image (PNG, JPEG, GIF or WebP) and what its header says about it.

    Build one with `to_image` (user input) or `check_image` (untrusted bytes), which check it.
    `source` says where it came from: "user", "display" (the sandbox's `display()`), or
    "tool:NAME".
    """

    mime: str
    width: int
    height: int
    data: bytes = field(repr=False)
    source: str = ""

    @property
    def format(self) -> str:
        """"png", "jpeg", "gif" or "webp"."""
        return self.mime.rpartition("/")[2]

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    def data_url(self) -> str:
        """`data:image/png;base64,...`: how chat-completions servers take an inline image."""
        return f"data:{self.mime};base64,{self.base64()}"

    def describe(self) -> str:
        """`640x480 png, 12 KB`: safe to print (numbers and a known format name only)."""
        return f"{self.width}x{self.height} {self.format}, {_size_text(self.size)}"

    def note(self, reason: str = "") -> str:
        """The line that stands for the image in text: `[image: 640x480 png, 12 KB]`."""
        return f"[image: {self.describe()}{'; ' + reason if reason else ''}]"


def image_header(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) from the header of `data`, or None if it is no image we accept.

    Reads only the header (a bounded walk over JPEG segments); decodes no pixel.
    """
    head = bytes(data[:32])
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
            return "png", width, height
        if head.startswith(b"\xff\xd8\xff"):
            return _jpeg_size(data)
        if head[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", head[6:10])
            return "gif", width, height
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return _webp_size(data)
    except struct.error:  # a header cut short
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[str, int, int] | None:
    pos, end = 2, len(data)
    for _ in range(_JPEG_WALK):
        while pos < end and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= end:
            return None
        marker = data[pos]
        pos += 1
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length follows
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            return None
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[pos + 3 : pos + 7])
            return "jpeg", width, height
        if length < 2:
            return None
        pos += length
    return None


def _webp_size(data: bytes) -> tuple[str, int, int] | None:
    chunk = bytes(data[12:16])
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return "webp", width, height
    if chunk == b"VP8L" and data[20:21] == b"\x2f":
        (bits,) = struct.unpack("<I", data[21:25])
        return "webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return "webp", width & 0x3FFF, height & 0x3FFF
    return None


def check_image(data: Any, limits: ImageLimits | None = None, *, source: str = "") -> Image | str:
    """`data` as an Image if it is one within `limits`, else the reason it is refused (a text).

    For untrusted bytes (the sandbox, a tool): never raises, never decodes pixels.
    """
    limits = limits or ImageLimits()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return f"not image bytes but {type(data).__name__}"
    if len(data) > limits.max_bytes:
        return f"{_size_text(len(data))} is over the {_size_text(limits.max_bytes)} limit per image"
    data = bytes(data)
    header = image_header(data)
    if header is None:
        return "not a PNG, JPEG, GIF or WebP image (its first bytes say otherwise)"
    kind, width, height = header
    if width < 1 or height < 1:
        return f"a {kind} header with an empty size ({width}x{height})"
    if max(width, height) > limits.max_side or width * height > limits.max_pixels:
        return (f"{width}x{height} pixels is over the limit ({limits.max_pixels:,} pixels, "
                f"{limits.max_side:,} per side)")
    return Image(MIME_TYPES[kind], width, height, data, source)


def to_image(value: Any, limits: ImageLimits | None = None, *, source: str = "user") -> Image:
    """An Image from what a user passes: an Image, encoded bytes, a file path, or a PIL image.

    ConfigError when it is none of these, or not an image within `limits`.
    """
    if isinstance(value, Image):
        return value
    if isinstance(value, (str, os.PathLike)):
        path = Path(value).expanduser()
        limit = (limits or ImageLimits()).max_bytes
        try:
            with path.open("rb") as file:
                data = file.read(limit + 1)
        except OSError as exc:
            raise ConfigError(f"cannot read the image {str(path)!r}: {exc.strerror or exc}") from exc
        where = f"the image file {str(path)!r}"
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data, where = bytes(value), "the image bytes"
    elif _is_pil_image(value):
        data, where = _pil_png(value), "the PIL image"
    else:
        raise ConfigError(
            f"images=[...] takes file paths, PNG/JPEG/GIF/WebP bytes, PIL images or codeact Images; "
            f"got {type(value).__name__}."
        )
    checked = check_image(data, limits, source=source)
    if isinstance(checked, str):
        raise ConfigError(f"{where} cannot be sent to the model: {checked}.")
    return checked


def to_images(values: Iterable[Any] | None, limits: ImageLimits | None = None, *, source: str = "user") -> tuple[Image, ...]:
    """`to_image` for each of `values` (None: none), at most `limits.max_count` of them."""
    if values is None:
        return ()
    if isinstance(values, (str, bytes, bytearray, os.PathLike, Image)) or _is_pil_image(values):
        values = [values]  # one image where a list was meant
    images = tuple(to_image(v, limits, source=source) for v in values)
    limit = (limits or ImageLimits()).max_count
    if len(images) > limit:
        raise ConfigError(f"images=[...] holds {len(images)} images; at most {limit} go with one task.")
    return images


def find_images(value: Any, limit: int = 64) -> list[Image]:
    """The Images in a tool's result: the result itself, or items of a list, tuple or dict in it
    (one level down), at most `limit`."""
    if isinstance(value, Image):
        return [value]
    items: Iterable[Any]
    if isinstance(value, Mapping):
        items = value.values()
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        return []
    found: list[Image] = []
    for item in items:
        if isinstance(item, Image):
            found.append(item)
            if len(found) >= limit:
                break
    return found


def _is_pil_image(value: Any) -> bool:
    return type(value).__module__.startswith("PIL.") and callable(getattr(value, "save", None))


def _pil_png(image: Any) -> bytes:
    """A PIL image (the user's own object, on the host) saved as PNG."""
    import io

    buffer = io.BytesIO()
    try:
        image.save(buffer, format="PNG")
    except Exception as exc:  # noqa: BLE001 - PIL raises OSError, ValueError, KeyError...
        raise ConfigError(f"the PIL image could not be saved as PNG: {exc}") from exc
    return buffer.getvalue()


def _size_text(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"
