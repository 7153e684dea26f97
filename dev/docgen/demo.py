"""The offline demo's blocks: its recipe, tables on one and two threads, whether they tell the same story,
the plateau of every run, the curves and the time, from ``docs/results/demo-{1thread,2threads}.json``."""

from __future__ import annotations

import os
from typing import Dict, Iterable, List, Sequence, Tuple

from mdistiller_ddkd.markdown_table import markdown_table
from mdistiller_ddkd.suite.compare import paired_markdown
from mdistiller_ddkd.suite.progress import format_seconds
from mdistiller_ddkd.suite.result_tables import UNRANKED_COLUMNS, Table, method_order, separated
from mdistiller_ddkd.suite.table_formats import to_markdown

from .core import BlockFunction, read_results_file, register_block, suite_table
from .story import story_conflicts

#: the demo's committed results: label -> file under docs/results
DEMO_RESULTS = {"1 thread": "demo-1thread.json", "2 threads": "demo-2threads.json"}
#: how many of a run's last epochs the late-jump checks look at (the teacher must not move there at all)
PLATEAU_EPOCHS = 2


def demo_results(results_dir: str) -> Dict[str, Dict]:
    """``{label: collected results}`` of the demo runs, in :data:`DEMO_RESULTS` order."""
    return {label: read_results_file(os.path.join(results_dir, name)) for label, name in DEMO_RESULTS.items()}


def run_role(run: Dict) -> str:
    """``Teacher`` for the teacher run (a NONE run of the teacher model), ``Student`` for the student
    trained alone, else the method."""
    if run["method"] == "NONE":
        return "Teacher" if run["name"].startswith("teacher-") else "Student"
    return run["method"]


def late_change(curve: Sequence[float], epochs: int = PLATEAU_EPOCHS) -> float:
    """The largest change of test accuracy between consecutive epochs among the last ``epochs`` epochs."""
    tail = list(curve[-epochs:])
    return max((abs(b - a) for a, b in zip(tail, tail[1:])), default=0.0)


def _roles(data: Dict) -> List[str]:
    return ["Teacher", "Student", *method_order({r["method"] for r in data["runs"]} - {"NONE"})]


def _recipe(data: Dict, role: str) -> Dict:
    return next(r["config"] for r in data["runs"] if run_role(r) == role)


def _schedule(config: Dict) -> str:
    stages = config.get("SOLVER.LR_DECAY_STAGES", [])
    rate = config.get("SOLVER.LR_DECAY_RATE", 0.1)
    lr = config.get("SOLVER.LR", 0.05)
    decay = f", ×{rate:g} after epoch{'s' if len(stages) > 1 else ''} {', '.join(map(str, stages))}" if stages else ""
    return f"{config['SOLVER.EPOCHS']} epochs, batch {config.get('SOLVER.BATCH_SIZE', 64)}, LR {lr:g}{decay}"


def _primary(results_dir: str) -> Dict:
    return demo_results(results_dir)[next(iter(DEMO_RESULTS))]


@register_block("demo-runs")
def _demo_runs(results_dir: str) -> str:
    return str(len(_primary(results_dir)["runs"]))


@register_block("demo-steps")
def _demo_steps(results_dir: str) -> str:
    data = _primary(results_dir)
    teacher, student, dkd, ddkd = (_recipe(data, role) for role in ("Teacher", "Student", "DKD", "DDKD"))
    seeds = ", ".join(str(s) for s in sorted({r["seed"] for r in data["runs"] if run_role(r) == "Student"}))
    teacher_seed = next(r["seed"] for r in data["runs"] if run_role(r) == "Teacher")
    warmups, betas = (dkd["DKD.WARMUP"], ddkd["DDKD.DKD.WARMUP"]), (dkd["DKD.BETA"], ddkd["DDKD.DKD.BETA"])
    if warmups[0] == warmups[1] and betas[0] == betas[1]:
        dkd_text = f"the DKD warm-up is {warmups[0]} epochs and DKD's β is {betas[0]:g}, for both DKD and DDKD"
    else:
        dkd_text = (f"DKD's warm-up and β are {warmups[0]} epochs and {betas[0]:g} for DKD, {warmups[1]} epochs "
                    f"and {betas[1]:g} for DDKD")
    return (f"1. the teacher, {teacher['DISTILLER.STUDENT']}, trained alone once (method NONE, seed {teacher_seed}; "
            f"`configs/demo/teacher.yaml`, {teacher['SOLVER.EPOCHS']} epochs);\n"
            f"2. the student, {student['DISTILLER.STUDENT']}, alone (`configs/demo/none.yaml`, "
            f"{student['SOLVER.EPOCHS']} epochs, seeds {seeds});\n"
            f"3. the student with KD, DKD and DDKD, distilled from that teacher's `student_best` checkpoint\n"
            f"   (`configs/demo/{{kd,dkd,ddkd}}.yaml`, {student['SOLVER.EPOCHS']} epochs, seeds {seeds}; {dkd_text});")


