from __future__ import annotations

from index.library.chunking import MAX_WORDS, chunk_document
from index.library.documents import Document, Kind


def doc(body: str) -> Document:
    return Document(id="d", kind=Kind.ARTICLE, title="Title", body=body)


def sentence(n: int, words: int = 12) -> str:
    return " ".join(f"w{n}x{i}" for i in range(words - 1)) + " end."


def test_every_chunk_is_an_exact_span_of_the_body() -> None:
    body = "## One\n\n" + "\n\n".join(" ".join(sentence(p * 10 + s) for s in range(5)) for p in range(8))
    body += "\n\n## Two\n### Deeper\n\n" + " ".join(sentence(900 + s) for s in range(40))
    chunks = chunk_document(doc(body))
    assert len(chunks) > 3
    for chunk in chunks:
        assert body[chunk.start:chunk.end] == chunk.text
        assert len(chunk.text.split()) <= MAX_WORDS
        assert "##" not in chunk.text
    assert chunks[0].heading_path == ("One",)
    assert chunks[-1].heading_path == ("Two", "Deeper")
    assert [c.id for c in chunks] == [f"d#{i}" for i in range(len(chunks))]


def test_paragraphs_are_packed_up_to_the_limit_and_short_tails_merged() -> None:
    paragraphs = [" ".join(sentence(p * 10 + s) for s in range(4)) for p in range(6)]  # 48 words each
    body = "\n\n".join(paragraphs) + "\n\nShort tail."
    chunks = chunk_document(doc(body))
    counts = [len(c.text.split()) for c in chunks]
    assert all(60 <= n <= MAX_WORDS for n in counts), counts
    assert chunks[-1].text.endswith("Short tail.")


def test_a_long_paragraph_splits_at_sentence_ends() -> None:
    body = " ".join(sentence(i) for i in range(MAX_WORDS // 4))  # 12 words a sentence: 3 x MAX_WORDS, one paragraph
    chunks = chunk_document(doc(body))
    assert len(chunks) >= 3
    assert all(c.text.endswith("end.") for c in chunks)


def test_headings_do_not_leak_between_sections() -> None:
    body = "Intro text here.\n\n## Steps\n1. Hinge.\n\n## Cues\n- Long spine."
    chunks = chunk_document(doc(body))
    paths = [c.heading_path for c in chunks]
    assert paths == [(), ("Steps",), ("Cues",)]
    assert chunks[0].embedding_text().startswith("Title\n")
    assert chunks[1].embedding_text().startswith("Title > Steps\n")
