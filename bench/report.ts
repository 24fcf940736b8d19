/** Plain-text (Markdown) tables of a bench run, the per-partition model, and the verdict on each target. */

import type { Cell, RowResult } from './experiment';
import type { MeteringCheck, ReadCheck } from './metering-check';
import {
  MODEL_SUBTASKS,
  PARTITION_READ_UNITS_PER_SECOND,
  PARTITION_WRITE_UNITS_PER_SECOND,
  type StreamedModel,
} from './model';
import { HEADLINE, type SkippedCells } from './plan';
import type { StackLagResult } from './stack-lag';
import type { StrategyName } from './types';

type Align = 'left' | 'right';

interface Column<T> {
  readonly header: string;
  readonly align?: Align;
  readonly value: (row: T) => string;
}

/** The one table formatter: a header, a rule and one line per row, each cell from its column's `value`. */
function table<T>(columns: readonly Column<T>[], rows: readonly T[]): string {
  const cells = rows.map((row) => columns.map((column) => column.value(row)));
  const widths = columns.map((column, index) =>
    Math.max(column.header.length, ...cells.map((line) => (line[index] ?? '').length)),
  );
  const right = (index: number) => (columns[index]?.align ?? 'right') === 'right';
  const line = (values: readonly string[]) =>
    `| ${values
      .map((value, index) => {
        const width = widths[index] ?? 0;
        return right(index) ? value.padStart(width) : value.padEnd(width);
      })
      .join(' | ')} |`;
  const rule = `|${widths.map((width, index) => (right(index) ? `${'-'.repeat(width + 1)}:` : '-'.repeat(width + 2))).join('|')}|`;
  return [line(columns.map((column) => column.header)), rule, ...cells.map(line)].join('\n');
}

const integer = (value: number) =>
  Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : value > 0 ? '∞' : '—';
const fixed = (value: number, digits: number) => value.toFixed(digits);
export const appliersText = (appliers: number) => `${appliers} applier${appliers === 1 ? '' : 's'}`;

/** A column of a measured figure: a dash when the row did not finish. */
function figure(header: string, value: (row: RowResult) => string): Column<RowResult> {
  return { header, value: (row) => (row.status === 'ok' ? value(row) : '—') };
}

/** A streamed row's figure; blank for the transactional row, which has no fold. */
function streamedFigure(
  header: string,
  value: (row: RowResult & { streamed: NonNullable<RowResult['streamed']> }) => string,
): Column<RowResult> {
  return figure(header, (row) =>
    row.streamed === undefined ? '' : value({ ...row, streamed: row.streamed }),
  );
}

const CELL_COLUMNS: readonly Column<RowResult>[] = [
  { header: 'strategy', align: 'left', value: (row) => row.strategy },
  { header: 'fan-out', value: (row) => integer(row.fanOut) },
  { header: 'appliers', value: (row) => String(row.appliers) },
  { header: 'batch', value: (row) => String(row.batchSize) },
];

function verdict(row: RowResult): string {
  if (row.status === 'failed') return '✗ failed';
  return row.exact ? '✓' : '✗';
}

/** The measured figures, one line per row. */
export function measuredTable(rows: readonly RowResult[]): string {
  return table(
    [
      ...CELL_COLUMNS,
      figure('deliveries', (row) =>
        row.complete
          ? integer(row.deliveries)
          : `${integer(row.deliveriesTaken)} of ${integer(row.deliveries)}`,
      ),
      figure('applied', (row) => integer(row.applied)),
      figure('st/s', (row) => integer(row.statusesPerSecond)),
      figure('WU/st billed', (row) => fixed(row.unitsPerStatusBilled, 2)),
      figure('WU/st committed', (row) => fixed(row.unitsPerStatusCommitted, 2)),
      figure('conflicts/st', (row) => fixed(row.conflictsPerStatus, 3)),
      figure('RU/st applier', (row) => fixed(row.readUnitsPerStatus.applier, 2)),
      figure('RU/st fold', (row) =>
        row.streamed === undefined ? '' : fixed(row.readUnitsPerStatus.fold, 2),
      ),
      figure('RU/st total', (row) => fixed(row.readUnitsPerStatus.total, 2)),
      figure('retries/st', (row) => fixed(row.retriesPerStatus, 3)),
      figure('batch p50 ms', (row) => integer(row.batchLatencyMs.p50)),
      figure('batch p99 ms', (row) => integer(row.batchLatencyMs.p99)),
      { header: 'exact', align: 'left', value: verdict },
    ],
    rows,
  );
}

