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
# Measured with bench/conversations.py (docs/benchmarks.md) with the bundled pair, bge embedding each text alone:
# follow-up hit@3 0.915 tune (108 of 118, with the 26 conversations c101-c126 that ask for amounts and details),
# 0.919 held-out (34 of 37); off-topic questions asked as a follow-up, tune part, declined 0.934 (71 of 76; two
# of the five answered carry an "it" that points inside the question, "can i weld it", so they are searched with
# their context). With bge's vectors taken from batches of 16: 0.907, 0.892 and 0.947 (72 of 76). With MiniLM
# alone: 0.890, 0.919 and 0.984 (of the first 61). Before amount questions followed their context: 0.805 (95 of
# 118) and 0.865 (32 of 37). Since the decline policy was refitted with the everyday topics (its bar 0.55, a
# follow-up declined alone below 0.45 staying declined): 0.907 (107 of 118), 0.892 (33 of 37) and 0.934 (99 of
# the 106 tune off-topic questions). Issue 15's held-out target, 0.9, is one follow-up away.
# The library's mending (issue 28: neck pain after a crash opens with the urgent line, the neck drills carry the
# bridge caution) costs one held-out follow-up: "how often tho, every day?" after a neck-pain question now cites
# both neck documents and no longer the isometric-holds drill in its first three: 0.865 (32 of 37). Safety text
# first; the floor follows it, one turn lower, and the turn is named here.
TUNE_FOLLOW_UP_FLOOR = 0.9
HOLDOUT_FOLLOW_UP_FLOOR = 0.86
# Off-topic follow-ups: 0.972 (103 of 106) since a follow-up naming two words the library never uses is searched
# alone (0.934 before).
OFF_TOPIC_FOLLOW_UP_FLOOR = 0.96


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


@pytest.fixture(scope="module")
def replayed(conversations: list[dict[str, Any]], library_engine: Any) -> dict[tuple[str, str], list[bool]]:
    """Every conversation replayed turn by turn with the shipped composer (as bench/conversations.py does): per
    split and turn kind, whether each turn's answer cites an expected document among its first three."""
    from index.answers.composer import AnswerComposer, turn_of
    from index.answers.conversation import Turn

    composer = AnswerComposer()
    index = library_engine.index
    results: dict[tuple[str, str], list[bool]] = {}
    for conversation in conversations:
        history: list[Turn] = []
        for turn in conversation["turns"]:
            answer = composer.ask(index, turn["question"], history=history)
            cited = {c.document_id for c in answer.citations[:3]}
            results.setdefault((conversation["split"], turn["kind"]), []).append(
                answer.answered and bool(cited & set(turn["expected"])))
            if turn["kind"] == "topic_change":
                alone = composer.ask(index, turn["question"])
                results.setdefault((conversation["split"], "topic_change_alone"), []).append(
                    alone.answered and bool({c.document_id for c in alone.citations[:3]} & set(turn["expected"])))
            history.append(turn_of(answer))
    return results


def _share(flags: list[bool]) -> float:
    return sum(flags) / len(flags)


def test_follow_ups_stay_above_their_floors(replayed: dict[tuple[str, str], list[bool]]) -> None:
    """A regression guard at the measured figures (bench/conversations.py, README): a context change that costs
    more than a turn or two fails here. Issue 15's target is held-out hit@3 >= 0.9."""
    assert _share(replayed[("tune", "followup")]) >= TUNE_FOLLOW_UP_FLOOR
    assert _share(replayed[("holdout", "followup")]) >= HOLDOUT_FOLLOW_UP_FLOOR


def test_a_change_of_topic_is_answered_as_if_asked_alone(replayed: dict[tuple[str, str], list[bool]]) -> None:
    for split in SPLITS:
        assert _share(replayed[(split, "topic_change")]) >= _share(replayed[(split, "topic_change_alone")]), split


def test_context_does_not_launder_off_topic_questions(library_engine: Any) -> None:
    """Off-topic questions of the rider set (tune part), asked right after a hinge question, are declined."""
    from index.answers.composer import AnswerComposer, turn_of

    rows = [json.loads(line) for line in (PROJECT / "tests" / "data" / "questions.jsonl").read_text().splitlines()
            if line.strip()]
    questions = [r["question"] for r in rows if not r["on_topic"] and r["split"] == "tune"]
    composer = AnswerComposer()
    index = library_engine.index
    first = turn_of(composer.ask(index, "how do I hinge properly?"))
    answered = [q for q in questions if composer.ask(index, q, history=[first]).answered]
    assert 1 - len(answered) / len(questions) >= OFF_TOPIC_FOLLOW_UP_FLOOR, answered


def test_a_vague_amount_is_answered_in_its_topic_and_declined_outside_it(library_engine: Any) -> None:
    """"how many days", declined alone, is about the core work the conversation was on; "how much protein
    should i eat a day" has words the core-training answer's documents never use, and stays declined."""
    from index.answers.composer import AnswerComposer, turn_of

    composer = AnswerComposer()
    index = library_engine.index
    first = composer.ask(index, "what core work actually helps on the bike, crunches aint doing it")
    assert "core-training-for-riders" in {c.document_id for c in first.citations}
    assert not composer.ask(index, "how many days").answered  # alone: days of what?
    follow_up = composer.ask(index, "how many days", history=[turn_of(first)])
    assert follow_up.answered
    assert "core-training-for-riders" in {c.document_id for c in follow_up.citations[:3]}
    assert not composer.ask(index, "how much protein should i eat a day", history=[turn_of(first)]).answered


def test_pronouns_inside_an_off_topic_question_do_not_pull_in_the_context(library_engine: Any) -> None:
    """"its roots ... the pot" points inside the question: it names two things the library never mentions, so it is
    judged alone and declined, while "is there a video of that?" still follows the hinge answer."""
    from index.answers.composer import AnswerComposer, turn_of

    composer = AnswerComposer()
    index = library_engine.index
    first = turn_of(composer.ask(index, "how do I hinge properly?"))
    cactus = "how do i repot my cactus, its roots are poking out of the pot"
    assert composer.aids(index).words_unknown_to_library(cactus) >= {"cactus", "pot"}
    assert not composer.ask(index, cactus, history=[first]).answered
    video = composer.ask(index, "is there a video of that?", history=[first])
    assert video.answered and video.videos
