"""Images out of the kernel: `display(obj)` and `display_image(path)`, collected per step.

Stdlib only, like the rest of the guest. An object is recognised by duck typing, and the
library it came from encodes it only when the object is one of its own: a matplotlib figure
saves itself as PNG, a PIL image too; a numpy array of pixels is written as PNG here with
`zlib` and `struct`. Encoded bytes (PNG, JPEG, GIF, WebP) and image files pass as they are.

What a step displayed travels in its `done` frame (`images`: base64 and MIME type each), bounded
here by count and bytes so the frame stays under the host's limit; the host checks every image
again (magic bytes, header size, the same limits), since the kernel is not trusted. An image
refused here is a note on stderr, which the model reads in its observation.
"""

import binascii
import os
import struct
import sys
import zlib

__all__ = ["MAX_IMAGES_PER_STEP", "MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "Displays", "png_bytes"]

MAX_IMAGE_BYTES = 2 * 1024 * 1024
"""Bytes of one encoded image (both ends)."""
MAX_IMAGES_PER_STEP = 4
"""Images one step may show (both ends); with MAX_IMAGE_BYTES they fit a `done` frame."""
MAX_IMAGE_PIXELS = 4096 * 4096
"""Width x height of one image (both ends; the host reads it from the image's header)."""

_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
          (b"GIF89a", "image/gif"))
_WHAT = "a matplotlib figure, a PIL image, a numpy array of pixels, PNG/JPEG bytes or the path of an image file"


class Displays:
    """The images of the step running now; `display` and `display_image` are the model's helpers."""

    def __init__(self) -> None:
        self.items: list = []
        self.size = 0

    def take(self) -> list:
        """What this step displayed, for its `done` frame; starts the next step empty."""
        items, self.items, self.size = self.items, [], 0
        return items

    def display(self, *objects: object) -> None:
        """Show images to the model (and list them for the user) after this step.

        Takes a matplotlib figure, a PIL image, a numpy array of pixels (height x width, or
        height x width x 3 or 4; floats in 0..1), PNG/JPEG bytes, or the path of an image file.
        """
        for obj in objects:
            try:
                encoded = _encode(obj)
            except _Refused as refused:
                _note(str(refused))
                continue
            self._add(*encoded)

    def display_image(self, path: object) -> None:
        """Show the image file at `path` (PNG, JPEG, GIF or WebP) to the model after this step."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"display_image() takes a file path, not {type(path).__name__}")
        self.display(path)

    def _add(self, mime: str, data: bytes) -> None:
        if len(self.items) >= MAX_IMAGES_PER_STEP:
            _note(f"not shown: a step shows at most {MAX_IMAGES_PER_STEP} images")
        elif len(data) > MAX_IMAGE_BYTES:
            _note(f"not shown: the image is {len(data):,} bytes, over the {MAX_IMAGE_BYTES:,}-byte limit; "
                  "make it smaller (fewer pixels, or JPEG)")
        else:
            self.items.append({"mime": mime, "base64": binascii.b2a_base64(data, newline=False).decode()})
            self.size += len(data)


class _Refused(Exception):
    """An object that cannot be shown as an image; the message says why."""


def _note(text: str) -> None:
    try:
        sys.stderr.write(f"display(): {text}\n")
    except Exception:  # noqa: BLE001 - model code replaced stderr with something broken
        pass


def _encode(obj: object) -> tuple:
    """(MIME type, encoded bytes) for a displayable object; _Refused if it is not one."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return _sniffed(bytes(obj), "these bytes")
    if isinstance(obj, (str, os.PathLike)):
        return _file(obj)
    module = type(obj).__module__ or ""
    if module.startswith("matplotlib") or getattr(obj, "__name__", "") == "matplotlib.pyplot":
        return _matplotlib(obj)
    if module.startswith("PIL.") and callable(getattr(obj, "save", None)):
        return _pil(obj)
    if module == "numpy" and hasattr(obj, "shape") and hasattr(obj, "dtype"):
        return "image/png", _array_png(obj)
    raise TypeError(f"display() cannot show a {type(obj).__name__}; give it {_WHAT}")


