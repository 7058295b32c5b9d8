/**
 * What the daemon reports: one typed event stream (`Daemon.events$`) that tests, the benchmark,
 * the metrics and the log observe. The log is written from it (log-writer.ts: one pino line per
 * event, `event` naming it, at the level and with the message of {@link EVENT_LOG}); the metrics
 * are counted from it (metrics-writer.ts). Events of level `none` are for the metrics alone (one
 * per chunk or call, never one per message in the log).
 *
 * Ids in events are opaque ids (candidate, request, version); source references never appear.
 */
import type { DropReason } from '../../core/pool.js';
import type { DeadLetterReason } from '../../messages/index.js';

/** The fields of every event, by its name. */
export interface EventFields {
  // --- intake ---
  ingested: { count: number };
  'dead-letter': { reason: DeadLetterReason; topic: string; partition: number; offset: number };
  'candidates-dropped': { reason: DropReason; count: number; ids: string[] };
  'candidate-refused': { reason: string };
  feedback: { kind: 'requested' | 'unsolicited' | 'duplicate' | 'conflict' | 'pending' | 'unknown' };
  'label-answered': { seconds: number; label: number };
  'label-changed': { from: number; to: number; trained: boolean };
  'request-expired': { count: number };
  paused: { pool: number };
  resumed: { pool: number };
  lag: { topic: string; partition: number; behind: number };
  poison: { topic: string; partition: number; offset: number; err: unknown };
  // --- scoring and serving ---
  'scoring-batch': { seconds: number; patches: number; fromCache: number };
  'scoring-latency': { seconds: number[] };
  'scoring-failed': { err: unknown };
  'rescore-progress': { ratio: number };
  rescored: { version: string; candidates: number; seconds: number };
  'rescore-failed': { err: unknown };
  serving: { version: string; holdoutAuc: number | null };
  'model-refused': { version: string; reason?: 'lineage' | 'artifact'; m0?: string | null; err?: unknown };
  // --- requests and windows ---
  requests: { count: number; version: string };
  'requests-published': { count: number };
  'requests-resent': { count: number };
  'publish-failed': { what: 'requests' | 'version'; withdrawn?: number; err: unknown };
  window: {
    version: string;
    parent: string;
    status: 'promoted' | 'rejected';
    trigger: string;
    q: number;
    h: number;
    train: number;
    holdoutAuc: number | null;
    parentHoldoutAuc: number | null;
    seconds: number;
  };
  'window-failed': { err: unknown };
  'window-abandoned': { seq: number; reason: 'shutdown' | 'stepped-down' };
  'window-reused': { version: string };
  // --- durability ---
  checkpoint: { seconds: number };
  'checkpoint-failed': { err: unknown };
  'commit-refused': { err: unknown };
  'offsets-committed': { offsets: { topic: string; partition: number; offset: number }[] };
  'offsets-reconciled': { topic: string; partition: number; committed: number | null; position: number };
  'dead-letter-send-failed': { queued: number; err: unknown };
  // --- the brokers ---
  'partitions-assigned': { partitions: string[] };
  'broker-outage': { cause: string };
  'broker-outage-ended': { durationMs: number };
  outage: { err: Error };
  'consumer-crash': { err: unknown; restart: boolean };
  // --- lifecycle ---
  gauges: {
    pool: number;
    poolBytes: number;
    outstanding: number;
    deadLettersUnsent: number;
    featureCacheBytes?: number;
    featureCacheCandidates?: number;
  };
  fatal: { err: Error };
  // --- scale-out ---
  coordinator: { role: 'gained' | 'lost'; term: number; instance: string };
  'coordinator-fenced': { term: number; instance: string; err: unknown };
  'shortlist-refused': { instance: string; entries: number; versions: string[] };
  'coordinator-writer-lost': { term: number; instance: string; err: unknown };
  'coordinator-shortlists': { fresh: number };
  'ledger-write-failed': { err: unknown };
  'shortlist-failed': { err: unknown };
  'pool-handed-over': { candidates: number };
  'pool-rebuild': { partition: number; from: number; committed: number };
  'rewind-failed': { err: unknown };
  'catch-up-failed': { err: unknown };
  // --- start and stop (the composition's, not the step's) ---
  'http-started': { url: string };
  backend: { backend: string; scoringNice?: number | { error: string } };
  m0: { version: string; inputShape: string; path: string };
  'foreign-versions': { count: number; m0: string; sentence: string };
  restored: {
    servedVersion: string;
    outbox: number;
    labeled: number;
    holdout: number;
    pool: number;
    outstanding: number;
    windowSeq: number;
    sha: string;
  };
  started: { servedVersion: string; pool: number };
  stopping: { reason: string };
  stopped: { forced: boolean };
  'shutdown-step-failed': { step: string; err: unknown };
}

