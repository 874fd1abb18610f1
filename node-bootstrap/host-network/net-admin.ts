/**
 * Whether this process may change the host's network as `podtun run` must (open a TUN, set
 * addresses, routes and sysctls): that takes CAP_NET_ADMIN, which root has and a container gets
 * from its securityContext. Asked before anything is touched, so a user without it reads one line
 * saying so instead of the first call that failed.
 */
import { readFileSync } from 'node:fs';

const CAP_NET_ADMIN = 12n;

/** Why `podtun run` cannot work here, or undefined. `procStatus`: /proc/self/status's text. */
export function netAdminMissing(procStatus = readFileSync('/proc/self/status', 'utf8')): string | undefined {
  const effective = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(procStatus)?.[1];
  if (effective !== undefined && ((BigInt(`0x${effective}`) >> CAP_NET_ADMIN) & 1n) === 1n) return undefined;
  return 'podtun run needs root or CAP_NET_ADMIN (it opens a TUN and sets routes and sysctls): run it with sudo';
}
