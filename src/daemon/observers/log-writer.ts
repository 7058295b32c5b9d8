/**
 * The daemon's log, written from its event stream: one pino line per event of a level other than
 * `none`, with `event` naming it and the event's fields (errors under `err`, through the logger's
 * scrubbing serializer). The rules of what a log may carry are the logger's (observability/logger.ts):
 * no secrets, no source references.
 */
import type { Observable, Subscription } from 'rxjs';
import type { Logger } from 'pino';
import { eventLevel, eventMessage, type DaemonEvent } from '../loop/events.js';

export function writeLog(events$: Observable<DaemonEvent>, log: Logger): Subscription {
  return events$.subscribe((event) => {
    const level = eventLevel(event);
    if (level === 'none') return;
    const { type, ...fields } = event;
    log[level]({ event: type, ...fields }, eventMessage(event));
  });
}
