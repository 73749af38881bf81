"""Ways to initialise a student network from a teacher.

The source article initialises its student with
``student.load_state_dict(teacher.state_dict())``. That call only works when the
student has *exactly* the teacher's architecture, which contradicts "a small
student". :func:`init_student` offers that copy and the real alternatives:

==================  ==========================================  ==========================================
strategy            the student must be                         what is copied
==================  ==========================================  ==========================================
``"random"``        anything                                    nothing: the student keeps its own random
                                                                initialisation (``seed=`` re-draws it
                                                                reproducibly)
``"copy"``          the teacher's exact architecture            every tensor (the article's
                                                                ``load_state_dict``)
``"layer-subset"``  same widths, fewer layers                   an evenly spread subset of the teacher's
                                                                layers, first and last always included
                                                                (as DistilBERT keeps every other layer)
``"top-units"``     same depth, fewer units / channels          each hidden layer's most important units,
                                                                with the weights sliced consistently
==================  ==========================================  ==========================================

``layer-subset`` and ``top-units`` understand the models of
:func:`kdlib.models.mlp` and :func:`kdlib.models.cnn` (any ``nn.Sequential`` of
``Conv2d`` / ``Linear`` layers with parameter-free layers such as ``ReLU``,
``FastMaxPool2d``, ``Flatten`` and ``Dropout`` between them). A pair that a strategy
cannot map raises ``ValueError`` naming the strategy and the reason; nothing is
copied half-way in that case, because every check runs before the first copy.

A low-rank (truncated SVD) strategy is deliberately absent: a factorised layer
``W ≈ U V`` is two ``Linear`` layers *without* an activation between them, which
neither ``mlp`` nor ``cnn`` can express.

Every successful call records what it kept in ``student.kd_init``; :func:`layer_table`
turns that record into a few printable lines, one per student layer.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from kdlib._checks import Each, Int, OneOf, Optional, validate_params

STRATEGIES = ("random", "copy", "layer-subset", "top-units")
IMPORTANCES = ("product", "incoming", "outgoing")

_DESCRIPTIONS = {
    "random": "Keep the student's own random initialisation; nothing comes from the teacher. "
              "With seed=s every layer's reset_parameters() is re-run under torch.manual_seed(s), "
              "so the start is reproducible.",
    "copy": "student.load_state_dict(teacher.state_dict()), as in the article: every tensor is "
            "copied. Needs identical architectures, so the 'student' is as large as the teacher.",
    "layer-subset": "Same widths, fewer layers (DistilBERT-style): the student's k-th weight layer "
                    "starts as the teacher's layer round(linspace(0, M-1, L))[k] (rounding half "
                    "up), so the first and last layers are always kept and the others evenly "
                    "spread; layers=[...] picks the teacher layers explicitly.",
    "top-units": "Same depth, fewer units: in every hidden layer keep the k units (channels for "
                 "convolutions) with the largest importance ||incoming weights|| x ||outgoing "
                 "weights||, in the teacher's order, and slice each weight's rows and the next "
                 "layer's columns to match. With all units kept the student equals the teacher.",
}


@validate_params(strategy=OneOf(*STRATEGIES))
def describe(strategy: str) -> str:
    """One paragraph saying what ``strategy`` does and what it needs.

    Parameters
    ----------
    strategy : str
        One of :data:`STRATEGIES`.

    Returns
    -------
    str
    """
    return _DESCRIPTIONS[strategy]


@validate_params(strategy=OneOf(*STRATEGIES), seed=Optional(Int(low=0)),
                 importance=Optional(OneOf(*IMPORTANCES)))
@torch.no_grad()
def init_student(student: nn.Module, teacher: nn.Module, strategy: str, *, seed=None,
                 layers=None, importance=None) -> nn.Module:
    """Initialise ``student`` from ``teacher`` in place and return it.

    Parameters
    ----------
    student, teacher : nn.Module
        The two networks. ``teacher`` is only read.
    strategy : str
        One of :data:`STRATEGIES` (see the module docstring's table, or
        :func:`describe`).
    seed : int, optional
        ``"random"`` only: re-run every layer's ``reset_parameters()`` under
        ``torch.manual_seed(seed)`` (the global random state is left untouched).
        Without it the student is left exactly as built.
    layers : sequence of int, optional
        ``"layer-subset"`` only: for each student weight layer (``Linear`` or
        ``Conv2d``, in order) the index of the teacher weight layer to copy,
        counted from 0 over the teacher's weight layers; strictly increasing.
        Default: ``floor(linspace(0, M - 1, L) + 0.5)`` per section (convolutions
        and fully connected layers separately), where ``M`` and ``L`` are the
        teacher's and student's layer counts: the first and last layers are
        always kept, the others evenly spread. For ``M = 4, L = 3`` that is
        ``[0, 2, 3]``; for ``M = 6, L = 4``, ``[0, 2, 3, 5]``. Each kept teacher
        layer must have exactly the student layer's shape.
    importance : {"product", "incoming", "outgoing"}, optional
        ``"top-units"`` only: how hidden unit ``j`` of a layer is ranked, always on
        the teacher's full (unsliced) weights. ``"product"`` (default) is
        ``||W_l[j]|| * ||W_{l+1}[:, j]||``, the norm of the unit's incoming
        weights (its row; a convolution's whole filter) times the norm of its
        outgoing weights (the next layer's column; for a convolution the next
        convolution's input-channel slice, or after ``Flatten`` the block of
        columns ``j*S ... (j+1)*S - 1`` that channel ``j`` feeds, ``S`` =
        height x width of the feature map). ``"incoming"`` / ``"outgoing"`` use
        one factor only. Biases are not part of the score.

    Returns
    -------
    nn.Module
        ``student``, with ``student.kd_init`` set to a record of what was kept:
        ``{"strategy", "options", "kept"}``. ``options`` holds the options used
        (for ``layer-subset`` the chosen teacher ``layers``); ``kept`` has one
        entry per student weight layer (for ``copy``: per module owning
        parameters; for ``random``: none): ``{"student": name, "teacher": name,
        "shape": student weight shape, "units": teacher unit / channel indices
        kept, in order (``None`` = all), "teacher_units": the teacher layer's
        width}``, names being ``state_dict`` prefixes such as ``"3"``.
        :func:`layer_table` prints it.

    Raises
    ------
    TypeError
        ``student`` or ``teacher`` is not an ``nn.Module``.
    ValueError
        Unknown strategy, an option that does not belong to the strategy, or a
        pair of models that the strategy cannot map (the message says why).
    """
    for who, model in (("student", student), ("teacher", teacher)):
        if not isinstance(model, nn.Module):
            raise TypeError(f"{who} must be a torch.nn.Module, got {type(model).__name__}")
    check_recurrent_pair(student, teacher, strategy)
    given = {"seed": seed, "layers": layers, "importance": importance}
    owner = {"seed": "random", "layers": "layer-subset", "importance": "top-units"}
    for name, value in given.items():
        if value is not None and owner[name] != strategy:
            raise ValueError(f"{name}= is an option of strategy {owner[name]!r} only; "
                             f"strategy {strategy!r} does not take it")
    if strategy == "random":
        kept, options = _init_random(student, seed), ({} if seed is None else {"seed": seed})
    elif strategy == "copy":
        kept, options = _init_copy(student, teacher), {}
    elif strategy == "layer-subset":
        kept, options = _init_layer_subset(student, teacher, layers)
    else:
        importance = "product" if importance is None else importance
        kept, options = _init_top_units(student, teacher, importance), {"importance": importance}
    student.kd_init = {"strategy": strategy, "options": options, "kept": kept}
    return student


def layer_table(student: nn.Module) -> str:
    """What :func:`init_student` copied into ``student``, one printable line per student layer.

    Parameters
    ----------
    student : nn.Module
        A model returned by :func:`init_student` (it carries ``student.kd_init``).

    Returns
    -------
    str
        A header line (the strategy and its options), then one line per student
        weight layer: its shape, the teacher layer it came from, and which units
        were kept.

    Raises
    ------
    ValueError
        The model has no ``kd_init`` record.
    """
    record = getattr(student, "kd_init", None)
    if not isinstance(record, dict):
        raise ValueError("this model has no kd_init record; call init_student(student, teacher, "
                         "strategy) first")
    options = ", ".join(f"{k}={v!r}" for k, v in record["options"].items())
    lines = [f"{record['strategy']}" + (f" ({options})" if options else "")]
    if not record["kept"]:
        lines.append("  nothing copied from the teacher: the student keeps its own random weights")
    for e in record["kept"]:
        shape = "×".join(str(s) for s in e["shape"])
        line = f"  student layer {e['student']} {shape} <- teacher layer {e['teacher']}"
        if e["units"] is None:
            whole = record["strategy"] != "top-units"
            line += ": copied whole" if whole else f": all {e['teacher_units']} units"
        else:
            units = e["units"]
            shown = ", ".join(str(u) for u in units[:8]) + (", …" if len(units) > 8 else "")
            line += f": {len(units)} of {e['teacher_units']} units [{shown}]"
        lines.append(line)
    return "\n".join(lines)


# ---------------------------------------------------------------- strategies
def _init_random(student, seed):
    if seed is None:
        return []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in student.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return []


def _shape(t) -> tuple:
    return tuple(int(s) for s in t.shape)


def _init_copy(student, teacher):
    s_state, t_state = student.state_dict(), teacher.state_dict()
    hint = " (use 'layer-subset' or 'top-units' for a smaller student)"
    for name, s in s_state.items():
        if name not in t_state:
            raise ValueError(f"copy needs identical architectures: layer {name!r} is {_shape(s)} "
                             f"in the student but the teacher has no such layer{hint}")
        if s.shape != t_state[name].shape:
            raise ValueError(f"copy needs identical architectures: layer {name!r} is {_shape(s)} "
                             f"in the student but {_shape(t_state[name])} in the teacher{hint}")
    for name, t in t_state.items():
        if name not in s_state:
            raise ValueError(f"copy needs identical architectures: layer {name!r} is "
                             f"{_shape(t)} in the teacher but the student has no such layer")
    student.load_state_dict(t_state)
    kept = []
    for name, module in student.named_modules():
        params = list(module.parameters(recurse=False))
        if params:
            kept.append({"student": name, "teacher": name, "shape": _shape(params[0]),
                         "units": None, "teacher_units": None})
    return kept


def _init_layer_subset(student, teacher, layers):
    strategy = "layer-subset"
    s_family, s_layers = _layout(student, "student", strategy)
    t_family, t_layers = _layout(teacher, "teacher", strategy)
    _check_same_family(strategy, s_family, t_family)
    _check_in_out(strategy, s_layers, t_layers)
    n_s, n_t = len(s_layers), len(t_layers)
    if layers is None:
        chosen = []
        for kind in ("Conv2d", "Linear"):
            s_idx = [i for i, w in enumerate(s_layers) if _kind(w) == kind]
            t_idx = [i for i, w in enumerate(t_layers) if _kind(w) == kind]
            if len(s_idx) > len(t_idx):
                raise ValueError(f"layer-subset needs a teacher with at least as many layers: the "
                                 f"student has {len(s_idx)} {kind} layers, the teacher "
                                 f"{len(t_idx)}")
            chosen += [t_idx[p] for p in _spread(len(t_idx), len(s_idx))]
    else:
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__len__"):
            raise TypeError(f"layers must be a sequence of teacher layer indices, got {layers!r}")
        if len(layers) != n_s:
            raise ValueError(f"layers={list(layers)!r} has {len(layers)} entries but the student "
                             f"has {n_s} weight layers; layer-subset needs one teacher index per "
                             f"student layer")
        chosen = Each(Int(low=0, high=n_t - 1))("layers", layers)
        if any(b <= a for a, b in zip(chosen, chosen[1:])):
            raise ValueError(f"layers={chosen!r} must be strictly increasing (layer-subset keeps "
                             f"the teacher's layers in order)")
    plan = []
    for s, j in zip(s_layers, chosen):
        t = t_layers[j]
        where = (f"student {_kind(s)} layer {_name(s)!r} is {_shape(s.weight)} but the teacher "
                 f"layer it would copy, {_kind(t)} {_name(t)!r}, is {_shape(t.weight)}")
        if _kind(s) != _kind(t):
            raise ValueError(f"layer-subset cannot copy a {_kind(t)} into a {_kind(s)}: {where}")
        if s.weight.shape != t.weight.shape:
            if _first_linear(s, s_layers) and _n_in(s) != _n_in(t):
                why = ("the feature map entering Flatten has a different size (fewer conv blocks "
                       "shrink the image less)")
            else:
                why = "use 'top-units' for narrower layers"
            raise ValueError(f"layer-subset needs the same widths: {where} ({why})")
        _check_bias(strategy, s, t)
        plan.append((s, t))
    for s, t in plan:
        s.weight.copy_(t.weight)
        if s.bias is not None:
            s.bias.copy_(t.bias)
    return [_entry(s, t, None) for s, t in plan], {"layers": chosen}


def _init_top_units(student, teacher, importance):
    strategy = "top-units"
    s_family, s_layers = _layout(student, "student", strategy)
    t_family, t_layers = _layout(teacher, "teacher", strategy)
    _check_same_family(strategy, s_family, t_family)
    if len(s_layers) != len(t_layers):
        raise ValueError(f"top-units needs the same depth: the student has {len(s_layers)} weight "
                         f"layers, the teacher {len(t_layers)} (use 'layer-subset' for fewer "
                         f"layers)")
    _check_same_sequence(student, teacher)
    _check_in_out(strategy, s_layers, t_layers)
    spatial = _flatten_size(s_layers, t_layers)

    # plan every slice first, copy afterwards: a bad pair changes nothing
    plan, kept = [], []
    device = t_layers[0].weight.device
    prev_keep = torch.arange(_n_in(t_layers[0]), device=device)
    for pos, (s, t) in enumerate(zip(s_layers, t_layers)):
        _check_bias(strategy, s, t)
        last = pos == len(t_layers) - 1
        if last:
            keep = torch.arange(_n_out(t), device=device)
        else:
            k, n = _n_out(s), _n_out(t)
            if k > n:
                raise ValueError(f"top-units needs a student no wider than the teacher: hidden "
                                 f"{_kind(s)} layer {_name(s)!r} has {k} units in the student but "
                                 f"{n} in the teacher")
            score = _importance(t, t_layers[pos + 1], importance)
            order = torch.argsort(score, descending=True, stable=True)
            keep = torch.sort(order[:k]).values
        cols = prev_keep
        if _kind(t) == "Linear" and pos > 0 and _kind(t_layers[pos - 1]) == "Conv2d":
            # Flatten is channel-major: channel c feeds columns c*S ... c*S + S - 1
            cols = (prev_keep[:, None] * spatial + torch.arange(spatial, device=device)).reshape(-1)
        weight = t.weight.index_select(0, keep).index_select(1, cols)
        bias = None if t.bias is None else t.bias.index_select(0, keep)
        if weight.shape != s.weight.shape:  # cannot happen after the checks above
            raise ValueError(f"top-units cannot map student layer {s.name!r}: the sliced "
                             f"teacher weight is {_shape(weight)}, the student's {_shape(s.weight)}")
        plan.append((s, weight, bias))
        kept.append(_entry(s, t, None if last else keep.tolist()))
        prev_keep = keep
    for s, weight, bias in plan:
        s.weight.copy_(weight)
        if bias is not None:
            s.bias.copy_(bias)
    return kept


def _importance(layer, following, how):
    """Importance of each output unit of ``layer`` (see ``init_student``)."""
    w = layer.weight
    n = w.shape[0]
    incoming = w.reshape(n, -1).norm(dim=1)
    if how == "incoming":
        return incoming
    nxt = following.weight
    # group the next layer's weights by the unit of `layer` they read: (n, everything else)
    # conv -> conv: input channel j; conv -> Flatten -> Linear: columns j*S ... (j+1)*S - 1
    outgoing = nxt.reshape(nxt.shape[0], n, -1).transpose(0, 1).reshape(n, -1).norm(dim=1)
    if how == "outgoing":
        return outgoing
    return incoming * outgoing


# ---------------------------------------------------------------- model layout
def _layout(model, who, strategy):
    """Return ``(family, weight layers)`` of an mlp / cnn style ``nn.Sequential``.

    The weight layers come as ``_Layer(name, module)``, ``name`` being the
    position in the Sequential.
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"{strategy} maps nn.Sequential models built by kdlib.models.mlp or "
                         f"kdlib.models.cnn; the {who} is a {type(model).__name__}")
    weights, seen_linear, flattened = [], False, False
    for index, module in enumerate(model):
        if isinstance(module, nn.Conv2d):
            if seen_linear or flattened or module.groups != 1:
                raise ValueError(f"{strategy} cannot map the {who}: its Conv2d layer '{index}' "
                                 f"comes after Flatten/Linear or is grouped")
            weights.append((str(index), module))
        elif isinstance(module, nn.Linear):
            if weights and not flattened:
                raise ValueError(f"{strategy} cannot map the {who}: its Linear layer '{index}' "
                                 f"follows a Conv2d without a Flatten")
            seen_linear = True
            weights.append((str(index), module))
        elif isinstance(module, nn.Flatten):
            flattened = True
        elif any(True for _ in module.parameters()) or any(True for _ in module.buffers()):
            raise ValueError(f"{strategy} cannot map the {who}: layer '{index}' "
                             f"({type(module).__name__}) has parameters or buffers that only "
                             f"Linear and Conv2d layers may have here")
    if not weights or not seen_linear:
        raise ValueError(f"{strategy} cannot map the {who}: it needs Linear (and optionally "
                         f"Conv2d) layers, ending with a Linear one")
    family = "cnn" if isinstance(weights[0][1], nn.Conv2d) else "mlp"
    return family, [_Layer(name, module) for name, module in weights]


