"""Probes of type grpc (issue 15): the stdlib gRPC health check against a REAL gRPC server (grpcio and its health
servicer, on 127.0.0.1), the HPACK decoder against a reference encoder (the pure-Python ``hpack``, tests only), and
the probe's validation and dispatch in the hook."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent import futures

import grpc
import hpack
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from hypothesis import given, settings
from hypothesis import strategies as st
from node_helpers import spec_with

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, grpc_probe, hook, podspec
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.grpc_probe import GrpcProtocolError, HpackDecoder, grpc_health_check
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, validate_pod_spec


@pytest.fixture(scope="module")
def health_server():
    """A gRPC server with the standard health service: '' and 'db' SERVING, 'cache' NOT_SERVING."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("db", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("cache", health_pb2.HealthCheckResponse.NOT_SERVING)
    servicer.set("ünïcode/ßervice", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("unknown-status", health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)
    yield port
    server.stop(0)


@pytest.fixture(scope="module")
def bare_server():
    """A gRPC server without the health service (grpc.health.v1.Health is unimplemented)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(0)


def test_serving_is_success(health_server):
    assert grpc_health_check("127.0.0.1", health_server, "", 2) == (True, "service healthy")
    assert grpc_health_check("127.0.0.1", health_server, "db", 2) == (True, "service healthy")
    assert grpc_health_check("127.0.0.1", health_server, "ünïcode/ßervice", 2) == (True, "service healthy")


def test_not_serving_and_other_statuses_fail_with_the_kubelets_message(health_server):
    assert grpc_health_check("127.0.0.1", health_server, "cache", 2) == (False, 'service unhealthy (responded with "NOT_SERVING")')
    assert grpc_health_check("127.0.0.1", health_server, "unknown-status", 2) == (False, 'service unhealthy (responded with "SERVICE_UNKNOWN")')


def test_an_unknown_service_is_the_servers_not_found(health_server):
    # grpcio's servicer answers NOT_FOUND for a service it was never told about (Go's codes.NotFound String()).
    assert grpc_health_check("127.0.0.1", health_server, "nope", 2) == (False, "error: health rpc probe failed: rpc error: code = NotFound desc = ")


def test_a_server_without_the_health_service(bare_server):
    ok, message = grpc_health_check("127.0.0.1", bare_server, "", 2)
    assert not ok
    assert message.startswith("error: this server does not implement the grpc health protocol (grpc.health.v1.Health): ")


def test_many_checks_on_one_server(health_server):
    # Each check is its own connection: the server's HPACK state of one never leaks into the next.
    results = {grpc_health_check("127.0.0.1", health_server, service, 2) for service in ["", "cache", "db"] * 10}
    assert results == {(True, "service healthy"), (False, 'service unhealthy (responded with "NOT_SERVING")')}


def test_connection_refused():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        assert grpc_health_check("127.0.0.1", port, "", 1) == (False, f'error: failed to connect service at "127.0.0.1:{port}": Connection refused')


def test_a_silent_server_times_out_within_timeout_seconds():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        start = time.monotonic()
        result = grpc_health_check("127.0.0.1", listener.getsockname()[1], "", 1)
        elapsed = time.monotonic() - start
    assert result == (False, "timeout: health rpc did not complete within 1s")
    assert 0.9 < elapsed < 2.5


def test_a_server_that_closes_is_unavailable():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def close_at_once():
            conn, _addr = listener.accept()
            conn.shutdown(socket.SHUT_WR)  # an orderly close (EOF), reading on until the client gives up
            while conn.recv(65536):
                pass
            conn.close()

        thread = threading.Thread(target=close_at_once)
        thread.start()
        result = grpc_health_check("127.0.0.1", listener.getsockname()[1], "", 2)
        thread.join()
    assert result == (False, "error: health rpc probe failed: rpc error: code = Unavailable desc = error reading from server: EOF")


def test_the_installed_hook_carries_the_check_inlined(health_server, tmp_path):
    """The hook runs standalone on hosts (no collection on its path): the check must work from its installed source."""
    script = tmp_path / "hostfleet-hook"
    script.write_text(converge.hook_script_source())
    code = (
        "import sys; ns = {'__name__': 'installed'}; exec(open(sys.argv[1]).read(), ns);"
        "print(ns['grpc_health_check']('127.0.0.1', int(sys.argv[2]), 'cache', 2))"
    )
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(script), str(health_server)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr((False, 'service unhealthy (responded with "NOT_SERVING")'))


# --- HPACK -------------------------------------------------------------------------------------------


def test_rfc7541_c4_requests_with_huffman_and_the_dynamic_table():
    """RFC 7541 C.4.1-C.4.3: three requests on one connection, Huffman strings, entries indexed from the dynamic table."""
    decoder = HpackDecoder()
    first = decoder.decode(bytes.fromhex("828684418cf1e3c2e5f23a6ba0ab90f4ff"))
    assert first == [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")]
    second = decoder.decode(bytes.fromhex("828684be5886a8eb10649cbf"))
    assert second == [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com"), ("cache-control", "no-cache")]
    third = decoder.decode(bytes.fromhex("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"))
    assert third == [(":method", "GET"), (":scheme", "https"), (":path", "/index.html"), (":authority", "www.example.com"), ("custom-key", "custom-value")]
    assert decoder.size == 164


HEADER_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=40)
HEADERS = st.lists(st.tuples(st.sampled_from([":status", "content-type", "grpc-status", "grpc-message", "x-a", "x-b"]) | HEADER_TEXT.filter(bool),
                             HEADER_TEXT), max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(HEADERS, st.booleans(), st.sampled_from([None, 0, 64, 256, 4096])), min_size=1, max_size=6))
def test_hpack_decoder_reads_back_what_the_reference_encoder_wrote(blocks):
    """Header blocks of one connection, Huffman or not, with indexing, never-indexed fields and table size changes."""
    encoder = hpack.Encoder()
    decoder = HpackDecoder()
    for headers, huffman, table_size in blocks:
        if table_size is not None:
            encoder.header_table_size = table_size  # the next block starts with a dynamic table size update
        raw = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]
        fields = [hpack.NeverIndexedHeaderTuple(n, v) if n == b"x-b" else (n, v) for n, v in raw]
        block = encoder.encode(fields, huffman=huffman)
        assert decoder.decode(block) == headers


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_huffman_decode_of_every_byte_string(data):
    assert grpc_probe.hpack_huffman_decode(hpack.huffman.HuffmanEncoder(hpack.huffman_constants.REQUEST_CODES,
                                                                        hpack.huffman_constants.REQUEST_CODES_LENGTH).encode(data)) == data


@pytest.mark.parametrize("data", [b"\x00", b"\xfe", b"\xff\xff", bytes.fromhex("fffffffc")])
def test_bad_huffman_padding_or_eos_is_an_error(data):
    # 0x00: padding of zeros; 0xfe: seven ones then a zero; 0xffff: 16 bits of padding; fffffffc: the 30-bit EOS itself.
    with pytest.raises(GrpcProtocolError):
        grpc_probe.hpack_huffman_decode(data)


@pytest.mark.parametrize("block", [b"\xbe", b"\x80", b"\x3f\xe2\x1f", b"\x41\x85abc", b"\x1f"])
def test_bad_blocks_are_errors(block):
    # index 62 with an empty table, index 0, a size update above 4096, a truncated string, a truncated integer
    with pytest.raises(GrpcProtocolError):
        HpackDecoder().decode(block)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**28), st.integers(1, 8))
def test_integer_round_trip(value, prefix):
    encoded = grpc_probe.hpack_encode_integer(value, prefix)
    assert grpc_probe.hpack_decode_integer(encoded, 0, prefix) == (value, len(encoded))


def test_our_request_headers_are_read_back_by_the_reference_decoder():
    block = b"".join(grpc_probe.hpack_encode_literal(n, v) for n, v in [(":method", "POST"), ("te", "trailers"), ("x", "y" * 300)])
    assert hpack.Decoder().decode(block) == [(":method", "POST"), ("te", "trailers"), ("x", "y" * 300)]


# --- protobuf ---------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.sampled_from(list(health_pb2.HealthCheckResponse.ServingStatus.values())))
def test_protobuf_by_hand_matches_the_generated_code(service, status):
    request = grpc_probe.grpc_health_request(service)
    assert request[0] == 0 and int.from_bytes(request[1:5], "big") == len(request) - 5
    assert health_pb2.HealthCheckRequest.FromString(request[5:]).service == service
    assert grpc_probe.grpc_health_status(health_pb2.HealthCheckResponse(status=status).SerializeToString()) == status


def test_status_with_unknown_fields_and_negative_numbers():
    # field 2 (varint), field 3 (bytes), field 4 (fixed32), then status -1 as protobuf writes an int32 enum (10 bytes)
    message = b"\x10\x05" + b"\x1a\x02ab" + b"\x25\x00\x00\x00\x00" + b"\x08" + b"\xff" * 9 + b"\x01"
    assert grpc_probe.grpc_health_status(message) == -1
    assert grpc_probe.grpc_status_name(-1) == "-1" and grpc_probe.grpc_status_name(2) == "NOT_SERVING"
    with pytest.raises(GrpcProtocolError):
        grpc_probe.grpc_health_status(b"\x0a\x05ab")


@pytest.mark.parametrize("seconds,text", [(1, "1s"), (59, "59s"), (60, "1m0s"), (90, "1m30s"), (3605, "1h0m5s")])
def test_go_durations(seconds, text):
    assert grpc_probe.grpc_go_duration(seconds) == text


# --- the PodSpec and the hook ----------------------------------------------------------------------


def test_grpc_probe_normal_form():
    probe = {"grpc": {"port": 2379}, "initialDelaySeconds": 10}
    container = validate_pod_spec(spec_with(livenessProbe=probe, readinessProbe={"grpc": {"port": 9000, "service": "db"}}))["containers"][0]
    assert container["livenessProbe"]["grpc"] == {"port": 2379, "service": ""}
    assert container["readinessProbe"]["grpc"] == {"port": 9000, "service": "db"}
    assert container["livenessProbe"]["initialDelaySeconds"] == 10


@pytest.mark.parametrize("probe,path,fragment", [
    ({"grpc": {}}, "livenessProbe.grpc.port", "is required"),
    ({"grpc": {"port": 0}}, "livenessProbe.grpc.port", "between 1 and 65535"),
    ({"grpc": {"port": 70000}}, "livenessProbe.grpc.port", "between 1 and 65535"),
    ({"grpc": {"port": "grpc"}}, "livenessProbe.grpc.port", "must be an integer"),
    ({"grpc": {"port": 1, "service": 5}}, "livenessProbe.grpc.service", "must be a string"),
    ({"grpc": {"port": 1, "service": "\ud800"}}, "livenessProbe.grpc.service", "Unicode"),
    ({"grpc": {"port": 1, "service": "x" * 16001}}, "livenessProbe.grpc.service", "at most 16000 bytes"),
    ({"grpc": {"port": 1, "host": "10.0.0.1"}}, "livenessProbe.grpc.host", "unknown field"),
    ({"grpc": {"port": 1}, "tcpSocket": {"port": 1}}, "livenessProbe", "exactly one of"),
])
def test_grpc_probe_errors_name_the_field(probe, path, fragment):
    with pytest.raises(SpecError) as info:
        validate_pod_spec(spec_with(livenessProbe=probe))
    assert info.value.path == f"spec.containers[0].{path}"
    assert fragment in info.value.message


def test_lifecycle_handlers_have_no_grpc():
    with pytest.raises(SpecError) as info:
        validate_pod_spec(spec_with(lifecycle={"postStart": {"grpc": {"port": 1}}}))
    assert info.value.path == "spec.containers[0].lifecycle.postStart.grpc"


@pytest.mark.parametrize("network,host", [(None, "127.0.0.1"), ({"ip": "10.88.0.7"}, "10.88.0.7")])
def test_the_hook_checks_the_pods_address_and_reports_the_kubelets_words(tmp_path, monkeypatch, network, host):
    monkeypatch.setattr(hook, "RUN_DIR", str(tmp_path / "run"))
    events, checks = [], []
    monkeypatch.setattr(hook, "event", lambda reason, pod, container, message, event_type="Normal": events.append((reason, message)))
    monkeypatch.setattr(hook, "grpc_health_check", lambda *args: checks.append(args) or (False, 'service unhealthy (responded with "NOT_SERVING")'))
    monkeypatch.setattr(hook, "network_sync", lambda state_dir: None)
    probe = {"grpc": {"port": 2379, "service": "etcd"}, "timeoutSeconds": 3}
    raw = {"containers": [{"name": "main", "command": ["/bin/sleep", "inf"], "readinessProbe": probe}]}
    record = {"name": "web", "spec": podspec.validate_pod_spec(raw)}
    if network:
        record["network"] = network
    pod_dir = tmp_path / "state" / "pods" / "web"
    pod_dir.mkdir(parents=True)
    (pod_dir / "pod.json").write_text(json.dumps(record))
    rdir = tmp_path / "run" / "web" / "main"
    rdir.mkdir(parents=True)
    (rdir / "status.json").write_text(json.dumps({"starts": 1, "running": True, "started_at": time.time() - 100}))
    hook.cmd_probe(str(tmp_path / "state"), "web", "main", "readiness")
    assert checks == [(host, 2379, "etcd", 3)]
    assert events == [("Unhealthy", 'Readiness probe failed (1/3): service unhealthy (responded with "NOT_SERVING")')]
    assert not os.path.exists(rdir / "ready")
