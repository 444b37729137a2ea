/** TLS and mTLS on TCP addresses from certificate files; health stays reachable without a token. */
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, loadPackageDefinition, status } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { DaemonProcess, ROOT, runTensormemd, startDaemon } from '../helpers/daemon-process';

const dir = mkdtempSync(join(tmpdir(), 'tensormem-tls-'));
const file = (name: string) => join(dir, name);
const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });

/**
 * A CA, a server certificate for localhost/127.0.0.1 and a client certificate, all signed by the CA;
 * and a client certificate of another CA ("stranger").
 */
function makeCertificates(): void {
  for (const ca of ['ca', 'other-ca']) {
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=tensormem test ${ca}`, '-keyout', file(`${ca}.key`), '-out', file(`${ca}.pem`));
  }
  writeFileSync(file('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  for (const [name, ext, ca] of [['server', ['-extfile', file('server.ext')], 'ca'], ['client', [], 'ca'], ['stranger', [], 'other-ca']] as const) {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`));
    openssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file(`${ca}.pem`), '-CAkey', file(`${ca}.key`), '-CAcreateserial', '-days', '2', '-out', file(`${name}.pem`), ...ext);
  }
}

const TOKEN = 'tls-tenant-token';
const ADMIN_TOKEN = 'tls-admin-token';

