/** Model tests' seeded runs: each seed's counts of what its sequence reached, summed. */

/** Runs `run` for each seed from `first` to `last`, one after the other, and sums the counts each returns, key by key. */
export async function totalsOverSeeds<K extends string>(first: number, last: number, run: (seed: number) => Promise<Record<K, number>>): Promise<Record<K, number>> {
  const totals = {} as Record<K, number>;
  for (let seed = first; seed <= last; seed++) {
    const counts = await run(seed);
    for (const key of Object.keys(counts) as K[]) totals[key] = (totals[key] ?? 0) + counts[key];
  }
  return totals;
}
