"""Widgets of notebook 05 (lambda / T tuning, cross-validation, seeds).

:class:`GridExplorer` browses a precomputed λ × T grid (its sliders only redraw);
:class:`TrainNow` trains one student on demand with live curves.
"""

from __future__ import annotations

import html
import time

import numpy as np

from kdlib import plots
from kdlib import tuning as _tuning
from kdlib._checks import check_float, check_int
from kdlib.widgets._display import figure_png, in_kernel, show_in

__all__ = ["GridExplorer", "TrainNow"]


def _pct(values) -> str:
    v = np.asarray(values, float)
    if len(v) > 1:
        return f"{100 * v.mean():.2f} ± {100 * v.std(ddof=1):.2f} %"
    return f"{100 * v.mean():.2f} %"


class GridExplorer:
    """Sliders ``λ`` and ``T`` over a precomputed grid; the callback only redraws.

    Every student was trained beforehand (:func:`kdlib.tuning.grid`), so moving a
    slider looks the point's rows up and draws :func:`kdlib.plots.grid_point`:
    learning curves of every seed, the validation accuracy and the agreement with
    the teacher, with the baseline student (λ = 1) and the teacher as references.
    Each point's figure (and, in a kernel, its PNG) is made once and kept, so
    returning to a point only swaps the picture.

    Parameters
    ----------
    rows : list of dict
        Grid rows (several seeds per point are drawn together). Rows with λ = 1
        match any T (the temperature does not act on a pure hard-label student).
    teacher_acc : float, optional
        The teacher's validation accuracy (a reference line).
    baseline : list of dict, optional
        Rows of the baseline student (:func:`kdlib.tuning.baseline`).
    lam, T : float, optional
        The point shown first (default: the best mean validation accuracy).

    Attributes
    ----------
    widget : ipywidgets.VBox
        Display this (or the explorer itself).
    lam_slider, T_slider : ipywidgets.SelectionSlider
        Descriptions ``"λ"`` and ``"T"``; their values are the grid's values.
    label : ipywidgets.HTML
        What the point scored, e.g. ``"λ=0.5, T=4: validation accuracy 84.89 ± 0.18 %..."``.
    current : list of dict
        The rows shown (one per seed).
    figure : matplotlib.figure.Figure
        The figure last drawn.
    redraws : int
    last_seconds : float
        Wall time of the last callback (in a kernel including the PNG rendering).
    """

    def __init__(self, rows, *, teacher_acc: float | None = None, baseline=None, lam=None,
                 T=None):
        import ipywidgets as widgets

        self.rows = [r for r in rows]
        if not self.rows:
            raise ValueError("rows is empty: run kdlib.tuning.grid first")
        self.teacher_acc = None if teacher_acc is None else check_float(
            "teacher_acc", teacher_acc, low=0.0, high=1.0)
        self.baseline = list(baseline) if baseline else []
        lams = sorted({float(r["lam"]) for r in self.rows})
        Ts = sorted({float(r["T"]) for r in self.rows})
        if lam is None or T is None:
            best = _tuning.select_best(self.rows)
            lam = best["lam"] if lam is None else lam
            T = best["T"] if T is None else T
        if float(lam) not in lams:
            raise ValueError(f"lam={lam!r} is not a grid value; choose one of {lams}")
        if float(T) not in Ts:
            raise ValueError(f"T={T!r} is not a grid value; choose one of {Ts}")
        self.current: list = []
        self.figure = None
        self._drawn: dict = {}  # (lam, T) -> (figure, png): a point is drawn only once
        self.redraws = 0
        self.last_seconds = float("nan")
        self.lam_slider = widgets.SelectionSlider(options=[(f"{v:g}", v) for v in lams],
                                                  value=float(lam), description="λ",
                                                  continuous_update=True)
        self.T_slider = widgets.SelectionSlider(options=[(f"{v:g}", v) for v in Ts],
                                                value=float(T), description="T",
                                                continuous_update=True)
        self.label = widgets.HTML()
        self.out = widgets.Output()
        self.widget = widgets.VBox([widgets.HBox([self.lam_slider, self.T_slider]), self.label,
                                    self.out])
        self.lam_slider.observe(self._redraw, names="value")
        self.T_slider.observe(self._redraw, names="value")
        self._redraw()

    def rows_at(self, lam: float, T: float) -> list:
        """The rows of grid point (λ, T), in their original order."""
        return [r for r in self.rows if r["lam"] == lam and
                (r["T"] == T or lam == _tuning.BASELINE_LAM)]

    def _redraw(self, change=None) -> None:
        t0 = time.perf_counter()
        lam, T = float(self.lam_slider.value), float(self.T_slider.value)
        self.current = self.rows_at(lam, T)
        figure, png = self._drawn.get((lam, T), (None, None))
        if figure is None:
            figure = plots.grid_point(self.current, baseline_rows=self.baseline,
                                      teacher_acc=self.teacher_acc,
                                      title=f"λ = {lam:g}, T = {T:g}")
        self.figure = figure
        if self.current:
            text = (f"<b>λ={lam:g}, T={T:g}</b>: validation accuracy "
                    f"{_pct([r['val_acc'] for r in self.current])}, agreement with the teacher "
                    f"{_pct([r['agreement'] for r in self.current])} "
                    f"({len(self.current)} seed{'s' * (len(self.current) != 1)})")
            if self.baseline:
                text += f"; baseline λ=1: {_pct([r['val_acc'] for r in self.baseline])}"
            if self.teacher_acc is not None:
                text += f"; teacher: {100 * self.teacher_acc:.2f} %"
        else:
            text = f"λ={lam:g}, T={T:g}: no run at this point"
        self.label.value = text
        self._drawn[(lam, T)] = (figure, show_in(self.out, figure, png))
        self.redraws += 1
        self.last_seconds = time.perf_counter() - t0

    def prerender(self) -> int:
        """Draw every grid point's figure (and PNG, in a kernel) now; returns how many.

        Afterwards every slider move only swaps a stored picture (a few ms)
        instead of drawing a new figure (a few hundred ms with matplotlib).
        """
        made = 0
        for _, lam in self.lam_slider.options:
            for _, T in self.T_slider.options:
                if (lam, T) in self._drawn:
                    continue
                rows = self.rows_at(lam, T)
                fig = plots.grid_point(rows, baseline_rows=self.baseline,
                                       teacher_acc=self.teacher_acc,
                                       title=f"λ = {lam:g}, T = {T:g}")
                self._drawn[(lam, T)] = (fig, figure_png(fig) if in_kernel() else None)
                made += 1
        return made

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


