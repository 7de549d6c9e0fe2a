"""The numba kernels of the triplet seeder (ACTS's grid triplet seeding, pixels).

All numba code of the seeder lives in this one module on purpose: numba's on-disk cache
keys a compiled function on its own source file only, so a kernel calling functions from
other modules would keep running stale code after those modules change.

Arithmetic is float32 and every cut is ACTS's, in ACTS's order (pyacts 48.1:
``DoubletSeedFinder``, ``TripletSeedFinder``, ``BroadTripletSeedFilter``,
``TripletSeeder``), so the seeds equal ACTS's on the same space points.

**Doublets.**
For a middle space point M and candidates O (bottom: ``rO < rM``, top: ``rO > rM``),
sorted by radius, a doublet is kept when (all in float32, as ACTS):

- ``deltaRMin <= deltaR <= deltaRMax`` (``deltaR = |rM - rO|``; the radius sort turns
  these into a start cursor and a break);
- ``deltaZMin <= deltaZ <= deltaZMax`` (``deltaZ`` signed outwards);
- the straight line through O and M meets the beam line inside the collision region:
  ``collisionRegionMin <= z0 <= collisionRegionMax`` with ``z0 = zM - rM deltaZ / deltaR``;
- ``|cot theta| = |deltaZ / deltaR| <= cotThetaMax``;
- with ``interactionPointCut``: where the doublet's transverse impact parameter estimate
  ``|rM yNew / xNew|`` exceeds ``impactMax``, the circle through the doublet tangent to
  the ``impactMax`` cylinder must be larger than the ``minPt`` helix.

Each doublet stores what the triplet step needs: the conformal coordinates ``u = x' /
(x'^2 + y'^2)``, ``v = y' / (x'^2 + y'^2)`` of O in the frame of M (x' radial, y'
azimuthal), ``cot theta``, ``1 / deltaR_xy`` and the squared error of ``cot theta`` from
the space points' variances.

**Triplets.**
For a bottom doublet B-M and each top doublet M-T (tops sorted by ``cot theta``), in float32
as ACTS:

1. **r-z slope** with multiple scattering: ``(cotB - cotT)^2 <= error2 + scat2``, where
   ``error2`` propagates the space points' variances (with the correlation through M) and
   ``scat2 = (sigmaScattering * theta0(minPt))^2 * (1 + cotB^2)`` is the Highland
   (Lynch-Dahl) scattering angle at ``minPt`` for ``radLengthPerSeed`` radiation lengths,
   converted from pT to p by ``1 / sin^2 theta``.
2. **Helix**: in the conformal u-v plane of M the circle through B, M, T is the straight
   line ``v = A u + B``; its diameter ``sqrt(1 + A^2) / |B|`` must exceed the ``minPt`` helix
   diameter ``2 minPt / (0.3 B_z)`` (times ``helixCutTolerance``).
3. The slope cut again with the scattering of the *measured* curvature:
   ``(cotB - cotT)^2 <= error2 + (B^2 / (1 + A^2)) * sigmapT2perRadius * (1 + cotB^2)``.
4. **Impact parameter**: ``d0 ~ |(A - B rM) rM| <= impactMax``.

Tops whose slope is too small for this bottom stay too small for the following bottoms
(larger ``cot theta``), so the top range start moves forward (ACTS's ``sortedByCotTheta``).

**Filter.**
Per bottom-middle pair, each compatible top T gets a weight

    w = -impactWeightFactor * d0 + compatSeedWeight * N_compatible
        (+ seedWeightIncrement if N_compatible > numSeedIncrement)

where ``N_compatible`` counts the other tops (at most ``compatSeedLimit``) with a similar
curvature (``|1/D - 1/D_T| <= deltaInvHelixDiameter``) at a different radius (``|r - r_T|
>= deltaRMin``, and ``deltaRMin`` apart from each other): a second track-like top confirms
the seed. Every candidate goes to the middle space point's collector, which keeps the
``maxSeedsPerSpM + 1`` heaviest (a newcomer must be strictly heavier than the lightest to
replace it). Once all bottoms are done the collector's seeds leave, heaviest first, with
their weight as quality and ``z0 = zM - rM cot(theta_B)`` as vertex z.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Indices into the float32 parameter vector (``SeedingConfig.kernel_params``): the
#: kernels' signatures stay short.
DR_MIN_BOTTOM = 0
DR_MAX_BOTTOM = 1
DR_MIN_TOP = 2
DR_MAX_TOP = 3
DZ_MIN = 4
DZ_MAX = 5
COLL_MIN = 6
COLL_MAX = 7
COT_THETA_MAX = 8
IMPACT_MAX = 9
MIN_HELIX_DIAMETER2 = 10
SIGMA_PT2_PER_RADIUS = 11
MULTIPLE_SCATTERING2 = 12
DELTA_INV_HELIX_DIAMETER = 13
FILTER_DELTA_R_MIN = 14
COMPAT_SEED_WEIGHT = 15
IMPACT_WEIGHT_FACTOR = 16
SEED_WEIGHT_INCREMENT = 17
NUM_SEED_INCREMENT = 18
N_PARAMS = 19

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_TWO = np.float32(2.0)

# -- doublets ---------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _out_of_range(value: np.float32, lo: np.float32, hi: np.float32) -> bool:
    return value < lo or value > hi


@njit(cache=True, inline="always")
def _candidate_end(
    bottom: bool,
    rm: np.float32,
    start: int,
    end: int,
    r: np.ndarray,
    dr_min: np.float32,
    dr_max: np.float32,
) -> int:
    """First candidate of ``start:end`` (sorted by r) past the radial window: bottom
    ``rM - rO < deltaRMin``, top ``rO - rM > deltaRMax`` (ACTS's loop break), by bisection
    on the same float32 expression."""
    lo, hi = start, end
    while lo < hi:
        mid = (lo + hi) // 2
        past = (rm - r[mid] < dr_min) if bottom else (r[mid] - rm > dr_max)
        if past:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True, inline="always")
def find_doublets(
    bottom: bool,
    xm: np.float32,
    ym: np.float32,
    zm: np.float32,
    rm: np.float32,
    var_zm: np.float32,
    var_rm: np.float32,
    cos_phi_m: np.float32,
    sin_phi_m: np.float32,
    u_ip: np.float32,
    u_ip2: np.float32,
    start: int,
    end: int,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    r: np.ndarray,
    var_z: np.ndarray,
    var_r: np.ndarray,
    prm: np.ndarray,
    ip_cut: bool,
    mask: np.ndarray,
    out_index: np.ndarray,
    out_cot: np.ndarray,
    out_idr: np.ndarray,
    out_er: np.ndarray,
    out_u: np.ndarray,
    out_v: np.ndarray,
    n_out: int,
) -> int:
    """Append the compatible doublets of candidates ``start:end`` (sorted by r) to the
    ``out_*`` arrays from position ``n_out``; returns the new count.

    ``bottom`` selects the direction; ``start`` must already skip the candidates beyond
    ``deltaRMax`` (bottom) or within ``deltaRMin`` (top), as ACTS's cursors do. The cheap
    cuts (z distance, collision region, cot theta) run first as one branch-free pass that
    the compiler vectorises (``mask``: uint8 scratch); the accepted set is the same as
    with ACTS's early ``continue``s since every cut is a pure condition.
    """
    if bottom:
        dr_min = prm[DR_MIN_BOTTOM]
        dr_max = prm[DR_MAX_BOTTOM]
        impact_max = -prm[IMPACT_MAX]
        sign = np.float32(-1.0)
    else:
        dr_min = prm[DR_MIN_TOP]
        dr_max = prm[DR_MAX_TOP]
        impact_max = prm[IMPACT_MAX]
        sign = np.float32(1.0)
    dz_min = prm[DZ_MIN]
    dz_max = prm[DZ_MAX]
    coll_min = prm[COLL_MIN]
    coll_max = prm[COLL_MAX]
    cot_max = prm[COT_THETA_MAX]
    if ip_cut:
        cot_max = np.float32(np.inf)  # applied after the impact-parameter cut below
    min_helix_d2 = prm[MIN_HELIX_DIAMETER2]
    v_ip_abs = impact_max * u_ip2
    stop = _candidate_end(bottom, rm, start, end, r, dr_min, dr_max)
    n = stop - start
    # deltaR = sign * (rO - rM), deltaZ = sign * (zO - zM): exact negations of ACTS's
    # rM - rO and zM - zO for bottoms.
    for i in range(n):
        j = start + i
        delta_r = sign * (r[j] - rm)
        delta_z = sign * (z[j] - zm)
        z_origin_dr = zm * delta_r - rm * delta_z
        mask[i] = (
            (not delta_z < dz_min)
            & (not delta_z > dz_max)
            & (not z_origin_dr < coll_min * delta_r)
            & (not z_origin_dr > coll_max * delta_r)
            & (not delta_z < -cot_max * delta_r)
            & (not delta_z > cot_max * delta_r)
        )
    for i in range(n):
        if not mask[i]:
            continue
        j = start + i
        delta_x = x[j] - xm
        delta_y = y[j] - ym
        x_new = delta_x * cos_phi_m + delta_y * sin_phi_m
        y_new = delta_y * cos_phi_m - delta_x * sin_phi_m
        delta_r2 = delta_x * delta_x + delta_y * delta_y
        i_delta_r2 = _ONE / delta_r2
        u_t = x_new * i_delta_r2
        v_t = y_new * i_delta_r2
        delta_z = sign * (z[j] - zm)
        if ip_cut:
            delta_r = sign * (r[j] - rm)
            if abs(rm * y_new) > impact_max * x_new:
                # The interaction point sits at u = -1/rM, v ~ +-impactMax/rM^2.
                v_ip = -v_ip_abs if y_new > _ZERO else v_ip_abs
                a_coef = (v_t - v_ip) / (u_t - u_ip)
                b_coef = v_ip - a_coef * u_ip
                if (b_coef * b_coef) * min_helix_d2 > _ONE + a_coef * a_coef:
                    continue
            cm = prm[COT_THETA_MAX]
            if _out_of_range(delta_z, -cm * delta_r, cm * delta_r):
                continue
        i_delta_r = np.sqrt(i_delta_r2)
        cot_theta = delta_z * i_delta_r
        er = i_delta_r2 * ((var_zm + var_z[j]) + (cot_theta * cot_theta) * (var_rm + var_r[j]))
        out_index[n_out] = j
        out_cot[n_out] = cot_theta
        out_idr[n_out] = i_delta_r
        out_er[n_out] = er
        out_u[n_out] = u_t
        out_v[n_out] = v_t
        n_out += 1
    return n_out


# -- filter -----------------------------------------------------------------------------


@njit(cache=True)
def collector_push(
    col_b: np.ndarray,
    col_t: np.ndarray,
    col_w: np.ndarray,
    col_z: np.ndarray,
    n_col: int,
    capacity: int,
    b: int,
    t: int,
    w: np.float32,
    z0: np.float32,
) -> int:
    """Offer a seed to the collector (``capacity`` slots); returns its new size."""
    if capacity == 0:
        return n_col
    if n_col < capacity:
        col_b[n_col] = b
        col_t[n_col] = t
        col_w[n_col] = w
        col_z[n_col] = z0
        return n_col + 1
    lightest = 0
    for i in range(1, n_col):
        if col_w[i] < col_w[lightest]:
            lightest = i
    if w <= col_w[lightest]:
        return n_col
    col_b[lightest] = b
    col_t[lightest] = t
    col_w[lightest] = w
    col_z[lightest] = z0
    return n_col


@njit(cache=True)
def filter_top_candidates(
    zm: np.float32,
    rm: np.float32,
    cot_b: np.float32,
    b_index: int,
    n_cand: int,
    cand_top: np.ndarray,
    cand_curv: np.ndarray,
    cand_impact: np.ndarray,
    top_sp: np.ndarray,
    r: np.ndarray,
    z: np.ndarray,
    prm: np.ndarray,
    compat_limit: int,
    use_delta_r: bool,
    col_b: np.ndarray,
    col_t: np.ndarray,
    col_w: np.ndarray,
    col_z: np.ndarray,
    n_col: int,
    capacity: int,
    compat_r: np.ndarray,
    order: np.ndarray,
    top_r: np.ndarray,
) -> int:
    """Weigh the top candidates of one bottom doublet and offer them to the collector.

    Args:
        zm, rm: middle space point.
        cot_b: the bottom doublet's ``cot theta``.
        b_index: the bottom space point (grid row).
        n_cand, cand_top, cand_curv, cand_impact: the triplet candidates (top doublet
            position, signed inverse helix diameter, impact parameter).
        top_sp: grid row of each top doublet.
        r, z: space point radii and z (grid order).
        prm: kernel parameters; compat_limit: ``compatSeedLimit``.
        use_delta_r: ``useDeltaRinsteadOfTopRadius``.
        col_*, n_col, capacity: the middle space point's collector.
        compat_r, order, top_r: scratch (``compat_limit + 1``, ``n_cand``, ``n_cand``).

    Returns:
        The collector's new size.
    """
    if n_cand < 1:
        return n_col
    z_origin = zm - rm * cot_b
    d_inv = prm[DELTA_INV_HELIX_DIAMETER]
    dr_min = prm[FILTER_DELTA_R_MIN]
    compat_w = prm[COMPAT_SEED_WEIGHT]
    impact_w = prm[IMPACT_WEIGHT_FACTOR]
    incr_w = prm[SEED_WEIGHT_INCREMENT]
    incr_n = prm[NUM_SEED_INCREMENT]
    # Candidates by curvature: insertion sort (a handful per bottom doublet).
    for i in range(n_cand):
        c = cand_curv[i]
        j = i
        while j > 0 and cand_curv[order[j - 1]] > c:
            order[j] = order[j - 1]
            j -= 1
        order[j] = i
        sp = top_sp[cand_top[i]]
        if use_delta_r:
            dr = r[sp] - rm
            dz = z[sp] - zm
            top_r[i] = np.sqrt(dr * dr + dz * dz)
        else:
            top_r[i] = r[sp]
    begin = 0
    for p in range(n_cand):
        ti = order[p]
        n_compat = 0
        curv = cand_curv[ti]
        lower = curv - d_inv
        upper = curv + d_inv
        current_r = top_r[ti]
        impact = cand_impact[ti]
        weight = -impact * impact_w
        for q in range(begin, n_cand):
            ci = order[q]
            if ci == ti:
                continue
            other_r = top_r[ci]
            if cand_curv[ci] < lower:
                begin = q + 1
                continue
            if cand_curv[ci] > upper:
                break
            if abs(current_r - other_r) < dr_min:
                continue
            new_compat = True
            for s in range(n_compat):
                if abs(compat_r[s] - other_r) < dr_min:
                    new_compat = False
                    break
            if new_compat:
                compat_r[n_compat] = other_r
                n_compat += 1
                weight += compat_w
            if n_compat >= compat_limit:
                break
        if n_compat > incr_n:
            weight += incr_w
        n_col = collector_push(
            col_b, col_t, col_w, col_z, n_col, capacity,
            b_index, top_sp[cand_top[ti]], weight, z_origin,
        )  # fmt: skip
    return n_col


# -- triplets ---------------------------------------------------------------------------


@njit(cache=True)
def combine_triplets(
    zm: np.float32,
    rm: np.float32,
    var_zm: np.float32,
    var_rm: np.float32,
    n_bottom: int,
    b_order: np.ndarray,
    b_idx: np.ndarray,
    b_cot: np.ndarray,
    b_idr: np.ndarray,
    b_er: np.ndarray,
    b_u: np.ndarray,
    b_v: np.ndarray,
    n_top: int,
    t_idx: np.ndarray,
    t_cot: np.ndarray,
    t_idr: np.ndarray,
    t_er: np.ndarray,
    t_u: np.ndarray,
    t_v: np.ndarray,
    r: np.ndarray,
    z: np.ndarray,
    prm: np.ndarray,
    compat_limit: int,
    use_delta_r: bool,
    cand_top: np.ndarray,
    cand_curv: np.ndarray,
    cand_impact: np.ndarray,
    cand_order: np.ndarray,
    cand_r: np.ndarray,
    compat_r: np.ndarray,
    col_b: np.ndarray,
    col_t: np.ndarray,
    col_w: np.ndarray,
    col_z: np.ndarray,
    capacity: int,
) -> int:
    """Triplets of one middle space point, filtered into its collector.

    Args:
        zm, rm, var_zm, var_rm: the middle space point.
        n_bottom, b_order, b_*: bottom doublets and their order by ``cot theta``.
        n_top, t_*: top doublets, sorted by ``cot theta``.
        r, z: space point radii and z (grid order).
        prm, compat_limit, use_delta_r: kernel parameters.
        cand_*, compat_r: scratch for the candidates of one bottom doublet.
        col_*, capacity: the collector (:mod:`lhcml.seeding.filter`).

    Returns:
        The number of seeds in the collector.
    """
    sigma_pt2_per_radius = prm[SIGMA_PT2_PER_RADIUS]
    ms2 = prm[MULTIPLE_SCATTERING2]
    min_helix_d2 = prm[MIN_HELIX_DIAMETER2]
    impact_max = prm[IMPACT_MAX]
    n_col = 0
    top_begin = 0
    for kb in range(n_bottom):
        if top_begin >= n_top:
            break
        bo = b_order[kb]
        cot_b = b_cot[bo]
        er_b = b_er[bo]
        idr_b = b_idr[bo]
        u_b = b_u[bo]
        v_b = b_v[bo]
        i_sin_theta2 = _ONE + cot_b * cot_b
        sigma2_pt = i_sin_theta2 * sigma_pt2_per_radius
        scat2 = ms2 * i_sin_theta2
        n_cand = 0
        offset = 0
        for t in range(top_begin, n_top):
            cot_t = t_cot[t]
            cot_avg2 = cot_b * cot_t
            error2 = (t_er[t] + er_b) + ((_TWO * (cot_avg2 * var_rm + var_zm)) * idr_b) * t_idr[t]
            d_cot = cot_b - cot_t
            d_cot2 = d_cot * d_cot
            if d_cot2 > error2 + scat2:
                if cot_b < cot_t:
                    break
                offset = t - top_begin + 1
                continue
            d_u = t_u[t] - u_b
            if d_u == _ZERO:
                continue
            a = (t_v[t] - v_b) / d_u
            s2 = _ONE + a * a
            b = v_b - a * u_b
            b2 = b * b
            if s2 < b2 * min_helix_d2:
                continue
            i_helix_d2 = b2 / s2
            p2_scatter = i_helix_d2 * sigma2_pt
            if d_cot2 > error2 + p2_scatter:
                if cot_b < cot_t:
                    break
                offset = t - top_begin
                continue
            im = abs((a - b * rm) * rm)
            if im > impact_max:
                continue
            cand_top[n_cand] = t
            cand_curv[n_cand] = b / np.sqrt(s2)
            cand_impact[n_cand] = im
            n_cand += 1
        # Tops left behind stay incompatible with the following (steeper) bottoms.
        top_begin += offset
        if n_cand > 0:
            n_col = filter_top_candidates(
                zm, rm, cot_b, b_idx[bo], n_cand, cand_top, cand_curv, cand_impact,
                t_idx, r, z, prm, compat_limit, use_delta_r,
                col_b, col_t, col_w, col_z, n_col, capacity, compat_r, cand_order, cand_r,
            )  # fmt: skip
    return n_col


# -- driver -----------------------------------------------------------------------------


@njit(cache=True)
def _grow(a: np.ndarray, n: int) -> np.ndarray:
    out = np.empty(max(2 * len(a), n), a.dtype)
    out[: len(a)] = a
    return out


@njit(cache=True)
def _order_by_value(
    values: np.ndarray,
    n: int,
    keys: np.ndarray,
    tmp: np.ndarray,
    out: np.ndarray,
    count: np.ndarray,
) -> np.ndarray:
    """Positions of ``values[:n]`` (float32) in increasing order, by an LSD radix sort.

    The float's bits made monotonic as unsigned integers are sorted in four stable
    8-bit passes: about 5x faster than a comparison sort for the few hundred doublets
    of a middle space point, and allocation-free (``keys``: uint32 scratch, ``tmp`` and
    ``out``: int64 scratch, ``count``: 256 int64). Up to 48 values (hashing buckets) an
    insertion sort is faster. Returns ``out`` or ``tmp``. Both sorts are stable, so equal
    values keep their doublet order (ACTS's sort is not stable: ties, which need equal
    float32 ``cot theta``, could come out in another order there).
    """
    if n <= 48:
        # Small inputs: insertion sort beats the radix passes' fixed cost (stable too).
        for i in range(n):
            v = values[i]
            j = i
            while j > 0 and values[out[j - 1]] > v:
                out[j] = out[j - 1]
                j -= 1
            out[j] = i
        return out
    bits = values[:n].view(np.uint32)
    for i in range(n):
        u = bits[i]
        u = ~u if u & np.uint32(2147483648) else u | np.uint32(2147483648)
        keys[i] = u
        out[i] = i
    src, dst = out, tmp
    for shift in range(0, 32, 8):
        count[:] = 0
        for i in range(n):
            count[(keys[src[i]] >> np.uint32(shift)) & np.uint32(255)] += 1
        total = 0
        for b in range(256):
            c = count[b]
            count[b] = total
            total += c
        for i in range(n):
            k = (keys[src[i]] >> np.uint32(shift)) & np.uint32(255)
            dst[count[k]] = src[i]
            count[k] += 1
        src, dst = dst, src
    return src


@njit(cache=True)
def _lower_bound(r: np.ndarray, lo: int, hi: int, value: np.float32) -> int:
    """First index in ``lo:hi`` (sorted r) with ``r >= value``."""
    while lo < hi:
        mid = (lo + hi) // 2
        if r[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def seed_kernel(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    r: np.ndarray,
    var_r: np.ndarray,
    var_z: np.ndarray,
    bin_start: np.ndarray,
    n_groups: int,
    n_bins: int,
    n_phi: int,
    middle_bins: np.ndarray,
    bottom_ptr: np.ndarray,
    bottom_bins: np.ndarray,
    top_ptr: np.ndarray,
    top_bins: np.ndarray,
    r_middle: np.ndarray,
    prm: np.ndarray,
    ip_cut: bool,
    max_seeds_per_spm: int,
    compat_limit: int,
    use_delta_r: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeds of every group: ``(bottom, middle, top, quality, z_vertex)`` in grid rows."""
    n = len(x)
    dr_max_bottom = prm[DR_MAX_BOTTOM]
    dr_min_top = prm[DR_MIN_TOP]
    # Scratch: doublets of one middle space point (at most every space point).
    b_idx = np.empty(n, np.int64)
    b_cot = np.empty(n, np.float32)
    b_idr = np.empty(n, np.float32)
    b_er = np.empty(n, np.float32)
    b_u = np.empty(n, np.float32)
    b_v = np.empty(n, np.float32)
    t_idx = np.empty(n, np.int64)
    t_cot = np.empty(n, np.float32)
    t_idr = np.empty(n, np.float32)
    t_er = np.empty(n, np.float32)
    t_u = np.empty(n, np.float32)
    t_v = np.empty(n, np.float32)
    # Top doublets sorted by cot(theta), contiguous for the triplet loop.
    s_idx = np.empty(n, np.int64)
    s_cot = np.empty(n, np.float32)
    s_idr = np.empty(n, np.float32)
    s_er = np.empty(n, np.float32)
    s_u = np.empty(n, np.float32)
    s_v = np.empty(n, np.float32)
    keys = np.empty(n, np.uint32)
    mask = np.empty(n, np.uint8)
    sort_a = np.empty(n, np.int64)
    sort_b = np.empty(n, np.int64)
    sort_c = np.empty(n, np.int64)
    sort_d = np.empty(n, np.int64)
    count = np.empty(256, np.int64)
    cand_top = np.empty(n, np.int64)
    cand_curv = np.empty(n, np.float32)
    cand_impact = np.empty(n, np.float32)
    cand_order = np.empty(n, np.int64)
    cand_r = np.empty(n, np.float32)
    capacity = max_seeds_per_spm + 1
    col_b = np.empty(capacity, np.int64)
    col_t = np.empty(capacity, np.int64)
    col_w = np.empty(capacity, np.float32)
    col_z = np.empty(capacity, np.float32)
    compat_r = np.empty(compat_limit + 1, np.float32)
    max_nb = 0
    for i in range(len(bottom_ptr) - 1):
        max_nb = max(max_nb, bottom_ptr[i + 1] - bottom_ptr[i], top_ptr[i + 1] - top_ptr[i])
    b_cur = np.empty(max_nb, np.int64)
    b_end = np.empty(max_nb, np.int64)
    t_cur = np.empty(max_nb, np.int64)
    t_end = np.empty(max_nb, np.int64)
    # Output, grown on demand.
    cap = max(1024, n // 2)
    o_b = np.empty(cap, np.int64)
    o_m = np.empty(cap, np.int64)
    o_t = np.empty(cap, np.int64)
    o_q = np.empty(cap, np.float32)
    o_z = np.empty(cap, np.float32)
    n_out = 0
    for g in range(n_groups):
        base = g * n_bins
        for mb in middle_bins:
            m0 = bin_start[base + mb]
            m1 = bin_start[base + mb + 1]
            if m0 == m1:
                continue
            iz = mb // n_phi
            r_mid_lo = r_middle[iz, 0]
            r_mid_hi = r_middle[iz, 1]
            # Cursors: binary search from the first middle space point, then forward only.
            r_first = r[m0]
            nbb = bottom_ptr[mb + 1] - bottom_ptr[mb]
            for k in range(nbb):
                gb = base + bottom_bins[bottom_ptr[mb] + k]
                b_end[k] = bin_start[gb + 1]
                b_cur[k] = _lower_bound(r, bin_start[gb], b_end[k], r_first - dr_max_bottom)
            ntb = top_ptr[mb + 1] - top_ptr[mb]
            for k in range(ntb):
                gb = base + top_bins[top_ptr[mb] + k]
                t_end[k] = bin_start[gb + 1]
                t_cur[k] = _lower_bound(r, bin_start[gb], t_end[k], r_first + dr_min_top)
            for im in range(m0, m1):
                rm = r[im]
                if rm < r_mid_lo:
                    continue
                if rm > r_mid_hi:
                    break
                xm = x[im]
                ym = y[im]
                zm = z[im]
                vzm = var_z[im]
                vrm = var_r[im]
                u_ip = -_ONE / rm
                cos_phi = -xm * u_ip
                sin_phi = -ym * u_ip
                u_ip2 = u_ip * u_ip
                # Top doublets.
                nt = 0
                for k in range(ntb):
                    c = t_cur[k]
                    while c < t_end[k] and not (r[c] - rm >= dr_min_top):
                        c += 1
                    t_cur[k] = c
                    nt = find_doublets(
                        False, xm, ym, zm, rm, vzm, vrm, cos_phi, sin_phi, u_ip, u_ip2,
                        c, t_end[k], x, y, z, r, var_z, var_r, prm, ip_cut, mask,
                        t_idx, t_cot, t_idr, t_er, t_u, t_v, nt,
                    )  # fmt: skip
                if nt == 0:
                    continue
                # Bottom doublets.
                nb = 0
                for k in range(nbb):
                    c = b_cur[k]
                    while c < b_end[k] and not (rm - r[c] <= dr_max_bottom):
                        c += 1
                    b_cur[k] = c
                    nb = find_doublets(
                        True, xm, ym, zm, rm, vzm, vrm, cos_phi, sin_phi, u_ip, u_ip2,
                        c, b_end[k], x, y, z, r, var_z, var_r, prm, ip_cut, mask,
                        b_idx, b_cot, b_idr, b_er, b_u, b_v, nb,
                    )  # fmt: skip
                if nb == 0:
                    continue
                b_order = _order_by_value(b_cot, nb, keys, sort_a, sort_b, count)
                t_order = _order_by_value(t_cot, nt, keys, sort_c, sort_d, count)
                for k in range(nt):
                    q = t_order[k]
                    s_idx[k] = t_idx[q]
                    s_cot[k] = t_cot[q]
                    s_idr[k] = t_idr[q]
                    s_er[k] = t_er[q]
                    s_u[k] = t_u[q]
                    s_v[k] = t_v[q]
                n_col = combine_triplets(
                    zm, rm, vzm, vrm, nb, b_order, b_idx, b_cot, b_idr, b_er, b_u, b_v,
                    nt, s_idx, s_cot, s_idr, s_er, s_u, s_v, r, z, prm, compat_limit,
                    use_delta_r, cand_top, cand_curv, cand_impact, cand_order, cand_r,
                    compat_r, col_b, col_t, col_w, col_z, capacity,
                )  # fmt: skip
                if n_col == 0:
                    continue
                # Heaviest first (insertion sort of at most maxSeedsPerSpM + 1).
                for i in range(n_col):
                    j = i
                    while j > 0 and col_w[cand_order[j - 1]] < col_w[i]:
                        cand_order[j] = cand_order[j - 1]
                        j -= 1
                    cand_order[j] = i
                if n_out + n_col > len(o_b):
                    o_b = _grow(o_b, n_out + n_col)
                    o_m = _grow(o_m, n_out + n_col)
                    o_t = _grow(o_t, n_out + n_col)
                    o_q = _grow(o_q, n_out + n_col)
                    o_z = _grow(o_z, n_out + n_col)
                for j in range(n_col):
                    i = cand_order[j]
                    o_b[n_out] = col_b[i]
                    o_m[n_out] = im
                    o_t[n_out] = col_t[i]
                    o_q[n_out] = col_w[i]
                    o_z[n_out] = col_z[i]
                    n_out += 1
    return o_b[:n_out], o_m[:n_out], o_t[:n_out], o_q[:n_out], o_z[:n_out]
