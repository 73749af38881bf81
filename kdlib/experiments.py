"""Many students at once: a group of same-shape MLP students trained in lockstep.

Students that share an architecture, a batch size and a number of steps can train as **one
model with a leading "student" dimension**: their weights are stacked (``W`` of shape
``(S, inputs, outputs)``), every step multiplies all of them at once (``torch.baddbmm``), and
one Adam over the stacked tensors is S independent Adams (Adam is elementwise). Each student
keeps everything that makes it itself:

- its initial weights: those of ``torch.manual_seed(seed); kdlib.models.mlp(sizes)``, drawn
  without touching the global random state;
- its training sample (rows of a shared pool of images) and its batch order (the permutation
  :func:`kdlib.train.fit` would draw with ``seed``);
- its loss: ``lam · CE_ε + (1 − lam) · T² · KL(softmax(t/T) ‖ softmax(s/T))``, which is plain
  cross-entropy (``lam = 1, eps = 0``), label smoothing (``lam = 1, eps > 0``) or
  distillation (``lam < 1``) with its own λ, T and ε;
- its learning rate (the same OneCycle schedule, scaled).

So a student trained in a group ends with the weights it would have had trained alone by
``kdlib.train.distill``/``fit`` (to float rounding; tested), while one step costs a few large
multiplications instead of S × a few tiny ones (``benchmarks/many_students.py``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.adam import adam
from tqdm.auto import tqdm

from kdlib._checks import check_float, check_int, check_labels
from kdlib.models import mlp
from kdlib.train import History

__all__ = ["GroupStudent", "train_group", "group_memory", "DEFAULT_MEMORY_BUDGET"]

DEFAULT_MEMORY_BUDGET = 2 * 2**30
"""Bytes a group's per-student tensors may take (gathered batches, teacher targets,
activations); :func:`train_group` trains a larger group in several parts and says so."""

_ADAM_BETA2, _ADAM_EPS = 0.999, 1e-8  # torch.optim.Adam's defaults, which fit uses


@dataclass(frozen=True)
class GroupStudent:
    """One student of a group.

    Parameters
    ----------
    seed : int
        Seeds its initial weights and its batch order (as ``fit(seed=seed)`` does).
    lam : float in [0, 1]
        Weight of the hard-label term; 1 trains on labels only (T then has no effect).
    T : float > 0
        Temperature of the soft term.
    eps : float in [0, 1)
        Label smoothing of the hard-label term (0: plain cross-entropy).
    lr : float > 0
        Peak learning rate of its OneCycle schedule (Adam).
    rows : sequence of int, optional
        Its training images: rows of the group's pool (default: the whole pool). Every
        student of a group must have as many rows as the others.
    """

    seed: int
    lam: float = 1.0
    T: float = 1.0
    eps: float = 0.0
    lr: float = 3e-2
    rows: tuple | None = field(default=None, compare=False)


def _check_student(i: int, s) -> GroupStudent:
    if not isinstance(s, GroupStudent):
        raise TypeError(f"students[{i}] must be a GroupStudent, got {type(s).__name__}")
    check_int(f"students[{i}].seed", s.seed, low=0)
    check_float(f"students[{i}].lam", s.lam, low=0.0, high=1.0)
    check_float(f"students[{i}].T", s.T, low=0.0, low_open=True)
    check_float(f"students[{i}].eps", s.eps, low=0.0, high=0.999)
    check_float(f"students[{i}].lr", s.lr, low=0.0, low_open=True)
    return s


def group_memory(n_students: int, *, n_train: int, batch_size: int, sizes, n_val: int) -> int:
    """Bytes of the per-student tensors of a group (what :data:`DEFAULT_MEMORY_BUDGET` bounds).

    Teacher targets ``S × n_train × classes``, gathered batches ``S × batch × inputs``, the
    activations and gradients of a batch and of the validation pass, and Adam's two moments.

    Parameters
    ----------
    n_students, n_train, batch_size, n_val : int
    sizes : sequence of int
        The students' layer widths.

    Returns
    -------
    int
    """
    weights = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    per_student = (n_train * sizes[-1] + batch_size * sizes[0] + 3 * batch_size * sum(sizes[1:])
                   + n_val * max(sizes[1:]) + 4 * weights)
    return 4 * n_students * per_student


def _init_weights(sizes, seed: int) -> list[torch.Tensor]:
    """``mlp(sizes)``'s initial weights after ``manual_seed(seed)``, the global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = mlp(sizes)
    return [p.detach().clone() for p in model.parameters()]


