"""PNG chart of a backtest: equity curve on top, drawdown below."""

from __future__ import annotations

import io

from backend.domain.backtest.engine import BacktestResult


def render_chart(result: BacktestResult, title: str = "Backtest") -> bytes:
    """Render equity and drawdown as PNG bytes (matplotlib Agg, imported lazily to keep start-up fast)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    x = result.times if result.times is not None else range(result.equity.size)
    fig = Figure(figsize=(10, 6), dpi=100)
    ax_eq, ax_dd = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax_eq.plot(x, result.equity, color="#1f77b4", linewidth=1.2, label="Equity")
    ax_eq.set_title(title)
    ax_eq.set_ylabel("Equity")
    ax_eq.grid(alpha=0.3)
    ax_eq.legend(loc="upper left")
    ax_dd.fill_between(x, -100 * result.drawdown, 0, color="#d62728", alpha=0.5, step="post")
    ax_dd.set_ylabel("Drawdown %")
    ax_dd.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
