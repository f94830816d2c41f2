"""The `codeact-team` bench config: a manager with no tools delegates to one member per desk of
the task's `TEAM`, through a real HTTP model server and the real sandbox."""

from __future__ import annotations

from codeact.bench.agents import get_agent_config
from codeact.bench.model import BenchModel
from codeact.bench.tasks import load_taskset, load_tools
from tests._isolation import require_sandbox
from tests.servers.chat_server import ChatServer, chat


def fenced(code: str) -> str:
    return f"Thought: next.\n```python\n{code}\n```"


def reply(request):
    messages = request.json["messages"]
    system, last = messages[0]["content"], messages[-1]["content"]
    if "people(task: str) -> str" in system:  # the manager
        if "Observation" in last:
            return chat(fenced("final_answer(int(desks))"), usage=(100, 10))
        return chat(fenced("office = people('Which office does Tom Berg work in?')\n"
                           "desks = ops(f'How many desks has the {office} office?')"), usage=(100, 10))
    if "find_person(" in system:  # the people desk
        return chat(fenced("final_answer(find_person('Tom Berg')['office'])"), usage=(30, 5))
    return chat(fenced("final_answer(office_details('berlin')['desks'])"), usage=(20, 5))  # ops


@require_sandbox()
def test_the_team_config_delegates_and_counts_the_members_tokens(tmp_path):
    task = next(t for t in load_taskset("office").tasks if t.id == "office-02")
    with ChatServer(default=reply) as server:
        model = BenchModel(f"openai-compat:{server.url}#m", label="scripted", run_log=tmp_path / "runs.db")
        outcome = get_agent_config("codeact-team")(task, load_tools(task.tools), model, 4)
    assert outcome.status == "success" and outcome.output == 48 == task.answer
    assert outcome.prompt_tokens == 100 + 30 + 20 + 100 and outcome.steps == 2
