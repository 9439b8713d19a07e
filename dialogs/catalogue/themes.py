"""Grouping free-text answers into themes, offline: the text module's stems, a TF-IDF cosine, average-link
merging, and a name made of each theme's most telling words.

Used by the appreciative retro at its close. Nothing is downloaded and no model is loaded: the stems come
from `text.content_words` (Snowball, the same spelling unification as the tool scorer). Each answer carries
an opaque `contributor` (the index of a submission in memory, never a person id) so that a theme can be
counted in distinct people, which is what decides whether it may be shown.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from dialogs.catalogue.text import content_words

MERGE_AT = 0.12  # average-link cosine at or above which two groups are one theme
NAME_WORDS = 3


@dataclass(frozen=True, slots=True)
class Answer:
    contributor: int
    text: str


@dataclass
class Theme:
    """Answers that belong together, named by their most telling words; `people` counts distinct contributors."""

    answers: list[Answer]
    name: str = ""
    representative: list[Answer] = field(default_factory=list)  # closest to the theme's centre first

    @property
    def people(self) -> int:
        return len({a.contributor for a in self.answers})


def _vector(counts: Counter[str], idf: dict[str, float]) -> dict[str, float]:
    vector = {stem: n * idf[stem] for stem, n in counts.items()}
    norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
    return {stem: v / norm for stem, v in vector.items()}


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(k, 0.0) for k, v in a.items())


def group(answers: Sequence[Answer], *, merge_at: float = MERGE_AT) -> list[Theme]:
    """Themes of `answers`, largest (in people) first; an answer with no content word stays alone.

    Deterministic for the same input order (the caller shuffles what it releases, not this)."""
    if not answers:
        return []
    words = [content_words(a.text) for a in answers]
    counts = [Counter(stem for stem, _ in w) for w in words]
    df = Counter(stem for c in counts for stem in c)
    n = len(answers)
    idf = {stem: math.log((1 + n) / (1 + d)) + 1.0 for stem, d in df.items()}
    vectors = [_vector(c, idf) for c in counts]
    similarity = [[_cosine(vectors[i], vectors[j]) for j in range(n)] for i in range(n)]
    groups: list[list[int]] = [[i] for i in range(n)]
    while len(groups) > 1:
        best, pair = merge_at, None
        for x in range(len(groups)):
            for y in range(x + 1, len(groups)):
                link = sum(similarity[i][j] for i in groups[x] for j in groups[y]) / (len(groups[x]) * len(groups[y]))
                if link >= best:
                    best, pair = link, (x, y)
        if pair is None:
            break
        x, y = pair
        groups[x] = groups[x] + groups[y]
        del groups[y]
    themes = []
    for members in groups:
        theme = Theme([answers[i] for i in members])
        theme.name = _name([counts[i] for i in members], [words[i] for i in members], idf)
        centre = Counter[str]()
        for i in members:
            centre.update(counts[i])
        middle = _vector(centre, idf)
        ranked = sorted(members, key=lambda i: (-_cosine(vectors[i], middle), i))
        theme.representative = [answers[i] for i in ranked]
        themes.append(theme)
    themes.sort(key=lambda t: (-t.people, -len(t.answers), t.name))
    return themes


def _name(counts: list[Counter[str]], words: list[list[tuple[str, str]]], idf: dict[str, float]) -> str:
    """The theme's most telling words: stems shared by most of its answers, weighted by how rare they are
    overall, each shown in the spelling its answers use most."""
    spread = Counter(stem for c in counts for stem in c)  # in how many of the theme's answers
    scored = sorted(spread, key=lambda stem: (-(spread[stem] * idf[stem]), stem))
    surface: dict[str, Counter[str]] = {}
    for answer in words:
        for stem, word in answer:
            surface.setdefault(stem, Counter())[word] += 1
    chosen = [surface[stem].most_common(1)[0][0] for stem in scored[:NAME_WORDS] if len(stem) > 1]
    return ", ".join(chosen) if chosen else "other"
