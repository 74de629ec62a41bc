# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A node's facts (``module_utils/node/node_facts.py``) → the labels a kubelet and Node Feature Discovery put on it.

Kubernetes' well-known labels (what the kubelet sets):

* ``kubernetes.io/os`` and ``beta.kubernetes.io/os``: ``linux`` (Go's GOOS, the lowercased uname system);
* ``kubernetes.io/arch`` and ``beta.kubernetes.io/arch``: Go's GOARCH for ``uname -m`` (x86_64 → amd64,
  aarch64 → arm64, ...); a machine Go has no name for gets no label;
* ``node.kubernetes.io/instance-type``: the DMI product name (``/sys/class/dmi/id/product_name``) when it is a valid
  label value (EC2's ``m5.large``; a laptop's "Standard PC (Q35 + ICH9, 2009)" is not, and gets no label). The
  inventory label of the same key wins (``hostfleet_node_labels``), which is how a fleet names its instance types.

Node Feature Discovery's default labels, under ``feature.node.kubernetes.io/`` and with NFD's names:

* ``cpu-cpuid.<FLAG>: "true"`` for the CPU flags of interest (``CPUID_FLAGS``: AVX, AVX2, AVX-512, AES-NI, FMA3,
  SHA, VMX/SVM, ...); the common ones NFD leaves out by default (SSE*, CMOV, POPCNT, ...) are left out too;
