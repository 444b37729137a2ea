#!/usr/bin/python3
"""Interop client for tensormemd, written only from the public contract (README, DESIGN.md §2 and §5, and
the .proto files under proto/). It is the proof that a client in another language than the daemon's works.

Usage:
  /usr/bin/python3 test/interop/python_client.py gen-stubs DIR
  /usr/bin/python3 test/interop/python_client.py [--stubs DIR] SCENARIO ADDRESS      (e.g. 127.0.0.1:50051)

Stubs: generated as README ("Using it") says for Python, with Debian's protoc 3.21 (protobuf-compiler;
proto3 `optional` in workspace.proto needs 3.15 or later) and protobuf-compiler-grpc's grpc_python_plugin,
over every .proto under proto/ plus a hand-written grpc.health.v1 health.proto and grpc.reflection.v1
reflection.proto (python3-grpcio ships neither). google/protobuf/*.proto come from libprotobuf-dev
(/usr/include). TENSORMEM_INTEROP_PROTOC and TENSORMEM_INTEROP_GRPC_PLUGIN override the two tools' paths.
`gen-stubs DIR` writes them into DIR; without --stubs a scenario generates them into a temp folder.

Scenarios (each opens its own lease and closes it):
  walk       health, server reflection into a descriptor pool, one lease through allocate / WriteArray /
             ReadArray / memory info / errors / free / close
  dataplane  the HTTP/1.1 data plane with http.client only: PUT with Authorization: Bearer and
             X-Tensormem-Crc32c (CRC-32C computed here), a wrong and a malformed CRC refused with 400,
             GET with Range (206, Content-Range), 416
  export     ExportArray of a HOST_ONLY array and of a DEVICE array's host side, mapped by mmap of
             /dev/shm/<name>; bytes compared both ways; the name gone after FreeArray
  workspace  an ND4J-style loop: CreateWorkspace (FIRST_LOOP), Enter / allocate / ScopeOut / Leave cycles,
             the learned size, then AcquireCudnnWorkspace
  long_error an error message of some 2,000 CJK characters (ND4J's leaked-pointer message naming four
             workspaces) arrives with its code and ErrorInfo, within grpc core's 8 KiB header list
  keepalive  against a daemon with a tenants file (a tenant token in TENSORMEM_INTEROP_TENANT_TOKEN): OpenLease
             with it, KeepAlive from a request generator past twice the TTL, its clean stop, RenewLease,
             and a process SIGKILLed with release_on_disconnect set losing its lease at once
             (keepalive_child is that process)

Each prints one JSON line: {"ok": true, ...results} with exit code 0, or {"ok": false, "failures": [...]}
with exit code 1. Exit code 2: setup problem (no grpc, no protoc or plugin, protoc failed, bad usage).
"""

import base64
import hashlib
import http.client
import importlib
import json
import mmap
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

try:
    import grpc
except ImportError as e:  # pragma: no cover - environment problem
    print(json.dumps({'ok': False, 'error': f'setup: cannot import grpc ({e}): install python3-grpcio'}))
    sys.exit(2)

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.normpath(os.path.join(HERE, '..', '..', 'proto'))
PROTOC = os.environ.get('TENSORMEM_INTEROP_PROTOC') or '/usr/bin/protoc'
GRPC_PLUGIN = os.environ.get('TENSORMEM_INTEROP_GRPC_PLUGIN') or '/usr/bin/grpc_python_plugin'
# Where libprotobuf-dev puts google/protobuf/timestamp.proto and the other well-known types.
WELL_KNOWN_INCLUDE = '/usr/include'
PROTOC_MIN = (3, 15)
CHUNK = 256 * 1024
SHAPE = [256, 1024]
FLOAT32_BYTES = 4
TIMEOUT = 15.0
PAGE = 4096

# grpc.health.v1 from its well-known definition (grpc/grpc src/proto/grpc/health/v1/health.proto).
# Saved at the root of the temp folder as health.proto, so the Python module is health_pb2 and does
# not collide with the installed `grpc` package; the proto package (and so the service name on the
# wire, /grpc.health.v1.Health/Check) is unchanged.
HEALTH_PROTO = '''
syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest {
  string service = 1;
}
message HealthCheckResponse {
  enum ServingStatus {
    UNKNOWN = 0;
    SERVING = 1;
    NOT_SERVING = 2;
    SERVICE_UNKNOWN = 3;
  }
  ServingStatus status = 1;
}
service Health {
  rpc Check(HealthCheckRequest) returns (HealthCheckResponse);
  rpc Watch(HealthCheckRequest) returns (stream HealthCheckResponse);
}
'''

# grpc.reflection.v1 (grpc/grpc src/proto/grpc/reflection/v1/reflection.proto), the messages this
# client uses, saved as reflection.proto beside health.proto.
REFLECTION_PROTO = '''
syntax = "proto3";
package grpc.reflection.v1;
service ServerReflection {
  rpc ServerReflectionInfo(stream ServerReflectionRequest) returns (stream ServerReflectionResponse);
}
message ServerReflectionRequest {
  string host = 1;
  oneof message_request {
    string file_by_filename = 3;
    string file_containing_symbol = 4;
    string list_services = 7;
  }
}
message ServerReflectionResponse {
  string valid_host = 1;
  ServerReflectionRequest original_request = 2;
  oneof message_response {
    FileDescriptorResponse file_descriptor_response = 4;
    ListServiceResponse list_services_response = 6;
    ErrorResponse error_response = 7;
  }
}
message FileDescriptorResponse {
  repeated bytes file_descriptor_proto = 1;
}
message ListServiceResponse {
  repeated ServiceResponse service = 1;
}
message ServiceResponse {
  string name = 1;
}
message ErrorResponse {
  int32 error_code = 1;
  string error_message = 2;
}
'''


class Setup(Exception):
    pass


def protoc_version():
    """(major, minor) of PROTOC, or raises Setup naming the package to install."""
    if not os.path.isfile(PROTOC):
        raise Setup(f'{PROTOC} not found: install protobuf-compiler (protoc 3.15 or later)')
    out = subprocess.run([PROTOC, '--version'], capture_output=True, text=True, timeout=20)
    words = out.stdout.split()
    try:
        return tuple(int(x) for x in words[-1].split('.')[:2])
    except (IndexError, ValueError):
        raise Setup(f'{PROTOC} --version printed {out.stdout.strip()!r} {out.stderr.strip()!r}') from None


