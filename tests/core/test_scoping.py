"""One server's library never touches another's answers: the real model, the real library, every rider question."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from index.answers.composer import AnswerComposer
from index.engine import Engine
from index.evaluation.questions import load_questions
from index.library.documents import Document, Kind, load_file

PROJECT = Path(__file__).resolve().parent.parent.parent
KNOWLEDGE = PROJECT / "knowledge"
QUESTIONS = PROJECT / "tests" / "data" / "questions.jsonl"
SERVER_A, SERVER_B, SERVER_C = 1001, 2002, 3003
# The shipped documents riders' questions cite most: a team that copies them (its own version of the hinge, the
# attack position, back fatigue) lands right beside them in every ranking.
ON_TOPIC = ["articles/hip-hinge-ride-faster.md", "forum/attack-position-without-arm-pump.md"]


def team_document(source: Document, doc_id: str, claimed_guild: int) -> str:
    """A team's own forum answer built from a shipped document's text; its front matter claims `claimed_guild`."""
    meta = {"id": doc_id, "kind": Kind.FORUM.value, "title": f"Our coach on {source.title.lower()}",
            "question": source.question or source.title, "summary": source.summary, "tags": ["coach-answer"],
            "sources": [s.model_dump(exclude_none=True) for s in source.sources[:1]], "guild_id": claimed_guild}
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, width=1_000_000) + "---\n\n" + source.body + "\n"


def shipped(limit: int) -> list[Document]:
    """The first documents of each kind folder that a team could write its own version of, on-topic ones first."""
    paths = [KNOWLEDGE / p for p in ON_TOPIC]
    paths += sorted(p for p in (KNOWLEDGE / "articles").glob("*.md") if p not in paths)
    paths += sorted(p for p in (KNOWLEDGE / "forum").glob("*.md") if p not in paths)
    return [load_file(p) for p in paths[:limit]]


def add_team_documents(library: Path, guild: int, prefix: str, sources: list[Document]) -> list[str]:
    folder = library / "guilds" / str(guild) / "forum"
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for source in sources:
        doc_id = f"{prefix}-{source.id}"[:80]
        (folder / f"{doc_id}.md").write_text(team_document(source, doc_id, guild), encoding="utf-8")
        ids.append(doc_id)
    return ids


def answers_in(engine: Engine, composer: AnswerComposer, questions: list[str], guild: int | None) -> list[str]:
    index = engine.index
    return [composer.ask(index, q, guild).model_dump_json(exclude={"elapsed_ms"}) for q in questions]


@pytest.fixture
def team_engine(tmp_path: Path, library_engine, real_embedder) -> Engine:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    (data / "cache").mkdir(parents=True)
    # The shipped passages' vectors come from the session's index build: only the teams' documents are embedded.
    shutil.copy(library_engine.store.cache_path, data / "cache" / "embeddings.sqlite")
    return Engine(data, KNOWLEDGE, real_embedder, library_dir=tmp_path / "library")


@pytest.mark.slow
def test_documents_added_in_server_b_leave_every_answer_in_server_a_byte_for_byte_the_same(
        team_engine: Engine) -> None:
    questions = [case.question for case in load_questions(QUESTIONS)]
    assert len(questions) > 300  # both splits
    library = team_engine.library_dir
    a_docs = add_team_documents(library, SERVER_A, "team-a", shipped(2))
    team_engine.load()
    composer = AnswerComposer()
    before = {g: answers_in(team_engine, composer, questions, g) for g in (SERVER_A, SERVER_C, None)}
    assert any(a_docs[0] in row for row in before[SERVER_A])  # server A's own documents are cited in A

    # Server B writes its own versions of the library's most cited documents.
    b_docs = add_team_documents(library, SERVER_B, "team-b", shipped(12))
    team_engine.reindex()
    after = {g: answers_in(team_engine, composer, questions, g) for g in (SERVER_A, SERVER_C, None)}
    in_b = answers_in(team_engine, composer, questions[:60], SERVER_B)
    # The documents are on topic: server B's own answers cite them.
    assert sum(any(d in row for d in b_docs) for row in in_b) >= 10

    for guild in (SERVER_A, SERVER_C, None):
        changed = [q for q, old, new in zip(questions, before[guild], after[guild], strict=True) if old != new]
        assert changed == [], f"{len(changed)} of {len(questions)} answers changed in server {guild}: {changed[:5]}"
    assert not any(d in row for rows in after.values() for row in rows for d in b_docs)


@pytest.mark.slow
def test_servers_asking_at_once_on_a_cold_index_get_one_scope_each_and_the_same_answers(
        tmp_path: Path, team_engine: Engine) -> None:
    """Scopes are built on first use, from whatever thread asks first: eight threads asking in three servers at
    once build each scope once and answer as one thread alone does."""
    from concurrent.futures import ThreadPoolExecutor

    add_team_documents(tmp_path / "library", SERVER_B, "b", shipped(4))
    add_team_documents(tmp_path / "library", SERVER_C, "c", shipped(6)[4:])
    team_engine.load()
    composer = AnswerComposer()
    questions = [q.question for q in load_questions(QUESTIONS)][:24]
    guilds = [SERVER_A, SERVER_B, SERVER_C]
    work = [(q, guilds[n % 3]) for n, q in enumerate(questions)]
    index = team_engine.index
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda job: (composer.ask(index, *job).model_dump_json(exclude={"elapsed_ms"}),
                                              index.scoped(job[1])), work))
    alone = [composer.ask(index, q, g).model_dump_json(exclude={"elapsed_ms"}) for q, g in work]
    assert [answer for answer, _ in together] == alone
    for guild in guilds:
        assert len({id(scope) for (_, scope), (_, g) in zip(together, work, strict=True) if g == guild}) == 1
    assert index.scoped(SERVER_B) is not index.scoped(SERVER_C)
