import { nameLike } from '../name-like';

/**
 * A mistake in tensormemctl's command line itself (an unknown command or flag, a flag value that is not
 * one of its forms, a missing or extra argument): tensormemctl exits 2 for these, like tensormemd for a
 * bad flag, and 1 for everything else (the daemon refused, a file could not be read or written, doctor
 * found an error).
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * Runs `parse` and turns what it throws into a UsageError with the same message, except node:util
 * parseArgs' refusal of an unknown flag: its hint ("To specify a positional argument starting with a '-',
 * place it at the end of the command after '--'") answered a typo (`--adress`) with advice about
 * arguments, and tensormemctl's `--` is doctor's. That refusal names the flag of `flagNames` the unknown
 * one looks like instead, as tensormemd does for its own flags.
 */
export function asUsage<T>(parse: () => T, flagNames: readonly string[] = []): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof UsageError) throw error;
    // "Option '-o, --output <value>' argument missing": said as tensormemd says it, naming the forms.
    const missing = /^Option '(?:-\w, )?(--[\w-]+) <value>' argument missing/.exec((error as Error).message);
    if (missing) throw new UsageError(`Expected a value for ${missing[1]} but received nothing (${missing[1]} VALUE, or ${missing[1]}=VALUE)`);
    const unknown = (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /^Unknown option '([^']+)'/.exec((error as Error).message) : null;
    if (!unknown) throw new UsageError((error as Error).message);
    const like = unknown[1].startsWith('--') ? nameLike(unknown[1].slice(2), flagNames) : undefined;
    throw new UsageError(`Unknown option '${unknown[1]}'${like === undefined ? '' : ` (did you mean --${like}?)`}`);
  }
}
