import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take longest, longest first, as measured on 2 cores. Vitest runs the files it has timings for
 * longest first, but a fresh clone (CI) has none and it orders them by size: these small files would start last
 * and run alone while the other worker idles.
 */
const LONGEST = [
  'test/e2e/large-task.test.ts',
  'test/integration/concurrent-appliers.test.ts',
  'test/reliability/crash-recovery.test.ts',
  'test/reliability/store-faults.test.ts',
];

function rank(file: TestSpecification): number {
  const index = LONGEST.findIndex((path) => file.moduleId.endsWith(path));
  return index === -1 ? LONGEST.length : index;
}

export class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    // Array.prototype.sort is stable: the rest keep vitest's own order.
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}
