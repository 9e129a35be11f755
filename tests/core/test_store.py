from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from index.engine import Engine
from index.errors import BuildInProgressError, IndexLoadError, LibraryError
from index.library.documents import load_library
from index.retrieval.fusion import FusionSettings
from index.retrieval.lexical import LexicalIndex
from index.retrieval.manifest import FORMAT_VERSION
from index.retrieval.store import IndexStore
from tests.helpers import HashingEmbedder, small_library, write_doc


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return small_library(tmp_path / "knowledge")


def build(store: IndexStore, library: Path, embedder: HashingEmbedder,  # type: ignore[no-untyped-def]
          fusion: FusionSettings | None = None):
    return store.build(load_library(library).documents, embedder, fusion=fusion)


def test_build_then_load_and_search(tmp_path: Path, library: Path) -> None:
    embedder = HashingEmbedder()
    store = IndexStore(tmp_path / "data")
    report = build(store, library, embedder)
    assert report.documents == 5 and report.chunks >= 5 and report.added == sorted(report.added)
    index = store.load(embedder)
    manifest = index.manifest
    assert manifest.model.id == "test/hashing" and manifest.model.dimension == 64
    assert manifest.chunk_count == len(index) == report.chunks
    assert manifest.kinds == {"article": 1, "related": 2, "drill": 2}
    hits = index.search("what tire pressure in sand", k=3)
    assert hits[0].chunk.doc_id == "tire-care"
    assert hits[0].lexical_rank == 1 and hits[0].dense_rank is not None


def test_a_second_build_embeds_nothing_and_a_change_embeds_only_that_document(tmp_path: Path,
                                                                               library: Path) -> None:
    embedder = HashingEmbedder()
    store = IndexStore(tmp_path / "data")
    # The plain blend needs no sentence vectors, so each chunk is one embedded text.
    linear = FusionSettings()
    first = build(store, library, embedder, linear)
    assert first.embedded == first.chunks
    second = build(store, library, embedder, linear)
    assert second.embedded == 0
    assert (second.added, second.changed, second.removed) == ([], [], [])
    write_doc(library, "related", "tire-care", "## Tubes\nA brand new paragraph about rim locks and tubes.")
    (library / "drills" / "kettlebell-swing.md").unlink()
    write_doc(library, "related", "new-one", "A new document about the whoops section and standing.")
    third = build(store, library, embedder, linear)
    assert third.embedded == 2  # one passage in each of the two new texts
    assert (third.added, third.changed, third.removed) == (["new-one"], ["tire-care"], ["kettlebell-swing"])


def test_a_build_that_fails_midway_leaves_the_old_index_current(tmp_path: Path, library: Path) -> None:
    embedder = HashingEmbedder()
    store = IndexStore(tmp_path / "data")
    build(store, library, embedder)
    before = store.current_folder()

    def explode(folder: Path) -> None:
        assert (folder / "manifest.json").is_file()
        raise RuntimeError("killed midway")

    with pytest.raises(RuntimeError):
        store.build(load_library(library).documents, embedder, before_switch=explode)
    assert store.current_folder() == before
    assert not list(store.root.glob(".tmp-*"))
    assert len(store.load(embedder)) > 0


def test_loading_checks_the_model_the_format_and_the_files(tmp_path: Path, library: Path) -> None:
    store = IndexStore(tmp_path / "data")
    with pytest.raises(IndexLoadError, match="no index"):
        store.load(HashingEmbedder())
    build(store, library, HashingEmbedder())
    with pytest.raises(IndexLoadError, match=r"built with 'test/hashing'.*'other/model'") as info:
        store.load(HashingEmbedder(model_id="other/model"))
    assert "hinge index build" in str(info.value)
    folder = store.current_folder()
    assert folder is not None
    (folder / "vectors.npy").write_bytes(b"garbage")
    with pytest.raises(IndexLoadError, match="damaged"):
        store.load(HashingEmbedder())
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format_version"] = 99
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexLoadError, match="format 99"):
        store.load(HashingEmbedder())


def test_an_index_of_an_older_format_is_rebuilt_at_start_up(tmp_path: Path, library: Path) -> None:
    # An upgrade changes what an index holds (format 6: BM25+ instead of Lucene's BM25): the bot must start on
    # a fresh build, not refuse to start or search the old one.
    engine = Engine(tmp_path / "data", library, HashingEmbedder())
    old = engine.load()
    folder = engine.store.current_folder()
    assert folder is not None
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format_version"] = FORMAT_VERSION - 1
    (folder / "manifest.json").write_text(json.dumps(manifest))

    upgraded = Engine(tmp_path / "data", library, HashingEmbedder()).load()
    assert upgraded.manifest.format_version == FORMAT_VERSION
    assert upgraded.manifest.built_at > old.manifest.built_at
    assert engine.store.current_folder() != folder
    assert upgraded.lexical.method == LexicalIndex.METHOD == "bm25+"
    assert upgraded.search("what tire pressure in sand", k=1)[0].chunk.doc_id == "tire-care"


def test_only_one_build_at_a_time(tmp_path: Path, library: Path) -> None:
    store = IndexStore(tmp_path / "data")
    gate, release = threading.Event(), threading.Event()

    class SlowEmbedder(HashingEmbedder):
        def encode(self, texts, batch_size=16):  # type: ignore[no-untyped-def]
            gate.set()
            release.wait(10)
            return super().encode(texts, batch_size)

    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(build, store, library, SlowEmbedder())
        assert gate.wait(10)
        assert store.building
        with pytest.raises(BuildInProgressError):
            build(store, library, HashingEmbedder())
        release.set()
        running.result(timeout=30)
    assert not store.building


def test_reindex_swaps_while_searches_continue_and_a_bad_library_keeps_the_old_index(
        tmp_path: Path, library: Path) -> None:
    engine = Engine(tmp_path / "data", library, HashingEmbedder())
    first = engine.load()
    errors: list[BaseException] = []
    stop = threading.Event()

    def ask_repeatedly() -> None:
        for _ in range(2000):
            if stop.is_set():
                return
            try:
                assert engine.search("attack position elbows", 3)
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=ask_repeatedly) for _ in range(3)]
    for t in threads:
        t.start()
    write_doc(library, "related", "extra", "Extra text about ruts and standing up.")
    report = engine.reindex(built_by="test")
    stop.set()
    for t in threads:
        t.join(10)
    assert not errors
    assert report.added == ["extra"]
    assert engine.index is not first
    serving = engine.index
    (library / "related" / "broken.md").write_text("no front matter")
    with pytest.raises(LibraryError, match=r"broken\.md"):
        engine.reindex()
    assert engine.index is serving