/** The streamed rows' fold: where its write units go, how often it recounts, and how far reads lag. */
export function foldTable(rows: readonly RowResult[]): string {
  return table(
    [
      ...CELL_COLUMNS,
      streamedFigure(
        'WU/st subtask (refused)',
        (row) => `${fixed(row.streamed.subtaskUnits, 3)} (${fixed(row.streamed.refusedSubtaskUnits, 3)})`,
      ),
      streamedFigure('WU/st counter', (row) => fixed(row.streamed.counterUnits, 3)),
      streamedFigure('WU/st task', (row) => fixed(row.streamed.taskUnits, 3)),
      streamedFigure('WU/st index', (row) => fixed(row.streamed.indexUnits, 3)),
      streamedFigure('fold batches', (row) => integer(row.streamed.foldBatches)),
      streamedFigure(
        'batch p50/max ms',
        (row) => `${integer(row.streamed.foldBatchMs.p50)}/${integer(row.streamed.foldBatchMs.max)}`,
      ),
      streamedFigure('recounts', (row) => integer(row.streamed.recounts)),
      streamedFigure('st/recount', (row) => fixed(row.streamed.statusesPerRecount, 1)),
      streamedFigure('WU/recount', (row) => fixed(row.streamed.foldUnitsPerRecount, 2)),
      streamedFigure('RU/recount', (row) => fixed(row.streamed.foldReadUnitsPerRecount, 1)),
      streamedFigure('catch-up s', (row) => fixed(row.streamed.catchUpSeconds, 1)),
      streamedFigure('read lag p50 ms', (row) => integer(row.streamed.readLag.p50Ms)),
      streamedFigure('read lag p99 ms', (row) => integer(row.streamed.readLag.p99Ms)),
      streamedFigure('lag samples', (row) => integer(row.streamed.readLag.samples)),
    ],
    rows.filter((row) => row.strategy === 'streamed'),
  );
}

export const LEGEND = `deliveries: status messages taken (duplicates included); "n of m" when the row's time budget ran out
  first, in which case every figure and the exactness check cover exactly those n.
applied: statuses that changed a subtask (duplicates and stale statuses change nothing).
st/s: applied statuses per second of the appliers' wall time on DynamoDB Local on this machine (not DynamoDB's
  speed); for streamed the aggregator runs in the same process and is caught up afterwards (catch-up s).
WU/st billed: write units per applied status of every write sent, by DynamoDB's rules: refused writes (failed
  conditions, canceled transactions) are billed too. Streamed: subtask puts + counter puts + task updates
  (the larger of the whole item before and after) + due-index writes. Coalesced: 2 units per KB of every item
  of every transaction, canceled ones priced like committed ones (the upper bound).
WU/st committed: the same for the writes that took effect.
conflicts/st: writes refused because another writer got there first (a subtask put whose version moved; a
  transaction whose task version moved), per applied status.
RU/st: read units per applied status as DynamoDB Local reports them (they follow DynamoDB's rules, checked
  above): the appliers' (task item and subtask BatchGetItem, eventually consistent, consistent again after a
  conflict or before a dead letter) and the aggregator's (task item, shard Query, the counters' one Query).
retries/st: deliveries handed back after a cycle's 10 attempts ran out (SQS would redeliver them).
batch p50/p99 ms: wall time of one applier batch.
fold batches: stream batches the aggregator's handler was invoked with, and its wall time per batch;
  recounts: shard recounts (each one counter write); WU/recount, RU/recount: the aggregator's write and read
  units per recount.
catch-up s: from the appliers' last batch until the stream poller had handed over every record.
read lag: from a status being handed to an applier until a read of the task (store.getTask, what GET returns)
  shows it, traced exactly through the recounts (the reader polls every 100 ms, the lag's resolution).
exact: counts, subtask counters, state and in_flight equal the ground truth; every subtask holds what was
  delivered to it; every versioned item's version equals its applied writes (task commits for coalesced, each
  subtask's writes for streamed).`;

