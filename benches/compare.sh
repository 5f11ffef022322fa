#!/usr/bin/env bash
# End-to-end timings of the release binary, as users run it (state store on), next to GNU
# make (and `just`, when installed) on the same workloads in the same run.
#
#   benches/compare.sh            # 5 runs of each, medians
#   RUNS=11 benches/compare.sh    # more runs
#   BIG=1 benches/compare.sh      # also 100,000 `value` steps
#
# Workloads, generated into a temporary folder:
#   value-wide   10,000 `value` steps: one root, every other step reading it
#   value-chain  10,000 `value` steps, each reading the one before
#   W1           1,000 `shell` steps running `true`, plus a join; concurrency 64 (make -j64)
#   W2           a chain of 200 `shell` steps running `true` (make -j64)
#   W3           4 layers x 50 `comet.task` submit-then-poll tasks against the simulator
#                (300 ms tasks, 100 ms polls): compared with its critical path, 1.2 s
#   startup      `cometflow --version` and a one-step run
# Uses hyperfine when it is installed for the startup figures; otherwise its own loop.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${COMETFLOW_BIN:-$ROOT/target/release/cometflow}
RUNS=${RUNS:-5}
if [[ -z ${COMETFLOW_BIN:-} ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cometflow-compare.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export COMETFLOW_STATE_DIR=$WORK/state CI=1
unset COMETAPI_KEY COMETAPI_BASE_URL

# --- generators -------------------------------------------------------------------------

value_wide() { # N
    echo "name: value-wide"; echo "steps:"
    echo "  root:"; echo "    uses: value"; echo "    with: { x: 1 }"
    for ((i = 1; i < $1; i++)); do
        echo "  s$i:"; echo "    uses: value"; echo "    with: { x: \"{{ steps.root.outputs.x + $i }}\" }"
    done
}

value_chain() { # N
    echo "name: value-chain"; echo "steps:"
    echo "  s0:"; echo "    uses: value"; echo "    with: { x: 0 }"
    for ((i = 1; i < $1; i++)); do
        echo "  s$i:"; echo "    uses: value"; echo "    with: { x: \"{{ steps.s$((i - 1)).outputs.x + 1 }}\" }"
    done
}

w1_yaml() {
    echo "name: w1"; echo "concurrency: 64"; echo "steps:"
    for ((i = 0; i < 1000; i++)); do echo "  t$i: { run: \"true\" }"; done
    echo "  join:"; echo "    run: \"true\""; echo -n "    needs: ["
    for ((i = 0; i < 1000; i++)); do echo -n "t$i"; ((i < 999)) && echo -n ", "; done; echo "]"
}

w1_make() {
    echo ".PHONY: join"; echo -n "join:"
    for ((i = 0; i < 1000; i++)); do echo -n " t$i"; done; printf '\n\t@true\n'
    for ((i = 0; i < 1000; i++)); do printf '.PHONY: t%d\nt%d:\n\t@true\n' "$i" "$i"; done
}

w1_just() {
    echo "[parallel]"; echo -n "join:"
    for ((i = 0; i < 1000; i++)); do echo -n " t$i"; done; printf '\n\t@true\n'
    for ((i = 0; i < 1000; i++)); do printf 't%d:\n\t@true\n' "$i"; done
}

w2_yaml() {
    echo "name: w2"; echo "concurrency: 64"; echo "steps:"
    echo "  t0: { run: \"true\" }"
    for ((i = 1; i < 200; i++)); do echo "  t$i: { run: \"true\", needs: [t$((i - 1))] }"; done
}

w2_make() {
    echo ".PHONY: all"; echo "all: t199"
    echo ".PHONY: t0"; printf 't0:\n\t@true\n'
    for ((i = 1; i < 200; i++)); do printf '.PHONY: t%d\nt%d: t%d\n\t@true\n' "$i" "$i" "$((i - 1))"; done
}

w2_just() {
    printf 't0:\n\t@true\n'
    for ((i = 1; i < 200; i++)); do printf 't%d: t%d\n\t@true\n' "$i" "$((i - 1))"; done
}

w3_yaml() {
    echo "name: w3"; echo "concurrency: 64"; echo "steps:"
    for ((l = 0; l < 4; l++)); do
        for ((i = 0; i < 50; i++)); do
            echo "  l${l}_$i:"
            echo "    uses: comet.task"
            echo "    poll: { interval: 100ms, max_interval: 100ms }"
            ((l > 0)) && echo "    needs: [l$((l - 1))_$i]"
            echo "    with:"
            echo "      submit: { method: POST, path: /pika/generate, body: { promptText: \"layer $l task $i\" } }"
            echo "      id: data.task_id"
            echo "      fetch: { method: GET, path: \"/pika/fetch/{id}\" }"
            echo "      status: data.status"
            echo "      success: [SUCCESS]"
            echo "      failure: [FAILURE]"
        done
    done
}

# --- measuring --------------------------------------------------------------------------

# Runs a command RUNS times; prints "wall_ms cpu_ms rss_mb" medians.
measure() {
    local walls=() cpus=() rsss=() t0 t1 stats
    for ((r = 0; r < RUNS; r++)); do
        t0=$EPOCHREALTIME
        /usr/bin/time -f '%U %S %M' -o "$WORK/time" "$@" >/dev/null 2>"$WORK/stderr" || {
            echo "failed: $*" >&2; cat "$WORK/stderr" >&2; exit 1
        }
        t1=$EPOCHREALTIME
        walls+=("$(echo "($t1 - $t0) * 1000" | bc)")
        stats=$(tail -n1 "$WORK/time")
        cpus+=("$(echo "$stats" | awk '{ printf "%.0f", ($1 + $2) * 1000 }')")
        rsss+=("$(echo "$stats" | awk '{ printf "%.0f", $3 / 1024 }')")
    done
    printf '%s %s %s\n' "$(median "${walls[@]}")" "$(median "${cpus[@]}")" "$(median "${rsss[@]}")"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] }'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

row() { # label wall cpu rss [reference label, reference wall]
    printf '%-36s %9s ms %9s ms %6s MB' "$1" "$2" "$3" "$4"
    if [[ -n ${6:-} ]]; then printf '   %5sx %s' "$(ratio "$2" "$6")" "$5"; fi
    echo
}

command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
command -v bc >/dev/null || { echo "needs bc (apt-get install bc)" >&2; exit 1; }

cd "$WORK"
value_wide 10000 >value-wide.yaml
value_chain 10000 >value-chain.yaml
w1_yaml >w1.yaml && w1_make >w1.mk
w2_yaml >w2.yaml && w2_make >w2.mk
w3_yaml >w3.yaml
printf 'name: one\nsteps:\n  a: { uses: value, with: { x: 1 } }\n' >one.yaml

echo "cometflow $("$BIN" --version | awk '{ print $2 }'), $(nproc) cores, $(uname -sr), $RUNS runs each (medians)"
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
printf '%-36s %12s %12s %9s   %s\n' workload wall cpu "peak RSS" ratio
run=("$BIN" run -q)

read -r w c m < <(measure "${run[@]}" value-wide.yaml)
row "value-wide 10k" "$w" "$c" "$m"
read -r w c m < <(measure "${run[@]}" value-chain.yaml)
row "value-chain 10k" "$w" "$c" "$m"
if [[ -n ${BIG:-} ]]; then
    value_wide 100000 >value-wide-100k.yaml && value_chain 100000 >value-chain-100k.yaml
    read -r w c m < <(RUNS=1 measure "${run[@]}" value-wide-100k.yaml)
    row "value-wide 100k" "$w" "$c" "$m"
    read -r w c m < <(RUNS=1 measure "${run[@]}" value-chain-100k.yaml)
    row "value-chain 100k" "$w" "$c" "$m"
fi

read -r mw mc mm < <(measure make -s -j64 -f w1.mk)
read -r w c m < <(measure "${run[@]}" w1.yaml)
row "W1 cometflow (1,000 shell + join)" "$w" "$c" "$m" "make" "$mw"
row "W1 make -j64" "$mw" "$mc" "$mm"
if command -v just >/dev/null; then
    w1_just >w1.just
    read -r jw jc jm < <(measure just -f w1.just --unstable join) && row "W1 just [parallel]" "$jw" "$jc" "$jm"
fi

read -r mw mc mm < <(measure make -s -j64 -f w2.mk)
read -r w c m < <(measure "${run[@]}" w2.yaml)
row "W2 cometflow (chain of 200 shell)" "$w" "$c" "$m" "make" "$mw"
row "W2 make -j64" "$mw" "$mc" "$mm"
if command -v just >/dev/null; then
    w2_just >w2.just
    read -r jw jc jm < <(measure just -f w2.just t199) && row "W2 just" "$jw" "$jc" "$jm"
fi

read -r w c m < <(COMETFLOW_SIM=task_time=300ms measure "${run[@]}" --simulate --fresh w3.yaml)
row "W3 cometflow (4 x 50 comet.task)" "$w" "$c" "$m" "critical path" 1200

# Start-up is a few milliseconds, of which /usr/bin/time's own start would be a third:
# its wall time is the mean of a loop of direct starts from this shell instead.
startup() { # N command...
    local n=$1 t0 t1 i
    shift
    t0=$EPOCHREALTIME
    for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1; done
    t1=$EPOCHREALTIME
    echo "($t1 - $t0) * 1000 / $n" | bc -l | xargs printf '%.1f'
}
read -r w c m < <(RUNS=3 measure "$BIN" --version)
row "startup: --version" "$(startup $((RUNS * 10)) "$BIN" --version)" "$c" "$m"
read -r w c m < <(RUNS=3 measure "${run[@]}" one.yaml)
row "startup: one-step run" "$(startup $((RUNS * 10)) "${run[@]}" one.yaml)" "$c" "$m"
if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 3 --runs 50 "$BIN --version" "$BIN run -q one.yaml" 2>/dev/null \
        | grep -E 'Benchmark|Time' || true
fi
echo "binary: $(du -m "$BIN" | cut -f1) MB ($BIN)"
