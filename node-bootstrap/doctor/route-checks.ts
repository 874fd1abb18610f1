/** The routes layer: each cluster CIDR routed to the TUN; each peer subnet's gateway resolves out the TUN. */
import { addressInCidr, formatAddress, parseCidr } from '../../core/cidr.js';
import type { NodeConfig } from '../config/node-config.js';
import { IP_TIMEOUT_MS, fail, firstLine, parseJsonArray, pass } from './doctor-check.js';
import type { DoctorCheck } from './doctor-check.js';
import type { DoctorProbes } from './doctor-probes.js';

interface IpRoute {
  dst?: string;
  dev?: string;
}

export async function routeChecks(probes: DoctorProbes, config: NodeConfig): Promise<DoctorCheck[]> {
  const tun = config.tunName;
  const restart = 'podtun run adds it at start: restart podtun';
  const clusterChecks = config.clusterCidrs.map(async (text): Promise<DoctorCheck> => {
    const six = parseCidr(text).family === 6 ? ['-6'] : [];
    const r = await probes.exec(['ip', '-j', ...six, 'route', 'show', 'exact', text], IP_TIMEOUT_MS);
    const routes = r.code === 0 ? parseJsonArray<IpRoute>(r.stdout) : [];
    const viaTun = routes.some((rt) => rt.dev === tun);
    if (viaTun) return pass('routes', `cluster ${text}`, `dev ${tun}`);
    const seen = routes.map((rt) => `dev ${rt.dev ?? '?'}`).join(', ');
    return fail('routes', `cluster ${text}`, seen === '' ? `no route for ${text}` : `${text} goes ${seen}, not ${tun}`, `ip ${six.join('')}${six.length > 0 ? ' ' : ''}route replace ${text} dev ${tun} (${restart})`);
  });
  const peerChecksList = config.nodes
    .filter((n) => n.name !== config.nodeName)
    .flatMap((peer) =>
      peer.subnets.map(async (subnet): Promise<DoctorCheck> => {
        const cidr = parseCidr(subnet);
        const gw = formatAddress(addressInCidr(cidr, 1));
        const six = cidr.family === 6 ? ['-6'] : [];
        const name = `to ${peer.name} ${gw}`;
        const r = await probes.exec(['ip', '-j', ...six, 'route', 'get', gw], IP_TIMEOUT_MS);
        const route = r.code === 0 ? parseJsonArray<IpRoute>(r.stdout)[0] : undefined;
        if (route === undefined) return fail('routes', name, `ip route get ${gw}: ${firstLine(r.stderr) || 'no route'}`, `the cluster route is missing: ${restart}`);
        if (route.dev === tun) return pass('routes', name, `out ${tun}`);
        return fail('routes', name, `goes out ${route.dev ?? '?'}, not ${tun} (${peer.name}'s subnet ${subnet})`, `a more specific route shadows the cluster route, or it is missing: ip route show ${subnet}; ${restart}`);
      }),
    );
  return Promise.all([...clusterChecks, ...peerChecksList]);
}
