import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import os from 'node:os';
import path from 'node:path';
import {
  augmentationSpecOf,
  CONFIG_ENV_VARS,
  CONFIG_OPTIONS,
  ConfigError,
  configSchema,
  labelingConfigOf,
  loadConfig,
  redactConfig,
  resolveConfig,
  scoreOptionsOf,
  type Config,
  type ConfigInput,
} from '../../../src/config/index.js';
import { DEFAULT_MESSAGE_LIMITS, type MessageLimits } from '../../../src/messages/index.js';
import type { BackendRequest } from '../../../src/model/backend.js';
import type { OptimizerName } from '../../../src/model/fine-tune.js';
import { scoringServiceOptions, scoringWorkerCount } from '../../../src/daemon/scoring-options.js';

// Compile-time checks that the config's choices are exactly what the model layer accepts.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const backendsAgree: Equal<Config['backend'], BackendRequest> = true;
const optimizersAgree: Equal<Config['training']['optimizer'], OptimizerName> = true;
// The limits group can be passed to parseCandidate as is.
const limitsFit: MessageLimits = {} as Config['limits'];

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

function withTempDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(path.join(tmpdir(), 'acft-config-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void describe('loadConfig: defaults', () => {
  void it('loads every default from an empty environment', () => {
    assert.ok(backendsAgree && optimizersAgree && limitsFit !== undefined);
    const c = loadConfig({ env: {} });
    assert.deepEqual(c, configSchema.parse({}));
    assert.deepEqual(c.kafka.brokers, ['localhost:9092']);
    assert.equal(c.kafka.ssl.enabled, false);
    assert.equal(c.kafka.sasl, undefined);
    assert.equal(c.pool.maxCandidates, 10_000);
    assert.deepEqual(
      { ...c.limits, numClasses: undefined, deadLetterPayloadBytes: undefined },
      { ...DEFAULT_MESSAGE_LIMITS, numClasses: undefined, deadLetterPayloadBytes: undefined },
    );
    assert.equal(c.limits.maxPayloadBytes, 1024 * 1024);
    assert.equal(c.limits.numClasses, 2);
    assert.deepEqual([c.selection.b, c.selection.omega, c.selection.randomness], [25, 5, true]);
    assert.equal(c.training.strategy, 'ACFT(HQ)');
    assert.equal(c.training.holdoutShare, 0.2);
    assert.equal(c.training.promotionTolerance, 0.02);
    assert.equal(c.scoring.m, 12);
    assert.deepEqual([c.http.host, c.http.port], ['127.0.0.1', 9464]);
    assert.equal(c.model.storeDir, './acft-data/models');
    assert.ok(c.model.m0Path.endsWith(path.join('models', 'm0-digits')));
    assert.ok(existsSync(c.model.m0Path), 'the default M0 ships with the package');
    assert.equal(c.backend, 'auto');
  });

  void it('ignores other environment variables and treats empty ACFT_* variables as unset', () => {
    const c = loadConfig({ env: { PATH: '/bin', HOME: '/root', ACFT_POOL_MAX_CANDIDATES: '  ' } });
    assert.equal(c.pool.maxCandidates, 10_000);
  });

  void it('derives score options and the augmentation spec', () => {
    const c = loadConfig({
      env: { ACFT_SCORING_CRITERION: 'diversity', ACFT_SCORING_AUGMENTATION: 'paper' },
    });
    assert.deepEqual(scoreOptionsOf(c.scoring), {
      alpha: 0.25,
      majority: true,
      lambdaEntropy: 0,
      lambdaDiversity: 1,
    });
    assert.equal(c.scoring.m, 24);
    assert.equal(augmentationSpecOf(c.scoring).m, 24);
    assert.deepEqual(augmentationSpecOf(c.scoring).rotations, [0, 90, 180, 270]);
    const m = loadConfig({ env: { ACFT_SCORING_M: '6' } });
    assert.equal(augmentationSpecOf(m.scoring).m, 6);
  });

  void it('derives the pool and label store settings, with the version order given', () => {
    const c = loadConfig({
      env: {
        ACFT_POOL_MAX_CANDIDATES: '500',
        ACFT_POOL_MAX_BYTES: '1000000',
        ACFT_POOL_TTL_MS: '60000',
        ACFT_SELECTION_LEASE_MS: '5000',
        ACFT_POOL_HIGH_WATERMARK: '0.8',
        ACFT_POOL_LOW_WATERMARK: '0.5',
        ACFT_TRAINING_HOLDOUT_SHARE: '0.2',
        ACFT_POOL_MAX_PENDING_FEEDBACK: '30',
        ACFT_POOL_PENDING_FEEDBACK_TTL_MS: '7000',
      },
    });
    const order = (a: string, b: string) => a.localeCompare(b);
    const l = labelingConfigOf(c, order);
    assert.deepEqual(l, {
      pool: {
        maxCandidates: 500,
        maxBytes: 1_000_000,
        ttlMs: 60_000,
        leaseMs: 5000,
        highWatermark: 0.8,
        lowWatermark: 0.5,
        compareVersions: order,
      },
      labels: { holdoutShare: 0.2, maxPending: 30, pendingTtlMs: 7000 },
    });
  });
});

