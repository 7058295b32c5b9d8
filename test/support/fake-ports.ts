/**
 * In-memory fakes of the daemon's ports (src/daemon/ports.ts) and a virtual clock, so that the
 * whole loop runs in a unit test in seconds: the brokers as topics in memory (chunks delivered by
 * the test, sends recorded), a scorer that scores by a hash of the id, a trainer that returns its
 * parent's weights with the AUCs it is told, and stores in memory.
 */
import { Subject, VirtualAction, VirtualTimeScheduler } from 'rxjs';
import type { PartitionOffset, TopicPartition } from '../../src/core/offsets.js';
import { stableHash } from '../../src/core/windows.js';
import type { ChunkOutcome, Input, IntakeMessage } from '../../src/daemon/loop/io.js';
import type {
  BrokerPort,
  CheckpointStore,
  Clock,
  OutMessage,
  ScorerPort,
  TrainerPort,
} from '../../src/daemon/ports.js';
import type { ArtifactStore, LoadedArtifact } from '../../src/model/artifact-store.js';
import { sha256Hex, type ModelArtifact, type ModelVersionMeta } from '../../src/model/model-store.js';
import type {
  ModelVersionArtifact,
  ScoreBatchResult,
  ScoreRequestOptions,
  ScoringInput,
} from '../../src/workers/scoring-service.js';
import type { TrainingJob, TrainingResult } from '../../src/workers/training-service.js';

/** A clock whose time moves only when the test says so. */
export class VirtualClock implements Clock {
  readonly scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
  constructor(private readonly base = Date.parse('2026-12-01T08:00:00Z')) {}

  now(): number {
    return this.base + this.scheduler.frame;
  }

  /** Moves time on by `ms` in steps, letting promises and asap work settle at each. */
  async advance(ms: number, stepMs = 10): Promise<void> {
    const target = this.scheduler.frame + ms;
    while (this.scheduler.frame < target) {
      this.scheduler.maxFrames = Math.min(target, this.scheduler.frame + stepMs);
      this.scheduler.flush();
      this.scheduler.frame = this.scheduler.maxFrames;
      await settle();
    }
  }

  /** Moves time on until `done()` (at most `ms`), `stepMs` at a time; throws when it never is. */
  async until(what: string, done: () => boolean, ms = 120_000, stepMs = 50): Promise<void> {
    for (let waited = 0; !done(); waited += stepMs) {
      if (waited > ms) throw new Error(`not ${what} after ${ms} virtual ms`);
      await this.advance(stepMs, Math.min(stepMs, 10));
    }
  }
}

/** Lets queued promise callbacks and immediates run. */
export async function settle(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

/** The brokers in memory: topics as lists, the loop's inputs pushed by the test. */
export class FakeBroker implements BrokerPort {
  private readonly subject = new Subject<Input>();
  readonly inputs$ = this.subject.asObservable();
  readonly topics = new Map<string, OutMessage[]>();
  readonly commits: PartitionOffset[][] = [];
  readonly committedOffsets = new Map<string, number>();
  readonly paused = new Set<string>();
  readonly seeks: PartitionOffset[][] = [];
  /** Sends fail while true (an outage). */
  refuseSends = false;
  private readonly nextOffset = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly owned: readonly TopicPartition[],
  ) {}

  connect(): Promise<void> {
    return Promise.resolve();
  }

  consume(): Promise<void> {
    this.subject.next({ type: 'assigned', owned: this.owned, rejoined: false, now: this.clock.now() });
    return Promise.resolve();
  }

  /** Delivers messages on a partition, as one chunk; resolves with the loop's reply. */
  deliver(
    topic: string,
    partition: number,
    messages: { key: string | null; value: string }[],
  ): Promise<ChunkOutcome> {
    const k = `${topic}:${partition}`;
    const first = this.nextOffset.get(k) ?? 0;
    this.nextOffset.set(k, first + messages.length);
    const chunk: IntakeMessage[] = messages.map((m, i) => ({
      offset: first + i,
      key: m.key === null ? null : Buffer.from(m.key),
      value: Buffer.from(m.value),
      timestamp: String(this.clock.now()),
    }));
    return new Promise((reply) =>
      this.subject.next({
        type: 'chunk',
        chunk: { topic, partition, messages: chunk, highWatermark: first + messages.length },
        reply,
        now: this.clock.now(),
      }),
    );
  }

  /** Pushes any input as the consumers would. */
  push(input: Input): void {
    this.subject.next(input);
  }

  sent(topic: string): OutMessage[] {
    return this.topics.get(topic) ?? [];
  }

  send(topic: string, messages: readonly OutMessage[]): Promise<void> {
    if (this.refuseSends) return Promise.reject(new Error('brokers unreachable (fake)'));
    this.topics.set(topic, [...this.sent(topic), ...messages]);
    return Promise.resolve();
  }

  commit(offsets: readonly PartitionOffset[]): Promise<void> {
    this.commits.push([...offsets]);
    for (const o of offsets) this.committedOffsets.set(`${o.topic}:${o.partition}`, o.offset);
    return Promise.resolve();
  }

  committed(
    partitions: readonly TopicPartition[],
  ): Promise<(TopicPartition & { committed: number | null })[]> {
    return Promise.resolve(
      partitions.map((p) => ({
        ...p,
        committed: this.committedOffsets.get(`${p.topic}:${p.partition}`) ?? null,
      })),
    );
  }

  seek(offsets: readonly PartitionOffset[]): void {
    this.seeks.push([...offsets]);
  }

  pause(topic: string): void {
    this.paused.add(topic);
  }

  resume(topic: string): void {
    this.paused.delete(topic);
  }

  probe(): Promise<void> {
    return this.refuseSends ? Promise.reject(new Error('no answer (fake)')) : Promise.resolve();
  }

  close(): Promise<void> {
    this.subject.complete();
    return Promise.resolve();
  }
}

