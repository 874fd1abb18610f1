/**
 * podtun through a forward proxy: n1's underlay keeps only a /32 route to the proxy, so n1
 * reaches its peers only by WebSocket through the proxy (`proxy:` in its config), and no peer can
 * reach n1 directly. Pods on n1 and on n2/n3 talk both ways over n1's outbound connections. Once
 * per kind of proxy: squid (http://, no credentials), tinyproxy (http:// with Basic credentials,
 * CONNECT), squid serving TLS on its port (https://user:pass@..., its per-run certificate
 * trusted through NODE_EXTRA_CA_CERTS), microsocks (socks5://user:pass@...).
 *
 * ```
 *                 underlay ns (bridge ul0, 192.168.77.0/24)
 *        /                  |                    |                 \
 *   n1 192.168.77.1      proxy ns              n2 192.168.77.2     n3 192.168.77.3
 *   route: .200/32 only  squid | tinyproxy     ws :8443            ws :8443
 *      \--CONNECT 192.168.77.200:3128 ----> .200 ==> n2:8443, n3:8443
 *   p1a 10.244.1.10                             p2a 10.244.2.10     p3a 10.244.3.10
 * ```
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { PROXY_IP, PROXY_PORT } from '../../lab/cluster.js';
import type { Cluster, ProxyInfo, ProxyKind, ProxyOptions } from '../../lab/cluster.js';
import { waitPeers } from '../../lab/podtun-status.js';
import { pollUntil } from '../../lab/shell.js';
import { missingCommand } from '../../lab/requirements.js';
import { expectBothWays, netnsSkipReason, parsePing, podtunSkipReason, printSkip, useCluster } from './support.js';

const baseSkip = netnsSkipReason(['ping']) ?? podtunSkipReason();
printSkip('podtun-proxy.test.ts', baseSkip);

const CASES: Array<{ kind: ProxyKind; scheme: string; tools: string[]; proxy: ProxyOptions }> = [
  { kind: 'squid', scheme: 'http', tools: ['squid'], proxy: {} },
  { kind: 'tinyproxy', scheme: 'http', tools: ['tinyproxy'], proxy: { user: 'podtun', pass: 'k8s-proxy-pass' } },
  { kind: 'squid-https', scheme: 'https', tools: ['squid', 'openssl'], proxy: { user: 'podtun', pass: 'k8s-tls-pass' } },
  { kind: 'microsocks', scheme: 'socks5', tools: ['microsocks'], proxy: { user: 'podtun', pass: 'k8s-socks-pass' } },
];

function proxyUrl(scheme: string, options: ProxyOptions): string {
  const creds = options.user === undefined ? '' : `${options.user}:${options.pass ?? ''}@`;
  return `${scheme}://${creds}${PROXY_IP}:${PROXY_PORT}`;
}

for (const tc of CASES) {
  const skip = baseSkip ?? missingCommand(tc.tools);
  if (baseSkip === undefined) printSkip(`podtun-proxy.test.ts (${tc.kind})`, skip);

  describe.skipIf(skip !== undefined)(`podtun: n1 reaches its peers only through ${tc.kind}`, () => {
    let proxy: ProxyInfo | undefined;
    const cluster = useCluster({
      nodes: 3,
      podsPerNode: 1,
      ipv6: false,
      mode: 'podtun',
      startNodes: false,
      podtun: {
        nodeOverrides: (i) => (i === 1 ? { proxy: proxyUrl(tc.scheme, tc.proxy) } : {}),
        // Read when a node starts, after the proxy made its certificate.
        envFor: (i): Record<string, string> => (i === 1 && proxy?.caFile !== undefined ? { NODE_EXTRA_CA_CERTS: proxy.caFile } : {}),
      },
    });

    beforeAll(async () => {
      const c = cluster();
      proxy = await c.startProxy(tc.kind, tc.proxy);
      expect(proxy.url).toBe(proxyUrl(tc.scheme, tc.proxy));
      await c.isolateBehindProxy(1);
      await Promise.all(c.nodes().map((n) => c.startNode(n.index)));
    });

    it('gives n1 no direct path to its peers, and them none to n1', async () => {
      const c = cluster();
      for (const peer of [c.node(2), c.node(3)]) {
        const route = await c.outcome(c.node(1).ns, ['ip', 'route', 'get', peer.underlayIp]);
        expect(route.exitCode, `ip route get ${peer.underlayIp} in n1`).not.toBe(0);
        const ping = await c.outcome(c.node(1).ns, ['ping', '-c', '1', '-W', '1', peer.underlayIp]);
        expect(parsePing(ping.stdout).received).toBe(0);
        const back = await c.outcome(peer.ns, ['ping', '-c', '1', '-W', '1', c.node(1).underlayIp]);
        expect(parsePing(back.stdout).received).toBe(0);
      }
      const toProxy = await c.outcome(c.node(1).ns, ['ping', '-c', '1', '-W', '2', PROXY_IP]);
      expect(parsePing(toProxy.stdout).received).toBe(1);
    });

    it('brings n1 and its peers up over WebSocket', async () => {
      const c = cluster();
      await waitPeers(c, 1, ['n2', 'n3'], { transport: 'ws' }, 15_000);
      await waitPeers(c, 2, ['n1'], { transport: 'ws' }, 15_000);
      await waitPeers(c, 3, ['n1'], { transport: 'ws' }, 15_000);
    });

    it('lets n1’s pod and n2/n3’s pods reach each other both ways', async () => {
      const c = cluster();
      await expectBothWays(c, 1, [2, 3]);
    });

    it(`shows n1’s tunnels in ${tc.kind}’s log`, async () => {
      const c: Cluster = cluster();
      // squid logs a tunnel when it closes: end n1's connections first.
      await c.stopNode(1);
      const targets = [c.node(2), c.node(3)].map((peer) => `${peer.underlayIp}:8443`);
      const seen = (log: string, target: string): boolean =>
        log.includes(`CONNECT ${target}`) || log.includes(`GET http://${target}`) || log.includes(`connected to ${target}`);
      let log = '';
      await pollUntil(
        `${tc.kind} log entries for n1's tunnels`,
        async () => {
          log = proxy?.readLog() ?? '';
          return targets.every((t) => seen(log, t)) ? true : undefined;
        },
        8_000,
        200,
      ).catch(() => undefined);
      for (const target of targets) {
        expect(seen(log, target), `${tc.kind} log mentions ${target}:\n${log.slice(-2000)}`).toBe(true);
      }
      if (tc.kind === 'squid') expect(log).toMatch(/TCP_TUNNEL\/200|101 /);
      // Authenticated over TLS: the user shows in the access log.
      else if (tc.kind === 'squid-https') expect(log).toMatch(/TCP_TUNNEL\/200 .*CONNECT 192\.168\.77\.[23]:8443 podtun /);
      else if (tc.kind === 'microsocks') expect(log).toMatch(/client\[\d+\] 192\.168\.77\.1: connected to 192\.168\.77\.[23]:8443/);
      else expect(log).toMatch(/Established connection to host "192\.168\.77\.[23]"/);
    });
  });
}
