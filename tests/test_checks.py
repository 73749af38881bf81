"""kdlib._checks: one message format for every parameter check."""

from __future__ import annotations

import pytest
import torch

from kdlib import _checks, article, losses, metrics, pitfalls
from kdlib._checks import Bool, Float, Int, OneOf, Str, Verdict, check_answer, check_params

SPEC = {"epochs": Int(1, 100), "lr": Float(0.0, 1.0, low_open=True), "quick": Bool(),
        "checkpoint": Str("a path, or '' for data/teacher.pt"), "strategy": OneOf("copy", "random")}
GOOD = {"epochs": 3, "lr": 0.01, "quick": False, "checkpoint": "", "strategy": "copy"}


def test_good_values_come_back_converted():
    out = check_params({**GOOD, "lr": 1}, SPEC)
    assert out == {**GOOD, "lr": 1.0} and isinstance(out["lr"], float)


@pytest.mark.parametrize("name, value, error, message", [
    ("epochs", 0, ValueError, r"^epochs=0 is out of range; allowed: \[1, 100\]$"),
    ("epochs", 2.5, TypeError, r"^epochs must be an integer, got 2.5 \(float\)$"),
    ("epochs", True, TypeError, "epochs must be an integer"),
    ("lr", 0.0, ValueError, r"^lr=0.0 is out of range; allowed: \(0.0, 1.0\]$"),
    ("lr", float("nan"), ValueError, "lr must be a finite number"),
    ("quick", 1, TypeError, r"^quick must be True or False, got 1 \(int\)$"),
    ("checkpoint", None, TypeError, r"checkpoint must be a string \(a path, or '' for data/teacher.pt\)"),
    ("strategy", "top", ValueError, r"strategy='top' is not supported; choose one of 'copy', 'random'"),
])
def test_bad_values_name_parameter_value_and_range(name, value, error, message):
    with pytest.raises(error, match=message):
        check_params({**GOOD, name: value}, SPEC)


def test_unknown_and_missing_names():
    with pytest.raises(TypeError, match="unknown parameter 'epoch'"):
        check_params({**GOOD, "epoch": 3}, SPEC)
    with pytest.raises(TypeError, match="parameter 'quick' is missing"):
        check_params({k: v for k, v in GOOD.items() if k != "quick"}, SPEC)


def test_any_callable_is_a_constraint():
    def even(name, value):
        if value % 2:
            raise ValueError(f"{name}={value!r} is out of range; allowed: even numbers")
        return value

    assert check_params({"n": 4}, {"n": even}) == {"n": 4}
    with pytest.raises(ValueError, match="n=3"):
        check_params({"n": 3}, {"n": even})


def test_check_answer_numbers_with_tolerance_and_texts():
    ex = {1: (101_632, 0.5, "count the Linear layers"),
          2: ("b", None, "look at batch 1", "(b), the overhead")}
    assert check_answer(ex, 1, 101_632) == Verdict(True, "Right: 101632")
    assert check_answer(ex, 1, "101632.3")
    got = check_answer(ex, 1, 101_634)
    assert not got and got.message == "Not yet: count the Linear layers"
    assert str(got) == repr(got) == "Not yet: count the Linear layers"  # a cell shows the message
    assert check_answer(ex, 1, None).message.startswith("Not yet: replace None")  # a placeholder is no error
    assert check_answer(ex, 2, " (B) ").message == "Right: (b), the overhead"
    assert not check_answer(ex, 2, ["b", "c"])  # a wrong type is "not yet", never an error
    with pytest.raises(ValueError, match="n=3 is not an exercise; choose one of \\[1, 2\\]"):
        check_answer(ex, 3, "b")


def test_check_answer_function_entries_get_the_evidence():
    ex = {1: lambda answer, *, want: (answer == want, f"want {want}")}
    assert check_answer(ex, 1, 4, want=4).message == "Right: want 4"
    assert check_answer(ex, 1, 5, want=4).message == "Not yet: want 4"
    assert check_answer(ex, 1, None).right is False  # the placeholder needs no evidence
    with pytest.raises(AttributeError):
        check_answer(ex, 1, 4, want=4).right = False


def test_tensor_checks_are_one_set_for_every_module():
    """losses, article, pitfalls, train, metrics and experiments validate tensors with these."""
    p = torch.tensor([[0.2, 0.8], [0.5, 0.5]])
    assert _checks.check_probs("p", p, rows_sum_to_one=True) is p
    with pytest.raises(ValueError, match=r"the rows of p must sum to 1, got sums in \[1\.2, 1\.2\]"):
        _checks.check_probs("p", p + 0.1, rows_sum_to_one=True)
    with pytest.raises(ValueError, match=r"p must hold probabilities in \[0, 1\]"):
        _checks.check_probs("p", p * 2)
    assert _checks.check_labels(torch.tensor([0, 1], dtype=torch.int32), 2, 2, of="x").dtype == torch.int64
    with pytest.raises(ValueError, match=r"indices in \[0, 1\] \(x has 2 classes\), got values in \[0, 2\]"):
        _checks.check_labels(torch.tensor([0, 2]), 2, 2, of="x")
    with pytest.raises(TypeError, match="integer class indices"):
        _checks.check_labels(torch.tensor([0.0, 1.0]), 2, 2, of="x")
    with pytest.raises(ValueError, match="probs must hold probabilities"):
        metrics.reliability_bins(torch.tensor([[2.0, -1.0]]), torch.tensor([0]))  # logits, not probabilities
    with pytest.raises(ValueError, match="the rows of probs must sum to 1"):
        metrics.reliability_bins(torch.tensor([[0.3, 0.3]]), torch.tensor([0]))
    # no module keeps a private copy of them any more
    for module in (losses, article, pitfalls, metrics):
        assert not any(hasattr(module, name) for name in ("_check_matrix", "_check_same_shape", "_check_lam",
                                                          "_check_T", "_check_batch"))
