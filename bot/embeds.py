"""Answers, drills and videos as Discord embeds, escaped and within Discord's limits."""

from __future__ import annotations

import discord

from index.answers.models import Answer, Citation
from index.library.documents import Document

# Discord's documented embed limits.
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
TOTAL_LIMIT = 6000
MAX_FIELDS = 25

COLOUR = discord.Colour.orange()
DECLINED_COLOUR = discord.Colour.light_grey()


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def safe(text: str) -> str:
    """Library or user text that must not format, link or ping when shown."""
    return discord.utils.escape_mentions(discord.utils.escape_markdown(text))


def link(title: str, url: str | None) -> str:
    # Square brackets would end the link text early; the URL is ours (validated), not escaped.
    label = safe(title).replace("[", "(").replace("]", ")")
    return f"[{label}]({url})" if url else label


def quote(citation: Citation) -> str:
    lines = clip(safe(citation.excerpt), 700).splitlines() or [""]
    return "\n".join(f"> {line}" for line in lines)


def answer_embed(answer: Answer) -> discord.Embed:
    if not answer.answered:
        embed = discord.Embed(title="Not in the library (yet)" if answer.status == "declined" else "Hmm",
                              description=clip(answer.lead, DESCRIPTION_LIMIT), colour=DECLINED_COLOUR)
        if answer.safety_note:
            embed.add_field(name="Please note", value=clip(answer.safety_note, FIELD_VALUE_LIMIT), inline=False)
        return embed
    parts = [safe(answer.lead), ""]
    for c in answer.citations:
        heading = f" · {safe(c.heading)}" if c.heading else ""
        parts.append(f"**[{c.n}]** {link(c.title, c.url)}{heading}\n{quote(c)}\n")
    embed = discord.Embed(title=clip(f"Q: {safe(answer.question)}", TITLE_LIMIT), colour=COLOUR,
                          description=clip("\n".join(parts), DESCRIPTION_LIMIT))
    sources = "\n".join(f"[{c.n}] {link(c.title, c.url)} — {safe(c.source)}" for c in answer.citations)
    embed.add_field(name="Sources", value=clip(sources, FIELD_VALUE_LIMIT), inline=False)
    if answer.videos:
        videos = "\n".join(f"▶ {link(v.title, v.url)}" for v in answer.videos)
        embed.add_field(name="Videos", value=clip(videos, FIELD_VALUE_LIMIT), inline=False)
    if answer.drill:
        d = answer.drill
        detail = " · ".join(safe(x) for x in (d.level or "", d.dose or "") if x)
        value = f"**{safe(d.title)}**{f' ({detail})' if detail else ''}\n{safe(d.goal)}\nTry `/drill name:{d.id}`"
        embed.add_field(name="Drill", value=clip(value, FIELD_VALUE_LIMIT), inline=False)
    if answer.safety_note:
        embed.add_field(name="Please note", value=clip(answer.safety_note, FIELD_VALUE_LIMIT), inline=False)
    embed.set_footer(text=f"Answered in {answer.elapsed_ms:.0f} ms from the Hinge Coach library")
    return fit(embed)


def more_embed(answer: Answer) -> discord.Embed:
    if not answer.more:
        return discord.Embed(description="That's everything the library has on this one.", colour=DECLINED_COLOUR)
    parts = [f"**[{c.n}]** {link(c.title, c.url)} — {safe(c.source)}\n{quote(c)}\n" for c in answer.more]
    return discord.Embed(title="More sources", description=clip("\n".join(parts), DESCRIPTION_LIMIT), colour=COLOUR)


def drill_embed(drill: Document) -> discord.Embed:
    sections = drill.sections()
    embed = discord.Embed(title=clip(safe(drill.title), TITLE_LIMIT), url=drill.url, colour=COLOUR,
                          description=clip(f"**Goal:** {safe(drill.summary)}", DESCRIPTION_LIMIT))
    detail = [f"**Level:** {drill.level}"] if drill.level else []
    if drill.dose:
        detail.append(f"**Dose:** {safe(drill.dose)}")
    if drill.equipment:
        detail.append(f"**Equipment:** {safe(', '.join(drill.equipment))}")
    if detail:
        embed.add_field(name="At a glance", value=clip("\n".join(detail), FIELD_VALUE_LIMIT), inline=False)
    for name in ("Steps", "Cues", "Common faults"):
        if sections.get(name):
            embed.add_field(name=name, value=clip(safe(sections[name]), FIELD_VALUE_LIMIT), inline=False)
    if drill.videos:
        embed.add_field(name="Video", value=clip("\n".join(f"▶ {link(v.title, v.url)}" for v in drill.videos),
                                                 FIELD_VALUE_LIMIT), inline=False)
    if drill.sources:
        embed.set_footer(text=clip("Sources: " + "; ".join(s.publisher for s in drill.sources), FOOTER_LIMIT))
    return fit(embed)


def videos_embed(topic: str, videos: list[tuple[str, str, str]]) -> discord.Embed:
    """`videos`: (title, source, url) triples, best first."""
    title = f"Videos: {safe(topic)}" if topic else "Videos"
    if not videos:
        return discord.Embed(title=clip(title, TITLE_LIMIT), colour=DECLINED_COLOUR,
                             description="No video in the library fits that. Try another topic, e.g. `hinge` "
                                         "or `attack position`.")
    lines = [f"▶ {link(t, u)} — {safe(s)}" for t, s, u in videos]
    return discord.Embed(title=clip(title, TITLE_LIMIT), description=clip("\n".join(lines), DESCRIPTION_LIMIT),
                         colour=COLOUR)


def fit(embed: discord.Embed) -> discord.Embed:
    """Drop trailing fields until the whole embed is within Discord's total size."""
    while len(embed) > TOTAL_LIMIT and embed.fields:
        embed.remove_field(len(embed.fields) - 1)
    if len(embed) > TOTAL_LIMIT and embed.description:
        embed.description = clip(embed.description, max(100, len(embed.description) - (len(embed) - TOTAL_LIMIT)))
    return embed
