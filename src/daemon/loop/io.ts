/**
 * What goes into the step and what comes out of it. Every source (the Kafka consumers, the clock)
 * and every stage's outcome (a batch scored, a checkpoint written, a send confirmed) is an
 * {@link Input}; every decision the step takes that needs the world is an {@link Effect}, carried
 * out by one stage of the pipeline (pipeline.ts), whose outcome comes back as an input. The step
 * itself does no I/O.
 */
import type { TopicPartition, PartitionOffset, PartitionPosition } from '../../core/offsets.js';
import type { ModelVersionMessage, DeadLetterReason } from '../../messages/index.js';
import type { ModelArtifact, ModelVersionMeta } from '../../model/model-store.js';
import type { ScoreBatchResult, ScoreRequestOptions } from '../../workers/scoring-service.js';
import type { TrainingJob } from '../../workers/training-service.js';
import type { QueuedDeadLetter } from '../dead-letters.js';
import type { OutboxEntry, UnconfirmedRequest } from '../outbox.js';
import type { StoredCandidate } from '../stored-candidate.js';
import type { DaemonEvent } from './events.js';
import type { ServedModel, WindowResult } from './state.js';
import type { ClusterEffect, ClusterInput } from './cluster/io.js';

/** One message of a fetched batch, as the step needs it. */
export interface IntakeMessage {
  readonly offset: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /** The producer's timestamp (ms since the epoch, as kafkajs gives it). */
  readonly timestamp: string;
}

/** A chunk of a fetched batch: processed in one step, with no turn of the event loop. */
export interface Chunk {
  readonly topic: string;
  readonly partition: number;
  readonly messages: readonly IntakeMessage[];
  /** The partition's high watermark when the batch was fetched. */
  readonly highWatermark: number;
}

/** What became of a chunk: how far it was taken, and whether intake is paused after it. */
export interface ChunkOutcome {
  /** The offset of the last message taken (undefined: none). */
  readonly lastTaken: number | undefined;
  /** Candidate intake paused in the middle: the rest of the batch is fetched again later. */
  readonly paused: boolean;
}

/** The adapter's handle on a chunk: the step's outcome goes back through it. */
export type Reply<T> = (outcome: T) => void;

/** A candidate to score, with what the scorer needs of it. */
export interface ScoreEntry {
  readonly id: string;
  readonly stored: StoredCandidate;
}

/** A candidate that failed its scoring batch alone. */
export interface Poisoned {
  readonly id: string;
  readonly error: unknown;
  readonly reason: DeadLetterReason;
}

/** Why a batch was scored: new candidates, a rescore with a newer version, or H of a window. */
export type ScorePurpose =
  | { readonly kind: 'new' }
  | { readonly kind: 'rescore'; readonly generation: number }
  | { readonly kind: 'window'; readonly generation: number };

/** Every input carries the loop clock's time it came in at (the step reads no clock). */
export type Input = InputBody & { readonly now: number };

