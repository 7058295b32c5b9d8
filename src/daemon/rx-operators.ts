/** RxJS operators of the daemon's pipeline. */
import { Observable, type OperatorFunction } from 'rxjs';

/**
 * Collects the items of incoming arrays into buffers of at most `maxSize`: a buffer goes out when
 * it is full, or `maxWaitMs` after its first item came. Like `bufferTime(maxWaitMs, null, maxSize)`
 * over single items, but the source sends arrays (the intake sends the ids of a whole chunk at
 * once: one emission per chunk instead of one per candidate), and no empty buffer is emitted.
 */
export function bufferItems<T>(maxWaitMs: number, maxSize: number): OperatorFunction<readonly T[], T[]> {
  return (source) =>
    new Observable<T[]>((subscriber) => {
      let buffer: T[] = [];
      let timer: ReturnType<typeof setTimeout> | undefined;
      const flush = () => {
        if (timer !== undefined) clearTimeout(timer);
        timer = undefined;
        if (buffer.length === 0) return;
        const out = buffer;
        buffer = [];
        subscriber.next(out);
      };
      const subscription = source.subscribe({
        next: (items) => {
          for (const item of items) {
            buffer.push(item);
            if (buffer.length >= maxSize) flush();
          }
          if (buffer.length > 0 && timer === undefined) timer = setTimeout(flush, maxWaitMs);
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => {
          flush();
          subscriber.complete();
        },
      });
      return () => {
        if (timer !== undefined) clearTimeout(timer);
        subscription.unsubscribe();
      };
    });
}

/**
 * Runs `work` on the incoming batches one call at a time; batches that arrive while a call runs
 * are merged (up to `maxBatch` items) into the next call. Under load this turns many small
 * micro-batches into few large ones, which a batched scorer runs far faster; when idle, each
 * micro-batch is worked on as soon as it comes. Errors of `work` are its own business (it should
 * catch them); the output emits the size of each call.
 */
export function mergeWhileBusy<T>(
  work: (items: T[]) => Promise<void>,
  maxBatch: number,
): OperatorFunction<readonly T[], number> {
  return (source) =>
    new Observable<number>((subscriber) => {
      const pending: T[] = [];
      let busy = false;
      let sourceDone = false;
      const run = async () => {
        busy = true;
        while (pending.length > 0 && !subscriber.closed) {
          const batch = pending.splice(0, maxBatch);
          await work(batch);
          subscriber.next(batch.length);
        }
        busy = false;
        if (sourceDone) subscriber.complete();
      };
      const subscription = source.subscribe({
        next: (items) => {
          pending.push(...items);
          if (!busy) void run();
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => {
          sourceDone = true;
          if (!busy) subscriber.complete();
        },
      });
      return () => subscription.unsubscribe();
    });
}
