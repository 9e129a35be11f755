"""What coaches and riders see of the coach loop: the queue card, its buttons, the modal, the reply.

Every button is a DynamicItem whose custom id carries its state, so cards keep working after a restart.
The handlers live in bot.cogs.coach; these classes only parse and route.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import discord

from bot.coach.store import Asker, CoachAnswer, CoachRequest
from bot.embeds import COLOUR, DECLINED_COLOUR, FIELD_VALUE_LIMIT, clip, fit, safe
from index.coaching.contributions import MAX_ANSWER_CHARS, MAX_TITLE_CHARS, valid_url

ANSWERED_COLOUR = discord.Colour.green()
MODAL_ID = re.compile(r"hinge:modal:(?P<action>answer|edit):(?P<target>[0-9]+)")


def card_embed(request: CoachRequest, askers: list[Asker], bot_answer: str | None,
               answer: CoachAnswer | None) -> discord.Embed:
    titles = {"open": "Rider question", "answered": f"Answered by {answer.coach_name if answer else 'a coach'}",
              "dismissed": "Not for us", "merged": "Merged", "withdrawn": "Withdrawn by the rider"}
    colour = {"open": COLOUR, "answered": ANSWERED_COLOUR}.get(request.status, DECLINED_COLOUR)
    embed = discord.Embed(title=clip(f"{titles.get(request.status, request.status)} · #{request.id}", 256),
                          description=clip(safe(request.question), 2000), colour=colour)
    lines = []
    for asker in askers[:10]:
        if asker.private or asker.user_id is None:
            # A question asked privately never shows who asked.
            lines.append("a rider, privately")
            continue
        link = (f" · [jump](https://discord.com/channels/{request.guild_id}/{asker.channel_id}/{asker.message_id})"
                if asker.channel_id and asker.message_id else "")
        where = f" in <#{asker.channel_id}>" if asker.channel_id else ""
        lines.append(f"<@{asker.user_id}>{where}{link} ({asker.reason.replace('_', ' ')})")
    if lines:
        embed.add_field(name="Asked by", value=clip("\n".join(lines), FIELD_VALUE_LIMIT), inline=False)
    embed.add_field(name="What the bot answered",
                    value=clip(safe(bot_answer), FIELD_VALUE_LIMIT) if bot_answer else "Nothing: the library had "
                    "no good answer, so it declined.", inline=False)
    if answer is not None and request.status == "answered":
        embed.add_field(name="Coach's answer", value=clip(safe(answer.text), FIELD_VALUE_LIMIT), inline=False)
    if request.status == "merged" and request.merged_into:
        embed.add_field(name="Merged into", value=f"#{request.merged_into}", inline=False)
    riders = len(askers)
    embed.set_footer(text=f"{riders} rider{'s' if riders != 1 else ''} asked this")
    return fit(embed)


class CardButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
                 template=r"hinge:card:(?P<action>answer|dismiss|merge|edit):(?P<target>[0-9]+)"):
    """A queue card's button: Answer, Not for us, Merge into…, Edit answer (target: request or answer id)."""

    LABELS: ClassVar[dict[str, tuple[str, discord.ButtonStyle]]] = {
        "answer": ("Answer", discord.ButtonStyle.success),
        "dismiss": ("Not for us", discord.ButtonStyle.secondary),
        "merge": ("Merge into…", discord.ButtonStyle.secondary),
        "edit": ("Edit answer", discord.ButtonStyle.primary),
    }

    def __init__(self, action: str, target: int, disabled: bool = False) -> None:
        label, style = self.LABELS[action]
        super().__init__(discord.ui.Button(label=label, style=style, disabled=disabled,
                                           custom_id=f"hinge:card:{action}:{target}"))
        self.action = action
        self.target = target

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> CardButton:
        return cls(match["action"], int(match["target"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        from bot.cogs.coach import handle_card

        await handle_card(interaction, self.action, self.target)


class MergeSelect(discord.ui.DynamicItem[discord.ui.Select[discord.ui.View]],
                  template=r"hinge:merge:(?P<request_id>[0-9]+)"):
    """The open card to merge a card into."""

    def __init__(self, request_id: int, options: list[discord.SelectOption] | None = None) -> None:
        super().__init__(discord.ui.Select(custom_id=f"hinge:merge:{request_id}", placeholder="Merge into…",
                                           options=options or [discord.SelectOption(label="-", value="0")]))
        self.request_id = request_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> MergeSelect:
        return cls(int(match["request_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        from bot.cogs.coach import handle_card

        data: dict[str, Any] = dict(interaction.data or {})
        values = data.get("values") or []
        await handle_card(interaction, "merge-into", self.request_id, int(values[0]) if values else 0)


def card_view(request_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for action in ("answer", "dismiss", "merge"):
        view.add_item(CardButton(action, request_id))
    return view


def answered_view(request: CoachRequest, answer: CoachAnswer | None) -> discord.ui.View:
    """A closed card: its buttons disabled; an answered one keeps "Edit answer" for the coach."""
    view = discord.ui.View(timeout=None)
    for action in ("answer", "dismiss", "merge"):
        view.add_item(CardButton(action, request.id, disabled=True))
    if answer is not None and request.status == "answered" and not answer.removed:
        view.add_item(CardButton("edit", answer.id))
    return view


def merge_view(request_id: int, targets: list[CoachRequest]) -> discord.ui.View:
    options = [discord.SelectOption(label=clip(f"#{r.id} {r.question}", 100), value=str(r.id)) for r in targets[:25]]
    view = discord.ui.View(timeout=None)
    view.add_item(MergeSelect(request_id, options))
    return view


class AnswerModal(discord.ui.Modal):
    """The coach's answer. Submissions are handled by bot.cogs.coach from the raw interaction (by custom id), so a
    modal opened before a restart still lands."""

    def __init__(self, action: str, target: int, title: str = "", text: str = "", link: str = "") -> None:
        super().__init__(title="Answer the rider" if action == "answer" else "Edit your answer",
                         custom_id=f"hinge:modal:{action}:{target}", timeout=900)
        # No default from the rider's question: its words are the rider's, and the title is the library's.
        self.add_item(discord.ui.TextInput(label="Title", custom_id="title", style=discord.TextStyle.short,
                                           max_length=MAX_TITLE_CHARS, required=True, default=title or None,
                                           placeholder="A short title for the team library"))
        self.add_item(discord.ui.TextInput(label="Your answer", custom_id="answer", style=discord.TextStyle.paragraph,
                                           max_length=MAX_ANSWER_CHARS, required=True, default=text or None))
        self.add_item(discord.ui.TextInput(label="Source link (optional)", custom_id="link", required=False,
                                           style=discord.TextStyle.short, max_length=400, default=link or None))


def modal_values(data: dict[str, Any]) -> dict[str, str]:
    """custom_id -> value of a modal submission (action rows of text inputs, or labels wrapping them)."""
    found: dict[str, str] = {}

    def walk(components: list[dict[str, Any]]) -> None:
        for component in components:
            if "custom_id" in component and "value" in component:
                found[str(component["custom_id"])] = str(component["value"] or "")
            walk(component.get("components") or [])
            if isinstance(component.get("component"), dict):
                walk([component["component"]])

    walk(data.get("components") or [])
    return found


def delivery_embed(question: str, answer: CoachAnswer, marker: str) -> discord.Embed:
    embed = discord.Embed(title=clip(f"Q: {safe(question)}", 256), description=clip(safe(answer.text), 4000),
                          colour=ANSWERED_COLOUR)
    embed.set_author(name=clip(f"Coach {answer.coach_name} answered", 256))
    if valid_url(answer.link):
        embed.add_field(name="Source", value=clip(str(answer.link), FIELD_VALUE_LIMIT), inline=False)
    embed.set_footer(text="Saved to the team library: the next rider who asks gets this answer straight away. "
                          f"· {marker}")
    return fit(embed)
