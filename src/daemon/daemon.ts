/**
 * The streaming daemon (`acft run`): consumes candidates and feedback from Kafka, keeps the rolling
 * pool and the labeled set (the pure reducers of src/core), scores candidates in worker threads,
 * publishes labeling requests, runs ACFT fine-tuning windows in a worker thread, and publishes every
 * model version. One class owns the wiring; the decisions are the core's.
 *
 * Offsets: a message's effects are recorded in the in-memory state; the state is checkpointed
 * atomically, and only then are the offsets it includes committed (commit-after-checkpoint). A
 * restart restores the checkpoint and re-reads from the committed offsets; every reducer step is
 * idempotent, so a replayed message changes nothing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { hostname } from 'node:os';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { Subject, Subscription, interval } from 'rxjs';
import { bufferItems, mergeWhileBusy } from './rx-operators.js';
import type { Registry } from 'prom-client';
import { deriveSeed } from '../core/rng.js';
import { STRATEGIES } from '../core/strategies.js';
import {
  DROP_REASONS,
  emptyPool,
  getCandidate,
  requestedCount,
  poolBytes,
  poolReducer,
  poolSize,
  pressure,
  rescoreOrder,
  unscoredCount,
  type PoolEffect,
  type SourceRef,
} from '../core/pool.js';
import {
  emptyLabels,
  holdoutCandidates,
  ingestFeedback,
  labeledCount,
  labelsReducer,
  newLabelsSinceWindow,
  resumePendingClock,
  trainableCandidates,
  trainingExamples,
  type LabelingConfig,
  type LabelingEffect,
  type LabelingState,
} from '../core/labels.js';
import { planRequests, planWindow, promotionDecision, shouldStartWindow, windowId } from '../core/windows.js';
import {
  checkpointPositions,
  committable,
  done,
  emptyOffsets,
  markCommitted,
  ownedPartitions,
  revoke,
  setCommitted,
  track,
  trackDone,
} from '../core/offsets.js';
import type { OffsetsState, PartitionOffset } from '../core/offsets.js';
import { fromSnapshot, toSnapshot } from '../core/checkpoint-state.js';
import { augmentationSpecOf, labelingConfigOf, scoreOptionsOf, type Config } from '../config/index.js';
import {
  DEAD_LETTER_REASONS,
  createDeadLetter,
  encodeDeadLetter,
  encodeModelVersion,
  parseFeedback,
  parseModelVersion,
  rejected,
  type DeadLetterReason,
  type ModelVersionMessage,
  type ParseFailure,
} from '../messages/index.js';
import { createMetrics, type AcftMetrics } from '../observability/metrics.js';
import { startHttpServer } from '../observability/http-server.js';
import {
  ScoringService,
  type ModelVersionArtifact,
  type ScoreBatchResult,
} from '../workers/scoring-service.js';
import { TrainingService, type TrainingResult } from '../workers/training-service.js';
import type { ModelArtifact } from '../model/model-store.js';
import type { ArtifactStore } from '../model/artifact-store.js';
import { createArtifactStore } from '../model/s3-artifact-store.js';
import {
  brokersError,
  commitConfirmed,
  createKafka,
  checkCoPartitioned,
  ensureTopics,
  kafkaOptions,
  probeBrokers,
} from './kafka-client.js';
import { BrokerHealth, BrokerProbe, isBrokerError, type HealthChange } from './broker-health.js';
import { checkpointThenCommit } from './checkpoint-commit.js';
import { DeadLetterOutbox, deadLettersOf, withDeadLetters, type QueuedDeadLetter } from './dead-letters.js';
import { readCheckpoint, writeCheckpoint } from './checkpoint-file.js';
import { faultPoint } from './fault-points.js';
import { isolatePoison } from './isolate-poison.js';
import {
  outboxOf,
  unconfirmedRequestsOf,
  withOutbox,
  withUnconfirmedRequests,
  type OutboxEntry,
  type UnconfirmedRequest,
} from './outbox.js';
import { encodePlannedRequest } from './request-message.js';
import {
  decodeStored,
  encodeStored,
  patchShapeOf,
  recipeKey,
  scoringInput,
  takeCandidate,
  type StoredCandidate,
} from './stored-candidate.js';
import { artifactInputShape, formatShape, initialModel, type PatchShape } from './initial-model.js';
import {
  LineageMismatchError,
  checkpointLineage,
  foreignVersionsMessage,
  splitByLineage,
  withLineage,
} from './lineage.js';
import { scoringServiceOptions } from './scoring-options.js';
import { stateDigest } from './state-digest.js';
import { initBackend } from '../model/backend.js';
import { Cluster, LedgerWriteError } from './cluster.js';

export interface DaemonOptions {
  config: Config;
  logger: Logger;
  /** Where the metrics go (a new registry by default). */
  registry?: Registry;
  /** Exits the process (the supervisor restarts it) when the brokers stay away; tests pass a spy. */
  onFatal?: (error: Error) => void;
}

/**
 * What became of a message at intake: done (undefined), 'held' (dead-lettered; its offset waits
 * for the broker to confirm the dead letter), or I/O to await that settles to one of those.
 */
type Intake = undefined | 'held' | Promise<'held' | undefined>;

interface Served {
  version: string;
  artifact: ModelArtifact;
  holdoutAuc: number | null;
  /** When the version was published (ms); an older one is never served over it. */
  publishedAtMs: number;
}

const TICK_MS = 500;
/** No answer from the brokers for this long (ms) calls for a probe. */
const BROKER_STALE_MS = 3_000;
/** How long a broker probe may take (ms) before it counts as failed. */
const BROKER_PROBE_TIMEOUT_MS = 2_000;
/** Wait before a dead-letter send that failed is tried again (ms). */
const DEAD_LETTER_RETRY_MS = 1_000;
/** Most candidates merged into one scoring call when micro-batches queue up behind a busy scorer. */
const MAX_SCORING_BATCH = 512;
/** How long a shutdown waits for labeling request sends still in flight. */
const SEND_SETTLE_MS = 10_000;
/** Messages of a fetched batch processed with no turn of the event loop. */
const INGEST_CHUNK = 256;

/** A running daemon; `close()` shuts it down in order and is idempotent. */
export class Daemon {
  readonly metrics: AcftMetrics;
  private state: LabelingState<StoredCandidate> = { pool: emptyPool(), labels: emptyLabels() };
  private offsets: OffsetsState = emptyOffsets();
  private readonly labelingConfig: LabelingConfig;
  private served!: Served;
  private m0!: Served;
  /** The patches M0, and every version of its lineage, takes. */
  private m0Shape!: PatchShape;
  /** Image shapes whose patches were found to fit M0 (without an ROI or an augmentation of their own). */
  private readonly fittingShapes = new Set<string>();
  private readonly versionOrder = new Map<string, number>();
  private readonly arrivals = new Map<string, number>();
  private readonly requestTimes = new Map<string, number>();
  private readonly pendingSources = new Map<string, SourceRef>();
  /** Labeling requests issued whose send is not confirmed yet, by request id (checkpointed, see outbox.ts). */
  private readonly unconfirmedRequests = new Map<string, UnconfirmedRequest>();
  /** Unconfirmed requests of the restored checkpoint, still outstanding: sent again at start-up. */
  private resendRequests: UnconfirmedRequest[] = [];
  /** Labeling request sends not settled yet. */
  private readonly requestSends = new Set<Promise<void>>();
  /** Ids of newly admitted candidates, to score: a chunk's at once (see flushIntake). */
  private readonly scoreQueue$ = new Subject<readonly string[]>();
  private admitted: string[] = [];
  /** Candidates ingested since the last flushIntake, not yet counted in the metric. */
  private ingestedUncounted = 0;
  private readonly subscriptions = new Subscription();
  private kafka!: Kafka;
  private consumer!: Consumer;
  private versionsConsumer!: Consumer;
  private producer!: Producer;
  private scoring!: ScoringService;
  private training!: TrainingService;
  private store: ArtifactStore;
  private http?: Awaited<ReturnType<typeof startHttpServer>>;
  private windowRunning = false;
  private checkpoints: Promise<void> = Promise.resolve();
  private checkpointsQueued = 0;
  /** Set while a window publishes its version: shutdown waits for it (it is short). */
  private publishing?: Promise<void>;
  private windowGeneration = 0;
  private rescoreGeneration = 0;
  private paused = false;
  private closing = false;
  private closed?: Promise<void>;
  private lastCheckpointAt = 0;
  /** Whether the brokers answer (readiness, `acft_broker_connected`, the outage exit). */
  private readonly brokerHealth = new BrokerHealth(Date.now(), BROKER_STALE_MS);
  private probe?: BrokerProbe;
  private probing = false;
  /** Dead letters not confirmed by the broker yet (checkpointed). */
  private readonly deadLetters: DeadLetterOutbox;
  /** Candidates that left the pool unlabeled since the last report, by why (logged with their ids). */
  private readonly dropped = { expired: [] as string[], evicted: [] as string[] };
  private fatalRaised = false;
  /** Set once the group gave this instance its partitions: the clocks of waiting work run from then. */
  private joined = false;
  private inFlightBatches = 0;
  private requestRound = 0;
  private readonly windowsDone: { version: string; status: string }[] = [];
  /** Scale-out (cluster.enabled): partitions shared with other instances, one coordinator. */
  private readonly cluster?: Cluster;
  /** Model-version messages checkpointed but maybe not yet sent (see outbox.ts). */
  private outbox: OutboxEntry[] = [];
  private flushingOutbox?: Promise<void>;
  /** Outbox entries that a written checkpoint holds: only those may be sent. */
  private readonly durableOutbox = new WeakSet<OutboxEntry>();
  /** Versions seen on model-versions (this instance's and others'), and how far that topic is read. */
  private readonly publishedVersions = new Set<string>();
  private readonly versionsRead = new Map<number, number>();

