/** `acft simulate`: the hospital side of the topics, for demos and tests (src/simulate). */
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadDataset } from '../bench/dataset.js';
import {
  AUGMENTATION_PRESETS,
  loadConfig,
  resolveConfig,
  type AugmentationPreset,
  type Config,
} from '../config/index.js';
import { buildTask, describeTask, formatTaskDescription, type TaskSpec } from '../data/task.js';
import { parseBackendRequest } from '../model/backend.js';
import { CANDIDATE_MODES, type CandidateMode } from '../simulate/candidates.js';
import { formatProgress } from '../simulate/report.js';
import { DEFAULT_ANNOTATOR_ID, DEFAULT_TASK_SPEC, startSimulator } from '../simulate/simulator.js';
import { choiceOption, intListOption, intOption, numberOption } from './options.js';

interface SimulateFlags {
  config?: string;
  brokers?: string[];
  groupId: string;
  dataset: string;
  positive?: number[];
  negative?: number[];
  classes?: number[];
  ratio?: number;
  seed: number;
  rate: number;
  total?: number;
  mode: CandidateMode;
  augmentation: AugmentationPreset;
  m: number;
  patchSeed: number;
  answerDelayMs: number;
  answerJitterMs: number;
  labelNoise: number;
  unsolicitedShare: number;
  annotatorId: string;
  evaluate: boolean;
  evalSize: number;
  backend: string;
  artifactRoot: string;
  versionsFromBeginning?: boolean;
  createTopics?: boolean;
  durationMs?: number;
  progressMs: number;
}

/** How long a stop may take before the simulator exits regardless. */
const STOP_GRACE_MS = 10_000;

const BROKER = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):\d{1,5}$/;

function brokerList(value: string): string[] {
  const brokers = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (brokers.length === 0 || brokers.some((b) => !BROKER.test(b))) {
    throw new InvalidArgumentError(`--brokers must be a comma-separated list of host:port, got '${value}'.`);
  }
  return brokers;
}

function positiveNumber(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0)
      throw new InvalidArgumentError(`${name} must be a number > 0, got '${value}'.`);
    return n;
  };
}

const OPAQUE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function opaqueId(name: string) {
  return (value: string): string => {
    if (!OPAQUE_ID.test(value)) {
      throw new InvalidArgumentError(`${name} must be 1 to 128 of A-Z a-z 0-9 . _ : -, got '${value}'.`);
    }
    return value;
  };
}

/** The configuration for the help's defaults: env and defaults, or the defaults alone if env is bad. */
function helpConfig(): Config {
  try {
    return loadConfig({ allowUnknownEnv: true });
  } catch {
    return resolveConfig({ env: {} });
  }
}

function taskSpecOf(flags: SimulateFlags): Omit<TaskSpec, 'seed'> {
  if (flags.classes !== undefined) {
    if (flags.positive !== undefined || flags.negative !== undefined) {
      throw new InvalidArgumentError('Give either --classes or --positive/--negative, not both.');
    }
    if (flags.ratio !== undefined)
      throw new InvalidArgumentError('--ratio applies to binary tasks only, not to --classes.');
    return { classes: flags.classes };
  }
  if (flags.positive === undefined) {
    if (flags.negative !== undefined) throw new InvalidArgumentError('--negative needs --positive.');
    return { ...DEFAULT_TASK_SPEC, ...(flags.ratio !== undefined ? { ratio: flags.ratio } : {}) };
  }
  return {
    positive: flags.positive,
    ...(flags.negative !== undefined ? { negative: flags.negative } : {}),
    ...(flags.ratio !== undefined ? { ratio: flags.ratio } : {}),
  };
}

function stamp(line: string): string {
  return `${new Date().toISOString().slice(11, 19)} ${line}`;
}

