"""radflow's binary marching cubes against scikit-image's Lewiner marching cubes, which it replaces: the table of
per-configuration triangulations is re-derived from skimage, and whole meshes (vertices, their order, faces) must be
identical."""
from __future__ import annotations

import numpy as np
import pytest

from radflow.features import marching_cubes as mc
from radflow.features.mesh import bounding_box, roi_mesh

measure = pytest.importorskip("skimage.measure")


def _edge_of(doubled_offset: tuple[int, int, int]) -> int:
    return mc.EDGE_MIDPOINTS_X2.index(doubled_offset)


def _skimage_triangulation(config: int) -> str:
    """The edges skimage's triangles pass through for one cube configuration, in the order it adds them."""
    if config in (0, 255):
        return "-"
    cube = np.zeros((2, 2, 2), dtype=np.float32)
    for corner, (z, y, x) in enumerate(mc.CORNER_OFFSETS):
        cube[z, y, x] = config >> corner & 1
    vertices, faces, _, _ = measure.marching_cubes(cube, 0.5)
    edges = [_edge_of(tuple(int(round(2 * c)) for c in v)) for v in vertices]
    return "".join("0123456789abc"[edges[i]] for face in faces for i in face[::-1])


def test_triangulation_table_is_skimages():
    assert mc.TRIANGULATIONS == [_skimage_triangulation(config) for config in range(256)]


def test_random_masks_give_skimages_mesh_exactly():
    rng = np.random.default_rng(7)
    for _ in range(100):
        shape = tuple(int(n) for n in rng.integers(1, 8, 3))
        padded = np.pad(rng.random(shape) < rng.uniform(0.2, 0.9), 1)
        spacing = tuple(float(s) for s in rng.uniform(0.3, 3.0, 3))
        if not padded.any():
            continue
        expected_vertices, expected_faces, _, _ = measure.marching_cubes(padded.astype(np.float32), 0.5,
                                                                         spacing=spacing)
        vertices, faces = mc.marching_cubes(padded, spacing)
        np.testing.assert_array_equal(vertices, expected_vertices)
        np.testing.assert_array_equal(faces, expected_faces)


def test_roi_mesh_volume_and_area_match_numpy_on_skimages_mesh():
    """A lobulated blob: mesh volume and area by the compensated numba sums against numpy on skimage's mesh."""
    z, y, x = np.mgrid[:30, :40, :50]
    mask = ((z - 15) / 12.0) ** 2 + ((y - 20) / 17.0) ** 2 + ((x - 25) / 21.0) ** 2 + 0.1 * np.sin(x / 3.0) < 1.0
    spacing = (2.5, 0.8, 0.7)
    mesh = roi_mesh(mask, spacing)
    padded = np.pad(mask[bounding_box(mask)], 1).astype(np.float32)
    vertices, faces, _, _ = measure.marching_cubes(padded, 0.5, spacing=spacing)
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    assert mesh.volume == pytest.approx(abs(np.einsum("ij,ij->", a, np.cross(b, c))) / 6.0, rel=1e-13)
    assert mesh.area == pytest.approx(0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum(), rel=1e-13)


def test_hull_of_the_line_extremes_is_the_hull_of_all_vertices():
    """``Mesh.hull`` runs qhull on the first and last vertex of every axis-parallel line only: the hull vertex array
    (points and order), volume and area must be qhull's for all vertices."""
    from scipy.spatial import ConvexHull

    rng = np.random.default_rng(11)
    for trial in range(30):
        shape = tuple(int(n) for n in rng.integers(3, 20, 3))
        z, y, x = np.indices(shape)
        radii = rng.uniform(0.3, 0.6, 3) * np.array(shape)
        blob = sum(((c - n / 2) / r) ** 2 for c, n, r in zip((z, y, x), shape, radii)) + 0.3 * rng.standard_normal(shape)
        mask = rng.random(shape) < 0.5 if trial % 3 == 0 else blob < 1.0
        if not mask.any():
            continue
        spacing = tuple(float(s) for s in rng.uniform(0.5, 3.0, 3))
        mesh = roi_mesh(mask, spacing)
        everything = ConvexHull(mesh.vertices)
        np.testing.assert_array_equal(mesh.hull.points, mesh.vertices[everything.vertices])
        assert mesh.hull.volume == pytest.approx(everything.volume, rel=1e-13)
        assert mesh.hull.area == pytest.approx(everything.area, rel=1e-13)
