from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from index.answers.composer import SAFETY_NOTE, AnswerComposer
from index.answers.decline import DeclinePolicy
from index.answers.excerpts import ELLIPSIS, select_excerpt
from index.answers.models import Answer
from index.answers.rendering import render_json, render_text
from index.answers.text import Shorthand, clean_question
from index.engine import Engine
from index.library.chunking import Chunk
from index.library.documents import Kind
from index.retrieval.lexical import Tokenizer
from tests.conftest import PROJECT
from tests.helpers import SOURCE, HashingEmbedder, small_library, write_doc

ALWAYS = DeclinePolicy(bias=10.0, weights=(0.0, 0.0, 0.0, 0.0))


@pytest.fixture
def small_engine(tmp_path: Path) -> Engine:
    engine = Engine(tmp_path / "data", small_library(tmp_path / "knowledge"), HashingEmbedder())
    engine.load()
    return engine


def unquote(excerpt: str) -> str:
    return excerpt.removeprefix(ELLIPSIS + " ").removesuffix(" " + ELLIPSIS)


def test_excerpts_quote_the_best_sentences_exactly() -> None:
    text = ("Warm up first. The hinge keeps the spine long while the hips travel back. "
            "Knees bend a little. Eat well and sleep.")
    chunk = Chunk(id="d#0", doc_id="d", kind="article", title="T", heading_path=(), text=text, start=0,
                  end=len(text))
    tokenize = Tokenizer()
    excerpt = select_excerpt(chunk, set(tokenize("spine hips hinge")), tokenize, max_words=16)
    assert excerpt.startswith(ELLIPSIS) and excerpt.endswith(ELLIPSIS)
    assert "The hinge keeps the spine long while the hips travel back." in excerpt
    assert unquote(excerpt) in text
    whole = select_excerpt(chunk, set(), tokenize, max_words=200)  # nothing matches: the opening
    assert whole == text


def test_composition_numbers_citations_dedupes_videos_and_picks_a_drill(small_engine: Engine) -> None:
    answer = AnswerComposer(policy=ALWAYS).ask(small_engine.index, "how do I hinge at the hips with a long spine?")
    assert answer.answered and answer.status == "answered"
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    assert len({c.document_id for c in answer.citations}) == len(answer.citations)
    for citation in answer.citations:
        body = small_engine.index.documents[citation.document_id].body
        assert unquote(citation.excerpt) in body
        assert citation.url == SOURCE["url"] and citation.source == "Luke Duncan"
    # hinge-basics and attack-position share one video: it is listed once.
    assert [v.url for v in answer.videos] == [SOURCE["url"]]
    assert answer.drill is not None and answer.drill.id in ("dowel-drill", "kettlebell-swing")
    assert answer.safety_note is None
    assert answer.elapsed_ms > 0


def test_the_drill_follows_the_cited_documents_and_only_for_training_questions(small_engine: Engine) -> None:
    composer = AnswerComposer(policy=ALWAYS)
    answer = composer.ask(small_engine.index, "why do riders who round the upper back get tired early")
    assert answer.citations[0].document_id == "hinge-basics"
    assert answer.drill is None  # not a technique or training question
    trained = composer.ask(small_engine.index, "how do I fix riders rounding the upper back and getting tired")
    assert trained.drill is not None and trained.drill.id == "dowel-drill"  # hinge-basics recommends it


def test_pain_and_injury_questions_get_the_safety_note(small_engine: Engine) -> None:
    composer = AnswerComposer(policy=ALWAYS)
    for question in ("my lower back hurts after riding", "I injured my hamstring, can I hinge?",
                     "numbness in my leg when standing"):
        assert composer.ask(small_engine.index, question).safety_note == SAFETY_NOTE


def test_referral_passages_are_quoted_only_for_pain_questions(tmp_path: Path) -> None:
    library = small_library(tmp_path / "knowledge")
    write_doc(library, "related", "attack-position", textwrap.dedent("""\
        ## Feet to elbows
        In the attack position you stand on the balls of your feet with the shins vertical, hinge at the
        hips, keep the chest over the bars and hold the elbows up and out, ready for bumps and whoops.

        ## Pain in the attack position
        If holding the attack position hurts your hips or back, stop and see a doctor or physiotherapist
        before you hold the attack position again.
        """))
    engine = Engine(tmp_path / "data", library, HashingEmbedder())
    engine.load()
    composer = AnswerComposer(policy=ALWAYS)

    def first_heading(question: str) -> str | None:
        return next(c.heading for c in composer.ask(engine.index, question).citations
                    if c.document_id == "attack-position")

    assert first_heading("how do I hold the attack position") == "Feet to elbows"
    assert first_heading("holding the attack position hurts my hips") == "Pain in the attack position"


