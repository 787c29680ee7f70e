"""One feature-extraction tool on one image and mask, run by ``bench_features.py`` in that tool's own environment.

Tools: ``radflow`` (radflow's .venv), ``pyradiomics`` and ``mirp`` (benchmarks/.venv-peers), ``pictologics``
(benchmarks/.venv-peers-py312). Modes:

- ``warm``: import, read the image and mask once, extract once untimed (kernel compilation / cache load), then time
  up to ``--repeats`` extractions (stopping early once ``--budget`` seconds are spent) and print one JSON line with
  the times. radflow also times ``prepare`` and each family's ``compute`` on the prepared RoiData.
- ``once``: what a pipeline job does: import, read, extract, write the CSV (``feature,value``). The caller times the
  whole process.

Threads are the caller's business (NUMBA_NUM_THREADS, OMP_NUM_THREADS, ... in the environment).

    python peer_driver.py TOOL warm|once IMAGE MASK [--settings YAML] [--repeats N] [--budget S] [--csv OUT]
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
import time
from pathlib import Path

BIN_WIDTH = 25.0
FBS_LOWER_BOUND = -1000.0  # CT: bins start at air, as MIRP's and Pictologics' CT defaults do
# MIRP works on the whole volume unless told to crop; 10 mm keeps the 6.2 mm local-intensity sphere inside the crop.
MIRP_CROP_MM = 10.0


# ---------------------------------------------------------------------------------------------------------------------
# Each tool: load(image_path, mask_path, settings) -> state; extract(state) -> {feature: value}


class Radflow:
    def __init__(self, settings_path: str | None):
        import radflow.extraction  # noqa: F401  (what `radflow extract` imports)
        import radflow.io  # noqa: F401
        from radflow.features import engine
        from radflow.settings import Settings

        self.settings = Settings.from_yaml(settings_path) if settings_path else Settings.from_dict({})
        for family in self.settings["families"]:  # imported here so that the first extraction is cache load + work
            engine.family_module(family)

    def load(self, image_path: str, mask_path: str):
        from radflow.io import read_image, read_mask

        image = read_image(Path(image_path))
        return image, read_mask(Path(mask_path), image)

    def extract(self, loaded) -> dict[str, float]:
        # the columns `radflow extract` writes (extract_pair would add a pandas DataFrame, and itertuples over it
        # ~2 ms at 5 k voxels: harness cost, not extraction)
        from radflow.extraction import extract_columns

        table = extract_columns(*loaded, self.settings)
        return {f"{code}|{aggregation}": value
                for code, aggregation, value in zip(table["ibsi_code"], table["aggregation"], table["value"])}

    def family_times(self, loaded, repeats: int) -> dict[str, float]:
        """Median CPU seconds of ``prepare`` and of each configured family's ``compute`` on the prepared ROI (CPU
        time: single-threaded, and less disturbed than wall time by other processes on the machine)."""
        from radflow.features import engine
        from radflow.imaging.preprocess import prepare

        times: dict[str, list[float]] = {"prepare": []}
        for _ in range(repeats):
            c0 = time.process_time()
            roi = prepare(*loaded, self.settings)
            times["prepare"].append(time.process_time() - c0)
            for family in self.settings["families"]:
                module = engine.family_module(family)
                c0 = time.process_time()
                module.compute(roi, self.settings)
                times.setdefault(family, []).append(time.process_time() - c0)
        return {k: statistics.median(v) for k, v in times.items()}


class PyRadiomics:
    """PyRadiomics 3.0.1 with its defaults (bin width 25, no resampling, 3D, all 7 default feature classes)."""

    def __init__(self, settings_path: str | None):
        import logging

        import radiomics
        from radiomics import featureextractor

        radiomics.setVerbosity(logging.ERROR)
        self.extractor = featureextractor.RadiomicsFeatureExtractor()

    def load(self, image_path: str, mask_path: str):
        import SimpleITK as sitk

        return sitk.ReadImage(image_path), sitk.ReadImage(mask_path)

    def extract(self, loaded) -> dict[str, float]:
        result = self.extractor.execute(*loaded)
        return {k.removeprefix("original_"): float(v) for k, v in result.items() if not k.startswith("diagnostics_")}


class Mirp:
    """MIRP: all IBSI families, fixed bin size 25 HU from -1000 HU (its CT default), 3D merged / 3D aggregation,
    image cropped to the ROI plus 10 mm (MIRP's default is no crop: 37 s for the 5 k-voxel ROI on this CT)."""

    def __init__(self, settings_path: str | None):
        import mirp  # noqa: F401  (import cost belongs to the import, not to the first extraction)

    def load(self, image_path: str, mask_path: str):
        return image_path, mask_path  # MIRP reads its input itself on every call

    def extract(self, loaded) -> dict[str, float]:
        from mirp import extract_features

        image_path, mask_path = loaded
        tables = extract_features(
            image=image_path, mask=mask_path, image_modality="CT", base_feature_families="all",
            base_discretisation_method="fixed_bin_size", base_discretisation_bin_width=BIN_WIDTH,
            crop_around_roi=True, crop_distance=MIRP_CROP_MM, export_features=True, write_features=False,
        )
        row = tables[0].iloc[0]
        return {str(k): float(v) for k, v in row.items() if _is_number(v)}


class Pictologics:
    """Pictologics: every IBSI family (with local and spatial intensity), FBS 25 HU from -1000 HU, no resampling."""

    CONFIG = "bench_fbs25"

    def __init__(self, settings_path: str | None):
        from pictologics import RadiomicsPipeline, set_num_threads

        set_num_threads(1)
        self.pipeline = RadiomicsPipeline(load_standard=False)
        self.pipeline.add_config(self.CONFIG, [
            {"step": "discretise", "params": {"method": "FBS", "bin_width": BIN_WIDTH, "min_val": FBS_LOWER_BOUND}},
            {"step": "extract_features", "params": {
                "families": ["intensity", "morphology", "texture", "histogram", "ivh"],
                "include_spatial_intensity": True, "include_local_intensity": True}},
        ])

    def load(self, image_path: str, mask_path: str):
        from pictologics import load_image

        return load_image(image_path), load_image(mask_path)

    def extract(self, loaded) -> dict[str, float]:
        result = self.pipeline.run(*loaded, config_names=[self.CONFIG])[self.CONFIG]
        return {str(k): float(v) for k, v in result.items() if _is_number(v)}


TOOLS = {"radflow": Radflow, "pyradiomics": PyRadiomics, "mirp": Mirp, "pictologics": Pictologics}


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def write_csv(features: dict[str, float], path: str) -> None:
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["feature", "value"])
        for name, value in features.items():
            out.writerow([name, repr(value)])


