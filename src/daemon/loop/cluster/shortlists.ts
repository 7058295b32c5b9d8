/**
 * Shortlists (scale-out): every instance publishes the top ω·b of its pool to the coordination
 * topic every `cluster.shortlistIntervalMs`; the coordinator keeps the latest of each instance,
 * fresh for `cluster.shortlistMaxAgeMs` by its own clock, and selects from them merged.
 */
import { shortlistOf } from '../../../core/shortlist.js';
import { encodeShortlistMessage, pooledScoreOf, requestScoresOf } from '../../../messages/index.js';
import type { Effect, Input } from '../io.js';
import type { DaemonState, LoopContext } from '../state.js';
import { isCoordinator } from './versions.js';
import type { ClusterState } from './state.js';

/** Publishes this instance's shortlist when it is due. */
export function publishShortlist(state: DaemonState, ctx: LoopContext, now: number, out: Effect[]): void {
  const c = state.cluster as ClusterState;
  if (now - c.lastShortlistAtMs < ctx.config.cluster.shortlistIntervalMs) return;
  c.lastShortlistAtMs = now;
  const size = Math.ceil(ctx.config.selection.omega * ctx.config.selection.b);
  const entries = shortlistOf(state.labeling.pool, size).map((e) => ({
    candidateId: e.candidateId,
    scores: requestScoresOf(e.score),
    modelVersion: e.score.modelVersion,
    scoredAt: new Date(e.score.scoredAtMs).toISOString(),
  }));
  out.push({
    type: 'publish-shortlist',
    message: {
      key: c.instanceId,
      value: encodeShortlistMessage({
        schema: 'acft.shortlist/v1',
        instanceId: c.instanceId,
        servedVersion: state.served.version,
        partitions: [...c.ownedCandidates],
        entries,
        time: new Date(now).toISOString(),
      }),
    },
  });
}

/** On the coordinator: an instance's shortlist, the latest of it kept. */
export function onShortlist(
  state: DaemonState,
  ctx: LoopContext,
  input: Extract<Input, { type: 'shortlist' }>,
  out: Effect[],
): boolean {
  const c = state.cluster as ClusterState;
  if (!isCoordinator(state)) return false;
  const m = input.message;
  // Scores of a version that is not on model-versions (a fenced coordinator's, served before its
  // publication was refused) are not drawn from: no request names a version no one can load.
  const published = (v: string) => v === ctx.m0.version || state.publishedVersions.has(v);
  const refused = m.entries.filter((e) => !published(e.modelVersion));
  if (refused.length > 0)
    out.push({
      type: 'emit',
      event: {
        type: 'shortlist-refused',
        instance: m.instanceId,
        entries: refused.length,
        versions: [...new Set(refused.map((e) => e.modelVersion))],
      },
    });
  c.shortlists.set(m.instanceId, {
    instanceId: m.instanceId,
    // The coordinator's clock decides freshness: instances' clocks may differ.
    sentAtMs: input.now,
    entries: m.entries
      .filter((e) => published(e.modelVersion))
      .map((e) => ({
        candidateId: e.candidateId,
        score: pooledScoreOf(e.scores, e.modelVersion, Date.parse(e.scoredAt)),
      })),
  });
  let fresh = 0;
  for (const s of c.shortlists.values())
    if (input.now - s.sentAtMs <= ctx.config.cluster.shortlistMaxAgeMs) fresh++;
  out.push({ type: 'emit', event: { type: 'coordinator-shortlists', fresh } });
  return true;
}
