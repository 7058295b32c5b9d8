/**
 * Prometheus metrics of the acft daemon (an adapter: the core never imports this file).
 *
 * Every metric lives on an injected registry, never on prom-client's global one, so that tests and
 * several daemons in one process do not collide. Names follow Prometheus conventions: prefix
 * `acft_`, the unit in the name (`_seconds`, `_bytes`, `_ratio`), `_total` on counters, `_info` on
 * gauges that only carry a label. The table in docs/metrics.md lists them all; the Grafana
 * dashboard and the alert rules under deploy/ query only names listed by {@link metricNames} /
 * {@link seriesNames}.
 */
import { DROP_REASONS } from '../core/pool.js';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';

/** Prefix of every metric the daemon exports, default process metrics included. */
export const METRIC_PREFIX = 'acft_';

/** The daemon's own metric names (default process/Node.js metrics are listed by {@link metricNames}). */
export const METRIC_NAMES = [
  'acft_candidates_ingested_total',
  'acft_dead_letter_total',
  'acft_dead_letter_unsent',
  'acft_candidates_dropped_total',
  'acft_pool_candidates',
  'acft_pool_bytes',
  'acft_pool_paused',
  'acft_scoring_latency_seconds',
  'acft_scoring_batch_seconds',
  'acft_patches_scored_total',
  'acft_rescore_progress_ratio',
  'acft_rescore_duration_seconds',
  'acft_feature_cache_bytes',
  'acft_feature_cache_candidates',
  'acft_patches_from_feature_cache_total',
  'acft_labeling_requests_emitted_total',
  'acft_labeling_requests_outstanding',
  'acft_labeling_requests_answered_total',
  'acft_labeling_requests_expired_total',
  'acft_feedback_total',
  'acft_label_latency_seconds',
  'acft_window_duration_seconds',
  'acft_windows_total',
  'acft_model_version_info',
  'acft_model_versions_total',
  'acft_holdout_auc',
  'acft_served_model_holdout_auc',
  'acft_requested_labels_total',
  'acft_requested_class_share',
  'acft_consumer_lag',
  'acft_backend_info',
  'acft_leader',
  'acft_owned_partitions',
  'acft_coordinator_shortlists',
  'acft_coordinator_fenced_total',
  'acft_broker_connected',
  'acft_broker_outages_total',
  'acft_checkpoint_seconds',
  'acft_last_checkpoint_timestamp_seconds',
] as const;

export type MetricName = (typeof METRIC_NAMES)[number];

/** How a feedback message was taken (label of `acft_feedback_total`). */
export const FEEDBACK_KINDS = [
  'requested',
  'unsolicited',
  'duplicate',
  'conflict',
  'pending',
  'unknown',
] as const;
export type FeedbackKind = (typeof FEEDBACK_KINDS)[number];

/** How a fine-tuning window ended (label of `acft_windows_total`). */
export const WINDOW_STATUSES = ['promoted', 'rejected', 'failed'] as const;
export type WindowStatus = (typeof WINDOW_STATUSES)[number];

/** Status of a published model version (label of `acft_model_versions_total`). */
export const MODEL_VERSION_STATUSES = ['promoted', 'rejected'] as const;
export type ModelVersionStatus = (typeof MODEL_VERSION_STATUSES)[number];

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /**
   * Dead-letter reason codes to export at 0 from the start, so that `rate()` and alerts see the
   * series before the first bad message. Other reasons still count when they occur.
   */
  readonly deadLetterReasons?: readonly string[];
  /** Class names to export at share 0 from the start (label `class` of the class-share gauge). */
  readonly classes?: readonly string[];
  /** How many versions keep an `acft_holdout_auc{version}` series (oldest dropped first). Default 50. */
  readonly holdoutAucVersionsKept?: number;
  /** Collect prom-client's default process and Node.js metrics (prefixed `acft_`). Default true. */
  readonly defaultMetrics?: boolean;
}

/** The daemon's metrics, typed by their label names, plus helpers for the metrics that carry state. */
export interface AcftMetrics {
  readonly registry: Registry;

