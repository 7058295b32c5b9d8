/**
 * The throughput benchmark (issue 6): how close scoring comes to what this machine can do, what
 * the feature cache saves, and what the pipeline costs next to a bare Kafka consumer. Every ratio
 * is measured within one run.
 *
 *   npm run bench:throughput -- [--quick] [--out results/throughput/throughput.json] [options]
 *
 * 1. matMul peak of each backend (square float32 products, one worker thread) and the CNN's FLOPs
 *    per patch; patches scored per second per backend and worker count through ScoringService
 *    (the daemon's path: patches made in the workers from 28x28 images, m = 24), as a fraction of
 *    that peak x workers.
 * 2. Full-pool rescore of N candidates x m patches by a version fine-tuned at --fine-tune-depth: without the
 *    feature cache, and with it (filled by the previous version's scoring).
 * 3. On a real broker (acquireBroker: KAFKA_BROKERS, Testcontainers, or the embedded JVM broker):
 *    a daemon drains a backlog of --ingest candidates (validation into the pool; the ingest rate,
 *    bytes per pooled candidate, peak RSS), then a bare kafkajs consumer reads the same topic.
 * 4. Window time of ACFT(HQ) and AFT(LQ) on the same simulated stream (same seed).
 *
 * 3 and 4 run first, with nothing else in the process yet, and the broker is stopped before 1 and 2.
 * Writes the JSON report (with every seed), a markdown summary beside it (.md), the daemons' logs
 * (.log.jsonl), and prints the summary. Targets are reported as met or not, never tuned for.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_M0_PATH } from '../src/config/index.js';
import { loadFashionMnist } from '../src/data/image-set.js';
import { buildTask } from '../src/data/task.js';
import { acquireBroker } from '../src/kafka/broker-source.js';
import { initBackend, parseBackendRequest, type BackendRequest } from '../src/model/backend.js';
import type { FineTuneDepth } from '../src/model/fine-tune-depth.js';
import { DEFAULT_TASK_SPEC } from '../src/simulate/simulator.js';
import {
  backlogPhase,
  ingestRoundConfig,
  ingestRoundPhase,
  benchContext,
  windowsPhase,
  type BacklogPhaseReport,
  type BenchOptions,
  type WindowsPhaseReport,
} from './bench-daemon/phases.js';
import { Cleanups, RssSampler, median, settledMemory, type CpuSpan } from './bench-daemon/support.js';
import {
  makeModels,
  matMulPeak,
  poolCandidates,
  rescore,
  scoreRequest,
  scoringThroughput,
  type RescoreSample,
  type ThroughputSample,
} from './bench-throughput/scoring.js';
import { bareConsumerRate, type BareConsumerReport } from './bench-throughput/bare-consumer.js';
import { intakeAlone, readMessages, type IntakeAloneReport } from './bench-throughput/intake-alone.js';
import type { PeakResult } from './bench-throughput/peak-worker.js';
import { fineTuneDepthOption, intListOption, intOption, listOption } from '../src/cli/options.js';
import { Command, parseCommandLine, type Parsed } from './args.js';

interface Options {
  quick: boolean;
  out: string;
  backends: BackendRequest[] | null;
  workers: number[];
  m: number;
  seconds: number;
  rounds: number;
  ingestRounds: number;
  rescoreSizes: number[];
  rescoreBackend: BackendRequest;
  depth: FineTuneDepth;
  cacheBytes: number;
  ingest: number;
  windows: number;
  windowPool: number;
  b: number;
  seed: number;
  parts: Set<Part>;
  timeoutS: number;
}

const PARTS = ['scoring', 'rescore', 'ingest', 'windows'] as const;
type Part = (typeof PARTS)[number];

function program(): Command {
  const cores = os.availableParallelism();
  return new Command('npm run bench:throughput --')
    .description(
      'The throughput benchmark (issue 6): scoring per backend and worker count against the matMul peak, the full-pool rescore with and without the feature cache, the ingest rate against a bare kafkajs consumer, and window times. Writes JSON and a markdown summary.',
    )
    .option('--quick', 'a few minutes: short measurements, pools of 1,000 and 5,000, ingest 2,000, 2 windows')
    .option(
      '--out <file>',
      'JSON report (default results/throughput/throughput.json; --quick: .../quick.json)',
    )
    .option(
      '--backends <list>',
      'backends to measure (default tensorflow,wasm,cpu: those that load)',
      listOption('--backends', parseBackendRequest),
    )
    .option(
      '--workers <list>',
      `worker counts (default 1,${cores}: one and every core)`,
      intListOption('--workers', 1),
    )
    .option('--m <n>', 'patches per candidate', intOption('--m', 1), 24)
    .option(
      '--rounds <n>',
      'rounds of the scoring measurements (every worker count in turn); medians are reported (default 3; --quick 1)',
      intOption('--rounds', 1),
    )
    .option(
      '--ingest-rounds <n>',
      'rounds of the ingest measurement (the daemon and the bare consumer in alternating order); medians are reported (default 5; --quick 1)',
      intOption('--ingest-rounds', 1),
    )
    .option(
      '--seconds <s>',
      'least seconds per patches/s measurement (default 20; --quick 4)',
      intOption('--seconds', 1),
    )
    .option(
      '--rescore-sizes <list>',
      'pool sizes of the rescore (default 10000,100000; --quick 1000,5000)',
      intListOption('--rescore-sizes', 1),
    )
    .option('--rescore-backend <name>', 'backend of the rescore', parseBackendRequest, 'wasm')
    .option(
      '--fine-tune-depth <n>',
      "fine-tuning depth of the rescored version: 'all' or the top N weight layers (1: the head)",
      fineTuneDepthOption,
      1,
    )
    .option('--cache-bytes <b>', 'feature cache bound of the rescore', intOption('--cache-bytes', 0), 1 << 30)
    .option(
      '--ingest <n>',
      'backlog candidates of the ingest phase (default 30000; --quick 2000)',
      intOption('--ingest', 2),
    )
    .option('--windows <w>', 'windows timed per strategy (default 3; --quick 2)', intOption('--windows', 1))
    .option(
      '--window-pool <p>',
      'pool of the windows phases (default 500; --quick 300)',
      intOption('--window-pool', 1),
    )
    .option('--b <b>', 'labels per window', intOption('--b', 1), 25)
    .option(
      '--seed <s>',
      'seed of the task, the stream, the fine-tuning and the patches',
      intOption('--seed', 0),
      1,
    )
    .option(
      '--parts <list>',
      `parts to run, of ${PARTS.join(',')}`,
      listOption('--parts', (name) => {
        const part = PARTS.find((p) => p === name);
        if (part === undefined) throw new Error(`'${name}' is not one of ${PARTS.join(', ')}`);
        return part;
      }),
      [...PARTS],
    )
    .option('--skip-kafka', 'only the scoring parts (as --parts scoring,rescore)')
    .option(
      '--timeout <s>',
      'longest wait for any one Kafka step, in seconds',
      intOption('--timeout', 1),
      1800,
    );
}

function parseOptions(argv: string[]): Parsed<Options> {
  const cmd = program();
  return parseCommandLine(cmd, argv, (v) => {
    const quick = v['quick'] === true;
    const skipKafka = v['skipKafka'] === true;
    const parts = new Set(
      (v['parts'] as Part[]).filter((p) => !(skipKafka && (p === 'ingest' || p === 'windows'))),
    );
    if (parts.size === 0) cmd.error('--parts: nothing left to run', { exitCode: 2 });
    const cores = os.availableParallelism();
    // The value given, else the default of the run's length.
    const given = <T>(name: string, quickValue: T, fullValue: T): T =>
      (v[name] as T | undefined) ?? (quick ? quickValue : fullValue);
    const outDir = path.join('results', 'throughput');
    return {
      quick,
      out: given('out', path.join(outDir, 'quick.json'), path.join(outDir, 'throughput.json')),
      backends: (v['backends'] as BackendRequest[] | undefined) ?? null,
      workers: (v['workers'] as number[] | undefined) ?? [...new Set([1, cores])],
      m: v['m'] as number,
      seconds: given('seconds', 4, 20),
      rounds: given('rounds', 1, 3),
      ingestRounds: given('ingestRounds', 1, 5),
      rescoreSizes: given('rescoreSizes', [1000, 5000], [10_000, 100_000]),
      rescoreBackend: v['rescoreBackend'] as BackendRequest,
      depth: v['fineTuneDepth'] as FineTuneDepth,
      cacheBytes: v['cacheBytes'] as number,
      ingest: given('ingest', 2000, 30_000),
      windows: given('windows', 2, 3),
      windowPool: given('windowPool', 300, 500),
      b: v['b'] as number,
      seed: v['seed'] as number,
      parts,
      timeoutS: v['timeout'] as number,
    };
  });
}

interface Results {
  models?: Record<string, unknown>;
  matMulPeak?: PeakResult[];
  scoring?: ThroughputSample[];
  rescore?: RescoreSample[];
  ingest?: {
    /** Round 1's daemon: its rate, and the memory and RSS figures with a full pool. */
    daemon: BacklogPhaseReport;
    /** Round 1's bare consumer. */
    bareKafkajs: BareConsumerReport;
    /** Every round's two rates, in the order they ran, and where each one's CPU went (Linux). */
    rounds: {
      round: number;
      first: 'daemon' | 'bare';
      daemon: number | null;
      bare: number;
      daemonCpu: CpuSpan | null;
      bareCpu: CpuSpan | null;
    }[];
    /** Medians over the rounds of the CPU figures (null where not measured). */
    cpu: { daemon: CpuMedians | null; bare: CpuMedians | null };
    /** The daemon's intake steps alone on one thread: a floor for its main-thread CPU per candidate. */
    intakeAlone: IntakeAloneReport;
    /** Medians over the rounds. */
    daemonRate: number | null;
    bareRate: number | null;
    /** daemonRate / bareRate. */
    ratio: number | null;
    /** Each round's daemon / bare, and their median (the bare rate drifts from round to round). */
    roundRatios: (number | null)[];
    medianRoundRatio: number | null;
    method: string;
  };
  windows?: { 'ACFT(HQ)': WindowsPhaseReport; 'AFT(LQ)': WindowsPhaseReport };
  skipped?: Record<string, string>;
}

