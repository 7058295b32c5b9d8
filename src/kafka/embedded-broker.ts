/**
 * A real, single-node Apache Kafka broker (KRaft mode, no ZooKeeper) run as a child JVM from jars
 * resolved from Maven Central, for integration tests and local development on machines without a
 * container engine. It is the same broker code as a production cluster, not a mock.
 *
 * Jars: `deploy/kafka-local/pom.xml` pins Kafka 3.9.x. `ensureKafkaJars()` copies the broker's
 * runtime jars into `deploy/kafka-local/target/libs/` with Maven the first time and writes a
 * manifest there; later calls see a complete cache (manifest present, pom unchanged, every jar
 * present) and skip Maven entirely. Resolution goes to a private staging folder that is renamed
 * into place, so concurrent test processes never see a half-filled cache.
 *
 * Broker configuration (see `serverProperties`): combined broker+controller, node.id=1, PLAINTEXT on
 * 127.0.0.1:port, CONTROLLER on another free loopback port, replication factors and min ISR of 1
 * for the internal topics (which get 1 partition each, for a fast first group join), no initial
 * rebalance delay, 1 partition by default and
 * `auto.create.topics.enable=false`: tests create every topic explicitly (with the partition count
 * they mean), so a typo or a produce-before-create race fails loudly instead of silently creating a
 * 1-partition topic. Pass `autoCreateTopics: true` to change that.
 *
 * Process hygiene: the JVM never outlives Node. Every live broker is SIGKILLed (and its temporary
 * folder removed) on process 'exit', and on SIGINT/SIGTERM/SIGHUP when nothing else handles that
 * signal (the signal is then re-raised so Node still dies of it). For the cases no handler sees
 * (Node itself SIGKILLed or crashing natively), each broker has a tiny `sh` watchdog that reads a
 * pipe from Node and kills the JVM when the pipe closes. The broker child is unref'd: it does not
 * keep the event loop alive, so a test file that forgets `stop()` still exits (and the broker dies
 * with it); `stop()` itself holds the loop until the JVM has exited.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel as kafkaLogLevel } from 'kafkajs';

/** Folder holding pom.xml; `target/libs` under it is the jar cache. Same relative path from src/ and dist/. */
export const KAFKA_LOCAL_DIR = fileURLToPath(new URL('../../deploy/kafka-local/', import.meta.url));
const POM_PATH = join(KAFKA_LOCAL_DIR, 'pom.xml');
const LIBS_DIR = join(KAFKA_LOCAL_DIR, 'target', 'libs');
const MANIFEST_NAME = '.manifest.json';
const LOOPBACK = '127.0.0.1';
const NODE_ID = 1;
const LOG_TAIL_LINES = 200;

export type LogFn = (line: string) => void;

export interface EmbeddedBrokerOptions {
  /** PLAINTEXT port on 127.0.0.1. Default: a free port. A port in use is an error. */
  port?: number;
  /** KRaft controller port (with `port` and `dataDir`: restart a stopped broker exactly as it was).
   *  Default: a free port. */
  controllerPort?: number;
  /** Kafka log.dirs. Default: a fresh temp folder, removed by stop(). A given folder is kept, and an
   *  already-formatted one is reused as is (restart a killed broker on the same data). */
  dataDir?: string;
  /** Receives every line the JVM (and Maven, when it runs) prints. Default: lines are only kept for error messages. */
  log?: LogFn;
  /** How long to wait for the broker to answer describeCluster/listTopics. Default 90 000 ms. */
  startTimeoutMs?: number;
  /** Broker log4j root level. Default 'WARN' (startup at INFO is several hundred lines). */
  logLevel?: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /** auto.create.topics.enable. Default false (see the module comment). */
  autoCreateTopics?: boolean;
  /** Extra/overriding server.properties entries, e.g. { 'log.segment.bytes': '1048576' }. */
  extraProperties?: Record<string, string>;
  /** Extra JVM arguments (appended after the defaults, so `-Xmx1g` here wins over -Xmx512m). */
  jvmArgs?: string[];
  /** Grace period for SIGTERM in stop() before SIGKILL. Default 15 000 ms. */
  stopTimeoutMs?: number;
  /**
   * A second client listener, SASL_PLAINTEXT with the PLAIN mechanism, on another free port, for
   * these users (name to password); see {@link EmbeddedBroker.saslBrokers}. For tests of
   * authentication: PLAIN sends the password as is, so only ever on loopback.
   */
  saslPlainUsers?: Record<string, string>;
}