def generate_stubs(out_dir):
    """Runs protoc over every .proto under proto/ plus health.proto and reflection.proto; raises Setup."""
    version = protoc_version()
    if version < PROTOC_MIN:
        raise Setup(f'{PROTOC} is protoc {version[0]}.{version[1]}, which refuses proto3 `optional` '
                    f'(workspace.proto): install Debian\'s protobuf-compiler (3.21)')
    if not os.path.isfile(GRPC_PLUGIN):
        raise Setup(f'{GRPC_PLUGIN} not found: install protobuf-compiler-grpc')
    if not os.path.isfile(os.path.join(WELL_KNOWN_INCLUDE, 'google', 'protobuf', 'timestamp.proto')):
        raise Setup(f'no google/protobuf/timestamp.proto under {WELL_KNOWN_INCLUDE}: install libprotobuf-dev')
    with open(os.path.join(out_dir, 'health.proto'), 'w') as f:
        f.write(HEALTH_PROTO)
    with open(os.path.join(out_dir, 'reflection.proto'), 'w') as f:
        f.write(REFLECTION_PROTO)
    protos = []
    for root, _dirs, files in os.walk(PROTO_DIR):
        for name in sorted(files):
            if name.endswith('.proto'):
                protos.append(os.path.relpath(os.path.join(root, name), PROTO_DIR))
    if not protos:
        raise Setup(f'no .proto files under {PROTO_DIR}')
    base = [PROTOC, f'--python_out={out_dir}', f'--grpc_python_out={out_dir}',
            f'--plugin=protoc-gen-grpc_python={GRPC_PLUGIN}']
    for args in ([f'-I{PROTO_DIR}', f'-I{WELL_KNOWN_INCLUDE}'] + sorted(protos),
                 [f'-I{out_dir}', 'health.proto', 'reflection.proto']):
        out = subprocess.run(base + args, capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise Setup(f'protoc failed ({" ".join(base + args)}): {out.stderr.strip()}')


# ---- shared by the scenarios ----

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as X-Tensormem-Crc32c carries it."""
    crc = 0xFFFFFFFF
    table = CRC32C_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b'123456789') == 0xE3069283  # the standard check value


class Checker:
    def __init__(self):
        self.failures = []

    def __call__(self, name, cond, detail):
        if not cond:
            self.failures.append(f'{name}: {detail}')
        return cond


def pb(name):
    return importlib.import_module(name)


def connect(address):
    # The daemon's replies go up to --max-message-bytes (README: Message size).
    channel = grpc.insecure_channel(address, options=[('grpc.max_receive_message_length', 64 << 20)])
    try:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
    except grpc.FutureTimeoutError:
        raise AssertionError(f'could not connect to {address} within {TIMEOUT} s') from None
    return channel


class Session:
    """One lease: its stubs, bearer metadata and the WriteArray / ReadArray helpers."""

    def __init__(self, channel, client_name, tenant_token=None, ttl_seconds=0):
        self.lease_pb2 = pb('tensormem.v1.lease_pb2')
        self.array_pb2 = pb('tensormem.v1.array_pb2')
        self.types_pb2 = pb('tensormem.v1.types_pb2')
        self.leases = pb('tensormem.v1.lease_pb2_grpc').LeaseServiceStub(channel)
        self.arrays = pb('tensormem.v1.array_pb2_grpc').ArrayServiceStub(channel)
        # With a tenants file OpenLease takes the tenant's token; every later call the lease's.
        opened = self.leases.OpenLease(self.lease_pb2.OpenLeaseRequest(client_name=client_name, ttl_seconds=ttl_seconds),
                                       metadata=(('authorization', f'Bearer {tenant_token}'),) if tenant_token else None,
                                       timeout=TIMEOUT)
        self.lease = opened.lease
        self.data_address = opened.data_address
        self.token = opened.lease.token
        self.md = (('authorization', f'Bearer {self.token}'),)

    def allocate(self, data_type, shape, **kw):
        return self.arrays.AllocateArray(self.array_pb2.AllocateArrayRequest(
            data_type=data_type, shape=shape, **kw), metadata=self.md, timeout=TIMEOUT).array

    def write(self, array_id, data, offset=0):
        A = self.array_pb2

        def stream():
            yield A.WriteArrayRequest(header=A.WriteArrayHeader(array_id=array_id, offset=offset))
            for off in range(0, len(data), CHUNK):
                yield A.WriteArrayRequest(chunk=data[off:off + CHUNK])
        return self.arrays.WriteArray(stream(), metadata=self.md, timeout=TIMEOUT).bytes_written

    def read(self, array_id, offset=0, length=0):
        out = bytearray()
        for msg in self.arrays.ReadArray(self.array_pb2.ReadArrayRequest(array_id=array_id, offset=offset, length=length),
                                         metadata=self.md, timeout=TIMEOUT):
            out.extend(msg.data)
        return bytes(out)

    def free(self, array_id):
        return self.arrays.FreeArray(self.array_pb2.FreeArrayRequest(array_id=array_id), metadata=self.md, timeout=TIMEOUT).freed_bytes

    def close(self):
        return self.leases.CloseLease(self.lease_pb2.CloseLeaseRequest(lease_id=self.lease.lease_id),
                                      metadata=self.md, timeout=TIMEOUT).freed_bytes


def error_info(e):
    """(google.rpc.Status or None, ErrorInfo or None) of a grpc.RpcError's grpc-status-details-bin trailer."""
    status_pb2 = pb('google.rpc.status_pb2')
    error_details_pb2 = pb('google.rpc.error_details_pb2')
    for key, value in (e.trailing_metadata() or ()):
        if key == 'grpc-status-details-bin':
            status = status_pb2.Status.FromString(value)
            for any_msg in status.details:
                info = error_details_pb2.ErrorInfo()
                if any_msg.Unpack(info):
                    return status, info
            return status, None
    return None, None


def rpc_error(fn, with_metadata=False):
    """(grpc.StatusCode name, details, ErrorInfo reason or None[, ErrorInfo metadata]) of the call's failure,
    or None if it succeeded."""
    try:
        fn()
    except grpc.RpcError as e:
        _status, info = error_info(e)
        reason = info.reason if info else None
        if with_metadata:
            return e.code().name, e.details() or '', reason, dict(info.metadata) if info else {}
        return e.code().name, e.details() or '', reason
    return None


def scenario_walk(address):
    # Imported after generation. `google` is a namespace package in Debian's python3-protobuf, so
    # google/rpc/*_pb2 from the temp folder merges with the installed google.protobuf.
    from tensormem.v1 import types_pb2, lease_pb2, lease_pb2_grpc, array_pb2, array_pb2_grpc, memory_pb2, memory_pb2_grpc
    from google.rpc import status_pb2, error_details_pb2
    import health_pb2
    import health_pb2_grpc
    import reflection_pb2
    import reflection_pb2_grpc
    from google.protobuf import descriptor_pb2, descriptor_pool

    results = {'address': address}
    failures = []

    def check(name, cond, detail):
        if not cond:
            failures.append(f'{name}: {detail}')
        return cond

    channel = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
    except grpc.FutureTimeoutError:
        raise AssertionError(f'could not connect to {address} within {TIMEOUT} s') from None
    leases = lease_pb2_grpc.LeaseServiceStub(channel)
    arrays = array_pb2_grpc.ArrayServiceStub(channel)
    memory = memory_pb2_grpc.MemoryServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)

    # Health: the daemon as a whole ("") is SERVING.
    h = health.Check(health_pb2.HealthCheckRequest(service=''), timeout=TIMEOUT)
    results['health'] = health_pb2.HealthCheckResponse.ServingStatus.Name(h.status)
    check('health', h.status == health_pb2.HealthCheckResponse.SERVING,
          f'Health/Check(service="") expected SERVING, got {results["health"]}')

    # Server reflection, as grpcurl and grpc_cli use it: list the services, fetch the file of each and
    # every file it depends on (file_by_filename), and build them into a fresh descriptor pool, which
    # checks what protoc checks (every type defined or imported, map entries, proto3 optional).
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)

    def reflect(**request):
        replies = list(reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(**request)]), timeout=TIMEOUT))
        return replies[0]

    services = [sv.name for sv in reflect(list_services='*').list_services_response.service]
    results['reflection_services'] = services
    fetched = {}
    pending = [('file_containing_symbol', name) for name in services]
    while pending:
        kind, name = pending.pop()
        reply = reflect(**{kind: name})
        if reply.HasField('error_response'):
            check('reflection.fetch', False, f'reflection {kind} {name!r}: {reply.error_response.error_message}')
            continue
        for raw in reply.file_descriptor_response.file_descriptor_proto:
            fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
            fetched.setdefault(fd.name, fd)
            pending.extend(('file_by_filename', dep) for dep in fd.dependency if dep not in fetched)
    results['reflection_files'] = sorted(fetched)
    pool = descriptor_pool.DescriptorPool()
    added = set()

    def add(name):
        if name in added or name not in fetched:
            return
        added.add(name)
        for dep in fetched[name].dependency:
            add(dep)
        try:
            pool.Add(fetched[name])
        except Exception as e:  # noqa: BLE001 - the pool's own message says what is wrong
            check('reflection.pool', False, f'reflected {name} does not build into a descriptor pool: {e}')

    for name in sorted(fetched):
        add(name)
    for service in ('tensormem.v1.LeaseService', 'tensormem.v1.ArrayService', 'tensormem.v1.MemoryService', 'tensormem.v1.WorkspaceService'):
        try:
            pool.FindServiceByName(service)
        except KeyError:
            check('reflection.service', False, f'{service} not in the descriptors server reflection served ({sorted(fetched)})')

    def mem_info():
        return memory.GetMemoryInfo(memory_pb2.GetMemoryInfoRequest(), timeout=TIMEOUT).info

    def device_pool(info, device):
        for d in info.devices:
            if d.device == device:
                return d
        raise AssertionError(f'GetMemoryInfo: no device pool with device={device} in {[d.device for d in info.devices]}')

    def tenant_usage(info, tenant):
        for t in info.tenants:
            if t.tenant == tenant:
                return t
        return None

    before = mem_info()
    results['backend'] = before.backend
    dev_before = device_pool(before, 0)
    used_before = dev_before.used_bytes
    host_before = before.host.used_bytes

    # OpenLease (open mode: no tenant token needed).
    lease = leases.OpenLease(lease_pb2.OpenLeaseRequest(tenant='interop', client_name='python'), timeout=TIMEOUT).lease
    check('open_lease', bool(lease.lease_id) and bool(lease.token),
          f'OpenLease expected lease_id and token, got lease_id={lease.lease_id!r} token set={bool(lease.token)}')
    check('open_lease.tenant', lease.tenant in ('', 'interop'), f'Lease.tenant expected "interop", got {lease.tenant!r}')
    results['lease_id'] = lease.lease_id
    results['ttl_seconds'] = lease.ttl_seconds
    auth = (('authorization', f'Bearer {lease.token}'),)

    # AllocateArray FLOAT32 [256, 1024] on device 0.
    expected_size = SHAPE[0] * SHAPE[1] * FLOAT32_BYTES
    info = arrays.AllocateArray(array_pb2.AllocateArrayRequest(
        lease_id=lease.lease_id, data_type=types_pb2.DATA_TYPE_FLOAT32, shape=SHAPE,
        placement=types_pb2.PLACEMENT_DEVICE, device=0, label='interop-python'), metadata=auth, timeout=TIMEOUT).array
    results['array_id'] = info.array_id
    results['byte_size'] = info.byte_size
    check('allocate.byte_size', info.byte_size == expected_size, f'expected byte_size {expected_size}, got {info.byte_size}')
    check('allocate.shape', list(info.shape) == SHAPE, f'expected shape {SHAPE}, got {list(info.shape)}')
    check('allocate.data_type', info.data_type == types_pb2.DATA_TYPE_FLOAT32,
          f'expected DATA_TYPE_FLOAT32, got {types_pb2.DataType.Name(info.data_type)}')
    check('allocate.placement', info.placement == types_pb2.PLACEMENT_DEVICE,
          f'expected PLACEMENT_DEVICE, got {types_pb2.Placement.Name(info.placement)}')
    check('allocate.lease_id', info.lease_id == lease.lease_id, f'expected lease_id {lease.lease_id}, got {info.lease_id}')

    # WriteArray: header, then 256 KiB chunks of random bytes.
    payload = os.urandom(expected_size)

    def write_stream():
        yield array_pb2.WriteArrayRequest(header=array_pb2.WriteArrayHeader(array_id=info.array_id, offset=0))
        for off in range(0, len(payload), CHUNK):
            yield array_pb2.WriteArrayRequest(chunk=payload[off:off + CHUNK])

    written = arrays.WriteArray(write_stream(), metadata=auth, timeout=TIMEOUT)
    results['bytes_written'] = written.bytes_written
    check('write.bytes_written', written.bytes_written == expected_size,
          f'WriteArray expected bytes_written {expected_size}, got {written.bytes_written}')

    # ReadArray (length 0 = to the end): contiguous offsets, byte-exact.
    data = bytearray()
    read_chunks = 0
    for msg in arrays.ReadArray(array_pb2.ReadArrayRequest(array_id=info.array_id, offset=0, length=0), metadata=auth, timeout=TIMEOUT):
        check('read.offset', msg.offset == len(data), f'ReadArray chunk offset {msg.offset}, expected {len(data)}')
        data.extend(msg.data)
        read_chunks += 1
    results['read_chunks'] = read_chunks
    results['sha256_written'] = hashlib.sha256(payload).hexdigest()
    results['sha256_read'] = hashlib.sha256(bytes(data)).hexdigest()
    check('read.length', len(data) == expected_size, f'ReadArray returned {len(data)} bytes, expected {expected_size}')
    check('read.sha256', results['sha256_read'] == results['sha256_written'], 'ReadArray bytes differ from the written bytes')

    # GetArray: held_bytes (aligned, mirror included) is what FreeArray should return.
    got = arrays.GetArray(array_pb2.GetArrayRequest(array_id=info.array_id), metadata=auth, timeout=TIMEOUT).array
    results['held_bytes'] = got.held_bytes
    results['has_host_mirror'] = got.has_host_mirror
    check('get.array_id', got.array_id == info.array_id, f'GetArray returned {got.array_id!r}')

    # GetMemoryInfo while the array lives.
    during = mem_info()
    dev_during = device_pool(during, 0)
    results['device_used_before'] = used_before
    results['device_used_during'] = dev_during.used_bytes
    results['device_used_delta'] = dev_during.used_bytes - used_before
    results['host_used_delta'] = during.host.used_bytes - host_before
    check('memory.device_used_delta', dev_during.used_bytes - used_before == expected_size,
          f'device 0 used_bytes grew by {dev_during.used_bytes - used_before}, expected exactly byte_size {expected_size}')
    tenant = tenant_usage(during, 'interop')
    if check('memory.tenant_present', tenant is not None,
             f'tenant "interop" not in MemoryInfo.tenants {[t.tenant for t in during.tenants]}'):
        results['tenant_used_bytes'] = tenant.used_bytes
        results['tenant_device_used_bytes'] = tenant.device_used_bytes
        results['tenant_host_used_bytes'] = tenant.host_used_bytes
        results['tenant_leases'] = tenant.leases
        check('memory.tenant_device_bytes', tenant.device_used_bytes == expected_size,
              f'tenant "interop" device_used_bytes {tenant.device_used_bytes}, expected {expected_size}')
        check('memory.tenant_used_bytes', tenant.used_bytes == tenant.device_used_bytes + tenant.host_used_bytes and tenant.used_bytes >= expected_size,
              f'tenant "interop" used_bytes {tenant.used_bytes} should be device {tenant.device_used_bytes} + host {tenant.host_used_bytes} and >= {expected_size}')
        check('memory.tenant_used_vs_held', tenant.used_bytes == got.held_bytes,
              f'tenant "interop" used_bytes {tenant.used_bytes} != the array\'s held_bytes {got.held_bytes} (only array of the tenant)')
        check('memory.tenant_leases', tenant.leases == 1, f'tenant "interop" leases {tenant.leases}, expected 1')

    # Error: AllocateArray shape [-1] -> INVALID_ARGUMENT, ErrorInfo reason INVALID_SHAPE, nothing allocated.
    try:
        arrays.AllocateArray(array_pb2.AllocateArrayRequest(
            lease_id=lease.lease_id, data_type=types_pb2.DATA_TYPE_FLOAT32, shape=[-1]), metadata=auth, timeout=TIMEOUT)
        check('error.invalid_shape', False, 'AllocateArray shape [-1] succeeded, expected INVALID_ARGUMENT')
    except grpc.RpcError as e:
        results['invalid_shape_code'] = e.code().name
        results['invalid_shape_message'] = e.details()
        check('error.invalid_shape.code', e.code() == grpc.StatusCode.INVALID_ARGUMENT,
              f'AllocateArray shape [-1] expected INVALID_ARGUMENT, got {e.code().name}: {e.details()}')
        check('error.invalid_shape.message', 'shape' in (e.details() or '') and '-1' in (e.details() or ''),
              f'message should name the field and value (DESIGN §5), got {e.details()!r}')
        raw = None
        for key, value in (e.trailing_metadata() or ()):
            if key == 'grpc-status-details-bin':
                raw = value
        if check('error.status_details', raw is not None, 'no grpc-status-details-bin trailer'):
            st = status_pb2.Status.FromString(raw)
            check('error.status.code', st.code == grpc.StatusCode.INVALID_ARGUMENT.value[0],
                  f'google.rpc.Status.code {st.code}, expected {grpc.StatusCode.INVALID_ARGUMENT.value[0]}')
            check('error.status.message', st.message == e.details(),
                  f'google.rpc.Status.message {st.message!r} != grpc-message {e.details()!r}')
            reasons = []
            for any_msg in st.details:
                if any_msg.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    ei = error_details_pb2.ErrorInfo()
                    any_msg.Unpack(ei)
                    reasons.append(ei.reason)
                    results['invalid_shape_domain'] = ei.domain
                    results['invalid_shape_metadata'] = dict(ei.metadata)
            results['invalid_shape_reason'] = reasons[0] if reasons else None
            check('error.error_info', reasons == ['INVALID_SHAPE'],
                  f'ErrorInfo reasons {reasons} (detail type_urls {[d.type_url for d in st.details]}), expected ["INVALID_SHAPE"]')
    after_bad = device_pool(mem_info(), 0)
    check('error.invalid_shape.nothing_allocated', after_bad.used_bytes == dev_during.used_bytes,
          f'device used_bytes changed {dev_during.used_bytes} -> {after_bad.used_bytes} after the failed allocation')

    # Wrong token -> UNAUTHENTICATED.
    try:
        arrays.GetArray(array_pb2.GetArrayRequest(array_id=info.array_id),
                        metadata=(('authorization', 'Bearer not-a-real-token'),), timeout=TIMEOUT)
        check('error.wrong_token', False, 'GetArray with a wrong token succeeded, expected UNAUTHENTICATED')
    except grpc.RpcError as e:
        results['wrong_token_code'] = e.code().name
        check('error.wrong_token', e.code() == grpc.StatusCode.UNAUTHENTICATED,
              f'GetArray with a wrong token expected UNAUTHENTICATED, got {e.code().name}: {e.details()}')

    # FreeArray -> freed bytes; pools back where they were.
    freed = arrays.FreeArray(array_pb2.FreeArrayRequest(array_id=info.array_id), metadata=auth, timeout=TIMEOUT)
    results['freed_bytes'] = freed.freed_bytes
    check('free.freed_bytes', freed.freed_bytes >= expected_size, f'FreeArray freed_bytes {freed.freed_bytes} < byte_size {expected_size}')
    check('free.freed_vs_held', freed.freed_bytes == got.held_bytes,
          f'FreeArray freed_bytes {freed.freed_bytes} != GetArray held_bytes {got.held_bytes}')
    after = mem_info()
    dev_after = device_pool(after, 0)
    results['device_used_after_free'] = dev_after.used_bytes
    results['host_used_after_free'] = after.host.used_bytes
    check('memory.device_used_restored', dev_after.used_bytes == used_before,
          f'device 0 used_bytes after FreeArray {dev_after.used_bytes}, expected {used_before}')
    check('memory.host_used_restored', after.host.used_bytes == host_before,
          f'host used_bytes after FreeArray {after.host.used_bytes}, expected {host_before}')
    check('free.freed_vs_pools', freed.freed_bytes == (dev_during.used_bytes - dev_after.used_bytes) + (during.host.used_bytes - after.host.used_bytes),
          f'FreeArray freed_bytes {freed.freed_bytes} != device+host used_bytes drop '
          f'{(dev_during.used_bytes - dev_after.used_bytes) + (during.host.used_bytes - after.host.used_bytes)}')

    # GetArray of the freed id -> NOT_FOUND.
    try:
        arrays.GetArray(array_pb2.GetArrayRequest(array_id=info.array_id), metadata=auth, timeout=TIMEOUT)
        check('error.freed_not_found', False, 'GetArray of a freed array succeeded, expected NOT_FOUND')
    except grpc.RpcError as e:
        results['freed_get_code'] = e.code().name
        check('error.freed_not_found', e.code() == grpc.StatusCode.NOT_FOUND,
              f'GetArray of a freed array expected NOT_FOUND, got {e.code().name}: {e.details()}')

    # CloseLease.
    closed = leases.CloseLease(lease_pb2.CloseLeaseRequest(lease_id=lease.lease_id), metadata=auth, timeout=TIMEOUT)
    results['close_freed_bytes'] = closed.freed_bytes
    check('close.freed_bytes', closed.freed_bytes == 0, f'CloseLease freed_bytes {closed.freed_bytes}, expected 0 (array already freed)')
    final = mem_info()
    results['device_used_final'] = device_pool(final, 0).used_bytes
    check('memory.final', device_pool(final, 0).used_bytes == used_before,
          f'device 0 used_bytes after CloseLease {device_pool(final, 0).used_bytes}, expected {used_before}')
    t_final = tenant_usage(final, 'interop')
    results['tenant_after_close'] = None if t_final is None else {'used_bytes': t_final.used_bytes, 'leases': t_final.leases}
    check('memory.tenant_after_close', t_final is None or (t_final.used_bytes == 0 and t_final.leases == 0),
          f'tenant "interop" after CloseLease: {results["tenant_after_close"]}, expected absent or 0 bytes / 0 leases')

    channel.close()
    return results, failures


