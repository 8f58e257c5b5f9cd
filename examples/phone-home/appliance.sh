#!/bin/sh
# An appliance that runs no agent, only curl and sh: it phones home to the coordinator's
# HTTP API with what the launch wrote into its phone-home.env (the launch prints where).
#
#   sh examples/phone-home/appliance.sh PHONE-HOME.ENV [OUTPUT]
#
# It reports its facts (PUT /params/v1/<id>: its address, APPLIANCE_ADDRESS, or else the
# address its requests come from), polls its configuration (GET /configs/v1/<id>: 202
# while it waits, 200 once complete) as shell lines, writes them to OUTPUT (default:
# appliance.conf next to the env file, mode 0600: it holds the database's password), and
# checks that the database it was given accepts that password.
set -eu
umask 077
env_file=${1:?usage: appliance.sh PHONE-HOME.ENV [OUTPUT]}
. "$env_file"
out=${2:-$(dirname "$env_file")/appliance.conf}
auth="Authorization: Bearer $CONDUCTOR_TOKEN"
api=$CONDUCTOR_CONFIG_URL

facts='"custom": {"version": "1.0"}'
if [ -n "${APPLIANCE_ADDRESS:-}" ]; then facts="\"ipaddress\": \"$APPLIANCE_ADDRESS\", $facts"; fi
curl -fsS -X PUT -H "$auth" -H 'Content-Type: application/json' --data "{$facts}" \
  "$api/params/v1/$CONDUCTOR_INSTANCE_ID" > /dev/null

tries=0
while :; do
  status=$(curl -sS -o "$out.part" -w '%{http_code}' -H "$auth" -H 'Accept: text/x-shellscript' \
    "$api/configs/v1/$CONDUCTOR_INSTANCE_ID") || status=000
  case $status in
    200) break ;;
    202) ;;                       # waiting; the body says for what
    000) ;;                       # the API did not answer (yet)
    *) echo "appliance: the coordinator answered $status: $(cat "$out.part")" >&2; exit 1 ;;
  esac
  tries=$((tries + 1))
  if [ "$tries" -ge "${APPLIANCE_TRIES:-300}" ]; then
    echo "appliance: no configuration after $tries tries: $(cat "$out.part" 2>/dev/null)" >&2
    exit 1
  fi
  sleep "${APPLIANCE_POLL:-1}"
done
mv "$out.part" "$out"
. "$out"

# The database answers one line: OK for its password (curl's telnet:// sends stdin).
answer=$(printf '%s\n' "$db_password" | curl -sS --max-time 5 "telnet://$db_host:$db_port" || true)
if [ "$answer" != "OK" ]; then
  echo "appliance: the database at $db_host:$db_port did not accept the password (it said '$answer')" >&2
  exit 1
fi
echo "appliance: configured: database $db_host:$db_port accepts the password; configuration in $out"
