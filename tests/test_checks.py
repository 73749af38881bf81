"""kdlib._checks: one message format for every parameter check."""

from __future__ import annotations

import dataclasses
import inspect
import typing

import numpy as np
import pytest
import torch

from kdlib import _checks, article, losses, metrics, pitfalls
from kdlib._checks import (
    SEEDS,
    Bool,
    Each,
    Float,
    Int,
    OneOf,
    Optional,
    Param,
    Seeds,
    Str,
    Verdict,
    allowed,
    as_number,
    check_answer,
    check_params,
    exercise_checker,
    settings_class,
    verdict,
)

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


# --------------------------------------------------------------------------- validate_params
def _train(model, data, *, epochs=3, lr=3e-3, seed=0, optimizer="adam", momentum=None):
    """A toy public function."""
    return {"epochs": epochs, "lr": lr, "seed": seed, "optimizer": optimizer, "momentum": momentum}


train = _checks.validate_params(epochs=Int(low=1), lr=Float(low=0, low_open=True), seed=Int(low=0),
                        optimizer=OneOf("adam", "sgd"), momentum=Optional(Float(0, 1)))(_train)


def test_decorated_function_gets_converted_values():
    out = train(None, None, epochs=np.int64(5), lr=1, momentum=0)
    assert out == {"epochs": 5, "lr": 1.0, "seed": 0, "optimizer": "adam", "momentum": 0.0}
    assert type(out["epochs"]) is int and type(out["lr"]) is float and type(out["momentum"]) is float


def test_defaults_are_checked_and_converted():
    @_checks.validate_params(T=Float(low=0, low_open=True), n=Optional(Int(low=1)), sizes=Each(Int(low=1)))
    def f(*, T=1, n=None, sizes=(3, 2)):
        return T, n, sizes

    T, n, sizes = f()
    assert (T, n, sizes) == (1.0, None, [3, 2]) and type(T) is float
    assert f()[2] is not f()[2]  # a default is converted afresh on every call, never shared
    with pytest.raises(ValueError, match=r"^T=0.0 is out of range; allowed: > 0$"):
        _checks.validate_params(T=Float(low=0, low_open=True))(lambda T=0.0: T)  # a bad default fails at once


@pytest.mark.parametrize("kwargs, error, message", [
    ({"epochs": 0}, ValueError, r"^epochs=0 is out of range; allowed: >= 1$"),
    ({"epochs": 2.5}, TypeError, r"^epochs must be an integer, got 2.5 \(float\)$"),
    ({"epochs": True}, TypeError, r"^epochs must be an integer, got True \(bool\)$"),
    ({"lr": 0}, ValueError, r"^lr=0.0 is out of range; allowed: > 0$"),
    ({"lr": "fast"}, TypeError, r"^lr must be a number, got 'fast' \(str\)$"),
    ({"lr": float("inf")}, ValueError, r"^lr must be a finite number, got inf$"),
    ({"seed": -1}, ValueError, r"^seed=-1 is out of range; allowed: >= 0$"),
    ({"optimizer": "rmsprop"}, ValueError,
     r"^optimizer='rmsprop' is not supported; choose one of 'adam', 'sgd'$"),
    ({"momentum": 1.5}, ValueError, r"^momentum=1.5 is out of range; allowed: \[0, 1\]$"),
])
def test_decorated_function_raises_the_check_messages(kwargs, error, message):
    with pytest.raises(error, match=message):
        train(None, None, **kwargs)


def test_each_names_the_item_and_bool_str_keep_their_messages():
    @_checks.validate_params(sizes=Each(Int(low=1)), quick=Bool(), path=Str("a path"))
    def f(sizes, quick=False, path=""):
        return sizes

    assert f((784, np.int64(10))) == [784, 10]
    with pytest.raises(ValueError, match=r"^sizes\[1\]=0 is out of range; allowed: >= 1$"):
        f([784, 0])
    with pytest.raises(TypeError, match=r"^quick must be True or False, got 1 \(int\)$"):
        f([1], 1)
    with pytest.raises(TypeError, match=r"^path must be a string \(a path\), got None"):
        f([1], path=None)


def test_each_takes_any_iterable_but_a_string_and_bounds_its_length():
    three = Each(Int(low=0), min_len=1, max_len=3, example="[32, 64]")
    assert three("c", (1, np.int64(2))) == [1, 2] and Each(Int())("c", range(3)) == [0, 1, 2]
    with pytest.raises(TypeError, match=r"^c must be a list, got '\[1\]' \(str\); with papermill "
                                        r"pass it as YAML: -y 'c: \[32, 64\]'$"):
        three("c", "[1]")
    with pytest.raises(TypeError, match=r"^c must be a list, got 5 \(int\)$"):
        Each(Int())("c", 5)  # no example, no papermill hint
    with pytest.raises(ValueError, match=r"^c=\[\] has 0 entries; allowed: at least 1 and at most 3$"):
        three("c", [])
    with pytest.raises(ValueError, match=r"^c=\[1, 2, 3, 4\] has 4 entries; allowed: at least 1 and"):
        three("c", [1, 2, 3, 4])


