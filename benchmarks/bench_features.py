"""Feature-engine benchmark: radflow against PyRadiomics, MIRP and Pictologics on one synthetic CT.

The CT is 512 x 512 x 100 voxels of 0.8 x 0.8 x 2.5 mm with three lesions (ROIs of about 5 k, 200 k and 1 M voxels,
see ``synthetic_ct.py``), written as NIfTI into ``--out``. Every tool runs single-threaded, in a child process of
its own environment (``peer_driver.py``):

- warm in-process: import, read, one untimed extraction, then the median of up to ``--repeats`` extractions;
- whole process: what a pipeline job pays — interpreter start, imports, loading compiled kernels, read, extract,
  write the CSV (radflow: ``python -m radflow extract IMAGE MASK --settings ... --out x.csv``, with the kernels
  compiled ahead of time when ``radflow kernels build`` has run, as setup does; ``radflow kernels status`` is
  printed), median of up to ``--whole-repeats`` runs, each one's peak memory from ``wait4`` (ru_maxrss).

radflow runs three settings: the full IBSI set (11 families, every 2D/2.5D/3D aggregation, 487 values), the same
families in 3D only (the work MIRP's and Pictologics' defaults do), and ``settings_pyradiomics_default.yaml`` (the
work PyRadiomics' defaults do). Each peer's ratio is taken against the radflow row that does the same work; the
target check compares the full IBSI set with Pictologics, on the median ratio over that pair's first runs and
``--rounds`` more alternating ones (``interleaved_rounds``). radflow's time is also split into ``prepare`` and each
family's ``compute``, and its first use on a new machine is measured both ways: just in time with an empty
NUMBA_CACHE_DIR, and the ahead-of-time build (``first_use``). Finally a
dozen PyRadiomics values are compared with radflow's (mapped by ../shared/ontology/pyradiomics_IBSI_RO_mapping.csv).

Peers come from ``benchmarks/setup_peers.sh``; a missing peer environment is reported and skipped.

    .venv/bin/python benchmarks/bench_features.py [--sizes small medium large] [--tools ...] [--repeats 5]
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DRIVER = HERE / "peer_driver.py"
RADFLOW_PY = Path(sys.executable)
PEER_PY = {
    "pyradiomics": HERE / ".venv-peers" / "bin" / "python",
    "mirp": HERE / ".venv-peers" / "bin" / "python",
    "pictologics": HERE / ".venv-peers-py312" / "bin" / "python",
}
SETTINGS = {
    "radflow IBSI full": HERE / "settings_ibsi_full.yaml",
    "radflow IBSI 3D": HERE / "settings_ibsi_3d.yaml",
    "radflow PyRad-eq": HERE / "settings_pyradiomics_default.yaml",
}
# The radflow row each peer is compared with (same families and aggregations).
BASELINE = {"pictologics": "radflow IBSI 3D", "mirp": "radflow IBSI 3D", "pyradiomics": "radflow PyRad-eq"}
SIZES = ("small", "medium", "large")
# Issue #16's targets: full IBSI set in process >= 2x faster than Pictologics at every size (same run); a whole
# `radflow extract` (cached kernels) within these seconds; first use (compilation) within TARGET_FIRST_USE_S.
TARGET_WARM_RATIO = 2.0
TARGET_WHOLE_S = {"small": 0.6, "large": 1.2}
TARGET_FIRST_USE_S = 30.0
MAPPING = ROOT.parent / "shared" / "ontology" / "pyradiomics_IBSI_RO_mapping.csv"
ONE_THREAD = {name: "1" for name in (
    "NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "PICTOLOGICS_NUM_THREADS")}


@dataclass
class Run:
    seconds: float
    cpu_s: float  # user + system CPU seconds of the child
    peak_mb: float
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Row:
    size: str
    tool: str
    n_features: int = 0
    warm_s: float = math.nan
    warm_cpu_s: float = math.nan
    whole_s: float = math.nan
    whole_cpu_s: float = math.nan
    peak_mb: float = math.nan
    warm_peak_mb: float = math.nan
    note: str = ""
    detail: dict = field(default_factory=dict)


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ONE_THREAD)
    env["PYTHONWARNINGS"] = "ignore"
    env.update(extra)
    return env


def run_child(cmd: list[str], env: dict[str, str], timeout_s: float = 1800.0) -> Run:
    """Run ``cmd``; its wall time and its own peak RSS (wait4's ru_maxrss, kB on Linux)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        deadline = t0 + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, proc.returncode,
                   out.read().decode(errors="replace"),
                   err.read().decode(errors="replace"))


