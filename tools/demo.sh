#!/usr/bin/env bash
# demo.sh - the README's demo: validate, draw and run the quickstart pipeline
# over data/events.jsonl (made by shared/bench/gen_events.py), then a
# generated stream through a chain of stages. Run by `tools/setup.sh demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
SLUICE=build/tools/sluice

echo "== sluice validate pipelines/quickstart.yaml"
$SLUICE validate pipelines/quickstart.yaml
echo
echo "== sluice graph pipelines/quickstart.yaml"
$SLUICE graph pipelines/quickstart.yaml
echo
echo "== sluice run pipelines/quickstart.yaml  ($(wc -l < data/events.jsonl) events in)"
time $SLUICE run pipelines/quickstart.yaml --progress
echo
echo "out/events.jsonl:      $(wc -l < out/events.jsonl) events"
echo "out/dead-letter.jsonl: $(wc -l < out/dead-letter.jsonl) rejected lines"
echo "first event out:"
head -n 1 out/events.jsonl
echo
echo "== sluice run pipelines/order-routing.yaml  (route, transform, filter with expressions)"
$SLUICE run pipelines/order-routing.yaml --progress
echo "out/large-orders.jsonl:      $(wc -l < out/large-orders.jsonl) orders with amount > 100.0"
echo "out/approved-payments.jsonl: $(wc -l < out/approved-payments.jsonl) approved payments >= 250"
head -n 1 out/large-orders.jsonl
echo
echo "== sluice run pipelines/order-analytics.yaml  (dedup, route, join, aggregate: DESIGN.md's example)"
# --fresh: start from empty state even if an earlier demo left a checkpoint in state/
time $SLUICE run pipelines/order-analytics.yaml --progress --fresh
echo "out/duplicates.jsonl: $(wc -l < out/duplicates.jsonl) re-sent events removed by dedup"
echo "out/joined.jsonl:     $(wc -l < out/joined.jsonl) orders joined with their payment"
echo "out/metrics.jsonl:    $(wc -l < out/metrics.jsonl) window rows"
head -n 1 out/joined.jsonl
echo
echo "== the same again, without --fresh: it restores the final checkpoint (docs/checkpoints.md),"
echo "   finds its source at the end, and leaves the outputs as they are"
$SLUICE run pipelines/order-analytics.yaml --no-progress
echo "out/joined.jsonl:     $(wc -l < out/joined.jsonl) orders joined with their payment (unchanged)"
echo
echo "== sluice run pipelines/generator-demo.yaml (2M generated events, 4 stages)"
time $SLUICE run pipelines/generator-demo.yaml --progress
