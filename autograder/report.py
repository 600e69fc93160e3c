"""`autograder report`: grades.csv, a per-question summary table and plots, from the gradebook.

Scores come from nbgrader's gradebook (so manual grades entered later count); each
submission's status, reason and feedback state come from the grading journal next to
it. The feedback state (column ``feedback``) is ``published``, ``withheld: WHY`` (no
page: it could not be made without showing hidden tests, or was not made) or
``none: WHY`` (nothing was graded, so there is no page).
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path
from typing import Any

# Why a submission with one of these statuses has no page.
NO_PAGE = {
    "invalid_notebook": "none: no notebook was graded",
    "ambiguous_submission": "none: no notebook was graded",
    "grader_error": "none: the grader failed on this submission",
}


def feedback_state(journal: dict[str, Any]) -> str:
    """A journal entry's feedback state (entries from before the state was recorded too)."""
    if journal.get("feedback_status"):
        return journal["feedback_status"]
    if not journal:
        return ""
    if journal.get("feedback"):
        return "published"
    if journal.get("status") in NO_PAGE:
        return NO_PAGE[journal["status"]]
    # Graded by a version that dropped unsafe pages without saying so.
    return "withheld: no page was made (graded before feedback was recorded; --force regrades)"


def collect_rows(out: Path, db_url: str) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """One row per student × assignment, and the question (grade cell) names per assignment."""
    from nbgrader.api import Gradebook, MissingEntry

    rows: list[dict[str, Any]] = []
    questions: dict[str, list[str]] = {}
    with warnings.catch_warnings(), Gradebook(db_url) as gb:
        warnings.simplefilter("ignore")  # nbgrader trips SQLAlchemy's autoflush warnings
        students = sorted(s.id for s in gb.students)
        for assignment in sorted(gb.assignments, key=lambda a: a.name):
            qs = [
                c.name
                for nb in sorted(assignment.notebooks, key=lambda n: n.name)
                for c in nb.grade_cells
            ]
            max_q = {
                c.name: float(c.max_score) for nb in assignment.notebooks for c in nb.grade_cells
            }
            questions[assignment.name] = qs
            for student in students:
                jpath = out / "journal" / assignment.name / f"{student}.json"
                journal = json.loads(jpath.read_text()) if jpath.exists() else {}
                row: dict[str, Any] = {"student": student, "assignment": assignment.name}
                try:
                    sub = gb.find_submission(assignment.name, student)
                except MissingEntry:
                    row.update(
                        score=0.0,
                        max_score=sum(max_q.values()),
                        status="no_submission",
                        reason="nothing was submitted",
                        feedback="none: nothing was submitted",
                    )
                    row.update({q: 0.0 for q in qs})
                    rows.append(row)
                    continue
                row.update(
                    score=round(float(sub.score), 4),
                    max_score=round(float(sub.max_score), 4),
                    status=journal.get("status", "graded"),
                    reason=journal.get("reason", "graded outside the autograder"),
                    feedback=feedback_state(journal),
                )
                for nb in sub.notebooks:
                    for g in nb.grades:
                        row[g.name] = round(float(g.score or 0.0), 4)
                rows.append(row)
    return rows, questions


def write_reports(out: Path, db_url: str) -> dict[str, Path]:
    """Write grades.csv, summary.md, summary.html and summary.png into ``out``; return their paths."""
    out = Path(out)
    rows, questions = collect_rows(out, db_url)
    all_q = [q for qs in questions.values() for q in qs]
    fields = ["student", "assignment", "score", "max_score", "status", "reason", "feedback"]
    fields += all_q
    paths = {
        "csv": out / "grades.csv",
        "md": out / "summary.md",
        "html": out / "summary.html",
        "png": out / "summary.png",
    }
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    stats = summarise(rows, questions, db_url)
    paths["md"].write_text(_markdown(stats))
    paths["html"].write_text(_html(stats))
    _plot(stats, paths["png"])
    return paths


def summarise(
    rows: list[dict[str, Any]], questions: dict[str, list[str]], db_url: str
) -> dict[str, Any]:
    """Per assignment: per-question mean and full-marks rate, totals and statuses."""
    from nbgrader.api import Gradebook

    max_q: dict[str, dict[str, float]] = {}
    with Gradebook(db_url) as gb:
        for a in gb.assignments:
            max_q[a.name] = {
                c.name: float(c.max_score) for nb in a.notebooks for c in nb.grade_cells
            }
    summary: dict[str, Any] = {}
    for assignment, qs in questions.items():
        arows = [
            r for r in rows if r["assignment"] == assignment and r["status"] != "no_submission"
        ]
        per_q = []
        for q in qs:
            vals = [float(r.get(q) or 0.0) for r in arows]
            top = max_q[assignment][q]
            per_q.append(
                {
                    "question": q,
                    "max": top,
                    "mean": sum(vals) / len(vals) if vals else 0.0,
                    "full_marks": (sum(v >= top - 1e-9 for v in vals) / len(vals)) if vals else 0.0,
                }
            )
        statuses: dict[str, int] = {}
        feedback: dict[str, int] = {}
        for r in arows:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
            kind = (r.get("feedback") or "unknown").split(":")[0].split(" (")[0]
            feedback[kind] = feedback.get(kind, 0) + 1
        withheld = [
            (r["student"], r["feedback"].split(":", 1)[1].strip())
            for r in arows
            if str(r.get("feedback", "")).startswith("withheld")
        ]
        scores = [float(r["score"]) for r in arows]
        top = sum(max_q[assignment].values())
        summary[assignment] = {
            "n": len(arows),
            "max": top,
            "mean": sum(scores) / len(scores) if scores else 0.0,
            "scores": scores,
            "questions": per_q,
            "statuses": dict(sorted(statuses.items())),
            "feedback": dict(sorted(feedback.items())),
            "withheld": withheld,
        }
    return summary


