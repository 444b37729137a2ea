/**
 * The JSON body of a data plane error answer, shared by the server (./http-errors) and the client
 * (./data-plane-client). In a file of its own, importing nothing, so that the typed client's
 * declarations do not pull in the server's imports (pino's types need esModuleInterop, which a user's
 * project need not set).
 */
export interface HttpErrorBody {
  /** The HTTP status. */
  code: number;
  /** The gRPC status name (e.g. "NOT_FOUND"), as a gRPC client would see it. */
  status: string;
  /** google.rpc.ErrorInfo reason (e.g. "ARRAY_NOT_FOUND"). */
  reason: string;
  message: string;
  metadata: Record<string, string>;
}
