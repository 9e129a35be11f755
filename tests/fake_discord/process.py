"""Start the real bot process against a fake Discord, and always clean it up."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.fake_discord.server import FakeDiscord

PROJECT = Path(__file__).resolve().parent.parent.parent
FAKE_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.fake.wire-test-token-not-a-real-one"


def build_index(data_dir: Path, knowledge_dir: Path, timeout: float = 600) -> None:
    """`hinge index build` once, so each bot start only loads."""
    result = subprocess.run([sys.executable, "-m", "bot.cli", "index", "build", "--data-dir", str(data_dir),
                             "--knowledge", str(knowledge_dir)], cwd=PROJECT, env=_base_env(),
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"index build failed ({result.returncode}):\n{result.stderr[-3000:]}")


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HINGE_", "DISCORD_", "FAKE_DISCORD_"))}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    return env


class BotProcess:
    """The bot, run by tests/fake_discord/launch.py in its own process; stderr goes to a log file."""

    def __init__(self, fake: FakeDiscord, data_dir: Path, knowledge_dir: Path, log_path: Path,
                 extra_env: Mapping[str, str] | None = None) -> None:
        env = _base_env()
        env.update(fake.env())
        env.update(DISCORD_TOKEN=fake.token, HINGE_DATA_DIR=str(data_dir), HINGE_KNOWLEDGE_DIR=str(knowledge_dir),
                   HINGE_GUILD_IDS=" ".join(str(g) for g in fake.guilds), HINGE_HTTP_PORT="0", HINGE_LOG_LEVEL="INFO")
        env.update(extra_env or {})
        self.log_path = log_path
        self.data_dir = data_dir
        self._log = log_path.open("wb")
        # cwd: a scratch folder, so no project .env leaks in; the project is importable via PYTHONPATH.
        env["PYTHONPATH"] = str(PROJECT) + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fake_discord.launch"], cwd=log_path.parent,
                                     env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def peak_memory_kb(self) -> int | None:
        """VmHWM: the resident set's high-water mark."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return None

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then wait; SIGKILL if it does not stop in time. The exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: the bot and any child it made
            self.proc.wait(10)
        self._log.close()


@contextlib.contextmanager
def running_bot(fake: FakeDiscord, data_dir: Path, knowledge_dir: Path, log_path: Path,
                extra_env: Mapping[str, str] | None = None, connect_timeout: float = 120) -> Iterator[BotProcess]:
    """The bot, connected to `fake`; killed on the way out whatever happened."""
    bot = BotProcess(fake, data_dir, knowledge_dir, log_path, extra_env)
    try:
        try:
            fake.wait_until(lambda: fake.live_connection() is not None or not bot.alive(), connect_timeout,
                            "the bot to connect")
        except TimeoutError as exc:
            raise RuntimeError(f"the bot did not connect:\n{bot.log()[-4000:]}") from exc
        if not bot.alive():
            raise RuntimeError(f"the bot exited ({bot.proc.returncode}) before connecting:\n{bot.log()[-4000:]}")
        yield bot
    finally:
        bot.kill()


def copy_tree(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target
