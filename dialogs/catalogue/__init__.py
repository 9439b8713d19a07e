"""The tool catalogue behind "Which tool helps?".

The catalogue is versioned data (``tools.yaml`` beside this file): the six
influences on performance, in their order of diagnosis, and the tools a manager
can apply to each, with the time to apply them, their cost and the hints that
point at them. An organisation may ship its own file that adds tools or
overrides shipped ones field by field.

Public surface:

- :func:`load_catalogue` reads, merges and validates; it fails fast with a
  :class:`CatalogueError` that names the file, the tool id and the field.
- :class:`Catalogue` is immutable; ``influences`` (diagnosis order),
  ``tools``, :meth:`Catalogue.get`, :meth:`Catalogue.tools_for`.
- :func:`rank_tools` is pure: cheapest and fastest first, adjusted by how the
  tools have worked in this organisation.

Free-text understanding lives in :mod:`dialogs.catalogue.text`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from dialogs.engine.errors import ConfigurationError

__all__ = [
    "CATALOGUE_PATH",
    "COSTS",
    "FACTS",
    "INFLUENCE_IDS",
    "SIGNALS",
    "TIMES",
    "Catalogue",
    "CatalogueError",
    "Cost",
    "Influence",
    "InfluenceId",
    "RankedTool",
    "Signal",
    "Time",
    "Tool",
    "load_catalogue",
    "rank_tools",
]

CATALOGUE_PATH: Final = Path(__file__).with_name("tools.yaml")
_YAML_LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SUPPORTED_VERSION: Final = 1

InfluenceId = Literal["expectations", "feedback", "resources", "job_fit", "training", "motivations"]
Signal = Literal[
    "blockers_reported",
    "goal_missing",
    "goal_unspecific",
    "goal_behind",
    "feedback_gap",
    "pulse_falling",
    "pulse_low",
    "participation_low",
    "low_360",
    "role_change",
    "new_in_role",
    "rare_task",
]
# Enum orders double as ranking orders: earlier is cheaper / faster.
Time = Literal["minutes", "hours", "days", "weeks", "months"]
Cost = Literal["low", "medium", "high"]

INFLUENCE_IDS: Final[tuple[str, ...]] = get_args(InfluenceId)
SIGNALS: Final[frozenset[str]] = frozenset(get_args(Signal))
TIMES: Final[tuple[str, ...]] = get_args(Time)
COSTS: Final[tuple[str, ...]] = get_args(Cost)
# What a diagnosis can establish: an answer to an influence's diagnostic question
# ("expectations:no" = they do not know what good looks like), or a signal.
FACTS: Final[frozenset[str]] = frozenset(f"{i}:{a}" for i in INFLUENCE_IDS for a in ("yes", "no")) | SIGNALS

ToolId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=64)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class CatalogueError(ConfigurationError):
    """The catalogue (shipped or an organisation's own) is invalid.

    ``source`` is the file, ``tool_id`` and ``field`` say where (``None`` when
    the problem is not about one tool or field); the message says what.
    """

    def __init__(self, message: str, *, source: str, tool_id: str | None = None, field: str | None = None) -> None:
        self.source = source
        self.tool_id = tool_id
        self.field = field
        where = source
        if tool_id is not None:
            where += f": tool '{tool_id}'"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")


class _Frozen(BaseModel):
    # extra="forbid": a misspelt key in YAML (e.g. "signal:") must fail loudly,
    # not be silently dropped.
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Influence(_Frozen):
    """One of the six influences on performance."""

    id: InfluenceId
    name: Text
    description: Text
    order: int = Field(ge=1, le=6, description="Position in the order of diagnosis (1 = check first).")
    cues: tuple[Text, ...] = Field(
        default=(), description="Words pointing at the influence as a whole; used by the text scorer."
    )
    examples: tuple[Text, ...] = Field(
        default=(), description="Gap descriptions, as a manager writes them, where this influence is at play."
    )


class Tool(_Frozen):
    """A remedy a manager can apply; ``influence`` is the one it mainly acts on."""

    id: ToolId
    name: Text
    influence: InfluenceId
    secondary: tuple[InfluenceId, ...] = ()
    time: Time
    time_label: Text
    cost: Cost
    description: Text
    when: Text = Field(description='Completes the sentence "Helps when ...".')
    signals: tuple[Signal, ...]
    cues: tuple[Text, ...] = Field(min_length=1)
    follow_up: Text
    not_when: tuple[str, ...] = Field(
        default=(),
        description="Facts that contradict `when` (an answer like 'training:no', or a signal): never offered then.",
    )

    @field_validator("not_when")
    @classmethod
    def _facts_known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - FACTS)
        if unknown:
            raise ValueError(f"unknown fact {unknown[0]!r}; use '<influence>:yes|no' or a signal name")
        return value

    def contradicted_by(self, facts: frozenset[str] | set[str]) -> bool:
        """True when what is known about the gap contradicts the tool's "helps when"."""
        return not facts.isdisjoint(self.not_when)

    @field_validator("secondary")
    @classmethod
    def _secondary_differs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("lists an influence twice")
        return value

    @field_validator("follow_up")
    @classmethod
    def _follow_up_is_question(cls, value: str) -> str:
        if not value.endswith("?"):
            raise ValueError("must be a question ending in '?'")
        return value

    @property
    def effort(self) -> tuple[int, int]:
        """(cost rank, time rank): smaller is cheaper, then faster."""
        return COSTS.index(self.cost), TIMES.index(self.time)


@dataclass(frozen=True, slots=True, eq=False)
class Catalogue:
    """A validated, immutable catalogue.

    ``influences`` are in order of diagnosis; ``tools`` keep file order (shipped
    first, then an organisation's additions). Identity-hashed, so derived
    indexes (e.g. the text scorer's) can be memoised per catalogue.
    """

    version: int
    influences: tuple[Influence, ...]
    tools: tuple[Tool, ...]
    _by_id: Mapping[str, Tool] = field(init=False, repr=False)
    _influence_by_id: Mapping[str, Influence] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "influences", tuple(sorted(self.influences, key=lambda i: i.order)))
        object.__setattr__(self, "_by_id", MappingProxyType({t.id: t for t in self.tools}))
        object.__setattr__(self, "_influence_by_id", MappingProxyType({i.id: i for i in self.influences}))

    def __iter__(self) -> Iterator[Tool]:
        return iter(self.tools)

    def __len__(self) -> int:
        return len(self.tools)

    def get(self, tool_id: str) -> Tool | None:
        """The tool with this id, or ``None`` if the catalogue has none."""
        return self._by_id.get(tool_id)

    def influence(self, influence_id: str) -> Influence:
        """The influence with this id; ``KeyError`` for an unknown id."""
        return self._influence_by_id[influence_id]

    def tools_for(self, influence: str, *, include_secondary: bool = False) -> tuple[Tool, ...]:
        """Tools whose primary influence is ``influence`` (in file order).

        With ``include_secondary``, tools that list it as a secondary influence
        follow the primary ones. ``KeyError`` for an unknown influence id, so a
        typo does not look like an empty shelf.
        """
        if influence not in self._influence_by_id:
            raise KeyError(f"unknown influence {influence!r}; expected one of {', '.join(INFLUENCE_IDS)}")
        primary = tuple(t for t in self.tools if t.influence == influence)
        if not include_secondary:
            return primary
        return primary + tuple(t for t in self.tools if influence in t.secondary)


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def load_catalogue(extra: Path | None = None) -> Catalogue:
    """Load the shipped catalogue, merged with an organisation's own file.

    ``extra`` (optional) is a YAML file with ``version: 1`` and ``tools:``. A
    tool whose id is already in the catalogue overrides it field by field (only
    the fields it gives change); a new id adds a tool and must give every
    field. Raises :class:`CatalogueError` naming the file, tool id and field
    for anything invalid: unknown influence or signal, bad time or cost,
    missing or unknown field, duplicate id.
    """
    base = _read_yaml(CATALOGUE_PATH)
    source = CATALOGUE_PATH.name
    _check_top(base, source, allowed={"version", "influences", "tools"})
    influences = _parse_influences(base.get("influences"), source)
    raw_tools: dict[str, dict[str, Any]] = {}
    origin: dict[str, str] = {}
    for raw in _tool_entries(base, source):
        tool_id = _tool_id(raw, source)
        if tool_id in raw_tools:
            raise CatalogueError("duplicate id", source=source, tool_id=tool_id, field="id")
        raw_tools[tool_id], origin[tool_id] = dict(raw), source

    if extra is not None:
        data = _read_yaml(extra)
        extra_source = str(extra)
        _check_top(data, extra_source, allowed={"version", "tools"})
        seen: set[str] = set()
        for raw in _tool_entries(data, extra_source):
            tool_id = _tool_id(raw, extra_source)
            if tool_id in seen:
                raise CatalogueError("duplicate id", source=extra_source, tool_id=tool_id, field="id")
            seen.add(tool_id)
            # Partial override: the organisation's fields win, the rest stay.
            raw_tools[tool_id] = {**raw_tools.get(tool_id, {}), **raw}
            origin[tool_id] = extra_source

    tools = tuple(_parse_tool(raw, origin[tool_id]) for tool_id, raw in raw_tools.items())
    catalogue = Catalogue(version=base["version"], influences=influences, tools=tools)
    for influence in catalogue.influences:
        if not catalogue.tools_for(influence.id):
            raise CatalogueError(f"influence '{influence.id}' has no tools", source=source, field="tools")
    return catalogue


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        # libyaml's loader when PyYAML was built with it: 10x faster, same result.
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except OSError as exc:
        raise CatalogueError(f"cannot read: {exc.strerror or exc}", source=str(path)) from exc
    except yaml.YAMLError as exc:
        raise CatalogueError(f"not valid YAML: {exc}", source=str(path)) from exc
    if not isinstance(data, dict):
        raise CatalogueError("expected a mapping with 'version' and 'tools'", source=str(path))
    return data


