"""The agent package's public names are a promise: this pins them."""

import codeact.agent


def test_agent_namespace():
    assert sorted(codeact.agent.__all__) == sorted([
        "Agent", "CodeAgent", "Compaction", "Divergence", "ReplayReport", "RunResult", "ToolCallingAgent",
        "replay_run",
    ])
    for name in codeact.agent.__all__:
        assert hasattr(codeact.agent, name)
