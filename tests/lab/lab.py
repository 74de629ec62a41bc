#!/usr/bin/env python
"""Command line for the lab of test hosts (systemd-nspawn Debian 12 machines); see docs/lab.md.

    lab.py up N          bring node1..nodeN up (idempotent); prints the inventory path
    lab.py down          stop all hosts, remove everything the lab created
    lab.py status        name, IP, running or not, PID of each host
    lab.py stop NAME     power one host off, keeping its disk
    lab.py start NAME    boot it again on its kept disk
    lab.py image [--rebuild]  build the cached host image if missing or stale
    lab.py inventory     print the inventory path
    lab.py ssh NAME CMD...    run a command on a host
"""

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import labctl  # noqa: E402  (lives beside this script, which may run from anywhere)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lab.py", description="Test hosts for hostfleet.workloads (see docs/lab.md).")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="bring node1..nodeN up").add_argument("n", type=int)
    commands.add_parser("down", help="stop all hosts and clean up")
    commands.add_parser("status", help="show the hosts")
    commands.add_parser("stop", help="power one host off, keeping its disk").add_argument("name")
    commands.add_parser("start", help="boot a stopped host again").add_argument("name")
    commands.add_parser("image", help="build the host image if missing or stale").add_argument("--rebuild", action="store_true")
    commands.add_parser("inventory", help="print the inventory path")
    ssh_parser = commands.add_parser("ssh", help="run a command on a host")
    ssh_parser.add_argument("name")
    ssh_parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    # A killed `up` (e.g. a test timeout) must still undo what it created: turn SIGTERM into SystemExit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    started = time.monotonic()
    try:
        if args.command == "up":
            path = labctl.up(args.n)
            labctl._say(f"{args.n} host(s) up in {time.monotonic() - started:.1f} s")
            print(path)
        elif args.command == "down":
            labctl.down()
            labctl._say(f"down in {time.monotonic() - started:.1f} s")
        elif args.command == "status":
            for host in labctl.status():
                state = f"running  pid {host['pid']}" if host["running"] else "stopped"
                print(f"{host['name']:<8} {host['ip']:<12} {state}")
        elif args.command == "stop":
            labctl.stop(args.name)
            labctl._say(f"{args.name} stopped in {time.monotonic() - started:.1f} s")
        elif args.command == "start":
            labctl.start(args.name)
            labctl._say(f"{args.name} up in {time.monotonic() - started:.1f} s")
        elif args.command == "image":
            print(labctl.ensure_image(rebuild=args.rebuild))
        elif args.command == "inventory":
            print(labctl.inventory_path())
        elif args.command == "ssh":
            words = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            return subprocess.call(["ssh", "-F", str(labctl.ssh_config_path()), args.name, *([" ".join(words)] if words else [])])
    except labctl.LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lab: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
