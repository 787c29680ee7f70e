"""IBSI-2 filter benchmark: every radflow filter on a synthetic 512 x 512 x 300 CT (0.8 x 0.8 x 2.5 mm, the image of
bench_resampling.py), time and peak memory, beside PyRadiomics 3.0.1's LoG and wavelet image types on the same image
in the same run.

Each case runs in a fresh process (so that its peak RSS is its own): radflow's in radflow's .venv, PyRadiomics' in
benchmarks/.venv-peers (made by benchmarks/setup_peers.sh; skipped with a note when absent). Every case reads the same
int16 NIfTI first; "base" is the RSS after reading (the image as float64 is 600 MB), then the peak RSS is reset
(Linux clear_refs) and read again at the end, so peak - base is what the filter itself needed. Single-threaded
throughout (scipy's ndimage and FFT are; ITK is told to use one thread; NUMBA/OMP/OPENBLAS threads set to 1).

radflow filters the whole image here (``apply_filter``); the pipeline filters only the ROI crop grown by the filter
support (``prepare``), timed as the "prepare" cases on the 25 mm lesion. PyRadiomics' wavelet yields all 8 level-1
sub-bands in one call (decimation-free ``pywt.swt``, periodic only); radflow's "coif1 x8" computes the same 8 bands
one by one (IBSI boundary conditions, true undecimated alignment).

    .venv/bin/python benchmarks/bench_filters.py [--out benchmarks/out/bench_filters.json] [--cases NAME ...]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEER_PYTHON = HERE / ".venv-peers" / "bin" / "python"
DATA = HERE / "out" / "data" / "filters"

# name -> radflow ``filter`` settings group (3D unless stated; boundary mirror)
RADFLOW_CASES: dict[str, dict] = {
    "mean 3D M=5": {"type": "mean", "support_voxels": 5},
    "LoG 3D sigma=1.5mm": {"type": "laplacian_of_gaussian", "sigma_mm": 1.5},
    "LoG 3D sigma=3mm": {"type": "laplacian_of_gaussian", "sigma_mm": 3.0},
    "Laws L5E5E5 3D rot-inv max + energy d=7": {"type": "laws", "laws_kernel": "L5E5E5", "rotation_invariance": True,
                                                "pooling": "max", "energy_map": True, "energy_delta_voxels": 7},
    "Gabor 2D sigma=5 lambda=2 gamma=1.5, 8 orientations": {
        "type": "gabor", "dimensions": "2D", "sigma_mm": 5.0, "gabor_lambda_mm": 2.0, "gabor_gamma": 1.5,
        "gabor_delta_theta": "pi/8", "pooling": "average"},
    "Gabor same, 3 orthogonal planes": {
        "type": "gabor", "dimensions": "2D", "sigma_mm": 5.0, "gabor_lambda_mm": 2.0, "gabor_gamma": 1.5,
        "gabor_delta_theta": "pi/8", "pooling": "average", "orthogonal_planes": True},
    "coif1 LLH level 1": {"type": "separable_wavelet", "wavelet": "coif1", "wavelet_map": "LLH"},
    "coif1 x8 (all level-1 sub-bands)": {"type": "separable_wavelet", "wavelet": "coif1", "wavelet_map": "*"},
    "db3 LLH level 1 rot-inv avg": {"type": "separable_wavelet", "wavelet": "db3", "wavelet_map": "LLH",
                                    "rotation_invariance": True, "pooling": "average"},
    "db3 HHH level 2 rot-inv avg": {"type": "separable_wavelet", "wavelet": "db3", "wavelet_map": "HHH",
                                    "wavelet_level": 2, "rotation_invariance": True, "pooling": "average"},
    "Simoncelli level 1 (FFT)": {"type": "simoncelli", "wavelet_level": 1},
}
PREPARE_CASES = ("LoG 3D sigma=1.5mm", "Laws L5E5E5 3D rot-inv max + energy d=7",
                 "Gabor same, 3 orthogonal planes", "db3 HHH level 2 rot-inv avg", "Simoncelli level 1 (FFT)")
PEER_CASES = ("pyradiomics LoG sigma=1.5mm", "pyradiomics LoG sigma=3mm", "pyradiomics wavelet coif1 (8 sub-bands)")


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _reset_peak() -> float:
    """Reset the peak RSS (Linux: "5" to clear_refs) so that reading's transient peak is not the filter's; the current
    RSS is the baseline."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _status_mb("VmRSS")


def _peak_mb() -> float:
    return _status_mb("VmHWM")


def write_data() -> tuple[Path, Path]:
    image_path, mask_path = DATA / "ct.nii.gz", DATA / "lesion.nii.gz"
    if not image_path.exists():
        import SimpleITK as sitk

        sys.path.insert(0, str(HERE))
        from bench_resampling import synthetic_ct

        DATA.mkdir(parents=True, exist_ok=True)
        image, mask = synthetic_ct()
        sitk.WriteImage(image, str(image_path), useCompression=True)
        sitk.WriteImage(mask, str(mask_path), useCompression=True)
    return image_path, mask_path


