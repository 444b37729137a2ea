/**
 * A mistake in tensormemctl's command line itself (an unknown command or flag, a flag value that is not
 * one of its forms, a missing or extra argument): tensormemctl exits 2 for these, like tensormemd for a
 * bad flag, and 1 for everything else (the daemon refused, a file could not be read or written, doctor
 * found an error).
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Runs `parse` and turns what it throws into a UsageError with the same message. */
export function asUsage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw error instanceof UsageError ? error : new UsageError((error as Error).message);
  }
}
