"""The context policy's rules on their own: which follow-ups are searched with the conversation's context."""

from __future__ import annotations

import pytest

from index.answers.conversation import ContextPolicy, asks_amount, refers_back, without_amount


@pytest.mark.parametrize("question", ["how many reps each side", "how long per side", "how heavy should i go",
                                      "How often per week?", "how far down should the bar go"])
def test_amount_questions(question: str) -> None:
    assert asks_amount(question)
    assert not refers_back(question)


def test_without_amount_keeps_the_words_of_what_is_counted() -> None:
    assert without_amount("how many days a week").split() == ["days", "a", "week"]
    assert without_amount("how many swings per set should i do").split() == ["swings", "set"]
    assert without_amount("How heavy?").strip() == "?"


@pytest.mark.parametrize("question", ["how do i hinge properly?", "what about landing",
                                      "is deadlifting bad for my back", "where do my feet go"])
def test_other_questions_do_not_ask_an_amount(question: str) -> None:
    assert not asks_amount(question)


def test_an_amount_answered_alone_is_searched_with_its_context() -> None:
    policy = ContextPolicy()
    assert not policy.stands_alone("how many sets", confidence_alone=0.95, threshold=0.7)
    assert not policy.stands_alone("how many sets", confidence_alone=0.7, threshold=0.7)
    # Without the rule, a confident answer alone is a change of topic.
    assert ContextPolicy(amounts_follow=False).stands_alone("how many sets", confidence_alone=0.95, threshold=0.7)


def test_an_amount_declined_alone_stays_declined_unless_its_words_are_the_topics() -> None:
    """A short amount question is as vague off topic ("how many laps") as on it: context answers it only when
    its other words are in the documents the conversation last cited."""
    assert ContextPolicy().stands_alone("how many laps", confidence_alone=0.3, threshold=0.7)
    assert not ContextPolicy().stands_alone("how many days a week", confidence_alone=0.3, threshold=0.7,
                                            words_in_topic=True)
    assert ContextPolicy(amounts_in_topic_follow=False).stands_alone(
        "how many days a week", confidence_alone=0.3, threshold=0.7, words_in_topic=True)


def test_other_questions_keep_their_rules() -> None:
    policy = ContextPolicy()
    assert policy.stands_alone("why do my legs die in the whoops", confidence_alone=0.95, threshold=0.7)
    assert not policy.stands_alone("why do my legs die in the whoops", confidence_alone=0.75, threshold=0.7)
    assert policy.stands_alone("who won anaheim 1", confidence_alone=0.2, threshold=0.7)
    assert not policy.stands_alone("is there a video of that", confidence_alone=0.95, threshold=0.7)


def test_a_follow_up_naming_things_the_library_never_mentions_stands_alone() -> None:
    """Its pronouns point inside it ("its roots are poking out of the pot"), not back at the conversation."""
    policy = ContextPolicy()
    question = "how do i repot my cactus, its roots are poking out of the pot"
    assert policy.stands_alone(question, confidence_alone=0.1, threshold=0.55, unknown_words=2)
    assert not policy.stands_alone(question, confidence_alone=0.1, threshold=0.55, unknown_words=1)
    assert not ContextPolicy(self_contained_unknown_words=None).stands_alone(
        question, confidence_alone=0.1, threshold=0.55, unknown_words=5)