void describe('loadConfig: environment variables', () => {
  void it('parses numbers, booleans, lists, choices and strategies', () => {
    const c = loadConfig({
      env: {
        ACFT_POOL_MAX_CANDIDATES: ' 500 ',
        ACFT_TRAINING_LEARNING_RATE: '1e-4',
        ACFT_POOL_HIGH_WATERMARK: '0.8',
        ACFT_SELECTION_RANDOMNESS: 'false',
        ACFT_SCORING_MAJORITY: 'OFF',
        ACFT_TRAINING_CLASS_BALANCED: 'yes',
        ACFT_KAFKA_SSL: '1',
        ACFT_KAFKA_BROKERS: 'kafka-1:9093, kafka-2:9093,,[::1]:9094',
        ACFT_LOG_REDACT_PATHS: '["req.headers.authorization", "user.email"]',
        ACFT_TRAINING_STRATEGY: 'acft-lq',
        ACFT_TRAINING_OPTIMIZER: 'sgd-momentum',
        ACFT_BACKEND: 'wasm',
        ACFT_KAFKA_TOPICS_CANDIDATES: 'site-a.candidates',
      },
    });
    assert.equal(c.pool.maxCandidates, 500);
    assert.equal(c.training.learningRate, 1e-4);
    assert.equal(c.pool.highWatermark, 0.8);
    assert.equal(c.selection.randomness, false);
    assert.equal(c.scoring.majority, false);
    assert.equal(c.training.classBalanced, true);
    assert.equal(c.kafka.ssl.enabled, true);
    assert.deepEqual(c.kafka.brokers, ['kafka-1:9093', 'kafka-2:9093', '[::1]:9094']);
    assert.deepEqual(c.log.redactPaths, ['req.headers.authorization', 'user.email']);
    assert.equal(c.training.strategy, 'ACFT(LQ)');
    assert.equal(c.training.optimizer, 'sgd-momentum');
    assert.equal(c.backend, 'wasm');
    assert.equal(c.kafka.topics.candidates, 'site-a.candidates');
  });

  void it('maps every option to a unique ACFT_* variable', () => {
    const names = CONFIG_OPTIONS.map((o) => o.env);
    assert.equal(new Set(names).size, names.length);
    for (const o of CONFIG_OPTIONS) {
      assert.match(o.env, /^ACFT_[A-Z0-9_]+$/);
      assert.equal(CONFIG_ENV_VARS[o.env], o.path);
      assert.ok(o.meta.description.length > 0 && o.meta.expects.length > 0, o.path);
    }
    assert.equal(CONFIG_ENV_VARS['ACFT_POOL_MAX_CANDIDATES'], 'pool.maxCandidates');
    assert.equal(CONFIG_ENV_VARS['ACFT_KAFKA_SSL'], 'kafka.ssl.enabled');
    assert.equal(CONFIG_ENV_VARS['ACFT_BACKEND'], 'backend');
  });

  void it('infers TLS from a CA path, and takes SASL from three variables', () => {
    const c = loadConfig({
      env: {
        ACFT_KAFKA_SSL_CA_PATH: '/etc/acft/ca.pem',
        ACFT_KAFKA_SASL_MECHANISM: 'scram-sha-512',
        ACFT_KAFKA_SASL_USERNAME: 'acft',
        ACFT_KAFKA_SASL_PASSWORD: 'hunter2',
      },
    });
    assert.deepEqual(c.kafka.ssl, { enabled: true, caPath: '/etc/acft/ca.pem', rejectUnauthorized: true });
    assert.deepEqual(c.kafka.sasl, { mechanism: 'scram-sha-512', username: 'acft', password: 'hunter2' });
    const off = loadConfig({ env: { ACFT_KAFKA_SSL_CA_PATH: '/ca.pem', ACFT_KAFKA_SSL: 'false' } });
    assert.equal(off.kafka.ssl.enabled, false);
  });
});

