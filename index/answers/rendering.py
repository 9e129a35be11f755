"""Plain-text and JSON renderings of an `Answer` (the Discord embed lives in bot/)."""

from __future__ import annotations

import textwrap

from index.answers.models import Answer

WIDTH = 88


def render_text(answer: Answer) -> str:
    lines = [textwrap.fill(answer.lead, WIDTH)]
    for c in answer.citations:
        lines.append("")
        where = f"{c.title}" + (f" > {c.heading}" if c.heading else "")
        lines.append(f"[{c.n}] {where}")
        lines.extend(textwrap.fill(c.excerpt, WIDTH, initial_indent="    > ", subsequent_indent="      ").splitlines())
    if answer.citations:
        lines += ["", "Sources:"]
        lines += [f"  [{c.n}] {c.title}, {c.source}" + (f": {c.url}" if c.url else "") for c in answer.citations]
    if answer.videos:
        lines += ["", "Videos:"] + [f"  - {v.title}: {v.url}" for v in answer.videos]
    if answer.drill:
        d = answer.drill
        detail = ", ".join(x for x in (d.level, d.dose) if x)
        lines += ["", f"Drill: {d.title}" + (f" ({detail})" if detail else ""), textwrap.fill(d.goal, WIDTH,
                                                                                             initial_indent="  ",
                                                                                             subsequent_indent="  ")]
    if answer.safety_note:
        lines += ["", f"Note: {answer.safety_note}"]
    return "\n".join(lines)


def render_json(answer: Answer, indent: int | None = None) -> str:
    return answer.model_dump_json(indent=indent)
