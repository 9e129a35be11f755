"""BatchingEmbedder: overlapping small calls share one model call; a lone call waits for nothing."""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from index.retrieval.batching import BatchingEmbedder
from index.retrieval.embedding import Vectors

DIM = 8
BOUND = 10.0  # seconds: the longest any test waits for anything


def vector(text: str) -> Vectors:
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    v = rng.standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


class FakeEmbedder:
    """Counts model calls and their sizes; `gate`, when set, holds the first call until released;
    `fail_on` makes any call containing that text raise."""

    model_id = "fake"
    dimension = DIM

    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.sizes: list[int] = []
        self.lock = threading.Lock()
        self.entered = threading.Event()
        self.gate: threading.Event | None = None

    def pieces(self, text: str) -> tuple[list[tuple[int, int]], list[int | None]]:
        return [(0, len(text))], [0]

    def encode(self, texts: Sequence[str], batch_size: int = 16) -> Vectors:
        with self.lock:
            first = not self.sizes
            self.sizes.append(len(texts))
        self.entered.set()
        if first and self.gate is not None:
            assert self.gate.wait(BOUND)
        if self.delay:
            time.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in texts:
            raise RuntimeError(f"cannot embed {self.fail_on!r}")
        return np.stack([vector(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)


def in_threads(fn: Callable[[int], object], n: int) -> list[object]:
    """Run fn(0..n-1) in n threads started together; returns each result or the exception it raised."""
    results: list[object] = [None] * n
    start = threading.Barrier(n)

    def work(i: int) -> None:
        start.wait(BOUND)
        try:
            results[i] = fn(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND)
        assert not t.is_alive()
    return results


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + BOUND
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def held_first_call(embedder: BatchingEmbedder, fake: FakeEmbedder) -> threading.Thread:
    """Start a call that the fake holds inside the model until `fake.gate` is set."""
    fake.gate = threading.Event()
    first = threading.Thread(target=embedder.encode, args=(["first"],))
    first.start()
    assert fake.entered.wait(BOUND)
    return first


def test_lone_call_is_encoded_at_once_even_with_a_long_max_wait() -> None:
    fake = FakeEmbedder()
    embedder = BatchingEmbedder(fake, max_wait=5.0)
    started = time.perf_counter()
    got = embedder.encode(["what is a hip hinge?"])
    assert time.perf_counter() - started < 0.5  # far below max_wait: nothing lingered
    assert fake.sizes == [1]
    np.testing.assert_array_equal(got, vector("what is a hip hinge?")[None, :])
    assert embedder.encode(["again"]).shape == (1, DIM)
    assert fake.sizes == [1, 1] and embedder.batches == 2


def test_calls_that_arrive_during_an_encode_go_together_in_the_next_batch() -> None:
    fake = FakeEmbedder()
    embedder = BatchingEmbedder(fake, max_wait=0.0)
    first = held_first_call(embedder, fake)
    results: dict[int, Vectors] = {}
    waiting = [threading.Thread(target=lambda i=i: results.__setitem__(i, embedder.encode([f"q{i}"])))
               for i in range(5)]
    for t in waiting:
        t.start()
    wait_for(lambda: len(embedder._queue) == 5)
    assert fake.sizes == [1]  # nobody else reached the model while the first call was in it
    assert fake.gate is not None
    fake.gate.set()
    for t in [first, *waiting]:
        t.join(BOUND)
    assert fake.sizes == [1, 5]
    for i in range(5):
        np.testing.assert_array_equal(results[i], vector(f"q{i}")[None, :])


def test_many_threads_at_once_end_up_in_fewer_model_calls_with_their_own_rows() -> None:
    fake = FakeEmbedder(delay=0.02)
    embedder = BatchingEmbedder(fake, max_batch=32)
    got = in_threads(lambda i: embedder.encode([f"question {i}"]), 24)
    for i, vectors in enumerate(got):
        assert isinstance(vectors, np.ndarray)
        np.testing.assert_array_equal(vectors, vector(f"question {i}")[None, :])
    assert sum(fake.sizes) == 24
    assert len(fake.sizes) < 24 // 2, fake.sizes
    assert embedder.largest_batch > 1


def test_calls_of_a_few_texts_are_batched_and_split_back() -> None:
    fake = FakeEmbedder(delay=0.02)
    embedder = BatchingEmbedder(fake, max_call=4)
    got = in_threads(lambda i: embedder.encode([f"q{i}", *(f"earlier {i}.{j}" for j in range(i % 3))]), 12)
    for i, vectors in enumerate(got):
        want = np.stack([vector(t) for t in [f"q{i}", *(f"earlier {i}.{j}" for j in range(i % 3))]])
        np.testing.assert_array_equal(vectors, want)
    assert len(fake.sizes) < 12


def test_a_batch_never_exceeds_max_batch() -> None:
    fake = FakeEmbedder()
    embedder = BatchingEmbedder(fake, max_batch=4, max_wait=0.0)
    first = held_first_call(embedder, fake)
    waiting = [threading.Thread(target=embedder.encode, args=([f"q{i}"],)) for i in range(10)]
    for t in waiting:
        t.start()
    wait_for(lambda: len(embedder._queue) == 10)
    assert fake.gate is not None
    fake.gate.set()
    for t in [first, *waiting]:
        t.join(BOUND)
    assert fake.sizes == [1, 4, 4, 2]


def test_large_calls_bypass_the_queue() -> None:
    fake = FakeEmbedder()
    embedder = BatchingEmbedder(fake, max_call=8)
    texts = [f"passage {i}" for i in range(50)]
    got = embedder.encode(texts, batch_size=16)
    np.testing.assert_array_equal(got, np.stack([vector(t) for t in texts]))
    assert fake.sizes == [50] and embedder.passed_through == 1 and embedder.batches == 0
    assert embedder.encode([]).shape == (0, DIM)


def test_an_exception_reaches_every_caller_of_the_batch_and_the_next_batch_still_runs() -> None:
    fake = FakeEmbedder(fail_on="boom")
    embedder = BatchingEmbedder(fake, max_wait=0.0)
    first = held_first_call(embedder, fake)
    outcome: dict[str, object] = {}

    def ask(text: str) -> None:
        try:
            outcome[text] = embedder.encode([text])
        except RuntimeError as exc:
            outcome[text] = exc

    waiting = [threading.Thread(target=ask, args=(t,)) for t in ("a", "boom", "b", "c")]
    for t in waiting:
        t.start()
    wait_for(lambda: len(embedder._queue) == 4)
    assert fake.gate is not None
    fake.gate.set()
    for t in [first, *waiting]:
        t.join(BOUND)
        assert not t.is_alive()
    errors = [outcome[t] for t in ("a", "boom", "b", "c")]
    assert all(isinstance(e, RuntimeError) and "boom" in str(e) for e in errors)
    assert len({id(e) for e in errors}) == 4  # each thread raised its own copy
    np.testing.assert_array_equal(embedder.encode(["after"]), vector("after")[None, :])
    assert not embedder._busy


def test_a_lone_failing_call_raises_and_frees_the_lead() -> None:
    embedder = BatchingEmbedder(FakeEmbedder(fail_on="boom"))
    with pytest.raises(RuntimeError, match="boom"):
        embedder.encode(["boom"])
    assert embedder.encode(["fine"]).shape == (1, DIM)


def test_the_queue_is_bounded_and_a_call_that_finds_it_full_is_encoded_on_its_own() -> None:
    fake = FakeEmbedder()
    embedder = BatchingEmbedder(fake, max_queue=2, max_wait=0.0)
    first = held_first_call(embedder, fake)
    queued = [threading.Thread(target=embedder.encode, args=([f"q{i}"],)) for i in range(2)]
    for t in queued:
        t.start()
    wait_for(lambda: len(embedder._queue) == 2)
    np.testing.assert_array_equal(embedder.encode(["overflow"]), vector("overflow")[None, :])
    assert embedder.passed_through == 1 and len(embedder._queue) == 2
    assert fake.gate is not None
    fake.gate.set()
    for t in [first, *queued]:
        t.join(BOUND)
    assert sorted(fake.sizes) == [1, 1, 2]


def test_close_waits_for_the_batch_in_flight_and_then_stops_batching() -> None:
    fake = FakeEmbedder()
    embedder = BatchingEmbedder(fake, max_wait=0.0)
    first = held_first_call(embedder, fake)
    queued = threading.Thread(target=embedder.encode, args=(["queued"],))
    queued.start()
    wait_for(lambda: len(embedder._queue) == 1)
    closer = threading.Thread(target=embedder.close)
    closer.start()
    time.sleep(0.02)
    assert closer.is_alive()  # still waiting for the batches in flight
    assert fake.gate is not None
    fake.gate.set()
    for t in (first, queued, closer):
        t.join(BOUND)
        assert not t.is_alive()
    assert fake.sizes == [1, 1] and not embedder._busy
    embedder.encode(["later"])
    assert embedder.passed_through == 1 and embedder.batches == 2


def test_it_is_an_embedder_and_keeps_the_wrapped_ones_extras() -> None:
    embedder = BatchingEmbedder(FakeEmbedder())
    assert embedder.model_id == "fake" and embedder.dimension == DIM
    assert embedder.pieces("hinge") == ([(0, 5)], [0])
    with pytest.raises(AttributeError):
        _ = embedder.no_such_thing
    with pytest.raises(ValueError):
        BatchingEmbedder(FakeEmbedder(), max_batch=0)


@pytest.mark.slow
def test_real_model_vectors_batched_equal_vectors_alone(real_embedder) -> None:  # type: ignore[no-untyped-def]
    questions = ["hinge", "what is a hip hinge?", "why is my lower back cooked after two motos at the weekend race?",
                 "best drill for hamstrings", "how do I keep my back flat when I stand up on the pegs in rough "
                 "sections, and should my knees bend more than my hips?", "rdl", "kettlebell swing for riders",
                 "how do i hindge corectly"]
    alone = np.concatenate([real_embedder.encode([q]) for q in questions])

    def same(vectors: np.ndarray) -> None:
        # A question's vector does not depend on who else asked at the same time: MiniLM's does not depend on
        # the batch, and bge embeds each text alone.
        np.testing.assert_allclose(vectors, alone, atol=1e-5)

    same(real_embedder.encode(questions, batch_size=len(questions)))
    embedder = BatchingEmbedder(real_embedder)
    for _ in range(3):
        got = in_threads(lambda i: embedder.encode([questions[i]]), len(questions))
        same(np.concatenate([np.asarray(g) for g in got]))
    assert embedder.largest_batch > 1  # the threads did share model calls
