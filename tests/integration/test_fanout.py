"""Fan-out (plugins/plugin_utils/_fanout.py): one task reaching every host with each host's own connection settings.

Drives ansible-playbook with tests/integration/fanout/probe.yml, whose test-only action ``fleet_probe``
(BYPASS_HOST_LOOP) runs a module on all hosts through ``Fleet`` and writes a JSON report.

    cd /work/main && PATH=/var/cache/hostfleet/venv-2.21/bin:$PATH python -m pytest tests/integration/test_fanout.py
    (the same with venv-2.19)

``local`` tests need nothing; ``lab`` tests use the shared lab (tests/lab/lab.py up 3: idempotent, never down).
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fanout"))

from helpers import ansible_version, host_line, lab_hosts, lab_inventory, run_probe  # noqa: E402

pytestmark = [pytest.mark.both_versions]

PY = "/usr/bin/python3"

LOCAL_INVENTORY = f"""
# YAML inventory (INI would keep hostfleet_node_labels a string on 2.21)
all:
  vars:
    ansible_connection: local
    ansible_python_interpreter: {PY}
    hostfleet_node_labels: {{zone: "{{{{ inventory_hostname }}}}-z", rack: 3}}
  children:
    fake:
      hosts:
        fake1:
        fake2: {{ansible_become: true, ansible_become_method: su, ansible_become_user: nobody, ansible_become_flags: -s /bin/sh}}
        fake3: {{ansible_become: true, ansible_become_method: su, ansible_become_user: "{{{{ omit }}}}"}}
    web:
      hosts: {{fake1: , fake2: }}
    gpu:
      hosts: {{fake2: , fake3: }}
