"""The tool catalogue: loading and validation, ranking, and free-text scoring.

Plain tests, no database. The text scorer learns from labelled gap
descriptions: tests/data/gaps.yaml (written independently of the catalogue)
and tests/data/gaps_dev.yaml (the catalogue author's), shipped to it as
dialogs/catalogue/labelled_gaps.yaml. Its generalisation is measured here by
cross-validation over those two; the final evaluation set,
tests/data/gaps_eval.yaml, is written by someone else, never trained on, and
held to the feature's targets by the last test.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from dialogs.catalogue import (
    INFLUENCE_IDS,
    SIGNALS,
    Catalogue,
    CatalogueError,
    Tool,
    load_catalogue,
    rank_tools,
)
from dialogs.catalogue.evaluation import accuracy, cross_validate
from dialogs.catalogue.text import LABELLED_PATH, LabelledGap, TextScorer, load_labelled, normalise, score_influences

DATA = Path(__file__).parent / "data"

A_TOOL = {
    "id": "team-charter",
    "name": "Team charter",
    "influence": "expectations",
    "time": "days",
    "time_label": "a half-day workshop",
    "cost": "low",
    "description": "Write down together what the team is for and how it works.",
    "when": "nobody can say what the team is for",
    "signals": ["goal_missing"],
    "cues": ["what is this team for"],
    "follow_up": "Since the charter, can everyone say what the team is for?",
}


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def write_extra(tmp_path: Path, tools: list[dict[str, object]], **top: object) -> Path:
    path = tmp_path / "org_tools.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "tools": tools, **top}, sort_keys=False), encoding="utf-8")
    return path


def ranked_ids(catalogue: Catalogue, influence: str, **kwargs: object) -> list[str]:
    return [r.tool.id for r in rank_tools(catalogue, influence, limit=None, **kwargs)]


# --------------------------------------------------------------------------
# The shipped catalogue
# --------------------------------------------------------------------------


def test_shipped_catalogue_loads_with_enough_tools(catalogue: Catalogue) -> None:
    assert catalogue.version == 1
    assert len(catalogue.tools) >= 42
    assert len({t.id for t in catalogue.tools}) == len(catalogue.tools)


def test_influences_are_the_six_in_diagnosis_order(catalogue: Catalogue) -> None:
    assert [i.id for i in catalogue.influences] == [
        "expectations",
        "feedback",
        "resources",
        "motivations",
        "training",
        "job_fit",
    ]
    assert [i.order for i in catalogue.influences] == [1, 2, 3, 4, 5, 6]
    assert {i.id: i.name for i in catalogue.influences} == {
        "expectations": "Expectations",
        "feedback": "Feedback",
        "resources": "Resources",
        "job_fit": "Job Fit",
        "training": "Training & Development",
        "motivations": "Motivations",
    }


@pytest.mark.parametrize("influence", INFLUENCE_IDS)
def test_every_influence_has_tools(catalogue: Catalogue, influence: str) -> None:
    tools = catalogue.tools_for(influence)
    assert len(tools) >= 5
    assert all(t.influence == influence for t in tools)


def test_every_tool_is_complete_and_valid(catalogue: Catalogue) -> None:
    for tool in catalogue.tools:
        # Re-validating the dumped model proves every field passes the schema.
        assert Tool.model_validate(tool.model_dump()) == tool
        assert tool.influence not in tool.secondary, tool.id
        assert set(tool.signals) <= SIGNALS, tool.id
        assert tool.cues and tool.follow_up.endswith("?"), tool.id
        assert tool.description != tool.when, tool.id


def test_every_cue_reaches_the_text_scorer(catalogue: Catalogue) -> None:
    from dialogs.catalogue.text import _catalogue_stems

    phrases = [(i.id, cue) for i in catalogue.influences for cue in i.cues]
    phrases += [(t.id, cue) for t in catalogue.tools for cue in t.cues]
    empty = [(owner, cue) for owner, cue in phrases if not _catalogue_stems(cue)]
    assert not empty, f"cues made only of function words match nothing: {empty}"


def test_get_and_tools_for(catalogue: Catalogue) -> None:
    assert catalogue.get("priority-stop-doing-list") is not None
    assert catalogue.get("no-such-tool") is None
    with pytest.raises(KeyError, match="unknown influence"):
        catalogue.tools_for("morale")
    with_secondary = catalogue.tools_for("feedback", include_secondary=True)
    assert len(with_secondary) > len(catalogue.tools_for("feedback"))


def test_catalogue_is_immutable(catalogue: Catalogue) -> None:
    tool = catalogue.tools[0]
    with pytest.raises(ValidationError):
        tool.name = "changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        catalogue.tools = ()  # type: ignore[misc]
    assert isinstance(catalogue.tools, tuple) and isinstance(tool.cues, tuple)


# --------------------------------------------------------------------------
# Validation errors name the tool and the field
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"influence": "morale"}, "influence"),
        ({"signals": ["goal_missing", "bad_vibes"]}, "signals"),
        ({"time": "fortnight"}, "time"),
        ({"cost": "free"}, "cost"),
        ({"secondary": ["feedback", "feedback"]}, "secondary"),
        ({"follow_up": "Tell me how it went."}, "follow_up"),
        ({"signal": ["goal_missing"]}, "signal"),  # misspelt key, not silently ignored
        ({"id": "Team Charter"}, "id"),
    ],
)
def test_bad_field_is_named(tmp_path: Path, change: dict[str, object], field: str) -> None:
    with pytest.raises(CatalogueError) as error:
        load_catalogue(write_extra(tmp_path, [{**A_TOOL, **change}]))
    assert error.value.field == field
    assert f"field '{field}'" in str(error.value)
    assert "org_tools.yaml" in str(error.value)


def test_missing_field_is_named(tmp_path: Path) -> None:
    incomplete = {k: v for k, v in A_TOOL.items() if k != "follow_up"}
    with pytest.raises(CatalogueError, match="tool 'team-charter', field 'follow_up': missing") as error:
        load_catalogue(write_extra(tmp_path, [incomplete]))
    assert error.value.tool_id == "team-charter"


def test_duplicate_id_is_named(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="tool 'team-charter', field 'id': duplicate id"):
        load_catalogue(write_extra(tmp_path, [A_TOOL, {**A_TOOL, "name": "Another"}]))


def test_unknown_influence_names_the_tool(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError) as error:
        load_catalogue(write_extra(tmp_path, [{**A_TOOL, "influence": "vibes"}]))
    assert error.value.tool_id == "team-charter"
    assert "'vibes'" in str(error.value)


def test_unknown_signal_names_the_tool_and_value(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match=r"tool 'team-charter', field 'signals'.*'bad_vibes'"):
        load_catalogue(write_extra(tmp_path, [{**A_TOOL, "signals": ["bad_vibes"]}]))


def test_extra_file_problems_are_explained(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="version"):
        load_catalogue(write_extra(tmp_path, [A_TOOL], version=2))
    with pytest.raises(CatalogueError, match="influences"):
        load_catalogue(write_extra(tmp_path, [A_TOOL], influences=[]))
    broken = tmp_path / "broken.yaml"
    broken.write_text("tools: [unclosed", encoding="utf-8")
    with pytest.raises(CatalogueError, match="not valid YAML"):
        load_catalogue(broken)
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(tmp_path / "missing.yaml")


def test_catalogue_error_is_a_configuration_error() -> None:
    from dialogs.engine.errors import ConfigurationError

    assert issubclass(CatalogueError, ConfigurationError)


# --------------------------------------------------------------------------
# An organisation's own file
# --------------------------------------------------------------------------


def test_override_file_adds_and_overrides(tmp_path: Path, catalogue: Catalogue) -> None:
    extra = write_extra(
        tmp_path,
        [
            A_TOOL,
            # Partial override: only the cost and label change.
            {"id": "visible-scoreboard", "cost": "low", "time_label": "our BI team builds it in a day"},
        ],
    )
    merged = load_catalogue(extra)
    assert len(merged.tools) == len(catalogue.tools) + 1
    added = merged.get("team-charter")
    assert added is not None and added in merged.tools_for("expectations")
    scoreboard, original = merged.get("visible-scoreboard"), catalogue.get("visible-scoreboard")
    assert scoreboard is not None and original is not None
    assert (scoreboard.cost, scoreboard.time_label) == ("low", "our BI team builds it in a day")
    assert scoreboard.name == original.name and scoreboard.cues == original.cues
    # The shipped catalogue object is untouched.
    assert original.cost == "medium"


def test_override_is_validated_after_merging(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="tool 'visible-scoreboard', field 'time'"):
        load_catalogue(write_extra(tmp_path, [{"id": "visible-scoreboard", "time": "soon"}]))


def test_added_tool_teaches_the_text_scorer(tmp_path: Path) -> None:
    merged = load_catalogue(write_extra(tmp_path, [{**A_TOOL, "cues": ["charter workshop overdue"]}]))
    best = score_influences("Our charter workshop is long overdue.", merged)[0]
    assert best.id == "expectations"
    assert "team-charter" in best.tool_ids


# --------------------------------------------------------------------------
# Ranking
# --------------------------------------------------------------------------


def test_rank_cheapest_then_fastest(catalogue: Catalogue) -> None:
    for influence in INFLUENCE_IDS:
        ranked = rank_tools(catalogue, influence, limit=None)
        efforts = [r.tool.effort for r in ranked]
        assert efforts == sorted(efforts), influence
        assert len(ranked) == len(catalogue.tools_for(influence))


def test_rank_limit_and_why(catalogue: Catalogue) -> None:
    top = rank_tools(catalogue, "resources")
    assert len(top) == 3
    for suggestion in top:
        assert suggestion.tool.when in suggestion.why
        assert "times here" not in suggestion.why
        assert suggestion.history is None


def test_repeated_failure_sinks_a_tool(catalogue: Catalogue) -> None:
    first = ranked_ids(catalogue, "expectations")[0]
    sunk = ranked_ids(catalogue, "expectations", outcomes={first: (0, 5)})
    assert sunk[0] != first
    assert sunk.index(first) >= 3


def test_one_failure_does_not_bury_a_tool(catalogue: Catalogue) -> None:
    before = ranked_ids(catalogue, "expectations")
    once = ranked_ids(catalogue, "expectations", outcomes={before[0]: (0, 1)})
    often = ranked_ids(catalogue, "expectations", outcomes={before[0]: (0, 5)})
    # It slips a little, stays in the first half, and well above a tool that keeps failing.
    assert 0 < once.index(before[0]) < len(once) / 2
    assert once.index(before[0]) < often.index(before[0])


def test_success_raises_a_tool(catalogue: Catalogue) -> None:
    before = ranked_ids(catalogue, "feedback")
    slow = before[-1]
    after = ranked_ids(catalogue, "feedback", outcomes={slow: (4, 4)})
    assert after.index(slow) < before.index(slow)


def test_why_mentions_history(catalogue: Catalogue) -> None:
    ranked = rank_tools(catalogue, "motivations", outcomes={"timely-recognition": (3, 4)}, limit=None)
    recognition = next(r for r in ranked if r.tool.id == "timely-recognition")
    assert "worked 3 of 4 times here" in recognition.why
    assert recognition.history == (3, 4)
    assert 0.5 < recognition.success_rate < 0.75  # smoothed, not the raw 0.75


def test_rank_ignores_bad_history_and_unknown_ids(catalogue: Catalogue) -> None:
    plain = ranked_ids(catalogue, "training")
    noisy = ranked_ids(catalogue, "training", outcomes={"not-a-tool": (1, 1), "coaching": (0, 0)})
    assert noisy == plain
    clamped = rank_tools(catalogue, "training", outcomes={"coaching": (9, 2)}, limit=None)
    assert next(r for r in clamped if r.tool.id == "coaching").history == (2, 2)


# --------------------------------------------------------------------------
# Free-text scoring
# --------------------------------------------------------------------------


def test_empty_text_scores_zero(catalogue: Catalogue) -> None:
    for text in ["", "   ", "!!! ... ???", "the and of it"]:
        scores = score_influences(text, catalogue)
        assert [s.id for s in scores] == [i.id for i in catalogue.influences]
        assert all(s.score == 0.0 and not s.evidence for s in scores)


@pytest.mark.parametrize(
    ("text", "influence"),
    [
        ("Nobody on the team knows which of the five projects is the priority.", "expectations"),
        ("He never hears how his reports land; the first feedback is the annual review.", "feedback"),
        ("Her laptop is so slow and the VPN keeps dropping, she loses hours every day.", "resources"),
        ("He was never trained on the new billing system and doesn't know how to use it.", "training"),
        ("Good work goes unnoticed here and nobody gets any recognition or thanks.", "motivations"),
        ("She is a brilliant analyst but hates the customer-facing part; wrong role for her strengths.", "job_fit"),
    ],
)
def test_clear_sentences_land(catalogue: Catalogue, text: str, influence: str) -> None:
    scores = score_influences(text, catalogue)
    assert scores[0].id == influence, [(s.id, round(s.score, 2)) for s in scores]
    assert 0.0 < scores[0].score <= 1.0
    assert scores[0].evidence, "the best influence must say what drove it"


def test_scores_are_bounded_and_sorted(catalogue: Catalogue) -> None:
    scores = score_influences("No feedback, no tools, no training, no recognition and no clear goals.", catalogue)
    assert len(scores) == 6 and {s.id for s in scores} == set(INFLUENCE_IDS)
    values = [s.score for s in scores]
    assert values == sorted(values, reverse=True)
    assert all(0.0 <= v <= 1.0 for v in values)


def test_misspelled_text_still_lands(catalogue: Catalogue) -> None:
    text = "Nobody gives him any feedbak, he only finds out at the anual reveiw."
    scores = score_influences(text, catalogue)
    assert scores[0].id == "feedback"
    assert any(e.found != e.matched for e in scores[0].evidence), "a typo should show what it was read as"
    assert score_influences("he was nevr traned on the sofware", catalogue)[0].id in {"training", "resources"}


def test_odd_unicode_is_normalised(catalogue: Catalogue) -> None:
    assert normalise("Ｆｅｅｄｂａｃｋ café doesn’t") == "feedback cafe doesnt"
    plain = score_influences("No recognition for good work.", catalogue)
    odd = score_influences("Ｎo r\u200becognition for good\u00a0work\u2026 🙁", catalogue)
    assert [s.id for s in odd] == [s.id for s in plain]
    assert [s.score for s in odd] == pytest.approx([s.score for s in plain])


def test_ruled_out_concept_does_not_count(catalogue: Catalogue) -> None:
    text = "It's not a skills issue. He knows exactly how, he did it perfectly last year, he just doesn't bother."
    assert score_influences(text, catalogue)[0].id == "motivations"


def test_concept_tokens_read_well_in_explanations(catalogue: Catalogue) -> None:
    from dialogs.catalogue.text import _CONCEPT_LABELS, _tokens

    used = {
        t.canonical
        for i in catalogue.influences
        for cue in i.cues
        for t in _tokens(cue)
        # Concept tokens are made-up words: "z" + letters, longer than any real "z" cue word.
        if t.canonical in _CONCEPT_LABELS or (t.canonical.startswith("z") and len(t.canonical) > 5)
    }
    assert used == set(_CONCEPT_LABELS), "every concept token needs a label, and every label a use"
    text = "She could do it, she did it well last year, but nothing happens when she is late."
    evidence = [str(e) for s in score_influences(text, catalogue) for e in s.evidence]
    assert evidence and not any('"z' in e for e in evidence), evidence


def test_names_are_not_typo_corrected(catalogue: Catalogue) -> None:
    # "carter" is one typing slip from the catalogue word "carer"; capitalised
    # inside a sentence it is a name and must not be read as one.
    def read_carter(text: str) -> bool:
        return any(e.found == "carter" for s in score_influences(text, catalogue) for e in s.evidence)

    assert read_carter("ask carter about it")
    assert not read_carter("Ask Carter about it.")


def test_real_words_are_not_corrected_into_their_neighbours(catalogue: Catalogue) -> None:
    # A letter more or less at the end, or a distant key, makes another real word.
    for text in ["in charge of events", "the next slide", "the tills are old"]:
        scores = score_influences(text, catalogue)
        assert all(e.found == e.matched for s in scores for e in s.evidence), text


def test_very_long_text_returns(catalogue: Catalogue) -> None:
    paragraph = "The team keeps missing deadlines because the build server is slow and nobody owns the release. "
    text = (paragraph * (100_000 // len(paragraph) + 1))[:100_000]
    scores = score_influences(text, catalogue)
    assert len(scores) == 6 and scores[0].score > 0.0


def test_negation_marks_the_words_it_governs() -> None:
    from dialogs.catalogue.text import _tokens

    negated = {t.canonical: t.negated for t in _tokens("There's no aircon in the room, and the fan is fine.")}
    assert negated["aircon"] and negated["room"]
    assert not negated["fan"] and not negated["fine"]  # the clause ended
    assert not any(t.negated for t in _tokens("Good tools, a clear goal and a weekly check-in."))


def test_learnt_channel_learns_from_labelled_gaps(catalogue: Catalogue) -> None:
    base = TextScorer(catalogue, labelled=())
    text = "the glorbulator broke again"
    taught = base.with_labelled([LabelledGap("our glorbulator keeps breaking down", "resources")] * 3)
    before = {s.id: s.score for s in base.score(text)}
    after = {s.id: s.score for s in taught.score(text)}
    assert after["resources"] > before["resources"]
    assert taught.score(text)[0].id == "resources"
    assert any(e.found == "glorbulator" for e in taught.score(text)[0].evidence)
    # The base scorer is untouched, and the ranking helper agrees with score().
    assert {s.id: s.score for s in base.score(text)} == before
    assert taught.ranking(text) == [s.id for s in taught.score(text)]


def test_bad_labelled_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "labelled.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "items": [{"text": "x", "influence": "morale"}]}), encoding="utf-8")
    with pytest.raises(CatalogueError, match="unknown influence 'morale'") as error:
        load_labelled(path)
    assert str(path) in str(error.value)
    path.write_text(yaml.safe_dump({"version": 1, "items": [{"influence": "feedback"}]}), encoding="utf-8")
    with pytest.raises(CatalogueError, match="has no text"):
        load_labelled(path)
    with pytest.raises(CatalogueError, match="cannot read"):
        load_labelled(tmp_path / "missing.yaml")


def labelled_dev_data() -> list[LabelledGap]:
    """The labelled sets the scorer may learn from (never the final evaluation set)."""
    return [*load_labelled(DATA / "gaps.yaml"), *load_labelled(DATA / "gaps_dev.yaml")]


def test_shipped_labelled_gaps_match_the_test_data() -> None:
    """labelled_gaps.yaml is a copy of gaps.yaml + gaps_dev.yaml, and nothing else."""
    assert load_labelled(LABELLED_PATH) == tuple(labelled_dev_data())


def test_shipped_scorer_fits_its_training_data(catalogue: Catalogue) -> None:
    """A sanity floor, not a measure of generalisation: the shipped scorer was trained on these."""
    result = accuracy(TextScorer(catalogue), labelled_dev_data())
    print(f"shipped scorer on its own training data: {result}")
    assert result.top1_rate >= 0.9 and result.top3_rate >= 0.98, result


# Measured 5-fold cross-validation, seed 0, over gaps.yaml + gaps_dev.yaml
# (203 items): top-1 0.837 (170/203), top-3 0.956 (194/203). Averaged over 5
# shuffles: 0.841 / 0.953. The lexicon alone (training folds added as
# influence examples) scored 0.788 / 0.946. The floors allow a few items of
# slack for harmless changes; falling below them means the scorer got worse.
CV_MIN_TOP1, CV_MIN_TOP3 = 0.81, 0.93


def test_cross_validated_accuracy_on_labelled_gaps(catalogue: Catalogue) -> None:
    result = cross_validate(catalogue, labelled_dev_data(), k=5, seeds=(0,))
    summary = f"5-fold cross-validation over gaps.yaml + gaps_dev.yaml: {result}"
    print(summary)
    assert result.total == len(labelled_dev_data())
    assert result.top1_rate >= CV_MIN_TOP1, f"top-1 below {CV_MIN_TOP1}: {summary}"
    assert result.top3_rate >= CV_MIN_TOP3, f"top-3 below {CV_MIN_TOP3}: {summary}"


# --------------------------------------------------------------------------
# Final evaluation
# --------------------------------------------------------------------------

# The targets set for the feature, on an evaluation set nobody tuned on.
TARGET_TOP1, TARGET_TOP3 = 0.70, 0.90


def test_final_evaluation_gaps_eval_accuracy(catalogue: Catalogue) -> None:
    path = DATA / "gaps_eval.yaml"
    if not path.exists():
        pytest.skip(f"final evaluation set {path} is missing; it is written separately from the scorer")
    items = yaml.safe_load(path.read_text(encoding="utf-8"))["items"]
    assert items, "the final evaluation set is empty"
    top1 = top3 = 0
    for item in items:
        ranked = [s.id for s in score_influences(item["text"], catalogue)]
        top1 += ranked[0] == item["influence"]
        top3 += item["influence"] in ranked[:3]
    top1_rate, top3_rate = top1 / len(items), top3 / len(items)
    summary = (
        f"final evaluation gaps_eval.yaml, {len(items)} items: top-1 {top1_rate:.3f} ({top1}/{len(items)}), "
        f"top-3 {top3_rate:.3f} ({top3}/{len(items)}); target {TARGET_TOP1:.2f} / {TARGET_TOP3:.2f}"
    )
    print(summary)
    assert top1_rate >= TARGET_TOP1, f"top-1 below target: {summary}"
    assert top3_rate >= TARGET_TOP3, f"top-3 below target: {summary}"
