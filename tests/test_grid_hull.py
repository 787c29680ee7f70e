"""The exact integer convex hull (``features.grid_hull``) against qhull (``scipy.spatial.ConvexHull``)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import ConvexHull

from radflow.features import mesh as meshes
from radflow.features.grid_hull import integer_hull


def _check_against_qhull(grid: np.ndarray, scale: np.ndarray) -> None:
    points = grid * scale
    reference = ConvexHull(points)
    vertices, facets, normals, volume, area = integer_hull(grid, scale)
    np.testing.assert_array_equal(vertices, reference.vertices)  # the same corners, in input order
    assert volume == pytest.approx(reference.volume, rel=1e-13)
    assert area == pytest.approx(reference.area, rel=1e-13)
    corners = points[vertices]
    # every triangle is a face of the hull: all corners on or below its plane, its normal unit and outward
    centre = corners.mean(axis=0)
    for triangle, normal in zip(facets, normals):
        assert np.linalg.norm(normal) == pytest.approx(1.0, rel=1e-14)
        a, b, c = corners[triangle]
        np.testing.assert_allclose(np.cross(b - a, c - a) / np.linalg.norm(np.cross(b - a, c - a)), normal,
                                   atol=1e-12)
        assert np.dot(normal, a - centre) > 0
        assert np.max((corners - a) @ normal) <= 1e-9 * np.abs(corners).max()
    # the triangles close up: every edge is used once in each direction
    edges = {(int(t[k]), int(t[(k + 1) % 3])) for t in facets for k in range(3)}
    assert len(edges) == 3 * len(facets)
    assert all((b, a) in edges for a, b in edges)


@pytest.mark.parametrize("seed", range(6))
def test_random_lattice_points_give_qhulls_hull(seed):
    """Small integer lattices: coplanar faces, collinear edges and interior face points everywhere."""
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, rng.integers(2, 9), size=(rng.integers(8, 300), 3))
    grid = np.unique(grid, axis=0)
    if np.linalg.matrix_rank(grid[1:] - grid[0]) < 3:
        pytest.skip("flat draw")
    _check_against_qhull(grid, rng.choice([0.4, 0.5, 1.0, 1.25], size=3))


def test_box_lattice_has_the_eight_corners_only():
    grid = np.argwhere(np.ones((3, 4, 5), dtype=bool))
    vertices, facets, _, volume, area = integer_hull(grid, np.array([1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(grid[vertices].min(axis=0), [0, 0, 0])
    assert len(vertices) == 8 and len(facets) == 12
    assert volume == pytest.approx(2 * 3 * 4, rel=1e-15)
    assert area == pytest.approx(2 * (2 * 3 + 2 * 4 + 3 * 4), rel=1e-15)


def test_faces_of_many_lattice_points_give_qhulls_hull():
    """A cut cube lattice: faces of 100+ points each, ordered by the merge sort rather than the insertion sort."""
    grid = np.argwhere(np.ones((12, 13, 11), dtype=bool))
    grid = grid[grid.sum(axis=1) <= 24]
    _check_against_qhull(grid, np.array([2.5, 0.8, 0.7]))


@pytest.mark.parametrize("seed", range(4))
def test_mask_mesh_hull_is_qhulls_hull_of_all_vertices(seed):
    rng = np.random.default_rng(100 + seed)
    z, y, x = np.mgrid[:14, :17, :15]
    blob = ((z - 7) / 6.0) ** 2 + ((y - 8) / 7.5) ** 2 + ((x - 7) / 5.0) ** 2 < 1 + 0.3 * rng.random((14, 17, 15))
    spacing = (2.5, 0.8, 0.7)
    surface = meshes.roi_mesh(blob, spacing)
    reference = ConvexHull(surface.vertices)
    np.testing.assert_array_equal(surface.hull.points, surface.vertices[reference.vertices])
    assert surface.hull.volume == pytest.approx(reference.volume, rel=1e-13)
    assert surface.hull.area == pytest.approx(reference.area, rel=1e-13)


@pytest.mark.parametrize("points", [
    [[0, 0, 0]] * 5,
    [[0, 0, 0], [1, 1, 1], [2, 2, 2], [3, 3, 3]],
    [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [2, 3, 0]],
])
def test_degenerate_point_sets_are_refused(points):
    with pytest.raises(ValueError, match="no 3D convex hull"):
        integer_hull(np.array(points), np.ones(3))
