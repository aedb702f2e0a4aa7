"""PNG charts of the daily report (matplotlib, headless Agg backend).

Chinese labels need a CJK font: `scripts/ensure-system-deps.sh` installs
`fonts-noto-cjk`; when one of CJK_FONTS is installed the charts draw with it (labels
in Chinese and English), else labels stay English (no boxes for missing glyphs)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import matplotlib

matplotlib.use("Agg")

from matplotlib import font_manager
from matplotlib.figure import Figure

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Source Han Sans SC")


CJK_FILE_HINTS = ("NotoSansCJK", "NotoSerifCJK", "SourceHanSans", "wqy-")


@cache
def cjk_font() -> str | None:
    """A CJK-capable font installed on this machine, or None (labels stay ASCII then).
    matplotlib's font cache predates fonts installed after it was built: the system
    font folders are searched once more for CJK files before giving up."""
    installed = {f.name for f in font_manager.fontManager.ttflist}
    found = next((name for name in CJK_FONTS if name in installed), None)
    if found is None:
        for path in font_manager.findSystemFonts():
            if any(hint in path for hint in CJK_FILE_HINTS):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        installed = {f.name for f in font_manager.fontManager.ttflist}
        found = next((name for name in CJK_FONTS if name in installed), None)
    return found


def font_family() -> list[str]:
    """The font family the charts draw with: the CJK font first when there is one."""
    cjk = cjk_font()
    return [cjk, "DejaVu Sans"] if cjk else ["DejaVu Sans"]


@contextmanager
def _fonts() -> Iterator[None]:
    """Chart fonts for the duration of one chart (no global rcParams change)."""
    with matplotlib.rc_context({"font.family": font_family(), "axes.unicode_minus": False}):
        yield


def _label(chinese: str, english: str) -> str:
    return f"{chinese} {english}" if cjk_font() else english


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _figure() -> Figure:
    figure = Figure(figsize=(7, 3.2))
    if cjk_font():
        figure.set_layout_engine("tight")
    return figure


def hourly_chart(hours: list[dict]) -> bytes:
    with _fonts():
        return _hourly_chart(hours)


def funnel_chart(steps: list[tuple[str, int]]) -> bytes:
    with _fonts():
        return _funnel_chart(steps)


def ctit_chart(buckets: list[tuple[str, int]]) -> bytes:
    with _fonts():
        return _ctit_chart(buckets)


def _hourly_chart(hours: list[dict]) -> bytes:
    figure = _figure()
    axes = figure.add_subplot()
    x = [h["hour"] for h in hours]
    axes.bar(x, [h["clicks"] for h in hours], color="#4c78a8", label=_label("点击", "clicks"))
    axes.set_xlabel(_label("小时", "hour (local)"))
    axes.set_xticks(range(0, 24, 2))
    twin = axes.twinx()
    twin.plot(x, [h["activations"] for h in hours], color="#f58518", marker="o", label=_label("激活", "activations"))
    axes.set_title(_label("每小时点击与激活", "Clicks and activations per hour"))
    figure.legend(loc="upper left")
    return _png(figure)


def _funnel_chart(steps: list[tuple[str, int]]) -> bytes:
    figure = _figure()
    axes = figure.add_subplot()
    names = [name for name, _ in steps][::-1]
    values = [value for _, value in steps][::-1]
    axes.barh(names, values, color="#54a24b")
    for y, value in enumerate(values):
        axes.text(value, y, f" {value:,}", va="center")
    axes.set_title(_label("转化漏斗", "Funnel"))
    return _png(figure)


def _ctit_chart(buckets: list[tuple[str, int]]) -> bytes:
    figure = _figure()
    axes = figure.add_subplot()
    axes.bar([name for name, _ in buckets], [value for _, value in buckets], color="#b279a2")
    axes.set_title(_label("点击到激活时间", "Click-to-install time (CTIT)"))
    return _png(figure)
