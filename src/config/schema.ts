/**
 * The daemon's whole configuration as ONE zod schema (STYLE.md, habit 3). Every option is
 * optional and has a documented default; units are explicit in names (`...Ms`, `...Bytes`).
 *
 * Each leaf option is registered in {@link optionRegistry} with its description and how to read
 * it from an environment variable; `options.ts` walks the schema to list them (env var, path,
 * default), and that list generates docs/configuration.md.
 */
import { hostname } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { PAPER_POLYP_SPEC, UPRIGHT_SPEC, type AugmentationSpec } from '../core/patches.js';
import { parseStrategy, STRATEGY_CODES, type StrategyCode } from '../core/strategies.js';

/** How an environment variable's text becomes a value. */
export type EnvKind = 'number' | 'boolean' | 'list' | 'string';

/** What the docs and error messages say about one option. */
export interface OptionMeta {
  /** One or two sentences for the README table. */
  description: string;
  /** What a valid value is, as in "expected <expects>, got 'abc'". */
  expects: string;
  /** How its environment variable is read. */
  kind: EnvKind;
  /** The environment variable, when not derived from the path (ACFT_ + path in UPPER_SNAKE). */
  env?: string;
  /** Never shown: redacted by `redactConfig` and in error messages. */
  secret?: boolean;
  /** The default as the docs show it, when the value itself would mislead (e.g. a machine path). */
  defaultText?: string;
}

/** Leaf options of {@link configSchema} and what the docs say about them. */
export const optionRegistry = z.registry<OptionMeta>();

function option<T extends z.ZodType>(schema: T, meta: OptionMeta): T {
  optionRegistry.add(schema, meta);
  return schema;
}

/** The package root (works from src/config under tsx and from dist/config once built). */
const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The pre-trained model M0 shipped with the package. */
export const DEFAULT_M0_PATH = path.join(PACKAGE_ROOT, 'models', 'm0-digits');

/** Augmentation presets for image candidates that carry no augmentation spec. */
export const AUGMENTATION_PRESETS: Readonly<Record<'upright' | 'paper', Readonly<AugmentationSpec>>> =
  Object.freeze({
    upright: UPRIGHT_SPEC,
    paper: PAPER_POLYP_SPEC,
  });
export type AugmentationPreset = keyof typeof AUGMENTATION_PRESETS;

/** tfjs backends that may be asked for (as model/backend.ts's BackendRequest). */
export const BACKEND_CHOICES = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
/** pino levels. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

// ---- leaf builders ---------------------------------------------------------------------------

interface IntRange {
  min?: number;
  max?: number;
  unit?: 'milliseconds' | 'bytes';
}

function intExpects({ min = 1, max, unit }: IntRange): string {
  const base =
    max !== undefined
      ? `an integer from ${min} to ${max}`
      : min === 1
        ? 'a positive integer'
        : min === 0
          ? 'a non-negative integer'
          : `an integer >= ${min}`;
  return unit === undefined ? base : `${base} (${unit})`;
}

function int(def: number, description: string, range: IntRange = {}) {
  const { min = 1, max } = range;
  let schema = z.int().min(min);
  if (max !== undefined) schema = schema.max(max);
  return option(schema.default(def), { kind: 'number', expects: intExpects(range), description });
}

const ms = (def: number, description: string) => int(def, description, { unit: 'milliseconds' });
const bytes = (def: number, description: string) => int(def, description, { unit: 'bytes' });

interface NumberRange {
  gt?: number;
  gte?: number;
  lt?: number;
  lte?: number;
}

function numberExpects(r: NumberRange): string {
  const low = r.gt !== undefined ? `(${r.gt}` : r.gte !== undefined ? `[${r.gte}` : undefined;
  const high = r.lt !== undefined ? `${r.lt})` : r.lte !== undefined ? `${r.lte}]` : undefined;
  if (low !== undefined && high !== undefined) return `a number in ${low}, ${high}`;
  if (r.gt !== undefined) return `a number > ${r.gt}`;
  if (r.gte !== undefined) return `a number >= ${r.gte}`;
  return 'a number';
}

function num(def: number, description: string, r: NumberRange) {
  let schema = z.number();
  if (r.gt !== undefined) schema = schema.gt(r.gt);
  if (r.gte !== undefined) schema = schema.gte(r.gte);
  if (r.lt !== undefined) schema = schema.lt(r.lt);
  if (r.lte !== undefined) schema = schema.lte(r.lte);
  return option(schema.default(def), { kind: 'number', expects: numberExpects(r), description });
}

function bool(def: boolean, description: string, env?: string) {
  return option(z.boolean().default(def), {
    kind: 'boolean',
    expects: 'true or false',
    description,
    ...(env !== undefined ? { env } : {}),
  });
}

function choice<const T extends readonly [string, ...string[]]>(
  values: T,
  def: T[number],
  description: string,
) {
  return option(z.enum(values).default(def as never), {
    kind: 'string',
    expects: `one of ${values.join(', ')}`,
    description,
  });
}

const nonBlank = z.string().trim().min(1);

/** `word` or a positive integer; an environment variable's digits are read as the integer. */
function wordOrInt<const W extends string>(word: W, description: string, extra: Partial<OptionMeta> = {}) {
  const digits = z
    .string()
    .regex(/^\s*\d+\s*$/)
    .transform(Number)
    .pipe(z.int().min(1));
  return option(z.union([z.literal(word), z.int().min(1), digits]).default(word as never), {
    kind: 'string',
    expects: `'${word}' or a positive integer`,
    description,
    ...extra,
  });
}

