"""Channels, messages, threads and DMs of the fake Discord (a mixin of FakeDiscord).

Every message (the bot's REST messages, interaction responses and follow-ups, users' messages) is
stored per channel, shaped like Discord's message objects, with what the bot asked for kept beside:
`allowed_mentions`, `message_reference`, and the bytes of attached files.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fake_discord import payloads as p

if TYPE_CHECKING:
    from tests.fake_discord.server import Session

GUILD_TEXT, DM, PUBLIC_THREAD, PRIVATE_THREAD = 0, 1, 11, 12
GUILD_MESSAGES, DIRECT_MESSAGES, MESSAGE_CONTENT = 1 << 9, 1 << 12, 1 << 15
REPLY, DEFAULT = 19, 0
HAS_THREAD = 1 << 5
USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors


def _form_error(field: str, code: str, message: str) -> ApiError:
    return ApiError(400, 50035, "Invalid Form Body", {field: {"_errors": [{"code": code, "message": message}]}})


def mentions(content: str, allowed: dict[str, Any] | None, replied_author: int | None,
             author_id: int | None = None) -> tuple[list[int], list[int], bool]:
    """Who a message pings: (user ids, role ids, @everyone/@here), with Discord's allowed_mentions rules.

    Without allowed_mentions everything in the content pings and a reply pings the replied-to author;
    with it, only `parse` kinds, or the listed `users` / `roles` that the content mentions, and the
    replied-to author only with `replied_user: true`."""
    if allowed is None:
        parse, users, roles, replied = {"users", "roles", "everyone"}, set(), set(), True
    else:
        parse = set(allowed.get("parse") or [])
        users = {int(u) for u in allowed.get("users") or []}
        roles = {int(r) for r in allowed.get("roles") or []}
        replied = bool(allowed.get("replied_user", False))
    pinged: list[int] = []
    for uid in (int(x) for x in USER_MENTION.findall(content)):
        if ("users" in parse or uid in users) and uid not in pinged and uid != author_id:
            pinged.append(uid)
    if replied and replied_author is not None and replied_author not in pinged and replied_author != author_id:
        pinged.append(replied_author)
    pinged_roles: list[int] = []
    for rid in (int(x) for x in ROLE_MENTION.findall(content)):
        if ("roles" in parse or rid in roles) and rid not in pinged_roles:
            pinged_roles.append(rid)
    everyone = "everyone" in parse and ("@everyone" in content or "@here" in content)
    return pinged, pinged_roles, everyone


def _message_pings(message: dict[str, Any]) -> tuple[list[int], list[int], bool]:
    referenced = message.get("referenced_message") or {}
    replied = int(referenced["author"]["id"]) if referenced.get("author") else None
    return mentions(message.get("content") or "", message.get("allowed_mentions"), replied,
                    int(message["author"]["id"]))


def pinged_user_ids(message: dict[str, Any]) -> list[int]:
    """The user ids a stored message really notifies (content mentions filtered by allowed_mentions,
    plus the replied-to author when the reply pings)."""
    return _message_pings(message)[0]


def pinged_role_ids(message: dict[str, Any]) -> list[int]:
    """The role ids a stored message really notifies."""
    return _message_pings(message)[1]


def pings_everyone(message: dict[str, Any]) -> bool:
    """Whether a stored message really notifies @everyone / @here."""
    return _message_pings(message)[2]


class ChannelsMixin:
    """Channel, message, thread and DM routes and helpers; FakeDiscord provides the rest."""

    # Provided by FakeDiscord.
    guilds: dict[int, p.Guild]
    bot_user: dict[str, Any]
    application_id: int
    _cond: threading.Condition
    _current: Session | None
    _run: Callable[..., Any]
    _dispatch_on: Callable[[Session, str, dict[str, Any]], Coroutine[Any, Any, None]]

    def _init_channels(self) -> None:
        self.channels: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, dict[str, Any]] = {}  # id -> message payload (+ allowed_mentions)
        self.files: dict[int, bytes] = {}  # attachment id -> bytes the bot uploaded
        self.users: dict[int, dict[str, Any]] = {}
        self._in_channel: dict[int, list[int]] = {}
        self._dms: dict[int, int] = {}  # user id -> DM channel id
        self._tasks: set[asyncio.Task[None]] = set()
        # Discord keeps a nonce for a few minutes: a resend after that posts a second message. Tests that stand
        # for "long after a crash" set it to 0.
        self.nonce_seconds = 300.0
        self._nonce_at: dict[int, float] = {}
        for guild in self.guilds.values():
            for channel in guild.channels:
                self.channels[int(channel["id"])] = channel

    # -- public helpers ------------------------------------------------------------------------------
    def add_channel(self, guild_id: int, name: str) -> int:
        """A new text channel: in GUILD_CREATE from now on, and CHANNEL_CREATE if the bot is connected."""
        guild = self.guilds[guild_id]
        channel = p.text_channel(p.snowflake(), guild_id, name, position=len(guild.channels))
        with self._cond:
            guild.channels.append(channel)
            self.channels[int(channel["id"])] = channel
        self._broadcast("CHANNEL_CREATE", channel)
        return int(channel["id"])

    def add_role(self, guild_id: int, name: str, permissions: int = 0, mentionable: bool = False) -> int:
        """A new role: in GUILD_CREATE from now on, and GUILD_ROLE_CREATE if the bot is connected."""
        guild = self.guilds[guild_id]
        role = {**p.role(p.snowflake(), name, permissions, len(guild.roles)), "mentionable": mentionable}
        with self._cond:
            guild.roles.append(role)
        self._broadcast("GUILD_ROLE_CREATE", {"guild_id": str(guild_id), "role": role})
        return int(role["id"])

    def dm_channel(self, user_id: int) -> int:
        """The DM channel between the bot and `user_id` (made on first use, like Discord)."""
        with self._cond:
            if user_id not in self._dms:
                channel = p.dm_channel(p.snowflake(), self._user(user_id))
                self.channels[int(channel["id"])] = channel
                self._dms[user_id] = int(channel["id"])
            return self._dms[user_id]

    def channel_messages(self, channel_id: int) -> list[dict[str, Any]]:
        """The messages of a channel (thread, DM) in order, deleted ones left out; each a copy with
        `allowed_mentions` as the sender gave it and every attachment's bytes under `data`."""
        with self._cond:
            out = []
            for message_id in self._in_channel.get(channel_id, []):
                if message_id in self.messages:
                    message = copy.deepcopy(self.messages[message_id])
                    for attachment in message["attachments"]:
                        attachment["data"] = self.files.get(int(attachment["id"]), b"")
                    out.append(message)
            return out

    def message(self, message_id: int) -> dict[str, Any]:
        with self._cond:
            return copy.deepcopy(self.messages[message_id])

    pinged_user_ids = staticmethod(pinged_user_ids)
    pinged_role_ids = staticmethod(pinged_role_ids)
    pings_everyone = staticmethod(pings_everyone)

    def user_message(self, channel_id: int, content: str, *, user_id: int | None = None, bot: bool = False,
                     mentions: Iterable[int] = (), message_reference: int | dict[str, Any] | None = None,
                     roles: Iterable[int] = (), timeout: float = 10) -> dict[str, Any]:
        """A user (or another bot) posts in a channel, thread or DM: stored, and MESSAGE_CREATE dispatched
        (guild messages with guild_id and member, DMs without). `mentions` adds `<@id>` for ids the
        content does not already mention; `message_reference`: a message id (or dict) to reply to."""
        user_id = user_id or p.snowflake()
        author = self._user(user_id, bot=bot)
        for uid in mentions:
            if not re.search(rf"<@!?{uid}>", content):
                content = f"{content} <@{uid}>".strip()
        body: dict[str, Any] = {"content": content}
        if message_reference is not None:
            body["message_reference"] = (message_reference if isinstance(message_reference, dict)
                                         else {"message_id": str(message_reference)})

        async def post() -> dict[str, Any]:
            return self._create_message(channel_id, author, body, None, member_roles=list(roles))

        created: dict[str, Any] = self._run(post, timeout)
        return created

    # -- internals -----------------------------------------------------------------------------------
    def _user(self, user_id: int, bot: bool = False) -> dict[str, Any]:
        if user_id == self.application_id:
            return self.bot_user
        if user_id not in self.users:
            self.users[user_id] = p.user(user_id, f"{'bot' if bot else 'rider'}{user_id % 10000}", bot=bot)
        return self.users[user_id]

    def _channel(self, channel_id: int) -> dict[str, Any]:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise ApiError(404, 10003, "Unknown Channel")
        return channel

    def _guild_of(self, channel: dict[str, Any]) -> int | None:
        return int(channel["guild_id"]) if channel.get("guild_id") else None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _broadcast(self, event: str, data: dict[str, Any]) -> None:
        """Dispatch from a test thread (or the loop) if a session exists."""
        if self._current is None:
            return

        async def send() -> None:
            if self._current is not None:
                await self._dispatch_on(self._current, event, data)

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._run(send)
        else:
            self._spawn(send())

    def _echo(self, event: str, message: dict[str, Any]) -> None:
        """MESSAGE_CREATE / MESSAGE_UPDATE to the bot, as its intents allow (on the loop)."""
        session = self._current
        if session is None or message["flags"] & 64:  # ephemeral messages are never dispatched
            return
        intents = getattr(session, "intents", -1)
        guild_id = message.get("guild_id")
        if not intents & (GUILD_MESSAGES if guild_id else DIRECT_MESSAGES):
            return
        data = {k: v for k, v in message.items() if k != "allowed_mentions"}
        bot_id = str(self.application_id)
        if guild_id and not intents & MESSAGE_CONTENT and data["author"]["id"] != bot_id and not any(
                u["id"] == bot_id for u in data["mentions"]):
            data.update(content="", embeds=[], attachments=[], components=[])
        self._spawn(self._dispatch_on(session, event, data))

    def _attachments(self, body: dict[str, Any], keep: list[dict[str, Any]]) -> list[dict[str, Any]]:
        files = {f"files[{i}]": f for i, f in enumerate(body.get("_files") or [])}
        by_field = {f["field"]: f for f in body.get("_files") or []}
        out: list[dict[str, Any]] = []
        kept = {a["id"]: a for a in keep}
        listed = body.get("attachments")
        if listed is None:
            listed = [{"id": i, "filename": f["filename"]} for i, f in enumerate(body.get("_files") or [])]
            listed = [*({"id": a["id"]} for a in keep), *listed]
        for entry in listed:
            if str(entry.get("id")) in kept:
                out.append(kept[str(entry["id"])])
                continue
            upload = by_field.get(f"files[{entry.get('id')}]") or files.get(f"files[{entry.get('id')}]")
            if upload is None:
                raise _form_error("attachments", "ATTACHMENT_NOT_FOUND", f"no file for attachment {entry}")
            attachment_id = p.snowflake()
            name = entry.get("filename") or upload["filename"]
            url = f"http://127.0.0.1/attachments/{attachment_id}/{name}"
            attachment = {"id": str(attachment_id), "filename": name, "size": len(upload["data"]), "url": url,
                          "proxy_url": url, "content_type": upload.get("content_type") or "application/octet-stream"}
            if entry.get("description"):
                attachment["description"] = entry["description"]
            self.files[attachment_id] = upload["data"]
            out.append(attachment)
        return out

    def _validate(self, message: dict[str, Any]) -> None:
        if len(message["content"]) > 2000:
            raise _form_error("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
        if len(message["embeds"]) > 10:
            raise _form_error("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        if not (message["content"] or message["embeds"] or message["components"] or message["attachments"]
                or message.get("sticker_items") or message.get("poll")):
            raise ApiError(400, 50006, "Cannot send an empty message")

    def _set_mentions(self, message: dict[str, Any]) -> None:
        users, roles, everyone = _message_pings(message)
        mentioned = list(users)
        for uid in (int(x) for x in USER_MENTION.findall(message["content"])):
            if uid not in mentioned and message.get("allowed_mentions") is None:
                mentioned.append(uid)
        message["mentions"] = [self._user(u) for u in mentioned]
        message["mention_roles"] = [str(r) for r in roles]
        message["mention_everyone"] = everyone

    def _create_message(self, channel_id: int, author: dict[str, Any], body: dict[str, Any],
                        application_id: int | None, member_roles: list[int] | None = None,
                        interaction_type: int | None = None, echo: bool = True,
                        validate: bool = True) -> dict[str, Any]:
        """Store a new message in `channel_id` (on the loop) and dispatch MESSAGE_CREATE for it."""
        channel = self._channel(channel_id)
        guild_id = self._guild_of(channel)
        if body.get("enforce_nonce") and body.get("nonce") is not None:
            # Discord answers a repeated nonce from the same author (within minutes) with the first message.
            for message_id in self._in_channel.get(channel_id, []):
                earlier = self.messages.get(message_id)
                if earlier and earlier.get("nonce") == body["nonce"] and earlier["author"]["id"] == author["id"] \
                        and time.monotonic() - self._nonce_at.get(message_id, 0.0) <= self.nonce_seconds:
                    return earlier
        reference = body.get("message_reference")
        referenced: dict[str, Any] | None = None
        if reference:
            target = self.messages.get(int(reference.get("message_id") or 0))
            if target is None or int(target["channel_id"]) != channel_id:
                if reference.get("fail_if_not_exists", True):
                    raise _form_error("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                                      "Unknown message")
                reference = None
            else:
                referenced = {k: v for k, v in target.items() if k not in ("referenced_message",
                                                                             "allowed_mentions")}
        kind = 20 if interaction_type is not None else (REPLY if referenced else DEFAULT)
        message = p.message(p.snowflake(), channel_id, author, body, application_id, guild_id, kind=kind)
        message["attachments"] = self._attachments(body, [])
        if body.get("nonce") is not None:
            message["nonce"] = body["nonce"]
        if body.get("tts"):
            message["tts"] = True
        if "allowed_mentions" in body:
            message["allowed_mentions"] = body["allowed_mentions"]
        if referenced is not None and reference is not None:
            message["message_reference"] = {"type": 0, "message_id": referenced["id"],
                                            "channel_id": str(channel_id), **(
                                                {"guild_id": str(guild_id)} if guild_id else {})}
            message["referenced_message"] = referenced
        if guild_id is not None and author is not self.bot_user:
            roles = member_roles or []
            message["member"] = {k: v for k, v in p.member(author, roles).items() if k != "user"}
        if validate:
            self._validate(message)
        self._set_mentions(message)
        with self._cond:
            self.messages[int(message["id"])] = message
            if body.get("nonce") is not None:
                self._nonce_at[int(message["id"])] = time.monotonic()
            self._in_channel.setdefault(channel_id, []).append(int(message["id"]))
            channel["last_message_id"] = message["id"]
            if channel["type"] in (PUBLIC_THREAD, PRIVATE_THREAD):
                channel["message_count"] += 1
                channel["total_message_sent"] += 1
            self._cond.notify_all()
        if echo:
            self._echo("MESSAGE_CREATE", message)
        return message

    def _update_message(self, message: dict[str, Any], body: dict[str, Any], echo: bool = True) -> dict[str, Any]:
        with self._cond:
            for key in ("content", "embeds", "components", "flags"):
                if key in body:
                    message[key] = body[key] if body[key] is not None else ([] if key not in (
                        "content", "flags") else ("" if key == "content" else 0))
            if "allowed_mentions" in body:
                message["allowed_mentions"] = body["allowed_mentions"]
            if "attachments" in body or body.get("_files"):
                message["attachments"] = self._attachments(body, message["attachments"])
            message["edited_timestamp"] = p.iso_now()
            self._set_mentions(message)
            self._cond.notify_all()
        if echo:
            self._echo("MESSAGE_UPDATE", message)
        return message

    def _delete_message(self, message: dict[str, Any]) -> None:
        with self._cond:
            self.messages.pop(int(message["id"]), None)
            self._cond.notify_all()
        data = {"id": message["id"], "channel_id": message["channel_id"]}
        if message.get("guild_id"):
            data["guild_id"] = message["guild_id"]
        if self._current is not None and not message["flags"] & 64:
            self._spawn(self._dispatch_on(self._current, "MESSAGE_DELETE", data))

    def _start_thread(self, channel_id: int, body: dict[str, Any], message_id: int | None) -> dict[str, Any]:
        parent = self._channel(channel_id)
        if parent["type"] != GUILD_TEXT:
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        name = str(body.get("name") or "")
        if not 1 <= len(name) <= 100:
            raise _form_error("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        guild_id = int(parent["guild_id"])
        if message_id is not None:
            source = self.messages.get(message_id)
            if source is None or int(source["channel_id"]) != channel_id:
                raise ApiError(404, 10008, "Unknown Message")
            if message_id in self.channels:
                raise ApiError(400, 160004, "A thread has already been created for this message")
            thread_id, kind = message_id, PUBLIC_THREAD
        else:
            thread_id, kind = p.snowflake(), int(body.get("type") or PRIVATE_THREAD)
        thread = p.thread_channel(thread_id, guild_id, channel_id, self.application_id, name, kind,
                                  int(body.get("auto_archive_duration") or 1440),
                                  int(body.get("rate_limit_per_user") or 0), bool(body.get("invitable", True)))
        with self._cond:
            self.channels[thread_id] = thread
            self.guilds[guild_id].threads.append(thread)
            if message_id is not None:
                source = self.messages[message_id]
                source["flags"] |= HAS_THREAD
                source["thread"] = thread
            self._cond.notify_all()
        if self._current is not None:
            self._spawn(self._dispatch_on(self._current, "THREAD_CREATE", {**thread, "newly_created": True}))
        return thread

    def threads(self, channel_id: int | None = None) -> list[dict[str, Any]]:
        """Threads created so far (under `channel_id` if given)."""
        with self._cond:
            return [dict(c) for c in self.channels.values() if c["type"] in (PUBLIC_THREAD, PRIVATE_THREAD)
                    and (channel_id is None or int(c["parent_id"]) == channel_id)]

    async def _channel_route(self, method: str, path: str, body: Any) -> Any:
        """The channel, message, thread and DM routes; None when the path is not one of them."""
        if method == "POST" and path == "/users/@me/channels":
            recipient = int((body or {}).get("recipient_id") or 0)
            if not recipient:
                raise _form_error("recipient_id", "BASE_TYPE_REQUIRED", "This field is required")
            return self.channels[self.dm_channel(recipient)]
        if method == "GET" and (m := re.fullmatch(r"/users/(\d+)", path)):
            # fetch_user: a bot DMs a rider it has no cached member for (a coach answer to a private question).
            return self._user(int(m[1]))
        if m := re.fullmatch(r"/channels/(\d+)", path):
            if method == "GET":
                return self._channel(int(m[1]))
            return None
        if method == "POST" and (m := re.fullmatch(r"/channels/(\d+)/typing", path)):
            self._channel(int(m[1]))  # 404 for an unknown channel, as Discord
            return web.Response(status=204)
        if m := re.fullmatch(r"/channels/(\d+)/messages", path):
            channel_id = int(m[1])
            if method == "POST":
                return self._create_message(channel_id, self.bot_user, body or {}, None)
            if method == "GET":
                self._channel(channel_id)
                # As Discord: a fetched message carries no nonce (only the create response and the gateway do).
                return [{k: v for k, v in self.messages[i].items() if k != "nonce"}
                        for i in reversed(self._in_channel.get(channel_id, [])) if i in self.messages][:50]
            return None
        if m := re.fullmatch(r"/channels/(\d+)/messages/(\d+)", path):
            self._channel(int(m[1]))
            message = self.messages.get(int(m[2]))
            if message is None or int(message["channel_id"]) != int(m[1]):
                raise ApiError(404, 10008, "Unknown Message")
            if method == "GET":
                return message
            if method == "PATCH":
                if message["author"]["id"] != str(self.application_id):
                    raise ApiError(403, 50005, "Cannot edit a message authored by another user")
                return self._update_message(message, body or {})
            if method == "DELETE":
                self._delete_message(message)
                return web.Response(status=204)
            return None
        if method == "POST" and (m := re.fullmatch(r"/channels/(\d+)/messages/(\d+)/threads", path)):
            return self._start_thread(int(m[1]), body or {}, int(m[2]))
        if method == "POST" and (m := re.fullmatch(r"/channels/(\d+)/threads", path)):
            return self._start_thread(int(m[1]), body or {}, None)
        return None


async def read_multipart(request: web.Request) -> dict[str, Any]:
    """A multipart body as discord.py sends it with files: `payload_json` plus `files[n]` parts;
    the JSON payload with the files (field, filename, content_type, data) under `_files`."""
    payload: dict[str, Any] = {}
    files: list[dict[str, Any]] = []
    reader = await request.multipart()
    async for part in reader:
        name = getattr(part, "name", None) or "?"
        raw = await part.read()  # type: ignore[union-attr]
        if name == "payload_json":
            payload = json.loads(raw)
        else:
            files.append({"field": name, "filename": getattr(part, "filename", None) or name,
                          "content_type": part.headers.get("Content-Type"), "data": bytes(raw)})
    return {**payload, "_files": files}
