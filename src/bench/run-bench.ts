/**
 * `acft bench`: replays a labeled image set as a candidate stream with an oracle in place of the
 * radiologist and runs Algorithm 1 per strategy, criterion, policy and seed, in worker threads
 * (one tfjs backend each; the wasm backend is single-threaded, so workers use the cores).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import cliProgress from 'cli-progress';
import { siblingModuleUrl, startModuleWorker } from '../workers/worker-host.js';
import type { StrategyCode } from '../core/strategies.js';
import type { AugmentationSpec } from '../core/patches.js';
import type { FineTuneOptions } from '../model/fine-tune.js';
import type { BackendRequest } from '../model/backend.js';
import { planJobs, type BenchJob } from './jobs.js';
import { criterionName, type Criterion, type LoopPolicy } from './policy.js';
import { learningCurveSvg, markdownTable, summarize, type GroupSummary } from './report.js';
import type { StepRecord, TrajectoryResult } from './trajectory.js';

/** What the data side of every trajectory shares. */
export interface BenchDataSpec {
  /** 'fashion-mnist', 'mnist', or a directory in the loader format. */
  dataset: string;
  positive?: number[];
  negative?: number[];
  classes?: number[];
  ratio?: number;
  augmentation: AugmentationSpec;
  poolSize: number;
  evaluationSize: number;
  evaluationSplit: 'validation' | 'test';
}

export interface BenchOptions {
  data: BenchDataSpec;
  strategies: StrategyCode[];
  criteria: Criterion[];
  policies: { name: string; policy: LoopPolicy }[];
  seeds: number[];
  b: number;
  steps: number;
  omega: number;
  alpha: number;
  fineTune: Omit<FineTuneOptions, 'seed'>;
  m0Dir: string;
  backend: BackendRequest;
  workers: number;
  out: string;
  scoreChunk: number;
  progress: boolean;
  title: string;
}

/** Messages between the runner and its workers. */
export type ToWorker =
  | {
      type: 'job';
      job: BenchJob;
      options: Omit<BenchOptions, 'policies' | 'strategies' | 'criteria' | 'seeds'>;
    }
  | { type: 'exit' };
export type FromWorker =
  | { type: 'ready'; backend: string }
  | { type: 'step'; jobId: number; record: StepRecord }
  | { type: 'done'; jobId: number; result: TrajectoryResult }
  | { type: 'failed'; jobId: number; error: string };

export interface BenchOutput {
  results: TrajectoryResult[];
  groups: GroupSummary[];
  files: { json: string; markdown: string; svg: string };
  backend: string;
  seconds: number;
}

/** One worker thread running ./bench-worker (from dist/ or, under tsx, from src/). */
function startWorker(backend: BackendRequest): Worker {
  return startModuleWorker(siblingModuleUrl(import.meta.url, 'bench-worker'), { backend });
}

/** Runs every planned trajectory and writes JSON, markdown and SVG under `options.out`. */
export async function runBench(options: BenchOptions): Promise<BenchOutput> {
  const started = performance.now();
  const jobs = planJobs(options.strategies, options.criteria, options.policies, options.seeds);
  const workerCount = Math.max(1, Math.min(options.workers, jobs.length, os.availableParallelism()));
  const { policies: _p, strategies: _s, criteria: _c, seeds: _d, ...shared } = options;
  const bar = options.progress
    ? new cliProgress.SingleBar(
        {
          format: 'bench [{bar}] {percentage}% | {value}/{total} steps | ETA {eta_formatted} | {last}',
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  bar?.start(jobs.length * options.steps, 0, { last: '' });
  const results: TrajectoryResult[] = [];
  const queue = [...jobs];
  let backend = 'unknown';
  const failures: string[] = [];

  await Promise.all(
    Array.from({ length: workerCount }, async () => {
      const worker = startWorker(options.backend);
      try {
        await new Promise<void>((resolve, reject) => {
          const next = () => {
            const job = queue.shift();
            if (!job) {
              worker.postMessage({ type: 'exit' } satisfies ToWorker);
              resolve();
              return;
            }
            worker.postMessage({ type: 'job', job, options: shared } satisfies ToWorker);
          };
          worker.on('message', (msg: FromWorker) => {
            if (msg.type === 'ready') {
              backend = msg.backend;
              next();
            } else if (msg.type === 'step') {
              const job = jobs[msg.jobId]!;
              bar?.increment(1, {
                last: `${job.strategy} ${criterionName(job.criterion)} seed ${job.seed}: ${msg.record.labels} labels AUC ${msg.record.auc.toFixed(3)}`,
              });
            } else if (msg.type === 'done') {
              results.push(msg.result);
              if (!bar) {
                const r = msg.result;
                process.stderr.write(
                  `[${results.length}/${jobs.length}] ${r.strategy} ${r.criterion} [${r.policy}] seed ${r.seed}: ALC ${r.alc.toFixed(3)}, final AUC ${r.finalAuc.toFixed(3)} (${r.seconds.toFixed(0)} s)\n`,
                );
              }
              next();
            } else {
              failures.push(`job ${msg.jobId}: ${msg.error}`);
              next();
            }
          });
          worker.on('error', reject);
          worker.on('exit', (code) => {
            if (code !== 0) reject(new Error(`bench worker exited with code ${code}`));
          });
        });
      } finally {
        await worker.terminate();
      }
    }),
  );
  bar?.stop();
  if (failures.length > 0) throw new Error(`benchmark trajectories failed:\n${failures.join('\n')}`);

  results.sort(
    (a, b) =>
      a.strategy.localeCompare(b.strategy) || a.criterion.localeCompare(b.criterion) || a.seed - b.seed,
  );
  const groups = summarize(results);
  await mkdir(options.out, { recursive: true });
  const files = {
    json: path.join(options.out, 'bench.json'),
    markdown: path.join(options.out, 'bench.md'),
    svg: path.join(options.out, 'learning-curves.svg'),
  };
  const seconds = (performance.now() - started) / 1000;
  const { m0Dir, ...config } = shared;
  await writeFile(
    files.json,
    JSON.stringify(
      {
        title: options.title,
        createdAt: new Date().toISOString(),
        backend,
        workers: workerCount,
        seconds,
        config: { ...config, m0: m0Dir, seeds: options.seeds, policies: options.policies },
        groups,
        results,
      },
      null,
      1,
    ),
  );
  await writeFile(files.markdown, markdownTable(groups, options.title));
  await writeFile(files.svg, learningCurveSvg(groups, options.title));
  return { results, groups, files, backend, seconds };
}
