/**
 * The daemon's own intake work per candidate, alone: what `Daemon.ingest` runs for a candidate
 * (takeCandidate: parse, store, admit into a pool with room for all of them; then trackDone on
 * the offsets), run on one thread over the very messages of the backlog topic as kafkajs
 * delivered them, with no Kafka traffic, no scoring and nothing else running. It is a floor for the daemon's main-thread CPU per candidate: the daemon
 * also decodes the fetches (kafkajs), collects a larger heap, and handles the scores coming back.
 */
import type { Kafka, KafkaMessage } from 'kafkajs';
import { labelingConfigOf, type Config } from '../../src/config/index.js';
import { emptyLabels, type LabelingState } from '../../src/core/labels.js';
import { emptyOffsets, trackDone } from '../../src/core/offsets.js';
import { emptyPool, poolSize } from '../../src/core/pool.js';
import { takeCandidate, type StoredCandidate } from '../../src/daemon/stored-candidate.js';
import { median } from '../bench-daemon/support.js';
import { consumeTopic } from './bare-consumer.js';

export interface IntakeAloneReport {
  candidates: number;
  /** Microseconds per candidate of each repetition (a fresh pool each). */
  microsPerCandidate: number[];
  median: number | null;
  method: string;
}

/** The first `n` messages of `topic`, read by a consumer of a group of its own. */
export async function readMessages(
  kafka: Kafka,
  topic: string,
  n: number,
  groupId: string,
  timeoutS: number,
  signal: AbortSignal,
): Promise<KafkaMessage[]> {
  const messages: KafkaMessage[] = [];
  await consumeTopic(kafka, topic, groupId, {
    timeoutS,
    signal,
    onBatch: (batch) => {
      for (const m of batch.messages) if (messages.length < n) messages.push(m);
      return messages.length >= n;
    },
    progress: () => `read ${messages.length} of ${n} messages`,
  });
  return messages;
}

/** Runs the intake steps over `messages` `repeat` times, each into a fresh pool. */
export function intakeAlone(
  messages: readonly KafkaMessage[],
  config: Config,
  repeat: number,
): IntakeAloneReport {
  const labeling = labelingConfigOf(config, () => 0);
  const topic = config.kafka.topics.candidates;
  const times: number[] = [];
  for (let r = 0; r < repeat; r++) {
    let state: LabelingState<StoredCandidate> = { pool: emptyPool(), labels: emptyLabels() };
    let offsets = emptyOffsets();
    const started = performance.now();
    for (let i = 0; i < messages.length; i++) {
      const source = { topic, partition: 0, offset: i };
      const taken = takeCandidate(state, messages[i]!, source, Date.now(), config.limits, labeling);
      if (!taken.ok) throw new Error(`message ${i} of the backlog is refused: ${taken.error}`);
      state = taken.value.state;
      offsets = trackDone(offsets, source);
    }
    times.push(Math.round(((performance.now() - started) * 1000 * 100) / messages.length) / 100);
    if (poolSize(state.pool) !== messages.length) {
      throw new Error(`the pool holds ${poolSize(state.pool)} of ${messages.length} candidates`);
    }
  }
  return {
    candidates: messages.length,
    microsPerCandidate: times,
    median: median(times),
    method:
      "what Daemon.ingest runs for a candidate (takeCandidate: parse without source refs, store, admit into a pool with room for all; then trackDone), on the bench's main thread over the backlog topic's messages as kafkajs delivered them; no Kafka traffic, no scoring, nothing else running; a fresh pool per repetition; a floor for the daemon's main-thread CPU per candidate",
  };
}
