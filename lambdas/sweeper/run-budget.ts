/**
 * What one sweeper run may still spend: its time (the Lambda's remaining time, less a margin for the writes
 * that record where it stopped) and the subtasks it may end. Checked before every task, shard and page, so a run
 * never dies with work half recorded, and one large task never holds up the rest for longer than a run.
 */

export class RunBudget {
  private subtasks: number;

  constructor(
    private readonly remainingMs: () => number,
    private readonly marginMs: number,
    subtasks: number,
  ) {
    this.subtasks = subtasks;
  }

  /** True while the run may start another unit of work. */
  get hasTime(): boolean {
    return this.remainingMs() > this.marginMs;
  }

  /** Subtasks the run may still end. */
  get subtasksLeft(): number {
    return this.subtasks;
  }

  /** Time left for one unit of work already started, for the retries inside it. */
  timeLeftMs(): number {
    return this.remainingMs() - this.marginMs;
  }

  spend(subtasks: number): void {
    this.subtasks = Math.max(0, this.subtasks - subtasks);
  }
}
