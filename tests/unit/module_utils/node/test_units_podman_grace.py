"""podman containers stop within terminationGracePeriodSeconds on every path (issue 12 item 6).

When conmon (the unit's main process) is killed, systemd skips ExecStop= (it runs only after a clean exit) and the
container is stopped by ExecStopPost='s `podman rm --force`, or by the next start's --replace: both use the
container's own stop timeout, podman's 10 s unless `podman run --stop-timeout` sets it to the grace period.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from node_helpers import parse_exec_line, unit_values

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import podspec, units


def podman_unit(grace):
    raw = {
        "name": "web",
        "spec": {
            "runtimeClassName": "podman",
            "terminationGracePeriodSeconds": grace,
            "containers": [{"name": "main", "image": "localhost/web:v1", "imagePullPolicy": "Never", "command": ["/bin/httpd", "-f"]}],
        },
    }
    normal = podspec.validate_pod(raw, "pods[0]")
    return units.render_pod(normal, "Pod/web", {}, "/var/lib/hostfleet", "/usr/bin/python3", "/run/hostfleet")["hf-web.main.service"]


@given(grace=st.integers(min_value=0, max_value=3600))
def test_podmans_own_stops_wait_the_grace_period(grace):
    content = podman_unit(grace)
    [start] = unit_values(content, "ExecStart")
    exe, argv = parse_exec_line(start)
    assert exe == units.PODMAN and argv[0] == "run"
    image = argv.index("localhost/web:v1")
    assert [a for a in argv[:image] if a.startswith("--stop-timeout")] == [f"--stop-timeout={grace}"]
    # The explicit stop waits the same grace period.
    assert parse_exec_line(unit_values(content, "ExecStop")[-1])[1][:3] == ["stop", "--ignore", f"--time={grace}"]
