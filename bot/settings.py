"""Settings from the environment, a `.env` file, or defaults (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from index.engine import EngineSettings
from index.retrieval.embedding import BUNDLED_MODEL

_PROJECT_KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _default_knowledge_dir() -> Path:
    # An editable install or the image keeps knowledge/ beside the packages; elsewhere use ./knowledge.
    return _PROJECT_KNOWLEDGE if _PROJECT_KNOWLEDGE.is_dir() else Path("knowledge")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HINGE_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore")

    discord_token: SecretStr | None = Field(default=None, validation_alias="DISCORD_TOKEN",
                                            description="the bot token from the Discord developer portal")
    data_dir: Path = Field(default=Path(".hinge"), description="index, embedding cache and SQLite database")
    knowledge_dir: Path = Field(default_factory=_default_knowledge_dir, description="the library's files")
    embed_model: str = Field(default=BUNDLED_MODEL,
                             description="'bundled' or a local sentence-transformers model folder")
    guild_ids: Annotated[list[int], NoDecode] = Field(default_factory=list,
                                                      description="servers to sync slash commands to at once")
    library_dir: Path | None = Field(default=None, description="the team's own documents (uploads, coach "
                                     "answers); default: DATA_DIR/library")
    admin_role_id: int | None = Field(default=None, description="id of the role that may run the admin commands "
                                      "(matched by id: anyone can make a role with a given name)")
    coach_channel_id: int | None = Field(default=None, description="default coach queue channel (one-server "
                                         "deployments); /setup sets it per server")
    coach_role_id: int | None = Field(default=None, description="default coach role; /setup sets it per server")
    ask_cooldown_seconds: float = Field(default=5.0, ge=0, description="per-user window of the limit that covers "
                                        "every request that searches: /ask, More sources, /video, /drill focus, "
                                        "mentions")
    ask_cooldown_rate: int = Field(default=3, ge=1, description="requests allowed per user per window")
    retention_days: int = Field(default=180, ge=1, description="days questions and feedback are kept")
    coach_retry_seconds: float = Field(default=30.0, gt=0, description="how often the bot retries coach work a "
                                       "Discord error or a crash left unfinished (replies, cards, library files); "
                                       "a failing item backs off up to 10 minutes")
    thread_followups: bool = Field(default=False, description="answer plain messages in the threads the bot "
                                   "opened (needs the Message Content intent)")
    conversation_idle_hours: float = Field(default=24.0, gt=0, description="a conversation's context is "
                                           "forgotten after this long without a message")
    max_question_chars: int = Field(default=500, ge=1)
    max_upload_bytes: int = Field(default=200_000, ge=1, description="largest file /add-source accepts")
    answer_on_mention: bool = Field(default=False, description="answer messages that mention the bot "
                                    "(needs the message content intent)")
    http_enabled: bool = Field(default=True, description="serve /healthz and /metrics")
    http_host: str = Field(default="127.0.0.1", description="host of the /healthz and /metrics endpoint")
    http_port: int = Field(default=8080, ge=0, le=65535, description="port of that endpoint (0: the OS picks)")
    application_id: int | None = Field(default=None, description="the application (client) id, for invite-url")
    log_json: bool = Field(default=False, description="JSON log lines instead of human-readable ones")
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL")

    @model_validator(mode="before")
    @classmethod
    def _blank_means_unset(cls, values: Any) -> Any:
        # `KEY=` in a .env file means "not set", not an empty token or an invalid number.
        if isinstance(values, dict):
            return {k: v for k, v in values.items() if not (isinstance(v, str) and not v.strip())}
        return values

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("guild_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(part) for part in value.replace(",", " ").split() if part]
        if isinstance(value, int):
            return [value]
        return value

    @property
    def database_path(self) -> Path:
        return self.data_dir / "hinge.sqlite3"

    @property
    def engine(self) -> EngineSettings:
        """The engine's settings: only the model can be chosen, the rest is measured."""
        return EngineSettings(embed_model=self.embed_model)

    @property
    def team_library_dir(self) -> Path:
        return self.library_dir or self.data_dir / "library"
