"""Batched query embedding: questions that arrive together are embedded in one model call.

`BatchingEmbedder` wraps another `Embedder` and is one itself. Small calls (a question, or a question with
a few earlier turns) from many threads share model calls in a leader/follower scheme, with no thread of
its own:

- When no batch is being encoded, a call is encoded at once, alone: a lone question waits for nothing.
- A call that arrives while a batch is being encoded joins a bounded queue and sleeps. When the batch in
  flight finishes, its leader hands the lead to the oldest waiting call, which encodes everything queued
  (up to `max_batch` texts) in one model call and wakes each caller with its own rows. A new leader whose
  oldest call has waited less than `max_wait` lingers until then (or until the batch is full) for late
  arrivals; under load that deadline has long passed, so it encodes at once.
- So at most one batch is encoded at a time, each question waits at most for the batch in flight plus its
  own, and a burst is answered with a few large model calls instead of many small ones competing for the
  same cores.
- Large calls (index builds: more than `max_call` texts) and calls that find the queue full are passed
  straight to the wrapped embedder, as without batching.
- An exception from the model reaches every caller of that batch. `close()` stops batching; later calls go
  straight to the wrapped embedder.

A batch's vectors equal each text's vector encoded alone (to float rounding, about 1e-7): MiniLM pads within
a batch and masks the padding out, and bge, whose int8 scales would otherwise come from the whole call, embeds
each text alone (bge_model.py), so only MiniLM's half shares model calls.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from index.retrieval.embedding import Embedder, Vectors

MAX_BATCH = 64  # texts per model call
MAX_WAIT = 0.001  # seconds a new leader lingers, counted from its oldest call's arrival
MAX_CALL = 32  # calls with more texts than this (builds) are not batched: a question, its earlier turns or the
# sentences an answer's lead is chosen from all fit
ENCODE_BATCH = 32  # texts per forward pass within a model call (the model sorts a call's texts by length)
MAX_QUEUE = 256  # waiting calls; beyond this a call is encoded on its own

_WAITING, _LEAD, _DONE = 0, 1, 2


class _Call:
    __slots__ = ("arrived", "error", "state", "texts", "vectors", "wake")

    def __init__(self, texts: list[str], lock: threading.Lock) -> None:
        self.texts = texts
        self.arrived = time.monotonic()
        self.wake = threading.Condition(lock)
        self.state = _WAITING
        self.vectors: Vectors | None = None
        self.error: BaseException | None = None


class BatchingEmbedder:
    """An `Embedder` that encodes overlapping small calls from many threads together (see the module doc)."""

    def __init__(self, inner: Embedder, max_batch: int = MAX_BATCH, max_wait: float = MAX_WAIT,
                 max_call: int = MAX_CALL, max_queue: int = MAX_QUEUE) -> None:
        if max_batch < 1 or max_call < 1 or max_queue < 0 or max_wait < 0:
            raise ValueError("max_batch and max_call must be at least 1, max_queue and max_wait at least 0")
        self.inner = inner
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_call = min(max_call, max_batch)
        self.max_queue = max_queue
        self._lock = threading.Lock()
        self._arrival = threading.Condition(self._lock)  # a lingering leader waits here for late calls
        self._queue: deque[_Call] = deque()
        self._busy = False  # a leader is gathering or encoding; invariant: a non-empty queue implies busy
        self._closed = False
        self._idle = threading.Condition(self._lock)
        # Counters, for tests and benchmarks: model calls made for batched calls, texts in them, and
        # calls passed straight through (large, queue full or closed).
        self.batches = 0
        self.batched_texts = 0
        self.largest_batch = 0
        self.passed_through = 0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def __getattr__(self, name: str) -> Any:
        # Whatever else the wrapped embedder offers (its tokenizer's `pieces`, say) stays available.
        if name.startswith("_") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def encode(self, texts: Sequence[str], batch_size: int = 16) -> Vectors:
        if not texts or len(texts) > self.max_call:
            return self._pass(texts, batch_size)
        call = _Call(list(texts), self._lock)
        batch: list[_Call] = []
        with self._lock:
            if self._closed or (self._busy and len(self._queue) >= self.max_queue):
                pass  # batch stays empty: encoded on its own below
            elif not self._busy:
                self._busy = True  # nothing in flight: lead at once, alone
                batch = [call]
            else:
                self._queue.append(call)
                self._arrival.notify()
                while call.state == _WAITING:
                    call.wake.wait()
                if call.state == _DONE:
                    return self._result(call, own=False)
                batch = self._gather(call)
        if not batch:
            return self._pass(texts, batch_size)
        self._run(batch, batch_size)
        return self._result(call, own=True)

    def close(self, timeout: float = 10.0) -> None:
        """Stop batching: later calls go straight to the wrapped embedder; waits (bounded) for the batch in
        flight and the calls already queued."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closed = True
            while self._busy and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)

    def _pass(self, texts: Sequence[str], batch_size: int) -> Vectors:
        with self._lock:
            self.passed_through += 1
        return self.inner.encode(texts, batch_size=batch_size)

    def _gather(self, leader: _Call) -> list[_Call]:
        """Called with the lock held by a call just handed the lead (it is first in the queue): linger until
        the batch is full or its oldest call has waited `max_wait`, then take the batch off the queue."""
        deadline = leader.arrived + self.max_wait
        while (sum(len(c.texts) for c in self._queue) < self.max_batch
               and (left := deadline - time.monotonic()) > 0):
            self._arrival.wait(left)
        batch: list[_Call] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0].texts) <= self.max_batch):
            call = self._queue.popleft()
            batch.append(call)
            size += len(call.texts)
        return batch

    def _run(self, batch: list[_Call], batch_size: int) -> None:
        """Encode `batch` in one model call (without the lock), hand each call its rows, then pass the lead on."""
        texts = [t for call in batch for t in call.texts]
        vectors: Vectors | None = None
        error: BaseException | None = None
        try:
            vectors = self.inner.encode(texts, batch_size=max(batch_size, ENCODE_BATCH))
            if vectors.shape[0] != len(texts):
                raise ValueError(f"the embedder returned {vectors.shape[0]} vectors for {len(texts)} texts")
        except BaseException as exc:  # delivered to every caller; the leader re-raises it as its own
            error = exc
        with self._lock:
            self.batches += 1
            self.batched_texts += len(texts)
            self.largest_batch = max(self.largest_batch, len(texts))
            start = 0
            for call in batch:
                if vectors is not None and error is None:
                    call.vectors = np.ascontiguousarray(vectors[start:start + len(call.texts)])
                call.error = error
                start += len(call.texts)
                call.state = _DONE
                call.wake.notify()
            if self._queue:
                nxt = self._queue[0]
                nxt.state = _LEAD
                nxt.wake.notify()
            else:
                self._busy = False
                self._idle.notify_all()

    @staticmethod
    def _result(call: _Call, own: bool) -> Vectors:
        if call.error is not None:
            if own:
                raise call.error
            # Each waiting thread raises its own copy, so tracebacks from several threads do not mix.
            try:
                mine = copy.copy(call.error)
            except Exception:
                mine = call.error
            raise mine.with_traceback(call.error.__traceback__)
        assert call.vectors is not None
        return call.vectors
