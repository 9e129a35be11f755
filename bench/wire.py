"""Over-the-wire load benchmark: the real bot process against the fake Discord on 127.0.0.1.

    python bench/wire.py [--index DATA_DIR] [--count 300] [--seconds 30] [--burst 50] [--big-burst 100] [--unbatched]

Starts the fake Discord and the bot exactly as tests/wire/test_wire.py does, sends COUNT /ask interactions
spread evenly over SECONDS, waits for them, then sends a burst of BURST at once, and then one of BIG_BURST
at once (the issue's target: every one acked within 3 s, p99 completion at most 1 s, 0 errors; the
bot embeds questions that arrive together in one batch, index/retrieval/batching.py). Reports, per phase,
acknowledgement latency (INTERACTION_CREATE dispatched -> callback received) and completion latency
(-> the answer received), p50/p95/p99, errors, and the bot's peak resident memory (VmHWM).
Every loop is bounded in count and in time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fake_discord import FakeDiscord, Interaction
from tests.fake_discord.process import FAKE_TOKEN, PROJECT, build_index, copy_tree, running_bot

GUILD_ID = 1187654321098765432
QUESTIONS = [
    "why is my lower back cooked after two motos?", "what is a hip hinge?", "how do I hold the attack position?",
    "best drill for hamstrings", "kettlebell swing for riders", "how do I stop arm pump?",
    "should I train in the gym during race season?", "how do I keep my back flat when I stand up?",
    "what does a good hinge feel like?", "romanian deadlift or good morning?",
]
SORRY = "something went wrong"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def send(fake: FakeDiscord, n: int, phase: str) -> Interaction:
    question = f"{QUESTIONS[n % len(QUESTIONS)]} ({phase} {n})"
    return fake.slash("ask", question=question, user_id=10_000 + n)  # one rider each: no cooldown


def settle(fake: FakeDiscord, sent: list[Interaction], timeout: float) -> None:
    try:
        fake.wait_answered(sent, timeout)
    except TimeoutError as exc:
        print(f"warning: {exc}", file=sys.stderr)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the bot process has used so far (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def row(name: str, sent: list[Interaction], wall: float, cpu: float) -> list[str]:
    acks = [i.ack_latency * 1000 for i in sent if i.ack_latency is not None]
    done = [i.completion_latency * 1000 for i in sent if i.completion_latency is not None]
    errors = sum(i.answered_at is None or SORRY in i.text or bool(i.errors) for i in sent)
    late_acks = sum(a > 3000 for a in acks)
    return [name, str(len(sent)), f"{len(sent) / wall:.1f}",
            *(f"{percentile(acks, q):.0f}" for q in (50, 95, 99)),
            *(f"{percentile(done, q):.0f}" for q in (50, 95, 99)),
            f"{statistics.fmean(done):.0f}" if done else "nan", str(errors), str(late_acks),
            f"{cpu / max(len(sent), 1) * 1000:.0f}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, help="a built data dir to copy (default: build one, ~30 s)")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--big-burst", type=int, default=100, help="the second burst (0: none)")
    parser.add_argument("--unbatched", action="store_true",
                        help="run the bot without query batching (the comparison the engine issue asks for)")
    parser.add_argument("--timeout", type=float, default=180.0, help="longest wait for the answers of a phase")
    args = parser.parse_args()
    count, burst = min(args.count, 5000), min(args.burst, 1000)  # bounded whatever is asked
    big_burst = max(0, min(args.big_burst, 1000))

    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="hinge-wire-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if args.index is None:
            print("building the index once...", file=sys.stderr)
            build_index(tmp / "built", PROJECT / "knowledge")
        data = copy_tree(args.index or tmp / "built", tmp / "data")
        knowledge = copy_tree(PROJECT / "knowledge", tmp / "knowledge")
        with FakeDiscord(FAKE_TOKEN, guild_ids=[GUILD_ID]) as fake:
            started = time.monotonic()
            with running_bot(fake, data, knowledge, tmp / "bot.log",
                             {"HINGE_BENCH_UNBATCHED": "1"} if args.unbatched else None) as bot:
                startup = time.monotonic() - started
                warm = send(fake, 0, "warm-up")
                settle(fake, [warm], 60)

                cpu = [cpu_seconds(bot.pid)]
                steady: list[Interaction] = []
                interval = args.seconds / max(count, 1)
                begin = time.monotonic()
                for n in range(count):
                    pause = begin + n * interval - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    if time.monotonic() - begin > args.seconds * 2:  # the sender itself fell far behind
                        break
                    steady.append(send(fake, n, "steady"))
                settle(fake, steady, args.timeout)
                steady_wall = max(args.seconds, time.monotonic() - begin)
                cpu.append(cpu_seconds(bot.pid))

                begin = time.monotonic()
                burst_sent = [send(fake, n, "burst") for n in range(burst)]
                settle(fake, burst_sent, args.timeout)
                burst_wall = time.monotonic() - begin
                cpu.append(cpu_seconds(bot.pid))

                big_sent: list[Interaction] = []
                big_wall = 0.0
                if big_burst:
                    time.sleep(1.0)  # the first burst's stragglers are done: this one starts from idle
                    begin = time.monotonic()
                    big_sent = [send(fake, n, "big") for n in range(big_burst)]
                    settle(fake, big_sent, args.timeout)
                    big_wall = time.monotonic() - begin
                    cpu.append(cpu_seconds(bot.pid))

                peak_kb = bot.peak_memory_kb()
                alive = bot.alive()
                log = bot.log()

    header = ["phase", "sent", "done/s", "ack p50", "ack p95", "ack p99", "done p50", "done p95", "done p99",
              "done mean", "errors", "acks>3s", "cpu/answer"]
    rows = [header, row(f"steady {args.seconds:.0f}s", steady, steady_wall, cpu[1] - cpu[0]),
            row("burst", burst_sent, burst_wall, cpu[2] - cpu[1])]
    if big_sent:
        rows.append(row(f"burst, {big_burst} at once", big_sent, big_wall, cpu[3] - cpu[2]))
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    print("latencies in ms, measured at the fake Discord (dispatch -> callback / answer received); "
          "done/s: answers per second of the phase's wall time; cpu/answer: the bot's CPU time (ms, all threads) "
          "per answer, which on a shared machine says more about throughput than wall time does")
    for r in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)))
    print(f"load average (1 min) at start {load_start:.1f}, at end {os.getloadavg()[0]:.1f}, "
          f"on {os.cpu_count()} cores")
    peak = f"{peak_kb / 1024:.0f} MiB" if peak_kb else "unknown"
    print(f"bot start-up to gateway connection: {startup:.1f}s; bot peak memory (VmHWM): {peak}; "
          f"bot still running: {alive}; tracebacks in its log: {log.count('Traceback')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