/** A gate a fake's call waits at until the test opens it. */
export class Gate {
  private opened = false;
  private waiting: (() => void)[] = [];
  passed = 0;

  wait(): Promise<void> {
    if (this.opened) return Promise.resolve();
    return new Promise((r) => this.waiting.push(r));
  }

  open(): void {
    this.opened = true;
    for (const r of this.waiting.splice(0)) r();
  }

  get held(): number {
    return this.waiting.length;
  }
}

/** Scores by a hash of the candidate id (and the version): deterministic, no tfjs. */
export class FakeScorer implements ScorerPort {
  readonly backend = 'fake';
  version: string | undefined;
  readonly calls: { version: string; ids: string[] }[] = [];
  /** When set, calls whose first id is of a rescore wait at it (see the test). */
  gate: ((ids: readonly string[]) => Gate | undefined) | undefined;

  setModel(model: ModelVersionArtifact): Promise<void> {
    this.version = model.version;
    return Promise.resolve();
  }

  async score(candidates: readonly ScoringInput[], options: ScoreRequestOptions): Promise<ScoreBatchResult> {
    const version = this.version;
    if (version === undefined) throw new Error('no model');
    const ids = candidates.map((c) => c.id);
    this.calls.push({ version, ids });
    await this.gate?.(ids)?.wait();
    return {
      version,
      results: ids.map((id) => {
        const p = parseInt(stableHash(`${version}:${id}`).slice(0, 6), 16) / 0xffffff;
        const entropy = -(p * Math.log(p + 1e-9) + (1 - p) * Math.log(1 - p + 1e-9));
        return {
          id,
          score: entropy,
          entropy,
          diversity: 0,
          dominantClass: p > 0.5 ? 0 : 1,
          meanProbs: [p, 1 - p],
        };
      }),
      seconds: 0.001,
      patches: ids.length * options.m,
      patchesFromCache: 0,
    };
  }

  forget(): void {}

  featureCacheStats(): undefined {
    return undefined;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Returns its parent's weights as the new version, with the AUCs it is given. */
export class FakeTrainer implements TrainerPort {
  readonly jobs: TrainingJob[] = [];
  gate: Gate | undefined;
  holdoutAuc: number | null = 0.8;
  parentHoldoutAuc: number | null = 0.7;

  async train(job: TrainingJob): Promise<TrainingResult> {
    this.jobs.push(job);
    await this.gate?.wait();
    return {
      artifact: { ...job.parent, sha256: sha256Hex(job.parent.weights) },
      holdoutAuc: this.holdoutAuc,
      parentHoldoutAuc: this.parentHoldoutAuc,
      seconds: 0.01,
      epochLosses: [0.5],
      trainPatches: job.train.candidates.length * job.m,
    };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The model store in memory. */
export class MemoryStore implements ArtifactStore {
  readonly root = 'memory://models';
  readonly versions = new Map<string, { artifact: ModelArtifact; sha256: string; meta: ModelVersionMeta }>();

  saveArtifact(
    artifact: ModelArtifact,
    meta: ModelVersionMeta,
  ): Promise<{ location: string; sha256: string }> {
    const sha256 = sha256Hex(artifact.weights);
    this.versions.set(meta.version, { artifact, sha256, meta });
    return Promise.resolve({ location: this.locationOf(meta.version), sha256 });
  }

  list(): Promise<ModelVersionMeta[]> {
    return Promise.resolve([...this.versions.values()].map((v) => v.meta));
  }

  locationOf(version: string): string {
    return `${this.root}/${version}`;
  }

  load(location: string, expectedSha256?: string): Promise<LoadedArtifact> {
    const v = this.versions.get(location.slice(this.root.length + 1));
    if (!v) return Promise.reject(new Error(`no version at ${location}`));
    if (expectedSha256 !== undefined && expectedSha256 !== v.sha256)
      return Promise.reject(new Error(`sha256 ${v.sha256}, expected ${expectedSha256}`));
    return Promise.resolve({ artifact: v.artifact, sha256: v.sha256, meta: v.meta });
  }
}

/** Checkpoints in memory, as JSON (what the file holds). */
export class MemoryCheckpoints implements CheckpointStore {
  text: string | undefined;
  writes = 0;

  read(): Promise<unknown> {
    return Promise.resolve(this.text === undefined ? undefined : JSON.parse(this.text));
  }

  write(file: unknown): Promise<void> {
    this.text = JSON.stringify(file);
    this.writes++;
    return Promise.resolve();
  }

  get file(): { [key: string]: unknown } | undefined {
    return this.text === undefined ? undefined : (JSON.parse(this.text) as { [key: string]: unknown });
  }
}
