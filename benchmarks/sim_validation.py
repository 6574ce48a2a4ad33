"""Validate the detector simulation: single particles, the hadronic EM fraction, jets, and the replica modes.

1. Single e-, gamma, pi+-, mu at 5-500 GeV and eta = 0.3 through the full chain (showers, cell
   noise, topoclusters); E_reco = the positive-energy topoclusters within dR < 0.4 of the particle.
   Response <E_reco/E> and resolution (IQR/1.349 of E_reco), then a fit a/sqrt(E) (+) b/E (+) c.
   Targets (docs/simulation.md): EM sigma/E within 20% of 10%/sqrt(E) (+) 0.7%; pion response in
   0.6-0.85 and resolution near 50%/sqrt(E) (+) 3%.
2. The EM fraction of hadronic showers: mean (Groom's power law) and shower-to-shower spread.
3. Jets from Pythia, one detector replica each: q/g energy response in bins of E_truth; reco/truth
   mass of top jets (target: median in 0.75-1.0 at the EM scale, with a peak) and of QCD jets
   (clearly lower); topoclusters per jet and the share of the jet energy in its leading cluster
   (target for q/g jets: < 60% on average).
4. Replica modes: for q/g jets (200-400 GeV) with two replicas each, the replica-to-replica spread
   of the truth (constituents, energy) and of the reco jet (clusters, tracks, energy).

    python benchmarks/sim_validation.py [--particles 400] [--events 1500] [--mode-events 600] [--out benchmarks/out]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import awkward as ak
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.optimize import curve_fit  # noqa: E402

from detector_sim import calorimeter as cal  # noqa: E402
from detector_sim.clustering import cluster_kinematics, topoclusters  # noqa: E402
from detector_sim.config import REPLICA_MODES, load_config  # noqa: E402
from detector_sim.simulate import simulate_shard  # noqa: E402
from gnnjets.base import kinematics  # noqa: E402

ENERGIES = (5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)
PARTICLES = {"e-": (11, -1.0), "gamma": (22, 0.0), "pi+": (211, 1.0), "pi-": (-211, -1.0), "mu-": (13, -1.0)}
ETA = 0.3
QG_NARROW = ["generator.pthat_slices=[[200,400]]", "jets.pt_min_gev=200", "jets.pt_max_gev=400"]
RELATIVE = ("truth E", "truth pT", "reco E", "reco pT", "reco m")


def reconstructed_energy(pdgid: int, charge: float, energy: float, n: int, seed: int) -> np.ndarray:
    """E_reco of ``n`` single particles: positive topoclusters within dR < 0.4 of the impact point."""
    rng = np.random.default_rng(seed)
    pt = energy / np.cosh(ETA)
    particle = dict(pt=np.array([pt]), eta=np.array([ETA]), phi=np.array([0.0]), e=np.array([energy]),
                    m=np.zeros(1), pdgid=np.array([pdgid]), charge=np.array([charge]))
    eta_l, phi_l, _ = cal.impact_points(particle)
    axis_eta, axis_phi = eta_l[0, 1], phi_l[0, 1]
    window = cal.window_cells([axis_eta], [axis_phi], 0.7)
    out = np.empty(n)
    for i in range(n):
        spots, _ = cal.shower_spots(particle, rng)
        cells, _ = cal.digitise(spots, window, rng)
        cluster = topoclusters(window.layer, window.ieta, window.iphi, cells, window.sigma)
        kin = cluster_kinematics(cluster, cells, window.eta, window.phi)
        near = (kin["e"] > 0) & (kinematics.delta_r(kin["eta"], kin["phi"], axis_eta, axis_phi) < 0.4)
        out[i] = kin["e"][near].sum()
    return out


def robust_sigma(values: np.ndarray) -> float:
    q25, q75 = np.percentile(values, [25, 75])
    return (q75 - q25) / 1.349


def resolution_model(energy, stochastic, noise, constant):
    return np.sqrt((stochastic / np.sqrt(energy)) ** 2 + (noise / energy) ** 2 + constant**2)


def single_particles(n: int) -> tuple[dict, dict]:
    results, fits = {}, {}
    for name, (pdgid, charge) in PARTICLES.items():
        response, resolution = [], []
        for k, energy in enumerate(ENERGIES):
            reco = reconstructed_energy(pdgid, charge, energy, n, seed=1000 * k + abs(pdgid))
            response.append(np.median(reco) / energy)
            resolution.append(robust_sigma(reco) / np.median(reco) if np.median(reco) > 0 else np.nan)
        results[name] = (np.array(response), np.array(resolution))
        if name != "mu-":
            fits[name], _ = curve_fit(resolution_model, np.array(ENERGIES), results[name][1], p0=(0.1, 0.1, 0.01), bounds=(0, 2))
    return results, fits


def report_single_particles(results, fits, n) -> None:
    energies = np.array(ENERGIES)
    print(f"1. single particles at eta = {ETA}, {n} per point; sigma from IQR/1.349 of E_reco")
    print(f"{'particle':8s} " + " ".join(f"{e:>7.0f}" for e in ENERGIES) + "   (GeV)")
    for name, (response, resolution) in results.items():
        print(f"{name:8s} " + " ".join(f"{r:7.3f}" for r in response) + "   response")
        print(f"{'':8s} " + " ".join(f"{r:7.4f}" for r in resolution) + "   sigma/E")
        if name in fits:
            a, b, c = fits[name]
            print(f"{'':8s} fit: stochastic {a:.3f}/sqrt(E), noise {b:.3f}/E, constant {c:.4f}")
    em_target = resolution_model(energies, 0.10, 0.0, 0.007)
    for name in ("e-", "gamma"):
        # the target is the calorimeter's own resolution; the cluster's summed noise adds the b/E term
        intrinsic = np.sqrt(np.maximum(results[name][1] ** 2 - (fits[name][1] / energies) ** 2, 0.0))
        ratio = intrinsic / em_target
        print(f"{name}: sigma/E without the fitted noise term over 10%/sqrt(E) (+) 0.7%: {np.round(ratio, 2)} "
              f"({'within' if np.all(np.abs(ratio - 1) < 0.2) else 'NOT within'} 20%)")
    response = results["pi+"][0]
    inside = response.min() > 0.6 and response.max() < 0.85
    print(f"pion response {response.min():.3f} .. {response.max():.3f} ({'inside' if inside else 'OUTSIDE'} 0.6 .. 0.85)")
    a, b, c = fits["pi+"]
    print(f"pion resolution fit {a:.2f}/sqrt(E) (+) {b:.2f}/E (+) {c:.3f}  (target ~0.50/sqrt(E) (+) 0.03)")


def em_fraction(n: int = 20000) -> dict:
    print(f"\n2. hadronic EM fraction f_em, {n} showers per energy (Groom: <f_em> = 1 - E^(m-1), m = {cal.GROOM_M})")
    samples = {}
    print(f"{'E [GeV]':>8s} {'mean':>7s} {'Groom':>7s} {'sigma':>7s}")
    for k, energy in enumerate(ENERGIES):
        samples[energy] = cal.sample_em_fraction(np.full(n, energy), np.random.default_rng(k))
        print(f"{energy:8.0f} {samples[energy].mean():7.3f} {float(cal.mean_em_fraction(energy)):7.3f} {samples[energy].std():7.3f}")
    return samples


def jets(config_name: str, n_events: int, seed: int, overrides=(), replicas: int = 1, mode: str = "detector") -> dict:
    """Simulated jets of a shipped config, as one batch (shards of at most 500 events)."""
    config = load_config(f"configs/sim/{config_name}.yaml", [*overrides, f"replicas.mode={mode}"])
    per_shard = config.sharding.events_per_shard = min(n_events, 500)
    batches = [simulate_shard(config, seed, shard, min(per_shard, n_events - shard * per_shard), replicas)[0]
               for shard in range(-(-n_events // per_shard))]
    return {name: (ak.concatenate if isinstance(batches[0][name], ak.Array) else np.concatenate)([b[name] for b in batches])
            for name in batches[0]}


def cluster_shares(batch: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per jet: the number of topoclusters and the share of the jet energy in the leading one."""
    topo = batch["cell_topo_idx"]
    n_clusters = ak.to_numpy(ak.fill_none(ak.max(topo, axis=1), -1)) + 1  # (J,)
    offset = np.cumsum(n_clusters) - n_clusters
    jet_of_cell = np.repeat(np.arange(len(n_clusters)), ak.to_numpy(ak.num(topo)))
    index = offset[jet_of_cell] + ak.to_numpy(ak.flatten(topo))
    energy = np.bincount(index, weights=ak.to_numpy(ak.flatten(batch["cell_e"])).astype(float), minlength=n_clusters.sum())
    has = n_clusters > 0
    leading = np.full(len(n_clusters), np.nan)
    leading[has] = np.maximum.reduceat(energy, offset[has]) / np.add.reduceat(energy, offset[has])
    return n_clusters, leading


