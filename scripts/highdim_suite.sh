#!/usr/bin/env bash
# The real high-dimensional suite (scikit-feature .mat files: ALLAML, GLIOMA, Prostate_GE, TOX-171,
# arcene, madelon) through data=table: 5 stratified 60/20/20 splits (split seeds 0-4), K = 50
# (madelon 20), IP-CAE (P = 256), CAE, STG, LassoNet and the decoder on all features, into a store.
# Finished runs are skipped, so re-running resumes.
#   HIGHDIM_DIR=../shared/datasets/highdim scripts/highdim_suite.sh
# Then: python -m ipcae.report results/highdim --out docs/highdim.md --csv docs/highdim_runs.csv --figures docs/figures/highdim
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STORE=${STORE:-results/highdim}
HIGHDIM_DIR=${HIGHDIM_DIR:-${IPCAE_DATA_DIR:-../shared/datasets}/highdim}
SPLITS=${SPLITS:-0,1,2,3,4}
DATASETS=${DATASETS:-"ALLAML GLIOMA Prostate_GE TOX-171 arcene madelon"}
METHODS=${METHODS:-"ipcae cae stg lassonet all_features"}
LAUNCH=${LAUNCH:-launcher=parallel}
EXTRA=${EXTRA:-}
status=0
for ds in $DATASETS; do
    k=50; [ "$ds" = madelon ] && k=20
    for method in $METHODS; do
        extra=""
        # P = D would be a D x D map (up to 10^8 weights here): a 256-wide embedding instead.
        [ "$method" = ipcae ] && extra="model.selector.embedding_dim=256"
        # Few rows: batches of 16, the paper's size for its small sets.
        $PY src/train.py -m $LAUNCH threads=1 data=table "data.path=$HIGHDIM_DIR/$ds.mat" data.k=$k \
            data.batch_size=16 "data.split_seed=$SPLITS" model=$method $extra $EXTRA store_dir=$STORE || status=1
    done
done
exit $status