def test_seeds_are_a_count_or_a_list_of_seeds():
    assert SEEDS("seeds", 3) == [0, 1, 2] and SEEDS("seeds", np.int64(2)) == [0, 1]
    assert SEEDS("seeds", (5, np.int32(7))) == [5, 7] and Seeds()("s", range(1, 3)) == [1, 2]
    assert all(type(s) is int for s in SEEDS("seeds", np.array([4, 9])))
    for bad, error, message in [
        (0, ValueError, r"^seeds=0 is out of range; allowed: >= 1$"),
        ([], ValueError, r"^seeds must be a positive integer or a non-empty sequence of seeds, got \[\]$"),
        ("abc", ValueError, r"^seeds must be a positive integer .* got 'abc'$"),
        (None, ValueError, r"got None$"),
        ([0, -1], ValueError, r"^seeds\[1\]=-1 is out of range; allowed: >= 0$"),
        ([0, 1.5], TypeError, r"^seeds\[1\] must be an integer"),
        (True, ValueError, r"got True$"),
    ]:
        with pytest.raises(error, match=message):
            SEEDS("seeds", bad)


def test_positional_and_keyword_arguments_are_both_checked():
    @_checks.validate_params(a=Int(low=0), b=Float(0, 1))
    def f(a, b=0.5, *rest, c=None):
        return a, b, rest

    assert f(1) == (1, 0.5, ())
    assert f(1, 1) == (1, 1.0, ()) and type(f(1, 1)[1]) is float
    assert f(b=0, a=2) == (2, 0.0, ())
    assert f(1, 0.25, "x", "y") == (1, 0.25, ("x", "y"))
    for call in (lambda: f(-1), lambda: f(a=-1)):
        with pytest.raises(ValueError, match="^a=-1 is out of range"):
            call()
    with pytest.raises(ValueError, match="^b=2.0 is out of range"):
        f(0, 2)
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'a'"):
        f()  # a wrong call is Python's own error, as without the decorator


def test_a_constraint_for_a_missing_parameter_is_an_error_at_decoration():
    with pytest.raises(TypeError, match=r"_train\(\) has no parameter 'epoch' that can be checked; its "
                                        r"parameters are \['model', 'data', 'epochs'"):
        _checks.validate_params(epoch=Int(low=1))(_train)
    with pytest.raises(TypeError, match="no parameter 'args'"):
        _checks.validate_params(args=Int())(lambda *args: args)


def test_decorated_function_stays_inspectable():
    assert inspect.signature(train) == inspect.signature(_train)
    assert train.__wrapped__ is _train and train.__doc__ == _train.__doc__ and train.__name__ == "_train"
    assert repr(train.constraints["lr"]) == "Float(low=0, high=None, low_open=True)"
    assert repr(train.constraints["momentum"]) == "Optional(constraint=Float(low=0, high=1, low_open=False))"
    assert repr(train.constraints["optimizer"]) == "OneOf('adam', 'sgd')"
    # kdlib's own: the rule is on the function, the signature is the original's
    assert losses.kd_loss.constraints == {"lam": _checks.LAM, "T": _checks.TEMPERATURE}
    assert list(inspect.signature(losses.kd_loss).parameters) == ["student_logits", "teacher_logits",
                                                                  "labels", "lam", "T"]


def test_settings_checker_makes_a_lessons_check_params():
    import dataclasses

    from kdlib._checks import settings_checker

    @dataclasses.dataclass(frozen=True)
    class Settings:
        n: int
        seeds: int
        quick: bool

    def also(p):
        if p["seeds"] > p["n"]:
            raise ValueError(f"seeds={p['seeds']} is more than n={p['n']}")

    spec = {"n": Int(1, 100), "seeds": Int(1, 10), "quick": Bool()}
    check = settings_checker(Settings, spec, quick={"n": 5, "other": 1}, also=also)
    assert check(n=50, seeds=3, quick=False) == Settings(50, 3, False)
    assert check(n=50, seeds=3, quick=True) == Settings(5, 3, True)  # quick's sizes; unknown keys ignored
    assert check.__module__ == __name__ and "Parameters\n    ---" in check.__doc__
    with pytest.raises(ValueError, match=r"n=500 is out of range"):
        check(n=500, seeds=3, quick=False)
    with pytest.raises(ValueError, match="seeds=8 is more than n=5"):
        check(n=50, seeds=8, quick=True)  # checked after quick applies its sizes
    with pytest.raises(TypeError, match="unknown parameter 'x'"):
        check(n=5, seeds=1, quick=False, x=1)


@pytest.mark.parametrize("run", ["autograde", "validate", "AUTOGRADE"])
def test_verdict_require_fails_a_wrong_answer_only_under_nbgrader(run, monkeypatch):
    right, wrong = Verdict(True, "Right: 3"), Verdict(False, "Not yet: count the leaves")
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert wrong.require() is wrong and right.require() is right  # a learner's run never raises
    monkeypatch.setenv("NBGRADER_EXECUTION", run)
    assert right.require() is right
    with pytest.raises(AssertionError, match="Not yet: count the leaves"):
        wrong.require()


