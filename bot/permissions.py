"""Who may do what: admins (Manage Server, or the admin role by id, per server), and the application's owner
(whatever rebuilds every server's library)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from bot.errors import NotAdmin, NotOwner

if TYPE_CHECKING:
    from bot.client import HingeBot


async def is_admin(interaction: discord.Interaction) -> bool:
    """Manage Server, or this server's admin role (set by /setup; HINGE_ADMIN_ROLE_ID is the default), matched by
    id: anyone with Manage Roles can create a role with a given name."""
    member = interaction.user
    if not isinstance(member, discord.Member) or interaction.guild_id is None:
        raise NotAdmin("admin commands work in a server only")
    # The interaction carries the member's resolved permissions: no dependence on the role cache.
    if interaction.permissions.manage_guild:
        return True
    bot: HingeBot = interaction.client  # type: ignore[assignment]
    saved = await bot.storage.guild_settings(interaction.guild_id)
    role_id = saved.admin_role_id or bot.settings.admin_role_id
    if role_id is not None and any(role.id == role_id for role in member.roles):
        return True
    raise NotAdmin("not an admin")


async def is_owner(interaction: discord.Interaction) -> bool:
    """The application's owner (or a member of its team), as the Developer Portal says: with Public Bot on,
    anyone can add the bot to a server of their own and be an admin there."""
    bot: HingeBot = interaction.client  # type: ignore[assignment]
    if await bot.is_owner(interaction.user):
        return True
    raise NotOwner("not the application's owner")