  /** `acft_candidates_ingested_total`: valid candidates accepted into the pipeline. */
  readonly candidatesIngested: Counter;
  /** `acft_dead_letter_total{reason}`: messages routed to the dead-letter topic, by reason code. */
  readonly deadLettered: Counter<'reason'>;
  /** `acft_dead_letter_unsent`: dead letters queued (and checkpointed) that the broker has not confirmed. */
  readonly deadLetterUnsent: Gauge;
  /** `acft_candidates_dropped_total{reason}`: candidates that left the pool unlabeled (TTL, pool bound). */
  readonly candidatesDropped: Counter<'reason'>;

  /** `acft_pool_candidates`: candidates in the rolling pool (this instance's partitions). */
  readonly poolCandidates: Gauge;
  /** `acft_pool_bytes`: bytes held by the rolling pool, as measured by the pool. */
  readonly poolBytes: Gauge;
  /** `acft_pool_paused`: 1 while candidate partitions are paused by backpressure, else 0. */
  readonly poolPaused: Gauge;

  /** `acft_scoring_latency_seconds`: time from a candidate's arrival to its first score. */
  readonly scoringLatency: Histogram;
  /** `acft_scoring_batch_seconds`: time to score one micro-batch. */
  readonly scoringBatch: Histogram;
  /** `acft_patches_scored_total`: patches run through the model (arrivals and rescoring). */
  readonly patchesScored: Counter;
  /** `acft_rescore_progress_ratio`: 0..1 of the current full-pool rescore (1 when none runs). */
  readonly rescoreProgress: Gauge;
  /** `acft_rescore_duration_seconds`: duration of completed full-pool rescores. */
  readonly rescoreDuration: Histogram;
  /** `acft_feature_cache_bytes`: bytes held by the feature cache of cheap rescoring. */
  readonly featureCacheBytes: Gauge;
  /** `acft_feature_cache_candidates`: candidates whose features at the cut are cached. */
  readonly featureCacheCandidates: Gauge;
  /** `acft_patches_from_feature_cache_total`: patches rescored from cached features (of the patches scored). */
  readonly patchesFromFeatureCache: Counter;

  /** `acft_labeling_requests_emitted_total`: labeling requests published. */
  readonly labelingRequestsEmitted: Counter;
  /** `acft_labeling_requests_outstanding`: requests published and neither answered nor expired. */
  readonly labelingRequestsOutstanding: Gauge;
  /** `acft_labeling_requests_answered_total`: requests answered by a label. */
  readonly labelingRequestsAnswered: Counter;
  /** `acft_labeling_requests_expired_total`: requests whose lease ran out unanswered. */
  readonly labelingRequestsExpired: Counter;
  /** `acft_feedback_total{kind}`: feedback messages by how they were taken. */
  readonly feedback: Counter<'kind'>;
  /** `acft_label_latency_seconds`: time from a labeling request to its answer. */
  readonly labelLatency: Histogram;

  /** `acft_window_duration_seconds`: duration of a fine-tuning window (selection of H to verdict). */
  readonly windowDuration: Histogram;
  /** `acft_windows_total{status}`: fine-tuning windows by outcome. */
  readonly windows: Counter<'status'>;
  /** `acft_model_version_info{version}`: 1 for the version this instance serves (one series). */
  readonly modelVersionInfo: Gauge<'version'>;
  /** `acft_model_versions_total{status}`: model versions published, by status. */
  readonly modelVersions: Counter<'status'>;
  /** `acft_holdout_auc{version}`: holdout AUC of each evaluated version (the last N kept). */
  readonly holdoutAuc: Gauge<'version'>;
  /** `acft_served_model_holdout_auc`: holdout AUC of the served version (NaN when unknown). */
  readonly servedModelHoldoutAuc: Gauge;
  /** `acft_requested_labels_total{class}`: answered labeling requests, by the label received. */
  readonly requestedLabels: Counter<'class'>;
  /** `acft_requested_class_share{class}`: share of each class among answered requests, by label. */
  readonly requestedClassShare: Gauge<'class'>;

