/**
 * Lease and array ids: a prefix and 96 random bits in hex, made as one flat string. A template literal
 * would keep a two-part string (a rope of the prefix and the digits, 32 bytes more) for as long as the
 * lease or array; the random bytes come from one pool refilled a page at a time.
 */
import { randomFillSync } from 'node:crypto';

const entropy = Buffer.alloc(4092);
let entropyUsed = entropy.length;

/** Makes ids of `prefix` and 24 hex digits (96 random bits). */
export function randomIds(prefix: string): () => string {
  const text = Buffer.from(`${prefix}${'0'.repeat(24)}`, 'latin1');
  return () => {
    if (entropyUsed + 12 > entropy.length) {
      randomFillSync(entropy);
      entropyUsed = 0;
    }
    text.write(entropy.toString('hex', entropyUsed, entropyUsed + 12), prefix.length, 'latin1');
    entropyUsed += 12;
    return text.toString('latin1');
  };
}
