"""Prometheus metrics, in a registry of the bot's own (no module-level state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
REINDEX_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.questions = Counter("hinge_questions", "Questions asked, by outcome", ["status"],
                                 registry=self.registry)
        self.declined = Counter("hinge_declined", "Questions the library could not answer", registry=self.registry)
        self.latency = Histogram("hinge_answer_latency_seconds", "Time to compose an answer",
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.reindexes = Counter("hinge_reindexes", "Reindexes, by result", ["result"], registry=self.registry)
        self.reindex_seconds = Histogram("hinge_reindex_duration_seconds", "Reindex duration",
                                         buckets=REINDEX_BUCKETS, registry=self.registry)
        self.feedback = Counter("hinge_feedback", "Feedback on answers", ["vote"], registry=self.registry)
        self.documents = Gauge("hinge_library_documents", "Documents in the index in use", registry=self.registry)
        self.chunks = Gauge("hinge_library_chunks", "Passages in the index in use", registry=self.registry)

    def answered(self, status: str, elapsed_ms: float) -> None:
        self.questions.labels(status=status).inc()
        if status == "declined":
            self.declined.inc()
        self.latency.observe(elapsed_ms / 1000)

    def reindexed(self, ok: bool, seconds: float | None = None) -> None:
        self.reindexes.labels(result="ok" if ok else "failed").inc()
        if seconds is not None:
            self.reindex_seconds.observe(seconds)

    def voted(self, helpful: bool) -> None:
        self.feedback.labels(vote="up" if helpful else "down").inc()

    def library(self, documents: int, chunks: int) -> None:
        self.documents.set(documents)
        self.chunks.set(chunks)

    def render(self) -> bytes:
        return generate_latest(self.registry)