type InputBody =
  | {
      readonly type: 'chunk';
      readonly chunk: Chunk;
      readonly now: number;
      readonly reply: Reply<ChunkOutcome>;
    }
  | { readonly type: 'tick' }
  | {
      readonly type: 'assigned';
      readonly owned: readonly TopicPartition[];
      /**
       * The consumer joined under a new member id (its session had ended, e.g. while the process
       * was frozen): what it owned before may have been another member's meanwhile.
       */
      readonly rejoined: boolean;
    }
  | {
      readonly type: 'group-offsets';
      readonly offsets: readonly (TopicPartition & { readonly committed: number | null })[];
    }
  | {
      readonly type: 'scored';
      readonly purpose: ScorePurpose;
      readonly results: readonly ScoreBatchResult[];
      readonly poisoned: readonly Poisoned[];
    }
  | { readonly type: 'scoring-failed'; readonly purpose: ScorePurpose; readonly error: unknown }
  | { readonly type: 'served'; readonly version: string }
  | { readonly type: 'version-read'; readonly message: ModelVersionMessage }
  | {
      readonly type: 'version-loaded';
      readonly message: ModelVersionMessage;
      readonly artifact: ModelArtifact;
    }
  | { readonly type: 'version-refused'; readonly version: string; readonly error: unknown }
  | { readonly type: 'window-trained'; readonly generation: number; readonly result: WindowResult }
  | { readonly type: 'window-failed'; readonly generation: number; readonly error: unknown }
  | { readonly type: 'version-saved'; readonly generation: number; readonly location: string }
  | {
      readonly type: 'checkpoint-written';
      readonly durable: readonly OutboxEntry[];
      readonly seconds: number;
    }
  | { readonly type: 'checkpoint-failed'; readonly error: unknown }
  | { readonly type: 'committed'; readonly offsets: readonly PartitionOffset[] }
  | { readonly type: 'commit-failed'; readonly error: unknown; readonly refused: boolean }
  | { readonly type: 'requests-sent'; readonly requestIds: readonly string[] }
  | { readonly type: 'requests-failed'; readonly requestIds: readonly string[]; readonly error: unknown }
  | { readonly type: 'versions-published'; readonly keys: readonly string[] }
  | { readonly type: 'versions-failed'; readonly error: unknown }
  | { readonly type: 'dead-letters-sent'; readonly letters: readonly QueuedDeadLetter[] }
  | { readonly type: 'dead-letters-failed'; readonly count: number; readonly error: unknown }
  | { readonly type: 'broker-answered' }
  | {
      readonly type: 'consumer-crashed';
      readonly error: unknown;
      readonly restart: boolean;
      readonly brokers: boolean;
    }
  | { readonly type: 'broker-failed'; readonly cause: string }
  | { readonly type: 'start'; readonly now: number; readonly resend: readonly UnconfirmedRequest[] }
  | { readonly type: 'drain' }
  | ClusterInput;

export type Effect =
  | { readonly type: 'emit'; readonly event: DaemonEvent }
  | { readonly type: 'reply'; readonly reply: Reply<ChunkOutcome>; readonly outcome: ChunkOutcome }
  | { readonly type: 'score'; readonly entries: readonly ScoreEntry[] }
  | {
      readonly type: 'rescore';
      readonly generation: number;
      readonly version: string;
      readonly entries: readonly ScoreEntry[];
    }
  | { readonly type: 'score-window'; readonly generation: number; readonly entries: readonly ScoreEntry[] }
  | { readonly type: 'forget'; readonly ids: readonly string[] }
  | { readonly type: 'serve'; readonly model: ServedModel }
  | { readonly type: 'load-version'; readonly message: ModelVersionMessage }
  | { readonly type: 'send-requests'; readonly requests: readonly UnconfirmedRequest[] }
  | {
      readonly type: 'train';
      readonly generation: number;
      readonly version: string;
      readonly job: TrainingJob;
    }
  | {
      readonly type: 'save-version';
      readonly generation: number;
      readonly artifact: ModelArtifact;
      readonly meta: ModelVersionMeta;
    }
  | { readonly type: 'abandon-window'; readonly generation: number }
  | {
      readonly type: 'checkpoint';
      /** The checkpoint file's content (no reference into the live state). */
      readonly file: { readonly offsets: readonly PartitionPosition[] };
      readonly outbox: readonly OutboxEntry[];
    }
  | { readonly type: 'commit'; readonly offsets: readonly PartitionOffset[] }
  | { readonly type: 'publish-versions'; readonly entries: readonly OutboxEntry[] }
  | { readonly type: 'send-dead-letters'; readonly letters: readonly QueuedDeadLetter[] }
  | { readonly type: 'pause'; readonly topic: string }
  | { readonly type: 'resume'; readonly topic: string }
  | { readonly type: 'seek'; readonly offsets: readonly PartitionOffset[] }
  | { readonly type: 'read-group-offsets' }
  | { readonly type: 'probe-brokers' }
  | { readonly type: 'fatal'; readonly error: Error }
  /** Draining is done: the last checkpoint is written and committed (or failed). */
  | { readonly type: 'drained' }
  | ClusterEffect;

/** The step's result: the state (the same object, updated) and what it asks of the world. */
export interface StepResult<S> {
  readonly state: S;
  readonly effects: Effect[];
}

/** Score request options of a recipe group (scoring-options.ts builds them from the config). */
export type RecipeOptions = ScoreRequestOptions;
