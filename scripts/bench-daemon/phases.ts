/**
 * The phases of the daemon benchmark (scripts/bench-daemon.ts), each on topics, a consumer group
 * and state directories of its own, with an in-process daemon (its scoring and training run in
 * worker threads) and the simulator or a plain producer on the other side:
 *
 * - pool (phases/pool.ts): the simulator streams N candidates at a set rate into a daemon whose
 *   pool holds N; ingest rate, scoring latency of new candidates, bytes per pooled candidate. Then,
 *   with the pool full, a promoted model version (a stored copy of the served model under a new id)
 *   is published and the full-pool rescore it starts is timed (phases/rescore.ts); then new
 *   candidates are sent one at a time into the full pool, their latency with nothing queued before
 *   them (phases/probe.ts).
 * - backlog (phases/backlog.ts): N candidates produced before a fresh daemon starts; the rate at
 *   which it drains them (its ingest capacity, with scoring running alongside); then N more, for
 *   the marginal memory of a pooled candidate. More rounds of that rate: phases/ingest-round.ts.
 * - windows (phases/windows.ts): a small daemon and the simulator answering requests after a short
 *   delay; the time from the b-th trainable label to the model version of each window.
 *
 * What they share: context.ts (options, context, a phase's daemon settings), instrumented.ts (a
 * daemon with taps on its metrics), timeline.ts (counters over time, rates), support.ts.
 */
export { benchContext, type BenchContext, type BenchOptions } from './context.js';
export { backlogPhase, type BacklogPhaseReport, type MarginalMemoryReport } from './phases/backlog.js';
export { ingestRoundConfig, ingestRoundPhase } from './phases/ingest-round.js';
export { poolPhase, type MemoryReport, type PoolPhaseReport } from './phases/pool.js';
export type { ProbeReport } from './phases/probe.js';
export type { RescoreReport } from './phases/rescore.js';
export { windowsPhase, type WindowSample, type WindowsPhaseReport } from './phases/windows.js';
