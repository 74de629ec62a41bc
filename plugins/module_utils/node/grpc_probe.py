# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probes of type grpc: one grpc.health.v1.Health/Check call, as the kubelet's gRPC prober makes it, stdlib only.

HTTP/2 over cleartext with prior knowledge (RFC 9113 3.3): the connection preface, SETTINGS (acknowledged both
ways), one HEADERS frame (HPACK literals without indexing: no encoder state), one DATA frame carrying the
length-prefixed HealthCheckRequest (protobuf by hand: field 1, the service name), then the response's headers, DATA
and trailers (grpc-status). The HPACK decoder handles what real servers send: indexed fields, the dynamic table and
its size updates, Huffman-coded strings (RFC 7541). Results and messages are the kubelet's (pkg/probe/grpc).

The pod hook carries this file's code inlined (converge.hook_script_source): stdlib only, every top-level name
prefixed (grpc_/GRPC_/_hpack_/_h2_) so it cannot clash with the hook's own.
"""

from __future__ import annotations

import socket
import struct
import time

GRPC_HEALTH_CHECK_PATH = "/grpc.health.v1.Health/Check"
# HealthCheckResponse.ServingStatus, by number (its String() in Go).
GRPC_SERVING_STATUS = ("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")
GRPC_SERVING = 1
# gRPC status codes by number, named as Go's codes.Code String() says them (in the kubelet's messages).
GRPC_CODE_NAMES = (
    "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists", "PermissionDenied",
    "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss",
    "Unauthenticated",
)  # fmt: skip
GRPC_UNIMPLEMENTED = 12
GRPC_DEADLINE_EXCEEDED = 4
GRPC_INTERNAL = 13
GRPC_UNAVAILABLE = 14
# A service name rides in one DATA frame (16384 bytes at most before SETTINGS_MAX_FRAME_SIZE is raised).
GRPC_MAX_SERVICE_BYTES = 16000
# What the probe accepts from a server, well above any health answer: a bound on memory, not a protocol limit.
_H2_MAX_HEADER_LIST = 65536
_H2_MAX_BODY = 65536
_H2_MAX_FRAME = 16384  # our SETTINGS_MAX_FRAME_SIZE (the default, never raised)
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_H2_DATA, _H2_HEADERS, _H2_RST_STREAM, _H2_SETTINGS, _H2_PUSH_PROMISE, _H2_PING, _H2_GOAWAY, _H2_WINDOW_UPDATE, _H2_CONTINUATION = (0, 1, 3, 4, 5, 6, 7, 8, 9)
_H2_END_STREAM, _H2_ACK, _H2_END_HEADERS, _H2_PADDED, _H2_PRIORITY = (0x1, 0x1, 0x4, 0x8, 0x20)
_H2_SETTINGS_ENABLE_PUSH = 0x2
# HTTP/2 error codes (RST_STREAM, GOAWAY) that gRPC reads as Unavailable rather than Internal.
_H2_REFUSED_STREAM = 0x7

# RFC 7541 Appendix A.
_HPACK_STATIC_TABLE = (
    (':authority', ''),
    (':method', 'GET'),
    (':method', 'POST'),
    (':path', '/'),
    (':path', '/index.html'),
    (':scheme', 'http'),
    (':scheme', 'https'),
    (':status', '200'),
    (':status', '204'),
    (':status', '206'),
    (':status', '304'),
    (':status', '400'),
    (':status', '404'),
    (':status', '500'),
    ('accept-charset', ''),
    ('accept-encoding', 'gzip, deflate'),
    ('accept-language', ''),
    ('accept-ranges', ''),
    ('accept', ''),
    ('access-control-allow-origin', ''),
    ('age', ''),
    ('allow', ''),
    ('authorization', ''),
    ('cache-control', ''),
    ('content-disposition', ''),
    ('content-encoding', ''),
    ('content-language', ''),
    ('content-length', ''),
    ('content-location', ''),
    ('content-range', ''),
    ('content-type', ''),
    ('cookie', ''),
    ('date', ''),
    ('etag', ''),
    ('expect', ''),
    ('expires', ''),
    ('from', ''),
    ('host', ''),
    ('if-match', ''),
    ('if-modified-since', ''),
    ('if-none-match', ''),
    ('if-range', ''),
    ('if-unmodified-since', ''),
    ('last-modified', ''),
    ('link', ''),
    ('location', ''),
    ('max-forwards', ''),
    ('proxy-authenticate', ''),
    ('proxy-authorization', ''),
    ('range', ''),
    ('referer', ''),
    ('refresh', ''),
    ('retry-after', ''),
    ('server', ''),
    ('set-cookie', ''),
    ('strict-transport-security', ''),
    ('transfer-encoding', ''),
    ('user-agent', ''),
    ('vary', ''),
    ('via', ''),
    ('www-authenticate', ''),
)
# RFC 7541 Appendix B: (code, length in bits) of each byte value, then EOS (256).
_HPACK_HUFFMAN_CODES = (
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28), (0xfffffe4, 28), (0xfffffe5, 28), (0xfffffe6, 28), (0xfffffe7, 28),
    (0xfffffe8, 28), (0xffffea, 24), (0x3ffffffc, 30), (0xfffffe9, 28), (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28), (0xfffffec, 28),
    (0xfffffed, 28), (0xfffffee, 28), (0xfffffef, 28), (0xffffff0, 28), (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28),
    (0xffffff4, 28), (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28), (0xffffff8, 28), (0xffffff9, 28), (0xffffffa, 28), (0xffffffb, 28),
    (0x14, 6), (0x3f8, 10), (0x3f9, 10), (0xffa, 12), (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11), (0x3fa, 10), (0x3fb, 10), (0xf9, 8),
    (0x7fb, 11), (0xfa, 8), (0x16, 6), (0x17, 6), (0x18, 6), (0x0, 5), (0x1, 5), (0x2, 5), (0x19, 6), (0x1a, 6), (0x1b, 6), (0x1c, 6), (0x1d, 6),
    (0x1e, 6), (0x1f, 6), (0x5c, 7), (0xfb, 8), (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10), (0x1ffa, 13), (0x21, 6), (0x5d, 7), (0x5e, 7),
    (0x5f, 7), (0x60, 7), (0x61, 7), (0x62, 7), (0x63, 7), (0x64, 7), (0x65, 7), (0x66, 7), (0x67, 7), (0x68, 7), (0x69, 7), (0x6a, 7), (0x6b, 7),
    (0x6c, 7), (0x6d, 7), (0x6e, 7), (0x6f, 7), (0x70, 7), (0x71, 7), (0x72, 7), (0xfc, 8), (0x73, 7), (0xfd, 8), (0x1ffb, 13), (0x7fff0, 19),
    (0x1ffc, 13), (0x3ffc, 14), (0x22, 6), (0x7ffd, 15), (0x3, 5), (0x23, 6), (0x4, 5), (0x24, 6), (0x5, 5), (0x25, 6), (0x26, 6), (0x27, 6),
    (0x6, 5), (0x74, 7), (0x75, 7), (0x28, 6), (0x29, 6), (0x2a, 6), (0x7, 5), (0x2b, 6), (0x76, 7), (0x2c, 6), (0x8, 5), (0x9, 5), (0x2d, 6),
    (0x77, 7), (0x78, 7), (0x79, 7), (0x7a, 7), (0x7b, 7), (0x7ffe, 15), (0x7fc, 11), (0x3ffd, 14), (0x1ffd, 13), (0xffffffc, 28), (0xfffe6, 20),
    (0x3fffd2, 22), (0xfffe7, 20), (0xfffe8, 20), (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22), (0x7fffd9, 23), (0x3fffd6, 22), (0x7fffda, 23),
    (0x7fffdb, 23), (0x7fffdc, 23), (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23), (0xffffec, 24), (0xffffed, 24), (0x3fffd7, 22),
    (0x7fffe0, 23), (0xffffee, 24), (0x7fffe1, 23), (0x7fffe2, 23), (0x7fffe3, 23), (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22), (0x7fffe5, 23),
    (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24), (0x3fffda, 22), (0x1fffdd, 21), (0xfffe9, 20), (0x3fffdb, 22), (0x3fffdc, 22),
    (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21), (0x7fffea, 23), (0x3fffdd, 22), (0x3fffde, 22), (0xfffff0, 24), (0x1fffdf, 21), (0x3fffdf, 22),
    (0x7fffeb, 23), (0x7fffec, 23), (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21), (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23),
    (0x7fffef, 23), (0xfffea, 20), (0x3fffe2, 22), (0x3fffe3, 22), (0x3fffe4, 22), (0x7ffff0, 23), (0x3fffe5, 22), (0x3fffe6, 22), (0x7ffff1, 23),
    (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20), (0x7fff1, 19), (0x3fffe7, 22), (0x7ffff2, 23), (0x3fffe8, 22), (0x1ffffec, 25), (0x3ffffe2, 26),
    (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27), (0x7ffffdf, 27), (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25), (0x7fff2, 19),
    (0x1fffe3, 21), (0x3ffffe6, 26), (0x7ffffe0, 27), (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27), (0xfffff2, 24), (0x1fffe4, 21),
    (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26), (0xffffffd, 28), (0x7ffffe3, 27), (0x7ffffe4, 27), (0x7ffffe5, 27), (0xfffec, 20),
    (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21), (0x3fffe9, 22), (0x1fffe7, 21), (0x1fffe8, 21), (0x7ffff3, 23), (0x3fffea, 22), (0x3fffeb, 22),
    (0x1ffffee, 25), (0x1ffffef, 25), (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23), (0x3ffffeb, 26), (0x7ffffe6, 27),
    (0x3ffffec, 26), (0x3ffffed, 26), (0x7ffffe7, 27), (0x7ffffe8, 27), (0x7ffffe9, 27), (0x7ffffea, 27), (0x7ffffeb, 27), (0xffffffe, 28),
    (0x7ffffec, 27), (0x7ffffed, 27), (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27), (0x3ffffee, 26), (0x3fffffff, 30),
)
_HPACK_HUFFMAN_DECODE = {(length, code): symbol for symbol, (code, length) in enumerate(_HPACK_HUFFMAN_CODES)}
_HPACK_EOS = 256


class GrpcProtocolError(Exception):
    """The peer broke HTTP/2, HPACK or gRPC framing; with the gRPC status code the failure maps to."""

    def __init__(self, message, code=GRPC_INTERNAL):
        super().__init__(message)
        self.code = code


def hpack_encode_integer(value, prefix_bits, first_byte=0):
    """RFC 7541 5.1: ``value`` with an N-bit prefix; ``first_byte`` holds the representation's flag bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out = bytearray([first_byte | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_encode_literal(name, value):
    """A literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2): no state on either side."""
    name_bytes, value_bytes = name.encode("latin-1"), value.encode("latin-1")
    return b"\x00" + hpack_encode_integer(len(name_bytes), 7) + name_bytes + hpack_encode_integer(len(value_bytes), 7) + value_bytes