@pytest.mark.parametrize(
    ("question", "status", "words"),
    [
        ("", "invalid", "in words"),
        ("   \n\t ", "invalid", "in words"),
        ("x" * 501, "invalid", "under 500"),
        ("🏍️🔥💪", "invalid", "couldn't find a question"),
        ("<@&123> @everyone", "invalid", "couldn't find a question"),
        ("**`~~||>", "invalid", "couldn't find a question"),
    ],
)
def test_bad_input_gets_a_clear_reply(small_engine: Engine, question: str, status: str, words: str) -> None:
    answer = AnswerComposer().ask(small_engine.index, question)
    assert answer.status == status and not answer.answered
    assert words in answer.lead
    assert "@everyone" not in answer.lead and "<@" not in answer.lead


def test_mentions_and_markdown_are_stripped_before_searching() -> None:
    assert clean_question("@everyone <@&123> how do **I** hinge? <#99>") == "how do I hinge?"
    assert Shorthand({"rdl": "romanian deadlift"}).expand("RDL form?") == "RDL form? (romanian deadlift)"
    assert Shorthand({"rdl": "romanian deadlift"}).expand("rdls") == "rdls"


def test_shorthand_reads_stick_as_a_dowel_only_as_a_noun() -> None:
    shorthand = Shorthand()  # the shipped pairs
    assert shorthand.expand("should my inside foot stick out to the side") == \
        "should my inside foot stick out to the side"
    assert shorthand.expand("how do u do the stick drill").endswith("(dowel)")
    assert shorthand.expand("hinge with a stick and a wall").endswith("(dowel)")


def test_the_json_rendering_has_the_answer_shape(small_engine: Engine) -> None:
    answer = AnswerComposer(policy=ALWAYS).ask(small_engine.index, "attack position elbows")
    data = json.loads(render_json(answer))
    assert set(data) >= {"question", "answered", "lead", "citations", "videos", "drill", "safety_note",
                         "elapsed_ms"}
    assert set(data["citations"][0]) >= {"n", "title", "source", "url", "excerpt", "document_id", "score"}
    assert Answer.model_validate(data) == answer
    text = render_text(answer)
    assert "[1]" in text and "Sources:" in text and SOURCE["url"] in text


def test_the_speller_fixes_phone_typos_with_the_library_words_only() -> None:
    from index.answers.spelling import Speller

    speller = Speller(["Hinge correctly: the hips move back.", "Lower back fatigue after motos."])
    assert speller.correct("how do i hindge corectly") == "how do i hinge correctly"
    assert speller.correct("lowr back aftr motos") == "lower back after motos"
    assert speller.correct("Bitcoin prices") == "Bitcoin prices"  # nothing near enough: left alone
    assert speller.correct("plz hip") == "plz hip"  # short words are never touched