  private constructor(private readonly options: DaemonOptions) {
    const { config } = options;
    this.metrics = createMetrics(options.registry, {
      deadLetterReasons: DEAD_LETTER_REASONS,
      classes: Array.from({ length: config.limits.numClasses }, (_, i) => String(i)),
    });
    this.store = createArtifactStore(config.model.storeDir, {
      region: config.model.s3.region,
      forcePathStyle: config.model.s3.forcePathStyle,
      ...(config.model.s3.endpoint !== undefined ? { endpoint: config.model.s3.endpoint } : {}),
    });
    this.deadLetters = new DeadLetterOutbox({
      send: (batch) => this.sendDeadLetters(batch),
      onSent: (batch) => this.deadLettersSent(batch),
      onFailed: (error, queued) => {
        this.brokerFailed('dead-letter send failed');
        this.log.warn(
          { event: 'dead-letter-send-failed', queued, err: error },
          'dead letters not sent yet; they stay queued (and checkpointed) and are sent again',
        );
      },
      retryAfterMs: DEAD_LETTER_RETRY_MS,
    });
    this.labelingConfig = labelingConfigOf(
      config,
      (a, b) => (this.versionOrder.get(a) ?? -1) - (this.versionOrder.get(b) ?? -1),
    );
    if (config.cluster.enabled) {
      this.cluster = new Cluster({
        config,
        log: options.logger,
        metrics: this.metrics,
        host: {
          state: () => this.state,
          labelingConfig: this.labelingConfig,
          servedVersion: () => this.served.version,
          windowRunning: () => this.windowRunning,
          onRequested: (id, atMs) => this.requestTimes.set(id, atMs),
          onStepDown: () => {
            // A window in flight is abandoned: only a coordinator publishes versions.
            this.windowGeneration++;
          },
          onCoordinator: () => {
            this.maybeRequest();
            void this.maybeWindow();
          },
        },
      });
    }
  }

  private get log(): Logger {
    return this.options.logger;
  }

  private get config(): Config {
    return this.options.config;
  }

  /** Starts every part; resolves once the daemon consumes and serves a model. */
  static async start(options: DaemonOptions): Promise<Daemon> {
    const daemon = new Daemon(options);
    try {
      await daemon.startParts();
    } catch (error) {
      await daemon.close();
      throw error;
    }
    return daemon;
  }