def http_request(host_port, method, path, token, body=None, headers=None):
    """One request on a fresh connection (a refused PUT closes its connection): (status, headers, body)."""
    conn = http.client.HTTPConnection(host_port, timeout=TIMEOUT)
    try:
        sent = {'Authorization': f'Bearer {token}'}
        sent.update(headers or {})
        conn.request(method, path, body=body, headers=sent)
        reply = conn.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        conn.close()


def scenario_dataplane(address):
    check = Checker()
    results = {}
    channel = connect(address)
    s = Session(channel, 'python-dataplane')
    T = s.types_pb2
    results['data_address'] = s.data_address
    if not check('open_lease.data_address', s.data_address.startswith('http://'),
                 f'OpenLease data_address {s.data_address!r}, expected http://HOST:PORT (daemon started with --data-listen)'):
        return results, check.failures
    host_port = s.data_address[len('http://'):]

    # FLOAT32 [64, 1024] on the device: 256 KiB.
    info = s.allocate(T.DATA_TYPE_FLOAT32, [64, 1024], placement=T.PLACEMENT_DEVICE)
    size = info.byte_size
    results['byte_size'] = size
    path = f'/v1/arrays/{info.array_id}'

    def put(body, headers):
        status, hdrs, raw = http_request(host_port, 'PUT', path, s.token, body, headers)
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = {'unparsed': raw[:200].decode('latin-1')}
        return status, hdrs, doc

    def get(headers=None):
        return http_request(host_port, 'GET', path, s.token, None, headers)

    # PUT the whole array, CRC-32C as 8 hex digits.
    expected = bytearray(os.urandom(size))
    crc = crc32c(expected)
    status, hdrs, doc = put(bytes(expected), {'X-Tensormem-Crc32c': f'{crc:08x}'})
    results['put'] = {'status': status, 'body': doc, 'crc_echo': hdrs.get('x-tensormem-crc32c'), 'crc_sent': f'{crc:08x}'}
    check('put.status', status == 200, f'PUT whole array: status {status}, body {doc}')
    check('put.body', doc == {'array_id': info.array_id, 'offset': 0, 'bytes_written': size},
          f'PUT whole array: body {doc}, expected array_id/offset 0/bytes_written {size}')
    check('put.crc_echo', (hdrs.get('x-tensormem-crc32c') or '').lower() == f'{crc:08x}',
          f'PUT: X-Tensormem-Crc32c echoed {hdrs.get("x-tensormem-crc32c")!r}, expected {crc:08x}')
    check('put.grpc_read', s.read(info.array_id) == bytes(expected), 'ReadArray after PUT differs from the PUT body')

    # PUT a patch at Content-Range bytes 4096-8191/*, CRC-32C as base64 of its 4 big-endian bytes.
    patch = os.urandom(4096)
    crc_b64 = base64.b64encode(struct.pack('>I', crc32c(patch))).decode()
    status, hdrs, doc = put(patch, {'Content-Range': 'bytes 4096-8191/*', 'X-Tensormem-Crc32c': crc_b64})
    expected[4096:8192] = patch
    results['put_range'] = {'status': status, 'body': doc, 'crc_echo': hdrs.get('x-tensormem-crc32c')}
    check('put_range.status', status == 200, f'PUT Content-Range: status {status}, body {doc}')
    check('put_range.body', doc == {'array_id': info.array_id, 'offset': 4096, 'bytes_written': 4096},
          f'PUT Content-Range: body {doc}, expected offset 4096, bytes_written 4096')
    check('put_range.crc_echo', (hdrs.get('x-tensormem-crc32c') or '').lower() == f'{crc32c(patch):08x}',
          f'base64 CRC echoed as {hdrs.get("x-tensormem-crc32c")!r}, expected 8 hex digits {crc32c(patch):08x}')

    # A well-formed but wrong CRC: 400 CHECKSUM_MISMATCH, nothing reported written. README (Checksum): the
    # body goes to pool memory as it arrives, so [offset, offset + received) holds the received bytes and
    # every byte outside it is unchanged.
    bad_body = os.urandom(4096)
    wrong = crc32c(bad_body) ^ 0x1
    status, hdrs, doc = put(bad_body, {'Content-Range': 'bytes 8192-12287/*', 'X-Tensormem-Crc32c': f'{wrong:08x}'})
    results['put_wrong_crc'] = {'status': status, 'body': doc}
    check('put_wrong_crc.status', status == 400, f'PUT with a wrong CRC: status {status}, expected 400')
    check('put_wrong_crc.reason', doc.get('reason') == 'CHECKSUM_MISMATCH' and doc.get('status') == 'INVALID_ARGUMENT'
          and doc.get('code') == 400, f'PUT with a wrong CRC: body {doc}, expected code 400, INVALID_ARGUMENT, CHECKSUM_MISMATCH')
    check('put_wrong_crc.no_bytes_written', 'bytes_written' not in doc, f'refused PUT reported bytes_written: {doc}')
    after = s.read(info.array_id)
    results['wrong_crc_outside_unchanged'] = after[:8192] == bytes(expected[:8192]) and after[12288:] == bytes(expected[12288:])
    results['wrong_crc_range_holds'] = ('received' if after[8192:12288] == bad_body
                                        else 'previous' if after[8192:12288] == bytes(expected[8192:12288]) else 'other')
    check('put_wrong_crc.outside_unchanged', results['wrong_crc_outside_unchanged'],
          'bytes outside the refused PUT\'s range changed')
    # Rewrite the range, as README says to, over gRPC this time.
    s.write(info.array_id, bytes(expected[8192:12288]), offset=8192)

    # A malformed CRC header is refused from the headers, before the first byte: the array is unchanged.
    status, hdrs, doc = put(os.urandom(4096), {'Content-Range': 'bytes 0-4095/*', 'X-Tensormem-Crc32c': 'not-a-crc'})
    results['put_malformed_crc'] = {'status': status, 'body': doc}
    check('put_malformed_crc.status', status == 400 and doc.get('status') == 'INVALID_ARGUMENT',
          f'PUT with a malformed CRC: status {status}, body {doc}, expected 400 INVALID_ARGUMENT')
    check('put_malformed_crc.unchanged', s.read(info.array_id) == bytes(expected),
          'the array changed after a PUT refused for a malformed X-Tensormem-Crc32c')

    # GET the whole array.
    status, hdrs, body = get()
    results['get'] = {'status': status, 'content_length': hdrs.get('content-length'),
                      'data_type': hdrs.get('x-tensormem-data-type'), 'shape': hdrs.get('x-tensormem-shape'),
                      'crc_header': hdrs.get('x-tensormem-crc32c')}
    check('get.status', status == 200, f'GET: status {status}')
    check('get.bytes', body == bytes(expected), f'GET body ({len(body)} bytes) differs from what was written')
    results['sha256_expected'] = hashlib.sha256(bytes(expected)).hexdigest()
    results['sha256_get'] = hashlib.sha256(body).hexdigest()

    # GET with Range: 206 and Content-Range, exact bytes.
    status, hdrs, body = get({'Range': 'bytes=4096-8191'})
    results['get_range'] = {'status': status, 'content_range': hdrs.get('content-range'), 'length': len(body)}
    check('get_range.bytes', body == patch, 'GET Range bytes=4096-8191 differs from the patch PUT there')
    status, hdrs, body = get({'Range': 'bytes=-10'})
    results['get_suffix'] = {'status': status, 'content_range': hdrs.get('content-range'), 'length': len(body)}
    check('get_suffix.bytes', body == bytes(expected[-10:]), 'GET Range bytes=-10 differs from the last 10 bytes')
    status, hdrs, body = get({'Range': f'bytes={size - 100}-{size * 10}'})
    results['get_clipped'] = {'status': status, 'content_range': hdrs.get('content-range'), 'length': len(body)}
    check('get_clipped.bytes', body == bytes(expected[-100:]), 'GET Range past the end: not the last 100 bytes')

    # A range that selects no byte: 416 with Content-Range: bytes */SIZE.
    status, hdrs, body = get({'Range': f'bytes={size}-'})
    results['get_unsatisfiable'] = {'status': status, 'content_range': hdrs.get('content-range')}

    # A wrong token: 401 with WWW-Authenticate: Bearer.
    status, hdrs, body = http_request(host_port, 'GET', path, 'not-a-real-token')
    results['get_wrong_token'] = {'status': status, 'www_authenticate': hdrs.get('www-authenticate')}

    results['freed_bytes_positive'] = s.free(info.array_id) > 0
    status, hdrs, body = get()
    results['get_freed_status'] = status
    s.close()
    channel.close()
    return results, check.failures