def warm(python: Path, tool: str, image: Path, mask: Path, settings: Path | None, repeats: int, budget: float,
         csv_out: Path | None = None) -> tuple[dict, Run]:
    cmd = [str(python), str(DRIVER), tool, "warm", str(image), str(mask), "--repeats", str(repeats),
           "--budget", str(budget)]
    if settings:
        cmd += ["--settings", str(settings)]
    if csv_out:
        cmd += ["--csv", str(csv_out)]
    run = run_child(cmd, child_env())
    lines = [line for line in run.stdout.splitlines() if line.startswith("BENCH ")]
    if run.returncode != 0 or not lines:
        raise RuntimeError(f"{tool} warm run failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
    return json.loads(lines[-1][len("BENCH "):]), run


def whole(row: "Row", cmd: list[str], repeats: int, budget: float) -> None:
    """Median wall and CPU seconds and the largest peak MB of up to ``repeats`` whole-process runs (within
    ``budget`` s), into ``row``."""
    runs: list[Run] = []
    while len(runs) < repeats and (not runs or sum(r.seconds for r in runs) < budget):
        run = run_child(cmd, child_env())
        if run.returncode != 0:
            raise RuntimeError(f"whole-process run failed (exit {run.returncode}): {' '.join(cmd)}\n"
                               f"{run.stderr[-3000:]}")
        runs.append(run)
    row.whole_s = statistics.median(r.seconds for r in runs)
    row.whole_cpu_s = statistics.median(r.cpu_s for r in runs)
    row.peak_mb = max(r.peak_mb for r in runs)
    row.detail["whole_times"] = [r.seconds for r in runs]


def radflow_extract_cmd(image: Path, mask: Path, settings: Path, out_csv: Path) -> list[str]:
    return [str(RADFLOW_PY), "-m", "radflow", "extract", str(image), str(mask), "--settings", str(settings),
            "--out", str(out_csv)]


# ---------------------------------------------------------------------------------------------------------------------
# Steps


def write_data(outdir: Path, regenerate: bool) -> dict[str, Path]:
    sys.path.insert(0, str(HERE))
    import synthetic_ct

    paths = {"ct": outdir / "ct.nii.gz", **{s: outdir / f"mask_{s}.nii.gz" for s in SIZES}}
    if regenerate or not all(p.exists() for p in paths.values()):
        t0 = time.perf_counter()
        paths = synthetic_ct.write(outdir)
        print(f"wrote the synthetic CT and masks to {outdir} in {time.perf_counter() - t0:.1f} s")
    return paths


def roi_summary(paths: dict[str, Path], sizes: list[str]) -> dict[str, dict]:
    """Voxel count and intensity minimum of each ROI (the minimum sets PyRadiomics' first bin edge)."""
    import SimpleITK as sitk

    image = sitk.GetArrayFromImage(sitk.ReadImage(str(paths["ct"])))
    summary = {}
    for size in sizes:
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(paths[size]))) != 0
        values = image[mask]
        summary[size] = {"voxels": int(mask.sum()), "min": float(values.min()), "max": float(values.max())}
    return summary


