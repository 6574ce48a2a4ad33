"""Topocluster splitting at local maxima: hand-made clusters, the ATLAS weights, and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector_sim.clustering import topoclusters
from detector_sim.geometry import R_MID_MM, cell_centre
from detector_sim.splitting import SHOWER_SIZE_MM, Splitter, split_topoclusters

ECAL2 = 1
NO_SECONDARY = ()


def cells_of(grid: dict):
    """Arrays of ``{(layer, ieta, iphi): energy}``: layer, ieta, iphi, energy, eta, phi."""
    keys = list(grid)
    layer, ieta, iphi = (np.array([k[i] for k in keys], dtype=np.int64) for i in range(3))
    energy = np.array([grid[k] for k in keys], dtype=float)
    eta, phi = np.empty(len(keys)), np.empty(len(keys))
    for i, (lay, a, b) in enumerate(keys):
        eta[i], phi[i] = cell_centre(lay, a, b)
    return keys, layer, ieta, iphi, energy, eta, phi


def two_peaks(separation: int = 6, peak_a: float = 10.0, peak_b: float = 6.0, layer: int = ECAL2) -> dict:
    """Two 3x3 blobs in one layer joined by a bridge of cells: one topocluster with two maxima.

    The blobs' rims (4% of their peak) and the bridge (0.3 GeV) stay below the 500 MeV threshold.
    """
    grid = {}
    centres = [(100, 50, peak_a), (100 + separation, 50, peak_b)]
    for i0, j0, peak in centres:
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                grid[(layer, i0 + di, j0 + dj)] = peak if di == dj == 0 else 0.04 * peak
    for i in range(101, 100 + separation - 1):  # the bridge
        grid.setdefault((layer, i, 50), 0.3)
    return grid


def split(grid: dict, **settings_):
    keys, layer, ieta, iphi, energy, eta, phi = cells_of(grid)
    topo = np.zeros(len(keys), dtype=np.int64)  # one cluster, as topoclustering would give
    result = split_topoclusters(layer, ieta, iphi, energy, eta, phi, topo, **settings_)
    return keys, energy, result


def test_two_peaks_become_two_clusters_around_their_maxima():
    keys, energy, result = split(two_peaks(), secondary_layers=NO_SECONDARY)
    assert result.n_clusters == 2
    index = dict(zip(keys, result.primary.tolist()))
    assert index[(ECAL2, 100, 50)] == 0  # the more energetic maximum gives cluster 0
    assert index[(ECAL2, 106, 50)] == 1
    for di in (-1, 0, 1):  # each blob stays with its own maximum
        assert index[(ECAL2, 100 + di, 49)] == 0 and index[(ECAL2, 106 + di, 51)] == 1
    # energy is conserved: every cell's energy is in the clusters, shared cells by weight
    assert result.e.sum() == pytest.approx(energy.sum(), rel=1e-12)
    assert result.e[0] > result.e[1]


def test_a_cell_reached_by_both_at_once_is_shared_with_the_atlas_weights():
    # maxima 4 apart: the middle cell of the bridge is reached by both in the same generation
    keys, energy, result = split(two_peaks(separation=4), secondary_layers=NO_SECONDARY)
    middle = keys.index((ECAL2, 102, 50))
    assert result.secondary[middle] >= 0
    shared = result.secondary >= 0
    assert set(result.secondary[shared].tolist()) | set(result.primary[shared].tolist()) == {0, 1}
    # recompute w1 = E1 / (E1 + r E2), r = exp(d1 - d2), from the unshared cells
    keys_, layer, ieta, iphi, _, eta, phi = cells_of(two_peaks(separation=4))
    proto = {}
    for k in (0, 1):
        own = (result.primary == k) & ~shared
        proto[k] = (energy[own].sum(), np.average(eta[own], weights=energy[own]), np.average(phi[own], weights=energy[own]))
    a, b = result.primary[middle], result.secondary[middle]
    distance = {k: np.hypot(eta[middle] - proto[k][1], phi[middle] - proto[k][2]) * R_MID_MM[ECAL2] / SHOWER_SIZE_MM
                for k in (0, 1)}
    w = proto[a][0] / (proto[a][0] + np.exp(distance[a] - distance[b]) * proto[b][0])
    assert result.weight[middle] == pytest.approx(w, rel=1e-9)
    assert 0.5 <= result.weight[middle] <= 1.0


def test_one_maximum_or_none_leaves_the_cluster_whole():
    grid = two_peaks()
    grid[(ECAL2, 106, 50)] = 0.3  # the second peak is gone
    _, _, result = split(grid, secondary_layers=NO_SECONDARY)
    assert result.n_clusters == 1 and np.all(result.primary == 0) and np.all(result.weight == 1)
    _, _, result = split(two_peaks(), thresholds_gev=[None] * 6)
    assert result.n_clusters == 1


def test_maxima_need_the_threshold_of_their_layer():
    _, _, low = split(two_peaks(peak_a=10.0, peak_b=0.45), secondary_layers=NO_SECONDARY)  # 450 MeV < 500 MeV
    assert low.n_clusters == 1
    thresholds = [0.5] * 6
    thresholds[ECAL2] = 0.4
    _, _, high = split(two_peaks(peak_a=10.0, peak_b=0.45), thresholds_gev=thresholds, secondary_layers=NO_SECONDARY)
    assert high.n_clusters == 2


def test_a_maximum_needs_four_neighbours_in_its_cluster():
    grid = two_peaks()
    for cell in ((107, 49), (107, 51), (106, 49), (106, 51), (105, 49)):  # three neighbours left
        grid.pop((ECAL2, *cell))
    _, _, result = split(grid, secondary_layers=NO_SECONDARY)
    assert result.n_clusters == 1


def test_a_secondary_maximum_overlapping_a_primary_one_gives_way():
    # an HCAL1 (layer 3, 4x coarser) maximum behind the ECAL2 peak, and one elsewhere
    grid = two_peaks(separation=12)
    for i0 in (25, 28):  # ECAL2 ieta 100 lies in HCAL1 ieta 25; 28 covers ECAL2 112..115
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                grid[(3, i0 + di, 12 + dj)] = 3.0 if di == dj == 0 else 0.5
    # ECAL2 iphi 50 lies in HCAL1 iphi 12; the ECAL2 peaks are at ieta 100 and 112
    _, _, with_secondary = split(grid, secondary_layers=(3,))
    _, _, all_primary = split(grid, secondary_layers=NO_SECONDARY)
    assert all_primary.n_clusters == 4
    assert with_secondary.n_clusters == 2  # both HCAL maxima lie behind an ECAL2 maximum
    grid[(ECAL2, 112, 50)] = 0.3  # remove the second ECAL2 peak: its HCAL maximum survives
    _, _, one_left = split(grid, secondary_layers=(3,))
    assert one_left.n_clusters == 2


def test_cells_outside_clusters_stay_outside_and_clusters_keep_their_order():
    grid = two_peaks()
    grid.update({(ECAL2, 200, 10): 8.0, (ECAL2, 201, 10): 1.0})  # a second, small cluster
    keys, layer, ieta, iphi, energy, eta, phi = cells_of(grid)
    keys.append((ECAL2, 5, 5))
    layer, ieta, iphi = (np.append(a, v) for a, v in zip((layer, ieta, iphi), (ECAL2, 5, 5)))
    energy, eta, phi = np.append(energy, 0.01), np.append(eta, 0.0), np.append(phi, 0.0)
    topo = np.array([1 if k[1] >= 200 else 0 for k in keys[:-1]] + [-1])
    result = Splitter(secondary_layers=NO_SECONDARY)(layer, ieta, iphi, energy, eta, phi, topo)
    assert result.primary[-1] == -1 and result.secondary[-1] == -1
    assert result.n_clusters == 3
    assert set(result.primary[topo == 1].tolist()) == {2}  # the unsplit parent after the split one's two


def test_splitter_settings_are_checked():
    with pytest.raises(ValueError, match="one entry per layer"):
        Splitter(thresholds_gev=[0.5] * 5)
    with pytest.raises(ValueError, match="secondary_layers"):
        Splitter(secondary_layers=(7,))
    with pytest.raises(ValueError, match="min_neighbours"):
        Splitter(min_neighbours=9)
    with pytest.raises(ValueError, match="shower_size_mm"):
        Splitter(shower_size_mm=0)
    assert "thresholds_gev=[0.5" in repr(Splitter())


# ----------------------------------------------------------------------------- properties

@st.composite
def noisy_showers(draw):
    """A few showers (random position, energy, depth) in three layers plus noise, topoclustered."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_showers = draw(st.integers(1, 5))
    grid = {}
    for _ in range(n_showers):
        i0, j0, peak = rng.integers(20, 30), rng.integers(20, 30), rng.uniform(0.5, 20.0)
        for lay, scale in ((1, 1.0), (2, 0.5), (3, 0.3)):
            ratio = 256 // (256, 256, 128, 64)[lay]
            for di in range(-2, 3):
                for dj in range(-2, 3):
                    key = (lay, (i0 * 4 + di * ratio) // ratio, (j0 * 4 + dj * ratio) // ratio)
                    grid[key] = grid.get(key, 0.0) + scale * peak * np.exp(-(di**2 + dj**2) / 2.0)
    keys, layer, ieta, iphi, energy, eta, phi = cells_of(grid)
    sigma = np.full(len(keys), 0.05)
    energy = energy + sigma * rng.standard_normal(len(keys))
    topo = topoclusters(layer, ieta, iphi, energy, sigma)
    return layer, ieta, iphi, energy, eta, phi, topo


@settings(deadline=None, max_examples=60)
@given(noisy_showers())
def test_splitting_conserves_energy_and_keeps_each_cell_in_its_parent(cells):
    layer, ieta, iphi, energy, eta, phi, topo = cells
    result = split_topoclusters(layer, ieta, iphi, energy, eta, phi, topo)
    clustered = topo >= 0
    assert np.array_equal(result.primary >= 0, clustered)
    assert result.e.sum() == pytest.approx(energy[clustered].sum(), abs=1e-9)
    assert np.all((result.weight >= 0.5) & (result.weight <= 1.0))
    assert np.all(result.weight[result.secondary < 0] == 1.0)
    # a cluster after splitting lies inside one parent, and every cluster has an unshared cell
    for k in range(result.n_clusters):
        assert len(set(topo[(result.primary == k) | (result.secondary == k)].tolist())) == 1
        assert np.any((result.primary == k) & (result.secondary < 0))
    assert result.n_clusters >= (topo.max() + 1 if clustered.any() else 0)


@settings(deadline=None, max_examples=30)
@given(noisy_showers(), st.randoms(use_true_random=False))
def test_splitting_does_not_depend_on_the_input_order(cells, random):
    layer, ieta, iphi, energy, eta, phi, topo = cells
    order = list(range(layer.size))
    random.shuffle(order)
    order = np.array(order, dtype=np.int64)
    a = split_topoclusters(layer, ieta, iphi, energy, eta, phi, topo)
    b = split_topoclusters(*(x[order] for x in (layer, ieta, iphi, energy, eta, phi, topo)))
    np.testing.assert_array_equal(a.primary[order], b.primary)
    np.testing.assert_array_equal(a.secondary[order], b.secondary)
    np.testing.assert_allclose(a.weight[order], b.weight, rtol=1e-12)
    np.testing.assert_allclose(np.sort(a.e), np.sort(b.e), rtol=1e-9, atol=1e-12)
