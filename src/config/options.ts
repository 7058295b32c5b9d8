/**
 * The list of leaf options of {@link configSchema}, found by walking the schema: each with its
 * path, its environment variable and what the docs say about it. The README's table of options
 * ({@link configReference}, docs/configuration.md) is generated from it.
 */
import { z } from 'zod';
import { configSchema, optionRegistry, type OptionMeta } from './schema.js';

/** Prefix of every environment variable of the daemon. */
export const ENV_PREFIX = 'ACFT_';

/** Names the JSON configuration file; not itself an option. */
export const CONFIG_FILE_ENV = 'ACFT_CONFIG_FILE';

/** One leaf option of the configuration. */
export interface ConfigOption {
  /** Keys from the root, e.g. ['pool', 'maxCandidates']. */
  readonly keys: readonly string[];
  /** Dotted path, e.g. 'pool.maxCandidates'. */
  readonly path: string;
  /** Environment variable, e.g. 'ACFT_POOL_MAX_CANDIDATES'. */
  readonly env: string;
  readonly meta: OptionMeta;
}

/** `maxRetryTimeMs` -> `MAX_RETRY_TIME_MS`, `m0Path` -> `M0_PATH`. */
export function toEnvSegment(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** The environment variable of a path, unless its option names another. */
export function envNameOf(keys: readonly string[]): string {
  return ENV_PREFIX + keys.map(toEnvSegment).join('_');
}

/** The object schema inside wrappers (default, prefault, optional, pipes), if there is one. */
function objectInside(schema: z.ZodType): z.ZodObject | undefined {
  if (schema instanceof z.ZodObject) return schema;
  if (
    schema instanceof z.ZodDefault ||
    schema instanceof z.ZodPrefault ||
    schema instanceof z.ZodOptional ||
    schema instanceof z.ZodNullable
  ) {
    return objectInside(schema.unwrap() as z.ZodType);
  }
  if (schema instanceof z.ZodPipe) {
    return objectInside(schema.in as z.ZodType) ?? objectInside(schema.out as z.ZodType);
  }
  return undefined;
}

function walk(schema: z.ZodType, keys: string[], out: ConfigOption[]): void {
  const meta = optionRegistry.get(schema);
  if (meta !== undefined) {
    out.push(
      Object.freeze({
        keys: Object.freeze([...keys]),
        path: keys.join('.'),
        env: meta.env ?? envNameOf(keys),
        meta,
      }),
    );
    return;
  }
  const object = objectInside(schema);
  if (object === undefined)
    throw new Error(`config schema: '${keys.join('.')}' is neither an option nor a group`);
  for (const [key, child] of Object.entries(object.shape)) walk(child as z.ZodType, [...keys, key], out);
}

function collect(): readonly ConfigOption[] {
  const out: ConfigOption[] = [];
  walk(configSchema, [], out);
  return Object.freeze(out);
}

/** Every leaf option, in schema order. */
export const CONFIG_OPTIONS: readonly ConfigOption[] = collect();

/** Environment variable -> dotted path of its option. */
export const CONFIG_ENV_VARS: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries(CONFIG_OPTIONS.map((o) => [o.env, o.path])),
);

/** Options by dotted path. */
export const OPTIONS_BY_PATH: ReadonlyMap<string, ConfigOption> = new Map(
  CONFIG_OPTIONS.map((o) => [o.path, o]),
);

/** Options by environment variable. */
export const OPTIONS_BY_ENV: ReadonlyMap<string, ConfigOption> = new Map(
  CONFIG_OPTIONS.map((o) => [o.env, o]),
);

/** The value at `keys` in a nested plain object, or undefined. */
export function getAt(root: unknown, keys: readonly (string | number)[]): unknown {
  let node = root;
  for (const k of keys) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[k];
  }
  return node;
}