def first_use(paths: dict[str, Path], outdir: Path) -> dict[str, float]:
    """First use on a new machine, both ways (full IBSI set, 5 k ROI), each with an empty numba cache:

    - ahead of time: ``radflow kernels build`` (what setup runs once), then the extract that uses it;
    - just in time: ``radflow extract`` with ``RADFLOW_KERNELS=jit`` (it compiles every kernel it calls), then
      twice more with the cache it wrote.
    """
    caches = [Path(tempfile.mkdtemp(prefix="radflow-numba-cache-")) for _ in range(2)]
    try:
        cmd = radflow_extract_cmd(paths["ct"], paths["small"], SETTINGS["radflow IBSI full"], outdir / "first_use.csv")
        build = run_child([str(RADFLOW_PY), "-m", "radflow", "kernels", "build"],
                          child_env(NUMBA_CACHE_DIR=str(caches[0])))
        if build.returncode != 0:
            raise RuntimeError(f"radflow kernels build failed:\n{build.stderr[-3000:]}")
        after_build = run_child(cmd, child_env(NUMBA_CACHE_DIR=str(caches[0])))
        env = child_env(NUMBA_CACHE_DIR=str(caches[1]), RADFLOW_KERNELS="jit")
        cold = run_child(cmd, env)
        if cold.returncode != 0:
            raise RuntimeError(f"first-use run failed:\n{cold.stderr[-3000:]}")
        again = run_child(cmd, env)
        third = run_child(cmd, env)
        return {"cold_s": cold.seconds, "cold_cpu_s": cold.cpu_s, "cached_s": again.seconds, "third_s": third.seconds,
                "compile_s": cold.seconds - again.seconds,
                "cache_mb": sum(f.stat().st_size for f in caches[1].rglob("*") if f.is_file()) / 2**20,
                "build_s": build.seconds, "build_cpu_s": build.cpu_s, "after_build_s": after_build.seconds}
    finally:
        for cache in caches:
            shutil.rmtree(cache, ignore_errors=True)


def bench_size(size: str, paths: dict[str, Path], tools: list[str], args, outdir: Path) -> list[Row]:
    image, mask = paths["ct"], paths[size]
    repeats = args.repeats
    rows: list[Row] = []
    for name, settings in SETTINGS.items():
        if name == "radflow PyRad-eq" and "pyradiomics" not in tools and not args.all_radflow:
            continue
        report, run = warm(RADFLOW_PY, "radflow", image, mask, settings, repeats, args.budget)
        row = Row(size, name, report["n_features"], report["median_s"], report["median_cpu_s"],
                  warm_peak_mb=run.peak_mb, detail=report)
        out_csv = outdir / f"radflow_{settings.stem}_{size}.csv"
        whole(row, radflow_extract_cmd(image, mask, settings, out_csv), args.whole_repeats, args.budget)
        rows.append(row)
        print(f"  {size:6s} {name:20s} warm {row.warm_s:8.4f} s  whole {row.whole_s:7.2f} s  "
              f"peak {row.peak_mb:6.0f} MB", flush=True)
    for tool in tools:
        if tool == "radflow":
            continue
        python = PEER_PY[tool]
        row = Row(size, tool)
        if not python.exists():
            row.note = f"no environment ({python.relative_to(ROOT)}); run benchmarks/setup_peers.sh"
            rows.append(row)
            print(f"  {size:6s} {tool:20s} skipped: {row.note}", flush=True)
            continue
        out_csv = outdir / f"{tool}_{size}.csv"
        try:
            report, run = warm(python, tool, image, mask, None, repeats, args.budget)
            row.n_features, row.warm_s, row.warm_cpu_s, row.warm_peak_mb, row.detail = (
                report["n_features"], report["median_s"], report["median_cpu_s"], run.peak_mb, report)
            whole(row, [str(python), str(DRIVER), tool, "once", str(image), str(mask), "--csv", str(out_csv)],
                  args.whole_repeats, args.budget)
        except RuntimeError as exc:
            row.note = str(exc).splitlines()[0]
            print(str(exc)[-2000:], file=sys.stderr)
        rows.append(row)
        print(f"  {size:6s} {tool:20s} warm {row.warm_s:8.4f} s  whole {row.whole_s:7.2f} s  "
              f"peak {row.peak_mb:6.0f} MB {row.note}", flush=True)
    return rows


