"""Measuring the text scorer: accuracy on a labelled set, and cross-validation.

The scorer learns from labelled gap descriptions (``labelled_gaps.yaml``), so
its accuracy on those same descriptions says little. Cross-validation does:
the labelled items are split into ``k`` folds (stratified by influence, in a
seeded shuffle); for each fold the learnt channel is trained on the other
folds only (plus the catalogue's own text, as always) and scores the held-out
fold. Every item is scored once by a model that never saw it.

Run ``python -m dialogs.catalogue.evaluation [FILE ...]`` to print the
cross-validated top-1 / top-3 over the given labelled files (default: the
shipped ``labelled_gaps.yaml``).
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dialogs.catalogue import Catalogue, load_catalogue
from dialogs.catalogue.text import LABELLED_PATH, LabelledGap, TextScorer, load_labelled

__all__ = ["Accuracy", "accuracy", "cross_validate", "folds"]


@dataclass(frozen=True, slots=True)
class Accuracy:
    """How often the labelled influence came first (top-1) or in the first three (top-3)."""

    top1: int
    top3: int
    total: int

    @property
    def top1_rate(self) -> float:
        return self.top1 / self.total if self.total else 0.0

    @property
    def top3_rate(self) -> float:
        return self.top3 / self.total if self.total else 0.0

    def __add__(self, other: Accuracy) -> Accuracy:
        return Accuracy(self.top1 + other.top1, self.top3 + other.top3, self.total + other.total)

    def __str__(self) -> str:
        return (
            f"top-1 {self.top1_rate:.3f} ({self.top1}/{self.total}), "
            f"top-3 {self.top3_rate:.3f} ({self.top3}/{self.total})"
        )


def accuracy(scorer: TextScorer, items: Iterable[LabelledGap]) -> Accuracy:
    """Top-1 / top-3 of ``scorer`` on ``items``."""
    top1 = top3 = total = 0
    for item in items:
        ranked = scorer.ranking(item.text)
        top1 += ranked[0] == item.influence
        top3 += item.influence in ranked[:3]
        total += 1
    return Accuracy(top1, top3, total)


def folds(items: Sequence[LabelledGap], k: int = 5, seed: int = 0) -> list[int]:
    """The fold (0..k-1) of each item: stratified by influence, shuffled with ``seed``."""
    if k < 2:
        raise ValueError("cross-validation needs at least two folds")
    rng = random.Random(seed)
    by_influence: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        by_influence[item.influence].append(index)
    assignment = [0] * len(items)
    offset = 0
    for influence in sorted(by_influence):
        indices = by_influence[influence]
        rng.shuffle(indices)
        for position, index in enumerate(indices):
            # Carry the offset across influences so the folds stay equal in size.
            assignment[index] = (offset + position) % k
        offset += len(indices)
    return assignment


def cross_validate(
    catalogue: Catalogue,
    items: Sequence[LabelledGap],
    *,
    k: int = 5,
    seeds: Iterable[int] = (0,),
    base: TextScorer | None = None,
) -> Accuracy:
    """k-fold cross-validated accuracy over ``items``, summed over the ``seeds``' splits.

    ``base`` is a scorer for ``catalogue`` (built without labelled items if
    not given); each fold retrains only its learnt channel, so the lexicon is
    built once.
    """
    base = base if base is not None else TextScorer(catalogue, labelled=())
    total = Accuracy(0, 0, 0)
    for seed in seeds:
        assignment = folds(items, k, seed)
        for fold in range(k):
            train = [item for item, f in zip(items, assignment, strict=True) if f != fold]
            held_out = [item for item, f in zip(items, assignment, strict=True) if f == fold]
            total += accuracy(base.with_labelled(train), held_out)
    return total


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="labelled YAML files (default: the shipped set)")
    parser.add_argument("-k", type=int, default=5, help="number of folds (default 5)")
    parser.add_argument("--seeds", type=int, default=3, help="number of shuffled splits to average (default 3)")
    args = parser.parse_args(argv)
    catalogue = load_catalogue()
    files = args.files or [LABELLED_PATH]
    items = [item for path in files for item in load_labelled(path)]
    base = TextScorer(catalogue, labelled=())
    print(f"catalogue only, no labelled items: {accuracy(base, items)}")
    result = cross_validate(catalogue, items, k=args.k, seeds=range(args.seeds), base=base)
    print(f"{args.k}-fold cross-validation x {args.seeds}: {result}")


if __name__ == "__main__":
    main()