  private async startParts(): Promise<void> {
    const { config } = this;
    this.http = await startHttpServer({
      host: config.http.host,
      port: config.http.port,
      registry: this.metrics.registry,
      health: () => this.health(),
    });
    this.log.info({ event: 'http-started', url: this.http.url }, 'metrics and health endpoints up');

    [this.scoring, this.training] = await Promise.all([
      ScoringService.start(scoringServiceOptions(config)),
      TrainingService.start({ backend: config.backend }),
    ]);
    this.metrics.useBackend(this.scoring.backend);
    this.log.info(
      { event: 'backend', backend: this.scoring.backend, scoringNice: this.scoring.nice },
      'tfjs backend chosen',
    );

    // The main thread only loads and checks models; scoring and training run in the workers.
    await initBackend(config.backend);
    const m0 = await initialModel(config.model.m0Path, config.limits.numClasses, config.training.seed);
    this.m0 = { version: m0.version, artifact: m0.artifact, holdoutAuc: m0.holdoutAuc, publishedAtMs: 0 };
    this.m0Shape = m0.inputShape;
    this.log.info(
      { event: 'm0', version: m0.version, inputShape: formatShape(m0.inputShape) },
      `M0 ${m0.version} (ACFT_MODEL_M0_PATH=${config.model.m0Path}) takes ${formatShape(m0.inputShape)} patches`,
    );
    await this.restore();
    // The state on disk is the state now (restored, or empty): the first checkpoint is due one
    // interval from here, not at the first tick (which, with the pool filling from a backlog,
    // snapshotted it in the middle of the catch-up for nothing).
    this.lastCheckpointAt = Date.now();
    this.log.info(
      {
        event: 'restored',
        servedVersion: this.served.version,
        outbox: this.outbox.length,
        ...stateDigest(this.snapshot()),
      },
      'state restored',
    );

    await probeBrokers(kafkaOptions(config.kafka)).catch((cause: unknown) => {
      throw brokersError(config.kafka.brokers, cause);
    });
    this.probe = new BrokerProbe(kafkaOptions(config.kafka), BROKER_PROBE_TIMEOUT_MS);
    this.kafka = createKafka(config.kafka);
    await ensureTopics(this.kafka, config.kafka.topics, { scaleOut: this.cluster !== undefined });
    if (this.cluster)
      await checkCoPartitioned(this.kafka, [config.kafka.topics.candidates, config.kafka.topics.feedback]);
    this.producer = this.kafka.producer({
      allowAutoTopicCreation: false,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await this.producer.connect();
    this.metrics.brokerConnected.set(1);
    this.brokerAnswered();
    // Dead letters of the restored checkpoint that the broker had not confirmed.
    void this.deadLetters.flush();
    this.metrics.leader.set(this.cluster ? 0 : 1);
    if (this.resendRequests.length > 0) {
      this.log.warn(
        { event: 'requests-resent', count: this.resendRequests.length },
        'labeling requests whose send was not confirmed before the stop are sent again',
      );
      this.sendRequests(this.resendRequests);
      this.resendRequests = [];
    }

    this.subscriptions.add(
      this.scoreQueue$
        .pipe(
          bufferItems(config.scoring.microBatchMaxWaitMs, config.scoring.microBatchSize),
          mergeWhileBusy((ids) => this.scoreNew(ids), MAX_SCORING_BATCH),
        )
        .subscribe(),
    );
    this.subscriptions.add(interval(TICK_MS).subscribe(() => void this.tick()));

    // Scale-out: L is read from the ledger before candidates are replayed into the pool.
    await this.cluster?.start(this.kafka, this.producer);
    await this.startVersionsConsumer();
    await this.startConsumer();
    await this.cluster?.startCoordination();
    // Candidates restored from a checkpoint are scored with the served version.
    void this.rescoreAll(this.served.version);
    this.log.info(
      { event: 'started', servedVersion: this.served.version, pool: poolSize(this.state.pool) },
      'acft daemon running',
    );
  }

  // --- state: restore and checkpoint ---

  private async restore(): Promise<void> {
    const { config } = this;
    // Scale-out rebuilds the pool and L from the topics (docs/scale-out.md), not from a checkpoint.
    const snapshot = this.cluster ? undefined : await readCheckpoint(config.state.checkpointDir);
    let servedVersion: string | null = null;
    if (snapshot !== undefined) {
      const builtOn = checkpointLineage(snapshot);
      if (builtOn !== undefined && builtOn !== this.m0.version)
        throw new LineageMismatchError(
          config.state.checkpointDir,
          builtOn,
          config.model.m0Path,
          this.m0.version,
        );
      const core = fromSnapshot(snapshot, { decodePayload: decodeStored });
      this.state = { pool: core.pool, labels: core.labels };
      this.offsets = core.offsets;
      this.outbox = outboxOf(snapshot);
      for (const entry of this.outbox) this.durableOutbox.add(entry);
      this.deadLetters.restore(deadLettersOf(snapshot));
      // Requests whose send was in flight at the checkpoint may never have reached the topic: those
      // still outstanding are sent again once the producer is up.
      this.resendRequests = unconfirmedRequestsOf(snapshot).filter(
        (r) => getCandidate(this.state.pool, r.key)?.request?.requestId === r.requestId,
      );
      servedVersion = core.servedVersion;
      // The checkpoint names what was served: M0, or a stored version. A version in the store that
      // no checkpoint names (saved by a window that crashed before its checkpoint) is not served:
      // its window is planned again from the same inputs and finds it there.
      if (servedVersion === this.m0.version) servedVersion = null;
      // A window that was in flight is planned again from the same inputs (same version id).
      if (this.state.labels.inFlight !== null) {
        labelsReducer(
          this.state.labels,
          { type: 'window-abandoned', seq: this.state.labels.inFlight.seq },
          this.labelingConfig.labels,
        );
      }
    }
    const { ours, foreign } = splitByLineage(await this.store.list(), this.m0.version);
    if (foreign.length > 0)
      this.log.warn(
        { event: 'foreign-versions', count: foreign.length, m0: this.m0.version },
        foreignVersionsMessage(foreign, this.store.root, config.model.m0Path, this.m0.version),
      );
    const promoted = ours.filter((m) => m.info['status'] === 'promoted');
    const wanted =
      snapshot === undefined
        ? promoted.at(-1)
        : promoted.find((m) => servedVersion !== null && m.version === servedVersion);
    if (wanted) {
      try {
        const loaded = await this.store.load(this.store.locationOf(wanted.version));
        await this.checkInputShape(wanted.version, loaded.artifact);
        const auc = typeof wanted.info['holdoutAuc'] === 'number' ? wanted.info['holdoutAuc'] : null;
        await this.serve({
          version: wanted.version,
          artifact: loaded.artifact,
          holdoutAuc: auc,
          publishedAtMs: Date.parse(wanted.createdAt),
        });
        return;
      } catch (error) {
        this.log.error(
          { event: 'model-refused', version: wanted.version, err: error },
          'stored version refused; serving M0',
        );
      }
    }
    await this.serve(this.m0);
  }

  /** Refuses a version whose input is not M0's (it cannot score what M0's lineage takes). */
  private async checkInputShape(version: string, artifact: ModelArtifact): Promise<void> {
    const shape = await artifactInputShape(artifact);
    if (formatShape(shape) !== formatShape(this.m0Shape))
      throw new Error(
        `version ${version} takes ${formatShape(shape)} patches, M0 (ACFT_MODEL_M0_PATH=${this.config.model.m0Path}) takes ${formatShape(this.m0Shape)}`,
      );
  }

  private snapshot() {
    return toSnapshot(
      {
        pool: this.state.pool,
        labels: this.state.labels,
        offsets: this.offsets,
        servedVersion: this.served.version,
      },
      { encodePayload: encodeStored },
    );
  }

  /**
   * Checkpoints one at a time, in call order (a tick, a window's end and the shutdown can each ask
   * for one): two writers of the same temporary file would corrupt it. Each snapshots the state
   * when its turn comes.
   */
  private checkpoint(): Promise<void> {
    this.checkpointsQueued++;
    const turn = this.checkpoints.then(() => this.checkpointNow()).finally(() => this.checkpointsQueued--);
    this.checkpoints = turn.catch(() => undefined);
    return turn;
  }

  private async checkpointNow(): Promise<void> {
    if (this.cluster) {
      // Scale-out keeps its state in the topics and the shared store: the outbox is durable as is.
      for (const entry of this.outbox) this.durableOutbox.add(entry);
      return this.commitProcessed(this.cluster);
    }
    const started = performance.now();
    const outbox = [...this.outbox];
    const file = withLineage(
      withDeadLetters(
        withUnconfirmedRequests(withOutbox(this.snapshot(), outbox), this.unconfirmedRequests.values()),
        this.deadLetters.unsent,
      ),
      this.m0.version,
    );
    const committed = await checkpointThenCommit(file, {
      write: async (snapshot) => {
        await writeCheckpoint(this.config.state.checkpointDir, snapshot);
      },
      written: () => {
        for (const entry of outbox) this.durableOutbox.add(entry);
        faultPoint('after-checkpoint-write');
        this.metrics.recordCheckpoint((performance.now() - started) / 1000);
        this.lastCheckpointAt = Date.now();
      },
      commit: (offsets) => this.commitOffsets(offsets),
      live: () => this.offsets,
    });
    if (committed.length > 0) faultPoint('after-offset-commit');
  }

  /**
   * Commits these offsets for the group, once the broker acknowledged them, and records them as
   * committed. Logged at debug level, so that a fault test can tell what was committed.
   */
  private async commitOffsets(commits: readonly PartitionOffset[]): Promise<void> {
    if (commits.length === 0 || !this.consumer) return;
    await commitConfirmed(this.consumer, commits);
    this.offsets = markCommitted(this.offsets, commits);
    this.brokerAnswered();
    this.log.debug({ event: 'offsets-committed', offsets: commits }, 'offsets committed');
  }

  /**
   * Scale-out writes no checkpoint: the pool and L are rebuilt from the topics, and a message's
   * effects are durable once it is processed (labels are in the ledger). Commits only partitions
   * still owned (revoked ones are forgotten at the rebalance).
   */
  private async commitProcessed(cluster: Cluster): Promise<void> {
    this.lastCheckpointAt = Date.now();
    await this.commitOffsets(cluster.commits(committable(this.offsets)));
  }

  // --- Kafka in ---

  private async startConsumer(): Promise<void> {
    const { kafka: k } = this.config;
    this.consumer = this.kafka.consumer({
      groupId: k.groupId,
      sessionTimeout: k.sessionTimeoutMs,
      heartbeatInterval: k.heartbeatIntervalMs,
      rebalanceTimeout: k.rebalanceTimeoutMs,
      maxWaitTimeInMs: 250,
      maxBytesPerPartition: k.fetchMaxBytesPerPartition,
      maxBytes: 4 * k.fetchMaxBytesPerPartition,
      allowAutoTopicCreation: false,
      ...(this.cluster ? { partitionAssigners: [this.cluster.assigner()] } : {}),
    });
    this.cluster?.useConsumer(this.consumer);
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      const owned = Object.entries(e.payload.memberAssignment).flatMap(([topic, parts]) =>
        parts.map((partition) => `${topic}:${partition}`),
      );
      const lost = ownedPartitions(this.offsets)
        .map((tp) => `${tp.topic}:${tp.partition}`)
        .filter((tp) => !owned.includes(tp));
      if (lost.length > 0) {
        this.offsets = revoke(
          this.offsets,
          lost.map((tp) => ({
            topic: tp.slice(0, tp.lastIndexOf(':')),
            partition: Number(tp.slice(tp.lastIndexOf(':') + 1)),
          })),
        );
      }
      for (const topic of [k.topics.candidates, k.topics.feedback])
        this.metrics.ownedPartitions.set({ topic }, e.payload.memberAssignment[topic]?.length ?? 0);
      this.cluster?.onAssignment(e.payload.memberAssignment);
      resumePendingClock(this.state.labels, Date.now());
      this.joined = true;
      this.brokerAnswered();
      this.log.info({ event: 'partitions-assigned', partitions: owned }, 'consumer group joined');
      if (!this.cluster)
        void this.reconcileOffsets().catch((error: unknown) => {
          if (!this.closing)
            this.log.warn(
              { event: 'offsets-reconcile-failed', err: error },
              "the group's committed offsets could not be read back; reading on from them",
            );
        });
    });
    this.consumer.on(this.consumer.events.CRASH, (e) => {
      this.log.error(
        { event: 'consumer-crash', err: e.payload.error, restart: e.payload.restart },
        'consumer crashed',
      );
      if (isBrokerError(e.payload.error)) this.brokerFailed(`consumer: ${e.payload.error.name}`);
      // kafkajs does not restart a consumer after a non-retriable error: without it the daemon would
      // sit there consuming nothing, so it exits for its supervisor instead.
      if (!e.payload.restart && !this.closing)
        this.fatal(
          new Error('the Kafka consumer stopped after a non-retriable error', { cause: e.payload.error }),
        );
    });
    // A fetch or heartbeat answered is the broker there (a request timeout ridden out by the retries
    // emits no CONNECT); between them, BrokerHealth probes.
    this.consumer.on(this.consumer.events.CONNECT, () => this.brokerAnswered());
    this.consumer.on(this.consumer.events.FETCH, () => this.brokerAnswered());
    this.consumer.on(this.consumer.events.HEARTBEAT, () => this.brokerAnswered());
    this.consumer.on(this.consumer.events.REQUEST_TIMEOUT, () =>
      this.brokerFailed('consumer request timed out'),
    );
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [k.topics.candidates, k.topics.feedback], fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.onBatch(payload),
    });
  }

  /**
   * Single instance: the state, not the group's commit, says where each partition's effects end.
   * At every assignment the group's committed offsets are read back. A partition whose commit
   * differs from the state's position is moved to that position (a commit past it would skip
   * messages the state never saw; one behind it is read again for nothing), and its commit is set
   * to what the broker holds, so that the next checkpoint commits the position whatever an earlier
   * run believed it had committed.
   */
  private async reconcileOffsets(): Promise<void> {
    const { candidates, feedback } = this.config.kafka.topics;
    const positions = checkpointPositions(this.offsets).filter((p) => p.position !== null);
    if (positions.length === 0) return;
    const admin = this.kafka.admin();
    await admin.connect();
    let groupOffsets: Awaited<ReturnType<typeof admin.fetchOffsets>>;
    try {
      groupOffsets = await admin.fetchOffsets({
        groupId: this.config.kafka.groupId,
        topics: [candidates, feedback],
      });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    for (const p of positions) {
      const raw = groupOffsets
        .find((t) => t.topic === p.topic)
        ?.partitions.find((x) => x.partition === p.partition)?.offset;
      const committed = raw === undefined || Number(raw) < 0 ? null : Number(raw);
      this.offsets = setCommitted(this.offsets, [{ ...p, committed }]);
      if (committed === p.position) continue;
      this.consumer.seek({ topic: p.topic, partition: p.partition, offset: String(p.position) });
      // Behind: a crash between a checkpoint and its commit, expected. Ahead: never by this daemon.
      const ahead = committed !== null && committed > (p.position as number);
      this.log[ahead ? 'warn' : 'info'](
        {
          event: 'offsets-reconciled',
          topic: p.topic,
          partition: p.partition,
          committed,
          position: p.position,
        },
        ahead
          ? "the group's committed offset is past the state's position: reading again from the state's"
          : "the group's committed offset is behind the state's position: reading on from the state's",
      );
    }
  }

  private async startVersionsConsumer(): Promise<void> {
    // Every instance follows model-versions from the start, in a group of its own.
    this.versionsConsumer = this.kafka.consumer({
      groupId: `${this.config.kafka.groupId}.versions.${hostname()}.${process.pid}.${Date.now()}`,
      maxWaitTimeInMs: 250,
      allowAutoTopicCreation: false,
      // Scale-out: a version counts once the coordinator's transaction commits.
      readUncommitted: false,
    });
    this.cluster?.followReads(this.versionsConsumer);
    await this.versionsConsumer.connect();
    await this.versionsConsumer.subscribe({
      topics: [this.config.kafka.topics.modelVersions],
      fromBeginning: true,
    });
    await this.versionsConsumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const parsed = parseModelVersion(message.value);
        if (parsed.ok) {
          this.cluster?.onVersion(parsed.value);
          this.publishedVersions.add(parsed.value.version);
          await this.onModelVersion(parsed.value);
        }
        this.cluster?.versionRead(partition, message.offset);
        this.versionsRead.set(partition, Number(message.offset) + 1);
      },
    });
    await this.catchUpVersions();
    await this.flushOutbox();
  }

  /**
   * Waits until model-versions is read up to where it ended at start-up, so that the outbox and the
   * windows know which versions are already published (bounded: a slow read only risks re-sending
   * an identical message).
   */
  private async catchUpVersions(): Promise<void> {
    const topic = this.config.kafka.topics.modelVersions;
    let ends: { partition: number; offset: string }[] | undefined;
    // Right after the topic is created its leader may not be known everywhere yet: try again.
    for (let attempt = 1; ends === undefined && attempt <= 10; attempt++) {
      const admin = this.kafka.admin();
      try {
        await admin.connect();
        ends = await admin.fetchTopicOffsets(topic);
      } catch (error) {
        if (attempt === 10) {
          this.log.warn(
            { event: 'versions-catch-up-failed', topic, err: error },
            'model-versions end not known at start',
          );
          return;
        }
        await new Promise((r) => setTimeout(r, 500));
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    }
    if (ends === undefined) return;
    const known = ends;
    const caughtUp = () =>
      known.every(
        (p) => Number(p.offset) === 0 || (this.versionsRead.get(p.partition) ?? 0) >= Number(p.offset),
      );
    const deadline = Date.now() + 60_000;
    while (!caughtUp() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (!caughtUp())
      this.log.warn(
        { event: 'versions-catch-up-timeout', topic },
        'model-versions not read to its end at start',
      );
  }

  /** Sends the outbox messages whose versions are not on their topic yet; keeps the ones that fail. */
  private flushOutbox(): Promise<void> {
    this.flushingOutbox ??= this.sendOutbox().finally(() => {
      this.flushingOutbox = undefined;
    });
    return this.flushingOutbox;
  }

  private async sendOutbox(): Promise<void> {
    try {
      for (const entry of this.outbox.filter((e) => this.durableOutbox.has(e))) {
        // Scale-out: a coordinator that stepped down leaves the version to its successor, whose
        // retried window derives the same version id and reuses the stored artifact.
        if (this.cluster && !this.cluster.isCoordinator) {
          this.outbox = this.outbox.filter((e) => e !== entry);
          continue;
        }
        if (!this.publishedVersions.has(entry.key)) {
          const versionMessages = { topic: entry.topic, messages: [{ key: entry.key, value: entry.value }] };
          // Scale-out: in the coordinator's transaction, refused if another instance took over.
          if (this.cluster) await this.cluster.writeAsCoordinator([versionMessages]);
          else await this.producer.send(versionMessages);
          this.brokerAnswered();
          this.publishedVersions.add(entry.key);
          faultPoint('after-version-published');
        }
        this.outbox = this.outbox.filter((e) => e !== entry);
      }
    } catch (error) {
      this.log.error(
        { event: 'publish-failed', err: error },
        'model version not published yet; it stays in the outbox and is sent again',
      );
    }
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const messages = batch.messages;
    const candidates = batch.topic === this.config.kafka.topics.candidates;
    this.inFlightBatches++;
    try {
      let at = 0;
      let intake = true;
      while (intake && at < messages.length) {
        if (!payload.isRunning() || payload.isStale() || this.closing) break;
        // A chunk of the batch is processed synchronously, with no turn of the event loop, unless a
        // message needs I/O (a dead letter, a scale-out ledger write): the chunk's offsets are
        // then resolved and the group heartbeat sent once, not per message.
        const end = Math.min(messages.length, at + INGEST_CHUNK);
        let resolved: string | undefined;
        while (at < end) {
          // Backpressure inside a batch too: the rest of it is fetched again after the resume.
          if (candidates && this.applyBackpressure() === 'paused') {
            intake = false;
            break;
          }
          const message = messages[at++]!;
          const source = { topic: batch.topic, partition: batch.partition, offset: Number(message.offset) };
          const io = this.ingest(source, message);
          if (io === 'held') {
            // Tracked by the dead letter holding it: done when the broker confirms that.
            resolved = message.offset;
            continue;
          }
          if (io !== undefined) {
            // Pending while its I/O runs: a checkpoint meanwhile must not count it as done.
            this.offsets = track(this.offsets, source);
            this.flushIntake();
            if ((await io) !== 'held') this.offsets = done(this.offsets, source);
            resolved = message.offset;
            // The I/O was a turn of the event loop: a rebalance or a seek may have come meanwhile.
            break;
          }
          this.offsets = trackDone(this.offsets, source);
          resolved = message.offset;
        }
        this.flushIntake();
        if (resolved !== undefined) payload.resolveOffset(resolved);
        await payload.heartbeat();
      }
    } finally {
      this.inFlightBatches--;
    }
    // Messages of this partition still behind the last one processed.
    const last = messages.at(-1);
    if (last !== undefined) {
      const behind = Number(batch.highWatermark) - Number(last.offset) - 1;
      this.metrics.consumerLag.set(
        { topic: batch.topic, partition: String(batch.partition) },
        Math.max(0, behind),
      );
    }
    this.applyBackpressure();
    this.publishGauges();
  }

  /**
   * Hands the candidates admitted since the last call to scoring, and counts those ingested: once
   * per chunk of a batch, not per message.
   */
  private flushIntake(): void {
    this.reportDropped();
    if (this.ingestedUncounted > 0) {
      this.metrics.candidatesIngested.inc(this.ingestedUncounted);
      this.ingestedUncounted = 0;
    }
    if (this.admitted.length === 0) return;
    const ids = this.admitted;
    this.admitted = [];
    this.scoreQueue$.next(ids);
  }

  /**
   * Validates a message and applies it to the state. Synchronous, unless the message needs I/O (a
   * scale-out ledger write): then it returns the promise of that I/O, which settles once the
   * message's effects are recorded. 'held': the message was dead-lettered and its offset waits for
   * the broker to confirm the dead letter (scale-out, which writes no checkpoint to hold it in).
   */
  private ingest(source: SourceRef, message: KafkaMessage): Intake {
    const { config } = this;
    const now = Date.now();
    try {
      if (source.topic === config.kafka.topics.candidates) {
        const taken = takeCandidate(
          this.state,
          message,
          source,
          now,
          config.limits,
          this.labelingConfig,
          (stored) => this.patchShapeRefusal(stored),
        );
        if (!taken.ok) return this.deadLetter(source, message, taken.reason, taken.error);
        const step = taken.value;
        this.ingestedUncounted++;
        const refused = step.effects.find((e) => e.type === 'refused');
        if (refused?.type === 'refused' && refused.reason === 'too-large')
          return this.deadLetter(
            source,
            message,
            'limit-exceeded',
            `the candidate alone needs more than the pool's ACFT_POOL_MAX_BYTES (${this.labelingConfig.pool.maxBytes} bytes)`,
          );
        return this.settle(this.handleEffects(step.effects, now), step.effects, source, message);
      }
      const parsed = parseFeedback(message.value, {
        numClasses: config.limits.numClasses,
        maxPayloadBytes: config.limits.maxPayloadBytes,
        // No key is a mismatch, not "unchecked": scale-out routes feedback to its candidate by key.
        key: message.key,
      });
      if (!parsed.ok) return this.deadLetter(source, message, parsed.reason, parsed.error);
      const f = parsed.value;
      const step = ingestFeedback(
        this.state,
        {
          candidateId: f.candidateId,
          label: f.label,
          annotatorId: f.annotatorId,
          timeMs: Date.parse(f.time),
          ...(f.requestId ? { requestId: f.requestId } : {}),
          source,
        },
        now,
        this.labelingConfig,
      );
      return this.settle(this.handleEffects(step.effects, now), step.effects, source, message);
    } catch (error) {
      return this.failedInProcessing(error, source, message);
    }
  }

  /** Why a stored candidate cannot be scored by M0's lineage (its patches are another shape), if so. */
  private patchShapeRefusal(stored: StoredCandidate): ParseFailure | undefined {
    const [h, w, c] = this.m0Shape;
    if (stored.kind === 'patches') {
      const [, ph, pw, pc] = stored.shape;
      if (ph === h && pw === w && pc === c) return undefined;
    }
    // A stream repeats a few image shapes: one found to fit is not worked out again (per message
    // it cost as much as the rest of the intake).
    const plain = stored.kind === 'image' && stored.roi === undefined && stored.augmentation === undefined;
    const key = plain ? stored.shape.join('x') : undefined;
    if (key !== undefined && this.fittingShapes.has(key)) return undefined;
    const augmentation = stored.augmentation ?? augmentationSpecOf(this.config.scoring);
    const shape = patchShapeOf(stored, augmentation);
    const want = formatShape(this.m0Shape);
    if (typeof shape === 'string')
      return rejected('shape-mismatch', `its patches cannot be made (${shape}); the model takes ${want}`);
    if (formatShape(shape) === want) {
      if (key !== undefined && this.fittingShapes.size < 256) this.fittingShapes.add(key);
      return undefined;
    }
    return rejected(
      'shape-mismatch',
      `its patches are ${formatShape(shape)}, the model (M0 ${this.m0.version}, ACFT_MODEL_M0_PATH) takes ${want}`,
    );
  }

  /** The I/O left of a message's step (the scale-out bookkeeping), if any. */
  private settle(
    io: Promise<void> | undefined,
    effects: readonly LabelingEffect<StoredCandidate>[],
    source: SourceRef,
    message: KafkaMessage,
  ): Intake {
    if (io === undefined && this.cluster === undefined) return undefined;
    const cluster = this.cluster;
    return (async () => {
      try {
        await io;
        await cluster?.afterStep(effects, source);
        return undefined;
      } catch (error) {
        return this.failedInProcessing(error, source, message);
      }
    })();
  }

  private failedInProcessing(error: unknown, source: SourceRef, message: KafkaMessage): 'held' | undefined {
    // Scale-out: a ledger write that failed is retried with the batch, not dead-lettered.
    if (error instanceof LedgerWriteError) throw error;
    // A message that throws inside processing is poison: dead-lettered, never retried forever.
    this.log.error(
      {
        event: 'poison',
        topic: source.topic,
        partition: source.partition,
        offset: source.offset,
        err: error,
      },
      'message failed in processing',
    );
    return this.deadLetter(source, message, 'poison', error);
  }

  /**
   * Queues a dead letter for a message (sent in order, retried until the broker confirms it, kept
   * in the checkpoint until then). Scale-out keeps no checkpoint: there the message's offset is
   * held ('held') until the dead letter is confirmed.
   */
  private deadLetter(
    source: SourceRef,
    message: Pick<KafkaMessage, 'key' | 'value'>,
    reason: DeadLetterReason,
    error: unknown,
    options: { fromMessage?: boolean } = {},
  ): 'held' | undefined {
    // Scale-out: a candidate replayed to rebuild a pool was dead-lettered when first read.
    if (this.cluster?.isReplay(source)) return undefined;
    const dl = createDeadLetter({
      source: { topic: source.topic, partition: source.partition, offset: source.offset, key: message.key },
      reason,
      error,
      payload: message.value,
      maxPayloadBytes: this.config.limits.deadLetterPayloadBytes,
    });
    const hold = this.cluster !== undefined && options.fromMessage !== false;
    if (hold) this.offsets = track(this.offsets, source);
    this.deadLetters.push({
      key: dl.source.key ?? null,
      value: encodeDeadLetter(dl),
      ...(hold ? { hold: source } : {}),
    });
    this.metrics.deadLettered.inc({ reason });
    this.metrics.deadLetterUnsent.set(this.deadLetters.size);
    this.log.warn(
      {
        event: 'dead-letter',
        reason,
        topic: source.topic,
        partition: source.partition,
        offset: source.offset,
      },
      'message dead-lettered',
    );
    return hold ? 'held' : undefined;
  }

  private async sendDeadLetters(batch: readonly QueuedDeadLetter[]): Promise<void> {
    await this.producer.send({
      topic: this.config.kafka.topics.deadLetter,
      messages: batch.map((d) => ({ key: d.key, value: d.value })),
    });
  }

  private deadLettersSent(batch: readonly QueuedDeadLetter[]): void {
    this.brokerAnswered();
    for (const d of batch) if (d.hold !== undefined) this.offsets = done(this.offsets, d.hold);
    this.metrics.deadLetterUnsent.set(this.deadLetters.size);
  }

  /**
   * Records effects in the metrics and queues: synchronous. Candidates that leave the pool
   * unlabeled are gathered for {@link reportDropped}; feedback that waited in vain is dead-lettered
   * from its own message's position.
   */
  private handleEffects(
    effects: readonly (LabelingEffect<StoredCandidate> | PoolEffect<StoredCandidate>)[],
    now: number,
  ): undefined {
    for (const e of effects) {
      switch (e.type) {
        case 'admitted':
          this.arrivals.set(e.id, now);
          this.admitted.push(e.id);
          break;
        case 'evicted':
        case 'expired':
          this.dropped[e.type].push(e.id);
          this.arrivals.delete(e.id);
          this.scoring.forget([e.id]);
          break;
        case 'discarded':
          this.arrivals.delete(e.id);
          this.scoring.forget([e.id]);
          break;
        case 'refused':
          // Arrived past the pool's TTL, or at a full pool of candidates that may not be evicted:
          // it leaves unlabeled like an expired or evicted one (too-large is dead-lettered instead).
          if (e.reason === 'expired' || e.reason === 'pool-full')
            this.dropped[e.reason === 'expired' ? 'expired' : 'evicted'].push(e.id);
          if (e.reason !== 'too-large')
            this.log.debug(
              { event: 'candidate-refused', reason: e.reason },
              'candidate not admitted to the pool',
            );
          break;
        case 'lease-expired':
          this.metrics.labelingRequestsExpired.inc();
          this.requestTimes.delete(e.id);
          break;
        case 'first-label': {
          const asked = this.requestTimes.get(e.candidateId);
          if (asked !== undefined) {
            this.metrics.labelingRequestsAnswered.inc();
            this.metrics.labelLatency.observe((now - asked) / 1000);
            this.metrics.countRequestedLabel(String(e.label));
            this.requestTimes.delete(e.candidateId);
            this.metrics.feedback.inc({ kind: 'requested' });
          } else {
            this.metrics.feedback.inc({ kind: 'unsolicited' });
          }
          break;
        }
        case 'duplicate-feedback':
        case 'stale-feedback':
        case 'already-labeled':
          this.metrics.feedback.inc({ kind: 'duplicate' });
          break;
        case 'label-changed':
          this.metrics.feedback.inc({ kind: 'conflict' });
          this.log.info(
            { event: 'label-changed', from: e.from, to: e.to, trained: e.trained },
            'a candidate label changed',
          );
          break;
        case 'feedback-pending':
          this.metrics.feedback.inc({ kind: 'pending' });
          break;
        case 'dead-letter': {
          this.metrics.feedback.inc({ kind: 'unknown' });
          // Waiting feedback of a checkpoint from before sources were kept has none: partition 0, offset 0.
          const source = e.feedback.source ?? {
            topic: this.config.kafka.topics.feedback,
            partition: 0,
            offset: 0,
          };
          this.deadLetter(
            source,
            { key: Buffer.from(e.feedback.candidateId), value: null },
            e.reason,
            `feedback for a candidate never seen (${e.cause})`,
            { fromMessage: false },
          );
          break;
        }
        default:
          break;
      }
    }
    return undefined;
  }

  /** Logs (with their ids) and counts the candidates that left the pool unlabeled since the last call. */
  private reportDropped(): void {
    for (const reason of DROP_REASONS) {
      const ids = this.dropped[reason];
      if (ids.length === 0) continue;
      this.dropped[reason] = [];
      this.metrics.candidatesDropped.inc({ reason }, ids.length);
      this.log.info(
        { event: 'candidates-dropped', reason, count: ids.length, ids },
        reason === 'expired'
          ? 'candidates left the pool unlabeled: their pool TTL ran out'
          : 'candidates left the pool unlabeled: evicted by the pool bound',
      );
    }
  }

  /** Pauses or resumes candidate intake by the pool's watermarks; says whether intake is paused. */
  private applyBackpressure(): 'paused' | 'running' {
    const p = pressure(this.state.pool, this.labelingConfig.pool);
    const topics = [{ topic: this.config.kafka.topics.candidates }];
    if (p === 'pause' && !this.paused) {
      this.consumer.pause(topics);
      this.paused = true;
      this.metrics.poolPaused.set(1);
      this.log.info(
        { event: 'paused', pool: poolSize(this.state.pool) },
        'candidate intake paused (pool high watermark)',
      );
    } else if (p === 'resume' && this.paused) {
      this.consumer.resume(topics);
      this.paused = false;
      this.metrics.poolPaused.set(0);
      this.log.info({ event: 'resumed', pool: poolSize(this.state.pool) }, 'candidate intake resumed');
    }
    return this.paused ? 'paused' : 'running';
  }

  private publishGauges(): void {
    this.metrics.poolCandidates.set(poolSize(this.state.pool));
    this.metrics.poolBytes.set(poolBytes(this.state.pool));
    this.metrics.labelingRequestsOutstanding.set(
      this.cluster
        ? this.cluster.isCoordinator
          ? this.cluster.outstandingCount()
          : 0
        : requestedCount(this.state.pool),
    );
    const cache = this.scoring?.featureCacheStats();
    this.metrics.featureCacheBytes.set(cache?.bytes ?? 0);
    this.metrics.featureCacheCandidates.set(cache?.entries ?? 0);
  }

  // --- scoring ---

  /**
   * Scores stored candidates with the served model in the scoring workers, one call per patch
   * recipe (image candidates with the configured or their own augmentation, patch candidates as
   * they came). Used for the pool and for the labeled set (H).
   */
  private async scoreStored(
    entries: readonly { id: string; stored: StoredCandidate }[],
  ): Promise<ScoreBatchResult[]> {
    const { config } = this;
    const groups = new Map<string, { id: string; stored: StoredCandidate }[]>();
    for (const entry of entries) {
      const key = recipeKey(entry.stored);
      const list = groups.get(key) ?? [];
      list.push(entry);
      groups.set(key, list);
    }
    const results: ScoreBatchResult[] = [];
    for (const list of groups.values()) {
      const first = list[0]!.stored;
      const augmentation = first.augmentation ?? augmentationSpecOf(config.scoring);
      const m = first.kind === 'patches' ? first.shape[0]! : (augmentation.m ?? config.scoring.m);
      const started = performance.now();
      const result = await this.scoring.score(
        list.map((x) => scoringInput(x.id, x.stored)),
        {
          m,
          augmentation: { ...augmentation, m },
          seed: config.scoring.patchSeed,
          scoreOptions: scoreOptionsOf(config.scoring),
        },
      );
      this.metrics.scoringBatch.observe((performance.now() - started) / 1000);
      this.metrics.patchesScored.inc(result.patches);
      this.metrics.patchesFromFeatureCache.inc(result.patchesFromCache);
      results.push(result);
    }
    return results;
  }

  /** Scores pool candidates and records their freshest scores in the pool. */
  private async scoreIds(ids: readonly string[]): Promise<void> {
    const entries = ids.flatMap((id) => {
      const c = getCandidate(this.state.pool, id);
      return c ? [{ id, stored: c.payload }] : [];
    });
    for (const result of await this.scoreStored(entries)) {
      const now = Date.now();
      poolReducer(
        this.state.pool,
        {
          type: 'scored',
          scores: result.results.map((r) => ({
            id: r.id,
            value: r.score,
            entropy: r.entropy,
            diversity: r.diversity,
            dominantClass: r.dominantClass,
            meanProbs: r.meanProbs,
            modelVersion: result.version,
            scoredAtMs: now,
          })),
        },
        this.labelingConfig.pool,
      );
    }
  }

  /** {@link scoreIds}, with a candidate that poisons its batch dead-lettered and dropped from the pool. */
  private scoreIdsIsolating(ids: readonly string[]): Promise<void> {
    return isolatePoison(
      ids,
      (part) => this.scoreIds(part),
      (id, error) => {
        const candidate = getCandidate(this.state.pool, id);
        if (!candidate) return Promise.resolve();
        poolReducer(this.state.pool, { type: 'discard', id, reason: 'poison' }, this.labelingConfig.pool);
        this.arrivals.delete(id);
        this.log.error(
          {
            event: 'poison',
            topic: candidate.source.topic,
            partition: candidate.source.partition,
            offset: candidate.source.offset,
            err: error,
          },
          'candidate failed in scoring',
        );
        // Patches of another shape than the model takes are caught at intake; one that got through
        // (a version of another input shape, say) is still named for what it is.
        const reason =
          error instanceof Error && /the model takes/.test(error.message) ? 'shape-mismatch' : 'poison';
        this.deadLetter(candidate.source, { key: Buffer.from(id), value: null }, reason, error, {
          fromMessage: false,
        });
        return Promise.resolve();
      },
    );
  }

  private async scoreNew(ids: string[]): Promise<void> {
    try {
      await this.scoreIdsIsolating(ids);
      const now = Date.now();
      for (const id of ids) {
        const at = this.arrivals.get(id);
        if (at !== undefined) this.metrics.scoringLatency.observe((now - at) / 1000);
        this.arrivals.delete(id);
      }
      this.maybeRequest();
    } catch (error) {
      if (!this.closing)
        this.log.error({ event: 'scoring-failed', err: error }, 'scoring a micro-batch failed');
    }
  }

  /** Rescores the whole pool with `version`, highest previous scores first; a newer call interrupts it. */
  private async rescoreAll(version: string): Promise<void> {
    const generation = ++this.rescoreGeneration;
    const started = performance.now();
    const total = poolSize(this.state.pool);
    let doneCount = 0;
    try {
      for (;;) {
        if (generation !== this.rescoreGeneration || this.closing) return;
        const ids = rescoreOrder(this.state.pool, version, this.labelingConfig.pool.compareVersions).slice(
          0,
          256,
        );
        if (ids.length === 0) break;
        await this.scoreIdsIsolating(ids);
        doneCount += ids.length;
        this.metrics.rescoreProgress.set(total > 0 ? Math.min(1, doneCount / total) : 1);
      }
      this.metrics.rescoreProgress.set(1);
      this.metrics.rescoreDuration.observe((performance.now() - started) / 1000);
      this.log.info(
        { event: 'rescored', version, candidates: doneCount, seconds: (performance.now() - started) / 1000 },
        'pool rescored',
      );
      this.maybeRequest();
    } catch (error) {
      if (!this.closing) this.log.error({ event: 'rescore-failed', err: error }, 'rescoring failed');
    }
  }

  private async serve(model: Served): Promise<void> {
    await this.scoring.setModel({ version: model.version, ...model.artifact } as ModelVersionArtifact);
    this.served = model;
    if (!this.versionOrder.has(model.version)) this.versionOrder.set(model.version, this.versionOrder.size);
    this.metrics.serveModelVersion(model.version, model.holdoutAuc ?? undefined);
    this.log.info(
      { event: 'serving', version: model.version, holdoutAuc: model.holdoutAuc },
      'model version served',
    );
  }

  private async onModelVersion(msg: ModelVersionMessage): Promise<void> {
    if (msg.status !== 'promoted' || msg.version === this.served.version || this.closing) return;
    // Replaying the topic from its start must not walk the served model back through old versions.
    if (Date.parse(msg.time) <= this.served.publishedAtMs) return;
    // Only versions of this M0's lineage (a topic reused with another M0 holds others).
    if (msg.m0 !== this.m0.version) {
      this.log.info(
        { event: 'model-refused', version: msg.version, m0: msg.m0 ?? null, reason: 'lineage' },
        `version ${msg.version} descends from another M0 than ACFT_MODEL_M0_PATH's (${this.m0.version}): not served`,
      );
      return;
    }
    try {
      const loaded = await this.store.load(msg.artifact.location, msg.artifact.sha256);
      await this.checkInputShape(msg.version, loaded.artifact);
      await this.serve({
        version: msg.version,
        artifact: loaded.artifact,
        holdoutAuc: msg.metrics.holdoutAuc,
        publishedAtMs: Date.parse(msg.time),
      });
      void this.rescoreAll(msg.version);
    } catch (error) {
      this.log.error(
        { event: 'model-refused', version: msg.version, err: error },
        'published version refused; the last good version keeps serving',
      );
    }
  }

  // --- labeling requests ---

  private maybeRequest(): void {
    if (this.closing || this.windowRunning || !this.producer) return;
    // Scale-out: the coordinator selects from every instance's shortlist; the others never ask.
    if (this.cluster) return this.cluster.maybeRequest();
    const b = this.config.selection.b;
    const outstanding = requestedCount(this.state.pool);
    const need = b - newLabelsSinceWindow(this.state.labels) - outstanding;
    if (need <= 0) return;
    const now = Date.now();
    const planned = planRequests(this.state.pool, {
      b: need,
      omega: this.config.selection.omega,
      randomness: this.config.selection.randomness,
      seed: deriveSeed(
        this.config.selection.seed,
        'select',
        this.state.labels.windowSeq,
        this.requestRound++,
      ),
      modelVersion: this.served.version,
      windowSeq: this.state.labels.windowSeq,
      now,
    });
    if (planned.requests.length === 0) return;
    const step = poolReducer(this.state.pool, planned.event, this.labelingConfig.pool);
    const issued = new Set(step.effects.filter((e) => e.type === 'requested').map((e) => e.id));
    const leaseExpiresAt = new Date(now + this.config.selection.leaseMs).toISOString();
    const messages = planned.requests
      .filter((r) => issued.has(r.candidateId))
      .map((r): UnconfirmedRequest => {
        this.requestTimes.set(r.candidateId, now);
        return {
          requestId: r.requestId,
          key: r.candidateId,
          value: encodePlannedRequest(r, {
            shortlistSize: planned.selection.shortlist.length,
            criterion: this.config.scoring.criterion,
            leaseExpiresAt,
            time: new Date(now).toISOString(),
          }),
        };
      });
    if (messages.length === 0) return;
    this.publishGauges();
    this.log.info(
      { event: 'requests', count: messages.length, version: this.served.version },
      'labeling requests issued',
    );
    this.sendRequests(messages);
  }

  /**
   * Publishes labeling requests without waiting. Until the broker confirms them they are
   * checkpointed as unconfirmed (sent again after a restart); requests that cannot be published
   * are withdrawn.
   */
  private sendRequests(requests: readonly UnconfirmedRequest[]): void {
    for (const r of requests) this.unconfirmedRequests.set(r.requestId, r);
    const requestIds = requests.map((r) => r.requestId);
    const settled = () => {
      for (const id of requestIds) this.unconfirmedRequests.delete(id);
    };
    const sending = this.producer
      .send({
        topic: this.config.kafka.topics.labelingRequests,
        messages: requests.map((r) => ({ key: r.key, value: r.value })),
      })
      .then(() => {
        settled();
        // Counted once the broker has them: a request withdrawn after a failed send never was.
        this.metrics.labelingRequestsEmitted.inc(requests.length);
        faultPoint('after-requests-sent');
      })
      .catch((error: unknown) => {
        settled();
        // Nobody will answer a request that was never published: its candidates go back to the
        // pool now, not when the lease ends (hours by default), and are asked again later.
        const withdrawn = poolReducer(
          this.state.pool,
          { type: 'requests-withdrawn', requestIds },
          this.labelingConfig.pool,
        ).effects.filter((e) => e.type === 'request-withdrawn');
        for (const e of withdrawn) this.requestTimes.delete(e.id);
        this.log.error(
          { event: 'publish-failed', err: error, withdrawn: withdrawn.length },
          'labeling requests not published; they are withdrawn and their candidates asked again later',
        );
        this.publishGauges();
      });
    this.requestSends.add(sending);
    void sending.finally(() => this.requestSends.delete(sending));
  }

  // --- fine-tuning windows ---

  private async maybeWindow(): Promise<void> {
    if (this.windowRunning || this.closing) return;
    if (this.cluster && !this.cluster.isCoordinator) return;
    const trigger = shouldStartWindow(this.state.labels, Date.now(), {
      b: this.config.selection.b,
      maxIntervalMs: this.config.training.windowMaxIntervalMs,
    });
    if (trigger === null) return;
    this.windowRunning = true;
    const generation = ++this.windowGeneration;
    const started = Date.now();
    const { config } = this;
    const t = config.training;
    const strategy = STRATEGIES[t.strategy];
    const parent = this.served;
    let seq = -1;
    try {
      // H needs the serving model's predictions on L.
      const predicted = new Map<string, number>();
      if (strategy.trainOn === 'HQ') {
        const labeled = trainableCandidates(this.state.labels).map((c) => ({ id: c.id, stored: c.payload }));
        for (const result of await this.scoreStored(labeled)) {
          for (const x of result.results) predicted.set(x.id, x.dominantClass);
        }
      }
      const plan = planWindow(this.state.labels, strategy, (id) => predicted.get(id) ?? -1, {
        replayPerClass: t.replayPerClass,
        seed: t.seed,
      });
      seq = plan.seq;
      labelsReducer(
        this.state.labels,
        { type: 'window-started', plan, now: started },
        this.labelingConfig.labels,
      );
      const train = trainingExamples(this.state.labels, plan.train);
      const holdout = holdoutCandidates(this.state.labels);
      const coldStart = parent.version === this.m0.version && t.coldStartFullLr;
      const lrFactor = strategy.continual && !coldStart ? t.continualLrFactor : 1;
      const fineTune = {
        optimizer: t.optimizer,
        learningRate: t.learningRate * lrFactor,
        headLearningRateMultiplier: t.headLearningRateMultiplier,
        momentum: t.momentum,
        gamma: t.gamma,
        epochs: t.epochs,
        batchSize: t.batchSize,
        classBalanced: t.classBalanced,
        // Absent at 'all' so that the version ids of full fine-tuning stay what they were.
        ...(t.fineTuneDepth === 'all' ? {} : { depth: t.fineTuneDepth }),
      };
      const version = windowId({
        parentVersion: parent.version,
        strategy: strategy.code,
        train: plan.train,
        trainLabels: plan.trainLabels,
        hyperParameters: {
          ...fineTune,
          seed: t.seed,
          m: config.scoring.m,
          augmentation: config.scoring.augmentation,
        },
      });
      const augmentation = augmentationSpecOf(config.scoring);
      // A version already in the store with this id (its window crashed between saving it and the
      // checkpoint) is taken as it is: the same inputs never yield two different versions.
      const stored = await this.storedWindowResult(version);
      const training = stored
        ? Promise.resolve(stored.result)
        : this.training.train({
            parent: parent.artifact,
            m0: this.m0.artifact,
            startFrom: plan.startFrom,
            numClasses: config.limits.numClasses,
            train: {
              candidates: train.map((x) => scoringInput(x.id, x.payload)),
              labels: train.map((x) => x.label),
            },
            holdout: {
              candidates: holdout.map((x) => scoringInput(x.id, x.payload)),
              labels: holdout.map((x) => x.label),
            },
            m: config.scoring.m,
            augmentation,
            seed: deriveSeed(t.seed, 'window', seq),
            fineTune,
          });
      if (!stored) faultPoint('during-fine-tune');
      const result = await training;
      if (generation !== this.windowGeneration || this.closing)
        throw new Error('window abandoned at shutdown');
      const publish = async () => {
        const positives = holdout.filter((x) => x.label === 1).length;
        const status =
          stored?.status ??
          promotionDecision(
            result.holdoutAuc ?? NaN,
            result.parentHoldoutAuc,
            t.promotionTolerance,
            // The noise of a small binary hold-out widens the tolerance (see promotionDecision).
            config.limits.numClasses === 2 ? { positives, negatives: holdout.length - positives } : undefined,
            t.promotionMinAuc,
          );
        const saved = stored
          ? { location: this.store.locationOf(version), sha256: result.artifact.sha256 }
          : await this.store.saveArtifact(result.artifact, {
              version,
              parent: parent.version,
              createdAt: new Date().toISOString(),
              info: {
                m0: this.m0.version,
                status,
                strategy: strategy.code,
                holdoutAuc: result.holdoutAuc,
                parentHoldoutAuc: result.parentHoldoutAuc,
                trainingSeconds: result.seconds,
                trainPatches: result.trainPatches,
                epochLosses: result.epochLosses,
              },
            });
        faultPoint('after-version-saved');
        const message: Omit<ModelVersionMessage, 'schema'> = {
          version,
          parent: parent.version,
          m0: this.m0.version,
          strategy: strategy.code,
          status,
          counts: {
            q: plan.q.length,
            h: plan.h.length,
            labeled: trainableCandidates(this.state.labels).length,
            holdout: holdout.length,
          },
          trainedOn: [...plan.train],
          metrics: {
            holdoutAuc: result.holdoutAuc,
            parentHoldoutAuc: result.parentHoldoutAuc,
            trainingSeconds: result.seconds,
            trainPatches: result.trainPatches,
            finalLoss: result.epochLosses.at(-1) ?? null,
          },
          artifact: { location: saved.location, sha256: saved.sha256 },
          windowStartedAt: new Date(started).toISOString(),
          time: new Date().toISOString(),
        };
        // Scale-out: only the coordinator writes versions (it may have stepped down while training).
        if (this.cluster && !this.cluster.isCoordinator) throw new Error('no longer the coordinator');
        this.cluster?.ownVersion(version);
        labelsReducer(
          this.state.labels,
          { type: 'window-completed', seq, now: Date.now() },
          this.labelingConfig.labels,
        );
        this.windowsDone.push({ version, status });
        this.metrics.windows.inc({ status });
        this.metrics.modelVersions.inc({ status });
        this.metrics.windowDuration.observe((Date.now() - started) / 1000);
        if (result.holdoutAuc !== null) this.metrics.recordHoldoutAuc(version, result.holdoutAuc);
        this.log.info(
          {
            event: 'window',
            version,
            parent: parent.version,
            status,
            trigger,
            q: plan.q.length,
            h: plan.h.length,
            train: plan.train.length,
            holdoutAuc: result.holdoutAuc,
            parentHoldoutAuc: result.parentHoldoutAuc,
            seconds: (Date.now() - started) / 1000,
          },
          `model version ${status}`,
        );
        if (status === 'promoted') {
          await this.serve({
            version,
            artifact: result.artifact,
            holdoutAuc: result.holdoutAuc,
            publishedAtMs: Date.parse(message.time),
          });
          void this.rescoreAll(version);
        }
        // The checkpoint (labels consumed, version served, message in the outbox) comes before the
        // message: no crash can leave a version on the topic that the restored state does not know.
        this.outbox.push({
          topic: config.kafka.topics.modelVersions,
          key: version,
          value: encodeModelVersion(message),
        });
        try {
          await this.checkpoint();
        } catch (error) {
          this.log.error(
            { event: 'checkpoint-failed', err: error },
            'checkpoint failed: the version is published after the next checkpoint that succeeds',
          );
          return;
        }
        await this.flushOutbox();
      };
      // Shutdown waits for a publication under way (short); a window still training is abandoned.
      this.publishing = publish();
      await this.publishing;
    } catch (error) {
      if (seq >= 0)
        labelsReducer(this.state.labels, { type: 'window-abandoned', seq }, this.labelingConfig.labels);
      if (!this.closing) {
        this.metrics.windows.inc({ status: 'failed' });
        this.log.error(
          { event: 'window-failed', err: error },
          'fine-tuning window failed; it will be planned again',
        );
      }
    } finally {
      this.windowRunning = false;
      this.publishing = undefined;
    }
    this.maybeRequest();
  }

  // --- the clock ---

  private async tick(): Promise<void> {
    if (this.closing || !this.consumer) return;
    const now = Date.now();
    // First, so that no failing step below (a commit during an outage) can skip it.
    this.probeBrokersIfQuiet(now);
    this.checkOutage(now);
    if (!this.joined) return;
    try {
      const poolStep = poolReducer(this.state.pool, { type: 'tick', now }, this.labelingConfig.pool);
      const labelsStep = labelsReducer(this.state.labels, { type: 'tick', now }, this.labelingConfig.labels);
      this.handleEffects([...poolStep.effects, ...labelsStep.effects], now);
      this.flushIntake();
      await this.cluster?.afterStep([...poolStep.effects, ...labelsStep.effects]);
      this.publishGauges();
      this.applyBackpressure();
      this.maybeRequest();
      void this.maybeWindow();
      // A checkpoint of a large pool or a commit in an outage can outlast TICK_MS: a tick starts
      // none while one is queued or running (overlapping ones ran a 60,000-candidate pool out of
      // memory). The rest of the tick does not wait for it.
      if (
        now - this.lastCheckpointAt >= this.config.state.checkpointIntervalMs &&
        this.checkpointsQueued === 0
      )
        await this.checkpoint();
      if (this.outbox.length > 0 && !this.windowRunning) void this.flushOutbox();
    } catch (error) {
      this.log.error({ event: 'tick-failed', err: error }, 'periodic work failed');
    }
  }

  /** A broker answered: an outage, if one was under way, ends (logged with its length). */
  private brokerAnswered(): void {
    this.onHealthChange(this.brokerHealth.answered(Date.now()));
  }

  /** A broker request failed: an outage starts, unless one is under way. */
  private brokerFailed(cause: string): void {
    if (this.closing) return;
    this.onHealthChange(this.brokerHealth.failed(Date.now(), cause));
  }

  private onHealthChange(change: HealthChange): void {
    if (change === null) return;
    if (change.type === 'outage-started') {
      this.metrics.brokerConnected.set(0);
      this.metrics.brokerOutages.inc();
      this.log.warn(
        { event: 'broker-outage', cause: change.cause },
        'Kafka brokers unreachable: not ready until they answer again',
      );
    } else {
      this.metrics.brokerConnected.set(1);
      this.log.info(
        { event: 'broker-outage-ended', durationMs: change.durationMs },
        `Kafka brokers answer again after ${(change.durationMs / 1000).toFixed(1)} s`,
      );
    }
  }

  /**
   * When no broker answered for a while (an idle consumer fetches every 250 ms, so that is rare
   * unless they are gone), asks them for their metadata: no answer within the probe's timeout
   * starts an outage, an answer ends one.
   */
  private probeBrokersIfQuiet(now: number): void {
    if (this.probing || this.probe === undefined || !this.brokerHealth.needsProbe(now)) return;
    this.probing = true;
    const probe = this.probe;
    const timeout = sleep(BROKER_PROBE_TIMEOUT_MS + 500, 'timeout' as const, { ref: false });
    void Promise.race([probe.probe().then(() => 'answered' as const), timeout])
      .then(
        (outcome) =>
          outcome === 'answered' ? this.brokerAnswered() : this.brokerFailed('metadata probe timed out'),
        (error: unknown) =>
          this.brokerFailed(`metadata probe failed: ${error instanceof Error ? error.name : String(error)}`),
      )
      .finally(() => {
        this.probing = false;
      });
  }

  private checkOutage(now: number): void {
    const since = this.brokerHealth.downSince;
    if (since === null) return;
    if (now - since > this.config.kafka.outageExitAfterMs) {
      const error = new Error(
        `Kafka brokers unreachable for more than ${this.config.kafka.outageExitAfterMs} ms: exiting so that the supervisor restarts acft`,
      );
      this.log.fatal({ event: 'outage', err: error }, error.message);
      this.fatal(error);
    }
  }

  /** Hands an unrecoverable error to the supervisor: by default the process exits non-zero. */
  private fatal(error: Error): void {
    if (this.fatalRaised) return;
    this.fatalRaised = true;
    this.log.fatal({ event: 'fatal', err: error }, error.message);
    (this.options.onFatal ?? (() => process.exit(70)))(error);
  }

  /** The result of a window whose version is already in the model store, complete and intact. */
  private async storedWindowResult(
    version: string,
  ): Promise<{ result: TrainingResult; status: 'promoted' | 'rejected' } | undefined> {
    const meta = (await this.store.list()).find((m) => m.version === version);
    if (!meta) return undefined;
    try {
      const loaded = await this.store.load(this.store.locationOf(version));
      const info = meta.info;
      const num = (x: unknown) => (typeof x === 'number' ? x : null);
      this.log.info(
        { event: 'window-reused', version },
        'window version found in the model store; not trained again',
      );
      return {
        status: info['status'] === 'rejected' ? 'rejected' : 'promoted',
        result: {
          artifact: { ...loaded.artifact, sha256: loaded.sha256 },
          holdoutAuc: num(info['holdoutAuc']),
          parentHoldoutAuc: num(info['parentHoldoutAuc']),
          seconds: num(info['trainingSeconds']) ?? 0,
          trainPatches: num(info['trainPatches']) ?? 0,
          epochLosses: Array.isArray(info['epochLosses'])
            ? info['epochLosses'].filter((x) => typeof x === 'number')
            : [],
        },
      };
    } catch (error) {
      this.log.warn(
        { event: 'model-refused', version, err: error },
        'stored window version refused; training again',
      );
      return undefined;
    }
  }

  private health(): { live: boolean; ready: boolean; reasons: string[]; details: Record<string, unknown> } {
    const reasons: string[] = [];
    if (this.closing) reasons.push('shutting down');
    if (this.brokerHealth.downSince !== null) reasons.push('Kafka brokers unreachable');
    if (!this.served) reasons.push('no model served yet');
    if (!this.consumer) reasons.push('not consuming yet');
    return {
      live: !this.closing || this.closed === undefined,
      ready: reasons.length === 0,
      reasons,
      details: {
        servedVersion: this.served?.version ?? null,
        pool: poolSize(this.state.pool),
        labeled: labeledCount(this.state.labels),
        newLabels: newLabelsSinceWindow(this.state.labels),
        outstanding: requestedCount(this.state.pool),
        windowRunning: this.windowRunning,
        intakePaused: this.paused,
        outbox: this.outbox.length,
      },
    };
  }

  /** A plain view of the daemon's state, for tests and the demo. */
  status() {
    return {
      servedVersion: this.served?.version ?? null,
      pool: poolSize(this.state.pool),
      poolBytes: poolBytes(this.state.pool),
      outstanding: requestedCount(this.state.pool),
      labeled: labeledCount(this.state.labels),
      trainable: trainableCandidates(this.state.labels).length,
      holdout: holdoutCandidates(this.state.labels).length,
      newLabels: newLabelsSinceWindow(this.state.labels),
      windows: [...this.windowsDone],
      paused: this.paused,
      // Counted by the pool as it changes: a status call does not walk the pool.
      scored: poolSize(this.state.pool) - unscoredCount(this.state.pool),
      httpUrl: this.http?.url ?? null,
      coordinator: this.cluster ? this.cluster.isCoordinator : true,
    };
  }

  /**
   * Shuts down in order: stop intake, abandon a running window (it is planned again after a
   * restart from the same inputs), checkpoint, commit, disconnect, stop the workers. Idempotent.
   */
  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    this.windowGeneration++;
    this.rescoreGeneration++;
    this.log.info({ event: 'stopping' }, 'acft daemon stopping');
    const steps: [string, () => unknown][] = [
      [
        'stop intake',
        () =>
          this.consumer?.pause([
            { topic: this.config.kafka.topics.candidates },
            { topic: this.config.kafka.topics.feedback },
          ]),
      ],
      [
        'drain',
        async () => {
          for (let i = 0; i < 100 && this.inFlightBatches > 0; i++)
            await new Promise((r) => setTimeout(r, 50));
        },
      ],
      ['ticker', () => this.subscriptions.unsubscribe()],
      ['publication', () => this.publishing],
      [
        // What the broker confirms now need not wait in the checkpoint for the next start.
        'dead letters',
        () => Promise.race([this.deadLetters.flush(), sleep(SEND_SETTLE_MS, undefined, { ref: false })]),
      ],
      [
        'checkpoint',
        async () => {
          if (this.served && this.consumer) {
            const inFlight = this.state.labels.inFlight;
            if (inFlight)
              labelsReducer(
                this.state.labels,
                { type: 'window-abandoned', seq: inFlight.seq },
                this.labelingConfig.labels,
              );
            await this.checkpoint();
          }
        },
      ],
      ['dead-letter sender', () => this.deadLetters.stop()],
      ['broker probe', async () => this.probe?.close()],
      ['cluster', async () => this.cluster?.close()],
      ['consumer', async () => this.consumer?.disconnect()],
      ['versions consumer', async () => this.versionsConsumer?.disconnect()],
      [
        'producer',
        async () => {
          await this.producer?.disconnect();
          // kafkajs goes on retrying a send in flight after a disconnect, and connects again for it
          // (tulios/kafkajs#1174): such a connection would outlive the daemon. Request sends left
          // are checkpointed as unconfirmed; they get a few seconds to settle, then the producer
          // is disconnected again.
          if (this.requestSends.size > 0) {
            await Promise.race([
              Promise.allSettled(this.requestSends),
              sleep(SEND_SETTLE_MS, undefined, { ref: false }),
            ]);
            await this.producer?.disconnect();
          }
        },
      ],
      ['scoring', async () => this.scoring?.close()],
      ['training', async () => this.training?.close()],
      ['http', async () => this.http?.close()],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (error) {
        this.log.error(
          { event: 'shutdown-step-failed', step: name, err: error },
          `shutdown step '${name}' failed`,
        );
      }
    }
    this.metrics.brokerConnected.set(0);
    this.log.info({ event: 'stopped' }, 'acft daemon stopped');
  }
}
