/**
 * The details of an UNAVAILABLE that grpc-js raised itself (no ErrorInfo: the daemon did not send it),
 * made to say what the client knows:
 * - the daemon's address (a call in flight when the daemon died failed with only "Connection dropped"
 *   or "read ECONNRESET", so a trainer holding clients of several daemons could not tell which one was gone);
 * - the cause of the failed connection attempt: a second client of the process to the same address
 *   shares the first one's attempt (grpc-js's subchannel pool) and got "Last error: null";
 * - that this daemon said it was shutting down (reason SHUTTING_DOWN on any call of this client: a
 *   KeepAlive, a WatchMemory, a waiting allocation), and how long ago: after a SIGTERM the daemon takes
 *   no new connections, so the calls that follow fail to connect.
 *
 * And one INTERNAL that grpc-js raised itself becomes UNAVAILABLE: a stream whose socket failed while the
 * client wrote to it (the daemon's drain closed the connection under a WriteArray upload) ended as
 * "INTERNAL: Received RST_STREAM with code 2 triggered by internal client error: write EPIPE" (grpc-js
 * maps only ECONNRESET and ETIMEDOUT to UNAVAILABLE), which a trainer's retry logic reads as a bug in the
 * daemon. Only that wording with a connection error code, and only without ErrorInfo: an INTERNAL the
 * daemon sent stays INTERNAL. The same for grpc-js's "Received RST_STREAM with code 0 (Call ended without
 * gRPC status)": tensormemd ends every call with a status, so a stream that ended without one was cut with
 * its connection (a drain's GOAWAY, then a reset of a connection with bytes unread: Node ignores the
 * ECONNRESET after a GOAWAY and closes the open streams with code 0; a ReadArray under a drain saw it).
 */
import { InterceptingCall, Interceptor, status as Status } from '@grpc/grpc-js';
import { errorInfoOf } from '../rpc-status';

/** The last "Last error" grpc-js named for each address, in this process (a few addresses: no bound needed). */
const lastConnectCauses = new Map<string, string>();

const LAST_ERROR = /Last error: (.*)$/;
/** grpc-js's INTERNAL for a stream whose socket failed under it (subchannel-call.js), with a lost connection's error code. */
const LOST_CONNECTION = /^Received RST_STREAM with code \d+ triggered by internal client error: (.*\b(?:EPIPE|ECONNRESET|ECONNABORTED|ETIMEDOUT|ENOTCONN|ESHUTDOWN)\b.*)$/;
/** grpc-js's INTERNAL for a stream closed with code 0 before any status: its connection was cut under it. */
const NO_STATUS = /^Received RST_STREAM with code 0 \(Call ended without gRPC status\)$/;
/**
 * grpc-js's "Last error" for a peer that answered bytes that are no HTTP/2: an HTTP/1.1 server, most
 * often tensormemd's own data plane or status page port given for its gRPC one.
 */
const NOT_HTTP2 = /Last error: Protocol error/;

export function unavailableDetailsInterceptor(address: string): Interceptor {
  const shown = address.replace(/^unix:(\/\/)?/, '');
  // When a call of this client last got SHUTTING_DOWN (Date.now()); cleared by any other answer of the daemon.
  let shutdownSaidAt: number | undefined;
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        next(metadata, {
          onReceiveStatus(status, nextStatus) {
            if (status.code === Status.OK) {
              shutdownSaidAt = undefined;
              return nextStatus(status);
            }
            const info = errorInfoOf(status.metadata);
            if (info !== undefined) {
              shutdownSaidAt = info.reason === 'SHUTTING_DOWN' ? Date.now() : undefined;
              return nextStatus(status);
            }
            let details = status.details;
            const lost = status.code !== Status.INTERNAL ? undefined : NO_STATUS.test(details) ? `the stream ended without a status (${details})` : LOST_CONNECTION.exec(details)?.[1];
            if (lost !== undefined) {
              status = { ...status, code: Status.UNAVAILABLE };
              details = `Connection to tensormemd at ${address} lost: ${lost}`;
            }
            if (status.code !== Status.UNAVAILABLE) return nextStatus(status);
            // grpc-js ends a connect error with an empty "Resolution note: " for an IP address or a unix socket.
            details = details.replace(/\.? Resolution note:\s*$/, '');
            const cause = LAST_ERROR.exec(details)?.[1];
            if (cause === 'null') {
              const shared = lastConnectCauses.get(address);
              details = shared !== undefined ? details.replace(LAST_ERROR, `Last error: ${shared}`) : details.replace(/\. Last error: null$/, '');
            } else if (cause !== undefined) {
              lastConnectCauses.set(address, cause);
            }
            if (NOT_HTTP2.test(details)) {
              details = `${details} (the server at ${address} answered, but not in gRPC's HTTP/2: give tensormemd's --listen address (127.0.0.1:7070 by default), not its --data-listen or --metrics-listen one (HTTP/1.1))`;
            }
            if (!details.includes(shown)) details = `${details} (tensormemd at ${address})`;
            if (shutdownSaidAt !== undefined) {
              const secondsAgo = ((Date.now() - shutdownSaidAt) / 1000).toFixed(1).replace(/\.0$/, '');
              details = `${details}; tensormemd at ${address} said it was shutting down (SHUTTING_DOWN) ${secondsAgo} s ago: it has stopped, or takes no new connections while it drains`;
            }
            nextStatus({ ...status, details });
          },
        });
      },
    });
}
