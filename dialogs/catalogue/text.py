"""Offline text understanding: a manager's free text -> influence scores.

No model is downloaded or hosted: the scorer is built from the catalogue's own
words (influence cues, tool names, "when it helps", tool cues and the
influences' example gap descriptions), so an organisation that adds tools
with its own cues teaches the scorer too, and from labelled gap descriptions
shipped beside it (``labelled_gaps.yaml``).

Pipeline, the same for catalogue text and for the manager's text:

1. normalise: NFKC, drop format characters (zero-width spaces), casefold,
   strip accents, unify apostrophes and "one-on-one"/"1:1" spellings;
2. rules for what English says with function words, which step 3 would
   erase: "she can do it" / "did it well before" (Mager & Pipe: not a skill
   gap), "only Raj knows", "nothing happens", "so nobody does", a list of
   fixes already tried (the last-resort signal), "it's not a skills issue"
   (the named concept is ruled out, so it does not count). Each becomes a
   made-up concept token whose influence the catalogue cues decide;
3. tokenise, drop function words, unify British/American spelling
   (-ise/-ize, -our/-or) and stem with Snowball (``snowballstemmer``); mark
   the next few content words after a negation ("no", "never", "can't",
   "nobody"...) within the same clause as negated;
4. (manager's text only) an unknown word of 5+ letters one typing slip away
   from a catalogue word (swapped, dropped or extra letter, or a neighbouring
   key, same first letter) is read as that word, at reduced weight;
   capitalised words inside a sentence are taken for names and left alone.

Evidence is summed per influence from two channels:

The lexicon (hand-curated, from the catalogue):

- terms (stems and adjacent stem pairs): each weighs, per influence, the
  smoothed share ``p(influence | term)`` above the uniform 1/6, times how
  much catalogue text backs it; so "team" counts for nothing and "course" for
  a lot. Very common words count little on their own, fully inside a pair;
- the same kind of term weights learnt separately from the influences'
  example descriptions (whole sentences; mixed into the lexicon's shares
  they diluted them), added with ``_EXAMPLE_FACTOR``;
- cue phrases with two or more specific words, found in order within a short
  window, credited to the influence (and, less, the secondary influences)
  of the tool or influence that owns the cue.

The learnt channel: a multinomial naive Bayes over binary features (stems,
stem pairs, negated stems, 4- and 6-letter stem prefixes), trained on the
catalogue's cues, names, "when"s and examples and on the labelled gap
descriptions. Its log-likelihood above the least likely influence, times
``_NB_WEIGHT``, is added to the lexicon's evidence. It generalises where the
lexicon has no phrase: words seen in labelled descriptions, "not X" as
opposed to "X", word families the stemmer keeps apart.

Scores: the best influence's score is the confidence that there is evidence
at all, ``1 - exp(-raw / SCALE)``; each other influence's is that times
``exp(-(best raw - its raw) / SPREAD)``. So every score is in [0, 1], empty
text gives zeros, and the order is the order of evidence. Ties go to the
earlier influence in the order of diagnosis (environment before the
individual).

Measured accuracy: cross-validation over the labelled descriptions
(:mod:`dialogs.catalogue.evaluation`, run by tests/test_catalogue.py), and
the independent final set tests/data/gaps_eval.yaml, which is never trained on.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final

import snowballstemmer
import yaml

from dialogs.catalogue import INFLUENCE_IDS, Catalogue, CatalogueError, Influence

# libyaml's loader when PyYAML was built with it (as dialogs.catalogue does).
_YAML_LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

__all__ = [
    "LABELLED_PATH",
    "Evidence",
    "InfluenceScore",
    "LabelledGap",
    "TextScorer",
    "load_labelled",
    "normalise",
    "score_influences",
]

# A chat message is never this long; past it we read only the start, which
# keeps the time bounded whatever is pasted in (about 3,000 words).
MAX_CHARS: Final = 20_000
# Raw evidence at which the best score reaches 1 - 1/e (~0.63). The median
# gap description in tests/data carries about 15 (score ~0.85).
SCALE: Final = 8.0
# Evidence behind the best at which an influence's score is 1/e of the best's.
# Set so that, as before the learnt channel, the runner-up typically scores
# about 0.4 of the best and the third about 0.25: a check-in signal (0.1 to
# 0.45, dialogs/signals.py) can still lift a close runner-up, not a distant one.
SPREAD: Final = 7.0
# How many evidence items to keep per influence for the explanation.
MAX_EVIDENCE: Final = 6

# Weight of each catalogue field when learning term -> influence weights.
# Cues are written as a manager would say things, so they count most; the
# influence cues are a broad lexicon, so they outweigh any one tool's.
_W_INFLUENCE_CUE: Final = 4.0
_W_INFLUENCE_TEXT: Final = 1.0
_W_TOOL_CUE: Final = 2.0
_W_TOOL_NAME: Final = 1.0
_W_TOOL_WHEN: Final = 1.0
# Example gap descriptions are learnt as a channel of their own (mixed into
# the lexicon's term shares they diluted them); their evidence is added with
# this factor.
_EXAMPLE_FACTOR: Final = 1.0
# A tool's secondary influences receive this share of its words.
_SECONDARY_SHARE: Final = 0.3
# Additive smoothing of p(influence | term); keeps a term seen once in one
# influence from claiming certainty.
_ALPHA: Final = 0.15
# A term needs about this much total catalogue weight to be fully trusted.
_RELIABILITY_K: Final = 1.5
_BIGRAM_BOOST: Final = 1.5
# A word read through a typo correction counts this much: the guess may be wrong.
_CORRECTED: Final = 0.6
# Credit for a matched multi-word cue phrase, before its length bonus.
_CUE_CREDIT: Final = 1.0

# The learnt channel: multinomial naive Bayes over binary features (stems,
# stem pairs, negated stems, stem prefixes), trained on the catalogue's cues,
# "when"s, names and examples and on labelled gap descriptions. Tuned by
# 5-fold cross-validation over tests/data/gaps.yaml + gaps_dev.yaml
# (dialogs/catalogue/evaluation.py, 3 shuffles): top-1 0.841, top-3 0.954,
# against 0.788 / 0.946 for the lexicon alone with the training folds added
# as influence examples. On the gaps.yaml items alone (the independent
# author's) 0.732 / 0.926, against 0.643 / 0.902. The constants below sit on
# a plateau: alpha 0.05-0.2 and weight 0.25-0.6 all score within a point.
LABELLED_PATH: Final = Path(__file__).with_name("labelled_gaps.yaml")
# Additive smoothing of p(feature | influence).
_NB_ALPHA: Final = 0.1
# Evidence per nat of naive-Bayes log-likelihood above the least likely influence.
_NB_WEIGHT: Final = 0.4
# Stem prefixes added as features: a cheap way to let "recognition" meet
# "recognise", "miscategorised" meet "categories", and to give long (usually
# specific) words more say than short ones.
_NB_PREFIXES: Final = (4, 6)
# Naive-Bayes evidence items below this weight are not shown as reasons.
_NB_MIN_EVIDENCE: Final = 0.15

# Function words that say nothing about which influence is at play. Question
# words (what, how, who, why) are kept on purpose: "know how" points at
# skills, "know what" at expectations, "who decides" at roles.
_STOPWORDS: Final = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before being
    below between both but by can cant could couldnt did didnt do does doesnt doing dont down during
    each even ever every few for from further get gets getting got had hadnt has hasnt have havent
    having he hed hell hes her here hers herself him himself his i id ill im is isnt it its itself ive
    in into if per since whether ago across within around among onto via else many without
    just me more most much my myself no nor not now of off on once one or other our ours
    ourselves out over own quite rather really same seem seems she shed shell shes should shouldnt so
    some still such than that thats the their theirs them themselves then there these they theyd
    theyll theyre theyve this those through thus to too under until up upon us very was wasnt we wed
    well were werent weve whatever when whenever where which while will with wont would wouldnt yet
    you youd youll youre youve your yours yourself yourselves
    like lot lots bit thing things stuff etc ok okay guy guys someone somebody anyone anybody
    everyone everybody nobody noone always never sometimes often already actually basically
    honestly probably maybe perhaps simply kind sort
    """.split()
)
# Generic stems: everyday and business words that, alone, do not point at any
# influence ("client", "report", "role", "great", "meeting"). Alone they count
# little (_WEAK_UNIGRAM); inside a pair ("team lead", "red tape", "night
# shift") fully. A cue phrase needs two stems outside this set, otherwise
# "not what I asked for" would fire on "asked me what to do"; shorter cues
# still count through the word-pair channel. Curated from an audit of every
# single word the catalogue gives weight to. Skill topics ("presentations",
# "SQL") and role levels ("junior") set the scene rather than explain a gap.
_WEAK_STEMS: Final = frozenset(
    """
    what how who whi which where do go goe went gone get make made take took come came use say said
    want need know knew think thought see saw look give given put keep start work team peopl person
    time day week month year quarter new good bad well job two three four five half last next lot
    way ask tri right thing someth anyth everyth noth onli back
    accept best boss compani complet complex count differ discuss first hard hit import instead link
    listen main mark matter meant messag mix nobodi other project qualiti request set side signal small
    sure top ahead anywher big client custom data els fact far happen haul head in long lost offic
    perform reach report sat self sens spoken talk view wors age anoth base build cold context drive
    enter forev hand help hot hour left light meet miss open order pain pick pull re room share short
    sign space step switch tab tape test thin tie twelv weekend written afternoon along analyst
    brilliant constant cut design detail earli even fantast fast full great key leav let love morn move
    night option pace piec pictur place play point role singl strong whole wrong sharp squar factor bus
    away box bring busi call case drop easi exact extra feel fine flat front heart home hook hope less
    longer mean mile one perfect problem quicker rais scene sick stop taken tick word won land becom
    deep exampl forecast model old plan product proper read real rule seen sit walk watch write green
    curv manag group summer month mid size advic idea join
    junior senior present negoti excel sql python statist analysi complaint complain
    """.split()
)
# Alone, a weak stem counts this much (in a pair, e.g. "team lead", fully).
_WEAK_UNIGRAM: Final = 0.15
# Spelling variants the stemmer does not unify.
_VARIANTS: Final[Mapping[str, str]] = {
    "practise": "practice",
    "practised": "practiced",
    "practising": "practicing",
    "licence": "license",
    "licences": "licenses",
    "centre": "center",
    "centres": "centers",
    "judgement": "judgment",
    "programme": "program",
    "programmes": "programs",
    "okrs": "okr",
    # Snowball gives "developer" the stem of "development": a software team
    # is not a training need.
    "developer": "dev",
    "developers": "devs",
    "thru": "through",
    "w/o": "without",
}