def shm_path(region):
    """array.proto SharedMemoryRegion: on Linux the object is /dev/shm/<name without its leading "/">."""
    return '/dev/shm/' + region.name.lstrip('/')


def map_region(region, writable):
    fd = os.open(shm_path(region), os.O_RDWR if writable else os.O_RDONLY)
    try:
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        return mmap.mmap(fd, region.region_bytes, mmap.MAP_SHARED, prot)
    finally:
        os.close(fd)


def describe_region(region, size):
    path = shm_path(region)
    return {'offset': region.offset, 'length': region.length, 'region_bytes': region.region_bytes,
            'name_pattern': region.name.startswith(f'/tensormem-'),
            'file_size': os.path.getsize(path) if os.path.exists(path) else None,
            'page_multiple': region.region_bytes % PAGE == 0,
            'fits': region.region_bytes >= region.offset + region.length,
            'length_is_byte_size': region.length == size}


def scenario_export(address):
    check = Checker()
    results = {}
    channel = connect(address)
    s = Session(channel, 'python-export')
    A, T = s.array_pb2, s.types_pb2

    def export(array_id, side=0):
        return s.arrays.ExportArray(A.ExportArrayRequest(array_id=array_id, side=side), metadata=s.md, timeout=TIMEOUT)

    # HOST_ONLY UINT8 [100000]: not page-sized, so the region is rounded up.
    host = s.allocate(T.DATA_TYPE_UINT8, [100000], placement=T.PLACEMENT_HOST_ONLY)
    host_bytes = bytearray(os.urandom(host.byte_size))
    s.write(host.array_id, bytes(host_bytes))
    exp = export(host.array_id)
    results['host_handle'] = exp.WhichOneof('handle')
    results['host_moved'] = exp.moved
    results['host_exportable_after'] = exp.array.host_exportable
    results['host_region'] = describe_region(exp.shm, host.byte_size)
    mapping = map_region(exp.shm, writable=True)
    o = exp.shm.offset
    check('host.mapped_bytes', mapping[o:o + host.byte_size] == bytes(host_bytes),
          'the mapping\'s [offset, offset + length) differs from the bytes written over gRPC')
    # Mapping -> gRPC: a HOST_ONLY array's mapping is the array itself (no sync).
    poke = os.urandom(1000)
    mapping[o + 5000:o + 6000] = poke
    host_bytes[5000:6000] = poke
    check('host.grpc_sees_mapping_write', s.read(host.array_id) == bytes(host_bytes),
          'ReadArray does not show the bytes written through the mapping')
    # gRPC -> mapping.
    patch = os.urandom(777)
    s.write(host.array_id, patch, offset=90000)
    host_bytes[90000:90777] = patch
    check('host.mapping_sees_grpc_write', mapping[o:o + host.byte_size] == bytes(host_bytes),
          'the mapping does not show the bytes written by WriteArray')
    again = export(host.array_id)
    results['host_reexport'] = {'same_name': again.shm.name == exp.shm.name, 'moved': again.moved,
                                'same_offset': again.shm.offset == exp.shm.offset}
    results['host_freed_bytes'] = s.free(host.array_id)
    results['host_name_after_free'] = os.path.exists(shm_path(exp.shm))
    try:
        os.open(shm_path(exp.shm), os.O_RDONLY)
        results['host_open_after_free'] = 'opened'
    except FileNotFoundError:
        results['host_open_after_free'] = 'ENOENT'
    # array.proto: mappings already open keep working and keep only this array's last bytes.
    results['host_mapping_after_free_intact'] = mapping[o:o + host.byte_size] == bytes(host_bytes)
    mapping.close()

    # DEVICE FLOAT32 [300, 100], exported on its host side (its host mirror).
    dev = s.allocate(T.DATA_TYPE_FLOAT32, [300, 100], placement=T.PLACEMENT_DEVICE)
    dev_bytes = bytearray(os.urandom(dev.byte_size))
    s.write(dev.array_id, bytes(dev_bytes))
    dexp = export(dev.array_id, A.EXPORT_SIDE_HOST)
    results['device_handle'] = dexp.WhichOneof('handle')
    results['device_moved'] = dexp.moved
    results['device_host_valid'] = dexp.array.host_valid
    results['device_region'] = describe_region(dexp.shm, dev.byte_size)
    dmap = map_region(dexp.shm, writable=True)
    o = dexp.shm.offset
    check('device.mapped_bytes', dmap[o:o + dev.byte_size] == bytes(dev_bytes),
          'the device array\'s host-side mapping differs from the bytes written over gRPC')
    # gRPC -> mapping: WriteArray writes through to a current mirror.
    patch = os.urandom(4000)
    s.write(dev.array_id, patch, offset=8000)
    dev_bytes[8000:12000] = patch
    check('device.mapping_sees_grpc_write', dmap[o:o + dev.byte_size] == bytes(dev_bytes),
          'the host-side mapping does not show a WriteArray to the device array')
    # Mapping -> gRPC: ReadArray reads the mirror at once; SyncArray(TO_DEVICE) carries it to the device,
    # which a detached DuplicateArray (a device-to-device copy) then shows.
    poke = os.urandom(4096)
    dmap[o + 40000:o + 44096] = poke
    dev_bytes[40000:44096] = poke
    check('device.grpc_reads_mirror', s.read(dev.array_id) == bytes(dev_bytes),
          'ReadArray does not show the bytes written through the host-side mapping')
    s.arrays.SyncArray(A.SyncArrayRequest(array_id=dev.array_id, direction=A.SYNC_DIRECTION_TO_DEVICE), metadata=s.md, timeout=TIMEOUT)
    dup = s.arrays.DuplicateArray(A.DuplicateArrayRequest(array_id=dev.array_id, detached=True), metadata=s.md, timeout=TIMEOUT).array
    check('device.synced_to_device', s.read(dup.array_id) == bytes(dev_bytes),
          'after SyncArray(TO_DEVICE), a DuplicateArray of the device array lacks the mapping\'s bytes')
    s.free(dup.array_id)
    results['device_side_error'] = rpc_error(lambda: export(dev.array_id, A.EXPORT_SIDE_DEVICE))
    results['device_freed_bytes_positive'] = s.free(dev.array_id) > 0
    results['device_name_after_free'] = os.path.exists(shm_path(dexp.shm))
    dmap.close()
    s.close()
    channel.close()
    return results, check.failures


