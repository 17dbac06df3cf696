"""The benchmark's report: JSON (every record), Markdown (tables) and HTML (tables and plotly charts)."""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path

import plotly.graph_objects as go

from .markdown import markdown_text
from .metrics import AR

COLUMNS = [("task", "task"), ("method", "method"), ("speedup", "speedup ×"), ("tokens_per_s", "tokens/s"),
           ("tau", "τ"), ("alpha", "α"), ("forwards_per_token", "target forwards/token (prefill included)"),
           ("predicted", "predicted ×"), ("predicted_v", "predicted with v ×"), ("accounting", "τ/(γc+v) ×"),
           ("peak_mib", "peak MiB")]


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def header_text(result: dict) -> str:
    h = result["header"]
    return (f"{h['processor']} ({h['device']}, {h['threads']} threads), {h['machine']}; python {h['python']}, "
            f"torch {h['torch']}, transformers {h['transformers']}; target {h['target_parameters'] / 1e6:.1f} M parameters; "
            f"γ = {h['gamma']}, {h['max_new_tokens']} new tokens, T = {h['temperature']:g}, seed {h['seed']}; "
            f"{h['questions']} prompts in {len(h['tasks'])} tasks" + _partial(result))


def _partial(result: dict) -> str:
    if result.get("complete", True):
        return ""
    return (f" — PARTIAL: {result.get('questions_done', '?')} of {result['header']['questions']} prompts measured so far "
            "(the run is in progress or was interrupted)")


def _rows(result: dict, task: str | None = None) -> list[dict]:
    return [r for r in result["summary"] if task is None or r["task"] == task]


def to_markdown(result: dict) -> str:
    lines = ["# Benchmark report", "", markdown_text(header_text(result)), "",
             "speedup = mean tokens/s over prompts ÷ the autoregressive baseline's (Spec-Bench); "
             "τ = new tokens ÷ steps (the prefill is not a step); α = accepted ÷ checked drafts (not the draft yield, "
             "accepted ÷ drafted); target forwards: one per step, plus each prompt's prefill in a speculative run; "
             "c = one drafted token's cost in target forwards; "
             "predicted = (1 − α^(γ+1)) / ((1 − α)(γc + 1)) from measured α and c; "
             "with v: measured verification cost in place of 1; τ/(γc+v): what the measured phases allow.", ""]
    lines.append("| " + " | ".join(title for _, title in COLUMNS) + " |")
    lines.append("|" + "---|" * len(COLUMNS))
    for r in result["summary"]:
        lines.append("| " + " | ".join(markdown_text(_fmt(r.get(key))) for key, _ in COLUMNS) + " |")  # task: any text
    lines += ["", "## Where measured and predicted differ", ""]
    lines += [f"- {markdown_text(r['task'])} · {markdown_text(r['method'])}: measured {r['speedup']:.2f}×, "
              f"predicted {_fmt(r['predicted'])}×: {markdown_text(r['explanation'])}"
              for r in result["summary"] if "explanation" in r and r["task"] == "all"]
    if "probe" in result:
        p = result["probe"]
        lines += ["", "## One forward over k new tokens (this device)", "",
                  "| k | measured ms | cost model (fitted) ms |", "|---|---|---|"]
        lines += [f"| {k} | {1000 * t:.2f} | {'–' if m is None else f'{1000 * m:.2f}'} |"
                  for k, t, m in zip(p["k"], p["seconds"], p["model_seconds"])]
        lines += ["", p["note"]]
    return "\n".join(lines) + "\n"


def speedup_figure(result: dict) -> go.Figure:
    fig = go.Figure()
    tasks = [t for t in dict.fromkeys(r["task"] for r in result["summary"])]
    for method in result["methods"]:
        if method == AR:
            continue
        rows = {r["task"]: r for r in result["summary"] if r["method"] == method}
        fig.add_bar(x=tasks, y=[rows[t]["speedup"] if t in rows else None for t in tasks], name=method)
    fig.add_hline(y=1.0, line_dash="dot")
    fig.update_layout(barmode="group", yaxis_title="speedup over autoregressive (×)", height=420, title="speedup by task")
    return fig


