"""The introduction's worked example and where the course's files are published.

The worked example asks the course's question of ten-layer networks at initialisation:
how much of the learning signal that the last hidden layer receives reaches the first?
The signal of layer ``k`` is the gradient of the loss with respect to its
pre-activation, ``dL/dz_k = delta_k * dphi(z_k)`` (the introduction's notation table);
every hidden layer has the same width, so its root mean square compares layers fairly.
Chapter 3 explains what the example shows.

The repository address and the Binder link come from ``_config.yml``, through the same
code that makes the book's launch buttons (the ``book_notebooks`` Sphinx extension).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any
from urllib.parse import quote, urlsplit

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from actlab.chapters.ch03_backprop import INIT_LABELS
from actlab.engine.activations import ACTIVATIONS, LABELS
from actlab.engine.stats import geometric_summary
from actlab.ensemble import build_member, members_grid
from actlab.presentation.figures import STYLES, panels
from actlab.presentation.prose import num

# ---------------------------------------------------------------------------
# The worked example: the learning signal per layer at initialisation
# ---------------------------------------------------------------------------


def pre_activation_grads(
    net: nn.Sequential, X: torch.Tensor, y: torch.Tensor
) -> list[torch.Tensor]:
    """``dL/dz_k`` for every hidden layer of ``net`` (input side first), for the mean
    squared error of one forward and backward pass; ``net`` is left without gradients.

    Args:
        net: an :func:`actlab.engine.models.mlp`: linear layers, each hidden one followed
            by its activation, the last one the output.
        X, y: inputs ``(N, in_dim)`` and targets ``(N, out_dim)``.

    Returns:
        one ``(N, width)`` tensor per hidden layer.
    """
    linears = [m for m in net if isinstance(m, nn.Linear)]
    hidden = set(map(id, linears[:-1]))
    zs: list[torch.Tensor] = []
    h = X
    for module in net:
        h = module(h)
        if id(module) in hidden:
            h.retain_grad()
            zs.append(h)
    ((h - y) ** 2).mean().backward()
    grads = [z.grad.detach() for z in zs]
    net.zero_grad(set_to_none=True)
    return grads


def signal_per_layer(net: nn.Sequential, X: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Root mean square of ``dL/dz_k`` over examples and units, per hidden layer."""
    return np.array([g.pow(2).mean().sqrt().cpu().item() for g in pre_activation_grads(net, X, y)])


def relative_signal(
    activations: Sequence[str],
    inits: Sequence[str],
    seeds: Sequence[int],
    X: np.ndarray,
    y: np.ndarray,
    *,
    depth: int,
    width: int,
    device: torch.device | str = "cpu",
) -> dict[tuple[str, str], np.ndarray]:
    """Each hidden layer's signal as a fraction of the last hidden layer's, at initialisation.

    One network per activation, initialisation and seed (:func:`members_grid`, built by
    :func:`build_member` as the ensemble's members are).

    Returns:
        ``(activation, init)`` -> an array ``(len(seeds), depth)``: row ``s`` is seed
        ``s``'s :func:`signal_per_layer` divided by its last entry (which is 1).
    """
    X_t = torch.as_tensor(np.asarray(X), dtype=torch.float32, device=device)
    y_t = torch.as_tensor(np.asarray(y), dtype=torch.float32, device=device)
    out: dict[tuple[str, str], list[np.ndarray]] = {}
    for member in members_grid(seeds, activations, inits=inits):
        net = build_member(member, X_t.shape[1], width, depth, y_t.shape[1]).to(device)
        g = signal_per_layer(net, X_t, y_t)
        out.setdefault((member.activation, member.init), []).append(g / g[-1])
    return {key: np.stack(rows) for key, rows in out.items()}


