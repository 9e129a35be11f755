"""Answers: from a rider's question to cited excerpts, videos, a drill and an honest decline.

Discord-free: the bot and the CLI render the same `Answer` (models.py).
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from index.answers.conversation import (
    MAX_CONTEXT_TURNS,
    ContextPolicy,
    Turn,
    asks_amount,
    refers_back,
    without_amount,
)
from index.answers.decline import DeclinePolicy, Evidence, OffTopicGuard
from index.answers.drills import best_drill, drill_suggestion
from index.answers.excerpts import select_excerpt
from index.answers.leads import DocumentLead, LeadPolicy, SentenceVectors, choose_lead
from index.answers.models import Answer, Citation, DrillSuggestion, VideoLink
from index.answers.spelling import Speller, english_words
from index.answers.text import Shorthand, about_training, clean_question, has_words, mentions_pain
from index.library.documents import Document, Kind
from index.retrieval.embedding import Vectors
from index.retrieval.search import Hit, SearchIndex

MAX_QUESTION_CHARS = 500
MAX_CITATIONS = 3
MAX_MORE = 3
MAX_VIDEOS = 3

SAFETY_NOTE = ("Hinge Coach coaches technique and training, not medicine: pain, numbness or an injury "
               "belongs with a doctor or physiotherapist, so please get it checked.")
DECLINE_LEAD = ("I don't have anything in the library that answers that well, so I'd rather not guess. "
                "I cover the hip hinge, riding positions (attack, neutral, standing, whoops, ruts, starts), "
                "rider back fatigue, mobility and gym work for riders. Try rephrasing, or use /drill for "
                "a drill.")

# A rider who asks for a video or a drill wants that kind of document first.
_KIND_HINTS = {
    Kind.VIDEO.value: re.compile(r"\b(videos?|clips?|watch\w*|youtube|film\w*)\b", re.I),
    Kind.DRILL.value: re.compile(r"\b(drills?|exercises?)\b", re.I),
}
KIND_BONUS = 1.0
# A passage that sends the reader to a professional is the library's safety text: right for a pain
# question, an odd quote for any other (it often ranks only because its document's summary matches).
_REFERRAL = re.compile(r"\b(doctor|physiotherapist|physio|medical professional)s?\b", re.I)
_LOWER_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class _Seen:
    """What a conversation has already shown the rider: not shown again unless nothing else fits."""

    passages: frozenset[str]
    videos: frozenset[str]
    drills: frozenset[str]

    @classmethod
    def of(cls, history: Sequence[Turn]) -> _Seen:
        return cls(frozenset(p for t in history for p in t.passages), frozenset(v for t in history for v in t.videos),
                   frozenset(t.drill for t in history if t.drill))


def turn_of(answer: Answer) -> Turn:
    """The turn a conversation keeps of an answer."""
    return Turn(question=answer.question, passages=[c.passage_id for c in answer.citations if c.passage_id],
                videos=[v.url for v in answer.videos], drill=answer.drill.id if answer.drill else None)


def _last_quoted(history: Sequence[Turn]) -> list[str]:
    """The passages of the latest of the last few turns that quoted any: the topic a follow-up refers to."""
    return next((t.passages for t in reversed(history[-MAX_CONTEXT_TURNS:]) if t.passages), [])


def _source_name(doc: Document | None) -> str:
    if doc and doc.sources:
        first = doc.sources[0]
        return first.author or first.publisher
    return "Hinge Coach library"


class LibraryAids:
    """What the composer derives once from one loaded index: the library's spelling, and each document's
    own question (or title) and summary as vectors."""

    def __init__(self, index: SearchIndex, extra_words: Sequence[str] = ()) -> None:
        docs = list(index.documents.values())
        self.speller = Speller([*(f"{d.title} {d.question or ''} {d.summary} {d.body}" for d in docs), *extra_words])
        self._heading_vectors: dict[str, Vectors] | None = None
        self._summary_vectors: dict[str, Vectors] = {}
        self._rows = {c.id: n for n, c in enumerate(index.chunks)}
        self._chunk_documents = {c.id: c.doc_id for c in index.chunks}
        self._document_terms: dict[str, frozenset[str]] | None = None
        self._index = weakref.ref(index)
        self._lock = threading.Lock()

    def _vectors(self) -> tuple[dict[str, Vectors], dict[str, Vectors]] | None:
        with self._lock:
            if self._heading_vectors is None:
                index = self._index()
                if index is None:
                    return None
                docs = list(index.documents.values())
                summarised = [d for d in docs if d.summary]
                # One batch for every document's question (or title) and summary.
                vectors = index.embedder.encode([*(d.question or d.title for d in docs),
                                                 *(d.summary for d in summarised)])
                vectors = np.asarray(vectors, dtype=np.float32)
                self._heading_vectors = dict(zip((d.id for d in docs), vectors[:len(docs)], strict=True))
                self._summary_vectors = dict(zip((d.id for d in summarised), vectors[len(docs):], strict=True))
            return self._heading_vectors, self._summary_vectors

    def heading_vector(self, doc_id: str) -> Vectors | None:
        """The vector of a document's own question (forum documents) or title (the others)."""
        vectors = self._vectors()
        return vectors[0].get(doc_id) if vectors else None

    def summary_vector(self, doc_id: str) -> Vectors | None:
        """The vector of a document's summary (None when it has none)."""
        vectors = self._vectors()
        return vectors[1].get(doc_id) if vectors else None

    def document_terms(self) -> dict[str, frozenset[str]]:
        """Each document's search terms (stemmed words of its passages), from the index's own tokenizer."""
        with self._lock:
            index = self._index()
            if self._document_terms is None and index is not None:
                words: dict[str, set[str]] = {}
                for chunk in index.chunks:
                    words.setdefault(chunk.doc_id, set()).update(index.lexical.tokenize(chunk.text))
                self._document_terms = {doc: frozenset(found) for doc, found in words.items()}
            return self._document_terms or {}

    def words_in_documents_of(self, terms: set[str], passage_ids: Sequence[str]) -> bool:
        """Whether every term is in the text of the documents these passages belong to."""
        documents = {self._chunk_documents[p] for p in passage_ids if p in self._chunk_documents}
        if not documents:
            return False
        document_terms = self.document_terms()
        return all(any(t in document_terms.get(d, ()) for d in documents) for t in terms)

    def words_unknown_to_library(self, text: str) -> set[str]:
        """The English words of `text` (three letters or more, not stopwords) whose stems no passage uses."""
        index = self._index()
        if index is None:
            return set()
        vocabulary, english = index.lexical.vocabulary, english_words()
        unknown = set()
        for word in set(_LOWER_WORD.findall(text.lower())):
            stems = index.lexical.tokenize(word) if len(word) >= 3 and word in english else []
            if stems and not any(stem in vocabulary for stem in stems):
                unknown.add(word)
        return unknown

    def passage_vectors(self, passage_ids: Sequence[str]) -> Vectors:
        """The index's own vectors of these passages (ids it no longer holds are left out): no model call."""
        index = self._index()
        if index is None:
            return np.zeros((0, 0), dtype=np.float32)
        return np.asarray(index.dense.vectors[[self._rows[p] for p in passage_ids if p in self._rows]],
                          dtype=np.float32)


