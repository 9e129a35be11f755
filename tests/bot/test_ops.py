"""Operations: health and metrics endpoint, invite URL, JSON logs, the Docker and Make install path."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from bot.cli import invite_url
from bot.ops.logs import REDACTED, configure_logging
from bot.ops.metrics import Metrics
from bot.ops.web import HealthServer
from bot.state.storage import Storage
from index.engine import Engine
from tests.conftest import PROJECT
from tests.helpers import HashingEmbedder, small_library


class StandInBot(SimpleNamespace):
    """Just what HealthServer reads from the bot."""

    def is_closed(self) -> bool:
        return bool(self.closed)

    def is_ready(self) -> bool:
        return bool(self.ready)


@pytest.fixture
async def stand_in(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = Engine(tmp_path / "data", small_library(tmp_path / "knowledge"), HashingEmbedder())
    storage = Storage(tmp_path / "data" / "hinge.sqlite3")
    await storage.open()
    yield StandInBot(engine=engine, storage=storage, metrics=Metrics(), closed=False, ready=True)
    await storage.close()


async def get(bot: StandInBot, path: str) -> tuple[int, str]:
    async with TestClient(TestServer(HealthServer(bot, "127.0.0.1", 0).app())) as client:  # type: ignore[arg-type]
        response = await client.get(path)
        return response.status, await response.text()


async def test_health_is_503_with_reasons_until_everything_is_up(stand_in: StandInBot) -> None:
    stand_in.ready = False
    status, body = await get(stand_in, "/healthz")
    assert status == 503
    assert json.loads(body)["problems"] == ["index not loaded", "gateway not connected"]
    stand_in.engine.load()
    stand_in.ready = True
    status, body = await get(stand_in, "/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok", "problems": []}
    await stand_in.storage.close()
    status, body = await get(stand_in, "/healthz")
    assert status == 503 and "database not writable" in body


async def test_metrics_parse_as_prometheus_text(stand_in: StandInBot) -> None:
    stand_in.engine.load()
    metrics: Metrics = stand_in.metrics
    metrics.answered("answered", 12.0)
    metrics.answered("declined", 8.0)
    metrics.reindexed(ok=True, seconds=3.0)
    metrics.voted(True)
    metrics.voted(False)
    status, text = await get(stand_in, "/metrics")
    assert status == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("hinge_questions_total", (("status", "answered"),))] == 1
    assert samples[("hinge_declined_total", ())] == 1
    assert samples[("hinge_answer_latency_seconds_count", ())] == 2
    assert samples[("hinge_reindexes_total", (("result", "ok"),))] == 1
    assert samples[("hinge_reindex_duration_seconds_count", ())] == 1
    assert samples[("hinge_feedback_total", (("vote", "down"),))] == 1
    assert samples[("hinge_library_documents", ())] == 5
    assert samples[("hinge_library_chunks", ())] == len(stand_in.engine.index)


def test_invite_url_asks_for_the_two_scopes_and_only_the_permissions_used() -> None:
    url = urlparse(invite_url(123456789012345678))
    query = parse_qs(url.query)
    assert query["client_id"] == ["123456789012345678"]
    assert query["scope"] == ["bot applications.commands"]
    import discord

    expected = discord.Permissions(view_channel=True, send_messages=True, send_messages_in_threads=True,
                                   create_public_threads=True, embed_links=True, attach_files=True,
                                   read_message_history=True)
    assert discord.Permissions(int(query["permissions"][0])) == expected


def test_json_logs_are_one_object_per_line_and_never_show_the_token(capsys: pytest.CaptureFixture[str]) -> None:
    token = "MTIz.fake-token.value"
    configure_logging("INFO", as_json=True, secrets=[token])
    try:
        logging.getLogger("hinge.test").info("connecting with %s", token)
        logging.getLogger("hinge.test").warning("plain message")
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [entry["level"] for entry in lines] == ["info", "warning"]
    assert lines[0]["message"] == f"connecting with {REDACTED}"
    assert all(token not in json.dumps(entry) for entry in lines)
    assert {"time", "logger", "message"} <= set(lines[0])


def test_dockerfile_and_makefile_use_the_same_install_script() -> None:
    dockerfile = (PROJECT / "Dockerfile").read_text()
    makefile = (PROJECT / "Makefile").read_text()
    ci = (PROJECT / ".ci" / "run").read_text()
    assert re.search(r"^RUN scripts/install\.sh ", dockerfile, re.M)
    assert "scripts/install.sh $(VENV)" in makefile
    assert "make test" in ci
    assert re.search(r"^HEALTHCHECK .*healthz", dockerfile, re.M | re.S)
    assert re.search(r"^USER coach$", dockerfile, re.M) and 'VOLUME ["/data"]' in dockerfile
    # The parse a Docker engine would do: every instruction is one it knows.
    known = {"FROM", "ARG", "ENV", "WORKDIR", "COPY", "RUN", "USER", "VOLUME", "EXPOSE", "HEALTHCHECK",
             "ENTRYPOINT", "CMD"}
    logical = re.sub(r"\\\n", " ", dockerfile).splitlines()
    instructions = [line.split()[0] for line in logical if line.strip() and not line.startswith("#")]
    assert set(instructions) <= known, set(instructions) - known


def test_the_image_entry_command_runs_directly(tmp_path: Path) -> None:
    dockerfile = (PROJECT / "Dockerfile").read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))  # type: ignore[union-attr]
    assert cmd[:2] == ["hinge", "run"]
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HINGE_DATA_DIR": str(tmp_path / "data"),
           "HINGE_KNOWLEDGE_DIR": str(PROJECT / "knowledge"), "HOME": str(tmp_path)}
    # Without a token the bot must refuse clearly, after the entrypoint made the team's library folder.
    result = subprocess.run([str(PROJECT / "docker" / "entrypoint.sh"), *cmd], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=60)
    assert result.returncode != 0
    assert "DISCORD_TOKEN is not set" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "data" / "library").is_dir()  # the shipped library is read from the image
