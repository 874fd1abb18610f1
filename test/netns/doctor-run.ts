/**
 * `podtun doctor` run inside a node's namespace as the README shows it (`--config FILE`): the
 * compiled dist/node-bootstrap/cli/doctor-command.js through `node -e`, finding the daemon's
 * socket as `podtun status` does (the harness gives each daemon its socket by
 * PODTUN_STATUS_SOCKET, and the doctor gets the same environment).
 */
import { join } from 'node:path';
import type { Cluster } from '../../lab/cluster.js';

export interface DoctorCheckRow {
  layer: string;
  name: string;
  ok: boolean;
  warning?: boolean;
  detail: string;
  hint: string;
}

export interface DoctorRun {
  exitCode: number;
  checks: DoctorCheckRow[];
  text: string;
}

/** Loads the doctor module given as argv[1] and runs its command with the remaining args. */
const RUNNER = [
  'const [mod, ...args] = process.argv.slice(1);',
  'const { doctorCommand } = await import(mod);',
  'const io = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };',
  'process.exitCode = await doctorCommand(args, process.env, io, false);',
].join('\n');

/** doctor on node `i`; with `json`, its checks parsed (a run that prints none throws). */
export async function runDoctor(c: Cluster, json: boolean, i = 1): Promise<DoctorRun> {
  const node = c.node(i);
  const mod = join(c.repoRoot, 'dist', 'node-bootstrap', 'cli', 'doctor-command.js');
  const argv = ['node', '--input-type=module', '-e', RUNNER, mod, '--config', node.configFile];
  if (json) argv.push('--json');
  const r = await c.outcome(node.ns, argv, { timeoutMs: 20_000, env: { ...process.env, PODTUN_STATUS_SOCKET: node.statusSocket } });
  let checks: DoctorCheckRow[] = [];
  if (json) {
    try {
      checks = (JSON.parse(r.stdout) as { checks: DoctorCheckRow[] }).checks;
    } catch {
      throw new Error(`doctor printed no JSON (exit ${r.exitCode}): ${r.stdout}\n${r.stderr}`);
    }
  }
  return { exitCode: r.exitCode, checks, text: r.stdout };
}

export function failingChecks(run: DoctorRun): string[] {
  return run.checks.filter((c) => !c.ok).map((c) => `${c.layer} ${c.name}`);
}

export function warningChecks(run: DoctorRun): string[] {
  return run.checks.filter((c) => c.warning === true).map((c) => `${c.layer} ${c.name}`);
}

/** One line per check, for assertion messages. */
export function showDoctor(run: DoctorRun): string {
  return run.checks.map((c) => `${c.ok ? 'OK' : 'FAIL'} ${c.layer} ${c.name}: ${c.detail}${c.ok ? '' : ` (${c.hint})`}`).join('\n');
}
