# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostfleet-controller: run, inspect and follow the controllers that the role hostfleet.workloads.controller installs.

    hostfleet-controller status [NAME] [--json]   last run (result, time, duration), next run, whether a run holds the lock
    hostfleet-controller run [NAME] [--wait]      run the playbook now, in the foreground, under the controller's lock
    hostfleet-controller logs [NAME] [ARGS...]    the controller's runs in the journal (ARGS go to journalctl, e.g. -f, -n 200)
    hostfleet-controller list                     the controllers installed on this host

NAME may be left out when one controller is installed. Installed by Ansible: local changes are overwritten.
Stdlib only: it runs on the control node's python3 (controller_python), outside the Ansible virtualenv;
/usr/local/bin/hostfleet-controller is a two-line wrapper that runs this file.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import os
import signal
import subprocess
import sys
import time

CONFIG_DIR = "/etc/hostfleet/controller"
# Exit status of `run` when another run holds the lock (EX_TEMPFAIL: try again later).
LOCKED = 75


def die(message: str, status: int = 1) -> None:
    print(f"hostfleet-controller: {message}", file=sys.stderr)
    sys.exit(status)


def names() -> list[str]:
    try:
        return sorted(f[: -len(".json")] for f in os.listdir(CONFIG_DIR) if f.endswith(".json"))
    except FileNotFoundError:
        return []
    except PermissionError:
        die(f"{CONFIG_DIR} is root's only: run this command as root", 4)


def load(name: str | None) -> dict:
    installed = names()
    if name is None:
        if len(installed) != 1:
            die(f"name a controller: {', '.join(installed)}" if installed else f"no controller is installed ({CONFIG_DIR} is empty)", 2)
        name = installed[0]
    if name not in installed:
        die(f"no controller named {name!r} (installed: {', '.join(installed) or 'none'})", 2)
    try:
        with open(os.path.join(CONFIG_DIR, f"{name}.json"), encoding="utf-8") as f:
            return json.load(f)
    except PermissionError:
        die(f"the configuration of {name!r} is root's only: run this command as root", 4)


def stamp(seconds: float | None) -> str:
    if not seconds:
        return "never"
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")  # noqa: UP017 (python3 < 3.11)


def ago(seconds: float | None, now: float) -> str:
    if not seconds:
        return ""
    delta = now - seconds
    return f"in {-delta:.0f} s" if delta < 0 else f"{delta:.0f} s ago"


# -- the lock ------------------------------------------------------------------------------------


def holder(config: dict) -> dict | None:
    """Who holds the run lock ({pid, started, source}), or None when no run holds it."""
    try:
        fd = os.open(config["lock"], os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            with open(config["lock"], encoding="utf-8") as f:
                try:
                    return json.loads(f.read() or "{}") or {"pid": None}
                except ValueError:
                    return {"pid": None}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def write_json(path: str, data: dict) -> None:
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
        f.write("\n")
    os.replace(tmp, path)


def run(config: dict, wait: bool, source: str) -> int:
    """Run the playbook under the controller's lock (flock): runs never overlap, whoever starts them."""
    # Root's only (the role makes them so too): whoever can open the lock, even read-only, can flock it and stop every run.
    os.makedirs(os.path.dirname(config["lock"]), mode=0o700, exist_ok=True)
    fd = os.open(config["lock"], os.O_RDWR | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = holder(config) or {}
        if not wait:
            print(
                f"hostfleet-controller: a run of {config['name']} holds the lock (pid {other.get('pid')}, {other.get('source')} run started at "
                f"{stamp(other.get('started'))}); not starting another (use --wait to queue)",
                file=sys.stderr,
            )
            return LOCKED
        print(f"hostfleet-controller: waiting for the run that holds the lock (pid {other.get('pid')}) to end", flush=True)
        fcntl.flock(fd, fcntl.LOCK_EX)
    started = time.time()
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "started": started, "source": source}).encode(), 0)
    argv = [config["ansible_playbook"]]
    for inventory in config["inventory"]:
        argv += ["-i", inventory]
    argv += [*config["extra_args"], config["playbook"]]
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", PYTHONUNBUFFERED="1")
    if config.get("venv"):
        env["PATH"] = os.path.join(config["venv"], "bin") + os.pathsep + env.get("PATH", os.defpath)
        env["VIRTUAL_ENV"] = config["venv"]
    env.setdefault("HOME", "/root")  # systemd gives a system service no HOME; Ansible wants one (~/.ansible/tmp)
    env.update(config.get("environment") or {})
    print(f"hostfleet-controller: {source} run of {config['name']}: {' '.join(argv)}", flush=True)
    try:
        child = subprocess.Popen(argv, cwd=config["working_dir"], env=env, stdin=subprocess.DEVNULL)
    except OSError as exc:
        status = 127
        print(f"hostfleet-controller: cannot start {argv[0]}: {exc}", file=sys.stderr, flush=True)
    else:
        # systemd stops a run with SIGTERM (to the whole cgroup); a terminal's Ctrl-C reaches the child too.
        signal.signal(signal.SIGTERM, lambda *_: child.terminate())
        status = child.wait()
        status = 128 - status if status < 0 else status
    finished = time.time()
    write_json(config["state"], {"started": started, "finished": finished, "exit_status": status, "source": source, "pid": os.getpid()})
    print(f"hostfleet-controller: {source} run of {config['name']} ended with exit status {status} after {finished - started:.1f} s", flush=True)
    os.ftruncate(fd, 0)
    os.close(fd)
    return status


