"""Knowledge documents: the pydantic models of knowledge files and the loaders that read them.

A knowledge file is Markdown with YAML front matter. Plain `.txt`, `.html` and BEIR
`corpus.jsonl` load too, so admins can drop in a page and benchmarks can reuse the engine.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from index.errors import KnowledgeFileError, LibraryError

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
PLACEHOLDER_HOSTS = frozenset({"example.com", "example.org", "example.net", "localhost", "127.0.0.1"})
DRILL_SECTIONS = ("Steps", "Cues", "Common faults", "Progressions")
SUPPORTED_SUFFIXES = (".md", ".txt", ".html", ".htm")
#: A team library's folder of per-server folders: `<library>/guilds/<guild id>/<kind folder>/<file>`.
GUILDS_FOLDER = "guilds"
#: Where start-up puts a team library's files that belong to no known server (never loaded).
UNASSIGNED_FOLDER = "unassigned"
#: Ids of the bot's own coach answers (index.coaching.contributions): no other file may take one.
COACH_PREFIX = "coach-"


class Kind(StrEnum):
    ARTICLE = "article"
    RELATED = "related"
    FORUM = "forum"
    DRILL = "drill"
    VIDEO = "video"


#: The folder of `knowledge/` each kind lives in.
KIND_FOLDERS: dict[Kind, str] = {
    Kind.ARTICLE: "articles",
    Kind.RELATED: "related",
    Kind.FORUM: "forum",
    Kind.DRILL: "drills",
    Kind.VIDEO: "videos",
}


def _check_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("must be an absolute http(s) link")
    host = (parsed.hostname or "").lower()
    if host in PLACEHOLDER_HOSTS or host.endswith((".example.com", ".example.org")):
        raise ValueError(f"{host} is a placeholder, not a real source")
    if any(ch.isspace() for ch in value):
        raise ValueError("must not contain spaces")
    return value


# Kept as the exact string written in the file: a normalising URL type would rewrite it.
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=10), AfterValidator(_check_url)]
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=80)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class SourceRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: Text
    author: Text | None = None
    publisher: Text
    url: Url


class VideoRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: Text
    url: Url
    start: int | None = Field(default=None, ge=0, description="second the relevant part starts at")


class _MetaBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug
    title: Text
    summary: Text
    tags: list[Text] = Field(min_length=1)
    sources: list[SourceRef] = Field(min_length=1)
    videos: list[VideoRef] = Field(default_factory=list)
    related: list[Slug] = Field(default_factory=list, description="ids of related documents")
    drills: list[Slug] = Field(default_factory=list, description="ids of drills that fit")
    guild_id: int | None = Field(default=None, description="ignored: a team's document belongs to the server "
                                 "whose folder holds it (load_library), whatever its file says")
    date: dt.date | None = Field(default=None, description="when a team's own document was written")


class ArticleMeta(_MetaBase):
    kind: Literal[Kind.ARTICLE]


class RelatedMeta(_MetaBase):
    kind: Literal[Kind.RELATED]


class VideoMeta(_MetaBase):
    kind: Literal[Kind.VIDEO]
    videos: list[VideoRef] = Field(min_length=1)


class ForumMeta(_MetaBase):
    kind: Literal[Kind.FORUM]
    question: Text


class DrillMeta(_MetaBase):
    kind: Literal[Kind.DRILL]
    level: Literal["beginner", "intermediate", "advanced"]
    equipment: list[Text] = Field(default_factory=list)
    dose: Text


DocumentMeta = Annotated[
    ArticleMeta | RelatedMeta | VideoMeta | ForumMeta | DrillMeta, Field(discriminator="kind")
]
_META_ADAPTER: TypeAdapter[ArticleMeta | RelatedMeta | VideoMeta | ForumMeta | DrillMeta] = TypeAdapter(
    DocumentMeta
)


class Document(BaseModel):
    """One loaded document, whatever file it came from."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: Kind
    title: str
    summary: str = ""
    tags: list[str] = Field(default_factory=list)
    sources: list[SourceRef] = Field(default_factory=list)
    videos: list[VideoRef] = Field(default_factory=list)
    related: list[str] = Field(default_factory=list)
    drills: list[str] = Field(default_factory=list)
    question: str | None = None
    level: str | None = None
    equipment: list[str] = Field(default_factory=list)
    dose: str | None = None
    guild_id: int | None = None
    date: dt.date | None = None
    body: str
    path: str = ""

    @property
    def url(self) -> str | None:
        """The link an excerpt from this document cites."""
        if self.sources:
            return self.sources[0].url
        if self.videos:
            return self.videos[0].url
        return None

    def sections(self) -> dict[str, str]:
        """Level-two sections of the body by heading (drills use Steps, Cues, ...)."""
        found: dict[str, str] = {}
        for match in _H2_BLOCK.finditer(self.body):
            found[match.group(1).strip()] = match.group(2).strip()
        return found


