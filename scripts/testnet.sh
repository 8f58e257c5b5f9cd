#!/usr/bin/env bash
# Test hosts with real addresses: Linux network namespaces on a private bridge, each
# running its own sshd with its own hostname and its own /opt/conductor.
#
#   scripts/testnet.sh up N [--name NAME] [--subnet A.B.C] [--small-disk HOST]...
#   scripts/testnet.sh down [--name NAME]
#   scripts/testnet.sh exec HOST [--] CMD...
#   scripts/testnet.sh add HOST ADDRESS [--name NAME]
#   scripts/testnet.sh remove HOST [--name NAME]
#   scripts/testnet.sh status [--name NAME]
#
# up: a bridge NAME-br with A.B.C.1/24 in the root namespace and hosts NAME-h1..NAME-hN
# (network namespaces of the same names) with A.B.C.2, A.B.C.3, ... on their eth0, lo up.
# No default route and no NAT in the hosts: they reach the root namespace and each other,
# nothing else. Each host runs /usr/sbin/sshd on ADDRESS:22 in its own UTS and mount
# namespace: hostname HOST, its own ed25519 host key, root logs in with the test key
# STATE/id_ed25519 only, and /opt/conductor is a private folder (bound to
# STATE/HOST/opt-conductor), or with --small-disk HOST a 4 MiB tmpfs. If NAME is
# already up it is taken down first. up returns once every host answers
# `ssh ... root@ADDRESS hostname` with its own name, and prints one line per host
# ("HOST ADDRESS") and then "state STATE" on stdout. If it fails halfway it undoes all.
# Defaults: NAME ctn, subnet 10.231.7. N is 1..200.
#
# STATE is /tmp/conductor-testnet-NAME: id_ed25519(.pub), known_hosts (ADDRESS ssh-ed25519
# KEY per host), hosts ("HOST ADDRESS" per line), hosts.json ([{"name", "address",
# "port", "user", "sshd_pid"}]), ssh_config (ssh -F STATE/ssh_config HOST), and
# HOST/ with each host's sshd_config, host key, sshd.pid, sshd.log.
#
# down: stops each sshd (TERM, then KILL) and every other process still in a host's
# network or mount namespace, deletes the namespaces, veths and bridge by name, removes
# STATE. Safe when nothing is up.
# exec: runs CMD in HOST's network, mount and UTS namespaces (nsenter into its sshd).
# add: one more host NAME-hK at ADDRESS (in the subnet) on a testnet that is up; prints
# "HOST ADDRESS". remove: stops and deletes one host.
# status: prints hosts.json, or exits 1 when NAME is not up.
#
# Needs root, iproute2, openssh-server, openssh-client, util-linux. The readiness wait is
# CONDUCTOR_TESTNET_READY_TIMEOUT seconds per host (default 30). See docs/testing.md.
set -euo pipefail

PROG=testnet.sh
DEFAULT_NAME=ctn
DEFAULT_SUBNET=10.231.7
READY_TIMEOUT="${CONDUCTOR_TESTNET_READY_TIMEOUT:-30}"
SMALL_DISK_SIZE=4m
# Folders that are private to each host (bound inside its mount namespace).
PRIVATE_DIR=/opt/conductor