void describe('loadConfig: file, environment and overrides', () => {
  void it('env wins over the file, overrides win over env; the file fills the rest', () => {
    withTempDir((dir) => {
      const file = path.join(dir, 'acft.json');
      writeFileSync(
        file,
        JSON.stringify({
          kafka: { brokers: ['file:9092'], ssl: true, topics: { feedback: 'file.feedback' } },
          pool: { maxCandidates: 500, ttlMs: 1000 },
          selection: { b: 10 },
        }),
      );
      const env = { ACFT_SELECTION_B: '20', ACFT_POOL_TTL_MS: '2000' };
      const c = loadConfig({ env, file, overrides: { pool: { ttlMs: 3000 } } });
      assert.deepEqual(c.kafka.brokers, ['file:9092']);
      assert.equal(c.kafka.ssl.enabled, true);
      assert.equal(c.kafka.topics.feedback, 'file.feedback');
      assert.equal(c.kafka.topics.candidates, 'acft.candidates');
      assert.equal(c.pool.maxCandidates, 500);
      assert.equal(c.selection.b, 20);
      assert.equal(c.pool.ttlMs, 3000);
    });
  });

  void it('reads the file named by ACFT_CONFIG_FILE; an explicit path wins over it', () => {
    withTempDir((dir) => {
      const a = path.join(dir, 'a.json');
      const b = path.join(dir, 'b.json');
      writeFileSync(a, JSON.stringify({ http: { port: 1111 } }));
      writeFileSync(b, JSON.stringify({ http: { port: 2222 } }));
      assert.equal(loadConfig({ env: { ACFT_CONFIG_FILE: a } }).http.port, 1111);
      assert.equal(loadConfig({ env: { ACFT_CONFIG_FILE: a }, file: b }).http.port, 2222);
    });
  });

  void it('names the file when it is missing, not JSON, or not an object', () => {
    withTempDir((dir) => {
      const missing = path.join(dir, 'missing.json');
      assert.match(
        errorOf(() => loadConfig({ env: { ACFT_CONFIG_FILE: missing } })).message,
        new RegExp(`^ACFT_CONFIG_FILE ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot read`),
      );
      const broken = path.join(dir, 'broken.json');
      writeFileSync(broken, '{ "pool": ');
      assert.match(
        errorOf(() => loadConfig({ env: {}, file: broken })).message,
        /broken\.json: the configuration file is not valid JSON/,
      );
      const list = path.join(dir, 'list.json');
      writeFileSync(list, '[1]');
      assert.match(
        errorOf(() => loadConfig({ env: {}, file: list })).message,
        /list\.json: expected a JSON object/,
      );
    });
  });
});