@register_block("demo-recipe")
def _demo_recipe(results_dir: str) -> str:
    data = _primary(results_dir)
    teacher, student = _recipe(data, "Teacher"), _recipe(data, "Student")
    dkd, ddkd = _recipe(data, "DKD"), _recipe(data, "DDKD")
    synthetic = {k.rsplit(".", 1)[1]: v for k, v in student.items() if k.startswith("DATASET.SYNTHETIC.")}
    seeds = sorted({r["seed"] for r in data["runs"] if run_role(r) == "Student"})
    extras = [k for k in ("DATASET.GPU_AUGMENT", "SOLVER.CHANNELS_LAST") if student.get(k)]
    return "\n".join([
        f"- data: the synthetic set with {', '.join(f'`{k} {v}`' for k, v in synthetic.items())} "
        f"(`DATASET.SYNTHETIC.*`){'; ' + ', '.join(f'`{k}`' for k in extras) if extras else ''};",
        f"- teacher {teacher['DISTILLER.STUDENT']}: trained once, {_schedule(teacher)};",
        f"- students {student['DISTILLER.STUDENT']} (alone, KD, DKD, DDKD): seeds {', '.join(map(str, seeds))}, "
        f"{_schedule(student)}; DKD β {dkd['DKD.BETA']:g}, warm-up {dkd['DKD.WARMUP']} epochs; DDKD β "
        f"{ddkd['DDKD.DKD.BETA']:g}, warm-up {ddkd['DDKD.DKD.WARMUP']} epochs;",
        f"- {data['manifest']['jobs']} runs at a time; {len(data['runs'])} runs in all.",
    ])


#: the method the demo's paired comparisons are against
DEMO_REFERENCE = "DKD"


def measured_with(data: Dict) -> str:
    """The line under a table of committed results: the commit and package sources they were measured with."""
    code = data.get("code") or {}
    if not code:
        return "measured with code that was not recorded"
    return f"measured with commit `{code['commit'][:12]}` (package sources sha256 `{code['sources'][:12]}`)"


def _table_block(label: str) -> BlockFunction:
    def block(results_dir: str) -> str:
        data = demo_results(results_dir)[label]
        table = suite_table(data)
        return "\n\n".join([to_markdown(table), paired_markdown(table, DEMO_REFERENCE), measured_with(data) + "."])

    return block


for _label, _name in DEMO_RESULTS.items():
    register_block(f"demo-table-{_name[len('demo-'):-len('.json')]}")(_table_block(_label))


def _relations(table: Table) -> Dict[frozenset, Tuple[bool, str, str]]:
    """``{{a, b}: (ordered, higher, lower)}`` for every two ranked cells of the table's (first) row."""
    row = table.rows[0]
    columns = [c for c in table.columns if c not in UNRANKED_COLUMNS and c in row.cells and row.cells[c].n > 1]
    out = {}
    for i, a in enumerate(columns):
        for b in columns[i + 1:]:
            x, y = row.cells[a], row.cells[b]
            high, low = (a, b) if x.mean >= y.mean else (b, a)
            out[frozenset((a, b))] = (separated(x, y), high, low)
    return out


