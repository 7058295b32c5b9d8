/**
 * The live part of the demo: broker, daemon, watcher and simulator (live-start.ts) until a version
 * carries the labels asked for, with a status line meanwhile; then everything stopped in reverse
 * order, also on Ctrl-C or an error.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/index.js';
import type { Task } from '../data/task.js';
import type { AcquiredBroker } from '../kafka/broker-source.js';
import type { ModelVersionMessage } from '../messages/index.js';
import { streamOrder } from '../simulate/candidates.js';
import type { SimulatorStats, VersionReport } from '../simulate/report.js';
import { DemoError } from './errors.js';
import {
  LiveResources,
  auc,
  demoConfig,
  metricsPort,
  startBroker,
  startDaemon,
  startSim,
  startWatcher,
  versionNamer,
  type RunningDaemon,
  type RunningSimulator,
  type Watched,
} from './live-start.js';
import { throwIfInterrupted, type DemoContext } from './options.js';
import type { ProgressLine } from './progress.js';
import type { DemoResult } from './result.js';

/** What the live part leaves for the offline part and the report. */
export interface LiveOutcome {
  config: Config;
  /** The simulator's report on each version it has seen (with its live evaluation). */
  reports: Map<string, VersionReport>;
  /** The versions the daemon published, in order. */
  messages: ModelVersionMessage[];
  /** Candidates the daemon asked about, with their true class. */
  requested: Map<string, number>;
  /** Pool positions of the candidates streamed, in streaming order. */
  streamed: number[];
  stopReason: string;
  brokerKind: AcquiredBroker['kind'];
  brokers: string[];
  backend: string;
  metricsUrl: string | null;
  metricsText: string | null;
  simulatorStats: SimulatorStats;
  daemonStatus: DemoResult['daemon'];
}

/** The services running during the live part. */
interface LiveServices {
  daemon: RunningDaemon;
  simulator: RunningSimulator;
  watched: Watched;
  nameOf: (version: string) => string;
}

/**
 * Runs the live part, then stops everything it started (simulator, watcher, daemon, broker) and
 * closes its logs, whether it finished, failed or was interrupted.
 */
export async function runLiveAndStop(ctx: DemoContext, task: Task): Promise<LiveOutcome> {
  const res = new LiveResources(ctx.runDir);
  let live: LiveOutcome;
  try {
    live = await runLive(ctx, task, res);
  } finally {
    ctx.ui.done();
    await res.stopAll(ctx.ui);
  }
  ctx.phases.end('shutdown');
  throwIfInterrupted(ctx.signal);
  return live;
}

/** The live part: broker, daemon, watcher and simulator until the labels are in. */
async function runLive(ctx: DemoContext, task: Task, res: LiveResources): Promise<LiveOutcome> {
  const broker = await startBroker(ctx, res);
  const port = await metricsPort(ctx.o);
  const runId = `acft-demo-${Date.now().toString(36)}`;
  const config = demoConfig(ctx.o, runId, ctx.runDir, broker.brokers, port);
  const setup = { runId, brokers: broker.brokers, config };
  const daemon = await startDaemon(ctx, res, setup, port);
  const nameOf = versionNamer();
  const watched = await startWatcher(res, setup, task, nameOf);
  const simulator = await startSim(ctx, res, setup, task, nameOf);
  const services: LiveServices = { daemon, simulator, watched, nameOf };
  const stopReason = await waitForLabels(ctx, services);
  const final = await finish(ctx, task, services);
  return {
    config,
    reports: simulator.reports,
    messages: watched.messages,
    requested: watched.requested,
    streamed: final.streamed,
    stopReason,
    brokerKind: broker.kind,
    brokers: broker.brokers,
    backend: backendOf(final.metricsText),
    metricsUrl: daemon.metricsUrl,
    metricsText: final.metricsText,
    simulatorStats: final.simulatorStats,
    daemonStatus: final.daemonStatus,
  };
}

/**
 * Live: until a version carries the labels asked for (or the time limit), with a status line
 * every half second; stops at once when the daemon fails or Ctrl-C is pressed. Returns why it
 * stopped, for the report.
 */
