"""kdlib: the helper library of the kdlab knowledge-distillation collection.

Modules (one job each; see ../shared/DESIGN.md):
``data`` · ``models`` · ``losses`` · ``student_init`` · ``train`` · ``metrics`` ·
``tuning`` · ``runs`` · ``plots`` · ``widgets``.
"""

__version__ = "0.1.0"
