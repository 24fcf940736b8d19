/**
 * `count` subtask ids `<prefix>-0 … <prefix>-N`, zero-padded to one width so that they sort (and the API lists
 * them) in numeric order.
 */
export function numberedSubtaskIds(count: number, prefix = 'sub'): string[] {
  const width = String(Math.max(count - 1, 0)).length;
  return Array.from({ length: count }, (_, index) => `${prefix}-${String(index).padStart(width, '0')}`);
}