async function waitForLabels(ctx: DemoContext, services: LiveServices): Promise<string> {
  const { o, ui, signal } = ctx;
  const { sim, reports } = services.simulator;
  const liveStart = Date.now();
  const deadline = liveStart + o.maxMinutes * 60_000;
  let stopReason = '';
  for (;;) {
    throwIfInterrupted(signal);
    const fatal = services.daemon.fatal();
    if (fatal !== undefined) throw new DemoError(`The daemon stopped: ${fatal.message}.`, { cause: fatal });
    const done = [...reports.values()].find((r) => r.labels >= o.labels);
    if (done !== undefined) {
      stopReason = `${done.labels} labels reached (version ${services.nameOf(done.version)})`;
      break;
    }
    if (Date.now() > deadline) {
      stopReason = `time limit of ${o.maxMinutes} min reached with ${sim.stats().answersSent} labels`;
      ui.log(`Stopping at the time limit (--max-minutes ${o.maxMinutes}); the report shows what there is.`);
      break;
    }
    ui.update(statusLine(o.labels, services, liveStart));
    await sleep(500, undefined, { signal }).catch(() => undefined);
  }
  ui.done();
  ctx.phases.end('live run');
  return stopReason;
}

/** The status line: labels, windows, the served version and its AUCs, the pool, the stream. */
function statusLine(labels: number, services: LiveServices, liveStart: number): string {
  const { nameOf } = services;
  const holdoutOf = (version: string | null) =>
    version === null
      ? null
      : (services.watched.messages.find((m) => m.version === version)?.metrics.holdoutAuc ?? null);
  const s = services.simulator.sim.stats();
  const d = services.daemon.daemon.status();
  const servedName =
    d.servedVersion === null || d.servedVersion.startsWith('m0') ? 'M0' : nameOf(d.servedVersion);
  const evalAuc = s.lastAuc?.version === d.servedVersion ? s.lastAuc.evaluationAuc : null;
  return [
    `labels ${s.answersSent}/${labels}`,
    `windows ${d.windows.length}`,
    `served ${servedName}`,
    `holdout AUC ${auc(holdoutOf(d.servedVersion))}`,
    `eval AUC ${auc(evalAuc)}`,
    `pool ${d.pool}`,
    `streamed ${s.candidatesSent}/${s.candidatesPlanned}`,
    minutes(Date.now() - liveStart),
  ].join(' · ');
}

function minutes(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * After the live run: a /metrics snapshot and the daemon's counts while it still runs, then the
 * simulator stopped so that its counters are final.
 */
async function finish(ctx: DemoContext, task: Task, services: LiveServices) {
  const metricsText = await readMetrics(ctx.ui, services.daemon.metricsUrl);
  const d = services.daemon.daemon.status();
  const { sim } = services.simulator;
  // The simulator stops first (no more candidates or answers); its counters are final then.
  await sim.stop();
  const simulatorStats = sim.stats();
  const streamed = streamOrder(task.pool, ctx.o.seed).slice(0, simulatorStats.candidatesSent);
  const daemonStatus = { labeled: d.labeled, holdout: d.holdout, pool: d.pool, windows: d.windows.length };
  return { metricsText, simulatorStats, streamed, daemonStatus };
}

/** The daemon's /metrics text (for the report and metrics.txt); null if it cannot be read. */
async function readMetrics(ui: ProgressLine, metricsUrl: string | null): Promise<string | null> {
  let metricsText: string | null = null;
  if (metricsUrl !== null) {
    try {
      const response = await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) });
      metricsText = await response.text();
    } catch (error) {
      ui.log(`could not read ${metricsUrl}: ${(error as Error).message}`);
    }
  }
  return metricsText;
}

/** The tfjs backend, from the daemon's `acft_backend_info{backend="..."} 1` line. */
function backendOf(metricsText: string | null): string {
  const match = /acft_backend_info\{backend="([^"]+)"\} 1/.exec(metricsText ?? '');
  return match?.[1] ?? 'unknown';
}
