"""kdlib.lessons.lesson11_budget_map: settings, the map's command, reading it, the live slice's
agreement, the figures, the say_* sentences (helped / hurt / not shown) and the exercises."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from _toy import assert_check_params_basics

from kdlib import data as kdata
from kdlib import models, results
from kdlib._checks import Verdict
from kdlib.lessons import lesson11_budget_map as lesson

DEFAULTS = {"n_train": 1000, "epochs": [3, 10], "seeds": 5, "strong": False, "map_path": "",
            "quick": False}


def test_check_params_basics():
    assert_check_params_basics(lesson, DEFAULTS, integer="seeds")


# ------------------------------------------------------------------ settings
def test_check_params_accepts_the_defaults_and_applies_quick():
    s = lesson.check_params(**DEFAULTS)
    assert (s.n_train, s.epochs, s.seeds) == (1000, [3, 10], 5) and s.path == results.MAP_PATH
    assert s.grid.n_trains == (1000,) and s.grid.epochs == (3, 10) and s.grid.lrs == lesson.MAP_GRID.lrs
    rows = lesson.slice_rows(s)
    assert len(rows) == 5000 and rows == sorted(rows)  # five disjoint samples of 1,000
    q = lesson.check_params(**{**DEFAULTS, "quick": True})
    assert (q.n_train, q.epochs, q.seeds) == (lesson.QUICK["n_train"], lesson.QUICK["epochs"], 2)


@pytest.mark.parametrize("kw, exc, match", [({"epochs": 3}, TypeError, "list"),
                                            ({"epochs": [0]}, ValueError, "epochs"),
                                            ({"seeds": 1}, ValueError, "seeds"),
                                            ({"n_train": 60000}, ValueError, "n_train")])
def test_check_params_names_the_bad_parameter(kw, exc, match):
    with pytest.raises(exc, match=match):
        lesson.check_params(**{**DEFAULTS, **kw})


def test_the_shipped_grid_is_sized_as_documented():
    g = lesson.MAP_GRID
    assert g.seeds >= 5 and len(g.lrs) >= 2 and len(g.kd) >= 2 and max(g.n_trains) == 55000
    assert lesson.PRIMARY["n_train"] == max(g.n_trains) and lesson.PRIMARY["epochs"] in g.epochs
    work = lesson.shards(g, 2)
    assert sorted(p for w in work for p in w) == sorted((n, e) for n in g.n_trains for e in g.epochs)
    loads = [sum(lesson.point_cost(g, *p) for p in w) for w in work]
    assert max(loads) / min(loads) < 1.5  # balanced enough for two workers


# ------------------------------------------------------------------ a small map to read
def write_map(tmp_path, cells):
    """A map CSV: per (n, e, method) the per-seed differences to scratch."""
    rows = []
    for (n, e), per_method in cells.items():
        for s in range(3):
            base, at = 0.8 + 0.01 * s, {"n_train": n, "epochs": e, "seed": s, "chosen": True}
            rows.append({**at, "method": "scratch", "test_acc": base})
            rows += [{**at, "method": m, "test_acc": base + d[s]} for m, d in per_method.items()]
    prov = results.provenance(params={"grid": {"n_trains": [1000, 55000], "epochs": [3, 10], "seeds": 3,
                                               "lrs": [0.03], "kd": [[0.5, 4.0]], "eps": [0.1]},
                                      "teacher_test_acc": {"kd": 0.885, "kd (strong teacher)": 0.92}},
                              seconds=1.0)
    return results.write_with_provenance(rows, tmp_path / "map.csv", prov)


HELP, HURT, NONE = [0.010, 0.012, 0.011], [-0.02, -0.025, -0.022], [0.01, -0.01, 0.002]
CELLS = {(1000, 3): {"kd": HURT, "label smoothing": NONE},
         (1000, 10): {"kd": NONE, "label smoothing": NONE},
         (55000, 3): {"kd": HELP, "label smoothing": HELP, "kd (strong teacher)": HELP},
         (55000, 10): {"kd": HELP, "label smoothing": NONE, "kd (strong teacher)": [0.02, 0.023, 0.021]}}


@pytest.fixture
def shipped(tmp_path):
    path = write_map(tmp_path, CELLS)
    settings = lesson.check_params(**{**DEFAULTS, "map_path": str(path)})
    return settings, *lesson.load_map(settings)


def test_load_map_and_its_tables(shipped):
    settings, rows, gains, prov = shipped
    assert set(gains["method"]) == {"kd", "label smoothing", "kd (strong teacher)"}
    assert "code revision" in lesson.provenance_table(prov).index
    grid = lesson.gain_grid(gains, "kd")
    assert grid.loc[1000, 3].endswith("hurt") and grid.loc[55000, 10].endswith("helped")
    t = lesson.point_table(rows, n_train=55000, epochs=10)
    assert t.loc["kd", "verdict"] == "helped"
    with pytest.raises(ValueError, match="no point"):
        lesson.point_table(rows, n_train=5, epochs=3)
    strong = lesson.strong_vs_default(rows)
    assert list(strong.index) == [3, 10] and strong.loc[10, "verdict"] == "helped"


def test_figures(shipped):
    _, rows, gains, _ = shipped
    fig = lesson.map_heatmap(gains, "kd")
    ax = fig.axes[0]
    assert len(ax.patches) == 1  # the one "not shown" cell is hatched
    assert any("n.s." in t.get_text() for t in ax.texts)
    lines = lesson.gain_lines(gains, "kd").axes[0]
    assert len(lines.lines) == 3  # two data sizes and the zero line


def test_say_primary_follows_the_interval(shipped, tmp_path):
    _, _, gains, _ = shipped
    assert "distillation helped" in lesson.say_primary(gains).data
    hurt = results.map_gains(results.read_with_provenance(
        write_map(tmp_path, {(55000, 10): {"kd": HURT}}))[0])
    assert "distillation hurt" in lesson.say_primary(hurt).data
    none = results.map_gains(results.read_with_provenance(
        write_map(tmp_path, {(55000, 10): {"kd": NONE}}))[0])
    assert "not shown" in lesson.say_primary(none).data
    assert "no cell" in lesson.say_primary(gains[gains["epochs"] == 3]).data


def test_say_map_trend_strong_and_summary(shipped):
    _, rows, gains, _ = shipped
    text = lesson.say_map(gains).data
    assert "**kd**: helped in 2 of 4 cells (3 epochs on 55,000, 10 epochs on 55,000); hurt in 1 of 4 cells " \
           "(3 epochs on 1,000); not shown in 1 of 4 cells" in text
    assert "prints 10 intervals" in text and "0.5 of them" in text
    assert "1,000 images:" in lesson.say_trend(gains).data and "(hurt)" in lesson.say_trend(gains).data
    strong = lesson.strong_vs_default(rows)
    s = lesson.say_strong(strong, {"kd": 0.885, "kd (strong teacher)": 0.92}).data
    assert "92.00 %" in s and "88.50 %" in s and "helped" in s
    assert "no strong-teacher" in lesson.say_strong(pd.DataFrame(), {}).data
    summary = lesson.say_summary(gains, strong, pd.DataFrame()).data
    assert "helped in 2, hurt in 1 and was not shown in 1 of 4 cells" in summary
    assert "helped in 1, hurt in 0" in summary and summary.count("\n") == 2


def test_agreement_and_its_sentence(shipped):
    _, _, gains, _ = shipped
    live = gains[gains["n_train"] == 1000].copy()
    agree = lesson.agreement(gains, live)
    assert agree["within"].all() and len(agree) == 4
    assert lesson.say_agreement(agree, 4).data.startswith("**Live slice agrees with the shipped map**")
    off = live.assign(diff=live["diff"] + 0.5)
    text = lesson.say_agreement(lesson.agreement(gains, off), 5).data
    assert text.startswith("**Live slice departs from") and "0 of 4" in text and "1 live cells" in text
    assert "no agreement to check" in lesson.say_agreement(lesson.agreement(gains, live.iloc[:0]), 3).data


def test_positions_place_settings_on_the_map(shipped):
    settings, *_ = shipped
    table = lesson.positions([("short", 3, 1000), ("long", 20, 40000)], path=settings.path)
    assert table.loc["short", "verdict"] == "hurt"
    assert table.loc["long", "cell"] == "10 epochs × 55,000 images"


def test_exercises(shipped, monkeypatch):
    _, _, gains, _ = shipped
    assert isinstance(lesson.check_exercise(1, None), Verdict) and not lesson.check_exercise(1, None)
    assert lesson.check_exercise(1, 55000, gains=gains)
    assert not lesson.check_exercise(1, 1000, gains=gains)
    assert not lesson.check_exercise(1, "many", gains=gains)
    assert lesson.check_exercise(3, "wider") and not lesson.check_exercise(3, "narrower")
    fake = {"verdict": "hurt", "phrase": "5 epochs on 2,000 images: ..."}
    monkeypatch.setattr(results, "map_position", lambda **kw: fake)
    assert lesson.check_exercise(2, "hurt") and not lesson.check_exercise(2, "helped")
    assert not lesson.check_exercise(2, "maybe")


# ------------------------------------------------------------------ make results
def test_make_teachers_skips_an_existing_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path))
    (tmp_path / lesson.STRONG_TEACHER["checkpoint"]).write_bytes(b"x")
    assert lesson.make_teachers() == []


def test_teacher_logits_of_some_rows_only(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path))
    torch.manual_seed(0)
    models.save(models.mlp([4, 3]), tmp_path / "teacher.pt")
    train = kdata.Split(torch.rand(10, 1, 2, 2), torch.arange(10) % 3)
    pool = kdata.Splits(train, None, None, ("a", "b", "c"), "t")
    full = lesson.teacher_logits(pool, ["kd"])["kd"]
    some = lesson.teacher_logits(pool, ["kd"], rows=[1, 4, 4])["kd"]
    assert torch.allclose(some[[1, 4]], full[[1, 4]]) and not some[[0, 2, 3]].any()
    with pytest.raises(FileNotFoundError, match="make teachers"):
        lesson.teacher_logits(pool, ["kd (strong teacher)"])


def test_partial_map_is_written_from_finished_points_and_resumed(tmp_path, monkeypatch):
    grid = lesson.QUICK_GRID
    out = tmp_path / "map.csv"
    folder = out.with_name(out.name + ".points")
    folder.mkdir()
    row = {"n_train": 200, "epochs": 1, "method": "scratch", "lam": 1.0, "T": 1.0, "eps": 0.0, "lr": 0.03,
           "seed": 0, "val_acc": 0.5, "chosen": True, "test_acc": 0.5, "seconds": 0.1, "point_seconds": 2.0}
    results.write_csv([row, {**row, "seed": 1}], lesson._point_file(folder, grid, 200, 1))
    monkeypatch.setattr(lesson, "teacher_accuracies", lambda names=None: {"kd": 0.9})
    lesson.make_map(out, quick=True, partial=True)
    rows, prov = results.read_with_provenance(out)
    assert len(rows) == 2 and not prov["params"]["complete"] and "1000x2" in prov["params"]["missing_points"]
    assert prov["params"]["point_seconds"] == {"200x1": 2.0}
    shutil.rmtree(folder)  # a fresh checkout: only the shipped partial map
    lesson._seed_points(out, grid, folder.mkdir() or folder)
    assert lesson._point_file(folder, grid, 200, 1).is_file()


@pytest.mark.slow
def test_make_results_quick_writes_a_map_with_provenance(tmp_path):
    if not (kdata.data_dir() / lesson.TEACHERS["kd (strong teacher)"]).is_file():
        pytest.skip("no strong teacher checkpoint; run `make teachers`")
    out = tmp_path / "map.csv"
    repo = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "kdlib.lessons.lesson11_budget_map", "--quick", "--jobs", "1",
                    "--out", str(out)], cwd=repo, check=True)
    rows, prov = results.read_with_provenance(out)
    grid = lesson.QUICK_GRID
    assert set(zip(rows["n_train"], rows["epochs"])) == {(n, e) for n in grid.n_trains for e in grid.epochs}
    assert prov["params"]["quick"] and prov["seconds"] > 0 and prov["torch"]
    assert not out.with_name(out.name + ".points").exists()
    gains = results.map_gains(rows)
    assert set(gains["method"]) == {"label smoothing", "kd", "kd (strong teacher)"}