type CpuMedians = Pick<CpuSpan, 'mainCores' | 'mainWaitShare' | 'processCores' | 'mainMicrosPerMessage'>;

function cpuMedians(spans: readonly (CpuSpan | null)[]): CpuMedians | null {
  const all = spans.flatMap((x) => (x === null ? [] : [x]));
  if (all.length === 0 || all.length !== spans.length) return null;
  // Rounded: the median of an even count is a mean.
  const m = (k: keyof CpuMedians) => Math.round(median(all.map((x) => x[k]))! * 1000) / 1000;
  return {
    mainCores: m('mainCores'),
    mainWaitShare: m('mainWaitShare'),
    processCores: m('processCores'),
    mainMicrosPerMessage: m('mainMicrosPerMessage'),
  };
}

function cpuText(c: CpuMedians | null): string {
  return c === null
    ? 'CPU not measured'
    : `main thread ${c.mainMicrosPerMessage} us CPU per message, running ${c.mainCores} of a core and waiting for one ${c.mainWaitShare} of the time; process ${c.processCores} cores`;
}

interface Target {
  name: string;
  target: string;
  measured: number | null;
  met: boolean | null;
}

function targets(r: Results, cores: number): Target[] {
  const out: Target[] = [];
  for (const backend of new Set((r.scoring ?? []).map((s) => s.backend))) {
    const one = r.scoring?.find((s) => s.backend === backend && s.workers === 1);
    const all = r.scoring?.find((s) => s.backend === backend && s.workers === cores && cores > 1);
    if (one === undefined || all === undefined) continue;
    const ratio = Math.round((all.patchesPerSecond / one.patchesPerSecond) * 100) / 100;
    out.push({
      name: `scoring ${backend}: ${cores} workers / 1 worker`,
      target: '>= 1.8',
      measured: ratio,
      met: ratio >= 1.8,
    });
  }
  for (const s of r.rescore ?? []) {
    out.push({
      name: `rescore of ${s.candidates} x ${s.m}: without / with the feature cache (depth ${s.depth})`,
      target: '>= 10',
      measured: s.speedup,
      met: s.speedup >= 10,
    });
  }
  if (r.ingest !== undefined) {
    out.push({
      name: 'ingest: daemon / bare kafkajs consumer on the same topic',
      target: '>= 0.5',
      measured: r.ingest.ratio,
      met: r.ingest.ratio === null ? null : r.ingest.ratio >= 0.5,
    });
  }
  return out;
}