@pytest.mark.slow
class TestRealLibrary:
    def test_rider_questions_are_answered_with_exact_quotes(self, library_engine: Engine) -> None:
        composer = AnswerComposer()
        for question in ("my lower back is cooked after two motos", "how do i hold the attack position",
                         "what drill grooves the hinge"):
            answer = composer.ask(library_engine.index, question)
            assert answer.answered, question
            assert 1 <= len(answer.citations) <= 3
            for citation in answer.citations:
                assert citation.url and citation.url.startswith("http")
                assert unquote(citation.excerpt) in library_engine.index.documents[citation.document_id].body

    def test_off_topic_and_gibberish_are_declined(self, library_engine: Engine) -> None:
        composer = AnswerComposer()
        for question in ("what tire pressure for sand", "who won anaheim 1", "asdkjh qwe zxcv",
                         "best pizza recipe?"):
            answer = composer.ask(library_engine.index, question)
            assert not answer.answered, question
            assert "/drill" in answer.lead or "question" in answer.lead

    def test_a_pain_question_is_answered_with_the_note(self, library_engine: Engine) -> None:
        answer = AnswerComposer().ask(library_engine.index, "my back still aches after a crash last week")
        assert answer.safety_note == SAFETY_NOTE

    def test_hinge_ask_json_batch_loads_the_model_once(self, library_engine: Engine) -> None:
        data_dir = library_engine.store.data_dir
        questions = "how do i hold the attack position\n\nwho won anaheim 1\n"
        result = subprocess.run([sys.executable, "-m", "bot.cli", "ask", "--json", "--file", "-",
                                 "--data-dir", str(data_dir)], input=questions, capture_output=True, text=True,
                                cwd=PROJECT, timeout=300)
        assert result.returncode == 0, result.stderr
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert [a["answered"] for a in lines] == [True, False]
        single = subprocess.run([sys.executable, "-m", "bot.cli", "ask", "what drill grooves the hinge",
                                 "--data-dir", str(data_dir)], capture_output=True, text=True, cwd=PROJECT,
                                timeout=300)
        assert single.returncode == 0 and "Sources:" in single.stdout

    def test_the_rider_question_set_stays_above_its_floors(self, library_engine: Engine) -> None:
        """A regression guard, looser than the targets in the README: a ranking or decline change
        that costs more than a few questions fails here before it reaches riders."""
        from index.evaluation.questions import evaluate_questions, load_questions

        cases = load_questions(PROJECT / "tests" / "data" / "questions.jsonl")
        assert len(cases) >= 80
        assert {c.split for c in cases} == {"tune", "holdout"}
        report = evaluate_questions(library_engine.index, AnswerComposer(), cases)
        overall = report.parts[2]
        assert overall.hit_at_3 >= 0.95, report.misses
        # 0.945 when the 46 near misses (door hinges, hip-hop, deadlift records...) joined the set; 0.978 since the
        # off-topic topics cover welding, trailers, sleep and decking (index/answers/data/off_topic.txt); 0.989
        # (and 0.006 wrongly declined, from 0.018) since English words are never spelled into library words. 0.917
        # with the bundled pair since 30 everyday near misses joined (chopsticks, a guitarist's posture, a boxing
        # stance: 10 of them answered); the first 91 off-topic questions are all declined. 0.989 since everyday
        # domains joined the guard and the policy was refitted (60 more near misses written blind, half held out),
        # with 0.012 wrongly declined (two vague tune questions).
        assert overall.off_topic_declined >= 0.97, report.wrongly_answered
        assert overall.on_topic_declined <= 0.015, report.wrongly_declined
        typos = [part for part in report.subsets if part.name.startswith("typo")]
        assert typos and all(part.clean_hit_at_3 is not None for part in typos)
        for part in typos:  # phone-typed questions find what their clean forms find
            assert part.hit_at_3 >= (part.clean_hit_at_3 or 0.0) - 0.05, part.name
        assert sum(round(part.on_topic_declined * part.on_topic) for part in typos) <= 1

    def test_the_lead_answers_the_question_asked(self, library_engine: Engine) -> None:
        """tests/data/leads.jsonl: the first line a rider reads answers their question (issue 13, item 5)."""
        from index.evaluation.questions import lead_share, load_leads

        cases = load_leads(PROJECT / "tests" / "data" / "leads.jsonl")
        assert len(cases) >= 40
        share, wrong = lead_share(library_engine.index, AnswerComposer(), cases)
        # A regression guard at the measured share: 0.667 with the top document's summary or nearest sentence,
        # 0.867 (tune and holdout alike) since every cited summary competes with the quoted sentences
        # (index/answers/leads.py); 0.889 with the pair, 0.867 since the refitted decline policy declines one
        # vague held-out question ("my back looks like a banana..."), 0.889 since a video's summary leads only a
        # question that asks for a video. 0.853 since 30 questions written and labelled blind joined (0.800 on
        # those) and "stick" means a dowel only as a noun. The target is 0.9, not reached yet.
        assert share >= 0.84, wrong

    def test_a_video_description_leads_only_a_question_asking_for_a_video(self, library_engine: Engine) -> None:
        composer = AnswerComposer()
        index = library_engine.index

        def led_by_video_summary(question: str) -> bool:
            answer = composer.ask(index, question)
            assert answer.answered
            documents = [index.documents[c.document_id] for c in answer.citations]
            assert any(d.kind is Kind.VIDEO for d in documents)  # a video is cited either way
            return any(answer.lead == d.summary for d in documents if d.kind is Kind.VIDEO)

        assert not led_by_video_summary("do crunches help for moto or nah")
        assert led_by_video_summary("is there a video of a good plank")

    def test_a_phone_typed_question_is_answered_like_its_clean_form(self, library_engine: Engine) -> None:
        composer = AnswerComposer()
        typo = composer.ask(library_engine.index, "how do i hindge corectly")
        assert typo.answered
        assert {c.document_id for c in typo.citations} & {"key-exercise-hip-hinge", "what-drill-grooves-the-hinge",
                                                          "hinging-or-just-rounding-over", "dowel-hip-hinge"}


def test_document_terms_are_shared_safely_by_threads_asking_at_once(small_engine: Engine) -> None:
    """Eight threads ask the same fresh aids at once (each with its own stemmer): the terms are built once and
    every thread gets the same answer as a lone caller."""
    import threading

    from index.answers.composer import LibraryAids

    index = small_engine.index
    passages = [index.chunks[0].id]
    terms = set(index.lexical.tokenize(index.chunks[0].text))
    expected = LibraryAids(index).words_in_documents_of(terms, passages)
    aids = LibraryAids(index)
    start = threading.Barrier(8)
    results: list[tuple[bool, int]] = []

    def ask() -> None:
        start.wait()
        results.append((aids.words_in_documents_of(terms, passages), id(aids.document_terms())))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert expected is True
    assert [r[0] for r in results] == [True] * 8
    assert len({r[1] for r in results}) == 1  # one dictionary: built once, under the lock
    assert not aids.words_in_documents_of({"zzzunseenword"}, passages)