# -- status --------------------------------------------------------------------------------------


def systemctl_show(unit: str, *props: str) -> dict:
    done = subprocess.run(["systemctl", "show", "--timestamp=unix", unit, *(f"--property={p}" for p in props)], capture_output=True, text=True, check=False)
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def unix(value: str | None) -> float | None:
    return float(value[1:]) if value and value.startswith("@") else None


def next_elapse(timer: str) -> float | None:
    done = subprocess.run(["systemctl", "list-timers", "--all", "--output=json", timer], capture_output=True, text=True, check=False)
    try:
        entries = json.loads(done.stdout or "[]")
    except ValueError:
        return None
    nxt = entries[0].get("next") if entries else None
    return nxt / 1e6 if nxt else None


def status(config: dict) -> dict:
    timer = systemctl_show(config["timer"], "ActiveState", "UnitFileState", "LastTriggerUSec")
    service = systemctl_show(config["service"], "ActiveState", "Result", "ExecMainStatus", "ExecMainStartTimestamp", "ExecMainExitTimestamp")
    try:
        with open(config["state"], encoding="utf-8") as f:
            last = json.load(f)
    except (FileNotFoundError, ValueError):
        last = None
    if last:
        last["result"] = "succeeded" if last["exit_status"] == 0 else "failed"
        last["duration"] = round(last["finished"] - last["started"], 3)
    return {
        "name": config["name"],
        "playbook": config["playbook"],
        "inventory": config["inventory"],
        "interval": config["interval"],
        "timer": {
            "unit": config["timer"],
            "active": timer.get("ActiveState"),
            "enabled": timer.get("UnitFileState"),
            "last_trigger": unix(timer.get("LastTriggerUSec")),
            "next": next_elapse(config["timer"]),
        },
        "service": {
            "unit": config["service"],
            "active": service.get("ActiveState"),
            "result": service.get("Result"),
            "exit_status": int(service.get("ExecMainStatus") or 0),
        },
        "last_run": last,
        "running": holder(config),
    }


def print_status(info: dict) -> None:
    now = time.time()
    timer, last, running = info["timer"], info["last_run"], info["running"]
    print(f"controller {info['name']}: {info['playbook']}" + (f" (inventory {', '.join(info['inventory'])})" if info["inventory"] else ""))
    if timer["next"]:
        nxt = f", next run {ago(timer['next'], now)} ({stamp(timer['next'])})"
    elif timer["active"] == "active":
        # While a run starts or goes on, systemd has no next elapse: it computes it when the run ends.
        nxt = ", next run scheduled when the current one ends"
    else:
        nxt = ", timer stopped: no next run (manual runs only)"
    print(f"  timer      {timer['unit']}: {timer['active']} ({timer['enabled']}), every {info['interval']}{nxt}")
    if last:
        ended = f"{stamp(last['finished'])} ({ago(last['finished'], now)})"
        print(f"  last run   {last['result']} (exit status {last['exit_status']}), {last['source']} run, ended {ended}, took {last['duration']:.1f} s")
    else:
        print("  last run   none yet")
    if running:
        print(f"  running    yes: pid {running.get('pid')}, {running.get('source')} run started {ago(running.get('started'), now)} (it holds the lock)")
    else:
        print("  running    no")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hostfleet-controller", description="Run and inspect hostfleet.workloads controllers (playbooks on a timer).")
    sub = parser.add_subparsers(dest="command", required=True)
    p_status = sub.add_parser("status", help="last run, next run, whether a run holds the lock")
    p_status.add_argument("name", nargs="?")
    p_status.add_argument("--json", action="store_true", help="print JSON")
    p_run = sub.add_parser("run", help="run the playbook now, in the foreground, under the lock")
    p_run.add_argument("name", nargs="?")
    p_run.add_argument("--wait", action="store_true", help="wait for a run that holds the lock instead of refusing (exit 75)")
    p_run.add_argument("--source", default="manual", help=argparse.SUPPRESS)  # the service says "timer"
    sub.add_parser("logs", help="the controller's runs in the journal: logs [NAME] [JOURNALCTL ARGS...], e.g. logs -f, logs web -n 200")
    sub.add_parser("list", help="the controllers installed here")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["logs"]:
        # Everything after NAME goes to journalctl as it is (argparse would take -n, -f for its own).
        rest = argv[1:]
        name = rest.pop(0) if rest and not rest[0].startswith("-") else None
        config = load(name)
        os.execvp("journalctl", ["journalctl", "--no-pager", "-u", config["service"], *rest])
    args = parser.parse_args(argv)

    if args.command == "list":
        for name in names():
            print(name)
        return 0
    config = load(args.name)
    if args.command == "run":
        return run(config, args.wait, args.source)
    info = status(config)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print_status(info)
    return 0 if not info["last_run"] or info["last_run"]["exit_status"] == 0 else 3


if __name__ == "__main__":
    sys.exit(main())
