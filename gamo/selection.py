"""Model selection on the validation split: the test scores at the best validation epoch.

The paper's protocol (and the only sound one): pick the epoch by the validation split's GM,
never by the test set, and report the test scores there. One test evaluation of 100 images a
class has a standard error of about 0.012 GM, and successive epochs swing 0.016-0.03, so a
last-epoch number alone is mostly noise; :class:`BestVal` keeps the other number beside it.

It reads ``metrics.jsonl`` records (:meth:`gamo.snapshot.Snapshot.to_record`), so a run's
best validation epoch can be followed live and recomputed from its folder alike.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path


class BestVal:
    """The evaluated step with the highest validation GM so far (equal GMs: the higher
    validation ACSA, then the earlier step) and the test metrics at that step.

    Feed it the records of a run in order with :meth:`update`; records without ``"val"``
    (steps where the validation split was not evaluated) are skipped. Those that have training
    metrics past step 0 but no validation scores (epochs of a run stored before the validation
    split existed, then resumed) are counted as ``unscored``: the choice did not see them.
    """

    def __init__(self) -> None:
        self._best: dict | None = None
        self.evaluated = 0                 # records with a validation evaluation seen
        self.unscored = 0                  # evaluated epochs (training metrics) without one
        self.first_step: int | None = None

    def update(self, rec: dict) -> bool:
        """Consider one metrics record; True when it is the new best."""
        val = rec.get("val")
        if not val:
            if rec.get("train") and rec.get("step", 0) > 0:
                self.unscored += 1
            return False
        self.evaluated += 1
        if self.first_step is None:
            self.first_step = int(rec["step"])
        # by GM, then ACSA (GM is 0 whenever one class has no validation hit, which a small
        # split gives at every epoch: ACSA still tells those epochs apart); ties keep the earlier
        if self._best is not None and not (val["gm"], val["acsa"]) > (self._best["val"]["gm"], self._best["val"]["acsa"]):
            return False
        t = rec["test"]
        self._best = {
            "step": int(rec["step"]),
            "epoch": float(rec["epoch"]),
            "val": {"acsa": float(val["acsa"]), "gm": float(val["gm"])},
            "test": {"acsa": float(t["acsa"]), "gm": float(t["gm"]), "accuracy": float(t["accuracy"]),
                     "recall": [float(r) for r in t["recall"]]},
            # rows per class of the validation split (every row of its confusion matrix sums to it)
            "val_per_class": int(sum(val["confusion"][0])) if val.get("confusion") else None,
        }
        return True

    @property
    def best(self) -> dict | None:
        """What :meth:`to_dict` returns (None before any validation evaluation)."""
        return self.to_dict()

    def to_dict(self) -> dict | None:
        """``{step, epoch, val: {acsa, gm}, test: {acsa, gm, accuracy, recall}, val_per_class,
        evaluated, first_step, unscored}`` of the best validation step, or None when there was
        none (no validation split, or an old run). ``evaluated`` counts the validation
        evaluations compared, from ``first_step`` on; ``unscored`` the evaluated epochs without
        validation scores (a run resumed from one made without a validation split has them
        before the resume): where it is not 0 the choice saw only part of the run, and
        :func:`gamo.tables.write_table` leaves the run out of its best-val. columns."""
        if self._best is None:
            return None
        return {**self._best, "evaluated": self.evaluated, "first_step": self.first_step,
                "unscored": self.unscored}

    @classmethod
    def from_records(cls, records: Iterable[dict], upto_step: int | None = None) -> "BestVal":
        """A tracker fed with ``records`` in order, those after ``upto_step`` left out (records
        a run wrote after its last checkpoint, of a trajectory a resume does not continue)."""
        tracker = cls()
        for rec in records:
            if upto_step is None or rec["step"] <= upto_step:
                tracker.update(rec)
        return tracker


def read_records(path: str | os.PathLike) -> list[dict]:
    """The records of a ``metrics.jsonl`` file (blank lines skipped; none when it is missing)."""
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
