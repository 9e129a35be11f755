"""The shipped library, loaded through the real loader."""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import urlparse

import pytest

from index.library.documents import DRILL_SECTIONS, Document, Kind, LoadedLibrary, load_library
from tests.conftest import KNOWLEDGE, PROJECT

PAIN = re.compile(r"\b(pain|painful|injur\w*|numb|numbness)\b", re.I)
REFERRAL = re.compile(r"(doctor|physio)", re.I)
SEED_DIR = PROJECT.parent / "shared" / "seed"
SHARED_RUN = 12


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


def test_the_second_edition_has_its_size_and_distinct_videos(documents: list[Document]) -> None:
    """Issue 14: at least 110 documents and 15 video documents, each on its own video page."""
    assert len(documents) >= 110
    videos = [d for d in documents if d.kind == Kind.VIDEO]
    assert len(videos) >= 15
    assert len({d.videos[0].url for d in videos if d.videos}) >= 15


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


def _topic_section() -> list[str]:
    return (KNOWLEDGE / "README.md").read_text(encoding="utf-8").split("## Topics covered", 1)[1].splitlines()


def test_every_topic_row_sits_inside_the_readme_table(documents: list[Document]) -> None:
    """Issue 28: rows added after the table's closing sentence render as loose text, not as table rows.
    The table is one unbroken block of `|` lines; every row has a topic and known ids; every id is in it."""
    lines = _topic_section()
    starts = [i for i, line in enumerate(lines) if line.startswith("|")]
    assert starts, "no topic table in knowledge/README.md"
    first, last = starts[0], starts[-1]
    outside = [line for line in lines[first:last + 1] if not line.startswith("|")]
    assert not outside, f"these lines break the topic table (rows after them fall outside it): {outside}"
    assert lines[first] == "| topic | documents |" and lines[first + 1] == "| --- | --- |", lines[first:first + 2]
    known = {d.id for d in documents}
    listed: set[str] = set()
    for row in lines[first + 2:last + 1]:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        assert len(cells) == 2 and cells[0] and cells[1], f"a topic row needs a topic and its ids: {row}"
        ids = [i.strip() for i in cells[1].split(",")]
        unknown = [i for i in ids if i not in known]
        assert not unknown, f"the topic table names ids no document has: {unknown}"
        listed.update(ids)
    missing = sorted(known - listed)
    assert not missing, f"add these ids to a row of the topic table in knowledge/README.md: {missing}"


def _words(text: str) -> list[str]:
    """Lower-case words with punctuation dropped, so copying survives changed quotes, dashes and capitals."""
    return re.findall(r"[a-z0-9]+", text.lower().replace("\u2019", "").replace("'", ""))


def _runs(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def test_no_document_copies_a_run_of_the_seed_article(documents: list[Document]) -> None:
    """Facts carry over from the seed article, its sentences do not: no 12 words in a row in common."""
    seeds = sorted(SEED_DIR.glob("*")) if SEED_DIR.is_dir() else []
    if not seeds:
        pytest.skip(f"the seed article is not here ({SEED_DIR})")
    seed_runs: set[tuple[str, ...]] = set()
    for seed in seeds:
        if seed.is_file():
            seed_runs |= _runs(_words(seed.read_text(encoding="utf-8", errors="replace")), SHARED_RUN)
    copied = {}
    for doc in documents:
        text = " ".join([doc.title, doc.summary, doc.body])
        shared = _runs(_words(text), SHARED_RUN) & seed_runs
        if shared:
            copied[doc.id] = " ".join(sorted(shared)[0])
    assert not copied, f"rewrite these in our own words (first shared run shown): {copied}"


def test_the_run_check_catches_a_copy_despite_case_and_punctuation() -> None:
    original = "Poor hinging places forces on the spine that should be supported by the hips, which leads to fatigue."
    copy = "poor hinging places forces on the spine -- that should be supported by the HIPS which..."
    assert _runs(_words(original), SHARED_RUN) & _runs(_words(copy), SHARED_RUN)
    assert not _runs(_words(original), SHARED_RUN) & _runs(_words("A hinge done badly loads the spine."), SHARED_RUN)


def test_every_document_that_mentions_pain_injury_or_numbness_carries_the_professional_note(
        documents: list[Document]) -> None:
    """The README's rule, on the title, summary and body: name a doctor or physiotherapist in the body."""
    missing = [d.id for d in documents
               if PAIN.search(" ".join([d.title, d.summary, d.body])) and not REFERRAL.search(d.body)]
    assert not missing, f"add the see-a-doctor-or-physiotherapist note to: {missing}"


def test_every_drill_has_numbered_steps_cues_faults_and_a_dose(documents: list[Document]) -> None:
    problems = []
    for doc in documents:
        if doc.kind != Kind.DRILL:
            continue
        sections = doc.sections()
        steps = re.findall(r"^\s*\d+[.)]\s+\S", sections.get("Steps", ""), re.M)
        cues = re.findall(r"^\s*[-*]\s+\S", sections.get("Cues", ""), re.M)
        faults = re.findall(r"^\s*[-*]\s+\S", sections.get("Common faults", ""), re.M)
        if len(steps) < 2:
            problems.append(f"{doc.id}: Steps needs a numbered list")
        if not cues:
            problems.append(f"{doc.id}: Cues needs at least one cue")
        if not faults:
            problems.append(f"{doc.id}: Common faults needs at least one fault")
        if not (doc.dose and re.search(r"\d", doc.dose)):
            problems.append(f"{doc.id}: the dose needs sets, reps, time or frequency")
    assert not problems, "\n".join(problems)