class _Layer(NamedTuple):
    """A weight layer and its position in the Sequential (its ``state_dict`` prefix)."""

    name: str
    module: nn.Module

    @property
    def weight(self):
        return self.module.weight

    @property
    def bias(self):
        return self.module.bias


def _name(layer) -> str:
    return layer.name


def _kind(layer) -> str:
    return "Conv2d" if isinstance(layer.module, nn.Conv2d) else "Linear"


def _n_in(layer) -> int:
    m = layer.module
    return m.in_channels if isinstance(m, nn.Conv2d) else m.in_features


def _n_out(layer) -> int:
    m = layer.module
    return m.out_channels if isinstance(m, nn.Conv2d) else m.out_features


def _first_linear(layer, layers) -> bool:
    i = layers.index(layer)
    return _kind(layer) == "Linear" and i > 0 and _kind(layers[i - 1]) == "Conv2d"


def _entry(s, t, units):
    return {"student": s.name, "teacher": t.name, "shape": _shape(s.weight), "units": units,
            "teacher_units": _n_out(t)}


def _spread(m: int, n: int) -> list:
    """``n`` of ``range(m)``: ``floor(linspace(0, m - 1, n) + 0.5)`` (first and last kept).

    A single layer (``n = 1``) keeps the teacher's first one.
    """
    if n == 0:
        return []
    if n == 1:
        return [0]
    return [math.floor(i * (m - 1) / (n - 1) + 0.5) for i in range(n)]