class AnswerComposer:
    def __init__(self, policy: DeclinePolicy | None = None, max_chars: int = MAX_QUESTION_CHARS,
                 guard: OffTopicGuard | None = None, context: ContextPolicy | None = None,
                 spelling: bool = True, leads: LeadPolicy | None = None) -> None:
        self.policy = policy or DeclinePolicy()
        self.guard = guard or OffTopicGuard()
        self.shorthand = Shorthand()
        self.max_chars = max_chars
        self.context = context or ContextPolicy()
        self.spelling = spelling
        self.leads = leads or LeadPolicy()
        self._aids: weakref.WeakKeyDictionary[SearchIndex, LibraryAids] = weakref.WeakKeyDictionary()
        self._aids_lock = threading.Lock()
        self.sentences = SentenceVectors.shared()

    def aids(self, index: SearchIndex) -> LibraryAids:
        with self._aids_lock:
            aids = self._aids.get(index)
            if aids is None:
                words = [*self.guard.topics, *self.shorthand.pairs, *self.shorthand.pairs.values()]
                aids = self._aids[index] = LibraryAids(index, words)
            return aids

    def ask(self, index: SearchIndex, question: str, guild_id: int | None = None,
            history: Sequence[Turn] = ()) -> Answer:
        """Answer `question` as asked in server `guild_id` (None: a DM or the terminal), in that server's scope
        of `index` (the shipped documents and its team's own), as the next turn of a conversation whose earlier
        turns are `history`. Safe to call from several threads at once."""
        started = time.perf_counter()
        answer = self._compose(index.scoped(guild_id), question, history)
        return answer.model_copy(update={"elapsed_ms": round((time.perf_counter() - started) * 1000, 2)})

    def warm(self, index: SearchIndex) -> None:
        """Load the model and embed what answers reuse (off-topic topics, document questions and summaries, the
        library's sentences) now: otherwise the first questions pay seconds for it."""
        for step in self.warm_steps(index):
            step()

    def warm_steps(self, index: SearchIndex) -> Iterator[Callable[[], object]]:
        """`warm` as steps of a second or less, so a caller can stop between any two."""
        yield lambda: self.prepare(index)
        yield from self.sentences.warm_steps(index)

    def prepare(self, index: SearchIndex) -> None:
        """The part of `warm` a new index needs before it serves (about a second, and a little more per team with
        documents of its own): every scope of it, with its documents' questions, summaries and search terms, and
        the off-topic topics. Its sentences are shared with the index it replaces, so only a new document's are
        missing, and the first answer that quotes one embeds them."""
        self.guard.similarity(index.embedder, index.embed_query("hip hinge"))
        for scope in index.scopes():
            self.aids(scope).heading_vector("")
            self.aids(scope).document_terms()

    def _invalid(self, question: str, lead: str) -> Answer:
        return Answer(question=question, answered=False, status="invalid", lead=lead)

    def _compose(self, index: SearchIndex, question: str, history: Sequence[Turn]) -> Answer:
        if not question or not question.strip():
            return self._invalid(question, "Ask me a question in words, for example: "
                                 "\"why does my lower back get tired after two motos?\"")
        if len(question) > self.max_chars:
            return self._invalid(question, f"That question is {len(question)} characters long; please keep it "
                                 f"under {self.max_chars} and ask one thing at a time.")
        clean = clean_question(question)
        if not has_words(clean):
            return self._invalid(question, "I couldn't find a question in that. Ask me in words, for "
                                 "example: \"how do I hold the attack position?\"")
        query = self.query(question, index)
        vector = index.embed_query(query)
        threshold = self.policy.threshold
        # A follow-up that refers back ("is there a video of that?") is searched with its context only; any other
        # question is searched alone first, and a conversation's earlier turns are never embedded again.
        unknown = len(self.aids(index).words_unknown_to_library(query)) if history else 0
        alone = not history or not refers_back(question) or self.context.self_contained(unknown)
        hits, terms, confidence = self._search(index, query, vector) if alone else ([], set(), 0.0)
        # Only a follow-up searched alone and declined there needs the (cheap) test of its words against the topic.
        alone_bar = threshold if self.context.declined_alone_below is None else self.context.declined_alone_below
        in_topic = bool(history) and alone and confidence < alone_bar and asks_amount(question) and \
            self.aids(index).words_in_documents_of(set(index.lexical.tokenize(without_amount(query))),
                                                   _last_quoted(history))
        if history and not self.context.stands_alone(question, confidence, alone_bar, in_topic, unknown):
            # Context may lend a follow-up its topic, never launder an off-topic question: the off-topic
            # similarity and the word coverage stay those of the rider's own words.
            own = self.evidence(index, vector, [], set(index.lexical.tokenize(query)))
            own_top = float(index.dense.top(vector, 1)[1][0]) if index.dense.size else 0.0
            off_topic = own.off_topic_cosine - own_top > self.context.off_topic_margin
            earlier = [self.query(t.question, index) for t in history[-MAX_CONTEXT_TURNS:]]
            query = self.context.lexical(query, earlier)
            vector = self.context.vector(vector, self.aids(index).passage_vectors(_last_quoted(history)))
            hits, terms, confidence = self._search(index, query, vector, own)
            # Words nearer a topic the library doesn't cover than to any passage: declined, whatever came before.
            confidence = 0.0 if off_topic else confidence
            threshold = self.context.follow_up_threshold
        seen = _Seen.of(history)
        safety = SAFETY_NOTE if mentions_pain(clean) else None
        top = hits[0].dense_score if hits else None
        if confidence < threshold:
            return Answer(question=question, answered=False, status="declined", lead=DECLINE_LEAD,
                          safety_note=safety, top_score=top, confidence=round(confidence, 4))
        chosen = self._distinct_documents([h for h in hits if h.chunk.id not in seen.passages]) or \
            self._distinct_documents(hits)  # quoted before, but nothing else fits
        citations = [self._cite(index, n, hit, terms) for n, hit in enumerate(chosen[:MAX_CITATIONS], 1)]
        more = [self._cite(index, n, hit, terms)
                for n, hit in enumerate(chosen[MAX_CITATIONS:MAX_CITATIONS + MAX_MORE], MAX_CITATIONS + 1)]
        docs = [index.documents.get(c.document_id) for c in citations]
        lead = self.lead(index, vector, citations, query)
        drill = self._drill(index, query, vector, hits, docs, seen.drills) if about_training(clean) else None
        return Answer(
            question=question, answered=True, status="answered", lead=lead, citations=citations, more=more,
            videos=[v for v in self._videos(docs) if v.url not in seen.videos],
            drill=drill,
            safety_note=safety, top_score=top, confidence=round(confidence, 4),
        )

    def _search(self, index: SearchIndex, query: str, vector: Vectors,
                own: Evidence | None = None) -> tuple[list[Hit], set[str], float]:
        hits = self.rank(index, query, vector)
        # The index's tokenizer keeps one stemmer per thread: PyStemmer objects must not be shared.
        terms = set(index.lexical.tokenize(query))
        evidence = self.evidence(index, vector, hits, terms)
        if own is not None:
            evidence = evidence.model_copy(update={"coverage": own.coverage, "off_topic_cosine": max(
                own.off_topic_cosine, evidence.off_topic_cosine)})
        return hits, terms, self.policy.confidence(evidence) if hits else 0.0

    def query(self, question: str, index: SearchIndex | None = None) -> str:
        """The question as the search sees it: cleaned, typos spelled the library's way (given the
        index), with rider shorthand spelled out."""
        text = clean_question(question)
        if index is not None and self.spelling:
            text = self.aids(index).speller.correct(text)
        return self.shorthand.expand(text)

    def lead(self, index: SearchIndex, vector: Vectors, citations: Sequence[Citation], query: str = "") -> str:
        aids = self.aids(index)
        # A video's summary describes the video: it answers "is there a video of...", not "do crunches help".
        wants_video = bool(_KIND_HINTS[Kind.VIDEO.value].search(query))

        def document(doc_id: str) -> DocumentLead | None:
            doc = index.documents.get(doc_id)
            heading, summary = aids.heading_vector(doc_id), aids.summary_vector(doc_id)
            if doc is None or heading is None or summary is None or (doc.kind is Kind.VIDEO and not wants_video):
                return None
            return DocumentLead(summary=doc.summary, heading=heading, vector=summary)

        return choose_lead(vector, citations, [document(c.document_id) for c in citations], self.sentences,
                           index.embedder, self.leads)

    @staticmethod
    def rank(index: SearchIndex, query: str, vector: Vectors, k: int = 12) -> list[Hit]:
        """The passages of `index` (a server's scope) in the order the answer uses them."""
        hits = index.search_with_vector(query, vector, k=k)
        wanted = {kind for kind, hint in _KIND_HINTS.items() if hint.search(query)}
        about_pain = mentions_pain(query)

        def order(hit: Hit) -> tuple[bool, float]:
            safety_text = not about_pain and bool(_REFERRAL.search(hit.chunk.text))
            return safety_text, -(hit.score + KIND_BONUS * (hit.chunk.kind in wanted))

        return sorted(hits, key=order)

    def evidence(self, index: SearchIndex, vector: Vectors, hits: Sequence[Hit], terms: set[str]) -> Evidence:
        cosines = [h.dense_score for h in hits[:3]] or [0.0]
        vocab = index.lexical.vocabulary
        return Evidence(
            top_cosine=max(cosines), mean_cosine=float(np.mean(cosines)),
            coverage=sum(t in vocab for t in terms) / len(terms) if terms else 0.0,
            off_topic_cosine=self.guard.similarity(index.embedder, vector),
        )

    @staticmethod
    def _distinct_documents(hits: Sequence[Hit]) -> list[Hit]:
        chosen: list[Hit] = []
        seen: set[str] = set()
        for hit in hits:
            if hit.chunk.doc_id not in seen:
                seen.add(hit.chunk.doc_id)
                chosen.append(hit)
        return chosen

    def _cite(self, index: SearchIndex, n: int, hit: Hit, terms: set[str]) -> Citation:
        doc = index.documents.get(hit.chunk.doc_id)
        return Citation(
            n=n, title=hit.chunk.title, source=_source_name(doc), url=hit.chunk.url,
            excerpt=select_excerpt(hit.chunk, terms, index.lexical.tokenize), document_id=hit.chunk.doc_id,
            passage_id=hit.chunk.id,
            heading=" > ".join(hit.chunk.heading_path) or None, score=round(hit.score, 4),
        )

    @staticmethod
    def _videos(docs: Sequence[Document | None]) -> list[VideoLink]:
        videos: list[VideoLink] = []
        seen: set[str] = set()
        for doc in docs:
            for video in doc.videos if doc else []:
                if video.url not in seen:
                    seen.add(video.url)
                    videos.append(VideoLink(title=video.title, url=video.url))
        return videos[:MAX_VIDEOS]

    @staticmethod
    def _drill(index: SearchIndex, query: str, vector: Vectors, hits: Sequence[Hit],
               docs: Sequence[Document | None],
               suggested: frozenset[str] = frozenset()) -> DrillSuggestion | None:
        """A drill among the hits first, then one the cited documents recommend, then a drill search."""
        candidates = [h.chunk.doc_id for h in hits if h.chunk.kind == Kind.DRILL.value]
        candidates += [ref for doc in docs if doc for ref in doc.drills]
        drill = next((index.documents[c] for c in candidates if c in index.documents and c not in suggested), None)
        if drill is None:
            drill = best_drill(index, query, vector=vector)
        if drill is None:
            return None
        return drill_suggestion(drill)


