"""The weekly digest for a server's coaches: the week's questions, who answered them, the open queue, the
least helpful answers, and a chart of questions per day by outcome."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel

from bot.coach.store import CoachRequest
from bot.embeds import clip, safe

OUTCOMES = ("library", "coach", "declined")
OUTCOME_LABELS = {"library": "answered by the library", "coach": "answered by a coach", "declined": "declined"}
COLOURS = {"library": "#e67e22", "coach": "#2ecc71", "declined": "#95a5a6"}


class Digest(BaseModel):
    guild_id: int
    since: datetime
    until: datetime
    per_day: dict[str, dict[str, int]]  # day -> outcome -> questions
    open_queue: list[tuple[int, str, int, datetime]]  # request id, question, riders, created
    least_helpful: list[tuple[str, int]]

    @property
    def total(self) -> int:
        return sum(sum(v.values()) for v in self.per_day.values())

    def share(self, outcome: str) -> float:
        total = self.total
        return sum(v.get(outcome, 0) for v in self.per_day.values()) / total if total else 0.0

    def days(self) -> list[str]:
        start = self.since.date()
        return [(start + timedelta(days=i)).isoformat() for i in range((self.until.date() - start).days + 1)]


def make_digest(guild_id: int, until: datetime, counts: list[tuple[str, str, int]],
                queue: list[tuple[CoachRequest, int]], least_helpful: list[tuple[str, int]]) -> Digest:
    per_day: dict[str, dict[str, int]] = {}
    for day, outcome, n in counts:
        per_day.setdefault(day, {})[outcome] = n
    return Digest(guild_id=guild_id, since=until - timedelta(days=7), until=until, per_day=per_day,
                  open_queue=[(r.id, r.question, riders, r.created_at) for r, riders in queue],
                  least_helpful=least_helpful)


def digest_text(digest: Digest) -> str:
    lines = [f"**{digest.total} questions** this week: {digest.share('library'):.0%} answered by the library, "
             f"{digest.share('coach'):.0%} by coaches, {digest.share('declined'):.0%} still declined."]
    if digest.open_queue:
        lines.append("\n**Open queue, oldest first**")
        lines += [f"• #{rid} {clip(safe(q), 120)} ({riders} rider{'s' if riders != 1 else ''}, since "
                  f"<t:{int(created.timestamp())}:R>)" for rid, q, riders, created in digest.open_queue[:10]]
        if len(digest.open_queue) > 10:
            lines.append(f"…and {len(digest.open_queue) - 10} more")
    else:
        lines.append("\nThe coach queue is empty.")
    if digest.least_helpful:
        lines.append("\n**Most \"Not helpful\" answers**")
        lines += [f"• {clip(safe(q), 120)} ({n}×)" for q, n in digest.least_helpful]
    return "\n".join(lines)


def chart_png(digest: Digest) -> bytes:
    """Questions per day by outcome, as a stacked bar chart (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    days = digest.days()
    figure = Figure(figsize=(7, 3.2), dpi=100)
    axes = figure.add_subplot()
    bottom = [0] * len(days)
    for outcome in OUTCOMES:
        values = [digest.per_day.get(day, {}).get(outcome, 0) for day in days]
        axes.bar([date.fromisoformat(d).strftime("%a %d") for d in days], values, bottom=bottom,
                 label=OUTCOME_LABELS[outcome], color=COLOURS[outcome])
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axes.set_ylabel("questions")
    axes.set_title("Questions per day")
    axes.legend(loc="upper left", fontsize="small", frameon=False)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def due(now: datetime, weekday: int, hour: int, last: datetime | None) -> bool:
    """Whether this week's digest (at `weekday` `hour`:00 UTC) is due and not yet posted."""
    slot = (now - timedelta(days=(now.weekday() - weekday) % 7)).replace(hour=hour, minute=0, second=0,
                                                                         microsecond=0)
    if slot > now:
        slot -= timedelta(days=7)
    if last is None:
        # Never posted: only in the slot's own hour, so setting up the queue doesn't post a digest at once.
        return now - slot < timedelta(hours=1)
    return last.astimezone(UTC) < slot