die() { echo "$PROG: $*" >&2; exit 1; }
note() { echo "$PROG: $*" >&2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

# --- checks ------------------------------------------------------------------------------
require_root() {
    (( EUID == 0 )) || die "must run as root (network namespaces, bridges and sshd need it); try: sudo $0 $*"
}

require_tools() {
    local missing=() packages=() entry tool package
    for entry in ip:iproute2 /usr/sbin/sshd:openssh-server ssh:openssh-client ssh-keygen:openssh-client \
                 nsenter:util-linux unshare:util-linux flock:util-linux mount:mount hostname:hostname; do
        tool=${entry%%:*}; package=${entry#*:}
        if [[ "$tool" == /* ]]; then [[ -x "$tool" ]] && continue; else command -v "$tool" > /dev/null && continue; fi
        missing+=("$tool")
        [[ " ${packages[*]} " == *" $package "* ]] || packages+=("$package")
    done
    (( ${#missing[@]} == 0 )) && return 0
    local hint=""
    [[ " ${packages[*]} " == *" openssh-server "* ]] \
        && hint=" (with /usr/sbin/policy-rc.d saying 'exit 101' first, so that the system's own sshd does not start)"
    die "missing ${missing[*]}; install Debian's ${packages[*]}: apt-get install ${packages[*]}$hint"
}

check_name() {
    [[ "$1" =~ ^[a-z][a-z0-9]{0,9}$ ]] \
        || die "bad testnet name '$1': 1 to 10 lower-case letters and digits, starting with a letter (interface names are at most 15 characters)"
}

check_subnet() {
    [[ "$1" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] \
        && (( BASH_REMATCH[1] <= 255 && BASH_REMATCH[2] <= 255 && BASH_REMATCH[3] <= 255 )) \
        || die "bad subnet '$1': give the first three octets of a /24, e.g. $DEFAULT_SUBNET"
}

ip_to_int() {
    local a b c d
    IFS=. read -r a b c d <<< "$1"
    echo $(( (a << 24) | (b << 16) | (c << 8) | d ))
}

# Refuses a subnet that overlaps an address on any interface but our own bridge.
check_subnet_free() {
    local name="$1" subnet="$2" net _idx dev _family cidr _rest len m mask
    net=$(ip_to_int "$subnet.0")
    while read -r _idx dev _family cidr _rest; do
        dev=${dev%%@*}
        [[ "$dev" == "$name-br" ]] && continue
        len=${cidr#*/}
        m=$(( len < 24 ? len : 24 ))
        mask=$(( m == 0 ? 0 : (0xFFFFFFFF << (32 - m)) & 0xFFFFFFFF ))
        if (( ($(ip_to_int "${cidr%/*}") & mask) == (net & mask) )); then
            die "subnet $subnet.0/24 is taken: interface $dev has $cidr; choose another with --subnet A.B.C"
        fi
    done < <(ip -4 -o addr show)
}

# --- names and state -----------------------------------------------------------------------
state_of() { echo "/tmp/conductor-testnet-$1"; }

# NAME-hK -> sets HOST_NAME (NAME) and HOST_INDEX (K); dies on any other form.
parse_host() {
    [[ "$1" =~ ^([a-z][a-z0-9]{0,9})-h([1-9][0-9]{0,2})$ ]] \
        || die "bad host name '$1': expected NAME-hK (K 1..999), e.g. $DEFAULT_NAME-h1"
    HOST_NAME=${BASH_REMATCH[1]}
    HOST_INDEX=${BASH_REMATCH[2]}
}

lock() {  # one up/down/add/remove of a testnet at a time
    mkdir -p /run/lock
    exec 9> "/run/lock/conductor-testnet-$1.lock"
    flock -w 300 9 || die "testnet $1 is busy (another testnet.sh holds /run/lock/conductor-testnet-$1.lock)"
}

is_alive() {  # pid exists and is not a zombie
    local stat
    stat=$(cat "/proc/$1/stat" 2> /dev/null) || return 1
    stat=${stat##*) }
    [[ "${stat%% *}" != Z ]]
}

# Processes whose mount namespace is one of $@ (e.g. "mnt:[4026532345]").
pids_in_mount_namespaces() {
    (( $# )) || return 0
    local root_ns our_ns
    root_ns=$(readlink /proc/1/ns/mnt 2> /dev/null || true)   # unreadable on some machines
    our_ns=$(readlink /proc/$$/ns/mnt 2> /dev/null || true)
    { ls -l /proc/[0-9]*/ns/mnt 2> /dev/null || true; } \
        | awk -v list="$*" -v root="$root_ns" -v ours="$our_ns" '
            BEGIN { n = split(list, l, " "); for (i = 1; i <= n; i++) if (l[i] != root && l[i] != ours) want[l[i]] = 1 }
            ($NF in want) { split($(NF-2), p, "/"); print p[3] }'
}

# TERM, wait up to 3 s, KILL, wait up to 2 s. Returns 1 if any is still there.
kill_pids() {
    local pid deadline left
    (( $# )) || return 0
    kill -TERM "$@" 2> /dev/null || true
    deadline=$((SECONDS + 3))
    while :; do
        left=(); for pid in "$@"; do is_alive "$pid" && left+=("$pid"); done
        (( ${#left[@]} )) || return 0
        (( SECONDS < deadline )) || break
        sleep 0.1
    done
    kill -KILL "${left[@]}" 2> /dev/null || true
    deadline=$((SECONDS + 2))
    while :; do
        left=(); for pid in "$@"; do is_alive "$pid" && left+=("$pid"); done
        (( ${#left[@]} )) || return 0
        (( SECONDS < deadline )) || { note "processes still alive after KILL: ${left[*]}"; return 1; }
        sleep 0.1
    done
}

# Stops everything of HOSTs of testnet NAME and deletes them: their sshds (by pid), every
# process in their network or mount namespaces (sessions, agents Conductor started), the
# namespaces, their veths, their state folders. All hosts at once: one wait, not one each.
hosts_stop() {
    local name="$1" state host dir pid mnt round pids=() mnts=()
    shift
    (( $# )) || return 0
    state=$(state_of "$name")
    for host in "$@"; do
        dir="$state/$host"
        [[ -f "$dir/mntns" ]] || continue
        mnt=$(< "$dir/mntns"); mnts+=("$mnt")
        pid=$(cat "$dir/sshd.pid" 2> /dev/null || true)
        # The sshd by its pid, if it is still the process we started (same mount namespace).
        if [[ "$pid" =~ ^[0-9]+$ ]] && is_alive "$pid" && [[ "$(readlink "/proc/$pid/ns/mnt" 2> /dev/null)" == "$mnt" ]]; then
            pids+=("$pid")
        fi
    done
    kill_pids "${pids[@]}" || true
    # Then whatever else runs there; again, for what was forked meanwhile.
    for round in 1 2 3; do
        pids=()
        for host in "$@"; do
            [[ -e "/run/netns/$host" ]] || continue
            while read -r pid; do [[ -n "$pid" ]] && pids+=("$pid"); done < <(ip netns pids "$host" 2> /dev/null || true)
        done
        while read -r pid; do [[ -n "$pid" ]] && pids+=("$pid"); done < <(pids_in_mount_namespaces "${mnts[@]}")
        (( ${#pids[@]} )) || break
        kill_pids $(printf '%s\n' "${pids[@]}" | sort -un) || true
    done
    for host in "$@"; do
        if [[ -e "/run/netns/$host" ]]; then ip netns del "$host" || note "could not delete namespace $host"; fi
        parse_host "$host"
        if ip link show dev "$name-v$HOST_INDEX" > /dev/null 2>&1; then ip link del "$name-v$HOST_INDEX" 2> /dev/null || true; fi
        rm -rf "${state:?}/$host"
    done
}

# Hosts of NAME known from the state folder or from the namespaces (sorted by K).
hosts_of() {
    local name="$1" state
    state=$(state_of "$name")
    {
        [[ -d "$state" ]] && ls "$state"
        ip netns list 2> /dev/null | awk '{print $1}'
    } | grep -E "^$name-h[1-9][0-9]{0,2}\$" | sort -u -V || true
}

is_up() {
    local name="$1"
    [[ -d "$(state_of "$name")" || -n "$(hosts_of "$name")" ]] || ip link show dev "$name-br" > /dev/null 2>&1
}

teardown() {
    local name="$1"
    hosts_stop "$name" $(hosts_of "$name")
    if ip link show dev "$name-br" > /dev/null 2>&1; then ip link del "$name-br"; fi
    rm -rf "$(state_of "$name")"
}

# Rewrites hosts, known_hosts, hosts.json and ssh_config from the STATE/HOST folders.
write_index() {
    local name="$1" state host address pid first=1
    state=$(state_of "$name")
    : > "$state/hosts.tmp"; : > "$state/known_hosts.tmp"; : > "$state/ssh_config.tmp"
    printf '[' > "$state/hosts.json.tmp"
    for host in $(hosts_of "$name"); do
        [[ -f "$state/$host/address" ]] || continue
        address=$(< "$state/$host/address")
        pid=$(cat "$state/$host/sshd.pid" 2> /dev/null || echo 0)
        echo "$host $address" >> "$state/hosts.tmp"
        echo "$address $(cut -d ' ' -f 1-2 "$state/$host/ssh_host_ed25519_key.pub")" >> "$state/known_hosts.tmp"
        (( first )) || printf ',' >> "$state/hosts.json.tmp"
        first=0
        printf '\n  {"name": "%s", "address": "%s", "port": 22, "user": "root", "sshd_pid": %d}' \
            "$host" "$address" "$pid" >> "$state/hosts.json.tmp"
        cat >> "$state/ssh_config.tmp" <<EOF
Host $host $address
    HostName $address
    User root
    Port 22
    IdentityFile $state/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $state/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 5
    LogLevel ERROR

EOF
    done
    printf '\n]\n' >> "$state/hosts.json.tmp"
    local file
    for file in hosts known_hosts hosts.json ssh_config; do mv -f "$state/$file.tmp" "$state/$file"; done
}

ssh_base() {  # the ssh command a test uses, for host checks
    local state="$1"
    SSH=(ssh -F /dev/null -i "$state/id_ed25519" -o IdentitiesOnly=yes
         -o UserKnownHostsFile="$state/known_hosts" -o GlobalKnownHostsFile=/dev/null
         -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR)
}

# Makes one host: namespace, veth on the bridge, address, sshd in its own UTS and mount
# namespace. Does not wait for it.
host_start() {
    local name="$1" host="$2" index="$3" address="$4" small="$5" state dir ns_pid mnt
    state=$(state_of "$name")
    dir="$state/$host"
    mkdir -p "$dir/opt-conductor"
    echo "$address" > "$dir/address"

    ip netns add "$host"
    ip link add "$name-v$index" type veth peer name eth0 netns "$host"
    ip link set "$name-v$index" master "$name-br"
    ip link set "$name-v$index" up
    ip -n "$host" link set lo up
    ip -n "$host" addr add "$address/24" dev eth0
    ip -n "$host" link set eth0 up

    ssh-keygen -q -t ed25519 -N '' -C "$host" -f "$dir/ssh_host_ed25519_key" < /dev/null
    cat > "$dir/sshd_config" <<EOF
# sshd of test host $host (scripts/testnet.sh)
ListenAddress $address:22
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $state/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PrintMotd no
UseDNS no
MaxStartups 100:30:200
MaxSessions 50
Subsystem sftp internal-sftp
EOF
    /usr/sbin/sshd -t -f "$dir/sshd_config" || die "sshd refuses $dir/sshd_config"

    # hostname and mounts only in the new namespaces (private propagation: nothing reaches
    # the root namespace); sshd daemonizes and writes its pid file. Our lock (fd 9) stays here.
    ip netns exec "$host" unshare --mount --uts --propagation private sh -c '
        hostname "$1" || exit 1
        if [ "$2" = 1 ]; then
            mount -t tmpfs -o "size=$3,mode=755" conductor-small "$4" || exit 1
        else
            mount --bind "$5" "$4" || exit 1
        fi
        exec /usr/sbin/sshd -f "$6" -E "$7"
    ' sh "$host" "$small" "$SMALL_DISK_SIZE" "$PRIVATE_DIR" "$dir/opt-conductor" "$dir/sshd_config" "$dir/sshd.log" \
        9>&- < /dev/null > "$dir/start.log" 2>&1 \
        || die "sshd of $host did not start: $(cat "$dir/start.log" "$dir/sshd.log" 2> /dev/null | tail -n 5)"

    local deadline=$((SECONDS + 10))
    until [[ -s "$dir/sshd.pid" ]]; do
        (( SECONDS < deadline )) || die "sshd of $host wrote no pid file in 10 s: $(tail -n 5 "$dir/sshd.log" 2> /dev/null)"
        sleep 0.05
    done
    ns_pid=$(< "$dir/sshd.pid")
    mnt=$(readlink "/proc/$ns_pid/ns/mnt") || die "sshd of $host (pid $ns_pid) exited: $(tail -n 5 "$dir/sshd.log" 2> /dev/null)"
    echo "$mnt" > "$dir/mntns"
}

# Waits until HOST answers `ssh root@ADDRESS hostname` with its own name.
host_wait() {
    local name="$1" host="$2" address="$3" state output="" deadline
    state=$(state_of "$name")
    ssh_base "$state"
    deadline=$((SECONDS + READY_TIMEOUT))
    while :; do
        output=$("${SSH[@]}" "root@$address" hostname 2>&1 < /dev/null) && [[ "$output" == "$host" ]] && return 0
        (( SECONDS < deadline )) || die "$host ($address) did not answer ssh hostname with '$host' in ${READY_TIMEOUT} s; last: ${output:-nothing}; sshd log: $(tail -n 3 "$state/$host/sshd.log" 2> /dev/null)"
        sleep 0.1
    done
}

# host_wait for each HOST, 16 at a time (an ssh handshake is mostly waiting).
hosts_wait() {
    local name="$1" state host pids=() failed=0 pid
    shift
    state=$(state_of "$name")
    for host in "$@"; do
        host_wait "$name" "$host" "$(< "$state/$host/address")" &
        pids+=($!)
        if (( ${#pids[@]} == 16 )); then
            for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
            pids=()
        fi
    done
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    (( ! failed )) || die "not every host answered over ssh (see above)"
}

prepare_root_namespace() {
    mkdir -p /run/sshd && chmod 755 /run/sshd   # sshd's privilege-separation directory
    mkdir -p "$PRIVATE_DIR"                        # mount point for each host's own folder
}

# --- commands ------------------------------------------------------------------------------
UNDO_NAME=""
UNDO_HOST=""
on_exit() {
    local rc=$?
    if (( rc != 0 )) && [[ -n "$UNDO_NAME" ]]; then
        if [[ -n "$UNDO_HOST" ]]; then
            note "add failed; removing $UNDO_HOST"
            hosts_stop "$UNDO_NAME" "$UNDO_HOST" || true
            [[ -d "$(state_of "$UNDO_NAME")" ]] && write_index "$UNDO_NAME" || true
        else
            note "up failed; taking testnet $UNDO_NAME down again"
            teardown "$UNDO_NAME" || true
        fi
    fi
    exit $rc
}

cmd_up() {
    local count="" name="$DEFAULT_NAME" subnet="$DEFAULT_SUBNET" small=() arg
    while (( $# )); do
        case "$1" in
            --name) name="${2:?--name needs a value}"; shift ;;
            --name=*) name="${1#--name=}" ;;
            --subnet) subnet="${2:?--subnet needs a value}"; shift ;;
            --subnet=*) subnet="${1#--subnet=}" ;;
            --small-disk) small+=("${2:?--small-disk needs a host name}"); shift ;;
            --small-disk=*) small+=("${1#--small-disk=}") ;;
            -*) die "up: unknown option '$1' (see --help)" ;;
            *) [[ -z "$count" ]] || die "up: unexpected argument '$1'"; count="$1" ;;
        esac
        shift
    done
    [[ "$count" =~ ^[0-9]+$ ]] && (( count >= 1 && count <= 200 )) || die "up: N must be a number of hosts from 1 to 200, not '${count}'"
    check_name "$name"; check_subnet "$subnet"
    for arg in "${small[@]}"; do
        parse_host "$arg"
        [[ "$HOST_NAME" == "$name" ]] && (( HOST_INDEX <= count )) || die "up: --small-disk $arg is not one of $name-h1..$name-h$count"
    done
    require_root up; require_tools
    lock "$name"
    local started=$SECONDS state k host address smallflag
    state=$(state_of "$name")
    if is_up "$name"; then
        note "testnet $name is up already: taking it down first"
        teardown "$name"
    fi
    check_subnet_free "$name" "$subnet"

    UNDO_NAME="$name"
    prepare_root_namespace
    mkdir -p "$state"
    chmod 700 "$state"
    echo "$name" > "$state/name"
    echo "$subnet" > "$state/subnet"
    ssh-keygen -q -t ed25519 -N '' -C "conductor-testnet-$name" -f "$state/id_ed25519" < /dev/null
    cp "$state/id_ed25519.pub" "$state/authorized_keys"

    ip link add "$name-br" type bridge
    ip addr add "$subnet.1/24" dev "$name-br"
    ip link set "$name-br" up

    for (( k = 1; k <= count; k++ )); do
        host="$name-h$k"; address="$subnet.$((k + 1))"; smallflag=0
        for arg in "${small[@]}"; do [[ "$arg" == "$host" ]] && smallflag=1; done
        host_start "$name" "$host" "$k" "$address" "$smallflag"
    done
    write_index "$name"
    hosts_wait "$name" $(cut -d ' ' -f 1 "$state/hosts")
    UNDO_NAME=""
    cat "$state/hosts"
    echo "state $state"
    note "$count host(s) up in $((SECONDS - started)) s; ssh -F $state/ssh_config $name-h1"
}

# The only option of down and status: --name NAME (checked); sets NAME_OPTION.
name_option_only() {
    local command="$1"; shift
    NAME_OPTION="$DEFAULT_NAME"
    while (( $# )); do
        case "$1" in
            --name) NAME_OPTION="${2:?--name needs a value}"; shift ;;
            --name=*) NAME_OPTION="${1#--name=}" ;;
            *) die "$command: unexpected argument '$1' (see --help)" ;;
        esac
        shift
    done
    check_name "$NAME_OPTION"
}

cmd_down() {
    name_option_only down "$@"
    local name="$NAME_OPTION"
    require_root down; require_tools
    lock "$name"
    if is_up "$name"; then
        teardown "$name"
        note "testnet $name is down"
    else
        note "testnet $name is not up; nothing to do"
    fi
}

# HOST's sshd pid, checked alive.
sshd_pid_of() {
    local host="$1" state pid
    parse_host "$host"
    state=$(state_of "$HOST_NAME")
    [[ -f "$state/$host/sshd.pid" ]] || die "no host $host (is testnet $HOST_NAME up? scripts/testnet.sh status --name $HOST_NAME)"
    pid=$(< "$state/$host/sshd.pid")
    is_alive "$pid" || die "the sshd of $host (pid $pid) is gone; bring the testnet up again"
    echo "$pid"
}

cmd_exec() {
    local host="${1:-}"
    [[ -n "$host" ]] || die "exec: usage: exec HOST [--] CMD..."
    shift
    [[ "${1:-}" == "--" ]] && shift
    (( $# )) || die "exec: no command given"
    require_root exec
    local pid
    pid=$(sshd_pid_of "$host")
    exec nsenter -t "$pid" -n -m -u -- "$@"
}

# Options after positional arguments: --name NAME must agree with the host's NAME.
host_and_name() {
    local host="$1"; shift
    parse_host "$host"
    while (( $# )); do
        case "$1" in
            --name) [[ "${2:-}" == "$HOST_NAME" ]] || die "host $host is not in testnet '${2:-}'"; shift ;;
            --name=*) [[ "${1#--name=}" == "$HOST_NAME" ]] || die "host $host is not in testnet '${1#--name=}'" ;;
            *) die "unexpected argument '$1' (see --help)" ;;
        esac
        shift
    done
}

cmd_add() {
    local host="${1:-}" address="${2:-}"
    [[ -n "$host" && -n "$address" ]] || die "add: usage: add NAME-hK ADDRESS [--name NAME]"
    shift 2
    host_and_name "$host" "$@"
    local name="$HOST_NAME" index="$HOST_INDEX" state subnet
    require_root add; require_tools
    lock "$name"
    state=$(state_of "$name")
    [[ -f "$state/subnet" ]] || die "add: testnet $name is not up (scripts/testnet.sh up N --name $name)"
    subnet=$(< "$state/subnet")
    [[ "$address" =~ ^${subnet//./\\.}\.([0-9]{1,3})$ ]] && (( BASH_REMATCH[1] >= 2 && BASH_REMATCH[1] <= 254 )) \
        || die "add: address $address is not in $name's subnet $subnet.0/24 (usable: $subnet.2 to $subnet.254)"
    [[ ! -e "$state/$host" && ! -e "/run/netns/$host" ]] || die "add: host $host exists already"
    if grep -q " $address\$" "$state/hosts" 2> /dev/null; then
        die "add: address $address is taken by $(grep " $address\$" "$state/hosts" | cut -d ' ' -f 1)"
    fi
    UNDO_NAME="$name"; UNDO_HOST="$host"
    prepare_root_namespace
    host_start "$name" "$host" "$index" "$address" 0
    write_index "$name"
    host_wait "$name" "$host" "$address"
    UNDO_NAME=""; UNDO_HOST=""
    echo "$host $address"
}

cmd_remove() {
    local host="${1:-}"
    [[ -n "$host" ]] || die "remove: usage: remove NAME-hK"
    shift
    host_and_name "$host" "$@"
    local name="$HOST_NAME" state
    require_root remove; require_tools
    lock "$name"
    state=$(state_of "$name")
    [[ -e "$state/$host" || -e "/run/netns/$host" ]] || die "remove: no host $host"
    hosts_stop "$name" "$host"
    [[ -d "$state" ]] && write_index "$name"
    note "removed $host"
}

cmd_status() {
    name_option_only status "$@"
    local name="$NAME_OPTION"
    local state host pid
    state=$(state_of "$name")
    [[ -f "$state/hosts.json" ]] || { echo "testnet $name is not up" >&2; exit 1; }
    cat "$state/hosts.json"
    for host in $(hosts_of "$name"); do
        pid=$(cat "$state/$host/sshd.pid" 2> /dev/null || echo 0)
        is_alive "$pid" || note "warning: the sshd of $host (pid $pid) is not running"
    done
}

trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command="${1:-}"
(( $# )) && shift
case "$command" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    exec) cmd_exec "$@" ;;
    add) cmd_add "$@" ;;
    remove) cmd_remove "$@" ;;
    status) cmd_status "$@" ;;
    -h|--help|help) usage ;;
    "") usage >&2; exit 2 ;;
    *) die "unknown command '$command' (see --help)" ;;
esac
