"""Who a document belongs to comes from its folder, and the index on disk moves only to an index that is ready."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.coaching.contributions import path_for
from index.engine import Engine
from index.library.documents import load_library
from tests.helpers import HashingEmbedder, small_library, write_doc

SERVER_A, SERVER_B = 111, 222


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    return small_library(tmp_path / "knowledge")


def guild_dir(library: Path, guild: int) -> Path:
    return library / "guilds" / str(guild)


def test_a_team_document_belongs_to_the_server_whose_folder_holds_it_whatever_its_front_matter_says(
        tmp_path: Path, knowledge: Path) -> None:
    library = tmp_path / "library"
    write_doc(guild_dir(library, SERVER_A), "related", "planted", "Whoops and ruts on our track.", guild_id=SERVER_B)
    write_doc(guild_dir(library, SERVER_B), "related", "honest", "Sand track notes.")
    write_doc(knowledge, "related", "shipped-claims-a-server", "A shipped page.", guild_id=SERVER_A)
    docs = {d.id: d for d in load_library([knowledge, library]).documents}
    assert docs["planted"].guild_id == SERVER_A
    assert docs["honest"].guild_id == SERVER_B
    assert docs["shipped-claims-a-server"].guild_id is None


def test_files_of_a_team_library_outside_a_server_folder_are_not_loaded(tmp_path: Path, knowledge: Path) -> None:
    library = tmp_path / "library"
    write_doc(library, "related", "legacy-upload", "From before per-server folders.", guild_id=SERVER_A)
    write_doc(library / "unassigned", "related", "parked", "Waiting for an owner.")
    loaded = load_library([knowledge, library])
    assert not loaded.errors
    assert {"legacy-upload", "parked"}.isdisjoint(d.id for d in loaded.documents)


def test_coach_ids_are_reserved_for_the_coach_answers_in_a_server_folder(tmp_path: Path, knowledge: Path) -> None:
    write_doc(knowledge, "forum", "coach-7-shipped", "A shipped file taking a coach answer's id.")
    library = tmp_path / "library"
    answer = path_for(library, SERVER_A, "coach-8-real")
    write_doc(answer.parent.parent, "forum", "coach-8-real", "A coach's own answer.")
    loaded = load_library([knowledge, library])
    assert [(e.field, Path(e.path).name) for e in loaded.errors] == [("id", "coach-7-shipped.md")]
    assert answer.parent == guild_dir(library, SERVER_A) / "forum"
    assert next(d for d in loaded.documents if d.id == "coach-8-real").guild_id == SERVER_A


def test_a_reindex_whose_prepare_fails_leaves_current_at_the_old_index_for_the_next_start(
        tmp_path: Path, knowledge: Path) -> None:
    data, library = tmp_path / "data", tmp_path / "library"
    engine = Engine(data, knowledge, HashingEmbedder(), library_dir=library)
    old = engine.load()
    write_doc(guild_dir(library, SERVER_A), "related", "rolled-back", "An upload whose change is rolled back.")

    def prepare(index: object) -> None:
        raise RuntimeError("warming failed")

    with pytest.raises(RuntimeError, match="warming failed"):
        engine.reindex(prepare=prepare)
    assert engine.index is old
    restarted = Engine(data, knowledge, HashingEmbedder(), library_dir=library)
    assert "rolled-back" not in restarted.load(build_if_missing=False).documents
    assert restarted.index.manifest.built_at == old.manifest.built_at


def test_each_scope_holds_the_shipped_documents_and_its_own_server_s_only(tmp_path: Path, knowledge: Path) -> None:
    library = tmp_path / "library"
    write_doc(guild_dir(library, SERVER_A), "drill", "a-drill", "## Goal\nOurs.\n" + "## Steps\n1. x\n## Cues\n- y\n"
              "## Common faults\n- z\n## Progressions\n- w\n")
    write_doc(guild_dir(library, SERVER_B), "video", "b-video", "Our whoops video.")
    engine = Engine(tmp_path / "data", knowledge, HashingEmbedder(), library_dir=library)
    whole = engine.load()
    a, b, none = whole.scoped(SERVER_A), whole.scoped(SERVER_B), whole.scoped(None)
    assert whole.scoped(999) is none and a.scoped(SERVER_A) is a and a.scoped(None) is none
    assert "a-drill" in a.documents and "b-video" not in a.documents
    assert "b-video" in b.documents and "a-drill" not in b.documents
    assert not {"a-drill", "b-video"} & none.documents.keys()
    assert a.manifest.kinds["drill"] == 3 and b.manifest.kinds["drill"] == 2 and b.manifest.kinds["video"] == 1
    assert {c.doc_id for c in a.chunks} <= a.documents.keys() and len(a.dense.vectors) == len(a.chunks)
    assert whole.scopes() == [none, a, b]


def test_the_shipped_library_has_no_server_s_documents_and_no_coach_ids() -> None:
    shipped = Path(__file__).resolve().parent.parent.parent / "knowledge"
    loaded = load_library(shipped)
    assert not loaded.errors
    assert not [d.id for d in loaded.documents if d.guild_id is not None or d.id.startswith("coach-")]
    assert not [p.name for p in shipped.rglob("*.md") if "\nguild_id:" in p.read_text(encoding="utf-8")]
