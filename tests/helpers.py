"""Small doubles and factories for the tests (the real model is used in the tests marked slow)."""

from __future__ import annotations

import hashlib
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from index.retrieval.embedding import Vectors

_WORD = re.compile(r"\w+")


class HashingEmbedder:
    """Bag-of-words hashed into a few dimensions: deterministic, instant, good enough for plumbing."""

    def __init__(self, dimension: int = 64, model_id: str = "test/hashing") -> None:
        self._dimension = dimension
        self._model_id = model_id
        self.calls = 0
        self.texts_embedded = 0

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str], batch_size: int = 16) -> Vectors:
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                bucket = int(hashlib.md5(word.encode()).hexdigest(), 16) % self._dimension
                out[row, bucket] += 1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else out[row]
            if not norm:
                out[row, 0] = 1.0
        return out


SOURCE = {"title": "The Hip Hinge", "author": "Luke Duncan", "publisher": "Racer X",
          "url": "https://www.racerxvt.com/article/the-hip-hinge-do-this-to-ride-faster-video"}


def front_matter(**fields: object) -> str:
    import yaml

    meta: dict[str, object] = {"summary": "A short summary.", "tags": ["hip-hinge"], "sources": [SOURCE]}
    meta.update(fields)
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


DRILL_BODY = textwrap.dedent("""\
    ## Steps
    1. Hold a dowel on your back.
    2. Push the hips back.
    ## Cues
    - Long spine.
    ## Common faults
    - Rounding the back.
    ## Progressions
    - Add a kettlebell.
    """)


def write_doc(root: Path, kind: str, doc_id: str, body: str = "Some text about the hinge.", **fields: object) -> Path:
    folders = {"article": "articles", "related": "related", "forum": "forum", "drill": "drills", "video": "videos"}
    if kind == "drill":
        fields.setdefault("level", "beginner")
        fields.setdefault("dose", "3 sets of 10")
    if kind == "forum":
        fields.setdefault("question", "how do I hinge?")
    if kind == "video":
        fields.setdefault("videos", [{"title": "Video", "url": SOURCE["url"]}])
    path = root / folders[kind] / f"{doc_id}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(front_matter(id=doc_id, kind=kind, title=doc_id.replace("-", " ").title(), **fields) + body,
                    encoding="utf-8")
    return path


def small_library(root: Path) -> Path:
    """A five-document library with distinct topics, for search and answer tests."""
    write_doc(root, "article", "hinge-basics", textwrap.dedent("""\
        ## What a hinge is
        A hip hinge keeps the spine long while the hips move back. The knees bend only a little and the
        shins stay nearly vertical, so the glutes and hamstrings carry the load instead of the lower back.

        ## Why riders care
        Riders who round the upper back or collapse the lower back get tired early, because the spine is
        doing work that the hips should do. Over a season that turns into a sore lower back after motos.
        """), drills=["dowel-drill"], videos=[{"title": "Hinge video", "url": SOURCE["url"]}])
    write_doc(root, "related", "attack-position", textwrap.dedent("""\
        ## Feet to elbows
        In the attack position you stand on the balls of your feet with the shins vertical, hinge at the
        hips, keep the chest over the bars and hold the elbows up and out, ready for bumps and whoops.
        """), videos=[{"title": "Hinge video", "url": SOURCE["url"]}])
    write_doc(root, "related", "tire-care", textwrap.dedent("""\
        ## Mousse and tubes
        Check tire pressure before every ride with a gauge; sand wants less pressure than hard pack.
        """))
    write_doc(root, "drill", "dowel-drill", "## Goal\nGroove the hinge.\n" + DRILL_BODY, level="beginner",
              equipment=["dowel"])
    write_doc(root, "drill", "kettlebell-swing", DRILL_BODY.replace("dowel", "kettlebell"), level="intermediate",
              equipment=["kettlebell"])
    return root
