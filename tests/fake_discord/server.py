"""A fake Discord: the REST routes and the gateway a bot uses, on 127.0.0.1, recording everything.

It runs its own event loop in a thread, so synchronous tests and benchmarks can drive it while the
real bot runs in another process. Everything the bot sends is recorded; faults can be injected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import WSMsgType, web

from tests.fake_discord import payloads as p
from tests.fake_discord.channels import ApiError as _ApiError
from tests.fake_discord.channels import ChannelsMixin, read_multipart
from tests.fake_discord.components import MODAL_SUBMIT, ComponentsMixin

T = TypeVar("T")

# Gateway opcodes.
DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 0, 1, 2, 6, 7, 9, 10, 11
# Interaction callback types.
PONG, MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE, AUTOCOMPLETE, MODAL = 1, 4, 5, 6, 7, 8, 9
EPHEMERAL = 1 << 6
OPTION_TYPES = {3: str, 4: int, 5: bool, 10: float}
ATTACHMENT = 11  # an attachment option's value: (file name, bytes) in `slash`
CHANNEL_OPTION, ROLE_OPTION = 7, 8


@dataclass
class RestCall:
    method: str
    path: str  # after /api/v10
    query: dict[str, str]
    body: Any
    status: int
    at: float
    authorization: str | None


@dataclass
class Frame:
    connection: int
    direction: str  # "in": sent by the bot, "out": sent by the fake
    op: int
    t: str | None
    d: Any
    at: float


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int | None  # None: answer normally, only late
    times: int
    retry_after: float = 0.5
    delay: float = 0.0
    is_global: bool = False
    hits: int = 0
    code: int | None = None  # Discord's JSON error code (403 defaults to 50013 Missing Permissions)
    hold: float = 0.0  # seconds the response waits after the request took effect (a reply lost in flight)


@dataclass
class Sent:
    """One message body the bot sent: an interaction callback, a follow-up or an edit."""

    interaction: int
    kind: str  # "callback", "followup", "edit"
    body: dict[str, Any]
    at: float


@dataclass
class Interaction:
    id: int
    token: str
    name: str  # the command, or the custom_id of the clicked component / submitted modal
    options: dict[str, Any]
    user_id: int
    guild_id: int | None
    dispatched_at: float
    callback_type: int | None = None
    acked_at: float | None = None
    answered_at: float | None = None
    original_id: int | None = None
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    kind: int = 2  # 2 slash command, 3 component, 4 autocomplete, 5 modal submit
    channel_id: int | None = None
    message_id: int | None = None  # the message whose component was clicked
    modal: dict[str, Any] | None = None  # what a MODAL (9) callback showed: custom_id, title, components

    @property
    def ack_latency(self) -> float | None:
        return None if self.acked_at is None else self.acked_at - self.dispatched_at

    @property
    def completion_latency(self) -> float | None:
        return None if self.answered_at is None else self.answered_at - self.dispatched_at

    @property
    def replies(self) -> list[dict[str, Any]]:
        """Message bodies with something to show (content or embeds), in the order sent."""
        return [s.body for s in self.sent if s.body.get("content") or s.body.get("embeds")]

    @property
    def text(self) -> str:
        """Everything shown to the user, flattened: contents, titles, descriptions, fields, footers."""
        parts: list[str] = []
        for body in self.replies:
            parts.append(body.get("content") or "")
            for embed in body.get("embeds") or []:
                parts += [embed.get("title", ""), embed.get("description", ""), embed.get("url", "")]
                for f in embed.get("fields", []):
                    parts += [f.get("name", ""), f.get("value", "")]
                parts.append((embed.get("footer") or {}).get("text", ""))
        return "\n".join(x for x in parts if x)


class Session:
    def __init__(self, session_id: str) -> None:
        self.id = session_id
        self.seq = 0
        self.intents = -1  # from IDENTIFY; gates MESSAGE_CREATE and message content like Discord does
        self.events: list[tuple[int, dict[str, Any]]] = []  # (seq, frame), for RESUME replays
        self.connection: Connection | None = None

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


class Connection:
    def __init__(self, number: int, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.number = number
        self.ws = ws
        self.request = request
        self.path = request.path
        self.query = dict(request.query)
        self.compressor = zlib.compressobj() if self.query.get("compress") == "zlib-stream" else None
        self.lock = asyncio.Lock()
        self.session: Session | None = None
        self.identified = False
        self.resumed = False
        self.closed = False
        self.close_code: int | None = None

    @property
    def live(self) -> bool:
        return self.session is not None and not self.closed and not self.ws.closed

    async def send(self, frame: dict[str, Any]) -> None:
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=True)
        async with self.lock:
            if self.compressor is None:
                await self.ws.send_str(text)
            else:
                # One zlib stream per connection; every frame ends on a sync flush (00 00 ff ff).
                data = self.compressor.compress(text.encode()) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
                await self.ws.send_bytes(data)


class FakeDiscord(ChannelsMixin, ComponentsMixin):
    API = "/api/v10"

    def __init__(self, token: str, guild_ids: Iterable[int] = (), heartbeat_interval_ms: int = 41250,
                 bot_name: str = "Hinge Coach") -> None:
        self.token = token
        self.application_id = p.snowflake()
        self.bot_user = {**p.user(self.application_id, bot_name, bot=True), "verified": True,
                         "mfa_enabled": False, "email": None}
        self.owner = p.user(p.snowflake(), "owner")
        self.guilds = {gid: p.Guild(gid, int(self.owner["id"])) for gid in guild_ids}
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.port = 0
        # Records (written on the fake's loop, read from any thread under `_cond`).
        self.rest: list[RestCall] = []
        self.frames: list[Frame] = []
        self.connections: list[Connection] = []
        self.sessions: dict[str, Session] = {}
        self.commands: dict[int | None, list[dict[str, Any]]] = {}  # guild id (None: global) -> synced schema
        self.interactions: dict[int, Interaction] = {}
        self.faults: list[Fault] = []
        self.invalidate_resumes = False
        self.refuse_gateway = False  # while set, every gateway connection attempt gets HTTP 503
        self.refused_connections = 0
        self._by_token: dict[str, Interaction] = {}
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._current: Session | None = None
        self._init_channels()

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> FakeDiscord:
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-discord", daemon=True)
        self._thread.start()
        if not started.wait(10) or failure:
            raise RuntimeError(f"the fake Discord did not start: {failure}")
        return self

    async def _serve(self) -> None:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/resume", self._gateway)
        app.router.add_route("*", self.API + "/{tail:.*}", self._rest)
        app.router.add_get("/attachments/{id}/{name}", self._download)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)  # loopback only, any free port
        await site.start()
        server: Any = site._server
        self.port = int(server.sockets[0].getsockname()[1])

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return

        async def shutdown() -> None:
            for conn in list(self.connections):
                if not conn.ws.closed:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.ws.close(code=1001), 2)
            if self._runner is not None:
                await asyncio.wait_for(self._runner.cleanup(), 5)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FakeDiscord:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.API}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def env(self) -> dict[str, str]:
        """What the launcher needs to point discord.py here."""
        return {"FAKE_DISCORD_API": self.api_base, "FAKE_DISCORD_GATEWAY": self.gateway_url}

    # -- thread plumbing ---------------------------------------------------------------------------
    def _run(self, fn: Callable[[], Any], timeout: float = 10) -> Any:
        """Run a coroutine function on the fake's loop and wait for its result."""
        assert self._loop is not None, "the fake is not running"
        return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(timeout)

    def _changed(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def wait_until(self, predicate: Callable[[], T], timeout: float, what: str = "condition") -> T:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"fake Discord: timed out after {timeout}s waiting for {what}")
                self._cond.wait(min(left, 0.2))

    # -- gateway -----------------------------------------------------------------------------------
    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_gateway:  # an outage: the bot's reconnect attempts fail until it is lifted
            with self._cond:
                self.refused_connections += 1
                self._cond.notify_all()
            return web.Response(status=503, text="gateway unavailable")
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        conn = Connection(len(self.connections) + 1, ws, request)
        with self._cond:
            self.connections.append(conn)
        await self._send(conn, {"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms,
                                                   "_trace": ["fake-gateway"]}, "s": None, "t": None})
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                self._record_frame(conn, "in", frame)
                await self._on_frame(conn, frame)
        finally:
            conn.closed = True
            conn.close_code = ws.close_code
            if conn.session is not None and conn.session.connection is conn:
                conn.session.connection = None
            self._changed()
        return ws

    def _record_frame(self, conn: Connection, direction: str, frame: dict[str, Any]) -> None:
        with self._cond:
            self.frames.append(Frame(conn.number, direction, frame.get("op", -1), frame.get("t"), frame.get("d"),
                                     time.monotonic()))
            self._cond.notify_all()

    async def _send(self, conn: Connection, frame: dict[str, Any]) -> None:
        self._record_frame(conn, "out", frame)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await conn.send(frame)

    async def _on_frame(self, conn: Connection, frame: dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d")
        if not isinstance(data, dict):
            data = {}
        if op == HEARTBEAT:
            await self._send(conn, {"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == IDENTIFY:
            if data.get("token") != self.token:
                await conn.ws.close(code=4004, message=b"Authentication failed.")
                return
            session = Session(secrets.token_hex(16))
            session.intents = int(data.get("intents") or 0)
            self.sessions[session.id] = session
            self._current = session
            await self._attach(conn, session)
            conn.identified = True
            ready = {
                "v": 10, "user": self.bot_user, "guilds": [{"id": str(g), "unavailable": True} for g in self.guilds],
                "session_id": session.id, "session_type": "normal",
                "resume_gateway_url": f"ws://127.0.0.1:{self.port}/resume",
                "application": {"id": str(self.application_id), "flags": 0}, "private_channels": [],
                "relationships": [], "presences": [], "guild_join_requests": [], "geo_ordered_rtc_regions": [],
                "user_settings": {}, "auth": {}, "_trace": ["fake-gateway"],
            }
            await self._dispatch_on(session, "READY", ready)
            for guild in self.guilds.values():
                await self._dispatch_on(session, "GUILD_CREATE", guild.payload(self.bot_user))
        elif op == RESUME:
            known = self.sessions.get(data.get("session_id") or "")
            if known is None or data.get("token") != self.token or self.invalidate_resumes:
                await self._send(conn, {"op": INVALID_SESSION, "d": False, "s": None, "t": None})
                return
            await self._attach(conn, known)
            seen = int(data.get("seq") or 0)
            for seq, missed in list(known.events):
                if seq > seen:
                    await self._send(conn, missed)
            conn.resumed = True
            await self._dispatch_on(known, "RESUMED", {"_trace": ["fake-gateway"]})
        self._changed()

    async def _attach(self, conn: Connection, session: Session) -> None:
        old = session.connection
        session.connection = conn
        conn.session = session
        if old is not None and old is not conn and not old.ws.closed:
            with contextlib.suppress(Exception):
                await old.ws.close(code=4000)

    async def _dispatch_on(self, session: Session, event: str, data: dict[str, Any]) -> None:
        seq = session.next_seq()
        frame: dict[str, Any] = {"op": DISPATCH, "t": event, "s": seq, "d": data}
        session.events.append((seq, frame))
        del session.events[:-2000]
        conn = session.connection
        if conn is not None and not conn.closed:
            await self._send(conn, frame)

    def live_connection(self) -> Connection | None:
        session = self._current
        conn = session.connection if session is not None else None
        return conn if conn is not None and conn.live else None

    def wait_connected(self, timeout: float = 60, after: int = 0) -> Connection:
        """Wait for a live, identified or resumed connection numbered above `after`."""
        def ready() -> Connection | None:
            conn = self.live_connection()
            return conn if conn is not None and conn.number > after and (conn.identified or conn.resumed) else None

        conn = self.wait_until(ready, timeout, "a live gateway connection")
        assert conn is not None  # wait_until returns only a truthy value
        return conn

    # -- faults ------------------------------------------------------------------------------------
    def drop_gateway(self) -> int:
        """Cut the live connection without a close frame (like a network failure); its number."""
        async def drop() -> int:
            conn = self.live_connection()
            if conn is None:
                raise RuntimeError("no live gateway connection to drop")
            transport = conn.request.transport
            if transport is not None:
                transport.abort()
            return conn.number
        number: int = self._run(drop)
        return number

    def send_reconnect(self) -> int:
        return self._send_op(RECONNECT, None)

    def invalidate_session(self, resumable: bool = False) -> int:
        if not resumable:
            self.invalidate_resumes = True
        return self._send_op(INVALID_SESSION, resumable)

    def _send_op(self, op: int, data: Any) -> int:
        async def send() -> int:
            conn = self.live_connection()
            if conn is None:
                raise RuntimeError("no live gateway connection")
            await self._send(conn, {"op": op, "d": data, "s": None, "t": None})
            return conn.number
        number: int = self._run(send)
        return number

    def fail(self, method: str, path: str, status: int | None = 429, times: int = 1, retry_after: float = 0.5,
             delay: float = 0.0, is_global: bool = False, code: int | None = None, hold: float = 0.0) -> Fault:
        """Answer the next `times` calls to METHOD /api/v10<path regex> with `status` (None: normally)
        after `delay` seconds; `code`: Discord's JSON error code (403: 50013 Missing Permissions); `hold`: with
        status None, the call takes effect at once and its response waits that long (as a response lost in
        flight: the message exists, the bot does not know it yet)."""
        fault = Fault(method.upper(), re.compile(path), status, times, retry_after, delay, is_global, code=code,
                      hold=hold)
        with self._cond:
            self.faults.append(fault)
        return fault

    # -- REST --------------------------------------------------------------------------------------
    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body = await self._read_body(request)
        fault = self._take_fault(request.method, path)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.status is not None:
            response = self._fault_response(fault, path)
        elif request.headers.get("Authorization") != f"Bot {self.token}" and not path.startswith(
                ("/interactions/", "/webhooks/")):
            response = self._error(401, 0, "401: Unauthorized")
        else:
            try:
                response = await self._route(request.method, path, body)
            except _ApiError as exc:
                response = self._error(exc.status, exc.code, exc.message, exc.errors)
            if fault is not None and fault.hold:
                await asyncio.sleep(fault.hold)
        with self._cond:
            self.rest.append(RestCall(request.method, path, dict(request.query), body, response.status,
                                      time.monotonic(), request.headers.get("Authorization")))
            self._cond.notify_all()
        return response

    async def _read_body(self, request: web.Request) -> Any:
        if not request.can_read_body:
            return None
        if request.content_type == "application/json":
            return await request.json()
        if request.content_type.startswith("multipart/"):
            return await read_multipart(request)  # payload_json, files under "_files"
        return await request.text()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._cond:
            for fault in self.faults:
                if fault.hits < fault.times and fault.method == method and fault.pattern.search(path):
                    fault.hits += 1
                    return fault
        return None

    def _fault_response(self, fault: Fault, path: str) -> web.Response:
        if fault.status == 429:
            headers = {"Via": "1.1 google", "Retry-After": str(max(1, round(fault.retry_after))),
                       "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                       "X-RateLimit-Reset": f"{time.time() + fault.retry_after:.3f}",
                       "X-RateLimit-Reset-After": f"{fault.retry_after:.3f}",
                       "X-RateLimit-Bucket": f"fake-{abs(hash(fault.pattern.pattern)):x}",
                       "X-RateLimit-Scope": "shared" if not fault.is_global else "global"}
            if fault.is_global:
                headers["X-RateLimit-Global"] = "true"
            return _json({"message": "You are being rate limited.", "retry_after": fault.retry_after,
                                      "global": fault.is_global, "code": 0 if not fault.is_global else 40062},
                                     status=429, headers=headers)
        status = fault.status or 500
        if status == 403 and fault.code in (None, 50013):
            return self._error(403, 50013, "Missing Permissions")
        return self._error(status, fault.code or 0, f"{status}: injected fault on {path}")

    @staticmethod
    def _error(status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> web.Response:
        data: dict[str, Any] = {"message": message, "code": code}
        if errors:
            data["errors"] = errors
        return _json(data, status=status, headers=_RATE_HEADERS)

    async def _route(self, method: str, path: str, body: Any) -> web.Response:
        app = str(self.application_id)
        if method == "GET" and path == "/users/@me":
            return _ok(self.bot_user)
        if method == "GET" and path == "/oauth2/applications/@me":
            return _ok(self._application())
        if method == "GET" and path in ("/gateway/bot", "/gateway"):
            info: dict[str, Any] = {"url": f"ws://127.0.0.1:{self.port}/gateway"}
            if path == "/gateway/bot":
                info.update(shards=1, session_start_limit={"total": 1000, "remaining": 999,
                                                           "reset_after": 14400000, "max_concurrency": 1})
            return _ok(info)
        if m := re.fullmatch(rf"/applications/{app}(?:/guilds/(\d+))?/commands", path):
            guild_id = int(m[1]) if m[1] else None
            if method == "PUT":
                return _ok(self._sync(guild_id, body))
            if method == "GET":
                return _ok(self.commands.get(guild_id, []))
        if method == "POST" and (m := re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", path)):
            return _ok(self._callback(int(m[1]), m[2], body))
        if method == "POST" and (m := re.fullmatch(rf"/webhooks/{app}/([^/]+)", path)):
            return _ok(self._followup(m[1], body))
        if m := re.fullmatch(rf"/webhooks/{app}/([^/]+)/messages/(@original|\d+)", path):
            interaction = self._interaction_by_token(m[1])
            message_id = interaction.original_id if m[2] == "@original" else int(m[2])
            if message_id is None or message_id not in interaction.messages:
                raise _ApiError(404, 10008, "Unknown Message")
            if method == "GET":
                return _ok(interaction.messages[message_id])
            if method == "PATCH":
                return _ok(self._edit(interaction, message_id, body))
            if method == "DELETE":
                self._delete_message(interaction.messages.pop(message_id))
                return web.Response(status=204, headers=_RATE_HEADERS)
        if method == "GET" and (m := re.fullmatch(r"/guilds/(\d+)/members/(\d+)", path)):
            guild = self.guilds.get(int(m[1]))
            if guild is None:
                raise _ApiError(404, 10004, "Unknown Guild")
            if int(m[2]) not in guild.members:
                raise _ApiError(404, 10007, "Unknown Member")
            return _ok(p.member(self._user(int(m[2])), [], None))
        result = await self._channel_route(method, path, body)
        if isinstance(result, web.StreamResponse):
            return result
        if result is not None:
            return _ok(result)
        raise _ApiError(404, 0, "404: Not Found")

    def _application(self) -> dict[str, Any]:
        return {"id": str(self.application_id), "name": self.bot_user["username"], "icon": None,
                "description": "Hip-hinge coaching for riders", "summary": "", "type": None, "bot_public": True,
                "bot_require_code_grant": False, "verify_key": "0" * 64, "owner": self.owner, "team": None,
                "flags": 0, "rpc_origins": [], "bot": self.bot_user, "interactions_endpoint_url": None,
                "redirect_uris": [], "tags": [], "approximate_guild_count": len(self.guilds),
                "integration_types_config": {"0": {}}}

    def _sync(self, guild_id: int | None, body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, list):
            raise _ApiError(400, 50035, "Invalid Form Body")
        synced = []
        for command in body:
            if not re.fullmatch(r"[-_\w]{1,32}", command.get("name", "")) or len(command.get("description",
                                                                                             "")) > 100:
                raise _ApiError(400, 50035, f"Invalid Form Body: {command.get('name')!r}")
            entry = {**command, "id": str(p.snowflake()), "application_id": str(self.application_id),
                     "version": str(p.snowflake()), "type": command.get("type", 1)}
            if entry.get("default_member_permissions") is not None:  # Discord answers with a string
                entry["default_member_permissions"] = str(entry["default_member_permissions"])
            if guild_id is not None:
                entry["guild_id"] = str(guild_id)
            synced.append(entry)
        with self._cond:
            self.commands[guild_id] = synced
        return synced

    def _interaction_by_token(self, token: str) -> Interaction:
        interaction = self._by_token.get(token)
        if interaction is None:
            raise _ApiError(404, 10015, "Unknown Webhook")
        return interaction

    def _new_message(self, interaction: Interaction, body: dict[str, Any], validate: bool = True) -> dict[str, Any]:
        """An interaction response or follow-up: stored as a message of the interaction's channel."""
        if interaction.channel_id is None:
            interaction.channel_id = (self.guilds[interaction.guild_id].channel_id
                                      if interaction.guild_id in self.guilds else self.dm_channel(interaction.user_id))
        message = self._create_message(interaction.channel_id, self.bot_user, body, self.application_id,
                                       interaction_type=interaction.kind, validate=validate)
        message["interaction_metadata"] = {"id": str(interaction.id), "type": interaction.kind,
                                           "user": self._user(interaction.user_id),
                                           "authorizing_integration_owners": {}}
        interaction.messages[int(message["id"])] = message
        return message

    def _record_sent(self, interaction: Interaction, kind: str, body: dict[str, Any]) -> None:
        now = time.monotonic()
        with self._cond:
            interaction.sent.append(Sent(interaction.id, kind, body, now))
            if interaction.answered_at is None and (body.get("content") or body.get("embeds")):
                interaction.answered_at = now
            self._cond.notify_all()

    def _callback(self, interaction_id: int, token: str, body: Any) -> dict[str, Any]:
        interaction = self.interactions.get(interaction_id)
        if interaction is None or interaction.token != token:
            raise _ApiError(404, 10062, "Unknown interaction")
        if interaction.callback_type is not None:
            interaction.errors.append("acknowledged twice")
            raise _ApiError(400, 40060, "Interaction has already been acknowledged.")
        kind = int(body.get("type", 0))
        data = {**(body.get("data") or {}), **({"_files": body["_files"]} if body.get("_files") else {})}
        if kind in (DEFERRED_UPDATE, UPDATE_MESSAGE) and interaction.message_id is None:
            raise _ApiError(400, 50035, "Invalid Form Body: only component interactions can update a message")
        if kind == MODAL and interaction.kind == MODAL_SUBMIT:
            raise _ApiError(400, 50035, "Invalid Form Body: a modal cannot answer a modal submit")
        if kind == MODAL:
            _check_modal(data)
        message: dict[str, Any] | None = None
        if kind in (MESSAGE, DEFERRED_MESSAGE):  # a bad body fails here, before the acknowledgement
            message = self._new_message(interaction, data if kind == MESSAGE else {
                "flags": int(data.get("flags") or 0) | 128}, validate=kind == MESSAGE)  # 128: loading
        with self._cond:
            interaction.callback_type = kind
            interaction.acked_at = time.monotonic()
        self._record_sent(interaction, "callback", data)
        result: dict[str, Any] = {"interaction": {
            "id": str(interaction.id), "type": interaction.kind,
            "response_message_loading": kind == DEFERRED_MESSAGE,
            "response_message_ephemeral": bool(int(data.get("flags") or 0) & EPHEMERAL)}}
        if message is not None:
            interaction.original_id = int(message["id"])
            result["interaction"]["response_message_id"] = message["id"]
            result["resource"] = {"type": kind, "message": message}
        elif kind in (DEFERRED_UPDATE, UPDATE_MESSAGE):
            assert interaction.message_id is not None
            message = self.messages.get(interaction.message_id)
            if message is None:
                raise _ApiError(404, 10008, "Unknown Message")
            interaction.original_id = interaction.message_id
            interaction.messages[interaction.message_id] = message
            result["resource"] = {"type": kind}
            if kind == UPDATE_MESSAGE:
                result["resource"]["message"] = self._update_message(message, data)
                result["interaction"]["response_message_id"] = message["id"]
        elif kind in (AUTOCOMPLETE, MODAL):
            result["resource"] = {"type": kind}
            with self._cond:
                if kind == MODAL:
                    interaction.modal = data
                interaction.answered_at = interaction.acked_at
                self._cond.notify_all()
        return result

    def _followup(self, token: str, body: Any) -> dict[str, Any]:
        interaction = self._interaction_by_token(token)
        if interaction.callback_type is None:
            interaction.errors.append("follow-up before the acknowledgement")
            raise _ApiError(404, 10015, "Unknown Webhook")
        self._record_sent(interaction, "followup", body)
        return self._new_message(interaction, body)

    def _edit(self, interaction: Interaction, message_id: int, body: Any) -> dict[str, Any]:
        self._record_sent(interaction, "edit", body)
        message = interaction.messages[message_id]
        if message["flags"] & 128:  # the deferred "thinking" message becomes the answer
            message["flags"] &= ~128
        return self._update_message(message, body)

    # -- interactions ------------------------------------------------------------------------------
    def command(self, name: str, guild_id: int | None = None) -> dict[str, Any]:
        for command in self.commands.get(guild_id, []):
            if command["name"] == name:
                return command
        raise KeyError(f"/{name} was not synced {'globally' if guild_id is None else f'to {guild_id}'}")

    def slash(self, name: str, /, *, user_id: int | None = None, admin: bool = False, guild_id: int | None = None,
              focused: str | None = None, timeout: float = 30, roles: Iterable[int] = (),
              channel_id: int | None = None, **options: Any) -> Interaction:
        """Dispatch INTERACTION_CREATE for /name with `options`, as a member of the (first) guild with
        `roles` (and the Coach Admin role if `admin`), in `channel_id` (default #coaching; a thread works).
        With `focused`, an autocomplete interaction for that option (typed so far: its value)."""
        guild_id = guild_id or next(iter(self.guilds))
        guild = self.guilds[guild_id]
        scope = guild_id if guild_id in self.commands else None
        command = self.command(name, scope)
        schema = {o["name"]: o for o in command.get("options", [])}
        given = []
        resolved: dict[str, dict[str, dict[str, Any]]] = {}
        for key, value in options.items():
            if value is None:
                continue
            if key not in schema:
                raise KeyError(f"/{name} has no option {key!r}; it has {sorted(schema)}")
            kind = schema[key]["type"]
            if kind == ATTACHMENT:
                value = self._user_attachment(resolved.setdefault("attachments", {}), *value)
            expected = OPTION_TYPES.get(kind)
            if expected is not None and not isinstance(value, expected):
                raise TypeError(f"/{name} {key} takes {expected.__name__}")
            option = {"name": key, "type": kind, "value": value}
            if key == focused:
                option["focused"] = True
            if kind in (CHANNEL_OPTION, ROLE_OPTION):
                # Discord sends a channel or role option as its id, with the object under data.resolved.
                option["value"] = str(value)
                found = self._resolve(guild, kind, int(value))
                resolved.setdefault("channels" if kind == CHANNEL_OPTION else "roles", {})[str(value)] = found
            given.append(option)
        missing = [o["name"] for o in command.get("options", []) if o.get("required") and o["name"] not in options]
        if missing and focused is None:
            raise ValueError(f"/{name} needs {missing}")
        user_id = user_id or p.snowflake()
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1, "options": given}
        if resolved:
            data["resolved"] = resolved
        if scope is not None:
            data["guild_id"] = str(guild_id)
        channel_id = channel_id or guild.channel_id
        payload, token = self._interaction_payload(4 if focused else 2, data, channel_id, user_id, roles, admin)
        record = Interaction(int(payload["id"]), token, name, options, user_id, guild_id, 0.0,
                             kind=4 if focused else 2, channel_id=channel_id)
        return self._dispatch_interaction(record, payload, timeout)

    def join(self, guild_id: int, user_id: int) -> None:
        """`user_id` becomes a member of the server (as if they had joined it)."""
        with self._cond:
            self.guilds[guild_id].members.add(user_id)

    def _user_attachment(self, resolved: dict[str, dict[str, Any]], filename: str, data: bytes) -> str:
        """A file a user attaches to a slash command: listed in the interaction's resolved data, its bytes served
        at its url (the CDN's part, on this server)."""
        attachment_id = p.snowflake()
        with self._cond:
            self.files[attachment_id] = data
        url = f"http://127.0.0.1:{self.port}/attachments/{attachment_id}/{filename}"
        resolved[str(attachment_id)] = {"id": str(attachment_id), "filename": filename, "size": len(data),
                                        "url": url, "proxy_url": url, "content_type": "text/plain"}
        return str(attachment_id)

    async def _download(self, request: web.Request) -> web.Response:
        data = self.files.get(int(request.match_info["id"]))
        return web.Response(status=404) if data is None else web.Response(body=data)

    def _resolve(self, guild: p.Guild, kind: int, object_id: int) -> dict[str, Any]:
        if kind == ROLE_OPTION:
            role = next((r for r in guild.roles if int(r["id"]) == object_id), None)
            if role is None:
                raise KeyError(f"guild {guild.id} has no role {object_id}")
            return dict(role)
        channel = self.channels.get(object_id)
        if channel is None:
            raise KeyError(f"no channel {object_id}")
        return {k: channel[k] for k in ("id", "name", "type", "guild_id", "parent_id", "position")
                if k in channel} | {"permissions": str(p.ADMIN_PERMISSIONS)}

    def wait_answered(self, interactions: Iterable[Interaction], timeout: float = 30) -> None:
        pending = list(interactions)
        self.wait_until(lambda: all(i.answered_at is not None for i in pending), timeout,
                        f"{sum(i.answered_at is None for i in pending)} of {len(pending)} interactions to be answered")

    # -- records -----------------------------------------------------------------------------------
    def calls(self, method: str | None = None, path: str | None = None) -> list[RestCall]:
        with self._cond:
            return [c for c in self.rest if (method is None or c.method == method)
                    and (path is None or re.search(path, c.path))]

    def bot_frames(self, op: int | None = None) -> list[Frame]:
        with self._cond:
            return [f for f in self.frames if f.direction == "in" and (op is None or f.op == op)]

    def sent_messages(self) -> list[Sent]:
        with self._cond:
            return [s for i in self.interactions.values() for s in i.sent]


def _check_modal(data: dict[str, Any]) -> None:
    components = data.get("components") or []
    if not data.get("custom_id") or not data.get("title") or not 1 <= len(components) <= 5:
        raise _ApiError(400, 50035, "Invalid Form Body: a modal needs custom_id, title and 1-5 components")
    if len(data["title"]) > 45:
        raise _ApiError(400, 50035, "Invalid Form Body: title must be 45 or fewer in length")


_RATE_HEADERS = {"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "49", "X-RateLimit-Reset-After": "1.000",
                 "Via": "1.1 google"}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly "application/json", as Discord sends it: discord.py compares the header verbatim.
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={**(headers or {}), "Content-Type": "application/json"})


def _ok(data: Any) -> web.Response:
    headers = {**_RATE_HEADERS, "X-RateLimit-Reset": f"{time.time() + 1:.3f}"}
    return _json(data, headers=headers)
