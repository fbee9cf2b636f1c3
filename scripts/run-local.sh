#!/usr/bin/env bash
# `make run-local`: the stock Collector, two Go demo services (no tracing code) under steady
# traffic, and the agent tracing them. The Collector prints every span it receives. Ctrl-C stops
# everything this script started; the agent detaches all its probes on the way out.
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
mkdir -p "$SPANBRIDGE_RUN_DIR/bin"
rm -f "$SPANBRIDGE_RUN_DIR"/*.log "$SPANBRIDGE_RUN_DIR/telemetry.jsonl" "$SPANBRIDGE_RUN_DIR/ready"

for app in frontend backend loadgen; do
  (cd "demo/$app" && CGO_ENABLED=0 go build -o "$SPANBRIDGE_RUN_DIR/bin/demo-$app" .)
done

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo "run-local: stopping" >&2
  # The agent first, so it detaches while the services still run; then the rest.
  [ -n "${agent_pid:-}" ] && kill -TERM "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pkill -f "tail --pid=$$ " 2>/dev/null || true
  echo "run-local: stopped; logs in $SPANBRIDGE_RUN_DIR" >&2
}
trap cleanup INT TERM EXIT

build/otelcol/otelcol --config collector-config/otelcol-spanbridge.yaml --config collector-config/run-local.yaml \
  > "$SPANBRIDGE_RUN_DIR/collector.log" 2>&1 &
pids+=($!)
BACKEND_ADDR=127.0.0.1:$backend_port "$SPANBRIDGE_RUN_DIR/bin/demo-backend" > "$SPANBRIDGE_RUN_DIR/backend.log" 2>&1 &
pids+=($!)
FRONTEND_ADDR=127.0.0.1:$frontend_port BACKEND_URL=http://127.0.0.1:$backend_port \
  "$SPANBRIDGE_RUN_DIR/bin/demo-frontend" > "$SPANBRIDGE_RUN_DIR/frontend.log" 2>&1 &
pids+=($!)

node dist/src/cli/main.js run --exe 'demo-frontend' --exe 'demo-backend' \
  --otlp-endpoint "http://127.0.0.1:$SPANBRIDGE_OTLP_HTTP_PORT" \
  --ready-file "$SPANBRIDGE_RUN_DIR/ready" 2> >(tee "$SPANBRIDGE_RUN_DIR/agent.log" | sed 's/^/[agent] /' >&2) &
agent_pid=$!
for _ in $(seq 1 150); do [ -f "$SPANBRIDGE_RUN_DIR/ready" ] && break; sleep 0.2; done
[ -f "$SPANBRIDGE_RUN_DIR/ready" ] || { echo "run-local: the agent did not become ready; see $SPANBRIDGE_RUN_DIR/agent.log" >&2; exit 1; }

"$SPANBRIDGE_RUN_DIR/bin/demo-loadgen" -target "http://127.0.0.1:$frontend_port" -rate 2 > "$SPANBRIDGE_RUN_DIR/loadgen.log" 2>&1 &
pids+=($!)

echo "run-local: traffic flowing: frontend http://127.0.0.1:$frontend_port/shop/apple; spans as the Collector prints them:" >&2
# --pid: tail ends with this script, so no reader of the log outlives run-local.
tail --pid=$$ -n +1 -F "$SPANBRIDGE_RUN_DIR/collector.log" 2>/dev/null | grep --line-buffered -E 'Traces|Span|^[A-Za-z]' | sed -u 's/^/[collector] /' &
if [ -n "${SPANBRIDGE_RUN_SECONDS:-}" ]; then
  sleep "$SPANBRIDGE_RUN_SECONDS"
else
  wait "$agent_pid"
fi