function text(def: string, description: string, extra: Partial<OptionMeta> = {}) {
  return option(nonBlank.default(def), {
    kind: 'string',
    expects: 'a non-empty string',
    description,
    ...extra,
  });
}

function optionalText(description: string, extra: Partial<OptionMeta> = {}) {
  return option(nonBlank.optional(), {
    kind: 'string',
    expects: 'a non-empty string',
    description,
    ...extra,
  });
}

/**
 * Cross-field checks run only on values that passed their own checks (zod would otherwise run
 * them after non-aborting issues such as a failed minimum, and report consequences as causes).
 */
const noIssuesYet = (payload: z.core.ParsePayload): boolean => payload.issues.length === 0;

const TOPIC = z.string().regex(/^[A-Za-z0-9._-]{1,249}$/);
function topic(def: string, description: string) {
  return option(TOPIC.default(def), {
    kind: 'string',
    expects: 'a Kafka topic name (1 to 249 of A-Z a-z 0-9 . _ -)',
    description,
  });
}

const BROKER = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):\d{1,5}$/)
  .refine(
    (s) => {
      const port = Number(s.slice(s.lastIndexOf(':') + 1));
      return port >= 1 && port <= 65535;
    },
    { message: 'broker ports must be from 1 to 65535', when: noIssuesYet },
  );

// Groups are optional: a missing group is parsed as {} so that its leaves get their defaults.
const group = <S extends z.core.$ZodLooseShape>(shape: S) => z.strictObject(shape).prefault({} as never);

// ---- groups ------------------------------------------------------------------------------------

const ssl = z
  .preprocess(
    (v) => (typeof v === 'boolean' ? { enabled: v } : v),
    z
      .strictObject({
        enabled: option(z.boolean().optional(), {
          kind: 'boolean',
          expects: 'true or false',
          env: 'ACFT_KAFKA_SSL',
          defaultText: 'false (true when a CA, certificate or key path is set)',
          description:
            'Connect to the brokers over TLS. In the file, `"ssl": true` is short for `{ "enabled": true }`.',
        }),
        caPath: optionalText('PEM file of the CA(s) to trust instead of the system store.'),
        certPath: optionalText('PEM client certificate for mutual TLS (needs `keyPath`).'),
        keyPath: optionalText('PEM private key of the client certificate (needs `certPath`).'),
        rejectUnauthorized: bool(
          true,
          'Refuse brokers whose certificate does not verify. Leave on outside tests.',
        ),
      })
      .superRefine(
        (s, ctx) => {
          if ((s.certPath === undefined) !== (s.keyPath === undefined)) {
            const missing = s.certPath === undefined ? 'certPath' : 'keyPath';
            ctx.addIssue({
              code: 'custom',
              path: [missing],
              message: 'certPath and keyPath go together: set both or neither',
            });
          }
        },
        { when: noIssuesYet },
      )
      .transform((s) => ({
        ...s,
        enabled: s.enabled ?? (s.caPath !== undefined || s.certPath !== undefined || s.keyPath !== undefined),
      })),
  )
  .prefault({});

