/**
 * A child process of a test (`acft run`, `acft simulate`, `kafka:start`): spawned as
 * `node --import tsx <script> ...args` in the repository, without the test's own ACFT_* variables
 * (the daemon refuses unknown ones), with its exit, signals and a graceful stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Calls `each` with every complete line `stream` writes, as it comes. */
export function onLines(stream: NodeJS.ReadableStream, each: (line: string) => void): void {
  let buffered = '';
  stream.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      each(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
  });
}

export abstract class Child {
  readonly exited: Promise<ChildExit>;
  protected readonly child: ChildProcess;
  protected exit: ChildExit | undefined;

  /** Runs `[...wrap, node, --import, tsx, script, ...args]` with `env` over the test's environment. */
  protected constructor(
    script: string,
    args: readonly string[],
    env: Record<string, string>,
    wrap: readonly string[] = [],
  ) {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ACFT_')));
    const [command, ...rest] = [...wrap, process.execPath, '--import', 'tsx', script, ...args] as [
      string,
      ...string[],
    ];
    this.child = spawn(command, rest, {
      cwd: REPO,
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
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

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGTERM and wait (SIGKILL after `graceMs`). */
  async stop(graceMs = 60_000): Promise<ChildExit> {
    if (!this.running) return this.exit!;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
