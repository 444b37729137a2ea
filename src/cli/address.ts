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

/** --tls-ca, --tls-cert, --tls-key, --tls-server-name as given. */
export interface TlsFlags {
  ca?: string;
  cert?: string;
  key?: string;
  serverName?: string;
}

/**
 * The client's TLS options from the flags, undefined without --tls-ca (plaintext). A flag combination
 * that cannot work is a UsageError; a file that cannot be read an Error naming its flag (exit 1).
 */
export function tlsOptions(flags: TlsFlags, address: string, readFile: (path: string) => Buffer): { ca: Buffer; cert?: Buffer; key?: Buffer; serverName?: string } | undefined {
  if (flags.ca === undefined) {
    const without = (['cert', 'key', 'serverName'] as const).find((name) => flags[name] !== undefined);
    if (without) throw new UsageError(`--tls-${without === 'serverName' ? 'server-name' : without} needs --tls-ca (the CA that signed the daemon's certificate)`);
    return undefined;
  }
  if ((flags.cert === undefined) !== (flags.key === undefined)) throw new UsageError('--tls-cert and --tls-key go together (the client certificate for mTLS and its key)');
  if (unixSocketPath(address) !== undefined) throw new UsageError(`--tls-ca is for a TCP --address: tensormemd serves its unix sockets in plaintext, and ${address} is one`);
  const read = (flag: string, path: string) => {
    try {
      return readFile(path);
    } catch (error) {
      throw new Error(`cannot read ${flag} ${path}: ${(error as Error).message}`);
    }
  };
  return {
    ca: read('--tls-ca', flags.ca),
    cert: flags.cert === undefined ? undefined : read('--tls-cert', flags.cert),
    key: flags.key === undefined ? undefined : read('--tls-key', flags.key),
    serverName: flags.serverName,
  };
}

/** tensormemctl's address when neither --address nor TENSORMEM_ADDRESS gives one. */
export const DEFAULT_DAEMON_ADDRESS = 'unix:/tmp/tensormemd.sock';

/**
 * A word as a POSIX shell reads it back: as it is when it holds no special character, else single-quoted
 * (brackets included: `[::1]:7070` is a glob that a file named `1:7070` in the folder would replace).
 */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The flags that reach the same daemon the same way, for a command printed for the user to run next
 * (put's `tensormemctl get …`): --address unless it is the default, and the --tls-* flags given, so that
 * the command works from a shell without TENSORMEM_ADDRESS too, where it went to the default socket.
 */
export function connectionFlags(address: string, tls: TlsFlags): string[] {
  const flags: [string, string | undefined][] = [
    ['--address', address === DEFAULT_DAEMON_ADDRESS ? undefined : address],
    ['--tls-ca', tls.ca],
    ['--tls-cert', tls.cert],
    ['--tls-key', tls.key],
    ['--tls-server-name', tls.serverName],
  ];
  return flags.flatMap(([flag, value]) => (value === undefined ? [] : [flag, shellWord(value)]));
}
