/**
 * Benchmark tasks built from a labeled image set (DESIGN.md, "Data for benchmarks and demos").
 *
 * Conventions:
 * - Splits are per source class, by position among the class's VALID images (in file order):
 *   the last `testPerClass` (default 1000) are the test set, the `valPerClass` (default 500)
 *   before them the validation set, the rest the training pool (the candidates). This is fixed and
 *   seed-independent. A class with fewer than testPerClass + valPerClass valid images is an error.
 * - Binary task (`positive`, optional `negative`; negatives default to every other class): label 1
 *   for positives, 0 for negatives; classNames = [negative names joined by '+', positive names].
 *   Multi-class task (`classes`): label k for the k-th class given.
 * - `ratio` (binary only) = negatives per positive. Each split is subsampled separately to reach
 *   it: if it has more than round(ratio * P) negatives, a uniform sample of round(ratio * P) of
 *   them is kept, otherwise a sample of max(1, round(N / ratio)) positives is kept. The pool and
 *   validation samples are seeded by `seed`; the test sample uses a fixed seed derived from the
 *   task's classes and ratio only, so the test set is identical across seeds.
 * - Within a split, images are in set order (class by class, file order); shuffle when needed.
 * - Candidate ids: `<idPrefix>-<source class>-<record index within the class file, 5+ digits>`,
 *   e.g. `fmnist-6-00123`; the record index counts rejected records too, so ids are stable.
 */
import { createRng, deriveSeed, shuffleInPlace } from '../core/rng.js';
import type { ImageSet } from './image-set.js';

export interface TaskSpec {
  /** Binary task: the source classes labeled 1. */
  positive?: number[];
  /** Binary task: the source classes labeled 0 (default: every class not in `positive`). */
  negative?: number[];
  /** Multi-class task: the source classes, mapped to labels 0..K-1 in this order. */
  classes?: number[];
  /** Binary only: negatives per positive, e.g. 9; each split is subsampled to reach it. */
  ratio?: number;
  seed: number;
  /** Default 1000. */
  testPerClass?: number;
  /** Default 500. */
  valPerClass?: number;
}

export interface Split {
  /** Indices into the image set. */
  indices: Int32Array;
  /** Task labels (0/1 for binary tasks, 0..K-1 for multi-class tasks). */
  labels: Int32Array;
  /** Stable candidate ids, e.g. `fmnist-6-00123`. */
  ids: string[];
}

export type SplitName = 'pool' | 'validation' | 'test';

export interface Task {
  /** Human-readable, e.g. `fashion-mnist: Shirt vs T-shirt/top+Pullover+Coat (1:9)`. */
  name: string;
  kind: 'binary' | 'multiclass';
  set: ImageSet;
  spec: Required<Omit<TaskSpec, 'ratio'>> & { ratio: number | undefined };
  numClasses: number;
  classNames: string[];
  /** Source classes behind each task label. */
  sourceClasses: number[][];
  pool: Split;
  validation: Split;
  test: Split;
}

export const SPLIT_NAMES: readonly SplitName[] = ['pool', 'validation', 'test'];

export class TaskSpecError extends Error {
  override readonly name = 'TaskSpecError';
}

/**
 * Parses a class list such as `"0,2,4"` or `"0-9"` (ranges inclusive; spaces allowed). With
 * `numClasses`, every class must be below it. Throws TaskSpecError on anything else.
 */
export function parseClassList(text: string, numClasses?: number): number[] {
  if (typeof text !== 'string' || text.trim() === '') throw new TaskSpecError('class list is empty');
  const out: number[] = [];
  for (const raw of text.split(',')) {
    const part = raw.trim();
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (!m)
      throw new TaskSpecError(`bad class list "${text}": "${part}" is not a class number or a range a-b`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new TaskSpecError(`bad class list "${text}": range ${part} is descending`);
    for (let c = a; c <= b; c++) out.push(c);
  }
  checkClasses('class list', out, numClasses);
  return out;
}

function checkClasses(what: string, classes: unknown, numClasses: number | undefined): number[] {
  if (!Array.isArray(classes) || classes.length === 0)
    throw new TaskSpecError(`${what} must be a non-empty list`);
  const seen = new Set<number>();
  for (const c of classes as unknown[]) {
    if (typeof c !== 'number' || !Number.isInteger(c) || c < 0)
      throw new TaskSpecError(`${what}: ${String(c)} is not a class number (a non-negative integer)`);
    if (numClasses !== undefined && c >= numClasses)
      throw new TaskSpecError(
        `${what}: class ${c} does not exist (the set has classes 0..${numClasses - 1})`,
      );
    if (seen.has(c)) throw new TaskSpecError(`${what}: class ${c} is listed twice`);
    seen.add(c);
  }
  return classes as number[];
}

function nonNegInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0)
    throw new TaskSpecError(`${name} must be a non-negative integer, got ${v}`);
  return v;
}

