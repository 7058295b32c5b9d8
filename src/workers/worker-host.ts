/**
 * A small typed request/response RPC over `worker_threads`, for the model services that must keep
 * tfjs off the main event loop.
 *
 * - The host side ({@link WorkerHost}) starts the worker lazily, numbers every call, and matches
 *   replies by id. Buffers named in a call's transfer list move to the worker (no copy).
 * - When the worker throws an uncaught error or exits, every call still pending on it is
 *   rejected with a {@link WorkerCrashedError} (its `cause` says why); the next call starts a new
 *   worker, and the host's `onStart` hook runs first so that the worker gets its state back.
 * - The worker side ({@link serveRpc}) runs calls strictly one at a time, in arrival order, so a
 *   state change (a model swap) applies exactly to the calls posted after it.
 * - `close()` terminates the worker, rejects what is pending with {@link WorkerClosedError}, and
 *   returns one memoized promise.
 */
import path from 'node:path';
import { Worker, parentPort, type TransferListItem, type WorkerOptions } from 'node:worker_threads';

/** One RPC method: what it takes and what it resolves to. */
export interface RpcMethod<P, R> {
  params: P;
  result: R;
}

/** A worker's API: method name to {@link RpcMethod}. Declare it with `type`, not `interface`. */
export type RpcApi = Record<string, RpcMethod<unknown, unknown>>;

/** Methods every worker served by {@link serveRpc} answers; for tests of the host and services. */
export type BuiltinApi = {
  /** Makes the worker die: an uncaught exception ('throw') or `process.exit(3)` ('exit'). */
  __crash: RpcMethod<{ mode: 'throw' | 'exit' }, never>;
  /** Returns its params; the buffers of top-level typed-array values are transferred back. */
  __echo: RpcMethod<Record<string, unknown>, Record<string, unknown>>;
};

/** A reply that moves some buffers back to the host instead of copying them. */
export class Transferred<T> {
  constructor(
    readonly value: T,
    readonly transfer: readonly TransferListItem[],
  ) {}
}

/** Wraps a handler's reply so that `transfer` moves (not copies) to the host. */
export function transferred<T>(value: T, transfer: readonly TransferListItem[]): Transferred<T> {
  return new Transferred(value, transfer);
}

/** What the worker side implements: one handler per method, run one call at a time. */
export type RpcHandlers<Api extends RpcApi> = {
  [K in keyof Api]: (
    params: Api[K]['params'],
  ) =>
    | Api[K]['result']
    | Transferred<Api[K]['result']>
    | Promise<Api[K]['result'] | Transferred<Api[K]['result']>>;
};

/** Base of the worker errors: a stable code and whether retrying the same call may succeed. */
export abstract class WorkerError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;
}

/**
 * The worker died (uncaught exception, `process.exit`, failed start) while the call was pending
 * or before it could be posted. The next call starts a new worker, so a retry may succeed.
 */
export class WorkerCrashedError extends WorkerError {
  readonly code = 'worker-crashed';
  readonly retryable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WorkerCrashedError';
  }
}

/** The host was closed; the call was abandoned. */
export class WorkerClosedError extends WorkerError {
  readonly code = 'worker-closed';
  readonly retryable = false;
  constructor(message: string) {
    super(message);
    this.name = 'WorkerClosedError';
  }
}

/**
 * The call's handler threw in the worker; the worker lives on. The remote error's name, code and
 * stack are kept (the message is the remote message).
 */
export class WorkerTaskError extends WorkerError {
  readonly code = 'worker-task-failed';
  readonly retryable = false;
  readonly remoteName: string;
  readonly remoteCode: string | undefined;
  readonly remoteStack: string | undefined;
  /** The method whose handler threw. */
  readonly method: string;
  constructor(method: string, remote: SerializedError) {
    super(remote.message);
    this.name = 'WorkerTaskError';
    this.method = method;
    this.remoteName = remote.name;
    this.remoteCode = remote.code;
    this.remoteStack = remote.stack;
  }
}

interface SerializedError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

type ToWorker = { kind: 'call'; id: number; method: string; params: unknown };
type FromWorker =
  | { kind: 'ready'; info: unknown }
  | { kind: 'result'; id: number; value: unknown }
  | { kind: 'error'; id: number; error: SerializedError };

/**
 * The URL of the module `name` next to the module at `base` (an `import.meta.url`), with the
 * same extension: `.js` in dist, `.ts` when running from the sources under tsx.
 */
export function siblingModuleUrl(base: string, name: string): URL {
  const ext = path.extname(new URL(base).pathname);
  return new URL(`./${name}${ext}`, base);
}

/**
 * Starts a worker thread on the module at `url`. A `.js` module starts directly; a `.ts` module
 * (tests and development, under tsx) starts through a small eval boot that registers tsx's ESM
 * loader in the worker first.
 */
