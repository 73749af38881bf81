"""kdlib: the helper library of the kdlab knowledge-distillation collection.

Two layers. **Core modules** are lesson-agnostic tools with one job each; they never
mention a notebook. **Lesson modules** hold everything that only one notebook uses.

Core modules (dependencies run down this list, never up)::

    _checks       argument validation: check_int/float/choice and the declarative
                  check_params(values, spec) every lesson's parameter check uses
    results       statistics over seeds (sample sd, mean ± sd, paired difference with a
                  t interval), percent formatting, CSV rows (no torch)
    data          data sets as in-memory tensors (Fashion-MNIST from data/, digits, moons),
                  seeded stratified splits, the data-argument parser unpack_splits
    models        the model zoo (mlp, cnn, rnn, ...), parameter/FLOP counts, predict,
                  safe save/load (weights_only, sha256)
    losses        soft targets, the KD loss (Hinton et al. 2015) and its parts, the λ/α
                  conventions, the λ = 1 rule (effective_T)
    article       the source article literally: formulas 3.2.1–3.2.3, its snippet and loss
    pitfalls      the classic implementation mistakes, each a named pitfall_* function
    student_init  ways to initialise a student from a teacher (init_student)
    metrics       accuracy, agreement, confusion, calibration (ECE), latency
    train         fit (one training loop), distill (cached teacher logits), the teacher
    tuning        λ/T/seed grids in-process with a cache, k-fold selection
    runs          papermill reruns over a parameter grid, record(), summary.csv, CLI
    plots         generic matplotlib figures (new Figure each call, no pyplot state)
    widgets       generic ipywidgets helpers (figure-in-callback display, LiveCurves)

Lesson modules, one per notebook (``ls kdlib/lessons`` lines up with ``ls notebooks``)::

    notebooks/01_teacher.ipynb        ↔  kdlib/lessons/lesson01_teacher.py
    notebooks/02_soft_targets.ipynb   ↔  kdlib/lessons/lesson02_soft_targets.py
    notebooks/03_student_init.ipynb   ↔  kdlib/lessons/lesson03_student_init.py
    notebooks/04_loss_formulas.ipynb  ↔  kdlib/lessons/lesson04_loss_formulas.py
    notebooks/05_lambda_tuning.ipynb  ↔  kdlib/lessons/lesson05_lambda_tuning.py

A lesson module holds its notebook's parameter check and settings, its experiment
runners, figures, widgets and exercise checks. Lessons import core modules, never each
other; what two lessons share moves down into a core module; no core module imports a
lesson. Public functions validate their arguments once, with messages that name the
argument, the value and what is allowed; inner loops call unchecked internals.
"""

__version__ = "0.2.0"
