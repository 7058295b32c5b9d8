/**
 * The daemon's one state, owned by the step (step.ts): everything the loop decides on. The
 * pipeline (pipeline.ts) folds every input into it with `mapWithState`; nothing else writes it.
 * Like the core reducers, the step updates the state it is given in place and returns it: a pool
 * of 100,000 candidates is not copied per message. What is not here is not the loop's to decide:
 * model weights live in the scorer and trainer, files in the stores, connections in the adapters.
 */
import { DROP_REASONS, emptyPool, type DropReason, type SourceRef } from '../../core/pool.js';
import { emptyLabels, type LabelingConfig, type LabelingState, type WindowPlan } from '../../core/labels.js';
import { emptyOffsets, type OffsetsState, type PartitionPosition } from '../../core/offsets.js';
import type { WindowTrigger } from '../../core/windows.js';
import type { Config } from '../../config/index.js';
import type { ModelArtifact } from '../../model/model-store.js';
import { BrokerHealth } from '../broker-health.js';
import type { QueuedDeadLetter } from '../dead-letters.js';
import type { OutboxEntry, UnconfirmedRequest } from '../outbox.js';
import type { StoredCandidate } from '../stored-candidate.js';
import type { PatchShape } from '../initial-model.js';
import type { ClusterState } from './cluster/state.js';

/** A model version the daemon can serve: its id, weights and what is known of it. */
export interface ServedModel {
  readonly version: string;
  readonly artifact: ModelArtifact;
  readonly holdoutAuc: number | null;
  /** When it was published (ms); an older one is never served over it. */
  readonly publishedAtMs: number;
}

/** What the step needs besides the state: the configuration and what derives from it. */
export interface LoopContext {
  readonly config: Config;
  readonly labeling: LabelingConfig;
  /** M0, the root of the lineage this daemon serves. */
  readonly m0: ServedModel;
  /** The patches M0 (and every version of its lineage) takes. */
  readonly m0Shape: PatchShape;
  /** Ticks of the loop (ms). */
  readonly tickMs: number;
}

/** The fine-tuning window in flight, from its planning to its publication. */
export interface WindowInFlight {
  /** Bumped by every window and every abandonment: stale outcomes are recognised by it. */
  readonly generation: number;
  readonly trigger: WindowTrigger;
  readonly startedAtMs: number;
  readonly parent: ServedModel;
  phase: 'predicting' | 'training' | 'saving';
  plan?: WindowPlan;
  version?: string;
  result?: WindowResult;
}

/** What training (or the store, for a version trained before a crash) gave a window. */
export interface WindowResult {
  readonly artifact: ModelArtifact & { readonly sha256: string };
  readonly holdoutAuc: number | null;
  readonly parentHoldoutAuc: number | null;
  readonly seconds: number;
  readonly trainPatches: number;
  readonly epochLosses: readonly number[];
  /** Set when the store already held the version: its status then, reused as it is, and where. */
  readonly storedStatus?: 'promoted' | 'rejected';
  readonly location?: string;
}

export interface DaemonState {
  labeling: LabelingState<StoredCandidate>;
  offsets: OffsetsState;
  served: ServedModel;
  /** Versions in the order they were served (the pool's stale-score rule compares them). */
  readonly versionOrder: Map<string, number>;
  /** Versions seen on model-versions (this instance's and others'). */
  readonly publishedVersions: Set<string>;
  /**
   * Scale-out: promoted versions of this coordinator's windows, served once their publication is
   * written (a coordinator fenced before that never scores with a version no one else knows).
   */
  readonly servedOncePublished: Map<string, ServedModel>;
  /** Model-version messages decided, not yet on their topic; `durable` once a checkpoint holds them. */
  outbox: { entry: OutboxEntry; durable: boolean; sending: boolean }[];
  /** Labeling requests whose send is not confirmed yet, by request id (checkpointed). */
  readonly unconfirmedRequests: Map<string, UnconfirmedRequest>;
  /** Dead letters not confirmed yet, oldest first (checkpointed), and how many are being sent. */
  deadLetters: QueuedDeadLetter[];
  deadLettersSending: number;
  /** When each pooled candidate arrived and was asked for (latency events). */
  readonly arrivals: Map<string, number>;
  readonly requestTimes: Map<string, number>;
  /** Requests rounds of the current window (seeds of the draws). */
  requestRound: number;
  window: WindowInFlight | null;
  windowGeneration: number;
  /** Rescoring of the pool with `version` (generation bumped by a newer one). */
  rescore: { version: string; generation: number; done: number; total: number; startedAtMs: number } | null;
  rescoreGeneration: number;
  intakePaused: boolean;
  /** Given partitions by the group (clocks of waiting work run from then). */
  joined: boolean;
  /** The checkpoint in flight (written, then committed) and the positions it records; when the last began. */
  checkpoint: {
    lastAtMs: number;
    inFlight: boolean;
    wanted: boolean;
    positions: readonly PartitionPosition[];
  };
  readonly broker: BrokerHealth;
  probing: boolean;
  /** Candidates that left the pool unlabeled since they were last reported, by why. */
  readonly dropped: Record<DropReason, string[]>;
  /** Feedback positions waiting for their candidate (scale-out caps its commits below them). */
  readonly waitingSources: Map<string, SourceRef>;
  draining: boolean;
  readonly windowsDone: { version: string; status: string }[];
  /** Scale-out: election, ledger book, shortlists (undefined with one instance). */
  cluster?: ClusterState;
}

/** The state of a daemon that has restored nothing yet. */
export function emptyState(served: ServedModel, now: number, cluster?: ClusterState): DaemonState {
  return {
    labeling: { pool: emptyPool(), labels: emptyLabels() },
    offsets: emptyOffsets(),
    served,
    versionOrder: new Map([[served.version, 0]]),
    publishedVersions: new Set(),
    servedOncePublished: new Map(),
    outbox: [],
    unconfirmedRequests: new Map(),
    deadLetters: [],
    deadLettersSending: 0,
    arrivals: new Map(),
    requestTimes: new Map(),
    requestRound: 0,
    window: null,
    windowGeneration: 0,
    rescore: null,
    rescoreGeneration: 0,
    intakePaused: false,
    joined: false,
    checkpoint: { lastAtMs: now, inFlight: false, wanted: false, positions: [] },
    broker: new BrokerHealth(now, BROKER_STALE_MS),
    probing: false,
    dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, []])) as unknown as Record<DropReason, string[]>,
    waitingSources: new Map(),
    draining: false,
    windowsDone: [],
    ...(cluster ? { cluster } : {}),
  };
}

/** No answer from the brokers for this long (ms) calls for a probe. */
export const BROKER_STALE_MS = 3_000;
