from __future__ import annotations

import pytest

from codeact import CodeAgent
from codeact.agent.voting import answer_key, run_voted
from codeact.errors import ConfigError
from codeact.models import ScriptedModel
from codeact.sandbox.process import ProcessSandbox


def answer(src: str) -> str:
    return f"Thought: go.\n```python\n{src}\n```"


def agent(*replies: str) -> tuple[CodeAgent, ScriptedModel]:
    model = ScriptedModel(list(replies))
    return CodeAgent(model, sandbox=ProcessSandbox, store=False, max_steps=1), model  # a failed run: 2 replies


def test_two_agreeing_samples_of_three_decide_and_the_third_is_never_run() -> None:
    voter, model = agent(answer("final_answer(38)"), answer("final_answer(38.0)"), answer("final_answer(1)"))
    vote = run_voted(voter, "t", k=3)
    assert vote.result.output == 38 and vote.votes == 2
    assert vote.answers == (38, 38.0)
    assert len(model.calls) == 2
    assert vote.usage.prompt_tokens == sum(len(c[0].content.split()) + len(c[1].content.split()) for c in model.calls)


def test_a_majority_beats_the_greedy_answer_and_failed_runs_do_not_vote() -> None:
    voter, _ = agent(answer("final_answer(7)"), answer("x = 1/0"), answer("x = 1/0"),
                     answer("final_answer(9)"), answer("final_answer('9.0')"))
    vote = run_voted(voter, "t", k=4)
    assert vote.result.output == 9 and vote.votes == 2
    assert vote.answers == (7, None, 9, "9.0")


def test_a_tie_goes_to_the_earliest_sample_and_nothing_solved_returns_the_greedy_run() -> None:
    voter, _ = agent(answer("final_answer('a')"), answer("final_answer('b')"), answer("final_answer('c')"))
    assert run_voted(voter, "t", k=3).result.output == "a"
    failing, _ = agent(answer("1/0"), answer("1/0"), answer("1/0"), answer("1/0"))
    vote = run_voted(failing, "t", k=2)
    assert vote.votes == 0 and vote.result.status != "success" and vote.answers == (None, None)


def test_samples_after_the_first_are_sampled_hot_and_each_gets_a_fresh_kernel() -> None:
    from codeact.models.openai_compat import OpenAICompatible
    from tests.servers.chat_server import ChatServer, chat

    with ChatServer() as server:
        server.push(chat(answer("seen = 'x' in dir()\nx = 1\nfinal_answer(seen)")),
                    chat(answer("final_answer('x' in dir())")))
        model = OpenAICompatible("m", base_url=server.url, temperature=0.0)
        voter = CodeAgent(model, sandbox=ProcessSandbox, store=False, max_steps=2)
        vote = run_voted(voter, "t", k=3, temperature=0.8)
        sent = [request.json.get("temperature") for request in server.requests]
    assert sent == [0.0, 0.8]
    assert vote.answers == (False, False)  # the second kernel did not see the first one's `x`
    assert voter.model is model  # the agent is given back its own model


def test_voting_refuses_an_agent_that_holds_one_kernel_and_a_k_below_one() -> None:
    sandbox = ProcessSandbox()
    try:
        shared = CodeAgent(ScriptedModel([]), sandbox=sandbox, store=False)
        assert not shared.owns_sandbox and agent()[0].owns_sandbox
        with pytest.raises(ConfigError, match="fresh kernel"):
            run_voted(shared, "t")
    finally:
        sandbox.close()
    with pytest.raises(ConfigError, match="at least 1"):
        run_voted(agent()[0], "t", k=0)


def test_answer_key_treats_equal_numbers_and_spellings_as_one_vote() -> None:
    assert answer_key(38) == answer_key(38.0) == answer_key("38.0") == answer_key(" 38 ")
    assert answer_key("Oslo.") == answer_key("  oslo ")
    assert answer_key(True) != answer_key(1)
    assert answer_key([1, 2]) != answer_key([2, 1])
