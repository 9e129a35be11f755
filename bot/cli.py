"""The `hinge` command line. Heavy modules (torch, faiss, discord) load only inside the commands
that need them, so `hinge --help` and `hinge index status` answer at once."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pydantic import ValidationError

from bot.settings import Settings
from index.errors import HingeError, LibraryError

if TYPE_CHECKING:
    from index.engine import Engine

Handler = Callable[[argparse.Namespace, Settings], int]


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    if getattr(args, "knowledge", None):
        overrides["knowledge_dir"] = args.knowledge
    return Settings(**overrides)  # type: ignore[arg-type]


def make_engine(settings: Settings) -> Engine:
    from bot.runner import make_engine as compose

    return compose(settings)


class ProgressBar:
    """One line on stderr: chunks embedded, rate and time left."""

    def __init__(self, stream: TextIO = sys.stderr, label: str = "embedding") -> None:
        self._stream = stream
        self._label = label
        self._started = time.perf_counter()
        self._first: int | None = None

    def __call__(self, done: int, total: int) -> None:
        if self._first is None:
            self._first = done  # chunks found in the cache do not count towards the rate
        elapsed = max(time.perf_counter() - self._started, 1e-6)
        rate = (done - self._first) / elapsed
        left = (total - done) / rate if rate > 0 else 0.0
        width = 24
        filled = int(width * done / total) if total else width
        self._stream.write(f"\r{self._label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} chunks, "
                           f"{rate:.1f}/s, {left:.0f}s left ")
        if done >= total:
            self._stream.write("\n")
        self._stream.flush()


# -- index ---------------------------------------------------------------------------------------
def cmd_index_build(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings)
    report = engine.build(progress=ProgressBar(), built_by="cli")
    print(f"built {report.documents} documents, {report.chunks} chunks ({report.embedded} embedded, "
          f"the rest from the cache) in {report.seconds:.1f}s; added {len(report.added)}, "
          f"changed {len(report.changed)}, removed {len(report.removed)}")
    return 0


def cmd_index_status(args: argparse.Namespace, settings: Settings) -> int:
    from index.retrieval.store import IndexStore

    manifest = IndexStore(settings.data_dir).read_manifest()
    if manifest is None:
        print(f"no index in {settings.data_dir}; build one with `hinge index build`")
        return 1
    if args.json:
        print(manifest.model_dump_json(indent=2, exclude={"documents", "files"}))
        return 0
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(manifest.kinds.items()))
    print(f"index: {settings.data_dir}\n  documents: {manifest.document_count} ({kinds})\n"
          f"  chunks: {manifest.chunk_count}\n  model: {manifest.model.id} ({manifest.model.dimension} dims)\n"
          f"  built: {manifest.built_at:%Y-%m-%d %H:%M:%S} UTC by {manifest.built_by or 'unknown'} "
          f"in {manifest.build_seconds:.1f}s\n  sources hash: {manifest.sources_hash}")
    return 0


def cmd_index_check(args: argparse.Namespace, settings: Settings) -> int:
    from index.library.documents import load_library

    library = load_library([settings.knowledge_dir, settings.team_library_dir])
    for error in library.errors:
        print(f"error: {error}", file=sys.stderr)
    print(f"{len(library.documents)} documents valid, {len(library.errors)} bad file(s)")
    return 1 if library.errors else 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings)
    engine.load()
    hits = engine.search(args.text, args.k)
    if args.json:
        print(json.dumps([h.model_dump(mode="json") for h in hits], indent=2))
        return 0
    for n, hit in enumerate(hits, 1):
        path = " > ".join(hit.chunk.heading_path)
        print(f"{n}. [{hit.score:.2f}] {hit.chunk.title}{' > ' + path if path else ''} ({hit.chunk.doc_id})")
        print(f"   {hit.chunk.text[:240].replace(chr(10), ' ')}{'...' if len(hit.chunk.text) > 240 else ''}")
    return 0


def cmd_eval_beir(args: argparse.Namespace, settings: Settings) -> int:
    from index.engine import make_embedder
    from index.evaluation.beir import evaluate, load_beir
    from index.retrieval.store import IndexStore

    beir = load_beir(Path(args.folder), args.split)
    data_dir = settings.data_dir / "beir" / beir.name
    store = IndexStore(data_dir, settings.data_dir / "cache" / "embeddings.sqlite")
    engine = settings.engine  # the same engine the bot ships: there is no benchmark-only configuration
    embedder = make_embedder(engine.embed_model, settings.data_dir)
    report_build = store.build(beir.documents, embedder, engine.fusion, progress=ProgressBar(),
                               built_by="eval")
    index = store.load(embedder, engine.fusion)
    report = evaluate(index, beir, args.split).model_copy(update={"build_seconds": report_build.seconds})
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        print(f"{report.name} ({report.split}, {report.queries} queries, {report.mode}): "
              f"nDCG@10 {report.ndcg_at_10:.4f}  Recall@100 {report.recall_at_100:.4f}  "
              f"MRR@10 {report.mrr_at_10:.4f}\n  index build {report_build.seconds:.1f}s "
              f"({report_build.embedded} chunks embedded)  query p50 {report.p50_ms:.1f} ms  "
              f"p95 {report.p95_ms:.1f} ms")
    return 0


# -- answers ----------------------------------------------------------------------------------------
def _questions(source: str) -> Iterator[str]:
    lines = sys.stdin if source == "-" else Path(source).read_text(encoding="utf-8").splitlines()
    for line in lines:
        if line.strip():
            yield line.rstrip("\n")


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from index.answers.composer import AnswerComposer
    from index.answers.rendering import render_json, render_text

    if args.file is None and not args.question:
        print("error: give a QUESTION or --file F", file=sys.stderr)
        return 2
    engine = make_engine(settings)
    engine.load()
    composer = AnswerComposer(max_chars=settings.max_question_chars)
    questions = _questions(args.file) if args.file else iter([" ".join(args.question)])
    for question in questions:
        answer = composer.ask(engine.index, question)
        print(render_json(answer) if args.json else render_text(answer), flush=True)
        if not args.json and args.file:
            print("-" * 40)
    return 0


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    """A conversation in the terminal: each question is asked with the earlier ones as context; `/new` starts
    over. On a terminal it prompts; otherwise it reads one turn per line (with --json, one Answer per line)."""
    from index.answers.composer import AnswerComposer, turn_of
    from index.answers.conversation import Turn
    from index.answers.rendering import render_text

    engine = make_engine(settings)
    interactive = sys.stdin.isatty() and not getattr(args, "json", False)
    if interactive:
        print("Loading the library and the model...", file=sys.stderr)
    engine.load(progress=ProgressBar() if interactive else None)
    composer = AnswerComposer(max_chars=settings.max_question_chars)
    composer.warm(engine.index)
    if interactive:
        print("Hinge Coach: ask about the hip hinge, riding positions, back fatigue or gym work for riders. "
              "Follow-up questions keep the conversation's context; /new starts over. An empty line or Ctrl-D "
              "quits.")
    history: list[Turn] = []
    while True:
        try:
            question = input("\nyou> ") if interactive else input()
        except EOFError:
            if interactive:
                print()
            return 0
        if not question.strip():
            if interactive:
                return 0
            continue
        if question.strip() == "/new":
            history = []
            if interactive:
                print("(new conversation)")
            continue
        answer = composer.ask(engine.index, question, history=history)
        if answer.status != "invalid":
            history.append(turn_of(answer))
        if getattr(args, "json", False):
            print(answer.model_dump_json(), flush=True)
        elif interactive:
            print(f"\ncoach> {render_text(answer)}\n({answer.elapsed_ms:.0f} ms)")
        else:
            print(f"you> {question}\ncoach> {render_text(answer)}\n", flush=True)


def cmd_eval_questions(args: argparse.Namespace, settings: Settings) -> int:
    from index.answers.composer import AnswerComposer
    from index.evaluation.questions import evaluate_questions, load_questions, subset_line

    engine = make_engine(settings)
    engine.load()
    report = evaluate_questions(engine.index, AnswerComposer(), load_questions(Path(args.file)))
    if args.json:
        print(report.model_dump_json(indent=2))
        return 0
    for part in report.parts:
        print(f"{part.name:8} on-topic {part.on_topic:3}  hit@1 {part.hit_at_1:.3f}  hit@3 {part.hit_at_3:.3f}  "
              f"MRR {part.mrr:.3f}  | off-topic {part.off_topic:3}  declined {part.off_topic_declined:.3f}  "
              f"| on-topic wrongly declined {part.on_topic_declined:.3f}")
    for part in report.subsets:
        print(subset_line(part))
    print(f"answer latency p50 {report.p50_ms:.1f} ms, p95 {report.p95_ms:.1f} ms")
    return 0


# -- the bot -------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from bot.ops.logs import configure_logging
    from bot.runner import run_bot

    secret = settings.discord_token.get_secret_value() if settings.discord_token else ""
    configure_logging(settings.log_level, settings.log_json, [secret])
    asyncio.run(run_bot(settings))
    return 0


def cmd_start(args: argparse.Namespace, settings: Settings) -> int:
    """`make run`: the bot when a token is configured, otherwise the terminal chat."""
    if settings.discord_token is not None:
        return cmd_run(args, settings)
    print("No DISCORD_TOKEN set, so starting the terminal chat. To connect to Discord, put the bot token in "
          ".env (see .env.example and the README) and run `make run` again.", file=sys.stderr)
    return cmd_chat(args, settings)


# Create Public Threads: /ask can open a thread on its answer for follow-up questions; Attach Files: the
# coaches' weekly digest carries a chart.
INVITE_PERMISSIONS = ("view_channel", "send_messages", "send_messages_in_threads", "create_public_threads",
                      "embed_links", "attach_files", "read_message_history")


def invite_url(application_id: int) -> str:
    """The OAuth2 link that adds the bot with exactly the permissions it uses."""
    from discord import Permissions
    from discord.utils import oauth_url

    permissions = Permissions(**dict.fromkeys(INVITE_PERMISSIONS, True))
    return oauth_url(application_id, permissions=permissions, scopes=("bot", "applications.commands"))


def cmd_invite_url(args: argparse.Namespace, settings: Settings) -> int:
    application_id = args.application_id or settings.application_id
    if not application_id:
        print("error: give the application id (--application-id or HINGE_APPLICATION_ID); it is on the "
              "General Information page of your application in the Discord developer portal", file=sys.stderr)
        return 2
    print(invite_url(application_id))
    return 0


# -- parser --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hinge", description="Hinge Coach: answers riders' hip-hinge "
                                     "questions with cited excerpts, videos and drills.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, handler: Handler,
            help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--data-dir", type=Path, help="data folder (default: HINGE_DATA_DIR or ./.hinge)")
        p.add_argument("--knowledge", type=Path, help="knowledge folder (default: HINGE_KNOWLEDGE_DIR)")
        p.set_defaults(handler=handler)
        return p

    index_cmd = commands.add_parser("index", help="build, check or describe the index")
    index_sub = index_cmd.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    add(index_sub, "build", cmd_index_build, "build the index from the knowledge folder")
    status = add(index_sub, "status", cmd_index_status, "describe the index in use")
    status.add_argument("--json", action="store_true")
    add(index_sub, "check", cmd_index_check, "validate the knowledge files without building")

    search = add(commands, "search", cmd_search, "show the passages that best match TEXT")
    search.add_argument("text")
    search.add_argument("-k", type=int, default=5, help="how many passages (default 5)")
    search.add_argument("--json", action="store_true")

    eval_cmd = commands.add_parser("eval", help="measure retrieval or answer quality")
    eval_sub = eval_cmd.add_subparsers(dest="eval_command", required=True, metavar="SET")
    beir = add(eval_sub, "beir", cmd_eval_beir, "nDCG@10, Recall@100, MRR@10 on a BEIR folder")
    beir.add_argument("folder")
    beir.add_argument("--split", default="test")
    beir.add_argument("--json", action="store_true")

    ask = add(commands, "ask", cmd_ask, "answer a question with cited excerpts, videos and a drill")
    ask.add_argument("question", nargs="*")
    ask.add_argument("--json", action="store_true", help="print the Answer as JSON")
    ask.add_argument("--file", help="answer one question per line of F (- for stdin), one result per line")
    chat = add(commands, "chat", cmd_chat, "a conversation in the terminal (/new starts over; reads lines when piped)")
    chat.add_argument("--json", action="store_true", help="one Answer object per turn, one per line")
    add(commands, "run", cmd_run, "run the Discord bot (needs DISCORD_TOKEN)")
    invite = add(commands, "invite-url", cmd_invite_url, "print the link that adds the bot to a server")
    invite.add_argument("--application-id", type=int, help="the application (client) id")
    add(commands, "start", cmd_start, "the Discord bot if DISCORD_TOKEN is set, otherwise the terminal chat")
    questions = add(eval_sub, "questions", cmd_eval_questions, "hit@k, MRR and declining on a question set")
    questions.add_argument("file")
    questions.add_argument("--json", action="store_true")
    return parser


def settings_errors(error: ValidationError) -> list[str]:
    """One line per bad setting, named as the operator sets it (environment or .env), without a
    traceback; a secret's value is never echoed."""
    lines = []
    for problem in error.errors():
        field = str(problem["loc"][0]) if problem["loc"] else ""
        info = Settings.model_fields.get(field)
        alias = info.validation_alias if info is not None else None
        name = alias if isinstance(alias, str) else f"HINGE_{field.upper()}" if info is not None else field
        message = str(problem["msg"]).removeprefix("Value error, ")
        value = problem.get("input")
        secret = "token" in name.lower() or "secret" in name.lower()
        shown = "" if secret or isinstance(value, dict) else f" (got {str(value)[:60]!r})"
        lines.append(f"error: setting {name}: {message}{shown}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ValidationError as exc:
        for line in settings_errors(exc):
            print(line, file=sys.stderr)
        return 2
    try:
        code: int = args.handler(args, settings)
        return code
    except (LibraryError, HingeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
