/**
 * The typed client's interceptor for the statuses grpc-js raises itself, driven with a fake next call (the
 * status a lost connection gives is a race in a real one: EPIPE while writing, ECONNRESET or "Connection
 * dropped" otherwise).
 */
import { InterceptingListener, Metadata, StatusObject, status as Status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { unavailableDetailsInterceptor } from '../../src/client/unavailable-details';
import { STATUS_DETAILS_KEY, encodeStatusDetails } from '../../src/rpc-status';

const ADDRESS = 'unix:/run/tensormem/test.sock';

/** The status the caller sees when the call below the interceptor ends with `status`. */
function seen(status: StatusObject): StatusObject {
  let listener: InterceptingListener | undefined;
  const fake = {
    start(_metadata: Metadata, next: InterceptingListener) {
      listener = next;
    },
  };
  const call = unavailableDetailsInterceptor(ADDRESS)({} as never, () => fake as never);
  let out: StatusObject | undefined;
  call.start(new Metadata(), { onReceiveStatus: (final: StatusObject) => (out = final) });
  listener!.onReceiveStatus(status);
  return out!;
}

const internal = (details: string, metadata = new Metadata()): StatusObject => ({ code: Status.INTERNAL, details, metadata });

describe('grpc-js INTERNAL for a connection lost under a stream', () => {
  it.each(['write EPIPE', 'read ECONNABORTED', 'write ECONNRESET'])('"%s" while writing is UNAVAILABLE naming the daemon and the socket error', (cause) => {
    const status = seen(internal(`Received RST_STREAM with code 2 triggered by internal client error: ${cause}`));
    expect({ code: Status[status.code], details: status.details }).toEqual({ code: 'UNAVAILABLE', details: `Connection to tensormemd at ${ADDRESS} lost: ${cause}` });
  });

  it('stays INTERNAL for a client error that is not a lost connection', () => {
    const details = 'Received RST_STREAM with code 2 triggered by internal client error: Protocol error';
    expect(seen(internal(details))).toMatchObject({ code: Status.INTERNAL, details });
  });

  it('stays INTERNAL for a RST_STREAM the daemon sent', () => {
    const details = 'Received RST_STREAM with code 2 (Internal server error)';
    expect(seen(internal(details))).toMatchObject({ code: Status.INTERNAL, details });
  });

  it('makes a stream ended without a status UNAVAILABLE: tensormemd ends every call with one, so its connection was cut (a ReadArray under a drain: GOAWAY, then a reset)', () => {
    const details = 'Received RST_STREAM with code 0 (Call ended without gRPC status)';
    const status = seen(internal(details));
    expect({ code: Status[status.code], details: status.details }).toEqual({ code: 'UNAVAILABLE', details: `Connection to tensormemd at ${ADDRESS} lost: the stream ended without a status (${details})` });
  });

  it("never hides the daemon's own INTERNAL (with ErrorInfo), whatever its message says", () => {
    const details = 'Received RST_STREAM with code 2 triggered by internal client error: write EPIPE';
    const metadata = new Metadata();
    metadata.set(STATUS_DETAILS_KEY, encodeStatusDetails(Status.INTERNAL, details, { reason: 'INTERNAL', domain: 'tensormem.dev', metadata: {} }));
    expect(seen(internal(details, metadata))).toMatchObject({ code: Status.INTERNAL, details });
  });
});

describe('grpc-js UNAVAILABLE for a server that answers in HTTP/1.1', () => {
  // The data plane's or the status page's port given for the gRPC one: grpc-js says only "Protocol error".
  it('says the server answered in another protocol and which address to give, in place of the bare "(tensormemd at ...)"', () => {
    const details = 'No connection established. Last error: Protocol error (2026-12-07T17:57:11.360Z)';
    const status = seen({ code: Status.UNAVAILABLE, details, metadata: new Metadata() });
    expect(status.details).toBe(
      `${details} (the server at ${ADDRESS} answered, but not in gRPC's HTTP/2: give tensormemd's --listen address (127.0.0.1:7070 by default), not its --data-listen or --metrics-listen one (HTTP/1.1))`,
    );
  });
});
