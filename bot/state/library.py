"""Every change to the library goes through one `LibraryEditor`: uploads, /reindex, coach answers, /forget.

A team's uploads and coach answers live in its own server's folder of the team library
(`<library>/guilds/<guild id>/<kind folder>/`), and that folder is what makes a document the server's own.

One asyncio lock covers a whole change (write the file, rebuild, swap), so a /reindex can never start between
an upload's checks and its build, and two uploads with one id can never both pass. Anything a failed change
did is rolled back; the index in use keeps answering throughout.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from bot.ops.metrics import Metrics
from bot.state.storage import Storage
from index.engine import Engine
from index.errors import BuildInProgressError, HingeError, KnowledgeFileError, LibraryError
from index.library.documents import (
    COACH_PREFIX,
    GUILDS_FOLDER,
    KIND_FOLDERS,
    UNASSIGNED_FOLDER,
    Document,
    Kind,
    guild_folder,
    iter_library_files,
    load_file,
)
from index.retrieval.embedding import ProgressFn
from index.retrieval.search import SearchIndex
from index.retrieval.store import BuildReport

log = logging.getLogger(__name__)


class LibraryChangeError(HingeError):
    """A change that failed for a reason other than a bad file (disk, model, index); the old index serves on."""

    user_message = ("The library change failed on my side; the previous index is still answering. The admins can "
                    "see why in the log.")


class LibraryEditor:
    def __init__(self, engine: Engine, storage: Storage, metrics: Metrics,
                 prepare: Callable[[SearchIndex], None] | None = None) -> None:
        self.engine = engine
        self.storage = storage
        self.metrics = metrics
        # Warms a new index before it is swapped in (the composer's per-index spelling and document vectors).
        self.prepare = prepare
        self._lock = asyncio.Lock()

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    @asynccontextmanager
    async def changing(self) -> AsyncIterator[None]:
        async with self._lock:
            yield

    async def rebuild(self, user_id: int | None, user_name: str | None, progress: ProgressFn | None = None,
                      record_failure: bool = True) -> BuildReport:
        """Rebuild and swap in; call inside `changing()`. Raises `LibraryError` (bad files), `BuildInProgressError`
        (another process is building) or `LibraryChangeError`; the index in use keeps serving on any failure.
        A failure is kept in the reindex audit unless `record_failure` is off (a change that is rolled back)."""
        if not self._lock.locked():
            raise RuntimeError("rebuild() must run inside changing()")
        record = await self.storage.start_reindex(user_id, user_name)
        try:
            report = await asyncio.to_thread(self.engine.reindex, progress, user_name, self.prepare)
        except (HingeError, OSError, RuntimeError, ValueError) as exc:
            if record_failure:
                reason = "already running" if isinstance(exc, BuildInProgressError) else str(exc)[:2000]
                await self.storage.finish_reindex(record, ok=False, error=reason)
                if isinstance(exc, LibraryError):
                    self.metrics.reindexed(ok=False)
            else:
                await self.storage.delete_reindex(record)
            if isinstance(exc, LibraryError | BuildInProgressError):
                raise
            log.exception("reindex failed")
            raise LibraryChangeError("the rebuild failed") from exc
        await self.storage.finish_reindex(record, ok=True, documents=report.documents, chunks=report.chunks,
                                          added=len(report.added), changed=len(report.changed),
                                          removed=len(report.removed), seconds=report.seconds,
                                          embedded=report.embedded)
        self.metrics.reindexed(ok=True, seconds=report.seconds)
        return report

    async def add_upload(self, name: str, data: bytes, kind: Kind, user_id: int, user_name: str,
                         progress: ProgressFn | None = None, *, guild_id: int) -> tuple[Document, BuildReport]:
        """Validate a file uploaded in server `guild_id`, save it into that server's folder (never over an existing
        document) and rebuild; on any failure the file is taken back out and nothing is recorded."""
        doc = await asyncio.to_thread(validate_upload, name, data, kind)
        doc = doc.model_copy(update={"guild_id": guild_id})  # the server it came from, whatever the file says
        async with self.changing():
            if doc.id in self.engine.index.documents:
                raise KnowledgeFileError(name, "id", f"the library already has a document “{doc.id}”")
            target = (guild_folder(self.engine.library_dir, guild_id) / KIND_FOLDERS[doc.kind]
                      / f"{doc.id}{Path(name).suffix.lower()}")
            await asyncio.to_thread(create_exclusive, target, data)
            try:
                report = await self.rebuild(user_id, user_name, progress, record_failure=False)
            except BaseException:
                target.unlink(missing_ok=True)
                raise
        return doc, report

    async def remove(self, path: Path, user_id: int | None, user_name: str | None) -> BuildReport:
        """Delete one of the team's own files and rebuild; the file comes back if the rebuild fails."""
        async with self.changing():
            data = await asyncio.to_thread(path.read_bytes)
            await asyncio.to_thread(path.unlink)
            try:
                return await self.rebuild(user_id, user_name)
            except BaseException:
                await asyncio.to_thread(create_exclusive, path, data)
                raise


def create_exclusive(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with target.open("xb") as handle:
            handle.write(data)
    except FileExistsError as exc:
        raise KnowledgeFileError(target.name, "id", "a file with that name is already in the library") from exc


def validate_upload(name: str, data: bytes, kind: Kind) -> Document:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(name).name
        path.write_bytes(data)
        doc = load_file(path, kind)
    if doc.id.startswith(COACH_PREFIX):
        # The coach answers' ids: a file holding one would stop the next coach answer with that id loading.
        raise KnowledgeFileError(name, "id", f"ids starting with “{COACH_PREFIX}” are kept for the coaches' answers")
    return doc


def place_legacy_files(library_dir: Path, coach_answer_guilds: Mapping[str, int]) -> list[tuple[Path, Path]]:
    """Move the team library's files from before per-server folders (anything outside `guilds/` and
    `unassigned/`) to where they belong: a coach answer (its id in `coach_answer_guilds`, document id -> guild)
    to its server's folder, anything else to `unassigned/`, which is not loaded, since nothing says whose it
    is (its own front matter does not count). Returns (from, to) of every move; never overwrites a file."""
    moves: list[tuple[Path, Path]] = []
    if not library_dir.is_dir():
        return moves
    for path in iter_library_files(library_dir):
        relative = path.relative_to(library_dir)
        if relative.parts[0] in (GUILDS_FOLDER, UNASSIGNED_FOLDER):
            continue
        guild_id = coach_answer_guilds.get(path.stem)
        target = (guild_folder(library_dir, guild_id) / relative if guild_id is not None
                  else library_dir / UNASSIGNED_FOLDER / relative)
        if target.exists():
            target = library_dir / UNASSIGNED_FOLDER / "conflicts" / relative
        if target.exists():
            log.warning("the team library file %s was left where it is: %s already exists", path, target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(path, target)
        moves.append((path, target))
        if guild_id is not None:
            log.info("moved coach answer %s into server %s's folder: %s", path.stem, guild_id, target)
        else:
            log.warning("moved %s to %s: a team file from before per-server folders belongs to no server, so it is "
                        "not loaded. To give it to a server, move it into %s/<server id>/%s/ (or upload it there "
                        "with /add-source) and restart or run /reindex", path, target,
                        library_dir / GUILDS_FOLDER, relative.parent)
    return moves