function candidateId(set: ImageSet, cls: number, sourceIndex: number): string {
  return `${set.idPrefix}-${cls}-${String(sourceIndex).padStart(5, '0')}`;
}

/** Builds a task's fixed splits from a set (see the module comment for every convention). */
export function buildTask(set: ImageSet, spec: TaskSpec): Task {
  const K = set.classNames.length;
  if (!Number.isSafeInteger(spec.seed))
    throw new TaskSpecError(`seed must be a safe integer, got ${spec.seed}`);
  const testPerClass = nonNegInt('testPerClass', spec.testPerClass ?? 1000);
  const valPerClass = nonNegInt('valPerClass', spec.valPerClass ?? 500);

  let sourceClasses: number[][];
  let kind: Task['kind'];
  if (spec.classes !== undefined) {
    if (spec.positive !== undefined || spec.negative !== undefined)
      throw new TaskSpecError(
        'give either classes (multi-class task) or positive/negative (binary task), not both',
      );
    if (spec.ratio !== undefined)
      throw new TaskSpecError('ratio applies to binary tasks only (positive/negative), not to classes');
    const classes = checkClasses('classes', spec.classes, K);
    if (classes.length < 2) throw new TaskSpecError('a multi-class task needs at least 2 classes');
    sourceClasses = classes.map((c) => [c]);
    kind = 'multiclass';
  } else {
    if (spec.positive === undefined)
      throw new TaskSpecError(
        'give positive (binary task, optionally with negative) or classes (multi-class task)',
      );
    const positive = checkClasses('positive', spec.positive, K);
    const negative =
      spec.negative === undefined
        ? Array.from({ length: K }, (_, c) => c).filter((c) => !positive.includes(c))
        : checkClasses('negative', spec.negative, K);
    if (negative.length === 0) throw new TaskSpecError('a binary task needs at least one negative class');
    const both = positive.filter((c) => negative.includes(c));
    if (both.length > 0) throw new TaskSpecError(`classes ${both.join(', ')} are both positive and negative`);
    if (spec.ratio !== undefined && !(Number.isFinite(spec.ratio) && spec.ratio > 0))
      throw new TaskSpecError(`ratio (negatives per positive) must be a number > 0, got ${spec.ratio}`);
    sourceClasses = [negative, positive];
    kind = 'binary';
  }

  // Valid images of each source class, in set (file) order.
  const taskLabelOf = new Map<number, number>();
  sourceClasses.forEach((cs, label) => cs.forEach((c) => taskLabelOf.set(c, label)));
  const perClass = new Map<number, number[]>();
  for (const c of taskLabelOf.keys()) perClass.set(c, []);
  for (let i = 0; i < set.count; i++) perClass.get(set.labels[i]!)?.push(i);

  const parts: Record<SplitName, number[]> = { pool: [], validation: [], test: [] };
  for (const [c, idx] of perClass) {
    if (idx.length < testPerClass + valPerClass) {
      throw new TaskSpecError(
        `class ${c} (${set.classNames[c]}) of ${set.name} has ${idx.length} valid images, fewer than ` +
          `testPerClass + valPerClass = ${testPerClass} + ${valPerClass}; lower them`,
      );
    }
    const testStart = idx.length - testPerClass;
    const valStart = testStart - valPerClass;
    parts.pool.push(...idx.slice(0, valStart));
    parts.validation.push(...idx.slice(valStart, testStart));
    parts.test.push(...idx.slice(testStart));
  }

  const ratio = kind === 'binary' ? spec.ratio : undefined;
  const fixedSeed = deriveSeed('task-test', sourceClasses.map((cs) => cs.join(',')).join('|'), ratio ?? 0);
  const seeds: Record<SplitName, number> = {
    pool: deriveSeed('task', spec.seed, 'pool'),
    validation: deriveSeed('task', spec.seed, 'validation'),
    test: fixedSeed,
  };

  const makeSplit = (name: SplitName): Split => {
    let indices = parts[name];
    if (ratio !== undefined) indices = subsampleToRatio(indices, set, taskLabelOf, ratio, seeds[name]);
    indices.sort((a, b) => a - b);
    const labels = new Int32Array(indices.length);
    const ids: string[] = new Array<string>(indices.length);
    indices.forEach((i, k) => {
      const c = set.labels[i]!;
      labels[k] = taskLabelOf.get(c)!;
      ids[k] = candidateId(set, c, set.sourceIndex[i]!);
    });
    return { indices: Int32Array.from(indices), labels, ids };
  };

  const classNames = sourceClasses.map((cs) => cs.map((c) => set.classNames[c] ?? String(c)).join('+'));
  const name =
    kind === 'binary'
      ? `${set.name}: ${classNames[1]} vs ${classNames[0]}${ratio !== undefined ? ` (1:${ratio})` : ''}`
      : `${set.name}: ${classNames.length} classes`;

  return {
    name,
    kind,
    set,
    spec: {
      positive: kind === 'binary' ? [...sourceClasses[1]!] : [],
      negative: kind === 'binary' ? [...sourceClasses[0]!] : [],
      classes: kind === 'multiclass' ? sourceClasses.map((cs) => cs[0]!) : [],
      ratio,
      seed: spec.seed,
      testPerClass,
      valPerClass,
    },
    numClasses: sourceClasses.length,
    classNames,
    sourceClasses,
    pool: makeSplit('pool'),
    validation: makeSplit('validation'),
    test: makeSplit('test'),
  };
}