def run_warm(tool, args) -> dict:
    t0 = time.perf_counter()
    loaded = tool.load(args.image, args.mask)
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    features = tool.extract(loaded)
    first_s = time.perf_counter() - t0
    times: list[float] = []
    cpu_times: list[float] = []  # process CPU seconds: single-threaded, so close to wall time on an idle machine
    spent = 0.0
    while len(times) < args.repeats and (not times or spent < args.budget):
        t0, c0 = time.perf_counter(), time.process_time()
        tool.extract(loaded)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
        spent += times[-1]
    report = {"read_s": read_s, "first_s": first_s, "times": times, "median_s": statistics.median(times),
              "cpu_times": cpu_times, "median_cpu_s": statistics.median(cpu_times),
              "n_features": len(features), "n_finite": sum(math.isfinite(v) for v in features.values())}
    if isinstance(tool, Radflow):
        report["family_s"] = tool.family_times(loaded, max(1, min(len(times), 5)))
    if args.csv:
        write_csv(features, args.csv)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tool", choices=sorted(TOOLS))
    parser.add_argument("mode", choices=["warm", "once"])
    parser.add_argument("image")
    parser.add_argument("mask")
    parser.add_argument("--settings", help="radflow settings YAML")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=30.0, help="stop repeating after this many seconds")
    parser.add_argument("--csv", help="write the features here")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    tool = TOOLS[args.tool](args.settings)
    import_s = time.perf_counter() - t0
    if args.mode == "once":
        features = tool.extract(tool.load(args.image, args.mask))
        if args.csv:
            write_csv(features, args.csv)
        return 0
    report = run_warm(tool, args)
    report["import_s"] = import_s
    print("BENCH " + json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
