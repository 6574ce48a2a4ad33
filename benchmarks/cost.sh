#!/usr/bin/env bash
# Every cost figure of docs/results.md ("Cost"), one after the other. Run it on an idle machine:
# two torch processes on two cores slow each other 2-4x.
#
#   benchmarks/cost.sh                       # files: data/qg_small.root (pretraining), EMBED_FILE for embedding
#   EMBED_FILE=data/big/qg_test.root benchmarks/cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
EMBED_FILE=${EMBED_FILE:-data/qg_small.root}
echo "== training step: v0.1 against the default (graphs/s, peak RSS)"
$PY benchmarks/train_throughput.py --configs v0.1 default --batch-size 128
echo "== embedding: ROOT file -> h against reading + graphs alone ($EMBED_FILE)"
$PY benchmarks/embed_throughput.py --configs v0.1 default --file "$EMBED_FILE" --repeat 1
echo "== pretraining beside another two-thread torch job"
$PY benchmarks/contention.py --config default --steps 30
$PY benchmarks/contention.py --config v0.1 --steps 30
echo "== page faults and system time of 20 pretraining steps, allocator tuned (default) and not (GNNJETS_MALLOC=0)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
FORMAT="%e s wall, %U s user, %S s system, %R minor faults, %M kB peak RSS"
for config in default v0.1; do
    for malloc in 1 0; do
        GNNJETS_MALLOC=$malloc /usr/bin/time -f "$config pretraining, GNNJETS_MALLOC=$malloc: $FORMAT" \
            .venv/bin/gnnjets-pretrain --config $config --set optim.max_steps=20 --set optim.warmup_steps=5 \
            --set data.num_workers=0 --set train.probe_every=0 --set "train.out_dir=$work/$config$malloc" -q 2>&1 | tail -n 1
    done
done
echo "== system time of embedding $EMBED_FILE with that checkpoint"
/usr/bin/time -f "embedding: $FORMAT" .venv/bin/gnnjets-embed "$work/default1/last.pt" "$EMBED_FILE" \
    --out "$work/h.npz" -q 2>&1 | tail -n 1
echo "== peak RSS of streaming through a small and a large file (flat memory: it does not grow with the file)"
$PY benchmarks/embed_throughput.py --configs default --file data/qg_small.root --repeat 1 --step-size 500 \
    --rss-files data/qg_small.root "$EMBED_FILE" | grep iter_embed
