"""Discord API v10 JSON payloads, shaped like the real ones discord.py 2.7.1 parses."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime
from typing import Any

DISCORD_EPOCH_MS = 1420070400000
MANAGE_GUILD = 1 << 5
# View channel, send messages, embed links, read history, use application commands: an ordinary rider.
MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 16) | (1 << 31)
ADMIN_PERMISSIONS = MEMBER_PERMISSIONS | MANAGE_GUILD

_counter = itertools.count()
_lock = threading.Lock()


def snowflake() -> int:
    """A fresh, increasing snowflake (timestamp in the top bits, like Discord's)."""
    with _lock:
        increment = next(_counter) & 0xFFF
    return ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (1 << 17) | increment


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


def user(user_id: int, name: str, bot: bool = False) -> dict[str, Any]:
    return {"id": str(user_id), "username": name, "discriminator": "0", "global_name": name, "avatar": None,
            "bot": bot, "system": False, "public_flags": 0, "flags": 0, "banner": None, "accent_color": None,
            "avatar_decoration_data": None, "primary_guild": None, "collectibles": None}


def role(role_id: int, name: str, permissions: int, position: int) -> dict[str, Any]:
    return {"id": str(role_id), "name": name, "color": 0, "colors": {"primary_color": 0}, "hoist": False,
            "icon": None, "unicode_emoji": None, "position": position, "permissions": str(permissions),
            "managed": False, "mentionable": False, "flags": 0}


def member(member_user: dict[str, Any], role_ids: list[int], permissions: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"user": member_user, "roles": [str(r) for r in role_ids], "nick": None, "avatar": None,
                            "banner": None, "joined_at": "2024-03-01T10:00:00.000000+00:00", "premium_since": None,
                            "deaf": False, "mute": False, "pending": False, "flags": 0,
                            "communication_disabled_until": None}
    if permissions is not None:
        data["permissions"] = str(permissions)  # interactions carry the resolved permissions as a string
    return data


def text_channel(channel_id: int, guild_id: int, name: str, position: int = 0) -> dict[str, Any]:
    return {"id": str(channel_id), "type": 0, "guild_id": str(guild_id), "name": name, "position": position,
            "permission_overwrites": [], "nsfw": False, "topic": "Ask the coach", "parent_id": None,
            "rate_limit_per_user": 0, "last_message_id": None, "flags": 0}


def thread_channel(thread_id: int, guild_id: int, parent_id: int, owner_id: int, name: str, kind: int = 11,
                   auto_archive_duration: int = 1440, rate_limit_per_user: int = 0,
                   invitable: bool = True) -> dict[str, Any]:
    """A thread (11 public, 12 private) as POST .../threads answers and THREAD_CREATE carries it."""
    now = iso_now()
    metadata: dict[str, Any] = {"archived": False, "auto_archive_duration": auto_archive_duration,
                                "archive_timestamp": now, "locked": False, "create_timestamp": now}
    if kind == 12:
        metadata["invitable"] = invitable
    return {"id": str(thread_id), "type": kind, "guild_id": str(guild_id), "parent_id": str(parent_id),
            "owner_id": str(owner_id), "name": name, "last_message_id": None,
            "rate_limit_per_user": rate_limit_per_user, "message_count": 0, "member_count": 1,
            "total_message_sent": 0, "flags": 0, "applied_tags": [], "thread_metadata": metadata,
            "member": {"id": str(thread_id), "user_id": str(owner_id), "join_timestamp": now, "flags": 0}}


def dm_channel(channel_id: int, recipient: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(channel_id), "type": 1, "last_message_id": None, "flags": 0, "recipients": [recipient]}


class Guild:
    """One server: an @everyone role, a 'Coach Admin' role with Manage Server, a #coaching channel."""

    def __init__(self, guild_id: int, owner_id: int, name: str = "Moto Riders") -> None:
        self.id = guild_id
        self.owner_id = owner_id
        self.name = name
        self.admin_role_id = guild_id + 1
        self.channel_id = guild_id + 2
        self.channels: list[dict[str, Any]] = [text_channel(self.channel_id, guild_id, "coaching")]
        self.roles: list[dict[str, Any]] = [role(guild_id, "@everyone", MEMBER_PERMISSIONS, 0),
                                            role(self.admin_role_id, "Coach Admin", ADMIN_PERMISSIONS, 1)]
        self.threads: list[dict[str, Any]] = []
        # Users seen as members (an interaction or a message in the server, or `FakeDiscord.join`).
        self.members: set[int] = set()

    def permissions(self, role_ids: list[int]) -> int:
        """The permissions a member with these roles has (guild-wide; no channel overwrites)."""
        total = 0
        for r in self.roles:
            if int(r["id"]) == self.id or int(r["id"]) in role_ids:
                total |= int(r["permissions"])
        return total

    def payload(self, bot_user: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(self.id), "name": self.name, "icon": None, "splash": None, "discovery_splash": None,
            "owner_id": str(self.owner_id), "afk_channel_id": None, "afk_timeout": 300, "verification_level": 1,
            "default_message_notifications": 1, "explicit_content_filter": 2, "mfa_level": 0,
            "features": ["COMMUNITY"], "application_id": None, "system_channel_id": str(self.channel_id),
            "system_channel_flags": 0, "rules_channel_id": None, "max_members": 500000, "vanity_url_code": None,
            "description": None, "banner": None, "premium_tier": 0, "premium_subscription_count": 0,
            "preferred_locale": "en-US", "public_updates_channel_id": None, "nsfw_level": 0,
            "premium_progress_bar_enabled": False, "safety_alerts_channel_id": None, "emojis": [], "stickers": [],
            "roles": list(self.roles),
            "joined_at": "2024-03-01T10:00:00.000000+00:00", "large": False, "unavailable": False,
            "member_count": 3, "voice_states": [], "presences": [], "threads": list(self.threads),
            "stage_instances": [],
            "guild_scheduled_events": [], "soundboard_sounds": [], "lazy": True,
            "members": [member(bot_user, [])],
            "channels": list(self.channels),
        }


def message(message_id: int, channel_id: int, author: dict[str, Any], body: dict[str, Any],
            application_id: int | None, guild_id: int | None, kind: int = 20) -> dict[str, Any]:
    """A message as Discord returns it: an interaction response or a webhook follow-up (type 20,
    with webhook and application ids), or a plain channel message (type 0, or 19 for a reply)."""
    data: dict[str, Any] = {
        "id": str(message_id), "type": kind, "channel_id": str(channel_id), "author": author,
        "content": body.get("content") or "", "timestamp": iso_now(), "edited_timestamp": None, "tts": False,
        "mention_everyone": False, "mentions": [], "mention_roles": [], "mention_channels": [], "attachments": [],
        "embeds": body.get("embeds") or [], "components": body.get("components") or [], "pinned": False,
        "flags": int(body.get("flags") or 0),
    }
    if application_id is not None:
        data["webhook_id"] = data["application_id"] = str(application_id)
    if guild_id is not None:
        data["guild_id"] = str(guild_id)
    return data
