"""Topoclustering on hand-built cell grids, and against a pure-Python reference implementation."""

from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector_sim import clustering
from detector_sim.clustering import cluster_kinematics, topoclusters
from detector_sim.geometry import LAYERS, N_CELLS, cell_centre
from gnnjets.base.kinematics import delta_phi


def cluster(cells: dict, **thresholds) -> dict:
    """Cluster ``{(layer, ieta, iphi): energy}`` with sigma = 1 (energy = significance)."""
    keys = list(cells)
    layer, ieta, iphi = np.array(keys, dtype=np.int64).T
    labels = topoclusters(layer, ieta, iphi, np.array([cells[k] for k in keys], dtype=float), np.ones(len(keys)),
                          **thresholds)
    return dict(zip(keys, labels.tolist()))


def members(labels: dict, index: int) -> set:
    return {cell for cell, label in labels.items() if label == index}


# ----------------------------------------------------------------------------- growth rules

def test_seed_grows_through_grow_cells_and_stops_at_boundary_cells():
    cells = {
        (0, 100, 50): 6.0,   # seed
        (0, 101, 50): 3.0,   # grow, next to the seed
        (0, 102, 50): 2.5,   # grow, next to the grow cell: the cluster keeps growing
        (0, 103, 50): 1.0,   # boundary next to a grow cell: joins
        (0, 104, 50): 1.9,   # beyond the boundary cell: boundary cells do not grow
        (0, 100, 51): 0.5,   # boundary next to the seed
        (0, 100, 52): 1.9,   # beyond that boundary cell
        (0, 99, 49): -1.5,   # diagonal neighbour, negative energy: joins by |E|
        (0, 99, 50): 0.0,    # next to the seed but no energy: boundary threshold is s > 0
        (0, 100, 49): 2.0,   # exactly 2 sigma: a boundary cell (grow needs s > 2)
        (0, 100, 48): 1.5,   # beyond it
        (0, 106, 50): 3.0,   # grow-level cells without a seed make no cluster
        (0, 107, 50): 4.0,
    }
    labels = cluster(cells)
    assert members(labels, 0) == {(0, 100, 50), (0, 101, 50), (0, 102, 50), (0, 103, 50), (0, 100, 51),
                                  (0, 99, 49), (0, 100, 49)}
    assert set(labels.values()) == {0, -1}


def test_seeds_connected_by_grow_cells_merge():
    cells = {(0, 10, 10): 5.0, (0, 11, 10): 3.0, (0, 12, 11): 2.1, (0, 13, 11): 2.5, (0, 14, 12): 8.0,
             (0, 15, 12): 1.0}
    assert set(cluster(cells).values()) == {0}


def test_seed_next_to_a_seed_merges():
    assert set(cluster({(4, 10, 10): 5.0, (4, 11, 11): 6.0, (5, 5, 5): 7.0}).values()) == {0}


@pytest.mark.parametrize("between", [1.5, 2.0, -2.0])
def test_seeds_separated_by_a_boundary_cell_stay_apart(between):
    labels = cluster({(0, 10, 10): 5.0, (0, 11, 10): between, (0, 12, 10): 7.0})
    # both seeds reach the boundary cell in the first generation: the more significant wins
    assert labels == {(0, 12, 10): 0, (0, 11, 10): 0, (0, 10, 10): 1}


def test_boundary_cell_goes_to_the_cluster_reaching_it_first():
    cells = {(0, 10, 10): 9.0, (0, 11, 10): 3.0, (0, 12, 10): 3.0, (0, 13, 10): 3.0,  # 9-sigma seed, 3 steps away
             (0, 14, 10): 1.0,  # boundary cell
             (0, 15, 10): 5.0}  # 5-sigma seed right next to it
    labels = cluster(cells)
    assert labels[(0, 14, 10)] == labels[(0, 15, 10)] == 1
    assert members(labels, 0) == {(0, 10, 10), (0, 11, 10), (0, 12, 10), (0, 13, 10)}


def test_cells_below_the_seed_threshold_make_no_cluster():
    cells = {(0, 10, 10): 4.6, (0, 11, 10): 3.0, (0, 40, 40): -4.5, (2, 5, 5): 2.5, (5, 1, 1): 1.0}
    assert set(cluster(cells).values()) == {-1}