def jet_checks(n_events: int) -> dict:
    print(f"\n3. jets, one replica each ({n_events} events per sample)")
    qg = jets("qg", n_events, 7)
    ratio = qg["jet_e"] / qg["truth_e"]
    edges = np.array([100, 200, 300, 450, 650, 900, 1400, 2500])
    response = []
    print(f"q/g jets (R = 0.4, |eta| < 1.7, pT 100-1000 GeV): {len(ratio)} jets")
    print(f"{'E_truth bin':>16s} {'jets':>6s} {'median':>8s} {'IQR/1.349/median':>18s}")
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (qg["truth_e"] >= lo) & (qg["truth_e"] < hi)
        if sel.sum() >= 10:
            median = np.median(ratio[sel])
            response.append((0.5 * (lo + hi), median, robust_sigma(ratio[sel])))
            print(f"{lo:7.0f}-{hi:<7.0f}  {sel.sum():6d} {median:8.3f} {response[-1][2] / median:18.3f}")
    out = {"qg_response": np.array(response)}
    for name in ("qg", "top", "qcd"):
        batch = qg if name == "qg" else jets(name, n_events, 8)
        counts, leading = cluster_shares(batch)
        mass_ratio = batch["jet_m"] / batch["truth_m"]
        out[name] = dict(mass=batch["jet_m"], truth_mass=batch["truth_m"], counts=counts, leading=leading)
        print(f"{name:4s}: {len(counts):5d} jets; reco/truth mass median {np.median(mass_ratio):.3f} "
              f"(IQR/1.349 {robust_sigma(mass_ratio):.3f}); median reco mass {np.median(batch['jet_m']):.1f} GeV "
              f"(truth {np.median(batch['truth_m']):.1f}); topoclusters per jet median {np.median(counts):.0f}; "
              f"leading cluster holds {np.nanmean(leading):.2f} of the jet energy on average")
    top_ratio = np.median(out["top"]["mass"] / out["top"]["truth_mass"])
    print(f"top mass response {top_ratio:.3f}: {'inside' if 0.75 <= top_ratio <= 1.0 else 'OUTSIDE'} 0.75 .. 1.0; "
          f"q/g leading-cluster share {np.nanmean(out['qg']['leading']):.2f} ({'<' if np.nanmean(out['qg']['leading']) < 0.6 else 'NOT <'} 0.6)")
    return out


