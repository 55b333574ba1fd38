"""``ledrec look``: a small web application on 127.0.0.1 for looking at what the models recommend — the
paper's Figure 8 (a history beside GBO's, CBO's and LED's recommendations), an item's nearest items, a map of
the item vectors, and the daily job's versions and gate decisions (docs/look.md).

:mod:`ledrec.look.data` computes what the pages show (numpy, testable without a browser),
:mod:`ledrec.look.jobs` reads a published root, :mod:`ledrec.look.app` routes and renders (Starlette,
Jinja2, uvicorn: ``pip install -e '.[look]'``). Nothing else in the package imports this one.
"""
