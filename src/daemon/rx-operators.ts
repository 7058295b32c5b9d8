/** RxJS operators of the daemon's pipeline. */
import { Observable, filter, map, scan, type OperatorFunction } from 'rxjs';

/**
 * Folds each value into a state with `step`, emitting what each step gives besides the state
 * (Temporal's `mapWithState`, in rxutils.ts). The state has one owner: this operator.
 */
export function mapWithState<S, T, R>(
  step: (state: S, value: T) => { state: S; output: R },
  initial: S,
): OperatorFunction<T, R> {
  return (source) =>
    source.pipe(
      scan((acc: { state: S; output: R | undefined }, value: T) => step(acc.state, value), {
        state: initial,
        output: undefined,
      }),
      map((acc) => acc.output as R),
    );
}

/** The values whose `type` is one of `types`, typed as such. */
export function ofType<K extends string>(
  ...types: K[]
): <T extends { readonly type: string }>(source: Observable<T>) => Observable<Extract<T, { type: K }>> {
  const wanted = new Set<string>(types);
  return <T extends { readonly type: string }>(source: Observable<T>) =>
    source.pipe(filter((v: T): v is Extract<T, { type: K }> => wanted.has(v.type)));
}

/**
 * Runs `work` on the incoming batches one call at a time; batches that arrive while a call runs
 * are merged (up to `maxBatch` items) into the next call. Under load this turns many small
 * micro-batches into few large ones, which a batched scorer runs far faster; when idle, each
 * micro-batch is worked on as soon as it comes. Emits each call's result; `work` must not reject
 * (it reports its failures in its result).
 */
export function mergeWhileBusy<T, R>(
  work: (items: T[]) => Promise<R>,
  maxBatch: number,
): OperatorFunction<readonly T[], R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      const pending: T[] = [];
      let busy = false;
      let sourceDone = false;
      const run = async () => {
        busy = true;
        while (pending.length > 0 && !subscriber.closed) {
          const batch = pending.splice(0, maxBatch);
          subscriber.next(await work(batch));
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
