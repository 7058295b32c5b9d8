/**
 * The documentation of every option, generated from the schema: {@link configReference} (one row
 * per option) and {@link renderConfigurationMarkdown} (docs/configuration.md).
 */
import { CONFIG_FILE_ENV, CONFIG_OPTIONS, getAt, type ConfigOption } from './options.js';
import { configSchema } from './schema.js';

/** One row of the options table. */
export interface ConfigReferenceEntry {
  /** Environment variable. */
  env: string;
  /** Dotted path (the key in the JSON file). */
  path: string;
  /** The default, as text. */
  default: string;
  description: string;
  /** What a valid value is. */
  expects: string;
}

const MIB = 1024 * 1024;

function humanDuration(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'min'],
    [1000, 's'],
  ];
  for (const [size, unit] of units) if (ms >= size && ms % size === 0) return `${ms / size} ${unit}`;
  return `${ms} ms`;
}

function humanBytes(n: number): string {
  if (n >= MIB && n % MIB === 0) return `${n / MIB} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} B`;
}

/** A default as a value (shown as code) and/or a note in words. */
interface DefaultText {
  value?: string;
  note?: string;
}

function defaultOf(path: string, value: unknown, defaultText: string | undefined): DefaultText {
  if (defaultText !== undefined) return { note: defaultText };
  if (value === undefined) return { note: 'none' };
  if (Array.isArray(value))
    return value.length === 0 ? { note: 'empty' } : { value: value.map(String).join(',') };
  if (typeof value === 'number' && path.endsWith('Ms') && value > 0) {
    return { value: String(value), note: humanDuration(value) };
  }
  if (typeof value === 'number' && path.endsWith('Bytes'))
    return { value: String(value), note: humanBytes(value) };
  return {
    value: typeof value === 'object' ? JSON.stringify(value) : String(value as string | number | boolean),
  };
}

function defaults(): { option: ConfigOption; text: DefaultText }[] {
  const resolved = configSchema.parse({});
  return CONFIG_OPTIONS.map((option) => ({
    option,
    text: defaultOf(option.path, getAt(resolved, option.keys), option.meta.defaultText),
  }));
}

/** Every option with its environment variable, path, default and description, in schema order. */
export function configReference(): ConfigReferenceEntry[] {
  return defaults().map(({ option: o, text }) => ({
    env: o.env,
    path: o.path,
    default:
      text.value !== undefined
        ? text.note !== undefined
          ? `${text.value} (${text.note})`
          : text.value
        : (text.note ?? ''),
    description: o.meta.description,
    expects: o.meta.expects,
  }));
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

const INTRO = `# Configuration

\`acft run\` reads its configuration from, in increasing order of precedence:

1. the defaults below;
2. an optional JSON file, named by \`--config <path>\` or, failing that, by \`${CONFIG_FILE_ENV}\`;
3. environment variables \`ACFT_*\`;
4. command-line flags (where a command has them).

Every option is optional. Units are part of the names: \`...Ms\` are milliseconds, \`...Bytes\` are
bytes. One schema validates the result; a bad value stops start-up with an error that names the
option, e.g. \`ACFT_POOL_MAX_CANDIDATES: expected a positive integer, got 'abc'\`. An \`ACFT_*\`
variable that is not an option below is an error too (a typo would otherwise be ignored), and so is
an unknown key in the file.

Environment variables:

- numbers are written as usual (\`30000\`, \`0.25\`, \`1e-3\`);
- booleans are \`true\`/\`false\` (also \`1\`/\`0\`, \`yes\`/\`no\`, \`on\`/\`off\`);
- lists are comma-separated (\`broker1:9092,broker2:9092\`) or a JSON array;
- an empty variable counts as unset.

The file holds the same options as nested JSON objects, by path:

\`\`\`json
{
  "kafka": {
    "brokers": ["kafka-1:9093", "kafka-2:9093"],
    "ssl": { "caPath": "/etc/acft/ca.pem" },
    "sasl": { "mechanism": "scram-sha-512", "username": "acft", "password": "from-a-secret-store" }
  },
  "pool": { "maxCandidates": 20000 },
  "training": { "strategy": "ACFT(HQ)", "holdoutShare": 0.2 }
}
\`\`\`

Secrets (\`kafka.sasl.password\`) are never logged: \`redactConfig(config)\` replaces them before
the configuration is printed, and error messages do not show their values. Prefer passing the
password through the environment (e.g. from a secret store) to writing it in the file.

## Options
`;

/** The whole of docs/configuration.md. */
export function renderConfigurationMarkdown(): string {
  const rows = defaults().map(({ option: o, text }) => {
    const shown =
      text.value !== undefined
        ? `\`${text.value}\`${text.note !== undefined ? ` (${text.note})` : ''}`
        : (text.note ?? '');
    return `| \`${o.env}\` | \`${o.path}\` | ${cell(shown)} | ${cell(o.meta.description)} Value: ${cell(o.meta.expects)}. |`;
  });
  return `${INTRO}
| Environment variable | Path in the file | Default | Description |
| --- | --- | --- | --- |
${rows.join('\n')}
`;
}
