/**
 * Every write attempt of one bench run, priced by `metering.ts`: committed writes, and writes DynamoDB refused on
 * a condition (a canceled transaction, a failed conditional put), which it bills all the same.
 */
export class WriteTally {
  committedUnits = 0;
  canceledUnits = 0;
  /** The part of `canceledUnits` that canceled transactions account for (the rest: failed conditional puts). */
  canceledTransactionUnits = 0;
  commits = 0;
  /** Writes refused because another writer committed first: each one sends its cycle round again. */
  conflicts = 0;
  /** Units DynamoDB Local itself reported for committed writes, where it reports them as DynamoDB does. */
  emulatorReportedUnits = 0;
  /** Committed writes whose units DynamoDB Local reported (plain `PutItem` only). */
  emulatorReportedWrites = 0;
  /** The largest item written, in bytes. */
  largestItemBytes = 0;

  record(write: {
    readonly units: number;
    readonly committed: boolean;
    readonly transaction: boolean;
    readonly largestItemBytes: number;
  }): void {
    if (write.committed) {
      this.committedUnits += write.units;
      this.commits += 1;
    } else {
      this.canceledUnits += write.units;
      if (write.transaction) this.canceledTransactionUnits += write.units;
      this.conflicts += 1;
    }
    this.largestItemBytes = Math.max(this.largestItemBytes, write.largestItemBytes);
  }

  recordEmulatorUnits(units: number): void {
    this.emulatorReportedUnits += units;
    this.emulatorReportedWrites += 1;
  }
}
