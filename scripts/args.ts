/** Integer flags of the benchmark scripts (`--name value`), checked with one message shape. */

/** A bad command line: the scripts print it with their usage and exit 2. */
export class UsageError extends Error {}

/** A comma list of integers >= `min`, or `def` when the flag is absent. */
export function intListArg(name: string, raw: string | undefined, def: number[], min: number): number[] {
  if (raw === undefined) return def;
  const v = raw.split(',').map((s) => Number(s.trim()));
  if (v.length === 0 || v.some((x) => !Number.isSafeInteger(x) || x < min)) {
    throw new UsageError(`--${name} must be a comma list of integers >= ${min}, got '${raw}'`);
  }
  return v;
}

/** One integer >= `min`, or `def` when the flag is absent. */
export function intArg(name: string, raw: string | undefined, def: number, min: number): number {
  if (raw === undefined) return def;
  const v = Number(raw);
  if (!Number.isSafeInteger(v) || v < min)
    throw new UsageError(`--${name} must be an integer >= ${min}, got '${raw}'`);
  return v;
}
