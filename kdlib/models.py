"""The small model zoo, parameter / FLOP counts and safe save / load.

Every builder records how it was called in ``model.kd_arch`` so that
:func:`save` can store the architecture beside the weights and :func:`load`
can rebuild it; checkpoints are read with ``torch.load(weights_only=True)`` and
their weights checked against a stored sha256.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kdlib._checks import check_float, check_int

FORMAT = "kdlib-checkpoint-1"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, tampered with or not a kdlib checkpoint."""


def _tag(model: nn.Module, kind: str, **kwargs) -> nn.Module:
    model.kd_arch = {"kind": kind, "kwargs": kwargs}
    return model


def mlp(sizes, *, dropout: float = 0.0) -> nn.Sequential:
    """A multi-layer perceptron ``Flatten → Linear → ReLU → … → Linear``.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths from input to output, e.g. ``[784, 64, 10]``.
    dropout : float
        Dropout probability after every hidden ReLU (0 = none).

    Returns
    -------
    nn.Sequential
        Tagged with ``kd_arch`` so that :func:`save`/:func:`load` can rebuild it.
    """
    sizes = [check_int(f"sizes[{i}]", s, low=1) for i, s in enumerate(sizes)]
    if len(sizes) < 2:
        raise ValueError(f"sizes={sizes!r} needs at least an input and an output width")
    dropout = check_float("dropout", dropout, low=0.0, high=0.99)
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return _tag(nn.Sequential(*layers), "mlp", sizes=sizes, dropout=dropout)


def cnn(*, channels=(32, 64), hidden: int = 128, n_classes: int = 10, in_channels: int = 1,
        image_size: int = 28, dropout: float = 0.25) -> nn.Sequential:
    """The teacher family: (3×3 conv → ReLU → 2×2 max-pool) per entry of ``channels``,
    then ``Linear(hidden)`` → ReLU → dropout → ``Linear(n_classes)``.

    The default (conv32–conv64–fc128, unpadded convolutions) has 225,034
    parameters on 28×28 inputs.

    Parameters
    ----------
    channels : sequence of int
        Output channels of each conv block.
    hidden : int
        Width of the fully connected layer.
    n_classes, in_channels, image_size : int
        Outputs, input channels and the side of the square input image.
    dropout : float
        Dropout before the last layer.

    Returns
    -------
    nn.Sequential
        Tagged with ``kd_arch`` so that :func:`save`/:func:`load` can rebuild it.
    """
    channels = [check_int(f"channels[{i}]", c, low=1) for i, c in enumerate(channels)]
    hidden = check_int("hidden", hidden, low=1)
    n_classes = check_int("n_classes", n_classes, low=2)
    in_channels = check_int("in_channels", in_channels, low=1)
    image_size = check_int("image_size", image_size, low=3)
    dropout = check_float("dropout", dropout, low=0.0, high=0.99)
    layers: list[nn.Module] = []
    size, c_in = image_size, in_channels
    for c in channels:
        if (size - 2) // 2 < 1:
            raise ValueError(f"image_size={image_size} is too small for {len(channels)} conv "
                             f"blocks (each shrinks the side by 2 and halves it)")
        layers += [nn.Conv2d(c_in, c, 3), nn.ReLU(), nn.MaxPool2d(2)]
        size, c_in = (size - 2) // 2, c
    layers += [nn.Flatten(), nn.Linear(c_in * size * size, hidden), nn.ReLU(),
               nn.Dropout(dropout), nn.Linear(hidden, n_classes)]
    return _tag(nn.Sequential(*layers), "cnn", channels=channels, hidden=hidden,
                n_classes=n_classes, in_channels=in_channels, image_size=image_size,
                dropout=dropout)


class RowRNN(nn.Module):
    """A recurrent classifier that reads an image row by row with a GRU."""

    def __init__(self, row_size: int = 28, hidden: int = 64, n_classes: int = 10):
        super().__init__()
        self.gru = nn.GRU(row_size, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x):
        """Logits from the GRU's last hidden state over the rows of ``x`` (N×…×rows×row_size)."""
        rows = x.reshape(x.shape[0], -1, self.gru.input_size)
        _, h = self.gru(rows)
        return self.head(h[-1])


