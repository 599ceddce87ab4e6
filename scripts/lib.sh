# Shared bootstrap for scripts/run and scripts/test. Sourced, never executed.
#
# Everything the console needs on a fresh Debian machine is installed or started
# from here: a Python 3.12+ virtualenv with the locked dependencies, Debian's
# redis-server and chromium, and private PostgreSQL/Redis servers that listen on
# unix sockets only (so several checkouts can run side by side without ports).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
export UV_PYTHON_DOWNLOADS=never PIP_DISABLE_PIP_VERSION_CHECK=1
# The sandbox's development SCIM Service Origin (braze_sandbox.app.DEV_SCIM_ORIGIN): not a
# secret; its SCIM tokens answer 401 without it under the current profile.
SANDBOX_SCIM_ORIGIN="console.localhost"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# A 3.12+ interpreter, found by path: pyenv's shims fail unless a version is selected.
find_python() {
  local candidates=()
  [ -n "${CONSOLE_PYTHON:-}" ] && candidates+=("$CONSOLE_PYTHON")
  candidates+=(python3.13 python3.12)
  local pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
  command -v pyenv >/dev/null 2>&1 && pyenv_root="$(pyenv root)"
  local v
  for v in $(ls -d "$pyenv_root"/versions/3.13* "$pyenv_root"/versions/3.12* 2>/dev/null | sort -rV); do
    candidates+=("$v/bin/python3")
  done
  candidates+=(/usr/bin/python3.13 /usr/bin/python3.12 python3)
  local c
  for c in "${candidates[@]}"; do
    if command -v "$c" >/dev/null 2>&1 &&
      "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      command -v "$c"
      return 0
    fi
  done
  die "no Python 3.12+ found. Install one (e.g. 'apt-get install python3.12') or set CONSOLE_PYTHON=/path/to/python3.12"
}

# The virtualenv is rebuilt only when requirements.lock changes.
ensure_venv() {
  local stamp="$VENV/.lock.sha256" want
  want="$(sha256sum "$ROOT/requirements.lock" | cut -d' ' -f1)"
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  local py
  py="$(find_python)"
  say "creating virtualenv with $py"
  rm -rf "$VENV"
  "$py" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --require-hashes --no-deps -r "$ROOT/requirements.lock"
  echo "$want" >"$stamp"
}

APT_UPDATED=0
# ensure_deb BINARY PACKAGE: install a Debian package when its binary is missing.
ensure_deb() {
  local bin="$1" pkg="$2"
  command -v "$bin" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian package $pkg"
    if [ "$APT_UPDATED" = 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
      APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
    command -v "$bin" >/dev/null 2>&1 || die "installing $pkg did not provide $bin"
  else
    die "$bin is missing. Run: sudo apt-get install -y $pkg"
  fi
}

# PostgreSQL refuses to run as root: run its binaries as the postgres user then.
pg_as() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# pg_start DATADIR SOCKETDIR: create the cluster on first use, then start it
# (PG_EXTRA_OPTIONS: more "-c name=value" server settings).
# Roles: "console" owns the schema (migrations); "console_app" is the run-time
# login the audit issue restricts.
#
# The server listens on a unix socket only, in a directory no other local user may enter
# (0700, owned by the server's user; root reaches it anyway), and authenticates by peer:
# only the OS user running these scripts (mapped in pg_ident.conf) and postgres itself may
# log in, as postgres, console or console_app. The two files are rewritten on every start,
# so a cluster made by an older version of this script (which trusted everyone) is fixed.
pg_start() {
  local data="$1" sock="$2" me
  [ -x "$PG_BIN/initdb" ] || die "PostgreSQL 15 server binaries not found in $PG_BIN. Run: sudo apt-get install -y postgresql-15"
  me="$(id -un)"
  mkdir -p "$sock"
  chmod 700 "$sock"
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$sock"
    runuser -u postgres -- test -x "$sock" || die "the postgres user cannot reach $sock"
  fi
  if [ ! -s "$data/PG_VERSION" ]; then
    say "creating PostgreSQL cluster in $data"
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres "$data"
    pg_as "$PG_BIN/initdb" -D "$data" -U postgres --auth-local=peer --auth-host=reject \
      --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  fi
  printf '%s\n' "# Written by scripts/lib.sh on every start." \
    "local all all peer map=console" | pg_as tee "$data/pg_hba.conf" >/dev/null
  {
    echo "# Written by scripts/lib.sh on every start: OS user -> PostgreSQL roles it may use."
    echo "console postgres postgres"
    local role
    for role in postgres console console_app; do echo "console $me $role"; done
  } | pg_as tee "$data/pg_ident.conf" >/dev/null
  pg_as "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories='$sock' -c unix_socket_permissions=0700 -c fsync=${PG_FSYNC:-on} ${PG_EXTRA_OPTIONS:-}" start >/dev/null
  pg_as "$PG_BIN/psql" -h "$sock" -U postgres -d postgres -qtA -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SELECT 'CREATE ROLE console LOGIN CREATEDB' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'console')\gexec
SELECT 'CREATE ROLE console_app LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'console_app')\gexec
SELECT 'CREATE DATABASE console OWNER console' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'console')\gexec
SQL
}

pg_stop() {
  local data="$1"
  [ -s "$data/postmaster.pid" ] && pg_as "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

# redis_start DIR: a private Redis on a unix socket, persisted in DIR.
redis_start() {
  local dir="$1"
  mkdir -p "$dir"
  redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 \
    --dir "$dir" --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
    --save "${REDIS_SAVE:-60 1}" --appendonly no >/dev/null
  local i
  for i in $(seq 1 50); do
    [ -S "$dir/redis.sock" ] && redis-cli -s "$dir/redis.sock" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "redis did not start; see $dir/redis.log"
}

redis_stop() {
  local dir="$1"
  [ -S "$dir/redis.sock" ] && redis-cli -s "$dir/redis.sock" shutdown nosave >/dev/null 2>&1 || true
}

# Unix socket paths are limited to ~107 bytes, so sockets live in a short /tmp dir. It stays
# private (mktemp's 0700); pg_start hands it to the postgres user when run as root.
short_tmpdir() {
  mktemp -d /tmp/bcc.XXXXXX
}

urlencode_path() { printf '%s' "$1" | sed 's|/|%2F|g'; }
