/**
 * The daemon's configuration: one zod schema (schema.ts), loaded from defaults, a JSON file,
 * ACFT_* environment variables and overrides (load.ts), documented from the schema itself
 * (reference.ts -> docs/configuration.md).
 */
export * from './schema.js';
export * from './options.js';
export * from './load.js';
export * from './reference.js';
export * from './derive.js';
