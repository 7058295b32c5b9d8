/**
 * Where a real Kafka broker for tests and local runs comes from, in order:
 *
 * 1. `KAFKA_BROKERS` (comma-separated host:port list): an existing broker; stop() does nothing.
 *    `scripts/kafka-local.ts exec -- <command>` uses this to share one broker across a whole test run.
 * 2. Testcontainers' Kafka module, when a container engine answers. The check is cheap and bounded:
 *    without DOCKER_HOST / TESTCONTAINERS_HOST_OVERRIDE / ~/.testcontainers.properties and without a
 *    known engine socket on disk, testcontainers is not even imported; otherwise its
 *    getContainerRuntimeClient() gets `engineCheckTimeoutMs` (default 5 s) to answer.
 * 3. The embedded broker (a Kafka JVM from Maven Central jars, see embedded-broker.ts).
 *
 * `KAFKA_BROKER_SOURCE=embedded|testcontainers|env` (or `opts.source`) forces one source; a forced
 * source that is unavailable is an error rather than a silent fallback.
 */

import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedBroker, type EmbeddedBroker, type EmbeddedBrokerOptions } from './embedded-broker.js';

export type BrokerKind = 'env' | 'testcontainers' | 'embedded';

export interface AcquiredBroker {
  brokers: string[];
  kind: BrokerKind;
  /** Stops what acquireBroker started (nothing for 'env'). Idempotent. */
  stop(): Promise<void>;
  /** The embedded broker's handle (kind 'embedded' only), e.g. for fault tests. */
  embedded?: EmbeddedBroker;
}

export interface AcquireBrokerOptions {
  /** 'auto' (default, or KAFKA_BROKER_SOURCE) tries env, then testcontainers, then embedded. */
  source?: 'auto' | BrokerKind;
  /** Options for the embedded broker. */
  embedded?: EmbeddedBrokerOptions;
  /** Container image for the Testcontainers module (Confluent images only; cp-kafka 7.9 = Kafka 3.9).
   *  Default: KAFKA_TESTCONTAINERS_IMAGE or 'confluentinc/cp-kafka:7.9.0'. */
  containerImage?: string;
  /** How long the container engine gets to answer. Default 5000 ms. */
  engineCheckTimeoutMs?: number;
  /** Progress messages ("using embedded broker ..."). */
  log?: (line: string) => void;
  /** Environment to read (default process.env); for tests of this module. */
  env?: NodeJS.ProcessEnv;
}

const DEFAULT_IMAGE = 'confluentinc/cp-kafka:7.9.0';
const KAFKA_CONTAINER_PORT = 9093;

export function parseBrokerList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function sourceFrom(opts: AcquireBrokerOptions, env: NodeJS.ProcessEnv): 'auto' | BrokerKind {
  const raw = opts.source ?? env['KAFKA_BROKER_SOURCE'] ?? 'auto';
  if (raw === 'auto' || raw === 'env' || raw === 'testcontainers' || raw === 'embedded') return raw;
  throw new Error(`KAFKA_BROKER_SOURCE must be auto, env, testcontainers or embedded, not '${raw}'.`);
}

/** Whether anything suggests a container engine; false means testcontainers need not be loaded. */
export function containerEngineHinted(env: NodeJS.ProcessEnv = process.env): boolean {
  if (
    env['DOCKER_HOST'] ||
    env['TESTCONTAINERS_HOST_OVERRIDE'] ||
    env['TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE']
  ) {
    return true;
  }
  const home = homedir();
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  const runtimeDir = env['XDG_RUNTIME_DIR'];
  const candidates = [
    join(home, '.testcontainers.properties'),
    '/var/run/docker.sock',
    '/run/docker.sock',
    join(home, '.docker', 'run', 'docker.sock'),
    join(home, '.docker', 'desktop', 'docker.sock'),
    join(home, '.colima', 'default', 'docker.sock'),
    join(home, '.rd', 'docker.sock'),
    ...(runtimeDir ? [join(runtimeDir, 'docker.sock'), join(runtimeDir, 'podman', 'podman.sock')] : []),
    ...(uid !== undefined ? [`/run/user/${uid}/docker.sock`, `/run/user/${uid}/podman/podman.sock`] : []),
    '/run/podman/podman.sock',
  ];
  return candidates.some((p) => existsSync(p));
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** True when a container engine answers within timeoutMs (testcontainers is imported only if hinted). */
export async function containerEngineAvailable(
  timeoutMs = 5000,
  env: NodeJS.ProcessEnv = process.env,
): Promise<boolean> {
  if (!containerEngineHinted(env)) return false;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await withTimeout(getContainerRuntimeClient(), timeoutMs, 'The container engine');
    return true;
  } catch {
    return false;
  }
}

function onceAsync(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= fn());
}

async function startContainer(image: string): Promise<AcquiredBroker> {
  const { KafkaContainer } = await import('@testcontainers/kafka');
  const container = await new KafkaContainer(image).withKraft().start();
  return {
    brokers: [`${container.getHost()}:${container.getMappedPort(KAFKA_CONTAINER_PORT)}`],
    kind: 'testcontainers',
    stop: onceAsync(async () => {
      await container.stop();
    }),
  };
}

async function startEmbedded(opts: AcquireBrokerOptions): Promise<AcquiredBroker> {
  const broker = await startEmbeddedBroker(opts.embedded);
  return { brokers: broker.brokers, kind: 'embedded', stop: () => broker.stop(), embedded: broker };
}

/** A real Kafka broker: KAFKA_BROKERS, else a Testcontainers container, else the embedded JVM broker. */
export async function acquireBroker(opts: AcquireBrokerOptions = {}): Promise<AcquiredBroker> {
  const env = opts.env ?? process.env;
  const source = sourceFrom(opts, env);
  const log = opts.log ?? (() => undefined);
  const image = opts.containerImage ?? env['KAFKA_TESTCONTAINERS_IMAGE'] ?? DEFAULT_IMAGE;

  const fromEnv = parseBrokerList(env['KAFKA_BROKERS'] ?? '');
  if (source === 'env' || (source === 'auto' && fromEnv.length > 0)) {
    if (fromEnv.length === 0) throw new Error('KAFKA_BROKER_SOURCE=env but KAFKA_BROKERS is empty.');
    log(`Kafka: using KAFKA_BROKERS=${fromEnv.join(',')}`);
    return { brokers: fromEnv, kind: 'env', stop: () => Promise.resolve() };
  }

  if (source === 'testcontainers' || source === 'auto') {
    const timeoutMs = opts.engineCheckTimeoutMs ?? 5000;
    if (await containerEngineAvailable(timeoutMs, env)) {
      log(`Kafka: starting ${image} with Testcontainers`);
      const acquired = await startContainer(image);
      log(`Kafka: container broker at ${acquired.brokers.join(',')}`);
      return acquired;
    }
    if (source === 'testcontainers') {
      throw new Error(
        'KAFKA_BROKER_SOURCE=testcontainers but no container engine answered (set DOCKER_HOST or start Docker/Podman).',
      );
    }
    log('Kafka: no container engine; using the embedded broker');
  }

  const t0 = Date.now();
  const acquired = await startEmbedded(opts);
  log(`Kafka: embedded broker at ${acquired.brokers.join(',')} (${Date.now() - t0} ms)`);
  return acquired;
}