@register_block("demo-story")
def _demo_story(results_dir: str) -> str:
    results = demo_results(results_dir)
    (one, data_one), (two, data_two) = list(results.items())[:2]
    table_one, table_two = suite_table(data_one), suite_table(data_two)
    conflicts = story_conflicts(table_one, table_two, (one, two))
    rel_one, rel_two = _relations(table_one), _relations(table_two)
    unordered = (False, "", "")

    def listed(pairs: Iterable[Tuple[str, str]], sep: str) -> str:
        return ", ".join(f"{a} {sep} {b}" for a, b in pairs) or "none"

    both = [v[1:] for k, v in rel_one.items() if v[0] and rel_two.get(k, unordered)[0]]
    ties = [v[1:] for k, v in rel_one.items() if not v[0] and k in rel_two and not rel_two[k][0]]
    only_one = [v[1:] for k, v in rel_one.items() if v[0] and not rel_two.get(k, unordered)[0]]
    only_two = [v[1:] for k, v in rel_two.items() if v[0] and not rel_one.get(k, unordered)[0]]
    verdict = ("**The same story**: no pair is ordered one way in one table and the other way in the other."
               if not conflicts else "**Different stories**: " + "; ".join(conflicts) + ".")
    return "\n".join([
        verdict,
        "",
        f"- ordered in both: {listed(both, '>')};",
        f"- tied in both: {listed(ties, '≈')};",
        f"- ordered with {one} only: {listed(only_one, '>')}; with {two} only: {listed(only_two, '>')}.",
    ])


@register_block("demo-stability")
def _demo_stability(results_dir: str) -> str:
    results = demo_results(results_dir)
    roles = _roles(next(iter(results.values())))
    rows = []
    for label, data in results.items():
        change = {role: max(late_change(r["test_acc"]) for r in data["runs"] if run_role(r) == role) for role in roles}
        drop = {role: max(r["best_acc"] - r["last_acc"] for r in data["runs"] if run_role(r) == role) for role in roles}
        rows.append([f"{label}: largest change between consecutive epochs among the last {PLATEAU_EPOCHS}",
                     *(f"{change[r]:.1f}" for r in roles)])
        rows.append([f"{label}: largest best − last", *(f"{drop[r]:.1f}" for r in roles)])
    return markdown_table(["test top-1 (points), worst run", *roles], rows, align="l" + "r" * len(roles))


@register_block("demo-curves")
def _demo_curves(results_dir: str) -> str:
    parts = []
    for label, data in demo_results(results_dir).items():
        epochs = max(len(r["test_acc"]) for r in data["runs"])
        runs = sorted(data["runs"], key=lambda r: (_roles(data).index(run_role(r)), r["seed"]))
        rows = [[r["name"], *(f"{a:.1f}" for a in r["test_acc"]), *[""] * (epochs - len(r["test_acc"]))]
                for r in runs]
        parts.append(f"**{label}**, test top-1 (%) after each epoch:\n\n"
                     + markdown_table(["run", *map(str, range(1, epochs + 1))], rows, align="l" + "r" * epochs))
    return "\n\n".join(parts)


@register_block("demo-timing")
def _demo_timing(results_dir: str) -> str:
    rows = []
    for label, data in demo_results(results_dir).items():
        m = data["manifest"]
        threads = sorted({r["threads"] for r in data["runs"] if r.get("threads") is not None})
        load = m.get("load_average") or {}
        cpu = "–" if m.get("cpu_seconds") is None else format_seconds(m["cpu_seconds"])
        rows.append([label, f"{m['jobs']} × {'/'.join(map(str, threads)) or '–'}", format_seconds(m["seconds"]), cpu,
                     " → ".join(f"{v[0]:.2f}" for v in (load.get("start"), load.get("end")) if v) or "–",
                     f"{m['machine'].get('cpu', '?')}, {m['machine'].get('cores', '?')} cores",
                     f"torch {m['machine'].get('torch', '?')}"])
    return markdown_table(["run", "runs at a time × threads", "wall time", "CPU time (all runs)",
                           "load average (1 min, start → end)", "machine", "software"], rows, align="lrrrrll")


@register_block("demo-duration")
def _demo_duration(results_dir: str) -> str:
    data = _primary(results_dir)
    manifest = data["manifest"]
    threads = sorted({r["threads"] for r in data["runs"] if r.get("threads") is not None})
    each = "/".join(map(str, threads)) + (" thread" if threads == [1] else " threads")
    return (f"the whole demo took {format_seconds(manifest['seconds'])} on {manifest['machine'].get('cores', '?')} CPU "
            f"cores ({manifest['jobs']} runs at a time, {each} each)")
