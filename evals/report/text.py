"""The text tables people read in a terminal: accuracy per task, latency per level, comparisons, flips, the board.

Pure functions from rows to a string; the CLI (``evals.cli``) and the demo print them. Nothing here parses
arguments or writes files: rows for machines (csv, json, parquet) go through ``evals.cli.output``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evals.latency.runner import LatencyResult


def _num(value: object, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def _grid(head: Sequence[str], body: Sequence[Sequence[str]], *, right: bool = False, rule: bool = False) -> list[str]:
    """Lines of aligned columns two spaces apart: the head, a ``---`` rule if asked, then the body."""
    widths = [max(len(cell) for cell in column) for column in zip(head, *body, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = (cell.rjust(w) if right else cell.ljust(w) for cell, w in zip(cells, widths, strict=True))
        return "  ".join(padded).rstrip()

    return [line(head), *([line(["-" * w for w in widths])] if rule else []), *map(line, body)]


def format_accuracy_table(rows: list[dict[str, Any]]) -> str:
    """A plain per-task table: task, metric, filter, value ± stderr, n, shots (subtasks under their group)."""
    head = ("task", "metric", "filter", "value", "stderr", "n", "shots")
    # Each group first, its subtasks indented under it.
    ordered = sorted(rows, key=lambda r: (r.get("task_group") or r["task"], r.get("task_group") is not None, r["task"]))
    body = [
        (
            f"  {row['task']}" if row.get("task_group") else row["task"],
            row["metric"],
            row["filter"],
            f"{row['value']:.4f}",
            "" if row["stderr"] is None else f"{row['stderr']:.4f}",
            str(row["n_samples"] or ""),
            str(row["num_fewshot"] if row["num_fewshot"] is not None else ""),
        )
        for row in ordered
    ]
    return "\n".join(_grid(head, body))


_LATENCY_COLUMNS = (
    ("load", "{load_type} {load:g}"),
    ("ok/n", "{n_ok}/{n_requests}"),
    ("TTFT p50/p95/p99 ms", "{ttft_p50_ms:.1f}/{ttft_p95_ms:.1f}/{ttft_p99_ms:.1f}"),
    ("TPOT p50/p95/p99 ms", "{tpot_p50_ms:.1f}/{tpot_p95_ms:.1f}/{tpot_p99_ms:.1f}"),
    ("E2E p50/p95/p99 ms", "{e2e_p50_ms:.0f}/{e2e_p95_ms:.0f}/{e2e_p99_ms:.0f}"),
    ("tok/s", "{output_tokens_per_s:.1f}"),
    ("goodput", "{goodput_text}"),
    ("$/1M tok", "{cost_text}"),
)


def _latency_cells(row: dict[str, Any]) -> list[str]:
    values = {k: (float("nan") if v is None else v) for k, v in row.items()}
    values["n_ok"] = row["n_requests"] - row["n_failed"]
    values["goodput_text"] = "-" if row["goodput"] is None else f"{row['goodput']:.0%}"
    values["cost_text"] = _num(row["usd_per_1m_output_tokens"], ".2f")
    return [template.format(**values) for _, template in _LATENCY_COLUMNS]


def format_latency_table(result: LatencyResult) -> str:
    """One line per load level: P50/P95/P99 TTFT, TPOT, E2E, tokens/s, goodput, cost; then errors and notes."""
    head = [name for name, _ in _LATENCY_COLUMNS]
    lines = _grid(head, [_latency_cells(level.row) for level in result.levels], right=True)
    for level in result.levels:
        where = f"{level.row['load_type']} {level.row['load']:g}"
        if (level.row.get("n_trials") or 1) > 1:
            spread = ", ".join(
                f"{name} {_num(level.row.get(column), '.1%')}"
                for name, column in (
                    ("P95 TTFT", "ttft_p95_trial_cv"),
                    ("P95 E2E", "e2e_p95_trial_cv"),
                    ("tok/s", "output_tokens_per_s_trial_cv"),
                )
            )
            lines.append(f"{level.row['n_trials']} trials at {where}, CV between them: {spread}")
        if level.errors:
            kinds = ", ".join(f"{kind} x{n}" for kind, n in sorted(level.errors.items()))
            lines.append(f"errors at {where}: {kinds}")
    lines.extend(f"note: {note}" for note in result.notes)
    return "\n".join(lines)


def format_flips(rows: list[dict[str, object]], width: int = 60) -> str:
    """One block per changed question: task, doc, direction, target and both responses (shortened)."""
    if not rows:
        return "no question changed its score"

    def short(value: object) -> str:
        text = " ".join(str(value).split()) if value is not None else "-"
        return text if len(text) <= width else text[: width - 1] + "…"

    lines = []
    for r in rows:
        lines.append(f"{r['task']} doc {r['doc_id']} [{r['metric']},{r['filter']}] {r['change']}")
        lines.append(f"  target: {short(r['target'])}")
        lines.append(f"  A:      {short(r['response'])}")
        lines.append(f"  B:      {short(r['baseline_response'])}")
    fixed = sum(r["change"] == "fixed" for r in rows)
    lines.append(f"{len(rows)} changed: {fixed} fixed, {len(rows) - fixed} broken")
    return "\n".join(lines)


def format_comparison(rows: list[dict[str, object]]) -> str:
    """A terminal table: metric, A, B, delta, CI, method, MDE, flips, verdict (regressions marked)."""
    head = ("metric", "A", "B", "delta", "CI", "method", "MDE", "flips+/-", "verdict")
    body = []
    for r in rows:
        ci = f"[{_num(r['ci_low'])}, {_num(r['ci_high'])}]" if r["ci_low"] is not None else "-"
        mark = "!! " if r["verdict"] == "regression" else ""
        flipped = f"+{r['n_fixed']}/-{r['n_broken']}" if r.get("n_fixed") is not None else "-"
        body.append(
            (
                str(r["metric"]),
                _num(r["value"]),
                _num(r["baseline_value"]),
                _num(r["delta"]),
                ci,
                str(r.get("method") or "-"),
                _num(r.get("mde")),
                flipped,
                f"{mark}{r['verdict']}",
            )
        )
    first = rows[0] if rows else {}
    subject = f"{first.get('model_id')}@{str(first.get('revision'))[:12]}"
    if not rows:
        title = "no comparable runs"
    elif first.get("baseline_model_id") is None:
        title = f"{subject}: no earlier run to compare with"
    else:
        title = f"{subject} vs {first.get('baseline_model_id')}@{str(first.get('baseline_revision') or '')[:12]}"
    if rows and all(r.get("verdict") == "no_baseline" for r in rows):
        return title  # nothing was compared: no table of dashes
    text = [title, *_grid(head, body, rule=True)]
    headline = next((r for r in rows if r["metric"] == "accuracy:headline" and r.get("mde") is not None), None)
    if headline is not None and float(str(headline["mde"])) == 0.0:
        # Paired with no discordant question: the observed variance is 0, so any flip would be a detectable change.
        text.append("no question changed its answer (paired): the headline difference is exactly 0")
    elif headline is not None:
        text.append(
            f"this suite detects ±{float(str(headline['mde'])) * 100:.1f} points of headline accuracy "
            f"({headline.get('method')}, 80% power)"
        )
    alpha = next((r["alpha"] for r in rows if r["alpha"] is not None), None)
    if alpha is not None:
        text.append(f"CI: {round((1 - float(str(alpha))) * 100)}% two-sided; '-' = no CI (verdict by minimum effect).")
    return "\n".join(text)


def format_board(rows: list[dict[str, object]]) -> str:
    """The ranking as a terminal table: accuracy ± what the suite detects, the guardrail score, reference latency
    and its P99/P50, errors, capacity, cost."""
    head = ("#", "model", "suite/scenario", "accuracy", "detects ±", "guardrails", "ttft p95 @ref", "p99/p50",
            "errors", "capacity", "tok/s @cap", "$/1M tok @SLO", "SLO-acc")  # fmt: skip
    body = [
        (
            _num(r["rank"], "d"),
            str(r["model_id"]),
            f"{r['suite']}/{r['scenario']}",
            _num(r["accuracy"], ".3f"),
            "-" if r["accuracy_mde"] is None else f"{float(str(r['accuracy_mde'])) * 100:.1f} pts",
            _num(r.get("guardrail_score"), ".3f"),
            "-"
            if r["ttft_p95_ms"] is None
            else f"{r['ttft_p95_ms']:.1f} ms @{r['reference_load_type']}={r['reference_load']:g}",
            _num(r.get("ttft_tail_ratio"), ".2f"),
            _num(r.get("error_rate"), ".1%"),
            "-" if r["capacity"] is None else f"{r['reference_load_type']}={r['capacity']:g}",
            _num(r["slo_tokens_per_s"], ".1f"),
            _num(r["usd_per_1m_at_slo"], ".2f"),
            _num(r["slo_accuracy"], ".3f"),
        )
        for r in rows
    ]
    return "\n".join(_grid(head, body))


# ---------------------------------------------------------------------------------------------- serving decisions

_STATUS_MARK = {"pass": "ok", "fail": "FAIL", "inconclusive": "?"}


def decision_criteria(row: dict[str, Any]) -> list[dict[str, Any]]:
    import json

    value = row.get("criteria")
    return list(json.loads(value)) if isinstance(value, str) else list(value or [])


def criterion_cells(c: dict[str, Any]) -> tuple[str, str, str]:
    """(estimate, CI, limit) of one criterion in its unit: points, ms, tok/s, relative change."""
    unit = c.get("unit") or ""

    def show(value: Any) -> str:
        if value is None:
            return "-"
        if unit == "points":
            return f"{float(value) * 100:+.2f} pts"
        if unit == "relative":
            return f"{float(value):+.1%}"
        if unit == "ms":
            return f"{float(value):.1f} ms"
        if unit == "share":
            return f"{float(value):.2%}"
        if unit.startswith("tok/s"):
            return f"{float(value):.1f} tok/s"
        return f"{float(value):.4g}"

    ci = "-" if c.get("ci_low") is None and c.get("ci_high") is None else f"[{show(c['ci_low'])}, {show(c['ci_high'])}]"
    return show(c.get("estimate")), ci, show(c.get("limit"))


def _usd(value: Any) -> str:
    return "-" if value is None else f"${float(value):,.0f}/month"


def approval_text(row: dict[str, Any]) -> str:
    outcome = row.get("approval_outcome")
    if outcome is None or outcome == "pending":
        if row.get("outcome") != "promote":
            return ""
        link = f": {row['approval_url']}" if row.get("approval_url") else ""
        return f"approval pending{link}"
    who = f" by {row['approver']}" if row.get("approver") else ""
    when = f" at {row['approved_at']}" if row.get("approved_at") else ""
    why = f" ({row['approval_reason']})" if row.get("approval_reason") else ""
    return f"approval: {outcome}{who}{when}{why}"


def format_decision(row: dict[str, Any]) -> str:
    """One decision for a terminal: outcome and why, then every criterion (estimate, CI, limit, status)."""
    title = (
        f"{str(row['outcome']).upper()}: {row['model_id']}@{str(row['revision'])[:12]} vs champion {row['champion']}"
        f" ({row.get('suite')}/{row.get('scenario')}; policy {row['policy_name']} v{row['policy_version']})"
    )
    head = ("criterion", "estimate", "one-sided CI", "margin/limit", "status", "detail")
    body = [
        (str(c["name"]), *criterion_cells(c), _STATUS_MARK.get(c["status"], c["status"]), str(c.get("detail") or ""))
        for c in decision_criteria(row)
    ]
    lines = [title, f"why: {row['reason']}", *_grid(head, body, rule=True)]
    lines.append(
        f"monthly cost at the stated traffic: challenger {_usd(row.get('challenger_monthly_usd'))}, "
        f"champion {_usd(row.get('champion_monthly_usd'))}"
    )
    approval = approval_text(row)
    if approval:
        lines.append(approval)
    return "\n".join(lines)


def decision_markdown(row: dict[str, Any], *, report: str | None = None) -> str:
    """The evidence summary of one decision in Markdown (the approval's body, the notifier's message)."""
    lines = [
        f"**{str(row['outcome']).upper()}**: `{row['model_id']}@{str(row['revision'])[:12]}` against the champion "
        f"`{row['champion']}` on {row.get('suite')}/{row.get('scenario')} "
        f"(policy {row['policy_name']} v{row['policy_version']}, night {row.get('eval_date')})",
        "",
        f"Why: {row['reason']}",
        "",
        "| criterion | estimate | one-sided CI | margin/limit | status |",
        "|---|---|---|---|---|",
    ]
    for c in decision_criteria(row):
        estimate, ci, limit = criterion_cells(c)
        lines.append(f"| {c['name']} | {estimate} | {ci} | {limit} | {c['status']} |")
    lines += [
        "",
        f"Monthly cost at the stated traffic: challenger {_usd(row.get('challenger_monthly_usd'))}, "
        f"champion {_usd(row.get('champion_monthly_usd'))}.",
    ]
    if report:
        lines.append(f"Report: {report}")
    return "\n".join(lines)