def _check_same_family(strategy, s_family, t_family):
    if s_family != t_family:
        raise ValueError(f"{strategy} cannot map an {s_family} student onto a {t_family} "
                         f"teacher: both must be mlps or both cnns")


def _check_in_out(strategy, s_layers, t_layers):
    s_io = (_n_in(s_layers[0]), _n_out(s_layers[-1]))
    t_io = (_n_in(t_layers[0]), _n_out(t_layers[-1]))
    if s_io != t_io:
        raise ValueError(f"{strategy} needs the same input and output sizes: the student maps "
                         f"{s_io[0]} -> {s_io[1]}, the teacher {t_io[0]} -> {t_io[1]}")


def _check_bias(strategy, s, t):
    if (s.bias is None) != (t.bias is None):
        raise ValueError(f"{strategy}: layer {_name(s)!r} has a bias in only one of the two "
                         f"models")


def _signature(module):
    """What must agree between student and teacher layers apart from the widths."""
    if isinstance(module, nn.Conv2d):
        return (f"Conv2d(kernel_size={module.kernel_size}, stride={module.stride}, "
                f"padding={module.padding}, dilation={module.dilation})")
    if isinstance(module, nn.Linear):
        return "Linear"
    return repr(module)


def _check_same_sequence(student, teacher):
    """Same layers in the same order, apart from widths and Dropout (identity at eval)."""
    s_seq = [(i, _signature(m)) for i, m in enumerate(student) if not isinstance(m, nn.Dropout)]
    t_seq = [(i, _signature(m)) for i, m in enumerate(teacher) if not isinstance(m, nn.Dropout)]
    for (i, s), (j, t) in zip(s_seq, t_seq):
        if s != t:
            raise ValueError(f"top-units needs the same layer sequence (only widths may differ): "
                             f"student layer '{i}' is {s} but teacher layer '{j}' is {t}")
    if len(s_seq) != len(t_seq):
        raise ValueError(f"top-units needs the same layer sequence: the student has {len(s_seq)} "
                         f"layers (not counting Dropout), the teacher {len(t_seq)}")


