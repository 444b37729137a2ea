/** TensormemClientError's message: the code, the ErrorInfo reason where it says more, the details. */
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { TensormemClientError } from '../../src/client/tensormem-client';

describe('TensormemClientError', () => {
  it('names the reason beside the code only where it differs from it', () => {
    expect(new TensormemClientError(status.RESOURCE_EXHAUSTED, 'QUOTA_EXCEEDED', 'over the quota', {}).message).toBe('RESOURCE_EXHAUSTED (QUOTA_EXCEEDED): over the quota');
    // The daemon's reason for a plain refusal is the code's own name: "FAILED_PRECONDITION (FAILED_PRECONDITION): …" said it twice.
    expect(new TensormemClientError(status.FAILED_PRECONDITION, 'FAILED_PRECONDITION', 'export the host side', {}).message).toBe('FAILED_PRECONDITION: export the host side');
    expect(new TensormemClientError(status.UNAVAILABLE, undefined, 'Connection dropped', {}).message).toBe('UNAVAILABLE: Connection dropped');
    // The fields keep what the daemon sent.
    expect(new TensormemClientError(status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', 'x', { field: 'shape' })).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'INVALID_ARGUMENT', details: 'x', errorMetadata: { field: 'shape' } });
  });
});
