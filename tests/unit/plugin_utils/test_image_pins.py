"""Pinning a template to the image IDs of what it pulls, and the node side that finds those IDs."""

from __future__ import annotations

import subprocess

from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import images
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.templates import parse_pod_template
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_action import IMAGE_IDS_ANNOTATION, pin_images, pulled_images


def template(*containers, annotations=None):
    metadata = {"labels": {"app": "web"}}
    if annotations:
        metadata["annotations"] = annotations
    return {"metadata": metadata, "spec": {"containers": list(containers)}}


def c(name, image, policy=None):
    return {"name": name, "image": image, "command": ["/srv/run"], **({"imagePullPolicy": policy} if policy else {})}


def test_only_images_pulled_at_every_start_are_pinned():
    t = template(c("web", "reg/web:latest"), c("side", "reg/side:1.2"), c("tool", "reg/tool:1.0", "Always"), c("fixed", "reg/x@sha256:" + "a" * 64, "Always"))
    # latest or no tag defaults to Always; a tag defaults to IfNotPresent; a digest never changes.
    assert sorted(pulled_images(t)) == ["reg/tool:1.0", "reg/web:latest"]
    assert pulled_images(template(c("web", "reg/web:2", "Never"))) == []
    assert pulled_images({"spec": {"containers": [{"name": "p", "command": ["/bin/sleep", "1"]}]}}) == []
    assert pulled_images({"spec": "not a spec"}) == []  # reported by the kind's own parser


def test_pin_changes_the_revision_exactly_when_an_id_changes():
    t = template(c("web", "reg/web:latest"), c("side", "reg/side:1.2"), annotations={"team": "a"})
    one = pin_images(t, {"reg/web:latest": "1" * 64})
    assert one["metadata"]["annotations"] == {"team": "a", IMAGE_IDS_ANNOTATION: "web=" + "1" * 64}
    assert t["metadata"]["annotations"] == {"team": "a"}  # the caller's template is untouched
    same = pin_images(t, {"reg/web:latest": "1" * 64})
    other = pin_images(t, {"reg/web:latest": "2" * 64})
    hashes = [parse_pod_template(x).hash for x in (t, one, same, other)]
    assert hashes[1] == hashes[2] and len({hashes[0], hashes[1], hashes[3]}) == 3
    assert pin_images(t, {}) == t


@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.text("0123456789abcdef", min_size=1, max_size=8)))
def test_pins_name_every_pulled_container_once_in_name_order(ids):
    t = template(*(c(name, f"reg/{name}:latest") for name in ("c", "a", "b")))
    pinned = pin_images(t, {f"reg/{k}:latest": v for k, v in ids.items()})
    value = (pinned["metadata"].get("annotations") or {}).get(IMAGE_IDS_ANNOTATION)
    if not ids:
        assert value is None
    else:
        assert value == ",".join(f"{k}={ids[k]}" for k in sorted(ids))


# --- node side: podman is not on this machine, its answers are played by a fake `run` ---------------


def fake_podman(answers):
    calls = []

    def run(argv, **_kwargs):
        calls.append(argv)
        rc, out, err = answers[(argv[1], argv[-1])]
        return subprocess.CompletedProcess(argv, rc, out, err)

    return run, calls


def test_image_ids_pull_or_inspect_and_say_why_not():
    run, calls = fake_podman({
        ("pull", "reg/web:latest"): (0, "Trying to pull...\n" + "9" * 64 + "\n", ""),
        ("pull", "reg/gone:1"): (125, "", "Trying to pull reg/gone:1...\nError: initializing source docker://reg/gone:1: manifest unknown\n"),
        ("image", "reg/web:latest"): (0, "8" * 64 + "\n", ""),
    })
    assert images.image_ids(["reg/web:latest", "reg/gone:1"], True, run=run) == {
        "reg/web:latest": {"id": "9" * 64},
        "reg/gone:1": {"error": "Error: initializing source docker://reg/gone:1: manifest unknown"},
    }
    assert calls[0] == [images.PODMAN, "pull", "--quiet", "--", "reg/web:latest"]
    assert images.image_ids(["reg/web:latest"], False, run=run) == {"reg/web:latest": {"id": "8" * 64}}
    assert calls[-1][:3] == [images.PODMAN, "image", "inspect"]

    def missing(argv, **_kwargs):
        raise FileNotFoundError(2, "No such file or directory")

    assert "No such file" in images.image_ids(["reg/web:latest"], True, run=missing)["reg/web:latest"]["error"]
