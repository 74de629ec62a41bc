"""The node facts reader (module_utils/node/node_facts.py): what it reads, what it leaves out, its per-boot cache."""

from __future__ import annotations

import json
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import node_facts

CPUINFO_X86 = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R)
flags\t\t: fpu sse sse2 avx avx2 aes sha_ni hypervisor

processor\t: 1
vendor_id\t: GenuineIntel
flags\t\t: fpu sse sse2 avx avx2 aes sha_ni hypervisor avx512f

"""

CPUINFO_ARM = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd aes pmull sha1 sha2 crc32 atomics
CPU implementer\t: 0x41

"""


def fake_root(tmp_path, cpuinfo=CPUINFO_X86, devices=(("0000:00:02.0", "0x030000", "0x10de"), ("0000:00:03.0", "0x020000", "0x1af4"))):
    """A directory laid out like / with the files the reader reads."""
    (tmp_path / "proc").mkdir()
    if cpuinfo is not None:
        (tmp_path / "proc" / "cpuinfo").write_text(cpuinfo)
    pci = tmp_path / "sys" / "bus" / "pci" / "devices"
    pci.mkdir(parents=True)
    for name, device_class, vendor in devices:
        (pci / name).mkdir()
        (pci / name / "class").write_text(device_class + "\n")
        (pci / name / "vendor").write_text(vendor + "\n")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n')
    return str(tmp_path)


def test_gather_reads_cpu_pci_and_os_release(tmp_path):
    facts = node_facts.gather(fake_root(tmp_path))
    assert facts["version"] == node_facts.FACTS_VERSION
    assert facts["os"] == "linux"
    assert facts["machine"] == os.uname().machine
    assert facts["kernel"] == os.uname().release
    # The first processor's flags only (the second one's avx512f is not read: every CPU has the same flags).
    assert facts["cpu_flags"] == ["aes", "avx", "avx2", "fpu", "hypervisor", "sha_ni", "sse", "sse2"]
    assert facts["cpu_vendor"] == "GenuineIntel"
    assert facts["pci_devices"] == [{"class": "020000", "vendor": "1af4"}, {"class": "030000", "vendor": "10de"}]
    assert facts["os_release"] == {"ID": "debian", "VERSION_ID": "12"}


def test_arm_features_line(tmp_path):
    facts = node_facts.gather(fake_root(tmp_path, cpuinfo=CPUINFO_ARM, devices=()))
    assert facts["cpu_flags"] == ["aes", "asimd", "atomics", "crc32", "fp", "pmull", "sha1", "sha2"]
    assert facts["cpu_vendor"] == "0x41"
    assert facts["pci_devices"] == []


def test_a_fact_that_cannot_be_read_is_left_out(tmp_path):
    """No cpuinfo, no /sys, no DMI, no os-release: those facts are missing, the others are there, nothing raises."""
    facts = node_facts.gather(str(tmp_path / "nothing-here"))
    assert "cpu_flags" not in facts and "pci_devices" not in facts and "product_name" not in facts and "os_release" not in facts
    assert facts["os"] == "linux"


def test_half_described_pci_device_is_skipped(tmp_path):
    root = fake_root(tmp_path)
    broken = tmp_path / "sys" / "bus" / "pci" / "devices" / "0000:00:09.0"
    broken.mkdir()
    (broken / "class").write_text("0x120000\n")  # no vendor file
    assert {d["class"] for d in node_facts.gather(root)["pci_devices"]} == {"020000", "030000"}


def test_cached_per_boot(tmp_path):
    boot = tmp_path / "boot_id"
    boot.write_text("boot-1\n")
    run_dir = str(tmp_path / "run")
    calls = []

    def gather():
        calls.append(1)
        return {"version": node_facts.FACTS_VERSION, "os": "linux", "n": len(calls)}

    first = node_facts.facts(run_dir, str(boot), gather)
    assert node_facts.facts(run_dir, str(boot), gather) == first
    assert len(calls) == 1
    stored = json.loads((tmp_path / "run" / node_facts.CACHE_NAME).read_text())
    assert stored == {"boot_id": "boot-1", "facts": first}
    boot.write_text("boot-2\n")  # a reboot: read again
    assert node_facts.facts(run_dir, str(boot), gather)["n"] == 2
    os.unlink(tmp_path / "run" / node_facts.CACHE_NAME)  # removing the cache: read again
    assert node_facts.facts(run_dir, str(boot), gather)["n"] == 3


def test_cache_of_another_version_or_garbage_is_read_again(tmp_path):
    boot = tmp_path / "boot_id"
    boot.write_text("b\n")
    (tmp_path / "run").mkdir()
    cache = tmp_path / "run" / node_facts.CACHE_NAME
    fresh = {"version": node_facts.FACTS_VERSION, "os": "linux"}
    cache.write_text(json.dumps({"boot_id": "b", "facts": {"version": 0, "os": "old"}}))
    assert node_facts.facts(str(tmp_path / "run"), str(boot), lambda: fresh) == fresh
    cache.write_text("{not json")
    assert node_facts.facts(str(tmp_path / "run"), str(boot), lambda: fresh) == fresh


def test_unwritable_run_dir_still_returns_facts(tmp_path):
    boot = tmp_path / "boot_id"
    boot.write_text("b\n")
    blocker = tmp_path / "file"
    blocker.write_text("")  # a file where the run directory should be: it cannot be made
    fresh = {"version": node_facts.FACTS_VERSION, "os": "linux"}
    assert node_facts.facts(str(blocker / "run"), str(boot), lambda: fresh) == fresh


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=400))
def test_any_cpuinfo_reads_without_raising(text):
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        os.mkdir(os.path.join(root, "proc"))
        with open(os.path.join(root, "proc", "cpuinfo"), "w", encoding="utf-8", errors="surrogatepass") as handle:
            handle.write(text.replace("\r", "\n"))
        flags, vendor = node_facts._cpu(os.path.join(root, "proc", "cpuinfo"))
        assert flags is None or all(isinstance(f, str) and f for f in flags)
        assert vendor is None or isinstance(vendor, str)
