/**
 * Every write attempt and read of one transactional row, priced by `test/support/metering.ts`: committed
 * transactions, and transactions DynamoDB canceled on a condition, which it bills all the same.
 */
export class TransactionTally {
  committedUnits = 0;
  canceledUnits = 0;
  commits = 0;
  /** Transactions canceled because another applier committed first: each one sends its cycle round again. */
  conflicts = 0;
  /** Read units DynamoDB Local reported for the task reads and the subtask reads of every cycle. */
  taskReadUnits = 0;
  subtaskReadUnits = 0;
  /** The largest item written, in bytes. */
  largestItemBytes = 0;

  recordTransaction(write: {
    readonly units: number;
    readonly committed: boolean;
    readonly largestItemBytes: number;
  }): void {
    if (write.committed) {
      this.committedUnits += write.units;
      this.commits += 1;
    } else {
      this.canceledUnits += write.units;
      this.conflicts += 1;
    }
    this.largestItemBytes = Math.max(this.largestItemBytes, write.largestItemBytes);
  }
}