def ws_counters(w):
    return {'current_size': w.current_size, 'cycles_count': w.cycles_count, 'generation_id': w.generation_id,
            'scope_active': w.scope_active, 'current': w.current, 'spilled_size': w.spilled_size,
            'this_cycle_allocations': w.this_cycle_allocations, 'last_cycle_allocations': w.last_cycle_allocations,
            'max_cycle_allocations': w.max_cycle_allocations, 'held_bytes': w.held_bytes,
            'initial_block_size': w.initial_block_size, 'number_of_external_allocations': w.number_of_external_allocations}


def workspace_session(address, client_name):
    """(channel, Session, workspace_pb2, WorkspaceService stub) for a scenario with workspaces."""
    channel = connect(address)
    s = Session(channel, client_name)
    return channel, s, pb('tensormem.v1.workspace_pb2'), pb('tensormem.v1.workspace_pb2_grpc').WorkspaceServiceStub(channel)


def scenario_workspace(address):
    check = Checker()
    results = {}
    channel, s, W, wss = workspace_session(address, 'python-workspace')
    T = s.types_pb2
    A = s.array_pb2

    def call(method, request):
        return getattr(wss, method)(request, metadata=s.md, timeout=TIMEOUT)

    # README "Workspaces": initial size 0, FIRST_LOOP; the rest at ND4J's defaults (OVERALLOCATE 0.3,
    # FULL mirroring, EXTERNAL spills).
    ws = call('CreateWorkspace', W.CreateWorkspaceRequest(name='LOOP_WS', config=W.WorkspaceConfig(
        initial_size=0, learning_policy=W.LEARNING_POLICY_FIRST_LOOP))).workspace
    wid = ws.workspace_id
    results['created'] = ws_counters(ws)
    results['config_overallocation_limit'] = ws.config.overallocation_limit if ws.config.HasField('overallocation_limit') else None
    cycles = []
    kept = []
    first_x = None
    for i in range(3):
        entered = call('EnterWorkspace', W.EnterWorkspaceRequest(workspace_id=wid)).workspace
        # Inside the cycle: a batch FLOAT32 [64, 784] (200,704 B), written; its DuplicateArray (attached,
        # 200,704 B); a FLOAT32 [10] (40 B, 48 aligned to 16).
        x = s.allocate(T.DATA_TYPE_FLOAT32, [64, 784])
        batch = os.urandom(x.byte_size)
        s.write(x.array_id, batch)
        y = s.arrays.DuplicateArray(A.DuplicateArrayRequest(array_id=x.array_id), metadata=s.md, timeout=TIMEOUT).array
        z = s.allocate(T.DATA_TYPE_FLOAT32, [10])
        dup_matches = s.read(y.array_id) == batch
        # ScopeOut: a detached array that outlives the loop.
        call('ScopeOut', W.ScopeOutRequest())
        out = s.allocate(T.DATA_TYPE_FLOAT32, [16])
        s.write(out.array_id, struct.pack('<16f', *[float(i)] * 16))
        kept.append((out.array_id, i))
        leave_block = call('LeaveWorkspace', W.LeaveWorkspaceRequest(workspace_id=wid)).workspace
        left = call('LeaveWorkspace', W.LeaveWorkspaceRequest(workspace_id=wid)).workspace
        cycles.append({
            'attached': [x.attached, y.attached, z.attached], 'in_workspace': [a.workspace_id == wid for a in (x, y, z)],
            'sizes': [x.byte_size, y.byte_size, z.byte_size], 'dup_matches': dup_matches,
            'scoped_out_attached': out.attached, 'scoped_out_workspace_id': out.workspace_id,
            'entered': ws_counters(entered), 'leave_block_scope_active': leave_block.scope_active,
            'left': ws_counters(left)})
        if i == 0:
            first_x = x.array_id
    results['cycles'] = cycles
    # An array of the first cycle, used after its cycle ended: ARRAY_OUT_OF_SCOPE.
    results['old_array_error'] = rpc_error(lambda: s.read(first_x))
    # The ScopeOut arrays are detached: they outlive every cycle.
    results['kept_arrays_intact'] = all(s.read(aid) == struct.pack('<16f', *[float(i)] * 16) for aid, i in kept)
    results['leave_without_scope_error'] = rpc_error(lambda: call('LeaveWorkspace', W.LeaveWorkspaceRequest(workspace_id=wid)))
    got = call('GetWorkspace', W.GetWorkspaceRequest(workspace_id=wid)).workspace
    results['final'] = ws_counters(got)

    # AcquireCudnnWorkspace: no cuDNN here, so the size is requested_bytes; grow-only per lease and device.
    conv = W.ConvolutionDescriptor(input_dims=[32, 64, 56, 56], filter_dims=[128, 64, 3, 3], pads=[1, 1],
                                   strides=[1, 1], dilations=[1, 1], data_type=T.DATA_TYPE_FLOAT32)

    def acquire(requested):
        r = call('AcquireCudnnWorkspace', W.AcquireCudnnWorkspaceRequest(
            mode=W.CUDNN_ALGO_MODE_PREFER_FASTEST, convolution=conv, requested_bytes=requested))
        return {'array_id': r.scratch.array_id, 'byte_size': r.scratch.byte_size, 'label': r.scratch.label,
                'placement': T.Placement.Name(r.scratch.placement), 'data_type': T.DataType.Name(r.scratch.data_type),
                'workspace_bytes': r.workspace_bytes, 'size_source': r.size_source, 'grew': r.grew,
                'algorithm': r.algorithm, 'fell_back': r.fell_back}
    first = acquire(8 << 20)
    smaller = acquire(1 << 20)
    larger = acquire(12 << 20)
    results['cudnn'] = {'first': first, 'smaller': smaller, 'larger': larger,
                        'smaller_same_array': smaller['array_id'] == first['array_id'],
                        'larger_new_array': larger['array_id'] != first['array_id']}
    results['cudnn_old_scratch_error'] = rpc_error(
        lambda: s.arrays.GetArray(A.GetArrayRequest(array_id=first['array_id']), metadata=s.md, timeout=TIMEOUT))
    results['cudnn_bad_stride_error'] = rpc_error(lambda: call('AcquireCudnnWorkspace', W.AcquireCudnnWorkspaceRequest(
        convolution=W.ConvolutionDescriptor(input_dims=[32, 64, 56, 56], filter_dims=[128, 64, 3, 3], strides=[1, 0]),
        requested_bytes=1 << 20)))

    destroyed = call('DestroyWorkspace', W.DestroyWorkspaceRequest(workspace_id=wid)).workspace
    results['destroyed_held_bytes'] = destroyed.held_bytes
    # What the lease still holds (the ScopeOut arrays and the scratch) is what CloseLease frees.
    listed = s.arrays.ListArrays(A.ListArraysRequest(), metadata=s.md, timeout=TIMEOUT).arrays
    results['lease_arrays_left'] = len(listed)
    results['lease_held_bytes'] = sum(a.held_bytes for a in listed)
    results['close_freed_bytes'] = s.close()
    channel.close()
    return results, check.failures