  /** `acft_consumer_lag{topic,partition}`: messages between the committed offset and the log end. */
  readonly consumerLag: Gauge<'topic' | 'partition'>;
  /** `acft_backend_info{backend}`: 1 for the tfjs backend in use (one series). */
  readonly backendInfo: Gauge<'backend'>;
  /** `acft_leader`: 1 while this instance is the coordinator (selection, windows, versions). */
  readonly leader: Gauge;
  /** `acft_owned_partitions{topic}`: partitions of the topic this instance consumes in its group. */
  readonly ownedPartitions: Gauge<'topic'>;
  /** `acft_coordinator_shortlists`: on the coordinator, instances whose fresh shortlist it holds (scale-out). */
  readonly coordinatorShortlists: Gauge;
  /** `acft_coordinator_fenced_total`: coordinator writes refused because a successor had taken over (scale-out). */
  readonly coordinatorFenced: Counter;
  /** `acft_broker_connected`: 1 while the Kafka brokers answer, 0 from an outage's start to its end. */
  readonly brokerConnected: Gauge;
  /** `acft_broker_outages_total`: outages begun (no broker answer, or a request failing). */
  readonly brokerOutages: Counter;
  /** `acft_checkpoint_seconds`: time to write a checkpoint (temp file, fsync, rename). */
  readonly checkpointDuration: Histogram;
  /** `acft_last_checkpoint_timestamp_seconds`: Unix time of the last checkpoint written. */
  readonly lastCheckpointTimestamp: Gauge;

  /** Marks `version` as the served one: its info series is 1, no other exists; sets the served AUC. */
  serveModelVersion(version: string, holdoutAuc?: number): void;
  /** Records the holdout AUC of an evaluated version, dropping the oldest beyond the kept count. */
  recordHoldoutAuc(version: string, auc: number): void;
  /** Marks `backend` as the one in use (one `acft_backend_info` series). */
  useBackend(backend: string): void;
  /** Counts the label of an answered labeling request and updates the class shares. */
  countRequestedLabel(label: string): void;
  /** Records a written checkpoint: its duration and the time it completed. */
  recordCheckpoint(seconds: number, at?: Date): void;
}

// Buckets in seconds, chosen for what each histogram measures.
const SCORING_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const RESCORE_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
// Radiologists answer in minutes to days.
const LABEL_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400, 172800];
const WINDOW_BUCKETS = [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];
const CHECKPOINT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Thrown when the daemon's metrics are created twice on one registry. */
export class MetricsAlreadyRegisteredError extends Error {
  readonly code = 'METRICS_ALREADY_REGISTERED';
  constructor(cause?: unknown) {
    super('acft metrics are already registered on this registry: create them once and share the object', {
      cause,
    });
    this.name = 'MetricsAlreadyRegisteredError';
  }
}

/**
 * Creates the daemon's metrics on `registry` (default: a new registry, never the global one), with
 * prom-client's default process metrics prefixed `acft_`. Call once per registry.
 */
