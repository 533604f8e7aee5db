"""Leaderboards as text: Markdown, CSV, HTML and LaTeX, and writing them to a folder."""

from __future__ import annotations

import csv
import html
import io
import itertools
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmea_bench.leaderboard.table import Cell, Leaderboard

FORMATS = {"markdown": ".md", "csv": ".csv", "html": ".html", "latex": ".tex"}


def to_markdown(board: Leaderboard) -> str:
    """Markdown: a title, the notes and commands in a code block, one table per section, the footnote, the plots."""
    lines = [f"# Leaderboard: {_markdown_escape(board.title)}", "", "```bash", *board.heading("#"), "```", ""]
    lines += [board.caption, ""]
    for section in board.sections:
        lines += [f"## {section.title}", "", "| method | " + " | ".join(board.column_labels()) + " |"]
        lines.append("|---|" + "---:|" * len(board.columns))
        for method, cells in section.rows.items():
            texts = [_markup(cell, "**", "**") for cell in cells]
            lines.append(f"| {_markdown_escape(method)} | " + " | ".join(texts) + " |")
        lines.append("")
    if not board.sections:
        lines += ["No finished runs.", ""]
    if board.footnote():
        lines += [_markdown_escape(board.footnote()), ""]
    for caption, name in board.figures:
        lines += [f"![{caption}]({name})", ""]
    return "\n".join(lines)


def to_csv(board: Leaderboard) -> str:
    """CSV of numbers: ``#`` comment lines with the notes and commands, then per section and method the mean, std
    and seeds."""
    buffer = io.StringIO()
    buffer.writelines(f"{line}\n" for line in board.heading("#", comment_commands=True))
    writer = csv.writer(buffer, lineterminator="\n")
    statistics = ("mean", "std", "seeds")
    writer.writerow(["metric", "method", *(f"{label} {s}" for label in board.column_labels() for s in statistics)])
    for section in board.sections:
        for method, cells in section.rows.items():
            values = [(c.mean, c.std if c.seeds > 1 else "", c.seeds) if c else ("", "", 0) for c in cells]
            writer.writerow([section.title, method, *itertools.chain.from_iterable(values)])
    if board.footnote():
        buffer.write(f"# {board.footnote()}\n")
    return buffer.getvalue()


def to_html(board: Leaderboard) -> str:
    """A standalone HTML page: two-level column headers (dataset, seed ratio), the best cells in bold."""
    escape = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Leaderboard: {escape(board.title)}</title>",
        "<style>table{border-collapse:collapse;margin-bottom:1em}th,td{padding:2px 10px;text-align:right}"
        "th:first-child,td:first-child{text-align:left}thead{border-bottom:1px solid}</style></head><body>",
        f"<h1>Leaderboard: {escape(board.title)}</h1>",
        f"<pre><code>{escape(chr(10).join(board.heading('#')))}</code></pre>",
        f"<p>{escape(board.caption)}</p>",
    ]
    spans = "".join(f'<th colspan="{count}">{escape(dataset)}</th>' for dataset, count in board.dataset_spans())
    ratios = "".join(f"<th>r={ratio:g}</th>" for _, ratio in board.columns)
    for section in board.sections:
        parts.append(f"<h2>{escape(section.title)}</h2>")
        parts.append(f'<table><thead><tr><th rowspan="2">method</th>{spans}</tr><tr>{ratios}</tr></thead><tbody>')
        for method, cells in section.rows.items():
            texts = "".join(f"<td>{_markup(cell, '<strong>', '</strong>', escape=escape)}</td>" for cell in cells)
            parts.append(f"<tr><td>{escape(method)}</td>{texts}</tr>")
        parts.append("</tbody></table>")
    if not board.sections:
        parts.append("<p>No finished runs.</p>")
    if board.footnote():
        parts.append(f"<p>{escape(board.footnote())}</p>")
    for caption, name in board.figures:
        parts.append(
            f'<figure><img src="{escape(name)}" alt="{escape(caption)}"><figcaption>{escape(caption)}'
            "</figcaption></figure>"
        )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def to_latex(board: Leaderboard) -> str:
    """LaTeX tables (booktabs): two-level column headers, ``\\pm`` spreads, the best cells in ``\\textbf``."""
    lines = [*board.heading("%", comment_commands=True), "% requires \\usepackage{booktabs}"]
    lines.append(f"% {board.caption}")
    spans = " & ".join(f"\\multicolumn{{{count}}}{{c}}{{{_latex_escape(d)}}}" for d, count in board.dataset_spans())
    rules, start = [], 2
    for _, count in board.dataset_spans():
        rules.append(f"\\cmidrule(lr){{{start}-{start + count - 1}}}")
        start += count
    for section in board.sections:
        lines += [
            "\\begin{table}[ht]",
            "\\centering",
            f"\\caption{{{_latex_escape(board.title)}: {_latex_escape(section.title)}}}",
            f"\\begin{{tabular}}{{l{'r' * len(board.columns)}}}",
            "\\toprule",
            f" & {spans} \\\\",
            "".join(rules),
            "method & " + " & ".join(f"{ratio:g}" for _, ratio in board.columns) + " \\\\",
            "\\midrule",
        ]
        for method, cells in section.rows.items():
            texts = [_markup(cell, "\\textbf{", "}", plus_minus="$\\pm$") for cell in cells]
            lines.append(f"{_latex_escape(method)} & " + " & ".join(texts) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    if board.footnote():
        lines += [_latex_escape(board.footnote()), ""]
    return "\n".join(lines)


RENDERERS = {"markdown": to_markdown, "csv": to_csv, "html": to_html, "latex": to_latex}


def _markup(cell: Cell | None, open_mark: str, close_mark: str, plus_minus: str = "±", escape=str) -> str:
    if cell is None:
        return "–"
    text = escape(cell.text(plus_minus))
    return f"{open_mark}{text}{close_mark}" if cell.best else text


def _markdown_escape(text: str) -> str:
    return re.sub(r"([|*_`\\])", r"\\\1", text)


def _latex_escape(text: str) -> str:
    specials = {"\\": "\\textbackslash{}", "~": "\\textasciitilde{}", "^": "\\textasciicircum{}"}
    escaped = "".join(specials.get(char, "\\" + char if char in "&%$#_{}" else char) for char in text)
    return escaped.replace("--", "-{}-")


def write_leaderboard(board: Leaderboard, folder: Path, stem: str, formats: tuple[str, ...]) -> list[Path]:
    """Write ``<folder>/<stem>.<ext>`` in each format; returns the paths."""
    paths = []
    for name in formats:
        path = folder / f"{stem}{FORMATS[name]}"
        path.write_text(RENDERERS[name](board), encoding="utf-8")
        paths.append(path)
    return paths
