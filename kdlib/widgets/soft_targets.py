"""Widgets of notebook 02 (temperature, dark knowledge)."""

from __future__ import annotations

import numpy as np
import torch

from kdlib import plots
from kdlib._checks import check_float
from kdlib.losses import soft_targets
from kdlib.widgets._display import show_in

__all__ = ["TemperatureExplorer"]


class TemperatureExplorer:
    """Pick an image, move the temperature slider ``T``: the teacher's softened distribution redraws.

    The figure (from :func:`kdlib.plots.temperature_view`) shows the image, the bars of
    ``softmax(z / T)`` over the class names (the true class in green) and the entropy
    of that distribution against T, with a marker at the current T. The teacher's
    logits are given once and each image's entropy curve is precomputed, so a callback
    only computes one 10-class softmax and redraws.

    Parameters
    ----------
    teacher_logits : torch.Tensor
        ``(n, classes)`` logits of the ``n`` images offered.
    images : torch.Tensor
        ``(n, 1, H, W)`` or ``(n, H, W)``.
    labels : torch.Tensor
        ``(n,)`` true classes.
    classes : sequence of str
        Class names.
    names : sequence of str, optional
        The picker's text for each image (default ``"0: Shirt"`` …).
    T : float
        Starting temperature.
    T_min, T_max, T_step : float
        The slider's range and step.

    Attributes
    ----------
    widget : ipywidgets.VBox
        Display this (or the explorer itself).
    t_slider : ipywidgets.FloatSlider
        Description ``"T"``.
    image_picker : ipywidgets.Dropdown
        Its value is the index (0 … n-1) of the image shown.
    label : ipywidgets.HTML
        E.g. ``"T = 4.0: entropy 1.23 nats, top class Shirt 0.61"``.
    probs : torch.Tensor
        The current softened distribution, ``softmax(z / T)`` of the image shown (float64).
    figure : matplotlib.figure.Figure
        The figure last drawn.
    redraws : int
        How many times the figure was drawn.
    """

    def __init__(self, teacher_logits, images, labels, classes, *, names=None, T: float = 1.0,
                 T_min: float = 0.5, T_max: float = 20.0, T_step: float = 0.5):
        import ipywidgets as widgets

        z = torch.as_tensor(teacher_logits)
        if z.dim() != 2 or not z.is_floating_point():
            raise ValueError(f"teacher_logits must be a 2-D floating-point tensor (images, classes), "
                             f"got shape {tuple(z.shape)} and dtype {z.dtype}")
        n = len(z)
        if n < 1:
            raise ValueError("teacher_logits must hold at least one image's logits, got 0 rows")
        self.classes = [str(c) for c in classes]
        if len(self.classes) != z.shape[1]:
            raise ValueError(f"classes must name all {z.shape[1]} classes of teacher_logits, "
                             f"got {len(self.classes)} names")
        self.images = torch.as_tensor(images)
        self.labels = torch.as_tensor(labels).long()
        if len(self.images) != n or self.labels.shape != (n,):
            raise ValueError(f"images and labels must have one entry per row of teacher_logits ({n}), "
                             f"got {len(self.images)} images and labels of shape {tuple(self.labels.shape)}")
        names = [f"{i}: {self.classes[int(y)]}" for i, y in enumerate(self.labels)] if names is None \
            else [str(s) for s in names]
        if len(names) != n:
            raise ValueError(f"names must have one entry per image ({n}), got {len(names)}")
        T_min = check_float("T_min", T_min, low=0, low_open=True)
        T_max = check_float("T_max", T_max, low=T_min, low_open=True)
        T_step = check_float("T_step", T_step, low=0, high=T_max - T_min, low_open=True)
        T = check_float("T", T, low=T_min, high=T_max)

        self.logits = z.detach().double()
        self.temperatures = np.geomspace(T_min, T_max, 80)
        self.entropies = plots.entropy_vs_temperature(self.logits, self.temperatures)
        self.probs = None
        self.figure = None
        self.redraws = 0

        self.image_picker = widgets.Dropdown(options=list(zip(names, range(n))), value=0,
                                             description="image",
                                             layout=widgets.Layout(width="340px"))
        self.t_slider = widgets.FloatSlider(value=T, min=T_min, max=T_max, step=T_step,
                                            description="T", readout_format=".1f",
                                            continuous_update=False)
        self.label = widgets.HTML()
        self.out = widgets.Output()
        self.widget = widgets.VBox([widgets.HBox([self.image_picker, self.t_slider]), self.label,
                                    self.out])
        self.image_picker.observe(self._redraw, names="value")
        self.t_slider.observe(self._redraw, names="value")
        self._redraw()

    @property
    def index(self) -> int:
        """Index of the image shown."""
        return int(self.image_picker.value)

    def _redraw(self, change=None) -> None:
        i, T = self.index, float(self.t_slider.value)
        self.probs = soft_targets(self.logits[i], T)
        h = float(plots.entropy_nats(self.probs))
        top = int(self.probs.argmax())
        self.label.value = (f"T = {T:.1f}: entropy {h:.2f} nats, top class "
                            f"{self.classes[top]} {float(self.probs[top]):.2f}")
        self.figure = plots.temperature_view(self.logits[i], T, self.classes, image=self.images[i],
                                             label=int(self.labels[i]),
                                             temperatures=self.temperatures,
                                             entropies=self.entropies[i])
        self.redraws += 1
        show_in(self.out, self.figure)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