/** Round 1's model: one partition per task. */
function transactionalModelText(row: RowResult): string {
  return row.model?.kind === 'transactional'
    ? `${integer(row.model.maxStatusesPerSecond)} (1,000 / ${fixed(row.unitsPerStatusBilled, 2)} WU/st billed)`
    : '';
}

/** The model for real DynamoDB at 100,000 subtasks, per row, with its terms. */
export function modelTable(rows: readonly RowResult[]): string {
  const streamed = (value: (model: StreamedModel) => string) => (row: RowResult) =>
    row.status !== 'ok' ? '—' : row.model?.kind === 'streamed' ? value(row.model) : '';
  return table(
    [
      ...CELL_COLUMNS,
      { header: 's WU/st', value: streamed((model) => fixed(model.subtaskUnitsPerStatus, 3)) },
      { header: 'k', value: streamed((model) => fixed(model.skew, 3)) },
      { header: 'f WU/recount', value: streamed((model) => fixed(model.taskPartitionUnitsPerRecount, 2)) },
      { header: 'S×1000/(s×k)', value: streamed((model) => integer(model.subtaskPartitionsBound)) },
      { header: '1000×B/(f×ρ)', value: streamed((model) => integer(model.taskPartitionBound)) },
      { header: 'f×S/W WU/s', value: streamed((model) => integer(model.windowWriteLoad)) },
      { header: 'q×S/W RU/s', value: streamed((model) => integer(model.windowReadLoad)) },
      {
        header: 'fold RU/st at 10k st/s',
        value: streamed((model) => fixed(model.foldReadUnitsPerStatusAtRate, 2)),
      },
      {
        header: `max st/s/task at ${integer(MODEL_SUBTASKS)}`,
        value: (row) =>
          row.status !== 'ok'
            ? '—'
            : row.model?.kind === 'streamed'
              ? integer(row.model.maxStatusesPerSecond)
              : transactionalModelText(row),
      },
    ],
    rows,
  );
}

/** Each partition's peak load at 10,000 statuses/s on the model's hot task, against DynamoDB's limits. */
export function partitionTable(rows: readonly RowResult[]): string {
  const lines = rows.flatMap((row) =>
    row.status === 'ok' && row.model?.kind === 'streamed'
      ? row.model.partitions.map((load) => ({
          row,
          load,
          refreshes: row.model?.kind === 'streamed' ? row.model.refreshesPerSecond : 0,
        }))
      : [],
  );
  const share = (units: number, limit: number) => `${integer(units)} (${fixed((100 * units) / limit, 0)} %)`;
  return table(
    [
      ...CELL_COLUMNS.map((column) => ({
        ...column,
        value: (line: (typeof lines)[number]) => column.value(line.row),
      })),
      { header: 'partition', align: 'left', value: (line) => line.load.partition },
      { header: 'task refreshes/s', value: (line) => integer(line.refreshes) },
      {
        header: `RU/s of ${integer(PARTITION_READ_UNITS_PER_SECOND)}`,
        value: (line) => share(line.load.readUnitsPerSecond, PARTITION_READ_UNITS_PER_SECOND),
      },
      {
        header: `WU/s of ${integer(PARTITION_WRITE_UNITS_PER_SECOND)}`,
        value: (line) => share(line.load.writeUnitsPerSecond, PARTITION_WRITE_UNITS_PER_SECOND),
      },
    ],
    lines,
  );
}

