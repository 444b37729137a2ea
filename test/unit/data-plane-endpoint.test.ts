/** Which data plane address the typed client uses, given how it reached the daemon's gRPC. */
import { describe, expect, it } from 'vitest';
import { dataPlaneEndpointFor } from '../../src/dataplane/data-plane-client';

describe('dataPlaneEndpointFor', () => {
  it('uses a loopback or unix: data address when gRPC was reached on the same machine', () => {
    expect(dataPlaneEndpointFor('127.0.0.1:7070', 'http://127.0.0.1:7071')).toEqual({ host: '127.0.0.1', port: 7071 });
    expect(dataPlaneEndpointFor('localhost:7070', 'http://127.0.0.1:7071')).toEqual({ host: '127.0.0.1', port: 7071 });
    expect(dataPlaneEndpointFor('[::1]:7070', 'http://[::1]:7071')).toEqual({ host: '::1', port: 7071 });
    expect(dataPlaneEndpointFor('unix:/run/tensormem/tensormemd.sock', 'http://127.0.0.1:7071')).toEqual({ host: '127.0.0.1', port: 7071 });
    expect(dataPlaneEndpointFor('unix:/run/tensormem/tensormemd.sock', 'unix:/run/tensormem/data.sock')).toEqual({ path: '/run/tensormem/data.sock' });
    expect(dataPlaneEndpointFor('127.0.0.1:7070', 'unix:/run/tensormem/data.sock')).toEqual({ path: '/run/tensormem/data.sock' });
    // grpc-js's ipv4: and ipv6: address forms.
    expect(dataPlaneEndpointFor('ipv4:127.0.0.1:7070', 'http://127.0.0.1:7071')).toEqual({ host: '127.0.0.1', port: 7071 });
    expect(dataPlaneEndpointFor('ipv6:[::1]:7070', 'http://[::1]:7071')).toEqual({ host: '::1', port: 7071 });
    expect(dataPlaneEndpointFor('ipv4:10.0.0.5:7070', 'http://127.0.0.1:7071')).toBeUndefined();
    expect(dataPlaneEndpointFor('ipv4:10.0.0.5:7070', 'http://0.0.0.0:7071')).toEqual({ host: '10.0.0.5', port: 7071 });
  });

  it("never sends the lease token to the client's own loopback or file system when the daemon is on another host", () => {
    // The daemon's loopback data plane (the default 127.0.0.1:7071) is not this client's: whoever
    // listens on this machine's 127.0.0.1:7071 would be sent the lease token and the array's bytes.
    expect(dataPlaneEndpointFor('10.0.0.5:7070', 'http://127.0.0.1:7071')).toBeUndefined();
    expect(dataPlaneEndpointFor('gpu-host:7070', 'http://[::1]:7071')).toBeUndefined();
    expect(dataPlaneEndpointFor('dns:///gpu-host:7070', 'http://localhost:7071')).toBeUndefined();
    expect(dataPlaneEndpointFor('10.0.0.5:7070', 'unix:/run/tensormem/data.sock')).toBeUndefined();
  });

  it('reaches a wildcard or routable data address on the host gRPC was reached at', () => {
    expect(dataPlaneEndpointFor('10.0.0.5:7070', 'http://0.0.0.0:7071')).toEqual({ host: '10.0.0.5', port: 7071 });
    expect(dataPlaneEndpointFor('[fd00::5]:7070', 'http://[::]:7071')).toEqual({ host: 'fd00::5', port: 7071 });
    expect(dataPlaneEndpointFor('10.0.0.5:7070', 'http://10.0.0.5:7071')).toEqual({ host: '10.0.0.5', port: 7071 });
    expect(dataPlaneEndpointFor('unix:/run/tensormem/tensormemd.sock', 'http://0.0.0.0:7071')).toEqual({ host: '127.0.0.1', port: 7071 });
    expect(dataPlaneEndpointFor('10.0.0.5:7070', 'https://10.0.0.5:7071')).toBeUndefined();
    expect(dataPlaneEndpointFor('10.0.0.5:7070', '')).toBeUndefined();
    // grpc-js's dns: forms, with or without a DNS server as the authority: the host is what follows it.
    expect(dataPlaneEndpointFor('dns:gpu-host:7070', 'http://0.0.0.0:7071')).toEqual({ host: 'gpu-host', port: 7071 });
    expect(dataPlaneEndpointFor('dns:///gpu-host:7070', 'http://0.0.0.0:7071')).toEqual({ host: 'gpu-host', port: 7071 });
    expect(dataPlaneEndpointFor('dns://8.8.8.8:53/gpu-host:7070', 'http://0.0.0.0:7071')).toEqual({ host: 'gpu-host', port: 7071 });
    expect(dataPlaneEndpointFor('dns://8.8.8.8/localhost:7070', 'http://127.0.0.1:7071')).toEqual({ host: '127.0.0.1', port: 7071 });
    expect(dataPlaneEndpointFor('dns://127.0.0.1/gpu-host:7070', 'http://127.0.0.1:7071')).toBeUndefined();
  });
});
