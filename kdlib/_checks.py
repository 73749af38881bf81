"""Argument validation shared by every kdlib module.

Each check raises ``ValueError`` / ``TypeError`` with a message that names the
argument, the value it got and what is allowed (DESIGN.md, "Bad arguments").
Public functions declare their scalar arguments' constraints once with
:func:`validate_params`; checks that depend on other arguments or on tensors stay
in the function's body (``check_matrix``, ``check_labels``, ``check_probs``, ...).
"""

from __future__ import annotations

import functools
import inspect
import numbers
import os
from dataclasses import dataclass, field

import torch


def check_int(name, value, *, low=None, high=None):
    """Return ``value`` as ``int`` if it is an integer in ``[low, high]``.

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    value : object
    low, high : int, optional
        Inclusive bounds.

    Returns
    -------
    int
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    _check_range(name, value, low, high, low_open=False)
    return value


def check_float(name, value, *, low=None, high=None, low_open=False):
    """Return ``value`` as ``float`` if it is a finite real number in range.

    Parameters
    ----------
    name : str
    value : object
    low, high : float, optional
        Bounds; ``high`` is inclusive.
    low_open : bool
        Exclude ``low`` itself (for "must be > 0").

    Returns
    -------
    float
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    _check_range(name, value, low, high, low_open=low_open)
    return value


def check_choice(name, value, choices):
    """Return ``value`` if it is one of ``choices``.

    Parameters
    ----------
    name : str
    value : object
    choices : sequence

    Returns
    -------
    object
    """
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name}={value!r} is not supported; choose one of {allowed}")
    return value


def _check_range(name, value, low, high, *, low_open):
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and value > high
    if too_low or too_high:
        if low is not None and high is not None:
            allowed = f"{'(' if low_open else '['}{low}, {high}]"
        elif low is not None:
            allowed = f"{'>' if low_open else '>='} {low}"
        else:
            allowed = f"<= {high}"
        raise ValueError(f"{name}={value!r} is out of range; allowed: {allowed}")


# --------------------------------------------------------------------------- declarative
# Constraints are callables ``constraint(name, value) -> value``; their repr is their rule.
@dataclass(frozen=True)
class Int:
    """An integer in ``[low, high]`` (either bound may be ``None``).

    Parameters
    ----------
    low, high : int or None
        Inclusive bounds; ``None`` leaves that side open. Calling the constraint as
        ``Int(...)(name, value)`` returns ``value`` as ``int`` (a ``bool`` is refused).
    """

    low: int | None = None
    high: int | None = None

    def __call__(self, name, value):
        return check_int(name, value, low=self.low, high=self.high)