export interface EmbeddedBrokerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface EmbeddedBroker {
  /** Bootstrap servers, e.g. ['127.0.0.1:40123']. */
  readonly brokers: string[];
  /** The SASL_PLAINTEXT (PLAIN) listener's bootstrap servers, with `saslPlainUsers`. */
  readonly saslBrokers?: string[];
  readonly port: number;
  readonly controllerPort: number;
  readonly dataDir: string;
  readonly clusterId: string;
  /** PID of the broker JVM. */
  readonly pid: number;
  /** Resolves when the JVM has exited (for whatever reason). Awaiting it alone does not keep Node
   *  alive while the broker runs (the child is unref'd); after kill('SIGKILL'|'SIGTERM'|'SIGINT'|'SIGHUP')
   *  or stop() it does. */
  readonly exited: Promise<EmbeddedBrokerExit>;
  /** SIGTERM, then SIGKILL after stopTimeoutMs; removes the temp folder. Idempotent; safe after kill(). */
  stop(): Promise<void>;
  /** Sends a signal to the JVM (fault tests: 'SIGKILL' to crash it, 'SIGSTOP'/'SIGCONT' to freeze it).
   *  Returns false when the JVM is already gone. Call stop() afterwards to clean up. */
  kill(signal?: NodeJS.Signals): boolean;
  /** The last lines the JVM printed. */
  logTail(): string[];
}

// ---------------------------------------------------------------------------------------------
// Jar cache (Maven)
// ---------------------------------------------------------------------------------------------

interface Manifest {
  pomSha256: string;
  kafkaVersion: string;
  jars: string[];
}

function pomSha256(): string {
  return createHash('sha256').update(readFileSync(POM_PATH)).digest('hex');
}

function readValidManifest(libsDir: string, expectedPomSha: string): Manifest | undefined {
  try {
    const manifest = JSON.parse(readFileSync(join(libsDir, MANIFEST_NAME), 'utf8')) as Partial<Manifest>;
    if (
      manifest.pomSha256 !== expectedPomSha ||
      !Array.isArray(manifest.jars) ||
      manifest.jars.length === 0
    ) {
      return undefined;
    }
    for (const jar of manifest.jars) {
      if (statSync(join(libsDir, jar), { throwIfNoEntry: false })?.isFile() !== true) return undefined;
    }
    return manifest as Manifest;
  } catch {
    return undefined;
  }
}

/** True when the jar cache is complete, i.e. ensureKafkaJars() would not run Maven. */
export function kafkaJarsCached(): boolean {
  return readValidManifest(LIBS_DIR, pomSha256()) !== undefined;
}

export interface KafkaJars {
  /** Folder of jars; the Java classpath is `${libsDir}/*`. */
  libsDir: string;
  kafkaVersion: string;
  /** Whether Maven ran in this call. */
  resolved: boolean;
}

