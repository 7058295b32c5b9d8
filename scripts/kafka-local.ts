/**
 * A real local Kafka broker without Docker (see src/kafka/embedded-broker.ts).
 *
 *   npx tsx scripts/kafka-local.ts start [--port N] [--data-dir DIR] [--log-level INFO]
 *       Runs a single-node KRaft broker in the foreground, prints its bootstrap address, and stops it
 *       on Ctrl-C (SIGINT) or SIGTERM. With --data-dir the data survives restarts.
 *   npx tsx scripts/kafka-local.ts prepare [--force]
 *       Only resolves the Kafka jars into deploy/kafka-local/target/libs (Maven; skipped when the cache
 *       is complete) so CI can warm and cache them.
 *   npx tsx scripts/kafka-local.ts exec [--port N] -- <command> [args...]
 *       Starts a broker, runs the command with KAFKA_BROKERS set to it (one broker for a whole test
 *       run), stops the broker and exits with the command's status.
 */

import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { ensureKafkaJars, startEmbeddedBroker, type EmbeddedBroker } from '../src/kafka/embedded-broker.js';

const USAGE = `usage:
  npx tsx scripts/kafka-local.ts start [--port N] [--data-dir DIR] [--log-level TRACE|DEBUG|INFO|WARN|ERROR]
  npx tsx scripts/kafka-local.ts prepare [--force]
  npx tsx scripts/kafka-local.ts exec [--port N] -- <command> [args...]`;

type Level = 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
const LEVELS: readonly string[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];

function parsePort(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new Error(`--port: '${value}' is not a port`);
  return port;
}

function parseLevel(value: string | undefined): Level | undefined {
  if (value === undefined) return undefined;
  const upper = value.toUpperCase();
  if (!LEVELS.includes(upper)) throw new Error(`--log-level: '${value}' is not one of ${LEVELS.join(', ')}`);
  return upper as Level;
}

const stderrLine = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

async function prepare(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { force: { type: 'boolean' } } });
  const t0 = Date.now();
  const jars = await ensureKafkaJars({ log: stderrLine, force: values.force === true });
  process.stdout.write(
    `Kafka ${jars.kafkaVersion} jars ${jars.resolved ? 'resolved' : 'already cached'} in ${jars.libsDir} (${Date.now() - t0} ms)\n`,
  );
}

/** Resolves on the first SIGINT/SIGTERM (the listeners also stop the library from re-raising them). */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const keepAlive = setInterval(() => undefined, 1 << 30);
    const on = (signal: NodeJS.Signals): void => {
      clearInterval(keepAlive);
      resolve(signal); // a second Ctrl-C while stopping is ignored; the broker gets SIGKILL after 15 s
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

async function start(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { port: { type: 'string' }, 'data-dir': { type: 'string' }, 'log-level': { type: 'string' } },
  });
  const signal = untilSignal();
  const t0 = Date.now();
  const broker = await startEmbeddedBroker({
    port: parsePort(values.port),
    dataDir: values['data-dir'],
    logLevel: parseLevel(values['log-level']),
    log: stderrLine,
  });
  const brokers = broker.brokers.join(',');
  process.stdout.write(
    `Kafka is ready in ${Date.now() - t0} ms (pid ${broker.pid}, data ${broker.dataDir}).\n` +
      `Bootstrap servers: ${brokers}\n` +
      `  export ACFT_KAFKA_BROKERS=${brokers}   # acft run, acft simulate\n` +
      `  export KAFKA_BROKERS=${brokers}        # npm test, npm run demo: use this broker\n` +
      `Press Ctrl-C to stop.\n`,
  );
  const result = await Promise.race([signal, broker.exited]);
  if (typeof result === 'string') {
    process.stdout.write(`${result}: stopping Kafka...\n`);
    await broker.stop();
    process.stdout.write('Kafka stopped.\n');
  } else {
    await broker.stop();
    throw new Error(
      `Kafka exited unexpectedly (code ${String(result.code)}, signal ${String(result.signal)})`,
    );
  }
}

async function exec(args: string[]): Promise<number> {
  const dashdash = args.indexOf('--');
  const own = dashdash >= 0 ? args.slice(0, dashdash) : args;
  const command = dashdash >= 0 ? args.slice(dashdash + 1) : [];
  const [file, ...rest] = command;
  if (file === undefined) throw new Error(`exec needs a command after --\n${USAGE}`);
  const { values } = parseArgs({ args: own, options: { port: { type: 'string' } } });

  let broker: EmbeddedBroker | undefined;
  try {
    broker = await startEmbeddedBroker({ port: parsePort(values.port), log: undefined });
    const brokers = broker.brokers.join(',');
    process.stderr.write(`Kafka ready at ${brokers}; running: ${command.join(' ')}\n`);
    const child = spawn(file, rest, {
      stdio: 'inherit',
      env: { ...process.env, KAFKA_BROKERS: brokers },
    });
    // Ctrl-C reaches the child through the terminal; here it must only not kill us before cleanup.
    const forward = (signal: NodeJS.Signals): void => {
      child.kill(signal);
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c, s) => resolve([c, s]));
    });
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
    return code ?? (signal === 'SIGINT' ? 130 : 1);
  } finally {
    await broker?.stop();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case 'start':
      await start(args);
      return 0;
    case 'prepare':
      await prepare(args);
      return 0;
    case 'exec':
      return exec(args);
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return 0;
    default:
      process.stderr.write(`${USAGE}\n`);
      return 2;
  }
}

// Exits explicitly: the signal listeners and the keep-alive timer of `start` would otherwise keep
// a process whose broker died running forever.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`kafka-local: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
