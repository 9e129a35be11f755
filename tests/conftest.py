from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Every test's data dir is new: one exported model graph serves them all (it is named by its fingerprint).
os.environ.setdefault("HINGE_MODEL_CACHE_DIR", str(Path(tempfile.gettempdir()) / "hinge-coach-test-models"))

PROJECT = Path(__file__).resolve().parent.parent
KNOWLEDGE = PROJECT / "knowledge"


@pytest.fixture(scope="session")
def real_embedder():  # type: ignore[no-untyped-def]
    """The bundled model pair as the bot ships it (MiniLM and bge-small on onnxruntime), loaded once per test run."""
    from index.engine import make_embedder

    return make_embedder("bundled", Path(tempfile.gettempdir()))


@pytest.fixture(scope="session")
def library_engine(tmp_path_factory):  # type: ignore[no-untyped-def]
    """The real library with the real model, configured as the bot ships, indexed once per run."""
    from bot.runner import make_engine
    from bot.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("library-data"), knowledge_dir=KNOWLEDGE,
                        _env_file=None)  # type: ignore[call-arg]
    engine = make_engine(settings)
    engine.load()
    # The library's sentence vectors are shared by every composer of the process: embedded once here, a bot
    # on this library warms up in about a second instead of several.
    from index.answers.composer import AnswerComposer

    AnswerComposer().warm(engine.index)
    return engine
