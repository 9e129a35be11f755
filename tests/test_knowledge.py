"""The shipped library, loaded through the real loader."""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import urlparse

import pytest

from index.documents import DRILL_SECTIONS, Document, Kind, LoadedLibrary, load_library
from tests.conftest import KNOWLEDGE

PAIN = re.compile(r"\b(pain|injur\w*|numb|numbness)\b", re.I)
REFERRAL = re.compile(r"(doctor|physio)", re.I)


@pytest.fixture(scope="module")
def library() -> LoadedLibrary:
    return load_library(KNOWLEDGE)


@pytest.fixture(scope="module")
def documents(library: LoadedLibrary) -> list[Document]:
    return library.documents


def test_every_file_is_valid(library: LoadedLibrary) -> None:
    assert library.errors == [], "\n".join(str(e) for e in library.errors)


def test_the_library_has_what_the_issue_asks_for(documents: list[Document]) -> None:
    kinds = Counter(d.kind for d in documents)
    assert kinds[Kind.ARTICLE] >= 1
    assert kinds[Kind.RELATED] >= 8
    assert kinds[Kind.FORUM] >= 30
    assert kinds[Kind.DRILL] >= 14
    assert kinds[Kind.VIDEO] >= 6
    assert any(d.id == "hip-hinge-ride-faster" for d in documents)


def test_ids_are_unique_and_match_file_names(documents: list[Document]) -> None:
    ids = [d.id for d in documents]
    assert len(ids) == len(set(ids))
    for doc in documents:
        assert doc.path.endswith(f"/{doc.id}.md"), doc.path


def test_every_reference_resolves(documents: list[Document]) -> None:
    by_id = {d.id: d for d in documents}
    for doc in documents:
        for ref in doc.related:
            assert ref in by_id, f"{doc.id}: related {ref}"
        for ref in doc.drills:
            assert by_id.get(ref) and by_id[ref].kind == Kind.DRILL, f"{doc.id}: drill {ref}"


def test_every_drill_has_all_its_sections(documents: list[Document]) -> None:
    for doc in documents:
        if doc.kind == Kind.DRILL:
            sections = doc.sections()
            assert all(sections.get(s) for s in DRILL_SECTIONS), doc.id
            assert doc.level in ("beginner", "intermediate", "advanced") and doc.dose


def test_every_link_is_absolute_and_real_and_every_document_has_a_source(documents: list[Document]) -> None:
    for doc in documents:
        assert doc.sources, doc.id
        for url in [s.url for s in doc.sources] + [v.url for v in doc.videos]:
            parsed = urlparse(url)
            assert parsed.scheme in ("http", "https") and parsed.netloc, (doc.id, url)
            assert "example." not in parsed.netloc and "localhost" not in parsed.netloc, (doc.id, url)


def test_documents_that_touch_pain_or_injury_refer_to_a_professional(documents: list[Document]) -> None:
    for doc in documents:
        if PAIN.search(doc.body):
            assert REFERRAL.search(doc.body), f"{doc.id} mentions pain or injury without a referral"


def test_forum_answers_carry_their_question(documents: list[Document]) -> None:
    for doc in documents:
        if doc.kind == Kind.FORUM:
            assert doc.question and len(doc.question) > 10


def test_the_readme_topic_table_lists_every_document(documents: list[Document]) -> None:
    table = (KNOWLEDGE / "README.md").read_text(encoding="utf-8").split("## Topics covered", 1)[1]
    missing = [d.id for d in documents if not re.search(rf"(?<![\w-]){re.escape(d.id)}(?![\w-])", table)]
    assert not missing, f"add these ids to the topic table in knowledge/README.md: {missing}"
