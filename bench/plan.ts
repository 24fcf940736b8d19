import { parseArgs } from 'node:util';
import type { Cell } from './experiment';
import { itemBytes, MAX_ITEM_BYTES } from './metering';
import { singleItemFor } from './single-item-store';
import { STRATEGY_NAMES, type StrategyName } from './strategies';
import { subtaskIdsFor } from './workload';

/** Which rows a bench run measures: the command-line options, and the cells of the full matrix it skips and why. */

export interface BenchOptions {
  readonly quick: boolean;
  readonly fanOuts: readonly number[];
  readonly appliers: readonly number[];
  readonly batchSizes: readonly number[];
  readonly strategies: readonly StrategyName[];
  /** Run every combination, skipping nothing. */
  readonly every: boolean;
  readonly seed: number;
  readonly out: string;
  /** Each row stops taking new deliveries after this long; what it took is still seen through and checked. */
  readonly rowBudgetSeconds: number;
}

export interface SkippedCells {
  readonly cells: readonly Cell[];
  readonly reason: string;
}

export interface Plan {
  readonly cells: readonly Cell[];
  readonly skipped: readonly SkippedCells[];
}

/** The cells the headline reports: fan-out 1,000 and 32 appliers, at batch sizes 10 and 100. */
export const HEADLINE = { fanOut: 1_000, appliers: 32, batchSizes: [10, 100] } as const;

const FULL = {
  fanOuts: [100, 1_000, 5_000],
  appliers: [1, 8, 32],
  batchSizes: [1, 10, 100],
  rowBudgetSeconds: 30,
};
const QUICK = { fanOuts: [100, 1_000], appliers: [8], batchSizes: [10], rowBudgetSeconds: 5 };

export const USAGE = `npm run bench -- [options]

  --quick               fan-out 100 and 1,000, 8 appliers, batch size 10, every strategy (under a minute)
  --fanouts=100,1000    subtasks per task           (full run: ${FULL.fanOuts.join(',')})
  --appliers=1,8,32     concurrent appliers          (full run: ${FULL.appliers.join(',')})
  --batches=1,10,100    Lambda batch sizes           (full run: ${FULL.batchSizes.join(',')})
  --strategies=a,b      ${STRATEGY_NAMES.join(', ')}
  --every               run every combination; by default cells that add nothing are skipped (and listed)
  --seed=42             workload seed
  --out=bench/results.json
  --row-budget=SECONDS  each row stops taking new deliveries after this long (quick: ${QUICK.rowBudgetSeconds}, full: ${FULL.rowBudgetSeconds});
                        the deliveries it took are seen through and checked for exactness`;

function numbers(text: string | undefined, fallback: readonly number[], name: string): readonly number[] {
  if (text === undefined) return fallback;
  const values = text.split(',').map((part) => Number(part.trim()));
  if (values.length === 0 || values.some((value) => !Number.isSafeInteger(value) || value < 1)) {
    throw new RangeError(`--${name} takes positive integers separated by commas, got '${text}'`);
  }
  return values;
}

function strategies(text: string | undefined): readonly StrategyName[] {
  if (text === undefined) return STRATEGY_NAMES;
  return text.split(',').map((part) => {
    const name = STRATEGY_NAMES.find((known) => known === part.trim());
    if (name === undefined)
      throw new RangeError(`Unknown strategy '${part}'; known: ${STRATEGY_NAMES.join(', ')}`);
    return name;
  });
}

function seedOf(text: string): number {
  const seed = Number(text);
  if (!Number.isSafeInteger(seed)) throw new RangeError(`--seed takes an integer, got '${text}'`);
  return seed;
}

/** Parses `npm run bench -- …`; returns undefined when help was asked for. */
export function parseOptions(argv: readonly string[]): BenchOptions | undefined {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      fanouts: { type: 'string' },
      appliers: { type: 'string' },
      batches: { type: 'string' },
      strategies: { type: 'string' },
      every: { type: 'boolean', default: false },
      seed: { type: 'string', default: '42' },
      out: { type: 'string', default: 'bench/results.json' },
      'row-budget': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const preset = values.quick ? QUICK : FULL;
  return {
    quick: values.quick,
    fanOuts: numbers(values.fanouts, preset.fanOuts, 'fanouts'),
    appliers: numbers(values.appliers, preset.appliers, 'appliers'),
    batchSizes: numbers(values.batches, preset.batchSizes, 'batches'),
    strategies: strategies(values.strategies),
    every: values.every,
    seed: seedOf(values.seed),
    out: values.out,
    rowBudgetSeconds:
      numbers(values['row-budget'], [preset.rowBudgetSeconds], 'row-budget')[0] ?? preset.rowBudgetSeconds,
  };
}

