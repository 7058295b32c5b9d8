/**
 * What must hold across crashes besides the accounting (test/support/accounting.ts), judged from
 * what the daemon published and logged:
 *
 * - one request at a time per candidate: a second request id for a candidate is only published
 *   once the first was answered or its lease had ended;
 * - no version id published twice;
 * - the served version never moves backwards: once a version is on `model-versions`, no run serves
 *   a version published before it (or M0) afterwards.
 */
import assert from 'node:assert/strict';
import type { LabelingRequestMessage, ModelVersionMessage } from '../../src/messages/index.js';
import type { LogLine } from './daemon-process.js';

/** An answer seen on the feedback topic: the request it answers, when it was given. */
export interface Answer {
  readonly candidateId: string;
  readonly requestId?: string;
  readonly timeMs: number;
}

/** Violations of "one request at a time per candidate" (empty when it holds). */
export function concurrentRequests(
  requests: readonly LabelingRequestMessage[],
  answers: readonly Answer[],
): string[] {
  const byCandidate = new Map<string, LabelingRequestMessage[]>();
  for (const r of requests) {
    const list = byCandidate.get(r.candidateId) ?? [];
    if (!list.some((x) => x.requestId === r.requestId)) list.push(r); // a resend of the same request is one
    byCandidate.set(r.candidateId, list);
  }
  const answered = new Map<string, number>();
  for (const a of answers) {
    const key = `${a.candidateId}\u0000${a.requestId ?? ''}`;
    answered.set(key, Math.min(answered.get(key) ?? Infinity, a.timeMs));
  }
  const out: string[] = [];
  for (const [candidateId, list] of byCandidate) {
    const sorted = [...list].sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      const next = sorted[i]!;
      const nextAt = Date.parse(next.time);
      const answeredAt = answered.get(`${candidateId}\u0000${prev.requestId}`) ?? Infinity;
      const lapsedAt = Date.parse(prev.leaseExpiresAt);
      if (answeredAt > nextAt && lapsedAt > nextAt)
        out.push(
          `${candidateId}: ${next.requestId} at ${next.time} while ${prev.requestId} (${prev.time}) was outstanding`,
        );
    }
  }
  return out;
}

/** Asserts that no version id is on `model-versions` twice. */
export function assertVersionsOnce(versions: readonly ModelVersionMessage[]): void {
  const ids = versions.map((v) => v.version);
  const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
  assert.deepEqual(twice, [], `versions published twice: ${twice.join(', ')}`);
}

/**
 * Violations of "the served version never moves backwards" (empty when it holds): every `serving`
 * event of every run, in time order, against the publication order of the versions.
 */
export function servedBackwards(
  runs: readonly (readonly LogLine[])[],
  versions: readonly ModelVersionMessage[],
): string[] {
  const published = new Map<string, { index: number; atMs: number }>();
  versions.forEach((v, index) => {
    if (v.status === 'promoted' && !published.has(v.version))
      published.set(v.version, { index, atMs: Date.parse(v.time) });
  });
  const serving = runs
    .flatMap((lines, run) =>
      lines
        .filter(
          (l) => l.event === 'serving' && typeof l['version'] === 'string' && typeof l['time'] === 'string',
        )
        .map((l) => ({ run, version: l['version'] as string, atMs: Date.parse(l['time'] as string) })),
    )
    .sort((a, b) => a.atMs - b.atMs);
  const out: string[] = [];
  for (const s of serving) {
    // The newest version published before this moment.
    let newest: { version: string; index: number } | undefined;
    for (const [version, p] of published)
      if (p.atMs <= s.atMs && (newest === undefined || p.index > newest.index))
        newest = { version, index: p.index };
    if (newest === undefined) continue;
    const mine = published.get(s.version);
    // Serving an unpublished version (M0, or one whose window has not published it yet) or an
    // older one after `newest` was out is going back.
    if (mine === undefined ? true : mine.index < newest.index) {
      if (mine === undefined && !s.version.startsWith('m0-') && published.size > 0) {
        // A version served before its publication (the window serves, checkpoints, then publishes):
        // forward, unless it is never published at all.
        if (versions.some((v) => v.version === s.version)) continue;
      }
      out.push(
        `run ${s.run + 1} served ${s.version} at ${new Date(s.atMs).toISOString()} after ${newest.version} was published`,
      );
    }
  }
  return out;
}