def _flatten_size(s_layers, t_layers):
    """Height x width of the feature map entering Flatten (1 for an mlp)."""
    for pos in range(1, len(t_layers)):
        if _kind(t_layers[pos]) == "Linear" and _kind(t_layers[pos - 1]) == "Conv2d":
            sizes = []
            for layers in (s_layers, t_layers):
                features, channels = _n_in(layers[pos]), _n_out(layers[pos - 1])
                if features % channels:
                    raise ValueError(f"top-units cannot map Linear layer {_name(layers[pos])!r}: "
                                     f"its {features} inputs are not a whole number of feature "
                                     f"maps of the {channels} channels before Flatten")
                sizes.append(features // channels)
            if sizes[0] != sizes[1]:
                raise ValueError(f"top-units needs the same feature-map size at Flatten: "
                                 f"{sizes[0]} pixels per channel in the student, {sizes[1]} in "
                                 f"the teacher (different image sizes?)")
            return sizes[1]
    return 1


# --------------------------------- recurrent pairs
def _families(model: nn.Module) -> set:
    kinds = set()
    for m in model.modules():
        if isinstance(m, nn.RNNBase):
            kinds.add("recurrent")
        elif isinstance(m, nn.Conv2d):
            kinds.add("convolutional")
    return kinds


CROSS_FAMILY_REASON = (
    "a convolutional network's weights are small spatial filters (Conv2d kernels of shape "
    "out x in x 3 x 3) slid over the image, a recurrent network's are gate matrices (a GRU's "
    "3 x hidden x row-width input weights and 3 x hidden x hidden recurrent weights) applied "
    "once per image row; no filter corresponds to a gate matrix and no feature-map channel to "
    "a hidden unit carried through time, so no tensor can be copied, subset or sliced from "
    "one to the other. Use strategy='random' and let the loss transfer the knowledge "
    "(kdlib.train.distill on the teacher's logits)")


def check_recurrent_pair(student: nn.Module, teacher: nn.Module, strategy: str) -> None:
    """Refuse to initialise across recurrent and non-recurrent architectures.

    Parameters
    ----------
    student, teacher : nn.Module
    strategy : str
        A name from ``STRATEGIES``; ``"random"`` copies nothing and is always allowed.

    Raises
    ------
    ValueError
        When exactly one of the two models is recurrent (holds an ``nn.GRU``/``nn.LSTM``/
        ``nn.RNN``) and ``strategy`` would copy weights; the message says why no mapping
        exists.
    """
    if strategy == "random":
        return
    s, t = _families(student), _families(teacher)
    if ("recurrent" in s) != ("recurrent" in t):
        s_name = "recurrent" if "recurrent" in s else ("convolutional" if s else "fully connected")
        t_name = "recurrent" if "recurrent" in t else ("convolutional" if t else "fully connected")
        raise ValueError(f"strategy {strategy!r} cannot initialise a {s_name} student from a "
                         f"{t_name} teacher, and no strategy can: {CROSS_FAMILY_REASON}")
