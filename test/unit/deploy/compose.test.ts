/**
 * deploy/docker-compose.yml: parses (with its YAML merge keys), has the services of the issue wired
 * together, sets only real ACFT_* options with values the configuration accepts, and runs
 * `acft simulate` with options that command has. No Docker engine is needed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { CONFIG_ENV_VARS, RESERVED_ENV_VARS, resolveConfig } from '../../../src/config/index.js';
import { simulateCommand } from '../../../src/cli/simulate-command.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DEPLOY = path.join(ROOT, 'deploy');

type Env = Record<string, string | number | boolean>;
interface Healthcheck {
  test?: string[];
  disable?: boolean;
  interval?: string;
}
interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Env;
  depends_on?: Record<string, { condition: string }>;
  profiles?: string[];
  ports?: string[];
  volumes?: string[];
  healthcheck?: Healthcheck;
  read_only?: boolean;
  cap_drop?: string[];
}
interface Compose {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
}

const compose = parse(readFileSync(path.join(DEPLOY, 'docker-compose.yml'), 'utf8'), {
  merge: true,
}) as Compose;
const services = compose.services;

function service(name: string): Service {
  const s = services[name];
  assert.ok(s, `service ${name}`);
  return s;
}

function envOf(s: Service): Record<string, string> {
  return Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)]));
}

/** The script of a healthcheck test: CMD's arguments, or CMD-SHELL's command line. */
function healthcheckText(h: Healthcheck | undefined): string {
  assert.ok(h?.test, 'a healthcheck test');
  assert.ok(h.test[0] === 'CMD' || h.test[0] === 'CMD-SHELL', h.test[0]);
  return h.test.slice(1).join(' ');
}