def test_no_cells():
    empty = np.array([], dtype=np.int64)
    labels = topoclusters(empty, empty, empty, np.array([]), np.array([]))
    assert labels.dtype == np.int64 and labels.shape == (0,)


def test_negative_energy_seed():
    labels = cluster({(1, 30, 30): -6.0, (1, 30, 31): 3.0, (1, 30, 32): -0.5})
    assert set(labels.values()) == {0}


def test_significance_is_energy_over_sigma():
    # 4 GeV is a seed with sigma 0.5 (8 sigma), not with sigma 1 (4 sigma)
    labels = topoclusters([0, 0], [10, 20], [10, 20], [4.0, 4.0], [0.5, 1.0])
    assert labels.tolist() == [0, -1]


def test_thresholds_are_arguments():
    cells = {(0, 10, 10): 3.5, (0, 11, 10): 1.5, (0, 12, 10): 0.8, (0, 13, 10): 0.3}
    labels = cluster(cells, seed_threshold=3.0, grow_threshold=1.0, boundary_threshold=0.5)
    assert labels == {(0, 10, 10): 0, (0, 11, 10): 0, (0, 12, 10): 0, (0, 13, 10): -1}


# ----------------------------------------------------------------------------- neighbours

def test_phi_wraps_around():
    labels = cluster({(0, 10, 0): 5.0, (0, 10, 255): 1.0, (0, 10, 254): 1.0,
                      (3, 20, 63): 6.0, (3, 21, 0): 1.0})
    assert members(labels, 0) == {(3, 20, 63), (3, 21, 0)}
    assert members(labels, 1) == {(0, 10, 0), (0, 10, 255)}
    assert labels[(0, 10, 254)] == -1


def test_eta_does_not_wrap():
    labels = cluster({(0, 0, 10): 5.0, (0, 255, 10): 1.0, (0, 0, 20): 5.0, (0, 255, 20): 6.0})
    assert labels == {(0, 255, 20): 0, (0, 0, 10): 1, (0, 0, 20): 2, (0, 255, 10): -1}


def test_adjacent_layers_with_equal_granularity():
    labels = cluster({(0, 50, 60): 5.0, (1, 50, 60): 1.0, (1, 51, 60): 1.0, (1, 50, 61): 1.0, (1, 49, 59): 1.0})
    assert members(labels, 0) == {(0, 50, 60), (1, 50, 60)}  # only the overlapping cell, no diagonals


def test_fine_cell_neighbours_the_coarse_cell_containing_it():
    labels = cluster({(1, 21, 40): 5.0, (2, 10, 20): 1.0, (2, 11, 20): 1.0, (2, 10, 21): 1.0, (2, 9, 19): 1.0})
    assert members(labels, 0) == {(1, 21, 40), (2, 10, 20)}


def test_coarse_cell_neighbours_the_fine_cells_inside_it():
    inside = {(1, 20, 40), (1, 21, 40), (1, 20, 41), (1, 21, 41)}
    outside = {(1, 22, 40), (1, 19, 41), (1, 20, 42), (1, 21, 39)}
    labels = cluster({(2, 10, 20): 5.0, **{cell: 1.0 for cell in inside | outside}})
    assert members(labels, 0) == {(2, 10, 20)} | inside


def test_layers_two_apart_are_not_neighbours():
    labels = cluster({(0, 40, 40): 5.0, (2, 20, 20): 1.0, (3, 10, 10): 1.0})
    assert members(labels, 0) == {(0, 40, 40)}


def _overlap(layer_a, ieta_a, iphi_a, layer_b, ieta_b, iphi_b) -> bool:
    """Whether two cells overlap in (eta, phi), from their centres and widths."""
    eta_a, phi_a = cell_centre(layer_a, ieta_a, iphi_a)
    eta_b, phi_b = cell_centre(layer_b, ieta_b, iphi_b)
    a, b = LAYERS[layer_a], LAYERS[layer_b]
    return bool(abs(eta_a - eta_b) < (a.d_eta + b.d_eta) / 2 - 1e-9
                and abs(delta_phi(phi_a, phi_b)) < (a.d_phi + b.d_phi) / 2 - 1e-9)