def _check_top(data: Mapping[str, Any], source: str, *, allowed: set[str]) -> None:
    if data.get("version") != SUPPORTED_VERSION:
        raise CatalogueError(
            f"unsupported version {data.get('version')!r}; this Baton reads version {SUPPORTED_VERSION}",
            source=source,
            field="version",
        )
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise CatalogueError(
            f"unknown top-level key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}",
            source=source,
            field=unknown[0],
        )


def _parse_influences(raw: Any, source: str) -> tuple[Influence, ...]:
    if not isinstance(raw, list):
        raise CatalogueError("expected a list of the six influences", source=source, field="influences")
    parsed: list[Influence] = []
    for entry in raw:
        name = entry.get("id", "?") if isinstance(entry, dict) else "?"
        try:
            parsed.append(Influence.model_validate(entry))
        except ValidationError as exc:
            field_name, message = _first_error(exc)
            raise CatalogueError(
                f"influence '{name}': {message}", source=source, field=f"influences.{field_name}"
            ) from exc
    ids = [i.id for i in parsed]
    orders = sorted(i.order for i in parsed)
    if sorted(ids) != sorted(INFLUENCE_IDS) or orders != list(range(1, 7)):
        raise CatalogueError(
            "must list each of the six influences once, with orders 1 to 6", source=source, field="influences"
        )
    return tuple(parsed)


