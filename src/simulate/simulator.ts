/**
 * The hospital simulator (`acft simulate`): the other side of the daemon's topics.
 *
 * - Streams the candidates of a task's pool split (Fashion-MNIST shirts among other tops by
 *   default) into `candidates` at a set rate, in a seeded order, keyed by candidate id.
 * - Answers each labeling request as an oracle radiologist after a delay (plus optional jitter),
 *   optionally with label noise, with feedback keyed by candidate id carrying the request id.
 *   Requests are consumed in a consumer group with manual commits: an offset is committed only
 *   once its answer is produced, so a request whose answer was still waiting when the simulator
 *   stopped is answered by the next run of the same group.
 * - Optionally labels a share of the streamed candidates unasked, right after sending them
 *   (closed-loop CAD, source 'cad-closed-loop').
 * - Reads `model-versions`, and measures each promoted version whose artifact is a readable local
 *   directory on its own evaluation set (optional: it needs tfjs), reporting it next to the
 *   daemon's hold-out AUC.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Partitioners, type Consumer, type EachMessagePayload, type Kafka, type Producer } from 'kafkajs';
import { emptyOffsets, committable, done, markCommitted, track } from '../core/offsets.js';
import { UPRIGHT_SPEC, resolveAugmentationSpec, type AugmentationSpec } from '../core/patches.js';
import { createRng, deriveSeed } from '../core/rng.js';
import { loadFashionMnist } from '../data/image-set.js';
import { buildTask, type Task, type TaskSpec } from '../data/task.js';
import {
  encodeCandidate,
  encodeFeedback,
  parseLabelingRequest,
  parseModelVersion,
  type FeedbackSource,
  type ModelVersionMessage,
} from '../messages/index.js';
import type { BackendRequest } from '../model/backend.js';
import { readableArtifactDir } from './artifact.js';
import { buildCandidate, streamOrder, type CandidateMode } from './candidates.js';
import type { Evaluator } from './evaluation.js';
import { createKafkaClient, ensureTopics, type SimulatorKafkaOptions } from './kafka-client.js';
import { createOracle, isUnsolicited, type Oracle, type OracleAnswer } from './oracle.js';
import { formatVersionReport, type SimulatorStats, type VersionReport } from './report.js';

/** The default task: shirts (6) among T-shirts, pullovers and coats (0, 2, 4), 1 : 9. */
export const DEFAULT_TASK_SPEC: Readonly<Omit<TaskSpec, 'seed'>> = Object.freeze({
  positive: [6],
  negative: [0, 2, 4],
  ratio: 9,
});

/** The annotator id of the simulated radiologist. */
export const DEFAULT_ANNOTATOR_ID = 'sim-radiologist-1';

/** Options of {@link startSimulator}; only `kafka` is required. */
export interface SimulatorOptions {
  /** Brokers, client id, topics, TLS and SASL: the daemon's `kafka.*` settings. */
  kafka: SimulatorKafkaOptions;
  /** Consumer group of the labeling requests; model versions use `<groupId>.versions`. Default 'acft-simulator'. */
  groupId?: string;
  /** The task; default: built from Fashion-MNIST with `taskSpec` and `seed`. */
  task?: Task;
  /** Default {@link DEFAULT_TASK_SPEC}. */
  taskSpec?: Omit<TaskSpec, 'seed'>;
  /** Seed of the task's subsampling, the stream order, the label noise and the jitter. Default 1. */
  seed?: number;
  /** Candidates per second. Default 20. */
  ratePerSecond?: number;
  /** Candidates to send in all; default (and at most) the whole pool split. */
  total?: number;
  /** 'image' (default) or 'patches' (made here with `augmentation` and `patchSeed`). */
  mode?: CandidateMode;
  /** The daemon's augmentation for image candidates; for 'patches' mode and evaluation. Default upright (m 12). */
  augmentation?: AugmentationSpec;
  /** The daemon's `scoring.patchSeed`. Default 1. */
  patchSeed?: number;
  /** Delay before a request is answered. Default 500 ms. */
  answerDelayMs?: number;
  /** Extra delay drawn uniformly from [0, jitter) per answer. Default 0. */
  answerJitterMs?: number;
  /** Probability in [0, 1] that a label is wrong. Default 0. */
  labelNoise?: number;
  /** Share in [0, 1] of streamed candidates labeled unasked right after being sent. Default 0. */
  unsolicitedShare?: number;
  /** Default {@link DEFAULT_ANNOTATOR_ID}. */
  annotatorId?: string;
  /** Measure promoted versions (loads tfjs). Default false. */
  evaluate?: boolean;
  /** Candidates of the validation split in the evaluation set. Default 1000. */
  evalSize?: number;
  /** tfjs backend of the evaluation. Default 'auto'. */
  backend?: BackendRequest;
  /** Base of relative artifact locations. Default the working directory. */
  artifactRoot?: string;
  /** Create missing topics as the daemon does (else a missing topic is an error). Default false. */
  createMissingTopics?: boolean;
  /** A new requests group starts at the oldest request (default true) rather than the newest. */
  requestsFromBeginning?: boolean;
  /** A new versions group starts at the oldest version rather than the newest (default false). */
  versionsFromBeginning?: boolean;
  /** Human-readable lines (version reports, warnings, errors). Default: none. */
  log?: (line: string) => void;
  /** Called once per model version seen, after its evaluation if there is one. */
  onVersion?: (report: VersionReport) => void;
}