/** The streamed rows' read units per applied status, by caller and item kind. */
export function readSplitTable(rows: readonly RowResult[]): string {
  const streamed = rows.filter((row) => row.status === 'ok' && row.model?.kind === 'streamed');
  const split = (role: 'applier' | 'fold', kind: 'task' | 'counter' | 'subtask') => (row: RowResult) =>
    row.model?.kind === 'streamed' ? fixed(row.model.readUnitsPerStatus[role][kind], 3) : '';
  return table(
    [
      ...CELL_COLUMNS,
      { header: 'applier task', value: split('applier', 'task') },
      { header: 'applier subtask', value: split('applier', 'subtask') },
      { header: 'fold task', value: split('fold', 'task') },
      { header: 'fold counter', value: split('fold', 'counter') },
      { header: 'fold subtask', value: split('fold', 'subtask') },
    ],
    streamed,
  );
}

export const MODEL_LEGEND = `Streamed, at ${integer(MODEL_SUBTASKS)} subtasks (S = 100 write shards, one partition key each, ${integer(PARTITION_WRITE_UNITS_PER_SECOND)} WU/s
and ${integer(PARTITION_READ_UNITS_PER_SECOND)} RU/s per partition; W = batching window, B = batch size of the aggregator's event source):
  max st/s = min( S × 1,000 / (s × k),  1,000 × B / (f × ρ) ),  valid while f × S / W ≤ 1,000
  s: subtask WU billed per applied status (measured); k: busiest shard / mean shard at ${integer(MODEL_SUBTASKS)} ids;
  f: task-partition WU per recount = counter WU + task writes × WU of the task item at ${integer(MODEL_SUBTASKS)} (measured
  writes per recount, refused ones included); ρ: subtask writes per applied status (measured).
  q × S / W: the task partition's reads when every shard is recounted once per window (each refresh reads the
  task item and all S counters), against its ${integer(PARTITION_READ_UNITS_PER_SECOND)} RU/s: over it, recounts are throttled, which slows
  the fold (read lag), not the appliers. fold RU/st at 10k st/s: the aggregator's reads per status at 10,000
  statuses/s (S / W recounts a second, each the shard Query as measured plus q).
Partition loads at 10,000 statuses/s on that task: each stream shard batches its own records and a write shard
  may be on a table partition of its own, so at worst every batch holds one write shard of the task and the task
  is refreshed T = max(S / W, R × ρ / B) times a second; each refresh reads the task item and one Query of its S
  counters (billed by size) and writes the task once (as measured per refresh); each write shard is recounted
  once per window; the appliers read the task item once per batch of the deployed size (100: a hot task fills
  its batches), as measured per status. The busiest write shard takes k / S of the appliers' subtask writes and
  reads; the due index the task writes that moved the due time (measured). Progress GETs add their own reads
  (0.5 RU each). Target: every partition under a third of its limit.
Coalesced (round 1): the task and its subtasks share one partition: 1,000 / WU billed per status, at any fan-out.`;

export function meteringTable(checks: readonly MeteringCheck[]): string {
  return table<MeteringCheck>(
    [
      { header: 'write', align: 'left', value: (check) => check.item },
      { header: 'bytes (metering)', value: (check) => integer(check.bytes) },
      { header: 'WU (metering)', value: (check) => String(check.meteredUnits) },
      {
        header: 'WU (DynamoDB Local)',
        value: (check) => (check.reportedUnits === undefined ? 'not reported' : String(check.reportedUnits)),
      },
      { header: 'agree', align: 'left', value: (check) => (check.agrees ? '✓' : '✗') },
    ],
    checks,
  );
}

