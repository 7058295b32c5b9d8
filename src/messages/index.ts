/**
 * The Kafka messages of acft: one zod schema per message, `parse*` functions that validate a raw
 * Kafka value and never throw (a bad message is a {@link ParseFailure} with a dead-letter reason),
 * and `encode*` functions that produce the JSON value. No Kafka client code here.
 */
export * from './reasons.js';
export * from './common.js';
export * from './tensor.js';
export * from './candidate.js';
export * from './feedback.js';
export * from './labeling-request.js';
export * from './model-version.js';
export * from './dead-letter.js';
export * from './internal.js';
