/**
 * acft's public API: the pure ACFT core (worthiness score, randomized selection, the learning
 * strategies of the paper's Table 2, metrics, hold-out, seeded randomness, patch augmentation).
 * Importing it loads no tfjs, Kafka, metrics or logging code; those live behind the CLI.
 */
export * from './core/index.js';
export * from './core/patches.js';