void describe('loadConfig: a bad value names its field', () => {
  const bad: [Record<string, string>, string][] = [
    [{ ACFT_POOL_MAX_CANDIDATES: 'abc' }, "ACFT_POOL_MAX_CANDIDATES: expected a positive integer, got 'abc'"],
    [{ ACFT_POOL_MAX_CANDIDATES: '0' }, "ACFT_POOL_MAX_CANDIDATES: expected a positive integer, got '0'"],
    [{ ACFT_POOL_MAX_CANDIDATES: '2.5' }, "ACFT_POOL_MAX_CANDIDATES: expected a positive integer, got '2.5'"],
    [
      { ACFT_KAFKA_SESSION_TIMEOUT_MS: '-1' },
      "ACFT_KAFKA_SESSION_TIMEOUT_MS: expected a positive integer (milliseconds), got '-1'",
    ],
    [
      { ACFT_LIMITS_MAX_PAYLOAD_BYTES: '1MB' },
      "ACFT_LIMITS_MAX_PAYLOAD_BYTES: expected a positive integer (bytes), got '1MB'",
    ],
    [
      { ACFT_TRAINING_HOLDOUT_SHARE: '1' },
      "ACFT_TRAINING_HOLDOUT_SHARE: expected a number in [0, 1), got '1'",
    ],
    [{ ACFT_SCORING_ALPHA: 'Infinity' }, "ACFT_SCORING_ALPHA: expected a number in (0, 1], got 'Infinity'"],
    [
      { ACFT_SELECTION_RANDOMNESS: 'maybe' },
      "ACFT_SELECTION_RANDOMNESS: expected true or false, got 'maybe'",
    ],
    [
      { ACFT_SCORING_CRITERION: 'random' },
      "ACFT_SCORING_CRITERION: expected one of entropy, diversity, got 'random'",
    ],
    [{ ACFT_HTTP_PORT: '70000' }, "ACFT_HTTP_PORT: expected an integer from 0 to 65535, got '70000'"],
    [
      { ACFT_LIMITS_NUM_CLASSES: '1' },
      "ACFT_LIMITS_NUM_CLASSES: expected an integer from 2 to 1000, got '1'",
    ],
    [
      { ACFT_KAFKA_BROKERS: 'kafka-1:9092,kafka-2' },
      "ACFT_KAFKA_BROKERS: expected a comma-separated list of host:port, got 'kafka-1:9092,kafka-2'",
    ],
    [{ ACFT_KAFKA_BROKERS: 'kafka:99999' }, 'ACFT_KAFKA_BROKERS: broker ports must be from 1 to 65535'],
    [
      { ACFT_KAFKA_BROKERS: ',' },
      "ACFT_KAFKA_BROKERS: expected a comma-separated list of host:port, got ','",
    ],
    [
      { ACFT_LOG_REDACT_PATHS: '[1, 2' },
      "ACFT_LOG_REDACT_PATHS: expected a comma-separated list of pino paths, got '[1, 2'",
    ],
    [{ ACFT_KAFKA_TOPICS_FEEDBACK: 'has space' }, 'ACFT_KAFKA_TOPICS_FEEDBACK: expected a Kafka topic name'],
    [{ ACFT_TRAINING_STRATEGY: 'best' }, "ACFT_TRAINING_STRATEGY: unknown learning strategy 'best'"],
    [
      { ACFT_BACKEND: 'gpu' },
      "ACFT_BACKEND: expected one of auto, tensorflow-gpu, tensorflow, wasm, cpu, got 'gpu'",
    ],
    [
      { ACFT_POOL_MAX_CANDIDATE: '5' },
      'ACFT_POOL_MAX_CANDIDATE: not an acft option (did you mean ACFT_POOL_MAX_CANDIDATES?)',
    ],
  ];
  for (const [env, expected] of bad) {
    void it(expected, () => {
      const err = errorOf(() => loadConfig({ env }));
      assert.ok(err.message.startsWith(expected), err.message);
      assert.equal(err.code, 'CONFIG_INVALID');
      assert.equal(err.retryable, false);
      assert.equal(err.issues.length, 1);
    });
  }

  void it('accepts unknown ACFT_* variables when asked to', () => {
    assert.equal(
      loadConfig({ env: { ACFT_SOMETHING_ELSE: 'x' }, allowUnknownEnv: true }).pool.maxCandidates,
      10_000,
    );
  });

  void it('names the file and key for a bad value or an unknown key in the file', () => {
    const file = {
      path: '/etc/acft.json',
      values: { pool: { maxCandidates: 'many', maxCandidatez: 5 }, kafka: 7 },
    };
    const err = errorOf(() => resolveConfig({ env: {}, file }));
    const messages = err.issues.map((i) => `${i.field}: ${i.message}`);
    assert.ok(
      messages.includes('/etc/acft.json: pool.maxCandidates: expected a positive integer, got "many"'),
      messages.join('\n'),
    );
    assert.ok(messages.includes('/etc/acft.json: pool.maxCandidatez: unknown option'), messages.join('\n'));
    assert.ok(messages.includes('/etc/acft.json: kafka: expected an object, got 7'), messages.join('\n'));
  });

  void it('names the path for a bad override, and reports every issue at once', () => {
    const overrides = { selection: { b: -3 }, training: { epochs: 0 } } as ConfigInput;
    const err = errorOf(() => resolveConfig({ env: { ACFT_HTTP_PORT: 'x' }, overrides }));
    assert.deepEqual(
      err.issues.map((i) => i.field),
      ['selection.b', 'training.epochs', 'ACFT_HTTP_PORT'],
    );
    assert.match(err.message, /selection\.b: expected a positive integer, got -3; /);
  });
});