const sasl = z
  .strictObject({
    mechanism: option(z.enum(SASL_MECHANISMS).optional(), {
      kind: 'string',
      expects: `one of ${SASL_MECHANISMS.join(', ')}`,
      description: 'SASL mechanism; unset means no SASL. Use it with TLS: PLAIN sends the password as is.',
    }),
    username: optionalText('SASL user name (required with a mechanism).'),
    password: optionalText(
      'SASL password (required with a mechanism). Redacted by `redactConfig` and never logged.',
      {
        secret: true,
      },
    ),
  })
  .superRefine(
    (s, ctx) => {
      const set = [s.mechanism, s.username, s.password].some((v) => v !== undefined);
      if (!set) return;
      for (const field of ['mechanism', 'username', 'password'] as const) {
        if (s[field] === undefined) {
          ctx.addIssue({
            code: 'custom',
            path: [field],
            message: 'required when SASL is configured (mechanism, username and password go together)',
          });
        }
      }
    },
    { when: noIssuesYet },
  )
  .transform((s) =>
    s.mechanism !== undefined && s.username !== undefined && s.password !== undefined
      ? { mechanism: s.mechanism, username: s.username, password: s.password }
      : undefined,
  )
  .prefault({});

const kafka = group({
  brokers: option(
    z
      .array(BROKER)
      .min(1)
      .default(() => ['localhost:9092']),
    {
      kind: 'list',
      expects: 'a comma-separated list of host:port',
      description: 'Bootstrap brokers.',
    },
  ),
  clientId: text('acft', 'Kafka client id (shows in broker logs and quotas).'),
  groupId: text('acft', 'Consumer group; instances in one group share the candidate partitions.'),
  topics: group({
    candidates: topic('acft.candidates', 'Candidates in (key: candidate id).'),
    feedback: topic('acft.feedback', 'Radiologist feedback in (key: candidate id).'),
    labelingRequests: topic('acft.labeling-requests', 'Labeling requests out.'),
    modelVersions: topic(
      'acft.model-versions',
      'Model versions out (and in: every instance serves the newest promoted).',
    ),
    deadLetter: topic('acft.dead-letter', 'Messages that could not be used, with the reason.'),
    coordination: topic(
      'acft.coordination',
      'Single-partition topic whose owner is the coordinator instance; instances publish their shortlists to it (scale-out).',
    ),
    ledger: topic(
      'acft.ledger',
      'Compacted internal topic keyed by candidate id: labeled samples (with their pixels) and outstanding requests, read in full by every instance (scale-out).',
    ),
  }),
  ssl,
  sasl,
  sessionTimeoutMs: ms(
    30_000,
    'Consumer session timeout: an instance silent this long is dropped from the group.',
  ),
  heartbeatIntervalMs: ms(3_000, 'Consumer heartbeat interval; must be below the session timeout.'),
  rebalanceTimeoutMs: ms(60_000, 'How long members get to rejoin during a rebalance.'),
  fetchMaxBytesPerPartition: int(
    4 * 1024 * 1024,
    'Most bytes one fetch takes from a partition (the whole fetch: 4 times this). kafkajs fetches the next batch only after this one is processed, so larger fetches mean fewer round trips while catching up.',
    { min: 1024, unit: 'bytes' },
  ),
  retry: group({
    retries: int(8, 'Retries of a failed broker request before it counts as an outage.', { min: 0 }),
    initialRetryTimeMs: ms(300, 'First retry delay; later ones grow exponentially.'),
    maxRetryTimeMs: ms(30_000, 'Longest delay between two retries.'),
  }),
  outageExitAfterMs: ms(
    300_000,
    'After the brokers have been unreachable this long the daemon exits non-zero so that its supervisor restarts it (it reports unready before).',
  ),
});

