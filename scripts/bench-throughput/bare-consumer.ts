/**
 * The reference for the daemon's ingest rate: a bare kafkajs consumer (a group of its own, from
 * the beginning, kafkajs defaults, no decoding and no processing) reading the same topic on the
 * same broker. Its rate counts what arrived after the first batch: (N - size of the first batch) /
 * (arrival of the batch reaching N - arrival of the first batch). Like the daemon's (N - 1) / (first
 * -> N-th message), it counts only the messages that came within the interval it times; the whole
 * first batch arrives at its start.
 */
import type { Kafka } from 'kafkajs';

export interface BareConsumerReport {
  topic: string;
  messages: number;
  /** First to N-th message, seconds. */
  seconds: number;
  /** Messages of the first batch (they arrive at the start of the interval timed). */
  firstBatch: number;
  /** Messages per second: (N - firstBatch) / seconds. */
  rate: number;
  method: string;
}

export async function bareConsumerRate(
  kafka: Kafka,
  topic: string,
  expected: number,
  groupId: string,
  timeoutS: number,
  signal: AbortSignal,
): Promise<BareConsumerReport> {
  const consumer = kafka.consumer({ groupId });
  await consumer.connect();
  try {
    let count = 0;
    let firstBatch = 0;
    let first = 0;
    let last = 0;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        const now = performance.now();
        if (count === 0) {
          first = now;
          firstBatch = batch.messages.length;
        }
        count += batch.messages.length;
        if (count >= expected && last === 0) {
          last = now;
          done();
        }
        return Promise.resolve();
      },
    });
    const timeout = new Promise<never>((_, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the bare consumer read ${count} of ${expected} in ${timeoutS} s`)),
        timeoutS * 1000,
      );
      finished.finally(() => clearTimeout(timer)).catch(() => undefined);
      signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
    });
    await Promise.race([finished, timeout]);
    const seconds = (last - first) / 1000;
    return {
      topic,
      messages: count,
      seconds: Math.round(seconds * 1000) / 1000,
      firstBatch,
      rate: seconds > 0 ? Math.round(((expected - firstBatch) / seconds) * 10) / 10 : 0,
      method:
        'a kafkajs consumer (own group, fromBeginning, default fetch settings) counts the messages of each batch; (N - size of the first batch) / (time of the batch reaching N - time of the first batch); no decoding, no validation, no commits',
    };
  } finally {
    await consumer.disconnect();
  }
}
