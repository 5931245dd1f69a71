#!/usr/bin/env bash
# The search for an IP-CAE variant (src/ipcae/variants.py): every candidate on seed 0, then per
# dataset the one with the lowest validation loss on seeds 1-4. Into the paper store, beside IP-CAE's
# runs; finished runs are skipped, so re-running resumes.
#   DATASETS="mice_protein coil20" scripts/variant_search.sh
# Then: python -m ipcae.report results/paper
set -u
set -f  # no globbing: overrides such as hidden_sizes=[400] are words, not patterns
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STORE=${STORE:-results/paper}
DATASETS=${DATASETS:-"mice_protein coil20 isolet mnist fashion_mnist"}
LAUNCH=${LAUNCH:-launcher=parallel}
THREADS=${THREADS:-1}
status=0
for stage in commands chosen; do
    for ds in $DATASETS; do
        while read -r overrides; do
            # shellcheck disable=SC2086  # the overrides are words
            $PY src/train.py -m $LAUNCH threads=$THREADS $overrides store_dir=$STORE || status=1
        done < <($PY -m ipcae.variants $stage "$STORE" --datasets "$ds")
    done
done
exit $status
