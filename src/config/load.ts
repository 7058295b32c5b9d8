/**
 * Loading the configuration: defaults < JSON file < ACFT_* environment variables < overrides
 * (command-line flags), through the one schema. A bad value throws a {@link ConfigError} whose
 * message names the option the way the user set it: the environment variable, the file and key,
 * or the path.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import {
  CONFIG_FILE_ENV,
  CONFIG_OPTIONS,
  ENV_PREFIX,
  envNameOf,
  getAt,
  OPTIONS_BY_ENV,
  OPTIONS_BY_PATH,
  type ConfigOption,
} from './options.js';
import { configSchema, type Config, type ConfigInput, type EnvKind } from './schema.js';

/** One thing wrong with the configuration. */
export interface ConfigIssue {
  /** How the user set it: 'ACFT_POOL_MAX_CANDIDATES', '/etc/acft.json: pool.maxCandidates', or a path. */
  readonly field: string;
  /** Dotted path of the option ('' for the whole configuration). */
  readonly path: string;
  /** What is wrong, e.g. "expected a positive integer, got 'abc'". */
  readonly message: string;
}

/** The configuration is invalid; the message names every field at fault. Start-up must stop. */
export class ConfigError extends Error {
  /** Stable machine-readable code. */
  readonly code = 'CONFIG_INVALID';
  /** The same configuration fails the same way. */
  readonly retryable = false;
  override readonly name = 'ConfigError';
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[], options?: ErrorOptions) {
    super(issues.map((i) => `${i.field}: ${i.message}`).join('; '), options);
    this.issues = issues;
  }
}

/** Where the configuration comes from; see {@link loadConfig}. */
export interface ConfigSources {
  /** Environment variables; default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Path of the JSON file (`--config`); default `env.ACFT_CONFIG_FILE`; none if neither. */
  file?: string;
  /** Values that win over everything else (command-line flags). */
  overrides?: ConfigInput;
  /** Accept ACFT_* variables that are not options. Default false: they are an error. */
  allowUnknownEnv?: boolean;
}

/** {@link ConfigSources} with the file already read: no I/O. */
export interface ResolvedConfigSources {
  env?: Readonly<Record<string, string | undefined>>;
  /** The parsed JSON file and its name (for error messages). */
  file?: { path: string; values: unknown };
  overrides?: ConfigInput;
  allowUnknownEnv?: boolean;
}

/** Environment variables that are not options. */
export const RESERVED_ENV_VARS: readonly string[] = Object.freeze([
  CONFIG_FILE_ENV,
  // Test-only crash and delay points of the fault tests (src/daemon/fault-points.ts); not configuration.
  'ACFT_FAULT_POINT',
  'ACFT_FAULT_DELAY',
]);

type Source =
  { kind: 'env'; name: string; raw: string } | { kind: 'file'; file: string } | { kind: 'override' };

type Tree = Record<string, unknown>;

function isPlainObject(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep-merges `source` into `target` (plain objects merge; anything else replaces). */
function mergeInto(target: Tree, source: Tree): void {
  for (const [k, v] of Object.entries(source)) {
    if (v === undefined) continue;
    const current = target[k];
    if (isPlainObject(v)) {
      const next = isPlainObject(current) ? current : {};
      mergeInto(next, v);
      target[k] = next;
    } else {
      target[k] = v;
    }
  }
}

/** Records `source` for every path present in `values`. */
function recordSources(values: Tree, keys: string[], source: Source, into: Map<string, Source>): void {
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined) continue;
    const path = [...keys, k];
    into.set(path.join('.'), source);
    if (isPlainObject(v)) recordSources(v, path, source, into);
  }
}

