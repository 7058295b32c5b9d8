/**
 * The streaming daemon (`acft run`), composed from its ports: it restores its state, serves a
 * model, and runs its loop (pipeline.ts: sources -> one pure step -> stages -> inputs) until it is
 * closed. `Daemon.start` reads top to bottom as the start of that pipeline; `close` drains it. Its
 * typed events (`events$`) are what the log, the metrics, the tests and the benchmark observe.
 *
 * Scale-out (cluster.enabled, docs/scale-out.md) is the same loop with a state of its own
 * (loop/cluster/): its election, ledger and shortlists are inputs of the same step.
 */
import { BehaviorSubject, Subject, type Observable } from 'rxjs';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import {
  labeledCount,
  holdoutCandidates,
  newLabelsSinceWindow,
  trainableCandidates,
} from '../core/labels.js';
import { poolBytes, poolSize, requestedCount, unscoredCount } from '../core/pool.js';
import { labelingConfigOf, type Config } from '../config/index.js';
import { DEAD_LETTER_REASONS } from '../messages/index.js';
import { initBackend } from '../model/backend.js';
import { createArtifactStore } from '../model/s3-artifact-store.js';
import { startHttpServer } from '../observability/http-server.js';
import { createMetrics, type AcftMetrics } from '../observability/metrics.js';
import { ScoringService } from '../workers/scoring-service.js';
import { TrainingService } from '../workers/training-service.js';
import { KafkaBroker } from './adapters/kafka-broker.js';
import { readCheckpoint, writeCheckpoint } from './checkpoint-file.js';
import { formatShape, initialModel, type PatchShape } from './initial-model.js';
import { coPartitionAssigner } from './adapters/assigners.js';
import { KafkaCluster } from './adapters/kafka-cluster.js';
import { emptyClusterState } from './loop/cluster/state.js';
import { isCoordinator } from './loop/cluster/versions.js';
import { outstandingCount } from './loop/cluster/clock.js';
import type { DaemonEvent } from './loop/events.js';
import type { DaemonState, LoopContext, ServedModel } from './loop/state.js';
import { writeLog } from './observers/log-writer.js';
import { writeMetrics } from './observers/metrics-writer.js';
import { runLoop, type Loop } from './pipeline.js';
import type { Clock, Ports } from './ports.js';
import { restore } from './restore.js';
import { scoringServiceOptions } from './scoring-options.js';
import { asyncScheduler } from 'rxjs';

export interface DaemonOptions {
  config: Config;
  logger: Logger;
  /** Where the metrics go (a new registry by default). */
  registry?: Registry;
  /** Exits the process (the supervisor restarts it) on an unrecoverable error; tests pass a spy. */
  onFatal?: (error: Error) => void;
  /** Ports to use instead of the real adapters (tests: in-memory fakes and a virtual clock). */
  ports?: Partial<Ports>;
  /** Subscribes to the daemon's events before it starts (so that none of its start is missed). */
  observe?: (events$: Observable<DaemonEvent>) => void;
}

/** Where the daemon is in its life. */
export type Lifecycle = 'starting' | 'running' | 'draining' | 'stopped' | 'failed';

/** Ticks of the loop (ms). */
const TICK_MS = 500;
/** How long a drain may take before the shutdown goes on regardless. */
const DRAIN_TIMEOUT_MS = 30_000;

const systemClock: Clock = { now: () => Date.now(), scheduler: asyncScheduler };

/** A running daemon; `close()` shuts it down in order and is idempotent. */
export class Daemon {
  readonly metrics: AcftMetrics;
  readonly lifecycle$ = new BehaviorSubject<Lifecycle>('starting');
  private readonly events = new Subject<DaemonEvent>();
  private readonly subscriptions: { unsubscribe(): void }[] = [];
  private ports?: Ports;
  private state?: DaemonState;
  private loop?: Loop;
  private http?: Awaited<ReturnType<typeof startHttpServer>>;
  private closed?: Promise<void>;
  private fatalRaised = false;

  private constructor(private readonly options: DaemonOptions) {
    this.metrics = createMetrics(options.registry, {
      deadLetterReasons: DEAD_LETTER_REASONS,
      classes: Array.from({ length: options.config.limits.numClasses }, (_, i) => String(i)),
    });
    this.subscriptions.push(writeLog(this.events, options.logger));
    options.observe?.(this.events.asObservable());
  }

  /** Every event of the daemon, in order: what its log and metrics are written from. */
  get events$(): Observable<DaemonEvent> {
    return this.events.asObservable();
  }

  /** Starts every part; resolves once the daemon consumes and serves a model. */
  static async start(options: DaemonOptions): Promise<Daemon> {
    const daemon = new Daemon(options);
    try {
      await daemon.run();
    } catch (error) {
      daemon.lifecycle$.next('failed');
      await daemon.close();
      throw error;
    }
    return daemon;
  }

