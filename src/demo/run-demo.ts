/**
 * `acft demo`: the whole loop on one machine, then a report.
 *
 * 1. A real Kafka broker (acquireBroker: KAFKA_BROKERS, else Testcontainers, else the embedded
 *    Kafka 3.9 JVM), the daemon in this process (its scoring and training in worker threads), a
 *    watcher on the labeling-requests and model-versions topics, and the hospital simulator
 *    (Fashion-MNIST shirts among other tops, an oracle radiologist, evaluation of every promoted
 *    version on a fixed evaluation set).
 * 2. A live status line until the daemon has published a version with the asked number of labels.
 * 3. Everything stopped in reverse order (simulator, watcher, daemon, broker), also on Ctrl-C.
 * 4. Offline: versions the simulator did not measure are measured on the same evaluation set; the
 *    pool is scored with the last served version for the gallery; random selection (RFT(LQ)) runs
 *    for as many labels on the same candidates, evaluation set, m and fine-tuning settings.
 * 5. demo-output/report.html (self-contained) and demo-output/demo.json.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { alc } from '../core/metrics.js';
import {
  resolveConfig,
  augmentationSpecOf,
  fineTuneOptionsOf,
  scoreOptionsOf,
  type Config,
} from '../config/index.js';
import { Daemon } from '../daemon/daemon.js';
import { loadFashionMnist } from '../data/image-set.js';
import { buildTask, type Task } from '../data/task.js';
import { acquireBroker, type AcquiredBroker } from '../kafka/broker-source.js';
import { parseLabelingRequest, parseModelVersion, type ModelVersionMessage } from '../messages/index.js';
import type { BackendRequest } from '../model/backend.js';
import { createLogger } from '../observability/logger.js';
import { streamOrder } from '../simulate/candidates.js';
import type { VersionReport } from '../simulate/report.js';
import { DEFAULT_TASK_SPEC, startSimulator, type Simulator } from '../simulate/simulator.js';
import { BaselineAbortedError, runBaselineInWorker } from './baseline.js';
import { DemoError, brokerUnavailable, brokerUnreachable, daemonFailed } from './errors.js';
import { probeBrokers } from '../daemon/kafka-client.js';
import { buildGallery, type Gallery } from './gallery.js';
import type { ProgressLine } from './progress.js';
import { renderReport } from './report.js';
import {
  resultJson,
  type BaselineSummary,
  type CurvePoint,
  type DemoResult,
  type DemoVersion,
} from './result.js';
import { Cleanups } from '../support/cleanups.js';

export interface DemoOptions {
  /** Stop once the daemon has published a version trained with this many labels. */
  labels: number;
  b: number;
  m: number;
  epochs: number;
  /** Candidates per second, and how many in all. */
  rate: number;
  candidates: number;
  answerDelayMs: number;
  evalSize: number;
  seed: number;
  /** Where report.html, demo.json and run-<time>/ go. */
  out: string;
  /** The daemon's /metrics port; undefined: 9464 when free, else any free port. */
  httpPort: number | undefined;
  backend: BackendRequest;
  /** M0 directory (default: the bundled one). */
  m0?: string;
  baseline: boolean;
  /** Give up waiting for the labels after this long (the report shows what there is). */
  maxMinutes: number;
  /** Candidates at each end of the gallery. */
  galleryCount: number;
}

export interface DemoOutcome {
  result: DemoResult;
  reportPath: string;
  jsonPath: string;
}

/** Thrown when Ctrl-C stopped the demo (everything was shut down). */
export class DemoInterruptedError extends Error {
  override readonly name = 'DemoInterruptedError';
}

const DEFAULT_HTTP_PORT = 9464;
const CLEANUP_STEP_TIMEOUT_MS = 30_000;

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function brokerKindText(broker: AcquiredBroker): string {
  switch (broker.kind) {
    case 'env':
      return 'your brokers (KAFKA_BROKERS)';
    case 'testcontainers':
      return 'a Kafka container (Testcontainers)';
    case 'embedded':
      return 'an embedded Kafka 3.9 broker (a JVM from Maven Central jars)';
  }
}

