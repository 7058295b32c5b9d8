/**
 * The reference for the daemon's ingest rate: a bare kafkajs consumer (a group of its own, from
 * the beginning, kafkajs defaults, no decoding and no processing) reading the same topic on the
 * same broker. Its rate is measured the way the daemon's is: N / (its group join -> arrival of the
 * batch that reaches N), so that both count every fetch, the first one included.
 */
import type { Batch, Kafka } from 'kafkajs';
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

/**
 * Runs a kafkajs consumer (a group of its own, from the beginning, kafkajs's default fetch sizes)
 * on `topic`, handing each batch to `onBatch` until it returns true; rejects on timeout or abort.
 * `onJoin` runs at the group join.
 */
export async function consumeTopic(
  kafka: Kafka,
  topic: string,
  groupId: string,
  options: {
    timeoutS: number;
    signal: AbortSignal;
    onJoin?: () => void;
    onBatch: (batch: Batch) => boolean;
    /** Why a timeout is an error, e.g. how much was read. */
    progress: () => string;
  },
): Promise<void> {
  const consumer = kafka.consumer({ groupId });
  await consumer.connect();
  try {
    let done!: () => void;
    let finished = false;
    const read = new Promise<void>((resolve) => (done = resolve));
    const { onJoin } = options;
    if (onJoin !== undefined) consumer.on(consumer.events.GROUP_JOIN, () => onJoin());
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        if (!finished && options.onBatch(batch)) {
          finished = true;
          done();
        }
        return Promise.resolve();
      },
    });
    let timer: NodeJS.Timeout | undefined;
    const stopped = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${options.progress()} in ${options.timeoutS} s`)),
        options.timeoutS * 1000,
      );
      options.signal.addEventListener('abort', () => reject(options.signal.reason as Error), { once: true });
    });
    try {
      await Promise.race([read, stopped]);
    } finally {
      clearTimeout(timer);
    }
  } finally {
    await consumer.disconnect();
  }
}

export async function bareConsumerRate(
  kafka: Kafka,
  topic: string,
  expected: number,
  groupId: string,
  timeoutS: number,
  signal: AbortSignal,
): Promise<BareConsumerReport> {
  let count = 0;
  let joinedAt: number | undefined;
  let last = 0;
  let cpuAtJoin: CpuSample | undefined;
  let cpuAtLast: CpuSample | undefined;
  await consumeTopic(kafka, topic, groupId, {
    timeoutS,
    signal,
    onJoin: () => {
      if (joinedAt !== undefined) return;
      joinedAt = performance.now();
      cpuAtJoin = sampleCpu();
    },
    onBatch: (batch) => {
      const now = performance.now();
      count += batch.messages.length;
      if (count < expected) return false;
      last = now;
      cpuAtLast = sampleCpu();
      return true;
    },
    progress: () => `the bare consumer read ${count} of ${expected}`,
  });
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
}