def signal_figure(
    ratios: Mapping[tuple[str, str], np.ndarray],
    activations: Sequence[str],
    inits: Sequence[str],
) -> Figure:
    """One panel per initialisation: each activation's geometric mean over seeds per layer
    (line, in the activation's registry style) and the seeds' range (shaded), log scale."""
    fig, axes = panels(len(inits), height=2.9, sharey=True)
    low = min(r.min() for r in ratios.values())
    for ax, init in zip(axes, inits, strict=True):
        for act in activations:
            s = geometric_summary(ratios[act, init], axis=0)
            k = np.arange(1, len(s.mean) + 1)
            style = STYLES[act]
            ax.fill_between(k, s.low, s.high, color=style["color"], alpha=0.2, lw=0)
            ax.plot(k, s.mean, label=LABELS[act], ms=4, **style)
        ax.set(
            yscale="log",
            xlabel="hidden layer k",
            title=f"{INIT_LABELS.get(init, init)} init",
            xlim=(0.7, k[-1] + 0.3),
            ylim=(low / 4, 10.0),
            xticks=k,
        )
    axes[0].set_ylabel(r"RMS $\partial L/\partial z_k$" + "\n÷ last layer's")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(activations))
    return fig


_DASHES = {"-": "solid", "--": "dashed", ":": "dotted", "-.": "dash-dotted"}
_MARKERS = {"x": "crosses", "o": "circles", "s": "squares", "^": "triangles", "D": "diamonds"}


def line_key(activations: Sequence[str]) -> str:
    """How each activation's line looks in the registry's style, for a caption: e.g.
    ``"sigmoid black, dotted, crosses; ReLU sky blue, solid, squares"``."""
    parts = []
    for act in activations:
        a = ACTIVATIONS[act]
        if a.dash not in _DASHES or a.marker not in _MARKERS:
            raise KeyError(f"no words for {act}'s line ({a.dash!r}, {a.marker!r})")
        parts.append(f"{LABELS[act]} {a.colour}, {_DASHES[a.dash]}, {_MARKERS[a.marker]}")
    return "; ".join(parts)


def first_layer_table(
    ratios: Mapping[tuple[str, str], np.ndarray],
    activations: Sequence[str],
    inits: Sequence[str],
) -> pd.DataFrame:
    """Layer 1's signal as a fraction of the last layer's: geometric mean and range over
    seeds, one row per initialisation and activation, labelled as the page labels them."""
    rows = []
    for init in inits:
        for act in activations:
            s = geometric_summary(ratios[act, init][:, 0])
            rows.append(
                {
                    "initialisation": INIT_LABELS.get(init, init),
                    "activation": LABELS[act],
                    "geometric mean": num(s.mean, "#.2g"),
                    "lowest seed": num(s.low, "#.2g"),
                    "highest seed": num(s.high, "#.2g"),
                }
            )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# Where the files are: the repository and Binder addresses from _config.yml
# ---------------------------------------------------------------------------


def find_config(start: Path | str | None = None) -> Path:
    """The book's ``_config.yml``: in ``start`` (default: the working directory) or the
    nearest folder above it that has one, else above this library (a course checkout
    with the library installed from it, wherever the notebook runs)."""
    here = Path(start or Path.cwd()).resolve()
    for base in (here, Path(__file__).resolve().parent):
        for folder in (base, *base.parents):
            if (folder / "_config.yml").is_file():
                return folder / "_config.yml"
    raise FileNotFoundError(f"no _config.yml in {here} or above it, nor above {__file__}")


