/**
 * `acft run` as a child process, for fault tests: a SIGKILL is a real crash, and the exit code is
 * the real one. Its pino JSON lines are parsed as they come.
 */
import { Child, onLines, type ChildExit } from './child.js';
import { patience } from './patience.js';

/** One log line of the daemon (pino JSON). */
/** A log line of the daemon: `level` is a word (`info`, `warn`, `error`, ...). */
export type LogLine = Record<string, unknown> & { event?: string; msg?: string; level?: string };

/** A line at error level or above. */
export function isErrorLine(line: { level?: unknown }): boolean {
  return line.level === 'error' || line.level === 'fatal';
}

export type DaemonExit = ChildExit;

export class DaemonProcess extends Child {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];

  constructor(env: Record<string, string>, wrap: string[] = []) {
    super('src/cli/main.ts', ['run'], { ACFT_LOG_LEVEL: 'info', ...env }, wrap);
    onLines(this.child.stdout!, (line) => {
      try {
        this.lines.push(JSON.parse(line) as LogLine);
      } catch {
        this.lines.push({ msg: line });
      }
      if (process.env['ACFT_TEST_LOG']) process.stderr.write(`[daemon ${this.child.pid}] ${line}\n`);
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr.push(chunk);
      if (process.env['ACFT_TEST_LOG']) process.stderr.write(`[daemon ${this.child.pid} stderr] ${chunk}`);
    });
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

  tail(n = 30): string {
    return [
      ...this.lines.slice(-n).map((l) => JSON.stringify(l)),
      ...this.stderr.join('').split('\n').slice(-n),
    ].join('\n');
  }
}