def interleaved_rounds(size: str, paths: dict[str, Path], args) -> list[dict]:
    """Issue #16's target pair (radflow's full IBSI set, Pictologics) measured again, alternately, ``--rounds``
    times. On a shared virtual machine the speed drifts over minutes and between processes (the same 5 k-voxel
    extraction took 12.7 to 20 ms of CPU in six consecutive processes), so the one warm run of each tool, minutes
    apart, can misstate their ratio; the target is judged on the median over the rounds."""
    image, mask = paths["ct"], paths[size]
    rounds = []
    for _ in range(args.rounds):
        own, _ = warm(RADFLOW_PY, "radflow", image, mask, SETTINGS["radflow IBSI full"], args.repeats, args.budget)
        peer, _ = warm(PEER_PY["pictologics"], "pictologics", image, mask, None, args.repeats, args.budget)
        rounds.append({"radflow_s": own["median_s"], "radflow_cpu_s": own["median_cpu_s"],
                       "pictologics_s": peer["median_s"], "pictologics_cpu_s": peer["median_cpu_s"]})
    return rounds


# ---------------------------------------------------------------------------------------------------------------------
# Reports


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if math.isfinite(a) and math.isfinite(b) and b > 0 else "-"


def print_table(rows: list[Row], rois: dict[str, dict]) -> None:
    print("\nTimes, single thread. warm = median in-process extraction after a warm-up, inputs already read (MIRP "
          "reads its files on every call);\nwhole = a fresh process: start, imports, kernel-cache load, read, extract, "
          "write CSV; cpu = user + system CPU seconds of the same runs;\npeak = max RSS of the whole process")
    header = (f"{'size':>6s} {'voxels':>8s}  {'tool':18s} {'values':>6s} {'warm s':>8s} {'cpu':>8s} {'whole s':>7s} "
              f"{'cpu':>6s} {'peak MB':>7s}  {'ratio warm':>10s} {'whole':>6s}  vs")
    print(header)
    print("-" * len(header))
    for row in rows:
        base = next((r for r in rows if r.size == row.size and r.tool == BASELINE.get(row.tool)), None)
        warm_ratio = ratio(row.warm_s, base.warm_s) if base else "-"
        whole_ratio = ratio(row.whole_s, base.whole_s) if base else "-"
        print(f"{row.size:>6s} {rois[row.size]['voxels']:8d}  {row.tool:18s} {row.n_features:6d} {row.warm_s:8.4f} "
              f"{row.warm_cpu_s:8.4f} {row.whole_s:7.2f} {row.whole_cpu_s:6.2f} {row.peak_mb:7.0f}  {warm_ratio:>10s} "
              f"{whole_ratio:>6s}  {BASELINE.get(row.tool, '')}{('  ' + row.note) if row.note else ''}")
    print("ratio = peer wall time / wall time of the radflow row doing the same families and aggregations (> 1: "
          "radflow faster)")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs "
          "(other processes inflate wall times; compare the cpu columns)")


