#!/usr/bin/env bash
# The one entry point for a newcomer (and for CI: .ci/run is `bash infra/dev.sh test`).
#
#   bash infra/dev.sh setup            install what is missing: JDK 17, Maven, PostgreSQL (apt),
#                                      the .venv (pip install -e ".[test]" when pyproject.toml
#                                      changed), the Kafka jars (Maven Central -> infra/kafka/lib)
#   bash infra/dev.sh test [ARGS]      setup, start the local stack (Kafka + PostgreSQL), export
#                                      its settings and run `python -m pytest ARGS`; without ARGS
#                                      then the fault-injection suite, `python -m tests.faults`, on
#                                      a private stack of its own (LEDGER_FAULTS=0 skips it, =1 runs
#                                      it with ARGS too; LEDGER_FAULTS_SIZE=large for the large size;
#                                      LEDGER_FAULTS_CLUSTER=1, the default under CI=true, also runs
#                                      `python -m tests.faults --cluster`)
#   bash infra/dev.sh demo [ARGS]      python setup only (no servers), then `ledger demo ARGS`
#   bash infra/dev.sh up|down|status|env [--clean]    setup, then `python -m infra ...`
#   bash infra/dev.sh up --cluster     3 Kafka brokers + PostgreSQL primary/standby (infra/cluster.py);
#   bash infra/dev.sh failover|rejoin  then: promote the standby / the old primary back as standby
#
# After `test` the stack is left running (the next run starts in ~1 s; stop it with
# `bash infra/dev.sh down`), except under CI=true, where it uses its own state dir (var/ci)
# and free ports picked at start (a stack a developer left running on the same machine cannot
# collide with it) and is stopped and wiped at the end (after printing the servers' logs if
# something failed).
# LEDGER_KEEP_STACK=1/0 overrides that choice.
# Works as root or as a user with sudo, with or without a terminal.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
venv="$repo/.venv"
py="$venv/bin/python"

say() { printf '[dev.sh %3ds] %s\n' "$SECONDS" "$*" >&2; }
die() { printf 'dev.sh: error: %s\n' "$*" >&2; exit 2; }

# --- system packages (apt) -----------------------------------------------------------------
apt_updated=0
as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -n "$@" || die "need root for: $* (run as root or configure sudo)"
    else die "need root to install system packages ($*): run as root"
    fi
}
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "missing $*, and this is no Debian/Ubuntu (no apt-get): install them by hand"
    if [[ $apt_updated -eq 0 ]]; then
        say "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
        apt_updated=1
    fi
    say "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
        </dev/null >/dev/null || die "apt-get install $* failed"
}

java_major() {  # major version of the java on PATH (0 when none)
    local v
    command -v java >/dev/null 2>&1 || { echo 0; return; }
    v="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\)\(\.\([0-9]*\)\)\{0,1\}.*/\1 \3/p' | head -1)"
    set -- $v
    if [[ "${1:-0}" == 1 ]]; then echo "${2:-0}"; else echo "${1:-0}"; fi
}

ensure_system() {
    local missing=()
    if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
        PATH="$JAVA_HOME/bin:$PATH"
    fi
    if (( $(java_major) < 17 )); then missing+=(openjdk-17-jre-headless); fi
    command -v mvn >/dev/null 2>&1 || missing+=(maven)
    compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
    if (( ${#missing[@]} )); then apt_install "${missing[@]}"; fi
    if (( $(java_major) < 17 )); then  # an older java still first on PATH
        local jdk
        jdk="$(compgen -G '/usr/lib/jvm/java-17-openjdk-*' | head -1 || true)"
        [[ -n "$jdk" ]] || die "Java 17+ not found after installing openjdk-17-jre-headless"
        export JAVA_HOME="$jdk"
        PATH="$JAVA_HOME/bin:$PATH"
    fi
    export PATH
}

# --- python ----------------------------------------------------------------------------------
ensure_python() {
    local base="${PYTHON:-python3}" want have marker="$venv/.pyproject.sha256"
    if [[ ! -x "$venv/bin/pip" ]]; then
        command -v "$base" >/dev/null 2>&1 || apt_install python3 python3-venv
        rm -rf "$venv"
        say "creating $venv"
        if ! "$base" -m venv "$venv" >/dev/null 2>&1; then
            rm -rf "$venv"
            apt_install python3-venv
            "$base" -m venv "$venv" || die "cannot create $venv with $base"
        fi
    fi
    "$py" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 13)))' \
        || die "$venv uses Python $("$py" -V 2>&1); the project needs 3.11 or 3.12 (set PYTHON=python3.11 and delete .venv)"
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    have="$(cat "$marker" 2>/dev/null || true)"
    if [[ "$want" != "$have" ]]; then
        say "pip install -e .[test] (pyproject.toml changed since the last install)"
        "$venv/bin/pip" install -q --disable-pip-version-check --no-input -e ".[test]" </dev/null \
            || die "pip install -e .[test] failed"
        echo "$want" > "$marker"
    fi
}

