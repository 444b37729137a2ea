/**
 * The daemon's TLS files (--tls-cert, --tls-key, --tls-client-ca), read and checked once for every
 * listener that serves TLS (tlsFilesOf): the gRPC TCP addresses (server.ts), the data plane and
 * --metrics-listen (tlsServerOptions). A file that does not hold what its flag needs is refused naming the flag and the
 * file: given as they were to grpc-js or node, a key that did not parse, or one of another certificate,
 * stopped the daemon with "cannot listen on ADDRESS: error:05800074:x509 certificate routines::key
 * values mismatch", which named neither and blamed the address.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import type { Logger } from 'pino';
import { invalidArgument } from '../errors';
import type { DaemonConfig } from './config';
import { SummarizedLog } from '../summarized-log';

type TlsConfig = NonNullable<DaemonConfig['tls']>;

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
  /** The --tls-client-ca bundle; undefined without it. */
  ca?: Buffer;
}

/** The three files as read, each checked: certificates that parse, a key that parses and is the certificate's. */
function readTlsFiles(tls: TlsConfig): TlsFiles {
  const cert = checkCertificates('--tls-cert', 'a PEM certificate chain', tls.certFile, readPem('--tls-cert', tls.certFile));
  const key = readPem('--tls-key', tls.keyFile);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw invalidArgument('--tls-key', 'a PEM private key (unencrypted)', `${tls.keyFile} (${(error as Error).message})`);
  }
  if (!new X509Certificate(cert).checkPrivateKey(privateKey)) {
    throw invalidArgument('--tls-key', `the private key of --tls-cert ${tls.certFile}`, `${tls.keyFile} (the key of another certificate)`);
  }
  const ca = tls.clientCaFile === undefined ? undefined : checkCertificates('--tls-client-ca', 'a PEM file of CA certificates', tls.clientCaFile, readPem('--tls-client-ca', tls.clientCaFile));
  return { cert, key, ca };
}

function readPem(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw invalidArgument(flag, 'a readable PEM file', `${path} (${(error as Error).message})`);
  }
}

/**
 * `pem` as read, once it is known to hold certificates that parse: one holding none (an empty file, a
 * key, YAML) as --tls-client-ca would start the daemon with mTLS that refuses every client, and say nothing.
 */
function checkCertificates(flag: string, expected: string, path: string, pem: Buffer): Buffer {
  const certificates = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const problem = certificates.length === 0 ? 'no PEM certificate in it' : certificates.map((text) => parseError(text)).find((error) => error !== undefined);
  if (problem !== undefined) throw invalidArgument(flag, expected, `${path} (${problem})`);
  return pem;
}

function parseError(pemCertificate: string): string | undefined {
  try {
    new X509Certificate(pemCertificate);
    return undefined;
  } catch (error) {
    return `a certificate that does not parse: ${(error as Error).message}`;
  }
}

/**
 * The TLS files of `context`'s configuration (undefined without TLS), read on the first call and shared
 * by the listeners that ask after it. Each listener read them again: given as pipes (`--tls-cert
 * <(vault read …)`) the first got the bytes and the next none, so the daemon did not start, and a file
 * replaced between the reads could give the listeners different certificates.
 */
export function tlsFilesOf(context: { config: { tls?: TlsConfig }; tlsFiles?: TlsFiles }): TlsFiles | undefined {
  if (!context.config.tls) return undefined;
  context.tlsFiles ??= readTlsFiles(context.config.tls);
  return context.tlsFiles;
}

/** The TLS options of the HTTP listeners: with a client CA, client certificates asked for and required (mTLS), as the gRPC listeners do. */
export function tlsServerOptions(files: TlsFiles): SecureContextOptions & Pick<TlsOptions, 'requestCert' | 'rejectUnauthorized'> {
  return { ...files, requestCert: files.ca !== undefined, rejectUnauthorized: files.ca !== undefined };
}

/**
 * Said once at start: a --tls-key file that any user on the machine may read (mode o+r) gives any of
 * them the daemon's identity. Not refused: a Kubernetes secret volume is 0644 unless its defaultMode says
 * otherwise.
 */
export function warnWhenKeyReadable(tls: TlsConfig | undefined, log: Logger): void {
  if (!tls) return;
  const mode = statSync(tls.keyFile).mode & 0o777;
  if ((mode & 0o004) === 0) return;
  const octal = `0${mode.toString(8).padStart(3, '0')}`;
  log.warn(
    { event: 'tls_key_readable', file: tls.keyFile, mode: octal },
    `--tls-key ${tls.keyFile} may be read by any user on this machine (mode ${octal}), who could then serve as this daemon: chmod 0600 it, or 0640 with the daemon's group (a Kubernetes secret: defaultMode 0440)`,
  );
}

/**
 * Logs the TLS handshakes a TCP listener of the daemon refuses, with why (tls.Server's 'tlsClientError').
 * Node closes a connection whose client certificate does not verify (another CA, expired) with no TLS
 * alert, so the client sees only "Failed to connect" or an empty reply; this line is where an operator
 * finds the reason (CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE, no certificate, a plaintext
 * client: ERR_SSL_*). A flood (a scanner) makes one line per 10 s, with the count it stands for.
 */
export function logTlsRefusals(server: { on(event: 'connection', listener: (socket: Socket) => void): unknown; on(event: 'tlsClientError', listener: (error: Error & { code?: string }, socket: Socket) => void): unknown }, listener: string, log: Logger): void {
  // The peer's address is gone from a socket destroyed by the time of the error: kept from the connect.
  const remoteAddresses = new WeakMap<Socket, string | undefined>();
  server.on('connection', (raw) => remoteAddresses.set(raw, raw.remoteAddress));
  const refusals = new SummarizedLog<{ reason: string; remoteAddress: string | undefined; what: string }>((refused, { reason, remoteAddress, what }) =>
    log.warn(
      { event: 'tls_handshake_refused', listener, reason, remoteAddress, refused },
      `${listener}: ${what} (${reason})${remoteAddress ? ` from ${remoteAddress}` : ''}${refused > 1 ? `; ${refused} refused since the last such line (this one the last of them)` : ''}`,
    ),
  );
  server.on('tlsClientError', (error, socket) => {
    socket.destroy();
    const authorizationError = (socket as Socket & { authorizationError?: string }).authorizationError;
    // A peer that went away before its handshake (a TCP health check, ECONNRESET) or sent nothing in
    // time (ERR_TLS_HANDSHAKE_TIMEOUT) is no refusal to report: a load balancer's probe every few
    // seconds would make a warning each time. TLS errors (ERR_SSL_*) and refused certificates are.
    if (!authorizationError && !error.code?.startsWith('ERR_SSL_')) return;
    const parent = (socket as Socket & { _parent?: Socket })._parent;
    refusals.note({
      reason: authorizationError ?? error.code!,
      remoteAddress: remoteAddresses.get(parent ?? socket) ?? socket.remoteAddress,
      what: authorizationError ? 'client certificate refused' : 'TLS handshake failed',
    });
  });
}