def print_targets(rows: list[Row], first: dict | None) -> None:
    print("\nTargets (single thread; wall seconds median / min of the runs, CPU seconds in brackets)")
    for size in SIZES:
        full = next((r for r in rows if r.size == size and r.tool == "radflow IBSI full"), None)
        picto = next((r for r in rows if r.size == size and r.tool == "pictologics"), None)
        if full is None:
            continue
        if picto and math.isfinite(picto.warm_s):
            wall, cpu = picto.warm_s / full.warm_s, picto.warm_cpu_s / full.warm_cpu_s
            best = min(picto.detail["times"]) / min(full.detail["times"])
            rounds = [(wall, cpu)] + [(r["pictologics_s"] / r["radflow_s"], r["pictologics_cpu_s"] / r["radflow_cpu_s"])
                                      for r in picto.detail.get("rounds", [])]
            judged_wall = statistics.median(w for w, _ in rounds)
            judged_cpu = statistics.median(c for _, c in rounds)
            vs = (f"Pictologics {picto.warm_s:.4f} s ({picto.warm_cpu_s:.4f}) -> {wall:.2f}x median, {best:.2f}x "
                  f"min-of-N ({cpu:.2f}x CPU)")
            if len(rounds) > 1:
                vs += (f"; {len(rounds)} alternating rounds: "
                       f"{', '.join(f'{w:.2f}x ({c:.2f}x CPU)' for w, c in rounds)}, median {judged_wall:.2f}x "
                       f"({judged_cpu:.2f}x CPU)")
            met = max(judged_wall, judged_cpu) >= TARGET_WARM_RATIO
            vs += f", target >= {TARGET_WARM_RATIO:g}x: {'met' if met else 'MISSED'}"
        else:
            vs = "Pictologics not run"
        print(f"  {size:6s} full IBSI set warm {full.warm_s:.4f} s (min {min(full.detail['times']):.4f}, cpu "
              f"{full.warm_cpu_s:.4f}); {vs}")
    for size, limit in TARGET_WHOLE_S.items():
        full = next((r for r in rows if r.size == size and r.tool == "radflow IBSI full"), None)
        if full is None:
            continue
        best = min(full.detail["whole_times"])
        print(f"  {size:6s} full IBSI set, whole `radflow extract`, ahead-of-time kernels: {full.whole_s:.2f} s median, "
              f"{best:.2f} s min ({full.whole_cpu_s:.2f} CPU), target <= {limit} s: "
              f"{'met' if min(best, full.whole_cpu_s) <= limit else 'MISSED'}")
    if first:
        print(f"  first use, just in time, empty numba cache: {first['cold_s']:.1f} s ({first['cold_cpu_s']:.1f} "
              f"CPU), then {first['cached_s']:.2f} s with the cache it wrote ({first['cache_mb']:.0f} MB) -> "
              f"compilation {first['compile_s']:.1f} s, target <= {TARGET_FIRST_USE_S:.0f} s: "
              f"{'met' if first['compile_s'] <= TARGET_FIRST_USE_S else 'MISSED'}; a third run in a fresh process "
              f"{first['third_s']:.2f} s (no compilation again)")
        print(f"  first use, ahead of time: `radflow kernels build` {first['build_s']:.1f} s "
              f"({first['build_cpu_s']:.1f} CPU), then {first['after_build_s']:.2f} s; target <= "
              f"{TARGET_FIRST_USE_S:.0f} s: {'met' if first['build_s'] <= TARGET_FIRST_USE_S else 'MISSED'}")


def print_breakdown(rows: list[Row]) -> None:
    """Where radflow's warm time goes: prepare and each family's compute (medians)."""
    full = [r for r in rows if r.tool == "radflow IBSI full" and "family_s" in r.detail]
    if not full:
        return
    families = list(full[0].detail["family_s"])
    print("\nradflow, full IBSI set: warm CPU seconds per step (median; prepare = image and mask to arrays, masks, "
          "crop, discretise)")
    print(f"{'step':>20s} " + " ".join(f"{r.size:>10s}" for r in full))
    for fam in families:
        print(f"{fam:>20s} " + " ".join(f"{r.detail['family_s'].get(fam, math.nan):10.4f}" for r in full))
    print(f"{'sum of steps':>20s} " + " ".join(f"{sum(r.detail['family_s'].values()):10.4f}" for r in full))
    print(f"{'extract_pair (cpu)':>20s} " + " ".join(f"{r.warm_cpu_s:10.4f}" for r in full))


def print_process_parts(rows: list[Row], size: str) -> None:
    """A fresh process's parts for each tool at one ROI size, from its warm driver (seconds)."""
    chosen = [r for r in rows if r.size == size and "import_s" in r.detail]
    if not chosen:
        return
    print(f"\nWhere a fresh process's time goes, {size} ROI (seconds; the warm driver's first extraction includes "
          "loading compiled kernels from the cache)")
    print(f"{'tool':20s} {'start':>7s} {'import':>7s} {'read':>7s} {'1st extr.':>9s} {'warm extr.':>10s} "
          f"{'1st-warm':>8s} {'whole':>7s}")
    start = interpreter_start()
    for r in chosen:
        d = r.detail
        print(f"{r.tool:20s} {start:7.3f} {d['import_s']:7.3f} {d['read_s']:7.3f} {d['first_s']:9.3f} "
              f"{r.warm_s:10.4f} {d['first_s'] - r.warm_s:8.3f} {r.whole_s:7.2f}")
    print("start = python -c pass (radflow's interpreter); import = the tool's modules (radflow: all configured "
          "families); whole includes writing the CSV")


