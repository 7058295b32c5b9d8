/**
 * What the daemon benchmark (scripts/bench-daemon.ts) sees of its daemons: their typed events,
 * timestamped as they come, and their log lines, written to the run's log file.
 */
import type { WriteStream } from 'node:fs';
import type { Observable } from 'rxjs';
import { eventLevel, eventMessage, type DaemonEvent } from '../../src/daemon/loop/events.js';
import { createLogger, type Logger } from '../../src/observability/logger.js';
import { abortError } from './support.js';

/** A daemon event, with the moment the benchmark received it. */
export interface LogEvent {
  event: string;
  /** performance.now() when the line was written. */
  at: number;
  /** Date.now() when the line was written. */
  wallMs: number;
  level: string;
  phase: string | undefined;
  fields: Record<string, unknown>;
}

/**
 * What the benchmark sees of its daemons: their typed events (`Daemon.events$`, through
 * {@link observe}), kept with the time they came; and their log, written to `file` (if any).
 */
export class LogTap {
  readonly events: LogEvent[] = [];
  /** The events logged at level error or fatal. */
  readonly errors: LogEvent[] = [];
  private readonly listeners = new Set<(e: LogEvent) => void>();

  constructor(private readonly file?: WriteStream) {}

  /** A logger for one daemon: the project's logger (redaction included) with `phase` on every line. */
  logger(phase: string): Logger {
    return createLogger({
      level: 'info',
      base: { phase },
      destination: { write: (line: string) => this.line(line) },
    });
  }

  private line(text: string): void {
    // A line logged after the file was closed (late shutdown noise) is not written.
    if (this.file?.writable === true) this.file.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** The `observe` option of a daemon of `phase`: its events are kept as they come. */
  observe(phase: string): (events$: Observable<DaemonEvent>) => void {
    return (events$) =>
      void events$.subscribe((event) => {
        const { type, ...fields } = event;
        const e: LogEvent = {
          event: type,
          at: performance.now(),
          wallMs: Date.now(),
          level: eventLevel(event),
          phase,
          fields: { ...fields, msg: eventMessage(event) },
        };
        this.events.push(e);
        if (e.level === 'error' || e.level === 'fatal') this.errors.push(e);
        for (const listener of this.listeners) listener(e);
      });
  }

  /** The first error of `phase` among `events`, with its message. */
  firstError(phase: string, events: readonly string[]): (LogEvent & { message: string }) | undefined {
    const e = this.errors.find((x) => x.phase === phase && events.includes(x.event));
    if (e === undefined) return undefined;
    const msg = e.fields['msg'];
    const err = e.fields['err'] as { message?: unknown } | undefined;
    const detail = typeof err?.message === 'string' ? err.message : '';
    return { ...e, message: `${typeof msg === 'string' ? msg : e.event}${detail ? `: ${detail}` : ''}` };
  }

  /** Events of one phase, optionally of one kind. */
  of(phase: string, event?: string): LogEvent[] {
    return this.events.filter((e) => e.phase === phase && (event === undefined || e.event === event));
  }

  /** The first event (already logged or to come) matching `predicate`. */
  next(
    what: string,
    predicate: (e: LogEvent) => boolean,
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<LogEvent> {
    const found = this.events.find(predicate);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.listeners.delete(listener);
      };
      const listener = (e: LogEvent): void => {
        if (!predicate(e)) return;
        done();
        resolve(e);
      };
      const onAbort = (): void => {
        done();
        reject(abortError(signal, what));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`));
      }, timeoutMs);
      this.listeners.add(listener);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
