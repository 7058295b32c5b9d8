/** Core options derived from configuration groups, so that callers do not rebuild them by hand. */
import type { LabelingConfig } from '../core/labels.js';
import type { AugmentationSpec } from '../core/patches.js';
import type { ScoreOptions } from '../core/score.js';
import { AUGMENTATION_PRESETS, type Config, type ScoringConfig } from './schema.js';

/** The score options of the configured criterion (one measure at a time, as the paper runs them). */
export function scoreOptionsOf(scoring: ScoringConfig): ScoreOptions {
  return {
    alpha: scoring.alpha,
    majority: scoring.majority,
    lambdaEntropy: scoring.criterion === 'entropy' ? 1 : 0,
    lambdaDiversity: scoring.criterion === 'diversity' ? 1 : 0,
  };
}

/** The augmentation spec for image candidates that carry none: the preset with `scoring.m` patches. */
export function augmentationSpecOf(scoring: ScoringConfig): AugmentationSpec {
  return { ...AUGMENTATION_PRESETS[scoring.augmentation], m: scoring.m };
}

/**
 * The pool's and the label store's settings. `compareVersions` orders model versions (< 0: a is
 * older than b); only the daemon knows the order, from the versions it has seen.
 */
export function labelingConfigOf(
  config: Pick<Config, 'pool' | 'selection' | 'training'>,
  compareVersions: (a: string, b: string) => number,
): LabelingConfig {
  return {
    pool: {
      maxCandidates: config.pool.maxCandidates,
      maxBytes: config.pool.maxBytes,
      ttlMs: config.pool.ttlMs,
      leaseMs: config.selection.leaseMs,
      highWatermark: config.pool.highWatermark,
      lowWatermark: config.pool.lowWatermark,
      compareVersions,
    },
    labels: {
      holdoutShare: config.training.holdoutShare,
      maxPending: config.pool.maxPendingFeedback,
      pendingTtlMs: config.pool.pendingFeedbackTtlMs,
    },
  };
}

/**
 * The fine-tuning options of a window (the daemon's, the demo's baseline): the configured ones,
 * the learning rate scaled by `continualLrFactor` for a continual strategy fine-tuning a model
 * already fine-tuned (or M0, unless `coldStartFullLr`). `depth` is absent at 'all', so that the
 * version ids of full fine-tuning stay what they were.
 */
export function fineTuneOptionsOf(
  t: Config['training'],
  window: { readonly continual: boolean; readonly fromM0: boolean } = { continual: false, fromM0: true },
) {
  const coldStart = window.fromM0 && t.coldStartFullLr;
  return {
    optimizer: t.optimizer,
    learningRate: t.learningRate * (window.continual && !coldStart ? t.continualLrFactor : 1),
    headLearningRateMultiplier: t.headLearningRateMultiplier,
    momentum: t.momentum,
    gamma: t.gamma,
    epochs: t.epochs,
    batchSize: t.batchSize,
    classBalanced: t.classBalanced,
    ...(t.fineTuneDepth === 'all' ? {} : { depth: t.fineTuneDepth }),
  };
}
