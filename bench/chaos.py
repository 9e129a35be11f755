"""The seeded SIGKILL chaos run over the wire, many seeds (tests/wire/chaos.py is the harness).

    python bench/chaos.py --seed N --kills K [--runs R] [--index DATA_DIR] [--keep] [--ci]

Runs R seeds (N, N+1, ...), each the full workload (40 questions, 10 coach answers, 3 edits, 2 /forget,
2 /forget-me, 2 withdraws) against the real bot process, SIGKILLed K times at moments the seed picks and
restarted each time. Prints, per seed and in total: kills, answers accepted, lost, duplicated,
inconsistencies, and every problem with the command that replays its seed. Exit status 1 if any.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fake_discord.process import PROJECT, build_index
from tests.wire.chaos import ChaosConfig, ChaosReport, ChaosRun, ci_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kills", type=int, default=5, help="SIGKILLs per seed")
    parser.add_argument("--runs", type=int, default=1, help="seeds to run: --seed, --seed + 1, ...")
    parser.add_argument("--index", type=Path, help="a data dir with the shipped library already indexed")
    parser.add_argument("--keep", action="store_true", help="keep each run's data dir and bot logs")
    parser.add_argument("--ci", action="store_true", help="the small workload `make test` runs")
    args = parser.parse_args(argv)
    # A SIGTERM (a timeout, a Ctrl-C from a wrapper) unwinds like an error, so the bot of the run is killed too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="hinge-chaos-"))
    knowledge = PROJECT / "knowledge"
    index = args.index
    if index is None:
        index = work / "index"
        print("building the index once ...", flush=True)
        build_index(index, knowledge)
    reports: list[ChaosReport] = []
    try:
        for seed in range(args.seed, args.seed + args.runs):
            print(f"seed {seed}, {args.kills} kills:", flush=True)
            config = ci_config(seed, args.kills) if args.ci else ChaosConfig(seed=seed, kills=args.kills)
            run = ChaosRun(config, index, knowledge, work / f"seed-{seed}",
                           say=lambda line: print(line, flush=True))
            report = run.run()
            reports.append(report)
            print(report.summary(), flush=True)
            for problem in report.problems():
                print(f"  {problem}")
            if not report.ok:
                print(f"  replay: python bench/chaos.py --seed {seed} --kills {args.kills}{' --ci' if args.ci else ''}"
                      f"   (logs: {run.workdir})")
    finally:
        if not args.keep and all(r.ok for r in reports):
            shutil.rmtree(work, ignore_errors=True)
        elif reports:
            print(f"data dirs and bot logs kept in {work}")
    print(f"total: {len(reports)} seeds, kills {sum(r.kills for r in reports)}, "
          f"answers accepted {sum(r.accepted for r in reports)}, lost {sum(len(r.lost) for r in reports)}, "
          f"duplicated {sum(len(r.duplicated) for r in reports)}, "
          f"inconsistencies {sum(len(r.inconsistencies) for r in reports)}, "
          f"unqueued questions {sum(len(r.unqueued) for r in reports)}")
    return 0 if reports and all(r.ok for r in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
