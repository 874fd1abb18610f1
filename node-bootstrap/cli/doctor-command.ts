/**
 * `podtun doctor --config FILE [--socket PATH] [--json]`: runs the checks (doctor/doctor.ts) and
 * prints them (doctor/doctor-report.ts).
 */
import { parseArgs } from 'node:util';
import { DEFAULT_API_SOCKET } from '../../api/api-client.js';
import { errorMessage } from '../../core/config-check.js';
import { runDoctor } from '../doctor/doctor.js';
import { formatDoctorReport } from '../doctor/doctor-report.js';
import { EXIT_OK, EXIT_USAGE, nonEmpty } from './command.js';
import type { CliEnv, CliIo } from './command.js';

export const DOCTOR_USAGE = `Usage: podtun doctor --config FILE [--socket PATH] [--json]

Checks this node layer by layer (config, sysctls, TUN, routes, daemon, each peer's transports and
path MTU) and prints one line per check with a hint for each failure or warning. Exit 0 when all
pass (warnings included: a peer on WebSocket because UDP is blocked), 1 otherwise. When the daemon
does not answer, that is the one failure reported.

  --config FILE   Node config (env PODTUN_CONFIG).
  --socket PATH   The daemon's status socket (alias --status-socket; env PODTUN_STATUS_SOCKET;
                  default ${DEFAULT_API_SOCKET}, as podtun run and podtun status).
  --json          Print the checks as JSON.
`;

/** `podtun doctor ...` (args after the command); returns the exit code (2: usage error). `symbols`: ✔/✖ for OK/FAIL. */
export async function doctorCommand(
  args: readonly string[],
  env: CliEnv,
  io: CliIo,
  symbols: boolean = process.stdout.isTTY === true,
): Promise<number> {
  let values: { config?: string | undefined; socket?: string | undefined; 'status-socket'?: string | undefined; json?: boolean | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        config: { type: 'string', short: 'c' },
        socket: { type: 'string' },
        'status-socket': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err: unknown) {
    io.err(`podtun doctor: ${errorMessage(err)}\n\n${DOCTOR_USAGE}`);
    return EXIT_USAGE;
  }
  if (values.help === true) {
    io.out(DOCTOR_USAGE);
    return EXIT_OK;
  }
  const configPath = nonEmpty(values.config) ?? nonEmpty(env['PODTUN_CONFIG']);
  if (configPath === undefined) {
    io.err(`podtun doctor: --config is required (or set PODTUN_CONFIG)\n\n${DOCTOR_USAGE}`);
    return EXIT_USAGE;
  }
  // The same default as `podtun status` and `podtun run`.
  const socketPath = nonEmpty(values.socket) ?? nonEmpty(values['status-socket']) ?? nonEmpty(env['PODTUN_STATUS_SOCKET']) ?? DEFAULT_API_SOCKET;
  const json = values.json === true;
  const result = await runDoctor({ configPath, socketPath });
  io.out(formatDoctorReport(result, { json, symbols }));
  return result.exitCode;
}