_H2_BLOCK = re.compile(r"^##[ \t]+(.+?)[ \t]*\n(.*?)(?=^##[ \t]+|\Z)", re.M | re.S)
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*\r?\n?(.*)\Z", re.S)


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    # The discriminated union adds the kind name as the first location: it is noise here.
    if parts and parts[0] in {k.value for k in Kind}:
        parts = parts[1:]
    return ".".join(parts) or "front matter"


def parse_markdown(path: Path, text: str) -> Document:
    """Parse one knowledge Markdown file, raising `KnowledgeFileError` on any problem."""
    match = _FRONT_MATTER.match(text)
    if not match:
        raise KnowledgeFileError(path, "front matter", "the file must start with a '---' YAML block")
    try:
        raw = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise KnowledgeFileError(path, "front matter", f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise KnowledgeFileError(path, "front matter", "must be a mapping of fields")
    if "kind" not in raw:
        raise KnowledgeFileError(path, "kind", f"missing; one of {', '.join(k.value for k in Kind)}")
    try:
        meta = _META_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        reasons = "; ".join(f"{_field_path(e['loc'])}: {e['msg']}" for e in exc.errors()[1:])
        reason = first["msg"] + (f" (also {reasons})" if reasons else "")
        field = "kind" if first["type"].startswith("union_tag") else _field_path(first["loc"])
        raise KnowledgeFileError(path, field, reason) from exc
    body = match.group(2).strip("\n")
    if not body.strip():
        raise KnowledgeFileError(path, "body", "the document has no text after its front matter")
    doc = Document(body=body, path=str(path), **meta.model_dump())
    if isinstance(meta, DrillMeta):
        sections = doc.sections()
        missing = [s for s in DRILL_SECTIONS if not sections.get(s)]
        if missing:
            raise KnowledgeFileError(path, "body", f"a drill needs the sections: {', '.join(missing)}")
    return doc


def _slug_from(path: Path) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-")
    return slug or "untitled"


def parse_text(path: Path, text: str, kind: Kind = Kind.RELATED) -> Document:
    body = text.strip()
    if not body:
        raise KnowledgeFileError(path, "body", "the file is empty")
    title = body.splitlines()[0].strip()[:120]
    return Document(id=_slug_from(path), kind=kind, title=title, body=body, path=str(path))


def parse_html(path: Path, html: str, kind: Kind = Kind.RELATED) -> Document:
    """Extract the main text of a web page (boilerplate dropped by trafilatura)."""
    import trafilatura  # imported here: it is only needed for HTML and is slow to import

    extracted = trafilatura.extract(html, output_format="markdown", include_comments=False)
    if not extracted or not extracted.strip():
        raise KnowledgeFileError(path, "body", "no readable main text found in the HTML")
    metadata = trafilatura.extract_metadata(html)
    title = (metadata.title if metadata and metadata.title else "") or extracted.splitlines()[0]
    sources: list[SourceRef] = []
    if metadata and metadata.url:
        try:
            sources = [SourceRef(title=title, author=metadata.author, publisher=metadata.sitename
                                 or urlparse(metadata.url).netloc, url=metadata.url)]
        except ValidationError:
            sources = []
    return Document(id=_slug_from(path), kind=kind, title=title.strip()[:200], body=extracted.strip(),
                    path=str(path), sources=sources)


def load_file(path: Path, kind: Kind | None = None) -> Document:
    """Load one file by its suffix; `kind` applies to files that carry none of their own."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise KnowledgeFileError(path, "encoding", "the file is not UTF-8 text") from exc
    except OSError as exc:
        raise KnowledgeFileError(path, "file", f"cannot be read: {exc.strerror}") from exc
    suffix = path.suffix.lower()
    if suffix == ".md":
        return parse_markdown(path, text)
    if suffix == ".txt":
        return parse_text(path, text, kind or Kind.RELATED)
    if suffix in (".html", ".htm"):
        return parse_html(path, text, kind or Kind.RELATED)
    raise KnowledgeFileError(path, "file", f"unsupported type {suffix!r}; use .md, .txt or .html")


@dataclass
class LoadedLibrary:
    documents: list[Document]
    errors: list[KnowledgeFileError] = field(default_factory=list)

    def raise_for_errors(self) -> None:
        if self.errors:
            raise LibraryError(self.errors)


def iter_library_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
        if path.is_file() and path.suffix.lower() in SUPPORTED_SUFFIXES and path.name != "README.md" and not hidden:
            yield path


def load_library(roots: Path | Sequence[Path]) -> LoadedLibrary:
    """Load the shipped library (the first of `roots`) and the team libraries after it (which may not exist
    yet), collecting every bad file rather than stopping. Ids are unique across all of them.

    Ownership comes from where a file is, never from the file: a shipped document belongs to every server, a
    team library's `guilds/<guild id>/` folder holds that server's documents only, and whatever else a team
    library holds (the `unassigned/` folder, files from before per-server folders) is not loaded."""
    roots = [roots] if isinstance(roots, Path) else list(roots)
    if not roots[0].is_dir():
        raise LibraryError([KnowledgeFileError(roots[0], "folder", "the knowledge folder does not exist")])
    documents: list[Document] = []
    errors: list[KnowledgeFileError] = []
    seen: dict[str, Path] = {}
    _load_root(roots[0], None, documents, errors, seen)
    for team_library in roots[1:]:
        for guild_id, folder in guild_folders(team_library):
            _load_root(folder, guild_id, documents, errors, seen)
    errors.extend(_check_references(documents))
    return LoadedLibrary(documents=documents, errors=errors)


def guild_folder(team_library: Path, guild_id: int) -> Path:
    """The folder of one server's own documents."""
    return team_library / GUILDS_FOLDER / str(guild_id)


def guild_folders(team_library: Path) -> list[tuple[int, Path]]:
    """(guild id, folder) of every server with a folder in the team library, by id."""
    parent = team_library / GUILDS_FOLDER
    if not parent.is_dir():
        return []
    return sorted((int(p.name), p) for p in parent.iterdir() if p.is_dir() and p.name.isdigit())


def _load_root(root: Path, guild_id: int | None, documents: list[Document], errors: list[KnowledgeFileError],
               seen: dict[str, Path]) -> None:
    folder_kinds = {folder: kind for kind, folder in KIND_FOLDERS.items()}
    for path in iter_library_files(root):
        folder_kind = folder_kinds.get(path.relative_to(root).parts[0]) if path.parent != root else None
        try:
            doc = load_file(path, folder_kind)
        except KnowledgeFileError as exc:
            errors.append(exc)
            continue
        if folder_kind and doc.kind != folder_kind:
            errors.append(KnowledgeFileError(path, "kind", f"is {doc.kind.value!r} but the file is in "
                                             f"{KIND_FOLDERS[folder_kind]}/ (kind {folder_kind.value!r})"))
            continue
        if doc.id in seen:
            errors.append(KnowledgeFileError(path, "id", f"{doc.id!r} is already used by {seen[doc.id]}"))
            continue
        if guild_id is None and doc.id.startswith(COACH_PREFIX):
            errors.append(KnowledgeFileError(path, "id", f"ids starting with {COACH_PREFIX!r} are the coach "
                                             "answers' own"))
            continue
        seen[doc.id] = path
        documents.append(doc if doc.guild_id == guild_id else doc.model_copy(update={"guild_id": guild_id}))


def _check_references(documents: list[Document]) -> Iterator[KnowledgeFileError]:
    by_id = {d.id: d for d in documents}
    for doc in documents:
        for name in ("related", "drills"):
            for ref in getattr(doc, name):
                target = by_id.get(ref)
                if target is None:
                    yield KnowledgeFileError(Path(doc.path), name, f"{ref!r} is not the id of any document")
                elif name == "drills" and target.kind != Kind.DRILL:
                    yield KnowledgeFileError(Path(doc.path), name, f"{ref!r} is a {target.kind.value}, not a drill")


def load_beir_corpus(path: Path) -> list[Document]:
    """Read a BEIR `corpus.jsonl`; the document text is title + text, as BEIR's own wrapper does."""
    documents: list[Document] = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row: dict[str, Any] = json.loads(line)
                doc_id = str(row["_id"])
            except (json.JSONDecodeError, KeyError) as exc:
                raise KnowledgeFileError(path, f"line {line_no}", f"not a BEIR corpus row: {exc}") from exc
            title = str(row.get("title") or "").strip()
            text = str(row.get("text") or "").strip()
            body = f"{title} {text}".strip() if title else text
            documents.append(Document(id=doc_id, kind=Kind.ARTICLE, title=title or doc_id, body=body or doc_id,
                                      path=str(path)))
    return documents