def _markdown(stats: dict[str, Any]) -> str:
    lines = ["# Grading summary", ""]
    for a, s in stats.items():
        lines += [
            f"## {a}",
            "",
            f"{s['n']} submissions, mean score {s['mean']:.2f} / {s['max']:g}.",
            "",
        ]
        lines += ["| question | points | mean | full marks |", "| --- | ---: | ---: | ---: |"]
        for q in s["questions"]:
            lines.append(
                f"| {q['question']} | {q['max']:g} | {q['mean']:.2f} | {100 * q['full_marks']:.0f}% |"
            )
        lines += ["", "| status | submissions |", "| --- | ---: |"]
        lines += [f"| {k} | {v} |" for k, v in s["statuses"].items()]
        lines += ["", "| feedback | submissions |", "| --- | ---: |"]
        lines += [f"| {k} | {v} |" for k, v in s["feedback"].items()]
        if s["withheld"]:
            lines += ["", "Feedback withheld (no page for these students):", ""]
            lines += [f"- {student}: {why}" for student, why in s["withheld"]]
        lines.append("")
    return "\n".join(lines)


def _html(stats: dict[str, Any]) -> str:
    import html

    parts = [
        "<!doctype html><meta charset='utf-8'><title>Grading summary</title>",
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
        "td.n{text-align:right}</style><h1>Grading summary</h1>",
    ]
    for a, s in stats.items():
        parts.append(
            f"<h2>{html.escape(a)}</h2><p>{s['n']} submissions, mean score "
            f"{s['mean']:.2f} / {s['max']:g}.</p><img src='summary.png' alt='score histogram' width='640'>"
        )
        parts.append(
            "<table><tr><th>question</th><th>points</th><th>mean</th><th>full marks</th></tr>"
        )
        for q in s["questions"]:
            parts.append(
                f"<tr><td>{html.escape(q['question'])}</td><td class=n>{q['max']:g}</td>"
                f"<td class=n>{q['mean']:.2f}</td><td class=n>{100 * q['full_marks']:.0f}%</td></tr>"
            )
        parts.append("</table><table><tr><th>status</th><th>submissions</th></tr>")
        parts += [
            f"<tr><td>{html.escape(k)}</td><td class=n>{v}</td></tr>"
            for k, v in s["statuses"].items()
        ]
        parts.append("</table><table><tr><th>feedback</th><th>submissions</th></tr>")
        parts += [
            f"<tr><td>{html.escape(k)}</td><td class=n>{v}</td></tr>"
            for k, v in s["feedback"].items()
        ]
        parts.append("</table>")
        if s["withheld"]:
            parts.append("<p>Feedback withheld (no page for these students):</p><ul>")
            parts += [
                f"<li>{html.escape(student)}: {html.escape(why)}</li>"
                for student, why in s["withheld"]
            ]
            parts.append("</ul>")
    return "\n".join(parts) + "\n"


def _plot(stats: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    n = max(1, len(stats))
    fig, axes = plt.subplots(n, 2, figsize=(11, 3.6 * n), squeeze=False)
    for row, (a, s) in enumerate(stats.items()):
        ax = axes[row][0]
        top = s["max"] or 1.0
        ax.hist(
            s["scores"],
            bins=min(20, max(5, int(top) + 1)),
            range=(0, top),
            color="#4c72b0",
            edgecolor="white",
        )
        ax.set(title=f"{a}: total score ({s['n']} submissions)", xlabel="score", ylabel="students")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax = axes[row][1]
        names = [q["question"] for q in s["questions"]]
        mean_frac = [q["mean"] / q["max"] if q["max"] else 0 for q in s["questions"]]
        full = [q["full_marks"] for q in s["questions"]]
        ys = range(len(names))
        ax.barh(
            [y + 0.2 for y in ys], mean_frac, height=0.4, label="mean / points", color="#4c72b0"
        )
        ax.barh([y - 0.2 for y in ys], full, height=0.4, label="full-marks rate", color="#dd8452")
        ax.set_yticks(list(ys), names, fontsize=8)
        ax.set(xlim=(0, 1), title=f"{a}: per question")
        ax.invert_yaxis()
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