/** Makes sure the Kafka broker jars are in deploy/kafka-local/target/libs, running Maven only if needed. */
export async function ensureKafkaJars(opts: { log?: LogFn; force?: boolean } = {}): Promise<KafkaJars> {
  const pomSha = pomSha256();
  if (opts.force !== true) {
    const cached = readValidManifest(LIBS_DIR, pomSha);
    if (cached) return { libsDir: LIBS_DIR, kafkaVersion: cached.kafkaVersion, resolved: false };
  }

  const targetDir = join(KAFKA_LOCAL_DIR, 'target');
  await mkdir(targetDir, { recursive: true });
  const staging = join(targetDir, `libs.staging-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const mvnArgs = [
      '-q',
      '-B',
      '-Dstyle.color=never',
      '-f',
      POM_PATH,
      'dependency:copy-dependencies',
      `-Dlibs.dir=${staging}`,
    ];
    const result = await runToCompletion('mvn', mvnArgs, { log: opts.log, cwd: KAFKA_LOCAL_DIR });
    if (result.spawnError?.code === 'ENOENT') {
      throw new Error(
        'Maven (`mvn`) is needed once to download the Kafka broker jars from Maven Central: install Maven 3.8+ ' +
          '(e.g. `apt-get install maven`), or point KAFKA_BROKERS at an existing broker.',
      );
    }
    if (result.spawnError) throw result.spawnError;
    if (result.code !== 0) {
      throw new Error(
        `Maven could not resolve the Kafka jars (exit ${String(result.code)}; pom ${POM_PATH}):\n` +
          result.lines.slice(-40).join('\n'),
      );
    }
    const jars = (await readdir(staging)).filter((name) => name.endsWith('.jar')).sort();
    const kafkaJar = jars.find((name) => /^kafka_2\.13-.+\.jar$/.test(name));
    if (!kafkaJar) throw new Error(`Maven finished but no kafka_2.13 jar is in ${staging}`);
    const manifest: Manifest = {
      pomSha256: pomSha,
      kafkaVersion: kafkaJar.replace(/^kafka_2\.13-/, '').replace(/\.jar$/, ''),
      jars,
    };
    await writeFile(join(staging, MANIFEST_NAME), JSON.stringify(manifest, null, 2) + '\n');

    // Swap into place. Another process may have won the race: keep its (valid) cache.
    if (existsSync(LIBS_DIR)) {
      if (opts.force !== true && readValidManifest(LIBS_DIR, pomSha)) {
        return { libsDir: LIBS_DIR, kafkaVersion: manifest.kafkaVersion, resolved: true };
      }
      const old = join(targetDir, `libs.old-${process.pid}-${randomBytes(4).toString('hex')}`);
      await rename(LIBS_DIR, old).catch(() => undefined);
      await rm(old, { recursive: true, force: true });
    }
    try {
      await rename(staging, LIBS_DIR);
    } catch (err) {
      if (!readValidManifest(LIBS_DIR, pomSha)) throw err;
    }
    return { libsDir: LIBS_DIR, kafkaVersion: manifest.kafkaVersion, resolved: true };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

interface RunResult {
  code: number | null;
  lines: string[];
  spawnError?: NodeJS.ErrnoException;
}

// ANSI colour codes (Maven's jansi prints resets even in batch mode).
const ANSI_SGR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

function pipeLines(child: ChildProcess, sink: (line: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (raw: string) => {
      const line = raw.replace(ANSI_SGR, '');
      if (line.trim() !== '') sink(line);
    });
  }
}

function runToCompletion(
  command: string,
  args: string[],
  opts: { log?: LogFn; cwd?: string },
): Promise<RunResult> {
  return new Promise((resolve) => {
    const lines: string[] = [];
    const child = spawn(command, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    pipeLines(child, (line) => {
      lines.push(line);
      opts.log?.(line);
    });
    child.once('error', (err: NodeJS.ErrnoException) => resolve({ code: null, lines, spawnError: err }));
    child.once('close', (code) => resolve({ code, lines }));
  });
}

function javaExecutable(): string {
  const home = process.env['JAVA_HOME'];
  if (home) {
    const candidate = join(home, 'bin', 'java');
    if (existsSync(candidate)) return candidate;
  }
  return 'java';
}

const JAVA_MISSING =
  'Java 17+ is needed to run the embedded Kafka broker: install a JRE/JDK 17 (e.g. `apt-get install ' +
  'openjdk-17-jre-headless`) or set JAVA_HOME, or point KAFKA_BROKERS at an existing broker.';

// ---------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------

function listenOn(port: number): Promise<ReturnType<typeof createServer>> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port, host: LOOPBACK, exclusive: true }, () => resolve(server));
  });
}

function close(server: ReturnType<typeof createServer>): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Distinct free loopback ports (bound together, so they differ; released before returning). */
async function freePorts(count: number): Promise<number[]> {
  const servers = [];
  try {
    for (let i = 0; i < count; i++) servers.push(await listenOn(0));
    return servers.map((s) => (s.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map(close));
  }
}

async function assertPortFree(port: number): Promise<void> {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(
      `Invalid Kafka port ${String(port)}: use an integer in 1..65535, or omit it for a free one.`,
    );
  }
  let server;
  try {
    server = await listenOn(port);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new Error(
        `Port ${port} on ${LOOPBACK} is already in use (another Kafka?): stop that process, pick another port, or omit the port to get a free one.`,
      );
    }
    throw err;
  }
  await close(server);
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/** A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (22 chars), as
 *  org.apache.kafka.common.Uuid writes it; like Uuid.randomUuid() it never starts with '-'
 *  (it would parse as a command-line option). */