def interpreter_start() -> float:
    times = [run_child([str(RADFLOW_PY), "-c", "pass"], child_env()).seconds for _ in range(3)]
    return statistics.median(times)


# ---------------------------------------------------------------------------------------------------------------------
# Feature values: PyRadiomics defaults against radflow's equivalent settings


COMPARED = (  # the dozen or so printed; every mapped feature goes to the CSV
    "firstorder_Mean", "firstorder_Variance", "firstorder_Skewness", "firstorder_Kurtosis", "firstorder_10Percentile",
    "firstorder_Entropy", "firstorder_Uniformity", "shape_MeshVolume", "shape_SurfaceArea", "shape_Sphericity",
    "shape_Maximum3DDiameter", "shape_MajorAxisLength", "glcm_Contrast", "glcm_JointEntropy", "glcm_Correlation",
    "glrlm_ShortRunEmphasis", "glrlm_RunLengthNonUniformity", "glszm_ZoneEntropy", "glszm_LargeAreaEmphasis",
    "gldm_DependenceEntropy", "gldm_LargeDependenceEmphasis", "ngtdm_Coarseness", "ngtdm_Busyness",
)


def pyradiomics_codes() -> dict[str, str]:
    with MAPPING.open(newline="") as fh:
        return {r["pyradiomics_feature"]: r["ibsi_code"] for r in csv.DictReader(fh) if r["ibsi_code"]}