void describe('loadConfig: consistency checks', () => {
  void it('enforces lowWatermark < highWatermark', () => {
    assert.equal(
      errorOf(() => loadConfig({ env: { ACFT_POOL_LOW_WATERMARK: '0.95' } })).message,
      'ACFT_POOL_LOW_WATERMARK: must be lower than pool.highWatermark (0.9), got 0.95',
    );
    assert.equal(
      errorOf(() => loadConfig({ env: { ACFT_POOL_HIGH_WATERMARK: '0.5' } })).message,
      'pool.lowWatermark (ACFT_POOL_LOW_WATERMARK): must be lower than pool.highWatermark (0.5), got 0.75',
    );
    const ok = loadConfig({ env: { ACFT_POOL_HIGH_WATERMARK: '0.5', ACFT_POOL_LOW_WATERMARK: '0.4' } });
    assert.deepEqual([ok.pool.lowWatermark, ok.pool.highWatermark], [0.4, 0.5]);
  });

  void it('enforces heartbeat < session timeout, m <= maxPatches, distinct topics, cert with key', () => {
    assert.match(
      errorOf(() => loadConfig({ env: { ACFT_KAFKA_HEARTBEAT_INTERVAL_MS: '30000' } })).message,
      /^ACFT_KAFKA_HEARTBEAT_INTERVAL_MS: must be lower than kafka\.sessionTimeoutMs/,
    );
    assert.match(
      errorOf(() => loadConfig({ env: { ACFT_LIMITS_MAX_PATCHES: '8' } })).message,
      /^scoring\.m \(ACFT_SCORING_M\): must be at most limits\.maxPatches \(8\), got 12/,
    );
    assert.match(
      errorOf(() => loadConfig({ env: { ACFT_KAFKA_TOPICS_FEEDBACK: 'acft.candidates' } })).message,
      /^ACFT_KAFKA_TOPICS_FEEDBACK: must differ from kafka\.topics\.candidates/,
    );
    assert.match(
      errorOf(() => loadConfig({ env: { ACFT_KAFKA_SSL_CERT_PATH: '/c.pem' } })).message,
      /^kafka\.ssl\.keyPath \(ACFT_KAFKA_SSL_KEY_PATH\): certPath and keyPath go together/,
    );
  });
});