export function simulateCommand(): Command {
  const config = helpConfig();
  const presets = Object.keys(AUGMENTATION_PRESETS) as AugmentationPreset[];
  return new Command('simulate')
    .description(
      "Simulate a hospital on the daemon's topics: stream Fashion-MNIST candidates at a set rate, answer labeling requests as an oracle radiologist (optionally noisy, after a delay), optionally label a share of candidates unasked (closed-loop CAD), and measure each promoted model version on a fixed evaluation set.",
    )
    .option(
      '--config <file>',
      "the daemon's JSON configuration file, for its Kafka settings and topics (default: $ACFT_CONFIG_FILE, else none)",
    )
    .addOption(
      new Option(
        '--brokers <list>',
        'bootstrap brokers, host:port,... (default: kafka.brokers of the configuration)',
      ).argParser(brokerList),
    )
    .option('--group-id <id>', 'consumer group of the requests (versions: <id>.versions)', 'acft-simulator')
    .option(
      '--dataset <name|dir>',
      "'fashion-mnist', 'mnist', or a directory in the loader format",
      'fashion-mnist',
    )
    .option(
      '--positive <classes>',
      'binary task: positive class ids (default: 6, with --negative 0,2,4 and --ratio 9, unless --classes)',
      intListOption('--positive'),
    )
    .option(
      '--negative <classes>',
      'binary task: negative class ids (default: 0,2,4 with the default --positive, else every other class)',
      intListOption('--negative'),
    )
    .option(
      '--classes <classes>',
      'multi-class task: class ids, e.g. 0,1,2,3,4,5,6,7,8,9 (default: a binary task)',
      intListOption('--classes'),
    )
    .option(
      '--ratio <n>',
      'binary task: negatives per positive (default: 9 with the default task, else no subsampling)',
      positiveNumber('--ratio'),
    )
    .option(
      '--seed <n>',
      'seed of the task subsample, the stream order, the label noise and the jitter',
      intOption('--seed'),
      1,
    )
    .option('--rate <n>', 'candidates per second', positiveNumber('--rate'), 20)
    .option(
      '--total <n>',
      'candidates to send in all (default: the whole pool split)',
      intOption('--total', 1),
    )
    .option(
      '--mode <mode>',
      `how candidates carry pixels: ${CANDIDATE_MODES.join(' or ')} (patches made here with --augmentation, --m, --patch-seed)`,
      choiceOption('--mode', CANDIDATE_MODES),
      'image',
    )
    .option(
      '--augmentation <preset>',
      `the daemon's patch preset (${presets.join(' or ')}), for --mode patches and the evaluation`,
      choiceOption('--augmentation', presets),
      config.scoring.augmentation,
    )
    .option(
      '--m <n>',
      "patches per candidate (the daemon's scoring.m; with only --augmentation given, the preset's)",
      intOption('--m', 1),
      config.scoring.m,
    )
    .option(
      '--patch-seed <n>',
      "the daemon's scoring.patchSeed",
      intOption('--patch-seed'),
      config.scoring.patchSeed,
    )
    .option(
      '--answer-delay-ms <ms>',
      'delay before a labeling request is answered',
      intOption('--answer-delay-ms'),
      500,
    )
    .option(
      '--answer-jitter-ms <ms>',
      'extra delay drawn uniformly from [0, jitter) per answer',
      intOption('--answer-jitter-ms'),
      0,
    )
    .option('--label-noise <p>', 'probability that a label is wrong', numberOption('--label-noise', 0, 1), 0)
    .option(
      '--unsolicited-share <x>',
      "share of streamed candidates labeled unasked right after being sent (source 'cad-closed-loop')",
      numberOption('--unsolicited-share', 0, 1),
      0,
    )
    .option(
      '--annotator-id <id>',
      'annotator id on every label',
      opaqueId('--annotator-id'),
      DEFAULT_ANNOTATOR_ID,
    )
    .option('--evaluate', 'measure each promoted version on the evaluation set (loads tfjs)', true)
    .option('--no-evaluate', 'do not measure versions (tfjs is not loaded)')
    .option(
      '--eval-size <n>',
      'candidates of the validation split in the evaluation set',
      intOption('--eval-size', 1),
      1000,
    )
    .option(
      '--backend <name>',
      'tfjs backend of the evaluation: auto|tensorflow-gpu|tensorflow|wasm|cpu',
      config.backend,
    )
    .option('--artifact-root <dir>', 'base directory of relative artifact locations', '.')
    .option(
      '--versions-from-beginning',
      'a new group reads model versions from the oldest, not the newest',
      false,
    )
    .option(
      '--create-topics',
      "create missing topics with the daemon's partition counts (else a missing topic stops start-up)",
      false,
    )
    .option(
      '--duration-ms <ms>',
      'stop after this long (default: run until Ctrl-C)',
      intOption('--duration-ms', 1),
    )
    .option('--progress-ms <ms>', 'time between progress lines (0: none)', intOption('--progress-ms'), 5000)
    .action(async (flags: SimulateFlags, cmd: Command) => {
      const fromCli = (name: string) => cmd.getOptionValueSource(name) === 'cli';
      let backend;
      try {
        backend = parseBackendRequest(flags.backend);
      } catch (err) {
        throw new InvalidArgumentError(`--backend: ${(err as Error).message}.`);
      }
      const spec = taskSpecOf(flags);
      const cfg = loadConfig(flags.config !== undefined ? { file: flags.config } : {});
      const augmentationPreset = fromCli('augmentation') ? flags.augmentation : cfg.scoring.augmentation;
      const preset = AUGMENTATION_PRESETS[augmentationPreset];
      const m = fromCli('m')
        ? flags.m
        : fromCli('augmentation')
          ? (preset.m ?? cfg.scoring.m)
          : cfg.scoring.m;
      const patchSeed = fromCli('patchSeed') ? flags.patchSeed : cfg.scoring.patchSeed;

      const set = await loadDataset(flags.dataset);
      const task = buildTask(set, { ...spec, seed: flags.seed });
      console.log(formatTaskDescription(describeTask(task)));
      if (task.numClasses !== cfg.limits.numClasses) {
        console.log(
          stamp(
            `warning: the task has ${task.numClasses} classes but the daemon's limits.numClasses is ${cfg.limits.numClasses}; its labels may be dead-lettered`,
          ),
        );
      }
      const log = (line: string) => console.log(stamp(line));
      const sim = await startSimulator({
        kafka: {
          brokers: flags.brokers ?? cfg.kafka.brokers,
          clientId: `${cfg.kafka.clientId}-simulator`,
          topics: {
            candidates: cfg.kafka.topics.candidates,
            feedback: cfg.kafka.topics.feedback,
            labelingRequests: cfg.kafka.topics.labelingRequests,
            modelVersions: cfg.kafka.topics.modelVersions,
          },
          ssl: cfg.kafka.ssl,
          sasl: cfg.kafka.sasl,
        },
        groupId: flags.groupId,
        task,
        seed: flags.seed,
        ratePerSecond: flags.rate,
        ...(flags.total !== undefined ? { total: flags.total } : {}),
        mode: flags.mode,
        augmentation: { ...preset, m },
        patchSeed,
        answerDelayMs: flags.answerDelayMs,
        answerJitterMs: flags.answerJitterMs,
        labelNoise: flags.labelNoise,
        unsolicitedShare: flags.unsolicitedShare,
        annotatorId: flags.annotatorId,
        evaluate: flags.evaluate,
        evalSize: flags.evalSize,
        backend,
        artifactRoot: flags.artifactRoot,
        versionsFromBeginning: flags.versionsFromBeginning === true,
        createMissingTopics: flags.createTopics === true,
        log,
      });
      log(
        `simulating on ${(flags.brokers ?? cfg.kafka.brokers).join(',')}: ${sim.stats().candidatesPlanned} candidates at ${flags.rate}/s to ${cfg.kafka.topics.candidates}, answering ${cfg.kafka.topics.labelingRequests} (Ctrl-C to stop)`,
      );

      const progress =
        flags.progressMs > 0
          ? setInterval(() => log(formatProgress(sim.stats())), flags.progressMs)
          : undefined;
      const reason = await new Promise<string>((resolve) => {
        let stopping = false;
        const onSignal = (signal: NodeJS.Signals) => {
          // A second signal, or one while stopping, exits at once: nothing may keep the process.
          if (stopping) {
            log(`${signal} while stopping: exiting without a clean stop`);
            process.exit(130);
          }
          stopping = true;
          resolve(signal);
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        if (flags.durationMs !== undefined)
          setTimeout(() => {
            stopping = true;
            resolve(`${flags.durationMs} ms elapsed`);
          }, flags.durationMs).unref();
      });
      if (progress !== undefined) clearInterval(progress);
      log(`stopping (${reason})`);
      // The Kafka clients may be retrying against brokers that are gone: the stop gets a bound, and
      // the process exits after it whatever is still open.
      const stopped = await Promise.race([
        sim.stop().then(() => true),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), STOP_GRACE_MS).unref()),
      ]);
      log(
        stopped
          ? `stopped: ${formatProgress(sim.stats())}`
          : `not stopped cleanly within ${STOP_GRACE_MS / 1000} s (brokers unreachable?): ${formatProgress(sim.stats())}`,
      );
      process.exit(stopped ? 0 : 1);
    });
}
