/** Parsers for CLI option values: each rejects a bad value with one sentence naming the option. */
import { InvalidArgumentError } from 'commander';
import type { FineTuneDepth } from '../model/fine-tune-depth.js';

export function intOption(name: string, min = 0) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got '${value}'.`);
    }
    return n;
  };
}

export function numberOption(name: string, min = -Infinity, max = Infinity) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be a number in [${min}, ${max}], got '${value}'.`);
    }
    return n;
  };
}

export function intListOption(name: string, min = 0) {
  return (value: string): number[] => {
    const parts = value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const nums = parts.map(Number);
    if (parts.length === 0 || nums.some((n) => !Number.isSafeInteger(n) || n < min)) {
      throw new InvalidArgumentError(
        `${name} must be a comma-separated list of integers${min > 0 ? ` >= ${min}` : ''}, got '${value}'.`,
      );
    }
    return nums;
  };
}

export function listOption<T>(name: string, parse: (s: string) => T) {
  return (value: string): T[] => {
    const parts = value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (parts.length === 0) throw new InvalidArgumentError(`${name} must not be empty.`);
    try {
      return parts.map(parse);
    } catch (e) {
      throw new InvalidArgumentError(`${name}: ${(e as Error).message}`);
    }
  };
}

export function choiceOption<T extends string>(name: string, choices: readonly T[]) {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value)) {
      throw new InvalidArgumentError(`${name} must be one of ${choices.join(', ')}, got '${value}'.`);
    }
    return value as T;
  };
}

/** `--fine-tune-depth`: 'all' or a positive integer (weight layers trained, from the output). */
export function fineTuneDepthOption(value: string): FineTuneDepth {
  if (value.trim() === 'all') return 'all';
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError(`--fine-tune-depth must be 'all' or an integer >= 1, got '${value}'.`);
  }
  return n;
}
