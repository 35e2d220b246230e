#!/usr/bin/env bash
# The Windows daemon end to end under Wine (called by scripts/test-windows):
#   smoke.sh PATH/TO/sso-agent.exe PATH/TO/native/fake-aws
# The fake AWS runs natively on 127.0.0.1 (Wine shares loopback); every sso-agent process
# runs under Wine on a named pipe of its own, with the real (Wine) Credential Manager.
# Prints one PASS/FAIL line per check and exits non-zero on the first failure. Waits are
# for an event (a log line, a process's exit) with a deadline, never a fixed sleep.
set -euo pipefail
exe=$1 fake=$2
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do { kill -9 "$p" && wait "$p"; } 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

pass() { printf 'PASS  %s\n' "$*"; }
fail() {
    printf 'FAIL  %s\n' "$*"
    for f in "$work"/*.log; do
        [ -s "$f" ] && { printf -- '--- %s\n' "${f##*/}"; tail -n 30 "$f"; }
    done
    exit 1
}
# wait_for FILE TEXT SECONDS: until FILE holds TEXT (the deadline guards a hang).
wait_for() {
    local deadline=$((SECONDS + $3))
    until grep -qF -- "$2" "$1" 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}

"$fake" --auto-approve >"$work/fake.out" 2>"$work/fake.log" &
pids+=($!)
wait_for "$work/fake.out" "listening on" 30 || fail "the fake AWS starts"
url=$(sed -n 's/^fake-aws listening on //p' "$work/fake.out")

id="$$-$RANDOM"
cat >"$work/config" <<CONFIG
[sso-session win]
sso_start_url = https://smoke-$id.awsapps.com/start
sso_region = us-east-1
CONFIG
export AWS_CONFIG_FILE
AWS_CONFIG_FILE=$(winepath -w "$work/config")
export AWS_ENDPOINT_URL=$url
export SSO_AGENT_SOCKET="\\\\.\\pipe\\sso-agent-smoke-$id"
export SSO_AGENT_LOG=info
agent() { timeout 120 wine "$exe" "$@"; }

start_daemon() { # start_daemon LOG
    wine "$exe" run 2>"$work/$1" &
    daemon=$!
    pids+=("$daemon")
    wait_for "$work/$1" serving 90 ||
        fail "the daemon serves $SSO_AGENT_SOCKET ($1)"
}

set +e
agent install --dry-run >/dev/null 2>"$work/install.log"
rc=$?
set -e
[ $rc -eq 1 ] && grep -q "Windows service is not offered" "$work/install.log" ||
    fail "install says plainly that a Windows service install is not offered (exit $rc)"
pass "install: $(tail -n 1 "$work/install.log")"

# The default pipe is named after the user (Wine's USERNAME is the Unix user's name; no
# daemon there: exit 3, naming it).
set +e
SSO_AGENT_SOCKET= agent status >/dev/null 2>"$work/default.log"
rc=$?
set -e
[ $rc -eq 3 ] && grep -qF "\\\\.\\pipe\\sso-agent-$(id -un) " "$work/default.log" ||
    fail "the default pipe is \\\\.\\pipe\\sso-agent-<user name> (exit $rc)"
pass "default pipe: $(tail -n 1 "$work/default.log")"

start_daemon daemon1.log
pass "daemon 1 serves the named pipe $SSO_AGENT_SOCKET"

set +e
agent run 2>"$work/second.log"
rc=$?
set -e
[ $rc -eq 1 ] && grep -q "already served by another process" "$work/second.log" ||
    fail "a second daemon on the same pipe refuses (exit $rc)"
pass "a second daemon on the same pipe refuses: $(tail -n 1 "$work/second.log")"

agent login win --device-code --no-browser >"$work/login.out" 2>"$work/login.log" ||
    fail "device login (exit $?)"
grep -q "Logged in to win" "$work/login.log" || fail "device login reports success"
pass "device-code login through the daemon"

token=$(agent token win 2>"$work/token.log") || fail "token (exit $?)"
[ -n "$token" ] || fail "token prints an access token"
pass "token from a second process"

agent status --json >"$work/status.json" 2>"$work/status.log" || fail "status (exit $?)"
state=$(jq -r '.sessions[] | select(.name == "win") | .state' "$work/status.json")
store=$(jq -r '"\(.store.backend) available=\(.store.available)"' "$work/status.json")
[ "$state" = valid ] || fail "status says the session is valid (got $state)"
[ "$store" = "keyring available=true" ] || fail "status says the Credential Manager is used (got $store)"
pass "status: session valid, store $store"

{ kill -9 "$daemon" && wait "$daemon"; } 2>/dev/null || true
pass "daemon 1 killed (SIGKILL)"

start_daemon daemon2.log
again=$(agent token win 2>"$work/token2.log") || fail "token after restart (exit $?)"
[ "$again" = "$token" ] || fail "the restarted daemon serves the same token"
logins=$(curl -fsS "$url/_fake/requests" | jq '[.[] | select(.op == "StartDeviceAuthorization")] | length')
[ "$logins" = 1 ] || fail "no new login after the restart ($logins device authorizations)"
pass "restart: the token comes back from the Credential Manager, no new login"

agent logout win >/dev/null 2>"$work/logout.log" || fail "logout (exit $?)"
set +e
agent token win >/dev/null 2>"$work/token3.log"
rc=$?
set -e
[ $rc -eq 4 ] || fail "after logout, token says login required (exit $rc)"
pass "logout forgets the token (token exits 4)"

echo "windows smoke: all checks passed"
