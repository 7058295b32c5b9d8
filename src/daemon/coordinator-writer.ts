/**
 * The coordinator's writes (scale-out): labeling requests with their ledger `requested` entries,
 * and model versions, through a Kafka transactional producer whose `transactionalId` is the same
 * for every coordinator of a group. Opening the writer bumps the producer epoch of that id, which
 * fences the previous coordinator: a frozen one that wakes up has its next write refused by the
 * broker (and its open transaction, if any, aborted), so there is never a second writer.
 */
import type { Kafka, Producer, TopicMessages } from 'kafkajs';

/** The transactional id shared by every coordinator of a consumer group. */
export function coordinatorTransactionalId(groupId: string): string {
  return `${groupId}.coordinator`;
}

/**
 * The broker refused a coordinator write: another instance opened the writer since (or the
 * transaction outlived the broker's transaction timeout). Never retried: the instance steps down.
 */
export class CoordinatorFencedError extends Error {
  readonly code = 'COORDINATOR_FENCED';
  readonly retryable = false;
  override readonly name = 'CoordinatorFencedError';
}

/** Broker error codes of a fenced producer (PRODUCER_FENCED: brokers answering newer API versions). */
const FENCED_TYPES = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED']);
const FENCED_CODES = new Set([47, 90]);

/** Whether an error (kafkajs wraps protocol errors in `cause`) says the producer was fenced. */
export function isFencedError(error: unknown): boolean {
  const seen = new Set<unknown>();
  let e: unknown = error;
  while (typeof e === 'object' && e !== null && !seen.has(e)) {
    seen.add(e);
    const { type, code } = e as { type?: unknown; code?: unknown };
    if (
      (typeof type === 'string' && FENCED_TYPES.has(type)) ||
      (typeof code === 'number' && FENCED_CODES.has(code))
    )
      return true;
    if (e instanceof CoordinatorFencedError) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

export interface CoordinatorWriterOptions {
  transactionalId: string;
  /** A transaction open longer than this is aborted by the broker (and its producer fenced). */
  transactionTimeoutMs: number;
}

/**
 * One transactional producer, opened when an instance becomes coordinator and closed when it
 * steps down. Writes are serialized (kafkajs allows one transaction at a time). A write that fails
 * leaves the writer unusable, and the instance must step down (and rejoin the election):
 * - a fenced write: another instance coordinates;
 * - any other failure: kafkajs does not advance its idempotence sequence for the partitions of a
 *   failed produce that the broker did accept, so the next transaction's first batch there would be
 *   taken by the broker for a duplicate of the aborted one and silently dropped. Only a new
 *   producer epoch clears that, and bumping the epoch is the election's right alone (a writer that
 *   re-initialised itself would fence whoever coordinates now).
 */
export class CoordinatorWriter {
  private queue: Promise<unknown> = Promise.resolve();
  private state: 'open' | 'fenced' | 'broken' | 'closed' = 'open';

  private constructor(private readonly producer: Producer) {}

  /** Creates and initialises the producer: from now on, any previous holder of the id is fenced. */
  static async open(kafka: Kafka, options: CoordinatorWriterOptions): Promise<CoordinatorWriter> {
    return new CoordinatorWriter(await initProducer(kafka, options));
  }

  /** False once fenced, broken or closed: no write will be attempted any more. */
  get usable(): boolean {
    return this.state === 'open';
  }

  /**
   * Writes every message in one transaction: read-committed consumers see all of them or none.
   * Throws {@link CoordinatorFencedError} when a newer coordinator holds the id.
   */
  write(topicMessages: TopicMessages[]): Promise<void> {
    const next = this.queue.then(() => this.writeNow(topicMessages));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async writeNow(topicMessages: TopicMessages[]): Promise<void> {
    if (this.state === 'fenced') throw new CoordinatorFencedError('this coordinator was fenced');
    if (this.state !== 'open') throw new Error(`coordinator writer ${this.state}`);
    let transaction: Awaited<ReturnType<Producer['transaction']>> | undefined;
    try {
      transaction = await this.producer.transaction();
      await transaction.sendBatch({ topicMessages });
      await transaction.commit();
    } catch (error) {
      this.state = 'broken';
      let fenced = isFencedError(error);
      // Ends the transaction now rather than at the broker's transaction timeout.
      if (!fenced && transaction?.isActive() === true)
        await transaction.abort().catch((abortError: unknown) => {
          fenced = isFencedError(abortError);
        });
      if (!fenced) throw error;
      this.state = 'fenced';
      throw new CoordinatorFencedError('another coordinator took over: write refused by the broker', {
        cause: error,
      });
    }
  }

  /** Disconnects (after a write under way). Idempotent. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    await this.queue;
    await this.producer.disconnect().catch(() => undefined);
  }
}

async function initProducer(kafka: Kafka, options: CoordinatorWriterOptions): Promise<Producer> {
  const producer = kafka.producer({
    transactionalId: options.transactionalId,
    transactionTimeout: options.transactionTimeoutMs,
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
  });
  try {
    await producer.connect();
    // kafkajs initialises the transactional producer id lazily, at the first transaction: an
    // empty one (nothing is sent for it) bumps the epoch now, before this instance acts.
    const transaction = await producer.transaction();
    await transaction.abort();
  } catch (error) {
    await producer.disconnect().catch(() => undefined);
    throw error;
  }
  return producer;
}
