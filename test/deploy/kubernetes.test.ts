/**
 * The example manifests of deploy/kubernetes, read as a cluster would (none runs here): one scheduler and N
 * workers running the image's command, probes and scrape annotations on the real port and paths, every variable
 * a real setting, and secrets in the Secret only.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, secretVariables } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';
import { envExample, kubernetesDocuments, npmStartCommand, ROOT, servedPaths } from './deploy-files.ts';

interface Probe {
  httpGet: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  command: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  envFrom: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  ports: { name: string; containerPort: number }[];
  startupProbe: Probe;
  livenessProbe: Probe;
  readinessProbe: Probe;
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  securityContext: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations: Record<string, string> };
  spec: {
    containers: Container[];
    securityContext: { runAsNonRoot?: boolean; runAsUser?: number };
    volumes?: { name: string; emptyDir?: unknown }[];
  };
}
interface Deployment {
  metadata: { name: string };
  spec: { replicas: number; strategy?: { type: string }; selector: { matchLabels: Record<string, string> } };
}

const documents = kubernetesDocuments();
const ofKind = (kind: string) => documents.filter(({ doc }) => doc.kind === kind);
const deployments = ofKind('Deployment').map(
  ({ doc }) => doc as unknown as Deployment & { spec: { template: PodTemplate } },
);
const role = (d: { spec: { template: PodTemplate } }) => d.spec.template.metadata.labels['app.kubernetes.io/component'];
const scheduler = deployments.find((d) => role(d) === 'scheduler')!;
const worker = deployments.find((d) => role(d) === 'worker')!;
const configMap = ofKind('ConfigMap')[0]!.doc as { metadata: { name: string }; data: Record<string, string> };
const secretEntry = ofKind('Secret')[0]!;
const secret = secretEntry.doc as { metadata: { name: string }; stringData: Record<string, string> };
const container = (d: typeof scheduler) => d.spec.template.spec.containers[0]!;

/** A probe's or annotation's port as a number: a name is looked up among the container's ports. */
const portNumber = (c: Container, port: string | number) =>
  typeof port === 'number' ? port : c.ports.find((p) => p.name === port)?.containerPort;

const mebibytes = (quantity: string) => {
  const match = /^(\d+)(Mi|Gi|M|G)?$/.exec(quantity);
  if (!match) throw new Error(`unreadable quantity ${quantity}`);
  const factor = { Mi: 1, Gi: 1024, M: 1e6 / 2 ** 20, G: 1e9 / 2 ** 20 }[match[2] ?? ''] ?? 1 / 2 ** 20;
  return Number(match[1]) * factor;
};

