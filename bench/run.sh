#!/usr/bin/env bash
# Run every benchmark against a local nginx and write the tables into BENCHMARKS.md.
#
#   bash bench/run.sh            # the full run (about 10 minutes on 2 cores, venvs built)
#   bash bench/run.sh --quick    # counts / 10, 2 rounds: a smoke test of the harness
#
#   bash bench/run.sh --profile CASE CONTENDER [N]
#                                # one contender under cProfile (top 40), N operations
#
# Any other arguments go to bench/runner.py (see its --help).
#
# 1. Virtual environments under bench/.venvs/ (built once, rebuilt when pyproject.toml or the
#    anchor list below changes):
#      ours    - this project, `pip install -e ".[all]"`, plus the anchors httpx, aiohttp,
#                openai and litellm (litellm may fail to install: the table then says so);
#      rlm0113 - rlm-code 0.1.13 from PyPI, the original implementation of the spec, apart so
#                it never shadows ours (may fail to install: the table then says so).
# 2. nginx from Debian if it is missing (needs root), started on a free loopback port with its
#    own config and static answers in a temp dir (bench/fixtures.py), in the foreground of a
#    background job, and stopped by the EXIT trap whatever happens.
# 3. bench/runner.py runs every case in rounds and rewrites the results block of BENCHMARKS.md.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH_DIR")"
VENVS="$BENCH_DIR/.venvs"
OURS="$VENVS/ours"
OLD="$VENVS/rlm0113"
STARTED="$(date +%s.%N)"
BASE_PYTHON="${PYTHON:-python3}"
ANCHORS=(httpx aiohttp openai)
OPTIONAL_ANCHORS=(litellm)
OLD_SPEC="rlm-code==0.1.13"

log() { printf '[run.sh] %s\n' "$*" >&2; }

# -- 1. virtual environments ------------------------------------------------------------------

mkdir -p "$VENVS"
stamp="$( (cat "$REPO/pyproject.toml"; echo "${ANCHORS[*]} ${OPTIONAL_ANCHORS[*]}") | sha256sum | cut -c1-16)"

if [[ ! -x "$OURS/bin/python" || "$(cat "$OURS/.stamp" 2>/dev/null)" != "$stamp" ]]; then
    log "building $OURS (this project + anchors)"
    rm -rf "$OURS"
    "$BASE_PYTHON" -m venv "$OURS"
    if ! (cd "$REPO" && "$OURS/bin/python" -m pip install -q --upgrade pip \
        && "$OURS/bin/python" -m pip install -q -e ".[all]" "${ANCHORS[@]}" pyinstrument) \
        > "$VENVS/install-ours.log" 2>&1; then
        tail -20 "$VENVS/install-ours.log" >&2
        log "ERROR: installing this project failed (full log: $VENVS/install-ours.log)"
        exit 1
    fi
    for pkg in "${OPTIONAL_ANCHORS[@]}"; do
        if ! "$OURS/bin/python" -m pip install -q "$pkg" > "$VENVS/install-$pkg.log" 2>&1; then
            log "WARNING: $pkg failed to install (see $VENVS/install-$pkg.log); its rows are skipped"
        fi
    done
    echo "$stamp" > "$OURS/.stamp"
fi

if [[ ! -x "$OLD/bin/rlm-code" ]]; then
    log "building $OLD ($OLD_SPEC from PyPI)"
    rm -rf "$OLD"
    "$BASE_PYTHON" -m venv "$OLD"
    if ! "$OLD/bin/python" -m pip install -q "$OLD_SPEC" > "$VENVS/install-rlm0113.log" 2>&1; then
        log "WARNING: $OLD_SPEC failed to install (see $VENVS/install-rlm0113.log); its rows are skipped"
    fi
fi

# -- 2. nginx ---------------------------------------------------------------------------------

NGINX="$(command -v nginx || true)"
[[ -z "$NGINX" && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
if [[ -z "$NGINX" ]]; then
    log "installing nginx from Debian"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >&2
    NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
    # Some images start the packaged service on install; that one is not ours to keep.
    if [[ -s /run/nginx.pid ]] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
        kill "$(cat /run/nginx.pid)" || true
    fi
fi

WORK="$(mktemp -d -t rlm-bench-nginx.XXXXXX)"
NGINX_PID=""
cleanup() {
    if [[ -n "$NGINX_PID" ]] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -QUIT "$NGINX_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT="$("$OURS/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$OURS/bin/python" "$BENCH_DIR/fixtures.py" --dir "$WORK" --port "$PORT"
"$NGINX" -t -q -p "$WORK" -e "$WORK/error.log" -c "$WORK/nginx.conf"
"$NGINX" -p "$WORK" -e "$WORK/error.log" -c "$WORK/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!
"$OURS/bin/python" - "$PORT" <<'EOF'
import socket, sys, time
deadline = time.monotonic() + 10
while True:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.5).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("nginx did not start listening within 10 s")
        time.sleep(0.05)
EOF
log "nginx $NGINX_PID listening on 127.0.0.1:$PORT (config in $WORK)"

# -- 3. the benchmarks --------------------------------------------------------------------------

if [[ "${1:-}" == "--profile" ]]; then
    case_name="${2:?--profile CASE CONTENDER [N]}"
    contender="${3:?--profile CASE CONTENDER [N]}"
    py="$OURS/bin/python"
    [[ "$contender" == "rlm013" ]] && py="$OLD/bin/python"
    # As in runner.py: the usage ledger off and the user data dir in the temp dir, except the
    # ledger-on contender of seq_ledger (a fresh file there).
    ledger=off
    [[ "$case_name" == "seq_ledger" && "$contender" == "ours" ]] && ledger="$WORK/profile.sqlite3"
    (cd "$WORK" && env -u PYTHONDONTWRITEBYTECODE RLM_CODE_CONFIG_DIR="$WORK/config" \
        XDG_DATA_HOME="$WORK/data" RLM_CODE_LEDGER="$ledger" \
        "$py" "$BENCH_DIR/contenders.py" "$case_name" "$contender" \
        --port "$PORT" --n "${4:-500}" --warmup 20 --profile 40)
    exit 0
fi
"$OURS/bin/python" "$BENCH_DIR/runner.py" \
    --port "$PORT" --ours-venv "$OURS" --old-venv "$OLD" --started "$STARTED" "$@"
log "done in $(( $(date +%s) - ${STARTED%.*} )) s"
