/**
 * Things to stop, in reverse order of starting: each step runs once and is bounded in time, and
 * one that fails or hangs is logged and passed over, so that the rest still run. Used by the demo
 * and the benchmarks, which start brokers, daemons and simulators and must leave none behind.
 */
export class Cleanups {
  private readonly steps: { name: string; run: () => Promise<unknown> }[] = [];

  constructor(private readonly stepTimeoutMs = 120_000) {}

  add(name: string, run: () => Promise<unknown>): void {
    this.steps.push({ name, run });
  }

  /** Steps registered so far: a mark for {@link runFrom}. */
  get size(): number {
    return this.steps.length;
  }

  /** Runs (and forgets) every step registered after `mark`, the last first. */
  async runFrom(mark: number, log: (line: string) => void): Promise<void> {
    while (this.steps.length > mark) {
      const step = this.steps.pop()!;
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          step.run(),
          new Promise((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`no answer after ${this.stepTimeoutMs / 1000} s`)),
              this.stepTimeoutMs,
            );
          }),
        ]);
      } catch (error) {
        log(`${step.name} failed: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        clearTimeout(timer);
      }
    }
  }

  /** Runs every step, the last first. */
  runAll(log: (line: string) => void): Promise<void> {
    return this.runFrom(0, log);
  }
}