def _onecycle(total_steps: int) -> tuple[list[float], list[float]]:
    """The learning-rate factor (for a peak of 1) and Adam's β1 at every step of ``fit``'s
    OneCycle schedule, read off PyTorch's own scheduler."""
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=total_steps)
    lrs, betas = [], []
    for _ in range(total_steps):
        lrs.append(opt.param_groups[0]["lr"])
        betas.append(opt.param_groups[0]["betas"][0])
        opt.step()
        sched.step()
    return lrs, betas


def _forward(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Logits of every student: ``x`` is ``(S, B, inputs)``, or ``(B, inputs)`` shared by all
    (then the first layer is one matrix product with every student's weights side by side)."""
    n_layers = len(params) // 2
    w, b = params[0], params[1]                            # (S, in, out), (S, 1, out)
    if x.ndim == 3:
        h = torch.baddbmm(b, x, w)
    else:
        S, n_in, n_out = w.shape
        h = (x @ w.permute(1, 0, 2).reshape(n_in, S * n_out)).view(len(x), S, n_out).transpose(0, 1) + b
    for j in range(1, n_layers):
        h = torch.baddbmm(params[2 * j + 1], torch.relu(h), params[2 * j])
    return h


def _group_loss(out, y, log_q_teacher, lam, T, eps):
    """Per-student mean loss, shape ``(S,)``: ``lam · CE_ε + (1 − lam) · T² · KL``."""
    log_p = F.log_softmax(out, dim=-1)
    nll = -log_p.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    ce = ((1 - eps) * nll + eps * -log_p.mean(-1)).mean(-1)
    if log_q_teacher is None:
        return ce
    log_q_s = F.log_softmax(out / T[:, None, None], dim=-1)
    kl = (log_q_teacher.exp() * (log_q_teacher - log_q_s)).sum(-1).mean(-1)
    return lam * ce + (1 - lam) * T ** 2 * kl


def train_group(sizes, pool, students, *, val=None, teacher_logits=None, epochs: int = 20,
                batch_size: int = 128, memory_budget: int = DEFAULT_MEMORY_BUDGET,
                progress: bool = False) -> list[tuple[nn.Module, History]]:
    """Train same-shape MLP students in lockstep; return each one's model and History.

    Parameters
    ----------
    sizes : sequence of int
        Every student is ``kdlib.models.mlp(sizes)``.
    pool : kdlib.data.Split
        The images (flattened to ``sizes[0]`` features) and labels the students' ``rows``
        index into. The group trains on their device (on a GPU, batching removes the
        kernel-launch overhead that one small student per process pays; untested here).
    students : sequence of GroupStudent
    val : kdlib.data.Split, optional
        Scored after every epoch (each History's ``val_acc``, as ``fit`` does).
    teacher_logits : torch.Tensor, optional
        The teacher's logits on ``pool`` (one row per image); needed by any student with
        ``lam < 1``.
    epochs, batch_size : int
        The same for every student of the group.
    memory_budget : int
        Bytes the group's per-student tensors may take (:func:`group_memory`); a group that
        needs more is trained in parts of as many students as fit, with a message.
    progress : bool
        Show a tqdm bar over the steps.

    Returns
    -------
    list of (nn.Module, History)
        In the order of ``students``: ``mlp(sizes)`` with the trained weights (evaluation mode)
        and its History (``epoch_loss``, ``val_acc``, ``step_loss``; ``epoch_time`` is the
        whole group's time per epoch).
    """
    sizes = [check_int(f"sizes[{i}]", s, low=1) for i, s in enumerate(sizes)]
    students = [_check_student(i, s) for i, s in enumerate(students)]
    epochs = check_int("epochs", epochs, low=1)
    batch_size = check_int("batch_size", batch_size, low=1)
    memory_budget = check_int("memory_budget", memory_budget, low=1)
    if not students:
        return []
    x_pool = pool.x.reshape(len(pool.x), -1)
    if x_pool.shape[1] != sizes[0]:
        raise ValueError(f"the pool's images have {x_pool.shape[1]} features but sizes[0] is {sizes[0]}")
    check_labels(pool.y, len(pool.y), sizes[-1], of="the students' last layer")
    rows = [torch.arange(len(pool.y)) if s.rows is None else torch.as_tensor(s.rows, dtype=torch.int64)
            for s in students]
    for i, r in enumerate(rows):
        if len(r) and (int(r.min()) < 0 or int(r.max()) >= len(pool.y)):
            raise ValueError(f"students[{i}].rows must index the pool's {len(pool.y)} images (0 to "
                             f"{len(pool.y) - 1}), got values from {int(r.min())} to {int(r.max())}")
    n_train = len(rows[0])
    if any(len(r) != n_train for r in rows):
        raise ValueError("every student of a group needs as many training rows; got "
                         f"{sorted({len(r) for r in rows})}")
    if n_train == 0:
        raise ValueError("the students' training samples are empty")
    if any(s.lam < 1 for s in students):
        if teacher_logits is None:
            raise ValueError("students with lam < 1 learn from a teacher: pass teacher_logits")
        if teacher_logits.shape != (len(pool.y), sizes[-1]):
            raise ValueError(f"teacher_logits has shape {tuple(teacher_logits.shape)}; it must be "
                             f"({len(pool.y)}, {sizes[-1]}), one row per pool image")
    n_val = 0 if val is None else len(val.y)
    each = group_memory(1, n_train=n_train, batch_size=batch_size, sizes=sizes, n_val=n_val)
    per_part = max(1, memory_budget // each)
    if per_part < len(students):
        print(f"train_group: {len(students)} students need ~{each * len(students) / 2**20:.0f} MiB, "
              f"over memory_budget={memory_budget / 2**20:.0f} MiB: training them in groups of {per_part}")
    out = []
    for start in range(0, len(students), per_part):
        part = slice(start, start + per_part)
        out += _train_part(sizes, x_pool, pool.y, students[part], rows[part], val, teacher_logits,
                           epochs, batch_size, progress)
    return out


def _train_part(sizes, x_pool, y_pool, students, rows, val, teacher_logits, epochs, batch_size,
                progress):
    """Train one part of a group; students with the same learning rate sit side by side, so
    that one fused Adam kernel steps each run of them (PyTorch's ``adam(..., fused=True)``)."""
    order = sorted(range(len(students)), key=lambda k: students[k].lr)
    trained = _train_sorted(sizes, x_pool, y_pool, [students[k] for k in order], [rows[k] for k in order],
                            val, teacher_logits, epochs, batch_size, progress)
    out = [None] * len(students)
    for k, result in zip(order, trained):
        out[k] = result
    return out


def _train_sorted(sizes, x_pool, y_pool, students, rows, val, teacher_logits, epochs, batch_size,
                  progress):
    S, n, dev = len(students), len(rows[0]), x_pool.device
    inits = [[w.to(dev) for w in _init_weights(sizes, s.seed)] for s in students]
    params = []
    for j, _ in enumerate(inits[0]):  # nn.Linear keeps (out, in): stack as (S, in, out), (S, 1, out)
        stacked = torch.stack([w[j] for w in inits])
        params.append((stacked.transpose(1, 2) if stacked.ndim == 3 else stacked[:, None, :])
                      .contiguous().requires_grad_(True))
    lam = torch.tensor([s.lam for s in students], device=dev)
    T = torch.tensor([s.T for s in students], device=dev)
    eps = torch.tensor([s.eps for s in students], device=dev)[:, None]
    runs = []  # (start, stop, lr) of the students that share a learning rate
    for k, s in enumerate(students):
        if runs and runs[-1][2] == s.lr:
            runs[-1][1] = k + 1
        else:
            runs.append([k, k + 1, s.lr])
    steps = [[torch.tensor(0.0, device=dev) for _ in params] for _ in runs]  # Adam's steps, per tensor
    rows = torch.stack(rows).to(dev)                              # (S, n) pool rows
    log_q = None
    if teacher_logits is not None and bool((lam < 1).any()):
        t = teacher_logits.detach().to(dev, torch.float32)[rows]  # (S, n, K)
        log_q = F.log_softmax(t / T[:, None, None], dim=-1)
    gens = [torch.Generator().manual_seed(s.seed) for s in students]
    steps_per_epoch = -(-n // batch_size)
    total = epochs * steps_per_epoch
    lr_factor, beta1s = _onecycle(total)
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    hists = [History(steps_per_epoch=steps_per_epoch) for _ in students]
    x_val = None if val is None else val.x.reshape(len(val.x), -1).to(dev)
    y_val = None if val is None else val.y.to(dev)
    students_idx = torch.arange(S, device=dev)[:, None]
    bar = tqdm(total=total, desc=f"{S} students in lockstep", leave=False, disable=not progress)
    step = 0
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(dev)  # fit's permutations
        sums = torch.zeros(S, dtype=torch.float64, device=dev)
        for i in range(0, n, batch_size):
            pos = order[:, i:i + batch_size]                                 # (S, B) positions
            idx = rows.gather(1, pos)                                        # (S, B) pool rows
            xb, yb = x_pool[idx], y_pool[idx]
            lq = None if log_q is None else log_q[students_idx, pos]
            losses = _group_loss(_forward(params, xb), yb, lq, lam, T, eps)
            grads = torch.autograd.grad(losses.sum(), params)
            step += 1
            _adam_step(params, grads, m, v, runs, steps, lr_factor[step - 1], beta1s[step - 1])
            values = losses.detach()
            if not bool(torch.isfinite(values).all()):
                bad = int((~torch.isfinite(values)).nonzero()[0])
                raise FloatingPointError(f"the loss of student {bad} ({students[bad]}) became "
                                         f"{values[bad].item()} at step {step}; lower its lr")
            sums += values.double() * pos.shape[1]
            for h, value in zip(hists, values.tolist()):
                h.step_loss.append(value)
            bar.update(1)
        accs = [math.nan] * S
        if x_val is not None and len(x_val):
            with torch.no_grad():
                pred = _forward(params, x_val).argmax(-1)                    # (S, n_val)
            accs = (pred == y_val).float().mean(1).tolist()  # as kdlib.metrics.accuracy counts
        seconds = time.perf_counter() - t0
        for h, total_loss, acc in zip(hists, (sums / n).tolist(), accs):
            h.epoch_time.append(seconds)
            h.epoch_loss.append(total_loss)
            h.val_acc.append(acc)
            h.evals.append((step, acc))
    bar.close()
    return [(_unstack(sizes, params, k), hists[k]) for k in range(S)]


@torch.no_grad()
def _adam_step(params, grads, m, v, runs, steps, lr_factor: float, beta1: float) -> None:
    """One Adam step (``torch.optim.Adam``'s update, fused kernel) for every run of students that
    share a peak learning rate: ``lr = peak × the OneCycle factor of this step``."""
    for (start, stop, peak), run_steps in zip(runs, steps):
        part = slice(start, stop)
        adam([p[part] for p in params], [g[part] for g in grads], [t[part] for t in m],
             [t[part] for t in v], [], run_steps, fused=True, amsgrad=False, beta1=beta1,
             beta2=_ADAM_BETA2, lr=peak * lr_factor, weight_decay=0.0, eps=_ADAM_EPS, maximize=False)


def _unstack(sizes, params, k: int) -> nn.Module:
    """Student ``k`` of the group as an ordinary ``mlp(sizes)`` (evaluation mode)."""
    with torch.random.fork_rng(devices=[]):  # its throwaway initial weights leave the global RNG alone
        model = mlp(sizes).to(params[0].device)
    linears = [layer for layer in model if isinstance(layer, nn.Linear)]
    with torch.no_grad():
        for j, layer in enumerate(linears):
            layer.weight.copy_(params[2 * j][k].T)
            layer.bias.copy_(params[2 * j + 1][k, 0])
    return model.eval()