setup() {
    ensure_system
    ensure_python
    "$py" -m infra fetch >&2 || die "fetching the Kafka jars failed (see above)"
    say "setup done"
}

free_ports() {  # three distinct free loopback ports
    "$py" -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))'
}

stop_flags=()
finish() {  # show the servers' logs on failure, then stop the stack (CI: and drop its data)
    local rc=$?
    if [[ $rc -ne 0 ]]; then
        say "failed (exit $rc): the end of the servers' logs follows"
        "$py" -m infra logs -n 60 >&2 || true
    fi
    "$py" -m infra down "${stop_flags[@]}" >&2 || true
}

run_tests() {
    setup
    local keep="${LEDGER_KEEP_STACK:-}"
    if [[ "${CI:-}" == "true" ]]; then
        keep="${keep:-0}"
        # A state dir of its own: `down --clean` at the end must never touch a developer's
        # stack in var/ on the same checkout.
        export LEDGER_STATE_DIR="${LEDGER_STATE_DIR:-$repo/var/ci}"
        stop_flags=(--clean)
        local ports
        read -r -a ports <<< "$(free_ports)"
        export LEDGER_KAFKA_PORT="${LEDGER_KAFKA_PORT:-${ports[0]}}"
        export LEDGER_KAFKA_CONTROLLER_PORT="${LEDGER_KAFKA_CONTROLLER_PORT:-${ports[1]}}"
        export LEDGER_PG_PORT="${LEDGER_PG_PORT:-${ports[2]}}"
        # tests/integration/test_infra_cluster.py: a private 3-broker cluster + PostgreSQL pair,
        # about 2 minutes; skipped outside CI unless set.
        export LEDGER_CLUSTER_TESTS="${LEDGER_CLUSTER_TESTS:-1}"
        # tests/integration/test_bench_freshness.py: the freshness benchmark's quick mode end to
        # end (2 tax consumers, publisher, project --follow as processes), about a minute.
        export LEDGER_BENCH_FRESHNESS="${LEDGER_BENCH_FRESHNESS:-1}"
    fi
    keep="${keep:-1}"
    if [[ "$keep" != 1 ]]; then
        trap finish EXIT
    fi
    say "starting the local stack"
    "$py" -m infra up >&2
    eval "$("$py" -m infra env)"
    say "python -m pytest $*"
    local rc=0
    "$py" -m pytest "$@" </dev/null || rc=$?
    if [[ $rc -eq 5 ]]; then
        say "pytest collected no tests: that is a failure"
        rc=1
    fi
    say "pytest exit code $rc"
    if [[ "${LEDGER_FAULTS:-}" == 1 || ( $# -eq 0 && "${LEDGER_FAULTS:-}" != 0 ) ]]; then
        local size="${LEDGER_FAULTS_SIZE:-small}" frc=0
        say "fault-injection suite: python -m tests.faults --size $size (on a private stack it restarts)"
        "$py" -m tests.faults --size "$size" </dev/null || frc=$?
        say "fault-injection suite exit code $frc"
        if [[ $rc -eq 0 ]]; then rc=$frc; fi
        # The same county on 3 brokers + a PostgreSQL pair: broker kills, a failover (~3.5 min).
        local cluster_faults="${LEDGER_FAULTS_CLUSTER:-}"
        if [[ "${CI:-}" == "true" ]]; then cluster_faults="${cluster_faults:-1}"; fi
        if [[ "$cluster_faults" == 1 ]]; then
            frc=0
            say "fault-injection suite on the cluster: python -m tests.faults --size $size --cluster"
            "$py" -m tests.faults --size "$size" --cluster </dev/null || frc=$?
            say "cluster fault-injection suite exit code $frc"
            if [[ $rc -eq 0 ]]; then rc=$frc; fi
        fi
    fi
    return "$rc"
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
    setup) setup ;;
    test) run_tests "$@" ;;
    demo)
        ensure_python
        exec "$venv/bin/ledger" demo "$@"
        ;;
    up|down|status|env|clean|fetch|failover|rejoin)
        setup >&2
        exec "$py" -m infra "$cmd" "$@"
        ;;
    *)
        sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