def replica_spreads(n_events: int) -> dict:
    print(f"\n4. replica modes, q/g jets 200-400 GeV, two replicas each ({n_events} events per mode)")
    print("   spread = RMS over jets of (replica 0 - replica 1) / sqrt(2); relative ones divided by the mean")
    header = ("truth n", "truth E", "truth pT", "clusters", "tracks", "reco E", "reco pT", "reco m")
    print(f"{'mode':20s} {'jets':>5s} " + " ".join(f"{h:>9s}" for h in header))
    out = {}
    for mode in REPLICA_MODES:
        batch = jets("qg", n_events, 9, QG_NARROW, replicas=2, mode=mode)
        clusters, _ = cluster_shares(batch)
        values = {
            "truth n": ak.to_numpy(ak.num(batch["particle_pt"])).astype(float), "truth E": batch["truth_e"],
            "truth pT": batch["truth_pt"], "clusters": clusters.astype(float),
            "tracks": ak.to_numpy(ak.num(batch["track_pt"])).astype(float),
            "reco E": batch["jet_e"], "reco pT": batch["jet_pt"], "reco m": batch["jet_m"],
        }
        spreads = {}
        for key, value in values.items():
            diff = (value[0::2] - value[1::2]) / np.sqrt(2)
            spread = np.sqrt(np.mean(diff**2))
            spreads[key] = spread / np.mean(value) if key in RELATIVE else spread
        out[mode] = spreads
        print(f"{mode:20s} {len(batch['jet_e']) // 2:5d} " + " ".join(
            f"{spreads[h]:9.3f}" if h in RELATIVE else f"{spreads[h]:9.2f}" for h in header))
    print("   (truth n, clusters, tracks: absolute; energies, pT and mass: relative)")
    return out


