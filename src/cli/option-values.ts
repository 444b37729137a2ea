/**
 * Option values that start with a dash, for node:util parseArgs: it refuses `--token -Zm8…` as
 * ambiguous, and lease tokens are base64url, so one in 32 starts with "-" (one in 4096 with "--").
 */

/** The part of a parseArgs option table this needs. */
export type OptionTable = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/**
 * Rewrites `--name VALUE` as `--name=VALUE` (and `-n VALUE` as `-nVALUE`) for the options of `options`
 * that take a value, whatever VALUE starts with, unless VALUE is itself one of the options (a value
 * left out). Everything from a `--` terminator on is kept as it is.
 */
export function joinOptionValues(args: readonly string[], options: OptionTable): string[] {
  const takesValue = new Set<string>();
  const known = new Set<string>();
  for (const [name, option] of Object.entries(options)) {
    const spellings = [`--${name}`, ...(option.short ? [`-${option.short}`] : [])];
    for (const spelling of spellings) {
      known.add(spelling);
      if (option.type === 'string') takesValue.add(spelling);
    }
  }
  const isOption = (arg: string) => known.has(arg.split('=')[0]);
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') {
      joined.push(...args.slice(i));
      break;
    }
    const value = args[i + 1];
    if (takesValue.has(arg) && value !== undefined && value !== '--' && !isOption(value)) {
      joined.push(arg.startsWith('--') ? `${arg}=${value}` : `${arg}${value}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}
