#!/usr/bin/env bash
# Benchmark (not a test): a fleet of 8 workers on one PostgreSQL draining 10,000 queued
# `value` steps (500 runs of 20) and 1,000 simulated paid Kling tasks (100 runs of 10),
# then the claim latency of runs submitted one at a time to idle workers, and of their one
# `shell` step (a step with effects: queued by the run's holder when it is ready, claimed
# by any free worker). Reports steps per second, claim latencies (median and p99, queued ->
# claimed, measured by the database clock) and database statements per step
# (pg_stat_statements).
#
#   bash benches/fleet.sh             # builds --release first
#   BIN=target/debug/cometflow WORKERS=8 bash benches/fleet.sh
#
# Needs the PostgreSQL server binaries (Debian: apt-get install postgresql); starts and
# stops a throwaway cluster of its own, as the `postgres` user when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

WORKERS=${WORKERS:-8}
CONCURRENCY=${CONCURRENCY:-16}
VALUE_RUNS=${VALUE_RUNS:-500}
PAID_RUNS=${PAID_RUNS:-100}
LATENCY_RUNS=${LATENCY_RUNS:-200}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=target/release/cometflow
fi
BIN=$(realpath "$BIN")
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "no PostgreSQL server binaries; apt-get install postgresql" >&2; exit 1; }

WORK=$(mktemp -d /tmp/cometflow-bench-XXXXXX)
AS=()
if [ "$(id -u)" = 0 ]; then chown postgres "$WORK"; AS=(runuser -u postgres --); fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
SIMPORT=$(free_port)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "${AS[@]}" "$PGBIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"${AS[@]}" "$PGBIN/initdb" -D "$WORK/data" -A trust -U cometflow --no-sync >/dev/null
"${AS[@]}" "$PGBIN/pg_ctl" -D "$WORK/data" -l "$WORK/pg.log" -w start \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $WORK -c fsync=off -c max_connections=200 -c shared_preload_libraries=pg_stat_statements" >/dev/null
export COMETFLOW_STORE="postgres://cometflow@127.0.0.1:$PORT/postgres"
export COMETAPI_BASE_URL="http://127.0.0.1:$SIMPORT" COMETAPI_KEY=sk-bench
export COMETFLOW_ARTIFACTS="$WORK/artifacts" COMETFLOW_STATE_DIR="$WORK/state"
sql() { psql -qAtX "$COMETFLOW_STORE" -c "$1"; }
sql "CREATE EXTENSION pg_stat_statements"

"$BIN" sim --port "$SIMPORT" --task-time 200ms >/dev/null 2>&1 &
PIDS+=($!)

mkdir -p "$WORK/p"
{
  echo "name: values"; echo "steps:"
  for i in $(seq 1 20); do echo "  s$i: { uses: value, with: { n: $i } }"; done
} >"$WORK/p/values.yaml"
cat >"$WORK/p/paid.yaml" <<'YAML'
name: paid
steps:
  clip:
    uses: kling.text2video
    cache: false
    for_each: "{{ range(10) }}"
    poll: { interval: 100ms, max_interval: 200ms }
    with: { prompt: "shot {{ item }} of {{ run.id }}" }
YAML
printf 'name: latency\nsteps:\n  a: { run: "true", cache: false }\n' >"$WORK/p/latency.yaml"

# Queue one run of each through `submit`, then copy it in SQL (submitting 600 runs one
# process at a time would measure process start-up, not the queue).
queue_copies() { # pipeline file, count
  local id
  id=$("$BIN" submit "$1")
  sql "INSERT INTO runs (id, pipeline, pipeline_file, status, started_at, inputs, run_dir, pipeline_text)
       SELECT r.id || '-' || g, pipeline, pipeline_file, 'queued', started_at, inputs, run_dir || '-' || g, pipeline_text
       FROM runs r, generate_series(2, $2) g WHERE r.id = '$id'"
}
queue_copies "$WORK/p/values.yaml" "$VALUE_RUNS"
queue_copies "$WORK/p/paid.yaml" "$PAID_RUNS"
sql "SELECT pg_stat_statements_reset()" >/dev/null

start=$(date +%s.%N)
for w in $(seq 1 "$WORKERS"); do
  "$BIN" worker --name "w$w" --concurrency "$CONCURRENCY" 2>"$WORK/w$w.log" &
  PIDS+=($!)
done
while [ "$(sql "SELECT count(*) FROM runs WHERE status IN ('queued', 'running') /* bench */")" != 0 ]; do sleep 0.2; done
end=$(date +%s.%N)
statements=$(sql "SELECT sum(calls) FROM pg_stat_statements WHERE query NOT LIKE '%bench%' AND query NOT LIKE '%pg_stat_statements%'")
steps=$(sql "SELECT count(*) FROM steps WHERE status = 'succeeded' /* bench */")
failed=$(sql "SELECT count(*) FROM runs WHERE status <> 'succeeded' /* bench */")
tasks=$(sql "SELECT count(*) FROM tasks /* bench */")

# Latency: idle workers, runs submitted one at a time.
for _ in $(seq 1 "$LATENCY_RUNS"); do
  "$BIN" submit "$WORK/p/latency.yaml" >/dev/null
  sleep 0.02
done
while [ "$(sql "SELECT count(*) FROM runs WHERE status IN ('queued', 'running') /* bench */")" != 0 ]; do sleep 0.2; done
grep -h "of \`latency\` (waited" "$WORK"/w*.log | sed 's/.*(waited \([0-9]*\) ms).*/\1/' | sort -n >"$WORK/lat.txt"
n=$(wc -l <"$WORK/lat.txt")
median=$(sed -n "$(( (n + 1) / 2 ))p" "$WORK/lat.txt")
p99=$(sed -n "$(( (n * 99 + 99) / 100 ))p" "$WORK/lat.txt")
pct() { # percentile, pipeline
  sql "SELECT round(percentile_cont($1) WITHIN GROUP (ORDER BY extract(epoch FROM j.claimed_at - j.queued_at) * 1000))
       FROM step_jobs j JOIN runs r ON r.id = j.run_id WHERE r.pipeline = '$2' /* bench */"
}
step_med=$(pct 0.5 latency)
step_p99=$(pct 0.99 latency)
busy_med=$(pct 0.5 paid)
busy_p99=$(pct 0.99 paid)

awk -v s="$start" -v e="$end" -v steps="$steps" -v st="$statements" -v tasks="$tasks" -v failed="$failed" \
    -v w="$WORKERS" -v c="$CONCURRENCY" -v n="$n" -v med="$median" -v p99="$p99" -v smed="$step_med" -v sp99="$step_p99" \
    -v bmed="$busy_med" -v bp99="$busy_p99" 'BEGIN {
  t = e - s
  printf "workers            %d (concurrency %d each: steps at once)\n", w, c
  printf "drained            %d step executions (%d paid tasks) in %.1f s; runs not succeeded: %d\n", steps, tasks, t, failed
  printf "throughput         %.0f steps/s\n", steps / t
  printf "statements         %.1f per step (%d in all)\n", st / steps, st
  printf "claim latency      runs: median %d ms, p99 %d ms over %d runs submitted to idle workers\n", med, p99, n
  printf "                   their shell step, ready -> claimed: median %d ms, p99 %d ms\n", smed, sp99
  printf "                   paid steps during the drain (includes waiting for a free slot): median %d ms, p99 %d ms\n", bmed, bp99
}'
