/**
 * Poison isolation for batched work: a candidate that passed validation but makes its batch throw
 * (patches the model cannot take, say) must not take its batch-mates down with it, nor stop a
 * rescore of the whole pool. The batch is split in halves until the culprit is alone.
 */
import { WorkerTaskError } from '../workers/worker-host.js';

/** Whether `error` is about one candidate's content (a retry would fail the same way). */
export function isCandidateError(error: unknown): boolean {
  return error instanceof WorkerTaskError && error.remoteName === 'InvalidCandidateError';
}

/**
 * Runs `work` on `ids`; when it fails with a candidate error, runs it on each half, down to single
 * ids, which go to `onPoison`. Other errors (a worker crash, shutdown) are thrown as they are.
 * A batch of n with one poison costs about 2 log2(n) extra calls.
 */
export async function isolatePoison(
  ids: readonly string[],
  work: (ids: readonly string[]) => Promise<void>,
  onPoison: (id: string, error: unknown) => Promise<void>,
): Promise<void> {
  try {
    await work(ids);
  } catch (error) {
    if (!isCandidateError(error) || ids.length === 0) throw error;
    if (ids.length === 1) return onPoison(ids[0]!, error);
    const half = Math.ceil(ids.length / 2);
    await isolatePoison(ids.slice(0, half), work, onPoison);
    await isolatePoison(ids.slice(half), work, onPoison);
  }
}
