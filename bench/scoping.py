"""Answer latency in one server while other servers have documents of their own.

    python bench/scoping.py [--servers 3] [--docs 12] [--runs 2] [--code DIR] [--cache embeddings.sqlite]

Builds a library of the shipped documents plus, for each server, its own versions of the most cited shipped
documents (as tests/core/test_scoping.py does), then answers every rider question (tests/data/questions.jsonl)
as asked in the first server and prints the warm latency, p50 and p95, and the time the new index took to get
ready (build, load, prepare). `--code DIR` imports the engine from another checkout (e.g. an older commit
unpacked with `git archive`), so two code paths can be measured one after the other on the same machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
PROJECT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=3)
    parser.add_argument("--docs", type=int, default=12, help="documents of its own per server")
    parser.add_argument("--runs", type=int, default=2, help="passes over the question set (the first warms)")
    parser.add_argument("--code", type=Path, default=PROJECT, help="the checkout whose engine is measured")
    parser.add_argument("--cache", type=Path, help="an embedding cache to start from (saves embedding the library)")
    args = parser.parse_args()
    sys.path.insert(0, str(args.code.resolve()))

    import importlib.util

    import numpy as np

    from index.answers.composer import AnswerComposer
    from index.engine import Engine, make_embedder
    from index.evaluation.questions import load_questions

    # The test's team documents, imported from its file so that its own imports resolve to `--code`.
    spec = importlib.util.spec_from_file_location("scoping_documents", PROJECT / "tests" / "core" / "test_scoping.py")
    assert spec is not None and spec.loader is not None
    documents = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(documents)
    add_team_documents, shipped = documents.add_team_documents, documents.shipped

    questions = [c.question for c in load_questions(PROJECT / "tests" / "data" / "questions.jsonl")]
    servers = [1000 + n for n in range(args.servers)]
    with tempfile.TemporaryDirectory() as tmp:
        data, library = Path(tmp) / "data", Path(tmp) / "library"
        (data / "cache").mkdir(parents=True)
        if args.cache:
            shutil.copy(args.cache, data / "cache" / "embeddings.sqlite")
        for server in servers:
            add_team_documents(library, server, f"team-{server}", shipped(args.docs))
        engine = Engine(data, PROJECT / "knowledge", make_embedder("bundled", data), library_dir=library)
        composer = AnswerComposer()
        engine.load()
        started = time.perf_counter()
        engine.reindex(prepare=composer.prepare)
        ready = time.perf_counter() - started
        composer.warm(engine.index)
        print(f"code {args.code}: {len(engine.index)} passages, {args.servers} servers x {args.docs} documents; "
              f"reindex to ready {ready:.1f}s")
        for run in range(args.runs):
            times = []
            for question in questions:
                at = time.perf_counter()
                composer.ask(engine.index, question, servers[0])
                times.append((time.perf_counter() - at) * 1000)
            print(f"  pass {run + 1}: {len(times)} questions in server {servers[0]}: "
                  f"p50 {np.percentile(times, 50):.1f} ms, p95 {np.percentile(times, 95):.1f} ms, "
                  f"mean {np.mean(times):.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
