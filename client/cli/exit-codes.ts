/** The CLI's exit codes; 130 is the shell's own code for a command ended by Ctrl-C. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;
