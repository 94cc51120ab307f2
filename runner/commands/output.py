"""Where a command's product goes: stdout, or a file named with ``-o``."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from runner.errors import UsageError


def emit(text: str, output: str | None, console: Console) -> None:
    """Write ``text`` to ``output`` (creating folders), or print it unchanged."""
    if output is None:
        console.out(text, end="", highlight=False)
        return
    target = Path(output)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror}") from exc
    console.print(f"wrote {output}", markup=False)
