from __future__ import annotations

import importlib.util

import pytest

from codeact.errors import MissingExtraError


@pytest.mark.skipif(importlib.util.find_spec("litellm") is not None, reason="litellm is installed")
def test_missing_extra_names_the_install_command() -> None:
    from codeact.models.litellm import LiteLLM

    with pytest.raises(MissingExtraError) as info:
        LiteLLM("gpt-4o-mini")

    assert "pip install 'codeact[litellm]'" in str(info.value)
    assert info.value.extra == "litellm"
