/**
 * Deterministic validation hold-out: a fixed share of labeled candidates, chosen by a hash of the
 * candidate id, is never trained on and is used to evaluate every model version.
 */
import { createHash } from 'node:crypto';

/** Thrown when the hold-out share is not in [0, 1]. */
export class InvalidHoldoutShareError extends Error {
  /** Stable machine-readable code. */
  readonly code = 'INVALID_HOLDOUT_SHARE';
  /** Retrying with the same share fails the same way. */
  readonly retryable = false;
  override readonly name = 'InvalidHoldoutShareError';
}

/**
 * Where a candidate id falls in [0, 1): the first 4 bytes of sha256(UTF-8(salt + '\u0000' + id)),
 * big-endian, divided by 2^32.
 *
 * @param candidateId - the candidate's id.
 * @param salt - changes which candidates are held out; default ''.
 */
export function holdoutPosition(candidateId: string, salt = ''): number {
  const digest = createHash('sha256').update(`${salt}\u0000${candidateId}`, 'utf8').digest();
  return digest.readUInt32BE(0) / 0x1_0000_0000;
}

/**
 * Whether a candidate belongs to the validation hold-out: {@link holdoutPosition} < share. The same
 * id, share and salt always give the same answer, on any machine; raising the share only adds ids.
 *
 * @param candidateId - the candidate's id.
 * @param share - the share held out, in [0, 1] (0: none, 1: all).
 * @param salt - changes which candidates are held out; default ''.
 * @throws InvalidHoldoutShareError when share is not a number in [0, 1].
 */
export function isHeldOut(candidateId: string, share: number, salt = ''): boolean {
  if (typeof share !== 'number' || !(share >= 0 && share <= 1)) {
    throw new InvalidHoldoutShareError(`hold-out share must be in [0, 1], got ${share}`);
  }
  return holdoutPosition(candidateId, salt) < share;
}
