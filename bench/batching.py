"""Micro-benchmark of batched query embedding (index/retrieval/batching.py) with the bundled model.

    python bench/batching.py [--rounds 30] [--repeats 5]

Reports:
- a lone query: the wrapper's own cost per call (on a zero-cost embedder, so only the queueing code is
  timed) and the latency of one real query with and without the wrapper, p50/p95;
- N concurrent queries (N = 1, 8, 32 threads started together): wall time until all N have their vectors,
  with and without batching, median of REPEATS, and the model calls the batched run made.
Every loop is bounded.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from index.engine import make_embedder
from index.retrieval.batching import BatchingEmbedder
from index.retrieval.embedding import BUNDLED_MODEL, Embedder, Vectors

QUESTIONS = [
    "why is my lower back cooked after two motos?", "what is a hip hinge?", "how do I hold the attack position?",
    "best drill for hamstrings", "kettlebell swing for riders", "how do I stop arm pump?",
    "should I train in the gym during race season?", "how do I keep my back flat when I stand up?",
    "what does a good hinge feel like?", "romanian deadlift or good morning?",
]


class Free:
    """An embedder that costs nothing: timing it through the wrapper times the wrapper alone."""

    model_id = "free"
    dimension = 4
    _row = np.ones((1, 4), dtype=np.float32)

    def encode(self, texts: Sequence[str], batch_size: int = 16) -> Vectors:
        return np.repeat(self._row, len(texts), axis=0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def lone(embedder: Embedder, rounds: int) -> list[float]:
    times = []
    for n in range(rounds):
        started = time.perf_counter()
        embedder.encode([f"{QUESTIONS[n % len(QUESTIONS)]} #{n}"])
        times.append((time.perf_counter() - started) * 1000)
    return times


def concurrent(embedder: Embedder, n: int, tag: int) -> tuple[float, float]:
    """Seconds until n threads started together each have their query's vector, and the CPU seconds used."""
    start = threading.Barrier(n + 1)
    threads = [threading.Thread(target=lambda i=i: (start.wait(30), embedder.encode(
        [f"{QUESTIONS[i % len(QUESTIONS)]} ({tag}.{i})"]))) for i in range(n)]
    for t in threads:
        t.start()
    start.wait(30)
    began, cpu = time.perf_counter(), time.process_time()
    for t in threads:
        t.join(120)
    return time.perf_counter() - began, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60, help="lone queries per variant")
    parser.add_argument("--repeats", type=int, default=5, help="runs per concurrent case (median reported)")
    args = parser.parse_args()
    rounds, repeats = min(args.rounds, 1000), min(args.repeats, 50)

    free, wrapped_free = Free(), BatchingEmbedder(Free())
    for embedder in (free, wrapped_free):
        lone(embedder, 1000)
    plain_us = statistics.median(lone(free, 20_000)) * 1000
    wrapped_us = statistics.median(lone(wrapped_free, 20_000)) * 1000
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"wrapper's own cost per lone call (zero-cost embedder, median of 20000): "
          f"{wrapped_us - plain_us:.1f} µs ({plain_us:.1f} µs plain, {wrapped_us:.1f} µs wrapped)")

    model = make_embedder(BUNDLED_MODEL, Path(tempfile.gettempdir()))
    model.encode(["warm up"])
    batched = BatchingEmbedder(model)
    lone(model, 5)
    lone(batched, 5)
    direct: list[float] = []
    through: list[float] = []
    for n in range(rounds):  # alternated call by call (and which goes first), so load changes hit both alike
        if n % 2:
            through += lone(batched, 1)
            direct += lone(model, 1)
        else:
            direct += lone(model, 1)
            through += lone(batched, 1)
    paired = [t - d for t, d in zip(through, direct, strict=True)]
    print(f"one real query alone, {rounds} pairs: direct p50 {percentile(direct, 50):.2f} ms "
          f"p95 {percentile(direct, 95):.2f} ms; batching p50 {percentile(through, 50):.2f} ms "
          f"p95 {percentile(through, 95):.2f} ms; median paired difference {statistics.median(paired):+.2f} ms")

    print("concurrent queries (threads started together), wall time until all have vectors, "
          f"median of {repeats}:")
    print(f"{'n':>3}  {'unbatched ms':>12}  {'batched ms':>10}  {'speed-up':>8}  "
          f"{'CPU ms/query unbatched':>22}  {'batched':>7}  model calls (batched, last run)")
    for n in (1, 8, 32):
        plain_runs, batch_runs = [], []
        calls = 0
        for r in range(repeats):
            plain_runs.append(concurrent(model, n, r))
            counter = BatchingEmbedder(model)
            batch_runs.append(concurrent(counter, n, r))
            calls = counter.batches
        p, b = (statistics.median(w for w, _ in runs) * 1000 for runs in (plain_runs, batch_runs))
        pc, bc = (statistics.median(c for _, c in runs) * 1000 / n for runs in (plain_runs, batch_runs))
        print(f"{n:>3}  {p:>12.1f}  {b:>10.1f}  {p / b:>7.2f}x  {pc:>22.1f}  {bc:>7.1f}  {calls}")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