  private async run(): Promise<void> {
    const { config } = this.options;
    const emit = (event: DaemonEvent) => this.events.next(event);
    // 1. Metrics and health.
    this.http = await startHttpServer({
      ...config.http,
      registry: this.metrics.registry,
      health: () => this.health(),
    });
    emit({ type: 'http-started', url: this.http.url });
    // 2. The ports: workers, stores, the clock and the brokers.
    const ports = await this.connectPorts(config);
    this.subscriptions.push(writeMetrics(this.events, this.metrics, ports.scorer));
    this.metrics.useBackend(ports.scorer.backend);
    emit({ type: 'backend', backend: ports.scorer.backend });
    // 3. M0, whose lineage this daemon serves.
    const { m0, m0Shape } = await loadM0(config, ports.scorer.backend === 'fake');
    emit({ type: 'm0', version: m0.version, inputShape: formatShape(m0Shape), path: config.model.m0Path });
    // 4. The state, and the version it serves.
    const restored = await restore({
      config,
      m0,
      m0Shape,
      checkpoints: ports.checkpoints,
      store: ports.store,
      scaleOut: ports.cluster !== undefined,
      now: ports.clock.now(),
      context: (state) => contextOf(config, state, m0, m0Shape),
    });
    restored.events.forEach(emit);
    const state = (this.state = restored.state);
    if (ports.cluster)
      state.cluster = emptyClusterState(ports.cluster.instanceId, config.kafka.topics.candidates);
    const ctx = contextOf(config, state, m0, m0Shape);
    // 5. The served model in the scoring workers.
    await ports.scorer.setModel({ version: state.served.version, ...state.served.artifact });
    // 6. The brokers: credentials, topics, the producer.
    await ports.broker.connect();
    this.metrics.brokerConnected.set(1);
    // 7. The loop, fed by the brokers, the clock and its own stages.
    this.loop = runLoop({ ports, ctx, state, onFatal: (error) => this.fatal(error) });
    this.subscriptions.push(this.loop.events$.subscribe((event) => emit(event)));
    this.loop.push({ type: 'served', version: state.served.version, now: ports.clock.now() });
    // 8. Scale-out: L from the ledger, read to its end before candidates are replayed.
    await ports.cluster?.readLedger();
    // 9. The consumers: model-versions to its end (the loop then knows which versions are out),
    // then candidates and feedback; then what the checkpoint left to send is sent.
    await ports.broker.consume();
    await ports.cluster?.joinElection();
    this.loop.push({ type: 'start', resend: restored.resend, now: ports.clock.now() });
    this.lifecycle$.next('running');
    emit({ type: 'started', servedVersion: state.served.version, pool: poolSize(state.labeling.pool) });
  }

  private async connectPorts(config: Config): Promise<Ports> {
    const given = this.options.ports ?? {};
    const clock = given.clock ?? systemClock;
    // Scale-out: the broker's main group co-partitioned, its consumers followed by the cluster.
    let cluster: KafkaCluster | undefined;
    const broker = new KafkaBroker({
      config,
      clock,
      log: this.options.logger,
      ...(config.cluster.enabled
        ? {
            scaleOut: true,
            assigner: coPartitionAssigner(),
            onConsumer: (role, consumer) => cluster?.consumer(role, consumer),
          }
        : {}),
    });
    if (config.cluster.enabled && given.broker === undefined)
      cluster = new KafkaCluster(config, clock, broker);
    const [scorer, trainer] = await Promise.all([
      given.scorer ?? ScoringService.start(scoringServiceOptions(config)),
      given.trainer ?? TrainingService.start({ backend: config.backend }),
    ]);
    this.ports = {
      clock,
      scorer,
      trainer,
      store:
        given.store ??
        createArtifactStore(config.model.storeDir, {
          region: config.model.s3.region,
          forcePathStyle: config.model.s3.forcePathStyle,
          ...(config.model.s3.endpoint !== undefined ? { endpoint: config.model.s3.endpoint } : {}),
        }),
      checkpoints: given.checkpoints ?? {
        read: () => readCheckpoint(config.state.checkpointDir),
        write: async (file) => {
          await writeCheckpoint(config.state.checkpointDir, file);
        },
      },
      broker: given.broker ?? broker,
      ...(cluster ? { cluster } : {}),
    };
    return this.ports;
  }

  /** Hands an unrecoverable error to the supervisor: by default the process exits non-zero. */
  private fatal(error: Error): void {
    if (this.fatalRaised) return;
    this.fatalRaised = true;
    this.events.next({ type: 'fatal', err: error });
    (this.options.onFatal ?? (() => process.exit(70)))(error);
  }

