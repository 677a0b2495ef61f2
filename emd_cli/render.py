"""rich rendering shared by commands (imported only when a table is printed)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from model_specs.cost import CostEstimate, plain


def console() -> Console:
    return Console(width=max(Console().width, 120), highlight=False)


def print_cost(est: CostEstimate, out: Console) -> None:
    if not est.deployment and est.target is None:
        for note in est.notes:
            out.print(note)
        return
    t = Table(title=f"Deployment cost estimate — {est.region} ({est.currency})")
    for col in ("Service", "Usage", f"Estimated cost ({est.currency})", "Notes"):
        t.add_column(col, overflow="fold")
    for ln in est.deployment:
        amount = f"{est.fmt(ln.monthly)}/month" if ln.recurring else est.fmt(ln.one_time)
        t.add_row(ln.service, ln.usage, amount, ln.unit_price)
    t.add_row(
        "Total deployment cost",
        "",
        f"{est.fmt(est.one_time_total)} + {est.fmt(est.deployment_monthly_total)}/month",
        "one-time deployment cost + monthly storage",
        style="bold",
    )
    out.print(t)
    s = Table(title="Target service costs (post-deployment)")
    for col in ("Item", "Hourly", "Monthly", "Notes"):
        s.add_column(col, overflow="fold")
    if est.target is not None:
        tg = est.target
        s.add_row(
            tg.label,
            "n/a" if tg.hourly is None else f"~{est.symbol}{tg.hourly}/hour",
            "n/a" if tg.monthly is None else f"{est.fmt(tg.monthly)}/month",
            f"{plain(tg.hours_per_day)} h/day x 30 days",
        )
    s.add_row("Secrets Manager", "", f"{est.fmt(est.secrets_manager_monthly)}/month", "API key storage")
    s.add_row(
        "Total monthly", "", est.fmt(est.monthly_total), "storage + target + API key secret", style="bold"
    )
    out.print(s)
    for note in est.notes:
        out.print(f"note: {note}")
    if est.not_included:
        out.print("Not included: " + "; ".join(est.not_included) + ".")
