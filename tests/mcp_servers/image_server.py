"""An MCP server (the `mcp` SDK, stdio) whose tools return image content, for the image tests.

    python -m tests.mcp_servers.image_server
"""

from __future__ import annotations

import base64
import struct
import zlib

from mcp.server.mcpserver import MCPServer
from mcp.types import ContentBlock, ImageContent, TextContent

server = MCPServer("images")


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + b"\x00\x80\xff" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _image(data: bytes, mime: str = "image/png") -> ImageContent:
    return ImageContent(type="image", data=base64.b64encode(data).decode(), mime_type=mime)


@server.tool(structured_output=False)
def chart(width: int = 8, height: int = 6) -> list[ContentBlock]:
    """Draw a chart: a caption and a PNG."""
    return [TextContent(type="text", text=f"a {width}x{height} chart"), _image(_png(width, height))]


@server.tool(structured_output=False)
def snapshot() -> list[ContentBlock]:
    """Only an image."""
    return [_image(_png(5, 4))]


@server.tool(structured_output=False)
def bogus() -> list[ContentBlock]:
    """Claims to be a PNG; is a script."""
    return [_image(b"<script>alert(1)</script>")]


if __name__ == "__main__":
    server.run()