function sample(arr: number[], k: number, seed: number): number[] {
  if (k >= arr.length) return arr;
  return shuffleInPlace([...arr], createRng(seed)).slice(0, k);
}

function subsampleToRatio(
  indices: number[],
  set: ImageSet,
  taskLabelOf: Map<number, number>,
  ratio: number,
  seed: number,
): number[] {
  const pos: number[] = [];
  const neg: number[] = [];
  for (const i of indices) (taskLabelOf.get(set.labels[i]!) === 1 ? pos : neg).push(i);
  if (pos.length === 0 || neg.length === 0) return indices;
  const wantNeg = Math.round(ratio * pos.length);
  if (neg.length > wantNeg) return [...pos, ...sample(neg, wantNeg, deriveSeed(seed, 'negatives'))];
  const wantPos = Math.max(1, Math.round(neg.length / ratio));
  return [...sample(pos, wantPos, deriveSeed(seed, 'positives')), ...neg];
}

export interface SplitDescription {
  total: number;
  /** Count per task label. */
  perClass: number[];
  /** Count per source class (keys are source class numbers). */
  perSourceClass: Record<number, number>;
}

export interface TaskDescription {
  name: string;
  kind: Task['kind'];
  numClasses: number;
  classNames: string[];
  splits: Record<SplitName, SplitDescription>;
}

/** Counts per split and class. */
export function describeTask(task: Task): TaskDescription {
  const describe = (split: Split): SplitDescription => {
    const perClass = new Array<number>(task.numClasses).fill(0);
    const perSourceClass: Record<number, number> = {};
    for (const cs of task.sourceClasses) for (const c of cs) perSourceClass[c] = 0;
    split.indices.forEach((i, k) => {
      perClass[split.labels[k]!]! += 1;
      const c = task.set.labels[i]!;
      perSourceClass[c] = (perSourceClass[c] ?? 0) + 1;
    });
    return { total: split.indices.length, perClass, perSourceClass };
  };
  return {
    name: task.name,
    kind: task.kind,
    numClasses: task.numClasses,
    classNames: [...task.classNames],
    splits: { pool: describe(task.pool), validation: describe(task.validation), test: describe(task.test) },
  };
}

/** A few lines of text for logs and reports, e.g. `pool 20000: Shirt 2000, ...`. */
export function formatTaskDescription(d: TaskDescription): string {
  const lines = [`${d.name} (${d.kind}, ${d.numClasses} classes)`];
  for (const s of SPLIT_NAMES) {
    const sd = d.splits[s];
    const per = sd.perClass.map((n, k) => `${d.classNames[k]} ${n}`).join(', ');
    lines.push(`  ${s} ${sd.total}: ${per}`);
  }
  return lines.join('\n');
}
