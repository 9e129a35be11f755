"""Fixtures shared by the wire tests that need the shipped library indexed (built once per test run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import KNOWLEDGE
from tests.fake_discord.process import build_index


@pytest.fixture(scope="session")
def wire_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped library indexed once; each bot gets a copy of this data dir."""
    data = tmp_path_factory.mktemp("wire-index-shared") / "data"
    build_index(data, KNOWLEDGE)
    return data