def test_verdict_require_ignores_other_values_of_the_variable(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "")
    assert not Verdict(False, "Not yet: x").require()
    monkeypatch.setenv("NBGRADER_EXECUTION", "feedback")
    assert not Verdict(False, "Not yet: x").require()


def test_settings_class_writes_fields_and_attributes_from_params():
    spec = {"n": Param(Int(1, 100), "Images."), "T": Param(Float(0, 20, low_open=True), "Temperature."),
            "quick": Param(Bool(), "Smoke run."),
            "sizes": Param(lambda name, v: list(v), "Widths.", "list of int"),
            "mode": Param(OneOf("a", "b"), "Mode.")}

    @settings_class(spec)
    class Settings:
        """Some notebook's parameters."""

        @property
        def double(self):
            """Twice n."""
            return 2 * self.n

    s = Settings(n=3, T=2.0, quick=False, sizes=[1], mode="a")
    assert s.double == 6 and [f.name for f in dataclasses.fields(Settings)] == list(spec)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.n = 4
    assert [f.type for f in dataclasses.fields(Settings)] == [int, float, bool, object, str]
    assert Settings.__doc__ == ("Some notebook's parameters.\n\nAttributes\n----------\n"
                                "n : int\n    Images. Allowed: [1, 100].\n"
                                "T : float\n    Temperature. Allowed: (0, 20].\n"
                                "quick : bool\n    Smoke run.\n"
                                "sizes : list of int\n    Widths.\n"
                                "mode : str\n    Mode. Allowed: one of 'a', 'b'.")
    # a Param is its constraint: the same value back, the same message
    assert spec["n"]("n", 7) == 7 and allowed(spec["n"]) == allowed(Int(1, 100)) == "[1, 100]"
    with pytest.raises(ValueError, match=r"n=0 is out of range; allowed: \[1, 100\]"):
        spec["n"]("n", 0)
    assert (allowed(Int(0)), allowed(Float(high=1.5)), allowed(Str()), allowed(Float(0.5, 2))) == \
        (">= 0", "<= 1.5", "", "[0.5, 2]")
    assert (allowed(Each(Int(1, 512), min_len=1, max_len=3)), allowed(Each(Int(low=1))),
            allowed(Each(OneOf("a"), min_len=1)), allowed(Each(Str(), min_len=2)), allowed(Each(Str()))) == \
        ("1 to 3 entries; each in [1, 512]", "each >= 1", "at least 1 entry; each one of 'a'",
         "at least 2 entries", "")
    with pytest.raises(TypeError, match=r"PARAMS\['n'\] must be a Param"):
        settings_class({"n": Int(1, 2)})(type("S", (), {}))


def test_exercise_checker_grades_refuses_unknown_evidence_and_documents_itself():
    def ex2(answer, *, rows=None, epochs=None):
        if rows is None:
            raise ValueError("exercise 2 needs rows=")
        return answer == len(rows) * epochs, f"{len(rows)} rows × {epochs} epochs"

    check = exercise_checker({1: ("b", None, "read the table"), 2: ex2}, answers="1: a letter; 2: a count.",
                             evidence={"rows, epochs": "Exercise 2: the run's rows and epochs."})
    assert check(1, " B ") and not check(1, "a") and str(check(1, "a")) == "Not yet: read the table"
    assert check(2, 6, rows=[1, 2, 3], epochs=2) and not check(2, 5, rows=[1, 2, 3], epochs=2)
    with pytest.raises(ValueError, match="needs rows="):
        check(2, 6)
    with pytest.raises(TypeError, match="unknown evidence 'row'; the evidence it takes: rows, epochs"):
        check(2, 6, row=[1])
    with pytest.raises(ValueError, match="n=3 is not an exercise"):
        check(3, 1)
    assert check.__module__ == __name__ and typing.get_type_hints(check)["return"] is Verdict
    assert "The exercise, 1 to 2" in check.__doc__ and "1: a letter; 2: a count. ``None``" in check.__doc__
    assert "    rows, epochs\n        Exercise 2: the run's rows and epochs." in check.__doc__
    alone = exercise_checker({1: (1.0, 0.1, "hint")}, answers="1: one.")
    with pytest.raises(TypeError, match="takes: none"):
        alone(1, 1.0, rows=[])


def test_as_number_and_verdict_for_exercise_entries():
    numbers = (3, 0.5, np.float32(0.25), torch.tensor(2.0), " 1.5 ")
    assert [as_number(v) for v in numbers] == [3.0, 0.5, 0.25, 2.0, 1.5]
    assert [as_number(v) for v in (True, None, "many", [1], torch.ones(2))] == [None] * 5
    assert verdict(1, "right", "hint") == (True, "right") and verdict([], "right", "hint") == (False, "hint")
