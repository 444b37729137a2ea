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
