/**
 * `acft run` instances as child processes for integration tests (scale-out), with their JSON log
 * lines, and the waiting helpers those tests share.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { daemonTopics, type KafkaFixture } from './kafka.js';
import { patience } from './patience.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface LogLine {
  event?: string;
  msg?: string;
  /** The level as a word (the daemon's logger writes `info`, `warn`, `error`, ...). */
  level?: string;
  at: number;
  [key: string]: unknown;
}

/** The environment without ACFT_* variables (the daemon refuses unknown ones, e.g. ACFT_TEST_LOG). */
function withoutAcftVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith('ACFT_')));
}

/** Events that tell a scale-out story: roles, assignments, selections, windows, refusals. */
const STORY = new Set([
  'coordinator',
  'coordinator-fenced',
  'partitions-assigned',
  'requests',
  'window',
  'window-abandoned',
  'window-failed',
  'shortlist-refused',
  'serving',
  'stopping',
]);

/**
 * Writes every line of the instances (time order, each prefixed by its instance) to a file in the
 * temporary directory, and returns its path: the full record behind a failed scale-out test.
 */
export function saveLogs(instances: readonly Instance[], name: string): string {
  const file = path.join(os.tmpdir(), `${name}-${process.pid}-${Date.now()}.log`);
  const lines = instances
    .flatMap((i) => i.lines.map((l) => ({ at: l.at, text: `[${i.id}] ${JSON.stringify(l)}` })))
    .sort((a, b) => a.at - b.at)
    .map((l) => l.text);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** Fields of every line that say nothing about the story. */
const PLUMBING = new Set(['event', 'at', 'level', 'msg', 'time', 'pid', 'hostname', 'service']);

/**
 * The instances' story as text, in time order (the last `max` lines): what a failed scale-out
 * test prints, so that a run on a loaded machine explains itself without the full logs.
 */
export function story(instances: readonly Instance[], max = 80): string {
  return instances
    .flatMap((i) =>
      i.lines
        .filter((l) => STORY.has(l.event ?? '') || l.level === 'error')
        .map((l) => {
          const rest = Object.fromEntries(Object.entries(l).filter(([k]) => !PLUMBING.has(k)));
          const when = String(l['time']).slice(11, 23);
          return { at: l.at, text: `${when} ${i.id} ${l.event ?? ''} ${JSON.stringify(rest).slice(0, 160)}` };
        }),
    )
    .sort((a, b) => a.at - b.at)
    .slice(-max)
    .map((l) => l.text)
    .join('\n');
}

/** A running `acft run` child process and its JSON log lines. */
export class Instance {
  readonly lines: LogLine[] = [];
  private readonly watchers = new Set<(line: LogLine) => void>();
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(
    readonly id: string,
    env: Record<string, string>,
  ) {
    this.child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'run'], {
      cwd: ROOT,
      env: { ...withoutAcftVariables(process.env), ...env, ACFT_CLUSTER_INSTANCE_ID: id },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const read = (stream: NodeJS.ReadableStream) =>
      createInterface({ input: stream }).on('line', (line) => {
        if (process.env['ACFT_TEST_LOG']) process.stderr.write(`[${id}] ${line}\n`);
        let parsed: LogLine;
        try {
          parsed = { ...(JSON.parse(line) as object), at: Date.now() };
        } catch {
          parsed = { msg: line, at: Date.now() };
        }
        this.lines.push(parsed);
        for (const watcher of this.watchers) watcher(parsed);
      });
    read(this.child.stdout as NodeJS.ReadableStream);
    read(this.child.stderr as NodeJS.ReadableStream);
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  /**
   * Sends `signal` as soon as the instance logs `event` (synchronously with the line's arrival,
   * not at the next poll), or after `timeoutMs` in any case; resolves to whether the event came.
   */
  signalOn(event: string, signal: NodeJS.Signals, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (seen: boolean) => {
        this.watchers.delete(watcher);
        clearTimeout(timer);
        this.kill(signal);
        resolve(seen);
      };
      const watcher = (line: LogLine) => {
        if (line.event === event) done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.watchers.add(watcher);
    });
  }

  /** The value of a sample of its Prometheus metrics (`name{labels}` as exposed), or 0 if absent. */
  async metric(sample: string): Promise<number> {
    const url = this.events('http-started')[0]?.['url'];
    if (typeof url !== 'string') throw new Error(`${this.id} has not started its HTTP server`);
    const text = await (await fetch(`${url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
    return line === undefined ? 0 : Number(line.slice(sample.length + 1));
  }

  events(event: string): LogLine[] {
    return this.lines.filter((l) => l.event === event);
  }

  /** Candidate partitions of the latest assignment. */
  candidatePartitions(topic: string): number[] {
    const last = this.events('partitions-assigned').at(-1);
    const owned = (last?.['partitions'] as string[] | undefined) ?? [];
    return owned.filter((tp) => tp.startsWith(`${topic}:`)).map((tp) => Number(tp.slice(topic.length + 1)));
  }

  /** Coordinates per its latest role change. */
  get coordinator(): boolean {
    return this.events('coordinator').at(-1)?.['role'] === 'gained';
  }

  kill(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  async stop(): Promise<void> {
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), 20_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * Creates the topics, then waits until every partition has a leader. (kafkajs' own
 * `waitForLeaders` gives up on UNKNOWN_TOPIC_OR_PARTITION, which a busy broker answers at first.)
 */
export async function createTopicsPatiently(
  kafka: KafkaFixture,
  topics: { topic: string; numPartitions: number; configEntries?: { name: string; value: string }[] }[],
): Promise<void> {
  const admin = await kafka.admin();
  await admin.createTopics({
    waitForLeaders: false,
    topics: topics.map((t) => ({ ...t, replicationFactor: 1 })),
  });
  await waitFor(
    'the topics to have leaders',
    async () => {
      try {
        const { topics: meta } = await admin.fetchTopicMetadata({ topics: topics.map((t) => t.topic) });
        return meta.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0));
      } catch {
        return false;
      }
    },
    60_000,
  );
}

export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 90_000,
): Promise<void> {
  const budget = patience(timeoutMs);
  while (!(await condition())) {
    if (budget.expired()) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The topics of a scale-out test called `name`. */
export function clusterTopics(name: string) {
  return { ...daemonTopics(name), ledger: `${name}.ledger` };
}

export type ClusterTopics = ReturnType<typeof clusterTopics>;

/** Creates them: candidates, feedback and the (compacted) ledger with `partitions`, the rest with one. */
export function createClusterTopics(
  kafka: KafkaFixture,
  topics: ClusterTopics,
  partitions: number,
): Promise<void> {
  return createTopicsPatiently(kafka, [
    { topic: topics.candidates, numPartitions: partitions },
    { topic: topics.feedback, numPartitions: partitions },
    { topic: topics.labelingRequests, numPartitions: 1 },
    { topic: topics.modelVersions, numPartitions: 1 },
    { topic: topics.deadLetter, numPartitions: 1 },
    { topic: topics.coordination, numPartitions: 1 },
    {
      topic: topics.ledger,
      numPartitions: partitions,
      configEntries: [{ name: 'cleanup.policy', value: 'compact' }],
    },
  ]);
}

/**
 * What every instance of a scale-out test shares: the broker, the group, the topics, scale-out on,
 * fast shortlists, small models (m = 4, one epoch) and debug logs; a test adds its timings.
 */
export function clusterEnv(kafka: KafkaFixture, name: string, topics: ClusterTopics): Record<string, string> {
  return {
    ACFT_KAFKA_BROKERS: kafka.brokers.join(','),
    ACFT_KAFKA_GROUP_ID: `${name}-group`,
    ACFT_KAFKA_CLIENT_ID: name,
    ACFT_KAFKA_TOPICS_CANDIDATES: topics.candidates,
    ACFT_KAFKA_TOPICS_FEEDBACK: topics.feedback,
    ACFT_KAFKA_TOPICS_LABELING_REQUESTS: topics.labelingRequests,
    ACFT_KAFKA_TOPICS_MODEL_VERSIONS: topics.modelVersions,
    ACFT_KAFKA_TOPICS_DEAD_LETTER: topics.deadLetter,
    ACFT_KAFKA_TOPICS_COORDINATION: topics.coordination,
    ACFT_KAFKA_TOPICS_LEDGER: topics.ledger,
    ACFT_CLUSTER_ENABLED: 'true',
    ACFT_CLUSTER_SHORTLIST_INTERVAL_MS: '500',
    // Longer than the test: a candidate asked twice would be asked while outstanding or answered.
    ACFT_SELECTION_LEASE_MS: '900000',
    ACFT_SCORING_M: '4',
    ACFT_TRAINING_EPOCHS: '1',
    ACFT_TRAINING_HOLDOUT_SHARE: '0.25',
    // Topology, not model quality, is under test: every version is promoted.
    ACFT_TRAINING_PROMOTION_TOLERANCE: '1',
    ACFT_TRAINING_PROMOTION_MIN_AUC: '0',
    ACFT_HTTP_PORT: '0',
    ACFT_LOG_LEVEL: 'debug',
  };
}
