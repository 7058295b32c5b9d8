/**
 * How long a test waits for an event, on a machine that may be busy with other work.
 *
 * A wait's budget is spent at the pace the machine can run the code waited on: each moment counts
 * in proportion to the share of a core a runnable thread gets (cores / 1-minute load average,
 * capped at 1). On an idle machine a 60 s budget lasts 60 s; with the load at four times the cores
 * it lasts about four times as long. So a test gives the same verdict on a busy laptop as on an
 * idle runner: it waits for events, and only gives up once the machine has had the time it
 * needed. ACFT_TEST_TIME_SCALE multiplies every budget (e.g. 3 under a debugger or valgrind).
 */
import os from 'node:os';

/** A wait's budget: expired() once `timeoutMs` of the machine's available time has passed. */
export function patience(timeoutMs: number): { expired(): boolean } {
  const scale = Number(process.env['ACFT_TEST_TIME_SCALE'] ?? '1');
  const budget = timeoutMs * (Number.isFinite(scale) && scale > 0 ? scale : 1);
  const cores = os.availableParallelism();
  let spent = 0;
  let last = Date.now();
  return {
    expired(): boolean {
      const now = Date.now();
      const load = os.loadavg()[0] ?? 0;
      spent += (now - last) * Math.min(1, cores / Math.max(load, 1e-6));
      last = now;
      return spent > budget;
    },
  };
}
