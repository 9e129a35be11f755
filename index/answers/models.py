"""The answer every front end renders: Discord (bot/embeds.py), the terminal and JSON (rendering.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Citation(BaseModel):
    model_config = ConfigDict(frozen=True)

    n: int
    title: str
    source: str = Field(description="author or publisher of the cited page")
    url: str | None
    excerpt: str
    document_id: str
    passage_id: str | None = None
    heading: str | None = None
    score: float


class VideoLink(BaseModel):
    model_config = ConfigDict(frozen=True)

    title: str
    url: str


class DrillSuggestion(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    goal: str
    level: str | None
    dose: str | None
    url: str | None


class Answer(BaseModel):
    question: str
    answered: bool
    status: Literal["answered", "declined", "invalid"]
    lead: str
    citations: list[Citation] = Field(default_factory=list)
    more: list[Citation] = Field(default_factory=list, description="the next passages, for 'More sources'")
    videos: list[VideoLink] = Field(default_factory=list)
    drill: DrillSuggestion | None = None
    safety_note: str | None = None
    top_score: float | None = None
    confidence: float | None = None
    elapsed_ms: float = 0.0
