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

  it('answers at once for a name far longer than any known one (a config or tenants-file key of 200 KB), which no edit of two letters reaches', () => {
    // The edit distance to each of the flags was computed in full: 7 s for a 200 KB key in a --config
    // file before tensormemd said it was unknown, about a minute for 2 MB (a tenants file's on SIGHUP, with the daemon's event loop held).
    const started = Date.now();
    expect(nameLike('k'.repeat(200_000), FLAG_NAMES)).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
