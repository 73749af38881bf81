"""kdlib: the helper library of the kdlab knowledge-distillation collection.

Two layers. **Core modules** are lesson-agnostic tools with one job each; they never
mention a notebook. **Lesson modules** hold everything that only one notebook uses.

Core modules (dependencies run down this list, never up)::

    _checks       argument validation: the @validate_params(name=constraint) decorator of public
                  functions, check_params(values, spec) for lessons, check_int/float/choice
    results       statistics over seeds (sample sd, paired difference with a t interval and
                  its verdict), tidy rows as pandas DataFrames, the comparison table
                  (compare, styled), CSV rows (no torch)
    data          data sets as in-memory tensors (Fashion-MNIST from data/, digits, moons),
                  seeded stratified splits, the data-argument parser, seeded shift transforms
    models        the model zoo (mlp, cnn, rnn, linear, soft_tree), parameter/FLOP counts,
                  predict, the device choice, reading a named layer (hooks), safe save/load
    losses        soft targets, the KD loss (Hinton et al. 2015) and its parts, the λ/α
                  conventions, the λ = 1 rule (effective_T), feature (hint, cosine) losses
    article       the source article literally: formulas 3.2.1–3.2.3, its snippet and loss
    pitfalls      the classic implementation mistakes, each a named pitfall_* function
    student_init  ways to initialise a student from a teacher (init_student)
    metrics       accuracy, agreement, fidelity, confusion, calibration (ECE, reliability
                  bins), latency statistics, the GEMM peak, Pareto fronts
    train         fit (one training loop), distill (cached teacher logits), the teacher
    experiments   the one way to train and compare students: methods (scratch, label
                  smoothing, kd, on_targets, custom), Config → train / train_students (tidy
                  rows, no global RNG); λ/T/seed grids with a row cache, worker processes or
                  any executor (run_points), k-fold folds; same-shape students in lockstep
                  as one batched model (train_group)
    runs          papermill reruns over a parameter grid on Dask (local or a cluster),
                  record(), summary.csv, CLI
    _execute      executing one notebook headless (plain papermill); one sweep run on a worker
    plots         generic matplotlib figures (new Figure each call, no pyplot state), including
                  dot_plot, the collection's one comparison plot
    widgets       generic ipywidgets helpers (figure-in-callback display, LiveCurves)

Lesson modules, one per notebook (``ls kdlib/lessons`` lines up with ``ls notebooks``)::

    notebooks/01_teacher.ipynb        ↔  kdlib/lessons/lesson01_teacher.py
    notebooks/02_soft_targets.ipynb   ↔  kdlib/lessons/lesson02_soft_targets.py
    notebooks/03_student_init.ipynb   ↔  kdlib/lessons/lesson03_student_init.py
    notebooks/04a_article_formulas.ipynb ↔ kdlib/lessons/lesson04a_article_formulas.py
    notebooks/04b_correct_loss.ipynb  ↔  kdlib/lessons/lesson04b_correct_loss.py
    notebooks/05_lambda_tuning.ipynb  ↔  kdlib/lessons/lesson05_lambda_tuning.py
    notebooks/06_dark_knowledge.ipynb ↔  kdlib/lessons/lesson06_dark_knowledge.py
    notebooks/07_efficiency.ipynb     ↔  kdlib/lessons/lesson07_efficiency.py
    notebooks/08_fidelity.ipynb       ↔  kdlib/lessons/lesson08_fidelity.py
    notebooks/09_interpretability.ipynb ↔ kdlib/lessons/lesson09_interpretability.py
    notebooks/10_other_students.ipynb ↔  kdlib/lessons/lesson10_other_students.py
    notebooks/11_budget_map.ipynb     ↔  kdlib/lessons/lesson11_budget_map.py

A lesson module follows one template: its notebook's Settings and check_params, its
experiments written on kdlib.experiments, figures and widgets, say_* functions that write the
"what we saw" sentences from the run, and EXERCISES graded by _checks.check_answer.
Lessons import core modules, never each other; what two lessons share moves down into a
core module; no core module imports a lesson. Public functions validate their arguments
once, with messages that name the argument, the value and what is allowed; inner loops call
unchecked internals.
"""

__version__ = "0.2.0"
