"""`autograder similarity`'s output: similarity.csv, skipped.csv and the side-by-side page.

What is compared, and how, is :mod:`autograder.similarity`'s; this module writes its
:class:`~autograder.similarity.Report` and prints the command's summary.
"""

from __future__ import annotations

import csv
import html
from pathlib import Path

from autograder.similarity import NOTE, THRESHOLD, TOP, K, Pair, Report, Student, similarity


def read_grades(path: Path | None, assignment: str) -> dict[str, str]:
    """Student -> "score / max" from grades.csv, for this assignment; empty when absent."""
    if path is None or not Path(path).is_file():
        return {}
    out: dict[str, str] = {}
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if row.get("assignment", assignment) == assignment and row.get("student"):
                    score, top = row.get("score", ""), row.get("max_score", "")
                    out[row["student"]] = f"{score} / {top}" if top else score
    except (OSError, csv.Error, UnicodeDecodeError):
        return {}
    return out


def shown(report: Report, top: int = TOP) -> list[Pair]:
    """The pairs the page shows: the ``top`` best and every one at or above the threshold."""
    return [p for i, p in enumerate(report.pairs) if i < top or p.score >= report.threshold]


def write(
    report: Report, out: Path, assignment: str, grades: dict[str, str], top: int = TOP
) -> dict[str, Path]:
    """Write similarity.csv, skipped.csv and similarity.html into ``out``; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out / "similarity.csv",
        "skipped": out / "skipped.csv",
        "html": out / "similarity.html",
    }
    with open(paths["csv"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "rank",
                "student_a",
                "student_b",
                "score",
                "flagged",
                "shared_fingerprints",
                "shared_weight",
                "cells",
                "score_a",
                "score_b",
            ]
        )
        for i, p in enumerate(report.pairs, 1):
            w.writerow(
                [
                    i,
                    p.a,
                    p.b,
                    f"{p.score:.3f}",
                    "yes" if p.score >= report.threshold else "",
                    p.shared,
                    f"{p.weight:.2f}",
                    "; ".join(p.cells),
                    grades.get(p.a, ""),
                    grades.get(p.b, ""),
                ]
            )
    with open(paths["skipped"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "reason"])
        w.writerows(report.skipped)
    paths["html"].write_text(page(report, assignment, grades, top))
    return paths


def _marks(s: Student, hashes: set[str]) -> dict[str, list[tuple[int, int]]]:
    """Cell -> merged (start, end) character ranges of its tokens in shared k-grams."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for h in hashes:
        for cell, i in s.prints.get(h, []):
            toks = s.tokens[cell][i : i + K]
            src = s.cells[cell]
            starts = [0]
            for line in src.splitlines(keepends=True):
                starts.append(starts[-1] + len(line))
            for t in toks:
                a = starts[min(t.start[0] - 1, len(starts) - 1)] + t.start[1]
                b = starts[min(t.end[0] - 1, len(starts) - 1)] + t.end[1]
                spans.setdefault(cell, []).append((a, b))
    for cell, rs in spans.items():
        rs.sort()
        merged: list[tuple[int, int]] = []
        for a, b in rs:
            # tokens of one shared run are joined across the spaces between them
            gap = s.cells[cell][merged[-1][1] : a] if merged else "\n"
            if merged and (a <= merged[-1][1] or (not gap.strip() and "\n" not in gap)):
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        spans[cell] = merged
    return spans


def _code(src: str, ranges: list[tuple[int, int]]) -> str:
    parts, pos = [], 0
    for a, b in ranges:
        parts.append(html.escape(src[pos:a]))
        parts.append(f"<mark>{html.escape(src[a:b])}</mark>")
        pos = b
    parts.append(html.escape(src[pos:]))
    return "".join(parts)


STYLE = """
body{font-family:system-ui,sans-serif;max-width:1400px;margin:1em auto;padding:0 1em;color:#111}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #999;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eee}
td.n{text-align:right}
table.side{width:100%;table-layout:fixed}
pre{margin:0;white-space:pre-wrap;word-break:break-word;font-size:13px;line-height:1.4}
mark{background:#ffe066;color:#000;font-weight:bold;text-decoration:underline;
text-decoration-thickness:2px}
.note{border-left:4px solid #555;padding:.5em 1em;background:#f6f6f6}
.legend mark{padding:0 .3em}
"""


