"""Interactions beyond slash commands: component clicks (type 3) and modal submits (type 5).

A mixin of FakeDiscord; the payloads are shaped like Discord API v10's INTERACTION_CREATE, as
discord.py 2.7.1 parses them (modals: Labels (18) wrapping inputs, or action rows (1) of text inputs).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from tests.fake_discord import payloads as p

if TYPE_CHECKING:
    from tests.fake_discord.server import Interaction

PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE_INTERACTION, MODAL_SUBMIT = 1, 2, 3, 4, 5
ACTION_ROW, BUTTON, TEXT_INPUT, LABEL = 1, 2, 4, 18


class ComponentsMixin:
    guilds: dict[int, p.Guild]
    application_id: int
    messages: dict[int, dict[str, Any]]
    channels: dict[int, dict[str, Any]]
    _cond: threading.Condition
    _run: Callable[..., Any]
    _user: Callable[..., dict[str, Any]]
    wait_connected: Callable[..., Any]

    def _interaction_payload(self, kind: int, data: dict[str, Any], channel_id: int, user_id: int,
                             roles: Iterable[int], admin: bool) -> tuple[dict[str, Any], str]:
        """INTERACTION_CREATE's data for a member of the channel's guild (or a user in a DM)."""
        channel = self.channels[channel_id]
        interaction_id = p.snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        payload: dict[str, Any] = {
            "id": str(interaction_id), "application_id": str(self.application_id), "type": kind, "data": data,
            "channel_id": str(channel_id), "token": token, "version": 1,
            "app_permissions": str(p.MEMBER_PERMISSIONS), "locale": "en-GB", "entitlements": [],
            "attachment_size_limit": 10485760,
        }
        author = self._user(user_id)
        if channel.get("guild_id"):
            guild = self.guilds[int(channel["guild_id"])]
            guild.members.add(user_id)
            role_ids = [*roles, *([guild.admin_role_id] if admin else [])]
            permissions = guild.permissions(role_ids)
            payload.update(
                guild_id=str(guild.id), guild={"id": str(guild.id), "locale": "en-US", "features": ["COMMUNITY"]},
                channel={**channel, "permissions": str(permissions)},
                member=p.member(author, role_ids, permissions), guild_locale="en-US",
                authorizing_integration_owners={"0": str(guild.id)}, context=0)
        else:
            payload.update(channel={**channel, "permissions": str(p.MEMBER_PERMISSIONS)}, user=author,
                           authorizing_integration_owners={"1": str(user_id)}, context=1)
        return payload, token

    def _dispatch_interaction(self, record: Interaction, payload: dict[str, Any], timeout: float) -> Interaction:
        fake: Any = self

        async def dispatch() -> None:
            session = fake._current
            if session is None:
                raise RuntimeError("the bot has not identified")
            with self._cond:
                fake.interactions[record.id] = record
                fake._by_token[record.token] = record
                record.dispatched_at = time.monotonic()
            await fake._dispatch_on(session, "INTERACTION_CREATE", payload)

        self.wait_connected(timeout)
        self._run(dispatch)
        return record

    def click(self, message: int | dict[str, Any], custom_id: str, /, *, user_id: int | None = None,
              roles: Iterable[int] = (), admin: bool = False, component_type: int = BUTTON,
              values: list[str] | None = None, timeout: float = 30) -> Interaction:
        """A user clicks the component `custom_id` on a stored message (id or dict): INTERACTION_CREATE
        type 3 with data {custom_id, component_type} (and `values` for select menus) and the message."""
        from tests.fake_discord.server import Interaction

        message_id = int(message["id"]) if isinstance(message, dict) else int(message)
        with self._cond:
            stored = self.messages.get(message_id)
            if stored is None:
                raise KeyError(f"no message {message_id}")
            shown = {k: v for k, v in stored.items() if k != "allowed_mentions"}
        if custom_id not in _custom_ids(shown.get("components") or []):
            raise KeyError(f"message {message_id} has no component {custom_id!r}: "
                           f"{sorted(_custom_ids(shown.get('components') or []))}")
        user_id = user_id or p.snowflake()
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = values
        channel_id = int(shown["channel_id"])
        payload, token = self._interaction_payload(MESSAGE_COMPONENT, data, channel_id, user_id, roles, admin)
        payload["message"] = shown
        record = Interaction(int(payload["id"]), token, custom_id, {"values": values} if values else {}, user_id,
                             int(shown["guild_id"]) if shown.get("guild_id") else None, 0.0,
                             kind=MESSAGE_COMPONENT, channel_id=channel_id, message_id=message_id)
        return self._dispatch_interaction(record, payload, timeout)

    def submit_modal(self, modal: Interaction | dict[str, Any], values: dict[str, Any], /, *,
                     user_id: int | None = None, roles: Iterable[int] = (), admin: bool = False,
                     timeout: float = 30) -> Interaction:
        """Submit a modal the bot showed (the Interaction that got it, or the modal dict): INTERACTION_CREATE
        type 5 with data {custom_id, components} mirroring the modal's layout, each input's value from
        `values` (custom_id -> text, or a list for selects). Required inputs must be given."""
        from tests.fake_discord.server import Interaction

        source = modal if isinstance(modal, Interaction) else None
        shown = source.modal if source is not None else modal
        if not isinstance(shown, dict):
            raise ValueError("that interaction was not answered with a modal")
        known = _custom_ids(shown.get("components") or [])
        unknown = set(values) - known
        if unknown:
            raise KeyError(f"the modal has no inputs {sorted(unknown)}; it has {sorted(known)}")
        components = [_submitted(c, values) for c in shown.get("components") or []]
        data = {"custom_id": shown["custom_id"], "components": components}
        if source is not None:
            channel_id = source.channel_id or next(iter(self.guilds.values())).channel_id
            user_id = user_id or source.user_id
        else:
            channel_id = next(iter(self.guilds.values())).channel_id
            user_id = user_id or p.snowflake()
        payload, token = self._interaction_payload(MODAL_SUBMIT, data, channel_id, user_id, roles, admin)
        if source is not None and source.message_id is not None and source.message_id in self.messages:
            payload["message"] = {k: v for k, v in self.messages[source.message_id].items()
                                  if k != "allowed_mentions"}
        record = Interaction(int(payload["id"]), token, shown["custom_id"], dict(values), user_id,
                             int(payload["guild_id"]) if payload.get("guild_id") else None, 0.0,
                             kind=MODAL_SUBMIT, channel_id=channel_id,
                             message_id=source.message_id if source is not None else None)
        return self._dispatch_interaction(record, payload, timeout)


def _custom_ids(components: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for component in components:
        if component.get("custom_id"):
            found.add(component["custom_id"])
        found |= _custom_ids(component.get("components") or [])
        if isinstance(component.get("component"), dict):
            found |= _custom_ids([component["component"]])
        if isinstance(component.get("accessory"), dict):
            found |= _custom_ids([component["accessory"]])
    return found


def _submitted(component: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """What Discord sends back for one modal component: rows and labels keep their shape, inputs
    carry `value` (text inputs) or `values` (selects)."""
    kind = component["type"]
    out: dict[str, Any] = {"type": kind}
    if "id" in component:
        out["id"] = component["id"]
    if kind == ACTION_ROW:
        out["components"] = [_submitted(c, values) for c in component.get("components") or []]
    elif kind == LABEL:
        out["component"] = _submitted(component["component"], values)
    elif component.get("custom_id"):
        custom_id = component["custom_id"]
        given = values.get(custom_id)
        if kind == TEXT_INPUT:
            text = "" if given is None else str(given)
            if component.get("required", True) and not text:
                raise ValueError(f"the modal input {custom_id!r} is required")
            if text and not component.get("min_length", 0) <= len(text) <= component.get("max_length", 4000):
                raise ValueError(f"{custom_id!r} takes {component.get('min_length', 0)}.."
                                 f"{component.get('max_length', 4000)} characters")
            out.update(custom_id=custom_id, value=text)
        else:
            out.update(custom_id=custom_id, values=list(given or []))
    return out
