"""A fake Discord (REST + gateway) for over-the-wire tests of the real bot process."""

from tests.fake_discord.channels import pinged_role_ids, pinged_user_ids, pings_everyone
from tests.fake_discord.server import FakeDiscord, Interaction, RestCall

__all__ = ["FakeDiscord", "Interaction", "RestCall", "pinged_role_ids", "pinged_user_ids", "pings_everyone"]