/** A running simulator. */
export interface Simulator {
  /** The task it streams and answers for. */
  readonly task: Task;
  /** The oracle radiologist (the true labels and the noise). */
  readonly oracle: Oracle;
  /** Resolves once every planned candidate is sent, or the simulator stopped. Never rejects. */
  readonly streamed: Promise<void>;
  stats(): SimulatorStats;
  /** Every version reported so far, oldest first (the last 1000). */
  versions(): VersionReport[];
  /**
   * Stops: no more candidates, waiting answers are dropped (left uncommitted), the evaluation in
   * progress is abandoned, offsets of answered requests are committed, and every client is
   * disconnected. Idempotent: every call returns the same promise. Never rejects.
   */
  stop(): Promise<void>;
}

/** Thrown by {@link startSimulator} for an option out of its domain; the message is one sentence. */
export class SimulatorOptionsError extends Error {
  readonly code = 'SIMULATOR_OPTIONS_INVALID';
  readonly retryable = false;
  override readonly name = 'SimulatorOptionsError';
}

const MAX_BATCH = 500;
const RETRY_MS = 1000;
const MAX_REPORTS = 1000;
const MAX_REMEMBERED_REQUESTS = 100_000;

function check(ok: boolean, message: string): void {
  if (!ok) throw new SimulatorOptionsError(message);
}

