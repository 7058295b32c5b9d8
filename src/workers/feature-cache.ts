/**
 * The feature cache of cheap rescoring: for each candidate, the activations of its m patches at
 * the model's cut (fine-tune-depth.ts), under the key of what produced them (the frozen layers'
 * fingerprint and the patch recipe). A version with the same frozen layers is scored from them by
 * running only the layers above the cut.
 *
 * Bounded: at most `maxBytes` (the features plus a fixed per-entry overhead); beyond it the least
 * recently used entries are evicted, and a candidate whose features alone exceed the bound is not
 * cached (it is always scored in full). Counted: `bytes`, `size` and the hit, miss and eviction
 * counts are read by the metrics.
 */

/** Bytes charged per entry on top of its features (Map slot, key string, typed-array header). */
export const ENTRY_OVERHEAD_BYTES = 160;

export interface FeatureCacheStats {
  /** Bytes held (features + per-entry overhead). */
  bytes: number;
  /** Candidates held. */
  entries: number;
  maxBytes: number;
  hits: number;
  misses: number;
  evictions: number;
}

interface Entry {
  key: string;
  features: Float32Array;
  bytes: number;
}

/** See the module comment. */
export class FeatureCache {
  private readonly entries = new Map<string, Entry>();
  private held = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;

  constructor(readonly maxBytes: number) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw new RangeError(`feature cache maxBytes must be a non-negative integer, got ${maxBytes}`);
    }
  }

  get bytes(): number {
    return this.held;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The features of `id` if cached under `key` (and marks them recently used); else undefined. */
  get(id: string, key: string): Float32Array | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined || entry.key !== key) {
      this.misses++;
      return undefined;
    }
    this.entries.delete(id);
    this.entries.set(id, entry);
    this.hits++;
    return entry.features;
  }

  /** Caches `features` (kept, not copied) for `id` under `key`, evicting the oldest beyond the bound. */
  set(id: string, key: string, features: Float32Array): void {
    this.delete(id);
    const bytes = features.byteLength + ENTRY_OVERHEAD_BYTES + 2 * id.length;
    if (bytes > this.maxBytes) return;
    while (this.held + bytes > this.maxBytes) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.delete(oldest.value);
      this.evictions++;
    }
    this.entries.set(id, { key, features, bytes });
    this.held += bytes;
  }

  /** Drops the features of `id` (a candidate that left the pool). */
  delete(id: string): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    this.entries.delete(id);
    this.held -= entry.bytes;
  }

  /** Drops everything (the frozen layers changed: every entry is stale). */
  clear(): void {
    this.entries.clear();
    this.held = 0;
  }

  stats(): FeatureCacheStats {
    return {
      bytes: this.held,
      entries: this.entries.size,
      maxBytes: this.maxBytes,
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
    };
  }
}
