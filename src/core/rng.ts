/**
 * Seeded pseudo-random numbers for the ACFT core.
 *
 * Every random choice in the core (randomized selection, shuffles) takes an {@link Rng} built from an
 * explicit seed, so a run can be replayed exactly. The generator is pure-rand's xoroshiro128+.
 */
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';

/** A seeded, mutable source of random numbers. Not safe to share between independent consumers. */
export interface Rng {
  /** A float uniformly drawn from [0, 1) (53 random bits). */
  next(): number;
  /** An integer uniformly drawn from [0, n); `n` must be a positive safe integer. */
  int(n: number): number;
  /** An independent copy at the current position: both copies then produce the same sequence. */
  clone(): Rng;
}

/** Thrown when an rng argument is out of its domain (bad seed, bad range). */
export class InvalidRngArgumentError extends Error {
  /** Stable machine-readable code. */
  readonly code = 'INVALID_RNG_ARGUMENT';
  /** Retrying with the same argument fails the same way. */
  readonly retryable = false;
  override readonly name = 'InvalidRngArgumentError';
}

type Generator = ReturnType<typeof xoroshiro128plusFromState>;

/** murmur3's 32-bit finalizer: a bijection on uint32 that spreads nearby seeds far apart. */
function fmix32(h: number): number {
  let x = h >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Reduces any safe integer to 32 bits without dropping its high half. */
function seedTo32(seed: number): number {
  const low = seed >>> 0;
  const high = Math.floor(seed / 0x1_0000_0000) >>> 0;
  return (low ^ Math.imul(high, 0x9e3779b1)) >>> 0;
}

class PureRng implements Rng {
  constructor(private readonly gen: Generator) {}

  next(): number {
    return uniformFloat64(this.gen);
  }

  int(n: number): number {
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new InvalidRngArgumentError(`int(n) needs a positive safe integer n, got ${n}`);
    }
    return uniformInt(this.gen, 0, n - 1);
  }

  clone(): Rng {
    return new PureRng(this.gen.clone());
  }
}

/**
 * Creates a deterministic generator: the same seed always gives the same sequence.
 *
 * The seed is spread over xoroshiro128+'s 128-bit state through a mixing function, because the
 * generator's own one-number seeding leaves nearby seeds correlated for their first outputs.
 *
 * @param seed - any safe integer (negative allowed); use {@link deriveSeed} to make one from names.
 * @throws InvalidRngArgumentError when `seed` is not a safe integer.
 */
export function createRng(seed: number): Rng {
  if (!Number.isSafeInteger(seed)) {
    throw new InvalidRngArgumentError(`seed must be a safe integer, got ${seed}`);
  }
  const s = seedTo32(seed);
  const state: number[] = [
    fmix32(s + 0x9e3779b9),
    fmix32(s + 0x3c6ef372),
    fmix32(s + 0xdaa66d2b),
    fmix32(s + 0x78dde6e4),
  ].map((v) => v | 0);
  // The all-zero state is xoroshiro's one fixed point; fmix32 makes it near impossible, but be exact.
  if (!state.some((v) => v !== 0)) state[0] = 1;
  return new PureRng(xoroshiro128plusFromState(state));
}

/**
 * Shuffles `arr` in place (Fisher-Yates) with `rng` and returns it.
 *
 * @param arr - the array to permute.
 * @param rng - the source of randomness; the permutation is a function of its state.
 */
export function shuffleInPlace<T>(arr: T[], rng: Rng): T[] {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const tmp = arr[i] as T;
    arr[i] = arr[j] as T;
    arr[j] = tmp;
  }
  return arr;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * A stable unsigned 32-bit hash (FNV-1a) of the parts, meant as a seed for {@link createRng}, e.g.
 * `deriveSeed(runSeed, 'select', step)`.
 *
 * Each part is encoded as type tag + length + ':' + text, so `1` and `'1'` differ and
 * `('ab','c')` and `('a','bc')` differ. Strings are hashed by UTF-16 code unit, numbers by their
 * shortest round-trip decimal text. The value is the same on every platform and version of Node.
 */
export function deriveSeed(...parts: (string | number)[]): number {
  let h = FNV_OFFSET;
  const feed = (code: number): void => {
    h ^= code & 0xff;
    h = Math.imul(h, FNV_PRIME);
    h ^= code >>> 8;
    h = Math.imul(h, FNV_PRIME);
  };
  for (const part of parts) {
    const value = typeof part === 'number' ? String(part) : part;
    const text = `${typeof part === 'number' ? 'n' : 's'}${value.length}:${value}`;
    for (let i = 0; i < text.length; i++) feed(text.charCodeAt(i));
  }
  return h >>> 0;
}
