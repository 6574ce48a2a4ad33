#!/usr/bin/env bash
# The samples of the study (configs/study/full.yaml) and of the shipped backbones, into data/big/.
# Each command gives the same file whatever --workers is; the wall times in data/README.md were
# taken with --workers 2 on the 2-core development machine.
set -euo pipefail
cd "$(dirname "$0")/.."
SIM=".venv/bin/detector-sim generate"
QG="--config configs/sim/qg_balanced_200_400.yaml --set sharding.events_per_shard=1000"
TOP="--config configs/sim/top.yaml --set sharding.events_per_shard=1000"
QCD="--config configs/sim/qcd.yaml --set sharding.events_per_shard=1000"
W="--workers ${WORKERS:-2} -q"
mkdir -p data/big
# labelled q/g jets, exactly balanced, one replica: the pool the label subsets come from, and the test set
[ -f data/big/qg_pool.root ] || $SIM $QG --events 60000 --replicas 1 --seed 201 --out data/big/qg_pool.root $W
[ -f data/big/qg_test.root ] || $SIM $QG --events 45000 --replicas 1 --seed 202 --out data/big/qg_test.root $W
# unlabelled q/g pretraining jets (about half quark, half gluon: the two subprocesses alternate by shard)
[ -f data/big/qg_detector.root ] || $SIM $QG --set jets.balance=false --events 40000 --replicas 2 --seed 203 \
    --replica-mode detector --out data/big/qg_detector.root $W
# the same number of events, re-hadronised replicas (new hadronisation and detector seeds)
[ -f data/big/qg_hadronization.root ] || $SIM $QG --set jets.balance=false --events 40000 --replicas 2 \
    --seed 204 --replica-mode hadronization --out data/big/qg_hadronization.root $W
# the same number of events, particle-augmented replicas (soft particles, a collinear split, a rotation and
# a translation applied to the truth particles before the detector, per replica)
[ -f data/big/qg_particle_augmented.root ] || $SIM $QG --set jets.balance=false --events 40000 --replicas 2 \
    --seed 219 --replica-mode particle-augmented --out data/big/qg_particle_augmented.root $W
# the large re-hadronised sample of the shipped q/g backbone (arm rehadronised-100k+aug, with the file above):
# 270,000 more events in six parts of 45,000, two at a time on two cores, then merged
if [ ! -f data/big/qg_hadronization_2.root ]; then
    part() { local i=$1; local out=data/big/qg_hadronization_2.part$i.root
        [ -f "$out" ] || $SIM $QG --set jets.balance=false --events 270000 --replicas 2 --seed 205 \
            --replica-mode hadronization --shard "$i/6" --out "$out" --workers 1 -q; }
    (part 0; part 2; part 4) & first=$!
    (part 1; part 3; part 5) & second=$!
    wait $first; wait $second
    .venv/bin/detector-sim merge --out data/big/qg_hadronization_2.root -q data/big/qg_hadronization_2.part?.root
    rm data/big/qg_hadronization_2.part?.root
fi
# labelled top and QCD jets, one replica
[ -f data/big/top_pool.root ] || $SIM $TOP --events 16000 --replicas 1 --seed 211 --out data/big/top_pool.root $W
[ -f data/big/qcd_pool.root ] || $SIM $QCD --events 8000 --replicas 1 --seed 212 --out data/big/qcd_pool.root $W
[ -f data/big/top_test.root ] || $SIM $TOP --events 10000 --replicas 1 --seed 213 --out data/big/top_test.root $W
[ -f data/big/qcd_test.root ] || $SIM $QCD --events 5000 --replicas 1 --seed 214 --out data/big/qcd_test.root $W
# unlabelled top + QCD pretraining jets
[ -f data/big/top_detector.root ] || $SIM $TOP --events 20000 --replicas 2 --seed 215 --out data/big/top_detector.root $W
[ -f data/big/qcd_detector.root ] || $SIM $QCD --events 10000 --replicas 2 --seed 216 --out data/big/qcd_detector.root $W
# the large re-hadronised top + QCD sample of the shipped top backbone (arm rehadronised-100k+aug of
# configs/study/top.yaml): 57,984 top and 47,155 QCD jets, two re-hadronised replicas each
[ -f data/big/top_hadronization.root ] || $SIM $TOP --events 130000 --replicas 2 --seed 217 \
    --replica-mode hadronization --out data/big/top_hadronization.root $W
[ -f data/big/qcd_hadronization.root ] || $SIM $QCD --events 75000 --replicas 2 --seed 218 \
    --replica-mode hadronization --out data/big/qcd_hadronization.root $W
echo "all samples in data/big/"
