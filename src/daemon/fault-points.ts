/**
 * Test-only crash points. Fault tests run `acft run` as a child process with
 * `ACFT_FAULT_POINT=<name>` (or `<name>@<n>`, the n-th time the point is reached; 1 by default),
 * and the daemon SIGKILLs itself there: a real crash at a precise place, which no signal sent
 * from outside could time. Unset (always, outside the fault tests), every call is one comparison.
 *
 * The points (docs/state-and-recovery.md):
 * - `after-checkpoint-write`: the checkpoint file is renamed into place, no offset committed yet;
 * - `after-offset-commit`: the offsets the checkpoint includes are committed;
 * - `after-requests-sent`: labeling requests are on their topic, before the next checkpoint;
 * - `after-version-saved`: a window's model version is in the model store, not yet checkpointed
 *   nor published;
 * - `after-version-published`: the version is on `model-versions`, before the checkpoint that
 *   clears it from the outbox;
 * - `during-fine-tune`: the training worker has been handed the window.
 */

/** The names of the crash points. */
export const FAULT_POINTS = [
  'after-checkpoint-write',
  'after-offset-commit',
  'after-requests-sent',
  'after-version-saved',
  'after-version-published',
  'during-fine-tune',
] as const;

export type FaultPoint = (typeof FAULT_POINTS)[number];

function parse(raw: string | undefined): { point: string; nth: number } | undefined {
  if (raw === undefined || raw === '') return undefined;
  const [point = '', nth = '1'] = raw.split('@');
  if (!(FAULT_POINTS as readonly string[]).includes(point) || !/^[1-9]\d*$/.test(nth))
    throw new Error(
      `ACFT_FAULT_POINT must be one of ${FAULT_POINTS.join(', ')} (optionally @n), not '${raw}'`,
    );
  return { point, nth: Number(nth) };
}

const armed = parse(process.env['ACFT_FAULT_POINT']);
let hits = 0;

/** SIGKILLs this process when `ACFT_FAULT_POINT` names `point` (at its n-th hit); else nothing. */
export function faultPoint(point: FaultPoint): void {
  if (armed?.point !== point || ++hits < armed.nth) return;
  process.stderr.write(`acft: fault point '${point}' reached (hit ${hits}): SIGKILL\n`);
  process.kill(process.pid, 'SIGKILL');
}

/** The names of the delay points (see {@link faultDelayMs}). */
export const FAULT_DELAYS = ['election-notice'] as const;

export type FaultDelay = (typeof FAULT_DELAYS)[number];

function parseDelay(raw: string | undefined): { point: string; ms: number } | undefined {
  if (raw === undefined || raw === '') return undefined;
  const [point = '', ms = ''] = raw.split(':');
  if (!(FAULT_DELAYS as readonly string[]).includes(point) || !/^\d+$/.test(ms))
    throw new Error(
      `ACFT_FAULT_DELAY must be <point>:<ms> with a point of ${FAULT_DELAYS.join(', ')}, not '${raw}'`,
    );
  return { point, ms: Number(ms) };
}

const delayed = parseDelay(process.env['ACFT_FAULT_DELAY']);

/**
 * Test-only: how long (ms) to hold back the news at a delay point, from `ACFT_FAULT_DELAY=<point>:<ms>`
 * (0 when unset, always outside the fault tests). `election-notice`: a scale-out instance that
 * finds it was frozen past its session hears of its coordination group's changes that much later
 * (cluster.ts `electionNotice`); the fencing test uses it so that a woken coordinator always tries
 * its write before it knows it lost its term, whatever the load of the machine.
 */
export function faultDelayMs(point: FaultDelay): number {
  return delayed?.point === point ? delayed.ms : 0;
}