const mib = (b: number | null | undefined): string =>
  b === null || b === undefined ? 'n/a' : `${(b / 2 ** 20).toFixed(0)} MiB`;
const val = (f: { value: number | null } | null | undefined, d = 1): string =>
  f?.value === null || f?.value === undefined ? 'n/a' : f.value.toFixed(d);

function markdown(
  report: { command: string[]; machine: Record<string, unknown>; wallSeconds: number; complete: boolean },
  r: Results,
  t: Target[],
): string {
  const L: string[] = [];
  L.push(`# acft throughput${report.complete ? '' : ' (INCOMPLETE)'}`, '');
  L.push(
    `\`${report.command.join(' ')}\` — ${String(report.machine['cpus'])} x ${String(report.machine['cpuModel'])}, load average at start ${JSON.stringify(report.machine['loadAverageAtStart'])}, ${report.wallSeconds} s`,
    '',
  );
  if (t.length > 0) {
    L.push('| target | wanted | measured | met |', '| --- | --- | --- | --- |');
    for (const x of t)
      L.push(
        `| ${x.name} | ${x.target} | ${x.measured ?? 'n/a'} | ${x.met === null ? 'n/a' : x.met ? 'yes' : 'no'} |`,
      );
    L.push('');
  }
  if (r.scoring !== undefined) {
    L.push(
      '| backend | workers | patches/s (median) | GFLOP/s | of matMul peak x workers | rounds (patches/s) |',
      '| --- | --- | --- | --- | --- | --- |',
    );
    for (const s of r.scoring)
      L.push(
        `| ${s.backend} | ${s.workers} | ${s.patchesPerSecond} | ${s.gflops} | ${s.fractionOfMatMulPeak ?? 'n/a'} | ${(s.rounds ?? [s.patchesPerSecond]).join(', ')} |`,
      );
    L.push('');
  }
  if (r.matMulPeak !== undefined) {
    L.push(
      `matMul peak (GFLOP/s, one thread): ${r.matMulPeak.map((p) => `${p.backend} ${p.bestGflops}`).join(', ')}; CNN ${String(r.models?.['flopsPerPatch'])} FLOPs per patch.`,
      '',
    );
  }
  if (r.rescore !== undefined) {
    L.push(
      '| candidates x m | without cache (s) | with cache (s) | speed-up | cache bytes / candidate | max score difference |',
      '| --- | --- | --- | --- | --- | --- |',
    );
    for (const s of r.rescore)
      L.push(
        `| ${s.candidates} x ${s.m} | ${s.withoutCache.seconds} | ${s.withCache.rescoreSeconds} | ${s.speedup} | ${s.withCache.cacheBytesPerCandidate} | ${s.maxAbsScoreDifference.toExponential(1)} |`,
      );
    L.push('');
  }
  if (r.ingest !== undefined) {
    const d = r.ingest.daemon;
    L.push(
      `Ingest CPU (medians of the rounds, group join to N-th message): daemon ${cpuText(r.ingest.cpu.daemon)}; bare kafkajs ${cpuText(r.ingest.cpu.bare)}. The daemon's intake steps alone on one thread (no Kafka, no scoring): ${r.ingest.intakeAlone.median ?? 'n/a'} us per candidate (median of ${r.ingest.intakeAlone.microsPerCandidate.join(', ')}).`,
      '',
      `Ingest (median of ${r.ingest.rounds.length} rounds): daemon ${r.ingest.daemonRate?.toFixed(1) ?? 'n/a'} candidates/s, bare kafkajs ${r.ingest.bareRate?.toFixed(1) ?? 'n/a'} messages/s (ratio ${r.ingest.ratio ?? 'n/a'}; rounds, daemon / bare: ${r.ingest.rounds.map((x) => `${x.daemon?.toFixed(0) ?? 'n/a'} / ${x.bare.toFixed(0)}`).join(', ')}; median of the rounds' own ratios ${r.ingest.medianRoundRatio ?? 'n/a'}); ${val(d.marginalMemory?.bytesPerCandidate.heapPlusExternal, 0)} bytes per pooled candidate (heap+external, N -> 2N), ${val(d.marginalMemory?.bytesPerCandidate.accounted, 0)} accounted by the pool; peak RSS with ${d.candidates} pooled ${mib(d.peakRssBytes)}.`,
      '',
    );
  }
  if (r.windows !== undefined) {
    for (const [s, w] of Object.entries(r.windows)) {
      const train = w.windows.map((x) => x.seconds.windowStartToPublished);
      L.push(
        `${s}: window start -> version published median ${median(train)?.toFixed(2) ?? 'n/a'} s [${train.join(', ')}]; b-th label -> version median ${val(w.bthLabelToVersion.median, 2)} s; |H| ${w.windows.map((x) => x.h).join(', ')}.`,
      );
    }
    L.push('');
  }
  for (const [k, why] of Object.entries(r.skipped ?? {})) L.push(`Skipped ${k}: ${why}`);
  return `${L.join('\n')}\n`;
}

