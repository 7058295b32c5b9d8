/**
 * `acft.model-version/v1` (topic `model-versions`): one fine-tuned model version, promoted (served)
 * or rejected (worse than its parent on the hold-out beyond the tolerance). Every instance serves
 * the newest promoted version it reads here; the artifact is checked against `sha256` on load.
 */
import { z } from 'zod';
import { STRATEGY_CODES, type StrategyCode } from '../core/strategies.js';
import {
  DEFAULT_MAX_PAYLOAD_BYTES,
  candidateIdSchema,
  encodeWith,
  isoTimeSchema,
  opaqueIdSchema,
  parseWith,
  type MessageValue,
} from './common.js';
import { type ParseResult } from './reasons.js';

export const MODEL_VERSION_SCHEMA = 'acft.model-version/v1';

export const MODEL_VERSION_STATUSES = ['promoted', 'rejected'] as const;
export type ModelVersionStatus = (typeof MODEL_VERSION_STATUSES)[number];

const strategySchema = z.enum(STRATEGY_CODES as readonly StrategyCode[] as [StrategyCode, ...StrategyCode[]]);
const auc = z.number().min(0).max(1).nullable();
const count = z.int().min(0);

/**
 * Validation metrics. `holdoutAuc` / `parentHoldoutAuc` are null when the hold-out cannot give an
 * AUC (empty, or one class only). Further metrics (finite numbers or null) may be added by name,
 * e.g. `holdoutAccuracy`, `trainLoss`, `trainingMs`.
 */
export const modelMetricsSchema = z
  .object({
    /** AUC of this version on the hold-out (one-vs-rest macro AUC when K > 2). */
    holdoutAuc: auc,
    /** AUC of the parent (the version served when the window started) on the same hold-out. */
    parentHoldoutAuc: auc,
  })
  .catchall(z.number().nullable());

export const modelVersionMessageSchema = z.object({
  schema: z.literal(MODEL_VERSION_SCHEMA),
  version: opaqueIdSchema,
  /** The version it was fine-tuned from; null for one trained from M0 with no parent version. */
  parent: opaqueIdSchema.nullable(),
  /**
   * The M0 its lineage starts from (`m0-` and a hash of M0's topology, weights and head). A daemon
   * serves only versions of its own M0; absent on messages of acft before lineages were recorded.
   */
  m0: opaqueIdSchema.optional(),
  strategy: strategySchema,
  status: z.enum(MODEL_VERSION_STATUSES),
  counts: z.object({
    /** |Q|: candidates newly labeled in this window. */
    q: count,
    /** |H|: labeled candidates the parent misclassified. */
    h: count,
    /** |L|: all labeled (non-held-out) candidates after the window. */
    labeled: count,
    /** Candidates in the hold-out the version was evaluated on. */
    holdout: count,
  }),
  /** Ids of the candidates trained on in this window. */
  trainedOn: z.array(candidateIdSchema),
  metrics: modelMetricsSchema,
  artifact: z.object({
    /** Path (in the shared model store) or URL of the saved model. */
    location: z.string().min(1).max(2048),
    /** Lower-case hex SHA-256 of the artifact. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits'),
  }),
  /** When the fine-tuning window opened. */
  windowStartedAt: isoTimeSchema,
  time: isoTimeSchema,
});

export type ModelVersionMessage = z.infer<typeof modelVersionMessageSchema>;

/** Options of {@link parseModelVersion}. */
export interface ModelVersionParseOptions {
  /** Default 1 MiB. */
  maxPayloadBytes?: number;
}

/** Parses and validates a model-version message; never throws. */
export function parseModelVersion(
  value: MessageValue,
  options: ModelVersionParseOptions = {},
): ParseResult<ModelVersionMessage> {
  const result = parseWith(
    modelVersionMessageSchema,
    value,
    options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
  );
  return result;
}

/**
 * Serialises a model-version message (`schema` may be left out).
 *
 * @throws MessageEncodeError when it is invalid.
 */
export function encodeModelVersion(
  message: Omit<ModelVersionMessage, 'schema'> & { schema?: typeof MODEL_VERSION_SCHEMA },
): string {
  return encodeWith(modelVersionMessageSchema, 'model version', { ...message, schema: MODEL_VERSION_SCHEMA });
}