def _sniffed(data: bytes, what: str) -> tuple:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime, data
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", data
    raise _Refused(f"not shown: {what} are not a PNG, JPEG, GIF or WebP image")


def _file(path: object) -> tuple:
    name = os.fspath(path)  # type: ignore[call-overload]
    try:
        with open(name, "rb") as file:
            data = file.read(MAX_IMAGE_BYTES + 1)
    except OSError as exc:
        raise _Refused(f"not shown: cannot read {name!r}: {exc.strerror or exc}") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise _Refused(f"not shown: {name!r} is over the {MAX_IMAGE_BYTES:,}-byte limit; make it smaller")
    return _sniffed(data, f"the contents of {name!r}")


def _check_pixels(width: float, height: float) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise _Refused(f"not shown: {int(width)}x{int(height)} pixels is over the limit of {MAX_IMAGE_PIXELS:,}")


def _matplotlib(obj: object) -> tuple:
    import io

    figure = obj
    if getattr(obj, "__name__", "") == "matplotlib.pyplot":
        figure = obj.gcf()  # type: ignore[attr-defined]
    elif not callable(getattr(obj, "savefig", None)):  # an Axes, an Artist: the figure it is on
        figure = getattr(obj, "figure", None)
    if not callable(getattr(figure, "savefig", None)):
        raise TypeError(f"display() cannot show a {type(obj).__name__}; give it the figure it belongs to")
    width, height = figure.get_size_inches()  # type: ignore[attr-defined]
    dpi = figure.dpi  # type: ignore[attr-defined]
    _check_pixels(width * dpi, height * dpi)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")  # type: ignore[attr-defined]
    return "image/png", buffer.getvalue()


def _pil(image: object) -> tuple:
    import io

    width, height = image.size  # type: ignore[attr-defined]
    _check_pixels(width, height)
    if getattr(image, "mode", "RGB") not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
        image = image.convert("RGBA")  # type: ignore[attr-defined]  # CMYK, YCbCr...: PNG cannot hold them
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")  # type: ignore[attr-defined]
    return "image/png", buffer.getvalue()


def _array_png(array: object) -> bytes:
    """A numpy array of pixels as PNG: grey (H x W), grey+alpha, RGB or RGBA (H x W x 2/3/4)."""
    shape = tuple(array.shape)  # type: ignore[attr-defined]
    if len(shape) == 3 and shape[2] == 1:
        array, shape = array[:, :, 0], shape[:2]  # type: ignore[index]
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (2, 3, 4)):
        raise _Refused(f"not shown: an array of shape {shape} is no image (height x width [x 1, 2, 3 or 4])")
    height, width = shape[0], shape[1]
    if not height or not width:
        raise _Refused(f"not shown: an empty array of shape {shape}")
    _check_pixels(width, height)
    kind = array.dtype.kind  # type: ignore[attr-defined]
    if kind == "b":
        array = array * 255  # type: ignore[operator]
    elif kind == "f":
        array = (array.clip(0.0, 1.0) * 255 + 0.5)  # type: ignore[attr-defined]
    elif kind in "iu":
        array = array.clip(0, 255)  # type: ignore[attr-defined]
    else:
        raise _Refused(f"not shown: an array of {array.dtype} is no image (use numbers)")  # type: ignore[attr-defined]
    raw = array.astype("uint8").tobytes()  # type: ignore[attr-defined]
    channels = 1 if len(shape) == 2 else shape[2]
    color = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    stride = width * channels
    rows = b"".join(b"\x00" + raw[i : i + stride] for i in range(0, len(raw), stride))
    return png_bytes(width, height, color, rows)


def png_bytes(width: int, height: int, color: int, rows: bytes) -> bytes:
    """A PNG of 8-bit pixels from its filtered rows (`color`: 0 grey, 2 RGB, 4 grey+alpha, 6 RGBA)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 6))
            + chunk(b"IEND", b""))
