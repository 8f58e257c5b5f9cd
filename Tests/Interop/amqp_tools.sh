#!/usr/bin/env bash
# Interop scenarios with rabbitmq-c's command-line tools (amqp-declare-queue, amqp-publish,
# amqp-get, amqp-consume, amqp-delete-queue) against any AMQP 0-9-1 broker.
#
#   bash Tests/Interop/amqp_tools.sh amqp://guest:guest@127.0.0.1:5673/%2F
#   bash Tests/Interop/amqp_tools.sh URL consume_count   # only the named scenarios
#
# The URL may also come from CONDUCTOR_INTEROP_URL. rabbitmq-c reads "amqp://host:port/"
# as an EMPTY vhost, so a URL without a vhost gets "/%2F" appended. Each scenario runs in
# its own process under `timeout`, uses queue names unique to this run, asserts real
# outcomes and prints PASS/FAIL; the script exits 1 if any scenario failed.
set -uo pipefail

SCENARIO_TIMEOUT="${CONDUCTOR_INTEROP_SCENARIO_TIMEOUT:-30}"
SCENARIOS=(declare_queue publish_get_and_empty consume_count line_buffered_publish
           exchange_routing one_mib_message delete_queue wrong_password_refused)

normalize_url() {
    local url="$1"
    if [[ "$url" =~ ^amqps?://[^/]+$ ]]; then url="$url/%2F"; fi
    if [[ "$url" == */ ]]; then url="$url%2F"; fi
    echo "$url"
}

fail() { echo "$*" >&2; exit 1; }
unique() { echo "interop-tools-$RUN_ID-$1-$RANDOM"; }

# --- scenarios (each runs in its own process; exit non-zero = failed) ---------------

declare_queue() {
    local q got
    q=$(unique declare)
    got=$(amqp-declare-queue --url "$URL" -q "$q") || fail "amqp-declare-queue failed"
    [[ "$got" == "$q" ]] || fail "declare printed '$got', expected '$q'"
    got=$(amqp-declare-queue --url "$URL" -q "$q") || fail "redeclare of the same queue failed"
    [[ "$got" == "$q" ]] || fail "redeclare printed '$got'"
    amqp-delete-queue --url "$URL" -q "$q" > /dev/null || fail "delete failed"
}

publish_get_and_empty() {
    local q got rc
    q=$(unique get)
    amqp-declare-queue --url "$URL" -q "$q" > /dev/null || fail "declare failed"
    amqp-publish --url "$URL" -r "$q" -b "hello from rabbitmq-c" || fail "publish failed"
    got=$(amqp-get --url "$URL" -q "$q") || fail "amqp-get failed (rc $?)"
    [[ "$got" == "hello from rabbitmq-c" ]] || fail "amqp-get printed '$got'"
    amqp-get --url "$URL" -q "$q" > /dev/null 2>&1
    rc=$?
    [[ $rc -eq 2 ]] || fail "amqp-get on an empty queue must exit 2 (get-empty), got $rc"
    amqp-delete-queue --url "$URL" -q "$q" > /dev/null
}

consume_count() {
    local q got rc i
    q=$(unique consume)
    amqp-declare-queue --url "$URL" -q "$q" > /dev/null || fail "declare failed"
    for i in 1 2 3 4; do amqp-publish --url "$URL" -r "$q" -b "m$i;" || fail "publish $i failed"; done
    got=$(timeout 15 amqp-consume --url "$URL" -q "$q" -c 3 cat)
    rc=$?
    [[ $rc -eq 0 ]] || fail "amqp-consume -c 3 exited $rc"
    [[ "$got" == "m1;m2;m3;" ]] || fail "amqp-consume -c 3 printed '$got', expected 'm1;m2;m3;'"
    got=$(amqp-get --url "$URL" -q "$q") || fail "the 4th message must still be there"
    [[ "$got" == "m4;" ]] || fail "4th message was '$got'"
    amqp-get --url "$URL" -q "$q" > /dev/null 2>&1
    [[ $? -eq 2 ]] || fail "queue must be empty after consuming 3 (acked) and getting 1"
    amqp-delete-queue --url "$URL" -q "$q" > /dev/null
}

line_buffered_publish() {
    local q got
    q=$(unique lines)
    amqp-declare-queue --url "$URL" -q "$q" > /dev/null || fail "declare failed"
    printf 'alpha\nbeta\ngamma\n' | amqp-publish --url "$URL" -r "$q" -l || fail "publish -l failed"
    got=$(timeout 15 amqp-consume --url "$URL" -q "$q" -c 3 -p 1 cat) || fail "amqp-consume failed"
    [[ "$got" == $'alpha\nbeta\ngamma' ]] || fail "three line messages in order expected, got '$got'"
    amqp-delete-queue --url "$URL" -q "$q" > /dev/null
}

# amqp-consume -e/-r declares a server-named queue and binds it; publish until it is bound.
exchange_routing() {
    local dir pid_direct pid_fanout1 pid_fanout2 key deadline
    dir=$(mktemp -d)
    key=$(unique key)
    timeout 20 amqp-consume --url "$URL" -e amq.direct -r "$key" -c 2 cat > "$dir/direct" 2> "$dir/direct.err" &
    pid_direct=$!
    timeout 20 amqp-consume --url "$URL" -e amq.fanout -r any -c 1 cat > "$dir/fanout1" 2> "$dir/fanout1.err" &
    pid_fanout1=$!
    timeout 20 amqp-consume --url "$URL" -e amq.fanout -r any -c 1 cat > "$dir/fanout2" 2> "$dir/fanout2.err" &
    pid_fanout2=$!
    deadline=$((SECONDS + 15))
    # Publish until each consumer got its message (the binding may not exist yet).
    while (( SECONDS < deadline )); do
        # A message with another key goes first: a broker that ignores the key fails.
        kill -0 "$pid_direct" 2> /dev/null && amqp-publish --url "$URL" -e amq.direct -r "$key-other" -b "WRONG;" \
            && amqp-publish --url "$URL" -e amq.direct -r "$key" -b "direct;"
        { kill -0 "$pid_fanout1" 2> /dev/null || kill -0 "$pid_fanout2" 2> /dev/null; } \
            && amqp-publish --url "$URL" -e amq.fanout -r "whatever" -b "fanout"
        kill -0 "$pid_direct" 2> /dev/null || kill -0 "$pid_fanout1" 2> /dev/null || kill -0 "$pid_fanout2" 2> /dev/null || break
        sleep 0.2
    done
    wait "$pid_direct"; local rc1=$?
    wait "$pid_fanout1"; local rc2=$?
    wait "$pid_fanout2"; local rc3=$?
    local direct fanout1 fanout2
    direct=$(cat "$dir/direct"); fanout1=$(cat "$dir/fanout1"); fanout2=$(cat "$dir/fanout2")
    rm -rf "$dir"
    [[ $rc1 -eq 0 && "$direct" == "direct;direct;" ]] || fail "direct consumer: rc $rc1, got '$direct'"
    [[ $rc2 -eq 0 && "$fanout1" == "fanout" ]] || fail "fanout consumer 1: rc $rc2, got '$fanout1'"
    [[ $rc3 -eq 0 && "$fanout2" == "fanout" ]] || fail "fanout consumer 2: rc $rc3, got '$fanout2'"
}

one_mib_message() {
    local q dir
    q=$(unique big)
    dir=$(mktemp -d)
    head -c 1048576 /dev/urandom > "$dir/in"
    amqp-declare-queue --url "$URL" -q "$q" > /dev/null || fail "declare failed"
    amqp-publish --url "$URL" -r "$q" < "$dir/in" || fail "publish of 1 MiB from stdin failed"
    amqp-get --url "$URL" -q "$q" > "$dir/out" || fail "amqp-get of the 1 MiB message failed"
    cmp -s "$dir/in" "$dir/out" || fail "1 MiB body differs: sent $(stat -c %s "$dir/in") bytes, got $(stat -c %s "$dir/out")"
    rm -rf "$dir"
    amqp-delete-queue --url "$URL" -q "$q" > /dev/null
}

delete_queue() {
    local q got rc
    q=$(unique delete)
    amqp-declare-queue --url "$URL" -q "$q" > /dev/null || fail "declare failed"
    amqp-publish --url "$URL" -r "$q" -b one && amqp-publish --url "$URL" -r "$q" -b two || fail "publish failed"
    got=$(amqp-delete-queue --url "$URL" -q "$q") || fail "amqp-delete-queue failed"
    [[ "$got" == "2" ]] || fail "delete-ok must count 2 messages, printed '$got'"
    got=$(amqp-get --url "$URL" -q "$q" 2>&1)
    rc=$?
    [[ $rc -ne 0 && $rc -ne 2 && "$got" == *404* ]] || fail "get from the deleted queue must fail with 404, rc $rc: $got"
}

wrong_password_refused() {
    local bad got rc
    bad=$(echo "$URL" | sed -E 's#^(amqps?://[^:/@]+):[^@]*@#\1:wrong-password@#')
    [[ "$bad" != "$URL" ]] || fail "URL has no user:password to change: $URL"
    got=$(amqp-declare-queue --url "$bad" -q "$(unique never)" 2>&1)
    rc=$?
    [[ $rc -ne 0 ]] || fail "a wrong password must be refused, but declare succeeded: $got"
    [[ "$got" == *403* ]] || fail "refusal must be connection.close 403 ACCESS_REFUSED, got: $got"
}

# --- runner --------------------------------------------------------------------------

if [[ "${1:-}" == "--scenario" ]]; then
    URL="$3"; RUN_ID="$4"
    "$2"
    exit $?
fi

if [[ "${1:-}" == "--list" ]]; then printf '%s\n' "${SCENARIOS[@]}"; exit 0; fi
URL="${1:-${CONDUCTOR_INTEROP_URL:-}}"
[[ -n "$URL" ]] || { echo "usage: $0 URL [scenario...]   (or set CONDUCTOR_INTEROP_URL)" >&2; exit 2; }
URL=$(normalize_url "$URL")
shift || true
selected=("$@")
(( ${#selected[@]} )) || selected=("${SCENARIOS[@]}")
for command in amqp-declare-queue amqp-publish amqp-get amqp-consume amqp-delete-queue; do
    command -v "$command" > /dev/null || { echo "missing $command (apt-get install amqp-tools)" >&2; exit 2; }
done

RUN_ID="$$-$(date +%s)"
echo "rabbitmq-c tools interop against $URL (run id $RUN_ID)"
failed=()
for scenario in "${selected[@]}"; do
    start=$(date +%s%N)
    output=$(timeout --kill-after=5 "$SCENARIO_TIMEOUT" bash "$0" --scenario "$scenario" "$URL" "$RUN_ID" 2>&1)
    rc=$?
    elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
    elapsed=$(printf '%d.%02d' $((elapsed_ms / 1000)) $((elapsed_ms % 1000 / 10)))
    if [[ $rc -eq 0 ]]; then
        echo "PASS $scenario (${elapsed}s)"
    else
        [[ $rc -eq 124 ]] && output="timed out after ${SCENARIO_TIMEOUT}s; $output"
        echo "FAIL $scenario (${elapsed}s): $(echo "$output" | tr '\n' ' ')"
        failed+=("$scenario")
    fi
done
echo "rabbitmq-c interop: $(( ${#selected[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed${failed:+: ${failed[*]}}"
(( ${#failed[@]} == 0 ))
