from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PROJECT = Path(__file__).resolve().parent.parent
KNOWLEDGE = PROJECT / "knowledge"


@pytest.fixture(scope="session")
def real_embedder():  # type: ignore[no-untyped-def]
    """The bundled all-MiniLM-L6-v2, loaded once per test run."""
    from index.embedding import SentenceEmbedder

    return SentenceEmbedder()


@pytest.fixture(scope="session")
def library_engine(real_embedder, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The real library, indexed once with the real model, for answer and bot tests."""
    from index.engine import Engine

    engine = Engine(tmp_path_factory.mktemp("library-data"), KNOWLEDGE, real_embedder)
    engine.load()
    return engine
