#!/usr/bin/env bash
# The systemd units under a real systemd: boots a throwaway container of this very machine
# (systemd-nspawn on a copy-on-write overlay of /, on a private network with loopback only),
# installs invsync and its units in it, serves `invsync sim` inside, and checks what an operator
# relies on: start reaches READY, `systemctl status` shows the STATUS= line, reload, a sync,
# journal priorities, a failed start, stop within TimeoutStopSec, restart after SIGKILL, the
# watchdog on a stalled cycle, and invsync.service beside invsync@.service instances; and a fleet
# worker (invsync-fleet.service) against a PostgreSQL server started in the container.
#
# Usage: tests/systemd/run-in-nspawn.sh [--binary PATH] [--units DIR] [--deb PATH]
#   --binary  the invsync to install as /usr/bin/invsync (default: target/debug/invsync)
#   --units   where invsync.service, invsync@.service and invsync-fleet.service are (default:
#             systemd/)
#   --deb     install this package instead (binary and units from it), and check that upgrading
#             it restarts running instances and removing it stops them
#
# Exit status: 0 every check passed (known gaps are printed as GAP lines, loudly); 1 a check
# failed; 77 it cannot run here (not root, no systemd-nspawn, no overlayfs, no boot), for CI to
# report as SKIPPED. Nothing on the host changes but a temporary folder and mounts, removed at exit.
#
# systemd-nspawn refuses `--directory=/ --volatile=overlay` (before systemd 256 it allows only
# --volatile=yes|state on /, which leave /usr read-only), so the script mounts the overlay
# itself: / read-only below, a tmpfs above, and boots that.
set -euo pipefail
cd "$(dirname "$0")/../.."

binary=target/debug/invsync
units=systemd
deb=
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --units) units="$2"; shift 2 ;;
    --deb) deb="$2"; shift 2 ;;
    *) echo "usage: $0 [--binary PATH] [--units DIR] [--deb PATH]" >&2; exit 2 ;;
  esac
done

skip() { echo "SKIPPED: the units under a real systemd: $*"; exit 77; }
started=$(date +%s)
elapsed() { echo $(($(date +%s) - started)); }

[ "$(id -u)" = 0 ] || skip "needs root (systemd-nspawn, mounts)"
if ! command -v systemd-nspawn >/dev/null; then
  if command -v apt-get >/dev/null; then
    echo "installing systemd-container (systemd-nspawn)..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-container >/dev/null 2>&1 ||
      skip "systemd-nspawn is missing and apt-get install systemd-container failed"
  fi
  command -v systemd-nspawn >/dev/null || skip "systemd-nspawn is missing (package systemd-container)"
fi
[ -d /usr/lib/systemd ] && [ -x /usr/lib/systemd/systemd ] || skip "this machine has no systemd to boot"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
grep -qw overlay /proc/filesystems || skip "the kernel has no overlayfs"
if [ -n "$deb" ]; then
  [ -f "$deb" ] || { echo "no package at $deb" >&2; exit 1; }
  deb="$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")"
else
  [ -x "$binary" ] || { echo "no binary at $binary: cargo build first" >&2; exit 1; }
  for unit in invsync.service invsync@.service invsync-fleet.service; do
    [ -f "$units/$unit" ] || { echo "no $units/$unit" >&2; exit 1; }
  done
fi

scratch="$(mktemp -d /tmp/invsync-nspawn.XXXXXX)"
machine="invsync-test-$$-$RANDOM"
root="$scratch/root"
nspawn_pid=
leader=
cgroups=()

cleanup() {
  set +e
  if [ -n "$leader" ] && kill -0 "$leader" 2>/dev/null; then
    nsenter -t "$leader" -a systemctl poweroff --no-block >/dev/null 2>&1
    for _ in $(seq 1 40); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.5; done
  fi
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    kill "$nspawn_pid"; sleep 2; kill -9 "$nspawn_pid" 2>/dev/null
  fi
  umount -l "$root" 2>/dev/null
  umount -l "$scratch" 2>/dev/null
  rm -rf "$scratch"
  for cgroup in "${cgroups[@]}"; do
    find "$cgroup" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
}
trap cleanup EXIT
# A timeout or Ctrl-C must still take the container down and unmount: exit runs the trap.
trap 'exit 1' INT TERM HUP

