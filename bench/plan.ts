/** Which rows a bench run measures: the command-line options, and the cells of the full matrix it skips and why. */

import { parseArgs } from 'node:util';
import type { Cell } from './experiment';
import { STRATEGY_NAMES, type StrategyName } from './types';

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
  /** Also measure read lag end to end on the local stack (HTTP GETs), at each appliers count. */
  readonly stackLag: boolean;
}

export interface SkippedCells {
  readonly cells: readonly Cell[];
  readonly reason: string;
}

export interface Plan {
  readonly cells: readonly Cell[];
  readonly skipped: readonly SkippedCells[];
}

/** The hot-task cell the targets are judged on: fan-out 1,000, batch size 10, 1 and 32 appliers. */
export const HEADLINE = { fanOut: 1_000, batchSize: 10, appliers: [1, 32] } as const;

const FULL = {
  fanOuts: [1_000, 5_000],
  appliers: [1, 8, 32],
  batchSizes: [10, 100],
  rowBudgetSeconds: 30,
};
const QUICK = { fanOuts: [100, 1_000], appliers: [8], batchSizes: [10], rowBudgetSeconds: 5 };

export const USAGE = `npm run bench -- [options]

  --quick               fan-out 100 and 1,000, 8 appliers, batch size 10, every strategy (under a minute)
  --fanouts=1000,5000   subtasks per task           (full run: ${FULL.fanOuts.join(',')})
  --appliers=1,8,32     concurrent appliers          (full run: ${FULL.appliers.join(',')})
  --batches=10,100      Lambda batch sizes           (full run: ${FULL.batchSizes.join(',')})
  --strategies=a,b      ${STRATEGY_NAMES.join(', ')}
  --every               run every combination; by default cells that add nothing are skipped (and listed)
  --seed=42             workload seed
  --out=FILE            the results JSON (default: .bench/results.json, git-ignored)
  --row-budget=SECONDS  each row stops taking new deliveries after this long (quick: ${QUICK.rowBudgetSeconds}, full: ${FULL.rowBudgetSeconds});
                        the deliveries it took are seen through and checked for exactness
  --stack-lag=on|off    also measure read lag on the whole local stack (SQS → applier → stream → aggregator →
                        GET over HTTP) at each appliers count (default: on when streamed runs, off with --quick)

The hot-task cell: npm run bench -- --fanouts=1000 --appliers=1,32 --batches=10 --strategies=streamed,coalesced`;

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
      out: { type: 'string', default: '.bench/results.json' },
      'row-budget': { type: 'string' },
      'stack-lag': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const preset = values.quick ? QUICK : FULL;
  const chosen = strategies(values.strategies);
  const stackLag = values['stack-lag'];
  if (stackLag !== undefined && stackLag !== 'on' && stackLag !== 'off') {
    throw new RangeError(`--stack-lag takes on or off, got '${stackLag}'`);
  }
  return {
    quick: values.quick,
    fanOuts: numbers(values.fanouts, preset.fanOuts, 'fanouts'),
    appliers: numbers(values.appliers, preset.appliers, 'appliers'),
    batchSizes: numbers(values.batches, preset.batchSizes, 'batches'),
    strategies: chosen,
    every: values.every,
    seed: seedOf(values.seed),
    out: values.out,
    rowBudgetSeconds:
      numbers(values['row-budget'], [preset.rowBudgetSeconds], 'row-budget')[0] ?? preset.rowBudgetSeconds,
    stackLag: stackLag === undefined ? !values.quick && chosen.includes('streamed') : stackLag === 'on',
  };
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

/** Cells of the matrix that add nothing the other cells do not already show; each rule states its reason. */
function skipRules(options: BenchOptions): SkipRule[] {
  const coalescedFanOut = options.fanOuts.includes(HEADLINE.fanOut)
    ? HEADLINE.fanOut
    : Math.min(...options.fanOuts);
  return [
    {
      reason:
        `coalesced (round 1) only at fan-out ${coalescedFanOut.toLocaleString('en-US')}: its task and subtasks ` +
        'share one partition and every item stays under 1 KB at any fan-out, so its per-status figures do not ' +
        'depend on the fan-out (round 1 measured 2.33 WU/status at 100, 1,000 and 5,000)',
      skips: (cell) => cell.strategy === 'coalesced' && cell.fanOut !== coalescedFanOut,
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
