/**
 * Per-id accounting of everything a test sent to the daemon (STYLE.md "Tests that account").
 *
 * After a scenario, every message on the candidates and feedback topics is read back from the
 * broker, by position, and given the outcome the daemon's durable results show:
 *
 * - a candidate message is `dead-lettered` (a dead letter names its topic/partition/offset, with
 *   its reason), or its candidate id is `pooled` or `labeled` in the final checkpoint, `expired`
 *   (pool TTL) or `evicted` (pool bound) by a `candidates-dropped` event of some run (and not back
 *   in the final state), or it repeats an id already accounted (`duplicate`);
 * - a feedback message is `dead-lettered`, or it is a `vote`: the final checkpoint's record of
 *   its candidate holds a vote of its annotator (its latest label, or a later message of theirs
 *   replaced it), or it is `waiting` in the checkpoint's pending feedback.
 *
 * Anything else is `lost`, and every fault test asserts that nothing is. A count that matches
 * proves little: a lost candidate and a duplicated one cancel out, ids do not.
 */
import assert from 'node:assert/strict';
import type { KafkaMessage } from 'kafkajs';
import type { CheckpointSnapshot } from '../../src/core/checkpoint-state.js';
import { candidatesDroppedEvent, eventsOf } from '../../src/daemon/events.js';
import { parseCandidate, parseDeadLetter, parseFeedback } from '../../src/messages/index.js';
import { kafkaClient, uniqueTopic } from './kafka.js';

/** Limits wide enough for any message the daemon under test accepted (only its id is wanted). */
const GENEROUS_LIMITS = { maxPayloadBytes: 64 << 20, maxPatches: 4096, maxImageSide: 8192, maxChannels: 16 };

export type CandidateOutcome =
  'pooled' | 'labeled' | 'expired' | 'evicted' | 'duplicate' | `dead-lettered:${string}` | 'lost';

export type FeedbackOutcome = 'vote' | 'waiting' | `dead-lettered:${string}` | 'lost';

