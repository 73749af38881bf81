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

from kdlib._checks import Each, Float, Int, validate_params

FORMAT = "kdlib-checkpoint-1"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, tampered with or not a kdlib checkpoint.

    Parameters
    ----------
    message : str
        Names the checkpoint file and what is wrong with it.
    """


class FastMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` with a faster evaluation path for 2×2 windows.

    Without autograd (``predict``, validation, cached teacher logits) a 2×2,
    stride-2 pool is computed as the element-wise maximum of the window's four
    strided corners. That gives the same numbers bit for bit, 11–12× faster than PyTorch's
    NCHW CPU kernel on the teacher's first pool at batch 128 and 6× on its second
    (``benchmarks/pooling.py``, 2 threads); that kernel had made pooling the costliest
    layer of the teacher's forward pass. With autograd it is
    ``nn.MaxPool2d`` unchanged, so training, gradients and seeds behave as before.
    It prints as ``FastMaxPool2d``, so a printed teacher shows that it is not PyTorch's own
    class (it is a subclass: ``isinstance(layer, nn.MaxPool2d)`` holds).

    Parameters
    ----------
    kernel_size, stride, padding, dilation, return_indices, ceil_mode
        As for ``nn.MaxPool2d``; the fast path needs ``kernel_size=2``, ``stride=2``, no padding,
        dilation 1, ``ceil_mode=False`` and ``return_indices=False`` (anything else is PyTorch's path).
    """

    def _fast(self) -> bool:
        return (self.kernel_size in (2, (2, 2)) and self.stride in (2, (2, 2))
                and self.padding in (0, (0, 0)) and self.dilation in (1, (1, 1))
                and not self.ceil_mode and not self.return_indices)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool ``x`` (…×H×W); the strided-maximum path when no gradient is needed."""
        if (torch.is_grad_enabled() and x.requires_grad) or not self._fast():
            return super().forward(x)
        h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
        top = torch.maximum(x[..., 0:h:2, 0:w:2], x[..., 0:h:2, 1:w:2])
        return torch.maximum(top, torch.maximum(x[..., 1:h:2, 0:w:2], x[..., 1:h:2, 1:w:2]))


def _tag(model: nn.Module, kind: str, **kwargs) -> nn.Module:
    model.kd_arch = {"kind": kind, "kwargs": kwargs}
    return model


@validate_params(sizes=Each(Int(low=1)), dropout=Float(low=0.0, high=0.99))
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
    if len(sizes) < 2:
        raise ValueError(f"sizes={sizes!r} needs at least an input and an output width")
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return _tag(nn.Sequential(*layers), "mlp", sizes=sizes, dropout=dropout)


@validate_params(channels=Each(Int(low=1)), hidden=Int(low=1), n_classes=Int(low=2),
                 in_channels=Int(low=1), image_size=Int(low=3), dropout=Float(low=0.0, high=0.99))
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
    layers: list[nn.Module] = []
    size, c_in = image_size, in_channels
    for c in channels:
        if (size - 2) // 2 < 1:
            raise ValueError(f"image_size={image_size} is too small for {len(channels)} conv "
                             f"blocks (each shrinks the side by 2 and halves it)")
        layers += [nn.Conv2d(c_in, c, 3), nn.ReLU(), FastMaxPool2d(2)]
        size, c_in = (size - 2) // 2, c
    layers += [nn.Flatten(), nn.Linear(c_in * size * size, hidden), nn.ReLU(),
               nn.Dropout(dropout), nn.Linear(hidden, n_classes)]
    return _tag(nn.Sequential(*layers), "cnn", channels=channels, hidden=hidden,
                n_classes=n_classes, in_channels=in_channels, image_size=image_size,
                dropout=dropout)


class ShiftFlip(nn.Module):
    """On-the-fly augmentation for training: a random shift of up to ``max_shift`` pixels in
    each direction (zeros fill the border) and, with ``flip``, a horizontal flip of half the
    images; the identity in evaluation mode.

    Put it in front of a model for :func:`kdlib.train.fit` (``nn.Sequential(ShiftFlip(seed=s),
    model)``) and keep training the model itself: the shifts and flips are drawn from this
    module's own generator, so ``seed`` alone fixes them (the global random state is not used).

    Parameters
    ----------
    max_shift : int >= 0
        Largest shift in pixels, up, down, left or right (2: ±2 px).
    flip : bool
        Also flip a random half of the images left to right.
    seed : int >= 0
        Seeds the generator of the shifts and flips.
    """

    @validate_params(max_shift=Int(low=0), seed=Int(low=0))
    def __init__(self, max_shift: int = 2, flip: bool = True, seed: int = 0):
        super().__init__()
        self.max_shift, self.flip = max_shift, bool(flip)
        self.generator = torch.Generator().manual_seed(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shift and flip every image of ``x`` (N×C×H×W) in training mode; ``x`` unchanged in eval."""
        if not self.training or (self.max_shift == 0 and not self.flip):
            return x
        n, _, h, w = x.shape
        k = self.max_shift
        dy, dx = torch.randint(0, 2 * k + 1, (2, n), generator=self.generator)
        flips = torch.rand(n, generator=self.generator) < 0.5
        if not self.flip:
            flips[:] = False
        rows = (dy[:, None] + torch.arange(h)).to(x.device)
        cols = dx[:, None] + torch.arange(w)
        cols = torch.where(flips[:, None], cols.flip(1), cols).to(x.device)
        padded = nn.functional.pad(x, (k, k, k, k))
        batch = torch.arange(n, device=x.device)[:, None, None]
        return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