@pytest.mark.parametrize("seed_layer, other_layer", [(lay, lay + 1) for lay in range(5)] + [(lay + 1, lay) for lay in range(5)])
@pytest.mark.parametrize("where", ["middle", "phi_edge"])
def test_adjacent_layer_neighbours_are_the_overlapping_cells(seed_layer, other_layer, where):
    n_seed, n_other = N_CELLS[seed_layer], N_CELLS[other_layer]
    ieta, iphi = n_seed // 3 + 1, (n_seed // 2 + 1 if where == "middle" else n_seed - 1)
    centre_eta, centre_phi = ieta * n_other // n_seed, iphi * n_other // n_seed
    # boundary-level cells all around the overlap region: they join only where they overlap
    window = {(other_layer, i, j % n_other): 1.0 for i in range(centre_eta - 3, centre_eta + 4)
              for j in range(centre_phi - 3, centre_phi + 4)}
    labels = cluster({(seed_layer, ieta, iphi): 5.0, **window})
    expected = {cell for cell in window if _overlap(seed_layer, ieta, iphi, *cell)}
    assert len(expected) == max(n_other // n_seed, 1) ** 2
    assert members(labels, 0) == {(seed_layer, ieta, iphi)} | expected


# ----------------------------------------------------------------------------- numbering, order, state

def test_clusters_are_numbered_by_decreasing_seed_significance():
    labels = cluster({(0, 10, 10): 5.0, (0, 50, 50): 9.0, (0, 90, 90): -7.0})
    assert labels == {(0, 50, 50): 0, (0, 90, 90): 1, (0, 10, 10): 2}
    # a merged cluster ranks by its most significant seed
    labels = cluster({(3, 10, 10): 6.0, (3, 11, 10): 3.0, (3, 12, 10): 10.0, (3, 30, 30): 8.0})
    assert labels == {(3, 10, 10): 0, (3, 11, 10): 0, (3, 12, 10): 0, (3, 30, 30): 1}


def _noise_window(rng: np.random.Generator, layers=range(6), half_width: int = 2):
    """All cells of ``layers`` in an eta-phi window at the eta edge and across phi = +-pi, with
    Gaussian noise (sigma = 1); ``half_width`` counts cells of the coarsest layer (32)."""
    cells = []
    for lay in layers:
        scale = N_CELLS[lay] // N_CELLS[-1]
        n = N_CELLS[lay]
        cells += [(lay, i, (j - half_width * scale) % n)
                  for i in range(2 * half_width * scale) for j in range(2 * half_width * scale)]
    layer, ieta, iphi = np.array(cells, dtype=np.int64).T
    return layer, ieta, iphi, rng.normal(size=layer.size), np.ones(layer.size)


@pytest.mark.parametrize("seed", [0, 1])
def test_input_order_does_not_matter(seed):
    rng = np.random.default_rng(seed)
    layer, ieta, iphi, energy, sigma = _noise_window(rng, half_width=3)
    thresholds = dict(seed_threshold=2.5, grow_threshold=1.2, boundary_threshold=0.3)
    labels = topoclusters(layer, ieta, iphi, energy, sigma, **thresholds)
    assert labels.max() > 3  # several clusters, so the test means something
    order = rng.permutation(layer.size)
    shuffled = topoclusters(layer[order], ieta[order], iphi[order], energy[order], sigma[order], **thresholds)
    np.testing.assert_array_equal(shuffled, labels[order])


def test_cell_map_is_reset_between_calls_and_after_errors():
    cluster({(0, 10, 10): 5.0, (0, 11, 10): 3.0})
    assert (clustering._CELL_MAP == -1).all()
    # the 3-sigma cell of the previous call must not be seen as a neighbour now
    assert cluster({(0, 10, 10): 5.0, (0, 12, 10): 1.0}) == {(0, 10, 10): 0, (0, 12, 10): -1}
    with pytest.raises(ValueError, match="unique"):
        topoclusters([0, 0, 0], [1, 2, 1], [1, 2, 1], [5.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    assert (clustering._CELL_MAP == -1).all()


# ----------------------------------------------------------------------------- input checks

def _valid():
    return dict(layer=np.array([0, 1]), ieta=np.array([3, 4]), iphi=np.array([5, 6]),
                energy=np.array([1.0, 2.0]), sigma=np.array([0.1, 0.2]))


@pytest.mark.parametrize("field, value, message", [
    ("sigma", [0.1, 0.0], r"'sigma' must be finite and > 0 for every cell; cell 1 has sigma 0.0"),
    ("sigma", [-0.1, 0.1], r"'sigma' must be finite and > 0"),
    ("sigma", [np.nan, 0.1], r"'sigma' must be finite and > 0"),
    ("energy", [1.0, np.inf], r"'energy' must be finite for every cell; cell 1 has energy inf"),
    ("layer", [0, 6], r"'layer' must be in 0..5; cell 1 has layer 6"),
    ("ieta", [3, 256], r"'ieta' must be in 0..255 in layer 1; cell 1 has ieta 256"),
    ("iphi", [-1, 6], r"'iphi' must be in 0..255 in layer 0; cell 0 has iphi -1"),
    ("ieta", [3.0, 4.0], r"'ieta' must be an integer array, not float64"),
    ("energy", ["a", "b"], r"'energy' must be a real-number array, not <U1"),
    ("sigma", [0.1, 0.2, 0.3], r"all cell arrays must have the same length, not .*sigma: 3"),
    ("iphi", [[5, 6]], r"'iphi' must be a 1-D array, not of shape \(1, 2\)"),
])
def test_bad_cells_are_refused_with_the_field_named(field, value, message):
    cells = {**_valid(), field: value}
    with pytest.raises(ValueError, match=message):
        topoclusters(**cells)


def test_ieta_out_of_range_of_a_coarse_layer():
    with pytest.raises(ValueError, match=r"'ieta' must be in 0..31 in layer 5; cell 0 has ieta 32"):
        topoclusters([5], [32], [0], [1.0], [1.0])


def test_duplicate_cells_are_refused():
    with pytest.raises(ValueError, match=r"cells 0 and 2 are both \(layer 1, ieta 3, iphi 4\)"):
        topoclusters([1, 1, 1], [3, 5, 3], [4, 4, 4], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0])


@pytest.mark.parametrize("thresholds", [dict(seed_threshold=1.0), dict(boundary_threshold=-1.0),
                                        dict(grow_threshold=5.0), dict(seed_threshold=np.nan),
                                        dict(grow_threshold="2")])
def test_bad_thresholds_are_refused(thresholds):
    with pytest.raises(ValueError, match="threshold"):
        topoclusters(**_valid(), **thresholds)


# ----------------------------------------------------------------------------- kinematics

def test_cluster_kinematics_by_hand():
    cluster_index = np.array([0, 0, 1, 1, -1])
    energy = np.array([1.0, 3.0, 2.0, -1.0, 100.0])
    eta = np.array([0.1, 0.5, 1.0, -0.5, 2.0])
    phi = np.array([np.pi - 0.1, -np.pi + 0.1, 0.3, 0.3, 0.0])  # cluster 0 straddles phi = +-pi
    layer = np.array([0, 1, 3, 4, 5])
    kinematics = cluster_kinematics(cluster_index, energy, eta, phi, layer)
    np.testing.assert_allclose(kinematics["e"], [4.0, 1.0])
    np.testing.assert_allclose(kinematics["eta"], [(0.1 + 3 * 0.5) / 4, (2 * 1.0 + 1 * -0.5) / 3])
    # sum(w sin) = sin(0.1) - 3 sin(0.1), sum(w cos) = -cos(0.1) - 3 cos(0.1)
    np.testing.assert_allclose(kinematics["phi"], [-np.pi + np.arctan(np.tan(0.1) / 2), 0.3])
    np.testing.assert_allclose(kinematics["pt"], [4.0 / np.cosh(0.4), 1.0 / np.cosh(0.5)])
    np.testing.assert_array_equal(kinematics["n_cells"], [2, 2])
    assert kinematics["n_cells"].dtype == np.int64
    np.testing.assert_allclose(kinematics["e_layer"], [[1, 3, 0, 0, 0, 0], [0, 0, 0, 2, -1, 0]])


def test_cluster_phi_is_wrapped_to_pi():
    kinematics = cluster_kinematics([0], [1.0], [0.0], [-np.pi])
    assert kinematics["phi"][0] == pytest.approx(np.pi)
    assert "e_layer" not in kinematics


def test_cluster_kinematics_without_clusters():
    kinematics = cluster_kinematics([-1, -1], [1.0, 2.0], [0.0, 0.1], [0.0, 0.1], layer=[0, 1])
    assert all(kinematics[key].shape == (0,) for key in ("e", "eta", "phi", "pt", "n_cells"))
    assert kinematics["e_layer"].shape == (0, 6)


def test_cluster_kinematics_of_topoclusters():
    cells = {(2, 60, 10): 5.0, (2, 61, 10): 1.0, (2, 20, 100): 7.0}
    labels = cluster(cells)
    layer, ieta, iphi = np.array(list(labels)).T
    eta, phi = cell_centre(2, ieta, iphi)
    kinematics = cluster_kinematics(list(labels.values()), list(cells.values()), eta, phi, layer)
    np.testing.assert_array_equal(kinematics["n_cells"], [1, 2])
    np.testing.assert_allclose(kinematics["e"], [7.0, 6.0])
    np.testing.assert_allclose(kinematics["eta"][0], eta[2])


@pytest.mark.parametrize("arguments, message", [
    (([0, 1], [1.0], [0.0, 0.0], [0.0, 0.0]), "same length"),
    (([0, -2], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0]), "'cluster_index' must be >= -1"),
    (([0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0]), "'cluster_index' must be an integer array"),
    (([0, 1], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [0, 7]), "'layer' must be in 0..5, not 7"),
])
def test_cluster_kinematics_refuses_bad_input(arguments, message):
    with pytest.raises(ValueError, match=message):
        cluster_kinematics(*arguments)


# ----------------------------------------------------------------------------- reference implementation

def _are_neighbours(a, b) -> bool:
    """The neighbour relation written from the geometry: exact interval overlaps in units of a turn."""
    (layer_a, ieta_a, iphi_a), (layer_b, ieta_b, iphi_b) = a, b
    n_a, n_b = int(N_CELLS[layer_a]), int(N_CELLS[layer_b])
    if layer_a == layer_b:
        return a != b and abs(ieta_a - ieta_b) <= 1 and min((iphi_a - iphi_b) % n_a, (iphi_b - iphi_a) % n_a) <= 1
    if abs(layer_a - layer_b) != 1:
        return False
    # [i_a / n_a, (i_a + 1) / n_a) and [i_b / n_b, (i_b + 1) / n_b) overlap, cross-multiplied
    eta_overlap = ieta_a * n_b < (ieta_b + 1) * n_a and ieta_b * n_a < (ieta_a + 1) * n_b
    phi_overlap = any(iphi_a * n_b < (iphi_b + turn * n_b + 1) * n_a and (iphi_b + turn * n_b) * n_a < (iphi_a + 1) * n_b
                      for turn in (-1, 0, 1))
    return eta_overlap and phi_overlap


def reference_topoclusters(cells, energy, sigma, seed_threshold=4.6, grow_threshold=2.0, boundary_threshold=0.0):
    """Topoclusters by their definition: components of growing cells holding a seed, plus each
    boundary cell given to the cluster of its growing neighbour with the fewest steps to a seed,
    then the highest significance, then the lowest position. Cluster ids are arbitrary."""
    n = len(cells)
    significance = [abs(e) / s for e, s in zip(energy, sigma)]
    adjacent = [[b for b in range(n) if _are_neighbours(cells[a], cells[b])] for a in range(n)]
    growing = [s > grow_threshold for s in significance]
    steps = {a: 0 for a in range(n) if significance[a] > seed_threshold}
    queue = deque(steps)
    while queue:
        a = queue.popleft()
        for b in adjacent[a]:
            if growing[b] and b not in steps:
                steps[b] = steps[a] + 1
                queue.append(b)
    labels = [-1] * n
    n_clusters = 0
    for start in steps:  # flood fill the reached growing cells into components
        if labels[start] >= 0:
            continue
        labels[start] = n_clusters
        stack = [start]
        while stack:
            a = stack.pop()
            for b in adjacent[a]:
                if b in steps and labels[b] < 0:
                    labels[b] = n_clusters
                    stack.append(b)
        n_clusters += 1
    for a in range(n):
        reached_by = [b for b in adjacent[a] if b in steps]
        if a not in steps and significance[a] > boundary_threshold and reached_by:
            first = min(reached_by, key=lambda b: (steps[b], -significance[b], b))
            labels[a] = labels[first]
    return labels


def partition(labels) -> set:
    groups = {}
    for position, label in enumerate(labels):
        if label >= 0:
            groups.setdefault(label, set()).add(position)
    return {frozenset(group) for group in groups.values()}


def assert_numbered_by_seed_significance(labels, significance):
    labels, significance = np.asarray(labels), np.asarray(significance)
    n_clusters = labels.max() + 1 if labels.size else 0
    assert set(labels[labels >= 0]) == set(range(n_clusters))
    best_seed = [significance[labels == k].max() for k in range(n_clusters)]
    assert best_seed == sorted(best_seed, reverse=True)


_LEVELS = [0.0, 0.5, 1.0, 1.9, 2.0, 2.5, 3.0, 4.6, 5.0, 7.0]  # significances, thresholds included


def _window(layer: int, half_width: int) -> list:
    """Cells of ``layer`` with ieta in [0, 2w) and iphi in [-w, w) (wrapped), w = half_width."""
    n = int(N_CELLS[layer])
    return [(layer, i, j % n) for i in range(2 * half_width) for j in range(-half_width, half_width)]


@st.composite
def cell_lists(draw, candidates):
    """A random subset of ``candidates`` with significances from ``_LEVELS``, random signs and
    sigmas (powers of two, so that ``|E| / sigma`` is exactly the drawn level), in random order."""
    present = draw(st.lists(st.booleans(), min_size=len(candidates), max_size=len(candidates)))
    cells = draw(st.permutations([cell for cell, keep in zip(candidates, present) if keep]))
    levels = draw(st.lists(st.sampled_from(_LEVELS), min_size=len(cells), max_size=len(cells)))
    signs = draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=len(cells), max_size=len(cells)))
    sigma = draw(st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=len(cells), max_size=len(cells)))
    energy = [level * sign * s for level, sign, s in zip(levels, signs, sigma)]
    return cells, energy, sigma