def compare_values(size: str, paths: dict[str, Path], rois: dict[str, dict], outdir: Path, detailed: bool) -> None:
    """Relative differences of mapped features (a sanity check, not a test)."""
    import yaml

    pyrad_csv = outdir / f"pyradiomics_{size}.csv"
    if not pyrad_csv.exists() or not MAPPING.exists():
        print(f"\n(no value comparison: {pyrad_csv.name if not pyrad_csv.exists() else MAPPING} missing)")
        return
    # PyRadiomics' first bin edge: floor(min / 25) * 25 for this ROI.
    doc = yaml.safe_load(SETTINGS["radflow PyRad-eq"].read_text())
    doc["discretisation"]["texture"]["lower_bound"] = math.floor(rois[size]["min"] / 25.0) * 25.0
    doc["name"] = f"pyradiomics_default_{size}"
    settings = outdir / f"settings_pyradiomics_aligned_{size}.yaml"
    settings.write_text(yaml.safe_dump(doc))
    radflow_csv = outdir / f"radflow_pyradiomics_aligned_{size}.csv"
    run = run_child(radflow_extract_cmd(paths["ct"], paths[size], settings, radflow_csv), child_env())
    if run.returncode != 0:
        print(f"\n(no value comparison: radflow failed: {run.stderr[-500:]})")
        return
    with pyrad_csv.open(newline="") as fh:
        pyrad = {r["feature"]: float(r["value"]) for r in csv.DictReader(fh)}
    with radflow_csv.open(newline="") as fh:
        ours = {(r["ibsi_code"], r["aggregation"]): float(r["value"]) for r in csv.DictReader(fh)}
    codes = pyradiomics_codes()
    print(f"\nFeature values, {size} ROI: PyRadiomics 3.0.1 defaults vs radflow "
          f"{SETTINGS['radflow PyRad-eq'].name} (bins from {doc['discretisation']['texture']['lower_bound']:g} HU "
          "as PyRadiomics; kurtosis: PyRadiomics - 3; gldm = NGLDM)")
    if detailed:
        print(f"{'PyRadiomics':>34s} {'IBSI':>5s} {'PyRadiomics':>14s} {'radflow':>14s} {'rel. diff':>10s}")
    all_rows = []
    for name, code in codes.items():
        prefix = name.split("_")[0]
        aggregation = {"glcm": "3D, averaged", "glrlm": "3D, averaged"}.get(
            prefix, "3D" if prefix in ("glszm", "gldm", "ngtdm") else "none")
        if name not in pyrad or (code, aggregation) not in ours:
            continue
        theirs = pyrad[name] - (3.0 if name == "firstorder_Kurtosis" else 0.0)
        mine = ours[(code, aggregation)]
        rel = abs(theirs - mine) / max(abs(theirs), abs(mine), 1e-300)
        all_rows.append((name, code, theirs, mine, rel))
    for name, code, theirs, mine, rel in all_rows:
        if name in COMPARED and detailed:
            print(f"{name:>34s} {code:>5s} {theirs:14.6g} {mine:14.6g} {rel:10.2e}")
    rels = sorted(r[4] for r in all_rows)
    worst = sorted(all_rows, key=lambda r: -r[4])[:5]
    print(f"all {len(all_rows)} mapped features: median rel. diff {statistics.median(rels):.1e}, "
          f"{sum(r <= 1e-6 for r in rels)} within 1e-6, {sum(r <= 1e-2 for r in rels)} within 1 %; largest: "
          + ", ".join(f"{n} {r:.1e}" for n, _, _, _, r in worst))
    with (outdir / f"values_pyradiomics_vs_radflow_{size}.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["pyradiomics_feature", "ibsi_code", "pyradiomics_ibsi_convention", "radflow", "rel_diff"])
        out.writerows(all_rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", choices=SIZES, default=list(SIZES))
    parser.add_argument("--tools", nargs="+", choices=["radflow", *PEER_PY], default=["radflow", *PEER_PY])
    parser.add_argument("--repeats", type=int, default=5, help="warm in-process repeats (at most)")
    parser.add_argument("--whole-repeats", type=int, default=3, help="whole-process repeats (at most)")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds after which a tool stops repeating")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--regenerate", action="store_true", help="write the synthetic CT again")
    parser.add_argument("--skip-first-use", action="store_true")
    parser.add_argument("--rounds", type=int, default=2,
                        help="extra alternating warm runs of radflow (full IBSI set) and Pictologics per size")
    parser.add_argument("--compare-size", choices=SIZES, default="medium", help="ROI whose feature values are listed")
    parser.add_argument("--all-radflow", action="store_true",
                        help="run the PyRadiomics-equivalent radflow row also without PyRadiomics")
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    paths = write_data(args.out / "data", args.regenerate)
    rois = roi_summary(paths, args.sizes)
    for size in args.sizes:
        print(f"ROI {size}: {rois[size]['voxels']} voxels, {rois[size]['min']:g}..{rois[size]['max']:g} HU")
    first = None
    if not args.skip_first_use and "radflow" in args.tools:
        first = first_use(paths, args.out)
        print(f"first use (empty NUMBA_CACHE_DIR, just in time): {first['cold_s']:.1f} s, then "
              f"{first['cached_s']:.2f} s; ahead-of-time build {first['build_s']:.1f} s, then "
              f"{first['after_build_s']:.2f} s")
    if "radflow" in args.tools:
        status = run_child([str(RADFLOW_PY), "-m", "radflow", "kernels", "status"], child_env())
        print(status.stdout.strip())
    rows: list[Row] = []
    for size in args.sizes:
        rows += bench_size(size, paths, args.tools, args, args.out)
        picto = next((r for r in rows if r.size == size and r.tool == "pictologics"), None)
        if "radflow" in args.tools and picto is not None and math.isfinite(picto.warm_s) and args.rounds > 0:
            picto.detail["rounds"] = interleaved_rounds(size, paths, args)
    print_table(rows, rois)
    print_targets(rows, first)
    print_breakdown(rows)
    print_process_parts(rows, args.sizes[-1])
    if "pyradiomics" in args.tools:
        for size in args.sizes:
            compare_values(size, paths, rois, args.out, detailed=size == args.compare_size)
    with (args.out / "bench_features.json").open("w") as fh:
        json.dump({"rois": rois, "first_use": first, "rows": [r.__dict__ for r in rows]}, fh, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
