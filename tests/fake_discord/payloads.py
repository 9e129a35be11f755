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


def text_channel(channel_id: int, guild_id: int, name: str) -> dict[str, Any]:
    return {"id": str(channel_id), "type": 0, "guild_id": str(guild_id), "name": name, "position": 0,
            "permission_overwrites": [], "nsfw": False, "topic": "Ask the coach", "parent_id": None,
            "rate_limit_per_user": 0, "last_message_id": None, "flags": 0}


class Guild:
    """One server: an @everyone role, a 'Coach Admin' role with Manage Server, a #coaching channel."""

    def __init__(self, guild_id: int, owner_id: int, name: str = "Moto Riders") -> None:
        self.id = guild_id
        self.owner_id = owner_id
        self.name = name
        self.admin_role_id = guild_id + 1
        self.channel_id = guild_id + 2

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
            "roles": [role(self.id, "@everyone", MEMBER_PERMISSIONS, 0),
                      role(self.admin_role_id, "Coach Admin", ADMIN_PERMISSIONS, 1)],
            "joined_at": "2024-03-01T10:00:00.000000+00:00", "large": False, "unavailable": False,
            "member_count": 3, "voice_states": [], "presences": [], "threads": [], "stage_instances": [],
            "guild_scheduled_events": [], "soundboard_sounds": [], "lazy": True,
            "members": [member(bot_user, [])],
            "channels": [text_channel(self.channel_id, self.id, "coaching")],
        }


def message(message_id: int, channel_id: int, author: dict[str, Any], body: dict[str, Any],
            application_id: int, guild_id: int | None) -> dict[str, Any]:
    """A message as Discord returns it for an interaction response or a webhook follow-up."""
    data: dict[str, Any] = {
        "id": str(message_id), "type": 20, "channel_id": str(channel_id), "author": author,
        "content": body.get("content") or "", "timestamp": iso_now(), "edited_timestamp": None, "tts": False,
        "mention_everyone": False, "mentions": [], "mention_roles": [], "mention_channels": [], "attachments": [],
        "embeds": body.get("embeds") or [], "components": body.get("components") or [], "pinned": False,
        "flags": int(body.get("flags") or 0), "webhook_id": str(application_id),
        "application_id": str(application_id),
    }
    if guild_id is not None:
        data["guild_id"] = str(guild_id)
    return data