def _tool_entries(data: Mapping[str, Any], source: str) -> list[Mapping[str, Any]]:
    raw = data.get("tools")
    if not isinstance(raw, list):
        raise CatalogueError("expected a list of tools", source=source, field="tools")
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise CatalogueError(f"tool #{index + 1} is not a mapping", source=source, field="tools")
    return raw


def _tool_id(raw: Mapping[str, Any], source: str) -> str:
    tool_id = raw.get("id")
    if not isinstance(tool_id, str) or not tool_id.strip():
        raise CatalogueError(
            f"a tool has no id (name: {raw.get('name', '?')!r})", source=source, tool_id="?", field="id"
        )
    return tool_id.strip()


def _parse_tool(raw: Mapping[str, Any], source: str) -> Tool:
    try:
        return Tool.model_validate(raw)
    except ValidationError as exc:
        field_name, message = _first_error(exc)
        raise CatalogueError(message, source=source, tool_id=str(raw.get("id")), field=field_name) from exc


def _first_error(exc: ValidationError) -> tuple[str, str]:
    """The first pydantic error as (dotted field path, message with the bad value)."""
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    # Point at the field, not at a list index: "signals" rather than "signals.2".
    field_name = ".".join(p for p in loc if not p.isdigit()) or "?"
    message = error["msg"]
    if error["type"] == "missing":
        message = "missing required field"
    elif "input" in error and error["type"] != "extra_forbidden":
        message = f"{message} (got {error['input']!r})"
    elif error["type"] == "extra_forbidden":
        message = "unknown field"
    return field_name, message


