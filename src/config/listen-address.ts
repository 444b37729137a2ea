/**
 * Listener addresses as the flags take them: HOST:PORT (an IPv6 host in brackets) or unix:PATH, and
 * which of them open mode allows. Each flag names its own expectation in its error; this file only
 * says what an address is.
 */

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[^:/\s[\]]+):(\d{1,5})$/;

/** HOST:PORT → the host (brackets removed) and the port; undefined when it is not one or the port passes 65535. */
export function parseHostPort(address: string): { host: string; port: number } | undefined {
  const match = HOST_PORT.exec(address);
  if (!match || Number(match[2]) > 65535) return undefined;
  return { host: match[1].replace(/^\[(.*)\]$/, '$1'), port: Number(match[2]) };
}

/** unix:PATH (or unix://PATH) → PATH, '' when the path is missing; undefined for any other address. */
export function unixSocketPath(address: string): string | undefined {
  return address.startsWith('unix:') ? address.slice('unix:'.length).replace(/^\/\//, '') : undefined;
}

/** Open mode serves only loopback TCP and unix sockets. Takes HOST:PORT, a bare host, or unix:PATH. */
export function isLocalAddress(address: string): boolean {
  if (address.startsWith('unix:')) return true;
  const host = address.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** An address another process binds: EADDRINUSE for TCP, a socket that accepts for unix:PATH (removeStaleSocket). */
const IN_USE = /\bEADDRINUSE\b|^another process is serving there$/;

/**
 * A listener that could not bind, naming its flag. An address in use is most often a second tensormemd
 * started beside the first (`npm start` in two terminals, a test run beside a daemon): the message says
 * so and what to do, where grpc-js's own words ("No address added out of total 1 resolved") said neither.
 */
export function listenFailure(flag: string, address: string, cause: string): Error {
  const fix = IN_USE.test(cause) ? ` (a tensormemd already running?): stop that process, or give ${flag} another address${parseHostPort(address) ? ' (port 0 picks a free one)' : ''}` : '';
  return new Error(`cannot listen on ${address} (${flag}): ${cause}${fix}`);
}