_ISE = re.compile(r"(?<=[a-z]{3})is(e|ed|es|ing|ation|ations|er|ers)$")
_OUR = re.compile(r"(?<=[a-z]{3})our(s|ed|ing|ite|ites|able)?$")
_REPEATS = re.compile(r"([a-z])\1{2,}")
# "one-on-one", "one on one", "1:1", "1-to-1", "1on1" -> one token.
_ONE_ON_ONE = re.compile(r"\b(?:one|1)\s*(?:-|\s)?\s*(?:on|:|to|-)\s*(?:-|\s)?\s*(?:one|1)s?\b", re.IGNORECASE)
# "it's not a skills issue", "isn't about the tools": the manager rules that
# concept out (Mager & Pipe's "could they do it if their life depended on
# it?"), so the named word must not count for it.
_RULED_OUT = re.compile(
    r"\b(?:not|isnt|isn't|isn’t|wasnt|wasn't|wasn’t|no)\s+(?:really\s+|just\s+)?(?:a|an|about|the|due\s+to)?\s*"
    r"(?:lack\s+of\s+)?([^\W\d_]+(?:\s+[^\W\d_]+)?)\s+(?:problem|issue|gap|question|matter|thing)s?\b",
    re.IGNORECASE,
)
_RULED_OUT_SHORT = re.compile(
    r"\b(?:not|isnt|isn't|isn’t|wasnt|wasn't|wasn’t)\s+(?:really\s+|just\s+)?(?:about|due\s+to)\s+(?:the\s+|a\s+|an\s+|his\s+|her\s+|their\s+)?([^\W\d_]+)",
    re.IGNORECASE,
)
# Concepts that English says with function words, which the stopword filter
# would erase. Each pattern becomes one made-up token, in catalogue cues and
# manager text alike, so the catalogue decides which influence it points at.
_CONCEPTS: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(pattern, re.IGNORECASE), f" {token} ")
    for pattern, token in [
        # Could do it if their life depended on it (Mager & Pipe): not a skill gap.
        (
            r"\b(?:can|could|knows?\s+how\s+to|is\s+able\s+to|capable\s+of)\s+(?:do|doing|handle|handling)\s+"
            r"(?:it|this|that|the\s+job|the\s+work)\b",
            "zcando",
        ),
        (r"\b(?:done|did|does|do)\s+it\s+(?:well|fine|perfectly|brilliantly|right|properly|before)\b", "zcando"),
        (r"\b(?:seen|saw|watched)\s+(?:him|her|them)\s+do\s+(?:it|this|that)\b", "zcando"),
        # Only one person can do the task.
        (r"\bonly\s+(?:one|person|[a-z]+)\s+(?:who\s+|that\s+)?(?:knows|can|understands)\b", "zonlyone"),
        (
            r"\bwhen\s+(?:he|she|they)(?:'s|’s|s|\s+is|\s+are|'re|’re)?\s+"
            r"(?:off|sick|ill|away|out|on\s+(?:holiday|leave|vacation))\b",
            "zonlyone",
        ),
        (r"\b(?:nobody|no\s+one|none\s+of\s+us)\s+else\s+(?:can|knows|is\s+able|could|has)\b", "zonlyone"),
        # "This job isn't for him": the manager's own verdict on fit.
        (
            r"\b(?:isn't|isnt|is\s+not|not)\s+(?:really\s+)?(?:right\s+|meant\s+)?for\s+(?:him|her|them)\b",
            "znotforthem",
        ),
        # Good work that nobody acknowledges, or only ever hearing about mistakes.
        (
            r"\b(?:nobody|no\s+one|not\s+one\s+\w+(?:\s+from\s+\w+)?|never|forgot\s+to|didn't|didnt|did\s+not)\s+"
            r"(?:\w+\s+){0,2}?(?:acknowledg\w*|thank\w*|prais\w*|recogni[sz]\w*|celebrat\w*|says?\s+well\s+done|"
            r"said\s+well\s+done|says?\s+thanks|said\s+(?:a\s+word|anything|thanks))",
            "zunrecognised",
        ),
        (
            r"\bonly\s+(?:thing|time|times|feedback)\b[^.;]{0,60}?\b(?:mistakes?|wrong|problems?|errors?|complain\w*)\b",
            "zunrecognised",
        ),
        # Knowing how one is doing ("no idea how many", "know how well"), unlike
        # knowing how to do something.
        (
            r"\b(?:know|knows|knew|idea|clue|sense)\s+(?:of\s+)?how\s+(?:many|much|often|far|well|badly|fast|slow|"
            r"they're|they\s+are|he's|he\s+is|she's|she\s+is|it's|it\s+is)\b",
            "zhowdoing",
        ),
        (
            r"\bhow\s+(?:he|she|they|I|we)(?:'s|’s|s|'re|’re|\s+is|\s+are|\s+am)?\s+(?:doing|getting\s+on|performing|progressing)\b",
            "zhowdoing",
        ),
        # Who may decide what.
        (r"\b(?:allowed|permitted|authori[sz]ed|empowered)\s+to\b", "zallowed"),
        # The work is beyond the person's present capacity (DOMAIN.md: Job Fit).
        (
            r"\bbeyond\s+(?:him|her|them)\b|\btoo\s+(?:much|hard|heavy|demanding|fast)\s+for\s+(?:him|her|them)\b",
            "zcapacity",
        ),
        # Skill gap, said with function words.
        (
            r"\b(?:doesn't|doesnt|does\s+not|don't|dont|do\s+not|didn't|didnt|did\s+not)\s+know\s+how\s+to\b"
            r"|\bnever\s+(?:learned|learnt|been\s+taught|been\s+shown|been\s+trained)\s+(?:how\s+)?to\b"
            r"|\bno\s+(?:idea|clue)\s+how\s+to\b"
            r"|\bnever\s+(?:been\s+)?(?:walked|taken|talked)\s+through\b"
            r"|\bnever\s+(?:had|got|received)\s+(?:a\s+|any\s+)?(?:proper\s+|real\s+)?(?:session|training|induction|walkthrough|instruction)\b"
            r"|\b(?:doesn't|doesnt|does\s+not|don't|dont|do\s+not|didn't|didnt|did\s+not|never)\s+(?:really\s+|fully\s+)?understand(?:s|ood)?\b(?!\s+why)",
            "zskillgap",
        ),
        # Never done this kind of work (an object must follow: "consequences
        # are never used" is not about a person's experience).
        (
            r"\bnever\s+(?:done|used|run|led|managed|written|handled|had\s+to\s+\w+|worked\s+with)\s+(?:a|an|the|it|this|that|any|one|such)\b"
            r"|\bfor\s+the\s+first\s+time\b",
            "zfirsttime",
        ),
        # Work that seems pointless.
        (
            r"\b(?:see|sees|saw)\s+(?:the|any)\s+point\b|\bwhat'?s\s+the\s+point\b"
            r"|\b(?:see|sees|know|knows)\s+(?:how|why|who)\s+(?:it|this|that)\s+(?:helps|matters)\b",
            "znopoint",
        ),
        # The same result whatever the performance: consequences are not contingent.
        (
            r"\bno\s+matter\s+(?:how|what)\b|\bregardless\s+of\b|\bwhether\s+(?:they|you|he|she)\s+\w+\s+or\s+not\b",
            "zregardless",
        ),
        # Goals or results nobody looks at.
        (
            r"\b(?:no\s+one|nobody|never|haven't|havent|hasn't|hasnt|not)\s+(?:has\s+|have\s+|had\s+|even\s+|been\s+)?"
            r"(?:looked\s+at|checked|reviewed|revisited|opened|discussed)\s+(?:them|it|those|these)\b",
            "znotreviewed",
        ),
        # What a good result is.
        (
            r"\bwhat\s+(?:a\s+)?(?:good|great|success|done|finished|excellent)\s+(?:\w+\s+)?(?:looks?\s+like|means)\b"
            r"|\bwhat\s+(?:is|was|'s|’s)\s+expected\b",
            "zwhatgood",
        ),
        # Behaviour that stopped because of what it brings.
        (
            r"\bso\s+(?:nobody|no\s+one|people\s+(?:don't|dont|no\s+longer|have\s+stopped|stopped))\b"
            r"|\b(?:people|they|staff|everyone)\s+(?:have\s+)?stopped\s+(?:\w+ing)\b",
            "zavoid",
        ),
        # Consequences are never used.
        (
            r"\bnothing\s+(?:ever\s+|really\s+)?happens\b|\bgets?\s+away\s+with\b|\bno\s+consequences?\b",
            "znoconsequence",
        ),
        # Doing it right is punished with extra load.
        (
            r"\b(?:ends?\s+up|gets?\s+(?:stuck|lumbered|landed|saddled))\s+with\b|\bgets?\s+(?:all\s+)?the\s+(?:hard|hardest|worst)\b"
            r"|\bmore\s+work\s+(?:piled|dumped|landed|put)\b|\b(?:piled|dumped)\s+on\b"
            r"|\b(?:marked|scored|rated)\s+down\s+for\b|\b(?:penali[sz]ed|punished|blamed)\s+for\b",
            "zpunished",
        ),
    ]
)
# How a concept token reads in an explanation to the manager.
_CONCEPT_LABELS: Final[Mapping[str, str]] = {
    "zcando": "(they could do it)",
    "zonlyone": "(only one person can)",
    "ztriedall": "(fixes already tried)",
    "znotforthem": "(not right for them)",
    "zunrecognized": "(good work not acknowledged)",
    "zhowdoing": "(how they are doing)",
    "zallowed": "(who may decide)",
    "zcapacity": "(beyond their capacity)",
    "zskillgap": "(doesn't know how)",
    "zfirsttime": "(never done before)",
    "znopoint": "(no point)",
    "zregardless": "(regardless of results)",
    "znotreviewed": "(not looked at since)",
    "zwhatgood": "(what good looks like)",
    "zavoid": "(so people stopped)",
    "znoconsequence": "(nothing happens)",
    "zpunished": "(more work for doing well)",
}


