/**
 * podtun-ipam from environment and stdin to outcome: parse, run, map every failure to the
 * spec's error JSON. The executable's entry reads process.env and stdin, calls this, prints
 * `stdout` and exits with `exitCode`; the podtun daemon client is injected by that caller.
 */
import { CURRENT_CNI_VERSION, errorOutcome, isSupportedCniVersion, parseCniRequest } from '../cni-protocol.js';
import type { CniOutcome } from '../cni-protocol.js';
import { runIpamCommand } from './podtun-ipam-plugin.js';
import type { PodtunIpamDeps } from './podtun-ipam-plugin.js';

export async function podtunIpamMain(
  env: Readonly<Record<string, string | undefined>>,
  stdin: string,
  deps: PodtunIpamDeps = {},
): Promise<CniOutcome> {
  let request;
  try {
    request = parseCniRequest(env, stdin);
  } catch (err: unknown) {
    return errorOutcome(err, versionForErrors(stdin));
  }
  return runIpamCommand(request, deps);
}

/** The cniVersion to answer an unparseable request in: the config's when we speak it. */
function versionForErrors(stdin: string): string {
  try {
    const parsed: unknown = JSON.parse(stdin);
    const version = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>)['cniVersion'] : undefined;
    return typeof version === 'string' && isSupportedCniVersion(version) ? version : CURRENT_CNI_VERSION;
  } catch {
    return CURRENT_CNI_VERSION;
  }
}