  private health(): { live: boolean; ready: boolean; reasons: string[]; details: Record<string, unknown> } {
    const state = this.state;
    const lifecycle = this.lifecycle$.value;
    const reasons: string[] = [];
    if (lifecycle === 'draining' || lifecycle === 'stopped') reasons.push('shutting down');
    if (state?.broker.downSince != null) reasons.push('Kafka brokers unreachable');
    if (state === undefined) reasons.push('no model served yet');
    if (lifecycle === 'starting') reasons.push('not consuming yet');
    return {
      live: lifecycle !== 'stopped' && lifecycle !== 'failed',
      ready: reasons.length === 0,
      reasons,
      details: {
        servedVersion: state?.served.version ?? null,
        pool: state ? poolSize(state.labeling.pool) : 0,
        labeled: state ? labeledCount(state.labeling.labels) : 0,
        newLabels: state ? newLabelsSinceWindow(state.labeling.labels) : 0,
        outstanding: state ? outstanding(state, this.ports?.clock.now() ?? Date.now()) : 0,
        windowRunning: state?.window != null,
        intakePaused: state?.intakePaused ?? false,
        outbox: state?.outbox.length ?? 0,
      },
    };
  }

  /** A plain view of the daemon's state, for tests and the demo. */
  status() {
    const s = this.state;
    const pool = s?.labeling.pool;
    const labels = s?.labeling.labels;
    return {
      servedVersion: s?.served.version ?? null,
      pool: pool ? poolSize(pool) : 0,
      poolBytes: pool ? poolBytes(pool) : 0,
      outstanding: s ? outstanding(s, this.ports?.clock.now() ?? Date.now()) : 0,
      labeled: labels ? labeledCount(labels) : 0,
      trainable: labels ? trainableCandidates(labels).length : 0,
      holdout: labels ? holdoutCandidates(labels).length : 0,
      newLabels: labels ? newLabelsSinceWindow(labels) : 0,
      windows: s ? [...s.windowsDone] : [],
      paused: s?.intakePaused ?? false,
      // Counted by the pool as it changes: a status call does not walk the pool.
      scored: pool ? poolSize(pool) - unscoredCount(pool) : 0,
      httpUrl: this.http?.url ?? null,
      coordinator: s ? isCoordinator(s) : false,
    };
  }

  /**
   * Shuts down in order: drain the loop (no more intake; the window in flight abandoned, planned
   * again after a restart from the same inputs; the last checkpoint and its commit), then stop it,
   * disconnect, stop the workers. Every step runs even when one fails; the drain is bounded.
   * Idempotent.
   */
  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    const failed = this.lifecycle$.value === 'failed';
    if (!failed) this.lifecycle$.next('draining');
    this.events.next({ type: 'stopping', reason: failed ? 'failed start' : 'close' });
    const loop = this.loop;
    const clock = this.ports?.clock ?? systemClock;
    let forced = false;
    const steps: [string, () => unknown][] = [
      [
        'drain',
        async () => {
          if (loop === undefined) return;
          loop.push({ type: 'drain', now: clock.now() });
          const timeout = new Promise<'timeout'>((r) =>
            setTimeout(() => r('timeout'), DRAIN_TIMEOUT_MS).unref(),
          );
          forced = (await Promise.race([loop.drained, timeout])) === 'timeout';
        },
      ],
      ['cluster', () => this.ports?.cluster?.close()],
      ['loop', () => loop?.stop()],
      ['broker', () => this.ports?.broker.close()],
      ['scoring', () => this.ports?.scorer.close()],
      ['training', () => this.ports?.trainer.close()],
      ['http', () => this.http?.close()],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (error) {
        this.events.next({ type: 'shutdown-step-failed', step: name, err: error });
      }
    }
    this.metrics.brokerConnected.set(0);
    if (!failed) this.lifecycle$.next('stopped');
    this.events.next({ type: 'stopped', forced });
    for (const s of this.subscriptions) s.unsubscribe();
    this.lifecycle$.complete();
  }
}

/** Requests outstanding: the pool's (one instance), the ledger's (the coordinator; 0 elsewhere). */
function outstanding(state: DaemonState, now: number): number {
  return state.cluster ? outstandingCount(state, now) : requestedCount(state.labeling.pool);
}

/** The step's context: the configuration and what derives from it. */
function contextOf(config: Config, state: DaemonState, m0: ServedModel, m0Shape: PatchShape): LoopContext {
  return {
    config,
    labeling: labelingConfigOf(
      config,
      (a, b) => (state.versionOrder.get(a) ?? -1) - (state.versionOrder.get(b) ?? -1),
    ),
    m0,
    m0Shape,
    tickMs: TICK_MS,
  };
}

/** M0 as served (its head of the task's classes), checked in the main thread. */
async function loadM0(config: Config, _fake: boolean): Promise<{ m0: ServedModel; m0Shape: PatchShape }> {
  // The main thread only loads and checks models; scoring and training run in the workers.
  await initBackend(config.backend);
  const m0 = await initialModel(config.model.m0Path, config.limits.numClasses, config.training.seed);
  return {
    m0: { version: m0.version, artifact: m0.artifact, holdoutAuc: m0.holdoutAuc, publishedAtMs: 0 },
    m0Shape: m0.inputShape,
  };
}
