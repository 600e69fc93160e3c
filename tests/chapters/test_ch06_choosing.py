"""Chapter 6: digits split, swap-experiment measures, the activation swapper, the guide's links."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT
from torch import nn

from actlab.chapters.ch06_choosing import (
    SwapRun,
    accuracy_probe,
    activation_names,
    compare_rates,
    epoch_seconds,
    epochs_to_target,
    loss_climb,
    run_swap,
    seconds_per_epoch,
    summary_table,
    swap_activations,
    tie_phrase,
)
from actlab.engine.data import digits_split
from actlab.engine.stats import tied_with_best
from actlab.ensemble import EnsembleResult, Member, members_grid

BOOK = ROOT / "book"


# --------------------------------------------------------------------------- data


# --------------------------------------------------------------------------- measures


def test_epochs_to_target_first_crossing_and_never() -> None:
    epochs = np.array([0, 2, 4, 6])
    acc = np.array([[0.1, 0.1, 0.1], [0.5, 0.95, 0.2], [0.96, 0.9, 0.3], [0.97, 0.99, 0.4]])
    got = epochs_to_target(acc, epochs, 0.95)
    np.testing.assert_array_equal(got[:2], [4.0, 2.0])
    assert np.isnan(got[2])


def test_loss_climb_hand_cases() -> None:
    assert loss_climb(np.array([4.0, 2.0, 1.0, 0.5])) == 0.0
    # one bounce 1 -> 2 and one 0.5 -> 1.5
    got = loss_climb(np.array([2.0, 1.0, 2.0, 0.5, 1.5, 0.1]))
    assert got == pytest.approx(np.log(2) + np.log(3))
    cols = loss_climb(np.array([[1.0, 1.0], [0.5, 2.0], [np.nan, 1.0]]))
    assert cols.shape == (2,) and np.isinf(cols[0]) and cols[1] == pytest.approx(np.log(2))
    # scale-free: multiplying a curve by a constant does not change it
    curve = np.array([1.0, 0.3, 0.6, 0.2])
    assert loss_climb(curve) == pytest.approx(loss_climb(curve * 1e-3))


def fake_run(final: dict[tuple[str, float], list[float]], norm: str = "none") -> SwapRun:
    """A run whose members (one per seed) end at the given accuracies: ``(activation, lr) -> runs``."""
    members, last = [], []
    for (act, lr), accs in final.items():
        members += [Member(seed, act, lr=lr, norm=norm) for seed in range(len(accs))]
        last += accs
    E = len(members)
    accuracy = np.vstack([np.full(E, 0.1), np.array(last)])
    result = EnsembleResult(
        members, np.ones((2, E)), np.array([0]), np.zeros((1, E, 2)), None, 0.0, "cpu"
    )
    return SwapRun(result=result, depth=2, epochs=np.array([0, 2]), accuracy=accuracy)


SPREAD = [-0.002, -0.001, 0.0, 0.001, 0.002]  # sample std 0.00158 over 5 seeds


def around(mean: float) -> list[float]:
    return [mean + d for d in SPREAD]


@pytest.fixture
def two_rates() -> SwapRun:
    # at 0.001: relu 0.96, tanh 0.959 (tie), sigmoid 0.80 (apart)
    # at 0.01: sigmoid 0.97 best, tanh 0.969 (tie), relu 0.95 (apart)
    return fake_run(
        {("relu", 1e-3): around(0.96), ("relu", 1e-2): around(0.95),
         ("tanh", 1e-3): around(0.959), ("tanh", 1e-2): around(0.969),
         ("sigmoid", 1e-3): around(0.80), ("sigmoid", 1e-2): around(0.97)}
    )  # fmt: skip


def test_compare_rates_applies_the_rule_at_each_rate_and_at_the_best_rates(two_rates) -> None:
    c = compare_rates(two_rates, ["sigmoid", "tanh", "relu"], [1e-2, 1e-3], norm="none")
    assert c.lrs == [1e-3, 1e-2]
    assert c.mean.loc["relu", 1e-3] == pytest.approx(0.96)
    assert c.std.loc["relu", 1e-3] == pytest.approx(np.std(SPREAD, ddof=1))
    assert list(c.tied[1e-3]) == [False, True, True]
    assert list(c.tied[1e-2]) == [True, True, False]
    assert c.always_tied() == ["tanh"]
    assert c.rates_tied("sigmoid") == [1e-2] and c.rates_tied("relu") == [1e-3]
    assert dict(c.best_lr) == {"sigmoid": 1e-2, "tanh": 1e-2, "relu": 1e-3}
    # at their best rates: sigmoid 0.97, tanh 0.969, relu 0.96
    assert list(c.tied_tuned) == [True, True, False]
    for lr in c.lrs:  # the same list as the rule itself
        runs = {a: two_rates.final(activation=a, lr=lr) for a in ["sigmoid", "tanh", "relu"]}
        assert set(c.tied.index[c.tied[lr]]) == set(tied_with_best(runs))


def test_rate_comparison_in_words_and_cells(two_rates) -> None:
    c = compare_rates(two_rates, ["sigmoid", "tanh", "relu"], [1e-3, 1e-2], norm="none")
    assert c.ties_sentence() == (
        "tanh ties with the best at every rate; sigmoid only at 0.01; ReLU only at 0.001"
    )
    cells = c.cells()
    assert list(cells.columns) == ["0.001", "0.01", "own best rate"]
    assert cells.loc["relu", "0.001"] == "0.960 ± 0.002 ●"
    assert cells.loc["relu", "0.01"] == "0.950 ± 0.002"
    assert cells.loc["relu", "own best rate"] == "0.960 ± 0.002 (0.001)"
    assert cells.loc["sigmoid", "own best rate"] == "0.970 ± 0.002 ● (0.01)"


def test_ties_sentence_when_no_activation_ties_everywhere() -> None:
    run = fake_run(
        {("relu", 1e-3): around(0.96), ("relu", 1e-2): around(0.90), ("relu", 3e-2): around(0.96),
         ("gelu", 1e-3): around(0.90), ("gelu", 1e-2): around(0.96), ("gelu", 3e-2): around(0.96)}
    )  # fmt: skip
    c = compare_rates(run, ["relu", "gelu"], [1e-3, 1e-2, 3e-2], norm="none")
    assert c.always_tied() == []
    assert c.ties_sentence() == (
        "no activation ties with the best at every rate; ReLU at every rate but 0.01; "
        "GELU at every rate but 0.001"
    )


def test_compare_rates_refuses_a_missing_combination(two_rates) -> None:
    with pytest.raises(ValueError, match="no members"):
        compare_rates(two_rates, ["relu"], [1e-3, 3e-3], norm="none")
    with pytest.raises(ValueError, match="no members"):
        compare_rates(two_rates, ["relu"], [1e-3], norm="layer")


def test_tie_phrase() -> None:
    assert tie_phrase(["ReLU"], "fastest") == "ReLU is fastest"
    assert tie_phrase(["ReLU", "ELU"], "fastest") == "ReLU and ELU tie for fastest"
    assert tie_phrase(["a", "b", "c"], "best") == "a, b and c tie for best"
    with pytest.raises(ValueError):
        tie_phrase([], "best")


# --------------------------------------------------------------------------- experiment


@pytest.fixture(scope="module")
def tiny_run():
    split = digits_split()
    members = members_grid(range(2), ["relu", "sigmoid"], norms=["none", "layer"])
    run = run_swap(
        members, split, depth=2, width=8, num_epochs=4, batch_size=256, probe_every=2, device="cpu"
    )
    return split, run


def test_run_swap_probes_match_the_trained_members(tiny_run) -> None:
    split, run = tiny_run
    E = len(run.members)
    assert list(run.epochs) == [0, 2, 4]
    assert run.accuracy.shape == (3, E)
    assert run.result.losses.shape == (4, E)
    X = torch.as_tensor(split.X_val)
    for i in range(E):
        net = run.result.model.member_module(i)
        with torch.no_grad():
            acc = (net(X).argmax(1).numpy() == split.y_val).mean()
        assert run.accuracy[-1, i] == pytest.approx(acc, abs=1e-12)
    table = summary_table(run, target=0.5, activations=["relu", "sigmoid"], norm="layer")
    idx = run.where(activation="relu", norm="layer")
    assert table.loc["relu", "accuracy"] == pytest.approx(run.accuracy[-1, idx].mean())
    assert table["tied"].any()
    assert table.loc["relu", "std"] == pytest.approx(run.accuracy[-1, idx].std(ddof=1))
    finals = {a: run.final(activation=a, norm="layer") for a in ["relu", "sigmoid"]}
    assert set(table.index[table["tied"]]) == set(tied_with_best(finals))


def test_accuracy_probe_counts_correct_argmax() -> None:
    class Fixed(nn.Module):
        def forward(self, x):  # (N, 2) -> (E=2, N, 3): member 0 says class 0, member 1 class 2
            n = x.shape[0]
            out = torch.zeros(2, n, 3)
            out[0, :, 0] = 1
            out[1, :, 2] = 1
            return out

    y = np.array([0, 0, 2, 1])
    probe = accuracy_probe(np.zeros((4, 2), dtype=np.float32), y)
    np.testing.assert_allclose(probe(Fixed(), torch.zeros(1, 2)), [0.5, 0.25])


def test_seconds_per_epoch_is_positive() -> None:
    s = seconds_per_epoch(
        Member(0, "gelu"), digits_split(), depth=2, width=8, batch_size=512, num_epochs=1,
        repeats=1, device="cpu",
    )  # fmt: skip
    assert isinstance(s, float) and s > 0


def test_epoch_seconds_times_every_member_every_repeat(monkeypatch) -> None:
    import actlab.chapters.ch06_choosing as ch06

    calls = []
    monkeypatch.setattr(
        ch06, "train_single", lambda member, *a, **k: calls.append(member.activation)
    )
    members = [Member(0, "relu"), Member(0, "gelu")]
    times = epoch_seconds(
        members, digits_split(), depth=1, width=4, batch_size=None, repeats=3, device="cpu"
    )
    assert times.shape == (2, 3) and (times >= 0).all()
    # an untimed first round, then the members take turns
    assert calls == ["relu", "gelu"] * 4


# --------------------------------------------------------------------------- swapper


class Block(nn.Module):
    """A custom container: activations in a ModuleList and a ModuleDict."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4), nn.ReLU()])
        self.heads = nn.ModuleDict({"gate": nn.Sigmoid(), "proj": nn.Linear(4, 3)})

    def forward(self, x):
        for m in self.layers:
            x = m(x)
        return self.heads["proj"](self.heads["gate"](x))