void describe('deploy/docker-compose.yml', () => {
  void it('has Kafka, acft, the simulator, Prometheus and Grafana', () => {
    assert.deepEqual(Object.keys(services).sort(), ['acft', 'grafana', 'kafka', 'prometheus', 'simulator']);
  });

  void it('runs Kafka 3.9 in KRaft mode, single node, internal topics at replication factor 1', () => {
    const kafka = service('kafka');
    assert.match(kafka.image ?? '', /^apache\/kafka:3\.9\.\d+$/);
    const env = envOf(kafka);
    assert.deepEqual(env.KAFKA_PROCESS_ROLES?.split(',').sort(), ['broker', 'controller']);
    assert.equal(env.KAFKA_CONTROLLER_QUORUM_VOTERS, `${env.KAFKA_NODE_ID}@kafka:9093`);
    assert.ok(!Object.keys(env).some((k) => k.includes('ZOOKEEPER')), 'no ZooKeeper');
    for (const k of [
      'KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR',
      'KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR',
      'KAFKA_TRANSACTION_STATE_LOG_MIN_ISR',
    ]) {
      assert.equal(env[k], '1', k);
    }
    // A KRaft cluster id is a base64url UUID: 22 characters.
    assert.match(env.CLUSTER_ID ?? '', /^[A-Za-z0-9_-]{22}$/);
    assert.match(env.KAFKA_ADVERTISED_LISTENERS ?? '', /\/\/kafka:9092\b/);
    assert.match(
      healthcheckText(kafka.healthcheck),
      /kafka-broker-api-versions\.sh --bootstrap-server localhost:9092/,
    );
  });

  void it('builds acft from deploy/Dockerfile with the repository as context', () => {
    const acft = service('acft');
    assert.ok(acft.build);
    const context = path.resolve(DEPLOY, acft.build.context);
    assert.equal(context, ROOT);
    assert.ok(existsSync(path.join(context, acft.build.dockerfile)));
    assert.ok(existsSync(path.join(context, 'package.json')));
    assert.deepEqual(acft.command, ['run']);
  });

  void it('points acft at the broker, listens on every interface and waits for a healthy Kafka', () => {
    const acft = service('acft');
    const env = envOf(acft);
    assert.equal(env.ACFT_KAFKA_BROKERS, 'kafka:9092');
    assert.equal(env.ACFT_HTTP_HOST, '0.0.0.0');
    assert.equal(acft.depends_on?.kafka?.condition, 'service_healthy');
    const port = env.ACFT_HTTP_PORT ?? '9464';
    assert.ok(acft.ports?.some((p) => p.endsWith(`:${port}:${port}`) || p === `${port}:${port}`));
  });

  void it("checks acft's health over HTTP on its port: /readyz, so dependents start once it is ready", () => {
    const acft = service('acft');
    const text = healthcheckText(acft.healthcheck);
    assert.match(text, new RegExp(`http://127\\.0\\.0\\.1:${envOf(acft).ACFT_HTTP_PORT ?? '9464'}/readyz`));
    assert.match(acft.healthcheck?.test?.[1] ?? '', /^node$/, 'node: there is no curl in the image');
  });

  void it('keeps the model store and checkpoints on a named volume', () => {
    const acft = service('acft');
    const env = envOf(acft);
    const mount = acft.volumes?.find((v) => v.split(':')[1] === '/var/lib/acft');
    assert.ok(mount, 'a volume at /var/lib/acft');
    assert.ok(mount.split(':')[0]! in compose.volumes, 'a named volume');
    assert.ok(env.ACFT_MODEL_STORE_DIR?.startsWith('/var/lib/acft/'));
    assert.ok(env.ACFT_STATE_CHECKPOINT_DIR?.startsWith('/var/lib/acft/'));
    assert.equal(acft.read_only, true, 'read-only root file system');
    assert.deepEqual(acft.cap_drop, ['ALL']);
  });

  void it('runs the simulator only in the demo profile, against the broker, once acft is ready', () => {
    const sim = service('simulator');
    assert.deepEqual(sim.profiles, ['demo']);
    assert.equal(sim.image, service('acft').image, 'the same image');
    const command = sim.command ?? [];
    assert.equal(command[0], 'simulate');
    assert.equal(command[command.indexOf('--brokers') + 1], 'kafka:9092');
    assert.ok(command.includes('--rate'));
    assert.equal(sim.depends_on?.acft?.condition, 'service_healthy');
    assert.equal(sim.healthcheck?.disable, true, 'no HTTP server in acft simulate');
    assert.ok(
      sim.volumes?.some((v) => v.endsWith(':/var/lib/acft:ro')),
      'reads the model store',
    );
    for (const name of Object.keys(services)) {
      if (name !== 'simulator')
        assert.equal(services[name]?.profiles, undefined, `${name} starts by default`);
    }
  });

  void it('passes the simulator only options `acft simulate` has, with valid values', () => {
    const args = service('simulator').command!.slice(1);
    const cmd = simulateCommand()
      .exitOverride()
      .configureOutput({ writeErr: () => {}, writeOut: () => {} });
    const known = new Set(cmd.options.map((o) => o.long));
    for (const arg of args.filter((a) => a.startsWith('--')))
      assert.ok(known.has(arg), `acft simulate ${arg}`);
    const parsed = cmd.parseOptions(args);
    assert.deepEqual(parsed.unknown, []);
    assert.deepEqual(parsed.operands, []);
    assert.deepEqual(cmd.opts().brokers, ['kafka:9092']);
  });

  void it('sets only real ACFT_* options, with values the configuration accepts', () => {
    for (const name of ['acft', 'simulator']) {
      const env = envOf(service(name));
      const acftVars = Object.keys(env).filter((k) => k.startsWith('ACFT_'));
      assert.ok(acftVars.length > 0);
      for (const k of acftVars) {
        assert.ok(k in CONFIG_ENV_VARS || RESERVED_ENV_VARS.includes(k), `${name}: ${k} is not an option`);
      }
      assert.doesNotThrow(() => resolveConfig({ env }), `${name}: the configuration resolves`);
    }
    const config = resolveConfig({ env: envOf(service('acft')) });
    assert.deepEqual(config.kafka.brokers, ['kafka:9092']);
    assert.equal(config.backend, 'wasm');
  });

  void it('lets Prometheus scrape acft and Grafana read Prometheus, from files that exist', () => {
    const prometheus = service('prometheus');
    const targets = new Map(
      (prometheus.volumes ?? [])
        .filter((v) => v.startsWith('./'))
        .map((v) => [v.split(':')[1], v.split(':')[0]!]),
    );
    assert.equal(targets.get('/etc/prometheus/prometheus.yml'), './prometheus/prometheus.yml');
    assert.equal(targets.get('/etc/prometheus/alerts.yml'), './prometheus/alerts.yml');
    for (const s of Object.values(services)) {
      for (const v of s.volumes ?? []) {
        if (v.startsWith('.')) assert.ok(existsSync(path.join(DEPLOY, v.split(':')[0]!)), v);
      }
    }
    const scrape = readFileSync(path.join(DEPLOY, 'prometheus', 'prometheus.yml'), 'utf8');
    assert.match(scrape, new RegExp(`'acft:${envOf(service('acft')).ACFT_HTTP_PORT ?? '9464'}'`));
    assert.ok(service('grafana').depends_on?.prometheus);
  });
});