def scenario_long_error(address):
    """An error whose message is long and mostly not ASCII reaches grpcio with its code and ErrorInfo, the
    message cut to fit.

    ND4J's leaked-pointer message names the array's workspace and every open one: here four workspaces
    named by 256 CJK characters each. grpc core clients take at most 8 KiB of headers in one list, and
    grpc-js percent-encodes the message (9 bytes a CJK character).
    """
    results = {}
    channel, s, W, wss = workspace_session(address, 'python-long-error')
    T = s.types_pb2
    names = [(str(i) + '\u5de5' * 256)[:256] for i in range(4)]
    ids = []
    for name in names:
        ws = wss.CreateWorkspace(W.CreateWorkspaceRequest(name=name, config=W.WorkspaceConfig(initial_size=1 << 16)),
                                 metadata=s.md, timeout=TIMEOUT).workspace
        wss.EnterWorkspace(W.EnterWorkspaceRequest(workspace_id=ws.workspace_id), metadata=s.md, timeout=TIMEOUT)
        ids.append(ws.workspace_id)
    x = s.allocate(T.DATA_TYPE_FLOAT32, [10])
    wss.LeaveWorkspace(W.LeaveWorkspaceRequest(workspace_id=ids[-1]), metadata=s.md, timeout=TIMEOUT)
    status_pb2 = pb('google.rpc.status_pb2')
    error_details_pb2 = pb('google.rpc.error_details_pb2')
    try:
        s.read(x.array_id)
        results['read_error'] = None
    except grpc.RpcError as e:
        info = error_details_pb2.ErrorInfo()
        status = status_pb2.Status()
        for key, value in (e.trailing_metadata() or ()):
            if key == 'grpc-status-details-bin':
                status = status_pb2.Status.FromString(value)
                for any_msg in status.details:
                    any_msg.Unpack(info)
        details = e.details() or ''
        results['read_error'] = {'code': e.code().name, 'reason': info.reason, 'domain': info.domain,
                            # What grpcio-status's rpc_status.from_call checks before it returns the Status.
                            'status_code_is_call_code': status.code == e.code().value[0],
                            'status_message_is_details': status.message == details,
                            'workspace_name_whole': info.metadata.get('workspace_name') == names[-1],
                            'details_head': details[:len('Cannot read array')], 'details_chars': len(details),
                            'names_in_details': sum(1 for n in names if n in details),
                            'cut': details.endswith(' characters)') and '\u2026 (cut from ' in details}
    for wid in reversed(ids[:-1]):
        wss.LeaveWorkspace(W.LeaveWorkspaceRequest(workspace_id=wid), metadata=s.md, timeout=TIMEOUT)
    s.close()
    channel.close()
    return results, []


