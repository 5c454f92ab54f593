"""PNG charts of the reports, for people who would rather look than read.

matplotlib is an optional extra (``pip install 'leadflow[charts]'``) and loads only when a chart is drawn,
with the non-interactive Agg backend (no display needed). Every chart is ``SIZE`` pixels.
Each function takes the report's own data (the ``Engine.report_*`` dict), so a chart shows exactly the
figures the table and the JSON show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cli.present import formats
from engine.errors import InvalidInputError, LeadflowError
from engine.i18n import N_, _, label, ngettext

#: Width and height of every chart, in pixels.
SIZE = (1200, 700)
_DPI = 100
_BLUE, _GREEN, _GREY, _RED = "#2f6db5", "#3a9a4f", "#9aa5b1", "#c8423b"


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise LeadflowError(
            N_("charts need matplotlib, which is not installed: pip install 'leadflow[charts]'")) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure(rows: int = 1) -> tuple[Any, Any, Any]:
    plt = _pyplot()
    fig, axes = plt.subplots(rows, 1, figsize=(SIZE[0] / _DPI, SIZE[1] / _DPI), dpi=_DPI, squeeze=False)
    return plt, fig, [a for (a,) in axes]


def _save(plt: Any, fig: Any, path: str | Path) -> Path:
    target = Path(path)
    if target.suffix.lower() != ".png":
        plt.close(fig)
        raise InvalidInputError(N_("--chart {path} must name a .png file"), path=repr(str(path)))
    fig.tight_layout()
    try:
        fig.savefig(target, format="png", dpi=_DPI)
    except OSError as exc:
        raise LeadflowError(N_("can't write the chart to {path}: {strerror}"), path=repr(str(path)),
                            strerror=exc.strerror or exc) from None
    finally:
        plt.close(fig)
    return target


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=14, color=_GREY, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def funnel(data: dict[str, Any], path: str | Path) -> Path:
    """Horizontal bars per stage (leads that reached it, and those that moved on), one panel per process."""
    funnels = data["funnels"] or [None]
    plt, fig, axes = _figure(len(funnels))
    for ax, f in zip(axes, funnels, strict=True):
        if f is None or not f["leads"]:
            _empty(ax, _("{process}: no leads in the period", process=f["process"]) if f else
                   _("No process: no leads in the period"))
            continue
        stages = [s for s in f["stages"] if not s["retired"] or s["reached"]]
        labels = [label(s["name"]) for s in stages] + [_("Won")]
        reached = [s["reached"] for s in stages] + [f["won"]]
        moved = [s["moved_on"] for s in stages] + [f["won"]]
        y = list(range(len(labels)))[::-1]
        ax.barh(y, reached, color=_GREY, label=_("reached"))
        ax.barh(y, moved, color=_BLUE, height=0.5, label=_("moved on (won, for the last bar)"))
        for yi, n, s in zip(y, reached, [*stages, None], strict=True):
            moved_on = (_("{percent} moved on", percent=formats.percent(s["conversion"], decimals=0))
                        if s and s["conversion"] is not None else "")
            ax.text(n, yi, f" {n}" + (f"  ({moved_on})" if moved_on else ""), va="center", fontsize=9)
        ax.set_yticks(y, labels)
        conversion = formats.percent(f["conversion"]) if f["conversion"] is not None else _("n/a")
        ax.set_title(ngettext("{title}: {count} lead, lead-to-win {conversion}",
                              "{title}: {count} leads, lead-to-win {conversion}", f["leads"],
                              title=label(f["title"]), conversion=conversion))
        ax.set_xlim(0, max(reached) * 1.3 or 1)
        ax.legend(loc="lower right", fontsize=8)
    return _save(plt, fig, path)


def refusal_trend(data: dict[str, Any], path: str | Path) -> Path:
    """Refusals per day (bars) and the running total (line)."""
    plt, fig, (ax,) = _figure()
    days = data["trend"]["days"]
    if not days:
        _empty(ax, _("No refusals in the period"))
        return _save(plt, fig, path)
    x = list(range(len(days)))
    ax.bar(x, [d["count"] for d in days], color=_RED, label=_("refusals per day"))
    ax.set_ylabel(_("refusals per day"))
    running = ax.twinx()
    running.plot(x, [d["cumulative"] for d in days], color=_BLUE, linewidth=2, label=_("running total"))
    running.set_ylabel(_("running total"))
    step = max(1, len(days) // 15)
    ax.set_xticks(x[::step], [d["day"] for d in days][::step], rotation=45, ha="right", fontsize=8)
    ax.set_title(ngettext("Refusals, {start} to {end}: {count} in all", "Refusals, {start} to {end}: {count} in all",
                          data["total"], start=days[0]["day"], end=days[-1]["day"]))
    fig.legend(loc="upper left", fontsize=8)
    return _save(plt, fig, path)


def forecast(data: dict[str, Any], path: str | Path) -> Path:
    """Expected value per month (bars, one colour per process) with the expected wins written on them."""
    plt, fig, (ax,) = _figure()
    forecasts = data["forecasts"]
    months = [m["month"] for m in forecasts[0]["months"]] if forecasts else []
    if not months or not any(m["leads"] for f in forecasts for m in f["months"]):
        _empty(ax, _("No open lead is expected to close in these months"))
        return _save(plt, fig, path)
    width = 0.8 / len(forecasts)
    for i, f in enumerate(forecasts):
        x = [j + i * width for j in range(len(months))]
        values = [float(m["expected_value"]) for m in f["months"]]
        bars = ax.bar(x, values, width=width, label=f"{label(f['title'])} ({f['currency']})")
        for bar, m in zip(bars, f["months"], strict=True):
            wins = _("{wins} wins", wins=format(m["expected_wins"], "g"))
            ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), wins, ha="center", va="bottom", fontsize=8)
    ax.set_xticks([j + width * (len(forecasts) - 1) / 2 for j in range(len(months))], months)
    ax.set_ylabel(_("expected value"))
    ax.set_title(_("Forecast as of {day}: expected value and wins per month", day=data["as_of"][:10]))
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def cycle(data: dict[str, Any], path: str | Path) -> Path:
    """Per process the median cycle with its quartiles, and the declared cycle; below, the median per
    salesperson."""
    plt, fig, (top, bottom) = _figure(2)
    measured = [p for p in data["processes"] if p["won"]]
    if not measured:
        _empty(top, _("No won lead in the period"))
    else:
        x = list(range(len(measured)))
        medians = [p["median_days"] for p in measured]
        low = [p["median_days"] - p["p25_days"] for p in measured]
        high = [p["p75_days"] - p["median_days"] for p in measured]
        top.bar(x, medians, color=_GREEN, yerr=[low, high], capsize=6, label=_("median (bars: quartiles)"))
        top.scatter(x, [p["declared_days"] for p in measured], color=_RED, marker="_", s=900, zorder=3,
                    label=_("declared cycle"))
        top.set_xticks(x, [p["process"] + "\n(" + ngettext("{count} won", "{count} won", p["won"]) + ")"
                           for p in measured], fontsize=8)
        top.set_ylabel(_("days from lead to win"))
        top.legend(fontsize=8)
    top.set_title(_("The measured sales cycle"))
    people = data["by_salesperson"][:30]
    if not people:
        _empty(bottom, _("No won lead in the period"))
    else:
        nobody = _("(nobody)")
        labels = [f"{p['owner'] or nobody} ({p['process']})" for p in people]
        bottom.bar(range(len(people)), [p["median_days"] for p in people], color=_BLUE)
        bottom.set_xticks(range(len(people)), labels, rotation=30, ha="right", fontsize=8)
        bottom.set_ylabel(_("median days"))
    bottom.set_title(_("Median per salesperson"))
    return _save(plt, fig, path)
