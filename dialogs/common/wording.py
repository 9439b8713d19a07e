"""Small helpers for the words people type and the words Baton shows back."""

from __future__ import annotations

import re
import unicodedata

NONE_WORDS = frozenset({"", "-", "–", "no", "none", "nothing", "nope", "n/a", "na", "nothing really", "all good"})


def is_nothing(text: str | None) -> bool:
    """True when a free-text answer means 'nothing' (no blocker, no request)."""
    return text is None or text.strip().strip(".!").casefold() in NONE_WORDS


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# Words that judge a person rather than describe their work. A gap described
# only in these terms cannot be diagnosed, and would not survive being read
# back to the person; "which tool helps?" asks once for what can be seen.
_VERDICTS = re.compile(
    r"\b(?:lazy|laziness|(?:bad|poor|negative|wrong)\s+attitude|attitude\s+problem|incompetent|useless|"
    r"stupid|dumb|idiot\w*|hopeless|clueless|arrogant|selfish|rude|unprofessional|not\s+a\s+team\s+player|"
    r"(?:doesn't|doesnt|does\s+not|don't|dont)\s+care|no\s+work\s+ethic|not\s+(?:very\s+)?(?:smart|bright)|"
    r"difficult\s+person|problem\s+(?:person|employee)|weak\s+link|deadweight|dead\s+weight)\b",
    re.IGNORECASE,
)


def verdicts(text: str) -> list[str]:
    """The judgements of a person in `text` ("lazy", "bad attitude"), as written, in order."""
    return [m.group(0) for m in _VERDICTS.finditer(unicodedata.normalize("NFKC", text).replace("’", "'"))]


def without_names(text: str, names: list[str]) -> str:
    """`text` with these people's names (and "Tom's") taken out, so a name never counts as evidence."""
    words = sorted({part for name in names for part in name.split() if len(part) > 1}, key=len, reverse=True)
    if not words:
        return text
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")(?:['’]s)?\b", re.IGNORECASE)
    return re.sub(r"\s{2,}", " ", pattern.sub(" ", text)).strip()