const pool = group({
  maxCandidates: int(
    10_000,
    'Most unlabeled candidates kept; beyond it the oldest low-score ones are evicted.',
  ),
  maxBytes: bytes(256 * 1024 * 1024, 'Most bytes of pixel data kept in the pool.'),
  ttlMs: ms(86_400_000, 'A candidate leaves the pool this long after it arrived.'),
  highWatermark: num(
    0.9,
    'Pause consuming candidates when the pool is above this fraction of maxCandidates or maxBytes.',
    {
      gt: 0,
      lte: 1,
    },
  ),
  lowWatermark: num(0.75, 'Resume consuming below this fraction; must be lower than highWatermark.', {
    gte: 0,
    lt: 1,
  }),
  maxPendingFeedback: int(10_000, 'Most feedback messages held for candidates not seen yet.'),
  pendingFeedbackTtlMs: ms(
    600_000,
    "Feedback whose candidate has not arrived after this long is dead-lettered ('unknown-candidate').",
  ),
});

const limits = group({
  maxPayloadBytes: bytes(
    1024 * 1024,
    "Largest message value accepted; larger ones are dead-lettered ('oversized').",
  ),
  maxPatches: int(64, "Most patches per candidate, carried or generated ('limit-exceeded')."),
  maxImageSide: int(512, "Largest image (or patch) height or width in pixels ('limit-exceeded')."),
  maxChannels: int(4, "Most channels per pixel ('limit-exceeded')."),
  numClasses: int(2, "Number of classes K; labels outside 0..K-1 are dead-lettered ('unknown-class').", {
    min: 2,
    max: 1000,
  }),
  deadLetterPayloadBytes: bytes(4096, 'Bytes of the (sanitised) payload copied into a dead-letter message.'),
});

const scoring = group({
  microBatchSize: int(32, 'Candidates scored together on arrival.'),
  microBatchMaxWaitMs: ms(20, 'Longest wait to fill a scoring micro-batch.'),
  alpha: num(0.25, 'Share of patches kept by majority selection.', { gt: 0, lte: 1 }),
  majority: bool(true, 'Majority selection: score only the top ceil(alpha * m) patches.'),
  criterion: choice(['entropy', 'diversity'] as const, 'entropy', 'Worthiness criterion.'),
  augmentation: choice(
    ['upright', 'paper'] as const,
    'upright',
    "Patches of image candidates without their own spec: 'upright' (scales, shifts, mirrors; 12 patches) or 'paper' (also rotations; 24 patches).",
  ),
  m: option(z.int().min(1).optional(), {
    kind: 'number',
    expects: 'a positive integer',
    defaultText: "the preset's (12 upright, 24 paper)",
    description: 'Patches per image candidate without its own spec; at most limits.maxPatches.',
  }),
  patchSeed: int(1, 'Seed of the patch sampling (with the candidate id).', { min: 0 }),
  workers: wordOrInt(
    'auto',
    "Scoring worker threads, each with its own tfjs backend; 'auto': one per core (os.availableParallelism()).",
  ),
  nice: int(
    10,
    'Niceness (0-19) of the scoring worker threads, so that when the cores are busy the event loop (intake, feedback, Kafka heartbeats) runs first; Linux only (per thread there); 0: as the daemon.',
    { min: 0, max: 19 },
  ),
  featureCacheMaxBytes: int(
    256 * 1024 * 1024,
    'Bound of the feature cache of cheap rescoring (used when training.fineTuneDepth freezes layers); 0 turns it off.',
    { min: 0, unit: 'bytes' },
  ),
}).transform((s) => ({ ...s, m: s.m ?? AUGMENTATION_PRESETS[s.augmentation].m ?? 1 }));