export function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

export function serverProperties(p: {
  port: number;
  controllerPort: number;
  dataDir: string;
  autoCreateTopics: boolean;
  extra?: Record<string, string>;
  sasl?: { port: number; users: Record<string, string> };
}): string {
  const sasl = p.sasl;
  const quote = (x: string) => `"${x.replace(/["\\]/g, '')}"`;
  const saslProps: Record<string, string> =
    sasl === undefined
      ? {}
      : {
          listeners: `PLAINTEXT://${LOOPBACK}:${p.port},SASL_PLAINTEXT://${LOOPBACK}:${sasl.port},CONTROLLER://${LOOPBACK}:${p.controllerPort}`,
          'advertised.listeners': `PLAINTEXT://${LOOPBACK}:${p.port},SASL_PLAINTEXT://${LOOPBACK}:${sasl.port}`,
          'listener.security.protocol.map':
            'PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT',
          'sasl.enabled.mechanisms': 'PLAIN',
          'listener.name.sasl_plaintext.plain.sasl.jaas.config': `org.apache.kafka.common.security.plain.PlainLoginModule required ${Object.entries(
            sasl.users,
          )
            .map(([user, password]) => `user_${user.replace(/[^A-Za-z0-9_-]/g, '')}=${quote(password)}`)
            .join(' ')};`,
        };
  const props: Record<string, string> = {
    'process.roles': 'broker,controller',
    'node.id': String(NODE_ID),
    'controller.quorum.voters': `${NODE_ID}@${LOOPBACK}:${p.controllerPort}`,
    listeners: `PLAINTEXT://${LOOPBACK}:${p.port},CONTROLLER://${LOOPBACK}:${p.controllerPort}`,
    'advertised.listeners': `PLAINTEXT://${LOOPBACK}:${p.port}`,
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'log.dirs': p.dataDir,
    'num.partitions': '1',
    'default.replication.factor': '1',
    'min.insync.replicas': '1',
    'offsets.topic.replication.factor': '1',
    // 50 (the default) __consumer_offsets partitions make the first group join seconds slower.
    'offsets.topic.num.partitions': '1',
    'transaction.state.log.num.partitions': '1',
    'transaction.state.log.replication.factor': '1',
    'transaction.state.log.min.isr': '1',
    'group.initial.rebalance.delay.ms': '0',
    // Lets fault tests use short consumer session timeouts (kafkajs' default is 30 s).
    'group.min.session.timeout.ms': '1000',
    'auto.create.topics.enable': String(p.autoCreateTopics),
    'delete.topic.enable': 'true',
    // Small thread pools: this is a test broker on a shared machine.
    'num.network.threads': '2',
    'num.io.threads': '4',
    'num.recovery.threads.per.data.dir': '1',
    ...saslProps,
    ...p.extra,
  };
  return (
    Object.entries(props)
      .map(([k, v]) => `${k}=${v.replace(/\\/g, '\\\\')}`)
      .join('\n') + '\n'
  );
}

