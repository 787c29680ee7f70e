"""Discovery and ingest throughput beside a plain pydicom loop over the same files (the floor).

Two inputs, written once into a temporary folder (page cache warm, as on a second pass over an archive):
- one CT series of 300 slices of 512 x 512 (16-bit, ~150 MB);
- a folder tree of 10,000 small files: 100 patients x 2 series x 50 slices of 64 x 64, nested like a PACS export.

Timed: ``discovery.scan`` (header inventory, grouping, rules, links) against ``pydicom.dcmread(stop_before_pixels)``
per file; ``series.load_series`` (read, geometry checks, sort, rescale, volume) against ``dcmread`` + ``pixel_array``
per file. Run: ``.venv/bin/python benchmarks/bench_ingest.py [--repeat 3] [--workdir DIR]``.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom

from radflow.dicom import discovery, write
from radflow.dicom.series import load_series


def series_attrs(patient: int, series: int) -> dict:
    return {
        "PatientID": f"BENCH{patient:05d}", "PatientName": "Bench^Mark", "StudyInstanceUID": f"2.25.{patient + 1}",
        "SeriesInstanceUID": f"2.25.{10**6 + patient * 10 + series}", "FrameOfReferenceUID": f"2.25.{2 * 10**6 + patient}",
        "SeriesNumber": series + 1, "SeriesDate": "20240101", "SeriesTime": f"10{series:02d}00", "StudyDate": "20240101",
        "Manufacturer": "bench", "SliceThickness": "1", "KVP": "120",
    }


def write_series(folder: Path, patient: int, series: int, n_slices: int, size: int, rng) -> list[Path]:
    attrs = series_attrs(patient, series)
    paths = []
    for k in range(n_slices):
        stored = rng.integers(0, 2000, size=(size, size), dtype=np.int16)
        ds = write.ct_image(attrs, sop_instance_uid=f"{attrs['SeriesInstanceUID']}.{k + 1}", instance_number=k + 1,
                            position_xyz=(-100.0, -100.0, k * 1.0), pixel_spacing_rc=(0.7, 0.7), stored=stored)
        paths.append(write.save(ds, folder / f"IM{k:05d}"))
    return paths


def timed(function, repeat: int) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = function()
        best = min(best, time.perf_counter() - start)
    return best, value


def floor_headers(files: list[Path]) -> int:
    return sum(1 for f in files if pydicom.dcmread(f, stop_before_pixels=True) is not None)


def floor_pixels(files: list[Path]) -> int:
    return sum(pydicom.dcmread(f).pixel_array.size for f in files)


def report(name: str, n_files: int, megabytes: float, seconds: float, floor: float) -> None:
    print(f"{name:<44} {seconds:8.3f} s  {n_files / seconds:9.0f} files/s  {megabytes / seconds:7.0f} MB/s"
          f"  {seconds / floor:5.2f}x floor")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        root = Path(tmp)
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        big = write_series(root / "big" / "series", 0, 0, 300, 512, rng)
        tree_files = []
        for patient in range(100):
            for series in range(2):
                folder = root / "tree" / f"P{patient:05d}" / "20240101" / f"S{series:03d}"
                tree_files += write_series(folder, patient, series, 50, 64, rng)
        print(f"wrote {len(big)} + {len(tree_files)} files in {time.perf_counter() - start:.1f} s")
        big_mb = sum(p.stat().st_size for p in big) / 1e6
        tree_mb = sum(p.stat().st_size for p in tree_files) / 1e6

        print(f"\n300-slice 512x512 series ({big_mb:.0f} MB), best of {args.repeat}")
        floor_h, _ = timed(lambda: floor_headers(big), args.repeat)
        floor_p, _ = timed(lambda: floor_pixels(big), args.repeat)
        report("floor: dcmread(stop_before_pixels) loop", len(big), big_mb, floor_h, floor_h)
        report("floor: dcmread + pixel_array loop", len(big), big_mb, floor_p, floor_p)
        seconds, inventory = timed(lambda: discovery.scan(root / "big"), args.repeat)
        assert len(inventory.series) == 1 and inventory.series[0].n_slices == 300
        report("discovery.scan", len(big), big_mb, seconds, floor_h)
        seconds, volume = timed(lambda: load_series(inventory.series[0].files), args.repeat)
        assert volume.image.GetSize() == (512, 512, 300)
        report("load_series (checks, sort, rescale, volume)", len(big), big_mb, seconds, floor_p)

        print(f"\n10,000-file tree: 200 series of 50 slices 64x64 ({tree_mb:.0f} MB), best of {args.repeat}")
        floor_h, _ = timed(lambda: floor_headers(tree_files), args.repeat)
        floor_p, _ = timed(lambda: floor_pixels(tree_files), args.repeat)
        report("floor: dcmread(stop_before_pixels) loop", len(tree_files), tree_mb, floor_h, floor_h)
        report("floor: dcmread + pixel_array loop", len(tree_files), tree_mb, floor_p, floor_p)
        seconds, inventory = timed(lambda: discovery.scan(root / "tree"), args.repeat)
        assert len(inventory.series) == 200
        report("discovery.scan", len(tree_files), tree_mb, seconds, floor_h)
        seconds, _ = timed(lambda: [load_series(s.files) for s in inventory.series], args.repeat)
        report("load_series x 200", len(tree_files), tree_mb, seconds, floor_p)


if __name__ == "__main__":
    main()
