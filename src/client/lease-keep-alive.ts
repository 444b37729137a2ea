/**
 * A lease's keep-alive (LeaseSession.startKeepAlive): renewals over a KeepAlive stream every intervalMs,
 * the stream reopened after a backoff when it drops, a stall reported, RenewLease while the tenant's
 * stream cap refuses a stream, and a clean stop that disarms release_on_disconnect first.
 */
import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import { status as Status } from '@grpc/grpc-js';
import type { KeepAliveRequest } from '../generated/tensormem/v1/KeepAliveRequest';
import type { KeepAliveResponse__Output } from '../generated/tensormem/v1/KeepAliveResponse';
import { clientError, TensormemClientError } from './client-errors';
import type { KeepAliveOptions } from './client-options';
import type { LeaseSession } from './lease-session';
import { timestampMs } from './timestamp';

/**
 * Starts renewing `session`'s lease every `intervalMs` (checked by the caller) as
 * LeaseSession.startKeepAlive describes; returns what stops it. `onStopped(stop)` runs once it has
 * stopped, whoever stopped it (the caller, the client's close(), a lease the daemon no longer knows).
 */
export function keepLeaseAlive(session: LeaseSession, intervalMs: number, options: KeepAliveOptions, onStopped: (stop: () => void) => void): () => void {
  let stream: ClientDuplexStream<KeepAliveRequest, KeepAliveResponse__Output> | undefined;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let backoffMs = 100;
  /** Renewals sent on the current stream since its last answer, and when the oldest of them went. */
  let unanswered = 0;
  let unansweredSince = 0;
  /** Messages written on the current stream, and answers read from it (one per message, in order). */
  let sent = 0;
  let answered = 0;
  let stallReported = false;
  const request = { lease_id: session.leaseId, release_on_disconnect: options.releaseOnDisconnect ?? false };
  const ping = () => {
    const current = stream;
    if (!current || current.destroyed || !current.writable) return;
    if (unanswered === 0) unansweredSince = Date.now();
    // Two renewals unanswered, not one: after the event loop was blocked, this timer runs before the
    // answer that arrived meanwhile is read (poll phase), however long the block was.
    else if (!stallReported && unanswered >= 2 && Date.now() - unansweredSince >= 1.5 * intervalMs) {
      stallReported = true;
      options.onError?.(new TensormemClientError(Status.DEADLINE_EXCEEDED, undefined, `the KeepAlive stream has not answered for ${Date.now() - unansweredSince} ms (${unanswered} renewals): lease ${session.leaseId} is not being renewed`, {}));
      // onError may have stopped this keep-alive (stopKeepAlive, lease.close(), client.close()) or
      // started another: then there is nothing to renew here.
      if (stopped || stream !== current) return;
    }
    unanswered++;
    sent++;
    current.write(request);
  };
  const dropped = (error: TensormemClientError, current: typeof stream) => {
    if (stopped || current !== stream) return;
    stream = undefined;
    options.onError?.(error);
    if (stopped) return; // onError stopped it
    if (endsKeepAlive(error)) {
      stop();
      return;
    }
    // The tenant's streams fill --max-tenant-streams: a stream may not open for a while, and the
    // lease would expire meanwhile. RenewLease is unary, which the cap does not count.
    if (error.reason === 'TOO_MANY_STREAMS') renewInstead();
    retryTimer = setTimeout(open, backoffMs);
    retryTimer.unref();
    backoffMs = Math.min(backoffMs * 2, Math.max(intervalMs, 100));
  };
  const renewInstead = () => {
    session.renew().catch((error: TensormemClientError) => {
      if (stopped) return;
      // The lease is gone: the stream, once it opens, would be told so too.
      if (endsKeepAlive(error)) {
        options.onError?.(error);
        stop();
      }
    });
  };
  const open = () => {
    retryTimer = undefined;
    if (stopped || session.client.closed) return;
    const current = session.client.leases.KeepAlive(session.client.metadata(session.token));
    stream = current;
    unanswered = 0;
    sent = 0;
    answered = 0;
    stallReported = false;
    current.on('data', (message: KeepAliveResponse__Output) => {
      backoffMs = 100;
      if (current !== stream) return;
      session.renewed(message.ttl_seconds, message.expires_at);
      answered++;
      unanswered = 0;
      stallReported = false;
    });
    current.on('error', (error: ServiceError) => dropped(clientError(error), current));
    current.on('end', () => dropped(new TensormemClientError(Status.UNAVAILABLE, undefined, 'the KeepAlive stream ended', {}), current));
    ping();
  };
  const timer = setInterval(ping, intervalMs);
  timer.unref();
  const unregister = session.client.onClose(() => stop());
  const stop = () => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    if (retryTimer) clearTimeout(retryTimer);
    unregister();
    const current = stream;
    stream = undefined;
    if (current) {
      // Disarm release_on_disconnect first: a process that exits right after stopping must keep its lease.
      // no_renew: this message may reach the daemon after a renew() sent just after the stop, and must
      // not extend the lease past the expires_at that renew() answered.
      current.write({ lease_id: session.leaseId, release_on_disconnect: false, no_renew: true });
      current.end();
      // A renewal written before it may still be on its way and land after a renew() sent now: renew()
      // waits until this message is answered (every one before it then was), or the stream has ended.
      // Its answer holds the expiry those renewals left, which `lease` takes unless it knows a later one.
      let left = sent + 1 - answered;
      session.keepAliveStopping(
        new Promise<void>((resolve) => {
          current.on('data', (message: KeepAliveResponse__Output) => {
            if (--left > 0) return;
            if (timestampMs(message.expires_at) > timestampMs(session.lease.expires_at)) session.renewed(message.ttl_seconds, message.expires_at);
            resolve();
          });
          current.once('close', resolve);
        }),
      );
      // The daemon answers the half-close with its status; cancel should it not (the channel closing).
      const cancelTimer = setTimeout(() => current.cancel(), 1000);
      cancelTimer.unref();
      current.once('close', () => clearTimeout(cancelTimer));
      current.on('error', () => {});
    }
    onStopped(stop);
  };
  open();
  return stop;
}

/** A keep-alive's error that no retry can mend: the lease is gone (or the token refused), or the daemon drains. */
function endsKeepAlive(error: TensormemClientError): boolean {
  return error.code === Status.NOT_FOUND || error.code === Status.UNAUTHENTICATED || error.code === Status.PERMISSION_DENIED || error.reason === 'SHUTTING_DOWN';
}