# --------------------------------------------------------------------------
# Ranking
# --------------------------------------------------------------------------

# Beta(2, 2) prior on "this tool works here": mean 0.5, and a single outcome
# moves it only to 0.4 or 0.6, so one failure cannot bury a tool.
_PRIOR_WORKED: Final = 2.0
_PRIOR_FAILED: Final = 2.0
# One cost step is worth len(TIMES) effort points, so without history cost
# strictly dominates time (cheapest first, then fastest).
_COST_STEP: Final = len(TIMES)
# Effort points per unit of (prior mean - posterior mean). At 20, one failure
# costs 2 points (two time steps), 0 of 5 costs ~5.6 (more than a cost step),
# and 3 of 4 gains 2.5.
_HISTORY_WEIGHT: Final = 20.0


@dataclass(frozen=True, slots=True)
class RankedTool:
    """A suggestion: the tool, why it is suggested, and its ranking inputs.

    ``success_rate`` is the smoothed estimate used (prior mean 0.5 with no
    history); ``history`` is ``(worked, tried)`` here, or ``None`` if untried.
    Lower ``score`` ranks first.
    """

    tool: Tool
    why: str
    score: float
    success_rate: float
    history: tuple[int, int] | None


def rank_tools(
    catalogue: Catalogue,
    influence: str,
    *,
    outcomes: Mapping[str, tuple[int, int]] | None = None,
    limit: int | None = 3,
) -> list[RankedTool]:
    """Order the tools for ``influence``: cheapest, then fastest, then learned.

    ``outcomes`` maps tool id -> ``(worked, tried)`` within this organisation;
    ids not in the catalogue are ignored, ``worked`` is clamped to
    ``0..tried``. The learned adjustment uses a Beta(2, 2)-smoothed success
    rate, so a tool that keeps failing sinks and one that keeps working rises,
    but a single outcome moves a tool only a little. Ties keep catalogue
    order. ``limit=None`` returns every tool. Pure: no I/O, inputs untouched.
    """
    outcomes = outcomes or {}
    prior_mean = _PRIOR_WORKED / (_PRIOR_WORKED + _PRIOR_FAILED)
    ranked: list[RankedTool] = []
    for tool in catalogue.tools_for(influence):
        history = _clean_history(outcomes.get(tool.id))
        worked, tried = history or (0, 0)
        rate = (worked + _PRIOR_WORKED) / (tried + _PRIOR_WORKED + _PRIOR_FAILED)
        cost_rank, time_rank = tool.effort
        score = cost_rank * _COST_STEP + time_rank + _HISTORY_WEIGHT * (prior_mean - rate)
        ranked.append(RankedTool(tool, _why(tool, history), score, rate, history))
    # sorted() is stable: equal scores keep catalogue order.
    ranked.sort(key=lambda r: r.score)
    return ranked if limit is None else ranked[: max(limit, 0)]


def _clean_history(raw: Sequence[int] | None) -> tuple[int, int] | None:
    if raw is None:
        return None
    worked, tried = int(raw[0]), int(raw[1])
    if tried <= 0:
        return None
    return min(max(worked, 0), tried), tried


def _why(tool: Tool, history: tuple[int, int] | None) -> str:
    why = f"Helps when {tool.when}. {tool.cost.capitalize()} cost; {tool.time_label}."
    if history is not None:
        worked, tried = history
        why += f" It has worked {worked} of {tried} {'time' if tried == 1 else 'times'} here."
    return why
