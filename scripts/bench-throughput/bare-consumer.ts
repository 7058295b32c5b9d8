/**
 * The reference for the daemon's ingest rate: a bare kafkajs consumer (a group of its own, from
 * the beginning, kafkajs defaults, no decoding and no processing) reading the same topic on the
 * same broker. Its rate is measured the way the daemon's is: N / (its group join -> arrival of the
 * batch that reaches N), so that both count every fetch, the first one included.
 */
import type { Kafka } from 'kafkajs';
import { cpuSpan, sampleCpu, type CpuSample, type CpuSpan } from '../bench-daemon/support.js';

export interface BareConsumerReport {
  topic: string;
  messages: number;
  /** Group join to N-th message, seconds. */
  seconds: number;
  /** Messages per second: N / seconds. */
  rate: number;
  /** The main thread's and the process's CPU from the group join to the N-th message (Linux). */
  cpu: CpuSpan | null;
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
    let joinedAt: number | undefined;
    let last = 0;
    let cpuAtJoin: CpuSample | undefined;
    let cpuAtLast: CpuSample | undefined;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    consumer.on(consumer.events.GROUP_JOIN, () => {
      if (joinedAt !== undefined) return;
      joinedAt = performance.now();
      cpuAtJoin = sampleCpu();
    });
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        const now = performance.now();
        count += batch.messages.length;
        if (count >= expected && last === 0) {
          last = now;
          cpuAtLast = sampleCpu();
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
    if (joinedAt === undefined) throw new Error('the bare consumer read messages without a group join event');
    const seconds = (last - joinedAt) / 1000;
    return {
      topic,
      messages: count,
      seconds: Math.round(seconds * 1000) / 1000,
      rate: seconds > 0 ? Math.round((expected / seconds) * 10) / 10 : 0,
      cpu: cpuSpan(cpuAtJoin, cpuAtLast, expected),
      method:
        'a kafkajs consumer (own group, fromBeginning, default fetch settings) counts the messages of each batch; N / (its group join -> arrival of the batch reaching N); no decoding, no validation, no commits',
    };
  } finally {
    await consumer.disconnect();
  }
}