/** A message read back from a topic. */
export interface ReadMessage {
  readonly partition: number;
  readonly offset: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

export interface Accounting {
  /** By candidate message position `partition:offset`: its id (if it parses) and outcome. */
  readonly candidates: Map<string, { id: string | undefined; outcome: CandidateOutcome }>;
  /** By feedback message position. */
  readonly feedback: Map<string, { candidateId: string | undefined; outcome: FeedbackOutcome }>;
  /** Outcomes of the candidate ids (the last message of each id that is not a duplicate). */
  readonly byId: Map<string, CandidateOutcome>;
  /** The feedback that became votes or waits, in topic order per partition. */
  readonly taken: readonly {
    candidateId: string;
    annotatorId: string;
    label: number;
    outcome: FeedbackOutcome;
  }[];
}

/** Reads every message of `topic` up to its end at the time of the call. */
export async function readTopic(brokers: string[], topic: string): Promise<ReadMessage[]> {
  const kafka = kafkaClient(brokers, uniqueTopic('reader'));
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
  const want = new Map(
    ends.filter((p) => Number(p.high) > Number(p.low)).map((p) => [p.partition, Number(p.high)]),
  );
  const out: ReadMessage[] = [];
  if (want.size === 0) return out;
  const consumer = kafka.consumer({ groupId: uniqueTopic('reader'), maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const reached = new Map<number, number>();
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    await consumer.run({
      eachMessage: ({ partition, message }: { partition: number; message: KafkaMessage }) => {
        const offset = Number(message.offset);
        if (offset < (want.get(partition) ?? 0))
          out.push({ partition, offset, key: message.key, value: message.value });
        reached.set(partition, Math.max(reached.get(partition) ?? 0, offset + 1));
        if ([...want].every(([p, end]) => (reached.get(p) ?? 0) >= end)) finish();
        return Promise.resolve();
      },
    });
    const timeout = setTimeout(() => finish(), 60_000);
    await finished;
    clearTimeout(timeout);
    for (const [p, end] of want)
      assert.ok((reached.get(p) ?? 0) >= end, `${topic}[${p}] read to ${reached.get(p) ?? 0} of ${end}`);
  } finally {
    await consumer.disconnect();
  }
  return out.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}

export interface AccountOptions {
  readonly brokers: string[];
  readonly topics: { readonly candidates: string; readonly feedback: string; readonly deadLetter: string };
  /** The final checkpoint (the daemon stopped). */
  readonly checkpoint: CheckpointSnapshot;
  /** The log lines of every daemon run of the scenario. */
  readonly logs: readonly unknown[];
  /** The configured number of classes (to read feedback). */
  readonly numClasses?: number;
}

/** Gives every candidate and feedback message on the topics its outcome (see the module). */
export async function account(options: AccountOptions): Promise<Accounting> {
  const { brokers, topics, checkpoint } = options;
  const [candidateMessages, feedbackMessages, deadMessages] = await Promise.all([
    readTopic(brokers, topics.candidates),
    readTopic(brokers, topics.feedback),
    readTopic(brokers, topics.deadLetter),
  ]);
  const dead = new Map<string, string>();
  for (const m of deadMessages) {
    const d = parseDeadLetter(m.value);
    assert.ok(d.ok, `a dead letter that does not parse: ${d.ok ? '' : d.error}`);
    dead.set(`${d.value.source.topic}:${d.value.source.partition}:${d.value.source.offset}`, d.value.reason);
  }
  const pooled = new Set(checkpoint.pool.candidates.map((c) => c.id));
  const labeled = new Map(checkpoint.labels.records.map((r) => [r.id, r]));
  const dropped = new Map<string, 'expired' | 'evicted'>();
  for (const e of eventsOf(options.logs, candidatesDroppedEvent))
    for (const id of e.ids) dropped.set(id, e.reason);

  const candidates = new Map<string, { id: string | undefined; outcome: CandidateOutcome }>();
  const byId = new Map<string, CandidateOutcome>();
  for (const m of candidateMessages) {
    const at = `${m.partition}:${m.offset}`;
    const reason = dead.get(`${topics.candidates}:${at}`);
    const parsed = parseCandidate(m.value, { limits: GENEROUS_LIMITS, key: m.key, keepSourceRefs: false });
    const id = parsed.ok ? parsed.value.id : undefined;
    let outcome: CandidateOutcome;
    if (reason !== undefined) outcome = `dead-lettered:${reason}`;
    else if (id === undefined) outcome = 'lost';
    else if (pooled.has(id)) outcome = 'pooled';
    else if (labeled.has(id)) outcome = 'labeled';
    else if (dropped.has(id)) outcome = dropped.get(id)!;
    else outcome = 'lost';
    if (id !== undefined && byId.has(id) && outcome !== 'lost' && !outcome.startsWith('dead-lettered'))
      outcome = byId.get(id) === outcome ? 'duplicate' : outcome;
    if (id !== undefined && outcome !== 'duplicate') byId.set(id, outcome);
    candidates.set(at, { id, outcome });
  }

  const pendingVotes = new Set(
    checkpoint.labels.pending.map((p) => `${p.feedback.candidateId}\u0000${p.feedback.annotatorId}`),
  );
  const feedback = new Map<string, { candidateId: string | undefined; outcome: FeedbackOutcome }>();
  const taken: { candidateId: string; annotatorId: string; label: number; outcome: FeedbackOutcome }[] = [];
  for (const m of feedbackMessages) {
    const at = `${m.partition}:${m.offset}`;
    const reason = dead.get(`${topics.feedback}:${at}`);
    const parsed = parseFeedback(m.value, { numClasses: options.numClasses ?? 2, key: m.key });
    const candidateId = parsed.ok ? parsed.value.candidateId : undefined;
    let outcome: FeedbackOutcome = 'lost';
    if (reason !== undefined) outcome = `dead-lettered:${reason}`;
    else if (parsed.ok) {
      const record = labeled.get(parsed.value.candidateId);
      if (record?.votes.some((v) => v.annotatorId === parsed.value.annotatorId)) outcome = 'vote';
      else if (pendingVotes.has(`${parsed.value.candidateId}\u0000${parsed.value.annotatorId}`))
        outcome = 'waiting';
    }
    feedback.set(at, { candidateId, outcome });
    if (parsed.ok && (outcome === 'vote' || outcome === 'waiting'))
      taken.push({
        candidateId: parsed.value.candidateId,
        annotatorId: parsed.value.annotatorId,
        label: parsed.value.label,
        outcome,
      });
  }
  return { candidates, feedback, byId, taken };
}

/** Counts of outcomes, for the report table. */
export function tally(acc: Accounting): {
  candidatesSent: number;
  candidatesAccounted: number;
  candidates: Record<string, number>;
  feedbackSent: number;
  feedbackAccounted: number;
  feedback: Record<string, number>;
} {
  const count = <T extends string>(outcomes: Iterable<{ outcome: T }>) => {
    const out: Record<string, number> = {};
    for (const { outcome } of outcomes) out[outcome] = (out[outcome] ?? 0) + 1;
    return out;
  };
  const c = count(acc.candidates.values());
  const f = count(acc.feedback.values());
  return {
    candidatesSent: acc.candidates.size,
    candidatesAccounted: acc.candidates.size - (c['lost'] ?? 0),
    candidates: c,
    feedbackSent: acc.feedback.size,
    feedbackAccounted: acc.feedback.size - (f['lost'] ?? 0),
    feedback: f,
  };
}

/** Asserts that no message is lost; the message names every lost one (by position and id). */
export function assertNothingLost(acc: Accounting): void {
  const lostCandidates = [...acc.candidates].filter(([, v]) => v.outcome === 'lost');
  const lostFeedback = [...acc.feedback].filter(([, v]) => v.outcome === 'lost');
  assert.deepEqual(
    {
      candidates: lostCandidates.map(([at, v]) => `${at} ${v.id ?? '(no id)'}`),
      feedback: lostFeedback.map(([at, v]) => `${at} for ${v.candidateId ?? '(no id)'}`),
    },
    { candidates: [], feedback: [] },
    `lost: ${lostCandidates.length} of ${acc.candidates.size} candidates, ${lostFeedback.length} of ${acc.feedback.size} feedback`,
  );
}
