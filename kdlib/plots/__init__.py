"""Matplotlib figures for the lessons, one submodule per notebook.

Every function takes data and returns a new ``Figure`` (no pyplot state is
kept, so they work headless and are testable by inspecting the figure).
Import them from here: ``kdlib.plots.training_curves(history)``.
"""

from kdlib.plots._base import new_figure, smooth  # noqa: F401
from kdlib.plots.losses import *  # noqa: F401,F403
from kdlib.plots.soft_targets import *  # noqa: F401,F403
from kdlib.plots.student_init import *  # noqa: F401,F403
from kdlib.plots.teacher import *  # noqa: F401,F403
from kdlib.plots.tuning import *  # noqa: F401,F403
