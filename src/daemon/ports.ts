/**
 * What the daemon talks to, as small interfaces: the brokers, the scorer, the trainer, the model
 * store, the checkpoint store and the clock. The adapters (adapters/, the worker services, the
 * stores of src/model) implement them; the daemon is composed from them (daemon.ts), so its whole
 * loop runs in unit tests on in-memory fakes with a virtual clock.
 */
import type { Observable, SchedulerLike } from 'rxjs';
import type { PartitionOffset, TopicPartition } from '../core/offsets.js';
import type { ArtifactStore } from '../model/artifact-store.js';
import type { ScoreBatchResult, ScoreRequestOptions, ScoringInput } from '../workers/scoring-service.js';
import type { TrainingJob, TrainingResult } from '../workers/training-service.js';
import type { ModelVersionArtifact } from '../workers/scoring-service.js';
import type { Input } from './loop/io.js';

/**
 * A commit the group refused because this consumer is no longer a member of it under its current
 * generation (its session expired, e.g. while the process was frozen, or a rebalance is under
 * way): nothing is wrong with the brokers, and the partitions' next owner reads on from their last
 * commit. Adapters throw it; the loop tells it apart from a failure.
 */
export class CommitRefusedError extends Error {
  readonly code = 'COMMIT_REFUSED';
  override readonly name = 'CommitRefusedError';
}

/** Time, for the loop and its operators. Tests pass a virtual one. */
export interface Clock {
  now(): number;
  /** The scheduler of the loop's timers (ticks, micro-batch waits, timeouts). */
  readonly scheduler: SchedulerLike;
}

/** A message to produce. */
export interface OutMessage {
  readonly key: string | null;
  readonly value: string;
}

/** The Kafka side of one instance: its consumers' inputs and the requests the loop makes of them. */
export interface BrokerPort {
  /**
   * Everything the consumers see, as inputs of the loop: chunks of fetched batches (each waits
   * for its reply before the next: kafkajs's backpressure is kept), assignments, model-version
   * messages, and the brokers' answers and failures.
   */
  readonly inputs$: Observable<Input>;
  /** Checks the brokers answer (refused credentials are told apart), makes the topics, connects the producer. */
  connect(): Promise<void>;
  /**
   * Starts the consumers: model-versions first, read to its end as of now (so that the loop knows
   * which versions are out before it publishes any), then candidates and feedback.
   */
  consume(): Promise<void>;
  /** Produces; resolves once the broker confirmed every message. */
  send(topic: string, messages: readonly OutMessage[]): Promise<void>;
  /** Commits for the group; resolves once the broker acknowledged every offset. */
  commit(offsets: readonly PartitionOffset[]): Promise<void>;
  /** The group's committed offsets of these partitions (null: none). */
  committed(
    partitions: readonly TopicPartition[],
  ): Promise<(TopicPartition & { committed: number | null })[]>;
  seek(offsets: readonly PartitionOffset[]): void;
  pause(topic: string): void;
  resume(topic: string): void;
  /** Asks the brokers for their metadata; rejects when they do not answer in time. */
  probe(): Promise<void>;
  /** Lets sends still in flight settle (bounded), then disconnects everything. */
  close(): Promise<void>;
}

/** The scoring workers (ScoringService). */
export interface ScorerPort {
  readonly backend: string;
  setModel(model: ModelVersionArtifact): Promise<void>;
  score(candidates: readonly ScoringInput[], options: ScoreRequestOptions): Promise<ScoreBatchResult>;
  forget(ids: Iterable<string>): void;
  featureCacheStats(): { bytes: number; entries: number } | undefined;
  close(): Promise<void>;
}

/** The training worker (TrainingService). */
export interface TrainerPort {
  train(job: TrainingJob): Promise<TrainingResult>;
  close(): Promise<void>;
}

/** Where checkpoints are written (checkpoint-file.ts on a directory). */
export interface CheckpointStore {
  read(): Promise<unknown>;
  write(file: unknown): Promise<void>;
}

/**
 * The Kafka side of scale-out (adapters/kafka-cluster.ts): the ledger, the coordination group and
 * its shortlists as inputs, and the writes and moves the loop asks for.
 */
export interface ClusterPort {
  readonly inputs$: Observable<Input>;
  readonly instanceId: string;
  /** Reads the ledger to its end (before candidates are replayed). */
  readLedger(): Promise<void>;
  /** Joins the coordination group. */
  joinElection(): Promise<void>;
  /** Opens the term's writer (fencing the previous coordinator), catches up; `caught-up` or a failure. */
  takeOver(term: number): Promise<Input>;
  /** Closes the writers of `term` and before. */
  dropWriter(term: number): void;
  rejoinElection(): Promise<void>;
  writeAsCoordinator(
    term: number,
    topics: readonly { topic: string; messages: { key: string | null; value: string }[] }[],
  ): Promise<void>;
  writerLost(term: number, error: unknown): { fenced: boolean; writerLost: boolean };
  rewind(partitions: readonly number[]): Promise<Input>;
  resume(topic: string, partitions: readonly number[]): void;
  send(topic: string, messages: readonly OutMessage[]): Promise<void>;
  close(): Promise<void>;
}

/** Everything the daemon is composed from. */
export interface Ports {
  readonly clock: Clock;
  readonly broker: BrokerPort;
  readonly scorer: ScorerPort;
  readonly trainer: TrainerPort;
  readonly store: ArtifactStore;
  readonly checkpoints: CheckpointStore;
  /** Scale-out only. */
  readonly cluster?: ClusterPort;
}
