/**
 * The daemon's log events that other programs read, typed: each is one pino JSON line whose
 * `event` field names it. A test or a tool that runs `acft run` as a child process parses its
 * lines with these schemas instead of matching text (the rest of a line is pino's: level, time,
 * pid, msg). Every id in them is an opaque candidate id; source references never appear.
 */
import { z } from 'zod';
import { DROP_REASONS } from '../core/pool.js';

/** Candidates that left the pool unlabeled, with why: one line per intake chunk or tick. */
export const candidatesDroppedEvent = z.object({
  event: z.literal('candidates-dropped'),
  reason: z.enum(DROP_REASONS),
  count: z.int().min(1),
  ids: z.array(z.string()),
});
export type CandidatesDroppedEvent = z.infer<typeof candidatesDroppedEvent>;

/** A message dead-lettered (queued for the dead-letter topic), by its position. */
export const deadLetterEvent = z.object({
  event: z.literal('dead-letter'),
  reason: z.string(),
  topic: z.string(),
  partition: z.int(),
  offset: z.int(),
});
export type DeadLetterEvent = z.infer<typeof deadLetterEvent>;

/** A broker outage began (no broker answer, or a request failing). */
export const brokerOutageEvent = z.object({
  event: z.literal('broker-outage'),
  cause: z.string(),
});

/** A broker outage ended, after `durationMs`. */
export const brokerOutageEndedEvent = z.object({
  event: z.literal('broker-outage-ended'),
  durationMs: z.number().min(0),
});

/** A partition's group commit differed from the state's position at an assignment. */
export const offsetsReconciledEvent = z.object({
  event: z.literal('offsets-reconciled'),
  topic: z.string(),
  partition: z.int(),
  committed: z.int().nullable(),
  position: z.int(),
});

/** The lines of `lines` that are `schema`'s event, parsed (other lines and malformed ones are skipped). */
export function eventsOf<T>(lines: readonly unknown[], schema: z.ZodType<T>): T[] {
  const out: T[] = [];
  for (const line of lines) {
    const parsed = schema.safeParse(line);
    if (parsed.success) out.push(parsed.data);
  }
  return out;
}