/** Whether the single item of a task of `fanOut` subtasks is already over 400 KB before any status. */
export function singleItemTooLargeAtStart(fanOut: number): boolean {
  const request = {
    taskId: 'size-probe',
    actionName: 'emailed',
    total: fanOut,
    subtaskIds: subtaskIdsFor(fanOut),
  };
  return itemBytes(singleItemFor(request, Date.now())) > MAX_ITEM_BYTES;
}

/** Every combination of the options, in the order they run: by fan-out, then appliers, batch size, strategy. */
function combinations(options: BenchOptions): Cell[] {
  return options.fanOuts.flatMap((fanOut) =>
    options.appliers.flatMap((appliers) =>
      options.batchSizes.flatMap((batchSize) =>
        options.strategies.map((strategy): Cell => ({ strategy, fanOut, appliers, batchSize })),
      ),
    ),
  );
}

interface SkipRule {
  readonly reason: string;
  readonly skips: (cell: Cell) => boolean;
}

/**
 * Cells of the matrix that add nothing the other cells do not already show, so that the full run fits in about
 * twenty minutes on a small machine. Each rule states its reason in the output.
 */
function skipRules(options: BenchOptions): SkipRule[] {
  const smallestFanOut = Math.min(...options.fanOuts);
  const largestFanOut = Math.max(...options.fanOuts);
  const fewestAppliers = Math.min(...options.appliers);
  const mostAppliers = Math.max(...options.appliers);
  const oneByOneBatch = options.batchSizes.includes(10) ? 10 : (options.batchSizes[0] ?? 10);
  const tooLarge = new Map(options.fanOuts.map((fanOut) => [fanOut, singleItemTooLargeAtStart(fanOut)]));
  const isHeadline = (cell: Cell) => cell.fanOut === HEADLINE.fanOut && cell.appliers === HEADLINE.appliers;
  return [
    {
      reason:
        'single-item at a fan-out whose item is over 400 KB before any status: the task cannot even be created, ' +
        'whatever the appliers and batch size; one row records it',
      skips: (cell) =>
        cell.strategy === 'single-item' &&
        tooLarge.get(cell.fanOut) === true &&
        !(cell.appliers === fewestAppliers && cell.batchSize === oneByOneBatch),
    },
    {
      reason:
        `per-message and single-item apply each status in its own cycle whatever the batch size, which only ` +
        `changes the time per batch: run at batch size ${oneByOneBatch}, and at ${HEADLINE.batchSizes.join(' and ')} ` +
        `at fan-out ${HEADLINE.fanOut.toLocaleString('en-US')} with ${HEADLINE.appliers} appliers`,
      skips: (cell) =>
        cell.strategy !== 'coalesced' &&
        cell.batchSize !== oneByOneBatch &&
        !(isHeadline(cell) && (HEADLINE.batchSizes as readonly number[]).includes(cell.batchSize)),
    },
    {
      reason:
        "coalesced at batch size 1 is one status per cycle, exactly the per-message strategy's work: run at " +
        `fan-out ${smallestFanOut.toLocaleString('en-US')} only, where the two can be compared`,
      skips: (cell) =>
        cell.strategy === 'coalesced' && cell.batchSize === 1 && cell.fanOut !== smallestFanOut,
    },
    {
      reason:
        `at fan-out ${largestFanOut.toLocaleString('en-US')}, only ${fewestAppliers} and ${mostAppliers} ` +
        'appliers: the middle concurrency falls between the two on the trend the smaller fan-outs show, and a ' +
        'row of this size costs a full time budget',
      skips: (cell) =>
        options.fanOuts.length > 1 &&
        cell.fanOut === largestFanOut &&
        cell.appliers !== fewestAppliers &&
        cell.appliers !== mostAppliers,
    },
  ];
}

export function planCells(options: BenchOptions): Plan {
  const all = combinations(options);
  if (options.every) return { cells: all, skipped: [] };
  const rules = skipRules(options);
  const skipped = rules.map((rule) => ({ reason: rule.reason, cells: [] as Cell[] }));
  const cells = all.filter((cell) => {
    const index = rules.findIndex((rule) => rule.skips(cell));
    if (index >= 0) skipped[index]?.cells.push(cell);
    return index < 0;
  });
  return { cells, skipped: skipped.filter((group) => group.cells.length > 0) };
}