def position_figure(result: dict) -> go.Figure:
    fig = go.Figure()
    for r in _rows(result, "all"):
        if r.get("per_position"):
            fig.add_scatter(x=list(range(1, len(r["per_position"]) + 1)), y=r["per_position"], mode="lines+markers", name=r["method"])
    fig.update_layout(xaxis_title="draft position i", yaxis_title="P(accepted | checked)", height=360,
                      title="per-position acceptance (all tasks)")
    return fig


def probe_figure(result: dict) -> go.Figure | None:
    if "probe" not in result:
        return None
    p = result["probe"]
    fig = go.Figure()
    fig.add_scatter(x=p["k"], y=[1000 * t for t in p["seconds"]], mode="markers", name="measured")
    if None not in p["model_seconds"]:
        fig.add_scatter(x=p["k"], y=[1000 * t for t in p["model_seconds"]], mode="lines", line_dash="dash", name="cost model (fitted)")
    fig.update_layout(xaxis_type="log", xaxis_title="new tokens k", yaxis_title="ms per forward", height=320,
                      title="one target forward over k new tokens, warm KV cache")
    return fig


def table_html(result: dict, tasks: list[str] | None = None) -> str:
    """The summary table as an HTML fragment, only ``tasks`` (e.g. ["all"]) if given."""
    head = "".join(f"<th>{html.escape(t)}</th>" for _, t in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(k)))}</td>" for k, _ in COLUMNS) + "</tr>"
                   for r in result["summary"] if tasks is None or r["task"] in tasks)
    return f'<table class="sdl-metrics"><tr>{head}</tr>{body}</table>'


def to_html(result: dict) -> str:
    notes = "".join(f"<li>{html.escape(r['method'])}: {html.escape(r['explanation'])}</li>"
                    for r in _rows(result, "all") if "explanation" in r)
    figures = [speedup_figure(result), position_figure(result), probe_figure(result)]
    charts = "".join(f.to_html(full_html=False, include_plotlyjs="cdn" if i == 0 else False)
                     for i, f in enumerate(f for f in figures if f is not None))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>specdec_lab benchmark</title>"
            "<style>table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style>"
            f"</head><body><h1>Benchmark report</h1><p>{html.escape(header_text(result))}</p>"
            f"{table_html(result)}<h2>Where measured and predicted differ</h2><ul>{notes}</ul>"
            f"{charts}</body></html>\n")


def check_out_folder(folder: str | Path) -> Path:
    """The report folder, refused before any work if it cannot hold the report: an existing file, or a parent
    that is not a folder or not writable."""
    folder = Path(folder).expanduser()
    if folder.exists():
        if not folder.is_dir():
            raise ValueError(f"--out {folder} is an existing file, not a folder: give a folder for result.json, "
                             "report.md and report.html")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ValueError(f"--out {folder}: the folder is not writable")
        return folder
    parent = folder.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"--out {folder}: {parent} is a file, so the folder cannot be created there")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--out {folder}: cannot create it, {parent} is not writable")
    return folder


def _write(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so an interrupted write never leaves a truncated report."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(result: dict, folder: str | Path) -> dict[str, Path]:
    """result.json, report.md and report.html in ``folder``; returns their paths. A partial result (``"complete":
    False``, written while the benchmark runs) is marked PARTIAL in the reports."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "result.json", "markdown": folder / "report.md", "html": folder / "report.html"}
    _write(paths["json"], json.dumps(result, indent=1, default=float) + "\n")
    _write(paths["markdown"], to_markdown(result))
    _write(paths["html"], to_html(result))
    return paths


def write_section(path: str | Path, name: str, text: str, title: str | None = None) -> None:
    """Replace the part of a Markdown file between ``<!-- begin:name -->`` and ``<!-- end:name -->`` with ``text``
    (appending the section when it is absent), so two benchmarks can each own one section of one document."""
    path = Path(path)
    begin, end = f"<!-- begin:{name} -->", f"<!-- end:{name} -->"
    old = path.read_text(encoding="utf-8") if path.exists() else (f"# {title}\n\n" if title else "")
    block = f"{begin}\n{text.strip()}\n{end}"
    if begin in old and end in old:
        new = old[: old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    _write(path, new)
