/** PEM files the WebSocket transport reads at start: the listener's certificate and key, the dialer's CA. */
import { readFile } from 'node:fs/promises';
import { errorReason } from '../../core/error-reason.js';
import { TransportError } from '../transport-error.js';

/** The file's bytes; TransportError('ERR_PODTUN_WS_TLS') naming `what` and the file when it cannot be read. */
export async function readPem(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err: unknown) {
    throw new TransportError('ERR_PODTUN_WS_TLS', `cannot read ${what} ${file}: ${errorReason(err)}`, { cause: err });
  }
}