class TrainNow:
    """Pick λ, T and epochs, press the button: one student trains with live curves.

    The sliders have ``continuous_update=False`` (nothing retrains while
    dragging); training starts only on the button. While it runs the button is
    disabled and a progress bar counts epochs; the curves redraw after every
    epoch. The button is enabled again afterwards, also when training fails
    (the error is shown in ``label`` and kept in ``error``).

    Parameters
    ----------
    data : kdlib.data.Splits or (train, val) pair
    teacher_logits : Tensor or dict
        The teacher's logits on the training split (a dict with ``"val"`` also
        gives the agreement).
    lam, T : float
        Initial slider values.
    epochs : int
        Initial epochs (slider from 1 to ``max_epochs``).
    seed, hidden, lr, batch_size :
        The student recipe (see :func:`kdlib.tuning.train_student`).
    teacher_acc, baseline_acc : float, optional
        Reference lines (validation accuracy of the teacher and of the baseline).

    Attributes
    ----------
    widget : ipywidgets.VBox
    lam_slider, T_slider, epochs_slider : ipywidgets sliders
        Descriptions ``"train λ"``, ``"train T"``, ``"epochs"``.
    button : ipywidgets.Button
    progress : ipywidgets.IntProgress
        Epochs done (``max`` = epochs of the run).
    label : ipywidgets.HTML
        The result (or the error).
    figure : Figure
        The learning curves last drawn.
    history : kdlib.train.History
        Of the last run; ``result`` the dict from :func:`kdlib.tuning.evaluate`
        plus lam, T, epochs, seconds; ``error`` the exception of a failed run.
    runs : int
        Number of finished or failed runs.
    redraw_every : float
        Seconds between two redraws of the live curves (the first and the last epoch
        are always drawn); ``draws`` counts the redraws.
    """

    def __init__(self, data, teacher_logits, *, lam: float = 0.5, T: float = 4.0,
                 epochs: int = _tuning.STUDENT_DEFAULTS["epochs"], max_epochs: int = 60,
                 seed: int = 0, hidden: int = _tuning.STUDENT_DEFAULTS["hidden"],
                 lr: float = _tuning.STUDENT_DEFAULTS["lr"],
                 batch_size: int = _tuning.STUDENT_DEFAULTS["batch_size"],
                 teacher_acc: float | None = None, baseline_acc: float | None = None):
        import ipywidgets as widgets

        self.data = data
        self.teacher_logits = teacher_logits
        self.seed = check_int("seed", seed, low=0)
        self.hidden = check_int("hidden", hidden, low=1)
        self.lr = check_float("lr", lr, low=0.0, low_open=True)
        self.batch_size = check_int("batch_size", batch_size, low=1)
        max_epochs = check_int("max_epochs", max_epochs, low=1)
        epochs = check_int("epochs", epochs, low=1, high=max_epochs)
        lam = check_float("lam", lam, low=0.0, high=1.0)
        T = check_float("T", T, low=0.5, high=20.0)
        self.references = {}
        if teacher_acc is not None:
            self.references["teacher"] = check_float("teacher_acc", teacher_acc, low=0.0, high=1.0)
        if baseline_acc is not None:
            self.references["baseline λ=1"] = check_float("baseline_acc", baseline_acc,
                                                          low=0.0, high=1.0)
        self.figure = None
        self.history = None
        self.result = None
        self.error = None
        self.runs = 0
        self.running = False
        self.redraw_every = 0.5
        self.draws = 0
        self._last_draw = -float("inf")
        style = {"description_width": "60px"}
        self.lam_slider = widgets.FloatSlider(value=lam, min=0.0, max=1.0, step=0.05,
                                              description="train λ", continuous_update=False,
                                              readout_format=".2f", style=style)
        self.T_slider = widgets.FloatSlider(value=T, min=0.5, max=20.0, step=0.5,
                                            description="train T", continuous_update=False,
                                            readout_format=".1f", style=style)
        self.epochs_slider = widgets.IntSlider(value=epochs, min=1, max=max_epochs,
                                               description="epochs", continuous_update=False,
                                               style=style)
        self.button = widgets.Button(description="train now", icon="play", button_style="primary")
        self.progress = widgets.IntProgress(value=0, min=0, max=epochs, description="epoch",
                                            style=style)
        self.label = widgets.HTML("Pick λ, T and epochs, then press <i>train now</i>.")
        self.out = widgets.Output()
        self.widget = widgets.VBox([
            widgets.HBox([self.lam_slider, self.T_slider, self.epochs_slider]),
            widgets.HBox([self.button, self.progress]), self.label, self.out])
        self.button.on_click(self._on_click)

    def _on_epoch(self, history) -> None:
        self.history = history
        done = len(history.val_acc)
        self.progress.value = min(done, self.progress.max)
        # Drawing a PNG takes a few hundred ms: redraw at most every redraw_every seconds,
        # and always after the last epoch.
        if done >= self.progress.max or time.perf_counter() - self._last_draw >= self.redraw_every:
            self.figure = plots.learning_curves([history], references=self.references,
                                                labels=[self._title], title=self._title)
            show_in(self.out, self.figure)
            self._last_draw = time.perf_counter()
            self.draws += 1

    def _on_click(self, button=None) -> None:
        if self.running:
            return
        self.running = True
        self.button.disabled = True
        lam, T = float(self.lam_slider.value), float(self.T_slider.value)
        epochs = int(self.epochs_slider.value)
        self._title = f"λ = {lam:g}, T = {T:g}"
        self.progress.max = epochs
        self.progress.value = 0
        self.label.value = f"training {self._title} for {epochs} epochs ..."
        self.error = None
        t0 = time.perf_counter()
        self._last_draw = -float("inf")
        try:
            student, history = _tuning.train_student(
                self.data, self.teacher_logits, lam=lam, T=T, seed=self.seed, epochs=epochs,
                lr=self.lr, batch_size=self.batch_size, hidden=self.hidden,
                callback=self._on_epoch)
            self.history = history
            metrics = _tuning.evaluate(student, self.data, self.teacher_logits)
            seconds = time.perf_counter() - t0
            self.result = {"lam": lam, "T": T, "epochs": epochs, **metrics,
                           "seconds": seconds}
            refs = "".join(f", {k} {100 * v:.2f} %" for k, v in self.references.items())
            agreement = "" if np.isnan(metrics["agreement"]) else \
                f", agreement with the teacher {100 * metrics['agreement']:.2f} %"
            self.label.value = (f"<b>{self._title}, {epochs} epochs</b>: validation accuracy "
                                f"{100 * metrics['val_acc']:.2f} %{agreement} "
                                f"(trained in {seconds:.1f} s{refs})")
        except Exception as exc:  # shown to the reader; the button must come back
            self.error = exc
            self.result = None
            self.label.value = html.escape(f"training failed: {type(exc).__name__}: {exc}")
        finally:
            self.runs += 1
            self.running = False
            self.button.disabled = False

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
