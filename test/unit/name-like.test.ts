/** "Did you mean" (src/name-like.ts): which known name an unknown one looks like. */
import { describe, expect, it } from 'vitest';
import { FLAGS } from '../../src/config/flags';
import { nameLike } from '../../src/name-like';

const FLAG_NAMES = FLAGS.map((flag) => flag.name);

describe('nameLike', () => {
  it('finds a name that differs in case, - and _ only, or by one or two letters; none for one further off', () => {
    expect(nameLike('max_bytes', FLAG_NAMES)).toBe('maxbytes');
    expect(nameLike('MAXBYTES', FLAG_NAMES)).toBe('maxbytes');
    expect(nameLike('placment', ['dataType', 'shape', 'placement', 'device'])).toBe('placement');
    expect(nameLike('plcmnt', ['dataType', 'shape', 'placement', 'device'])).toBeUndefined();
    expect(nameLike('adress', ['address', 'output', 'token'])).toBe('address');
    // Squashed equal, though far apart in length: still the same name.
    expect(nameLike('h-o-s-t-_-m-a-x-b-y-t-e-s', FLAG_NAMES)).toBe('host-maxbytes');
  });

  it('finds none for a name far longer than any known one (a config or tenants-file key of 2 MB), which no edit of two letters reaches, without measuring it', () => {
    // The edit distance to each of the flags was computed in full: 7 s for a 200 KB key in a --config
    // file before tensormemd said it was unknown, about a minute for 2 MB (a tenants file's on SIGHUP,
    // with the daemon's event loop held). No clock is read here: measured in full, this name would run
    // past the test's limit by orders of magnitude (the length check answers in microseconds).
    expect(nameLike('k'.repeat(2_000_000), FLAG_NAMES)).toBeUndefined();
  }, 10_000);
});
