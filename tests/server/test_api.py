"""The server's API against a real uvicorn server on 127.0.0.1, runs in the real isolated sandbox.

Models are scripted; requests go over real sockets; event streams are read as a browser reads them.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import socket
import time

from codeact.models.base import Model
from codeact.models.openai_compat import OpenAICompatible
from codeact.models.scripted import ScriptedModel
from codeact.server import Limits
from codeact.tools.tool import tool
from tests._isolation import require_sandbox
from tests.server._harness import Script, Server, b64, code, config

pytestmark = require_sandbox()


def finished(client, run_id):
    return client.wait(run_id, seconds=90)


def test_a_run_streams_its_logged_events_and_ends(tmp_path):
    script = Script({"s": [code("x = 2 + 3\nprint(x)"), code("final_answer(x * 2)")]})
    with Server(config(tmp_path, script)) as server:
        alice = server.client()
        run_id = alice.start("double five", "s")
        events = list(alice.events(run_id))
        run = finished(alice, run_id)
        listed = alice.request("GET", "/api/runs").json()

    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds[-2:] == ["run_finished", "end"]
    assert [int(e["id"]) for e in events[:-1]] == list(range(1, len(events)))
    assert events[-1]["data"]["status"] == "success"
    observed = [e["data"]["observation"] for e in events if e["event"] == "observed"]
    assert "5" in observed[0]
    # The stream is the log: a model request says how many messages, not the whole conversation.
    requested = next(e for e in events if e["event"] == "model_requested")
    assert requested["data"] == {"kind": "model_requested", "step": 1, "messages": 2}
    assert run["status"] == "success" and run["output"] == 10 and run["steps"] == 2 and not run["live"]
    assert run["budget"]["max_steps"] == 10
    assert [r["id"] for r in listed] == [run_id]


def test_last_event_id_resumes_the_stream_after_that_event(tmp_path):
    script = Script({"s": [code("print(1)"), code("print(2)"), code("final_answer(3)")]})
    with Server(config(tmp_path, script)) as server:
        alice = server.client()
        run_id = alice.start("count", "s")
        first = list(alice.events(run_id, stop=lambda e: e.get("id") == "5"))
        rest = list(alice.events(run_id, last_event_id=5))
        whole = list(alice.events(run_id))
        after_query = alice.request("GET", f"/api/runs/{run_id}/events?after=12")

    assert [e["id"] for e in first] == ["1", "2", "3", "4", "5"]
    assert rest[0]["id"] == "6"
    assert [e.get("id") for e in first + rest] == [e.get("id") for e in whole]
    assert [e["data"] for e in first + rest] == [e["data"] for e in whole]
    assert b"id: 12\n" not in after_query.body and b"id: 13\n" in after_query.body


def test_cancel_stops_a_live_run_and_resume_finishes_it(tmp_path):
    scripts = iter([
        [code("import time\ntime.sleep(120)")],
        [code("final_answer('resumed')")],
    ])
    # Resume runs the interrupted step's recorded code again (its reply was logged): a short step
    # timeout ends that second sleep sooner.
    cfg = config(tmp_path, Script({"s": []}), step_timeout=10)
    cfg = dataclasses.replace(cfg, models={"s": lambda: ScriptedModel(next(scripts), name="s")})
    with Server(cfg) as server:
        alice = server.client()
        run_id = alice.start("sleep", "s")
        alice.wait(run_id, until=lambda r: r["steps"] == 0 and r["live"], seconds=30)
        list(alice.events(run_id, stop=lambda e: e["event"] == "action_parsed"))
        started = time.monotonic()
        cancelled = alice.request("POST", f"/api/runs/{run_id}/cancel")
        took = time.monotonic() - started
        again = alice.request("POST", f"/api/runs/{run_id}/cancel")
        resumed = alice.request("POST", f"/api/runs/{run_id}/resume", {})
        run = finished(alice, run_id)
        kinds = [e["event"] for e in alice.events(run_id)]

    assert cancelled.status == 200, cancelled.body
    assert cancelled.json()["status"] == "interrupted" and not cancelled.json()["live"]
    assert took < 8  # the cell was stopped, not waited for (its step timeout is 10 s)
    assert again.status == 409
    assert resumed.status == 200, resumed.body
    assert run["status"] == "success" and run["output"] == "resumed"
    assert "run_resumed" in kinds and kinds[-2:] == ["run_finished", "end"]


def test_files_go_into_the_workspace_and_results_come_out(tmp_path):
    script = Script({"s": [code(
        "data = open('in/numbers.txt').read().split()\n"
        "open('sum.txt', 'w').write(str(sum(map(int, data))))\n"
        "import os\nos.symlink('/etc/passwd', 'leak')\n"
        "final_answer('done')")]})
    with Server(config(tmp_path, script)) as server:
        alice = server.client()
        run_id = alice.start("sum the numbers", "s", files=[{"path": "in/numbers.txt",
                                                             "content_base64": b64(b"1 2 3 4")}])
        finished(alice, run_id)
        listing = alice.request("GET", f"/api/runs/{run_id}/files").json()
        result = alice.request("GET", f"/api/runs/{run_id}/files/sum.txt")
        put = alice.request("PUT", f"/api/runs/{run_id}/files/notes/more.txt", raw=b"more")
        back = alice.request("GET", f"/api/runs/{run_id}/files/notes/more.txt")
        refused = {path: alice.request("GET", f"/api/runs/{run_id}/files/{path}").status
                   for path in ("leak", "../../runs.db", "in/../../x", "%2e%2e/x", "nope.txt")}
        bad_put = [alice.request("PUT", f"/api/runs/{run_id}/files/{path}", raw=b"x").status
                   for path in ("leak", "in/../../escape.txt", "a\\b")]

    assert {"path": "sum.txt", "size": 2} in listing and not any(f["path"] == "leak" for f in listing)
    assert result.status == 200 and result.body == b"10"
    assert result.headers["content-type"] == "application/octet-stream"
    assert result.headers["content-disposition"].startswith("attachment")
    assert put.status == 201 and back.body == b"more"
    assert refused["leak"] == 400 and refused["nope.txt"] == 400
    assert all(status in (400, 404) for status in refused.values())
    assert all(status in (400, 404) for status in bad_put)
    assert not (tmp_path / "data" / "escape.txt").exists() and not (tmp_path / "escape.txt").exists()


def test_request_sizes_are_bounded(tmp_path):
    script = Script({"s": [code("final_answer(1)")]})
    limits = Limits(max_request_bytes=50_000, max_file_bytes=10_000)
    with Server(config(tmp_path, script, limits=limits)) as server:
        alice = server.client()
        huge = alice.request("POST", "/api/runs", {"task": "x" * 60_000, "model": "s"})
        big_file = alice.request("POST", "/api/runs", {"task": "t", "model": "s",
                                                       "files": [{"path": "a", "content_base64": b64(b"a" * 20_000)}]})
        run_id = alice.start("t", "s")
        big_put = alice.request("PUT", f"/api/runs/{run_id}/files/big.bin", raw=b"b" * 20_000)
        chunked = _chunked_put(server.port, f"/api/runs/{run_id}/files/chunked.bin", 80_000)
        too_many_steps = alice.request("POST", "/api/runs", {"task": "t", "model": "s", "max_steps": 1000})
        unknown_model = alice.request("POST", "/api/runs", {"task": "t", "model": "openai:gpt-4o"})

    assert huge.status == 413
    assert big_file.status == 400 and "larger than" in big_file.json()["detail"]
    assert big_put.status == 400
    assert chunked == 413
    assert too_many_steps.status == 400
    assert unknown_model.status == 400 and "not offered" in unknown_model.json()["detail"]


def _chunked_put(port: int, path: str, size: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("PUT", path)
    conn.putheader("Authorization", "Bearer alice-token-123456")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    try:
        for _ in range(size // 10_000):
            conn.send(b"%x\r\n%s\r\n" % (10_000, b"c" * 10_000))
        conn.send(b"0\r\n\r\n")
    except OSError:
        pass
    status = conn.getresponse().status
    conn.close()
    return status


def test_tokens_are_users_and_users_do_not_see_each_others_runs(tmp_path):
    script = Script({"s": [code("final_answer('secret of alice')")]})
    with Server(config(tmp_path, script)) as server:
        alice, bob = server.client("alice"), server.client("bob")
        run_id = alice.start("alice's task", "s")
        finished(alice, run_id)
        nobody = server.client(None).request("GET", "/api/runs")
        wrong = server.client(token="alice-token-12345X").request("GET", "/api/runs")
        seen_by_bob = {
            "list": bob.request("GET", "/api/runs").json(),
            "get": bob.request("GET", f"/api/runs/{run_id}").status,
            "events": bob.request("GET", f"/api/runs/{run_id}/events").status,
            "cancel": bob.request("POST", f"/api/runs/{run_id}/cancel").status,
            "resume": bob.request("POST", f"/api/runs/{run_id}/resume", {}).status,
            "files": bob.request("GET", f"/api/runs/{run_id}/files").status,
            "upload": bob.request("PUT", f"/api/runs/{run_id}/files/x.txt", raw=b"x").status,
            "approvals": bob.request("GET", f"/api/approvals?run_id={run_id}").status,
        }
        missing = alice.request("GET", "/api/runs/0123456789ab").status

    assert nobody.status == 401 and wrong.status == 401
    assert seen_by_bob.pop("list") == []
    assert set(seen_by_bob.values()) == {404}  # exactly what a run that does not exist answers
    assert missing == 404


def test_a_client_that_disconnects_mid_stream_leaves_the_run_going(tmp_path):
    script = Script({"s": [code("import time\ntime.sleep(1)\nprint('a')"), code("print('b')"),
                           code("final_answer('kept going')")]})
    with Server(config(tmp_path, script)) as server:
        alice = server.client()
        run_id = alice.start("go on", "s")
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("GET", f"/api/runs/{run_id}/events", headers={"Authorization": "Bearer alice-token-123456"})
        response = conn.getresponse()
        assert response.readline().startswith(b"retry:")
        conn.sock.shutdown(socket.SHUT_RDWR)  # gone, mid-stream
        conn.close()
        run = finished(alice, run_id)
        config_after = alice.request("GET", "/api/config")

    assert run["status"] == "success" and run["output"] == "kept going"
    assert config_after.status == 200


class Exploding(Model):
    name = "exploding"

    def complete(self, messages, *, stop=None, tools=None):
        raise RuntimeError("the model client has a bug")


def test_the_server_survives_a_crashing_run_and_a_dead_model_server(tmp_path):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    models = {
        "ok": lambda: ScriptedModel([code("final_answer('fine')")], name="ok"),
        "dead": lambda: OpenAICompatible("m", base_url=f"http://127.0.0.1:{dead_port}/v1", api_key="x",
                                         max_retries=0, timeout=5),
        "boom": Exploding,
    }
    cfg = config(tmp_path, Script({"ok": []}))
    cfg = dataclasses.replace(cfg, models=models, default_model="ok")
    with Server(cfg) as server:
        alice = server.client()
        dead = finished(alice, alice.start("t", "dead"))
        boom = finished(alice, alice.start("t", "boom"))
        fine = finished(alice, alice.start("t", "ok"))

    assert dead["status"] == "model_error" and dead["error"]
    assert boom["status"] == "error" and "bug" in (boom["error"] or "")
    assert fine["status"] == "success" and fine["output"] == "fine"


def test_concurrent_runs_are_bounded(tmp_path):
    script = Script({"s": [code("import time\ntime.sleep(120)")]})
    with Server(config(tmp_path, script, limits=Limits(max_runs=1))) as server:
        alice = server.client()
        first = alice.start("long", "s")
        second = alice.request("POST", "/api/runs", {"task": "another", "model": "s"})
        alice.request("POST", f"/api/runs/{first}/cancel")
        third = alice.request("POST", "/api/runs", {"task": "another", "model": "s"})
        if third.status == 201:
            alice.request("POST", f"/api/runs/{third.json()['id']}/cancel")

    assert second.status == 429
    assert third.status == 201


def test_openapi_schema_and_the_page_headers(tmp_path):
    with Server(config(tmp_path, Script({"s": []}))) as server:
        anonymous = server.client(None)
        schema = anonymous.request("GET", "/openapi.json")
        page = anonymous.request("GET", "/")
        script = anonymous.request("GET", "/static/app.js")
        other = anonymous.request("GET", "/static/..%2f..%2fconfig.py")

    paths = schema.json()["paths"]
    for path in ("/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/events", "/api/runs/{run_id}/cancel",
                 "/api/runs/{run_id}/resume", "/api/approvals", "/api/approvals/{request_id}",
                 "/api/runs/{run_id}/files/{path}"):
        assert path in paths
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.status == 200 and b"<script" in page.body
    assert script.status == 200 and other.status == 404


def test_the_page_scripts_use_no_html_sinks():
    """Run data reaches the page through textContent and createElement only."""
    from importlib import resources

    static = resources.files("codeact.server") / "static"
    for name in ("app.js", "highlight.js"):
        source = (static / name).read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                     "DOMParser", "createContextualFragment", "srcdoc"):
            assert sink not in source, (name, sink)
    assert "<script>" not in (static / "index.html").read_text()  # no inline script (the CSP forbids it)


@tool(needs_approval=True)
def send_email(to: str, body: str) -> str:
    """Send an email."""
    return f"sent to {to}"


def approval_config(tmp_path, replies, **limits):
    return config(tmp_path, Script({"s": replies}), tools=[send_email], limits=Limits(**limits))


def test_a_call_waits_for_approval_which_the_owner_gives(tmp_path):
    replies = [code("r = send_email('bob@example.com', 'hi')\nfinal_answer(r)")]
    with Server(approval_config(tmp_path, replies)) as server:
        alice, bob = server.client("alice"), server.client("bob")
        run_id = alice.start("email bob", "s")
        asked = [e for e in alice.events(run_id, stop=lambda e: e["event"] == "approval_requested")][-1]
        pending = [_wait_pending(alice)]  # the log may say so a moment before the registry lists it
        pending_for_run = alice.request("GET", f"/api/approvals?run_id={run_id}").json()
        bobs = bob.request("GET", "/api/approvals").json()
        bob_answers = bob.request("POST", f"/api/approvals/{pending[0]['id']}", {"verdict": "approve"})
        still_live = alice.request("GET", f"/api/runs/{run_id}").json()["live"]
        answer = alice.request("POST", f"/api/approvals/{pending[0]['id']}", {"verdict": "approve"})
        twice = alice.request("POST", f"/api/approvals/{pending[0]['id']}", {"verdict": "deny"})
        run = finished(alice, run_id)
        kinds = [e["event"] for e in alice.events(run_id)]
        after = alice.request("GET", "/api/approvals").json()

    assert asked["data"]["tool"] == "send_email" and asked["data"]["arguments"]["to"] == "bob@example.com"
    assert [p["tool"] for p in pending] == ["send_email"] and pending == pending_for_run
    assert pending[0]["run_id"] == run_id and pending[0]["arguments"] == {"to": "bob@example.com", "body": "hi"}
    assert bobs == [] and bob_answers.status == 404 and still_live
    assert answer.status == 200 and twice.status in (404, 409)
    assert run["status"] == "success" and run["output"] == "sent to bob@example.com"
    assert "approval_decided" in kinds and after == []


def test_a_denied_or_edited_call_and_a_timeout(tmp_path):
    replies = [code(
        "out = []\n"
        "for who in ['a@x', 'b@x']:\n"
        "    try:\n"
        "        out.append(send_email(who, 'hi'))\n"
        "    except PermissionError as e:\n"
        "        out.append('denied: ' + str(e))\n"
        "final_answer(out)")]
    with Server(approval_config(tmp_path, replies)) as server:
        alice = server.client()
        run_id = alice.start("email two", "s")
        first = _wait_pending(alice)
        alice.request("POST", f"/api/approvals/{first['id']}", {"verdict": "deny", "message": "not a"})
        second = _wait_pending(alice, other_than=first["id"])
        edited = alice.request("POST", f"/api/approvals/{second['id']}",
                               {"verdict": "edit", "arguments": {"to": "c@x", "body": "edited"}})
        run = finished(alice, run_id)

    assert edited.status == 200
    assert run["output"][0].startswith("denied: ") and "not a" in run["output"][0]
    assert run["output"][1] == "sent to c@x"

    replies = [code("try:\n    send_email('a@x', 'hi')\nexcept PermissionError as e:\n    final_answer(str(e))")]
    with Server(approval_config(tmp_path / "t", replies, max_approval_seconds=1.0)) as server:
        alice = server.client()
        run = finished(alice, alice.start("nobody answers", "s"))
        decided = [e["data"] for e in alice.events(run["id"]) if e["event"] == "approval_decided"]
    assert run["status"] == "success" and "denied" in run["output"]
    assert decided[0]["timed_out"] and decided[0]["verdict"] == "deny"


def _wait_pending(client, other_than=None, seconds=60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pending = [p for p in client.request("GET", "/api/approvals").json() if p["id"] != other_than]
        if pending:
            return pending[0]
        time.sleep(0.05)
    raise AssertionError("no approval request came")


def test_cancelling_a_run_denies_its_pending_calls(tmp_path):
    replies = [code("send_email('a@x', 'hi')")]
    with Server(approval_config(tmp_path, replies)) as server:
        alice = server.client()
        run_id = alice.start("email", "s")
        _wait_pending(alice)
        cancelled = alice.request("POST", f"/api/runs/{run_id}/cancel")
        pending = alice.request("GET", "/api/approvals").json()

    assert cancelled.json()["status"] == "interrupted"
    assert pending == []


def test_events_endpoint_is_json_per_event(tmp_path):
    script = Script({"s": [code("print('<img src=x onerror=alert(1)>')\nfinal_answer('<script>x</script>')")]})
    with Server(config(tmp_path, script)) as server:
        alice = server.client()
        run_id = alice.start("xss", "s")
        events = list(alice.events(run_id))
    # The stream carries the text as JSON data; it is the page's job to show it as text.
    finished_event = next(e for e in events if e["event"] == "run_finished")
    assert finished_event["data"]["output"] == "<script>x</script>"
    assert json.dumps(finished_event["data"])


def test_slow_steps_of_some_runs_do_not_hold_up_the_others(tmp_path):
    # More sleeping steps than the default thread pool (cpu_count + 4) has workers.
    slow = [code("import time\ntime.sleep(120)")]
    quick = [code("final_answer('quick')")]
    models = {"slow": lambda: ScriptedModel(slow, name="slow"), "quick": lambda: ScriptedModel(quick, name="quick")}
    count = (os.cpu_count() or 2) + 5
    cfg = dataclasses.replace(config(tmp_path, Script({"slow": []})), models=models, default_model="slow",
                              limits=Limits(max_runs=count + 2, max_runs_per_user=count + 2))
    with Server(cfg) as server:
        alice = server.client()
        sleepers = [alice.start(f"sleep {i}", "slow") for i in range(count)]
        for run_id in sleepers:
            list(alice.events(run_id, stop=lambda e: e["event"] == "action_parsed"))
        started = time.monotonic()
        run = finished(alice, alice.start("be quick", "quick"))
        took = time.monotonic() - started
        live = sum(1 for r in alice.request("GET", "/api/runs").json() if r["live"])

    assert run["status"] == "success" and run["output"] == "quick"
    assert took < 60 and live == count


def test_pending_arguments_are_shown_redacted_like_the_log(tmp_path, monkeypatch):
    monkeypatch.setenv("MAIL_API_KEY", "sekrit-0123456789abcdef")
    replies = [code("send_email('a@x', 'key: sekrit-0123456789abcdef')")]
    with Server(approval_config(tmp_path, replies)) as server:
        alice = server.client()
        run_id = alice.start("leak", "s")
        pending = _wait_pending(alice)
        logged = [e for e in alice.events(run_id, stop=lambda e: e["event"] == "approval_requested")][-1]
        alice.request("POST", f"/api/approvals/{pending['id']}", {"verdict": "deny"})

    assert "sekrit" not in json.dumps(pending) and "sekrit" not in json.dumps(logged["data"])
    assert pending["arguments"]["to"] == "a@x"