export function readCheckTable(checks: readonly ReadCheck[]): string {
  return table<ReadCheck>(
    [
      { header: 'consistent read', align: 'left', value: (check) => check.read },
      { header: 'items', value: (check) => integer(check.items) },
      { header: 'bytes (metering)', value: (check) => integer(check.bytes) },
      { header: 'RU (4 KB rule)', value: (check) => String(check.meteredUnits) },
      {
        header: 'RU (DynamoDB Local)',
        value: (check) => (check.reportedUnits === undefined ? 'not reported' : String(check.reportedUnits)),
      },
      { header: 'agree', align: 'left', value: (check) => (check.agrees ? '✓' : '✗') },
    ],
    checks,
  );
}

function describeCells(cells: readonly Cell[]): string {
  const byStrategy = new Map<StrategyName, Cell[]>();
  for (const cell of cells) byStrategy.set(cell.strategy, [...(byStrategy.get(cell.strategy) ?? []), cell]);
  return [...byStrategy]
    .map(
      ([strategy, list]) =>
        `${strategy} ${list.map((cell) => `${cell.fanOut}/${cell.appliers}/${cell.batchSize}`).join(', ')}`,
    )
    .join('; ');
}

export function skippedList(skipped: readonly SkippedCells[]): string {
  if (skipped.length === 0) return 'Nothing skipped.';
  return [
    'Skipped cells (fan-out/appliers/batch) and why:',
    ...skipped.map((group) => `- ${describeCells(group.cells)}: ${group.reason}`),
  ].join('\n');
}

export function stackLagTable(results: readonly StackLagResult[]): string {
  const seconds = (ms: number) => fixed(ms / 1_000, 2);
  return table<StackLagResult>(
    [
      { header: 'appliers (polling loops)', value: (result) => String(result.appliers) },
      { header: 'probes', value: (result) => integer(result.samples) },
      { header: 'p50 s', value: (result) => seconds(result.p50Ms) },
      { header: 'p99 s', value: (result) => seconds(result.p99Ms) },
      { header: 'max s', value: (result) => seconds(result.maxMs) },
      { header: 'unseen', value: (result) => integer(result.unseen) },
      {
        header: 'load',
        align: 'left',
        value: (result) =>
          `${integer(result.loadDeliveries)} statuses in ${fixed(result.loadSeconds, 1)} s ` +
          `(≤ ${result.settings.loadPerPoller} in flight per loop), ${result.loadExact ? 'exact' : 'NOT EXACT'}`,
      },
      {
        header: 'windows (applier, aggregator)',
        align: 'left',
        value: (result) =>
          `batch ${result.settings.applierBatchSize} / ${seconds(result.settings.applierBatchingWindowMs)} s, ` +
          `batch ${result.settings.aggregatorBatchSize} / ${seconds(result.settings.aggregatorBatchingWindowMs)} s`,
      },
    ],
    results,
  );
}

// --- Targets ---------------------------------------------------------------------------------------------------

export interface TargetVerdict {
  readonly target: string;
  /** Null when this run did not measure the rows the target needs. */
  readonly met: boolean | null;
  readonly detail: string;
}

/** The streamed row of the hot-task cell with `appliers`, or the nearest this run measured. */
function hotRow(rows: readonly RowResult[], which: 'fewest' | 'most'): RowResult | undefined {
  const candidates = rows
    .filter((row) => row.status === 'ok' && row.strategy === 'streamed')
    .sort(
      (a, b) =>
        Number(b.fanOut === HEADLINE.fanOut) - Number(a.fanOut === HEADLINE.fanOut) ||
        Number(b.batchSize === HEADLINE.batchSize) - Number(a.batchSize === HEADLINE.batchSize) ||
        (which === 'most' ? b.appliers - a.appliers : a.appliers - b.appliers),
    );
  return candidates[0];
}

const where = (row: RowResult) =>
  `fan-out ${integer(row.fanOut)}, ${appliersText(row.appliers)}, batch ${row.batchSize}`;