function setAt(root: Tree, keys: readonly string[], value: unknown): void {
  let node = root;
  for (const k of keys.slice(0, -1)) {
    const next = node[k];
    if (isPlainObject(next)) node = next;
    else {
      const created: Tree = {};
      node[k] = created;
      node = created;
    }
  }
  node[keys[keys.length - 1]!] = value;
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

/**
 * Text of an environment variable -> the value the schema checks. Text that cannot be read as
 * the kind is passed on as is, so that the schema's error shows it ("got 'abc'").
 */
export function parseEnvValue(kind: EnvKind, raw: string): unknown {
  const text = raw.trim();
  switch (kind) {
    case 'number': {
      const n = Number(text);
      return text === '' || Number.isNaN(n) ? raw : n;
    }
    case 'boolean': {
      const lower = text.toLowerCase();
      return TRUE.has(lower) ? true : FALSE.has(lower) ? false : raw;
    }
    case 'list': {
      if (text.startsWith('[')) {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          return raw;
        }
      }
      return text
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    }
    case 'string':
      return text;
  }
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    prev = row;
  }
  return prev[b.length]!;
}

function suggestEnv(name: string): string {
  let best: string | undefined;
  let bestDistance = 4;
  for (const o of CONFIG_OPTIONS) {
    const d = editDistance(name, o.env);
    if (d < bestDistance) {
      best = o.env;
      bestDistance = d;
    }
  }
  return best === undefined ? '' : ` (did you mean ${best}?)`;
}

/** The option at `keys` or the deepest option above it. */
function optionAt(keys: readonly (string | number)[]): ConfigOption | undefined {
  for (let n = keys.length; n > 0; n--) {
    const o = OPTIONS_BY_PATH.get(keys.slice(0, n).join('.'));
    if (o !== undefined) return o;
  }
  return undefined;
}

function sourceAt(keys: readonly (string | number)[], sources: Map<string, Source>): Source | undefined {
  for (let n = keys.length; n > 0; n--) {
    const s = sources.get(keys.slice(0, n).join('.'));
    if (s !== undefined) return s;
  }
  return undefined;
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

function issueFor(
  keys: readonly (string | number)[],
  describe: (option: ConfigOption | undefined, got: string) => string,
  input: Tree,
  sources: Map<string, Source>,
): ConfigIssue {
  const option = optionAt(keys);
  const optionKeys = option?.keys ?? keys;
  const path = optionKeys.join('.');
  const source = sourceAt(keys, sources);
  let field: string;
  let got: string;
  const value = getAt(input, optionKeys);
  if (source?.kind === 'env') {
    field = source.name;
    got = `'${source.raw}'`;
  } else if (source?.kind === 'file') {
    field = `${source.file}: ${path}`;
    got = show(value);
  } else if (source?.kind === 'override') {
    field = path;
    got = show(value);
  } else {
    field = option !== undefined ? `${path} (${option.env})` : path || '(configuration)';
    got = value === undefined ? 'nothing' : show(value);
  }
  if (option?.meta.secret === true) got = '[redacted]';
  return { field, path, message: describe(option, got) };
}

function toIssues(
  zodIssues: readonly z.core.$ZodIssue[],
  input: Tree,
  sources: Map<string, Source>,
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of zodIssues) {
    const keys = issue.path.map((k) => (typeof k === 'symbol' ? String(k) : k));
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const where = [...keys, key];
        const known = OPTIONS_BY_PATH.get([...keys, key].join('.'));
        out.push(issueFor(where, () => (known ? 'not allowed here' : 'unknown option'), input, sources));
      }
      continue;
    }
    out.push(
      issueFor(
        keys,
        (option, got) => {
          if (issue.code === 'custom') return issue.message;
          if (option === undefined) {
            return issue.code === 'invalid_type'
              ? `expected an object, got ${got}`
              : `${issue.message}, got ${got}`;
          }
          return `expected ${option.meta.expects}, got ${got}`;
        },
        input,
        sources,
      ),
    );
  }
  return out;
}

/**
 * Resolves the configuration from already-read sources (no I/O): defaults < file < env < overrides.
 *
 * @throws ConfigError naming every bad field.
 */
