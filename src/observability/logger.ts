/**
 * Structured logs (pino, one JSON object per line) with secrets and identifiers redacted.
 *
 * What to log: one line per state change (daemon started, broker connected/disconnected, partitions
 * paused/resumed, leadership gained/lost, shutting down), one per fine-tuning window (its outcome,
 * |Q|, |H|, duration) and one per model version (published, promoted or rejected, served); never
 * one per message. Each line names its event in an `event` field (e.g. `window.completed`,
 * `model.promoted`) and its component through a child logger (`logger.child({ component })`).
 *
 * What never reaches a log: Kafka passwords, TLS keys, object-store secrets, message payloads and
 * source references (study/series/instance UIDs). The default redaction paths below cover these
 * keys at the top level and up to three levels deep; log ids (candidate id, request id, version),
 * not objects that carry those fields. Errors go through {@link safeError}, which keeps the error's
 * type, code and stack frames and scrubs quoted text from its message, since parsers quote the
 * input they choke on.
 */
import { hostname } from 'node:os';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/** Log levels, most verbose first. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Keys whose values are never logged, wherever they sit (top level and up to three levels deep). */
export const REDACTED_KEYS = [
  'password',
  'passphrase',
  'secretAccessKey',
  'sessionToken',
  'accessToken',
  'authorization',
  'sourceRefs',
  'payload',
] as const;

const depths = ['', '*.', '*.*.', '*.*.*.'];

/** The redaction paths applied by default (pino path syntax); configured paths are added to these. */
export const DEFAULT_REDACT_PATHS: readonly string[] = [
  ...REDACTED_KEYS.flatMap((key) => depths.map((prefix) => `${prefix}${key}`)),
  // TLS private keys: `key` alone is too common a name to redact everywhere.
  ...depths.slice(0, 3).map((prefix) => `${prefix}ssl.key`),
  ...depths.slice(0, 3).map((prefix) => `${prefix}tls.key`),
  // A Kafka message's value is its payload.
  ...depths.slice(0, 3).map((prefix) => `${prefix}message.value`),
  'config.kafka.sasl.password',
  'config.kafka.ssl.key',
];

/** What replaces a redacted value. */
export const REDACTED = '[redacted]';

/** Options of {@link createLogger}. */
export interface LoggerConfig {
  /** Minimum level written. */
  readonly level: LogLevel;
  /** Extra paths to redact, in pino's path syntax (`a.b`, `*.c`, `a["x-y"]`), added to the defaults. */
  readonly redactPaths?: readonly string[];
  /** Where lines go (default: standard output). Anything with `write(line: string)`. */
  readonly destination?: DestinationStream;
  /**
   * Write each line to standard output before the call returns (default: pino's asynchronous
   * writes). The daemon's lines are few (state changes, not messages), and a line about what it
   * did (a candidate dropped, a commit) must not be lost with the process in a crash.
   */
  readonly sync?: boolean;
  /** Fields on every line (default `{ service: 'acft' }` plus pid and hostname). */
  readonly base?: Readonly<Record<string, unknown>>;
}

/**
 * Creates the daemon's logger: JSON lines with an ISO time and the level as a word, redaction of
 * {@link DEFAULT_REDACT_PATHS} plus `redactPaths` (censor `[redacted]`), and {@link safeError} as the
 * serializer of `err` and `error`. An invalid redaction path throws here, at start-up.
 */