describe('TLS and mTLS', () => {
  let tlsDaemon: DaemonProcess;
  let mtlsDaemon: DaemonProcess;

  beforeAll(async () => {
    makeCertificates();
    const sha = (token: string) => createHash('sha256').update(token).digest('hex');
    writeFileSync(file('tenants.yaml'), `tenants:\n  - name: t\n    token_sha256: "${sha(TOKEN)}"\n  - name: ops\n    token_sha256: "${sha(ADMIN_TOKEN)}"\n    admin: true\n`);
    const common = ['--tenants', file('tenants.yaml'), '--tls-cert', file('server.pem'), '--tls-key', file('server.key')];
    tlsDaemon = await startDaemon(common);
    mtlsDaemon = await startDaemon([...common, '--tls-client-ca', file('ca.pem')]);
  });

  afterAll(async () => {
    await tlsDaemon?.stop();
    await mtlsDaemon?.stop();
  });

  const ca = () => readFileSync(file('ca.pem'));

  it('serves TLS to clients that trust the CA and refuses plaintext', async () => {
    const secure = new TensormemClient(tlsDaemon.tcpAddress, { tls: { ca: ca(), serverName: 'localhost' }, deadlineMs: 5000 });
    const lease = await secure.openLease({ tenantToken: TOKEN });
    expect(lease.lease.tenant).toBe('t');
    await lease.close();
    secure.close();
    const plain = new TensormemClient(tlsDaemon.tcpAddress, { deadlineMs: 3000 });
    const error = (await plain.openLease({ tenantToken: TOKEN }).catch((e: unknown) => e)) as TensormemClientError;
    expect([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]).toContain(error.code);
    plain.close();
  });

  it('serves the metrics listener (admin tokens) over TLS too, never as plaintext HTTP', async () => {
    // As plain HTTP, every Prometheus scrape and status page view sent an admin token in clear text
    // on a daemon whose gRPC and data plane were TLS.
    const get = (url: string, options: https.RequestOptions = {}) =>
      new Promise<{ status?: number; body: string }>((resolve, reject) => {
        const request = (url.startsWith('https:') ? https : http).get(url, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, ...options }, (response) => {
          let body = '';
          response.on('data', (piece) => (body += piece));
          response.on('end', () => resolve({ status: response.statusCode, body }));
        });
        request.on('error', reject);
        request.setTimeout(5000, () => request.destroy(new Error('timed out')));
      });
    const address = (daemon: DaemonProcess) => String(daemon.logs.find((entry) => entry.event === 'listening')!.metricsAddress).replace('127.0.0.1', 'localhost');
    // The start line names the scheme the listener serves: a URL to paste into a browser or curl.
    const listening = tlsDaemon.logs.find((entry) => entry.event === 'listening')!;
    expect(String(listening.msg)).toContain(`metrics and status page on https://${listening.metricsAddress}/`);
    const secure = await get(`https://${address(tlsDaemon)}/metrics`, { ca: ca() });
    expect(secure.status).toBe(200);
    expect(secure.body).toContain('tensormem_leases');
    // Plaintext gets no answer (the TLS server reads it as a bad handshake).
    expect(await get(`http://${address(tlsDaemon)}/metrics`).catch((error: Error) => error)).toBeInstanceOf(Error);
    // mTLS: a client certificate is required here too.
    expect(await get(`https://${address(mtlsDaemon)}/metrics`, { ca: ca() }).catch((error: Error) => error)).toBeInstanceOf(Error);
    const withCertificate = await get(`https://${address(mtlsDaemon)}/metrics`, { ca: ca(), cert: readFileSync(file('client.pem')), key: readFileSync(file('client.key')) });
    expect(withCertificate.status).toBe(200);
  });

  it('reads the certificate and key once for all its listeners: given as pipes (bash <(...)), gRPC, the data plane and the status page serve the same certificate', async () => {
    // Each listener read the files again: a pipe gave the first its bytes and the next nothing ("no PEM
    // certificate in it"), and a file replaced between the reads could give the listeners different certificates.
    const pipes = ['bash', '-c', 'exec "$@" --tls-cert <(cat "$TLS_CERT") --tls-key <(cat "$TLS_KEY")', 'bash'];
    const daemon = await startDaemon(['--tenants', file('tenants.yaml'), '--data-listen', '127.0.0.1:0'], { TLS_CERT: file('server.pem'), TLS_KEY: file('server.key') }, pipes);
    try {
      const listening = daemon.logs.find((entry) => entry.event === 'listening')!;
      const served = (address: string) =>
        new Promise<string>((resolve, reject) => {
          const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
          const socket = tlsConnect({ host, port, ca: ca(), servername: 'localhost' }, () => {
            resolve(socket.getPeerX509Certificate()!.fingerprint256);
            socket.destroy();
          });
          socket.on('error', reject);
        });
      const expected = new X509Certificate(readFileSync(file('server.pem'))).fingerprint256;
      const addresses = [daemon.tcpAddress, String(listening.dataAddress).replace(/^https:\/\//, ''), String(listening.metricsAddress)];
      expect(await Promise.all(addresses.map(served))).toEqual([expected, expected, expected]);
      const secure = new TensormemClient(daemon.tcpAddress, { tls: { ca: ca(), serverName: 'localhost' }, deadlineMs: 5000 });
      const lease = await secure.openLease({ tenantToken: TOKEN });
      await lease.close();
      secure.close();
    } finally {
      await daemon.stop();
    }
  });

  it('refuses to start with a --tls-client-ca file that holds no certificate (mTLS would refuse every client)', async () => {
    writeFileSync(file('not-a-ca.pem'), 'tenants: []\n');
    const run = await runTensormemd(['--backend', 'host', '--listen', '127.0.0.1:0', '--data-listen', 'off', '--metrics-listen', 'off', '--tenants', file('tenants.yaml'), '--tls-cert', file('server.pem'), '--tls-key', file('server.key'), '--tls-client-ca', file('not-a-ca.pem')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`Expected a PEM file of CA certificates for --tls-client-ca but received "${file('not-a-ca.pem')} (no PEM certificate in it)"`);
  });

  it('requires a client certificate signed by --tls-client-ca for mTLS', async () => {
    const withoutCert = new TensormemClient(mtlsDaemon.tcpAddress, { tls: { ca: ca(), serverName: 'localhost' }, deadlineMs: 3000 });
    const error = (await withoutCert.openLease({ tenantToken: TOKEN }).catch((e: unknown) => e)) as TensormemClientError;
    expect([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]).toContain(error.code);
    withoutCert.close();
    const withCert = new TensormemClient(mtlsDaemon.tcpAddress, { tls: { ca: ca(), cert: readFileSync(file('client.pem')), key: readFileSync(file('client.key')), serverName: 'localhost' }, deadlineMs: 5000 });
    const lease = await withCert.openLease({ tenantToken: TOKEN });
    await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [100] });
    expect(await lease.close()).toBe(256);
    withCert.close();
  });

  it('keeps the unix socket plaintext (mode 0660) and health reachable without a token', async () => {
    const local = new TensormemClient(tlsDaemon.unixAddress, { deadlineMs: 5000 });
    expect((await local.openLease({ tenantToken: TOKEN })).lease.tenant).toBe('t');
    local.close();
    const mode = execFileSync('stat', ['-c', '%a', tlsDaemon.unixAddress.slice('unix:'.length)]).toString().trim();
    expect(mode).toBe('660');
    const healthProto = loadPackageDefinition(loadSync(join(ROOT, 'node_modules/grpc-health-check/proto/health/v1/health.proto'), { enums: String })) as any;
    const health = new healthProto.grpc.health.v1.Health(tlsDaemon.tcpAddress, credentials.createSsl(ca()), { 'grpc.ssl_target_name_override': 'localhost' });
    const reply = await new Promise<{ status: string }>((resolve, reject) => health.Check({ service: '' }, (e: Error | null, r: { status: string }) => (e ? reject(e) : resolve(r))));
    expect(reply.status).toBe('SERVING');
    health.close();
  });

  it('tensormemctl reaches a TLS daemon with --tls-ca (and an mTLS one with --tls-cert/--tls-key); without it, it says to pass --tls-ca', async () => {
    const ctl = (args: string[]) => {
      const run = spawnSync(process.execPath, [join(ROOT, 'dist', 'src', 'bin', 'tensormemctl.js'), ...args], { encoding: 'utf8', env: { ...process.env, TENSORMEM_TOKEN: '', TENSORMEM_ADDRESS: '' } });
      return { code: run.status, stdout: run.stdout, stderr: run.stderr };
    };
    const tlsAddress = tlsDaemon.tcpAddress.replace('127.0.0.1', 'localhost');
    const info = ctl(['--address', tlsAddress, '--token', TOKEN, '--tls-ca', file('ca.pem'), 'info', '-o', 'json']);
    expect(info.stderr).toBe('');
    expect(info.code).toBe(0);
    expect((JSON.parse(info.stdout) as { backend: string }).backend).toBe('host');
    const named = ctl(['--address', tlsDaemon.tcpAddress, '--token', TOKEN, '--tls-ca', file('ca.pem'), '--tls-server-name', 'localhost', 'leases']);
    expect(named.code).toBe(0);
    const mtls = ['--address', mtlsDaemon.tcpAddress.replace('127.0.0.1', 'localhost'), '--token', TOKEN, '--tls-ca', file('ca.pem'), 'info'];
    expect(ctl([...mtls, '--tls-cert', file('client.pem'), '--tls-key', file('client.key')]).code).toBe(0);
    expect(ctl(mtls).code).toBe(1);
    const plain = ctl(['--address', tlsDaemon.tcpAddress, '--token', TOKEN, 'info']);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toContain('If it serves TLS there (--tls-cert), pass --tls-ca');
    const halfPair = ctl([...mtls, '--tls-cert', file('client.pem')]);
    expect(halfPair.code).toBe(2);
    expect(halfPair.stderr).toContain('--tls-cert and --tls-key go together');
    const unreadable = ctl(['--address', tlsAddress, '--tls-ca', file('no-such-ca.pem'), 'info']);
    expect(unreadable.code).toBe(1);
    expect(unreadable.stderr).toContain(`cannot read --tls-ca ${file('no-such-ca.pem')}`);
    const overUnix = ctl(['--address', tlsDaemon.unixAddress, '--tls-ca', file('ca.pem'), 'info']);
    expect(overUnix.code).toBe(2);
    expect(overUnix.stderr).toContain('tensormemd serves its unix sockets in plaintext');
  }, 30_000);

  it('refuses a certificate or key file that does not parse, or a key of another certificate, naming the flag and the file', async () => {
    // These reached grpc-js as they were: "cannot listen on 127.0.0.1:0: error:0480006C:PEM routines::no
    // start line", which named neither the flag nor the file, and blamed the address.
    writeFileSync(file('garbage.pem'), 'not a pem file\n');
    const start = (cert: string, key: string) =>
      runTensormemd(['--backend', 'host', '--listen', '127.0.0.1:0', '--data-listen', 'off', '--metrics-listen', 'off', '--tenants', file('tenants.yaml'), '--tls-cert', cert, '--tls-key', key]);
    const badCert = await start(file('garbage.pem'), file('server.key'));
    expect(badCert.code).toBe(1);
    expect(badCert.stderr).toContain(`for --tls-cert but received "${file('garbage.pem')} (no PEM certificate in it)"`);
    const keyAsCert = await start(file('server.key'), file('server.pem'));
    expect(keyAsCert.code).toBe(1);
    expect(keyAsCert.stderr).toContain(`for --tls-cert but received "${file('server.key')} (no PEM certificate in it)"`);
    const badKey = await start(file('server.pem'), file('garbage.pem'));
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toContain(`for --tls-key but received "${file('garbage.pem')} (`);
    const otherKey = await start(file('server.pem'), file('client.key'));
    expect(otherKey.code).toBe(1);
    expect(otherKey.stderr).toContain(`the private key of --tls-cert ${file('server.pem')} for --tls-key but received "${file('client.key')} (the key of another certificate)"`);
    // The data plane and the status page read the same files: a daemon whose gRPC is on a unix socket only checks them too.
    const unixOnly = await runTensormemd(['--backend', 'host', '--listen', `unix:${file('unix-only.sock')}`, '--data-listen', '127.0.0.1:0', '--metrics-listen', 'off', '--tenants', file('tenants.yaml'), '--tls-cert', file('garbage.pem'), '--tls-key', file('server.key')]);
    expect(unixOnly.code).toBe(1);
    expect(unixOnly.stderr).toContain(`for --tls-cert but received "${file('garbage.pem')} (no PEM certificate in it)"`);
  }, 30_000);

  it('warns at start when the private key file may be read by other users', async () => {
    await expect.poll(() => tlsDaemon.logs.find((entry) => entry.event === 'tenants_loaded')).toBeDefined();
    expect(tlsDaemon.logs.find((entry) => entry.event === 'tls_key_readable')).toBeUndefined(); // openssl writes keys 0600
    copyFileSync(file('server.key'), file('shared.key'));
    chmodSync(file('shared.key'), 0o644);
    const daemon = await startDaemon(['--tenants', file('tenants.yaml'), '--tls-cert', file('server.pem'), '--tls-key', file('shared.key')]);
    try {
      await expect.poll(() => daemon.logs.find((entry) => entry.event === 'tls_key_readable')).toBeDefined();
      const warning = daemon.logs.find((entry) => entry.event === 'tls_key_readable');
      expect(warning).toMatchObject({ level: 40, file: file('shared.key'), mode: '0644' });
      expect(String(warning!.msg)).toContain(`--tls-key ${file('shared.key')} may be read by any user on this machine (mode 0644)`);
    } finally {
      await daemon.stop();
    }
  });

  it('warns at start when tokens would cross the network in plaintext (tenants, a non-loopback TCP address, no --tls-cert)', async () => {
    // Every tenant token, lease token (gRPC metadata, the data plane's bearer header), admin token
    // (status page) and array byte on such an address can be read and replayed by anyone on the path.
    expect(tlsDaemon.logs.find((entry) => entry.event === 'plaintext_exposed')).toBeUndefined();
    const daemon = await startDaemon(['--tenants', file('tenants.yaml'), '--listen', '0.0.0.0:0', '--data-listen', '0.0.0.0:0']);
    try {
      await expect.poll(() => daemon.logs.find((entry) => entry.event === 'plaintext_exposed')).toBeDefined();
      const warning = daemon.logs.find((entry) => entry.event === 'plaintext_exposed');
      expect(warning).toMatchObject({ level: 40, addresses: ['--listen 0.0.0.0:0', '--data-listen 0.0.0.0:0'] });
      expect(String(warning!.msg)).toContain('without --tls-cert: tenant, lease and admin tokens and array bytes cross the network in plaintext on --listen 0.0.0.0:0, --data-listen 0.0.0.0:0');
    } finally {
      await daemon.stop();
    }
    const loopback = await startDaemon(['--tenants', file('tenants.yaml')]);
    await expect.poll(() => loopback.logs.find((entry) => entry.event === 'tenants_loaded')).toBeDefined();
    expect(loopback.logs.find((entry) => entry.event === 'plaintext_exposed')).toBeUndefined();
    await loopback.stop();
  });

  it('logs the client certificates mTLS refuses (one of another CA), on gRPC, the data plane and the status page', async () => {
    // Node closes a connection whose certificate does not verify without a TLS alert: the client sees
    // "Failed to connect" or an empty reply, and the daemon said nothing of why.
    const daemon = await startDaemon(['--tenants', file('tenants.yaml'), '--tls-cert', file('server.pem'), '--tls-key', file('server.key'), '--tls-client-ca', file('ca.pem'), '--data-listen', '127.0.0.1:0']);
    try {
      // A TCP health check (connect, close) is no refusal to report: it would be a warning every few seconds.
      await new Promise<void>((resolve) => connect(Number(daemon.tcpAddress.split(':').pop()), '127.0.0.1', function (this: Socket) {
        this.destroy();
        resolve();
      }));
      await new Promise((resolve) => setTimeout(resolve, 200));
      const stranger = new TensormemClient(daemon.tcpAddress, { tls: { ca: ca(), cert: readFileSync(file('stranger.pem')), key: readFileSync(file('stranger.key')), serverName: 'localhost' }, deadlineMs: 3000 });
      expect(((await stranger.openLease({ tenantToken: TOKEN }).catch((e: unknown) => e)) as TensormemClientError).code).toBe(status.UNAVAILABLE);
      stranger.close();
      const listening = daemon.logs.find((entry) => entry.event === 'listening')!;
      const port = (address: unknown) => Number(String(address).split(':').pop());
      const strangerHttps = (portNumber: number) =>
        new Promise<void>((resolve) => {
          const request = https.get({ host: '127.0.0.1', port: portNumber, servername: 'localhost', ca: ca(), cert: readFileSync(file('stranger.pem')), key: readFileSync(file('stranger.key')) }, () => resolve());
          request.on('error', () => resolve());
        });
      await strangerHttps(port(listening.dataAddress));
      await strangerHttps(port(listening.metricsAddress));
      const refusals = () => daemon.logs.filter((entry) => entry.event === 'tls_handshake_refused');
      await expect.poll(() => refusals().map((entry) => entry.listener).sort(), { timeout: 5000 }).toEqual(['--data-listen', '--listen', '--metrics-listen']);
      for (const entry of refusals()) {
        expect(entry).toMatchObject({ level: 40, reason: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', remoteAddress: '127.0.0.1' });
        expect(String(entry.msg)).toContain('client certificate refused (UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      }
    } finally {
      await daemon.stop();
    }
  }, 30_000);

  it("tensormemctl to a TLS daemon at an IP address (as tensormemd logs it) writes nothing to stderr, and tells a plaintext daemon or a CA that did not sign its certificate, in one line", async () => {
    const ctl = (args: string[]) => {
      const run = spawnSync(process.execPath, [join(ROOT, 'dist', 'src', 'bin', 'tensormemctl.js'), ...args], { encoding: 'utf8', env: { ...process.env, TENSORMEM_TOKEN: '', TENSORMEM_ADDRESS: '' } });
      return { code: run.status, stdout: run.stdout, stderr: run.stderr };
    };
    // Node warned (DEP0123) on every connection that grpc-js named the server by an IP address.
    const byIp = ctl(['--address', tlsDaemon.tcpAddress, '--token', TOKEN, '--tls-ca', file('ca.pem'), 'info', '-o', 'json']);
    expect(byIp.stderr).toBe('');
    expect(byIp.code).toBe(0);
    // --tls-ca to a daemon that serves plaintext: OpenSSL's "wrong version number", over two lines, with no word of what to do.
    const plaintext = await startDaemon([]);
    try {
      const run = ctl(['--address', plaintext.tcpAddress, '--tls-ca', file('ca.pem'), 'info']);
      expect(run.code).toBe(1);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stderr).toContain(`tensormemd at ${plaintext.tcpAddress} serves plaintext (it was started without --tls-cert): leave out --tls-ca`);
    } finally {
      await plaintext.stop();
    }
    // A CA that did not sign the daemon's certificate (here the server certificate itself), or a file with no certificate in it.
    for (const wrongCa of [file('server.pem'), file('tenants.yaml')]) {
      const run = ctl(['--address', tlsDaemon.tcpAddress, '--tls-ca', wrongCa, 'info']);
      expect(run.code, wrongCa).toBe(1);
      expect(run.stderr.trim().split('\n'), wrongCa).toHaveLength(1);
      expect(run.stderr, wrongCa).toContain(`the certificate of tensormemd at ${tlsDaemon.tcpAddress} is not signed by a CA of --tls-ca ${wrongCa}`);
    }
  }, 30_000);
});
