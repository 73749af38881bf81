"""ipywidgets builders and live displays that wire controls to ``kdlib.plots``.

One submodule per notebook. Every builder returns its widget and exposes what
its callback produced (a label's text, the current figure) as attributes, so
tests can set ``.value`` and check the result headless.
"""

from kdlib.widgets._display import figure_png, in_kernel, show_in  # noqa: F401
from kdlib.widgets.losses import *  # noqa: F401,F403
from kdlib.widgets.soft_targets import *  # noqa: F401,F403
from kdlib.widgets.student_init import *  # noqa: F401,F403
from kdlib.widgets.training import *  # noqa: F401,F403
from kdlib.widgets.tuning import *  # noqa: F401,F403