* ``cpu-model.vendor_id``: Intel, AMD, ... (NFD's names for the x86 vendor strings);
* ``kernel-version.full/major/minor/revision``: from ``uname -r``;
* ``pci-<class>_<vendor>.present: "true"`` for the device classes NFD labels by default (``deviceClassWhitelist``:
  03 display controllers (GPUs), 0b40 co-processors, 12 processing accelerators), class as 4 hex digits
  (``pci-0300_10de.present`` is an NVIDIA VGA controller), with ``pci-<vendor>.present`` never made (NFD's
  default ``deviceLabelFields`` are class and vendor);
* ``system-os_release.ID``, ``system-os_release.VERSION_ID`` (and its ``.major``/``.minor``).

A fact that is missing, or whose value is not a valid label value, gives no label: it never fails a run.
"""

from __future__ import annotations

import re

KUBERNETES_OS = "kubernetes.io/os"
KUBERNETES_ARCH = "kubernetes.io/arch"
BETA_OS = "beta.kubernetes.io/os"
BETA_ARCH = "beta.kubernetes.io/arch"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"
FEATURE_PREFIX = "feature.node.kubernetes.io/"

# uname -m → Go's GOARCH (what the kubelet reports as runtime.GOARCH).
GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "i386": "386",
    "i486": "386",
    "i586": "386",
    "i686": "386",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv5l": "arm",
    "armv6l": "arm",
    "armv7l": "arm",
    "armv8l": "arm",
    "ppc64le": "ppc64le",
    "ppc64": "ppc64",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64": "mips64",
    "mips64el": "mips64le",
    "mips": "mips",
    "mipsel": "mipsle",
    "loongarch64": "loong64",
}

# /proc/cpuinfo flag → NFD's cpuid name (klauspost/cpuid's). Flags of interest for scheduling: vector units, crypto,
# virtualisation. NFD's default attributeBlacklist (BMI1, BMI2, CLMUL, CMOV, CX16, ERMS, F16C, HTT, LZCNT, MMX,
# MMXEXT, NX, POPCNT, RDRAND, RDSEED, RDTSCP, SGX, SSE..SSSE3) is not here either.
CPUID_FLAGS = {
    # x86
    "adx": "ADX",
    "aes": "AESNI",
    "amx_bf16": "AMXBF16",
    "amx_int8": "AMXINT8",
    "amx_tile": "AMXTILE",
    "avx": "AVX",
    "avx2": "AVX2",
    "avx512_bf16": "AVX512BF16",
    "avx512_fp16": "AVX512FP16",
    "avx512_vnni": "AVX512VNNI",
    "avx512bw": "AVX512BW",
    "avx512cd": "AVX512CD",
    "avx512dq": "AVX512DQ",
    "avx512f": "AVX512F",
    "avx512ifma": "AVX512IFMA",
    "avx512vl": "AVX512VL",
    "avx_vnni": "AVXVNNI",
    "fma": "FMA3",
    "gfni": "GFNI",
    "hypervisor": "HYPERVISOR",
    "sha_ni": "SHA",
    "svm": "SVM",
    "vaes": "VAES",
    "vmx": "VMX",
    "vpclmulqdq": "VPCLMULQDQ",
}
# arm and arm64 (the Features line): some names are x86's too ("aes"), so they are read only on those machines.
ARM_CPUID_FLAGS = {
    "aes": "AES",
    "asimd": "ASIMD",
    "atomics": "ATOMICS",
    "crc32": "CRC32",
    "pmull": "PMULL",
    "sha1": "SHA1",
    "sha2": "SHA2",
    "sha3": "SHA3",
    "sha512": "SHA512",
    "sve": "SVE",
    "sve2": "SVE2",
}

# NFD's names for the x86 vendor_id strings (cpu-model.vendor_id).
CPU_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon", "CentaurHauls": "VIA"}

# NFD's default deviceClassWhitelist: display controllers, co-processors, processing accelerators.
PCI_CLASSES = ("03", "0b40", "12")

_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_HEX = re.compile(r"[0-9a-f]+")
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def valid_value(value) -> bool:
    """A Kubernetes label value (at most 63 characters of [A-Za-z0-9-_.], alphanumeric at both ends; not empty here)."""
    return isinstance(value, str) and len(value) <= 63 and _LABEL_VALUE.fullmatch(value) is not None


def _put(labels: dict, key: str, value) -> None:
    if valid_value(value):
        labels[key] = value


def _text(facts: dict, key: str) -> str | None:
    value = facts.get(key)
    return value if isinstance(value, str) else None


def _kernel(labels: dict, release: str | None) -> None:
    if not release:
        return
    _put(labels, f"{FEATURE_PREFIX}kernel-version.full", release)
    match = _VERSION.match(release)
    if match:
        for name, part in zip(("major", "minor", "revision"), match.groups(), strict=True):
            if part is not None:
                labels[f"{FEATURE_PREFIX}kernel-version.{name}"] = part


def _pci(labels: dict, devices) -> None:
    if not isinstance(devices, list):
        return
    for device in devices:
        if not isinstance(device, dict):
            continue
        device_class = str(device.get("class") or "").lower()
        vendor = str(device.get("vendor") or "").lower()
        if len(device_class) < 4 or not _HEX.fullmatch(device_class) or len(vendor) != 4 or not _HEX.fullmatch(vendor):
            continue
        # sysfs' class is class, subclass, programming interface (3 bytes); NFD labels the first two.
        if any(device_class.startswith(prefix) for prefix in PCI_CLASSES):
            labels[f"{FEATURE_PREFIX}pci-{device_class[:4]}_{vendor}.present"] = "true"


def _os_release(labels: dict, release) -> None:
    if not isinstance(release, dict):
        return
    _put(labels, f"{FEATURE_PREFIX}system-os_release.ID", release.get("ID"))
    version = release.get("VERSION_ID")
    _put(labels, f"{FEATURE_PREFIX}system-os_release.VERSION_ID", version)
    if isinstance(version, str) and valid_value(version):
        parts = version.split(".")
        if parts[0].isdigit():
            labels[f"{FEATURE_PREFIX}system-os_release.VERSION_ID.major"] = parts[0]
            if len(parts) > 1 and parts[1].isdigit():
                labels[f"{FEATURE_PREFIX}system-os_release.VERSION_ID.minor"] = parts[1]


def labels_from_facts(facts: dict | None) -> dict[str, str]:
    """The well-known and feature labels the facts give (sorted by key); ``{}`` for no facts."""
    if not isinstance(facts, dict):
        return {}
    labels: dict[str, str] = {}
    system = _text(facts, "os")
    if system:
        _put(labels, KUBERNETES_OS, system.lower())
        _put(labels, BETA_OS, system.lower())
    arch = GOARCH.get(_text(facts, "machine") or "")
    if arch:
        labels[KUBERNETES_ARCH] = labels[BETA_ARCH] = arch
    _put(labels, INSTANCE_TYPE, _text(facts, "product_name"))
    flags = facts.get("cpu_flags")
    if isinstance(flags, list):
        names = ARM_CPUID_FLAGS if arch in ("arm64", "arm") else CPUID_FLAGS
        for flag in flags:
            name = names.get(flag) if isinstance(flag, str) else None
            if name:
                labels[f"{FEATURE_PREFIX}cpu-cpuid.{name}"] = "true"
    vendor = _text(facts, "cpu_vendor")
    if vendor:
        _put(labels, f"{FEATURE_PREFIX}cpu-model.vendor_id", CPU_VENDORS.get(vendor, vendor))
    _kernel(labels, _text(facts, "kernel"))
    _pci(labels, facts.get("pci_devices"))
    _os_release(labels, facts.get("os_release"))
    return dict(sorted(labels.items()))