"""


def _ok(run, hosts):
    assert run.rc == 0, run.explain()
    assert sorted(run.results) == sorted(hosts), run.explain()
    for host in hosts:
        result = run.results[host]
        assert not result.get("failed") and not result.get("unreachable"), f"{host}: {result}\n{run.explain()}"
    assert "errantly sent data" not in run.stdout + run.stderr, run.explain()


def _timings(label, seconds, capsys):
    line = (f"\n[fanout {ansible_version()}] {label}: {len(seconds)} rounds, per round median {statistics.median(seconds):.3f} s, "
            f"min {min(seconds):.3f} s, max {max(seconds):.3f} s, first {seconds[0]:.3f} s")
    with capsys.disabled():
        print(line)
    return line


# -- local connection: always available ----------------------------------------------------------


def test_local_per_host_settings(tmp_path):
    extra = {"probe_vars": ["hostfleet_node_labels", "ansible_become_user"], "probe_rounds": 2,
             "probe_args": {"warn": "careful", "deprecate": "old thing", "tag": "t1"}}
    run = run_probe(tmp_path, LOCAL_INVENTORY, extra)
    _ok(run, ["fake1", "fake2", "fake3"])
    res = run.results
    assert {h: r["user"] for h, r in res.items()} == {"fake1": "root", "fake2": "nobody", "fake3": "root"}  # fake3: become_user omitted
    assert all(r["python"] == PY for r in res.values())
    assert all(r["check_mode"] is False and r["tag"] == "t1" for r in res.values())
    # warnings and deprecations of the remote modules come back as text and are displayed by the action
    for host in res:
        assert res[host]["warnings"] == ["careful"], res[host]
        assert res[host]["deprecations"][0]["msg"] == "old thing" and res[host]["deprecations"][0]["version"] == "10.0.0"
        assert f"{host}: careful" in run.stdout + run.stderr
    report = run.report
    assert report["vars"]["fake2"]["hostfleet_node_labels"] == {"zone": "fake2-z", "rack": 3}
    assert report["vars"]["fake2"]["ansible_become_user"] == "nobody"
    assert report["vars"]["fake3"]["ansible_become_user"] is None  # omit reads as unset
    assert report["groups"] == {"fake1": ["fake", "web"], "fake2": ["fake", "gpu", "web"], "fake3": ["fake", "gpu"]}


def test_local_check_mode(tmp_path):
    run = run_probe(tmp_path, LOCAL_INVENTORY, args=["--check"])
    _ok(run, ["fake1", "fake2", "fake3"])
    assert all(r["check_mode"] is True for r in run.results.values()), run.explain()


@pytest.mark.parametrize(("pattern", "expected"), [
    ("web:&gpu", ["fake2"]),
    ("all:!fake2", ["fake1", "fake3"]),
    ("!fake2", ["fake1", "fake3"]),
    ("gpu", ["fake2", "fake3"]),
])
def test_local_select(tmp_path, pattern, expected):
    run = run_probe(tmp_path, LOCAL_INVENTORY, {"probe_pattern": pattern})
    _ok(run, expected)
    assert run.report["hosts"] == expected


def test_local_select_within_play(tmp_path):
    # the pattern is intersected with the play's hosts
    run = run_probe(tmp_path, LOCAL_INVENTORY, {"probe_pattern": "gpu", "probe_play_hosts": "web"})
    _ok(run, ["fake2"])


def test_local_failure_timeout_and_ansible_builtin(tmp_path):
    run = run_probe(tmp_path, LOCAL_INVENTORY, {
        "probe_args_per_host": {"fake1": {"fail": True}, "fake2": {"sleep": 60}, "fake3": {"tag": "fine"}},
        "probe_timeout": 6,
    })
    assert run.rc == 0, run.explain()
    res = run.results
    assert res["fake1"]["failed"] is True and res["fake1"]["msg"] == "asked to fail" and res["fake1"]["user"] == "root"
    assert res["fake2"]["failed"] is True and res["fake2"]["timedout"] is True
    assert res["fake3"]["tag"] == "fine" and not res["fake3"].get("failed")
    assert run.report["round_seconds"][0] < 20

    run = run_probe(tmp_path, LOCAL_INVENTORY, {"probe_args": {"crash": True}})
    assert run.rc == 0, run.explain()
    for result in run.results.values():
        assert result["failed"] is True and "crashed on purpose" in result["exception"] + result.get("module_stderr", ""), result
        assert "crashed on purpose" in result["msg"]

    run = run_probe(tmp_path, LOCAL_INVENTORY, {"probe_module": "ansible.builtin.command", "probe_args": {"argv": ["id", "-un"]}})
    _ok(run, ["fake1", "fake2", "fake3"])
    assert {h: r["stdout"] for h, r in run.results.items()} == {"fake1": "root", "fake2": "nobody", "fake3": "root"}

    run = run_probe(tmp_path, LOCAL_INVENTORY, {"probe_module": "ansible.builtin.ping"})
    _ok(run, ["fake1", "fake2", "fake3"])
    assert all(r["ping"] == "pong" for r in run.results.values())


def test_local_many_rounds(tmp_path, capsys):
    run = run_probe(tmp_path, LOCAL_INVENTORY, {"probe_rounds": 25, "probe_keep_rounds": True}, env={"ANSIBLE_PIPELINING": "True"})
    _ok(run, ["fake1", "fake2", "fake3"])
    assert len(run.report["rounds"]) == 25
    for number, round_results in enumerate(run.report["rounds"]):
        assert all(not r.get("failed") for r in round_results.values()), (number, round_results)
        assert round_results["fake2"]["user"] == "nobody"
    assert len({r["pid"] for rr in run.report["rounds"] for r in rr.values()}) == 75  # a fresh module process every time
    _timings("local x3, pipelining", run.report["round_seconds"], capsys)


# -- the lab: real Debian 12 systemd hosts over SSH ------------------------------------------------


@pytest.fixture(scope="module")
def lab():
    inventory = lab_inventory()
    if inventory is None:
        pytest.skip("no lab here (tests/lab/lab.py up 3 failed); set HOSTFLEET_LAB_WAIT=seconds to wait for one being built")
    hosts = lab_hosts(inventory)
    assert {"node1", "node2", "node3"} <= set(hosts), hosts
    return {name: hosts[name] for name in ("node1", "node2", "node3")}


@pytest.fixture(scope="module")
def hfuser(lab, tmp_path_factory):
    """On every lab host: user hfuser (key auth like root), sudo with a password of its own per host: hf-<host>."""
    passwords = {h: f"hf-{h}" for h in lab}
    script = ("id hfuser >/dev/null 2>&1 || useradd -m -s /bin/bash hfuser; "
              "install -d -m 700 -o hfuser -g hfuser ~hfuser/.ssh && "
              "install -m 600 -o hfuser -g hfuser /root/.ssh/authorized_keys ~hfuser/.ssh/authorized_keys && "
              "echo \"hfuser:$1\" | chpasswd && "
              "echo 'hfuser ALL=(ALL:ALL) ALL' > /etc/sudoers.d/hfuser && chmod 440 /etc/sudoers.d/hfuser && "
              "sudo -l -U hfuser >/dev/null")
    inventory = "[lab]\n" + "\n".join(host_line(h, v) for h, v in lab.items()) + "\n"
    # task args are templated once, with the first host's vars: per-host values go through args_per_host
    per_host = {h: {"argv": ["sh", "-c", script, "setup", pw]} for h, pw in passwords.items()}
    run = run_probe(tmp_path_factory.mktemp("hfuser"), inventory, {"probe_module": "ansible.builtin.command", "probe_args_per_host": per_host})
    _ok(run, list(lab))
    return passwords


def _inventory(lab, overrides=None, extra=""):
    lines = ["[lab]"]
    for host, hostvars in lab.items():
        # a longer SSH timeout than the lab's 3 s: this machine is shared and often loaded
        lines.append(host_line(host, {**hostvars, "ansible_ssh_timeout": "20", **(overrides or {}).get(host, {})}))
    return "\n".join(lines) + "\n" + extra


@pytest.mark.parametrize("pipelining", ["True", "False"])
def test_lab_ssh_pipelining(lab, tmp_path, pipelining):
    inventory = _inventory(lab, {"node2": {"ansible_pipelining": "false"}, "node3": {"ansible_pipelining": "true"}})
    run = run_probe(tmp_path, inventory, {"probe_rounds": 2}, args=["-vvv"], env={"ANSIBLE_PIPELINING": pipelining})
    _ok(run, list(lab))
    for host in lab:
        assert run.results[host]["hostname"] == host and run.results[host]["user"] == "root"
        assert run.results[host]["env_ssh"].split()[2] == lab[host]["ansible_host"]
    # a host without pipelining gets its module copied over (a PUT), one with pipelining does not
    piped = {"node1": pipelining == "True", "node2": False, "node3": True}
    for host, on in piped.items():
        put = f"<{lab[host]['ansible_host']}> PUT " in run.stdout
        assert put is not on, f"{host}: pipelining {on} but PUT seen={put}\n{run.stdout[-4000:]}"


@pytest.mark.parametrize("order", ["inventory", "reverse_inventory"])  # reverse: the local host runs the task
def test_lab_connection_vars_and_unreachable(lab, hfuser, tmp_path, order):
    stray_key = tmp_path / "stray_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stray_key)], check=True)
    base = lab["node1"]
    extra = "\n".join([
        "[elsewhere]",
        host_line("badport", {**base, "ansible_port": "2999"}),
        # a user of its own: an SSH master already open for root@node2 would not need the key
        host_line("badkey", {**lab["node2"], "ansible_user": "hf-nokey", "ansible_ssh_private_key_file": str(stray_key),
                             "ansible_ssh_extra_args": "-o IdentitiesOnly=yes"}),
        host_line("ghost", {**base, "ansible_host": "10.77.0.99"}),
        f"ctl ansible_connection=local ansible_python_interpreter={PY}",
    ]) + "\n"
    inventory = _inventory(lab, {
        "node1": {"ansible_port": "22", "ansible_python_interpreter": "auto"},
        "node2": {"ansible_python_interpreter": "/usr/bin/python3.11"},
        "node3": {"ansible_user": "hfuser"},
    }, extra)
    run = run_probe(tmp_path, inventory, {"probe_rounds": 2, "probe_keep_rounds": True, "probe_order": order})
    assert run.rc == 0, run.explain()
    res = run.results
    for host in ("node1", "node2", "node3", "ctl"):
        assert not res[host].get("failed") and not res[host].get("unreachable"), f"{host}: {res[host]}\n{run.explain()}"
    # node1: interpreter discovered in round 1 (with its warning, from the child), reused in round 2
    first = run.report["rounds"][0]["node1"]
    assert first["ansible_facts"]["discovered_interpreter_python"] == res["node1"]["python"] != PY
    assert any("discovered Python interpreter" in w for w in first["warnings"]), first
    assert "ansible_facts" not in res["node1"] and not res["node1"].get("warnings")
    assert res["node1"]["user"] == "root"
    assert run.report["rounds"][0]["node3"]["python"] == PY
    assert res["node2"]["python"] == "/usr/bin/python3.11"
    assert res["node3"]["user"] == "hfuser"
    assert res["ctl"]["hostname"] == socket.gethostname() and res["ctl"]["env_ssh"] == ""
    for host in ("badport", "badkey", "ghost"):
        assert res[host].get("unreachable") is True, f"{host}: {res[host]}"
        assert set(res[host]) <= {"unreachable", "msg"}
    assert "2999" in res["badport"]["msg"]


def test_lab_become_per_host_and_check_mode(lab, tmp_path):
    inventory = _inventory(lab, {"node2": {"ansible_become": "true", "ansible_become_user": "nobody"}})
    run = run_probe(tmp_path, inventory, {"probe_module": "ansible.builtin.command", "probe_args": {"argv": ["id", "-un"]}})
    _ok(run, list(lab))
    assert {h: r["stdout"] for h, r in run.results.items()} == {"node1": "root", "node2": "nobody", "node3": "root"}

    run = run_probe(tmp_path, inventory, args=["--check"])
    _ok(run, list(lab))
    assert all(r["check_mode"] is True for r in run.results.values())
    assert run.results["node2"]["user"] == "nobody"


@pytest.mark.parametrize("order", ["inventory", "reverse_inventory"])
@pytest.mark.parametrize("pipelining", ["True", "False"])
def test_lab_cli_become_password_never_leaks(lab, hfuser, tmp_path, order, pipelining):
    """Connect as hfuser (key), task-level become with sudo passwords that differ per host: node1's from
    --become-password-file (CLI), node2's and node3's from their own vars. In reverse order node3 runs the task,
    so the action's PlayContext carries node3's password: node1 must still get the CLI one, node2 its own."""
    pwfile = tmp_path / "become_pass"
    pwfile.write_text(hfuser["node1"] + "\n")
    inventory = _inventory(lab, {
        "node1": {"ansible_user": "hfuser"},
        "node2": {"ansible_user": "hfuser", "ansible_become_password": hfuser["node2"]},
        "node3": {"ansible_user": "hfuser", "ansible_become_password": hfuser["node3"]},
    })
    run = run_probe(tmp_path, inventory, {"probe_become": True, "probe_order": order, "probe_module": "ansible.builtin.command",
                                          "probe_args": {"argv": ["id", "-un"]}},
                    args=["--become-password-file", str(pwfile)], env={"ANSIBLE_PIPELINING": pipelining})
    _ok(run, list(lab))
    assert {h: r["stdout"] for h, r in run.results.items()} == {"node1": "root", "node2": "root", "node3": "root"}
    assert hfuser["node1"] not in run.stdout + run.stderr


def test_lab_without_cli_password_host_vars_only(lab, hfuser, tmp_path):
    # no CLI password: node1 has none anywhere and must fail on its own; the others are unaffected
    inventory = _inventory(lab, {
        "node1": {"ansible_user": "hfuser"},
        "node2": {"ansible_user": "hfuser", "ansible_become_password": hfuser["node2"]},
        "node3": {"ansible_user": "hfuser", "ansible_become_password": hfuser["node3"]},
    })
    run = run_probe(tmp_path, inventory, {"probe_become": True, "probe_order": "reverse_inventory", "probe_module": "ansible.builtin.command",
                                          "probe_args": {"argv": ["id", "-un"]}}, env={"ANSIBLE_PIPELINING": "True"})
    assert run.rc == 0, run.explain()
    assert run.results["node1"].get("failed") is True, run.explain()
    assert run.results["node2"]["stdout"] == "root" and run.results["node3"]["stdout"] == "root"


@pytest.mark.parametrize("pipelining", ["True", "False"])
def test_lab_many_rounds(lab, tmp_path, capsys, pipelining):
    run = run_probe(tmp_path, _inventory(lab), {"probe_rounds": 25, "probe_keep_rounds": True}, env={"ANSIBLE_PIPELINING": pipelining})
    _ok(run, list(lab))
    assert len(run.report["rounds"]) == 25
    for round_results in run.report["rounds"]:
        assert sorted(round_results) == sorted(lab) and all(not r.get("failed") and not r.get("unreachable") for r in round_results.values())
    _timings(f"lab ssh x3, pipelining={pipelining}", run.report["round_seconds"], capsys)