mount -t tmpfs -o mode=0700 invsync-nspawn "$scratch"
mkdir "$scratch/upper" "$scratch/work" "$root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$scratch/upper,workdir=$scratch/work" "$root" ||
  skip "cannot mount an overlay of /"

# The container is this machine: forget any invsync installed on it, so only what is tested runs.
rm -rf "$root"/etc/invsync "$root"/etc/systemd/system/invsync* "$root"/var/lib/invsync* \
  "$root"/var/lib/private/invsync* "$root"/usr/lib/systemd/system/invsync* "$root"/usr/bin/invsync
mkdir -p "$root/etc/invsync/credentials"
# A container image's policy-rc.d (exit 101: "start no services") would stop the package's
# maintainer scripts from (re)starting anything; a server has none.
rm -f "$root/usr/sbin/policy-rc.d"
if [ -n "$deb" ]; then
  cp "$deb" "$root/root/invsync.deb"
else
  install -m 0755 "$binary" "$root/usr/bin/invsync"
  install -m 0644 "$units/invsync.service" "$units/invsync@.service" \
    "$units/invsync-fleet.service" "$root/etc/systemd/system/"
fi

# Every container needs a cgroup of its own, or two runs at once (two CI jobs on one machine)
# have their systemds fight over the same unit cgroups (status 219/CGROUP). Under a systemd,
# nspawn asks it for a scope; without one (a build container), it stays in the cgroup it is
# started in, so it is started in a new one, in every hierarchy that systemd uses.
nspawn_args=(--quiet --directory="$root" --machine="$machine" --private-network --register=no
  --console=read-only --boot systemd.unit=basic.target)
if [ -d /run/systemd/system ]; then
  systemd-nspawn "${nspawn_args[@]}" >"$scratch/console.log" 2>&1 &
else
  for hierarchy in /sys/fs/cgroup /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
    if [ -f "$hierarchy/cgroup.procs" ] && { [ -f "$hierarchy/cgroup.controllers" ] ||
      [ "$(stat -f -c %T "$hierarchy")" = cgroupfs ]; } && mkdir "$hierarchy/$machine" 2>/dev/null; then
      cgroups+=("$hierarchy/$machine")
    fi
  done
  [ "${#cgroups[@]}" -gt 0 ] || skip "cannot make a cgroup for the container"
  # The inner shell moves itself ($$) into the new cgroups, then becomes nspawn, which keeps
  # its container there (--keep-unit: there is no systemd to ask for a scope).
  # shellcheck disable=SC2016
  sh -c 'while [ "$1" != -- ]; do echo $$ >"$1/cgroup.procs"; shift; done; shift; exec "$@"' \
    sh "${cgroups[@]}" -- systemd-nspawn --keep-unit "${nspawn_args[@]}" >"$scratch/console.log" 2>&1 &
fi
nspawn_pid=$!

# The container's PID 1: the descendant of nspawn that runs systemd in its own PID namespace.
for _ in $(seq 1 100); do
  for pid in $(pgrep -P "$nspawn_pid") $(pgrep -P "$(pgrep -P "$nspawn_pid" | head -1)" 2>/dev/null); do
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd ] &&
      [ "$(readlink "/proc/$pid/ns/pid")" != "$(readlink /proc/self/ns/pid)" ]; then
      leader=$pid
    fi
  done
  [ -n "$leader" ] && break
  kill -0 "$nspawn_pid" 2>/dev/null || break
  sleep 0.2
done
if [ -z "$leader" ]; then
  cat "$scratch/console.log" >&2
  skip "systemd-nspawn could not boot a container here"
fi
ct() { nsenter -t "$leader" -a "$@"; }
# PID 1 listens on its private socket a moment after it starts.
for _ in $(seq 1 150); do
  ct test -S /run/systemd/private 2>/dev/null && break
  sleep 0.2