def rnn(*, row_size: int = 28, hidden: int = 64, n_classes: int = 10) -> RowRNN:
    """A GRU classifier over image rows (a recurrent student).

    Parameters
    ----------
    row_size : int
        Pixels per row (28 for Fashion-MNIST): one time step of the GRU.
    hidden : int
        GRU state size.
    n_classes : int

    Returns
    -------
    RowRNN
        Tagged with ``kd_arch`` for :func:`save`/:func:`load`.
    """
    row_size = check_int("row_size", row_size, low=1)
    hidden = check_int("hidden", hidden, low=1)
    n_classes = check_int("n_classes", n_classes, low=2)
    return _tag(RowRNN(row_size, hidden, n_classes), "rnn", row_size=row_size, hidden=hidden,
                n_classes=n_classes)


BUILDERS = {"mlp": lambda kw: mlp(kw.pop("sizes"), **kw), "cnn": lambda kw: cnn(**kw),
            "rnn": lambda kw: rnn(**kw)}


def build(arch: dict) -> nn.Module:
    """Rebuild a model from its ``kd_arch`` record.

    Parameters
    ----------
    arch : dict
        ``{"kind": one of BUILDERS, "kwargs": {...}}`` as set by the builders.

    Returns
    -------
    nn.Module
        Freshly initialised.
    """
    kind = arch.get("kind") if isinstance(arch, dict) else None
    if kind not in BUILDERS:
        raise ValueError(f"unknown architecture kind {kind!r}; known: {sorted(BUILDERS)}")
    return BUILDERS[kind](dict(arch.get("kwargs", {})))


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters.

    Parameters
    ----------
    model : nn.Module
    trainable_only : bool
        Count only parameters with ``requires_grad``.

    Returns
    -------
    int
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def flops(model: nn.Module, input_shape) -> int:
    """Floating-point operations for one example (2 × multiply-accumulates).

    Counts ``Linear``, ``Conv2d`` and ``GRU`` layers, which dominate these models;
    activations, pooling and biases are ignored.

    Parameters
    ----------
    model : nn.Module
    input_shape : tuple of int
        One example's shape, without the batch dimension (e.g. ``(1, 28, 28)``).

    Returns
    -------
    int
    """
    macs = 0

    def linear(m, inp, out):
        nonlocal macs
        macs += m.in_features * m.out_features * out[0].numel() // m.out_features

    def conv(m, inp, out):
        nonlocal macs
        kh, kw = m.kernel_size
        macs += out[0].numel() * (m.in_channels // m.groups) * kh * kw

    def gru(m, inp, out):
        nonlocal macs
        steps = inp[0].shape[1]
        macs += steps * 3 * m.hidden_size * (m.input_size + m.hidden_size)

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear))
        elif isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv))
        elif isinstance(m, nn.GRU):
            hooks.append(m.register_forward_hook(gru))
    was_training = model.training
    try:
        model.eval()
        with torch.inference_mode():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return 2 * macs


DEVICE_ENV = "KDLIB_DEVICE"


