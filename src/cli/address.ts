/**
 * `tensormemctl --address`: the daemon's gRPC address in the forms tensormemd's --listen takes
 * (HOST:PORT, an IPv6 host in brackets, or unix:PATH), checked before anything connects: grpc-js
 * would take a bare host as HOST:443 and an empty address as an error about a "target name".
 */
import { parseHostPort, unixSocketPath } from '../config/listen-address';
import { UsageError } from './usage-error';

/** grpc-js target forms (dns:, ipv4:, ipv6:, unix-abstract:), passed on as they are. */
const GRPC_TARGET = /^(dns|ipv4|ipv6|unix-abstract):/;

/** `address` itself when it is one; else a UsageError (exit 2) naming `field` and the forms. */
export function checkDaemonAddress(address: string, field: string): string {
  const socketPath = unixSocketPath(address);
  if (socketPath !== undefined) {
    if (socketPath === '') throw new UsageError(`Expected unix:PATH with a path for ${field} but received "${address}"`);
    return address;
  }
  if (GRPC_TARGET.test(address)) return address;
  const hostPort = parseHostPort(address);
  if (!hostPort || hostPort.port === 0) {
    throw new UsageError(`Expected HOST:PORT (port 1 to 65535; an IPv6 host in brackets) or unix:PATH, as tensormemd's --listen prints it, for ${field} but received "${address}"`);
  }
  return address;
}
