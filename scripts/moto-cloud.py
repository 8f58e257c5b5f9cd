#!/usr/bin/env python3
"""Plays the cloud for moto's EC2 emulator, which boots nothing.

    scripts/moto-cloud.py --endpoint http://127.0.0.1:PORT --net NAME [--region us-east-1] [--seconds N]

Every half second it asks moto for instances. Each new instance that is pending or running
with a private address becomes a test host of the testnet NAME (scripts/testnet.sh add, at
exactly that address: create the testnet with the subnet the instances are launched in) and
runs the instance's own user data there, read back through the API
(DescribeInstanceAttribute userData), as root, as cloud-init would at first boot. An
instance that moto reports shutting-down or terminated loses its host (scripts/testnet.sh
remove, which stops everything that ran in it). One line per event on stdout. Ends after
--seconds (default 600) or on SIGTERM/SIGINT, removing the hosts it added.

Credentials: any (moto accepts all); AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY default to
`testing`.
"""
import argparse
import base64
import os
import signal
import subprocess
import sys
import time

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTNET = os.path.join(ROOT, "scripts", "testnet.sh")


def main():
    parser = argparse.ArgumentParser(description="Boot moto's EC2 instances as test hosts running their user data.")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--net", required=True, help="the testnet (scripts/testnet.sh up … --name NET)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--seconds", type=float, default=600)
    args = parser.parse_args()

    ec2 = boto3.client(
        "ec2", endpoint_url=args.endpoint, region_name=args.region,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
    state_dir = f"/tmp/conductor-testnet-{args.net}"
    booted = {}  # instance id -> host name
    next_index = [100]
    stopping = [False]

    def stop(*_):
        stopping[0] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def say(text):
        print(text, flush=True)

    def boot(instance_id, address):
        host = f"{args.net}-h{next_index[0]}"
        next_index[0] += 1
        attribute = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        encoded = attribute.get("UserData", {}).get("Value")
        user_data = base64.b64decode(encoded).decode() if encoded else ""
        added = subprocess.run([TESTNET, "add", host, address], capture_output=True, text=True, timeout=120)
        if added.returncode != 0:
            say(f"could not boot {instance_id} at {address}: {added.stderr.strip()}")
            booted[instance_id] = None
            return
        booted[instance_id] = host
        script = os.path.join(state_dir, host, "user-data")
        with open(script, "w") as f:
            f.write(user_data)
        log = os.path.join(state_dir, host, "boot.log")
        # In the background, as cloud-init would: the host's namespaces, root, no terminal.
        subprocess.Popen(
            [TESTNET, "exec", host, "--", "setsid", "sh", "-c", f"sh {script} > {log} 2>&1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        say(f"booted {instance_id} as {host} at {address} ({len(user_data)} bytes of user data)")

    def shut_down(instance_id):
        host = booted.get(instance_id)
        booted[instance_id] = None
        if host:
            subprocess.run([TESTNET, "remove", host], capture_output=True, text=True, timeout=120)
            say(f"shut down {instance_id} ({host})")

    deadline = time.monotonic() + args.seconds
    while not stopping[0] and time.monotonic() < deadline:
        try:
            reservations = ec2.describe_instances()["Reservations"]
        except Exception as error:  # moto not up yet, or going away
            say(f"describe failed: {error}")
            time.sleep(1)
            continue
        for reservation in reservations:
            for instance in reservation["Instances"]:
                instance_id = instance["InstanceId"]
                state = instance["State"]["Name"]
                address = instance.get("PrivateIpAddress")
                if state in ("pending", "running") and instance_id not in booted and address:
                    boot(instance_id, address)
                elif state in ("shutting-down", "terminated") and booted.get(instance_id):
                    shut_down(instance_id)
        time.sleep(0.5)
    for instance_id in list(booted):
        shut_down(instance_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