def nested_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(3, 4),
        nn.Sequential(nn.ELU(), nn.Sequential(nn.Linear(4, 4), nn.LeakyReLU(0.2))),
        Block(),
        nn.Softmax(dim=-1),
    )


def hand_forward(model: nn.Module, phi, x: torch.Tensor) -> torch.Tensor:
    """The nested model's forward written out with ``phi`` at every activation."""
    lin0, inner, block = model[0], model[1], model[2]
    h = phi(lin0(x))
    h = phi(inner[1][0](h))
    h = phi(block.layers[0](h))
    h = phi(block.layers[2](h))
    h = block.heads["proj"](phi(h))
    return torch.softmax(h, dim=-1)


@pytest.mark.parametrize(
    ("name", "cls", "phi"),
    [("gelu", nn.GELU, torch.nn.functional.gelu), ("silu", nn.SiLU, torch.nn.functional.silu),
     ("sigmoid", nn.Sigmoid, torch.sigmoid)],
)  # fmt: skip
def test_swap_replaces_every_nested_activation(name, cls, phi) -> None:
    model = nested_model()
    before = activation_names(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    swapped = swap_activations(model, name)
    assert activation_names(swapped) == [cls.__name__] * 5
    assert activation_names(model) == before  # the original is untouched
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    for k, v in swapped.state_dict().items():  # same weights
        assert torch.equal(v, state[k])
    assert isinstance(swapped[3], nn.Softmax)  # the output softmax stays
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(swapped(x), hand_forward(model, phi, x))


def test_swap_gives_fresh_modules_and_handles_a_bare_activation() -> None:
    shared = nn.ReLU()
    model = nn.Sequential(nn.Linear(2, 2), shared, nn.Linear(2, 2), shared)
    swapped = swap_activations(model, "tanh")
    assert isinstance(swapped[1], nn.Tanh) and isinstance(swapped[3], nn.Tanh)
    assert swapped[1] is not swapped[3]
    assert isinstance(swap_activations(nn.ReLU(), "elu"), nn.ELU)
    with pytest.raises(ValueError, match="unknown activation"):
        swap_activations(model, "no_such_thing")


def test_swap_matches_an_mlp_built_with_the_new_activation() -> None:
    from actlab.engine.models import mlp

    torch.manual_seed(3)
    net = mlp(5, 6, 3, 2, activation="relu", norm="layer")
    torch.manual_seed(3)
    ref = mlp(5, 6, 3, 2, activation="elu", norm="layer")
    x = torch.randn(4, 5)
    torch.testing.assert_close(swap_activations(net, "elu")(x), ref(x))


# --------------------------------------------------------------------------- decision guide

REF = re.compile(r"\{ref\}`(?:[^`<]*<)?([^`>]+)>?`")


def book_labels(folder: Path = BOOK) -> set[str]:
    """Every MyST label in the book's pages: lines ``(name)=`` and ``:name:`` options."""
    labels: set[str] = set()
    for page in folder.glob("*.md"):
        for line in page.read_text(encoding="utf-8").splitlines():
            s = line.strip()
            m = re.fullmatch(r"\(([^()\s]+)\)=", s)
            if m:
                labels.add(m.group(1))
            m = re.fullmatch(r":name:\s*(\S+)", s)
            if m:
                labels.add(m.group(1))
    return labels


def guide_rows(text: str, label: str = "ch06-guide") -> list[str]:
    """Body rows of the first Markdown table after the line ``(label)=``."""
    lines = text.splitlines()
    start = lines.index(f"({label})=")
    rows: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    body = [r for r in rows[1:] if not re.fullmatch(r"\|[\s:|-]+\|", r.strip())]
    if not body:
        raise ValueError(f"no table rows after ({label})=")
    return body


def guide_problems(text: str, labels: set[str]) -> list[str]:
    """One message per guide row with no {ref} link or with a link to a missing label."""
    problems = []
    for row in guide_rows(text):
        refs = REF.findall(row)
        if not refs:
            problems.append(f"no link in row: {row[:80]}")
        problems += [f"dangling link {r!r} in row: {row[:60]}" for r in refs if r not in labels]
    return problems


def test_guide_checker_catches_missing_and_dangling_links() -> None:
    page = (
        "(ch06-guide)=\n## Guide\n\n| task | pick | evidence |\n| --- | --- | --- |\n"
        "| a | relu | {ref}`good-label` |\n| b | gelu | {ref}`see <good-label>` and {ref}`gone` |\n"
        "| c | tanh | nothing |\n\ntext\n"
    )
    problems = guide_problems(page, {"good-label"})
    assert len(problems) == 2
    assert "'gone'" in problems[0] and problems[1].startswith("no link")
    assert guide_problems(page.replace("{ref}`gone`", "").replace("nothing", "{ref}`good-label`"),
                          {"good-label"}) == []  # fmt: skip


def test_labels_are_read_from_both_forms(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("(sec-one)=\n# One\n```{figure} x.png\n:name: fig-two\n```\n")
    assert book_labels(tmp_path) == {"sec-one", "fig-two"}


def test_every_guide_row_links_to_existing_evidence() -> None:
    page = (BOOK / "ch06_choosing.md").read_text(encoding="utf-8")
    rows = guide_rows(page)
    assert len(rows) >= 5
    problems = guide_problems(page, book_labels())
    assert not problems, "\n".join(problems)


def test_summary_table_selects_by_extra_fields() -> None:
    split = digits_split()
    members = members_grid(range(2), ["relu"], lrs=[1e-3, 1e-1])
    run = run_swap(members, split, depth=1, width=8, num_epochs=2, batch_size=512, device="cpu")
    for lr in (1e-3, 1e-1):
        table = summary_table(run, target=0.5, activations=["relu"], norm="none", lr=lr)
        idx = run.where(activation="relu", lr=lr)
        assert len(idx) == 2
        assert table.loc["relu", "accuracy"] == pytest.approx(run.accuracy[-1, idx].mean())
        assert table.loc["relu", "min"] == pytest.approx(run.accuracy[-1, idx].min())


def test_validation_curve_explorer_frames_change_with_the_controls() -> None:
    from conftest import controls

    from actlab.chapters.ch06_choosing import SwapRun, validation_curve_explorer
    from actlab.ensemble import EnsembleResult, members_grid

    members = members_grid(range(3), ["relu", "sigmoid"], lrs=[1e-3, 1e-2])
    epochs = np.arange(0, 7, 2)
    top = np.array([0.9 if m.activation == "relu" else 0.3 + 10 * m.lr for m in members])
    accuracy = 0.1 + (top - 0.1) * (epochs[:, None] / 6) ** 0.5
    accuracy[-1] += 0.01 * np.array([m.seed for m in members])
    result = EnsembleResult(
        members, np.zeros((6, 12)), np.array([0]), np.zeros((1, 12, 3)), None, 0.0, "cpu"
    )
    run = SwapRun(result=result, depth=2, epochs=epochs, accuracy=accuracy)
    explorer = validation_curve_explorer(run, ["relu", "sigmoid"], [1e-3, 1e-2])
    assert explorer.title.endswith("(digits, 2 hidden layers)")
    assert explorer.n_frames == 4
    assert len(set(explorer.render_all())) == 4
    live = explorer.live()
    activation, lr = controls(live)
    text = live.children[-1]
    assert text.value == explorer.frame_text_html((0, 0))
    activation.index = 1
    assert text.value == explorer.frame_text_html((1, 0))
    lr.index = 1
    assert text.value == explorer.frame_text_html((1, 1))
    assert explorer.frame_alt((1, 1)).startswith(
        "sigmoid at learning rate 0.01: validation accuracy after 6 epochs 0.410 ± 0.010 over 3 seeds, "
        "against 0.910 for ReLU at 0.001"
    )
