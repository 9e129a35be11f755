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
    from index.retrieval.embedding import SentenceEmbedder

    return SentenceEmbedder()


@pytest.fixture(scope="session")
def library_engine(tmp_path_factory):  # type: ignore[no-untyped-def]
    """The real library with the real model, configured as the bot ships, indexed once per run."""
    from bot.runner import make_engine
    from bot.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("library-data"), knowledge_dir=KNOWLEDGE,
                        _env_file=None)  # type: ignore[call-arg]
    engine = make_engine(settings)
    engine.load()
    return engine