def plot(results, fits, f_em, jet_out, spreads, png: Path) -> None:
    energies = np.array(ENERGIES)
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    ax = axes[0, 0]
    for k, (name, (response, _)) in enumerate(results.items()):
        ax.plot(energies, response, "o-", color=f"C{k}", label=name)
    ax.set(xscale="log", xlabel="E [GeV]", ylabel="median E_reco / E", title="single-particle response")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    for k, (name, (_, resolution)) in enumerate(results.items()):
        if name in fits:
            ax.plot(energies, resolution, "o", color=f"C{k}", label=name)
            fine = np.geomspace(energies[0], energies[-1], 100)
            ax.plot(fine, resolution_model(fine, *fits[name]), "-", color=f"C{k}", alpha=0.5)
    ax.plot(energies, resolution_model(energies, 0.10, 0.0, 0.007), "k--", label="10%/√E ⊕ 0.7%")
    ax.plot(energies, resolution_model(energies, 0.5, 0.0, 0.03), "k:", label="50%/√E ⊕ 3%")
    ax.set(xscale="log", yscale="log", xlabel="E [GeV]", ylabel="σ / E", title="single-particle resolution")
    ax.legend(fontsize=8)
    ax = axes[0, 2]
    for k, energy in enumerate((5.0, 20.0, 100.0, 500.0)):
        ax.hist(f_em[energy], bins=np.linspace(0, 1, 51), histtype="step", density=True, color=f"C{k}",
                label=f"{energy:.0f} GeV: σ = {f_em[energy].std():.3f}")
    ax.set(xlabel="f_em", ylabel="density", title="EM fraction of pion showers")
    ax.legend(fontsize=8)
    ax = axes[1, 0]
    centres, medians, sigmas = jet_out["qg_response"].T
    ax.errorbar(centres, medians, yerr=sigmas, fmt="o", label="median ± σ")
    ax.set(xlabel="E_truth [GeV]", ylabel="E_reco / E_truth (EM scale)", title="q/g jet energy response")
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    bins = np.linspace(0, 300, 61)
    ax.hist(jet_out["top"]["truth_mass"], bins=bins, histtype="step", color="C0", ls="--", label="top, truth")
    ax.hist(jet_out["top"]["mass"], bins=bins, histtype="step", color="C0", label="top, reco (EM scale)")
    ax.hist(jet_out["qcd"]["truth_mass"], bins=bins, histtype="step", color="C1", ls="--", label="QCD, truth")
    ax.hist(jet_out["qcd"]["mass"], bins=bins, histtype="step", color="C1", label="QCD, reco (EM scale)")
    ax.set(xlabel="jet mass [GeV]", ylabel="jets", title="R = 0.8 jets, pT 550-650 GeV")
    ax.legend(fontsize=8)
    ax = axes[1, 2]
    keys = list(next(iter(spreads.values())))
    x = np.arange(len(keys))
    for k, (mode, values) in enumerate(spreads.items()):
        ax.bar(x + (k - 1) * 0.27, [values[key] for key in keys], width=0.27, label=mode)
    ax.set(xticks=x, yscale="log", ylabel="replica-to-replica spread", title="replica modes (q/g 200-400 GeV)")
    ax.set_xticklabels(keys, fontsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--particles", type=int, default=400, help="particles per type and energy")
    parser.add_argument("--events", type=int, default=1500, help="events per jet sample (q/g, top, QCD)")
    parser.add_argument("--mode-events", type=int, default=600, help="q/g events per replica mode")
    parser.add_argument("--out", default="benchmarks/out", help="folder for the PNG")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results, fits = single_particles(args.particles)
    report_single_particles(results, fits, args.particles)
    f_em = em_fraction()
    jet_out = jet_checks(args.events)
    spreads = replica_spreads(args.mode_events)
    png = out / "sim_validation.png"
    plot(results, fits, f_em, jet_out, spreads, png)
    print(f"\nplot: {png}   ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
