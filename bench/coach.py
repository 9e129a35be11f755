"""Coach-loop benchmark over the wire: the real bot process against the fake Discord on 127.0.0.1.

    python bench/coach.py [--index DATA_DIR] [--count 20] [--budget 900] [--probe 0.25]

Starts the fake Discord (with a coach channel and a coach role) and the bot exactly as
tests/wire/test_coach_wire.py does, with the shipped library and the shipped defaults. Then, one question at a
time and up to COUNT times: a rider asks a question the library declines, the card appears, the coach clicks
Answer and submits the modal. Measured from the modal submit (INTERACTION_CREATE dispatched by the fake):
  - reply:      the rider's reply (a message replying to their answer) created at the fake;
  - indexed:    the answer's row says indexed=1 (SQLite, polled from outside);
  - searchable: a private /ask of the same question, sent every PROBE seconds by another rider, is
                answered citing the coach (the first such probe's answer received).
Questions the library (or an earlier coach answer) already answers are skipped. Every loop is bounded in
count and in time (BUDGET seconds for the whole run, 60 s for any one step).

Targets (issue 11): submit -> reply p95 < 2 s; submit -> searchable < 10 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fake_discord import Interaction
from tests.fake_discord.process import PROJECT, build_index, copy_tree, running_bot
from tests.wire.test_coach_wire import (
    COACH,
    COACH_NAME,
    CoachWire,
    answer_message,
    button,
    coach_fake,
    fields,
    replies_to,
    rows,
    wait_card,
)

# Off the shipped library's topics, each with the coach's answer.
QA = [
    ("why do my goggles keep fogging up on the start line?",
     "Fog on the line is warm breath under a cold lens: wash the inner lens with mild soap, never wipe it, and keep "
     "the goggles up on the helmet until the 30-second board. A dual-pane lens fogs far less."),
    ("which tyre pressure should I run in deep sand?",
     "For deep sand run the rear tyre at about 12 psi so it bags out and finds drive, the front near 13 psi."),
    ("how tight should my motocross chain be?",
     "Chain slack: about three fingers between the chain and the swingarm at the rear of the slider, checked "
     "with the rider off the bike. Too tight wears the countershaft bearing."),
    ("how often should I clean my air filter?",
     "Clean and re-oil the foam air filter after every race day, and after every ride in dust or sand."),
    ("how do I set my suspension sag?",
     "Race sag: measure from the rear axle to a fixed point on the fender unloaded, then with you in your gear "
     "in the attack stance; set the preload ring so the difference is about 100 to 105 mm."),
    ("should I use tear-offs or roll-offs in the mud?",
     "In real mud use roll-offs: a tear-off stack is gone in two laps. Tear-offs are for dry, roosty tracks."),
    ("how do I break in new motocross boots?",
     "Wear new boots around the house and on a practice day before a race; flex the ankle hinge by hand, and "
     "never race a moto in boots you have not ridden in."),
    ("what jetting should I run at high altitude?",
     "Going up in altitude, go leaner: drop a main jet size or two per few thousand feet and lower the needle "
     "clip one position; read the plug after the first session."),
    ("how often should I change the oil on a 250F?",
     "On a 250F change the engine oil every 5 to 8 hours of riding, and the filter every second change."),
    ("which rear sprocket should I run on a tight track?",
     "On a tight track gear down: one or two teeth more on the rear sprocket for snap out of the corners."),
    ("how should I pack my gear bag for a race weekend?",
     "Pack the gear bag in the order you dress: boots at the bottom, then pants, jersey, gloves, goggles and "
     "spare tear-offs on top, with a second set of gloves and goggles."),
    ("how do I wash my bike without getting water in the electrics?",
     "Plug the airbox with a wash cover, keep the pressure washer away from the bearings, the carb or "
     "throttle body and the connectors, and blow the bike dry before starting it."),
    ("what premix ratio should I use in my two-stroke?",
     "Use the oil maker's premix ratio, usually 32:1 to 40:1 for a race two-stroke; measure it every time."),
    ("how do I bleed the hydraulic clutch?",
     "Bleed the hydraulic clutch from the slave cylinder with a syringe, pushing fluid up to the master "
     "cylinder until no bubbles come out; use the mineral oil the maker specifies."),
    ("when should I replace my helmet after a crash?",
     "Replace the helmet after any crash where your head hit the ground, even with no visible damage, and at "
     "the latest every five years."),
    ("how do I fix a flat tyre at the track?",
     "For a flat at the track carry a spare tube, two tyre irons, a valve tool and a pump; break the bead, "
     "work one side off, swap the tube and dust it with talc."),
    ("should I run pump gas or race fuel?",
     "Run the fuel your engine is mapped for: stock bikes run well on fresh premium pump gas; race fuel only "
     "pays off with a map made for it."),
    ("how do I load my bike into a van safely?",
     "Use a ramp with a hook, walk the bike up in first gear with the engine off, and strap it on both fork "
     "legs with soft loops, compressing the forks a third."),
    ("how do I sign up for my first amateur race?",
     "For a first amateur race join the club or sanctioning body, get the licence, and enter online before "
     "the deadline; bring your licence and your transponder."),
    ("how do I change my brake pads?",
     "Brake pads: pull the pin, swap the pads, push the pistons back, and bed the new pads in with a few "
     "medium stops before you ride hard."),
    ("what grease should I use on my linkage bearings?",
     "Linkage bearings want a waterproof marine grease; clean and regrease them every few race weekends."),
    ("how do I stop my radiators from boiling over in the mud?",
     "Radiators boil in the mud when the fins clog: fit radiator louvres or mud screens, use a coolant with "
     "a higher boiling point and a higher-pressure radiator cap."),
    ("how do I choose a transponder for racing?",
     "Buy the transponder type your club's timing system reads, mount it on the fork leg, and charge it."),
    ("what spare parts should I take to a race?",
     "Spare parts for a race: levers, a clutch and brake lever, a spark plug, a tube, an air filter, a chain "
     "link and a set of grips."),
]


@dataclass
class Round:
    question: str
    reply: float | None = None
    indexed: float | None = None
    searchable: float | None = None
    probes: int = 0
    problems: list[str] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def coach_cited(interaction: Interaction) -> bool:
    return bool(interaction.replies) and COACH_NAME in fields(interaction).get("Sources", "")


def one_round(w: CoachWire, data: Path, n: int, question: str, text: str, probe: float, step: float,
              next_user: list[int]) -> Round | None:
    """Ask, answer, and time the reply and the searchability of one answer; None when the question is not
    declined (the library or an earlier coach answer covers it)."""
    fake = w.fake

    def user() -> int:
        next_user[0] += 1
        return next_user[0]

    ask = fake.slash("ask", question=question, user_id=user())
    fake.wait_answered([ask], step)
    if "Asked the coaches" not in fields(ask):
        return None
    asked = answer_message(ask)
    card = wait_card(w, question, step)
    shown = fake.click(card, button(card, "answer"), user_id=COACH, roles=[w.coach_role])
    fake.wait_answered([shown], step)
    if shown.modal is None:
        raise RuntimeError(f"no modal for card {card['id']}: {shown.sent}")
    before = len(rows(data, "SELECT id FROM coach_answers"))
    submit = fake.submit_modal(shown, {"answer": text, "title": question},
                               user_id=COACH, roles=[w.coach_role])
    start = submit.dispatched_at
    result = Round(question)
    deadline = start + step
    next_probe = start + probe
    while time.monotonic() < deadline and (result.reply is None or result.indexed is None
                                           or result.searchable is None):
        now = time.monotonic()
        if result.reply is None and replies_to(fake, w.rider_channel, asked["id"]):
            result.reply = now - start
        if result.indexed is None:
            flags = rows(data, "SELECT indexed FROM coach_answers ORDER BY id")
            if len(flags) > before and flags[-1] == (1,):
                result.indexed = now - start
        if result.searchable is None and now >= next_probe:
            # A private question: not queued for the coaches, so the probes leave no cards behind.
            probe_ask = fake.slash("ask", question=question, user_id=user(), private=True)
            result.probes += 1
            fake.wait_answered([probe_ask], step)
            if coach_cited(probe_ask):
                assert probe_ask.answered_at is not None
                result.searchable = probe_ask.answered_at - start
            next_probe = time.monotonic() + probe
        time.sleep(0.005)
    for name in ("reply", "indexed", "searchable"):
        if getattr(result, name) is None:
            result.problems.append(f"no {name} within {step:.0f}s")
    replies = replies_to(fake, w.rider_channel, asked["id"])
    if len(replies) != 1:
        result.problems.append(f"{len(replies)} replies")
    elif fake.pinged_user_ids(replies[0]) != [ask.user_id] or fake.pinged_role_ids(replies[0]) or \
            fake.pings_everyone(replies[0]):
        result.problems.append("the reply pings someone else")
    return result


def stats(name: str, values: list[float], target: str) -> list[str]:
    ms = [v * 1000 for v in values]
    return [name, str(len(ms)), *(f"{percentile(ms, q):.0f}" for q in (50, 95)),
            f"{max(ms):.0f}" if ms else "nan", f"{statistics.fmean(ms):.0f}" if ms else "nan", target]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, help="a built data dir to copy (default: build one, ~30 s)")
    parser.add_argument("--count", type=int, default=20, help=f"answers to time (at most {len(QA)})")
    parser.add_argument("--budget", type=float, default=900.0, help="longest run, in seconds, once the bot is up")
    parser.add_argument("--probe", type=float, default=0.25, help="seconds between searchability probes")
    parser.add_argument("--step", type=float, default=60.0, help="longest wait for any one step")
    args = parser.parse_args()
    count = max(1, min(args.count, len(QA)))

    rounds: list[Round] = []
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hinge-coach-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if args.index is None:
            print("building the index once...", file=sys.stderr)
            build_index(tmp / "built", PROJECT / "knowledge")
        data = copy_tree(args.index or tmp / "built", tmp / "data")
        knowledge = copy_tree(PROJECT / "knowledge", tmp / "knowledge")
        w = coach_fake()
        try:
            started = time.monotonic()
            with running_bot(w.fake, data, knowledge, tmp / "bot.log", extra_env=w.env()) as bot:
                startup = time.monotonic() - started
                warm = w.fake.slash("ask", question="what is a hip hinge?", user_id=1)
                w.fake.wait_answered([warm], 60)
                begin = time.monotonic()
                users = [10_000]
                for n, (question, text) in enumerate(QA):
                    if len(rounds) >= count or time.monotonic() - begin > args.budget:
                        break
                    done = one_round(w, data, n, question, text, args.probe, args.step, users)
                    if done is None:
                        skipped.append(question)
                        continue
                    rounds.append(done)
                    print(f"{len(rounds):2d} reply {done.reply or float('nan'):.2f}s indexed "
                          f"{done.indexed or float('nan'):.2f}s searchable {done.searchable or float('nan'):.2f}s "
                          f"({done.probes} probes) {'; '.join(done.problems)}", file=sys.stderr)
                wall = time.monotonic() - begin
                peak_kb = bot.peak_memory_kb()
                alive = bot.alive()
                log = bot.log()
        finally:
            w.fake.stop()

    header = ["from modal submit to", "n", "p50", "p95", "max", "mean", "target"]
    table = [header,
             stats("the rider's reply", [r.reply for r in rounds if r.reply is not None], "p95 < 2000"),
             stats("indexed=1 in SQLite", [r.indexed for r in rounds if r.indexed is not None], ""),
             stats("searchable (cited)", [r.searchable for r in rounds if r.searchable is not None], "< 10000")]
    widths = [max(len(r[c]) for r in table) for c in range(len(header))]
    print(f"coach loop over the wire: {len(rounds)} answers in {wall:.0f}s, one at a time; latencies in ms, "
          f"measured at the fake Discord from the modal submit's dispatch; searchable: a private /ask of the same "
          f"question every {args.probe}s is answered citing the coach")
    for r in table:
        print("  ".join(cell.rjust(width) for cell, width in zip(r, widths, strict=True)))
    replies = [r.reply for r in rounds if r.reply is not None]
    searchable = [r.searchable for r in rounds if r.searchable is not None]
    problems = [f"{r.question!r}: {'; '.join(r.problems)}" for r in rounds if r.problems]
    reply_ok = bool(replies) and len(replies) == len(rounds) and percentile(replies, 95) < 2.0
    search_ok = bool(searchable) and len(searchable) == len(rounds) and max(searchable) < 10.0
    print(f"targets: reply p95 < 2 s: {'met' if reply_ok else 'MISSED'}; searchable < 10 s (every answer): "
          f"{'met' if search_ok else 'MISSED'}")
    peak = f"{peak_kb / 1024:.0f} MiB" if peak_kb else "unknown"
    print(f"bot start-up to gateway connection: {startup:.1f}s; peak memory (VmHWM): {peak}; still running: "
          f"{alive}; tracebacks in its log: {log.count('Traceback')}; skipped (not declined): {len(skipped)}")
    for line in problems:
        print(f"problem: {line}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
