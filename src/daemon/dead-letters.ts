/**
 * Dead letters on their way to the dead-letter topic: queued, sent in order in batches, retried
 * until the broker confirms them, and kept in the checkpoint until then, so that none is dropped by
 * an outage or a crash (at least once: a dead letter whose send was confirmed after the last
 * checkpoint is sent again after a crash; readers tell them apart by their source
 * topic/partition/offset).
 *
 * A dead letter born of a message (an invalid message, one that threw) may hold that message's
 * offset until its send is confirmed (scale-out, which writes no checkpoint, does so): the caller
 * marks the offset done in `onSent`.
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

export interface DeadLetterOutboxOptions {
  /** Sends a batch; resolves once the broker confirmed every message. */
  readonly send: (batch: readonly QueuedDeadLetter[]) => Promise<void>;
  /** Called with a batch the broker confirmed. */
  readonly onSent: (batch: readonly QueuedDeadLetter[]) => void;
  /** Called when a send failed (the batch stays queued and is sent again). */
  readonly onFailed: (error: unknown, queued: number) => void;
  /** Wait before sending again after a failure (ms). */
  readonly retryAfterMs: number;
  /** Most dead letters in one send. */
  readonly maxBatch?: number;
}

/** The queue of dead letters and its one sender. */
export class DeadLetterOutbox {
  private readonly queue: QueuedDeadLetter[] = [];
  private sending?: Promise<void>;
  private stopped = false;
  private retryTimer?: NodeJS.Timeout;

  constructor(private readonly options: DeadLetterOutboxOptions) {}

  /** Queues dead letters and starts sending them, unless a send is under way. */
  push(...letters: QueuedDeadLetter[]): void {
    this.queue.push(...letters);
    void this.flush();
  }

  /** Queues dead letters of a restored checkpoint, without sending them yet (see {@link flush}). */
  restore(letters: readonly QueuedDeadLetter[]): void {
    this.queue.push(...letters);
  }

  /** The dead letters not confirmed yet, oldest first. */
  get unsent(): readonly QueuedDeadLetter[] {
    return this.queue;
  }

  get size(): number {
    return this.queue.length;
  }

  /** Starts a send of what is queued when none is under way; resolves when the queue is empty or a send failed. */
  flush(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.sending ??= this.drain().finally(() => {
      this.sending = undefined;
    });
    return this.sending;
  }

  private async drain(): Promise<void> {
    const max = this.options.maxBatch ?? 100;
    while (this.queue.length > 0 && !this.stopped) {
      const batch = this.queue.slice(0, max);
      try {
        await this.options.send(batch);
      } catch (error) {
        this.options.onFailed(error, this.queue.length);
        if (!this.stopped) {
          clearTimeout(this.retryTimer);
          this.retryTimer = setTimeout(() => void this.flush(), this.options.retryAfterMs);
          this.retryTimer.unref();
        }
        return;
      }
      this.queue.splice(0, batch.length);
      this.options.onSent(batch);
    }
  }

  /** Stops sending (what is queued stays in {@link unsent}); waits for a send under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.sending;
  }
}
