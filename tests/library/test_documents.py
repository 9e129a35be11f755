from __future__ import annotations

from pathlib import Path

import pytest

from index.errors import KnowledgeFileError, LibraryError
from index.library.documents import Kind, load_beir_corpus, load_file, load_library
from tests.helpers import DRILL_BODY, SOURCE, front_matter, write_doc


def error_for(path: Path) -> KnowledgeFileError:
    with pytest.raises(KnowledgeFileError) as info:
        load_file(path)
    return info.value


def test_a_valid_markdown_file_loads_with_its_fields(tmp_path: Path) -> None:
    path = write_doc(tmp_path, "drill", "dowel-drill", DRILL_BODY, level="beginner", equipment=["dowel"])
    doc = load_file(path)
    assert doc.id == "dowel-drill" and doc.kind is Kind.DRILL and doc.level == "beginner"
    assert doc.url == SOURCE["url"]
    assert set(doc.sections()) == {"Steps", "Cues", "Common faults", "Progressions"}


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ("no front matter here", "front matter", "'---'"),
        ("---\nid: [unclosed\n---\nbody", "front matter", "not valid YAML"),
        ("---\n- a list\n---\nbody", "front matter", "mapping"),
        ("---\nid: x\ntitle: t\n---\nbody", "kind", "missing"),
        (front_matter(id="Bad Id", kind="article", title="t") + "body", "id", "pattern"),
        (front_matter(id="a", kind="article") + "body", "title", "required"),
        (front_matter(id="a", kind="podcast", title="t") + "body", "kind", ""),
        (front_matter(id="a", kind="article", title="t", sources=[]) + "body", "sources", "at least 1"),
        (front_matter(id="a", kind="article", title="t", sources=[{**SOURCE, "url": "www.no-scheme.com/x"}])
         + "body", "sources.0.url", "absolute"),
        (front_matter(id="a", kind="article", title="t", sources=[{**SOURCE, "url": "https://example.com/x"}])
         + "body", "sources.0.url", "placeholder"),
        (front_matter(id="a", kind="article", title="t", colour="red") + "body", "colour", "Extra"),
        (front_matter(id="a", kind="article", title="t") + "\n\n", "body", "no text"),
        (front_matter(id="a", kind="drill", title="t", level="beginner", dose="3x10") + "## Steps\n1. go\n",
         "body", "Cues, Common faults, Progressions"),
        (front_matter(id="a", kind="drill", title="t", level="expert", dose="3x10") + DRILL_BODY, "level", ""),
        (front_matter(id="a", kind="video", title="t", videos=[]) + "body", "videos", "at least 1"),
    ],
)
def test_a_bad_markdown_file_names_the_file_field_and_reason(tmp_path: Path, text: str, field: str,
                                                            reason: str) -> None:
    path = tmp_path / "bad.md"
    path.write_text(text, encoding="utf-8")
    error = error_for(path)
    assert error.path == str(path)
    assert error.field == field
    assert reason in error.reason
    assert str(path) in str(error) and field in str(error)


def test_non_utf8_and_unsupported_files_are_reported(tmp_path: Path) -> None:
    latin = tmp_path / "latin.md"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    assert error_for(latin).field == "encoding"
    pdf = tmp_path / "file.pdf"
    pdf.write_bytes(b"%PDF")
    assert "unsupported" in error_for(pdf).reason


def test_text_and_html_files_load_as_documents(tmp_path: Path) -> None:
    txt = tmp_path / "Hip Notes.txt"
    txt.write_text("Hip notes\n\nHinge at the hips and keep the spine long.", encoding="utf-8")
    doc = load_file(txt, Kind.RELATED)
    assert doc.id == "hip-notes" and doc.title == "Hip notes"
    html = tmp_path / "page.html"
    paragraph = "A proper hip hinge keeps the spine long while the hips move back behind the heels. " * 4
    html.write_text(f"<html><head><title>Hinge page</title></head><body><nav>Home | Shop | Login</nav>"
                    f"<article><h1>Hinge page</h1><p>{paragraph}</p><p>{paragraph}</p></article>"
                    f"<footer>Copyright 2024 all rights reserved</footer></body></html>", encoding="utf-8")
    doc = load_file(html)
    assert "spine long" in doc.body
    assert "Copyright" not in doc.body and "Login" not in doc.body


def test_a_library_build_reports_every_bad_file_not_just_the_first(tmp_path: Path) -> None:
    write_doc(tmp_path, "article", "good-one")
    write_doc(tmp_path, "article", "good-one-copy").write_text(
        (tmp_path / "articles" / "good-one.md").read_text(), encoding="utf-8")  # duplicate id
    (tmp_path / "articles" / "broken.md").write_text("no front matter", encoding="utf-8")
    write_doc(tmp_path, "related", "points-nowhere", related=["missing-doc"])
    write_doc(tmp_path, "related", "drill-is-article", drills=["good-one"])
    misplaced = write_doc(tmp_path, "article", "misplaced")
    misplaced.rename(tmp_path / "related" / "misplaced.md")
    (tmp_path / "README.md").write_text("not a document", encoding="utf-8")
    library = load_library(tmp_path)
    messages = sorted(str(e) for e in library.errors)
    assert len(library.errors) == 5, messages
    assert any("already used" in m for m in messages)
    assert any("broken.md" in m for m in messages)
    assert any("'missing-doc' is not the id" in m for m in messages)
    assert any("not a drill" in m for m in messages)
    assert any("misplaced.md: kind" in m for m in messages)
    with pytest.raises(LibraryError) as info:
        library.raise_for_errors()
    assert len(info.value.errors) == 5


def test_a_missing_knowledge_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="does not exist"):
        load_library(tmp_path / "nope")


def test_beir_corpus_rows_become_documents(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "d1", "title": "Hinge", "text": "Hips back."}\n\n{"_id": 2, "text": "Plank."}\n')
    docs = load_beir_corpus(corpus)
    assert [d.id for d in docs] == ["d1", "2"]
    assert docs[0].body == "Hinge Hips back."
    corpus.write_text('{"title": "no id"}\n')
    with pytest.raises(KnowledgeFileError, match="line 1"):
        load_beir_corpus(corpus)
