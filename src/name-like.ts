/**
 * "Did you mean": the known name an unknown one looks like (a flag, a config or tenants-file key, a
 * typed-client option), for the refusal that names it.
 */

/** The name among `names` that an unknown one looks like, if any ("did you mean"). */
export function nameLike(name: string, names: readonly string[]): string | undefined {
  return names.find((known) => looksLike(known, name));
}

/** The same name but for case, - and _ (max_bytes, MAXBYTES), or one or two letters off. */
function looksLike(known: string, name: string): boolean {
  const squash = (text: string) => text.replace(/[-_]/g, '').toUpperCase();
  const canonical = (text: string) => text.replace(/-/g, '_').toUpperCase();
  // Two edits change a length by two at most: a name further off in length (a key of 200 KB) is not
  // measured, which took time in the product of the two lengths for each known name.
  return squash(known) === squash(name) || (Math.abs(known.length - name.length) <= 2 && editDistance(canonical(known), canonical(name)) <= 2);
}

/** Levenshtein distance (short names only: looksLike measures names of about the same length). */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)));
    previous = row;
  }
  return previous[b.length];
}
