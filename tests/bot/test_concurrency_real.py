"""Answering is thread-safe: 8 threads answer with the real model (one shared tokenizer, per-thread stemmers)
while a reindex embeds the whole library again, and every answer equals the same question answered alone."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from index.answers.composer import AnswerComposer
from index.answers.models import Answer
from index.engine import Engine
from tests.conftest import KNOWLEDGE

pytestmark = pytest.mark.slow

QUESTIONS = [
    "why is my lower back cooked after two motos",
    "how do I hold the attack position",
    "what drill grooves the hinge",
    "kettlebell swings for riders?",
    "how many sets of rdls",
    "tight hamstrings from a desk job",
    "how do I stand in the whoops",
    "should I stretch before a moto",
]


def essence(answer: Answer) -> tuple[object, ...]:
    return (answer.status, answer.lead, tuple((c.document_id, c.excerpt) for c in answer.citations),
            tuple(c.document_id for c in answer.more), answer.drill.id if answer.drill else None)


def test_eight_threads_answer_while_a_reindex_runs(tmp_path: Path, real_embedder) -> None:  # type: ignore[no-untyped-def]
    knowledge = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, knowledge)
    engine = Engine(tmp_path / "data", knowledge, real_embedder)
    engine.load()
    index = engine.index
    composer = AnswerComposer()
    alone = {q: essence(composer.ask(index, q)) for q in QUESTIONS}

    # The reindex embeds every window again (a changed model id would be cheating; new text is not):
    # append a paragraph to every document, so the build tokenizes and embeds while the threads answer.
    for path in knowledge.rglob("*.md"):
        if path.name != "README.md":
            path.write_text(path.read_text(encoding="utf-8") + "\n\nRiders hinge at the hips on every lap.\n",
                            encoding="utf-8")
    started = threading.Event()
    done = threading.Event()
    errors: list[BaseException] = []

    def reindex() -> None:
        try:
            started.set()
            engine.reindex(progress=lambda n, total: None)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    builder = threading.Thread(target=reindex)
    builder.start()
    started.wait(10)
    rounds = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        # Keep answering, in rounds of 8 at once, until the build is over (bounded: 40 rounds at most).
        while rounds < 40:
            results = list(pool.map(lambda q: (q, essence(composer.ask(index, q))), QUESTIONS))
            for question, got in results:
                assert got == alone[question], question
            rounds += 1
            if done.is_set() and rounds >= 2:
                break
    builder.join(120)
    assert not errors, errors
    assert done.is_set() and rounds >= 2
    assert engine.index is not index and len(engine.index.documents) == len(index.documents)