def _compare_with_reference(cells, energy, sigma, **thresholds):
    layer, ieta, iphi = (np.array([cell[k] for cell in cells], dtype=np.int64) for k in range(3))
    labels = topoclusters(layer, ieta, iphi, np.array(energy), np.array(sigma), **thresholds)
    assert partition(labels) == partition(reference_topoclusters(cells, energy, sigma, **thresholds))
    assert_numbered_by_seed_significance(labels, np.abs(energy) / np.array(sigma))


_THRESHOLDS = st.sampled_from([{}, dict(seed_threshold=4.6, grow_threshold=2.0, boundary_threshold=1.0),
                               dict(seed_threshold=2.5, grow_threshold=1.0, boundary_threshold=0.5),
                               dict(seed_threshold=2.0, grow_threshold=2.0, boundary_threshold=2.0)])


@settings(deadline=None, max_examples=200)
@given(cell_lists(_window(3, 4) + _window(4, 4)), _THRESHOLDS)
def test_matches_reference_on_two_equal_layers(cells, thresholds):
    _compare_with_reference(*cells, **thresholds)


@settings(deadline=None, max_examples=100)
@given(cell_lists(_window(1, 4) + _window(2, 2) + _window(3, 1)), _THRESHOLDS)
def test_matches_reference_on_layers_of_ratio_two(cells, thresholds):
    _compare_with_reference(*cells, **thresholds)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_reference_on_noise_in_all_layers(seed):
    layer, ieta, iphi, energy, sigma = _noise_window(np.random.default_rng(seed), half_width=1)
    cells = list(zip(layer.tolist(), ieta.tolist(), iphi.tolist()))
    _compare_with_reference(cells, energy.tolist(), sigma.tolist(),
                            seed_threshold=2.5, grow_threshold=1.0, boundary_threshold=0.3)
