"""The speller: real English words are never corrected, phone typos are, to the library's words."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from index.answers.spelling import Speller, english_words

PROJECT = Path(__file__).resolve().parents[2]

# Library words next to everyday English ones: pick/sick, hip/whip, trainer/trailer, cramp/ramp, well/weld,
# neck/deck, blend/bleed, room/broom, pulling/curling, and down (more used than dowel) next to the typo "dowl".
LIBRARY = [
    "Pick the hip hinge drill your trainer gave you when a cramp comes; it works well for the neck too.",
    "Blend the hinge into the ride. A room with a dowel: pulling the hips back, down and down again, down low.",
    "Lower back fatigue after motos: every rider should hinge correctly, very low and lower.",
]


@pytest.fixture(scope="module")
def speller() -> Speller:
    return Speller(LIBRARY)


@pytest.mark.parametrize("question", [
    "haha sick whip bro",
    "best trailer ramp to weld for my quad",
    "how do i build a deck",
    "how do i bleed my brakes",
    "will a broom handle do",
    "curling stones for sale",
    "Sick Whip",  # case does not matter either
])
def test_an_english_word_is_never_corrected(speller: Speller, question: str) -> None:
    assert speller.correct(question) == question


@pytest.mark.parametrize(("typed", "meant"), [
    ("how do i hindge corectly", "how do i hinge correctly"),
    ("do i need a dowl", "do i need a dowel"),  # the letter dropped wins over the more used "down"
    ("lowr back", "lower back"),  # not "low"
    ("evry rider", "every rider"),  # not "very"
    ("shoud i hinge", "should i hinge"),
    ("HINDGE", "hinge"),  # a corrected word is written in lower case
])
def test_a_phone_typo_is_corrected_to_the_library_word(speller: Speller, typed: str, meant: str) -> None:
    assert speller.correct(typed) == meant


def test_short_words_and_words_near_nothing_are_left_alone(speller: Speller) -> None:
    assert speller.correct("plz hip") == "plz hip"
    assert speller.correct("asdkjh qwezxc") == "asdkjh qwezxc"


def test_a_typo_nearer_an_english_word_the_library_does_not_use_is_left_alone() -> None:
    speller = Speller(["the wedding"])  # "weldingg" is two edits from "wedding", one from "welding"
    assert speller.correct("weldingg") == "weldingg"
    assert Speller(["the welding"]).correct("weldingg") == "welding"


def test_the_english_list_is_read_once_and_shared() -> None:
    seen: list[frozenset[str]] = []
    threads = [threading.Thread(target=lambda: seen.append(english_words())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(words) for words in seen}) == 1
    words = seen[0]
    assert len(words) > 80_000
    assert {"sick", "whip", "trailer", "weld", "deck", "bleed", "broom", "curling", "dowel"} <= words
    assert not {"hindge", "corectly", "dowl", "lowr", "evry", "shoud"} & words
    assert Speller(["hinge"]).english is words


def test_a_given_english_list_replaces_the_shipped_one() -> None:
    speller = Speller(["hinge"], english=set())
    assert speller.correct("hindge") == "hinge"
    assert Speller(["hinge"], english={"hindge"}).correct("hindge") == "hindge"


def test_the_real_library_keeps_near_misses_and_fixes_typos() -> None:
    """The library as the composer spells with it (documents, off-topic topics, shorthand)."""
    from index.answers.composer import AnswerComposer, LibraryAids
    from index.library.documents import load_library

    class Library:  # what LibraryAids reads of an index
        def __init__(self) -> None:
            self.documents = {d.id: d for d in load_library(PROJECT / "knowledge").documents}
            self.chunks: list[object] = []

    composer = AnswerComposer()
    words = [*composer.guard.topics, *composer.shorthand.pairs, *composer.shorthand.pairs.values()]
    speller = LibraryAids(Library(), words).speller  # type: ignore[arg-type]
    for question in ("haha sick whip bro", "how do i build a deck", "how do i bleed my brakes",
                     "is there a way to check if im just curling over the handlebars",
                     "will a broom handle do", "my garage door hinge squeaks"):
        assert speller.correct(question) == question
    assert speller.correct("do i acutally need a dowl") == "do i actually need a dowel"
    assert speller.correct("whats a hip hindge and why does evryone say its so importnt for ridng") == (
        "whats a hip hinge and why does everyone say its so important for riding")
    assert speller.correct("evry race day my lowr back is done by the secnd moto") == (
        "every race day my lower back is done by the second moto")