def _book_notebooks(config: Mapping[str, Any], root: Path) -> ModuleType:
    """The book's ``book_notebooks`` Sphinx extension, from the folder ``_config.yml``
    names for it (``sphinx.local_extensions``)."""
    folder = config.get("sphinx", {}).get("local_extensions", {}).get("book_notebooks")
    if folder is None:
        raise KeyError("_config.yml names no book_notebooks extension (sphinx.local_extensions)")
    path = root / folder / "book_notebooks.py"
    spec = importlib.util.spec_from_file_location("book_notebooks", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Published:
    """Where the course is published, as the book's launch buttons use it.

    ``repository`` is empty when ``_config.yml`` names no repository; the book then has
    no launch buttons and ``binder`` and ``jupyterhub`` are empty too.
    """

    repository: str = ""
    branch: str = ""
    binder: str = ""
    jupyterhub: str = ""


def binder_url(binderhub: str, repository: str, branch: str, ui: str, path: str) -> str:
    """The address that opens ``path`` of ``repository`` at ``branch`` on a BinderHub, as
    the book theme's launch button for that page writes it (GitHub, GitLab, any git)."""
    parts = urlsplit(repository)
    host = f"{parts.scheme}://{parts.netloc}"
    owner_repo = parts.path.strip("/").split("/")
    if host == "https://github.com" and len(owner_repo) == 2:
        spec = f"gh/{owner_repo[0]}/{owner_repo[1]}"
    elif host == "https://gitlab.com" and len(owner_repo) == 2:
        spec = f"gl/{owner_repo[0]}%2F{owner_repo[1]}"
    else:
        spec = f"git/{quote(repository)}"
    return f"{binderhub.strip('/')}/v2/{spec}/{branch}?urlpath={ui}/{path}"


def published(config: Mapping[str, Any], root: Path, page: str = "book/intro.md") -> Published:
    """The repository, branch, Binder and JupyterHub addresses ``config`` (the parsed
    ``_config.yml`` in folder ``root``) gives the launch buttons; Binder's opens ``page``.

    The settings are read by the extension that makes the launch buttons
    (``configure_launch_buttons``), so that the page and the buttons cannot disagree.
    """
    sphinx_config = config.get("sphinx", {}).get("config", {})
    fake = SimpleNamespace(
        html_context=dict(sphinx_config.get("html_context") or {}),
        html_theme_options=dict(sphinx_config.get("html_theme_options") or {}),
    )
    _book_notebooks(config, root).configure_launch_buttons(None, fake)
    options = fake.html_theme_options
    url = options.get("repository_url", "")
    if not url:
        return Published()
    branch = options["repository_branch"]
    launch = options.get("launch_buttons", {})
    ui = {"jupyterlab": "lab/tree", "classic": "tree"}[launch.get("notebook_interface", "classic")]
    binderhub = launch.get("binderhub_url", "")
    return Published(
        repository=url,
        branch=branch,
        binder=binder_url(binderhub, url, branch, ui, page) if binderhub else "",
        jupyterhub=launch.get("jupyterhub_url", "").strip().rstrip("/"),
    )


def published_from(config_path: Path | str) -> Published:
    """:func:`published` for the ``_config.yml`` at ``config_path`` (read with PyYAML, which
    the book's tools install)."""
    import yaml

    path = Path(config_path)
    return published(yaml.safe_load(path.read_text()), path.parent)


def how_to_get_the_files(where: Published) -> str:
    """A paragraph (Markdown) that tells a reader where to get the course's files."""
    if not where.repository:
        return (
            "This copy of the book was built without a published repository address "
            "(its configuration names none), so it offers no address to clone and no "
            "Binder link. The course's files are the folder the book was built from, the "
            "one that holds `_config.yml`, `Makefile`, `book/` and `exercises/`: ask "
            "whoever gave you the book for a copy of that folder and work in it."
        )
    text = (
        f"The course's files are published at <{where.repository}>: clone it with "
        f"`git clone {where.repository}` (branch `{where.branch}`) and work in that folder."
    )
    if where.binder:
        text += (
            f" To run the chapters without installing anything, [open the course on "
            f"Binder]({where.binder}); every chapter's launch menu (the rocket at the "
            "top of the page) does the same for that chapter."
        )
    if where.jupyterhub:
        text += f" The launch menu also opens chapters on the JupyterHub at <{where.jupyterhub}>."
    return text


__all__ = [
    "Published",
    "binder_url",
    "find_config",
    "first_layer_table",
    "how_to_get_the_files",
    "line_key",
    "pre_activation_grads",
    "published",
    "published_from",
    "relative_signal",
    "signal_figure",
    "signal_per_layer",
]
