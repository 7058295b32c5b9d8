/**
 * Internal messages of the scale-out topology (docs/scale-out.md); only acft instances write and
 * read them.
 *
 * - `acft.ledger/v1` (topic `ledger`, compacted, key: the candidate id): a `labeled` entry (votes,
 *   label, hold-out, the candidate's pixels; written by the owner of the candidate's partition) or
 *   a `requested` entry (an outstanding labeling request; written by the coordinator).
 * - `acft.shortlist/v1` (topic `coordination`, key: the instance id): an instance's top ω·b pooled,
 *   scored, unrequested candidates with their scores, for the coordinator to merge.
 */
import { z } from 'zod';
import {
  candidateIdSchema,
  encodeWith,
  isoTimeSchema,
  opaqueIdSchema,
  parseWith,
  type MessageValue,
} from './common.js';
import type { ParseResult } from './reasons.js';
import { requestScoresSchema } from './labeling-request.js';

export const LEDGER_SCHEMA = 'acft.ledger/v1';
export const SHORTLIST_SCHEMA = 'acft.shortlist/v1';

/** Internal messages may carry a candidate's pixels: Kafka's default largest message (1 MiB) + headroom. */
const INTERNAL_MAX_BYTES = 4 * 1024 * 1024;

/** A stored candidate (daemon/stored-candidate.ts's `encodeStored`): pixels in base64. */
const storedCandidateSchema = z.looseObject({
  kind: z.enum(['image', 'patches']),
  dtype: z.enum(['uint8', 'uint16', 'float32']),
  shape: z.array(z.int().positive()).min(1).max(4),
  data: z.base64(),
});

const labeledEntrySchema = z.object({
  schema: z.literal(LEDGER_SCHEMA),
  kind: z.literal('labeled'),
  candidateId: candidateIdSchema,
  label: z.int().min(0),
  heldOut: z.boolean(),
  votes: z.array(z.object({ annotatorId: opaqueIdSchema, label: z.int().min(0), timeMs: z.number() })).min(1),
  source: z.object({
    topic: z.string().min(1),
    partition: z.int().min(0),
    offset: z.int().min(0),
  }),
  candidate: storedCandidateSchema,
  /** The instance that wrote it. */
  writer: opaqueIdSchema,
  time: isoTimeSchema,
});

const requestedEntrySchema = z.object({
  schema: z.literal(LEDGER_SCHEMA),
  kind: z.literal('requested'),
  candidateId: candidateIdSchema,
  requestId: opaqueIdSchema,
  modelVersion: opaqueIdSchema,
  issuedAt: isoTimeSchema,
  leaseExpiresAt: isoTimeSchema,
  writer: opaqueIdSchema,
});

export const ledgerMessageSchema = z.discriminatedUnion('kind', [labeledEntrySchema, requestedEntrySchema]);
export type LedgerMessage = z.infer<typeof ledgerMessageSchema>;
export type LabeledLedgerMessage = z.infer<typeof labeledEntrySchema>;
export type RequestedLedgerMessage = z.infer<typeof requestedEntrySchema>;

export const shortlistMessageSchema = z.object({
  schema: z.literal(SHORTLIST_SCHEMA),
  instanceId: opaqueIdSchema,
  /** The model version the instance serves. */
  servedVersion: opaqueIdSchema,
  /** Partitions of the candidates topic the instance owns. */
  partitions: z.array(z.int().min(0)),
  entries: z.array(
    z.object({
      candidateId: candidateIdSchema,
      scores: requestScoresSchema,
      /** The version that produced the scores. */
      modelVersion: opaqueIdSchema,
      scoredAt: isoTimeSchema,
    }),
  ),
  time: isoTimeSchema,
});
export type ShortlistMessage = z.infer<typeof shortlistMessageSchema>;

export function parseLedgerMessage(value: MessageValue): ParseResult<LedgerMessage> {
  return parseWith(ledgerMessageSchema, value, INTERNAL_MAX_BYTES);
}

export function encodeLedgerMessage(message: LedgerMessage): string {
  return encodeWith(ledgerMessageSchema, 'ledger', message);
}

export function parseShortlistMessage(value: MessageValue): ParseResult<ShortlistMessage> {
  return parseWith(shortlistMessageSchema, value, INTERNAL_MAX_BYTES);
}

export function encodeShortlistMessage(message: ShortlistMessage): string {
  return encodeWith(shortlistMessageSchema, 'shortlist', message);
}