function log4jProperties(level: string): string {
  return [
    `log4j.rootLogger=${level}, stdout`,
    'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
    'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
    // One INFO line that says the server is up (or why not), whatever the root level.
    'log4j.logger.kafka.server.KafkaRaftServer=INFO',
    // These files-only loggers of the distribution config stay quiet here.
    'log4j.logger.kafka.request.logger=WARN',
    'log4j.logger.state.change.logger=WARN',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Live brokers: kill on exit
// ---------------------------------------------------------------------------------------------

interface LiveBroker {
  pid: number;
  tempDir: string | undefined;
  watchdog: ChildProcess | undefined;
}

const live = new Set<LiveBroker>();
/** Temp folders of brokers still starting (not yet in `live`). */
const startingTempDirs = new Set<string>();
let handlersInstalled = false;

function killNowSync(b: LiveBroker): void {
  try {
    process.kill(b.pid, 'SIGKILL');
  } catch {
    // already gone
  }
  // The watchdog would kill the pid again after the pipe closes; stop it first (pid reuse).
  try {
    b.watchdog?.kill('SIGKILL');
  } catch {
    // already gone
  }
  if (b.tempDir) {
    try {
      rmSync(b.tempDir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // best effort while exiting
    }
  }
  live.delete(b);
}

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', killAllEmbeddedBrokersSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      // Someone else handles this signal (e.g. a CLI that stops the broker gracefully, or the test
      // runner): let them; the 'exit' handler and the watchdog still make sure the JVM dies.
      if (process.listenerCount(signal) > 1) return;
      killAllEmbeddedBrokersSync();
      process.removeListener(signal, handler);
      process.kill(process.pid, signal);
    };
    // First in line, so that other listeners (even `once` ones, which remove themselves when called)
    // are still counted when this one decides.
    process.prependListener(signal, handler);
  }
}

/** `sh` process that kills the JVM (and removes its temp folder) when Node's end of its stdin closes,
 *  i.e. when Node dies in a way no JS handler sees. */
