"""WorkloadTask.observe against a fleet played by a fake (the fan-out itself is tested in test_fanout_unit.py)."""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_task import IMAGE_MODULE, INFO_MODULE, WorkloadTask


class FakeFleet:
    def __init__(self, hosts, down):
        self.hosts = hosts
        self.down = set(down)
        self.asked = []

    def run_module(self, module, args_per_host, check_mode=None):
        assert module in (INFO_MODULE, IMAGE_MODULE)
        self.asked.append(sorted(args_per_host) if module == INFO_MODULE else (module, sorted(args_per_host)))
        if module == IMAGE_MODULE:
            return {h: {"images": {ref: {"id": f"id-on-{h}"} for ref in args["images"]}} for h, args in args_per_host.items()}
        return {h: {"unreachable": True, "msg": "ssh: connect timed out"} if h in self.down else {"pods": [], "observed_at": 0} for h in args_per_host}

    def emit_warnings(self, results):
        pass

    def groups_of(self, host):
        return ["lab"]

    def host_vars(self, host):
        return {}


def test_a_node_found_unreachable_is_not_asked_again_in_the_same_task():
    fleet = FakeFleet(["a", "b", "c"], down=["b"])
    task = WorkloadTask(fleet, "Deployment", "web", "/var/lib/hostfleet", check_mode=False)
    first = task.observe()
    fleet.down.clear()  # b is back, but this task does not pay another connection timeout to find out
    second = task.observe()
    assert fleet.asked == [["a", "b", "c"], ["a", "c"]]
    for observation in (first, second):
        assert sorted(observation.unreachable) == ["b"] and [n.name for n in observation.nodes if not n.ready] == ["b"]
    assert "not tried again" in second.unreachable["b"]
    # The next task (the next run) asks every node again.
    WorkloadTask(fleet, "Deployment", "web", "/var/lib/hostfleet", check_mode=False).observe()
    assert fleet.asked[-1] == ["a", "b", "c"]


def test_images_are_resolved_on_the_first_node_that_is_not_lost():
    fleet = FakeFleet(["a", "b"], down=["a"])
    task = WorkloadTask(fleet, "Deployment", "web", "/var/lib/hostfleet", check_mode=False)
    task.observe()
    assert task.resolve_images(["reg/web:latest"]) == {"reg/web:latest": "id-on-b"}
    assert fleet.asked[-1] == (IMAGE_MODULE, ["b"])  # a, lost in this task, costs no second connection timeout
