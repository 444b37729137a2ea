/**
 * The TLS options of the daemon's HTTP listeners (the data plane, --metrics-listen) from --tls-cert,
 * --tls-key and --tls-client-ca: the certificate and key, and with a client CA, client certificates
 * asked for and required (mTLS), as the gRPC listeners do.
 */
import { readFileSync } from 'node:fs';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import type { DaemonConfig } from './config';

export function tlsServerOptions(tls: NonNullable<DaemonConfig['tls']>): SecureContextOptions & Pick<TlsOptions, 'requestCert' | 'rejectUnauthorized'> {
  return {
    cert: readFileSync(tls.certFile),
    key: readFileSync(tls.keyFile),
    ca: tls.clientCaFile ? readFileSync(tls.clientCaFile) : undefined,
    requestCert: tls.clientCaFile !== undefined,
    rejectUnauthorized: tls.clientCaFile !== undefined,
  };
}
