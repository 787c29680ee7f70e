"""Convex hull of points with integer coordinates (a mask mesh's half-voxel grid), exact, in one compiled call.

Quickhull (Barber, Dobkin & Huhdanpaa 1996): a tetrahedron, then per facet the farthest point of its outside set
is added, the facets it sees are replaced by a cone from their horizon, and their outside points are shared out
among the new facets. Every orientation test is an int64 determinant (coordinates up to 2^17 half-voxels keep them
exact), so coplanar and collinear points, the rule on a voxel grid rather than the exception, need no tolerance:
a point is outside a facet only if strictly above its plane.

The triangles of such a hull may still have vertices that are no corner of the polytope (a point that was a corner
when added and later fell into a face or onto an edge). So the result is rebuilt face by face: the triangles are
grouped by their reduced integer normal (one group per polygonal face of a convex polytope), each face's corners
are the 2D convex hull of its vertices (collinear points dropped) and it is fanned from its first corner. The hull's
points are then exactly the polytope's corners, in input order, as qhull (``scipy.spatial.ConvexHull``) returns
them; facets, normals, volume and area describe the same polytope with a different triangulation of its faces.
"""
from __future__ import annotations

import math

import numpy as np

from radflow.compiled import kernel
from radflow.features.sorting import row_order

# |coordinate| bound that keeps every determinant within int64: normals ~ 8 c^2, plane offsets ~ 24 c^3.
MAX_COORDINATE = 1 << 17


