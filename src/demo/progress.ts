/**
 * The demo's console output: on a terminal, one status line updated in place with ordinary lines
 * printed above it; otherwise (a pipe, a CI log) plain time-stamped lines, the status at most
 * every `plainEveryMs`.
 */

/** Where the lines go: standard output, or anything that writes text (tests). */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  stream?: ProgressStream;
  /** Force the in-place line on or off (default: whether the stream is a TTY). */
  tty?: boolean;
  plainEveryMs?: number;
}

export class ProgressLine {
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly plainEveryMs: number;
  private current = '';
  private lastPlainAt = 0;
  private lastPlain = '';

  constructor(options: ProgressOptions = {}) {
    this.stream = options.stream ?? process.stdout;
    this.tty = options.tty ?? this.stream.isTTY === true;
    this.plainEveryMs = options.plainEveryMs ?? 10_000;
  }

  /** Whether the status line is drawn in place. */
  get inPlace(): boolean {
    return this.tty;
  }

  private fit(line: string): string {
    // A pseudo-terminal without a size reports 0 columns: do not cut then.
    const columns =
      this.stream.columns !== undefined && this.stream.columns >= 40 ? this.stream.columns : 200;
    return line.length < columns ? line : `${line.slice(0, Math.max(10, columns - 2))}…`;
  }

  /** Replaces the status line. */
  update(status: string): void {
    if (this.tty) {
      this.current = this.fit(status);
      this.stream.write(`\r\x1b[2K${this.current}`);
      return;
    }
    const now = Date.now();
    if (status !== this.lastPlain && now - this.lastPlainAt >= this.plainEveryMs) {
      this.lastPlainAt = now;
      this.lastPlain = status;
      this.stream.write(`${stamp()} ${status}\n`);
    }
  }

  /** Prints a line that stays (above the status line). */
  log(line: string): void {
    if (this.tty) {
      this.stream.write(`\r\x1b[2K${line}\n${this.current}`);
    } else {
      this.stream.write(`${stamp()} ${line}\n`);
    }
  }

  /** Ends the status line (it stays on screen). */
  done(): void {
    if (this.tty && this.current !== '') this.stream.write('\n');
    this.current = '';
  }
}

function stamp(): string {
  return new Date().toISOString().slice(11, 19);
}