describe('deploy/kubernetes', () => {
  it('holds a scheduler, workers, a Service, a ConfigMap and the example Secret', () => {
    expect(documents.map(({ doc }) => doc.kind).sort()).toEqual(
      ['ConfigMap', 'Deployment', 'Deployment', 'Kustomization', 'Secret', 'Service'].sort(),
    );
    expect(scheduler).toBeDefined();
    expect(worker).toBeDefined();
  });

  it('runs exactly one scheduler, replaced rather than rolled, and several workers', () => {
    expect(scheduler.spec.replicas).toBe(1);
    expect(scheduler.spec.strategy?.type).toBe('Recreate');
    expect(worker.spec.replicas).toBeGreaterThan(1);
    for (const d of [scheduler, worker]) {
      // A Deployment whose selector matches the other's pods would adopt them.
      expect(d.spec.template.metadata.labels, d.metadata.name).toMatchObject(d.spec.selector.matchLabels);
    }
    expect(worker.spec.template.metadata.labels).not.toMatchObject(scheduler.spec.selector.matchLabels);
  });

  it('starts each role with the command of npm start, as the image does', () => {
    for (const d of [scheduler, worker]) {
      const c = container(d);
      expect([...c.command, ...(c.args ?? [])], d.metadata.name).toEqual([...npmStartCommand(), '--role', role(d)]);
    }
  });

  it('probes liveness on /healthz and readiness on /readyz, at the port HTTP_PORT opens', () => {
    const port = Number(configMap.data.HTTP_PORT);
    expect(port).toBeGreaterThan(0);
    const paths = servedPaths();
    for (const d of [scheduler, worker]) {
      const c = container(d);
      const probes = { startup: c.startupProbe, liveness: c.livenessProbe, readiness: c.readinessProbe };
      expect(Object.fromEntries(Object.entries(probes).map(([k, p]) => [k, p.httpGet.path])), d.metadata.name).toEqual({
        startup: '/healthz',
        liveness: '/healthz',
        readiness: '/readyz',
      });
      for (const probe of Object.values(probes)) {
        expect(paths, d.metadata.name).toContain(probe.httpGet.path);
        expect(portNumber(c, probe.httpGet.port), d.metadata.name).toBe(port);
      }
    }
  });

  it('asks Prometheus to scrape /metrics of every pod on that port', () => {
    for (const d of [scheduler, worker]) {
      const annotations = d.spec.template.metadata.annotations;
      expect(annotations, d.metadata.name).toEqual({
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': configMap.data.HTTP_PORT,
        'prometheus.io/path': '/metrics',
      });
      expect(servedPaths()).toContain(annotations['prometheus.io/path']);
    }
  });

  it('points the Service at the scheduler’s page and metrics only', () => {
    const service = ofKind('Service')[0]!.doc as {
      spec: { selector: Record<string, string>; ports: { port: number; targetPort: string | number }[] };
    };
    expect(scheduler.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    expect(worker.spec.template.metadata.labels).not.toMatchObject(service.spec.selector);
    for (const p of service.spec.ports) {
      expect(portNumber(container(scheduler), p.targetPort)).toBe(Number(configMap.data.HTTP_PORT));
    }
  });

  it('reads the settings from the ConfigMap and the Secret defined here', () => {
    for (const d of [scheduler, worker]) {
      const refs = container(d).envFrom;
      expect(refs.map((r) => r.configMapRef?.name).filter(Boolean), d.metadata.name).toEqual([configMap.metadata.name]);
      expect(refs.map((r) => r.secretRef?.name).filter(Boolean), d.metadata.name).toEqual([secret.metadata.name]);
    }
  });

  it('sets only variables that .env.example documents', () => {
    const known = Object.keys(envExample());
    const set = [
      ...Object.keys(configMap.data),
      ...Object.keys(secret.stringData),
      ...[scheduler, worker].flatMap((d) => (container(d).env ?? []).map((e) => e.name)),
    ];
    expect(set.filter((name) => !known.includes(name))).toEqual([]);
  });

  it('keeps every secret in the Secret and none in the ConfigMap', () => {
    const secrets = secretVariables();
    expect(Object.keys(configMap.data).filter((name) => secrets.includes(name))).toEqual([]);
    expect(secrets.filter((name) => !(name in secret.stringData))).toEqual([]);
    // Nor a secret by another name: a URL with credentials, or a long random-looking string.
    for (const [name, value] of Object.entries(configMap.data)) {
      expect(value, name).not.toMatch(/:\/\/[^/\s]*@/);
      expect(value, name).not.toMatch(/[A-Za-z0-9+/_-]{24,}/);
    }
    // The example's Secret is not applied by kustomize: a team creates its own.
    const kustomization = ofKind('Kustomization')[0]!.doc as { resources: string[] };
    expect(kustomization.resources).not.toContain(secretEntry.file);
  });

  it('applies every manifest but the example Secret, and names the image the containers use', () => {
    const kustomization = ofKind('Kustomization')[0]!.doc as { resources: string[]; images: { name: string }[] };
    const files = [...new Set(documents.map((d) => d.file))];
    const expected = files.filter((f) => f !== secretEntry.file && f !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).toEqual(expected.sort());
    for (const file of kustomization.resources) expect(existsSync(join(ROOT, 'deploy', 'kubernetes', file))).toBe(true);
    for (const d of [scheduler, worker]) expect(kustomization.images.map((i) => i.name)).toContain(container(d).image);
  });

  it('is a valid configuration once HTTP_TOKEN is set, and refuses to start without it', () => {
    const env = { ...configMap.data, ...secret.stringData };
    let message = '';
    try {
      loadConfig(env);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      message = (error as Error).message;
    }
    expect(message.split('\n')).toEqual([
      expect.stringMatching(/^HTTP_HOST is not a loopback address, so HTTP_TOKEN must be set/),
    ]);
    const config = loadConfig({ ...env, HTTP_TOKEN: randomBytes(32).toString('hex') });
    expect(config.server).toMatchObject({ host: '0.0.0.0', port: Number(configMap.data.HTTP_PORT) });
  });

  it('limits each container to the 300 MB a process stays under, and runs it unprivileged', () => {
    for (const d of [scheduler, worker]) {
      const c = container(d);
      expect(mebibytes(c.resources.limits.memory!), d.metadata.name).toBeLessThanOrEqual(300);
      // Below that, Node's 192 MB heap and what lies outside it would be killed before they settle.
      expect(mebibytes(c.resources.limits.memory!), d.metadata.name).toBeGreaterThanOrEqual(256);
      expect(mebibytes(c.resources.requests.memory!), d.metadata.name).toBe(mebibytes(c.resources.limits.memory!));
      expect(c.resources.requests.cpu, d.metadata.name).toBeDefined();
      expect(d.spec.template.spec.securityContext, d.metadata.name).toMatchObject({
        runAsNonRoot: true,
        runAsUser: 1000,
      });
      expect(c.securityContext, d.metadata.name).toMatchObject({
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
      });
      // tsx writes its cache to the temporary directory: it must stay writable.
      const tmp = c.volumeMounts?.find((m) => m.mountPath === '/tmp');
      expect(d.spec.template.spec.volumes?.find((v) => v.name === tmp?.name)?.emptyDir, d.metadata.name).toBeDefined();
    }
  });
});
