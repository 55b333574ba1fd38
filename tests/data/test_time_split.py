"""The time protocol on one event table: cuts by time (global or per user), inputs and targets of other
event types, validation cut the same way before the test cut; known answers on a log small enough to read."""

from __future__ import annotations

import numpy as np
import pytest

from ledrec.cli import main
from ledrec.data.interactions import DataError, Interactions
from ledrec.data.splits import DAY, time_split


def log() -> Interactions:
    #        user  item  event   day
    rows = [
        ("a", "x", "view", 1), ("a", "x", "sale", 2), ("a", "y", "view", 3), ("a", "y", "sale", 4),
        ("a", "z", "view", 5), ("a", "z", "sale", 6),
        ("b", "x", "view", 1), ("b", "w", "sale", 2), ("b", "y", "view", 5), ("b", "y", "sale", 6),
        ("c", "w", "view", 1),  # no sale: never evaluated
    ]  # fmt: skip
    users, items, events, days = zip(*rows, strict=True)
    return Interactions.from_events(users, items, feedback=events, timestamp=np.array(days) * DAY)


def ids(data, matrix, user: str) -> set[str]:
    row = list(data.users.ids).index(user)
    return set(data.items.ids[matrix[row].indices])


def test_leave_last_predicts_each_users_last_target_from_what_came_before():
    data = log()
    p = time_split(data, leave_last=1, feedback=["view"], target_feedback=["sale"])
    test_users = list(p.test.user_ids)
    assert test_users == ["a", "b"]
    # a's last sale (z, day 6) is the target; every view before it (z's on day 5 too) is the input
    assert ids(data, p.test.target, "a") == {"z"} and ids(data, p.test.input, "a") == {"x", "y", "z"}
    assert ids(data, p.test.target, "b") == {"y"} and ids(data, p.test.input, "b") == {"x", "y"}
    # validation: the same cut once more, before the test cut (a: the sale of day 4; b: of day 2)
    assert list(p.valid.user_ids) == ["a", "b"]
    assert ids(data, p.valid.target, "a") == {"y"} and ids(data, p.valid.input, "a") == {"x", "y"}
    assert ids(data, p.valid.target, "b") == {"w"} and ids(data, p.valid.input, "b") == {"x"}
    # the final model trains on everything before the test cut; targets of the other type ride along
    assert ids(data, p.fit_test, "a") == {"x", "y", "z"} and ids(data, p.targets["fit_test"], "a") == {"x", "y"}
    assert ids(data, p.fit_valid, "a") == {"x", "y"} and p.meta["target_feedback"] == ["sale"]


def test_test_days_cuts_every_user_at_the_same_time():
    data = log()
    p = time_split(data, test_days=2, feedback=["view"], target_feedback=["sale"])  # days 5-6 test, 3-4 valid
    assert list(p.test.user_ids) == ["a", "b"]
    assert ids(data, p.test.target, "a") == {"z"} and ids(data, p.test.input, "a") == {"x", "y"}
    assert ids(data, p.test.target, "b") == {"y"} and ids(data, p.test.input, "b") == {"x"}
    assert list(p.valid.user_ids) == ["a"]  # only a bought in days 3-4
    assert ids(data, p.valid.target, "a") == {"y"} and ids(data, p.valid.input, "a") == {"x"}


def test_a_target_already_in_the_history_stays_a_target_unless_only_targets_are_excluded():
    data = log()
    history = time_split(data, leave_last=1, feedback=["view", "sale"], target_feedback=["sale"])
    assert history.test.exclude is None  # the input (views and sales) is never ranked
    target = time_split(data, leave_last=1, feedback=["view", "sale"], target_feedback=["sale"], exclude="target")
    assert ids(data, target.test.exclude, "a") == {"x", "y"}  # only what a already bought


def test_refusals():
    data = log()
    with pytest.raises(DataError, match="exactly one"):
        time_split(data)
    with pytest.raises(DataError, match="exactly one"):
        time_split(data, test_days=1, leave_last=1)
    with pytest.raises(KeyError, match="refund"):
        time_split(data, leave_last=1, target_feedback=["refund"])
    untimed = Interactions.from_events(["a"], ["x"])
    with pytest.raises(DataError, match="timestamps"):
        time_split(untimed, leave_last=1)


def test_the_command_line_runs_a_time_split_and_refuses_options_of_other_protocols(tmp_path, capsys):
    from ledrec.data.synthetic import SyntheticConfig, generate, write_events

    config = SyntheticConfig(n_users=400, n_items=300, seed=2)
    path = write_events(generate(config), tmp_path / "events.parquet", config)
    argv = ["run", "--data", str(path), "--protocol", "time", "--model", "pop", "--quiet"]
    argv += ["--leave-last", "1", "--input-feedback", "view,click", "--target-feedback", "sale", "--exclude", "target"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert '"protocol": "time"' in out and '"recall@20"' in out
    assert main([*argv, "--heldout-users", "3"]) == 2
    assert "--heldout-users: not an option of --protocol time" in capsys.readouterr().err
    assert main([*argv, "--min-rating", "3"]) == 2  # an option of time, but these events have no rating
    assert "min_rating 3 given, but the events have no rating" in capsys.readouterr().err
    assert main([*argv[:-8], "--protocol", "strong", "--pretrain-feedback", "view"]) == 2
    assert "not an option of --protocol strong" in capsys.readouterr().err