const selection = group({
  b: int(25, 'Candidates asked per window (b).'),
  omega: num(5, 'Random extension: the shortlist is the top ceil(omega * b).', { gte: 1 }),
  randomness: bool(true, 'Draw from the shortlist by score (true) or take the top b (false).'),
  seed: int(1, 'Seed of the draws (each window derives its own from it).', { min: 0 }),
  leaseMs: ms(
    14_400_000,
    'An unanswered request lapses after this long and its candidate returns to the pool.',
  ),
});

const strategy = option(
  z
    .string()
    .transform((s, ctx): StrategyCode => {
      try {
        return parseStrategy(s).code;
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
        return z.NEVER;
      }
    })
    .default('ACFT(HQ)'),
  {
    kind: 'string',
    expects: `one of ${STRATEGY_CODES.join(', ')}`,
    description: "Learning strategy (the paper's Table 2); case, spaces and dashes are ignored ('acft-hq').",
  },
);

const training = group({
  strategy,
  optimizer: choice(['adam', 'sgd-momentum'] as const, 'adam', 'Optimizer of the fine-tuning.'),
  learningRate: num(1e-3, 'Learning rate of all layers but the head, for strategies that start from M0.', {
    gt: 0,
  }),
  headLearningRateMultiplier: num(10, "The head's learning rate is this multiple (paper: 10).", { gt: 0 }),
  momentum: num(0.9, 'Momentum of sgd-momentum.', { gte: 0, lt: 1 }),
  gamma: num(0.95, 'Learning-rate decay per epoch.', { gt: 0, lte: 1 }),
  epochs: int(5, 'Epochs per window.'),
  batchSize: int(64, 'Patches per training batch.'),
  continualLrFactor: num(
    1,
    'Continual strategies train at this fraction of learningRate (paper: 0.1; 1 won on validation).',
    {
      gt: 0,
      lte: 1,
    },
  ),
  coldStartFullLr: bool(
    true,
    'The first continual window (from M0, fresh head) uses the full learning rate (paper: no).',
  ),
  replayPerClass: int(
    25,
    'Continual windows also replay this many correctly classified labeled candidates per class (paper: 0).',
    {
      min: 0,
    },
  ),
  classBalanced: bool(false, 'Class-balanced loss in every window.'),
  fineTuneDepth: wordOrInt(
    'all',
    "Weight layers fine-tuned, from the output (1: the head); the rest stay M0's, their features cached for cheap rescoring. 'all': every layer.",
  ),
  seed: int(1, 'Seed of the batch order and replay sampling.', { min: 0 }),
  windowMaxIntervalMs: ms(
    600_000,
    'A window also starts this long after the last one if at least one label is in.',
  ),
  holdoutShare: num(
    0.2,
    'Share of labeled candidates (by hash of the id) held out for validation, never trained on.',
    {
      gte: 0,
      lt: 1,
    },
  ),
  promotionTolerance: num(
    0.02,
    "A version is rejected when its hold-out AUC is below its parent's by more than this.",
    {
      gte: 0,
      lte: 1,
    },
  ),
  promotionMinAuc: num(
    0.5,
    "A version whose hold-out AUC is below this floor is rejected whatever its parent's (0.5 is chance level; 0 turns the floor off). Versions evaluated on a hold-out of one class (AUC null) are not held to it.",
    {
      gte: 0,
      lte: 1,
    },
  ),
});

const model = group({
  m0Path: text(
    DEFAULT_M0_PATH,
    'Directory of the pre-trained model M0, served until a version is promoted.',
    {
      defaultText: '<package>/models/m0-digits',
    },
  ),
  storeDir: text(
    './acft-data/models',
    'Model store: a directory, or s3://bucket/prefix for S3-compatible object storage; every version with its sha256; shared by all instances.',
  ),
  s3: group({
    endpoint: optionalText(
      'Endpoint of an S3-compatible server (MinIO, Ceph RGW...), e.g. http://minio:9000; unset: AWS S3. Credentials come from the AWS SDK chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, profiles, roles).',
    ),
    region: text('us-east-1', 'Region of the S3 model store.'),
    forcePathStyle: bool(
      false,
      'Path-style S3 addressing (host/bucket/key), which most S3-compatible servers need.',
    ),
  }),
});

