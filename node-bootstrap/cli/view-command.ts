/**
 * `podtun status`, `podtun routes`, `podtun peers [--watch]`: read GET /status from the daemon's
 * socket and print it (status-format.ts) or its JSON as the daemon sent it (--json).
 */
import { parseArgs } from 'node:util';
import { DEFAULT_API_SOCKET, STATUS_PATH, StatusUnavailableError, fetchApi, statusBody } from '../../api/api-client.js';
import type { ApiReply } from '../../api/api-client.js';
import { readStatusReport } from '../../api/status-schema.js';
import { errorMessage } from '../../core/config-check.js';
import { EXIT_FAILURE, EXIT_OK, USAGE, nonEmpty, usageError } from './command.js';
import type { CliEnv, CliIo } from './command.js';
import { formatPeers, formatRoutes, formatStatus } from './status-format.js';

export type ViewName = 'status' | 'routes' | 'peers';

export const WATCH_INTERVAL_MS = 1000;
/** Home the cursor and clear the screen (terminals only). */
const CLEAR_SCREEN = '\x1b[H\x1b[2J';

export async function viewCommand(
  view: ViewName,
  args: readonly string[],
  env: CliEnv,
  io: CliIo,
): Promise<number> {
  let values: { socket?: string | undefined; json?: boolean | undefined; watch?: boolean | undefined; count?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        socket: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        watch: { type: 'boolean', short: 'w' },
        count: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err: unknown) {
    return usageError(io, errorMessage(err));
  }
  if (values.help === true) {
    io.out(USAGE);
    return EXIT_OK;
  }
  if (view !== 'peers' && (values.watch !== undefined || values.count !== undefined)) {
    return usageError(io, `--watch and --count are for \`podtun peers\`, not \`${view}\``);
  }
  let count: number | undefined;
  if (values.count !== undefined) {
    count = Number(values.count);
    if (!Number.isInteger(count) || count < 1) return usageError(io, `--count: "${values.count}" is not a positive integer`);
    if (values.watch !== true) return usageError(io, '--count goes with --watch');
  }
  const socket = nonEmpty(values.socket) ?? nonEmpty(env['PODTUN_STATUS_SOCKET']) ?? DEFAULT_API_SOCKET;
  const json = values.json === true;

  const draw = async (): Promise<boolean> => {
    let reply: ApiReply;
    try {
      reply = await fetchApi(socket, STATUS_PATH);
    } catch (err: unknown) {
      io.err(`cannot reach podtun at ${socket}: ${errorMessage(err)}\n`);
      return false;
    }
    let text: string;
    try {
      const body = statusBody(socket, reply);
      if (json) {
        text = `${JSON.stringify(body, null, 2)}\n`;
      } else {
        const report = readStatusReport(body);
        const nowMs = Date.now();
        text = view === 'status' ? formatStatus(report, nowMs) : view === 'routes' ? formatRoutes(report) : formatPeers(report, nowMs);
      }
    } catch (err: unknown) {
      io.err(err instanceof StatusUnavailableError ? `${err.message}\n` : `podtun at ${socket}: ${errorMessage(err)}\n`);
      return false;
    }
    io.out(text);
    return true;
  };

  if (values.watch !== true) return (await draw()) ? EXIT_OK : EXIT_FAILURE;

  // --watch: draw, wait a second, again; until SIGINT, --count draws, or a failed read.
  const abort = new AbortController();
  const onSigint = (): void => abort.abort();
  process.once('SIGINT', onSigint);
  try {
    for (let n = 0; count === undefined || n < count; n++) {
      if (n > 0) {
        await sleep(WATCH_INTERVAL_MS, abort.signal);
        if (abort.signal.aborted) break;
        io.out(io.isTty === true ? CLEAR_SCREEN : '\n');
      } else if (io.isTty === true) {
        io.out(CLEAR_SCREEN);
      }
      if (!(await draw())) return EXIT_FAILURE;
    }
    return EXIT_OK;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
