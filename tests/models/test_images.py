"""Images in messages: checked without decoding, rendered per backend, notes for text-only models."""

from __future__ import annotations

import io
import re
import struct
import zlib
from pathlib import Path

import pytest

from codeact.errors import ConfigError
from codeact.models.anthropic import Anthropic, to_anthropic_request
from codeact.models.base import Message
from codeact.models.images import Image, ImageLimits, check_image, image_header, to_image, to_images
from codeact.models.messages import text_only
from codeact.models.openai_compat import OpenAICompatible
from codeact.models.openai_wire import to_openai_messages
from codeact.models.registry import resolve_model
from codeact.models.scripted import ScriptedModel
from tests.servers.chat_server import ChatServer, chat, messages_reply


def png(width: int = 3, height: int = 2) -> bytes:
    """A real RGB PNG made with zlib and struct (no image library)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def jpeg_header(width: int, height: int) -> bytes:
    """SOI, an APP0 segment, then a baseline frame header: enough for the header walk."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def test_headers_give_format_and_size_without_decoding() -> None:
    assert image_header(png(3, 2)) == ("png", 3, 2)
    assert image_header(jpeg_header(640, 480)) == ("jpeg", 640, 480)
    assert image_header(b"GIF89a" + struct.pack("<HH", 7, 9) + b"\x00" * 10) == ("gif", 7, 9)
    vp8x = b"RIFF" + b"\x00" * 4 + b"WEBPVP8X" + b"\x00" * 8 + (99).to_bytes(3, "little") + (49).to_bytes(3, "little")
    assert image_header(vp8x) == ("webp", 100, 50)
    for junk in (b"", b"hello", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff" + b"\xff" * 100, b"\xff\xd8\xff\xd9"):
        assert image_header(junk) is None


def test_untrusted_bytes_are_refused_with_a_reason_never_an_exception() -> None:
    assert isinstance(check_image(png(), source="display"), Image)
    assert "not a PNG" in str(check_image(b"<svg>hello</svg>"))
    assert "over the" in str(check_image(png(), ImageLimits(max_bytes=10)))
    bomb = jpeg_header(60_000, 60_000)  # a few bytes announcing 3.6 gigapixels
    assert "pixels is over the limit" in str(check_image(bomb))
    assert "empty size" in str(check_image(jpeg_header(0, 10)))
    assert "not image bytes" in str(check_image("a string"))


def test_image_describes_itself_safely() -> None:
    image = to_image(png(640, 480))
    assert (image.mime, image.width, image.height, image.source) == ("image/png", 640, 480, "user")
    assert re.fullmatch(r"\[image: 640x480 png, \d+ (B|KB)\]", image.note())
    assert image.data_url().startswith("data:image/png;base64,iVBOR")
    assert "data=" not in repr(image)  # the bytes stay out of reprs and logs of reprs


def test_user_images_from_paths_bytes_and_pil(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(png(4, 4))
    pil = pytest.importorskip("PIL.Image").new("RGB", (5, 6))
    images = to_images([str(path), path, png(2, 2), pil])
    assert [(i.width, i.height) for i in images] == [(4, 4), (4, 4), (2, 2), (5, 6)]
    assert to_images(str(path))[0].width == 4  # one image where a list was meant
    with pytest.raises(ConfigError, match="cannot read the image"):
        to_image(tmp_path / "missing.png")
    with pytest.raises(ConfigError, match="not a PNG"):
        to_image(b"text")
    with pytest.raises(ConfigError, match="takes file paths"):
        to_image(42)
    with pytest.raises(ConfigError, match="at most 1"):
        to_images([png(), png()], ImageLimits(max_count=1))


def test_text_only_models_get_a_note_in_place_of_each_image() -> None:
    image = to_image(png(8, 8))
    [message] = text_only([Message("user", "look", images=(image,))])
    assert message.images == ()
    assert message.content.startswith("look\n[image: 8x8 png, ")
    assert "this model does not accept images" in message.content

    model = ScriptedModel(["ok"])
    model.complete([Message("user", "look", images=(image,))])
    assert "does not accept images" in model.calls[0][0].content and not model.calls[0][0].images
    seeing = ScriptedModel(["ok"], supports_images=True)
    seeing.complete([Message("user", "look", images=(image,))])
    assert seeing.calls[0][0].images == (image,)


def test_openai_compatible_sends_image_parts_over_the_wire(server: ChatServer) -> None:
    server.push(chat("a red square"))
    image = to_image(png(2, 2))
    model = OpenAICompatible("llava-13b", base_url=server.url)
    assert model.supports_images  # the name says so

    reply = model.complete([Message("system", "s"), Message("user", "what is this?", images=(image,))])

    assert reply.text == "a red square"
    sent = server.requests[0].json["messages"]
    assert sent[0] == {"role": "system", "content": "s"}
    assert sent[1]["content"] == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": image.data_url()}},
    ]


def test_an_unknown_server_model_gets_notes_unless_told_otherwise(server: ChatServer) -> None:
    server.push(chat("x"), chat("y"))
    image = to_image(png(2, 2))
    OpenAICompatible("qwen2.5-coder", base_url=server.url).complete([Message("user", "see", images=(image,))])
    OpenAICompatible("qwen2.5-coder", base_url=server.url, supports_images=True).complete(
        [Message("user", "see", images=(image,))]
    )
    first, second = (r.json["messages"][0]["content"] for r in server.requests)
    assert isinstance(first, str) and "[image: 2x2 png" in first and "base64" not in first
    assert second[1]["type"] == "image_url"


def test_model_specs_take_a_vision_flag(server: ChatServer) -> None:
    assert resolve_model(f"openai-compat:{server.url}#qwen#vision").supports_images
    assert not resolve_model(f"openai-compat:{server.url}#llava#text").supports_images
    assert resolve_model(f"openai-compat:{server.url}#qwen").model == "qwen"  # type: ignore[attr-defined]


def test_tool_results_with_images_follow_as_a_user_message_on_the_openai_wire() -> None:
    image = to_image(png(2, 2))
    wire = to_openai_messages([Message("tool", "shot taken", tool_call_id="c1", images=(image,))])
    assert wire[0] == {"role": "tool", "tool_call_id": "c1", "content": "shot taken"}
    assert wire[1]["role"] == "user" and wire[1]["content"][1]["type"] == "image_url"


def test_anthropic_renders_image_blocks_with_a_base64_source(server: ChatServer) -> None:
    image = to_image(png(2, 2))
    server.push(messages_reply("red"))
    model = Anthropic("claude-test", api_key="k", base_url=server.base)
    assert model.supports_images

    model.complete([Message("user", "what?", images=(image,))])

    content = server.requests[0].json["messages"][0]["content"]
    assert content == [
        {"type": "text", "text": "what?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image.base64()}},
    ]
    request = to_anthropic_request([Message("tool", "done", tool_call_id="t1", images=(image,))])
    result = request["messages"][0]["content"][0]
    assert result["type"] == "tool_result" and result["content"][1]["type"] == "image"


def test_a_jpeg_from_pil_passes_the_header_check() -> None:
    pil = pytest.importorskip("PIL.Image")
    buffer = io.BytesIO()
    pil.new("RGB", (33, 17), (0, 128, 255)).save(buffer, format="JPEG")
    image = to_image(buffer.getvalue())
    assert (image.format, image.width, image.height) == ("jpeg", 33, 17)
