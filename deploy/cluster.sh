#!/usr/bin/env bash
# Runs the deployment described by the files beside this script on one machine, every
# process its own on 127.0.0.1: an S3-compatible store for Restate's snapshots,
# PostgreSQL, three Restate nodes, two service replicas, HAProxy, two web replicas.
#
#   deploy/cluster.sh up            start everything (what is running stays), print the URL
#   deploy/cluster.sh down          stop everything
#   deploy/cluster.sh status        which processes run
#   deploy/cluster.sh kill NAME     kill -9 one process (n1, services-2, web-1, postgres, …)
#   deploy/cluster.sh start NAME    start one process again
#   deploy/cluster.sh clean         stop everything and delete its state
#   deploy/cluster.sh upgrade BIN   roll the shop onto another build of shopflow: its
#                                   service replicas start beside the running ones,
#                                   it is registered, the web replicas move to it one
#                                   by one, the old build drains (what was started on
#                                   it finishes there) and is retired
#
# State, logs and pid files go to $CLUSTER_DIR (default target/cluster). PostgreSQL runs
# as the `postgres` user when this runs as root: its data then goes where that user can
# reach it, $CLUSTER_DIR/postgres if it can, else a directory of its own under /var/tmp
# (a checkout in root's home is closed to other users). Programs:
# $SHOPFLOW_BIN (default target/release/shopflow), restate-server from node_modules,
# Debian's postgresql and haproxy, moto from target/cluster-venv (`make cluster-deps`).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUN=$(realpath -m "${CLUSTER_DIR:-$ROOT/target/cluster}")
SHOPFLOW=${SHOPFLOW_BIN:-$ROOT/target/release/shopflow}
VENV=${CLUSTER_VENV:-$ROOT/target/cluster-venv}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
URL=http://127.0.0.1:27080

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) platform=linux-x64 ;;
  Linux-aarch64 | Linux-arm64) platform=linux-arm64 ;;
  Darwin-arm64) platform=darwin-arm64 ;;
  *) echo "no restate-server package for $(uname -s) $(uname -m)" >&2; exit 1 ;;
esac
RESTATE=${RESTATE_SERVER_BIN:-$ROOT/node_modules/@restatedev/restate-server-$platform/bin/restate-server}

ALL="s3 postgres n1 n2 n3 services-1 services-2 services-3 services-4 haproxy web-1 web-2"

# Each build's service replicas sit behind a front end of their own (the balancer's
# backends are fixed): blue on 27090 (services-1, services-2), green on 27095
# (services-3, services-4). Restate calls a build at http://127.0.0.1:<port>/<build id>.
# An upgrade starts the new build in the other colour.
colour() { cat "$RUN/colour" 2>/dev/null || echo blue; }
other_colour() { if [ "$1" = blue ]; then echo green; else echo blue; fi; }
colour_port() { if [ "$1" = blue ]; then echo 27090; else echo 27095; fi; }
colour_services() { if [ "$1" = blue ]; then echo services-1 services-2; else echo services-3 services-4; fi; }
# The shopflow binary process $1 runs (an upgrade gives each its own).
bin_of() { cat "$RUN/bin/$1" 2>/dev/null || echo "$SHOPFLOW"; }
build_id() { "$1" --version | sed -n 's/.*(build \(.*\))$/\1/p'; }

pidfile() { echo "$RUN/pids/$1.pid"; }