class RowRNN(nn.Module):
    """A recurrent classifier that reads an image row by row with a GRU.

    Parameters
    ----------
    row_size : int
        Features per time step (pixels per image row, 28 for Fashion-MNIST); each example is
        reshaped to ``(-1, row_size)``, one step per row.
    hidden : int
        Units of the single-layer GRU.
    n_classes : int
        Number of output logits.
    """

    def __init__(self, row_size: int = 28, hidden: int = 64, n_classes: int = 10):
        super().__init__()
        self.gru = nn.GRU(row_size, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x):
        """Logits from the GRU's last hidden state over the rows of ``x`` (N×…×rows×row_size)."""
        rows = x.reshape(x.shape[0], -1, self.gru.input_size)
        _, h = self.gru(rows)
        return self.head(h[-1])


@validate_params(row_size=Int(low=1), hidden=Int(low=1), n_classes=Int(low=2))
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
    """The device of ``model``'s first parameter (CPU for a model without parameters).

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    torch.device
    """
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@validate_params(batch_size=Int(low=1))
@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 128) -> torch.Tensor:
    """Logits of ``model`` on ``x``, in evaluation mode and in chunks, without gradients.

    Each chunk runs on the model's device; the logits come back on ``x``'s device.
    The model's train/eval mode is restored afterwards.

    Parameters
    ----------
    model : nn.Module
    x : torch.Tensor
        Inputs, shape ``(N, ...)``.
    batch_size : int
        Chunk size. 64–128 were the fastest on a 2-core CPU; 1000 took 3.5× as long
        for the teacher (``benchmarks/pooling.py``). Logits agree across chunk sizes to
        float32 rounding; not to the bit, since BLAS may pick another kernel for another
        shape, and which one depends on the CPU.

    Returns
    -------
    torch.Tensor
        Shape ``(N, outputs)``.
    """
    was_training = model.training
    model.eval()
    try:
        dev = model_device(model)
        return torch.cat([model(x[i:i + batch_size].to(dev)) for i in range(0, len(x), batch_size)]
                         ).to(x.device)
    finally:
        model.train(was_training)


# --------------------------------- save / load
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


# --------------------------------- readable students, reading intermediate layers
@validate_params(n_in=Int(low=1), n_classes=Int(low=2))
def linear(*, n_in: int = 784, n_classes: int = 10) -> nn.Sequential:
    """A softmax-regression student ``Flatten → Linear(n_in, n_classes)``.

    Its weight matrix holds one template per class: on 28×28 images
    ``model[1].weight[c].reshape(28, 28)`` is the picture class ``c`` votes for.

    Parameters
    ----------
    n_in : int
        Number of input features (784 for 28×28 images).
    n_classes : int
        Number of classes.

    Returns
    -------
    nn.Sequential
    """
    return _tag(nn.Sequential(nn.Flatten(), nn.Linear(n_in, n_classes)), "linear", n_in=n_in,
                n_classes=n_classes)