export function resolveConfig(sources: ResolvedConfigSources = {}): Config {
  const env = sources.env ?? process.env;
  const input: Tree = {};
  const where = new Map<string, Source>();
  const issues: ConfigIssue[] = [];

  if (sources.file !== undefined) {
    const { path, values } = sources.file;
    if (!isPlainObject(values)) {
      throw new ConfigError([{ field: path, path: '', message: 'expected a JSON object of options' }]);
    }
    mergeInto(input, values);
    recordSources(values, [], { kind: 'file', file: path }, where);
  }

  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || raw === undefined || raw.trim() === '') continue;
    const option = OPTIONS_BY_ENV.get(name);
    if (option === undefined) {
      if (!sources.allowUnknownEnv && !RESERVED_ENV_VARS.includes(name)) {
        issues.push({ field: name, path: '', message: `not an acft option${suggestEnv(name)}` });
      }
      continue;
    }
    setAt(input, option.keys, parseEnvValue(option.meta.kind, raw));
    where.set(option.path, { kind: 'env', name, raw: option.meta.secret === true ? '[redacted]' : raw });
  }

  if (sources.overrides !== undefined) {
    const overrides = sources.overrides as Tree;
    mergeInto(input, overrides);
    recordSources(overrides, [], { kind: 'override' }, where);
  }

  const result = configSchema.safeParse(input);
  if (!result.success) issues.push(...toIssues(result.error.issues, input, where));
  if (issues.length > 0 || !result.success) {
    throw new ConfigError(issues, result.success ? undefined : { cause: result.error });
  }
  return result.data;
}

/** Reads and parses the JSON configuration file. */
export function readConfigFile(path: string, named: string = path): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ConfigError(
      [{ field: named, path: '', message: `cannot read the configuration file (${why})` }],
      {
        cause: err,
      },
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const position = /at position (\d+)/.exec(err instanceof Error ? err.message : '')?.[1];
    const at = position === undefined ? '' : ` at position ${position}`;
    throw new ConfigError(
      [{ field: named, path: '', message: `the configuration file is not valid JSON${at}` }],
      {
        cause: err,
      },
    );
  }
}

/**
 * Loads the daemon's configuration: defaults, then the JSON file (`file`, else
 * `env.ACFT_CONFIG_FILE`), then `ACFT_*` environment variables, then `overrides`; later wins.
 *
 * @throws ConfigError naming every bad field, e.g.
 *   "ACFT_POOL_MAX_CANDIDATES: expected a positive integer, got 'abc'".
 */
export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? process.env;
  const fromEnv = env[CONFIG_FILE_ENV]?.trim();
  const filePath = sources.file ?? (fromEnv === '' ? undefined : fromEnv);
  const file =
    filePath === undefined
      ? undefined
      : {
          path: filePath,
          values: readConfigFile(
            filePath,
            sources.file === undefined ? `${CONFIG_FILE_ENV} ${filePath}` : filePath,
          ),
        };
  return resolveConfig({
    env,
    ...(file !== undefined ? { file } : {}),
    ...(sources.overrides !== undefined ? { overrides: sources.overrides } : {}),
    ...(sources.allowUnknownEnv !== undefined ? { allowUnknownEnv: sources.allowUnknownEnv } : {}),
  });
}

/** What secrets are replaced with. */
export const REDACTED = '[redacted]';

/** A copy of the configuration with every secret (the SASL password) replaced by '[redacted]'. */
export function redactConfig(config: Config): Config {
  const copy = structuredClone(config);
  for (const option of CONFIG_OPTIONS) {
    if (option.meta.secret !== true || getAt(copy, option.keys) === undefined) continue;
    setAt(copy as unknown as Tree, option.keys, REDACTED);
  }
  return copy;
}

/** The environment variable of a dotted path (for messages that point users at an option). */
export function envVarOf(path: string): string {
  return OPTIONS_BY_PATH.get(path)?.env ?? envNameOf(path.split('.'));
}