def _readable(words: str) -> str:
    return " ".join(_CONCEPT_LABELS.get(word, word) for word in words.split(" "))


# The work hangs on one named person (a capitalised name: case matters here).
_DEPENDS_ON_ONE = re.compile(
    r"\b[Dd]epends?\s+(?:entirely\s+|completely\s+|only\s+)?on\s+(?:him|her|one\s+person|[A-Z][a-z]+)\b"
)
# A list of fixes already tried ("clear goals, new tools, training and a
# PIP"): Mager & Pipe's last resort. The listed fixes are history, not the
# problem, so they are replaced by one concept per fix instead of each
# voting for its own influence.
_FIX = (
    r"(?:(?:clear(?:er)?|new|better|specific|weekly|regular|more)\s+)?"
    r"(?:goals?|targets?|expectations|feedback|check-?ins?|one-on-ones?|1:1s?|tools?|equipment|laptop|"
    r"training|re-?training|courses?|coaching|a\s+coach|mentor(?:ing)?|a\s+mentor|pip|a\s+pip|"
    r"(?:an?\s+)?improvement\s+plan|support|workshops?)"
)
_TRIED_FIXES = re.compile(
    rf"\b{_FIX}(?:\s*(?:,|;|and|,\s*and)\s*(?:(?:a|an|the|some)\s+)?{_FIX}){{2,}}\b", re.IGNORECASE
)
_APOSTROPHES = re.compile(r"(?<=\w)['’‘`´ʼ](?=\w)")
# Words, and the punctuation that ends a clause (and with it a negation's scope).
_WORD_OR_BREAK = re.compile(r"[^\W_]+|[.,;:!?()\[\]\n\u2013\u2014]")
# Words that open a negation: the next few content words of the clause are
# read as "not X" by the learnt channel ("no aircon", "never been shown",
# "nobody notices"). Function words themselves are dropped from the terms.
_NEGATORS: Final = frozenset(
    """
    no not never nobody noone nothing none nor neither without cant cannot couldnt dont doesnt didnt isnt
    wasnt arent werent wont wouldnt hasnt havent hadnt shouldnt lack lacks lacking
    """.split()
)
# Words that start a new clause and so end a negation's scope.
_CLAUSE_WORDS: Final = frozenset("but and so because although though while whereas yet then".split())
_NEGATION_WINDOW: Final = 3
_SENTENCE_END = re.compile(r"[.!?:;\n]\s*$")


