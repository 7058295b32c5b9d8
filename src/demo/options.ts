/**
 * What `acft demo` is asked, what it returns, and what every step of it shares: the options, the
 * phase clock (demo.json's seconds per phase) and the check for Ctrl-C.
 */
import type { BackendRequest } from '../model/backend.js';
import type { ProgressLine } from './progress.js';
import type { DemoResult } from './result.js';

export interface DemoOptions {
  /** Stop once the daemon has published a version trained with this many labels. */
  labels: number;
  b: number;
  m: number;
  epochs: number;
  /** Candidates per second, and how many in all. */
  rate: number;
  candidates: number;
  answerDelayMs: number;
  evalSize: number;
  seed: number;
  /** Where report.html, demo.json and run-<time>/ go. */
  out: string;
  /** The daemon's /metrics port; undefined: 9464 when free, else any free port. */
  httpPort: number | undefined;
  backend: BackendRequest;
  /** M0 directory (default: the bundled one). */
  m0?: string;
  baseline: boolean;
  /** Give up waiting for the labels after this long (the report shows what there is). */
  maxMinutes: number;
  /** Candidates at each end of the gallery. */
  galleryCount: number;
}

export interface DemoOutcome {
  result: DemoResult;
  reportPath: string;
  jsonPath: string;
}

/** Thrown when Ctrl-C stopped the demo (everything was shut down). */
export class DemoInterruptedError extends Error {
  override readonly name = 'DemoInterruptedError';
}

/** Between steps: stops the demo with {@link DemoInterruptedError} once Ctrl-C was pressed. */
export function throwIfInterrupted(signal: AbortSignal): void {
  if (signal.aborted) throw new DemoInterruptedError('interrupted');
}

/** Wall-clock seconds of each phase, in the order they ended: demo.json's `seconds`. */
export class PhaseClock {
  readonly seconds: Record<string, number> = {};
  readonly t0 = Date.now();
  private phaseStart = this.t0;

  /** Ends the current phase under `name`; the next one starts now. */
  end(name: string): void {
    const now = Date.now();
    this.seconds[name] = (now - this.phaseStart) / 1000;
    this.phaseStart = now;
  }

  /** Records the whole run's seconds as `total`. */
  endTotal(): void {
    this.seconds['total'] = (Date.now() - this.t0) / 1000;
  }
}

/** What every step of the demo is given. */
export interface DemoContext {
  readonly o: DemoOptions;
  readonly ui: ProgressLine;
  readonly signal: AbortSignal;
  /** run-<time>/: the daemon's state and models, the logs. */
  readonly runDir: string;
  readonly phases: PhaseClock;
}