async function main(): Promise<number> {
  const parsed = parseOptions(process.argv.slice(2));
  if (!parsed.ok) return parsed.exitCode;
  const options = parsed.options;
  const t0 = performance.now();
  const progress = (line: string): void => {
    process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(7)} s] ${line}\n`);
  };
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (abort.signal.aborted) process.exit(130);
    progress(`${signal}: stopping (again to exit at once)`);
    abort.abort(new Error(`interrupted by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const cores = os.availableParallelism();
  const cpus = os.cpus();
  const machine = {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    availableParallelism: cores,
    totalMemoryBytes: os.totalmem(),
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    ldPreload: process.env['LD_PRELOAD'] ?? null,
  };
  const outPath = path.resolve(options.out);
  const logPath = outPath.replace(/\.json$/i, '') + '.log.jsonl';
  const command = ['npm run bench:throughput --', ...process.argv.slice(2)];
  const results: Results = { skipped: {} };
  const cleanups = new Cleanups();
  const rss = new RssSampler(100);
  let error: string | undefined;
  try {
    await mkdir(path.dirname(outPath), { recursive: true });
    progress('loading Fashion-MNIST');
    const set = await loadFashionMnist();
    const task = buildTask(set, { ...DEFAULT_TASK_SPEC, seed: options.seed });
    const request = scoreRequest(options.m, options.seed);
    // The main thread makes the two versions (v2 is fine-tuned here).
    await initBackend(options.rescoreBackend);
    progress(`making v1 (M0 re-headed) and v2 (fine-tuned at depth ${options.depth})`);
    const models = await makeModels(task, DEFAULT_M0_PATH, options.depth, options.m, options.seed);
    results.models = {
      m0: DEFAULT_M0_PATH,
      depth: models.depth,
      cutLayer: models.cutLayer,
      featureValuesPerPatch: models.featureValuesPerPatch,
      flopsPerPatch: models.flopsPerPatch,
      flopsAboveCut: models.flopsAboveCut,
      fineTune: models.fineTune,
    };

    // 3 and 4 on a real broker, first: the peak RSS with a full pool is then the daemon's own,
    // not what the 100,000-candidate rescore left behind.
    const { parts } = options;
    if (parts.has('ingest') || parts.has('windows')) {
      const mark = cleanups.size;
      const file = createWriteStream(logPath);
      cleanups.add('closing the log file', () => new Promise<void>((resolve) => file.end(resolve)));
      const workDir = await mkdtemp(path.join(os.tmpdir(), 'acft-bench-throughput-'));
      cleanups.add('removing the work directory', () => rm(workDir, { recursive: true, force: true }));
      const acquired = await acquireBroker({ log: progress });
      cleanups.add('stopping the broker', () => acquired.stop());
      const runId = `tput-${Date.now().toString(36)}-${process.pid}`;
      const benchOptions: BenchOptions = {
        candidates: options.ingest,
        rate: 2000,
        b: options.b,
        out: outPath,
        seed: options.seed,
        windows: options.windows,
        windowPool: options.windowPool,
        answerDelayMs: 200,
        backend: 'auto',
        backlog: true,
        probe: 0,
        probeIntervalMs: 50,
        timeoutS: options.timeoutS,
      };
      const ctx = benchContext({
        options: benchOptions,
        brokers: acquired.brokers,
        runId,
        workDir,
        task,
        logFile: file,
        cleanups,
        abort,
        rss,
        progress,
      });
      if (parts.has('ingest')) {
        let daemon: BacklogPhaseReport | undefined;
        await backlogPhase(ctx, (report) => (daemon = report));
        const topic = `${runId}-backlog.candidates`;
        const bareRound = async (round: number) => {
          progress(
            `[ingest] round ${round}/${options.ingestRounds}: a bare kafkajs consumer on the same topic`,
          );
          // On a collected heap, as each daemon starts (see ingestRoundPhase).
          await settledMemory(ctx.gc);
          return bareConsumerRate(
            ctx.kafka,
            topic,
            options.ingest,
            `${runId}-bare-${round}`,
            options.timeoutS,
            abort.signal,
          );
        };
        const bare = await bareRound(1);
        const rounds: NonNullable<Results['ingest']>['rounds'] = [
          {
            round: 1,
            first: 'daemon',
            daemon: daemon?.rate.value ?? null,
            bare: bare.rate,
            daemonCpu: daemon?.intakeCpu ?? null,
            bareCpu: bare.cpu,
          },
        ];
        // Later rounds alternate which goes first: the broker's page cache and the JIT warm up
        // over a run, and the two rates varied by up to 40% from one run to the next.
        for (let round = 2; round <= options.ingestRounds; round++) {
          const daemonRound = async () => {
            progress(`[ingest] round ${round}/${options.ingestRounds}: a fresh daemon on the same topic`);
            return ingestRoundPhase(ctx, topic, options.ingest, round);
          };
          const entry = (
            first: 'daemon' | 'bare',
            d: Awaited<ReturnType<typeof daemonRound>>,
            b: BareConsumerReport,
          ) => ({ round, first, daemon: d.rate, bare: b.rate, daemonCpu: d.cpu, bareCpu: b.cpu }) as const;
          if (round % 2 === 0) {
            const b = await bareRound(round);
            rounds.push(entry('bare', await daemonRound(), b));
          } else {
            const d = await daemonRound();
            rounds.push(entry('daemon', d, await bareRound(round)));
          }
        }
        progress(`[ingest] the daemon's intake steps alone, on this thread, over the same messages`);
        const backlog = await readMessages(
          ctx.kafka,
          topic,
          options.ingest,
          `${runId}-intake-alone`,
          options.timeoutS,
          abort.signal,
        );
        await settledMemory(ctx.gc);
        const alone = intakeAlone(backlog, ingestRoundConfig(ctx, options.ingest), 5);
        const daemonRates = rounds.flatMap((r) => (r.daemon === null ? [] : [r.daemon]));
        const daemonRate = daemonRates.length === rounds.length ? median(daemonRates) : null;
        const bareRate = median(rounds.map((r) => r.bare));
        const roundRatios = rounds.map((r) =>
          r.daemon === null || r.bare <= 0 ? null : Math.round((r.daemon / r.bare) * 1000) / 1000,
        );
        const pairedRatios = roundRatios.flatMap((x) => (x === null ? [] : [x]));
        results.ingest = {
          daemon: daemon!,
          bareKafkajs: bare,
          rounds,
          daemonRate,
          bareRate,
          ratio:
            daemonRate === null || bareRate === null || bareRate <= 0
              ? null
              : Math.round((daemonRate / bareRate) * 1000) / 1000,
          roundRatios,
          medianRoundRatio: pairedRatios.length === rounds.length ? median(pairedRatios) : null,
          cpu: {
            daemon: cpuMedians(rounds.map((r) => r.daemonCpu)),
            bare: cpuMedians(rounds.map((r) => r.bareCpu)),
          },
          intakeAlone: alone,
          method:
            "median daemon rate / median bare-consumer rate over the rounds; both read the same backlog topic on the same broker, each round with groups of its own and on a collected heap (full GCs before it: the garbage of the round before was otherwise collected during the next, and slowed the bare consumer by up to 2x); round 1 is the backlog phase (which also measures memory), later rounds a fresh daemon each. CPU: the main thread's time running and waiting for a core from /proc/<pid>/task/<pid>/schedstat, the process's from process.cpuUsage(), group join to N-th message",
        };
      }
      if (parts.has('windows')) {
        const hq = await windowsPhase(ctx, { phase: 'windows-hq', training: { strategy: 'ACFT(HQ)' } });
        const lq = await windowsPhase(ctx, { phase: 'windows-lq', training: { strategy: 'AFT(LQ)' } });
        results.windows = { 'ACFT(HQ)': hq, 'AFT(LQ)': lq };
      }
      // The broker goes now: its JVM would take CPU from the scoring measurements.
      await cleanups.runFrom(mark, progress);
    } else {
      results.skipped!['kafka'] = `--parts ${[...parts].join(',')}`;
    }
    // 1. Peaks and scoring throughput.
    const wanted: BackendRequest[] = options.backends ?? ['tensorflow', 'wasm', 'cpu'];
    if (parts.has('scoring')) {
      results.matMulPeak = [];
      results.scoring = [];
      const inputs = poolCandidates(task, 4096, 'tp');
      for (const backend of wanted) {
        let peak: PeakResult;
        try {
          progress(`[peak] ${backend}`);
          const sizes = backend === 'cpu' ? [128, 256, 512] : [256, 512, 1024];
          peak = await matMulPeak(backend, sizes, options.quick ? 0.5 : 2);
        } catch (e) {
          results.skipped![backend] =
            `backend did not load: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
          progress(`[peak] ${backend} skipped: ${results.skipped![backend]}`);
          continue;
        }
        results.matMulPeak.push(peak);
        // Rounds of every worker count in turn, the median kept: one worker's rate drifted by up
        // to 20% from run to run here (lower after the Kafka phases), and a ratio of two single
        // samples drifted with it.
        const samples = new Map<number, ThroughputSample[]>(options.workers.map((w) => [w, []]));
        for (let round = 1; round <= options.rounds; round++) {
          // The order turns every round (1, 2 / 2, 1 / ...), so that a drift of the machine over
          // the measurements does not always favour the same worker count.
          const order = round % 2 === 1 ? options.workers : [...options.workers].reverse();
          for (const workers of order) {
            if (abort.signal.aborted) throw abort.signal.reason;
            progress(
              `[scoring] ${backend} x ${workers} worker(s), ${options.seconds} s, round ${round}/${options.rounds}`,
            );
            const seconds = backend === 'cpu' ? Math.max(options.seconds, 10) : options.seconds;
            samples
              .get(workers)!
              .push(
                await scoringThroughput(
                  backend,
                  workers,
                  models,
                  inputs,
                  request,
                  seconds,
                  peak.bestGflops,
                  cores,
                ),
              );
          }
        }
        for (const list of samples.values()) {
          const sorted = [...list].sort((a, b) => a.patchesPerSecond - b.patchesPerSecond);
          results.scoring.push({
            ...sorted[Math.floor((sorted.length - 1) / 2)]!,
            rounds: list.map((s) => s.patchesPerSecond),
          });
        }
      }
    }

    // 2. Full-pool rescore with and without the feature cache.
    if (parts.has('rescore')) {
      results.rescore = [];
      for (const n of options.rescoreSizes) {
        if (abort.signal.aborted) throw abort.signal.reason;
        results.rescore.push(
          await rescore(
            options.rescoreBackend,
            cores,
            models,
            poolCandidates(task, n, `r${n}`),
            request,
            options.cacheBytes,
            progress,
          ),
        );
      }
    }
  } catch (e) {
    error = e instanceof Error ? (e.stack ?? e.message) : String(e);
    progress(`failed: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    await cleanups.runFrom(0, progress);
    rss.stop();
  }

  const t = targets(results, cores);
  const report = {
    benchmark: 'acft throughput (issue 6)',
    command,
    complete: error === undefined,
    ...(error !== undefined ? { error } : {}),
    startedAt: new Date(Date.now() - (performance.now() - t0)).toISOString(),
    wallSeconds: Math.round(performance.now() - t0) / 1000,
    machine,
    loadAverageAtEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
    options: { ...options, parts: [...options.parts] },
    seeds: {
      task: options.seed,
      patches: options.seed,
      'v2 fine-tuning': results.models?.['fineTune'] ?? null,
      'M0 head': options.seed,
      'simulator, selection, training (Kafka phases)': options.seed,
    },
    targets: t,
    results,
    peakRssBytes: Math.max(rss.peakBytes, process.resourceUsage().maxRSS * 1024),
  };
  await writeFile(outPath, `${JSON.stringify(report, null, 2)}\n`);
  const md = markdown(report, results, t);
  await writeFile(outPath.replace(/\.json$/i, '') + '.md', md);
  process.stdout.write(md);
  process.stdout.write(`wrote ${path.relative(process.cwd(), outPath)} (+ .md)\n`);
  return error === undefined ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
