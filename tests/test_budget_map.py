"""The budget map's core pieces: experiments.BudgetGrid / budget_point / budget_map,
results' CSV with provenance, map_gains and map_position, plots.heatmap, models.ShiftFlip and
train_teacher(augment=True)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from kdlib import experiments, models, plots, results
from kdlib.data import Split, Splits
from kdlib.train import train_teacher


def toy_pool(n=240, seed=0):
    """4×4 'images' whose class is the brightest of the first three pixels (learnable fast)."""
    g = torch.Generator().manual_seed(seed)

    def split(k):
        x = torch.rand(k, 1, 4, 4, generator=g)
        return Split(x, x.reshape(k, -1)[:, :3].argmax(1))

    return Splits(split(n), split(90), split(90), ("a", "b", "c"), "toy")


TINY = experiments.BudgetGrid(n_trains=(30, 60), epochs=(1, 2), seeds=3, lrs=(1e-2, 3e-2),
                              kd=((0.5, 2.0),), eps=(0.1,), hidden=8, batch_size=16,
                              extra_teachers_at=(60,))


def teachers(pool):
    good = torch.nn.functional.one_hot(pool.train.y, 3).float() * 4
    return {"kd": good, "kd (other)": good.flip(1)}


# ------------------------------------------------------------------ experiments
def test_budget_grid_checks_its_values_and_lists_the_candidates():
    with pytest.raises(ValueError, match="seeds"):
        experiments.BudgetGrid(seeds=1)
    with pytest.raises(ValueError, match="lam"):
        experiments.BudgetGrid(kd=((1.5, 2.0),))
    cands = TINY.candidates(["kd", "kd (other)"])
    names = [m.name for m, _ in cands]
    assert names.count("scratch") == 2 and names.count("label smoothing") == 2
    assert names.count("kd") == 2 and names.count("kd (other)") == 2


def test_budget_point_tunes_every_method_on_validation_and_tests_the_chosen_only():
    pool = toy_pool()
    rows = experiments.budget_point(pool, teachers(pool), n_train=30, epochs=2, grid=TINY)
    df = pd.DataFrame(rows)
    assert len(df) == len(TINY.candidates(["kd", "kd (other)"])) * TINY.seeds
    assert set(df["method"]) == {"scratch", "label smoothing", "kd", "kd (other)"}
    chosen = df[df["chosen"]]
    assert chosen.groupby("method").size().eq(TINY.seeds).all()  # one candidate × every seed
    assert df.loc[~df["chosen"], "test_acc"].isna().all() and chosen["test_acc"].notna().all()
    for _, g in df.groupby("method"):  # the chosen candidate has the best mean val_acc
        means = g.groupby(["lr", "lam", "T", "eps"])["val_acc"].mean()
        best = g[g["chosen"]].iloc[0]
        assert means[tuple(best[k] for k in ("lr", "lam", "T", "eps"))] == means.max()
    # each seed's sample is shared by every method (pairing), and seeds draw different samples
    samples = experiments.sample_rows(len(pool.train.y), 30, TINY.seeds)
    assert len({samples[s] for s in range(TINY.seeds)}) == TINY.seeds


def test_budget_point_distils_each_teacher_from_its_own_logits():
    pool = toy_pool()
    soft_only = experiments.BudgetGrid(n_trains=(60,), epochs=(8,), seeds=2, lrs=(3e-2,), kd=((0.0, 1.0),),
                                       eps=(0.1,), hidden=8, batch_size=16)
    rows = pd.DataFrame(experiments.budget_point(pool, teachers(pool), n_train=60, epochs=8, grid=soft_only))
    kd = rows[rows["method"] == "kd"]["val_acc"].mean()
    wrong = rows[rows["method"] == "kd (other)"]["val_acc"].mean()
    assert kd > wrong  # the flipped teacher teaches the wrong classes


def test_budget_point_checks_the_logits_and_the_grid():
    pool = toy_pool()
    with pytest.raises(ValueError, match="shape"):
        experiments.budget_point(pool, {"kd": torch.zeros(5, 3)}, n_train=30, epochs=1, grid=TINY)
    with pytest.raises(TypeError, match="BudgetGrid"):
        experiments.budget_point(pool, {}, n_train=30, epochs=1, grid={"seeds": 3})


def test_budget_map_covers_every_point_and_extra_teachers_only_where_asked():
    pool = toy_pool()
    rows = pd.DataFrame(experiments.budget_map(pool, teachers(pool), TINY, progress=False))
    assert set(zip(rows["n_train"], rows["epochs"])) == {(30, 1), (30, 2), (60, 1), (60, 2)}
    assert set(rows.loc[rows["n_train"] == 30, "method"]) == {"scratch", "label smoothing", "kd"}
    assert "kd (other)" in set(rows.loc[rows["n_train"] == 60, "method"])


# ------------------------------------------------------------------ results
def test_provenance_records_revision_params_seconds_versions_and_date():
    p = results.provenance(params={"a": 1}, seconds=12.345)
    assert p["params"] == {"a": 1} and p["seconds"] == 12.3
    assert len(p["revision"].split("+")[0]) in (40, len("unknown"))
    assert p["torch"] == torch.__version__ and p["date"].endswith("Z")


def test_csv_with_provenance_round_trip(tmp_path):
    rows = [{"n_train": 100, "epochs": 3, "method": "scratch", "seed": 0, "test_acc": 0.8, "chosen": True},
            {"n_train": 100, "epochs": 3, "method": "kd", "seed": 0, "test_acc": None, "chosen": False}]
    prov = results.provenance(params={"grid": [1, 2]}, seconds=1.0)
    path = results.write_with_provenance(rows, tmp_path / "m.csv", prov)
    table, back = results.read_with_provenance(path)
    assert back == json.loads(json.dumps(prov))
    assert table.to_dict("records")[0] == rows[0]
    assert pd.isna(table.loc[1, "test_acc"]) and not table.loc[1, "chosen"]
    (tmp_path / "m.json").unlink()
    with pytest.raises(FileNotFoundError, match="make results"):
        results.read_with_provenance(path)


def small_map(tmp_path, *, gains):
    """A map of chosen rows whose KD − scratch differences per seed are ``gains[(n, e)]``."""
    rows = []
    for (n, e), diffs in gains.items():
        for s, d in enumerate(diffs):
            base, at = 0.80 + 0.01 * s, {"n_train": n, "epochs": e, "seed": s}
            rows += [{**at, "method": "scratch", "test_acc": base, "chosen": True},
                     {**at, "method": "kd", "test_acc": base + d, "chosen": True},
                     {**at, "method": "kd", "test_acc": None, "chosen": False}]
    prov = results.provenance(params={}, seconds=0)
    return results.write_with_provenance(rows, tmp_path / "map.csv", prov)


GAINS = {(1000, 3): [-0.02, -0.03, -0.025], (1000, 30): [0.01, -0.01, 0.005],
         (55000, 3): [0.004, 0.006, 0.005], (55000, 30): [0.01, 0.012, 0.011]}


def test_map_gains_pairs_by_seed_at_every_point(tmp_path):
    table, _ = results.read_with_provenance(small_map(tmp_path, gains=GAINS))
    g = results.map_gains(table).set_index(["n_train", "epochs"])
    assert g.loc[(1000, 3), "verdict"] == "hurt" and g.loc[(1000, 30), "verdict"] == "not shown"
    assert g.loc[(55000, 30), "verdict"] == "helped"
    assert g.loc[(55000, 30), "diff"] == pytest.approx(0.011)
    assert (g["n"] == 3).all() and set(g["method"]) == {"kd"}


def test_map_position_finds_the_nearest_cell_on_log_axes_and_says_where(tmp_path):
    path = small_map(tmp_path, gains=GAINS)
    exact = results.map_position(epochs=3, n_train=1000, path=path)
    assert exact["exact"] and exact["verdict"] == "hurt"
    assert exact["phrase"].startswith("3 epochs on 1,000 images: a region where KD hurt (")
    near = results.map_position(epochs=20, n_train=40000, path=path)
    assert (near["epochs"], near["n_train"], near["exact"]) == (30, 55000, False)
    assert "nearest map cell: 30 epochs on 55,000 images" in near["phrase"] and "helped" in near["phrase"]
    assert results.map_position(epochs=30, n_train=1000, path=path)["phrase"].startswith(
        "30 epochs on 1,000 images: a region where KD's gain was not shown (+0.17 points, 95 % CI ")
    with pytest.raises(ValueError, match="not on the map"):
        results.map_position(epochs=3, n_train=1000, path=path, method="label smoothing")
    with pytest.raises(ValueError, match=">= 1"):
        results.map_position(epochs=0, n_train=1000, path=path)


def test_say_map_position_renders_the_cell_and_the_caveat_or_what_to_run(tmp_path):
    path = small_map(tmp_path, gains=GAINS)
    plain = results.say_map_position(epochs=3, n_train=1000, path=path).data
    assert plain.startswith("**On the budget map** (notebook 11") and "3 seeds" in plain
    assert "3 epochs on 1,000 images: a region where KD hurt (" in plain
    assert "not as a prediction" not in plain
    other = results.say_map_position(epochs=5, n_train=2000, student="a GRU", path=path).data
    assert "nearest map cell" in other and "not a GRU" in other and "not as a prediction" in other
    missing = results.say_map_position(epochs=3, n_train=1000, path=tmp_path / "none.csv").data
    assert "`make results` computes it" in missing


# ------------------------------------------------------------------ plots, models, train
def test_heatmap_draws_values_annotations_and_hatches():
    values = pd.DataFrame([[1.0, -0.5], [0.2, np.nan]], index=[1000, 5000], columns=[3, 10])
    marked = pd.DataFrame([[False, True], [True, False]], index=values.index, columns=values.columns)
    fig = plots.heatmap(values, marked=marked, text=values.map(lambda v: f"{v:+.1f}"), title="t")
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array().filled(np.nan), values.to_numpy())
    assert len(ax.patches) == 2 and {t.get_text() for t in ax.texts} >= {"+1.0", "-0.5"}
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1,000", "5,000"]
    with pytest.raises(ValueError, match="2-D"):
        plots.heatmap(pd.DataFrame())


def test_shift_flip_is_seeded_shifts_within_bounds_and_is_the_identity_in_eval():
    x = torch.rand(64, 1, 28, 28)
    a, b = models.ShiftFlip(seed=3)(x), models.ShiftFlip(seed=3)(x)
    assert torch.equal(a, b) and a.shape == x.shape and not torch.equal(a, x)
    assert not torch.equal(models.ShiftFlip(seed=4)(x), a)
    pure = models.ShiftFlip(max_shift=0, flip=False)
    assert torch.equal(pure(x), x)
    flipped = models.ShiftFlip(max_shift=0, flip=True, seed=0)(x)
    same = [torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(-1)) for i in range(64)]
    assert all(same)
    one = torch.zeros(1, 1, 9, 9)
    one[0, 0, 4, 4] = 1.0
    for seed in range(20):  # the bright pixel moves by at most 2 in each direction
        r, c = divmod(int(models.ShiftFlip(seed=seed)(one).argmax()), 9)
        assert abs(r - 4) <= 2 and abs(c - 4) <= 2
    m = models.ShiftFlip(seed=0).eval()
    assert torch.equal(m(x), x)


def test_train_teacher_with_augment_returns_the_cnn_and_is_reproducible():
    def split(n):
        return Split(torch.rand(n, 1, 28, 28), torch.arange(n) % 3)

    img = Splits(split(64), split(16), split(8), ("a", "b", "c"), "t")
    kw = dict(epochs=1, batch_size=16, channels=(4,), hidden=8, progress=False)
    t1, _ = train_teacher(img, augment=True, **kw)
    t2, _ = train_teacher(img, augment=True, **kw)
    t0, _ = train_teacher(img, **kw)
    assert t1.kd_arch["kind"] == "cnn" and not isinstance(t1[0], models.ShiftFlip)
    assert all(torch.equal(a, b) for a, b in zip(t1.state_dict().values(), t2.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(t1.state_dict().values(), t0.state_dict().values()))
