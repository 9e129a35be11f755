"""The seeded SIGKILL chaos harness, shared by tests/wire/test_chaos_wire.py and bench/chaos.py.

The real bot process runs against the fake Discord on 127.0.0.1 with a real SQLite file and the real
embeddings. A scripted workload (riders asking, some privately, coaches answering and editing through the
modal, admins running /forget, riders running /forget-me and withdrawing) runs while the bot is SIGKILLed
(its whole process group) at moments a seeded RNG picks, and restarted each time; a kill can also land
during the recovery that follows a restart. After each restart, once the bot is quiet, the checks run:

- every accepted coach answer (its row committed, or the coach was told "Thanks") reached each asker who did
  not withdraw or forget exactly once (the bot's replies in the riders' channel and DMs are counted);
- its library file (found under the data dir's library folder, at any depth, by its front matter id) is there
  if and only if the answer was not forgotten;
- the index agrees with the files: the current build's document ids == the ids on disk, and the document count
  the running bot reports on /metrics is the same;
- no open card lacks its posted message, and no question the rider was told went to the coaches is missing
  from the queue.

The SQLite file is read read-only from outside. Every wait is bounded in time, every loop in count.
Replay a seed with `python bench/chaos.py --seed N --kills K`: the seed fixes the script (who asks what, and
privately or not; which card a coach answers) and the kill plan (after which step, how long after). The bot's
own timing still varies between runs, so a replay kills at the same step and delay, not at the same instruction.
"""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fake_discord import FakeDiscord, Interaction
from tests.fake_discord.process import BotProcess, copy_tree
from tests.fake_discord.server import Fault
from tests.wire.test_coach_wire import CoachWire, button, coach_fake, components

MODAL = 9
# The fake names a user "rider<last four digits>"; ids far from the other wire tests' ids.
RIDERS = [1187654321000030001 + i for i in range(8)]
COACHES = [1187654321000039001, 1187654321000039002]
ADMIN = 1187654321000039100
# Declined by the shipped library (checked with `hinge ask --file`): each becomes a coach card.
QUESTIONS = [
    "why do my goggles keep fogging up on the start line?", "which tyre pressure should I run in deep sand?",
    "how often should I change the air filter on a 250f?", "what chain slack should my yz250f have?",
    "how do I jet a two-stroke for high altitude?", "which tear-offs work best in the mud?",
    "how much sag should I set on the rear shock?", "what oil should I use in my forks?",
    "how tight should the spokes be on my rear wheel?", "what gear ratio is best for a tight supercross track?",
    "how do I bleed the front brake on a KTM?", "what do I pack in my gear bag for a race weekend?",
    "what number plate backgrounds are legal for the amateur nationals?",
    "how do I load a dirt bike into a pickup truck alone?", "which mousse is better than a tube for enduro?",
    "how do I choose the right helmet size?", "what is the best way to wash my riding gear?",
    "how often should I replace the piston on a 125?", "should I run a steering damper?",
    "how do I fix a flat tyre at the track?", "what coolant should my bike use?", "how do I wire a kill switch?",
    "how do I register for a local race?", "what sprocket should I use for sand?",
    "how do I stop my hands from blistering in the heat?", "which energy drink is allowed at races?",
    "how do I adjust the clicker on my compression?", "what fuel mix ratio does a 2 stroke need?",
    "how do I set the idle on a carburettor?", "how do I clean the radiator fins?",
    "how much does a race entry usually cost?", "what is the best camera mount for my helmet?",
    "how do I stop my boots squeaking?", "how do I store my bike over winter?", "what size grips should I buy?",
    "how often should I grease the linkage bearings?", "how do I change the fork seals?",
    "how do I choose a good practice track?", "what graphics kit lasts longest?",
    "how do I check the valve clearances?", "how do I get sponsorship as an amateur?",
    "how do I replace a throttle cable?",
]
FRONT_MATTER_ID = re.compile(r"^id:\s*['\"]?([^'\"\s]+)", re.MULTILINE)
DOC_ID = re.compile(r"`([a-z0-9][a-z0-9-]*)`")
HOLD = 3.0  # seconds a held reply's response waits
KILL_WINDOW = {"step_answer": 4.0, "step_edit": 4.0, "step_forget": 4.0}
METRICS_PORT = re.compile(r"health and metrics on http://127\.0\.0\.1:(\d+)/healthz")
DOCUMENTS_GAUGE = re.compile(r"^hinge_library_documents\s+([0-9.e+]+)$", re.MULTILINE)