function spawnWatchdog(pid: number, tempDir: string | undefined): ChildProcess | undefined {
  // Ignores INT/TERM/HUP (so does its `cat`): a terminal Ctrl-C reaches the whole process group, and the
  // watchdog must not SIGKILL the JVM that Node is stopping gracefully.
  const script = `trap '' INT TERM HUP; cat >/dev/null; kill -KILL "$1" 2>/dev/null; if [ -n "$2" ]; then sleep 1; rm -rf "$2"; fi`;
  try {
    const watchdog = spawn('/bin/sh', ['-c', script, 'acft-kafka-watchdog', String(pid), tempDir ?? ''], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    watchdog.on('error', () => undefined);
    watchdog.unref();
    (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    return watchdog;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Readiness
// ---------------------------------------------------------------------------------------------

async function probeOnce(brokers: string[]): Promise<void> {
  const kafka = new Kafka({
    clientId: 'acft-embedded-broker-probe',
    brokers,
    logLevel: kafkaLogLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 5000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin({ retry: { retries: 0 } });
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    if (!cluster.brokers.some((b) => b.nodeId === NODE_ID)) {
      throw new Error(`broker ${NODE_ID} not registered yet`);
    }
    await admin.listTopics();
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

const TERMINATING: ReadonlySet<string> = new Set(['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP']);

/** cluster.id from an already formatted log dir, if any. */
function readClusterId(dataDir: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(join(dataDir, 'meta.properties'), 'utf8');
  } catch {
    return undefined;
  }
  const match = /^cluster\.id=(.+)$/m.exec(text);
  if (!match?.[1])
    throw new Error(`${join(dataDir, 'meta.properties')} has no cluster.id: not a Kafka log dir?`);
  return match[1].trim();
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------------------------

class PortInUseError extends Error {}

interface LaunchParams {
  java: string;
  classpath: string;
  tempDir: string;
  dataDir: string;
  port: number;
  controllerPort: number;
  saslPort: number | undefined;
  clusterId: string;
  propsPath: string;
  log4jArg: string;
  opts: EmbeddedBrokerOptions;
  tail: string[];
  onLine: LogFn;
}

/** Spawns kafka.Kafka and waits until it answers. On failure the JVM is dead when this rejects. */
async function launch(p: LaunchParams): Promise<EmbeddedBroker> {
  const startTimeoutMs = p.opts.startTimeoutMs ?? 90_000;
  const stopTimeoutMs = p.opts.stopTimeoutMs ?? 15_000;
  const jvm = spawn(
    p.java,
    [
      '-Xms128m',
      '-Xmx512m',
      '-XX:+UseG1GC',
      '-XX:MaxGCPauseMillis=20',
      '-XX:+ExitOnOutOfMemoryError',
      '-XX:-UsePerfData',
      '-Djava.awt.headless=true',
      p.log4jArg,
      `-Dkafka.logs.dir=${join(p.tempDir, 'logs')}`,
      ...(p.opts.jvmArgs ?? []),
      '-cp',
      p.classpath,
      'kafka.Kafka',
      p.propsPath,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const spawnError = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    jvm.once('spawn', () => resolve(undefined));
    jvm.once('error', (err: NodeJS.ErrnoException) => resolve(err));
  });
  if (spawnError?.code === 'ENOENT') throw new Error(JAVA_MISSING);
  if (spawnError) throw spawnError;
  const pid = jvm.pid as number;
  // Only a default (temp) data dir is the watchdog's to delete; the temp dir holds it and the configs.
  const entry: LiveBroker = { pid, tempDir: p.tempDir, watchdog: spawnWatchdog(pid, p.tempDir) };
  live.add(entry);
  pipeLines(jvm, p.onLine);

  let hasExited = false;
  const exited = new Promise<EmbeddedBrokerExit>((resolve) => {
    jvm.once('exit', (code, signal) => {
      hasExited = true;
      resolve({ code, signal });
    });
  });
  const forget = (): void => {
    try {
      entry.watchdog?.kill('SIGKILL');
    } catch {
      // gone already
    }
    live.delete(entry);
  };

  // Wait for a real answer from the broker, or its death, or the deadline.
  const brokers = [`${LOOPBACK}:${p.port}`];
  const deadline = Date.now() + startTimeoutMs;
  let lastError: unknown;
  try {
    for (;;) {
      if (hasExited) {
        const exit = await exited;
        if (p.tail.some((l) => /BindException|Address already in use/.test(l))) {
          throw new PortInUseError(
            `Kafka could not bind ${LOOPBACK}:${p.port} (or its controller port ${p.controllerPort}): address already in use.`,
          );
        }
        throw new Error(
          `Kafka broker exited during startup (code ${String(exit.code)}, signal ${String(exit.signal)}):\n${p.tail.slice(-40).join('\n')}`,
        );
      }
      if (Date.now() > deadline) {
        throw new Error(
          `Kafka broker on ${brokers[0]} not ready after ${startTimeoutMs} ms (last check: ${String(lastError)}):\n${p.tail.slice(-40).join('\n')}`,
        );
      }
      try {
        await probeOnce(brokers);
        break;
      } catch (err) {
        lastError = err;
        await sleep(200);
      }
    }
  } catch (err) {
    if (!hasExited) {
      jvm.kill('SIGKILL');
      await exited;
    }
    forget();
    throw err;
  }

  // Started: from now on the broker must not keep the event loop alive by itself.
  jvm.unref();
  for (const stream of [jvm.stdout, jvm.stderr]) (stream as unknown as { unref?: () => void }).unref?.();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      jvm.ref(); // keep the loop alive until the JVM is gone
      try {
        if (!hasExited) {
          try {
            jvm.kill('SIGTERM');
            jvm.kill('SIGCONT'); // in case a fault test left it SIGSTOPped
          } catch {
            // gone already
          }
          const timer = setTimeout(() => {
            try {
              jvm.kill('SIGKILL');
            } catch {
              // gone already
            }
          }, stopTimeoutMs);
          await exited;
          clearTimeout(timer);
        }
      } finally {
        jvm.unref();
        forget();
        await rm(p.tempDir, { recursive: true, force: true, maxRetries: 3 });
      }
    })();
    return stopping;
  };

  return {
    brokers,
    ...(p.saslPort !== undefined ? { saslBrokers: [`${LOOPBACK}:${p.saslPort}`] } : {}),
    port: p.port,
    controllerPort: p.controllerPort,
    dataDir: p.dataDir,
    clusterId: p.clusterId,
    pid,
    exited,
    stop,
    kill: (signal: NodeJS.Signals = 'SIGKILL') => {
      if (hasExited) return false;
      // The caller will likely await `exited` next: keep the loop alive until the JVM is gone.
      if (TERMINATING.has(signal)) jvm.ref();
      try {
        return jvm.kill(signal);
      } catch {
        return false;
      }
    },
    logTail: () => [...p.tail],
  };
}

const START_ATTEMPTS = 3;

export async function startEmbeddedBroker(opts: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const tail: string[] = [];
  const onLine = (line: string): void => {
    tail.push(line);
    if (tail.length > LOG_TAIL_LINES) tail.shift();
    opts.log?.(line);
  };

  const jars = await ensureKafkaJars({ log: opts.log });
  const classpath = join(jars.libsDir, '*');
  const java = javaExecutable();
  if (opts.port !== undefined) await assertPortFree(opts.port);

  installExitHandlers();
  const tempDir = await mkdtemp(join(tmpdir(), 'acft-kafka-'));
  startingTempDirs.add(tempDir);
  const dataDir = opts.dataDir ?? join(tempDir, 'data');
  try {
    await mkdir(dataDir, { recursive: true });
    const propsPath = join(tempDir, 'server.properties');
    const log4jPath = join(tempDir, 'log4j.properties');
    await writeFile(log4jPath, log4jProperties(opts.logLevel ?? 'WARN'));
    const log4jArg = `-Dlog4j.configuration=file:${log4jPath}`;

    // Free ports are probed, then released, then bound by the JVM: another process can take one in
    // between (parallel test files). Then try again with new ports (a fixed port is re-checked).
    for (let attempt = 1; ; attempt++) {
      let port: number;
      let controllerPort: number;
      // Ports bound together are distinct: the SASL listener's comes from the same probe.
      const probed = await freePorts(3);
      const spare = probed.filter(
        (candidate) => candidate !== opts.port && candidate !== opts.controllerPort,
      );
      const saslPort = opts.saslPlainUsers === undefined ? undefined : (spare.pop() as number);
      if (opts.port !== undefined) {
        if (attempt > 1) await assertPortFree(opts.port);
        port = opts.port;
        controllerPort = opts.controllerPort ?? (spare[0] as number);
      } else {
        [port, controllerPort] = spare as [number, number];
      }
      await writeFile(
        propsPath,
        serverProperties({
          port,
          controllerPort,
          dataDir,
          autoCreateTopics: opts.autoCreateTopics ?? false,
          extra: opts.extraProperties,
          ...(saslPort !== undefined ? { sasl: { port: saslPort, users: opts.saslPlainUsers ?? {} } } : {}),
        }),
      );

      // Format the (KRaft) storage, unless dataDir already holds a formatted log (a restart on the
      // same data, or a retry: it keeps its cluster id, which `format` would refuse to change).
      const existingClusterId = readClusterId(dataDir);
      const clusterId = existingClusterId ?? randomClusterId();
      if (existingClusterId === undefined) {
        const format = await runToCompletion(
          java,
          [
            '-Xmx256m',
            '-XX:TieredStopAtLevel=1',
            '-XX:+UseSerialGC',
            '-XX:-UsePerfData',
            log4jArg,
            '-cp',
            classpath,
            'kafka.tools.StorageTool',
            'format',
            '--cluster-id',
            clusterId,
            '--config',
            propsPath,
          ],
          { log: onLine },
        );
        if (format.spawnError?.code === 'ENOENT') throw new Error(JAVA_MISSING);
        if (format.spawnError) throw format.spawnError;
        if (format.code !== 0) {
          throw new Error(
            `Formatting Kafka storage failed (exit ${String(format.code)}):\n${format.lines.slice(-30).join('\n')}`,
          );
        }
      }

      try {
        return await launch({
          java,
          classpath,
          tempDir,
          dataDir,
          port,
          controllerPort,
          saslPort,
          clusterId,
          propsPath,
          log4jArg,
          opts,
          tail,
          onLine,
        });
      } catch (err) {
        if (!(err instanceof PortInUseError) || attempt >= START_ATTEMPTS) throw err;
        onLine(`${err.message} Retrying with other ports (attempt ${attempt + 1} of ${START_ATTEMPTS}).`);
      }
    }
  } catch (err) {
    await rm(tempDir, { recursive: true, force: true, maxRetries: 3 });
    throw err;
  } finally {
    startingTempDirs.delete(tempDir); // removed, or owned by the live broker now
  }
}

/** Synchronous best-effort cleanup of every broker this process started (used by the exit handler;
 *  exported for callers that tear down in a synchronous context). */
export function killAllEmbeddedBrokersSync(): void {
  for (const b of [...live]) killNowSync(b);
  for (const dir of [...startingTempDirs]) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // best effort while exiting
    }
    startingTempDirs.delete(dir);
  }
}
