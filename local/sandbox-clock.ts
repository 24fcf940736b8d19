/**
 * The clock a local sandbox's function reads. Imported before the function's own modules, so that even a
 * `Date.now` captured at load (`now: Date.now`) reads it: a test runs the sweeper "an hour later" by setting
 * an offset for one invocation, as a faked system clock would, instead of waiting.
 */

const realNow = Date.now.bind(Date);
let offsetMs = 0;

Date.now = () => realNow() + offsetMs;

export function setClockOffset(ms: number): void {
  offsetMs = ms;
}
