"""Sphinx extension: serve MathJax from the local `django-static-mathjax` package instead of a CDN, so every page
renders its formulas with no network (the package is a plain copy of MathJax 3; Django is not needed)."""
from __future__ import annotations

from pathlib import Path


def _point_at_local_copy(app, config) -> None:
    import mathjax  # from the django-static-mathjax distribution

    es5 = Path(mathjax.__file__).parent / "static" / "mathjax"
    if not (es5 / "es5" / "tex-mml-chtml.js").is_file():
        raise RuntimeError(f"no MathJax found in {es5}: is django-static-mathjax installed?")
    config.html_static_path = list(config.html_static_path) + [str(es5)]
    config.mathjax_path = "es5/tex-mml-chtml.js"


def setup(app):
    app.connect("config-inited", _point_at_local_copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