export function createLogger(config: LoggerConfig): Logger {
  const options: LoggerOptions = {
    level: config.level,
    base: { service: 'acft', pid: process.pid, hostname: hostname(), ...config.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: {
      paths: [...new Set([...DEFAULT_REDACT_PATHS, ...(config.redactPaths ?? [])])],
      censor: REDACTED,
    },
    serializers: { err: safeError, error: safeError },
    hooks: {
      // pino takes an error's raw message as the line's message when none is given: scrub it.
      logMethod(args, method) {
        const [first, second] = args as unknown[];
        if (typeof second === 'string') return method.apply(this, args);
        if (first instanceof Error) {
          return method.call(this, { err: first }, scrubMessage(first.message));
        }
        if (typeof first === 'object' && first !== null) {
          const { err, error } = first as { err?: unknown; error?: unknown };
          const cause = err ?? error;
          if (cause instanceof Error) return method.call(this, first, scrubMessage(cause.message));
        }
        return method.apply(this, args);
      },
    },
  };
  const destination =
    config.destination ?? (config.sync === true ? pino.destination({ dest: 1, sync: true }) : undefined);
  return destination === undefined ? pino(options) : pino(options, destination);
}

/** An error as it may appear in a log line. */
export interface SafeError {
  readonly type: string;
  readonly message: string;
  readonly code?: string | number;
  readonly reason?: string;
  readonly retriable?: boolean;
  readonly stack?: string;
  readonly cause?: SafeError | { readonly type: string };
  readonly errors?: readonly SafeError[];
}

const MAX_MESSAGE_CHARS = 300;
const MAX_DEPTH = 4;

/**
 * Serializes an error for a log line without any message payload: only the type, code, reason,
 * retry verdict, the message with quoted text and long data runs scrubbed, the stack's frames (not
 * its first line, which repeats the message) and, recursively, the cause. Other properties of the
 * error (a Kafka message, the offending input, a config object) are left out. Accepts any thrown
 * value.
 */
export function safeError(err: unknown): SafeError {
  return serialize(err, 0);
}

function serialize(err: unknown, depth: number): SafeError {
  if (!(err instanceof Error)) {
    return { type: typeof err, message: 'non-error value thrown' };
  }
  const fields = err as Error & { code?: unknown; reason?: unknown; retriable?: unknown; retry?: unknown };
  const out: {
    type: string;
    message: string;
    code?: string | number;
    reason?: string;
    retriable?: boolean;
    stack?: string;
    cause?: SafeError | { type: string };
    errors?: SafeError[];
  } = { type: err.name || err.constructor.name, message: scrubMessage(err.message) };
  if (typeof fields.code === 'string' || typeof fields.code === 'number') out.code = fields.code;
  if (typeof fields.reason === 'string') out.reason = scrubMessage(fields.reason);
  if (typeof fields.retriable === 'boolean') out.retriable = fields.retriable;
  else if (typeof fields.retry === 'boolean') out.retriable = fields.retry;
  const frames = stackFrames(err.stack);
  if (frames !== undefined) out.stack = frames;
  if (err.cause !== undefined) {
    out.cause =
      depth < MAX_DEPTH
        ? serialize(err.cause, depth + 1)
        : { type: err.cause instanceof Error ? err.cause.name : typeof err.cause };
  }
  if (err instanceof AggregateError && depth < MAX_DEPTH) {
    out.errors = (err.errors as unknown[]).slice(0, 10).map((inner) => serialize(inner, depth + 1));
  }
  return out;
}

function stackFrames(stack: string | undefined): string | undefined {
  if (stack === undefined) return undefined;
  const frames = stack
    .split('\n')
    .filter((line) => line.trimStart().startsWith('at '))
    .slice(0, 20);
  return frames.length > 0 ? frames.join('\n') : undefined;
}

/**
 * Scrubs what an error message may have copied from its input: quoted text (JSON.parse quotes the
 * text it failed on), long base64 or hex runs, and anything beyond 300 characters. It errs on the
 * side of removing too much: a message with two quoted names loses what lies between them.
 */
export function scrubMessage(message: string): string {
  const scrubbed = scrubDoubleQuoted(message)
    // An opening single quote follows no letter or digit, so the apostrophe in "can't" is kept.
    .replace(/(^|[^\p{L}\p{N}])'(?:[^'\\]|\\.)*'/gu, "$1'…'")
    .replace(/`[^`]*`/g, '`…`')
    .replace(/[A-Za-z0-9+/=_-]{32,}/g, '[data]');
  return scrubbed.length > MAX_MESSAGE_CHARS ? `${scrubbed.slice(0, MAX_MESSAGE_CHARS)}…` : scrubbed;
}

/**
 * V8 quotes the JSON it failed on without escaping the quotes inside it (`"{"a": "x"}"...`), so the
 * whole span from the first double quote to the last goes, and an unmatched one runs to the end.
 */
function scrubDoubleQuoted(message: string): string {
  const first = message.indexOf('"');
  if (first < 0) return message;
  const last = message.lastIndexOf('"');
  return last === first
    ? `${message.slice(0, first)}"…`
    : `${message.slice(0, first)}"…"${message.slice(last + 1)}`;
}
