#!/usr/bin/env bash
# `make run-local`: the stock Collector, a polyglot demo (Go frontend -> Go backend and a Python
# reviews service; no tracing code in any of them) under steady traffic, and the agent tracing
# them, configured by a generated YAML file (build/run-local/spanbridge.yaml). The agent prints
# each finished trace as a tree (--print-spans tree); the Collector receives everything and writes
# it to build/run-local/telemetry.jsonl. Ctrl-C stops everything this script started; the agent
# detaches all its probes on the way out.
#   SPANBRIDGE_RUN_SECONDS=N   stop by itself after N seconds (used by the smoke test)
#   SPANBRIDGE_OTLP_HTTP_PORT  the Collector's OTLP/HTTP port (default 4318)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ "$(id -u)" != 0 ]; then
  echo "run-local: the agent loads eBPF programs: run as root (sudo make run-local)" >&2
  exit 1
fi
export SPANBRIDGE_RUN_DIR="$root/build/run-local"
export SPANBRIDGE_OTLP_HTTP_PORT=${SPANBRIDGE_OTLP_HTTP_PORT:-4318}
otlp_grpc_port=${SPANBRIDGE_OTLP_GRPC_PORT:-4317}
export SPANBRIDGE_PROMETHEUS_PORT=${SPANBRIDGE_PROMETHEUS_PORT:-9400}
# The ready Collector config (collector-config/otelcol-spanbridge.yaml) takes these from the env.
export SPANBRIDGE_OTLP_HTTP_ENDPOINT=127.0.0.1:$SPANBRIDGE_OTLP_HTTP_PORT
export SPANBRIDGE_OTLP_GRPC_ENDPOINT=127.0.0.1:$otlp_grpc_port
export SPANBRIDGE_PROMETHEUS_TARGET=127.0.0.1:$SPANBRIDGE_PROMETHEUS_PORT
export SPANBRIDGE_SCRAPE_INTERVAL=${SPANBRIDGE_SCRAPE_INTERVAL:-5s}
export SPANBRIDGE_COLLECTOR_OUTPUT=$SPANBRIDGE_RUN_DIR/telemetry.jsonl
export SPANBRIDGE_COLLECTOR_TELEMETRY_LEVEL=none
frontend_port=${SPANBRIDGE_DEMO_FRONTEND_PORT:-8080}
backend_port=${SPANBRIDGE_DEMO_BACKEND_PORT:-8081}
reviews_port=${SPANBRIDGE_DEMO_REVIEWS_PORT:-8082}
mkdir -p "$SPANBRIDGE_RUN_DIR/bin"
rm -f "$SPANBRIDGE_RUN_DIR"/*.log "$SPANBRIDGE_RUN_DIR/telemetry.jsonl" "$SPANBRIDGE_RUN_DIR/ready" "$SPANBRIDGE_RUN_DIR/traces.txt"

for app in frontend backend loadgen; do
  (cd "demo/$app" && CGO_ENABLED=0 go build -o "$SPANBRIDGE_RUN_DIR/bin/demo-$app" .)
done

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo "run-local: stopping" >&2
  # The agent first, so it detaches while the services still run; then the rest.
  [ -n "${agent_pid:-}" ] && kill -TERM "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  # The Collector's batch processor holds the agent's final export for up to its timeout (1 s);
  # stopping the Collector before it is written loses it (its file exporter panics on shutdown).
  [ -n "${agent_pid:-}" ] && sleep 1.5
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "run-local: stopped; logs in $SPANBRIDGE_RUN_DIR" >&2
}
# Ctrl-C (INT) or TERM: a clean stop, exit status 0; any other exit keeps its status.
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

setsid build/otelcol/otelcol --config collector-config/otelcol-spanbridge.yaml --config collector-config/run-local.yaml \
  > "$SPANBRIDGE_RUN_DIR/collector.log" 2>&1 &
pids+=($!)
BACKEND_ADDR=127.0.0.1:$backend_port "$SPANBRIDGE_RUN_DIR/bin/demo-backend" > "$SPANBRIDGE_RUN_DIR/backend.log" 2>&1 &
pids+=($!)
REVIEWS_ADDR=127.0.0.1:$reviews_port python3 demo/reviews/reviews.py > "$SPANBRIDGE_RUN_DIR/reviews.log" 2>&1 &
pids+=($!)
FRONTEND_ADDR=127.0.0.1:$frontend_port BACKEND_URL=http://127.0.0.1:$backend_port REVIEWS_URL=http://127.0.0.1:$reviews_port \
  "$SPANBRIDGE_RUN_DIR/bin/demo-frontend" > "$SPANBRIDGE_RUN_DIR/frontend.log" 2>&1 &
pids+=($!)

# The agent's configuration (docs/configuration.md): which processes, their service names, where
# to export. The Python service is selected by its port (its executable is just python3).
cat > "$SPANBRIDGE_RUN_DIR/spanbridge.yaml" <<YAML
selections:
  - exe: '$SPANBRIDGE_RUN_DIR/bin/demo-frontend'
  - exe: '$SPANBRIDGE_RUN_DIR/bin/demo-backend'
  - open_port: $reviews_port
    service_name: demo-reviews
print_spans: tree
otlp:
  endpoint: http://127.0.0.1:$SPANBRIDGE_OTLP_HTTP_PORT
YAML

# Its own session: a terminal's Ctrl-C reaches this script, whose cleanup stops the agent with
# one SIGTERM (a second signal would make it exit without flushing). The readers of its output
# ignore Ctrl-C too, so they print the agent's last words.
setsid bin/spanbridge run --config "$SPANBRIDGE_RUN_DIR/spanbridge.yaml" \
  --ready-file "$SPANBRIDGE_RUN_DIR/ready" \
  > >(trap '' INT; tee "$SPANBRIDGE_RUN_DIR/traces.txt") \
  2> >(trap '' INT; tee "$SPANBRIDGE_RUN_DIR/agent.log" | sed -u 's/^/[agent] /' >&2) &
agent_pid=$!
for _ in $(seq 1 150); do [ -f "$SPANBRIDGE_RUN_DIR/ready" ] && break; sleep 0.2; done
[ -f "$SPANBRIDGE_RUN_DIR/ready" ] || { echo "run-local: the agent did not become ready; see $SPANBRIDGE_RUN_DIR/agent.log" >&2; exit 1; }

"$SPANBRIDGE_RUN_DIR/bin/demo-loadgen" -target "http://127.0.0.1:$frontend_port" -rate 2 > "$SPANBRIDGE_RUN_DIR/loadgen.log" 2>&1 &
pids+=($!)

echo "run-local: traffic flowing: frontend http://127.0.0.1:$frontend_port/shop/apple; each finished trace below" >&2
echo "run-local: the Collector writes all it receives to $SPANBRIDGE_COLLECTOR_OUTPUT (its log: $SPANBRIDGE_RUN_DIR/collector.log)" >&2
if [ -n "${SPANBRIDGE_RUN_SECONDS:-}" ]; then
  sleep "$SPANBRIDGE_RUN_SECONDS"
else
  wait "$agent_pid"
fi