def page(report: Report, assignment: str, grades: dict[str, str], top: int = TOP) -> str:
    """The HTML page: the note, a table of the pairs shown, each pair side by side."""
    esc = html.escape
    by_id = {s.student: s for s in report.students}
    pairs = shown(report, top)
    flagged = sum(p.score >= report.threshold for p in report.pairs)
    h = [
        "<!doctype html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>Similarity: {esc(assignment)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Similarity of answer code: {esc(assignment)}</h1>",
        f"<p class='note'><strong>{esc(NOTE)}</strong></p>",
        f"<p>{len(report.students)} students compared, {len(report.pairs)} pairs share code; "
        f"{flagged} at or above the threshold {report.threshold:g}. Shown: the "
        f"{min(top, len(report.pairs))} highest and every pair at or above the threshold. "
        f"Score: the rarity-weighted share of the smaller answer found in the other "
        f"(0 to 1); only answer cells count, without the starter code.</p>",
        "<p class='legend'>Legend: <mark>bold, underlined and highlighted</mark> code also "
        f"appears, after renaming and reformatting, in the other student's answer (a shared "
        f"run of at least {K} tokens); plain code does not.</p>",
        "<h2>Pairs</h2>",
    ]
    if pairs:
        h.append(
            "<table><caption>Pairs shown, highest score first</caption><thead><tr>"
            + "".join(
                f"<th scope='col'>{c}</th>"
                for c in (
                    "rank",
                    "student A",
                    "student B",
                    "score",
                    "flagged",
                    "shared fingerprints",
                    "cells",
                    "grade A",
                    "grade B",
                )
            )
            + "</tr></thead><tbody>"
        )
        for i, p in enumerate(pairs, 1):
            h.append(
                f"<tr><td class='n'>{i}</td><td>{esc(p.a)}</td><td>{esc(p.b)}</td>"
                f"<td class='n'><a href='#pair-{i}'>{p.score:.2f}</a></td>"
                f"<td>{'yes' if p.score >= report.threshold else 'no'}</td>"
                f"<td class='n'>{p.shared}</td><td>{esc(', '.join(p.cells))}</td>"
                f"<td>{esc(grades.get(p.a, '–'))}</td><td>{esc(grades.get(p.b, '–'))}</td></tr>"
            )
        h.append("</tbody></table>")
    else:
        h.append("<p>No two students share code.</p>")
    for i, p in enumerate(pairs, 1):
        a, b = by_id[p.a], by_id[p.b]
        common = set(a.prints) & set(b.prints)
        ma, mb = _marks(a, common), _marks(b, common)
        h.append(
            f"<h2 id='pair-{i}'>{i}. {esc(p.a)} and {esc(p.b)}: score {p.score:.2f}"
            f"{' (flagged)' if p.score >= report.threshold else ''}</h2>"
        )
        h.append(
            f"<p>{p.shared} shared fingerprints in {esc(', '.join(p.cells))}. "
            f"Grade of {esc(p.a)}: {esc(grades.get(p.a, 'not known'))}; "
            f"grade of {esc(p.b)}: {esc(grades.get(p.b, 'not known'))}.</p>"
        )
        h.append(
            f"<table class='side'><caption>{esc(p.a)} (left) and {esc(p.b)} (right), "
            "answer cell by answer cell</caption><thead><tr><th scope='col' style='width:10em'>"
            f"cell</th><th scope='col'>{esc(p.a)}</th><th scope='col'>{esc(p.b)}</th></tr>"
            "</thead><tbody>"
        )
        for cell in sorted(set(a.cells) | set(b.cells)):
            h.append(
                f"<tr><th scope='row'>{esc(cell)}</th>"
                f"<td><pre><code>{_code(a.cells.get(cell, ''), ma.get(cell, []))}</code></pre></td>"
                f"<td><pre><code>{_code(b.cells.get(cell, ''), mb.get(cell, []))}</code></pre></td>"
                "</tr>"
            )
        h.append("</tbody></table>")
    h.append("<h2>Not compared</h2>")
    if report.skipped:
        h.append(
            "<table><thead><tr><th scope='col'>student</th><th scope='col'>reason</th></tr>"
            "</thead><tbody>"
        )
        h += [f"<tr><td>{esc(s)}</td><td>{esc(why)}</td></tr>" for s, why in report.skipped]
        h.append("</tbody></table>")
    else:
        h.append("<p>Every submission was compared.</p>")
    h.append("</body></html>")
    return "\n".join(h) + "\n"


def main(
    course: Path,
    assignment: str,
    submissions: Path,
    out: Path | None = None,
    grades: Path | None = None,
    threshold: float = THRESHOLD,
    top: int = TOP,
) -> int:
    """The command: compare, write, print a summary. Returns the exit status."""
    import sys

    course = Path(course).resolve()
    out = Path(out) if out else course / "grading" / "similarity"
    grades_path = Path(grades) if grades else course / "grading" / "grades.csv"
    try:
        report = similarity(course, assignment, submissions, threshold=threshold)
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"autograder: {exc}", file=sys.stderr)
        return 2
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    paths = write(report, out, assignment, read_grades(grades_path, assignment), top)
    flagged = [p for p in report.pairs if p.score >= threshold]
    print(
        f"compared {len(report.students)} students, skipped {len(report.skipped)}; "
        f"{len(report.pairs)} pairs share code, {len(flagged)} at or above {threshold:g}"
    )
    for student, why in report.skipped:
        print(f"skipped {student}: {why}")
    for p in flagged[:top]:
        print(f"  {p.score:.2f}  {p.a}  {p.b}  ({p.shared} shared, {', '.join(p.cells)})")
    print(f"pairs:   {paths['csv']}")
    print(f"skipped: {paths['skipped']}")
    print(f"page:    {paths['html']}")
    print("A high score is evidence for a person to look at, not a verdict.")
    return 0
