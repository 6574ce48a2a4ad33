"""Validate the detector simulation: single-particle response and resolution, q/g jet response.

Single e-, gamma, pi+-, mu at 5-500 GeV and eta = 0.3 go through the full chain (showers, cell
noise, topoclustering); the reconstructed energy is the sum of the positive-energy topoclusters
within dR < 0.4 of the particle. Per energy: response <E_reco/E> and resolution sigma/E (from the
interquartile range, robust to the tails), then a fit sigma/E = a/sqrt(E) (+) b/E (+) c.
Targets (docs/simulation.md): EM sigma/E within 20% of 10%/sqrt(E) (+) 0.7%; pion response between 0.6
and 0.85 and resolution near 50%/sqrt(E) (+) 3%. For q/g jets from Pythia: median and
resolution of E_reco/E_truth in bins of E_truth.

    python benchmarks/sim_validation.py [--particles 400] [--events 1500] [--out benchmarks/out]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.optimize import curve_fit  # noqa: E402

from detector_sim import calorimeter as cal  # noqa: E402
from detector_sim.clustering import cluster_kinematics, topoclusters  # noqa: E402
from detector_sim.config import SimConfig, validate  # noqa: E402
from detector_sim.generate import generate_shard  # noqa: E402
from detector_sim.simulate import simulate_events  # noqa: E402
from gnnjets.base import kinematics

ENERGIES = (5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)
PARTICLES = {"e-": (11, -1.0), "gamma": (22, 0.0), "pi+": (211, 1.0), "pi-": (-211, -1.0), "mu-": (13, -1.0)}
ETA = 0.3


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


def fit_resolution(energies, resolutions):
    params, _ = curve_fit(resolution_model, energies, resolutions, p0=(0.1, 0.1, 0.01), bounds=(0, 2))
    return params


def single_particles(n: int) -> dict:
    results = {}
    for name, (pdgid, charge) in PARTICLES.items():
        response, resolution = [], []
        for k, energy in enumerate(ENERGIES):
            reco = reconstructed_energy(pdgid, charge, energy, n, seed=1000 * k + abs(pdgid))
            response.append(np.median(reco) / energy)
            resolution.append(robust_sigma(reco) / np.median(reco) if np.median(reco) > 0 else np.nan)
        results[name] = (np.array(response), np.array(resolution))
    return results


def jet_response(n_events: int):
    config = validate(SimConfig())
    config.generator.pthat_slices = [[100.0, 250.0], [250.0, 500.0], [500.0, 1000.0]]
    config.jets.pt_min_gev, config.jets.pt_max_gev = 100.0, 1000.0
    config.sharding.events_per_shard = max(n_events // 3, 1)
    truth, reco = [], []
    for shard in range(3):
        batch, _ = simulate_events(generate_shard(config, 7, shard, config.sharding.events_per_shard), config, 7, 1)
        truth.append(batch["truth_e"])
        reco.append(batch["jet_e"])
    return np.concatenate(truth), np.concatenate(reco)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--particles", type=int, default=400, help="particles per type and energy")
    parser.add_argument("--events", type=int, default=1500, help="q/g events for the jet response")
    parser.add_argument("--out", default="benchmarks/out", help="folder for the PNG")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    results = single_particles(args.particles)
    energies = np.array(ENERGIES)
    print(f"single particles at eta = {ETA}, {args.particles} per point; sigma from IQR/1.349 of E_reco")
    print(f"{'particle':8s} " + " ".join(f"{e:>7.0f}" for e in ENERGIES) + "   (GeV)")
    fits = {}
    for name, (response, resolution) in results.items():
        print(f"{name:8s} " + " ".join(f"{r:7.3f}" for r in response) + "   response")
        print(f"{'':8s} " + " ".join(f"{r:7.4f}" for r in resolution) + "   sigma/E")
        if name != "mu-":
            fits[name] = fit_resolution(energies, resolution)
            a, b, c = fits[name]
            print(f"{'':8s} fit: stochastic {a:.3f}/sqrt(E), noise {b:.3f}/E, constant {c:.4f}")

    em_target = resolution_model(energies, 0.10, 0.0, 0.007)
    for name in ("e-", "gamma"):
        # the target is the calorimeter's own (sampling + constant) resolution; the electronic
        # noise summed over the cluster's cells adds the fitted b/E term on top of it
        noise_term = fits[name][1] / energies
        intrinsic = np.sqrt(np.maximum(results[name][1] ** 2 - noise_term**2, 0.0))
        ratio = intrinsic / em_target
        verdict = "within" if np.all(np.abs(ratio - 1) < 0.2) else "NOT within"
        print(f"\n{name}: sigma/E with the fitted noise term removed, over 10%/sqrt(E) (+) 0.7%: {np.round(ratio, 2)} "
              f"({verdict} 20%); with noise: {np.round(results[name][1] / em_target, 2)}")
    pion_response = results["pi+"][0]
    print(f"pion response {pion_response.min():.3f} .. {pion_response.max():.3f} "
          f"({'inside' if pion_response.min() > 0.6 and pion_response.max() < 0.85 else 'OUTSIDE'} 0.6 .. 0.85)")
    a, b, c = fits["pi+"]
    print(f"pion resolution fit {a:.2f}/sqrt(E) (+) {b:.2f}/E (+) {c:.3f}  (target ~0.50/sqrt(E) (+) 0.03)")

    truth_e, reco_e = jet_response(args.events)
    ratio = reco_e / truth_e
    edges = np.array([100, 200, 300, 450, 650, 900, 1400, 2500])
    centres, medians, widths = [], [], []
    print(f"\nq/g jets (R = 0.4, |eta| < 1.7, pT 100-1000 GeV): {len(ratio)} jets")
    print(f"{'E_truth bin':>16s} {'jets':>6s} {'median':>8s} {'IQR/1.349/median':>18s}")
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (truth_e >= lo) & (truth_e < hi)
        if sel.sum() < 10:
            continue
        median = np.median(ratio[sel])
        centres.append(0.5 * (lo + hi))
        medians.append(median)
        widths.append(robust_sigma(ratio[sel]) / median)
        print(f"{lo:7.0f}-{hi:<7.0f}  {sel.sum():6d} {median:8.3f} {widths[-1]:18.3f}")

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for k, (name, (response, resolution)) in enumerate(results.items()):
        axes[0].plot(energies, response, "o-", color=f"C{k}", label=name)
        if name != "mu-":
            axes[1].plot(energies, resolution, "o", color=f"C{k}", label=name)
            fine = np.geomspace(energies[0], energies[-1], 100)
            axes[1].plot(fine, resolution_model(fine, *fits[name]), "-", color=f"C{k}", alpha=0.5)
    axes[1].plot(energies, em_target, "k--", label="10%/√E ⊕ 0.7%")
    axes[1].plot(energies, resolution_model(energies, 0.5, 0.0, 0.03), "k:", label="50%/√E ⊕ 3%")
    for ax, ylabel in zip(axes[:2], ("median E_reco / E", "σ / E")):
        ax.set_xscale("log")
        ax.set_xlabel("E [GeV]")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    axes[1].set_yscale("log")
    axes[2].errorbar(centres, medians, yerr=np.array(widths) * np.array(medians), fmt="o", label="median ± σ")
    axes[2].set_xlabel("E_truth [GeV]")
    axes[2].set_ylabel("E_reco / E_truth (EM scale)")
    axes[2].set_title("q/g jets")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    png = out / "sim_validation.png"
    fig.savefig(png, dpi=110)
    print(f"\nplot: {png}   ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
