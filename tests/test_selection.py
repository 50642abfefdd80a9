"""gamo.selection.BestVal: the best validation epoch and the test scores there."""
from __future__ import annotations

from gamo.selection import BestVal


def _rec(step: int, val_gm: float | None, test_acsa: float) -> dict:
    r = {"step": step, "epoch": step / 10, "test": {"acsa": test_acsa, "gm": test_acsa - 0.1,
                                                     "accuracy": test_acsa, "recall": [test_acsa] * 2}}
    if val_gm is not None:
        r["val"] = {"acsa": val_gm + 0.05, "gm": val_gm, "confusion": [[3, 1], [0, 4]]}
    return r


def test_best_val_keeps_the_earliest_of_equal_scores_and_skips_unscored_steps():
    recs = [_rec(0, None, 0.5), _rec(10, 0.6, 0.61), _rec(15, None, 0.99), _rec(20, 0.8, 0.7),
            _rec(30, 0.8, 0.9), _rec(40, 0.7, 0.95)]
    b = BestVal.from_records(recs).to_dict()
    assert b["step"] == 20 and b["epoch"] == 2.0                 # 0.8 first at 20; 30 only ties it
    assert b["val"] == {"acsa": 0.8 + 0.05, "gm": 0.8}
    assert b["test"] == {"acsa": 0.7, "gm": 0.7 - 0.1, "accuracy": 0.7, "recall": [0.7, 0.7]}
    assert b["evaluated"] == 4 and b["first_step"] == 10 and b["val_per_class"] == 4
    # records after the step a resume continues from belong to a lost trajectory
    assert BestVal.from_records(recs, upto_step=15).to_dict()["step"] == 10
    assert b["unscored"] == 0
    # epochs with training metrics but no validation scores (an old run, resumed): counted
    old = [{**_rec(s, None, 0.5), "train": {"gm": 0.5}} for s in (0, 5, 10)]
    assert BestVal.from_records(old + recs[1:]).to_dict()["unscored"] == 2      # step 0 is no epoch
    # nothing scored on the validation split: no best_val
    assert BestVal.from_records([_rec(0, None, 0.5), _rec(5, None, 0.6)]).to_dict() is None


def test_update_says_when_a_step_is_the_new_best():
    t = BestVal()
    assert [t.update(r) for r in (_rec(1, 0.2, 0.3), _rec(2, 0.2, 0.4), _rec(3, 0.3, 0.1), _rec(4, None, 1.0))] \
        == [True, False, True, False]
    assert t.best["step"] == 3 and t.best["test"]["acsa"] == 0.1


def test_equal_gms_are_told_apart_by_acsa():
    """A small validation split leaves GM at 0 in every epoch where one class has no hit; the
    choice then goes by ACSA, not to the first epoch (an untrained network)."""
    def rec(step, acsa, test_gm):
        return {"step": step, "epoch": step / 10, "val": {"acsa": acsa, "gm": 0.0},
                "test": {"acsa": test_gm, "gm": test_gm, "accuracy": test_gm, "recall": [test_gm] * 2}}
    b = BestVal.from_records([rec(10, 0.3, 0.0), rec(20, 0.9, 0.8), rec(30, 0.7, 0.7), rec(40, 0.9, 0.6)]).to_dict()
    assert b["step"] == 20 and b["test"]["gm"] == 0.8            # highest ACSA; 40 only ties it
