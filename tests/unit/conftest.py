"""Session fixtures shared by several unit-test modules."""

from __future__ import annotations

import pytest

from tests.unit.all_templates import Synthesized, synthesize_all


@pytest.fixture(scope="session")
def all_templates(tmp_path_factory) -> dict[str, Synthesized]:
    """Every kind of template EMD synthesizes (tests/unit/all_templates.py), synthesized once per session."""
    return synthesize_all(tmp_path_factory.mktemp("all-templates"))
