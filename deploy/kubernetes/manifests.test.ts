/**
 * What deploy/ ships stays whole and true: the one-file manifest is exactly the kustomization's
 * files in order; the ConfigMap's node config is one `podtun run` accepts (with NODE_NAME, as the
 * DaemonSet sets it); the DaemonSet runs the image's own commands on what they need. Applying the
 * manifests to a real kube-apiserver and running podtun with the ServiceAccount's token is
 * test/netns/podtun-kube.test.ts and ipam/kube/kube-subnet-manager.test.ts.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseYaml, parseYamlDocuments } from '../../core/yaml-text.js';
import { parseConfigText } from '../../node-bootstrap/config/load-config.js';

const here = dirname(fileURLToPath(import.meta.url));
const read = (name: string): string => readFileSync(join(here, name), 'utf8');

type Doc = Record<string, unknown>;
const docs = (text: string): Doc[] => parseYamlDocuments(text).map((d) => d.value as Doc).filter((d) => d !== null && d !== undefined);

describe('deploy/kubernetes', () => {
  const order = (parseYaml(read('kustomization.yaml')).value as { resources: string[] }).resources;

  it('deploy/podtun.yaml is the kustomization\'s files joined in its order', () => {
    const joined = order.flatMap((f) => docs(read(f)));
    expect(docs(readFileSync(join(here, '..', 'podtun.yaml'), 'utf8'))).toEqual(joined);
  });

  it('the ConfigMap\'s node config is one podtun run accepts, with NODE_NAME', async () => {
    const configMap = docs(read('configmap.yaml'))[0] as { data: Record<string, string> };
    const text = configMap.data['node.yaml'] ?? '';
    const dir = await mkdtemp(join(tmpdir(), 'podtun-deploy-'));
    try {
      const secret = join(dir, 'cluster-secret');
      await writeFile(secret, 'a cluster secret of more than 16 bytes\n');
      const config = parseConfigText(text.replace('/etc/podtun/secret/cluster-secret', secret), join(dir, 'node.yaml'), { nodeName: 'kind-worker' });
      expect(config.nodeName).toBe('kind-worker');
      expect(config.subnetManager.type).toBe('kube');
      expect(config.cni).toBeDefined();
      expect(config.api.listen?.port).toBe(9402);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the DaemonSet probes the API port, mounts what podtun run and install-cni write, and sets NODE_NAME', () => {
    const ds = docs(read('daemonset.yaml'))[0] as { spec: { template: { spec: Record<string, unknown> } } };
    const pod = ds.spec.template.spec as {
      hostNetwork: boolean; priorityClassName: string; tolerations: unknown[]; serviceAccountName: string;
      initContainers: { command: string[]; volumeMounts: { mountPath: string }[] }[];
      containers: { args: string[]; env: { name: string }[]; livenessProbe: { httpGet: { path: string; port: number } }; readinessProbe: { httpGet: { path: string; port: number } }; volumeMounts: { mountPath: string }[] }[];
    };
    expect(pod.hostNetwork).toBe(true);
    expect(pod.priorityClassName).toBe('system-node-critical');
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(pod.serviceAccountName).toBe('podtun');
    expect(pod.initContainers[0]?.command).toEqual(['node', '/opt/podtun/bin/podtun.js', 'install-cni', '--bin-dir', '/host/opt/cni/bin']);
    const main = pod.containers[0];
    expect(main?.args).toEqual(['run', '--config', '/etc/podtun/config/node.yaml']);
    expect(main?.env.map((e) => e.name)).toContain('NODE_NAME');
    expect(main?.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 9402 });
    expect(main?.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 9402 });
    expect(main?.volumeMounts.map((v) => v.mountPath).sort()).toEqual(
      ['/dev/net/tun', '/etc/cni/net.d', '/etc/podtun/config', '/etc/podtun/secret', '/opt/cni/bin', '/run/podtun', '/var/lib/cni/networks', '/var/lib/podtun'].sort(),
    );
  });

  it('the ClusterRole grants only what the Kubernetes subnet manager uses', () => {
    const role = docs(read('rbac.yaml')).find((d) => d['kind'] === 'ClusterRole') as { rules: unknown[] };
    expect(role.rules).toEqual([
      { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['nodes/status'], verbs: ['patch'] },
    ]);
  });
});