running() {
  local pid
  pid=$(cat "$(pidfile "$1")" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null
}

# Starts "$@" in the background as process $name, in its own session, logging to
# $RUN/logs/$name.log.
launch() {
  local name=$1
  shift
  mkdir -p "$RUN/logs" "$RUN/pids"
  setsid "$@" >>"$RUN/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}

# Waits until "$@" succeeds, for at most $1 seconds.
wait_for() {
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "cluster: $what did not come up within ${seconds}s (logs in $RUN/logs)" >&2
      return 1
    fi
    sleep 0.2
  done
}

http_ok() { curl -fsS -o /dev/null --max-time 2 "$@"; }

# The settings of ShopFlow replica $1: the shared file, its own, the identity key, and
# every SHOPFLOW_* variable of the caller's environment.
shopflow_env() {
  grep -hv '^\s*\(#\|$\)' "$HERE/shopflow.env" "$HERE/$1.env"
  echo "SHOPFLOW_DATA_DIR=$RUN/shared"
  grep '^SHOPFLOW_RESTATE_IDENTITY_KEY=' "$RUN/identity.env"
  env | grep '^SHOPFLOW_' | grep -v '^SHOPFLOW_BIN=' || true
  echo "SHOPFLOW_SERVICES_URL=http://127.0.0.1:$(colour_port "$(colour)")"
}

start_s3() {
  launch s3 "$VENV/bin/moto_server" -H 127.0.0.1 -p 27900
  wait_for "the S3 store" 30 http_ok http://127.0.0.1:27900/
  curl -fsS -o /dev/null -X PUT http://127.0.0.1:27900/shopflow-snapshots
}

# PostgreSQL refuses to run as root: then it runs as the package's postgres user, from
# a working directory that user may enter.
as_pg() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}
launch_pg() {
  if [ "$(id -u)" = 0 ]; then
    (cd / && launch postgres runuser -u postgres -- "$@")
  else
    launch postgres "$@"
  fi
}

# PostgreSQL's data dir: $RUN/postgres when the server's user can reach $RUN, else one
# under /var/tmp named after $RUN.
pg_data() {
  mkdir -p "$RUN"
  if [ "$(id -u)" != 0 ] || runuser -u postgres -- test -x "$RUN" 2>/dev/null; then
    echo "$RUN/postgres"
  else
    echo "/var/tmp/shopflow-cluster-$(printf %s "$RUN" | sha256sum | cut -c1-12)/postgres"
  fi
}

start_postgres() {
  local data
  data=$(pg_data)
  if [ ! -d "$data" ]; then
    mkdir -p "$data"
    if [ "$(id -u)" = 0 ]; then
      chown postgres "$data"
      [ "$data" = "$RUN/postgres" ] || chown postgres "$(dirname "$data")"
    fi
    as_pg "$PG_BIN/initdb" -A trust -U shopflow -E UTF8 -D "$data" >"$RUN/logs/initdb.log"
  fi
  launch_pg "$PG_BIN/postgres" -D "$data" -h 127.0.0.1 -p 27432 -k "$data"
  wait_for "PostgreSQL" 30 "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p 27432
  "$PG_BIN/psql" -h 127.0.0.1 -p 27432 -U shopflow -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'shopflow'" | grep -q 1 ||
    "$PG_BIN/createdb" -h 127.0.0.1 -p 27432 -U shopflow shopflow
}

start_node() {
  local n=$1
  launch "$n" env RESTATE_DISABLE_TELEMETRY=true \
    "$(grep '^RESTATE_' "$RUN/identity.env")" \
    "$RESTATE" --config-file "$HERE/restate/$n.toml" --base-dir "$RUN/restate" \
    --listen-mode tcp --no-logo
}

wait_restate() {
  local admin=$((27170 + ${1#n})) ingress=$((27180 + ${1#n}))
  wait_for "Restate node $1" 60 http_ok "http://127.0.0.1:$admin/health"
  wait_for "Restate node $1's ingress" 60 http_ok "http://127.0.0.1:$ingress/restate/health"
}

start_shopflow() {
  local name=$1 role=${1%-*}
  local vars
  mapfile -t vars < <(shopflow_env "$name")
  launch "$name" env "${vars[@]}" "$(bin_of "$name")" "$role"
}

# An operator's command of shopflow $1 against the cluster (`deployments`).
shopflow_cli() {
  local bin=$1 vars
  shift
  mapfile -t vars < <(shopflow_env web-1)
  env "${vars[@]}" "$bin" "$@"
}

wait_shopflow() {
  case $1 in
    web-*) wait_for "$1" 60 http_ok -H 'Host: 127.0.0.1:27080' \
      "http://127.0.0.1:$((27080 + ${1#web-}))/healthz/live" ;;
    services-*) wait_for "$1" 60 bash -c "echo >/dev/tcp/127.0.0.1/$((27090 + ${1#services-}))" ;;
  esac
}

start_haproxy() {
  launch haproxy haproxy -W -db -f "$HERE/haproxy.cfg"
  wait_for "HAProxy" 10 bash -c 'echo >/dev/tcp/127.0.0.1/27080'
}

start_one() {
  case $1 in
    s3) start_s3 ;;
    postgres) start_postgres ;;
    n1 | n2 | n3) start_node "$1" && wait_restate "$1" ;;
    services-* | web-*) start_shopflow "$1" && wait_shopflow "$1" ;;
    haproxy) start_haproxy ;;
    *) echo "cluster: no process $1 (one of: $ALL)" >&2; return 1 ;;
  esac
}

# Registers the build of the current colour: one deployment URL for its service
# replicas, the balancer's front end of that colour and the build's own path.
register() {
  local c uri
  c=$(colour)
  uri="http://127.0.0.1:$(colour_port "$c")/$(build_id "$(bin_of "$(colour_services "$c" | cut -d' ' -f1)")")"
  wait_for "the endpoint behind the balancer" 60 \
    curl -fsS -o /dev/null --max-time 5 -X POST http://127.0.0.1:27170/deployments \
    -H 'content-type: application/json' -d "{\"uri\": \"$uri\"}"
}