class SoftTree(nn.Module):
    """A soft decision tree (Frosst & Hinton 2017, "Distilling a neural network into a soft
    decision tree").

    A complete binary tree of ``depth`` levels: every inner node ``i`` holds a filter
    ``w_i`` and a bias ``b_i`` and sends an input right with probability
    ``p_i(x) = sigmoid(beta * (w_i · x + b_i))`` (left with ``1 - p_i``); every leaf
    ``l`` holds a learned class distribution ``Q_l = softmax(phi_l)``. The probability of
    reaching leaf ``l`` is the product of the branch probabilities on its path,
    ``P_l(x)``. Inner nodes are numbered breadth first (root 0, children of ``i`` are
    ``2i + 1`` left and ``2i + 2`` right); leaves left to right.

    ``forward`` returns ``log sum_l P_l(x) Q_l`` (the log of the mixture over all leaves),
    so cross-entropy and the KD loss apply unchanged. Frosst & Hinton train the expected
    per-leaf log loss and predict with the single most probable leaf; both views are
    available here (:meth:`path_probs`, :meth:`predict_max_leaf`).

    Parameters
    ----------
    depth : int
        Levels of inner nodes: ``2**depth - 1`` inner nodes and ``2**depth`` leaves.
    n_in : int
        Input features; each example is flattened (784 for 28×28 images).
    n_classes : int
        Classes of each leaf's distribution.
    beta : float
        Inverse temperature of the routing sigmoid (larger: harder, more deterministic splits).

    Attributes
    ----------
    inner : nn.Linear
        ``n_in → 2**depth - 1``: row ``i`` is node ``i``'s filter ``w_i``, bias ``b_i``.
    leaves : nn.Parameter
        ``phi``, shape ``(2**depth, n_classes)``, initialised ``normal(0, 0.1)``.
    n_leaves : int
        ``2**depth``.
    """

    def __init__(self, depth: int = 4, n_in: int = 784, n_classes: int = 10, beta: float = 1.0):
        super().__init__()
        self.depth, self.beta = depth, beta
        self.inner = nn.Linear(n_in, 2 ** depth - 1)
        self.leaves = nn.Parameter(torch.zeros(2 ** depth, n_classes))
        nn.init.normal_(self.leaves, std=0.1)

    @property
    def n_leaves(self) -> int:
        return 2 ** self.depth

    def log_path_probs(self, x: torch.Tensor) -> torch.Tensor:
        """``log P_l(x)`` for every leaf: shape (batch, 2**depth), rows logsumexp to 0."""
        z = self.beta * self.inner(x.reshape(x.shape[0], -1))
        log_right, log_left = nn.functional.logsigmoid(z), nn.functional.logsigmoid(-z)
        log_mu = z.new_zeros(z.shape[0], 1)
        for level in range(self.depth):
            nodes = slice(2 ** level - 1, 2 ** (level + 1) - 1)
            log_mu = torch.stack([log_mu + log_left[:, nodes], log_mu + log_right[:, nodes]],
                                 dim=2).reshape(z.shape[0], -1)
        return log_mu

    def path_probs(self, x: torch.Tensor) -> torch.Tensor:
        """``P_l(x)``: the probability of reaching each leaf (rows sum to 1)."""
        return self.log_path_probs(x).exp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_q = torch.log_softmax(self.leaves, dim=1)
        return torch.logsumexp(self.log_path_probs(x)[:, :, None] + log_q[None], dim=1)

    def balance_penalty(self, x: torch.Tensor) -> torch.Tensor:
        """Frosst & Hinton's regulariser: push every inner node to split its path mass evenly.

        For node ``i`` at level ``l``, ``a_i`` is the fraction of the batch's probability
        mass reaching ``i`` that goes right; the penalty is
        ``-sum_i 2**-l * (log a_i + log(1 - a_i)) / 2``, smallest (``log 2`` per node, times
        ``2**-l``) when every ``a_i = 1/2``. Without it the routing saturates early and whole
        subtrees stay unused.
        """
        paths = self.path_probs(x).sum(0)
        penalty = paths.new_zeros(())
        for level in range(self.depth):
            block = paths.reshape(2 ** level, 2, -1).sum(2)
            a = (block[:, 1] / block.sum(1).clamp_min(1e-12)).clamp(1e-6, 1 - 1e-6)
            penalty = penalty - 2.0 ** (-level) * 0.5 * (a.log() + (1 - a).log()).sum()
        return penalty

    @torch.no_grad()
    def predict_max_leaf(self, x: torch.Tensor) -> torch.Tensor:
        """Class predicted by the single most probable leaf (the readable explanation)."""
        leaf = self.log_path_probs(x).argmax(1)
        return self.leaves.argmax(1)[leaf]