@dataclass(frozen=True)
class ChaosConfig:
    seed: int
    kills: int
    questions: int = 40
    answers: int = 10
    edits: int = 3
    forgets: int = 2
    forget_mes: int = 2
    withdraws: int = 2
    private_share: float = 0.2
    quiet_timeout: float = 90.0


def ci_config(seed: int, kills: int) -> ChaosConfig:
    """A small workload with every kind of step, for `make test`: each coach answer, edit and /forget ends in a
    reindex of seconds, and CI has about a minute for this; bench/chaos.py runs the whole workload over many
    seeds."""
    return ChaosConfig(seed=seed, kills=kills, questions=12, answers=3, edits=1, forgets=1, forget_mes=1,
                       withdraws=1)


# -- what the riders, coaches and admins did (the harness's own record) --------------------------------------
@dataclass
class Ask:
    user_id: int
    question: str
    private: bool
    ask: Interaction
    to_coach: Interaction | None = None  # a private answer's "Ask a coach" press

    def question_id(self) -> int | None:
        for message in self.ask.messages.values():
            for custom_id in components(message):
                if match := re.fullmatch(r"hinge:(?:withdraw|coach|up):(\d+)", custom_id):
                    return int(match[1])
        return None

    def told_queued(self) -> bool:
        """The rider was told the coaches have the question."""
        if self.to_coach is not None:
            return "Sent to the coaches" in self.to_coach.text
        return "Asked the coaches" in self.ask.text


@dataclass
class Submit:
    request_id: int
    marker: str
    submit: Interaction
    coach: int

    def thanked(self) -> bool:
        return "Thanks!" in self.submit.text


@dataclass
class Confirmable:
    """A withdraw, an edit, a /forget or a /forget-me: `done` once the bot confirmed it."""

    kind: str
    target: int | str  # question id, answer id, document id or user id
    interaction: Interaction
    confirm: str
    marker: str = ""
    user_id: int = 0  # the rider, for a withdraw

    @property
    def done(self) -> bool:
        return self.confirm in self.interaction.text


@dataclass
class ChaosReport:
    seed: int
    kills: int = 0
    restarts: int = 0
    checks: int = 0
    accepted: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    inconsistencies: list[str] = field(default_factory=list)
    unqueued: list[str] = field(default_factory=list)  # told "asked the coaches", not in the queue
    not_quiet: int = 0
    steps: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.inconsistencies or self.unqueued)

    def summary(self) -> str:
        return (f"seed {self.seed}: kills {self.kills}, answers accepted {self.accepted}, lost {len(self.lost)}, "
                f"duplicated {len(self.duplicated)}, inconsistencies {len(self.inconsistencies)}, "
                f"unqueued questions {len(self.unqueued)}, checks {self.checks}, not quiet {self.not_quiet}, "
                f"{self.steps} steps in {self.seconds:.0f} s")

    def add(self, kind: str, when: str, text: str) -> None:
        """One problem, once: a check after each restart would otherwise report the same one again."""
        found: list[str] = getattr(self, kind)
        if not any(entry.split(": ", 1)[1] == text for entry in found):
            found.append(f"{when}: {text}")

    def problems(self) -> list[str]:
        return ([f"lost: {x}" for x in self.lost] + [f"duplicated: {x}" for x in self.duplicated]
                + [f"inconsistent: {x}" for x in self.inconsistencies] + [f"unqueued: {x}" for x in self.unqueued])


