#!/usr/bin/env bash
# Runs the paper's cells into the store (results/paper by default). Finished runs are skipped, so
# re-running resumes an interrupted reproduction; failed jobs are recorded and retried next time.
#   DATASETS="mice_protein coil20" SEEDS=0,1,2 scripts/reproduce_paper.sh
# Then: python -m ipcae.report results/paper
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STORE=${STORE:-results/paper}
SEEDS=${SEEDS:-0,1,2,3,4}
RECON_SEEDS=${RECON_SEEDS:-0,1,2}
LAMBDAS=${LAMBDAS:-0.1,1,10}
STG_LAMBDAS=${STG_LAMBDAS:-0.1,1,10}
DATASETS=${DATASETS:-"mice_protein coil20 isolet mnist fashion_mnist har"}
# Parallel jobs with one torch thread each; more jobs: LAUNCH="launcher=parallel hydra.launcher.n_jobs=8".
LAUNCH=${LAUNCH:-launcher=parallel}
# The committed results use one thread per run: sums split over another thread count round
# differently, which is enough to move an unstable CAE run to another selection.
THREADS=${THREADS:-1}
EXTRA=${EXTRA:-}     # more overrides for every run, e.g. EXTRA="trainer=gpu"
# Penalty weights the papers do not publish (GJSD's and STG's lambda) are chosen on validation loss.
# TUNE=all runs every value on every seed; TUNE=select runs every value on the first seed of SEEDS,
# then only the value validation picks (python -m ipcae.report STORE --chosen) on the others.
TUNE=${TUNE:-all}
# Phases run across all datasets before the next phase starts, so that an interrupted
# reproduction has the most important cells everywhere first. `newer` runs the selectors that
# came after the paper (one phase each: seqattn, sand, topk, ipcae_topk, ipcae_gjsd).
PHASES=${PHASES:-"core gjsd reconstruction baselines newer"}
NEWER="seqattn sand topk ipcae_topk ipcae_gjsd"
PHASES=${PHASES//newer/$NEWER}
status=0
run() { $PY src/train.py -m $LAUNCH threads=$THREADS "$@" $EXTRA store_dir=$STORE || status=1; }
# tuned DATASET MODEL KEY VALUES: the classification cell of MODEL with KEY swept over VALUES.
tuned() {
    local cls=experiment=paper/$1_classification first=${SEEDS%%,*} rest=${SEEDS#*,} value
    if [ "$TUNE" != select ]; then run $cls model=$2 $3=$4 seed=$SEEDS; return; fi
    run $cls model=$2 $3=$4 seed=$first
    [ "$rest" = "$SEEDS" ] && return  # one seed only
    value=$($PY -m ipcae.report $STORE --chosen $2 $1) || { status=1; return; }
    [ -n "$value" ] && run $cls model=$2 $3=$value seed=$rest
}
for phase in $PHASES; do
    for ds in $DATASETS; do
        cls=experiment=paper/${ds}_classification
        case $phase in
            core) run $cls model=ipcae,cae seed=$SEEDS ;;
            # GJSD's lambda is not published: the values run as TUNE says, the report picks on validation.
            gjsd) tuned $ds gjsd model.selector.diversity_weight $LAMBDAS ;;
            reconstruction) run experiment=paper/${ds}_reconstruction model=ipcae,cae seed=$RECON_SEEDS ;;
            baselines)
                tuned $ds stg model.selector.l0_weight $STG_LAMBDAS
                run $cls model=lassonet seed=$SEEDS ;;
            seqattn|sand|topk|ipcae_topk) run $cls model=$phase seed=$SEEDS ;;
            # Like GJSD: lambda is not published, chosen on validation.
            ipcae_gjsd) tuned $ds ipcae_gjsd model.selector.diversity_weight $LAMBDAS ;;
            *) echo "unknown phase $phase" >&2; exit 2 ;;
        esac
    done
done
exit $status
