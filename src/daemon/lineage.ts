/**
 * Which model versions belong to the configured M0's lineage (see initial-model.ts for the ids).
 *
 * Every version the daemon saves records the id of the M0 it descends from (`info.m0` in the
 * store, `m0` on `model-versions`), and every checkpoint records the M0 its state was built on.
 * At start-up:
 * - versions of another lineage (another M0, or saved before versions recorded one) are never
 *   served: the daemon says so once, naming ACFT_MODEL_M0_PATH and the store, and the configured
 *   M0 starts (or continues) its own lineage;
 * - a checkpoint built on another M0 stops the start: its labels, scores and served version belong
 *   to that M0, and the daemon will not mix them with another model (the operator points
 *   ACFT_MODEL_M0_PATH back at that M0, or starts from an empty state directory);
 * - a version of this lineage whose input shape is not M0's (a corrupt store) is not served either.
 */
import type { ModelVersionMeta } from '../model/model-store.js';

/** The M0 a stored version descends from (undefined: not recorded). */
export function lineageOf(meta: ModelVersionMeta): string | undefined {
  const m0 = meta.info['m0'];
  return typeof m0 === 'string' ? m0 : undefined;
}

/** The store's versions split into those of `m0`'s lineage and the others. */
export function splitByLineage(
  versions: readonly ModelVersionMeta[],
  m0: string,
): { ours: ModelVersionMeta[]; foreign: ModelVersionMeta[] } {
  const ours: ModelVersionMeta[] = [];
  const foreign: ModelVersionMeta[] = [];
  for (const v of versions) (lineageOf(v) === m0 ? ours : foreign).push(v);
  return { ours, foreign };
}

/** The M0 a checkpoint file's state was built on (undefined: a file from before it was recorded). */
export function checkpointLineage(checkpoint: unknown): string | undefined {
  if (typeof checkpoint !== 'object' || checkpoint === null) return undefined;
  const m0 = (checkpoint as Record<string, unknown>)['m0'];
  return typeof m0 === 'string' ? m0 : undefined;
}

/** The checkpoint file's content with the M0 its state was built on. */
export function withLineage<S extends object>(file: S, m0: string): S & { m0: string } {
  return { ...file, m0 };
}

/** Thrown at start when the checkpoint was built on another M0 than the configured one. */
export class LineageMismatchError extends Error {
  readonly code = 'LINEAGE_MISMATCH';
  readonly retryable = false;
  override readonly name = 'LineageMismatchError';

  constructor(stateDir: string, checkpointM0: string, m0Path: string, m0: string) {
    super(
      `The state in ${stateDir} was built on M0 ${checkpointM0}, not on ACFT_MODEL_M0_PATH=${m0Path} (M0 ${m0}): point ACFT_MODEL_M0_PATH back at that model, or start this M0 from an empty ACFT_STATE_CHECKPOINT_DIR.`,
    );
  }
}

/** The one sentence logged when the store holds versions of other lineages. */
export function foreignVersionsMessage(
  foreign: readonly ModelVersionMeta[],
  storeRoot: string,
  m0Path: string,
  m0: string,
): string {
  const others = [...new Set(foreign.map((v) => lineageOf(v) ?? 'unrecorded'))].join(', ');
  return `The model store ${storeRoot} holds ${foreign.length} version(s) of another M0 (${others}) than ACFT_MODEL_M0_PATH=${m0Path} (M0 ${m0}): they are not served, and this M0's own lineage is served and extended.`;
}