def tenant_token_from_env():
    token = os.environ.get('TENSORMEM_INTEROP_TENANT_TOKEN')
    if not token:
        raise Setup('this scenario needs TENSORMEM_INTEROP_TENANT_TOKEN: a token of the daemon\'s tenants file')
    return token


def keepalive_stream(s, interval, replies):
    """KeepAlive as lease.proto describes it, from grpcio: a request generator (read by grpcio on a thread of
    its own) renewing every `interval` seconds with release_on_disconnect, and a thread reading the replies
    into `replies` (then 'OK', or the code the stream ended with). Returns (stop, thread): stop.set() sends
    release_on_disconnect=false with no_renew (the lease's expiry unchanged) and half-closes, the clean stop."""
    L = s.lease_pb2
    stop = threading.Event()

    def requests():
        while not stop.is_set():
            yield L.KeepAliveRequest(release_on_disconnect=True)
            stop.wait(interval)
        yield L.KeepAliveRequest(release_on_disconnect=False, no_renew=True)
    call = s.leases.KeepAlive(requests(), metadata=s.md)

    def watch():
        try:
            for reply in call:
                replies.append(reply.expires_at.ToMilliseconds())
            replies.append('OK')
        except grpc.RpcError as e:
            replies.append(e.code().name)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return stop, thread