@dataclass(frozen=True)
class Float:
    """A finite real number in ``[low, high]``; ``low_open=True`` makes it ``(low, high]``.

    Parameters
    ----------
    low, high : float or None
        Bounds (``high`` inclusive); ``None`` leaves that side open. Calling the constraint
        as ``Float(...)(name, value)`` returns ``value`` as ``float`` (nan, inf and ``bool`` refused).
    low_open : bool
        Keyword only: exclude ``low`` itself (for "must be > 0").
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = field(default=False, kw_only=True)

    def __call__(self, name, value):
        return check_float(name, value, low=self.low, high=self.high, low_open=self.low_open)


@dataclass(frozen=True)
class Bool:
    """``True`` or ``False`` (not 0/1, not a string).

    Parameters
    ----------
    None
        The constraint has no settings; ``Bool()(name, value)`` returns ``value`` unchanged
        or raises ``TypeError``.
    """

    def __call__(self, name, value):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
        return value


@dataclass(frozen=True)
class Str:
    """A string; ``hint`` says what it means (e.g. "a path, or '' for data/teacher.pt").

    Parameters
    ----------
    hint : str
        What the string means, added to the ``TypeError`` message; ``""`` for none. Any
        string passes, ``""`` included; ``Str(...)(name, value)`` returns it unchanged.
    """

    hint: str = ""

    def __call__(self, name, value):
        if not isinstance(value, str):
            what = f" ({self.hint})" if self.hint else ""
            raise TypeError(f"{name} must be a string{what}, got {value!r} ({type(value).__name__})")
        return value


class OneOf:
    """One of a fixed set of values.

    Parameters
    ----------
    *choices : object
        The allowed values (compared with ``in``, so with ``==``). ``OneOf(...)(name, value)``
        returns ``value`` or raises ``ValueError`` listing the choices.
    """

    def __init__(self, *choices):
        self.choices = choices

    def __call__(self, name, value):
        return check_choice(name, value, self.choices)

    def __repr__(self):
        return f"OneOf({', '.join(map(repr, self.choices))})"


@dataclass(frozen=True)
class Optional:
    """``None``, or a value that ``constraint`` accepts.

    Parameters
    ----------
    constraint : callable
        ``constraint(name, value) -> value``, applied to anything but ``None``.
    """

    constraint: object

    def __call__(self, name, value):
        return None if value is None else self.constraint(name, value)


@dataclass(frozen=True)
class Each:
    """A list whose items ``constraint`` accepts, with ``min_len`` to ``max_len`` entries.

    Any iterable but a string is accepted and returned as a list; item ``i`` is named
    ``name[i]`` in a message.

    Parameters
    ----------
    constraint : callable
        ``constraint(name, value) -> value``, applied to every item.
    min_len : int
        The fewest entries allowed.
    max_len : int, optional
        The most entries allowed (``None``: no limit).
    example : str, optional
        A list to show in the papermill hint of the message for a value that is not a list
        (a notebook parameter's constraint gives one: ``-y 'name: [32, 64]'``).
    """

    constraint: object
    min_len: int = 0
    max_len: int | None = None
    example: str | None = None

    def __call__(self, name, value):
        items = None if isinstance(value, (str, bytes)) else _as_list(value)
        if items is None:
            hint = "" if self.example is None else \
                f"; with papermill pass it as YAML: -y '{name}: {self.example}'"
            raise TypeError(f"{name} must be a list, got {value!r} ({type(value).__name__}){hint}")
        if len(items) < self.min_len or (self.max_len is not None and len(items) > self.max_len):
            most = "" if self.max_len is None else f" and at most {self.max_len}"
            raise ValueError(f"{name}={items!r} has {len(items)} entries; allowed: at least "
                             f"{self.min_len}{most}")
        return [self.constraint(f"{name}[{i}]", v) for i, v in enumerate(items)]


@dataclass(frozen=True)
class Seeds:
    """Seeds: a count ``n`` (the seeds ``0 … n-1``) or a non-empty sequence of seeds ``>= 0``.

    The constraint has no settings (use :data:`SEEDS`); item ``i`` of a sequence is named
    ``name[i]`` in a message.

    Returns
    -------
    list of int
        What ``Seeds()(name, value)`` gives back: the seeds.
    """

    def __call__(self, name, value):
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return list(range(check_int(name, value, low=1)))
        items = None if isinstance(value, (str, bytes)) else _as_list(value)
        if not items:
            raise ValueError(f"{name} must be a positive integer or a non-empty sequence of seeds, "
                             f"got {value!r}")
        return [check_int(f"{name}[{i}]", s, low=0) for i, s in enumerate(items)]


def _as_list(value):
    try:
        return list(value)
    except TypeError:
        return None


@dataclass(frozen=True)
class Param:
    """A notebook parameter: its constraint and what it means (an entry of a lesson's ``PARAMS``).

    Parameters
    ----------
    constraint : callable
        ``constraint(name, value) -> value``; calling the ``Param`` calls it.
    doc : str
        What the parameter means, one or two sentences; :func:`settings_class` adds the
        allowed values (from the constraint) to it in the ``Settings`` docstring.
    type : str
        The attribute's type as the docstring names it (``""``: from the constraint).
    """

    constraint: object
    doc: str
    type: str = ""

    def __call__(self, name, value):
        return self.constraint(name, value)


def allowed(constraint) -> str:
    """What ``constraint`` allows, as its error message writes it (``""`` when it does not say).

    Parameters
    ----------
    constraint : callable
        :class:`Int`, :class:`Float`, :class:`OneOf`, :class:`Each` or :class:`Param` say their
        rule; any other constraint says nothing.

    Returns
    -------
    str
        E.g. ``"[100, 55000]"``, ``"(0, 100]"``, ``">= 0"``, ``"one of 'a', 'b'"``,
        ``"1 to 3 entries; each in [1, 512]"``.

    Examples
    --------
    >>> allowed(Float(0, 100, low_open=True)), allowed(Int(0)), allowed(Bool())
    ('(0, 100]', '>= 0', '')
    """
    c = constraint.constraint if isinstance(constraint, Param) else constraint
    if isinstance(c, Each):
        parts = []
        if c.max_len is not None:
            parts.append(f"{c.min_len} to {c.max_len} entries")
        elif c.min_len:
            parts.append(f"at least {c.min_len} {'entry' if c.min_len == 1 else 'entries'}")
        each = allowed(c.constraint)
        if each:
            parts.append(f"each in {each}" if each[0] in "[(" else f"each {each}")
        return "; ".join(parts)
    if isinstance(c, OneOf):
        return "one of " + ", ".join(map(repr, c.choices))
    if not isinstance(c, (Int, Float)) or (c.low is None and c.high is None):
        return ""
    low_open = getattr(c, "low_open", False)
    if c.low is not None and c.high is not None:
        return f"{'(' if low_open else '['}{c.low:g}, {c.high:g}]"
    return f"{'>' if low_open else '>='} {c.low:g}" if c.high is None else f"<= {c.high:g}"


_TYPES = {Int: int, Float: float, Bool: bool, Str: str}


def settings_class(spec: dict):
    """Class decorator: a lesson's frozen ``Settings`` dataclass with one field per parameter.

    The fields are ``spec``'s names in its order, typed from their constraints; the class
    docstring gets an ``Attributes`` section written from each :class:`Param`'s ``doc`` and
    its allowed values, so the notebook's parameters, their checks and their documentation
    are written once, in ``PARAMS``. The class body holds only the derived settings
    (properties).

    Parameters
    ----------
    spec : dict
        The lesson's ``PARAMS``: parameter name → :class:`Param`.

    Returns
    -------
    callable
        The decorator (it returns ``dataclass(frozen=True)`` of the class).

    Examples
    --------
    >>> @settings_class({"epochs": Param(Int(1, 10), "Training epochs.")})
    ... class Settings:
    ...     \"\"\"A notebook's parameters.\"\"\"
    >>> Settings(epochs=3)
    Settings(epochs=3)
    >>> print(Settings.__doc__.split("----------")[1].strip())
    epochs : int
        Training epochs. Allowed: [1, 10].
    """
    def make(cls):
        fields, lines = {}, []
        for name, c in spec.items():
            if not isinstance(c, Param):
                raise TypeError(f"settings_class: PARAMS[{name!r}] must be a Param(constraint, doc), "
                                f"got {c!r}")
            kind = _TYPES.get(type(c.constraint), object)
            if isinstance(c.constraint, OneOf) and len({type(v) for v in c.constraint.choices}) == 1:
                kind = type(c.constraint.choices[0])
            fields[name] = kind
            rule = allowed(c)
            doc = c.doc + (f" Allowed: {rule}." if rule else "")
            lines.append(f"{name} : {c.type or kind.__name__}\n    {doc}")
        cls.__annotations__ = {**fields, **cls.__dict__.get("__annotations__", {})}
        head = inspect.cleandoc(cls.__doc__ or "")
        cls.__doc__ = f"{head}\n\nAttributes\n----------\n" + "\n".join(lines)
        return dataclass(frozen=True)(cls)

    return make


TEACHER_CHECKPOINT = Param(Str("a path, or '' for data/teacher.pt"),
                           "Teacher checkpoint; ``\"\"`` means ``data/teacher.pt``.")
"""The ``checkpoint`` parameter of every notebook that loads the teacher."""
QUICK_RUN = Param(Bool(), "A smoke run of seconds: :data:`QUICK` replaces the sizes.")
"""The ``quick`` parameter of every notebook that has a smoke-test setting."""
SEEDS = Seeds()
"""Seeds as every engine function takes them: a count or a list (:class:`Seeds`)."""
LAM = Float(0, 1)  # the weight of the hard-label term (kdlib.losses.kd_loss)
TEMPERATURE = Float(0, low_open=True)


def check_params(values: dict, spec: dict) -> dict:
    """Validate every entry of ``values`` against ``spec`` (name → constraint).

    The one parameter check every lesson uses (in the spirit of scikit-learn's
    parameter constraints). Constraints are :class:`Int`, :class:`Float`, :class:`Bool`,
    :class:`Str`, :class:`OneOf`, :class:`Optional`, :class:`Each`, or any callable
    ``constraint(name, value) -> value`` that raises with the same message format.

    Parameters
    ----------
    values : dict
        Parameter name → value, e.g. a notebook's parameters.
    spec : dict
        Parameter name → constraint. Every name of ``spec`` must be in ``values``
        and vice versa.

    Returns
    -------
    dict
        The values, converted (``int``/``float``) where the constraint converts.

    Raises
    ------
    TypeError, ValueError
        ``"<name>=<value> is out of range; allowed: [low, high]"`` and friends,
        naming the first bad parameter; an unknown or missing name is a ``TypeError``.
    """
    unknown = sorted(set(values) - set(spec))
    if unknown:
        raise TypeError(f"unknown parameter {unknown[0]!r}; the parameters are {sorted(spec)}")
    missing = sorted(set(spec) - set(values))
    if missing:
        raise TypeError(f"parameter {missing[0]!r} is missing; the parameters are {sorted(spec)}")
    return {name: spec[name](name, values[name]) for name in spec}


_check_dict = check_params  # what settings_checker's functions call (they shadow the name)


def settings_checker(settings, spec: dict, *, quick: dict | None = None, also=None):
    """Make a lesson's ``check_params(**params) -> Settings`` (the lesson template's first step).

    The function it returns validates every parameter of the notebook against ``spec``
    (:func:`check_params`), replaces the sizes by ``quick`` when ``quick=True`` is passed, runs
    ``also`` (checks that involve several parameters) and returns ``settings(**values)``.

    Parameters
    ----------
    settings : type
        The lesson's frozen ``Settings`` dataclass; the function is documented as its module's.
    spec : dict
        Parameter name → constraint (the notebook's ``parameters`` cell, name for name).
    quick : dict, optional
        What ``quick=True`` uses: entries for the names of ``spec`` (others are ignored).
    also : callable, optional
        ``also(values)`` raises ``ValueError`` for a combination that is not allowed.

    Returns
    -------
    callable
        ``check_params(**params) -> settings``.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Settings:
    ...     epochs: int
    >>> settings_checker(Settings, {"epochs": Int(1, 10)})(epochs=3)
    Settings(epochs=3)
    """
    notebook = settings.__module__.rpartition(".lesson")[2].split("_")[0]

    def check_params(**params):
        values = _check_dict(params, spec)
        if quick and values.get("quick"):
            values.update({k: v for k, v in quick.items() if k in values})
        if also is not None:
            also(values)
        return settings(**values)

    check_params.__module__ = settings.__module__
    check_params.__annotations__ = {"return": settings}
    check_params.__doc__ = f"""Validate notebook {notebook}'s parameters; return the settings to run with.

    Parameters
    ----------
    **params
        Every parameter of the notebook's ``parameters`` cell, by name (see
        :class:`Settings`){"; ``quick=True`` replaces the sizes by :data:`QUICK`" if quick else ""}.

    Returns
    -------
    Settings

    Raises
    ------
    TypeError, ValueError
        Naming the parameter, its value and what is allowed.
    """
    return check_params


def validate_params(**constraints):
    """Decorator: check the named arguments of every call and pass on the converted values.

    ``@validate_params(epochs=Int(low=1), lam=LAM)`` declares each scalar argument's
    constraint once (scikit-learn's ``validate_params``). Arguments are checked in the
    order declared, whether passed by position or keyword; defaults too (once at
    decoration, where a bad default is an error, and again on each call that omits
    them). No signature is bound per call, so a per-batch loss may use it. Checks that
    depend on other arguments or on tensors stay in the function's body.

    Parameters
    ----------
    **constraints
        Parameter name → constraint (:class:`Int`, :class:`Float`, :class:`Bool`,
        :class:`Str`, :class:`OneOf`, :class:`Optional`, :class:`Each` or any callable
        ``constraint(name, value) -> value`` with the same message format).

    Returns
    -------
    callable
        The decorator. The decorated function keeps the original's name, docstring and
        signature (``functools.wraps``, ``__wrapped__``) and shows its rules in ``.constraints``.

    Raises
    ------
    TypeError
        At decoration: a constraint for a parameter the function lacks (or for
        ``*args``, ``**kwargs`` or a positional-only one).
    """
    def decorate(func):
        params = inspect.signature(func).parameters
        names = list(params)
        slots = []
        for name, check in constraints.items():
            p = params.get(name)
            if p is None or p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                raise TypeError(f"validate_params: {func.__qualname__}() has no parameter {name!r} "
                                f"that can be checked; its parameters are {names}")
            if p.default is not p.empty:
                check(name, p.default)
            slots.append((name, check, names.index(name) if p.kind is p.POSITIONAL_OR_KEYWORD else None,
                          p.default))

        @functools.wraps(func)
        def checked(*args, **kwargs):
            args = list(args)
            for name, check, index, default in slots:
                if name in kwargs:
                    kwargs[name] = check(name, kwargs[name])
                elif index is not None and index < len(args):
                    args[index] = check(name, args[index])
                elif default is not inspect.Parameter.empty:
                    kwargs[name] = check(name, default)
            return func(*args, **kwargs)

        checked.constraints = dict(constraints)
        return checked

    return decorate


# --------------------------------------------------------------------------- tensors
def check_lam(lam) -> float:
    """``lam`` in [0, 1]: the weight of the hard-label term (:func:`kdlib.losses.kd_loss`).

    Parameters
    ----------
    lam : float
        The value to check; an integer such as 0 or 1 is accepted.

    Returns
    -------
    float
        ``lam`` as ``float``.
    """
    return LAM("lam", lam)


def check_temperature(T) -> float:
    """A temperature ``T > 0``.

    Parameters
    ----------
    T : float
        The value to check; must be finite and ``> 0``.

    Returns
    -------
    float
        ``T`` as ``float``.
    """
    return TEMPERATURE("T", T)


def check_matrix(name: str, x) -> torch.Tensor:
    """A floating-point ``(batch, classes)`` tensor with at least one class column.

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    x : object

    Returns
    -------
    torch.Tensor
        ``x`` itself.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must be a 2-D tensor (batch, classes), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.shape[1] < 1:
        raise ValueError(f"{name} must have at least one class column, got shape {tuple(x.shape)}")
    return x


def check_same_shape(name_a: str, a, name_b: str, b) -> None:
    """Two tensors of one shape (their names go into the message).

    Parameters
    ----------
    name_a, name_b : str
        The arguments' names, for the message.
    a, b : torch.Tensor or numpy.ndarray
        Anything with a ``.shape``; only the shapes are compared.

    Returns
    -------
    None
        Raises ``ValueError`` when the shapes differ.
    """
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")


def check_labels(labels, n: int, n_classes: int, *, of: str) -> torch.Tensor:
    """``n`` integer class indices in ``[0, n_classes - 1]``; returned as int64.

    Parameters
    ----------
    labels : object
    n, n_classes : int
        The batch size and the number of classes they must fit.
    of : str
        What has ``n_classes`` classes, for the message (e.g. ``"student_logits"``).

    Returns
    -------
    torch.Tensor
    """
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a torch.Tensor of class indices, got {type(labels).__name__}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"labels must hold integer class indices, got dtype {labels.dtype}")
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(f"labels must be a 1-D tensor of length {n} (the batch size of {of}), "
                         f"got shape {tuple(labels.shape)}")
    if n and (int(labels.min()) < 0 or int(labels.max()) > n_classes - 1):
        raise ValueError(f"labels must be class indices in [0, {n_classes - 1}] ({of} has {n_classes} "
                         f"classes), got values in [{int(labels.min())}, {int(labels.max())}]")
    return labels.long()


def check_probs(name: str, p, *, rows_sum_to_one: bool = False) -> torch.Tensor:
    """A ``(batch, classes)`` tensor of probabilities in [0, 1] (rows summing to 1, if asked).

    Parameters
    ----------
    name : str
    p : object
    rows_sum_to_one : bool
        Also require every row to sum to 1 (within 1e-3), as a softmax's do.

    Returns
    -------
    torch.Tensor
        ``p`` itself.
    """
    p = check_matrix(name, p)
    if p.numel() and (bool((p < 0).any()) or bool((p > 1).any()) or bool(p.isnan().any())):
        raise ValueError(f"{name} must hold probabilities in [0, 1], got values in "
                         f"[{float(p.min()):.4g}, {float(p.max()):.4g}]; pass softmax outputs, not logits")
    if rows_sum_to_one and len(p) and not torch.allclose(p.sum(1), torch.ones(len(p)).to(p), atol=1e-3):
        sums = p.sum(1)
        raise ValueError(f"the rows of {name} must sum to 1, got sums in [{float(sums.min()):.4g}, "
                         f"{float(sums.max()):.4g}]; pass softmax outputs, e.g. logits.softmax(1)")
    return p


def check_kd_batch(student_logits, teacher_logits, labels):
    """A distillation batch: two same-shape logit matrices and (unless ``None``) their labels.

    Returns
    -------
    tuple
        ``(student_logits, teacher_logits detached in the student's dtype, labels as int64 or None)``.
    """
    s = check_matrix("student_logits", student_logits)
    t = check_matrix("teacher_logits", teacher_logits)
    check_same_shape("student_logits", s, "teacher_logits", t)
    y = None if labels is None else check_labels(labels, s.shape[0], s.shape[1], of="student_logits")
    return s, t.detach().to(s.dtype), y


# --------------------------------------------------------------------------- exercises
class Verdict:
    """What a lesson's ``check_exercise`` returns: right or not, and the message to show.

    It is truthy exactly when the answer is right (``assert lesson.check_exercise(...)``
    works in an autograder), and it shows as its message, whether it is a cell's last
    value (``repr``) or printed (``str``).

    Parameters
    ----------
    right : bool
        Whether the answer is right.
    message : str
        ``"Right: ..."`` or ``"Not yet: <hint>"``.
    """

    __slots__ = ("right", "message")

    def __init__(self, right: bool, message: str):
        object.__setattr__(self, "right", bool(right))
        object.__setattr__(self, "message", str(message))

    def __setattr__(self, name, value):
        raise AttributeError("a Verdict is read-only")

    def __eq__(self, other):
        return (isinstance(other, Verdict) and (self.right, self.message) == (other.right, other.message))

    def __hash__(self):
        return hash((self.right, self.message))

    def __bool__(self) -> bool:
        return bool(self.right)

    def __str__(self) -> str:
        return self.message

    __repr__ = __str__

    def require(self) -> Verdict:
        """This verdict, for an nbgrader autograder test cell: there a "Not yet" must fail.

        Under ``nbgrader autograde`` or ``validate`` (the environment variable
        ``NBGRADER_EXECUTION`` is ``"autograde"`` or ``"validate"``), an answer that is not
        right raises ``AssertionError`` with the hint, so that nbgrader scores the cell 0 and
        shows why. Anywhere else it never raises: a learner's run prints "Not yet: <hint>".

        Returns
        -------
        Verdict
            ``self``, to print (``print("exercise 1:", check_exercise(1, answer).require())``).

        Raises
        ------
        AssertionError
            Only under nbgrader, for an answer that is not right.
        """
        if not self.right and os.environ.get("NBGRADER_EXECUTION", "").lower() in GRADER_RUNS:
            raise AssertionError(self.message)
        return self


GRADER_RUNS = ("autograde", "validate")
"""The values of ``NBGRADER_EXECUTION`` under which :meth:`Verdict.require` fails a wrong answer
(nbgrader sets it while it autogrades or validates a notebook)."""


PLACEHOLDER = "replace None by your answer, then run this cell again"
"""The hint for an unanswered exercise (the notebooks' placeholder ``answer = None``)."""


def as_number(answer) -> float | None:
    """A reader's numeric answer as ``float``, or ``None`` when it is not a number.

    For the function entries of a lesson's ``EXERCISES``: ``True``/``False`` are not numbers
    here; ints, floats, NumPy and one-element torch scalars and numeric strings are.

    Parameters
    ----------
    answer : object

    Returns
    -------
    float or None
    """
    if isinstance(answer, bool):
        return None
    try:
        return float(answer)
    except (TypeError, ValueError, RuntimeError):
        return None


def verdict(ok, right: str, hint: str) -> tuple[bool, str]:
    """What a function entry of ``EXERCISES`` returns: ``(ok, right if ok else hint)``.

    Parameters
    ----------
    ok : bool-like
    right, hint : str
        The explanation for a right answer, the hint for a wrong one.

    Returns
    -------
    tuple
        ``(bool(ok), text)``, as :func:`check_answer` expects.
    """
    return bool(ok), (right if ok else hint)


def check_answer(exercises: dict, n, answer, **evidence) -> Verdict:
    """Grade a lesson's exercise: the one check behind every lesson's ``check_exercise``.

    Parameters
    ----------
    exercises : dict
        The lesson's ``EXERCISES``, exercise number → how to grade it:

        * ``(want, tol, hint)`` or ``(want, tol, hint, right)``: a number with an
          absolute tolerance ``tol``, or (``tol=None``) a short text compared
          case-insensitively (surrounding spaces and parentheses ignored); ``right``
          is what a right answer is told (default: ``want``);
        * a function ``f(answer, **evidence) -> (right, text)`` for checks that compute
          the wanted value from the reader's run (``text`` is the explanation when
          right, the hint when not). It may raise ``ValueError`` for missing evidence.
    n : int
        The exercise.
    answer : object
        The reader's answer. ``None`` (the notebooks' placeholder) is "not yet", and a
        wrong type is simply "not yet", never an error.
    **evidence
        Whatever a function entry needs from the reader's run (passed on to it).

    Returns
    -------
    Verdict
        ``"Right: ..."`` or ``"Not yet: <hint>"``.

    Raises
    ------
    ValueError
        For an exercise number that is not in ``exercises``.
    """
    if isinstance(n, bool) or n not in exercises:
        raise ValueError(f"n={n!r} is not an exercise; choose one of {sorted(exercises)}")
    if answer is None:
        return Verdict(False, f"Not yet: {PLACEHOLDER}")
    entry = exercises[n]
    if callable(entry):
        ok, text = entry(answer, **evidence)
    else:
        want, tol, hint, *right = entry
        if tol is None:
            ok = str(answer).strip().lower().strip("()").strip() == want
        else:
            try:
                ok = abs(float(answer) - want) <= tol
            except (TypeError, ValueError):
                ok = False
        text = (right[0] if right else f"{want}") if ok else hint
    return Verdict(bool(ok), f"{'Right' if ok else 'Not yet'}: {text}")


def exercise_checker(exercises: dict, *, answers: str, evidence: dict | None = None):
    """Make a lesson's ``check_exercise(n, answer, **evidence) -> Verdict`` (the template's last step).

    The function it returns grades with :func:`check_answer` and is documented as its module's:
    the docstring is written from ``answers`` and ``evidence``, so every lesson's checker has the
    same signature, return convention and documentation.

    Parameters
    ----------
    exercises : dict
        The lesson's ``EXERCISES`` (see :func:`check_answer`).
    answers : str
        What each exercise's answer is ("1: ...; 2: ...").
    evidence : dict, optional
        Evidence names → what they are, for exercises whose check needs the reader's run; a key
        may name several (``"rows, epochs"``). Any other name is refused.

    Returns
    -------
    callable
        ``check_exercise(n, answer, **evidence) -> Verdict``.

    Examples
    --------
    >>> check = exercise_checker({1: (4, 0.0, "2 + 2")}, answers="1: two plus two.")
    >>> check(1, 4), check(1, None)
    (Right: 4, Not yet: replace None by your answer, then run this cell again)
    """
    evidence = dict(evidence or {})
    names = [n.strip() for key in evidence for n in key.split(",")]
    first, last = min(exercises), max(exercises)

    def check_exercise(n: int, answer, **given) -> Verdict:
        unknown = sorted(set(given) - set(names))
        if unknown:
            takes = ", ".join(names) if names else "none (every answer is checked alone)"
            raise TypeError(f"check_exercise() got unknown evidence {unknown[0]!r}; the evidence it "
                            f"takes: {takes}")
        return check_answer(exercises, n, answer, **given)

    caller = inspect.currentframe().f_back.f_globals  # the lesson module that makes it
    check_exercise.__module__ = caller.get("__name__", __name__)
    check_exercise.__annotations__ = {"n": int, "return": Verdict}
    notebook = check_exercise.__module__.rpartition(".lesson")[2].split("_")[0]
    ev = "".join(f"\n    {key}\n        {text}" for key, text in evidence.items()) or \
        "\n    **evidence\n        None: every answer is checked alone."
    check_exercise.__doc__ = f"""Grade exercise ``n`` of notebook {notebook}; a wrong answer never raises.

    Parameters
    ----------
    n : int
        The exercise, {first} to {last} (:data:`EXERCISES`).
    answer
        {answers} ``None`` (the notebook's placeholder) says what to do.{ev}

    Returns
    -------
    Verdict
        ``"Right: ..."`` or ``"Not yet: <hint>"``; truthy when right.

    Raises
    ------
    ValueError
        For an exercise that does not exist, or one answered without its evidence.
    TypeError
        For evidence this notebook's exercises do not take.
    """
    return check_exercise
