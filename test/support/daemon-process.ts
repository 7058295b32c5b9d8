/**
 * `acft run` as a child process, for fault tests: a SIGKILL is a real crash, and the exit code is
 * the real one. Its pino JSON lines are parsed as they come.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { patience } from './patience.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** One log line of the daemon (pino JSON). */
export type LogLine = Record<string, unknown> & { event?: string; msg?: string; level?: number };

export interface DaemonExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class DaemonProcess {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<DaemonExit>;
  private readonly child: ChildProcess;
  private exit: DaemonExit | undefined;

  constructor(env: Record<string, string>, wrap: string[] = []) {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ACFT_')));
    const argv = [process.execPath, '--import', 'tsx', 'src/cli/main.ts', 'run'];
    const [command, ...args] = [...wrap, ...argv] as [string, ...string[]];
    this.child = spawn(command, args, {
      cwd: REPO,
      env: { ...base, ACFT_LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buffered = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ msg: line });
        }
        if (process.env['ACFT_TEST_LOG']) process.stderr.write(`[daemon ${this.child.pid}] ${line}\n`);
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr.push(chunk);
      if (process.env['ACFT_TEST_LOG']) process.stderr.write(`[daemon ${this.child.pid} stderr] ${chunk}`);
    });
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

  /** The lines of one event. */
  events(event: string): LogLine[] {
    return this.lines.filter((l) => l.event === event);
  }

  /** Waits for a log line; fails early when the daemon exits first. */
  async waitForEvent(
    event: string,
    timeoutMs = 120_000,
    where: (l: LogLine) => boolean = () => true,
  ): Promise<LogLine> {
    const budget = patience(timeoutMs);
    for (;;) {
      const found = this.lines.find((l) => l.event === event && where(l));
      if (found) return found;
      if (!this.running)
        throw new Error(`daemon exited (${JSON.stringify(this.exit)}) before '${event}':\n${this.tail()}`);
      if (budget.expired()) throw new Error(`timed out waiting for '${event}':\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The /metrics, /readyz server's base URL. */
  async url(): Promise<string> {
    return String((await this.waitForEvent('http-started'))['url']);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGTERM and wait (SIGKILL after `graceMs`). */
  async stop(graceMs = 60_000): Promise<DaemonExit> {
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
    return [
      ...this.lines.slice(-n).map((l) => JSON.stringify(l)),
      ...this.stderr.join('').split('\n').slice(-n),
    ].join('\n');
  }
}