@validate_params(depth=Int(low=1, high=10), n_in=Int(low=1), n_classes=Int(low=2),
                 beta=Float(low=0.0, low_open=True))
def soft_tree(*, depth: int = 4, n_in: int = 784, n_classes: int = 10,
              beta: float = 1.0) -> SoftTree:
    """A soft decision tree student (see :class:`SoftTree`).

    Parameters
    ----------
    depth : int
        Number of levels of inner nodes (1 … 10): ``2**depth - 1`` filters, ``2**depth`` leaves.
    n_in, n_classes : int
        Input features and classes.
    beta : float > 0
        Inverse temperature of the routing sigmoids (larger = harder decisions).

    Returns
    -------
    SoftTree
    """
    return _tag(SoftTree(depth, n_in, n_classes, beta), "soft_tree", depth=depth, n_in=n_in,
                n_classes=n_classes, beta=beta)


BUILDERS["linear"] = lambda kw: linear(**kw)
BUILDERS["soft_tree"] = lambda kw: soft_tree(**kw)


def layer_names(model: nn.Module) -> list[str]:
    """Names of the submodules of ``model`` that :class:`FeatureTap` can read.

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    list of str
        Dotted names from ``model.named_modules()``, in definition order, without the root ``""``.
    """
    return [name for name, _ in model.named_modules() if name]


def _module(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if not isinstance(name, str) or not name or name not in modules:
        raise ValueError(f"layer={name!r} is not a submodule of this {type(model).__name__}; "
                         f"known layers: {layer_names(model)}")
    return modules[name]


class FeatureTap:
    """Record the outputs of named layers on every forward pass (forward hooks).

    The model's ``forward`` is untouched: a hook stores each named layer's output in
    ``tap.outputs[name]`` (with its autograd graph, so a loss on it trains the layers
    below). Use as a context manager, or call :meth:`remove` when done.

    Parameters
    ----------
    model : nn.Module
    layers : str or sequence of str
        Submodule names as in ``model.named_modules()`` (e.g. ``"2"`` for the ReLU after
        the first ``Linear`` of ``mlp([784, 64, 10])``); see :func:`layer_names`.
    """

    def __init__(self, model: nn.Module, layers):
        names = [layers] if isinstance(layers, str) else list(layers)
        if not names:
            raise ValueError("layers is empty: name at least one layer")
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles = []
        for name in names:
            module = _module(model, name)
            self._handles.append(module.register_forward_hook(self._hook(name)))

    def _hook(self, name):
        def store(module, inputs, output):
            self.outputs[name] = output
        return store

    def remove(self) -> None:
        """Remove the hooks (the model behaves exactly as before)."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


@validate_params(batch_size=Int(low=1))
@torch.no_grad()
def read_layer(model: nn.Module, x: torch.Tensor, layer: str, *,
               batch_size: int = 128, with_output: bool = False):
    """Output of the named ``layer`` of ``model`` on ``x`` (evaluation mode, in chunks).

    Parameters
    ----------
    model : nn.Module
    x : Tensor
        Inputs, batch first.
    layer : str
        A name from :func:`layer_names`.
    batch_size : int
        Chunk size (see :func:`predict`).
    with_output : bool
        Also return the model's own output (e.g. the teacher's logits), from the same pass.

    Returns
    -------
    Tensor, or (Tensor, Tensor)
        The layer's outputs for all of ``x``, concatenated along the batch; with
        ``with_output``, ``(layer outputs, model outputs)``.
    """
    was_training = model.training
    model.eval()
    parts, outs = [], []
    try:
        with FeatureTap(model, layer) as tap:
            for i in range(0, len(x), batch_size):
                outs.append(model(x[i:i + batch_size]).detach())
                parts.append(tap.outputs[layer].detach())
    finally:
        model.train(was_training)
    return (torch.cat(parts), torch.cat(outs)) if with_output else torch.cat(parts)


def max_param_diff(a: nn.Module, b: nn.Module) -> float:
    """The largest absolute difference between corresponding parameters of two models.

    Parameters
    ----------
    a, b : nn.Module
        Models with the same parameter shapes, in the same order.

    Returns
    -------
    float
        ``max |p - q|`` over all parameters (0.0 for models without parameters).
    """
    with torch.no_grad():
        return max((float((p - q).abs().max()) for p, q in zip(a.parameters(), b.parameters(), strict=True)),
                   default=0.0)