void describe('SASL password', () => {
  const env = {
    ACFT_KAFKA_SASL_MECHANISM: 'plain',
    ACFT_KAFKA_SASL_USERNAME: 'acft',
    ACFT_KAFKA_SASL_PASSWORD: 'hunter2',
  };

  void it('is redacted by redactConfig, which leaves the original alone', () => {
    const c = loadConfig({ env });
    const shown = redactConfig(c);
    assert.deepEqual(shown.kafka.sasl, { mechanism: 'plain', username: 'acft', password: '[redacted]' });
    assert.ok(!JSON.stringify(shown).includes('hunter2'));
    assert.equal(c.kafka.sasl?.password, 'hunter2');
    assert.deepEqual(redactConfig(loadConfig({ env: {} })), loadConfig({ env: {} }));
  });

  void it('is required with a mechanism, and never shown in errors', () => {
    const { ACFT_KAFKA_SASL_PASSWORD: _p, ...noPassword } = env;
    assert.match(
      errorOf(() => loadConfig({ env: noPassword })).message,
      /^kafka\.sasl\.password \(ACFT_KAFKA_SASL_PASSWORD\): required when SASL is configured/,
    );
    const wrong = errorOf(() =>
      loadConfig({
        env: { ...env, ACFT_KAFKA_SASL_MECHANISM: 'kerberos', ACFT_KAFKA_SASL_PASSWORD: 'hunter2' },
      }),
    );
    assert.ok(!wrong.message.includes('hunter2'));
    const file = {
      path: 'f.json',
      values: { kafka: { sasl: { mechanism: 'plain', username: 'u', password: 42 } } },
    };
    const typed = errorOf(() => resolveConfig({ env: {}, file }));
    assert.equal(typed.message, 'f.json: kafka.sasl.password: expected a non-empty string, got [redacted]');
  });
});

void describe('throughput options', () => {
  void it('defaults to one scoring worker per core and fine-tuning every layer', () => {
    const c = resolveConfig({ env: {} });
    assert.equal(c.scoring.workers, 'auto');
    assert.equal(c.training.fineTuneDepth, 'all');
    assert.equal(scoringWorkerCount(c.scoring.workers, 6), 6);
    assert.equal(scoringServiceOptions(c).workers, os.availableParallelism());
  });

  void it('reads a worker count and a depth from the environment or a file', () => {
    const c = resolveConfig({
      env: {
        ACFT_SCORING_WORKERS: '3',
        ACFT_TRAINING_FINE_TUNE_DEPTH: '1',
        ACFT_SCORING_FEATURE_CACHE_MAX_BYTES: '0',
        ACFT_SCORING_NICE: '7',
      },
    });
    assert.equal(c.scoring.workers, 3);
    assert.equal(c.training.fineTuneDepth, 1);
    assert.equal(c.scoring.featureCacheMaxBytes, 0);
    assert.deepEqual(scoringServiceOptions(c), {
      backend: 'auto',
      workers: 3,
      cutDepth: 1,
      featureCacheMaxBytes: 0,
      nice: 7,
    });
    assert.equal(resolveConfig({ env: {} }).scoring.nice, 10);
    assert.throws(() => resolveConfig({ env: { ACFT_SCORING_NICE: '20' } }), /ACFT_SCORING_NICE/);
    const f = resolveConfig({
      env: {},
      overrides: { scoring: { workers: 2 }, training: { fineTuneDepth: 'all' } },
    });
    assert.equal(f.scoring.workers, 2);
  });

  void it('refuses a worker count or depth that is neither the word nor a positive integer, naming it', () => {
    for (const [env, name] of [
      [{ ACFT_SCORING_WORKERS: '0' }, 'ACFT_SCORING_WORKERS'],
      [{ ACFT_SCORING_WORKERS: 'many' }, 'ACFT_SCORING_WORKERS'],
      [{ ACFT_TRAINING_FINE_TUNE_DEPTH: '-1' }, 'ACFT_TRAINING_FINE_TUNE_DEPTH'],
      [{ ACFT_TRAINING_FINE_TUNE_DEPTH: 'auto' }, 'ACFT_TRAINING_FINE_TUNE_DEPTH'],
    ] as const) {
      const err = errorOf(() => resolveConfig({ env }));
      assert.match(err.message, new RegExp(name));
    }
  });
});