@dataclass(frozen=True, slots=True)
class Evidence:
    """One reason an influence scored: what was read, and what it matched.

    ``kind`` is ``"cue"`` (a catalogue cue phrase found in the text) or
    ``"word"`` (a word or word pair). ``found`` is the manager's own wording;
    ``matched`` the catalogue wording it was read as; ``tool_id`` the tool
    whose cue matched, if any.
    """

    kind: str
    found: str
    matched: str
    weight: float
    tool_id: str | None = None

    def __str__(self) -> str:
        if self.kind == "cue":
            return f'"{self.found}" (cue "{self.matched}")'
        if self.found != self.matched:
            return f'"{self.found}" (read as "{self.matched}")'
        return f'"{self.found}"'


@dataclass(frozen=True, slots=True)
class InfluenceScore:
    """How strongly the text points at one influence.

    ``score`` is in [0, 1]; ``evidence`` is strongest first (at most
    MAX_EVIDENCE items); ``tool_ids`` are tools of this influence whose cues
    matched, strongest first, so a dialog can offer them before the ranking.
    """

    influence: Influence
    score: float
    evidence: tuple[Evidence, ...]
    tool_ids: tuple[str, ...]

    @property
    def id(self) -> str:
        return self.influence.id


# --------------------------------------------------------------------------
# Normalisation and tokens
# --------------------------------------------------------------------------

_stemmer = snowballstemmer.stemmer("english")
# Snowball stemmer objects keep per-call state; guard the shared one.
_stem_lock = threading.Lock()


@lru_cache(maxsize=65_536)
def _stem(word: str) -> str:
    # Memoised: the pure-Python stemmer costs ~0.1 ms a word, and a handful
    # of words make up most of any text.
    with _stem_lock:
        return _stemmer.stemWord(word)


def normalise(text: str) -> str:
    """NFKC, no format characters, casefolded, accents stripped, plain apostrophes.

    Keeps the length roughly the same; used for display and matching alike.
    """
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _APOSTROPHES.sub("", text)


@lru_cache(maxsize=65_536)
def _canonical(word: str) -> str:
    """A normalised word with spelling variants unified (before stemming)."""
    word = _REPEATS.sub(r"\1\1", word)
    word = _VARIANTS.get(word, word)
    if len(word) >= 6:
        word = _ISE.sub(r"iz\1", word)
        word = _OUR.sub(r"or\1", word)
    return word