def scenario_keepalive(address):
    """A lease opened with a tenant's token and a 2 s TTL, kept past it by KeepAlive from grpcio, renewed by
    RenewLease; and a process that dies by SIGKILL with release_on_disconnect set gives its lease back."""
    check = Checker()
    results = {}
    tenant_token = tenant_token_from_env()
    channel = connect(address)
    L = pb('tensormem.v1.lease_pb2')
    leases = pb('tensormem.v1.lease_pb2_grpc').LeaseServiceStub(channel)
    results['open_without_token'] = rpc_error(
        lambda: leases.OpenLease(L.OpenLeaseRequest(client_name='python-keepalive'), timeout=TIMEOUT))
    s = Session(channel, 'python-keepalive', tenant_token=tenant_token, ttl_seconds=2)
    T, A = s.types_pb2, s.array_pb2
    results['tenant'] = s.lease.tenant
    results['ttl_seconds'] = s.lease.ttl_seconds
    a = s.allocate(T.DATA_TYPE_UINT8, [4096], placement=T.PLACEMENT_HOST_ONLY)

    def alive():
        err = rpc_error(lambda: s.arrays.GetArray(A.GetArrayRequest(array_id=a.array_id), metadata=s.md, timeout=TIMEOUT),
                        with_metadata=True)
        return True if err is None else err

    replies = []
    stop, thread = keepalive_stream(s, 0.5, replies)
    time.sleep(4.5)  # more than twice the TTL
    results['alive_after_keepalive'] = alive()
    stop.set()
    thread.join(TIMEOUT)
    results['keepalive_end'] = replies[-1] if replies else None
    expiries = [r for r in replies if isinstance(r, int)]
    results['keepalive_replies'] = len(expiries)
    results['expiries_increase'] = len(expiries) > 1 and all(b >= a for a, b in zip(expiries, expiries[1:])) and expiries[-1] > expiries[0]
    # The clean stop released nothing.
    results['alive_after_clean_stop'] = alive()
    renewed = s.leases.RenewLease(L.RenewLeaseRequest(ttl_seconds=60), metadata=s.md, timeout=TIMEOUT).lease
    results['renewed_ttl_seconds'] = renewed.ttl_seconds
    time.sleep(3)  # past the 2 s TTL the lease had
    results['alive_after_renew'] = alive()
    results['renew_with_tenant_token'] = rpc_error(lambda: s.leases.RenewLease(
        L.RenewLeaseRequest(), metadata=(('authorization', f'Bearer {tenant_token}'),), timeout=TIMEOUT))

    # A second process: its own lease and KeepAlive with release_on_disconnect, then SIGKILL.
    child = subprocess.run([sys.executable, os.path.abspath(__file__), '--stubs', STUBS[0], 'keepalive_child', address],
                           capture_output=True, text=True, timeout=60)
    results['child_exit'] = child.returncode
    child_token = child.stdout.strip().split('\n')[-1] if child.stdout.strip() else ''
    check('child.token', bool(child_token), f'keepalive_child printed no token (exit {child.returncode}): {child.stderr[-500:]}')
    child_md = (('authorization', f'Bearer {child_token}'),)
    deadline = time.time() + 5
    ended = None
    while child_token and time.time() < deadline:
        ended = rpc_error(lambda: leases.RenewLease(L.RenewLeaseRequest(), metadata=child_md, timeout=TIMEOUT), with_metadata=True)
        if ended is not None:
            break
        time.sleep(0.1)
    results['child_lease_after_kill'] = ended
    results['close_freed_bytes'] = s.close()
    channel.close()
    return results, check.failures


def scenario_keepalive_child(address):
    """Run by scenario_keepalive: opens a lease, keeps it alive with release_on_disconnect, prints the lease
    token once the first KeepAlive reply came, and dies by SIGKILL (no half-close, no CloseLease)."""
    channel = connect(address)
    s = Session(channel, 'python-keepalive-child', tenant_token=tenant_token_from_env(), ttl_seconds=600)
    replies = []
    keepalive_stream(s, 0.5, replies)
    deadline = time.time() + TIMEOUT
    while not replies and time.time() < deadline:
        time.sleep(0.05)
    print(s.token, flush=True)
    os.kill(os.getpid(), 9)


SCENARIOS = {'walk': scenario_walk, 'dataplane': scenario_dataplane, 'export': scenario_export,
             'workspace': scenario_workspace, 'long_error': scenario_long_error, 'keepalive': scenario_keepalive,
             'keepalive_child': scenario_keepalive_child}
# The stubs folder of this run, for the processes a scenario starts.
STUBS = []
USAGE = f'usage: python_client.py gen-stubs DIR | python_client.py [--stubs DIR] {{{"|".join(SCENARIOS)}}} ADDRESS'


def main(argv):
    if len(argv) == 2 and argv[0] == 'gen-stubs':
        generate_stubs(argv[1])
        return {'ok': True, 'stubs': argv[1], 'failures': []}
    stubs = None
    if len(argv) >= 2 and argv[0] == '--stubs':
        stubs, argv = argv[1], argv[2:]
    if len(argv) != 2 or argv[0] not in SCENARIOS:
        raise Setup(USAGE)
    scenario, address = SCENARIOS[argv[0]], argv[1]
    with tempfile.TemporaryDirectory(prefix='tensormem-pystubs-') as temp:
        if stubs is None:
            generate_stubs(temp)
            stubs = temp
        # `google` is a namespace package in Debian's python3-protobuf, so google/rpc/*_pb2 from the stubs
        # folder merges with the installed google.protobuf.
        sys.path.insert(0, stubs)
        STUBS.append(stubs)
        results, failures = scenario(address)
    results['scenario'] = argv[0]
    results['ok'] = not failures
    results['failures'] = failures
    return results


if __name__ == '__main__':
    try:
        res = main(sys.argv[1:])
    except Setup as e:
        print(json.dumps({'ok': False, 'error': f'setup: {e}'}))
        sys.exit(2)
    except grpc.RpcError as e:
        print(json.dumps({'ok': False, 'error': f'unexpected RPC failure: {e.code().name}: {e.details()}',
                          'trace': traceback.format_exc().splitlines()[-6:]}))
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - any other mismatch is a failure with a clear message
        print(json.dumps({'ok': False, 'error': f'{type(e).__name__}: {e}', 'trace': traceback.format_exc().splitlines()[-6:]}))
        sys.exit(1)
    print(json.dumps(res, sort_keys=True))
    if not res['ok']:
        for f in res['failures']:
            print(f'MISMATCH {f}', file=sys.stderr)
    sys.exit(0 if res['ok'] else 1)