# -- reading the bot's state from outside ----------------------------------------------------------------------
def read_rows(data: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """A read-only query on the bot's SQLite file; [] while the table does not exist yet. A locked or busy file
    is retried (bounded), never read as empty."""
    last: sqlite3.OperationalError | None = None
    for _ in range(50):
        db = sqlite3.connect(f"file:{data / 'hinge.sqlite3'}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc) or "unable to open" in str(exc):
                return []
            last = exc
        finally:
            db.close()
        time.sleep(0.1)
    raise RuntimeError(f"the SQLite file stayed unreadable: {last}")


def library_ids(root: Path) -> dict[str, list[Path]]:
    """Front matter id -> the files that carry it, under `root` at any depth (hidden files left out, as the
    loader does)."""
    found: dict[str, list[Path]] = {}
    if not root.is_dir():
        return found
    for path in sorted(root.rglob("*.md")):
        if not path.is_file() or path.name == "README.md" or any(
                part.startswith(".") for part in path.relative_to(root).parts):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if not text.startswith("---"):
            continue
        front = text.split("\n---", 1)[0]
        if match := FRONT_MATTER_ID.search(front):
            found.setdefault(match[1], []).append(path)
    return found


def index_ids(data: Path) -> set[str] | None:
    """The document ids of the index build CURRENT points at (what the bot loads at start-up)."""
    from index.retrieval.store import IndexStore

    manifest = IndexStore(data).read_manifest()
    return None if manifest is None else set(manifest.documents)


def loaded_document_count(bot: BotProcess) -> int | None:
    """The running bot's own count of documents in the index in use (its /metrics gauge)."""
    match = METRICS_PORT.search(bot.log())
    if match is None:
        return None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{match[1]}/metrics", timeout=5) as response:
            gauge = DOCUMENTS_GAUGE.search(response.read().decode())
    except OSError:
        return None
    return int(float(gauge[1])) if gauge else None


# -- the run ------------------------------------------------------------------------------------------------------
class ChaosRun:
    def __init__(self, config: ChaosConfig, index_data: Path, knowledge: Path, workdir: Path,
                 say: Callable[[str], None] = print) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.workdir = workdir
        self.data = copy_tree(index_data, workdir / "data")
        self.knowledge = copy_tree(knowledge, workdir / "knowledge")
        self.shipped = set(library_ids(self.knowledge))
        self.say = say
        self.report = ChaosReport(config.seed)
        self.w: CoachWire | None = None
        self.bot: BotProcess | None = None
        self.starts = 0
        self.asks: list[Ask] = []
        self.submits: list[Submit] = []
        self.actions: list[Confirmable] = []
        # Asker rows seen so far: id -> (request id, user id, private). A /forget-me blanks the user id later.
        self.askers_seen: dict[int, tuple[int, int, bool]] = {}
        self.markers: dict[int, str] = {}  # request id -> the marker in its accepted answer's text
        # Coach answers whose first reply to a rider is held in flight when the kill lands (see run()).
        self.held: set[int] = set()

    # -- the bot's life ------------------------------------------------------------------------------
    @property
    def fake(self) -> FakeDiscord:
        assert self.w is not None
        return self.w.fake

    def env(self) -> dict[str, str]:
        assert self.w is not None
        # The per-user limit is not under test here: eight riders ask forty questions in a minute.
        return {**self.w.env(), "HINGE_ASK_COOLDOWN_RATE": "1000"}

    def start_bot(self) -> BotProcess:
        self.starts += 1
        live = self.fake.live_connection()
        after = live.number if live is not None else len(self.fake.connections)
        bot = BotProcess(self.fake, self.data, self.knowledge, self.workdir / f"bot-{self.starts}.log", self.env())

        def connected() -> bool:
            conn = self.fake.live_connection()
            return conn is not None and conn.number > after and conn.identified

        try:
            self.fake.wait_until(lambda: not bot.alive() or connected(), 120, "the bot to connect")
        except TimeoutError as exc:
            bot.kill()
            raise RuntimeError(f"the bot did not connect:\n{bot.log()[-4000:]}") from exc
        if not bot.alive():
            raise RuntimeError(f"the bot exited ({bot.proc.returncode}) before connecting:\n{bot.log()[-4000:]}")
        self.fake.wait_until(lambda: self.fake.commands, 60, "the slash commands to sync")
        self.bot = bot
        return bot

    def kill(self, why: str) -> None:
        bot = self.bot
        assert bot is not None
        self.report.kills += 1
        self.say(f"  kill {self.report.kills}: {why}")
        if bot.alive():
            os.killpg(bot.pid, signal.SIGKILL)
        bot.kill()  # reaps it and closes its log
        self.bot = None

    def restart_after_kill(self, recovery_kills: list[float]) -> None:
        """Start the bot again; kill it again during its recovery for each delay given; then let it settle and
        check everything."""
        for delay in recovery_kills:
            self.start_bot()
            self.report.restarts += 1
            time.sleep(delay)
            self.kill(f"{delay:.2f} s into the recovery after a restart")
        self.start_bot()
        self.report.restarts += 1
        self.check(f"after kill {self.report.kills}")

    def run(self) -> ChaosReport:
        started = time.monotonic()
        self.w = coach_fake()
        # Discord's nonce window would hide a second reply sent soon after the first; the riders' claims must
        # keep delivery exactly-once on their own (a restart can come long after the crash).
        self.fake.nonce_seconds = 0.0
        try:
            self.start_bot()
            steps = self.script()
            kills = self.kill_plan(steps)
            for number, step in enumerate(steps):
                self.report.steps += 1
                if self.bot is None or not self.bot.alive():  # not one of our kills: say so, and go on
                    log = self.bot.log()[-3000:] if self.bot is not None else ""
                    self.problem("inconsistencies", f"before step {number}", f"the bot died on its own:\n{log}")
                    self.start_bot()
                self.run_step(number, step, kills.get(number))
            self.top_up_answers()
            self.check("at the end")
            if len(self.accepted()) < self.config.answers:
                self.problem("inconsistencies", "at the end", f"only {len(self.accepted())} coach answers were "
                             f"accepted; the workload makes {self.config.answers}")
            bot = self.bot
            assert bot is not None
            if not bot.alive():
                self.problem("inconsistencies", "at the end", f"the bot died on its own:\n{bot.log()[-3000:]}")
        finally:
            if self.bot is not None:
                self.bot.kill()
            self.fake.stop()
        self.report.seconds = time.monotonic() - started
        self.report.accepted = len(self.accepted())
        return self.report

    def run_step(self, number: int, step: Callable[[bool], None], planned: list[float] | None) -> None:
        """One step of the script, and the kills planned for it."""
        assert self.w is not None
        fault: Fault | None = None
        if number in self.held:
            # The reply reaches the rider's channel and its response to the bot waits: the kill then lands with the
            # rider answered and the bot not knowing it.
            fault = self.fake.fail("POST", rf"^/channels/(?!{self.w.coach_channel})\d+/messages$", status=None,
                                   hold=HOLD)
        step(planned is not None)
        if planned is None:
            self.fake.faults.clear()
            return
        # A coach answer, an edit and a /forget each end with a reindex of a few seconds; the other steps are over
        # in well under a second.
        fraction, *during_recovery = planned
        first = fraction * KILL_WINDOW.get(step.__name__, 1.0)
        why = f"{first:.2f} s after step {number} ({step.__name__})"
        if fault is not None:
            try:
                self.fake.wait_until(lambda: fault.hits, 30, "the held reply")
                first = fraction * HOLD * 0.8
                why = f"{first:.2f} s into a held reply to a rider in step {number}"
            except TimeoutError:
                pass  # no reply went out (no card was open): the kill keeps its time
        time.sleep(first)
        self.kill(why)
        self.fake.faults.clear()
        self.restart_after_kill(during_recovery)

    def kill_plan(self, steps: list[Callable[[bool], None]]) -> dict[int, list[float]]:
        """Step index -> its kills: the first a fraction of the step's kill window after its last interaction went
        out, the rest each that many seconds after the next restart connected (a kill during recovery)."""
        plan: dict[int, list[float]] = {}
        last: int | None = None
        for _ in range(self.config.kills):
            if last is not None and self.rng.random() < 0.25:
                plan[last].append(self.rng.uniform(0.0, 3.0))
                continue
            free = [i for i in range(len(steps)) if i not in plan]
            # A coach's answer, edit or /forget has more moments worth hitting than a rider's question.
            weights = [1.0 if steps[i].__name__ == "step_ask" else 4.0 for i in free]
            last = self.rng.choices(free, weights)[0] if free else last
            if last is None:
                break
            plan.setdefault(last, []).append(self.rng.random())
            if steps[last].__name__ == "step_answer" and self.rng.random() < 0.5:
                self.held.add(last)
        return plan

    # -- the workload ------------------------------------------------------------------------------------------
    def script(self) -> list[Callable[[bool], None]]:
        """The workload, in blocks: asks first, then each coach answer among more asks; edits, /forget,
        withdraws and /forget-me once there is something for them."""
        c = self.config
        asks: list[Callable[[bool], None]] = [self.step_ask] * c.questions
        steps: list[Callable[[bool], None]] = asks[:max(1, c.questions // 4)]
        rest = asks[len(steps):]
        for n in range(c.answers):
            share = len(rest) // max(1, c.answers - n)
            steps += [*rest[:share], self.step_answer]
            rest = rest[share:]
            if n >= 2 and n - 2 < c.edits:
                steps.append(self.step_edit)
            if n >= 3 and n - 3 < c.withdraws:
                steps.append(self.step_withdraw)
            if n >= 4 and n - 4 < c.forgets:
                steps.append(self.step_forget)
            if n >= 5 and n - 5 < c.forget_mes:
                steps.append(self.step_forget_me)
        return steps + rest

    def settle(self, interactions: list[Interaction], timeout: float = 30) -> bool:
        try:
            self.fake.wait_answered(interactions, timeout)
        except TimeoutError:
            return False
        return True

    def step_ask(self, killing: bool) -> None:
        n = len(self.asks)
        # A rider who ran /forget-me has left: their later rows would be new data, not forgotten data.
        gone = {a.target for a in self.actions if a.kind == "forget-me"}
        user = self.rng.choice([r for r in RIDERS if r not in gone])
        # Now and then a question another rider already asked: one card, two riders to answer.
        earlier = [a.question for a in self.asks if a.user_id != user]
        question = (self.rng.choice(earlier) if earlier and self.rng.random() < 0.15
                    else QUESTIONS[n % len(QUESTIONS)])
        private = self.rng.random() < self.config.private_share
        ask = self.fake.slash("ask", question=question, user_id=user, private=private, thread=False)
        record = Ask(user, question, private, ask)
        self.asks.append(record)
        if not private:
            if not killing:
                self.settle([ask])
            return
        if not self.settle([ask]):
            return
        # A private answer: the rider presses Ask a coach, is shown what the coaches will see, and consents.
        record.to_coach = self.press(ask, "hinge:coach:", user, killing)
        if record.to_coach is not None and self.settle([record.to_coach]):
            record.to_coach = self.press(record.to_coach, "hinge:consent:", user, killing) or record.to_coach

    def press(self, shown: Interaction, prefix: str, user: int, killing: bool) -> Interaction | None:
        """The rider presses the button starting with `prefix` on what `shown` showed them; None if none."""
        found = [(m, c) for m in shown.messages.values() for c in components(m) if c.startswith(prefix)]
        if not found:
            return None
        message, custom_id = found[-1]
        click = self.fake.click(message, custom_id, user_id=user)
        if not killing:
            self.settle([click])
        return click

    def open_cards(self) -> list[tuple[dict[str, Any], int]]:
        assert self.w is not None
        cards = []
        for message in self.fake.channel_messages(self.w.coach_channel):
            for row in message.get("components") or []:
                for c in row.get("components") or []:
                    if c.get("custom_id", "").startswith("hinge:card:answer:") and not c.get("disabled"):
                        cards.append((message, int(c["custom_id"].rsplit(":", 1)[1])))
        return cards

    def modal_for(self, message: dict[str, Any], custom_id: str, coach: int) -> Interaction | None:
        assert self.w is not None
        shown = self.fake.click(message, custom_id, user_id=coach, roles=[self.w.coach_role])
        if not self.settle([shown], 20) or shown.callback_type != MODAL or shown.modal is None:
            return None
        return shown

    def step_answer(self, killing: bool) -> None:
        assert self.w is not None
        answered = {s.request_id for s in self.submits}
        cards = [(m, r) for m, r in self.open_cards() if r not in answered]
        for message, request_id in self.rng.sample(cards, min(3, len(cards))):
            coach = COACHES[len(self.submits) % len(COACHES)]
            shown = self.modal_for(message, f"hinge:card:answer:{request_id}", coach)
            if shown is None:
                continue
            marker = f"CHAOSMARK{self.config.seed}N{len(self.submits):02d}X"
            text = (f"{marker} Coach answer number {len(self.submits)}: check it before every moto, set it in the "
                    "pits with the bike on the stand, and write down what you changed so the next session "
                    "starts from a known setting.")
            submit = self.fake.submit_modal(shown, {"answer": text, "title": f"Coach note {marker}"},
                                            user_id=coach, roles=[self.w.coach_role])
            self.submits.append(Submit(request_id, marker, submit, coach))
            if not killing:
                self.settle([submit], 90)
            return

    def live_answers(self) -> list[tuple[int, int, str]]:
        """(answer id, request id, document id) of the stored answers not removed, written to the library."""
        return [(int(a), int(r), str(d)) for a, r, d in read_rows(
            self.data, "SELECT id, request_id, document_id FROM coach_answers WHERE removed = 0 AND written = 1 "
                       "ORDER BY id")]

    def step_edit(self, killing: bool) -> None:
        assert self.w is not None
        for answer_id, request_id, _ in self.rng.sample(self.live_answers(), len(self.live_answers())):
            sent = next((s for s in self.submits if s.request_id == request_id), None)
            marker = self.markers.get(request_id) or (sent.marker if sent else "")
            author = sent.coach if sent else COACHES[0]  # only the author (or an admin) may edit
            cards = [m for m in self.fake.channel_messages(self.w.coach_channel)
                     if f"hinge:card:edit:{answer_id}" in components(m)]
            if not cards or not marker:
                continue
            shown = self.modal_for(cards[-1], button(cards[-1], "edit"), author)
            if shown is None:
                continue
            edit_marker = f"CHAOSEDIT{self.config.seed}N{len(self.actions):02d}X"
            text = f"{marker} {edit_marker} Edited: the same advice, and take a photo of the setting as well."
            submit = self.fake.submit_modal(shown, {"answer": text, "title": f"Coach note {marker} (edited)"},
                                            user_id=author, roles=[self.w.coach_role])
            self.actions.append(Confirmable("edit", answer_id, submit, "Updated", edit_marker))
            if not killing:
                self.settle([submit], 90)
            return

    def step_forget(self, killing: bool) -> None:
        forgotten = {a.target for a in self.actions if a.kind == "forget"}
        candidates = [d for _, _, d in self.live_answers() if d not in forgotten]
        if not candidates:
            return
        document = self.rng.choice(candidates)
        forget = self.fake.slash("forget", document=document, user_id=ADMIN, admin=True)
        self.actions.append(Confirmable("forget", document, forget, "Removed"))
        if not killing:
            self.settle([forget], 90)

    def step_withdraw(self, killing: bool) -> None:
        answered = {s.request_id for s in self.submits}
        open_requests = {r for _, r in self.open_cards()} - answered
        queued = {int(q): int(r) for q, r in read_rows(self.data, "SELECT question_id, request_id FROM coach_askers "
                                                                  "WHERE withdrawn = 0 AND question_id IS NOT NULL")}
        for ask in self.rng.sample(self.asks, len(self.asks)):
            question_id = ask.question_id()
            if ask.private or question_id is None or queued.get(question_id) not in open_requests:
                continue
            message = next(m for m in ask.ask.messages.values() if f"hinge:withdraw:{question_id}" in components(m))
            click = self.fake.click(message, f"hinge:withdraw:{question_id}", user_id=ask.user_id)
            self.actions.append(Confirmable("withdraw", question_id, click, "won't get this one", user_id=ask.user_id))
            if not killing:
                self.settle([click])
            return

    def step_forget_me(self, killing: bool) -> None:
        done = {a.target for a in self.actions if a.kind == "forget-me"}
        # A rider with a question still waiting for a coach, so the forgetting has something to cover.
        answered = {s.request_id for s in self.submits}
        waiting = {int(u) for u, r in read_rows(self.data, "SELECT user_id, request_id FROM coach_askers WHERE "
                                                           "withdrawn = 0 AND user_id IS NOT NULL")
                   if int(r) not in answered}
        riders = sorted(waiting - done) or sorted(set(RIDERS) - done)
        if not riders:
            return
        user = self.rng.choice(riders)
        forget = self.fake.slash("forget-me", user_id=user)
        self.actions.append(Confirmable("forget-me", user, forget, "Done"))
        if not killing:
            self.settle([forget])

    def top_up_answers(self) -> None:
        """Cards answered by a kill-free step until the workload's count of accepted answers is reached."""
        for _ in range(self.config.answers):
            self.wait_quiet()
            if len(self.accepted()) >= self.config.answers or not self.open_cards():
                return
            self.report.steps += 1
            self.step_answer(False)

    # -- the checks ----------------------------------------------------------------------------------------
    def problem(self, kind: str, when: str, text: str) -> None:
        self.report.add(kind, when, text)

    def accepted(self) -> dict[int, str]:
        """Request id -> marker of every accepted answer: its row committed, or its coach thanked."""
        stored = {int(r) for (r,) in read_rows(self.data, "SELECT request_id FROM coach_answers")}
        found: dict[int, str] = {}
        for s in self.submits:
            if s.request_id in stored or s.thanked():
                found.setdefault(s.request_id, s.marker)
        for request_id in stored - set(found):
            found[request_id] = f"(an answer to request {request_id} the harness did not send)"
        self.markers.update(found)
        return found

    def wait_quiet(self) -> bool:
        """Until nothing is left to finish (by the rows) and the bot sent no REST call for 1.5 s; bounded."""
        deadline = time.monotonic() + self.config.quiet_timeout
        stale_column = any(c[1] == "card_stale" for c in read_rows(self.data, "PRAGMA table_info(coach_requests)"))

        def pending() -> bool:
            # What the bot's recovery would pick up: a removed answer whose file is still written, or a live one
            # not yet written, indexed or delivered to a rider still waiting.
            unfinished = read_rows(self.data, (
                "SELECT ans.id FROM coach_answers ans WHERE (ans.removed = 1 AND ans.written = 1) OR (ans.removed = 0 "
                "AND (ans.written = 0 OR ans.indexed = 0 OR EXISTS (SELECT 1 FROM coach_askers a WHERE "
                "a.request_id = ans.request_id AND a.withdrawn = 0 AND a.user_id IS NOT NULL AND "
                "a.delivered_at IS NULL)))"))
            unposted = read_rows(self.data, "SELECT id FROM coach_requests WHERE status = 'open' AND "
                                            "card_message_id IS NULL")
            if stale_column:  # a card the bot knows is out of date is still to be edited
                unposted += read_rows(self.data, "SELECT id FROM coach_requests WHERE card_stale = 1")
            return bool(unfinished or unposted)

        while time.monotonic() < deadline:
            calls = self.fake.calls()
            last = calls[-1].at if calls else 0.0
            if not pending() and time.monotonic() - last > 1.5:
                return True
            time.sleep(0.25)
        self.report.not_quiet += 1
        return False

    def check(self, when: str) -> None:
        quiet = self.wait_quiet()
        self.report.checks += 1
        before = set(self.report.problems())
        bot = self.bot
        assert bot is not None and self.w is not None
        if not bot.alive():
            self.problem("inconsistencies", when, "the bot is not running")
        for row in read_rows(self.data, "SELECT id, request_id, user_id, private FROM coach_askers"):
            asker_id, request_id, user_id, private = (int(row[0]), int(row[1]), row[2], bool(row[3]))
            if user_id is not None:
                self.askers_seen[asker_id] = (request_id, int(user_id), private)
        self.check_deliveries(when)
        self.check_library(when)
        self.check_index(when, bot)
        self.check_queue(when)
        for interaction in list(self.fake.interactions.values()):
            if "something went wrong" in interaction.text:
                self.problem("inconsistencies", when, f"{interaction.name} by {interaction.user_id} was answered "
                             f"{interaction.text[:200]!r}")
        found = [p for p in self.report.problems() if p not in before]
        self.say(f"  check {self.report.checks} ({when}{'' if quiet else ', NOT quiet'}): "
                 f"{len(self.accepted())} accepted, {len(found)} problem(s)")
        for problem in found:
            self.say(f"    {problem}")

    def deliveries(self, user_id: int, marker: str) -> int:
        """The bot's replies that carry `marker` and ping `user_id`, in the riders' channel and their DMs."""
        assert self.w is not None
        count = 0
        for channel in (self.w.rider_channel, self.fake.dm_channel(user_id)):
            for message in self.fake.channel_messages(channel):
                if message["author"]["id"] != str(self.fake.application_id):
                    continue
                if not (message.get("content") or "").startswith(f"<@{user_id}>"):
                    continue
                shown = " ".join(str(e.get("description") or "") for e in message.get("embeds") or [])
                count += marker in shown
        return count

    def check_deliveries(self, when: str) -> None:
        active = read_rows(self.data, "SELECT id, request_id, user_id FROM coach_askers WHERE withdrawn = 0 AND "
                                      "user_id IS NOT NULL")
        stored_answers: dict[int, int] = {}
        for (request_id,) in read_rows(self.data, "SELECT request_id FROM coach_answers"):
            stored_answers[int(request_id)] = stored_answers.get(int(request_id), 0) + 1
        for request_id, count in stored_answers.items():
            if count > 1:
                self.problem("duplicated", when, f"request {request_id} has {count} coach answers")
        for request_id, marker in self.accepted().items():
            if request_id not in stored_answers:
                self.problem("lost", when, f"the coach was thanked for {marker} (request {request_id}) but "
                                        "no answer row exists")
                continue
            expected: dict[int, int] = {}
            for _, r, u in active:
                if int(r) == request_id:
                    expected[int(u)] = expected.get(int(u), 0) + 1
            allowed: dict[int, int] = {}
            for r, u, _ in self.askers_seen.values():
                if r == request_id:
                    allowed[u] = allowed.get(u, 0) + 1
            for user in set(expected) | set(allowed):
                got = self.deliveries(user, marker)
                if got < expected.get(user, 0):
                    self.problem("lost", when, f"rider {user} got {got} of {expected[user]} deliveries of "
                                            f"{marker} (request {request_id})")
                elif got > max(expected.get(user, 0), allowed.get(user, 0)):
                    self.problem("duplicated", when, f"rider {user} got {marker} {got} times (request "
                                                  f"{request_id}, {expected.get(user, 0)} active asker rows)")
        # What the bot confirmed must be what the rows say.
        withdrawn = {int(q) for (q,) in read_rows(self.data, "SELECT question_id FROM coach_askers WHERE "
                                                             "withdrawn = 1 AND question_id IS NOT NULL")}
        still_named = {int(u) for (u,) in read_rows(self.data, "SELECT DISTINCT user_id FROM coach_askers WHERE "
                                                               "user_id IS NOT NULL")}
        gone = {a.target for a in self.actions if a.kind == "forget-me"}  # their rows may be deleted outright
        for action in self.actions:
            if action.kind == "withdraw" and action.done and action.target not in withdrawn and \
                    action.user_id not in gone:
                self.problem("inconsistencies", when, f"question {action.target} was withdrawn (the rider was "
                                                   "told so) but its asker row is not")
            if action.kind == "forget-me" and action.done and action.target in still_named:
                self.problem("inconsistencies", when, f"rider {action.target} ran /forget-me (and was told "
                                                   "Done) but coach_askers still names them")

    def check_library(self, when: str) -> None:
        on_disk = library_ids(self.data / "library")
        answers = read_rows(self.data, "SELECT id, request_id, document_id, removed, text FROM coach_answers")
        forgotten = {a.target for a in self.actions if a.kind == "forget" and a.done}
        edits: dict[int, list[Confirmable]] = {}
        for action in self.actions:
            if action.kind == "edit":
                edits.setdefault(int(action.target), []).append(action)
        for answer_id, request_id, document_id, removed, text in answers:
            files = on_disk.get(str(document_id), [])
            gone = bool(removed) or document_id in forgotten
            if document_id in forgotten and not removed:
                self.problem("inconsistencies", when, f"/forget {document_id} was confirmed but its row is not "
                                                   "marked removed")
            if gone and files:
                self.problem("inconsistencies", when, f"forgotten answer {document_id} is still in the library "
                                                   f"({files[0].relative_to(self.data)})")
            if not gone and len(files) != 1:
                self.problem("lost", when, f"answer {document_id} (request {request_id}) has {len(files)} "
                                        "library files")
            if not gone and edits.get(int(answer_id)):
                self.check_edits(when, str(document_id), str(text), files, edits[int(answer_id)])
        known = {str(a[2]) for a in answers if not a[3]}
        for document_id, files in on_disk.items():
            if document_id.startswith("coach-") and document_id not in known:
                self.problem("duplicated", when, f"library file {files[0].relative_to(self.data)} has no live "
                                              "coach answer row")

    def check_edits(self, when: str, document_id: str, text: str, files: list[Path], edits: list[Confirmable]) -> None:
        """The row holds the last confirmed edit or one sent after it (a kill may have cut its confirmation), and
        the library file holds what the row holds."""
        confirmed = [n for n, e in enumerate(edits) if e.done]
        allowed = edits[confirmed[-1]:] if confirmed else edits
        current = next((e.marker for e in reversed(edits) if e.marker in text), None)
        if current not in {e.marker for e in allowed} and (confirmed or current is not None):
            self.problem("lost", when, f"{document_id} holds edit {current}, not the confirmed "
                                       f"{edits[confirmed[-1]].marker if confirmed else None} or a later one")
        if current is not None and files and current not in files[0].read_text(encoding="utf-8"):
            self.problem("inconsistencies", when, f"the row of {document_id} holds edit {current}, its library "
                                                  "file does not")

    def check_index(self, when: str, bot: BotProcess | None) -> None:
        on_disk = self.shipped | set(library_ids(self.data / "library"))
        indexed = index_ids(self.data)
        if indexed is None:
            self.problem("inconsistencies", when, "there is no current index")
            return
        if indexed != on_disk:
            self.problem("inconsistencies", when,
                f"the index and the files differ: only indexed {sorted(indexed - on_disk)}, only on disk "
                f"{sorted(on_disk - indexed)}")
        loaded = loaded_document_count(bot) if bot is not None else None
        if loaded is not None and loaded != len(on_disk):
            self.problem("inconsistencies", when, f"the running bot's index has {loaded} documents, the files "
                                               f"{len(on_disk)}")

    def check_queue(self, when: str) -> None:
        assert self.w is not None
        for request_id, message_id in read_rows(self.data, "SELECT id, card_message_id FROM coach_requests WHERE "
                                                           "status = 'open'"):
            posted = message_id is not None and int(message_id) in {
                int(m["id"]) for m in self.fake.channel_messages(self.w.coach_channel)}
            if not posted:
                self.problem("inconsistencies", when, f"open card {request_id} has no posted message")
        queued = {int(q) for (q,) in read_rows(self.data, "SELECT question_id FROM coach_askers WHERE question_id "
                                                          "IS NOT NULL")}
        gone = {int(a.target) for a in self.actions if a.kind == "forget-me"}
        for ask in self.asks:
            question_id = ask.question_id()
            if ask.told_queued() and ask.user_id not in gone and (question_id is None or question_id not in queued):
                self.problem("unqueued", when, f"{ask.question!r} (question {question_id}, rider {ask.user_id})")
