/**
 * Waits until a consumer has read topics up to where they end now: the one read-to-end of the
 * adapters (model-versions before the loop publishes anything; the ledger and model-versions
 * before a coordinator acts). `position(topic, partition)` is the next offset the consumer will
 * read there (transaction markers included).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';

const POLL_MS = 50;

export interface ReadToEndOptions {
  /** Stops waiting (a shutdown). */
  readonly stopped?: () => boolean;
  /** Gives up after this long (ms): true is still returned when done, false when not. */
  readonly timeoutMs?: number;
}

/** Resolves true once every partition of `topics` is read to its end as of the call (false: given up). */
export async function readToEnd(
  kafka: Kafka,
  topics: readonly string[],
  position: (topic: string, partition: number) => number,
  options: ReadToEndOptions = {},
): Promise<boolean> {
  const targets = await ends(kafka, topics);
  if (targets === undefined) return false;
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  const done = () => targets.every((t) => position(t.topic, t.partition) >= t.end);
  while (!done()) {
    if (options.stopped?.() === true || Date.now() > deadline) return false;
    await sleep(POLL_MS);
  }
  return true;
}

/** The non-empty partitions' ends now; right after a topic is created its leader may not be known everywhere yet, so tried again. */
async function ends(
  kafka: Kafka,
  topics: readonly string[],
): Promise<{ topic: string; partition: number; end: number }[] | undefined> {
  for (let attempt = 1; attempt <= 10; attempt++) {
    const admin = kafka.admin();
    try {
      await admin.connect();
      const out: { topic: string; partition: number; end: number }[] = [];
      for (const topic of topics)
        for (const p of await admin.fetchTopicOffsets(topic))
          if (Number(p.high) > Number(p.low))
            out.push({ topic, partition: p.partition, end: Number(p.high) });
      return out;
    } catch {
      await sleep(500);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
  return undefined;
}
