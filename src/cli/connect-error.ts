/**
 * What tensormemctl says when it could not talk to the daemon at all: grpc-js's own words for a failed
 * connection ("No connection established ... connect ECONNREFUSED", OpenSSL's "wrong version number",
 * "Deadline exceeded after 10.001s,name resolution: ...,Waiting for LB pick") name no address and say
 * nothing of what to do, so each gets what the operator can check: the daemon running at that address,
 * TLS on both sides or on neither, the CA of --tls-ca.
 */
import { status } from '@grpc/grpc-js';
import { TensormemClientError } from '../client/tensormem-client';
import { waitText } from './wait-text';

export interface ConnectFacts {
  /** The --address the client was made for. */
  address: string;
  /** The --tls-ca file, when given (the client spoke TLS). */
  tlsCa?: string;
  /** Each call's deadline (--timeout, or the command's default). */
  deadlineMs: number;
  /** Whether the client's channel has a connection set up (HTTP/2 settings exchanged) at the time of the error. */
  connected: boolean;
}

/** OpenSSL's record-layer words for bytes that are not TLS: the peer speaks plaintext. */
const NOT_TLS = /wrong version number|packet length too long|http request/i;

/**
 * grpc-js's words for a peer that answered bytes that are no HTTP/2 (its "Last error"): an HTTP/1.1 server,
 * such as tensormemd's own data plane or metrics port given for its gRPC one, or another protocol. The
 * client's own details say so already (unavailable-details.ts).
 */
const NOT_HTTP2 = /Last error: Protocol error/;

/** Node's and OpenSSL's words for a certificate that the CA of --tls-ca did not sign. */
const UNTRUSTED_CERTIFICATE = /unable to verify the first certificate|unable to get (local )?issuer certificate|self[- ]signed certificate|certificate signature failure/i;

/**
 * `error` told as a failure to reach the daemon, or undefined when it is something else (the daemon
 * answered, with a refusal of its own). One line: OpenSSL's error text ends in a newline.
 */
export function connectErrorMessage(error: unknown, facts: ConnectFacts): string | undefined {
  if (!(error instanceof TensormemClientError) || error.reason !== undefined) return undefined;
  const message = error.message.replace(/\.? Resolution note:\s*$/, '').replace(/\s*\n\s*/g, ' ');
  const { address, tlsCa } = facts;
  if (error.code === status.DEADLINE_EXCEEDED && !facts.connected) {
    // grpc-js: "Deadline exceeded after 10.001s,name resolution: 0.008s,...,Waiting for LB pick".
    return `DEADLINE_EXCEEDED: no connection to ${address} was set up within ${waitText(facts.deadlineMs)}: nothing there answered as tensormemd (one that is stopped or hung, a server that is not tensormemd, or a firewall that drops the packets). Check --address; for a slow link, raise --timeout`;
  }
  if (error.code !== status.UNAVAILABLE) return undefined;
  if (address.startsWith('unix:')) {
    // A unix socket that is not there, or that no daemon listens on (left by one that was killed): the
    // default address, so this is what `tensormemctl info` says before `npm start`. A draining daemon
    // removes its socket first (so that nothing new reaches it), and is still running.
    return `${message} (is tensormemd running with --listen ${address}? Start it, or pass --address or set TENSORMEM_ADDRESS to the address its "listening" log line names; a daemon that is stopping removes its socket first)`;
  }
  if (tlsCa === undefined && NOT_HTTP2.test(message)) return message;
  // A plaintext client gets only "No connection established ... Failed to connect" from a TLS daemon.
  if (tlsCa === undefined) return `${message} (is tensormemd running at ${address}? If it serves TLS there (--tls-cert), pass --tls-ca)`;
  if (NOT_TLS.test(message)) return `${message} (tensormemd at ${address} serves plaintext (it was started without --tls-cert): leave out --tls-ca)`;
  if (UNTRUSTED_CERTIFICATE.test(message)) {
    return `${message} (the certificate of tensormemd at ${address} is not signed by a CA of --tls-ca ${tlsCa}: pass the PEM file of the CA that signed its --tls-cert)`;
  }
  return message;
}
