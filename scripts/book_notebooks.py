"""Sphinx extension for the book: every chapter downloadable as a notebook; launch buttons.

* Each page built from a MyST notebook (``book/*.md`` with a ``kernelspec``)
  offers ``.ipynb`` in the theme's download menu. The notebook is converted
  from the chapter with jupytext when the book is built, without outputs, and
  written to ``_sources/<page>.ipynb`` beside the page's other sources; it runs
  in Jupyter with the course library installed, its explorers live.
* Launch buttons (Binder and a JupyterHub) appear only when
  ``actlab_repository_url`` is set (``html_context`` in ``_config.yml``), the
  URL the course is published at. Left empty (the default) the pages have no
  launch buttons and load nothing from the network.
"""

from __future__ import annotations

from pathlib import Path

# html_context keys (Sphinx accepts any key there) and their defaults
SETTINGS = {
    "actlab_repository_url": "",
    "actlab_repository_branch": "main",
    "actlab_binderhub_url": "https://mybinder.org",
    "actlab_jupyterhub_url": "",
}


def _is_chapter(app, pagename: str) -> bool:
    path = Path(app.env.doc2path(pagename))
    return path.suffix == ".md" and "kernelspec" in app.env.metadata.get(pagename, {})


def _notebook_pages(app) -> list[str]:
    return [name for name in app.env.found_docs if _is_chapter(app, name)]


def configure_launch_buttons(app, config) -> None:
    settings = dict(SETTINGS)
    settings.update({k: v for k, v in config.html_context.items() if k in SETTINGS and v})
    url = settings["actlab_repository_url"].strip().rstrip("/")
    if not url:
        return
    options = dict(config.html_theme_options)
    options.update(
        repository_url=url,
        repository_branch=settings["actlab_repository_branch"],
        path_to_docs="",
        use_repository_button=True,
        launch_buttons={
            "notebook_interface": "jupyterlab",
            "binderhub_url": settings["actlab_binderhub_url"],
            "jupyterhub_url": settings["actlab_jupyterhub_url"],
        },
    )
    config.html_theme_options = options


def offer_notebook(app, pagename, templatename, context, doctree) -> None:
    if doctree is not None and _is_chapter(app, pagename):
        context["ipynb_source"] = f"{pagename}.ipynb"


def write_notebooks(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    import jupytext

    for pagename in _notebook_pages(app):
        source = Path(app.env.doc2path(pagename))
        notebook = jupytext.read(source)
        dest = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
        dest.parent.mkdir(parents=True, exist_ok=True)
        jupytext.write(notebook, dest, fmt="ipynb")


def setup(app):
    app.connect("config-inited", configure_launch_buttons)
    # before the theme builds its download menu (priority 501)
    app.connect("html-page-context", offer_notebook, priority=500)
    # after the theme, which copies executed notebooks there when launch buttons are on
    app.connect("build-finished", write_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
