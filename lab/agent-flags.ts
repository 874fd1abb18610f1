/**
 * The command line of the lab's agents (probe-agent.ts, ws-attack-agent.ts): `--name value`
 * pairs, typed reads with a default or a clear error, and one JSON line per result on stdout.
 */

export type Flags = Map<string, string>;

export function parseFlags(args: readonly string[]): Flags {
  const flags: Flags = new Map();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    const value = args[i + 1];
    if (value === undefined) throw new Error(`flag ${arg} needs a value`);
    flags.set(arg.slice(2), value);
    i++;
  }
  return flags;
}

export function str(flags: Flags, name: string, fallback?: string): string {
  const v = flags.get(name) ?? fallback;
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

export function int(flags: Flags, name: string, fallback?: number): number {
  const raw = flags.get(name);
  if (raw === undefined) {
    if (fallback === undefined) throw new Error(`--${name} is required`);
    return fallback;
  }
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name}: not a non-negative integer: ${raw}`);
  return n;
}

/** One result line, as the agents' callers parse them (lab/probe.ts, lab/ws-attack.ts). */
export function emit(obj: object): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}
