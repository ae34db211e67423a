#!/bin/sh
# Rebuilds the bundled model data/models/cordscope-u2ad-small.safetensors from scratch:
# 40 healthy phantoms (series seed 7001, no lesions, all confounders on; the evaluation
# phantoms use other seeds, so none of them is seen in pretraining), pretrained with the
# CPU default preset ("small") for 100 epochs, seed 0, on 2 threads.
#   usage: data/models/make-model.sh [BUILD_DIR] [OUT]   (from the repository root)
# About 15 minutes on two cores. Same inputs, same thread count: same weights.
set -eu
build=${1:-build}
out=${2:-data/models/cordscope-u2ad-small.safetensors}
cli="$build/src/cli/cordscope-cli"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$cli" phantom --out "$work/healthy" --count 40 --seed 7001 --lesion-rate 0 --quiet
"$cli" pretrain "$work/healthy" --out "$out" --config small --epochs 100 --seed 0 --threads 2