@dataclass(frozen=True, slots=True)
class _Token:
    surface: str  # the word as the manager wrote it (normalised)
    canonical: str  # spelling-unified form, before stemming
    name_like: bool  # capitalised inside a sentence: probably a name
    negated: bool = False  # within a few words after "no", "never", "can't"... in the same clause


def _tried_fixes_tokens(match: re.Match[str]) -> str:
    """One concept token per fix listed as already tried (at most four)."""
    fixes = match.group(0).count(",") + match.group(0).count(" and ") + 1
    return " ztriedall" * min(4, fixes) + " "


def _tokens(text: str) -> list[_Token]:
    """Content words of ``text`` in order, function words dropped."""
    raw = unicodedata.normalize("NFKC", text[:MAX_CHARS])
    raw = "".join(ch for ch in raw if unicodedata.category(ch) != "Cf")
    raw = _RULED_OUT.sub(lambda m: m.group(0).replace(m.group(1), " " * len(m.group(1))), raw)
    raw = _RULED_OUT_SHORT.sub(lambda m: m.group(0).replace(m.group(1), " " * len(m.group(1))), raw)
    raw = _TRIED_FIXES.sub(_tried_fixes_tokens, raw)
    raw = _DEPENDS_ON_ONE.sub(" zonlyone ", raw)
    for pattern, token in _CONCEPTS:
        raw = pattern.sub(token, raw)
    raw = _APOSTROPHES.sub("", raw)
    raw = _ONE_ON_ONE.sub(" oneonone ", raw)
    out: list[_Token] = []
    negation = 0  # content words still inside the current negation's scope
    for match in _WORD_OR_BREAK.finditer(raw):
        original = match.group()
        if not original[0].isalnum():  # a clause ends: so does any negation
            negation = 0
            continue
        # Plain ASCII needs only lower-casing (the common case, and much faster).
        word = original.lower() if original.isascii() else normalise(original)
        if word in _NEGATORS:
            negation = _NEGATION_WINDOW
        elif word in _CLAUSE_WORDS:
            negation = 0
        if not word or word in _STOPWORDS or (word.isdigit() and word != "360"):
            continue
        start = match.start()
        name_like = (
            original[:1].isupper()
            and not original.isupper()
            and start > 0
            and not _SENTENCE_END.search(raw[max(0, start - 3) : start])
        )
        canonical = _canonical(word)
        if canonical in _STOPWORDS:
            continue
        negated = negation > 0 and word not in _NEGATORS
        out.append(_Token(word, canonical, name_like, negated))
        if negated:
            negation -= 1
    return out


@lru_cache(maxsize=16_384)
def _known_tokens(text: str) -> tuple[_Token, ...]:
    """:func:`_tokens` of catalogue and training text, memoised: the same cue
    or example is read by the lexicon and the learnt channel, and again by
    every scorer built for cross-validation. Never used for a manager's text.
    """
    return tuple(_tokens(text))


def _catalogue_stems(text: str) -> list[str]:
    """The stems a catalogue phrase contributes (used to check cues are not empty)."""
    return [_stem(t.canonical) for t in _tokens(text)]


def _osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (adjacent swaps count 1), capped at limit+1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def _deletes(word: str, depth: int) -> set[str]:
    """All strings reachable from ``word`` by deleting up to ``depth`` letters."""
    frontier, seen = {word}, {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))} - seen
        seen |= frontier
    return seen


def _max_typos(word: str) -> int:
    # One slip per word: at distance 2 too many real words are neighbours
    # ("projector" / "project").
    return 0 if len(word) < 5 else 1


_KEYBOARD_ROWS: Final = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _keyboard_neighbours() -> Mapping[str, frozenset[str]]:
    where = {ch: (row, col) for row, keys in enumerate(_KEYBOARD_ROWS) for col, ch in enumerate(keys)}
    return {
        a: frozenset(b for b, (rb, cb) in where.items() if b != a and abs(ra - rb) <= 1 and abs(ca - cb) <= 1)
        for a, (ra, ca) in where.items()
    }


_NEIGHBOURS: Final = _keyboard_neighbours()


def _is_slip(typed: str, meant: str) -> bool:
    """Whether ``typed`` differs from ``meant`` by one plausible typing slip.

    Swapped neighbours, a dropped or doubled or extra letter, or one letter
    replaced by a key next to it. A substitution between distant keys
    ("tills"/"tells", "packing"/"picking") is more likely a different word.
    """
    if len(typed) == len(meant):
        diff = [i for i, (a, b) in enumerate(zip(typed, meant, strict=True)) if a != b]
        if len(diff) == 1:
            a, b = typed[diff[0]], meant[diff[0]]
            return b in _NEIGHBOURS.get(a, ())
        if len(diff) != 2 or diff[1] != diff[0] + 1:
            return False
        first, second = diff
        return typed[first] == meant[second] and typed[second] == meant[first]
    if abs(len(typed) - len(meant)) != 1:
        return False
    # A letter more or less at the end is usually another real word
    # ("charge"/"charger", "plan"/"plane"), not a slip.
    shorter, longer = sorted((typed, meant), key=len)
    return not longer.startswith(shorter)


# --------------------------------------------------------------------------
# The scorer
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)  # identity-hashed: cues go in sets
class _Cue:
    phrase: str
    stems: tuple[str, ...]  # distinct content stems, two or more
    owners: Mapping[str, float]  # influence id -> share of the credit
    tool_id: str | None


@dataclass(frozen=True, slots=True)
class LabelledGap:
    """A gap description and the influence its author judged to be at play."""

    text: str
    influence: str


def load_labelled(path: Path = LABELLED_PATH) -> tuple[LabelledGap, ...]:
    """Labelled gap descriptions from a YAML file (``version: 1``, ``items:``
    of ``text`` and ``influence``; other keys such as ``note`` are ignored).

    Raises :class:`CatalogueError` naming the file for anything invalid.
    """
    return _load_labelled(Path(path).resolve())