# --------------------------------------------------------------------------------------------------------------------
# One case, in its own process


def run_radflow(case: str, image_path: str, mask_path: str, prepare_only: bool) -> dict:
    import numpy as np
    import SimpleITK as sitk

    from radflow.imaging.filters import FilterSpec, apply_filter
    from radflow.imaging.preprocess import prepare
    from radflow.settings import Settings

    image, mask = sitk.ReadImage(image_path), sitk.ReadImage(mask_path)
    group = dict(RADFLOW_CASES[case], boundary_condition="mirror")
    if prepare_only:
        settings = Settings.from_dict({"filter": group, "families": ["statistics"]})
        base = _reset_peak()
        start = time.perf_counter()
        roi = prepare(image, mask, settings)
        return {"seconds": time.perf_counter() - start, "base_mb": base, "peak_mb": _peak_mb(),
                "voxels": int(roi.image.size)}
    array = sitk.GetArrayFromImage(image).astype(np.float64)
    spacing = tuple(reversed(image.GetSpacing()))
    bands = ["LLL", "LLH", "LHL", "LHH", "HLL", "HLH", "HHL", "HHH"] if group.get("wavelet_map") == "*" else [None]
    base = _reset_peak()
    start = time.perf_counter()
    for band in bands:
        spec = FilterSpec.from_settings(group if band is None else dict(group, wavelet_map=band))
        response = apply_filter(array, spacing, spec)
        del response
    return {"seconds": time.perf_counter() - start, "base_mb": base, "peak_mb": _peak_mb(), "voxels": int(array.size)}


def run_pyradiomics(case: str, image_path: str, mask_path: str) -> dict:
    import SimpleITK as sitk
    from radiomics import imageoperations

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    image, mask = sitk.ReadImage(image_path), sitk.ReadImage(mask_path)
    base = _reset_peak()
    start = time.perf_counter()
    if "LoG" in case:
        sigma = 1.5 if "1.5" in case else 3.0
        outputs = imageoperations.getLoGImage(image, mask, sigma=[sigma])
    else:
        outputs = imageoperations.getWaveletImage(image, mask, wavelet="coif1", level=1)
    n = 0
    for filtered, _name, _kwargs in outputs:
        sitk.GetArrayViewFromImage(filtered)  # materialised, as feature extraction would
        n += 1
    return {"seconds": time.perf_counter() - start, "base_mb": base, "peak_mb": _peak_mb(), "maps": n}


# --------------------------------------------------------------------------------------------------------------------
# Driver


def _child(args: list[str], python: str) -> dict:
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS="1")
    done = subprocess.run([python, str(Path(__file__).resolve()), *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(HERE / "out" / "bench_filters.json"))
    parser.add_argument("--cases", nargs="*", help="substrings of case names to run (default: all)")
    parser.add_argument("--child", nargs=4, metavar=("TOOL", "CASE", "IMAGE", "MASK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        tool, case, image_path, mask_path = args.child
        if tool == "pyradiomics":
            result = run_pyradiomics(case, image_path, mask_path)
        else:
            result = run_radflow(case, image_path, mask_path, prepare_only=(tool == "radflow-prepare"))
        print(json.dumps(result))
        return

    image_path, mask_path = write_data()
    wanted = lambda name: not args.cases or any(c.lower() in name.lower() for c in args.cases)  # noqa: E731
    plan = [("radflow", c) for c in RADFLOW_CASES if wanted(c)]
    plan += [("radflow-prepare", c) for c in PREPARE_CASES if wanted(c)]
    peers_present = PEER_PYTHON.exists()
    if peers_present:
        plan += [("pyradiomics", c) for c in PEER_CASES if wanted(c)]
    results = []
    print(f"{'tool':16s} {'case':55s} {'seconds':>8s} {'filter MB':>10s} {'peak MB':>8s}")
    for tool, case in plan:
        python = str(PEER_PYTHON) if tool == "pyradiomics" else sys.executable
        result = _child(["--child", tool, case, str(image_path), str(mask_path)], python)
        result.update(tool=tool, case=case)
        results.append(result)
        if "error" in result:
            print(f"{tool:16s} {case:55s} ERROR {result['error']}")
        else:
            print(f"{tool:16s} {case:55s} {result['seconds']:8.2f} {result['peak_mb'] - result['base_mb']:10.0f} "
                  f"{result['peak_mb']:8.0f}", flush=True)
    if not peers_present:
        print(f"note: {PEER_PYTHON} is absent (benchmarks/setup_peers.sh makes it): PyRadiomics cases skipped")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"image": "512x512x300 int16, 0.8x0.8x2.5 mm", "results": results}, indent=1))


if __name__ == "__main__":
    main()