done
if ! ct timeout 60 systemctl is-system-running --wait >/dev/null 2>&1; then
  state="$(ct systemctl is-system-running 2>&1 || true)"
  [ "$state" = degraded ] || skip "the container did not boot ($state)"
fi
echo "container $machine booted in $(elapsed)s ($(ct systemctl --version | head -1))"

failures=0
gaps=0
ok() { echo "ok    $*"; }
fail() { echo "FAIL  $*"; failures=$((failures + 1)); }
gap() { echo "GAP   $* (KNOWN GAP, not counted as a failure)"; gaps=$((gaps + 1)); }
show() { ct systemctl show -p "$2" --value "$1"; }
journal() { ct journalctl --no-pager -o cat "$@"; }
# What the service's own processes wrote, without systemd's lines about the unit.
own() { local unit=$1; shift; journal "_SYSTEMD_UNIT=$unit" "$@"; }
# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local limit=$1 i
  shift
  for i in $(seq 1 $((limit * 5))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

if [ -n "$deb" ]; then
  if ct dpkg -i /root/invsync.deb >"$scratch/dpkg.log" 2>&1; then
    ok "dpkg -i $(basename "$deb")"
  else
    cat "$scratch/dpkg.log"
    fail "dpkg -i $(basename "$deb")"
    exit 1
  fi
else
  ct systemctl daemon-reload
fi
ct invsync --version | sed 's/^/      /'

# Two simulators inside, on the container's loopback: one that answers, one that stalls.
ct systemd-run --quiet --unit=invsync-sim -p Type=exec \
  -p StandardOutput=file:/run/invsync-sim.out -p StandardError=journal /usr/bin/invsync sim --port-base 18080
ct systemd-run --quiet --unit=invsync-sim-stall -p Type=exec \
  -p StandardOutput=file:/run/invsync-sim-stall.out -p StandardError=journal /usr/bin/invsync sim --port-base 18090 --stall
sim_config() { ct grep -q '^inputs = \["dropship"\]' "$1"; }
if wait_for 20 sim_config /run/invsync-sim.out && wait_for 20 sim_config /run/invsync-sim-stall.out; then
  ok "invsync sim serves on 127.0.0.1:18080-18083 (and, stalled, 18090-18093) in the container"
else
  journal -u invsync-sim -u invsync-sim-stall | tail -20
  fail "invsync sim did not start"
  exit 1
fi

# A configuration for a unit from what `invsync sim` printed: its inline secrets go to
# credential files that LoadCredential= hands over, as an operator would set it up.
#   configure UNIT CONFIG_PATH CREDENTIAL_DIR DATABASE SIM_OUTPUT [EXTRA_DAEMON_LINES]
configure() {
  local unit=$1 config=$2 creds=$3 database=$4 output=$5 extra=${6:-}
  local printed
  printed="$(ct cat "$output")"
  mkdir -p "$root$creds"
  chmod 0700 "$root$creds"
  sed -n 's/^api_key = "\(.*\)"$/\1/p' <<<"$printed" | head -1 | tr -d '\n' >"$root$creds/hako_api_key"
  sed -n 's/^token = "\(.*\)"$/\1/p' <<<"$printed" | head -1 | tr -d '\n' >"$root$creds/ea_token"
  sed -n 's/^password = "\(.*\)"$/\1/p' <<<"$printed" | head -1 | tr -d '\n' >"$root$creds/htf_password"
  chmod 0600 "$root$creds"/*
  sed -n '/^\[daemon\]$/,/^inputs = \["dropship"\]$/p' <<<"$printed" |
    sed -e "s|^database = .*|database = \"$database\"\nevery = \"2s\"\nrequest_timeout = \"5s\"\n$extra|" \
      -e '/^every = "10s"$/d' \
      -e 's|^api_key = .*|api_key_file = "hako_api_key"|' \
      -e 's|^token = .*|token_file = "ea_token"|' \
      -e 's|^password = .*|password_file = "htf_password"|' \
      >"$root$config"
}
configure invsync.service /etc/invsync/config.toml /etc/invsync/credentials \
  /var/lib/invsync/invsync.db /run/invsync-sim.out
configure invsync@shop-a.service /etc/invsync/shop-a.toml /etc/invsync/credentials/shop-a \
  /var/lib/invsync-shop-a/invsync.db /run/invsync-sim.out
# A shop whose Hako key is wrong: it runs, and its cycles fail with an ERROR.
configure invsync@badauth.service /etc/invsync/badauth.toml /etc/invsync/credentials/badauth \
  /var/lib/invsync-badauth/invsync.db /run/invsync-sim.out
echo -n "not-the-key" >"$root/etc/invsync/credentials/badauth/hako_api_key"
# A shop with a misspelt key: it cannot start.
configure invsync@badconfig.service /etc/invsync/badconfig.toml /etc/invsync/credentials/badconfig \
  /var/lib/invsync-badconfig/invsync.db /run/invsync-sim.out 'shedule = "0 * * * * *"'
# A shop without its credential files.
configure invsync@nocreds.service /etc/invsync/nocreds.toml /etc/invsync/credentials/nocreds \
  /var/lib/invsync-nocreds/invsync.db /run/invsync-sim.out
rm -rf "$root/etc/invsync/credentials/nocreds"
# A shop against the stalled simulators, with a watchdog short enough to see it act. Its
# request timeout is longer than the watchdog, as a stuck connection's would be.
configure invsync@stall.service /etc/invsync/stall.toml /etc/invsync/credentials/stall \
  /var/lib/invsync-stall/invsync.db /run/invsync-sim-stall.out
sed -i 's/^request_timeout = .*/request_timeout = "120s"/' "$root/etc/invsync/stall.toml"
mkdir -p "$root/etc/systemd/system/invsync@stall.service.d"
printf '[Service]\nWatchdogSec=4s\nRestartSec=1s\nLimitCORE=0\n' \
  >"$root/etc/systemd/system/invsync@stall.service.d/watchdog.conf"
ct systemctl daemon-reload

# --- start, READY, STATUS=, a sync ----------------------------------------------------------
t0=$(date +%s)
if ct timeout 60 systemctl start invsync.service; then
  ok "systemctl start invsync returned once READY=1 came ($(($(date +%s) - t0))s): $(ct systemctl is-active invsync)"
else
  journal -u invsync | tail -20
  cat -n "$root/etc/invsync/config.toml"
  fail "systemctl start invsync"
fi
status_is_cycle() { show invsync.service StatusText | grep -q '^cycle '; }
if wait_for 20 status_is_cycle; then
  line="$(ct systemctl status --no-pager invsync.service | grep 'Status: ' || true)"
  if [ -n "$line" ]; then ok "systemctl status shows the STATUS= line:$line"; else fail "no Status: line in systemctl status"; fi
else
  fail "no STATUS=cycle … within 20s (StatusText: $(show invsync.service StatusText))"
fi
synced() { own invsync.service | grep -q 'cycle finished.*outcome="ok"'; }
if wait_for 20 synced; then
  ok "a sync against invsync sim: $(own invsync.service | grep -m1 'cycle finished' | cut -c1-150)…"
else
  journal -u invsync.service | tail -10
  fail "no 'cycle finished … outcome=\"ok\"' in the journal"
fi
# The README's order: start, then `check` reading the same credential files by their names, as
# the README says: CREDENTIALS_DIRECTORY pointed at the folder LoadCredential= reads.
if ct timeout 60 env CREDENTIALS_DIRECTORY=/etc/invsync/credentials \
  invsync --config /etc/invsync/config.toml check >"$scratch/check.out" 2>&1; then
  ok "invsync check beside the running service reads its credentials: $(grep -c '^ok' "$scratch/check.out") ok lines"
else
  cat "$scratch/check.out"
  fail "invsync check beside the running service"
fi
if own invsync.service -p err | grep -q 'cycle finished'; then
  fail "INFO lines reach the journal at priority err"
else
  ok "INFO lines stay out of journalctl -p err"
fi

# --- invsync.service beside invsync@ instances --------------------------------------------
both_active() { [ "$(ct systemctl is-active invsync.service invsync@shop-a.service | sort -u)" = active ]; }
ct timeout 60 systemctl start invsync@shop-a.service || true
if both_active; then
  ok "invsync.service and invsync@shop-a.service run side by side"
else
  journal -u invsync@shop-a.service | tail -5
  fail "invsync@shop-a.service beside invsync.service: $(ct systemctl is-active invsync@shop-a.service || true)"
fi
ct systemctl stop invsync.service invsync@shop-a.service
ct timeout 60 systemctl start invsync@shop-a.service || true
ct timeout 60 systemctl start invsync.service || true
if both_active; then
  ok "started the other way round (instance first), both run: no status 238 from StateDirectory="
else
  ct systemctl status --no-pager -n 15 invsync.service invsync@shop-a.service || true
  fail "switching between invsync@shop-a and invsync.service: $(ct systemctl is-active invsync.service invsync@shop-a.service | tr '\n' ' ')"
fi
ct systemctl stop invsync@shop-a.service
ct timeout 60 systemctl start invsync.service || true

# --- reload ----------------------------------------------------------------------------------
pid="$(show invsync.service MainPID)"
if ct timeout 30 systemctl reload invsync.service 2>"$scratch/reload.err"; then
  sleep 2
  if [ "$(ct systemctl is-active invsync.service || true)" = active ] && [ "$(show invsync.service MainPID)" = "$pid" ]; then
    ok "systemctl reload: still running as the same process ($(journal -u invsync.service --since=-5s | grep -i -m1 reload | cut -c1-120))"
  else
    gap "systemctl reload ended the daemon: SIGHUP is not handled yet ($(show invsync.service ActiveState), result $(show invsync.service Result), status $(show invsync.service ExecMainStatus)); until it is, ExecReload= stops the service"
    ct systemctl reset-failed invsync.service 2>/dev/null || true
    ct timeout 60 systemctl start invsync.service || true
  fi
else
  fail "systemctl reload invsync: $(cat "$scratch/reload.err")"
fi

# --- stop within TimeoutStopSec ------------------------------------------------------------
limit="$(show invsync.service TimeoutStopUSec)"
t0=$(date +%s%N)
ct timeout 60 systemctl stop invsync.service
took_ms=$((($(date +%s%N) - t0) / 1000000))
if [ "$(show invsync.service Result)" = success ] && [ "$(show invsync.service ExecMainStatus)" = 0 ]; then
  ok "systemctl stop: exit 0 after ${took_ms}ms (TimeoutStopSec $limit)"
else
  fail "systemctl stop: result $(show invsync.service Result), status $(show invsync.service ExecMainStatus), ${took_ms}ms"
fi

# --- restart after SIGKILL -------------------------------------------------------------------
ct timeout 60 systemctl start invsync.service || true
pid="$(show invsync.service MainPID)"
restarts="$(show invsync.service NRestarts)"
ct systemctl kill -s KILL invsync.service
restarted() { [ "$(show invsync.service NRestarts)" -gt "$restarts" ] && [ "$(ct systemctl is-active invsync.service)" = active ]; }
if wait_for 30 restarted; then
  ok "systemctl kill -s KILL: restarted after RestartSec=$(show invsync.service RestartUSec) (pid $pid -> $(show invsync.service MainPID))"
else
  fail "not restarted after SIGKILL: $(ct systemctl is-active invsync.service || true), NRestarts $(show invsync.service NRestarts)"
fi
ct systemctl stop invsync.service

# --- journal priorities and failed starts ----------------------------------------------------
ct timeout 60 systemctl start invsync@badauth.service || true
errored() { own invsync@badauth.service -p err | grep -q .; }
if wait_for 20 errored; then
  ok "journalctl -p err shows a failing cycle's ERROR: $(own invsync@badauth.service -p err | head -1 | cut -c1-150)…"
else
  fail "no line at priority err from invsync@badauth (wrong Hako key)"
fi
ct systemctl stop invsync@badauth.service

if ct timeout 60 systemctl start invsync@badconfig.service 2>/dev/null; then
  fail "invsync@badconfig (a misspelt key) started"
else
  sleep 1
  status="$(show invsync@badconfig.service ExecMainStatus)"
  if [ "$status" = 2 ] && [ "$(show invsync@badconfig.service NRestarts)" = 0 ]; then
    ok "a configuration error fails the start with status 2, not restarted (RestartPreventExitStatus=2)"
  else
    fail "a configuration error: status $status, NRestarts $(show invsync@badconfig.service NRestarts)"
  fi
  if journal -u invsync@badconfig.service -p err | grep -q 'Failed to start'; then
    ok "journalctl -p err shows the failed start: $(journal -u invsync@badconfig.service -p err | grep -m1 'Failed to start')"
  else
    fail "no 'Failed to start' at priority err for invsync@badconfig"
  fi
  if own invsync@badconfig.service -p err | grep -q 'shedule'; then
    ok "the failed start's error is at priority err: $(own invsync@badconfig.service -p err | grep -m1 shedule | cut -c1-150)"
  else
    gap "the failed start's error reaches the journal below priority err: '$(own invsync@badconfig.service | grep -m1 shedule | cut -c1-150)' is at priority $(ct journalctl -o export "_SYSTEMD_UNIT=invsync@badconfig.service" | grep -m1 '^PRIORITY=' | cut -d= -f2)"
  fi
fi

if ct timeout 60 systemctl start invsync@nocreds.service 2>/dev/null; then
  fail "invsync@nocreds (no credential files) started"
else
  status="$(show invsync@nocreds.service ExecMainStatus)"
  why="$(journal -u invsync@nocreds.service | grep -m1 'Protocol error' || true)"
  if [ "$status" = 243 ] && [ -n "$why" ]; then
    ok "a missing credential file fails the start with status 243/CREDENTIALS: $why"
  else
    fail "a missing credential file: status $status ($why)"
  fi
fi

# --- the watchdog on a stalled cycle ---------------------------------------------------------
ct systemctl start --no-block invsync@stall.service
watchdog_fired() { journal -u invsync@stall.service | grep -q -i 'watchdog timeout'; }
stall_restarted() { [ "$(show invsync@stall.service NRestarts)" -ge 1 ]; }
if wait_for 40 watchdog_fired && wait_for 20 stall_restarted; then
  ok "the watchdog restarts a stalled cycle: $(journal -u invsync@stall.service | grep -m1 -i 'watchdog timeout')"
else
  journal -u invsync@stall.service | tail -10
  fail "no watchdog restart of a stalled cycle (NRestarts $(show invsync@stall.service NRestarts))"
fi
ct systemctl stop invsync@stall.service

# --- a fleet worker: invsync-fleet.service against PostgreSQL ---------------------------------
# A throwaway server in the container, as a fleet's database would be on another machine: a
# role and a database of its own, a password in the fleet file (readable by root alone).
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [ -z "$pg_bin" ] || ! id postgres >/dev/null 2>&1; then
  gap "no PostgreSQL here (package postgresql): the fleet worker's unit was not tried"
else
  pg_data=/var/tmp/invsync-fleet-pg
  pg_up() { ct "$pg_bin/pg_isready" -q -h 127.0.0.1 -p 15432; }
  ct install -d -o postgres -g postgres -m 0700 "$pg_data"
  ct runuser -u postgres -- "$pg_bin/initdb" -A trust -U postgres -D "$pg_data" >/dev/null ||
    fail "initdb in the container"
  # Trust on the socket for the set-up below; a password over TCP, as a worker connects.
  printf 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n' >"$root$pg_data/pg_hba.conf"
  ct systemd-run --quiet --unit=invsync-fleet-pg -p Type=exec -p User=postgres \
    "$pg_bin/postgres" -D "$pg_data" -c listen_addresses=127.0.0.1 -p 15432 -k /tmp
  if wait_for 30 pg_up &&
    ct runuser -u postgres -- "$pg_bin/psql" -q -h /tmp -p 15432 -U postgres -d postgres \
      -c "CREATE ROLE invsync LOGIN PASSWORD 'fleet-db-secret'" \
      -c "CREATE DATABASE invsync OWNER invsync" >/dev/null; then
    ok "PostgreSQL $(ct "$pg_bin/postgres" --version | awk '{print $3}') in the container: role and database invsync"
  else
    journal -u invsync-fleet-pg | tail -10
    fail "PostgreSQL did not start in the container"
  fi
  install -d -m 0755 "$root/etc/invsync/shops"
  configure invsync-fleet.service /etc/invsync/shops/north.toml /etc/invsync/credentials/fleet \
    /var/lib/invsync-north/ignored.db /run/invsync-sim.out
  chmod 0644 "$root/etc/invsync/shops/north.toml"
  printf '[fleet]\ndatabase = "postgres://invsync:fleet-db-secret@127.0.0.1:15432/invsync"\nshops = "/etc/invsync/shops"\nlease_ttl = "3s"\nworker = "ct-worker"\n' \
    >"$root/etc/invsync/fleet.toml"
  chmod 0600 "$root/etc/invsync/fleet.toml"
  mkdir -p "$root/etc/systemd/system/invsync-fleet.service.d"
  printf '[Service]\nLoadCredential=hako_api_key:/etc/invsync/credentials/fleet/hako_api_key\nLoadCredential=ea_token:/etc/invsync/credentials/fleet/ea_token\nLoadCredential=htf_password:/etc/invsync/credentials/fleet/htf_password\n' \
    >"$root/etc/systemd/system/invsync-fleet.service.d/credentials.conf"
  ct systemctl daemon-reload
  fleet_status() {
    ct env CREDENTIALS_DIRECTORY=/etc/invsync/credentials/fleet \
      invsync --config /etc/invsync/fleet.toml fleet status --json
  }
  fleet_in_sync() { fleet_status >/dev/null 2>&1; }
  t0=$(date +%s)
  if ct timeout 60 systemctl start invsync-fleet.service; then
    ok "systemctl start invsync-fleet returned once READY=1 came ($(($(date +%s) - t0))s), the fleet file read through its credential"
  else
    journal -u invsync-fleet.service | tail -20
    fail "systemctl start invsync-fleet"
  fi
  fleet_synced() { own invsync-fleet.service | grep -q 'shop=north.*cycle finished.*outcome="ok"\|cycle finished.*outcome="ok".*shop=north'; }
  if wait_for 30 fleet_synced; then
    ok "the worker synced shop north: $(own invsync-fleet.service | grep -m1 'cycle finished' | cut -c1-150)…"
  else
    journal -u invsync-fleet.service | tail -15
    fail "no 'cycle finished … outcome=\"ok\"' of shop north from invsync-fleet"
  fi
  # Whether north is held by $1 ("NAME" or null); fleet status exits non-zero while a shop is not
  # held or not in sync, which says nothing of who holds it.
  held_by() {
    local out
    out="$(fleet_status 2>/dev/null || true)"
    grep -q "\"worker\": *$1" <<<"$out"
  }
  if held_by '"ct-worker"'; then
    ok "fleet status: shop north held by ct-worker"
  else
    fleet_status || true
    fail "fleet status does not show north held by ct-worker"
  fi
  if own invsync-fleet.service | grep -q 'fleet-db-secret'; then
    fail "the database's password appears in the worker's journal"
  else
    ok "the database's password appears nowhere in the worker's journal"
  fi
  pid="$(show invsync-fleet.service MainPID)"
  ct timeout 30 systemctl reload invsync-fleet.service || true
  sleep 1
  if [ "$(ct systemctl is-active invsync-fleet.service || true)" = active ] && [ "$(show invsync-fleet.service MainPID)" = "$pid" ]; then
    ok "systemctl reload invsync-fleet: the shops' folder read again by the same process"
  else
    fail "systemctl reload invsync-fleet: $(show invsync-fleet.service ActiveState), pid $pid -> $(show invsync-fleet.service MainPID)"
  fi
  restarts="$(show invsync-fleet.service NRestarts)"
  ct systemctl kill -s KILL invsync-fleet.service
  fleet_restarted() { [ "$(show invsync-fleet.service NRestarts)" -gt "$restarts" ] && [ "$(ct systemctl is-active invsync-fleet.service)" = active ]; }
  if wait_for 30 fleet_restarted && wait_for 20 held_by '"ct-worker"'; then
    ok "systemctl kill -s KILL invsync-fleet: restarted, and it holds north again"
    if wait_for 20 fleet_in_sync; then
      ok "fleet status after the restart: $(fleet_status | grep '"health"' | tr -s ' ')"
    else
      fleet_status || true
      own invsync-fleet.service -p warning | tail -10
      fail "north not in sync again after the restart"
    fi
  else
    fail "invsync-fleet not back after SIGKILL: $(ct systemctl is-active invsync-fleet.service || true), NRestarts $(show invsync-fleet.service NRestarts)"
  fi
  t0=$(date +%s%N)
  ct timeout 60 systemctl stop invsync-fleet.service
  took_ms=$((($(date +%s%N) - t0) / 1000000))
  if [ "$(show invsync-fleet.service Result)" = success ] && [ "$(show invsync-fleet.service ExecMainStatus)" = 0 ] && held_by null; then
    ok "systemctl stop invsync-fleet: exit 0 after ${took_ms}ms, its lease handed over (no worker holds north)"
  else
    fleet_status || true
    own invsync-fleet.service -p warning | tail -10
    fail "systemctl stop invsync-fleet: result $(show invsync-fleet.service Result), status $(show invsync-fleet.service ExecMainStatus), ${took_ms}ms"
  fi
  ct systemctl stop invsync-fleet-pg.service
fi

# --- the package's maintainer scripts ------------------------------------------------------
if [ -n "$deb" ]; then
  ct timeout 60 systemctl start invsync.service invsync@shop-a.service || true
  before="$(show invsync.service MainPID) $(show invsync@shop-a.service MainPID)"
  ct dpkg -i /root/invsync.deb >"$scratch/dpkg.log" 2>&1 || { cat "$scratch/dpkg.log"; fail "dpkg -i again (upgrade)"; }
  after="$(show invsync.service MainPID) $(show invsync@shop-a.service MainPID)"
  read -r single_before instance_before <<<"$before"
  read -r single_after instance_after <<<"$after"
  if [ "$single_after" != 0 ] && [ "$single_after" != "$single_before" ] &&
    [ "$instance_after" != 0 ] && [ "$instance_after" != "$instance_before" ]; then
    ok "upgrading the package restarts invsync.service and invsync@shop-a ($before -> $after)"
  else
    fail "upgrade restarts: invsync.service $single_before -> $single_after, invsync@shop-a $instance_before -> $instance_after"
  fi
  ct dpkg -r invsync >"$scratch/dpkg.log" 2>&1 || { cat "$scratch/dpkg.log"; fail "dpkg -r invsync"; }
  if [ "$(ct systemctl is-active invsync.service invsync@shop-a.service | sort -u | tr '\n' ' ')" = "inactive " ]; then
    ok "removing the package stops invsync.service and invsync@shop-a"
  else
    fail "after dpkg -r: $(ct systemctl is-active invsync.service invsync@shop-a.service | tr '\n' ' ')"
  fi
fi

echo "---"
if [ "$failures" -gt 0 ]; then
  echo "FAILED: $failures check(s) of the units under a real systemd ($gaps known gap(s)), $(elapsed)s"
  exit 1
fi
echo "PASSED: the units under a real systemd, $(elapsed)s$([ "$gaps" -gt 0 ] && echo "; $gaps KNOWN GAP(S) above")"