function demoConfig(o: DemoOptions, runId: string, runDir: string, brokers: string[], port: number): Config {
  const topic = (name: string) => `${runId}.${name}`;
  return resolveConfig({
    env: {},
    overrides: {
      kafka: {
        brokers,
        clientId: runId,
        groupId: `${runId}-daemon`,
        topics: {
          candidates: topic('candidates'),
          feedback: topic('feedback'),
          labelingRequests: topic('labeling-requests'),
          modelVersions: topic('model-versions'),
          deadLetter: topic('dead-letter'),
          coordination: topic('coordination'),
        },
      },
      selection: { b: o.b, seed: o.seed },
      scoring: { m: o.m },
      training: { epochs: o.epochs, seed: o.seed },
      model: { storeDir: path.join(runDir, 'models'), ...(o.m0 !== undefined ? { m0Path: o.m0 } : {}) },
      state: { checkpointDir: path.join(runDir, 'state') },
      http: { port },
      log: { level: 'info' },
      backend: o.backend,
    },
  });
}

function auc(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(3);
}

function minutes(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** Runs the demo; throws DemoError for what the user can fix, DemoInterruptedError after Ctrl-C. */
export async function runDemo(o: DemoOptions, ui: ProgressLine, signal: AbortSignal): Promise<DemoOutcome> {
  const t0 = Date.now();
  const startedAt = new Date(t0).toISOString();
  const phases: Record<string, number> = {};
  let phaseStart = t0;
  const endPhase = (name: string) => {
    const now = Date.now();
    phases[name] = (now - phaseStart) / 1000;
    phaseStart = now;
  };
  const out = path.resolve(o.out);
  const runDir = path.join(out, `run-${startedAt.replace(/[:.]/g, '-')}`);
  try {
    await mkdir(runDir, { recursive: true });
  } catch (error) {
    throw new DemoError(
      `Cannot write to ${out} (${(error as Error).message}): pass --out a directory you can write to.`,
      { cause: error },
    );
  }
  const interrupted = () => {
    if (signal.aborted) throw new DemoInterruptedError('interrupted');
  };

  ui.log('Loading Fashion-MNIST (shirts among T-shirts, pullovers and coats, 1 : 9)...');
  const set = await loadFashionMnist();
  const task = buildTask(set, { ...DEFAULT_TASK_SPEC, seed: o.seed });
  endPhase('data');
  interrupted();

  const cleanups = new Cleanups(CLEANUP_STEP_TIMEOUT_MS);
  const files: WriteStream[] = [];
  const stopAll = async () => {
    if (cleanups.size > 0) ui.log('Stopping the simulator, the daemon and the broker...');
    await cleanups.runAll((line) => ui.log(`while stopping: ${line}`));
    await Promise.all(files.map((f) => new Promise((resolve) => f.end(resolve))));
  };
  let live: Awaited<ReturnType<typeof runLive>>;
  try {
    live = await runLive(o, ui, signal, task, runDir, cleanups, files, endPhase);
  } catch (error) {
    ui.done();
    await stopAll();
    throw error;
  }
  ui.done();
  await stopAll();
  endPhase('shutdown');
  interrupted();

  // ---- offline: measure what the simulator did not, the gallery, the random baseline ----------
  const { config, reports, messages, requested, streamed } = live;
  const augmentation = augmentationSpecOf(config.scoring);
  const patchSeed = config.scoring.patchSeed;
  const unmeasured = messages.filter((m) => reports.get(m.version)?.evaluation.kind !== 'evaluated');
  const laterAuc = new Map<string, number | null>();
  if (unmeasured.length > 0) {
    ui.log(`Measuring ${unmeasured.length} version(s) the simulator did not (rejected or superseded)...`);
    const { createEvaluator } = await import('../simulate/evaluation.js');
    const evaluator = await createEvaluator({
      task,
      size: o.evalSize,
      augmentation,
      patchSeed,
      backend: o.backend,
    });
    for (const m of unmeasured) {
      // tfjs computes synchronously: give the event loop a turn so that Ctrl-C is seen.
      await new Promise((resolve) => setImmediate(resolve));
      interrupted();
      try {
        laterAuc.set(m.version, (await evaluator.evaluate(m.artifact.location, m.artifact.sha256)).auc);
      } catch (error) {
        ui.log(`could not measure ${m.version}: ${(error as Error).message}`);
      }
    }
  }
  const versions: DemoVersion[] = messages.map((m) => {
    const report = reports.get(m.version);
    const simAuc = report?.evaluation.kind === 'evaluated' ? report.evaluation.auc : undefined;
    const later = laterAuc.get(m.version);
    return {
      version: m.version,
      parent: m.parent,
      status: m.status,
      labels: m.counts.labeled + m.counts.holdout,
      q: m.counts.q,
      h: m.counts.h,
      trained: m.trainedOn.length,
      holdout: m.counts.holdout,
      holdoutAuc: m.metrics.holdoutAuc,
      parentHoldoutAuc: m.metrics.parentHoldoutAuc,
      evaluationAuc: simAuc ?? later ?? null,
      evaluatedBy: simAuc !== undefined ? 'simulator' : later !== undefined ? 'demo' : null,
      windowSeconds: (Date.parse(m.time) - Date.parse(m.windowStartedAt)) / 1000,
      trainingSeconds: typeof m.metrics.trainingSeconds === 'number' ? m.metrics.trainingSeconds : null,
      publishedAt: m.time,
    };
  });
  endPhase('measuring versions');

  let gallery: Gallery | null = null;
  const served = [...messages].reverse().find((m) => m.status === 'promoted');
  if (served !== undefined) {
    interrupted();
    ui.log('Scoring the pool with the last served version for the gallery...');
    gallery = await buildGallery({
      task,
      positions: streamed.filter((p) => !requested.has(task.pool.ids[p]!)),
      version: served.version,
      modelDir: served.artifact.location,
      sha256: served.artifact.sha256,
      augmentation,
      patchSeed,
      scoreOptions: scoreOptionsOf(config.scoring),
      count: o.galleryCount,
      backend: o.backend,
      signal,
    }).catch((error: unknown) => {
      if (signal.aborted) throw new DemoInterruptedError('interrupted');
      throw error;
    });
    endPhase('gallery');
  }

  // The baseline takes as many steps as the daemon ran windows, of the daemon's mean labels per
  // window (b plus the labels held out), so that both curves have points at about the same counts.
  const reached = Math.max(0, ...versions.map((v) => v.labels));
  let baseline: BaselineSummary | null = null;
  if (o.baseline && reached > 0) {
    interrupted();
    const steps = versions.length;
    const perStep = Math.max(1, Math.round(reached / steps));
    ui.log(
      `Random-selection baseline: ${steps} steps of ${perStep} labels (RFT(LQ), seed ${o.seed}) on the same ${streamed.length} candidates and evaluation set...`,
    );
    const t = config.training;
    try {
      const result = await runBaselineInWorker(
        {
          backend: o.backend,
          taskSpec: DEFAULT_TASK_SPEC,
          taskSeed: o.seed,
          poolPositions: streamed,
          evalSize: o.evalSize,
          augmentation,
          patchSeed,
          m0Dir: config.model.m0Path,
          b: perStep,
          steps,
          seed: t.seed,
          omega: config.selection.omega,
          alpha: config.scoring.alpha,
          // Random selection retrains from M0 on everything: the full learning rate.
          fineTune: { ...fineTuneOptionsOf(t), depth: t.fineTuneDepth },
        },
        {
          onStep: (s) =>
            ui.update(
              `random baseline: step ${s.step}/${steps} · ${s.labels} labels · AUC ${s.auc.toFixed(3)}`,
            ),
          signal,
        },
      );
      ui.done();
      const classCounts = new Array<number>(task.numClasses).fill(0);
      for (const s of result.steps)
        s.classCountsInQ.forEach((c, k) => (classCounts[k] = (classCounts[k] ?? 0) + c));
      baseline = {
        strategy: result.strategy,
        seed: result.seed,
        curve: result.curve,
        classCounts,
        alc: result.curve.length > 1 ? alc(result.curve) : null,
        finalAuc: Number.isFinite(result.finalAuc) ? result.finalAuc : null,
        seconds: result.seconds,
      };
    } catch (error) {
      ui.done();
      if (error instanceof BaselineAbortedError) throw new DemoInterruptedError('interrupted');
      throw error;
    }
    endPhase('random baseline');
  }

  // The served model's curve: M0 (the baseline's first point is the same model), then each promoted version.
  const byLabels = new Map<number, number>();
  if (baseline?.curve[0] !== undefined) byLabels.set(0, baseline.curve[0].auc);
  for (const v of versions) {
    if (v.status === 'promoted' && v.evaluationAuc !== null) byLabels.set(v.labels, v.evaluationAuc);
  }
  // After a rejected last window the served model is still the last promoted one: a flat step.
  const lastServed = [...versions].reverse().find((v) => v.status === 'promoted' && v.evaluationAuc !== null);
  if (lastServed !== undefined && reached > lastServed.labels)
    byLabels.set(reached, lastServed.evaluationAuc!);
  const daemonCurve: CurvePoint[] = [...byLabels.entries()]
    .map(([labels, a]) => ({ labels, auc: a }))
    .sort((a, b) => a.labels - b.labels);

  const streamedByClass = new Array<number>(task.numClasses).fill(0);
  for (const p of streamed) streamedByClass[task.pool.labels[p]!]! += 1;
  const requestCounts = new Array<number>(task.numClasses).fill(0);
  for (const label of requested.values()) requestCounts[label]! += 1;

  phases['total'] = (Date.now() - t0) / 1000;
  const result: DemoResult = {
    startedAt,
    finishedAt: new Date().toISOString(),
    seconds: phases,
    stopReason: live.stopReason,
    broker: { kind: live.brokerKind, brokers: live.brokers },
    backend: live.backend,
    metricsUrl: live.metricsUrl,
    task: { name: task.name, classNames: task.classNames, streamed: streamed.length, streamedByClass },
    settings: {
      labels: o.labels,
      b: o.b,
      m: o.m,
      epochs: o.epochs,
      strategy: config.training.strategy,
      criterion: config.scoring.criterion,
      augmentation: config.scoring.augmentation,
      holdoutShare: config.training.holdoutShare,
      ratePerSecond: o.rate,
      candidates: o.candidates,
      answerDelayMs: o.answerDelayMs,
      evalSize: o.evalSize,
      seed: o.seed,
    },
    versions,
    daemonCurve,
    daemonAlc: daemonCurve.length > 1 ? alc(daemonCurve) : null,
    baseline,
    requests: { classNames: task.classNames, counts: requestCounts, total: requested.size },
    gallery,
    simulator: live.simulatorStats,
    daemon: live.daemonStatus,
    metricsText: live.metricsText,
    runDir,
  };
  const reportPath = path.join(out, 'report.html');
  const jsonPath = path.join(out, 'demo.json');
  await writeFile(reportPath, renderReport(result));
  await writeFile(jsonPath, resultJson(result));
  if (live.metricsText !== null) await writeFile(path.join(runDir, 'metrics.txt'), live.metricsText);
  return { result, reportPath, jsonPath };
}

/** The live part: broker, daemon, watcher and simulator until the labels are in. */
async function runLive(
  o: DemoOptions,
  ui: ProgressLine,
  signal: AbortSignal,
  task: Task,
  runDir: string,
  cleanups: Cleanups,
  files: WriteStream[],
  endPhase: (name: string) => void,
) {
  const interrupted = () => {
    if (signal.aborted) throw new DemoInterruptedError('interrupted');
  };
  const brokerLog = createWriteStream(path.join(runDir, 'broker.log'));
  files.push(brokerLog);
  ui.log('Starting a Kafka broker (KAFKA_BROKERS, else a Docker engine, else the embedded broker)...');
  let broker: AcquiredBroker;
  try {
    broker = await acquireBroker({
      log: (line) => brokerLog.write(`${line}\n`),
      embedded: { log: (line) => brokerLog.write(`${line}\n`) },
    });
  } catch (error) {
    throw brokerUnavailable(error);
  }
  cleanups.add('stopping the Kafka broker', () => broker.stop());
  ui.log(`Kafka: ${brokerKindText(broker)} at ${broker.brokers.join(',')}`);
  await checkReachable(broker);
  endPhase('broker');
  interrupted();

  const port = o.httpPort ?? ((await portFree(DEFAULT_HTTP_PORT)) ? DEFAULT_HTTP_PORT : 0);
  const runId = `acft-demo-${Date.now().toString(36)}`;
  const config = demoConfig(o, runId, runDir, broker.brokers, port);
  const topics = config.kafka.topics;

  // The daemon's JSON log lines go to a file; errors are also shown.
  const daemonLog = createWriteStream(path.join(runDir, 'daemon.log.jsonl'));
  files.push(daemonLog);
  const logger = createLogger({
    level: 'info',
    destination: {
      write: (line: string) => {
        daemonLog.write(line);
        if (line.includes('"level":"error"') || line.includes('"level":"fatal"')) {
          try {
            const { msg, event } = JSON.parse(line) as { msg?: string; event?: string };
            ui.log(`daemon: ${msg ?? 'error'}${event ? ` (${event})` : ''}`);
          } catch {
            // not JSON: leave it in the file
          }
        }
      },
    },
  });
  let fatal: Error | undefined;
  ui.log(`Starting the acft daemon (b ${o.b}, m ${o.m}, ${o.epochs} epochs per window)...`);
  let daemon: Daemon;
  try {
    daemon = await Daemon.start({ config, logger, onFatal: (error) => (fatal = error) });
  } catch (error) {
    throw daemonFailed(error, { port, m0Path: config.model.m0Path, brokers: broker.brokers });
  }
  cleanups.add('stopping the daemon', () => daemon.close());
  const metricsUrl = daemon.status().httpUrl === null ? null : `${daemon.status().httpUrl}/metrics`;
  ui.log(`Daemon up: metrics at ${metricsUrl ?? 'n/a'}, state and logs in ${runDir}`);
  endPhase('daemon start');
  interrupted();

  // Watch what the daemon publishes: the requests (for the class share and the gallery) and versions.
  const poolLabel = new Map(task.pool.ids.map((id, i) => [id, task.pool.labels[i]!]));
  const requested = new Map<string, number>();
  const messages: ModelVersionMessage[] = [];
  const names = new Map<string, string>();
  const nameOf = (version: string) => {
    if (!names.has(version)) names.set(version, `v${names.size + 1}`);
    return names.get(version)!;
  };
  const kafka = new Kafka({
    clientId: `${runId}-watch`,
    brokers: broker.brokers,
    logLevel: logLevel.NOTHING,
  });
  const watcher: Consumer = kafka.consumer({ groupId: `${runId}-watch`, maxWaitTimeInMs: 250 });
  await watcher.connect();
  cleanups.add('stopping the watcher', () => watcher.disconnect());
  await watcher.subscribe({ topics: [topics.labelingRequests, topics.modelVersions], fromBeginning: true });
  await watcher.run({
    eachMessage: ({ topic, message }) => {
      if (topic === topics.modelVersions) {
        const parsed = parseModelVersion(message.value);
        if (parsed.ok && !messages.some((m) => m.version === parsed.value.version)) {
          nameOf(parsed.value.version);
          messages.push(parsed.value);
        }
      } else {
        const parsed = parseLabelingRequest(message.value, { numClasses: task.numClasses });
        const label = parsed.ok ? poolLabel.get(parsed.value.candidateId) : undefined;
        if (parsed.ok && label !== undefined) requested.set(parsed.value.candidateId, label);
      }
      return Promise.resolve();
    },
  });

  const simLog = createWriteStream(path.join(runDir, 'simulator.log'));
  files.push(simLog);
  const reports = new Map<string, VersionReport>();
  ui.log(
    `Starting the hospital simulator: ${o.candidates} candidates at ${o.rate}/s, answers after ${o.answerDelayMs} ms, evaluation on ${o.evalSize} held-apart candidates...`,
  );
  const sim: Simulator = await startSimulator({
    kafka: {
      brokers: broker.brokers,
      clientId: `${runId}-simulator`,
      topics: {
        candidates: topics.candidates,
        feedback: topics.feedback,
        labelingRequests: topics.labelingRequests,
        modelVersions: topics.modelVersions,
      },
    },
    groupId: `${runId}-simulator`,
    task,
    seed: o.seed,
    ratePerSecond: o.rate,
    total: o.candidates,
    augmentation: augmentationSpecOf(config.scoring),
    patchSeed: config.scoring.patchSeed,
    answerDelayMs: o.answerDelayMs,
    evaluate: true,
    evalSize: o.evalSize,
    backend: o.backend,
    versionsFromBeginning: true,
    log: (line) => simLog.write(`${new Date().toISOString()} ${line}\n`),
    onVersion: (r) => {
      reports.set(r.version, r);
      const measured =
        r.evaluation.kind === 'evaluated'
          ? `evaluation AUC ${auc(r.evaluation.auc)}`
          : r.evaluation.kind === 'skipped'
            ? `not measured live (${r.evaluation.why})`
            : `not measured (${r.evaluation.error})`;
      ui.log(
        `${nameOf(r.version)} ${r.status} after ${r.labels} labels: holdout AUC ${auc(r.holdoutAuc)}, ${measured}`,
      );
    },
  });
  cleanups.add('stopping the simulator', () => sim.stop());
  endPhase('simulator start');

  // ---- live: until a version carries the labels asked for ---------------------------------------
  const liveStart = Date.now();
  const deadline = liveStart + o.maxMinutes * 60_000;
  let stopReason = '';
  const holdoutOf = (version: string | null) =>
    version === null ? null : (messages.find((m) => m.version === version)?.metrics.holdoutAuc ?? null);
  for (;;) {
    interrupted();
    if (fatal !== undefined) throw new DemoError(`The daemon stopped: ${fatal.message}.`, { cause: fatal });
    const done = [...reports.values()].find((r) => r.labels >= o.labels);
    if (done !== undefined) {
      stopReason = `${done.labels} labels reached (version ${nameOf(done.version)})`;
      break;
    }
    if (Date.now() > deadline) {
      stopReason = `time limit of ${o.maxMinutes} min reached with ${sim.stats().answersSent} labels`;
      ui.log(`Stopping at the time limit (--max-minutes ${o.maxMinutes}); the report shows what there is.`);
      break;
    }
    const s = sim.stats();
    const d = daemon.status();
    const servedName =
      d.servedVersion === null || d.servedVersion.startsWith('m0') ? 'M0' : nameOf(d.servedVersion);
    const evalAuc = s.lastAuc?.version === d.servedVersion ? s.lastAuc.evaluationAuc : null;
    ui.update(
      [
        `labels ${s.answersSent}/${o.labels}`,
        `windows ${d.windows.length}`,
        `served ${servedName}`,
        `holdout AUC ${auc(holdoutOf(d.servedVersion))}`,
        `eval AUC ${auc(evalAuc)}`,
        `pool ${d.pool}`,
        `streamed ${s.candidatesSent}/${s.candidatesPlanned}`,
        minutes(Date.now() - liveStart),
      ].join(' · '),
    );
    await sleep(500, undefined, { signal }).catch(() => undefined);
  }
  ui.done();
  endPhase('live run');

  let metricsText: string | null = null;
  if (metricsUrl !== null) {
    try {
      const response = await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) });
      metricsText = await response.text();
    } catch (error) {
      ui.log(`could not read ${metricsUrl}: ${(error as Error).message}`);
    }
  }
  const d = daemon.status();
  // The simulator stops first (no more candidates or answers); its counters are final then.
  await sim.stop();
  const simulatorStats = sim.stats();
  const streamed = streamOrder(task.pool, o.seed).slice(0, simulatorStats.candidatesSent);
  return {
    config,
    reports,
    messages,
    requested,
    streamed,
    stopReason,
    brokerKind: broker.kind,
    brokers: broker.brokers,
    backend: backendOf(metricsText),
    metricsUrl,
    metricsText,
    simulatorStats,
    daemonStatus: { labeled: d.labeled, holdout: d.holdout, pool: d.pool, windows: d.windows.length },
  };
}

/** Fails fast (seconds, not the daemon's minutes of retries) when the brokers do not answer. */
async function checkReachable(broker: AcquiredBroker): Promise<void> {
  try {
    await probeBrokers({ clientId: 'acft-demo-check', brokers: broker.brokers });
  } catch (error) {
    throw brokerUnreachable(error, broker.brokers, broker.kind === 'env');
  }
}

/** The tfjs backend, from the daemon's `acft_backend_info{backend="..."} 1` line. */
function backendOf(metricsText: string | null): string {
  const match = /acft_backend_info\{backend="([^"]+)"\} 1/.exec(metricsText ?? '');
  return match?.[1] ?? 'unknown';
}