def integer_hull(grid: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Convex hull of the rows of ``grid`` (n, 3) int64 whose world coordinates are ``grid * scale``.

    Returns (vertex indices into ``grid``, ascending; triangles as indices into that vertex list, counter-clockwise
    seen from outside; unit outward normals per triangle in world units; volume; area)."""
    grid = np.ascontiguousarray(grid, dtype=np.int64)
    if grid.shape[0] < 4:
        raise ValueError("a 3D convex hull needs at least 4 points")
    origin = grid.min(axis=0)
    shifted = grid - origin
    if int(shifted.max()) >= MAX_COORDINATE:
        raise ValueError(f"grid coordinates span more than {MAX_COORDINATE}: int64 predicates could overflow")
    return _integer_hull(shifted, np.ascontiguousarray(scale, dtype=np.float64))


@kernel()
def _integer_hull(g, scale):
    facets, normals = _quickhull(g)
    return _faces(g, facets, normals, scale)


@kernel(inline="always")
def _above(g, normal, offset, p) -> int:
    return normal[0] * g[p, 0] + normal[1] * g[p, 1] + normal[2] * g[p, 2] - offset


@kernel()
def _plane(g, a, b, c, normal):
    """Writes (b - a) x (c - a) into ``normal``; returns the plane offset normal . a."""
    u0, u1, u2 = g[b, 0] - g[a, 0], g[b, 1] - g[a, 1], g[b, 2] - g[a, 2]
    w0, w1, w2 = g[c, 0] - g[a, 0], g[c, 1] - g[a, 1], g[c, 2] - g[a, 2]
    normal[0] = u1 * w2 - u2 * w1
    normal[1] = u2 * w0 - u0 * w2
    normal[2] = u0 * w1 - u1 * w0
    return normal[0] * g[a, 0] + normal[1] * g[a, 1] + normal[2] * g[a, 2]


@kernel()
def _initial_simplex(g):
    """Four affinely independent points: the lowest, the farthest from it, the farthest from their line, the
    farthest from their plane (ties to the lower index)."""
    n = g.shape[0]
    i0 = 0
    for i in range(1, n):
        if (g[i, 0], g[i, 1], g[i, 2]) < (g[i0, 0], g[i0, 1], g[i0, 2]):
            i0 = i
    i1, best = -1, 0
    for i in range(n):
        d = (g[i, 0] - g[i0, 0]) ** 2 + (g[i, 1] - g[i0, 1]) ** 2 + (g[i, 2] - g[i0, 2]) ** 2
        if d > best:
            i1, best = i, d
    if i1 < 0:
        raise ValueError("all points coincide: no 3D convex hull")
    normal = np.zeros(3, dtype=np.int64)
    i2, best = -1, 0
    for i in range(n):
        _plane(g, i0, i1, i, normal)
        d = normal[0] ** 2 + normal[1] ** 2 + normal[2] ** 2
        if d > best:
            i2, best = i, d
    if i2 < 0:
        raise ValueError("all points are collinear: no 3D convex hull")
    offset = _plane(g, i0, i1, i2, normal)
    i3, best = -1, 0
    for i in range(n):
        d = abs(_above(g, normal, offset, i))
        if d > best:
            i3, best = i, d
    if i3 < 0:
        raise ValueError("all points are coplanar: no 3D convex hull")
    if _above(g, normal, offset, i3) > 0:  # orient (i0, i1, i2) so that i3 lies below it
        i1, i2 = i2, i1
    return i0, i1, i2, i3


@kernel()
def _grow(facets, neighbours, normals, offsets, alive, head):
    cap = facets.shape[0] * 2
    f2 = np.empty((cap, 3), dtype=np.int64)
    n2 = np.empty((cap, 3), dtype=np.int64)
    m2 = np.empty((cap, 3), dtype=np.int64)
    o2 = np.empty(cap, dtype=np.int64)
    a2 = np.zeros(cap, dtype=np.bool_)
    h2 = np.full(cap, -1, dtype=np.int64)
    # element by element: numba's slice assignment (broadcasting and its error messages) took 3 s to compile
    for i in range(facets.shape[0]):
        for j in range(3):
            f2[i, j] = facets[i, j]
            n2[i, j] = neighbours[i, j]
            m2[i, j] = normals[i, j]
        o2[i] = offsets[i]
        a2[i] = alive[i]
        h2[i] = head[i]
    return f2, n2, m2, o2, a2, h2


@kernel()
def _quickhull(g):
    """Triangles (m, 3) of the hull of ``g``, counter-clockwise from outside, and their integer normals (m, 3)."""
    n = g.shape[0]
    cap = 64
    facets = np.empty((cap, 3), dtype=np.int64)
    neighbours = np.empty((cap, 3), dtype=np.int64)  # neighbours[f, k]: across edge facets[f, k] -> facets[f, k + 1]
    normals = np.empty((cap, 3), dtype=np.int64)
    offsets = np.empty(cap, dtype=np.int64)
    alive = np.zeros(cap, dtype=np.bool_)
    head = np.full(cap, -1, dtype=np.int64)  # outside set of each facet: a linked list through ``following``
    following = np.full(n, -1, dtype=np.int64)

    i0, i1, i2, i3 = _initial_simplex(g)
    tetra = ((i0, i1, i2), (i0, i3, i1), (i1, i3, i2), (i2, i3, i0))
    for f in range(4):
        a, b, c = tetra[f]
        facets[f, 0], facets[f, 1], facets[f, 2] = a, b, c
        offsets[f] = _plane(g, a, b, c, normals[f])
        alive[f] = True
    for f in range(4):  # the neighbour across edge (a, b) is the facet holding edge (b, a)
        for k in range(3):
            a, b = facets[f, k], facets[f, (k + 1) % 3]
            for h in range(4):
                for j in range(3):
                    if facets[h, j] == b and facets[h, (j + 1) % 3] == a:
                        neighbours[f, k] = h
    count = 4
    for p in range(n):
        if p == i0 or p == i1 or p == i2 or p == i3:
            continue
        for f in range(4):
            if _above(g, normals[f], offsets[f], p) > 0:
                following[p] = head[f]
                head[f] = p
                break

    visible = np.zeros(cap, dtype=np.bool_)
    stack = np.empty(cap, dtype=np.int64)
    seen = np.empty(cap, dtype=np.int64)
    horizon_a = np.empty(3 * cap, dtype=np.int64)
    horizon_b = np.empty(3 * cap, dtype=np.int64)
    horizon_out = np.empty(3 * cap, dtype=np.int64)
    by_start = np.full(n, -1, dtype=np.int64)
    by_end = np.full(n, -1, dtype=np.int64)
    f = 0
    while f < count:
        if not alive[f] or head[f] < 0:
            f += 1
            continue
        # the farthest outside point (ties: the first in the list)
        apex, best = -1, 0
        q = head[f]
        while q >= 0:
            d = _above(g, normals[f], offsets[f], q)
            if d > best:
                apex, best = q, d
            q = following[q]
        if visible.size < facets.shape[0]:
            visible = np.zeros(facets.shape[0], dtype=np.bool_)
            stack = np.empty(facets.shape[0], dtype=np.int64)
            seen = np.empty(facets.shape[0], dtype=np.int64)
            horizon_a = np.empty(3 * facets.shape[0], dtype=np.int64)
            horizon_b = np.empty(3 * facets.shape[0], dtype=np.int64)
            horizon_out = np.empty(3 * facets.shape[0], dtype=np.int64)
        # the facets the apex sees: a connected region around f
        n_seen, top, n_horizon = 0, 0, 0
        visible[f] = True
        stack[top] = f
        top += 1
        while top > 0:
            top -= 1
            v = stack[top]
            seen[n_seen] = v
            n_seen += 1
            for k in range(3):
                w = neighbours[v, k]
                if visible[w]:
                    continue
                if _above(g, normals[w], offsets[w], apex) > 0:
                    visible[w] = True
                    stack[top] = w
                    top += 1
        for s in range(n_seen):
            v = seen[s]
            for k in range(3):
                w = neighbours[v, k]
                if not visible[w]:
                    horizon_a[n_horizon] = facets[v, k]
                    horizon_b[n_horizon] = facets[v, (k + 1) % 3]
                    horizon_out[n_horizon] = w
                    n_horizon += 1
        # the cone from the horizon to the apex
        while count + n_horizon > facets.shape[0]:
            facets, neighbours, normals, offsets, alive, head = _grow(facets, neighbours, normals, offsets, alive,
                                                                      head)
        first_new = count
        for e in range(n_horizon):
            t = count
            count += 1
            a, b, w = horizon_a[e], horizon_b[e], horizon_out[e]
            facets[t, 0], facets[t, 1], facets[t, 2] = a, b, apex
            offsets[t] = _plane(g, a, b, apex, normals[t])
            alive[t] = True
            head[t] = -1
            neighbours[t, 0] = w
            for j in range(3):
                if facets[w, j] == b and facets[w, (j + 1) % 3] == a:
                    neighbours[w, j] = t
            by_start[a] = t
            by_end[b] = t
        for t in range(first_new, count):
            neighbours[t, 1] = by_start[facets[t, 1]]
            neighbours[t, 2] = by_end[facets[t, 0]]
        # share out the outside points of the facets that went
        for s in range(n_seen):
            v = seen[s]
            alive[v] = False
            visible[v] = False
            q = head[v]
            while q >= 0:
                nxt = following[q]
                if q != apex:
                    for t in range(first_new, count):
                        if _above(g, normals[t], offsets[t], q) > 0:
                            following[q] = head[t]
                            head[t] = q
                            break
                q = nxt
            head[v] = -1
        f += 1
    m = 0
    for f in range(count):
        if alive[f]:
            m += 1
    out = np.empty((m, 3), dtype=np.int64)
    out_normals = np.empty((m, 3), dtype=np.int64)
    m = 0
    for f in range(count):
        if alive[f]:
            for j in range(3):
                out[m, j] = facets[f, j]
                out_normals[m, j] = normals[f, j]
            m += 1
    return out, out_normals


@kernel()
def _gcd(a: int, b: int) -> int:
    a, b = abs(a), abs(b)
    while b:
        a, b = b, a % b
    return a


@kernel()
def _faces(g, triangles, normals, scale):
    """The polytope's corners (ascending), its faces fanned from their corners, unit world normals, volume, area."""
    m = triangles.shape[0]
    reduced = np.empty((m, 3), dtype=np.int64)
    for f in range(m):
        d = _gcd(_gcd(normals[f, 0], normals[f, 1]), normals[f, 2])
        for k in range(3):
            reduced[f, k] = normals[f, k] // d
    order = row_order(reduced)

    n = g.shape[0]
    corner = np.zeros(n, dtype=np.bool_)
    in_face = np.zeros(n, dtype=np.bool_)
    members = np.empty(n, dtype=np.int64)
    fans = np.empty((2 * n, 3), dtype=np.int64)  # a polytope with c corners has at most 2c - 4 triangles
    fan_normals = np.empty((2 * n, 3), dtype=np.float64)
    ring_order = np.empty(n, dtype=np.int64)  # scratch of _ring_2d, allocated once for all faces
    ring = np.empty(2 * n + 1, dtype=np.int64)
    n_fans = 0
    start = 0
    while start < m:
        stop = start + 1
        while stop < m and (reduced[order[stop], 0] == reduced[order[start], 0]
                            and reduced[order[stop], 1] == reduced[order[start], 1]
                            and reduced[order[stop], 2] == reduced[order[start], 2]):
            stop += 1
        # the face's vertices, projected on the two axes other than its normal's largest component
        k = 0
        for idx in range(start, stop):
            for j in range(3):
                v = triangles[order[idx], j]
                if not in_face[v]:
                    in_face[v] = True
                    members[k] = v
                    k += 1
        nrm = reduced[order[start]]
        drop = 0
        for axis in range(1, 3):
            if abs(nrm[axis]) > abs(nrm[drop]):
                drop = axis
        size = _ring_2d(g, members, k, (drop + 1) % 3, (drop + 2) % 3, ring_order, ring)
        if nrm[drop] < 0:  # counter-clockwise in (u, v) is counter-clockwise seen from +axis `drop`
            for j in range(size // 2):
                ring[j], ring[size - 1 - j] = ring[size - 1 - j], ring[j]
        wx, wy, wz = nrm[0] / scale[0], nrm[1] / scale[1], nrm[2] / scale[2]
        length = math.sqrt(wx * wx + wy * wy + wz * wz)
        for j in range(size):
            corner[ring[j]] = True
        for j in range(1, size - 1):
            fans[n_fans, 0], fans[n_fans, 1], fans[n_fans, 2] = ring[0], ring[j], ring[j + 1]
            fan_normals[n_fans, 0], fan_normals[n_fans, 1], fan_normals[n_fans, 2] = wx / length, wy / length, wz / length
            n_fans += 1
        for j in range(k):
            in_face[members[j]] = False
        start = stop

    vertices = np.flatnonzero(corner)
    renumber = np.full(n, -1, dtype=np.int64)
    for i in range(vertices.size):
        renumber[vertices[i]] = i
    out = np.empty((n_fans, 3), dtype=np.int64)
    # volume from tetrahedra on the first corner, area from the triangles, in world units
    o0, o1, o2 = g[vertices[0], 0] * scale[0], g[vertices[0], 1] * scale[1], g[vertices[0], 2] * scale[2]
    volume, area = 0.0, 0.0
    for t in range(n_fans):
        a, b, c = fans[t, 0], fans[t, 1], fans[t, 2]
        out[t, 0], out[t, 1], out[t, 2] = renumber[a], renumber[b], renumber[c]
        a0, a1, a2 = g[a, 0] * scale[0] - o0, g[a, 1] * scale[1] - o1, g[a, 2] * scale[2] - o2
        b0, b1, b2 = g[b, 0] * scale[0] - o0, g[b, 1] * scale[1] - o1, g[b, 2] * scale[2] - o2
        c0, c1, c2 = g[c, 0] * scale[0] - o0, g[c, 1] * scale[1] - o1, g[c, 2] * scale[2] - o2
        volume += a0 * (b1 * c2 - b2 * c1) + a1 * (b2 * c0 - b0 * c2) + a2 * (b0 * c1 - b1 * c0)
        u0, u1, u2 = b0 - a0, b1 - a1, b2 - a2
        w0, w1, w2 = c0 - a0, c1 - a1, c2 - a2
        x0, x1, x2 = u1 * w2 - u2 * w1, u2 * w0 - u0 * w2, u0 * w1 - u1 * w0
        area += math.sqrt(x0 * x0 + x1 * x1 + x2 * x2)
    return vertices, out, fan_normals[:n_fans].copy(), volume / 6.0, 0.5 * area


# Faces with up to this many points are ordered by insertion sort, larger ones by ``sorting.row_order`` (same order).
RING_INSERTION_SORT_MAX = 64


@kernel()
def _ring_2d(g, points, n, u, v, order, chain) -> int:
    """The corners of the 2D convex hull of ``points[:n]`` on axes (u, v), counter-clockwise, collinear points
    dropped (Andrew's monotone chain, exact integer cross products): written to ``chain[:count]`` (2 n + 1 rows),
    count returned; ``order`` (n) is scratch. The points are ordered by u, then v (then position: a stable
    sort's order), for a face's few points by an insertion sort into the scratch: a face of the hull of a small
    ROI has a handful of points, and numpy's sorts would cost more in allocations than in comparisons."""
    if n <= RING_INSERTION_SORT_MAX:
        for i in range(n):
            pu, pv = g[points[i], u], g[points[i], v]
            j = i
            while j > 0 and (g[points[order[j - 1]], u] > pu
                             or (g[points[order[j - 1]], u] == pu and g[points[order[j - 1]], v] > pv)):
                order[j] = order[j - 1]
                j -= 1
            order[j] = i
    else:
        keys = np.empty((n, 2), dtype=np.int64)
        for i in range(n):
            keys[i, 0], keys[i, 1] = g[points[i], u], g[points[i], v]
        sorted_rows = row_order(keys)
        for i in range(n):
            order[i] = sorted_rows[i]
    k = 0
    for idx in range(n):
        k = _push(g, chain, k, 2, points[order[idx]], u, v)
    lower = k + 1
    for idx in range(n - 2, -1, -1):
        k = _push(g, chain, k, lower, points[order[idx]], u, v)
    return k - 1


@kernel(inline="always")
def _push(g, chain, k, floor, i, u, v):
    while k >= floor:
        o, a = chain[k - 2], chain[k - 1]
        cross = (g[a, u] - g[o, u]) * (g[i, v] - g[o, v]) - (g[a, v] - g[o, v]) * (g[i, u] - g[o, u])
        if cross > 0:
            break
        k -= 1
    chain[k] = i
    return k + 1
