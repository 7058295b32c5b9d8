/**
 * The reference for the daemon's ingest rate: a bare kafkajs consumer (a group of its own, from
 * the beginning, kafkajs defaults, no decoding and no processing) reading the same topic on the
 * same broker. Its rate is measured the way the daemon's is: (N - 1) / (last - first message).
 */
import type { Kafka } from 'kafkajs';

export interface BareConsumerReport {
  topic: string;
  messages: number;
  /** First to N-th message, seconds. */
  seconds: number;
  /** Messages per second: (N - 1) / seconds. */
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
    let first = 0;
    let last = 0;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        const now = performance.now();
        if (count === 0) first = now;
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
      rate: seconds > 0 ? Math.round(((expected - 1) / seconds) * 10) / 10 : 0,
      method:
        'a kafkajs consumer (own group, fromBeginning, default fetch settings) counts the messages of each batch; (N - 1) / (time of the batch reaching N - time of the first batch); no decoding, no validation, no commits',
    };
  } finally {
    await consumer.disconnect();
  }
}