export type EventName = keyof EventFields;

/** One event: its name as `type`, and its fields. */
export type DaemonEvent = { [K in EventName]: { readonly type: K } & Readonly<EventFields[K]> }[EventName];

/** The event named `K`. */
export type EventOf<K extends EventName> = Extract<DaemonEvent, { type: K }>;

export type LogLevel = 'none' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/** How each event is logged: its level and message. */
export const EVENT_LOG: {
  readonly [K in EventName]: { level: LogLevel; msg: string | ((e: EventOf<K>) => string) };
} = {
  ingested: { level: 'none', msg: '' },
  'dead-letter': { level: 'warn', msg: 'message dead-lettered' },
  'candidates-dropped': {
    level: 'info',
    msg: (e) =>
      e.reason === 'expired'
        ? 'candidates left the pool unlabeled: their pool TTL ran out'
        : 'candidates left the pool unlabeled: evicted by the pool bound',
  },
  'candidate-refused': { level: 'debug', msg: 'candidate not admitted to the pool' },
  feedback: { level: 'none', msg: '' },
  'label-answered': { level: 'none', msg: '' },
  'label-changed': { level: 'info', msg: 'a candidate label changed' },
  'request-expired': { level: 'none', msg: '' },
  paused: { level: 'info', msg: 'candidate intake paused (pool high watermark)' },
  resumed: { level: 'info', msg: 'candidate intake resumed' },
  lag: { level: 'none', msg: '' },
  poison: { level: 'error', msg: 'message failed in processing' },
  'scoring-batch': { level: 'none', msg: '' },
  'scoring-latency': { level: 'none', msg: '' },
  'scoring-failed': { level: 'error', msg: 'scoring a micro-batch failed' },
  'rescore-progress': { level: 'none', msg: '' },
  rescored: { level: 'info', msg: 'pool rescored' },
  'rescore-failed': { level: 'error', msg: 'rescoring failed' },
  serving: { level: 'info', msg: 'model version served' },
  'model-refused': {
    level: 'error',
    msg: (e) =>
      e.reason === 'lineage'
        ? `version ${e.version} descends from another M0 than ACFT_MODEL_M0_PATH's: not served`
        : 'version refused; the last good version keeps serving',
  },
  requests: { level: 'info', msg: 'labeling requests issued' },
  'requests-published': { level: 'none', msg: '' },
  'requests-resent': {
    level: 'warn',
    msg: 'labeling requests whose send was not confirmed before the stop are sent again',
  },
  'publish-failed': {
    level: 'error',
    msg: (e) =>
      e.what === 'requests'
        ? 'labeling requests not published; they are withdrawn and their candidates asked again later'
        : 'model version not published yet; it stays in the outbox and is sent again',
  },
  window: { level: 'info', msg: (e) => `model version ${e.status}` },
  'window-failed': { level: 'error', msg: 'fine-tuning window failed; it will be planned again' },
  'window-abandoned': { level: 'info', msg: 'fine-tuning window abandoned; it will be planned again' },
  'window-reused': { level: 'info', msg: 'window version found in the model store; not trained again' },
  checkpoint: { level: 'none', msg: '' },
  'checkpoint-failed': { level: 'error', msg: 'checkpoint failed: it is tried again' },
  'commit-refused': {
    level: 'warn',
    msg: "offset commit refused: this instance is not the group's member it was (its session ended); the partitions' next owner reads on from their last commit",
  },
  'offsets-committed': { level: 'debug', msg: 'offsets committed' },
  'offsets-reconciled': {
    level: 'info',
    msg: (e) =>
      e.committed !== null && e.committed > e.position
        ? "the group's committed offset is past the state's position: reading again from the state's"
        : "the group's committed offset is behind the state's position: reading on from the state's",
  },
  'dead-letter-send-failed': {
    level: 'warn',
    msg: 'dead letters not sent yet; they stay queued (and checkpointed) and are sent again',
  },
  'partitions-assigned': { level: 'info', msg: 'consumer group joined' },
  'broker-outage': { level: 'warn', msg: 'Kafka brokers unreachable: not ready until they answer again' },
  'broker-outage-ended': {
    level: 'info',
    msg: (e) => `Kafka brokers answer again after ${(e.durationMs / 1000).toFixed(1)} s`,
  },
  outage: { level: 'fatal', msg: (e) => e.err.message },
  'consumer-crash': { level: 'error', msg: 'consumer crashed' },
  gauges: { level: 'none', msg: '' },
  fatal: { level: 'fatal', msg: (e) => e.err.message },
  coordinator: {
    level: 'info',
    msg: (e) =>
      e.role === 'gained'
        ? 'this instance coordinates selection, windows and versions'
        : 'this instance no longer coordinates',
  },
  'coordinator-fenced': {
    level: 'warn',
    msg: 'another instance coordinates now: write refused, stepping down',
  },
  'coordinator-writer-lost': { level: 'error', msg: 'transaction not ended: stepping down' },
  'coordinator-shortlists': { level: 'none', msg: '' },
  'ledger-write-failed': {
    level: 'warn',
    msg: 'labeled entries not written to the ledger yet; their feedback is held and they are written again',
  },
  'shortlist-failed': { level: 'warn', msg: 'shortlist not published' },
  'shortlist-refused': {
    level: 'warn',
    msg: 'shortlist entries scored by a version not on model-versions: not drawn from',
  },
  'pool-handed-over': { level: 'info', msg: 'candidates of revoked partitions left the pool' },
  'pool-rebuild': { level: 'info', msg: 'replaying the candidates of the pool TTL' },
  'rewind-failed': { level: 'error', msg: 'pool rebuild failed; reading on from the committed offset' },
  'catch-up-failed': { level: 'error', msg: 'take-over failed (writer or catch-up)' },
  'http-started': { level: 'info', msg: 'metrics and health endpoints up' },
  backend: { level: 'info', msg: 'tfjs backend chosen' },
  m0: {
    level: 'info',
    msg: (e) => `M0 ${e.version} (ACFT_MODEL_M0_PATH=${e.path}) takes ${e.inputShape} patches`,
  },
  'foreign-versions': { level: 'warn', msg: (e) => e.sentence },
  restored: { level: 'info', msg: 'state restored' },
  started: { level: 'info', msg: 'acft daemon running' },
  stopping: { level: 'info', msg: 'acft daemon stopping' },
  stopped: { level: 'info', msg: (e) => (e.forced ? 'acft daemon stopped (forced)' : 'acft daemon stopped') },
  'shutdown-step-failed': { level: 'error', msg: (e) => `shutdown step '${e.step}' failed` },
};

/** An event's log level: a committed-past-position reconciliation is a warning, not news. */
export function eventLevel(event: DaemonEvent): LogLevel {
  if (event.type === 'offsets-reconciled' && event.committed !== null && event.committed > event.position)
    return 'warn';
  return EVENT_LOG[event.type].level;
}

/** An event's log message. */
export function eventMessage(event: DaemonEvent): string {
  const msg = EVENT_LOG[event.type].msg as string | ((e: DaemonEvent) => string);
  return typeof msg === 'function' ? msg(event) : msg;
}
