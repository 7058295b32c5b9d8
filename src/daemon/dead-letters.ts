/**
 * Dead letters waiting for the broker, as the checkpoint keeps them (the loop's queue is
 * loop/dead-letters.ts): kept until the broker confirms them, so that none is dropped by an outage
 * or a crash (at least once: a dead letter whose send was confirmed after the last checkpoint is
 * sent again after a crash; readers tell them apart by their source topic/partition/offset).
 */
import type { PartitionOffset } from '../core/offsets.js';

/** One dead letter waiting for the broker. */
export interface QueuedDeadLetter {
  /** The Kafka key (the source's key when it was a valid id). */
  readonly key: string | null;
  /** The encoded `acft.dead-letter/v1` message. */
  readonly value: string;
  /** The message whose offset waits for this send (not checkpointed). */
  readonly hold?: PartitionOffset;
}

/** What a checkpoint keeps of a queued dead letter. */
interface StoredDeadLetter {
  readonly key: string | null;
  readonly value: string;
}

/** The checkpoint file's content with the dead letters not confirmed yet. */
export function withDeadLetters<S extends object>(
  file: S,
  queued: Iterable<QueuedDeadLetter>,
): S & { deadLetters: StoredDeadLetter[] } {
  return { ...file, deadLetters: [...queued].map((d) => ({ key: d.key, value: d.value })) };
}

/** The unsent dead letters of a checkpoint file's content (none in a file without them). */
export function deadLettersOf(checkpoint: unknown): QueuedDeadLetter[] {
  if (typeof checkpoint !== 'object' || checkpoint === null) return [];
  const list = (checkpoint as Record<string, unknown>)['deadLetters'];
  if (list === undefined) return [];
  const valid = (x: unknown): x is StoredDeadLetter =>
    typeof x === 'object' &&
    x !== null &&
    typeof (x as Record<string, unknown>)['value'] === 'string' &&
    (typeof (x as Record<string, unknown>)['key'] === 'string' ||
      (x as Record<string, unknown>)['key'] === null);
  if (!Array.isArray(list) || !list.every(valid))
    throw new Error('checkpoint deadLetters is not a list of { key, value } messages');
  return list.map((d) => ({ key: d.key, value: d.value }));
}
