/** The hospital simulator (`acft simulate`): candidates in, oracle answers to requests, versions measured. */
export * from './simulator.js';
export * from './oracle.js';
export * from './candidates.js';
export * from './report.js';
export * from './artifact.js';
export * from './evaluation-set.js';
export type { SimulatorKafkaOptions, SimulatorTopics } from './kafka-client.js';
export type { EvaluationResult, Evaluator, EvaluatorOptions } from './evaluation.js';