function verdictOf(target: string, met: boolean, facts: string, why?: string): TargetVerdict {
  return {
    target,
    met,
    detail: met ? `met: ${facts}` : `missed: ${facts}${why === undefined ? '' : `. ${why}`}`,
  };
}

export function evaluateTargets(rows: readonly RowResult[]): TargetVerdict[] {
  const one = hotRow(rows, 'fewest');
  const many = hotRow(rows, 'most');
  const notMeasured = (target: string): TargetVerdict => ({
    target,
    met: null,
    detail: 'not measured in this run',
  });
  const verdicts: TargetVerdict[] = [];

  {
    const target = 'streamed ≤ 1.3 WU billed per applied status, with the fewest and the most appliers';
    const measured = [one, many].filter((row): row is RowResult => row !== undefined);
    if (measured.length === 0) verdicts.push(notMeasured(target));
    else {
      const facts = [...new Set(measured)]
        .map(
          (row) =>
            `${fixed(row.unitsPerStatusBilled, 3)} at ${where(row)} (subtask ${fixed(row.streamed?.subtaskUnits ?? 0, 3)}, ` +
            `fold ${fixed((row.streamed?.counterUnits ?? 0) + (row.streamed?.taskUnits ?? 0) + (row.streamed?.indexUnits ?? 0), 3)})`,
        )
        .join('; ');
      verdicts.push(
        verdictOf(
          target,
          measured.every((row) => row.unitsPerStatusBilled <= 1.3),
          facts,
        ),
      );
    }
  }
  {
    const target = 'streamed ≤ 0.1 conflicts per applied status with the most appliers';
    if (many === undefined) verdicts.push(notMeasured(target));
    else
      verdicts.push(
        verdictOf(
          target,
          many.conflictsPerStatus <= 0.1,
          `${fixed(many.conflictsPerStatus, 3)} at ${where(many)}`,
          'Only statuses of the same subtask in concurrent batches contend; with more appliers more of a ' +
            "subtask's statuses are in flight at once",
        ),
      );
  }
  {
    const target = 'streamed ≤ 1.5 RU per applied status with the most appliers';
    if (many === undefined) verdicts.push(notMeasured(target));
    else {
      const facts = [...new Set([one, many].filter((row): row is RowResult => row !== undefined))]
        .map(
          (row) =>
            `${fixed(row.readUnitsPerStatus.total, 2)} at ${where(row)} (applier ${fixed(row.readUnitsPerStatus.applier, 2)}, ` +
            `fold ${fixed(row.readUnitsPerStatus.fold, 2)})`,
        )
        .join('; ');
      verdicts.push(verdictOf(target, many.readUnitsPerStatus.total <= 1.5, facts));
    }
  }
  {
    const target = 'streamed: statuses/s with the most appliers ≥ with the fewest';
    if (one === undefined || many === undefined || one === many) verdicts.push(notMeasured(target));
    else
      verdicts.push(
        verdictOf(
          target,
          many.statusesPerSecond >= one.statusesPerSecond,
          `${integer(many.statusesPerSecond)} st/s with ${appliersText(many.appliers)} vs ${integer(one.statusesPerSecond)} with ${appliersText(one.appliers)}`,
        ),
      );
  }
  {
    const target = `streamed model: ≥ 10,000 statuses/s for one task of ${integer(MODEL_SUBTASKS)} subtasks`;
    const model = many?.model;
    if (many === undefined || model?.kind !== 'streamed') verdicts.push(notMeasured(target));
    else {
      const facts =
        `${integer(model.maxStatusesPerSecond)} st/s from ${where(many)}: subtask partitions ` +
        `${integer(model.subtaskPartitionsBound)}, task partition ${integer(model.taskPartitionBound)} ` +
        `(window load ${integer(model.windowWriteLoad)} WU/s of ${integer(PARTITION_WRITE_UNITS_PER_SECOND)})`;
      const reads =
        model.readLimitedShardRecountSeconds === undefined
          ? ''
          : `; but the task partition's reads at one recount per shard per window, ${integer(model.windowReadLoad)} ` +
            `RU/s, exceed its ${integer(PARTITION_READ_UNITS_PER_SECOND)} RU/s: each shard could be recounted only ` +
            `every ${fixed(model.readLimitedShardRecountSeconds, 1)} s (a read-lag floor, not a throughput bound)`;
      verdicts.push(verdictOf(target, model.maxStatusesPerSecond >= 10_000, facts + reads));
    }
  }
  {
    const target = `streamed model: every partition under a third of its limit at ${integer(MODEL_SUBTASKS)} subtasks × 10,000 st/s`;
    const model = many?.model;
    if (many === undefined || model?.kind !== 'streamed') verdicts.push(notMeasured(target));
    else {
      const facts = model.partitions
        .map(
          (load) =>
            `${load.partition} ${integer(load.readUnitsPerSecond)} RU/s, ${integer(load.writeUnitsPerSecond)} WU/s`,
        )
        .join('; ');
      const under = model.partitions.every(
        (load) =>
          load.readUnitsPerSecond < PARTITION_READ_UNITS_PER_SECOND / 3 &&
          load.writeUnitsPerSecond < PARTITION_WRITE_UNITS_PER_SECOND / 3,
      );
      verdicts.push(verdictOf(target, under, `${facts} (${where(many)})`));
    }
  }
  {
    const target =
      'streamed read lag in the bench (handed to an applier → getTask) p99 ≤ 5 s with the fewest and the most appliers';
    const measured = [...new Set([one, many].filter((row): row is RowResult => row !== undefined))];
    if (measured.length === 0) verdicts.push(notMeasured(target));
    else {
      const facts = measured
        .map(
          (row) =>
            `p50 ${fixed((row.streamed?.readLag.p50Ms ?? 0) / 1_000, 2)} s, p99 ${fixed((row.streamed?.readLag.p99Ms ?? 0) / 1_000, 2)} s at ${where(row)}`,
        )
        .join('; ');
      verdicts.push(
        verdictOf(
          target,
          measured.every((row) => (row.streamed?.readLag.p99Ms ?? Number.POSITIVE_INFINITY) <= 5_000),
          facts,
        ),
      );
    }
  }
  return verdicts;
}

