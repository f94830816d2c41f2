"""`codeact.batch` says what is public: every module's `__all__` true."""

from __future__ import annotations

from tests.models.test_package import public_names_missing_from_all


def test_every_batch_module_exports_exactly_its_public_names() -> None:
    assert public_names_missing_from_all("codeact.batch") == []