export function startModuleWorker(
  url: URL,
  workerData?: unknown,
  options: Omit<WorkerOptions, 'eval' | 'workerData'> = {},
): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { ...options, workerData });
  let tsxApi = 'tsx/esm/api';
  try {
    // Absolute, so that the boot works whatever the process's working directory.
    tsxApi = import.meta.resolve(tsxApi);
  } catch {
    // Left bare: resolved from the working directory.
  }
  const boot =
    `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); ` +
    `return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { ...options, eval: true, workerData });
}

export interface WorkerHostOptions {
  /** The worker module (see {@link siblingModuleUrl}); it must call {@link serveRpc}. */
  url: URL;
  workerData?: unknown;
  /** For error messages. */
  name?: string;
  /**
   * Runs on every start of the worker, after it is ready and before any queued call is posted:
   * the place to hand a restarted worker the state it needs. If it fails, that worker is ended
   * and the calls waiting for it are rejected with a {@link WorkerCrashedError}.
   */
  onStart?: (worker: StartingWorker) => Promise<void>;
  resourceLimits?: WorkerOptions['resourceLimits'];
}

/** The worker being started, as the `onStart` hook sees it. */
export interface StartingWorker {
  /** What the worker passed to {@link serveRpc} as its ready info. */
  info: unknown;
  /** A call on this worker, posted now (not queued behind the start). */
  call: (method: string, params: unknown, transfer?: readonly TransferListItem[]) => Promise<unknown>;
}

interface Pending {
  method: string;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** One started worker thread; a restart makes a new one. */
interface Incarnation {
  worker: Worker;
  pending: Map<number, Pending>;
  /** Resolves with the ready info once the worker has served `ready` and `onStart` has run. */
  ready: Promise<unknown>;
  /** Set once the worker is dead or dying: the error every later call on it gets. */
  failure: WorkerError | undefined;
  /** The first error the worker reported ('error' or 'messageerror'). */
  error: unknown;
  /** Rejects the start (a no-op once started). */
  bootFailed: (error: unknown) => void;
}

/** The host side of the RPC; see the module comment. */
export class WorkerHost<Api extends RpcApi> {
  private current: Incarnation | undefined;
  private closed: Promise<void> | undefined;
  private nextId = 1;
  private startCount = 0;
  private readyInfo: unknown;

  constructor(private readonly options: WorkerHostOptions) {}

  /** How many times a worker was started (1 after the first start; more after crashes). */
  get starts(): number {
    return this.startCount;
  }

  /** Calls posted and not yet answered. */
  get pendingCalls(): number {
    return this.current?.pending.size ?? 0;
  }

  /** The ready info of the latest started worker (undefined before the first start). */
  get info(): unknown {
    return this.readyInfo;
  }

  /** Starts the worker now, rather than on the first call; resolves with its ready info. */
  async start(): Promise<unknown> {
    if (this.closed) throw this.closedError();
    return (this.current ?? this.spawn()).ready;
  }

  /**
   * Calls `method` in the worker. Buffers in `transfer` move to the worker and are detached
   * here. Rejects with {@link WorkerTaskError} if the handler throws, {@link WorkerCrashedError}
   * if the worker dies first, {@link WorkerClosedError} once the host is closed.
   */
  async call<K extends keyof (Api & BuiltinApi) & string>(
    method: K,
    params: (Api & BuiltinApi)[K]['params'],
    transfer: readonly TransferListItem[] = [],
  ): Promise<(Api & BuiltinApi)[K]['result']> {
    if (this.closed) throw this.closedError();
    const inc = this.current ?? this.spawn();
    await inc.ready;
    if (this.closed) throw this.closedError();
    return this.post(inc, method, params, transfer) as Promise<(Api & BuiltinApi)[K]['result']>;
  }

  /** Terminates the worker; pending and later calls reject with {@link WorkerClosedError}. Idempotent. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      const inc = this.current;
      this.current = undefined;
      if (inc === undefined) return;
      this.fail(inc, this.closedError());
      await inc.worker.terminate();
    })();
    return this.closed;
  }

  private closedError(): WorkerClosedError {
    return new WorkerClosedError(`${this.options.name ?? 'worker'} is closed`);
  }

  private spawn(): Incarnation {
    const name = this.options.name ?? 'worker';
    const worker = startModuleWorker(this.options.url, this.options.workerData, {
      ...(this.options.resourceLimits ? { resourceLimits: this.options.resourceLimits } : {}),
      name,
    });
    this.startCount++;
    let booted!: (info: unknown) => void;
    let bootFailed!: (error: unknown) => void;
    const boot = new Promise<unknown>((resolve, reject) => {
      booted = resolve;
      bootFailed = reject;
    });
    const inc: Incarnation = {
      worker,
      pending: new Map(),
      ready: boot,
      failure: undefined,
      error: undefined,
      bootFailed,
    };
    this.current = inc;

    worker.on('message', (msg: FromWorker) => {
      if (msg.kind === 'ready') {
        booted(msg.info);
        return;
      }
      const pending = inc.pending.get(msg.id);
      if (pending === undefined) return;
      inc.pending.delete(msg.id);
      if (msg.kind === 'result') pending.resolve(msg.value);
      else pending.reject(new WorkerTaskError(pending.method, msg.error));
    });
    worker.on('error', (error) => {
      inc.error ??= error;
      this.fail(inc, this.crashedError(inc, `${name} crashed: ${errorText(error)}`));
    });
    worker.on('messageerror', (error) => {
      inc.error ??= error;
      this.fail(inc, this.crashedError(inc, `${name} sent a message that could not be read`));
      void worker.terminate();
    });
    worker.on('exit', (code) => {
      this.fail(
        inc,
        this.crashedError(
          inc,
          inc.error === undefined
            ? `${name} exited with code ${code}`
            : `${name} crashed: ${errorText(inc.error)}`,
        ),
      );
    });

    inc.ready = boot.then(async (info) => {
      this.readyInfo = info;
      const onStart = this.options.onStart;
      if (onStart !== undefined) {
        try {
          await onStart({
            info,
            call: (method, params, transfer) => this.post(inc, method, params, transfer),
          });
        } catch (cause) {
          const failure = new WorkerCrashedError(`${name} could not be prepared: ${errorText(cause)}`, {
            cause,
          });
          this.fail(inc, failure);
          void worker.terminate();
          throw failure;
        }
      }
      return info;
    });
    // A start that fails is reported to the calls that wait for it, not as an unhandled rejection.
    inc.ready.catch(() => undefined);
    return inc;
  }

  private crashedError(inc: Incarnation, message: string): WorkerCrashedError {
    return new WorkerCrashedError(message, { cause: inc.error });
  }

  /** Marks the worker dead (once) and rejects everything pending on it. */
  private fail(inc: Incarnation, error: WorkerError): void {
    if (inc.failure !== undefined) return;
    inc.failure = error;
    if (this.current === inc) this.current = undefined;
    const pending = [...inc.pending.values()];
    inc.pending.clear();
    for (const p of pending) p.reject(error);
    inc.bootFailed(error);
  }

  private post(
    inc: Incarnation,
    method: string,
    params: unknown,
    transfer: readonly TransferListItem[] = [],
  ): Promise<unknown> {
    if (inc.failure !== undefined) return Promise.reject(inc.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      inc.pending.set(id, { method, resolve, reject });
      try {
        inc.worker.postMessage({ kind: 'call', id, method, params } satisfies ToWorker, [...transfer]);
      } catch (error) {
        inc.pending.delete(id);
        reject(error as Error);
      }
    });
  }
}

/**
 * The worker side: answers calls with `handlers`, one at a time in arrival order, and tells the
 * host it is ready (with `info`, e.g. the tfjs backend in use). Call it once, at the end of the
 * worker module's start-up.
 */
export function serveRpc<Api extends RpcApi>(handlers: RpcHandlers<Api>, info?: unknown): void {
  const port = parentPort;
  if (port === null) throw new Error('serveRpc must run in a worker thread');
  const table = handlers as unknown as Record<string, ((params: unknown) => unknown) | undefined>;
  const builtins: Record<string, (params: unknown) => unknown> = {
    __crash: (params) => {
      if ((params as { mode?: unknown }).mode === 'exit') process.exit(3);
      setImmediate(() => {
        throw new Error('worker crash requested by the host (test hook)');
      });
      return new Promise(() => undefined);
    },
    __echo: (params) => {
      const buffers = Object.values(params as Record<string, unknown>)
        .filter((v): v is ArrayBufferView => ArrayBuffer.isView(v))
        .map((v) => v.buffer)
        .filter((b): b is ArrayBuffer => b instanceof ArrayBuffer);
      return transferred(params, [...new Set(buffers)]);
    },
  };

  const handle = async (msg: ToWorker): Promise<void> => {
    try {
      const handler = Object.hasOwn(table, msg.method) ? table[msg.method] : builtins[msg.method];
      if (handler === undefined) throw new Error(`unknown method '${msg.method}'`);
      const reply = await handler(msg.params);
      if (reply instanceof Transferred) {
        port.postMessage({ kind: 'result', id: msg.id, value: reply.value } satisfies FromWorker, [
          ...reply.transfer,
        ]);
      } else {
        port.postMessage({ kind: 'result', id: msg.id, value: reply } satisfies FromWorker);
      }
    } catch (error) {
      port.postMessage({ kind: 'error', id: msg.id, error: serializeError(error) } satisfies FromWorker);
    }
  };

  let chain: Promise<void> = Promise.resolve();
  port.on('message', (msg: ToWorker) => {
    chain = chain.then(() => handle(msg));
  });
  port.postMessage({ kind: 'ready', info } satisfies FromWorker);
}

function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      name: error.name,
      message: error.message,
      ...(typeof code === 'string' ? { code } : {}),
      ...(error.stack !== undefined ? { stack: error.stack } : {}),
    };
  }
  return { name: 'Error', message: String(error) };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