@lru_cache(maxsize=8)
def _load_labelled(path: Path) -> tuple[LabelledGap, ...]:
    source = str(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except OSError as exc:
        raise CatalogueError(f"cannot read: {exc.strerror or exc}", source=source) from exc
    except yaml.YAMLError as exc:
        raise CatalogueError(f"not valid YAML: {exc}", source=source) from exc
    if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("items"), list):
        raise CatalogueError("expected 'version: 1' and a list of 'items'", source=source)
    items: list[LabelledGap] = []
    for number, item in enumerate(data["items"], start=1):
        text = item.get("text") if isinstance(item, dict) else None
        influence = item.get("influence") if isinstance(item, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise CatalogueError(f"item #{number} has no text", source=source, field="text")
        if influence not in INFLUENCE_IDS:
            raise CatalogueError(
                f"item #{number}: unknown influence {influence!r}; expected one of {', '.join(INFLUENCE_IDS)}",
                source=source,
                field="influence",
            )
        items.append(LabelledGap(text.strip(), influence))
    return tuple(items)


def _nb_features(stems: Sequence[str], negated: Sequence[bool]) -> dict[str, str]:
    """The learnt channel's binary features of a text, each mapped to the term it came from.

    Stems, adjacent stem pairs (as in :func:`_terms`), stems inside a negation
    ("!stem"), and stem prefixes (">4stem", ">6stemxx").
    """
    features: dict[str, str] = {}
    for i, stem in enumerate(stems):
        features.setdefault(stem, stem)
        if i + 1 < len(stems) and stems[i + 1] != stem:
            pair = f"{stem} {stems[i + 1]}"
            features.setdefault(pair, pair)
        if negated[i]:
            features.setdefault("!" + stem, stem)
        for length in _NB_PREFIXES:
            if len(stem) > length:
                features.setdefault(f">{length}{stem[:length]}", stem)
    return features


@dataclass(frozen=True, slots=True)
class _Document:
    """A training document for the learnt channel: its features and who owns it."""

    features: frozenset[str]
    shares: Mapping[str, float]  # influence id -> weight of this document for it


def _document(text: str, shares: Mapping[str, float]) -> _Document:
    tokens = _known_tokens(text)
    stems = [_stem(t.canonical) for t in tokens]
    return _Document(frozenset(_nb_features(stems, [t.negated for t in tokens])), shares)


def _train_naive_bayes(documents: Iterable[_Document], ids: Sequence[str]) -> Mapping[str, tuple[float, ...]]:
    """Per feature, ``log p(feature | influence)`` for each of ``ids``, centred on its mean.

    Multinomial naive Bayes over binary features with additive smoothing;
    centring changes no ranking and makes each value the feature's vote for
    (positive) or against (negative) an influence.
    """
    counts: dict[str, list[float]] = {}
    totals = [0.0] * len(ids)
    column = {influence_id: n for n, influence_id in enumerate(ids)}
    for document in documents:
        for feature in document.features:
            row = counts.setdefault(feature, [0.0] * len(ids))
            for influence_id, share in document.shares.items():
                row[column[influence_id]] += share
                totals[column[influence_id]] += share
    denominators = [math.log(total + _NB_ALPHA * len(counts)) for total in totals]
    model: dict[str, tuple[float, ...]] = {}
    for feature, row in counts.items():
        logs = [math.log(count + _NB_ALPHA) - denominator for count, denominator in zip(row, denominators, strict=True)]
        mean = sum(logs) / len(logs)
        model[feature] = tuple(value - mean for value in logs)
    return model


class TextScorer:
    """Scores free text against one catalogue; build once, score many times.

    ``labelled`` are gap descriptions with their influence for the learnt
    channel to train on, besides the catalogue's own text; ``None`` (the
    default) reads the shipped ``labelled_gaps.yaml``, ``()`` uses none.
    Immutable after construction and safe to share between tasks.
    """

    def __init__(self, catalogue: Catalogue, labelled: Iterable[LabelledGap] | None = None) -> None:
        self._influences: tuple[Influence, ...] = catalogue.influences
        ids = [i.id for i in self._influences]
        term_mass: dict[str, Counter[str]] = defaultdict(Counter)
        example_mass: dict[str, Counter[str]] = defaultdict(Counter)
        vocabulary: Counter[str] = Counter()

        def learn(text: str, shares: Mapping[str, float], weight: float) -> list[str]:
            tokens = _known_tokens(text)
            stems = [_stem(t.canonical) for t in tokens]
            vocabulary.update(t.canonical for t in tokens)
            for term, boost, _position in _terms(stems):
                for influence_id, share in shares.items():
                    term_mass[term][influence_id] += weight * share * boost
            return stems

        cues: dict[tuple[str, ...], _Cue] = {}

        def add_cue(phrase: str, shares: Mapping[str, float], tool_id: str | None) -> None:
            weight = _W_TOOL_CUE if tool_id else _W_INFLUENCE_CUE
            stems = tuple(dict.fromkeys(learn(phrase, shares, weight)))
            if sum(stem not in _WEAK_STEMS for stem in stems) < 2:
                return  # a short cue is already counted as a word or word pair
            if stems in cues:  # the same phrase under two owners: share the credit
                merged = Counter(cues[stems].owners)
                merged.update(shares)
                total = sum(merged.values())
                cues[stems] = _Cue(cues[stems].phrase, stems, {k: v / total for k, v in merged.items()}, None)
            else:
                cues[stems] = _Cue(phrase, stems, dict(shares), tool_id)

        for influence in self._influences:
            own = {influence.id: 1.0}
            learn(f"{influence.name}. {influence.description}", own, _W_INFLUENCE_TEXT)
            for phrase in influence.cues:
                add_cue(phrase, own, None)
            for example in influence.examples:
                stems = [_stem(t.canonical) for t in _known_tokens(example)]
                vocabulary.update(t.canonical for t in _known_tokens(example))
                for term, boost, _position in _terms(stems):
                    example_mass[term][influence.id] += boost
        for tool in catalogue.tools:
            shares = {tool.influence: 1.0} | {s: _SECONDARY_SHARE for s in tool.secondary}
            total = sum(shares.values())
            shares = {k: v / total for k, v in shares.items()}
            learn(tool.name, shares, _W_TOOL_NAME)
            learn(tool.when, shares, _W_TOOL_WHEN)
            # Descriptions are written for people and full of connective words;
            # matching them made the dev set worse, so they are not learnt.
            for phrase in tool.cues:
                add_cue(phrase, shares, tool.id)

        self._term_weights: Mapping[str, Mapping[str, float]] = {
            term: _term_weight(mass, ids) for term, mass in term_mass.items()
        }
        self._example_weights: Mapping[str, Mapping[str, float]] = {
            term: _term_weight(mass, ids) for term, mass in example_mass.items()
        }
        self._cues: tuple[_Cue, ...] = tuple(cues.values())
        self._cues_by_stem: Mapping[str, tuple[_Cue, ...]] = _index_cues(self._cues)
        self._stem_of: Mapping[str, str] = {word: _stem(word) for word in vocabulary}
        self._known_stems = frozenset(self._stem_of.values())
        self._frequency: Mapping[str, int] = dict(vocabulary)
        index: dict[str, list[str]] = defaultdict(list)
        for word in vocabulary:
            for deleted in _deletes(word, _max_typos(word)):
                index[deleted].append(word)
        self._typo_index: Mapping[str, tuple[str, ...]] = {k: tuple(v) for k, v in index.items()}

        # The learnt channel's catalogue documents, kept so that
        # with_labelled() retrains it without rebuilding the lexicon.
        documents: list[_Document] = []
        for influence in self._influences:
            own = {influence.id: 1.0}
            documents.extend(_document(text, own) for text in (*influence.examples, *influence.cues))
        for tool in catalogue.tools:
            shares = {tool.influence: 1.0} | {s: _SECONDARY_SHARE for s in tool.secondary}
            documents.extend(_document(text, shares) for text in (*tool.cues, tool.when, tool.name))
        self._catalogue_documents: tuple[_Document, ...] = tuple(documents)
        self._model: Mapping[str, tuple[float, ...]] = {}
        self._train(load_labelled() if labelled is None else labelled)

    def _train(self, labelled: Iterable[LabelledGap]) -> None:
        ids = [i.id for i in self._influences]
        known = set(ids)
        extra = [_document(item.text, {item.influence: 1.0}) for item in labelled if item.influence in known]
        self._model = _train_naive_bayes((*self._catalogue_documents, *extra), ids)

    def with_labelled(self, labelled: Iterable[LabelledGap]) -> TextScorer:
        """A scorer with the same catalogue whose learnt channel is trained on ``labelled`` instead.

        Shares the (costly) lexicon with this one; used for cross-validation.
        """
        clone = object.__new__(TextScorer)
        clone.__dict__.update(self.__dict__)
        clone._train(labelled)
        return clone

    # -- reading the manager's text ---------------------------------------

    def _correct(self, token: _Token) -> str:
        """The catalogue word ``token`` most likely means, or its own form."""
        word = token.canonical
        if word in self._stem_of or _stem(word) in self._known_stems or token.name_like:
            return word
        limit = _max_typos(word)
        if limit == 0 or not word.isalpha():
            return word
        best: tuple[int, int, str] | None = None
        for deleted in _deletes(word, limit):
            for candidate in self._typo_index.get(deleted, ()):
                # Real typos rarely change the first letter; requiring it keeps
                # real words ("centre", "status") from being "corrected".
                if candidate[0] != word[0]:
                    continue
                distance = _osa_distance(word, candidate, limit)
                if distance > limit or not _is_slip(word, candidate):
                    continue
                key = (distance, -self._frequency[candidate], candidate)
                if best is None or key < best:
                    best = key
        return best[2] if best else word

    def score(self, text: str) -> list[InfluenceScore]:
        """All six influences, best first; see :func:`score_influences`."""
        raw, evidence, tool_credit = self._read(text)
        best = max(raw.values())
        confidence = 1.0 - math.exp(-best / SCALE) if best > 0 else 0.0
        order = {influence.id: position for position, influence in enumerate(self._influences)}
        results = [
            InfluenceScore(
                influence=influence,
                score=round(confidence * math.exp((raw[influence.id] - best) / SPREAD), 6) if best > 0 else 0.0,
                evidence=tuple(sorted(evidence[influence.id], key=lambda e: -e.weight)[:MAX_EVIDENCE]),
                tool_ids=tuple(t for t, _ in tool_credit[influence.id].most_common()),
            )
            for influence in self._influences
        ]
        # Sort on raw evidence (scores may round equal); ties follow diagnosis order.
        results.sort(key=lambda r: (-raw[r.id], order[r.id]))
        return results

    def ranking(self, text: str) -> list[str]:
        """The influence ids, best first (what :meth:`score` orders by, without the explanations)."""
        raw = self._read(text)[0]
        order = {influence.id: position for position, influence in enumerate(self._influences)}
        return sorted(raw, key=lambda i: (-raw[i], order[i]))

    def _read(self, text: str) -> tuple[dict[str, float], dict[str, list[Evidence]], dict[str, Counter[str]]]:
        """Raw evidence per influence, the reasons for it, and the tools whose cues matched."""
        tokens = _tokens(text or "")
        corrections: dict[str, str] = {}
        stems: list[str] = []
        surfaces: list[str] = []
        readings: list[str] = []
        negated = [token.negated for token in tokens]
        for token in tokens:
            if token.canonical not in corrections:
                corrections[token.canonical] = self._correct(token)
            reading = corrections[token.canonical]
            stems.append(self._stem_of.get(reading) or _stem(reading))
            surfaces.append(token.surface)
            readings.append(reading)

        raw: dict[str, float] = {i.id: 0.0 for i in self._influences}
        evidence: dict[str, list[Evidence]] = defaultdict(list)
        word_weight: dict[str, Counter[str]] = defaultdict(Counter)  # influence -> term -> evidence
        tool_credit: dict[str, Counter[str]] = defaultdict(Counter)

        # Terms: sub-linear in repeats, so a long text cannot win on one word.
        counts: Counter[str] = Counter()
        first_seen: dict[str, tuple[str, str]] = {}
        for term, _boost, position in _terms(stems):
            counts[term] += 1
            if term not in first_seen:
                width = 2 if " " in term else 1
                first_seen[term] = (
                    _readable(" ".join(surfaces[position : position + width])),
                    _readable(" ".join(readings[position : position + width])),
                )
        for term, count in counts.items():
            lexicon = self._term_weights.get(term, {})
            examples = self._example_weights.get(term, {})
            if not lexicon and not examples:
                continue
            repeat = 1.0 + math.log(count)
            if term in _WEAK_STEMS:
                repeat *= _WEAK_UNIGRAM
            found, matched = first_seen[term]
            if found != matched:
                repeat *= _CORRECTED
            for influence_id in lexicon.keys() | examples.keys():
                weight = lexicon.get(influence_id, 0.0) + _EXAMPLE_FACTOR * examples.get(influence_id, 0.0)
                gained = weight * repeat
                if gained <= 0.0:
                    continue
                raw[influence_id] += gained
                word_weight[influence_id][term] += gained

        # Cue phrases: each counts once, however often it recurs.
        positions: dict[str, list[int]] = defaultdict(list)
        for index, stem in enumerate(stems):
            positions[stem].append(index)
        candidates = {cue for stem in positions for cue in self._cues_by_stem.get(stem, ())}
        for cue in sorted(candidates, key=lambda c: c.phrase):
            span = _match_span(cue.stems, positions)
            if span is None:
                continue
            credit = _CUE_CREDIT * (1.0 + 0.25 * (len(cue.stems) - 2))
            found = _readable(" ".join(surfaces[span[0] : span[1] + 1]))
            for influence_id, share in cue.owners.items():
                raw[influence_id] += credit * share
                weight = credit * share
                evidence[influence_id].append(Evidence("cue", found, _readable(cue.phrase), weight, cue.tool_id))
                if cue.tool_id is not None:
                    tool_credit[influence_id][cue.tool_id] += credit * share

        # The learnt channel: naive-Bayes log-likelihood per influence, as
        # evidence above the least likely one (so no evidence at all stays 0).
        ids = [i.id for i in self._influences]
        likelihood = [0.0] * len(ids)
        votes: dict[str, list[float]] = {}
        # A word the learnt channel knows as written is read as written: the
        # typo correction only knows the catalogue's words ("committee" is
        # not a slip for "committed").
        learnt_stems = [
            own if (own := _stem(token.canonical)) in self._model else stem
            for token, stem in zip(tokens, stems, strict=True)
        ]
        for feature, term in _nb_features(learnt_stems, negated).items():
            row = self._model.get(feature)
            if row is None:
                continue
            likelihood = [a + b for a, b in zip(likelihood, row, strict=True)]
            if term in first_seen:
                tally = votes.setdefault(term, [0.0] * len(ids))
                votes[term] = [a + b for a, b in zip(tally, row, strict=True)]
        floor = min(likelihood)
        for n, influence_id in enumerate(ids):
            raw[influence_id] += _NB_WEIGHT * (likelihood[n] - floor)
        for term, row in votes.items():
            for n, influence_id in enumerate(ids):
                if _NB_WEIGHT * row[n] >= _NB_MIN_EVIDENCE or term in word_weight[influence_id]:
                    word_weight[influence_id][term] += max(0.0, _NB_WEIGHT * row[n])
        for influence_id, weights in word_weight.items():
            for term, weight in weights.items():
                found, matched = first_seen[term]
                evidence[influence_id].append(Evidence("word", found, matched, weight))

        return raw, evidence, tool_credit


def _terms(stems: Sequence[str]) -> Iterable[tuple[str, float, int]]:
    """(term, weight boost, position of its first word): every stem and adjacent pair ("a b")."""
    for i, stem in enumerate(stems):
        yield stem, 1.0, i
        if i + 1 < len(stems) and stems[i + 1] != stem:
            yield f"{stem} {stems[i + 1]}", _BIGRAM_BOOST, i


def _term_weight(mass: Mapping[str, float], ids: Sequence[str]) -> Mapping[str, float]:
    """Per-influence weight of a term from its catalogue mass.

    The smoothed ``p(influence | term)`` above the uniform baseline, rescaled
    to [0, 1], times the term's reliability (how much catalogue text backs
    it). A term spread evenly over the six influences weighs nothing; one
    that only a single influence uses, often, weighs nearly 1.
    """
    total = sum(mass.values())
    baseline = 1.0 / len(ids)
    reliability = total / (total + _RELIABILITY_K)
    weights: dict[str, float] = {}
    for influence_id in ids:
        p = (mass.get(influence_id, 0.0) + _ALPHA) / (total + _ALPHA * len(ids))
        if p > baseline:
            weights[influence_id] = (p - baseline) / (1.0 - baseline) * reliability
    return weights


def _index_cues(cues: Iterable[_Cue]) -> Mapping[str, tuple[_Cue, ...]]:
    by_stem: dict[str, list[_Cue]] = defaultdict(list)
    for cue in cues:
        for stem in cue.stems:
            by_stem[stem].append(cue)
    return {k: tuple(v) for k, v in by_stem.items()}


def _match_span(stems: Sequence[str], positions: Mapping[str, Sequence[int]]) -> tuple[int, int] | None:
    """The first span of content words holding the cue's stems in the cue's order.

    Gaps are allowed, but the span may hold at most one extra word per cue
    word: "nobody ever points them out" matches "nobody points out"; words a
    page apart, or in the other order ("reporting stops" for "stopped
    reporting"), do not.
    """
    if any(stem not in positions for stem in stems):
        return None
    window = 2 * len(stems)
    for start in positions[stems[0]]:
        cursor = start
        for stem in stems[1:]:
            following = _next_after(positions[stem], cursor)
            if following is None or following - start >= window:
                break
            cursor = following
        else:
            return start, cursor
    return None


def _next_after(sorted_positions: Sequence[int], after: int) -> int | None:
    """The first element of ``sorted_positions`` greater than ``after`` (O(log n))."""
    i = bisect.bisect_right(sorted_positions, after)
    return sorted_positions[i] if i < len(sorted_positions) else None


@lru_cache(maxsize=8)
def _scorer_for(catalogue: Catalogue) -> TextScorer:
    # Catalogues are immutable and identity-hashed, so the index built from
    # one is valid for its lifetime; building takes under a second.
    return TextScorer(catalogue)


def score_influences(text: str, catalogue: Catalogue) -> list[InfluenceScore]:
    """Score how strongly ``text`` points at each of the six influences.

    Returns all six, best first, each with a score in [0, 1] and the evidence
    (cue phrases and words) that drove it. Empty or wordless text scores 0
    everywhere (still in diagnosis order). Only the first MAX_CHARS characters
    are read, so time is bounded. Deterministic and offline. The scorer for a
    catalogue (lexicon plus the naive Bayes trained on the shipped labelled
    descriptions) is built on first use, in about a second, and memoised.
    """
    return _scorer_for(catalogue).score(text)


def content_words(text: str) -> list[tuple[str, str]]:
    """(stem, word as written, normalised) for each content word of `text`, in order: the same tokenising,
    spelling unification and stemming the scorer uses, for other offline text work (retro themes)."""
    return [(_stem(t.canonical), t.surface) for t in _tokens(text) if t.surface not in _CONCEPT_LABELS]