/** Read lag end to end on the local stack: p99 at most 5 s with every appliers count measured. */
export function stackLagTarget(results: readonly StackLagResult[]): TargetVerdict {
  const target = 'read lag on the local stack (send → GET) p99 ≤ 5 s with every appliers count';
  const facts = results
    .map(
      (result) =>
        `p50 ${fixed(result.p50Ms / 1_000, 2)} s, p99 ${fixed(result.p99Ms / 1_000, 2)} s with ${appliersText(result.appliers)}`,
    )
    .join('; ');
  return verdictOf(
    target,
    results.every((result) => result.p99Ms <= 5_000 && result.unseen === 0),
    facts,
    'The floor is the two batching windows (queue and stream, 1 s each) plus the recount',
  );
}

export function targetsText(verdicts: readonly TargetVerdict[]): string {
  const mark = (met: boolean | null) => (met === null ? '·' : met ? '✓' : '✗');
  return verdicts.map((verdict) => `${mark(verdict.met)} ${verdict.target} — ${verdict.detail}`).join('\n');
}

/** The hot-task cell's rows: fan-out 1,000, batch size 10, 1 and 32 appliers, each strategy. */
export function headlineRows(rows: readonly RowResult[]): RowResult[] {
  return rows.filter(
    (row) =>
      row.fanOut === HEADLINE.fanOut &&
      row.batchSize === HEADLINE.batchSize &&
      (HEADLINE.appliers as readonly number[]).includes(row.appliers),
  );
}
