/**
 * The pure ACFT core: scoring, selection, strategies, metrics, hold-out and seeded randomness.
 * No I/O, no tensors, no Kafka: plain synchronous functions on plain data.
 */
export * from './rng.js';
export * from './score.js';
export * from './select.js';
export * from './strategies.js';
export * from './metrics.js';
export * from './holdout.js';
export * from './pool.js';
export * from './labels.js';
export * from './windows.js';
export * from './offsets.js';
export * from './checkpoint-state.js';
