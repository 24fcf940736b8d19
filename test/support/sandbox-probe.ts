/** A Lambda entry for the sandbox tests: each event asks it to do one thing a real function might. */

const retained: number[][] = [];
let invocations = 0;

type ProbeEvent =
  | { readonly kind: 'environment'; readonly names: readonly string[] }
  | { readonly kind: 'allocate'; readonly mebibytes: number }
  | { readonly kind: 'sleep'; readonly ms: number }
  | { readonly kind: 'clock' }
  | { readonly kind: 'count' }
  | { readonly kind: 'throw'; readonly message: string };

export async function handler(event: ProbeEvent): Promise<unknown> {
  invocations += 1;
  switch (event.kind) {
    case 'environment':
      return Object.fromEntries(event.names.map((name) => [name, process.env[name] ?? null]));
    case 'allocate':
      // On V8's heap (a typed array's bytes live outside it), and held across invocations, as a leak would be.
      for (let mebibyte = 0; mebibyte < event.mebibytes; mebibyte++)
        retained.push(new Array(1 << 17).fill(0.5));
      return { heldMiB: retained.length };
    case 'sleep':
      await new Promise((resolve) => setTimeout(resolve, event.ms));
      return { slept: event.ms };
    case 'clock':
      return { now: Date.now() };
    case 'count':
      return { invocations };
    case 'throw':
      throw new RangeError(event.message);
  }
}
