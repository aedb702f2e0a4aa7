"""Money as people read it. Amounts are stored and sent in fen (integers); operators
read and type yuan with two decimals. The one formatter of fen as yuan text."""

from __future__ import annotations


def yuan_text(fen: int | None, *, grouping: bool = True, symbol: str = "") -> str:
    """`fen` as yuan with two decimals: 850000000 → "8,500,000.00" ("8500000.00" without
    grouping, as import files hold it); None → "". Exact: integer arithmetic, no float."""
    if fen is None:
        return ""
    whole, cents = divmod(abs(fen), 100)
    digits = f"{whole:,}" if grouping else str(whole)
    return f"{'-' if fen < 0 else ''}{symbol}{digits}.{cents:02d}"
