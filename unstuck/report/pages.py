"""index.html and summary.md: the same sections, as one self-contained page and as Markdown.

The HTML embeds every figure as a base64 PNG and uses no script, font or stylesheet from
anywhere else, so it opens offline, from a CI artifact or an e-mail attachment. The Markdown
links the PNGs under figures/ and is what a pull-request comment or a terminal shows.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}h3{margin-top:1.5em}
table{border-collapse:collapse;font-size:.82em;margin:.6em 0}td,th{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.pass{background:#dff3da}td.fail{background:#f9d6d6}td.error{background:#ffe9bf}
img{max-width:100%;border:1px solid #eee}code,pre{background:#f6f6f6;font-size:.85em}pre{padding:.5em;overflow-x:auto}
.verdict{font-size:1.2em;padding:.4em .8em;display:inline-block;border-radius:4px}
.v0{background:#dff3da}.v1{background:#f9d6d6}.v3{background:#ffe9bf}details{margin:.5em 0}
"""


@dataclass
class Figure:
    name: str  # file stem under figures/
    title: str
    png: bytes
    caption: str = ""


@dataclass
class Section:
    title: str
    text: str = ""  # plain text (escaped)
    figures: list[Figure] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)  # (caption, table)
    raw_html: str = ""  # already-escaped HTML (the verdict matrix)
    code: list[str] = field(default_factory=list)  # command lines
    collapsed: bool = False  # tables inside <details>


def _fmt(v: object) -> str:
    if v is pd.NA:  # a missing id (nullable Int64), shown as a missing float is
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        if math.isinf(v):
            return "never" if v > 0 else "-inf"
        return f"{v:g}"
    return str(v)


def table_html(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for col, v in zip(df.columns, row, strict=True):
            cls = f' class="{v}"' if col == "status" and v in ("pass", "fail", "error") else ""
            cells.append(f"<td{cls}>{html.escape(_fmt(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def matrix_html(wide: pd.DataFrame) -> str:
    """The verdict matrix with pass/fail colours (cells start with pass, FAIL or NO EFFECT)."""
    head = "<th>scheduler</th>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in wide.columns)
    body = []
    for sched, row in wide.iterrows():
        cells = [f"<th>{html.escape(str(sched))}</th>"]
        for v in row:
            text = "" if pd.isna(v) else str(v)
            cls = "pass" if text.startswith("pass") else "error" if text.startswith("NO EFFECT") else "fail" if text else ""
            cells.append(f'<td class="{cls}">{html.escape(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def to_html(title: str, verdict: str, code: int, lines: list[str], sections: list[Section],
            notes: Sequence[str] = ()) -> str:
    out = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>",
           f"<style>{_CSS}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
           f'<p><span class="verdict v{code}">gate: {html.escape(verdict)} (exit {code})</span></p>',
           *(f"<p><b>note:</b> {html.escape(n)}</p>" for n in notes),
           "<pre>" + html.escape("\n".join(lines)) + "</pre>"]
    out.append("<ul>" + "".join(f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>'
                                for i, s in enumerate(sections)) + "</ul>")
    for i, s in enumerate(sections):
        out.append(f'<h2 id="s{i}">{html.escape(s.title)}</h2>')
        if s.text:
            out.append(f"<p>{html.escape(s.text)}</p>")
        out.append(s.raw_html)
        for f in s.figures:
            data = base64.b64encode(f.png).decode()
            out.append(f'<h3>{html.escape(f.title)}</h3><img alt="{html.escape(f.title)}" '
                       f'src="data:image/png;base64,{data}">')
            if f.caption:
                out.append(f"<p><small>{html.escape(f.caption)}</small></p>")
        for caption, df in s.tables:
            block = f"<p><b>{html.escape(caption)}</b></p>{table_html(df)}"
            out.append(f"<details><summary>{html.escape(caption)}</summary>{table_html(df)}</details>"
                       if s.collapsed else block)
        if s.code:
            out.append("<pre>" + html.escape("\n".join(s.code)) + "</pre>")
    out.append("</body></html>")
    return "\n".join(out)


def table_md(df: pd.DataFrame, index: bool = False) -> str:
    d = df.reset_index() if index else df
    cols = [str(c) for c in d.columns]

    def esc(v: object) -> str:
        return _fmt(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in d.itertuples(index=False)]
    return "\n".join(lines)


def to_markdown(title: str, verdict: str, code: int, lines: list[str], sections: list[Section],
                md_tables: dict[str, pd.DataFrame], notes: Sequence[str] = ()) -> str:
    """`md_tables` replaces a section's tables in the Markdown (shorter views of long tables);
    `notes` say what the verdict was judged without."""
    out = [f"# {title}", "", f"**gate: {verdict} (exit {code})**", ""]
    out += [line for n in notes for line in (f"**note:** {n}", "")]
    out += ["```", *lines, "```", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        if s.text:
            out += [s.text, ""]
        for f in s.figures:
            out += [f"![{f.title}](figures/{f.name}.png)", ""]
        if s.title in md_tables:
            out += [table_md(md_tables[s.title]), ""]
        else:
            for caption, df in s.tables:
                if not s.collapsed:
                    out += [f"**{caption}**", "", table_md(df), ""]
        if s.code:
            out += ["```sh", *s.code, "```", ""]
    return "\n".join(out)
