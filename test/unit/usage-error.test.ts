import { parseArgs } from 'node:util';
import { describe, expect, it } from 'vitest';
import { UsageError, asUsage } from '../../src/cli/usage-error';

const OPTIONS = { address: { type: 'string' }, token: { type: 'string' }, output: { type: 'string', short: 'o' } } as const;

/** What asUsage makes of node:util parseArgs refusing `args`. */
function refusal(args: string[]): UsageError {
  try {
    asUsage(() => parseArgs({ args, options: OPTIONS, allowPositionals: true }), Object.keys(OPTIONS));
  } catch (error) {
    return error as UsageError;
  }
  throw new Error(`parseArgs took ${args.join(' ')}`);
}

describe('asUsage', () => {
  it("names the flag a mistyped one looks like, instead of Node's hint to put a positional argument after --", () => {
    const typo = refusal(['info', '--adress', 'unix:/tmp/t.sock']);
    expect(typo).toBeInstanceOf(UsageError);
    expect(typo.message).toBe("Unknown option '--adress' (did you mean --address?)");
    expect(refusal(['--TOKEN=x', 'info']).message).toBe("Unknown option '--TOKEN' (did you mean --token?)");
  });

  it('says only that the flag is unknown when it looks like none', () => {
    expect(refusal(['info', '--bogus']).message).toBe("Unknown option '--bogus'");
    expect(refusal(['info', '-z']).message).toBe("Unknown option '-z'");
  });

  it('says a flag given no value needs one, naming its forms, instead of parseArgs\' "<value> argument missing"', () => {
    expect(refusal(['info', '--address']).message).toBe('Expected a value for --address but received nothing (--address VALUE, or --address=VALUE)');
    expect(refusal(['info', '-o']).message).toBe('Expected a value for --output but received nothing (--output VALUE, or --output=VALUE)');
  });

  it("keeps parseArgs' other refusals as they are", () => {
    expect(refusal(['info', '--address', '--token', 'x']).message).toContain("Option '--address' argument is ambiguous");
  });
});
