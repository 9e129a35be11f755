from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from index.library.documents import load_library
from index.retrieval.store import IndexStore
from tests.conftest import PROJECT
from tests.helpers import HashingEmbedder, small_library

PROBE = """
import sys
from bot.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
heavy = [m for m in ('torch', 'sentence_transformers', 'faiss', 'discord') if m in sys.modules]
print('HEAVY=' + ','.join(heavy))
sys.exit(code)
"""


def run_cli(*args: str, cwd: Path = PROJECT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_help_is_quick_and_imports_no_heavy_module() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("index", "search", "ask", "chat", "eval"):
        assert command in result.stdout
    assert result.stdout.rstrip().endswith("HEAVY=")


def test_index_status_reads_the_manifest_without_torch(tmp_path: Path) -> None:
    missing = run_cli("index", "status", "--data-dir", str(tmp_path / "none"))
    assert missing.returncode == 1 and "hinge index build" in missing.stdout
    library = small_library(tmp_path / "knowledge")
    IndexStore(tmp_path / "data").build(load_library(library).documents, HashingEmbedder(), built_by="test")
    result = run_cli("index", "status", "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 0, result.stderr
    assert "documents: 5" in result.stdout and "test/hashing" in result.stdout
    assert result.stdout.rstrip().endswith("HEAVY=")
    as_json = run_cli("index", "status", "--json", "--data-dir", str(tmp_path / "data"))
    assert json.loads(as_json.stdout.rsplit("HEAVY=", 1)[0])["chunk_count"] > 0


def test_index_check_lists_every_bad_file(tmp_path: Path) -> None:
    library = small_library(tmp_path / "knowledge")
    (library / "related" / "bad-one.md").write_text("nothing")
    (library / "forum" ).mkdir()
    (library / "forum" / "bad-two.md").write_text("---\nkind: forum\n---\nbody")
    result = run_cli("index", "check", "--knowledge", str(library))
    assert result.returncode == 1
    assert "bad-one.md: front matter" in result.stderr and "bad-two.md: id" in result.stderr
    assert "5 documents valid, 2 bad file(s)" in result.stdout


def test_a_bad_library_makes_build_fail_with_the_file_named(tmp_path: Path) -> None:
    library = small_library(tmp_path / "knowledge")
    (library / "related" / "bad-one.md").write_text("nothing")
    result = run_cli("index", "build", "--knowledge", str(library), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 2
    assert "bad-one.md" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_chat_reads_piped_turns_keeps_context_and_starts_over(tmp_path: Path) -> None:
    turns = "what is the attack position?\nand in the whoops?\n/new\nand in the whoops?\n"
    result = subprocess.run([sys.executable, "-m", "bot.cli", "chat", "--json", "--data-dir", str(tmp_path / "data")],
                            input=turns, capture_output=True, text=True, cwd=PROJECT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["question"] for a in answers] == ["what is the attack position?", "and in the whoops?",
                                                 "and in the whoops?"]
    # With the attack position as context the same words weigh far more than after /new, standing alone.
    assert answers[0]["answered"]
    assert answers[1]["confidence"] > answers[2]["confidence"] + 0.2, answers
