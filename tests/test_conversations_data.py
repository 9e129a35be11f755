"""The labelled conversation set (issue 15): shape, counts and ids that exist in the library."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from index.library.documents import load_library
from tests.conftest import KNOWLEDGE, PROJECT

CONVERSATIONS = PROJECT / "tests" / "data" / "conversations.jsonl"
KINDS = {"first", "followup", "topic_change"}
SPLITS = {"tune", "holdout"}


@pytest.fixture(scope="module")
def conversations() -> list[dict[str, Any]]:
    lines = CONVERSATIONS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def library_ids() -> set[str]:
    return {d.id for d in load_library(Path(KNOWLEDGE)).documents}


def _turns(conversations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [turn for conversation in conversations for turn in conversation["turns"]]


def test_every_conversation_has_the_right_shape(conversations: list[dict[str, Any]]) -> None:
    for conversation in conversations:
        assert set(conversation) == {"id", "split", "turns"}, conversation.get("id")
        assert conversation["split"] in SPLITS, conversation["id"]
        turns = conversation["turns"]
        assert 2 <= len(turns) <= 3, conversation["id"]
        assert turns[0]["kind"] == "first", conversation["id"]
        assert all(t["kind"] in KINDS - {"first"} for t in turns[1:]), conversation["id"]
        for turn in turns:
            assert set(turn) == {"question", "expected", "kind"}, conversation["id"]
            assert isinstance(turn["question"], str) and turn["question"].strip(), conversation["id"]
            expected = turn["expected"]
            assert 1 <= len(expected) <= 4, conversation["id"]
            assert len(set(expected)) == len(expected), conversation["id"]


def test_every_expected_id_exists(conversations: list[dict[str, Any]], library_ids: set[str]) -> None:
    missing = sorted(
        (conversation["id"], doc_id)
        for conversation in conversations
        for turn in conversation["turns"]
        for doc_id in turn["expected"]
        if doc_id not in library_ids
    )
    assert missing == []


def test_counts(conversations: list[dict[str, Any]]) -> None:
    assert len(conversations) >= 60
    kinds = Counter(turn["kind"] for turn in _turns(conversations))
    assert kinds["followup"] >= 60
    assert kinds["topic_change"] >= 12


def test_both_splits_present(conversations: list[dict[str, Any]]) -> None:
    splits = Counter(conversation["split"] for conversation in conversations)
    assert splits["tune"] > 0 and splits["holdout"] > 0
    assert 0.2 <= splits["holdout"] / len(conversations) <= 0.45


def test_ids_unique(conversations: list[dict[str, Any]]) -> None:
    ids = [conversation["id"] for conversation in conversations]
    assert len(ids) == len(set(ids))


def test_questions_unique(conversations: list[dict[str, Any]]) -> None:
    firsts = [c["turns"][0]["question"].lower() for c in conversations]
    assert len(firsts) == len(set(firsts))