function validate(o: SimulatorOptions): void {
  check(o.kafka.brokers.length > 0, 'kafka.brokers must name at least one broker.');
  const rate = o.ratePerSecond ?? 20;
  check(Number.isFinite(rate) && rate > 0, `ratePerSecond must be a number > 0, got ${rate}.`);
  if (o.total !== undefined) {
    check(Number.isSafeInteger(o.total) && o.total >= 0, `total must be an integer >= 0, got ${o.total}.`);
  }
  for (const [name, v] of [
    ['answerDelayMs', o.answerDelayMs],
    ['answerJitterMs', o.answerJitterMs],
  ] as const) {
    if (v !== undefined) check(Number.isFinite(v) && v >= 0, `${name} must be a number >= 0, got ${v}.`);
  }
  for (const [name, v] of [
    ['labelNoise', o.labelNoise],
    ['unsolicitedShare', o.unsolicitedShare],
  ] as const) {
    if (v !== undefined) check(v >= 0 && v <= 1, `${name} must be a number in [0, 1], got ${v}.`);
  }
  if (o.seed !== undefined) check(Number.isSafeInteger(o.seed), `seed must be an integer, got ${o.seed}.`);
  if (o.evalSize !== undefined) {
    check(
      Number.isSafeInteger(o.evalSize) && o.evalSize >= 1,
      `evalSize must be an integer >= 1, got ${o.evalSize}.`,
    );
  }
  if (o.augmentation !== undefined) {
    try {
      resolveAugmentationSpec(o.augmentation);
    } catch (err) {
      throw new SimulatorOptionsError(`${(err as Error).message}.`);
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Connects to Kafka and starts streaming, answering and (optionally) evaluating. */
export async function startSimulator(options: SimulatorOptions): Promise<Simulator> {
  validate(options);
  const log = options.log ?? (() => undefined);
  const seed = options.seed ?? 1;
  const rate = options.ratePerSecond ?? 20;
  const answerDelayMs = options.answerDelayMs ?? 500;
  const answerJitterMs = options.answerJitterMs ?? 0;
  const unsolicitedShare = options.unsolicitedShare ?? 0;
  const annotatorId = options.annotatorId ?? DEFAULT_ANNOTATOR_ID;
  const augmentation = options.augmentation ?? UPRIGHT_SPEC;
  const patchSeed = options.patchSeed ?? 1;
  const groupId = options.groupId ?? 'acft-simulator';
  const topics = options.kafka.topics;

  const task =
    options.task ?? buildTask(await loadFashionMnist(), { ...(options.taskSpec ?? DEFAULT_TASK_SPEC), seed });
  const pool = task.pool;
  const labels = new Map<string, number>();
  pool.ids.forEach((id, i) => labels.set(id, pool.labels[i]!));
  const oracle = createOracle({
    labels,
    numClasses: task.numClasses,
    labelNoise: options.labelNoise ?? 0,
    seed,
  });
  const order = streamOrder(pool, seed);
  const planned = Math.min(options.total ?? order.length, order.length);
  if (options.total !== undefined && options.total > order.length) {
    log(`the pool holds ${order.length} candidates: streaming ${order.length}, not ${options.total}`);
  }

  let evaluator: Evaluator | undefined;
  if (options.evaluate === true) {
    const { createEvaluator } = await import('./evaluation.js');
    evaluator = await createEvaluator({
      task,
      size: options.evalSize ?? 1000,
      augmentation,
      patchSeed,
      backend: options.backend ?? 'auto',
    });
    log(
      `evaluating promoted versions on ${evaluator.size} validation candidates (tfjs backend ${evaluator.backend})`,
    );
  }

  const counters = {
    candidatesSent: 0,
    requestsReceived: 0,
    requestsUnknown: 0,
    requestsInvalid: 0,
    requestsDuplicate: 0,
    answersSent: 0,
    unsolicitedSent: 0,
    noisyLabels: 0,
    versionsPromoted: 0,
    versionsRejected: 0,
    versionsInvalid: 0,
    evaluations: 0,
    evaluationFailures: 0,
    errors: 0,
  };
  let streamFinished = false;
  let streamStartedAt: number | undefined;
  let streamEndedAt: number | undefined;
  let lastAuc: SimulatorStats['lastAuc'] = null;
  const reports: VersionReport[] = [];
  const startedAt = performance.now();
  let stopping = false;
  const abort = new AbortController();

  const kafka: Kafka = createKafkaClient({ clientId: 'acft-simulator', ...options.kafka });
  const producer: Producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  const requestsConsumer: Consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 500 });
  const versionsConsumer: Consumer = kafka.consumer({ groupId: `${groupId}.versions`, maxWaitTimeInMs: 500 });
  for (const consumer of [requestsConsumer, versionsConsumer]) {
    consumer.on(consumer.events.CRASH, (event) => {
      counters.errors++;
      log(
        `consumer crashed${event.payload.restart ? ' (restarting)' : ''}: ${errorText(event.payload.error)}`,
      );
    });
  }

  /** Sleeps unless stopping; false when woken by stop(). */
  const pause = async (ms: number): Promise<boolean> => {
    try {
      await sleep(ms, undefined, { signal: abort.signal });
      return true;
    } catch {
      return false;
    }
  };

  const feedbackMessage = (
    candidateId: string,
    answer: OracleAnswer,
    source: FeedbackSource,
    requestId?: string,
  ) => ({
    key: candidateId,
    value: encodeFeedback({
      candidateId,
      label: answer.label,
      annotatorId,
      time: new Date().toISOString(),
      source,
      ...(requestId !== undefined ? { requestId } : {}),
    }),
  });

  // ---- candidates (and closed-loop feedback) --------------------------------------------------

  const stream = async (): Promise<void> => {
    let start = performance.now();
    streamStartedAt = start;
    while (!stopping && counters.candidatesSent < planned) {
      const sent = counters.candidatesSent;
      const due = Math.min(planned, Math.floor(((performance.now() - start) * rate) / 1000) + 1) - sent;
      if (due <= 0) {
        await pause(Math.max(1, start + (sent * 1000) / rate - performance.now()));
        continue;
      }
      const positions = order.slice(sent, sent + Math.min(due, MAX_BATCH));
      const candidates = positions.map((p) =>
        buildCandidate(task, pool, p, { mode: options.mode ?? 'image', augmentation, patchSeed }),
      );
      try {
        await producer.send({
          topic: topics.candidates,
          acks: -1,
          messages: candidates.map((c) => ({ key: c.id, value: encodeCandidate(c) })),
        });
      } catch (err) {
        counters.errors++;
        log(`sending candidates failed, retrying: ${errorText(err)}`);
        if (!(await pause(RETRY_MS))) break;
        // Resume the schedule from now rather than bursting to catch up.
        start = performance.now() - (sent * 1000) / rate;
        continue;
      }
      counters.candidatesSent += candidates.length;
      const unasked = candidates
        .filter((c) => isUnsolicited(c.id, unsolicitedShare, seed))
        .map((c) => ({ id: c.id, answer: oracle.answer(c.id)! }));
      if (unasked.length > 0) {
        try {
          await producer.send({
            topic: topics.feedback,
            acks: -1,
            messages: unasked.map((u) => feedbackMessage(u.id, u.answer, 'cad-closed-loop')),
          });
          counters.unsolicitedSent += unasked.length;
          counters.noisyLabels += unasked.filter((u) => u.answer.noisy).length;
        } catch (err) {
          counters.errors++;
          log(`sending ${unasked.length} closed-loop labels failed (dropped): ${errorText(err)}`);
        }
      }
    }
    streamEndedAt = performance.now();
    if (counters.candidatesSent >= planned) {
      streamFinished = true;
      log(`streamed all ${planned} candidates`);
    }
  };

  // ---- labeling requests -> answers --------------------------------------------------------------

  interface PendingAnswer {
    requestId: string;
    candidateId: string;
    answer: OracleAnswer;
    offsets: { topic: string; partition: number; offset: number }[];
    timer: NodeJS.Timeout | undefined;
  }
  const offsets = emptyOffsets();
  const pending = new Map<string, PendingAnswer>();
  const answered = new Set<string>();
  const inFlight = new Set<Promise<void>>();
  const jitter = createRng(deriveSeed('simulate-jitter', seed));
  let commitChain: Promise<void> = Promise.resolve();

  const commit = (): Promise<void> => {
    commitChain = commitChain.then(async () => {
      const ready = committable(offsets);
      if (ready.length === 0) return;
      try {
        await requestsConsumer.commitOffsets(
          ready.map((c) => ({ topic: c.topic, partition: c.partition, offset: String(c.offset) })),
        );
        markCommitted(offsets, ready);
      } catch (err) {
        // After a rebalance the partition may belong to another member: its commit is refused.
        counters.errors++;
        log(`committing request offsets failed: ${errorText(err)}`);
      }
    });
    return commitChain;
  };

  const remember = (requestId: string): void => {
    answered.add(requestId);
    if (answered.size > MAX_REMEMBERED_REQUESTS) {
      const oldest = answered.values().next().value;
      if (oldest !== undefined) answered.delete(oldest);
    }
  };

  const sendAnswer = async (p: PendingAnswer): Promise<void> => {
    p.timer = undefined;
    for (;;) {
      try {
        await producer.send({
          topic: topics.feedback,
          acks: -1,
          messages: [feedbackMessage(p.candidateId, p.answer, 'requested', p.requestId)],
        });
        break;
      } catch (err) {
        counters.errors++;
        log(`answering request ${p.requestId} failed${stopping ? '' : ', retrying'}: ${errorText(err)}`);
        if (stopping || !(await pause(RETRY_MS))) return; // left uncommitted: answered by the next run
      }
    }
    counters.answersSent++;
    if (p.answer.noisy) counters.noisyLabels++;
    pending.delete(p.requestId);
    remember(p.requestId);
    for (const o of p.offsets) done(offsets, o);
    await commit();
  };

  const schedule = (p: PendingAnswer): void => {
    const delay = answerDelayMs + (answerJitterMs > 0 ? jitter.next() * answerJitterMs : 0);
    p.timer = setTimeout(() => {
      const sending = sendAnswer(p).finally(() => inFlight.delete(sending));
      inFlight.add(sending);
    }, delay);
  };

  const onRequest = async ({ topic, partition, message }: EachMessagePayload): Promise<void> => {
    if (stopping) return;
    const position = { topic, partition, offset: Number(message.offset) };
    track(offsets, position);
    const request = parseLabelingRequest(message.value, { numClasses: task.numClasses });
    if (!request.ok) {
      counters.requestsInvalid++;
      log(
        `ignoring an invalid labeling request at ${topic}[${partition}]@${message.offset}: ${request.error}`,
      );
      done(offsets, position);
      await commit();
      return;
    }
    counters.requestsReceived++;
    const { requestId, candidateId } = request.value;
    const already = pending.get(requestId);
    if (already !== undefined || answered.has(requestId)) {
      counters.requestsDuplicate++;
      if (already !== undefined) already.offsets.push(position);
      else {
        done(offsets, position);
        await commit();
      }
      return;
    }
    const answer = oracle.answer(candidateId);
    if (answer === undefined) {
      counters.requestsUnknown++;
      done(offsets, position);
      await commit();
      return;
    }
    const p: PendingAnswer = { requestId, candidateId, answer, offsets: [position], timer: undefined };
    pending.set(requestId, p);
    schedule(p);
  };

  // ---- model versions -> evaluation ------------------------------------------------------------

  const seenVersions = new Set<string>();
  let waiting: ModelVersionMessage | undefined;
  let evaluating: Promise<void> | undefined;

  const reportOf = (v: ModelVersionMessage, evaluation: VersionReport['evaluation']): VersionReport => ({
    version: v.version,
    parent: v.parent,
    status: v.status,
    holdoutAuc: v.metrics.holdoutAuc,
    labels: v.counts.labeled + v.counts.holdout,
    artifactLocation: v.artifact.location,
    evaluation,
  });

  const emit = (report: VersionReport): void => {
    reports.push(report);
    if (reports.length > MAX_REPORTS) reports.shift();
    if (report.evaluation.kind === 'evaluated') {
      counters.evaluations++;
      if (lastAuc?.version === report.version) lastAuc = { ...lastAuc, evaluationAuc: report.evaluation.auc };
    } else if (report.evaluation.kind === 'failed') {
      counters.evaluationFailures++;
    }
    log(formatVersionReport(report));
    try {
      options.onVersion?.(report);
    } catch (err) {
      log(`the onVersion callback threw: ${errorText(err)}`);
    }
  };

  const evaluateVersion = async (v: ModelVersionMessage, ev: Evaluator): Promise<void> => {
    const where = await readableArtifactDir(v.artifact.location, options.artifactRoot ?? process.cwd());
    if (!where.ok) {
      emit(reportOf(v, { kind: 'failed', error: `artifact unreadable: ${where.reason}` }));
      return;
    }
    try {
      const result = await ev.evaluate(where.dir, v.artifact.sha256, () => stopping);
      emit(reportOf(v, { kind: 'evaluated', ...result }));
    } catch (err) {
      if (stopping) emit(reportOf(v, { kind: 'skipped', why: 'stopping' }));
      else {
        // ModelArtifactError is matched by name: importing model-store would load tfjs.
        const what =
          (err as Error | undefined)?.name === 'ModelArtifactError'
            ? 'artifact unreadable'
            : 'evaluation failed';
        emit(reportOf(v, { kind: 'failed', error: `${what}: ${errorText(err)}` }));
      }
    }
  };

  const drain = async (ev: Evaluator): Promise<void> => {
    while (waiting !== undefined && !stopping) {
      const v = waiting;
      waiting = undefined;
      await evaluateVersion(v, ev);
    }
    if (waiting !== undefined) emit(reportOf(waiting, { kind: 'skipped', why: 'stopping' }));
    waiting = undefined;
    evaluating = undefined;
  };

  const onVersion = ({ message }: EachMessagePayload): Promise<void> => {
    const parsed = parseModelVersion(message.value);
    if (!parsed.ok) {
      counters.versionsInvalid++;
      log(`ignoring an invalid model-version message: ${parsed.error}`);
      return Promise.resolve();
    }
    const v = parsed.value;
    if (seenVersions.has(v.version)) return Promise.resolve();
    seenVersions.add(v.version);
    if (v.status === 'rejected') {
      counters.versionsRejected++;
      emit(reportOf(v, { kind: 'skipped', why: 'rejected' }));
      return Promise.resolve();
    }
    counters.versionsPromoted++;
    lastAuc = {
      version: v.version,
      holdoutAuc: v.metrics.holdoutAuc,
      evaluationAuc: null,
      labels: v.counts.labeled + v.counts.holdout,
    };
    if (evaluator === undefined) {
      emit(reportOf(v, { kind: 'skipped', why: 'evaluation off' }));
      return Promise.resolve();
    }
    if (waiting !== undefined) emit(reportOf(waiting, { kind: 'skipped', why: 'superseded' }));
    waiting = v;
    evaluating ??= drain(evaluator);
    return Promise.resolve();
  };

  // ---- start and stop --------------------------------------------------------------------------

  const created = await ensureTopics(kafka, topics, options.createMissingTopics === true);
  if (created.length > 0) log(`created topics ${created.join(', ')}`);
  const connected: { disconnect(): Promise<void> }[] = [];
  try {
    await producer.connect();
    connected.push(producer);
    await requestsConsumer.connect();
    connected.push(requestsConsumer);
    await requestsConsumer.subscribe({
      topics: [topics.labelingRequests],
      fromBeginning: options.requestsFromBeginning ?? true,
    });
    await versionsConsumer.connect();
    connected.push(versionsConsumer);
    await versionsConsumer.subscribe({
      topics: [topics.modelVersions],
      fromBeginning: options.versionsFromBeginning ?? false,
    });
    // run() resolves once the consumer has joined its group.
    await requestsConsumer.run({ autoCommit: false, eachMessage: onRequest });
    await versionsConsumer.run({ eachMessage: onVersion });
  } catch (err) {
    for (const client of connected.reverse()) await client.disconnect().catch(() => undefined);
    throw err;
  }

  const streamed = stream().catch((err: unknown) => {
    counters.errors++;
    log(`the candidate stream stopped: ${errorText(err)}`);
  });

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      stopping = true;
      abort.abort();
      const step = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
        try {
          await fn();
        } catch (err) {
          log(`stopping: ${what} failed: ${errorText(err)}`);
        }
      };
      await step('the candidate stream', () => streamed);
      for (const p of pending.values()) {
        if (p.timer !== undefined) clearTimeout(p.timer);
      }
      await step('answers in flight', () => Promise.allSettled([...inFlight]));
      await step('the last commit', commit);
      await step('disconnecting the requests consumer', () => requestsConsumer.disconnect());
      await step('the evaluation', () => evaluating ?? Promise.resolve());
      await step('disconnecting the versions consumer', () => versionsConsumer.disconnect());
      await step('disconnecting the producer', () => producer.disconnect());
    })());

  return {
    task,
    oracle,
    streamed,
    stats: () => ({
      ...counters,
      candidatesPlanned: planned,
      streamFinished,
      answersPending: pending.size,
      lastAuc,
      elapsedMs: performance.now() - startedAt,
      streamMs: streamStartedAt === undefined ? 0 : (streamEndedAt ?? performance.now()) - streamStartedAt,
    }),
    versions: () => [...reports],
    stop,
  };
}