const state = group({
  checkpointDir: text('./acft-data/state', 'Where checkpoints are written (atomically).'),
  checkpointIntervalMs: ms(30_000, 'Time between checkpoints.'),
});

const cluster = group({
  enabled: bool(
    false,
    'Scale-out: several instances in one consumer group share the candidate partitions and elect one coordinator through kafka.topics.coordination (see docs/scale-out.md). Off: one instance owns everything.',
  ),
  instanceId: text(
    `${hostname()}-${process.pid}`,
    'Name of this instance in shortlists and logs; unique among the running instances.',
    { defaultText: '<hostname>-<pid>' },
  ),
  shortlistIntervalMs: ms(
    1_000,
    'How often an instance publishes its shortlist (top omega * b) to the coordinator.',
  ),
  shortlistMaxAgeMs: ms(
    15_000,
    'The coordinator ignores a shortlist older than this (its instance is gone or lagging).',
  ),
});

const http = group({
  host: text('127.0.0.1', 'Address of the /metrics, /healthz and /readyz server (0.0.0.0 to expose it).'),
  port: int(9464, 'Port of that server (0: any free port).', { min: 0, max: 65535 }),
});

const log = group({
  level: choice(LOG_LEVELS, 'info', 'Log level.'),
  redactPaths: option(
    z.array(nonBlank).default(() => []),
    {
      kind: 'list',
      expects: 'a comma-separated list of pino paths',
      description:
        'Extra log fields to redact (pino paths), on top of sourceRefs and secrets, always redacted.',
    },
  ),
});

const backend = choice(
  BACKEND_CHOICES,
  'auto',
  "tfjs backend: 'auto' tries tensorflow-gpu, tensorflow, wasm, cpu.",
);

/** The daemon's configuration; parse `{}` for every default. */
export const configSchema = z
  .strictObject({
    kafka,
    pool,
    limits,
    scoring,
    selection,
    training,
    model,
    state,
    cluster,
    http,
    log,
    backend,
  })
  .superRefine(
    (c, ctx) => {
      if (c.pool.lowWatermark >= c.pool.highWatermark) {
        ctx.addIssue({
          code: 'custom',
          path: ['pool', 'lowWatermark'],
          message: `must be lower than pool.highWatermark (${c.pool.highWatermark}), got ${c.pool.lowWatermark}`,
        });
      }
      if (c.kafka.heartbeatIntervalMs >= c.kafka.sessionTimeoutMs) {
        ctx.addIssue({
          code: 'custom',
          path: ['kafka', 'heartbeatIntervalMs'],
          message: `must be lower than kafka.sessionTimeoutMs (${c.kafka.sessionTimeoutMs}), got ${c.kafka.heartbeatIntervalMs}`,
        });
      }
      if (c.scoring.m > c.limits.maxPatches) {
        ctx.addIssue({
          code: 'custom',
          path: ['scoring', 'm'],
          message: `must be at most limits.maxPatches (${c.limits.maxPatches}), got ${c.scoring.m}`,
        });
      }
      const seen = new Map<string, string>();
      for (const [name, t] of Object.entries(c.kafka.topics)) {
        const other = seen.get(t);
        if (other !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['kafka', 'topics', name],
            message: `must differ from kafka.topics.${other} ('${t}')`,
          });
        }
        seen.set(t, name);
      }
    },
    { when: noIssuesYet },
  );

/** The fully resolved configuration. */
export type Config = z.output<typeof configSchema>;
/** What a file or overrides may give: every option optional. */
export type ConfigInput = z.input<typeof configSchema>;

export type KafkaConfig = Config['kafka'];
export type PoolConfig = Config['pool'];
export type LimitsConfig = Config['limits'];
export type ScoringConfig = Config['scoring'];
export type SelectionConfig = Config['selection'];
export type TrainingConfig = Config['training'];
export type ModelConfig = Config['model'];
export type StateConfig = Config['state'];
export type ClusterConfig = Config['cluster'];
export type HttpConfig = Config['http'];
export type LogConfig = Config['log'];
export type BackendChoice = Config['backend'];
