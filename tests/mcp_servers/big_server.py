"""An MCP server with a large catalogue (120 tools over 6 services), for code mode: stdio only.

The tools are generated with realistic shapes (2-4 documented parameters, enums, defaults);
each returns a string naming itself and its arguments, so a test can tell which one ran.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

SERVICES = {
    "calendar": "events, invitations and free time",
    "crm": "customers, deals and contacts",
    "tickets": "support tickets and their comments",
    "files": "documents in shared drives",
    "billing": "invoices, payments and refunds",
    "chat": "team channels and messages",
}
ACTIONS = ["list", "get", "create", "update", "delete", "search", "archive", "restore", "share", "export",
           "import", "count", "assign", "comment", "tag", "untag", "move", "copy", "lock", "unlock"]

server = MCPServer("big", instructions="A company's internal services: " + ", ".join(SERVICES) + ".")


def _make(service: str, action: str, index: int) -> None:
    name = f"{service}_{action}"
    params = ["item_id: Annotated[str, Field(description='The id of the item, as returned by the list tool.')]"]
    if index % 2 == 0:
        params.append("limit: Annotated[int, Field(description='At most this many results.')] = 20")
    if index % 3 == 0:
        params.append("order: Annotated[Literal['newest', 'oldest', 'relevance'], "
                      "Field(description='How results are sorted.')] = 'newest'")
    if index % 4 == 0:
        params.append("dry_run: Annotated[bool, Field(description='Only say what would change.')] = False")
    source = (f"def {name}({', '.join(params)}) -> str:\n"
              f"    return '{name} ' + repr(sorted(locals().items()))\n")
    namespace: dict = {}
    exec(source, {"Annotated": Annotated, "Field": Field, "Literal": Literal}, namespace)  # noqa: S102 - our own text
    fn = namespace[name]
    server.add_tool(fn, name=name,
                    description=f"{action.capitalize()} {SERVICES[service].split(',')[0]} in {service}. "
                                f"Works on {SERVICES[service]}; returns a summary line.")


from typing import Annotated, Literal  # noqa: E402 - used by the generated code

from pydantic import Field  # noqa: E402

for s in SERVICES:
    for i, a in enumerate(ACTIONS):
        _make(s, a, i)

if __name__ == "__main__":
    server.run()
