"""kdlib.results against independent computations (statistics, scipy's paired t-test)."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from kdlib import results

floats = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(st.lists(floats, min_size=2, max_size=12))
@settings(max_examples=50, deadline=None)
def test_sample_sd_is_statistics_stdev(values):
    assert results.sample_sd(values) == pytest.approx(statistics.stdev(values), abs=1e-12)


def test_sd_of_one_value_is_nan_and_printed_without_spread():
    assert math.isnan(results.sample_sd([0.8]))
    assert results.mean_sd([0.8])[0] == 0.8
    assert results.format_pct([0.8]) == "80.00 %"
    assert results.format_pct([0.8, 0.82]) == "81.00 ± 1.41 %"
    assert results.format_pct(0.8449, digits=1) == "84.5 %"
    with pytest.raises(ValueError, match="empty"):
        results.format_pct([])


@given(st.lists(st.tuples(floats, floats), min_size=2, max_size=10),
       st.sampled_from([0.8, 0.9, 0.95, 0.99]))
@settings(max_examples=50, deadline=None)
# scipy's reference warns of precision loss when hypothesis draws near-identical differences
@pytest.mark.filterwarnings("ignore:Precision loss occurred in moment calculation:RuntimeWarning")
def test_paired_difference_matches_scipy_ttest_rel(pairs, confidence):
    a, b = np.array(pairs).T
    d = results.paired_difference(a, b, confidence=confidence)
    assert d.mean == pytest.approx(float(np.mean(a - b)), abs=1e-12)
    if np.std(a - b) == 0:
        return
    ci = stats.ttest_rel(a, b).confidence_interval(confidence_level=confidence)
    assert d.low == pytest.approx(ci.low, abs=1e-9) and d.high == pytest.approx(ci.high, abs=1e-9)


def test_paired_difference_formats_and_knows_when_zero_is_excluded():
    d = results.paired_difference([0.85, 0.86, 0.87], [0.83, 0.835, 0.84])
    assert d.excludes_zero and d.n == 3
    assert d.format().startswith("+2.50 points (95 % CI +")
    one = results.paired_difference([0.9], [0.8])
    assert math.isnan(one.low) and not one.excludes_zero and "one pair" in str(one)
    noisy = results.paired_difference([0.9, 0.7, 0.8], [0.8, 0.8, 0.8])
    assert not noisy.excludes_zero


@pytest.mark.parametrize("kwargs, match", [
    ({"a": [1, 2], "b": [1]}, "pair one value per seed"),
    ({"a": [], "b": []}, "empty"),
    ({"a": [1, 2], "b": [1, 2], "confidence": 1.0}, "confidence"),
    ({"a": [1, 2], "b": [1, 2], "confidence": 0.0}, "confidence"),
])
def test_paired_difference_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        results.paired_difference(**kwargs)


def test_summarize_groups_in_first_seen_order():
    rows = [{"lam": 0.5, "T": 2, "acc": 0.8}, {"lam": 1.0, "T": 2, "acc": 0.7},
            {"lam": 0.5, "T": 2, "acc": 0.9}]
    s = results.summarize(rows, by=("lam", "T"), metric="acc")
    assert [(g["lam"], g["n"]) for g in s] == [(0.5, 2), (1.0, 1)]
    assert s[0]["mean"] == pytest.approx(0.85) and s[0]["sd"] == pytest.approx(statistics.stdev([0.8, 0.9]))
    assert math.isnan(s[1]["sd"])
    with pytest.raises(ValueError, match="no column 'acc'"):
        results.summarize([{"lam": 1}], by="lam", metric="acc")


def test_csv_round_trip(tmp_path):
    rows = [{"run_id": "007", "lam": 0.5, "n": 3, "ok": True, "hist": [1, 2], "note": None,
             "error": ""},
            {"run_id": "a", "lam": 1.0, "extra": "x", "error": "boom: 1"}]
    path = results.write_csv(rows, tmp_path / "sub" / "r.csv")
    back = results.read_csv(path, text_columns=("run_id", "error"))
    assert back[0] == {"run_id": "007", "lam": 0.5, "n": 3, "ok": True, "hist": [1, 2], "note": None,
                       "error": "", "extra": None}
    assert back[1]["extra"] == "x" and back[1]["error"] == "boom: 1" and back[1]["n"] is None
    assert [p.name for p in path.parent.iterdir()] == ["r.csv"]  # no temporary file left


def test_explicit_columns_keep_their_order(tmp_path):
    path = results.write_csv([{"b": 1, "a": 2, "c": 3}], tmp_path / "r.csv", columns=["a", "b"])
    assert path.read_text().splitlines() == ["a,b", "2,1"]


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    path = results.atomic_write_text(tmp_path / "f.txt", "old")

    with pytest.raises(TypeError):
        results.atomic_write_text(path, 12345)  # not text: fails before the rename
    assert path.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


# --------------------------------------------------------------------------- DataFrames
def _runs():
    rows = []
    for seed, (a, b, c) in enumerate([(0.80, 0.82, 0.79), (0.81, 0.84, 0.80), (0.79, 0.83, 0.80),
                                      (0.82, 0.85, 0.81)]):
        rows += [{"method": "scratch", "seed": seed, "acc": a}, {"method": "kd", "seed": seed, "acc": b},
                 {"method": "ls", "seed": seed, "acc": c}]
    return rows[::-1]  # out of seed order: compare must pair by seed, not by position


def test_compare_pairs_by_seed_against_an_independent_t_interval():
    from scipy import stats

    table = results.compare(_runs(), by="method", metric="acc", reference="scratch")
    assert list(table.index) == ["ls", "kd", "scratch"]  # order of first appearance
    scratch = np.array([0.80, 0.81, 0.79, 0.82])
    kd = np.array([0.82, 0.84, 0.83, 0.85])
    d = kd - scratch
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    row = table.loc["kd"]
    assert row["n"] == 4 and row["mean"] == pytest.approx(kd.mean())
    assert row["sd"] == pytest.approx(kd.std(ddof=1))
    assert row["diff"] == pytest.approx(d.mean()) and row["low"] == pytest.approx(d.mean() - half)
    assert row["high"] == pytest.approx(d.mean() + half) and row["verdict"] == "helped"
    assert row["values"] == pytest.approx(kd.tolist())  # in seed order
    assert math.isnan(table.loc["scratch", "diff"]) and table.loc["scratch", "verdict"] == "reference"
    assert table.loc["ls", "verdict"] == "not shown"  # its interval contains 0


def test_compare_without_a_reference_and_its_errors():
    table = results.compare(_runs(), by="method", metric="acc")
    assert "diff" not in table.columns and table.loc["scratch", "n"] == 4
    with pytest.raises(ValueError, match="reference='nope' is not a group"):
        results.compare(_runs(), by="method", metric="acc", reference="nope")
    with pytest.raises(ValueError, match="no column 'val'"):
        results.compare(_runs(), by="method", metric="val")
    unpaired = [r for r in _runs() if not (r["method"] == "kd" and r["seed"] == 2)]
    with pytest.raises(ValueError, match=r"group 'kd' has no run for seed=\[2\]"):
        results.compare(unpaired, by="method", metric="acc", reference="scratch")
    with pytest.raises(ValueError, match="rows is empty"):
        results.frame([])


def test_styled_shows_mean_sd_and_the_interval_in_points():
    table = results.compare(_runs(), by="method", metric="acc", reference="scratch")
    html = results.styled(table).to_html()
    assert "83.50 ± 1.29 %" in html and "+3.00" in html and "95 % CI" in html and "helped" in html
    one = results.compare([{"m": "a", "seed": 0, "acc": 0.5}], by="m", metric="acc")
    assert "50.00 %" in results.styled(one).to_html()  # one run: no ± sd


def test_verdict_of_a_paired_difference():
    assert results.paired_difference([2.0, 2.1, 2.2], [1, 1, 1]).verdict == "helped"
    assert results.paired_difference([1, 1, 1], [2.0, 2.1, 2.2]).verdict == "hurt"
    assert results.paired_difference([2, 3, 4], [1, 1, 1]).verdict == "not shown"  # t(2) is wide
    assert results.paired_difference([1, 2, 0], [1, 1, 1]).verdict == "not shown"
    assert results.paired_difference([2], [1]).verdict == "not shown"  # no interval from one pair


def test_describe_says_what_the_interval_shows():
    up = results.paired_difference([0.82, 0.831, 0.842], [0.80, 0.81, 0.82])
    assert up.describe("distillation").startswith("distillation helped: +2.10 points (95 % CI +")
    flat = results.paired_difference([0.80, 0.83, 0.79], [0.81, 0.80, 0.81])
    assert flat.describe("label smoothing").startswith("a difference from label smoothing was not shown: ")
    assert "n=3" in flat.describe("x", digits=1)


def test_corrected_resampled_t_against_scipy_by_hand():
    diffs = [0.012, -0.004, 0.020, 0.008, 0.001]
    n_train, n_test = 1600, 400
    d = results.corrected_resampled_t(diffs, n_train, n_test)
    j, mean, var = len(diffs), float(np.mean(diffs)), float(np.var(diffs, ddof=1))
    half = stats.t.ppf(0.975, j - 1) * math.sqrt((1 / j + n_test / n_train) * var)
    assert (d.mean, d.n) == (pytest.approx(mean), j)
    assert (d.low, d.high) == (pytest.approx(mean - half), pytest.approx(mean + half))
    plain = results.paired_difference(diffs, [0.0] * j)  # the uncorrected interval is narrower
    assert d.high - d.low > plain.high - plain.low
    one = results.corrected_resampled_t([0.01], n_train, n_test)
    assert math.isnan(one.low) and one.verdict == "not shown"
    with pytest.raises(ValueError, match="n_train"):
        results.corrected_resampled_t(diffs, 0, n_test)
