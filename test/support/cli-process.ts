/**
 * An `acft` command (or a script) as a child process with its output kept line by line, for tests
 * of the tools around the daemon: the simulator, `kafka:start`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { patience } from './patience.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

export interface CliExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class CliProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<CliExit>;
  private readonly child: ChildProcess;
  private exit: CliExit | undefined;

  /** Runs `node --import tsx <script> ...args` in the repository (script: a path from its root). */
  constructor(script: string, args: readonly string[], env: Record<string, string> = {}) {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ACFT_')));
    this.child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: REPO,
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      let buffered = '';
      stream.setEncoding('utf8').on('data', (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          this.lines.push(buffered.slice(0, nl));
          buffered = buffered.slice(nl + 1);
        }
      });
    }
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
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

  /** SIGTERM and wait (SIGKILL after `graceMs`). */
  async stop(graceMs = 30_000): Promise<CliExit> {
    if (!this.running) return this.exit!;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  tail(n = 30): string {
    return this.lines.slice(-n).join('\n');
  }
}
