/**
 * The command line of the lab's agents (probe-agent.ts, ws-attack-agent.ts): `<mode> --name value
 * ...`, typed reads with a default or a clear error, one JSON line per result on stdout, and a
 * deadline on every run (exit 2), so no agent outlives its test.
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

export type AgentMode = (flags: Flags) => Promise<object>;

/**
 * Runs the mode named by argv[0] with the flags after it: its result (or error) as one JSON line,
 * exit 0 (1 on an error, 2 past --timeout-ms, default `defaultTimeoutMs`).
 */
export function runAgent(name: string, modes: Readonly<Record<string, AgentMode>>, defaultTimeoutMs: number, argv: readonly string[]): void {
  const main = async (): Promise<void> => {
    const [mode, ...rest] = argv;
    const run = mode === undefined ? undefined : modes[mode];
    if (run === undefined) throw new Error(`usage: ${name} ${Object.keys(modes).join('|')} [--flag value]...`);
    const flags = parseFlags(rest);
    const timeoutMs = int(flags, 'timeout-ms', defaultTimeoutMs);
    const timer = setTimeout(() => {
      emit({ error: `${mode} timed out after ${timeoutMs} ms` });
      process.exit(2);
    }, timeoutMs);
    const result = await run(flags);
    clearTimeout(timer);
    emit(result);
    process.exit(0);
  };
  main().catch((error: unknown) => {
    emit({ error: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  });
}
