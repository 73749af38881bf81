"""One module per notebook: ``notebooks/NN_topic.ipynb`` ↔ ``kdlib/lessons/lessonNN_topic.py``.

A lesson module holds everything only its notebook uses: the parameter check
and settings, its experiment runners, its figures and widgets. Lessons import
the core modules of kdlib, never each other (what two lessons share moves down
into a core module), and no core module imports a lesson.
"""
