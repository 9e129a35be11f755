"""A rider's question as words: cleaning, shorthand, and what it is about (pain, training)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

_MENTION = re.compile(r"<(?:@[!&]?|#|a?:\w+:)\d+>|@(?:everyone|here)\b")
_MARKDOWN = re.compile(r"[*_~`|>#\[\]()]+")
_PAIN = re.compile(r"\b(pain\w*|hurt\w*|injur\w*|numb\w*|tingl\w*|sore\w*|ache\w*|aching|sciatic\w*|"
                   r"disc|discs|herniat\w*|strain\w*|sprain\w*|pinch\w*|tweak\w*|spasm\w*|"
                   r"swell\w*|swollen|fractur\w*|broke|broken|crash\w*|surgery|rehab\w*|physio\w*|doctor)\b", re.I)
_TRAINING = re.compile(r"\b(how|drill\w*|exercis\w*|train\w*|technique|position\w*|posture|hinge\w*|hinging|"
                       r"form|sets?|reps?|strength\w*|stronger|workout\w*|gym|lift\w*|deadlift\w*|rdl\w*|swing\w*|"
                       r"plank\w*|bridge\w*|stretch\w*|mobility|warm\w*|practi[cs]e\w*|learn\w*|improv\w*|fix\w*|"
                       r"cue\w*|stand\w*|attack|core|glute\w*|hamstring\w*|whoops?|ruts?|starts?|jumps?)\b", re.I)


def clean_question(text: str) -> str:
    """The question as words: mention syntax and markdown removed, whitespace folded."""
    text = unicodedata.normalize("NFKC", text)
    text = _MENTION.sub(" ", text)
    text = _MARKDOWN.sub(" ", text)
    return " ".join(text.split())


SYNONYMS_FILE = Path(__file__).with_name("data") / "synonyms.txt"


class Shorthand:
    """Rider shorthand (rdl, kb, hammies) spelled out, so search sees the library's words."""

    def __init__(self, pairs: dict[str, str] | None = None) -> None:
        if pairs is None:
            pairs = {}
            for line in SYNONYMS_FILE.read_text(encoding="utf-8").splitlines():
                if "=" in line and not line.lstrip().startswith("#"):
                    short, long = line.split("=", 1)
                    pairs[short.strip().lower()] = long.strip()
        self.pairs = pairs
        alternatives = "|".join(re.escape(k) for k in sorted(pairs, key=len, reverse=True))
        self._pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.I) if pairs else None

    def expand(self, text: str) -> str:
        if self._pattern is None:
            return text
        found = dict.fromkeys(self.pairs[m.group(0).lower()] for m in self._pattern.finditer(text))
        return f"{text} ({'; '.join(found)})" if found else text


def has_words(text: str) -> bool:
    return sum(ch.isalpha() for ch in text) >= 2


def mentions_pain(text: str) -> bool:
    return bool(_PAIN.search(text))


def about_training(text: str) -> bool:
    return bool(_TRAINING.search(text))
