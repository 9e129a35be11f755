"""The index on disk: immutable build folders, an atomic pointer to the current one, load checks.

    DATA_DIR/indexes/<build id>/   manifest.json, dense.faiss, vectors.npy, chunks.json, documents.json, lexical/
    DATA_DIR/indexes/CURRENT       the build id in use (replaced atomically)
    DATA_DIR/cache/embeddings.sqlite

A build writes a hidden temporary folder, renames it into place and only then moves the
pointer, so a build that fails or is killed leaves the previous index loadable and in use.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, TypeAdapter, ValidationError

from index.errors import BuildInProgressError, IndexLoadError
from index.library.chunking import Chunk, chunk_documents
from index.library.documents import Document
from index.retrieval.embedding import Embedder, EmbeddingCache, ProgressFn, embed_with_cache, text_key
from index.retrieval.fusion import FusionSettings
from index.retrieval.manifest import FORMAT_VERSION, MANIFEST_NAME, Manifest, ModelInfo, file_sha256
from index.retrieval.search import SearchIndex

POINTER = "CURRENT"
KEEP_BUILDS = 2
_CHUNKS = TypeAdapter(list[Chunk])
_DOCUMENTS = TypeAdapter(list[Document])


class BuildReport(BaseModel):
    build_id: str
    documents: int
    chunks: int
    embedded: int
    added: list[str]
    changed: list[str]
    removed: list[str]
    seconds: float


def document_hash(doc: Document) -> str:
    return hashlib.sha256(doc.model_dump_json(exclude={"path"}).encode()).hexdigest()[:16]


class IndexStore:
    def __init__(self, data_dir: Path, cache_path: Path | None = None) -> None:
        self.data_dir = data_dir
        self.root = data_dir / "indexes"
        self.cache_path = cache_path or data_dir / "cache" / "embeddings.sqlite"
        self._build_lock = threading.Lock()

    # -- reading ---------------------------------------------------------------------------
    def current_folder(self) -> Path | None:
        try:
            build_id = (self.root / POINTER).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        folder = self.root / build_id
        return folder if build_id and folder.is_dir() else None

    def read_manifest(self) -> Manifest | None:
        folder = self.current_folder()
        if folder is None:
            return None
        try:
            return Manifest.read(folder)
        except (OSError, ValidationError) as exc:
            raise IndexLoadError(f"the manifest in {folder} is damaged: {exc}") from exc

    def load(self, embedder: Embedder, fusion: FusionSettings | None = None,
             verify: bool = True) -> SearchIndex:
        folder = self.current_folder()
        if folder is None:
            raise IndexLoadError(f"there is no index in {self.data_dir}")
        return load_folder(folder, embedder, fusion, verify)

    # -- building --------------------------------------------------------------------------
    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        if not self._build_lock.acquire(blocking=False):
            raise BuildInProgressError("a build is already running")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            # The file lock covers other processes (a CLI build while the bot reindexes).
            with (self.root / ".build.lock").open("w") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError as exc:
                    raise BuildInProgressError("another process is building this index") from exc
                yield
        finally:
            self._build_lock.release()

    @property
    def building(self) -> bool:
        return self._build_lock.locked()

    def build(self, documents: Sequence[Document], embedder: Embedder,
              fusion: FusionSettings | None = None,
              progress: ProgressFn | None = None, built_by: str | None = None,
              before_switch: Callable[[Path], None] | None = None) -> BuildReport:
        """Build a new index folder from `documents` and make it current."""
        from index.retrieval.dense import DenseIndex  # faiss and bm25s load only when building
        from index.retrieval.lexical import LexicalIndex

        with self._exclusive():
            started = time.perf_counter()
            previous = self._previous_documents()
            chunks = chunk_documents(documents)
            settings = fusion or FusionSettings()
            texts = [c.embedding_text() for c in chunks]
            cache = EmbeddingCache(self.cache_path)
            # The cache is keyed by text, so a passage whose text did not change is never embedded again.
            vectors, embedded = embed_with_cache(embedder, texts, cache, progress=progress)
            build_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            tmp = self.root / f".tmp-{build_id}"
            tmp.mkdir(parents=True)
            try:
                DenseIndex.build(vectors).save(tmp)
                LexicalIndex.build([c.lexical_text() for c in chunks]).save(tmp / "lexical")
                (tmp / "chunks.json").write_bytes(_CHUNKS.dump_json(chunks))
                (tmp / "documents.json").write_bytes(_DOCUMENTS.dump_json(list(documents)))
                hashes = {d.id: document_hash(d) for d in documents}
                kinds: dict[str, int] = {}
                for doc in documents:
                    kinds[doc.kind.value] = kinds.get(doc.kind.value, 0) + 1
                seconds = time.perf_counter() - started
                manifest = Manifest(
                    model=ModelInfo(id=embedder.model_id, dimension=int(vectors.shape[1])),
                    fusion=settings,
                    chunk_count=len(chunks),
                    document_count=len(documents), documents=hashes, kinds=kinds,
                    sources_hash=hashlib.sha256("".join(sorted(hashes.values())).encode()).hexdigest()[:16],
                    built_at=datetime.now(UTC), build_seconds=round(seconds, 3), embedded=embedded,
                    built_by=built_by, files=_file_hashes(tmp),
                )
                manifest.write(tmp)
                if before_switch:
                    before_switch(tmp)
                final = self.root / build_id
                tmp.rename(final)
                self._point_to(build_id)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            self._prune(keep=build_id)
            cache.retain(embedder.model_id, [text_key(t) for t in texts])
            return BuildReport(
                build_id=build_id, documents=len(documents), chunks=len(chunks), embedded=embedded,
                added=sorted(set(hashes) - set(previous)), removed=sorted(set(previous) - set(hashes)),
                changed=sorted(i for i in hashes.keys() & previous.keys() if hashes[i] != previous[i]),
                seconds=round(time.perf_counter() - started, 3),
            )

    def _previous_documents(self) -> dict[str, str]:
        try:
            manifest = self.read_manifest()
        except IndexLoadError:
            return {}
        return dict(manifest.documents) if manifest else {}

    def _point_to(self, build_id: str) -> None:
        tmp = self.root / f".{POINTER}.tmp"
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(build_id)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.root / POINTER)

    def _prune(self, keep: str) -> None:
        builds = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        for old in [b for b in builds if b.name != keep][:-(KEEP_BUILDS - 1) or None]:
            shutil.rmtree(old, ignore_errors=True)
        for stale in self.root.glob(".tmp-*"):
            # A temporary folder older than an hour is the leftover of a killed build.
            if time.time() - stale.stat().st_mtime > 3600:
                shutil.rmtree(stale, ignore_errors=True)


def _file_hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): file_sha256(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME
    }


def load_folder(folder: Path, embedder: Embedder, fusion: FusionSettings | None = None,
                verify: bool = True) -> SearchIndex:
    from index.retrieval.dense import DenseIndex
    from index.retrieval.lexical import LexicalIndex

    try:
        manifest = Manifest.read(folder)
    except (OSError, ValidationError) as exc:
        raise IndexLoadError(f"the index manifest in {folder} is missing or damaged") from exc
    if manifest.format_version != FORMAT_VERSION:
        raise IndexLoadError(f"the index in {folder} has format {manifest.format_version}, "
                             f"this version reads {FORMAT_VERSION}")
    if manifest.model.id != embedder.model_id:
        raise IndexLoadError(f"the index was built with {manifest.model.id!r} but the configured model is "
                             f"{embedder.model_id!r}")
    if verify:
        for name, expected in manifest.files.items():
            path = folder / name
            if not path.is_file() or file_sha256(path) != expected:
                raise IndexLoadError(f"the index file {path} is missing or damaged")
    try:
        chunks = _CHUNKS.validate_json((folder / "chunks.json").read_bytes())
        documents = _DOCUMENTS.validate_json((folder / "documents.json").read_bytes())
        dense = DenseIndex.load(folder)
        lexical = LexicalIndex.load(folder / "lexical")
    except (OSError, ValidationError, RuntimeError, ValueError) as exc:
        raise IndexLoadError(f"the index in {folder} cannot be read: {exc}") from exc
    if dense.size != manifest.chunk_count or len(chunks) != manifest.chunk_count:
        raise IndexLoadError(f"the index in {folder} is inconsistent: chunk counts differ")
    return SearchIndex(manifest, documents, chunks, dense, lexical, embedder, fusion)
