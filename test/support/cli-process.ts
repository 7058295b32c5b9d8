/**
 * An `acft` command (or a script) as a child process with its output kept line by line, for tests
 * of the tools around the daemon: the simulator, `kafka:start`.
 */
import { Child, onLines } from './child.js';
import { patience } from './patience.js';

export class CliProcess extends Child {
  readonly lines: string[] = [];

  /** Runs `node --import tsx <script> ...args` in the repository (script: a path from its root). */
  constructor(script: string, args: readonly string[], env: Record<string, string> = {}) {
    super(script, args, env);
    for (const stream of [this.child.stdout!, this.child.stderr!])
      onLines(stream, (line) => this.lines.push(line));
  }

  /** Waits for a line matching `pattern`; fails early when the process exits first. */
  async waitForLine(pattern: RegExp, timeoutMs = 120_000): Promise<string> {
    const budget = patience(timeoutMs);
    for (;;) {
      const found = this.lines.find((l) => pattern.test(l));
      if (found !== undefined) return found;
      if (!this.running)
        throw new Error(`exited (${JSON.stringify(this.exit)}) before ${pattern}:\n${this.tail()}`);
      if (budget.expired()) throw new Error(`timed out waiting for ${pattern}:\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  tail(n = 30): string {
    return this.lines.slice(-n).join('\n');
  }
}
