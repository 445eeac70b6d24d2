"""Printing: rich tables for people, plain JSON (``--json``) for scripts, errors on stderr.

User data is always wrapped in :class:`rich.text.Text` so brackets in a template or a detail are printed
as they are instead of being read as rich markup.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text


def console(*, stderr: bool = False, width: int | None = None) -> Console:
    """A console on the current stdout/stderr; made per call so test runners' captured streams are used."""
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (no colour, so the output always parses)."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def echo(message: str = "") -> None:
    """A plain line on stdout."""
    typer.echo(message)


def error(message: str) -> None:
    """``Error: <message>`` on stderr."""
    typer.echo(f"Error: {message}", err=True)


def warn(message: str) -> None:
    """``Warning: <message>`` on stderr."""
    typer.echo(f"Warning: {message}", err=True)


def cell(value: Any) -> Text:
    """A table cell: ``-`` for empty values, lists comma-joined, everything else as literal text."""
    if value is None or value == "" or value == [] or value == {}:
        return Text("-", style="dim")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, list | tuple):
        return Text(", ".join(str(v) for v in value))
    if isinstance(value, dict):
        return Text(json.dumps(value, ensure_ascii=False, default=str))
    return Text(str(value))


WIDE = 400  # columns a --wide table may take: every cell on one line, whatever the terminal


def table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None, wide: bool = False
) -> None:
    """Print a table; ``rows`` hold raw values, turned into cells with :func:`cell`. It fits the terminal
    (cells folded), or with ``wide`` takes the room its cells need (for ``--wide`` and for piping)."""
    out = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        # Fold rather than crop or ellipsize: an identifier split over two lines is still whole.
        out.add_column(column, overflow="fold")
    for row in rows:
        out.add_row(*(cell(v) for v in row))
    console(width=WIDE if wide else None).print(out)


def listing(
    data: Any,
    as_json: bool,
    columns: Sequence[str],
    row: Callable[[Any], Sequence[Any]],
    *,
    key: str | None = "items",
    more: str | None = None,
) -> None:
    """A listing: ``data`` as JSON with ``--json``, otherwise a table of ``row(item)`` per item.

    The items are ``data[key]`` (``data`` itself when ``key`` is None). ``more`` is printed under the table
    when ``data`` has a ``nextCursor`` (``{cursor}`` in it is replaced by the cursor).
    """
    if as_json:
        print_json(data)
        return
    table(columns, [row(item) for item in (data if key is None else data[key])])
    cursor = data.get("nextCursor") if isinstance(data, dict) else None
    if more and cursor:
        echo(more.format(cursor=cursor))


def fields(pairs: Sequence[tuple[str, Any]], *, title: str | None = None) -> None:
    """A two-column key/value table (one object's fields)."""
    out = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2, 0, 0))
    out.add_column(style="bold")
    out.add_column(overflow="fold")
    for key, value in pairs:
        out.add_row(Text(key), cell(value))
    console().print(out)


def text_block(text: str, *, title: str | None = None) -> None:
    """Literal text (a template, rendered output) in a panel."""
    # The final newline of a template would show as an empty last line inside the frame.
    shown = text[:-1] if text.endswith("\n") else text
    console().print(
        Panel(Text(shown), title=Text(title) if title else None, title_align="left", expand=False)
    )


def diff(text: str) -> None:
    """A unified diff with removed lines red, added lines green and hunk headers cyan."""
    out = Text()
    for line in text.splitlines(keepends=True):
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        else:
            style = ""
        out.append(line, style=style)
    console().print(out, end="")


def secret(title: str, value: str, warning: str) -> None:
    """Show a secret once, prominently, with a warning that it will not be shown again."""
    body = Text()
    body.append(value + "\n\n", style="bold")
    body.append(warning, style="yellow")
    console().print(Panel(body, title=Text(title), title_align="left", border_style="yellow", expand=False))


def short_time(value: str | None) -> str | None:
    """An ISO timestamp shortened to ``YYYY-MM-DD HH:MM:SS`` for tables."""
    if not value:
        return None
    return value.replace("T", " ")[:19]
