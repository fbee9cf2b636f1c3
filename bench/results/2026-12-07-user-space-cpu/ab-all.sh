#!/bin/bash
# alternating original (683c04c) vs current, fixed rates after a 3 s warm-up, then saturated
for i in 1 2 3; do
  for spec in "go rate 5 8000" "chain rate 5 4000" "python rate 5 3000" "node rate 5 6000"; do
    for w in /tmp/spancpu2-base /work/wt-spancpu2; do WARM=3 taskset -c 1 node measure.mjs $w $spec; done
  done
done
for i in 1 2 3; do for spec in "go sat 5" "node sat 5"; do for w in /tmp/spancpu2-base /work/wt-spancpu2; do WARM=2 taskset -c 1 node measure.mjs $w $spec; done; done; done
