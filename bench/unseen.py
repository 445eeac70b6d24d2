"""The PromptOpt loop on labelled tasks nobody tuned it for, with the embedded local model.

    .venv/bin/python bench/unseen.py [--budget 300] [--seed 0] [--tasks intent,language,urgency,sarcasm]

The datasets in ``bench/data/`` (intent of a banking request, language of a sentence, urgency of an email,
sarcastic vs literal headlines) were written for this benchmark and not used to develop the defaults. For
each task a real ``promptops serve`` (fresh SQLite database) gets the dataset and a naive zero-shot prompt
with **no model parameters**, exactly what a new user writes; ``POST /api/v1/optimizations`` then runs with
only prompt, dataset and budget given, on the local model (Gemma 3 270M), through the REST API as
``promptops optimize`` does. Printed per task: the held-out accuracy of the start and of the winner, the gain
with its 95% interval and paired test, the trivial baselines (majority label of the training split, uniform
chance), model calls and wall time.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import httpx
from server import HEADERS, serve

DATA = Path(__file__).parent / "data"

# What a new user would write first: the task, the labels in words, the input; no answer cue, no params.
TASKS: dict[str, str] = {
    "intent": "Which of these does the customer want: balance, transfer, card or complaint?\n\n{{ text }}",
    "language": "Which language is this sentence written in: english, french, spanish or german?\n\n{{ text }}",
    "urgency": "How urgent is this email: urgent, normal or low?\n\n{{ text }}",
    "sarcasm": "Is this headline sarcastic or literal?\n\n{{ text }}",
}


def load_cases(name: str) -> list[dict[str, Any]]:
    lines = (DATA / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def run_task(api: httpx.Client, name: str, budget: int, seed: int) -> dict[str, Any]:
    cases = load_cases(name)
    r = api.post("/api/v1/datasets", json={"name": f"unseen/{name}", "cases": cases})
    r.raise_for_status()
    r = api.post(
        "/api/v1/prompts",
        json={
            "name": f"unseen/{name}",
            "template": TASKS[name],
            "variables": [{"name": "text"}],
            "labels": ["production"],
        },
    )
    r.raise_for_status()
    started = time.perf_counter()
    r = api.post(
        "/api/v1/optimizations",
        json={
            "prompt": f"unseen/{name}@production",
            "dataset": f"unseen/{name}",
            "budget": budget,
            "seed": seed,
        },
    )
    r.raise_for_status()
    optimization: dict[str, Any] = r.json()
    while optimization["status"] not in ("completed", "failed", "cancelled"):
        time.sleep(0.5)
        optimization = api.get(f"/api/v1/optimizations/{optimization['id']}").json()
    optimization["wallSeconds"] = time.perf_counter() - started
    optimization["caseCount"] = len(cases)
    return optimization


def show(name: str, o: dict[str, Any]) -> dict[str, Any]:
    spec, report = o["spec"], o["report"]
    print(f"\n== {name}: {o['caseCount']} cases, {spec['trainCases']} train / {spec['valCases']} held-out")
    print(f"{'rnd':>3} {'strategy':<18} {'status':<10} {'screen':>6} {'train':>6} {'val':>6} {'calls':>5}")
    for row in o["trajectory"]:
        cells = [row.get("screenScore"), row["trainScore"], row["valScore"]]
        s, t, v = (f"{x:.3f}" if x is not None else "-" for x in cells)
        print(
            f"{row['round']:>3} {row['strategy']:<18} {row['status']:<10} {s:>6} {t:>6} {v:>6} {row['calls']:>5}"
        )
    line: dict[str, Any] = {
        "task": name,
        "status": o["status"],
        "calls": o["callsUsed"],
        "wall": o["wallSeconds"],
    }
    if o["status"] != "completed":
        print("error:", o.get("error"))
        return line
    held = report.get("heldOut") or {}
    trivial = held.get("trivialBaselines") or {}
    line.update(
        start=report["baseline"]["valScore"],
        end=report["winner"]["valScore"],
        gain=held.get("gainPoints", 0.0),
        ci=held.get("ci95"),
        significant=held.get("significant", False),
        majority=trivial.get("majority"),
        chance=trivial.get("chance"),
        beats_majority=held.get("beatsMajority"),
        winner=report["winner"]["strategy"],
    )
    print(report.get("summary", ""))
    print(
        f"calls {o['callsUsed']}/{o['budget']}, wall {o['wallSeconds']:.0f} s, stopped: {report.get('stopReason')}"
    )
    return line


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    names = [n.strip() for n in args.tasks.split(",") if n.strip()]
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        raise SystemExit(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(TASKS)}")

    lines = []
    with (
        serve(args.database_url, "promptops-bench-unseen-") as (base, _),
        httpx.Client(base_url=base, headers=HEADERS, timeout=60) as api,
    ):
        for name in names:
            lines.append(show(name, run_task(api, name, args.budget, args.seed)))

    print("\nheld-out accuracy, start -> winner (local/gemma-3-270m, budget", args.budget, ")")
    print(
        f"{'task':<9} {'start':>6} {'winner':>6} {'gain':>6} {'95% CI':>15} {'sig':>4} {'major.':>6} "
        f"{'>maj':>5} {'calls':>5} {'wall s':>6}"
    )
    for x in lines:
        if x["status"] != "completed":
            print(f"{x['task']:<9} {x['status']}")
            continue
        ci = f"[{x['ci'][0]:+.1f}, {x['ci'][1]:+.1f}]" if x.get("ci") else "-"
        major = f"{x['majority']:.3f}" if x.get("majority") is not None else "-"
        print(
            f"{x['task']:<9} {x['start']:>6.3f} {x['end']:>6.3f} {x['gain']:>+6.1f} {ci:>15} "
            f"{'yes' if x['significant'] else 'no':>4} {major:>6} {'yes' if x['beats_majority'] else 'no':>5} "
            f"{x['calls']:>5} {x['wall']:>6.0f}"
        )


if __name__ == "__main__":
    main()