def hpack_decode_integer(data, pos, prefix_bits):
    """(value, next position) of the integer at ``data[pos]`` with an N-bit prefix."""
    if pos >= len(data):
        raise GrpcProtocolError("hpack: truncated integer")
    limit = (1 << prefix_bits) - 1
    value = data[pos] & limit
    pos += 1
    if value < limit:
        return value, pos
    shift = 0
    while True:
        if pos >= len(data):
            raise GrpcProtocolError("hpack: truncated integer")
        byte = data[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
        if shift > 28:  # no header of ours is anywhere near 2**28 bytes: a bound, not an HPACK rule
            raise GrpcProtocolError("hpack: integer too large")


def hpack_huffman_decode(data):
    """RFC 7541 5.2: the bytes a Huffman-coded string stands for; padding must be at most 7 bits of EOS's prefix (ones)."""
    out = bytearray()
    code = length = 0
    for byte in data:
        for shift in range(7, -1, -1):
            code = (code << 1) | ((byte >> shift) & 1)
            length += 1
            symbol = _HPACK_HUFFMAN_DECODE.get((length, code))
            if symbol is not None:
                if symbol == _HPACK_EOS:
                    raise GrpcProtocolError("hpack: EOS in a Huffman string")
                out.append(symbol)
                code = length = 0
            elif length > 30:
                raise GrpcProtocolError("hpack: invalid Huffman code")
    if length > 7 or code != (1 << length) - 1:
        raise GrpcProtocolError("hpack: invalid Huffman padding")
    return bytes(out)


class HpackDecoder:
    """One connection's HPACK decoding state (its dynamic table), RFC 7541."""

    def __init__(self, max_table_size=4096):
        # 4096: SETTINGS_HEADER_TABLE_SIZE, which we never change; the peer may shrink the table, not grow it past this.
        self.settings_max = max_table_size
        self.max_size = max_table_size
        self.entries = []  # newest first
        self.size = 0

    def _evict(self):
        while self.size > self.max_size and self.entries:
            name, value = self.entries.pop()
            self.size -= len(name) + len(value) + 32

    def _add(self, name, value):
        self.entries.insert(0, (name, value))
        self.size += len(name) + len(value) + 32
        self._evict()

    def _entry(self, index):
        if index == 0:
            raise GrpcProtocolError("hpack: index 0")
        if index <= len(_HPACK_STATIC_TABLE):
            name, value = _HPACK_STATIC_TABLE[index - 1]
            return name.encode("latin-1"), value.encode("latin-1")
        if index - len(_HPACK_STATIC_TABLE) > len(self.entries):
            raise GrpcProtocolError(f"hpack: index {index} is beyond the dynamic table")
        return self.entries[index - len(_HPACK_STATIC_TABLE) - 1]

    def _string(self, data, pos):
        if pos >= len(data):
            raise GrpcProtocolError("hpack: truncated string")
        huffman = data[pos] & 0x80
        length, pos = hpack_decode_integer(data, pos, 7)
        if pos + length > len(data):
            raise GrpcProtocolError("hpack: truncated string")
        raw = bytes(data[pos : pos + length])
        return (hpack_huffman_decode(raw) if huffman else raw), pos + length

    def decode(self, block):
        """The (name, value) pairs of one header block, as latin-1 text (HTTP/2 field names and values are bytes)."""
        headers = []
        total = 0
        pos = 0
        while pos < len(block):
            byte = block[pos]
            if byte & 0x80:  # indexed header field
                index, pos = hpack_decode_integer(block, pos, 7)
                name, value = self._entry(index)
            elif byte & 0xE0 == 0x20:  # dynamic table size update
                size, pos = hpack_decode_integer(block, pos, 5)
                if size > self.settings_max:
                    raise GrpcProtocolError(f"hpack: table size update to {size} above {self.settings_max}")
                self.max_size = size
                self._evict()
                continue
            else:
                # 01: with incremental indexing (6-bit index); 0000: without indexing; 0001: never indexed (4-bit).
                indexing = byte & 0xC0 == 0x40
                index, pos = hpack_decode_integer(block, pos, 6 if indexing else 4)
                if index:
                    name = self._entry(index)[0]
                else:
                    name, pos = self._string(block, pos)
                value, pos = self._string(block, pos)
                if indexing:
                    self._add(name, value)
            total += len(name) + len(value) + 32
            if total > _H2_MAX_HEADER_LIST:
                raise GrpcProtocolError("header list too large")
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
        return headers


def _h2_frame(frame_type, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([frame_type, flags]) + struct.pack(">I", stream_id) + payload


def grpc_health_request(service):
    """The length-prefixed HealthCheckRequest: field 1 (string) = service, omitted when empty (proto3)."""
    body = b""
    if service:
        encoded = service.encode("utf-8")
        body = b"\x0a" + _protobuf_varint(len(encoded)) + encoded
    return b"\x00" + struct.pack(">I", len(body)) + body


def _protobuf_varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _protobuf_read_varint(data, pos):
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise GrpcProtocolError("grpc: failed to unmarshal the received message: bad varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def grpc_health_status(message):
    """HealthCheckResponse.status (field 1, an enum: 0 when absent) of a serialized response; unknown fields skipped."""
    status = 0
    pos = 0
    while pos < len(message):
        key, pos = _protobuf_read_varint(message, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _protobuf_read_varint(message, pos)
            if field == 1:
                value &= 0xFFFFFFFF  # an int32 enum: negative numbers come as 10-byte varints
                status = value - (1 << 32) if value >= 1 << 31 else value
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, pos = _protobuf_read_varint(message, pos)
            pos += length
        elif wire == 5:
            pos += 4
        else:
            raise GrpcProtocolError(f"grpc: failed to unmarshal the received message: wire type {wire}")
        if pos > len(message):
            raise GrpcProtocolError("grpc: failed to unmarshal the received message: truncated")
    return status


def grpc_status_name(status):
    return GRPC_SERVING_STATUS[status] if 0 <= status < len(GRPC_SERVING_STATUS) else str(status)


def grpc_go_duration(seconds):
    """A whole number of seconds as Go's time.Duration String() says it (1s, 1m30s, 1h0m5s)."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _grpc_address(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _grpc_percent_decode(text):
    """grpc-message is percent-encoded UTF-8 (gRPC over HTTP/2); a bad escape is kept as it is."""
    raw = text.encode("latin-1")
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x25 and i + 3 <= len(raw) and all(chr(c) in "0123456789abcdefABCDEF" for c in raw[i + 1 : i + 3]):
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "replace")


class _H2Connection:
    """The client side of one HTTP/2 connection that makes one request on stream 1."""

    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline
        self.buffer = b""
        self.decoder = HpackDecoder()

    def send(self, data):
        self._arm()
        self.sock.sendall(data)

    def _arm(self):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline")  # noqa: UP041 - hosts run Python 3.8+, where socket.timeout is not TimeoutError
        self.sock.settimeout(remaining)

    def _read(self, count):
        while len(self.buffer) < count:
            self._arm()
            chunk = self.sock.recv(65536)
            if not chunk:
                raise GrpcProtocolError("error reading from server: EOF", GRPC_UNAVAILABLE)
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def frame(self):
        """(type, flags, stream id, payload) of the next frame."""
        header = self._read(9)
        length = int.from_bytes(header[:3], "big")
        if length > _H2_MAX_FRAME:
            raise GrpcProtocolError(f"http2: frame of {length} bytes above SETTINGS_MAX_FRAME_SIZE", GRPC_INTERNAL)
        stream_id = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
        return header[3], header[4], stream_id, self._read(length)


def _h2_unpad(flags, payload, priority=False):
    if flags & _H2_PADDED:
        if not payload or payload[0] >= len(payload):
            raise GrpcProtocolError("http2: bad padding")
        payload = payload[1 : len(payload) - payload[0]]
    if priority:
        payload = payload[5:]
    return payload


def grpc_health_exchange(sock, authority, service, deadline):
    """Make the Check call on a connected socket; (grpc status code, grpc message, serving status or None)."""
    conn = _H2Connection(sock, deadline)
    remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
    headers = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", GRPC_HEALTH_CHECK_PATH),
        (":authority", authority),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("user-agent", "hostfleet-probe/1.0"),
        ("grpc-timeout", f"{min(remaining_ms, 99999999)}m"),
    ]
    block = b"".join(hpack_encode_literal(name, value) for name, value in headers)
    conn.send(
        _H2_PREFACE
        + _h2_frame(_H2_SETTINGS, 0, 0, struct.pack(">HI", _H2_SETTINGS_ENABLE_PUSH, 0))
        + _h2_frame(_H2_HEADERS, _H2_END_HEADERS, 1, block)
        + _h2_frame(_H2_DATA, _H2_END_STREAM, 1, grpc_health_request(service))
    )
    response_headers = None
    trailers = None
    body = b""
    pending_block = None  # (stream id, flags, fragments) of a header block continued by CONTINUATION frames
    while trailers is None:
        frame_type, flags, stream_id, payload = conn.frame()
        if pending_block is not None and frame_type != _H2_CONTINUATION:
            raise GrpcProtocolError("http2: header block interrupted")
        if frame_type == _H2_SETTINGS:
            if not flags & _H2_ACK:
                if len(payload) % 6:
                    raise GrpcProtocolError("http2: bad SETTINGS frame")
                conn.send(_h2_frame(_H2_SETTINGS, _H2_ACK, 0))
            continue
        if frame_type == _H2_PING:
            if not flags & _H2_ACK:
                conn.send(_h2_frame(_H2_PING, _H2_ACK, 0, payload))
            continue
        if frame_type == _H2_GOAWAY:
            last_stream = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF if len(payload) >= 8 else 0
            if last_stream < 1:
                code = int.from_bytes(payload[4:8], "big") if len(payload) >= 8 else 0
                raise GrpcProtocolError(f"the connection is closing (GOAWAY, error code {code})", GRPC_UNAVAILABLE)
            continue
        if frame_type == _H2_RST_STREAM and stream_id == 1:
            code = int.from_bytes(payload[:4], "big") if len(payload) >= 4 else 0
            status = GRPC_UNAVAILABLE if code == _H2_REFUSED_STREAM else GRPC_INTERNAL
            raise GrpcProtocolError(f"stream terminated by RST_STREAM with error code: {code}", status)
        if frame_type in (_H2_HEADERS, _H2_CONTINUATION, _H2_PUSH_PROMISE):
            if frame_type == _H2_HEADERS:
                pending_block = (stream_id, flags, [_h2_unpad(flags, payload, bool(flags & _H2_PRIORITY))])
            elif frame_type == _H2_PUSH_PROMISE:
                raise GrpcProtocolError("http2: PUSH_PROMISE after SETTINGS_ENABLE_PUSH 0")
            elif pending_block is None or pending_block[0] != stream_id:
                raise GrpcProtocolError("http2: unexpected CONTINUATION")
            else:
                pending_block[2].append(payload)
                flags = pending_block[1] | (flags & _H2_END_HEADERS)
            if sum(len(fragment) for fragment in pending_block[2]) > _H2_MAX_HEADER_LIST:
                raise GrpcProtocolError("header list too large")
            if not flags & _H2_END_HEADERS:
                continue
            block_stream, block_flags, fragments = pending_block
            pending_block = None
            # Every block is decoded, whatever its stream: the dynamic table is the connection's.
            decoded = conn.decoder.decode(b"".join(fragments))
            if block_stream != 1:
                continue
            if response_headers is None:
                response_headers = decoded
                if block_flags & _H2_END_STREAM:
                    trailers = decoded  # a trailers-only response
            elif block_flags & _H2_END_STREAM:
                trailers = decoded
            else:
                raise GrpcProtocolError("http2: a second header block without END_STREAM")
            continue
        if frame_type == _H2_DATA and stream_id == 1:
            if response_headers is None:
                raise GrpcProtocolError("http2: DATA before the response headers")
            body += _h2_unpad(flags, payload)
            if len(body) > _H2_MAX_BODY:
                raise GrpcProtocolError("grpc: received message larger than the probe accepts", 8)
            if flags & _H2_END_STREAM:
                raise GrpcProtocolError("server closed the stream without sending trailers")
            continue
        # WINDOW_UPDATE, PRIORITY, unknown types and other streams' frames: nothing for this call.
    return _grpc_result(response_headers, trailers, body)


# gRPC's mapping of an HTTP status other than 200 to a status code (doc/http-grpc-status-mapping.md).
_GRPC_HTTP_CODES = {
    400: GRPC_INTERNAL, 401: 16, 403: 7, 404: GRPC_UNIMPLEMENTED, 429: GRPC_UNAVAILABLE, 502: GRPC_UNAVAILABLE, 503: GRPC_UNAVAILABLE, 504: GRPC_UNAVAILABLE,
}  # fmt: skip


def _grpc_result(response_headers, trailers, body):
    fields = dict(response_headers)
    http_status = fields.get(":status", "")
    if http_status != "200":
        code = _GRPC_HTTP_CODES.get(int(http_status) if http_status.isdigit() else 0, 2)
        return code, f"unexpected HTTP status code received from server: {http_status}", None
    content_type = fields.get("content-type", "")
    if content_type != "application/grpc" and not content_type.startswith(("application/grpc+", "application/grpc;")):
        return GRPC_INTERNAL, f"transport: received unexpected content-type {content_type!r}", None
    final = dict(trailers)
    raw_status = final.get("grpc-status")
    if raw_status is None or not raw_status.isdigit():
        return GRPC_INTERNAL, "server closed the stream without sending trailers" if raw_status is None else f"invalid grpc-status {raw_status!r}", None
    code = int(raw_status)
    message = _grpc_percent_decode(final.get("grpc-message", ""))
    if code != 0:
        return code, message, None
    if len(body) < 5:
        return GRPC_INTERNAL, "grpc: the server sent no response message", None
    if body[0] != 0:
        return GRPC_INTERNAL, "grpc: compressed message without a grpc-encoding the probe asked for", None
    length = struct.unpack(">I", body[1:5])[0]
    if len(body) != 5 + length:
        return GRPC_INTERNAL, "grpc: the response message's length does not match its prefix", None
    return 0, "", grpc_health_status(body[5:])


def grpc_code_name(code):
    return GRPC_CODE_NAMES[code] if 0 <= code < len(GRPC_CODE_NAMES) else f"Code({code})"


def grpc_health_check(host, port, service, timeout):
    """(success, message) of one health check of ``host``:``port`` for ``service``, within ``timeout`` seconds: the
    kubelet's result and messages (SERVING is success; anything else, or no answer, is a failure)."""
    address = _grpc_address(host, port)
    duration = grpc_go_duration(timeout)
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except (socket.timeout, TimeoutError):  # noqa: UP041 - socket.timeout is TimeoutError only from Python 3.10
        return False, f'timeout: failed to connect service "{address}" within {duration}: context deadline exceeded'
    except OSError as exc:
        return False, f'error: failed to connect service at "{address}": {exc.strerror or exc}'
    try:
        with sock:
            code, message, status = grpc_health_exchange(sock, address, service, deadline)
    except (socket.timeout, TimeoutError):  # noqa: UP041 - as above
        return False, f"timeout: health rpc did not complete within {duration}"
    except GrpcProtocolError as exc:
        code, message, status = exc.code, str(exc), None
    except OSError as exc:
        code, message, status = GRPC_UNAVAILABLE, f"connection error: {exc.strerror or exc}", None
    if code == GRPC_UNIMPLEMENTED:
        return False, f"error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {message}"
    if code == GRPC_DEADLINE_EXCEEDED:
        return False, f"timeout: health rpc did not complete within {duration}"
    if code != 0:
        return False, f"error: health rpc probe failed: rpc error: code = {grpc_code_name(code)} desc = {message}"
    if status != GRPC_SERVING:
        return False, f'service unhealthy (responded with "{grpc_status_name(status)}")'
    return True, "service healthy"