def default_device() -> torch.device:
    """The device kdlib trains on: ``$KDLIB_DEVICE`` if set, else CUDA when available, else CPU.

    One choice for the whole library: :func:`kdlib.train.fit`, ``distill``, the teacher
    and its cached logits follow it; :func:`predict` runs on the model's device and
    returns on the input's device, so metrics and plots see CPU tensors as before.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        ``$KDLIB_DEVICE`` names no device, or one this machine does not have.
    """
    name = os.environ.get(DEVICE_ENV, "").strip()
    if not name:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"{DEVICE_ENV}={name!r} is not a device; allowed: 'cpu', 'cuda', 'cuda:N'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{DEVICE_ENV}={name!r} but this machine has no CUDA device; unset it or use 'cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"{DEVICE_ENV}={name!r} is not supported; allowed: 'cpu', 'cuda', 'cuda:N'")
    return dev


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (CPU for a model without parameters)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """Logits of ``model`` on ``x``, in evaluation mode and in chunks, without gradients.

    Each chunk runs on the model's device; the logits come back on ``x``'s device.
    The model's train/eval mode is restored afterwards.

    Parameters
    ----------
    model : nn.Module
    x : torch.Tensor
        Inputs, shape ``(N, ...)``.
    batch_size : int
        Chunk size.

    Returns
    -------
    torch.Tensor
        Shape ``(N, outputs)``.
    """
    batch_size = check_int("batch_size", batch_size, low=1)
    was_training = model.training
    model.eval()
    try:
        dev = model_device(model)
        return torch.cat([model(x[i:i + batch_size].to(dev)) for i in range(0, len(x), batch_size)]
                         ).to(x.device)
    finally:
        model.train(was_training)


# ----------------------------------------------------------------- save / load
def _weights_digest(state: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def save(model: nn.Module, path, **meta) -> Path:
    """Save weights, architecture and metadata to ``path`` (folders are created).

    ``meta`` holds plain values (numbers, strings, lists, dicts) such as the
    training parameters and the test accuracy. The file is written to a
    temporary name first and renamed, so a failure never leaves half a file.

    Parameters
    ----------
    model : nn.Module
        Built by a kdlib builder (it carries ``kd_arch``).
    path : str or Path
    **meta
        Plain values stored beside the weights.

    Returns
    -------
    Path
    """
    arch = getattr(model, "kd_arch", None)
    if arch is None:
        raise ValueError("model has no kd_arch record: build it with kdlib.models.mlp/cnn/rnn "
                         "so that load() can rebuild it")
    meta = {k: _plain(v, f"meta[{k!r}]") for k, v in meta.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "arch": arch, "meta": meta, "state_dict": state,
               "sha256": _weights_digest(state)}
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _plain(value, where):
    """``value`` as plain Python data that ``torch.load(weights_only=True)`` reads back.

    NumPy scalars and arrays become Python numbers and lists; anything else that is not
    None, bool, int, float, str, a list/tuple/dict of those, or a tensor is refused.
    """
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(value, dict):
        return {k: _plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise TypeError(f"{where} is a {type(value).__name__}; checkpoint metadata must be plain "
                    "values (None, bool, int, float, str, lists/tuples/dicts of them, tensors)")


def load_checkpoint(path) -> dict:
    """Read and verify a checkpoint (``weights_only=True``, sha256 of the weights).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict
        ``{"format", "arch", "meta", "state_dict", "sha256"}``.

    Raises
    ------
    CheckpointError
        Missing, unreadable, not a kdlib checkpoint, or altered weights.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds of errors for damaged files
        first_line = (str(exc).splitlines() or ["no message"])[0][:200]
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(exc).__name__}: "
                              f"{first_line})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a kdlib checkpoint (expected format {FORMAT!r})")
    state = payload.get("state_dict")
    if (not isinstance(state, dict) or not isinstance(payload.get("arch"), dict)
            or not all(isinstance(v, torch.Tensor) for v in state.values())):
        raise CheckpointError(f"{path} is an incomplete kdlib checkpoint (its arch or "
                              "state_dict is missing). Re-create it (notebooks/01_teacher.ipynb).")
    if _weights_digest(payload["state_dict"]) != payload.get("sha256"):
        raise CheckpointError(f"{path}: the weights do not match their stored sha256; the file "
                              "was altered or damaged. Re-create it (notebooks/01_teacher.ipynb).")
    return payload


def load(path) -> nn.Module:
    """Rebuild the model saved at ``path`` and load its weights (evaluation mode).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    nn.Module
        In evaluation mode; the checkpoint's metadata is ``model.kd_meta``.
    """
    payload = load_checkpoint(path)
    model = build(payload["arch"])
    model.load_state_dict(payload["state_dict"])
    model.kd_meta = payload["meta"]
    return model.eval()