export function createMetrics(
  registry: Registry = new Registry(),
  options: MetricsOptions = {},
): AcftMetrics {
  if (registry.getSingleMetric(METRIC_NAMES[0]) !== undefined) throw new MetricsAlreadyRegisteredError();
  const registers = [registry];
  const counter = <L extends string = never>(name: MetricName, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name, help, labelNames, registers });
  const gauge = <L extends string = never>(name: MetricName, help: string, labelNames: readonly L[] = []) =>
    new Gauge<L>({ name, help, labelNames, registers });
  const histogram = (name: MetricName, help: string, buckets: number[]) =>
    new Histogram({ name, help, buckets, registers });

  const metrics = {
    registry,
    candidatesIngested: counter(
      'acft_candidates_ingested_total',
      'Valid candidates accepted into the pipeline.',
    ),
    deadLettered: counter('acft_dead_letter_total', 'Messages routed to the dead-letter topic, by reason.', [
      'reason',
    ]),
    deadLetterUnsent: gauge(
      'acft_dead_letter_unsent',
      'Dead letters queued (and checkpointed) that the broker has not confirmed yet.',
    ),
    candidatesDropped: counter(
      'acft_candidates_dropped_total',
      'Candidates that left the pool without a label: expired (pool TTL) or evicted (pool bound).',
      ['reason'],
    ),
    poolCandidates: gauge('acft_pool_candidates', 'Candidates in the rolling pool.'),
    poolBytes: gauge('acft_pool_bytes', 'Bytes held by the rolling pool.'),
    poolPaused: gauge('acft_pool_paused', '1 while candidate partitions are paused by backpressure, else 0.'),
    scoringLatency: histogram(
      'acft_scoring_latency_seconds',
      "Time from a candidate's arrival to its first score, in seconds.",
      SCORING_BUCKETS,
    ),
    scoringBatch: histogram(
      'acft_scoring_batch_seconds',
      'Time to score one micro-batch, in seconds.',
      SCORING_BUCKETS,
    ),
    patchesScored: counter('acft_patches_scored_total', 'Patches run through the model.'),
    rescoreProgress: gauge(
      'acft_rescore_progress_ratio',
      'Progress of the current full-pool rescore, 0..1 (1 when none runs).',
    ),
    rescoreDuration: histogram(
      'acft_rescore_duration_seconds',
      'Duration of completed full-pool rescores, in seconds.',
      RESCORE_BUCKETS,
    ),
    featureCacheBytes: gauge(
      'acft_feature_cache_bytes',
      'Bytes held by the feature cache of cheap rescoring (0 when it is off).',
    ),
    featureCacheCandidates: gauge(
      'acft_feature_cache_candidates',
      'Candidates whose patch features at the fine-tuning cut are cached.',
    ),
    patchesFromFeatureCache: counter(
      'acft_patches_from_feature_cache_total',
      'Patches rescored from cached features: only the layers above the fine-tuning cut ran.',
    ),
    labelingRequestsEmitted: counter('acft_labeling_requests_emitted_total', 'Labeling requests published.'),
    labelingRequestsOutstanding: gauge(
      'acft_labeling_requests_outstanding',
      'Labeling requests neither answered nor expired.',
    ),
    labelingRequestsAnswered: counter(
      'acft_labeling_requests_answered_total',
      'Labeling requests answered by a label.',
    ),
    labelingRequestsExpired: counter(
      'acft_labeling_requests_expired_total',
      'Labeling requests whose lease expired unanswered.',
    ),
    feedback: counter('acft_feedback_total', 'Feedback messages by how they were taken.', ['kind']),
    labelLatency: histogram(
      'acft_label_latency_seconds',
      'Time from a labeling request to its answer, in seconds.',
      LABEL_BUCKETS,
    ),
    windowDuration: histogram(
      'acft_window_duration_seconds',
      'Duration of a fine-tuning window, in seconds.',
      WINDOW_BUCKETS,
    ),
    windows: counter('acft_windows_total', 'Fine-tuning windows by outcome.', ['status']),
    modelVersionInfo: gauge('acft_model_version_info', '1 for the model version this instance serves.', [
      'version',
    ]),
    modelVersions: counter('acft_model_versions_total', 'Model versions published, by status.', ['status']),
    holdoutAuc: gauge('acft_holdout_auc', 'Holdout AUC of each evaluated model version.', ['version']),
    servedModelHoldoutAuc: gauge(
      'acft_served_model_holdout_auc',
      'Holdout AUC of the served model version (NaN when unknown).',
    ),
    requestedLabels: counter(
      'acft_requested_labels_total',
      'Answered labeling requests, by the label received.',
      ['class'],
    ),
    requestedClassShare: gauge(
      'acft_requested_class_share',
      'Share of each class among answered labeling requests since start, by the label received.',
      ['class'],
    ),
    consumerLag: gauge(
      'acft_consumer_lag',
      'Messages between the committed offset and the end of the log, per partition owned.',
      ['topic', 'partition'],
    ),
    backendInfo: gauge('acft_backend_info', '1 for the tfjs backend in use.', ['backend']),
    leader: gauge('acft_leader', '1 while this instance coordinates selection, windows and versions.'),
    ownedPartitions: gauge(
      'acft_owned_partitions',
      'Partitions of the topic this instance consumes in its consumer group.',
      ['topic'],
    ),
    coordinatorShortlists: gauge(
      'acft_coordinator_shortlists',
      'On the coordinator: instances whose fresh shortlist it holds (scale-out; 0 elsewhere).',
    ),
    coordinatorFenced: counter(
      'acft_coordinator_fenced_total',
      'Coordinator writes refused because another instance had taken over (the instance stepped down).',
    ),
    brokerConnected: gauge(
      'acft_broker_connected',
      '1 while the Kafka brokers answer, 0 from the start of an outage to its end.',
    ),
    brokerOutages: counter('acft_broker_outages_total', 'Broker outages begun.'),
    checkpointDuration: histogram(
      'acft_checkpoint_seconds',
      'Time to write a checkpoint, in seconds.',
      CHECKPOINT_BUCKETS,
    ),
    lastCheckpointTimestamp: gauge(
      'acft_last_checkpoint_timestamp_seconds',
      'Unix time of the last checkpoint written, in seconds.',
    ),
  };

  // Known label values start at 0 so that rate() and alerts see them before the first event.
  for (const kind of FEEDBACK_KINDS) metrics.feedback.inc({ kind }, 0);
  for (const reason of DROP_REASONS) metrics.candidatesDropped.inc({ reason }, 0);
  for (const status of WINDOW_STATUSES) metrics.windows.inc({ status }, 0);
  for (const status of MODEL_VERSION_STATUSES) metrics.modelVersions.inc({ status }, 0);
  for (const reason of options.deadLetterReasons ?? []) metrics.deadLettered.inc({ reason }, 0);
  metrics.rescoreProgress.set(1);
  metrics.servedModelHoldoutAuc.set(Number.NaN);

  const labelCounts = new Map<string, number>();
  for (const label of options.classes ?? []) {
    labelCounts.set(label, 0);
    metrics.requestedClassShare.set({ class: label }, 0);
  }
  const aucVersions: string[] = [];
  const kept = options.holdoutAucVersionsKept ?? 50;
  const aucVersionsKept = Number.isFinite(kept) ? Math.max(1, Math.floor(kept)) : 50;

  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });

  return {
    ...metrics,
    serveModelVersion(version, holdoutAuc) {
      metrics.modelVersionInfo.reset();
      metrics.modelVersionInfo.set({ version }, 1);
      metrics.servedModelHoldoutAuc.set(holdoutAuc ?? Number.NaN);
    },
    recordHoldoutAuc(version, auc) {
      const known = aucVersions.indexOf(version);
      if (known >= 0) aucVersions.splice(known, 1);
      aucVersions.push(version);
      metrics.holdoutAuc.set({ version }, auc);
      while (aucVersions.length > aucVersionsKept) {
        const oldest = aucVersions.shift();
        if (oldest !== undefined) metrics.holdoutAuc.remove({ version: oldest });
      }
    },
    useBackend(backend) {
      metrics.backendInfo.reset();
      metrics.backendInfo.set({ backend }, 1);
    },
    countRequestedLabel(label) {
      metrics.requestedLabels.inc({ class: label });
      labelCounts.set(label, (labelCounts.get(label) ?? 0) + 1);
      let total = 0;
      for (const count of labelCounts.values()) total += count;
      for (const [name, count] of labelCounts)
        metrics.requestedClassShare.set({ class: name }, count / total);
    },
    recordCheckpoint(seconds, at = new Date()) {
      metrics.checkpointDuration.observe(seconds);
      metrics.lastCheckpointTimestamp.set(at.getTime() / 1000);
    },
  };
}

let exported: { names: readonly string[]; series: readonly string[] } | undefined;

function exportedNames(): { names: readonly string[]; series: readonly string[] } {
  if (exported === undefined) {
    const registry = new Registry();
    createMetrics(registry);
    const metrics = registry.getMetricsAsArray() as unknown[];
    const names: string[] = [];
    const series: string[] = [];
    for (const metric of metrics) {
      const { name } = metric as { name: string };
      names.push(name);
      if (metric instanceof Histogram) series.push(`${name}_bucket`, `${name}_sum`, `${name}_count`);
      else if (metric instanceof Summary) series.push(name, `${name}_sum`, `${name}_count`);
      else series.push(name);
    }
    exported = { names: names.sort(), series: series.sort() };
  }
  return exported;
}

/**
 * Every metric name the daemon exports: {@link METRIC_NAMES} plus prom-client's default process and
 * Node.js metrics (prefixed `acft_`), sorted.
 */
export function metricNames(): string[] {
  return [...exportedNames().names];
}

/**
 * Every series name a query can select: {@link metricNames} with histograms expanded into their
 * `_bucket`, `_sum` and `_count` series (which is what PromQL sees), sorted.
 */
export function seriesNames(): string[] {
  return [...exportedNames().series];
}