# Whether build $2's deployment has nothing in flight (as `shopflow deployments` of
# binary $1 lists it); prints its deployment id.
drained() {
  shopflow_cli "$1" deployments | awk -v b="$2" '$2 == b { print $1; if ($4 == 0) ok = 1 } END { exit !ok }'
}

upgrade() {
  local new old old_id id from to name dp
  new=$(realpath "${1:?which shopflow binary}")
  from=$(colour)
  to=$(other_colour "$from")
  old=$(bin_of "$(colour_services "$from" | cut -d' ' -f1)")
  old_id=$(build_id "$old")
  id=$(build_id "$new")
  [ -n "$id" ] && [ "$id" != "$old_id" ] || { echo "cluster: $new is not another build (build ${id:-?})" >&2; return 1; }
  # A copy of its own, so a rebuild of the file meanwhile changes nothing.
  mkdir -p "$RUN/builds/$id" "$RUN/bin"
  cp "$new" "$RUN/builds/$id/shopflow"
  echo "upgrading from build $old_id ($from) to build $id ($to)"
  for name in $(colour_services "$to"); do
    stop_one "$name"
    echo "$RUN/builds/$id/shopflow" >"$RUN/bin/$name"
    start_one "$name"
  done
  echo "$to" >"$RUN/colour"
  register
  echo "build $id takes new orders"
  for name in web-1 web-2; do
    echo "$RUN/builds/$id/shopflow" >"$RUN/bin/$name"
    stop_one "$name"
    start_one "$name"
  done
  wait_for "the shop through the balancer" 30 http_ok "$URL/healthz/ready"
  echo "waiting for build $old_id to drain (at most ${UPGRADE_DRAIN_SECONDS:-3600}s)"
  wait_for "build $old_id to drain" "${UPGRADE_DRAIN_SECONDS:-3600}" drained "$RUN/builds/$id/shopflow" "$old_id"
  dp=$(drained "$RUN/builds/$id/shopflow" "$old_id")
  curl -fsS -o /dev/null -X DELETE "http://127.0.0.1:27170/deployments/$dp?force=true"
  for name in $(colour_services "$from"); do
    stop_one "$name"
    rm -f "$RUN/bin/$name"
  done
  echo "build $old_id drained and retired; build $id serves the shop"
}

up() {
  mkdir -p "$RUN/shared" "$RUN/logs" "$RUN/pids"
  [ -x "$SHOPFLOW" ] || { echo "cluster: no $SHOPFLOW (cargo build --release)" >&2; exit 1; }
  "$SHOPFLOW" --data-dir "$RUN/shared" identity >"$RUN/identity.env"
  for name in s3 postgres; do running "$name" || start_one "$name"; done
  # The three nodes start together: the first provisions the cluster once two more
  # can hold the replicated log.
  for n in n1 n2 n3; do running "$n" || start_node "$n"; done
  for n in n1 n2 n3; do wait_restate "$n"; done
  for name in $(colour_services "$(colour)") haproxy; do running "$name" || start_one "$name"; done
  register
  for name in web-1 web-2; do running "$name" || start_one "$name"; done
  # The balancer marks a replica up at its next health check.
  wait_for "the shop through the balancer" 30 http_ok "$URL/healthz/live"
  echo "ShopFlow cluster is running: $URL"
}

stop_one() {
  local pid
  pid=$(cat "$(pidfile "$1")" 2>/dev/null) || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$(pidfile "$1")"
}

down() {
  local name
  for name in web-2 web-1 haproxy services-4 services-3 services-2 services-1 n3 n2 n1 postgres s3; do
    stop_one "$name"
  done
  echo "ShopFlow cluster stopped"
}

clean() {
  down
  local data
  data=$(pg_data)
  [ "$data" = "$RUN/postgres" ] || rm -rf "$(dirname "$data")"
  rm -rf "$RUN"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  clean) clean ;;
  status) for name in $ALL; do
      if running "$name"; then echo "$name running"; else echo "$name stopped"; fi
    done ;;
  kill)
    pid=$(cat "$(pidfile "${2:?which process}")")
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
    rm -f "$(pidfile "$2")" ;;
  start) start_one "${2:?which process}" ;;
  upgrade) upgrade "${2:-}" ;;
  *) sed -n '2,23p' "$0" >&2; exit 2 ;;
esac
