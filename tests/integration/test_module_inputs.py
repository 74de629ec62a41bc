"""Issue 11: the host-side modules refuse paths and option-like names themselves, on a real host, and touch nothing."""

from __future__ import annotations

KEEP = "/var/lib/hostfleet/it-keep-me"


def test_traversal_and_option_like_inputs_are_refused_and_nothing_is_deleted(lab):
    host = lab.hosts[0]
    # cronjobs/ and volumes/ must exist for cronjobs/../it-keep-me to resolve (on a host that ran any CronJob, they do)
    lab.ssh(host, f"mkdir -p {KEEP} /var/lib/hostfleet/cronjobs /var/lib/hostfleet/volumes && touch {KEEP}/marker")
    tasks = [
        # <state_dir>/volumes/../it-keep-me and <state_dir>/cronjobs/../it-keep-me are the directory above
        {"name": "pod", "hostfleet.workloads.pod": {"owner": "it-inputs", "delete_volumes": ["../it-keep-me"]}, "ignore_errors": True},
        {"name": "timer", "hostfleet.workloads.cronjob_timer": {"name": "../it-keep-me", "state": "absent"}, "ignore_errors": True},
        {"name": "info", "hostfleet.workloads.pod_info": {"state_dir": "/var/lib/hostfleet/../../etc"}, "ignore_errors": True},
        {"name": "image", "hostfleet.workloads.image_id": {"images": ["docker.io/library/busybox:1.36", "--help"]}, "ignore_errors": True},
        # the action refuses what its node module would refuse, before it contacts any node
        {"name": "cron", "hostfleet.workloads.cronjob": {"name": "it-inputs", "state": "absent", "state_dir": "var/lib/hostfleet"}, "ignore_errors": True},
    ]
    try:
        run = lab.run(tasks, hosts=host)
        for task, field in (("pod", "delete_volumes[0]"), ("timer", "name"), ("info", "state_dir"), ("image", "images[1]"), ("cron", "state_dir")):
            result = run.result(task, host)
            assert result.get("failed") and result.get("field") == field, (task, result)
        assert lab.ssh(host, f"ls {KEEP}").stdout.split() == ["marker"]
    finally:
        lab.ssh(host, f"rm -rf {KEEP}", check=False)
