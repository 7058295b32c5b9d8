/** Core options derived from configuration groups, so that callers do not rebuild them by hand. */
import type { AugmentationSpec } from '../core/patches.js';
import type { ScoreOptions } from '../core/score.js';
import { AUGMENTATION_PRESETS, type ScoringConfig } from './schema.js';

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
