// The chart of a Stowage plugin service, offline: helm lint, helm template with several value sets,
// every rendered object validated against the Kubernetes and cert-manager API schemas, and what a
// deployment relies on asserted field by field. Needs helm (bash scripts/install-helm); no cluster.
import type { ICertificate } from "@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IPodSpec } from "kubernetes-models/v1/PodSpec";
import type { IService } from "kubernetes-models/v1/Service";
import type { IServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import type { IVolume } from "kubernetes-models/v1/Volume";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chartDir, openHelm, parseManifests, release, type Helm, type Manifest } from "./helm.js";
import { fieldNameErrors } from "./field-names.js";
import { validateManifest } from "./schemas.js";

let helm: Helm;
beforeAll(async () => {
  helm = await openHelm();
});
afterAll(async () => {
  await helm.close();
});

const fullname = `${release.name}-stowage-plugin-service`;
const serviceDns = `${fullname}.${release.namespace}.svc`;

/** Renders the chart, fails on any helm error, and validates every object against its schema. */
async function render(values?: object): Promise<Manifest[]> {
  const result = await helm.template(values);
  expect(result.stderr, "helm template wrote to stderr").toBe("");
  expect(result.code).toBe(0);
  const manifests = parseManifests(result.stdout);
  for (const manifest of manifests) validateManifest(manifest);
  return manifests;
}

/** The object of that kind and name, typed as its API's interface. */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the kind's interface
function one<T>(manifests: Manifest[], kind: string, name = fullname): T {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  if (found === undefined) throw new Error(`no ${kind} ${name} among ${manifests.map((m) => `${m.kind}/${m.metadata.name}`).join(", ")}`);
  return found as unknown as T;
}

const deploymentOf = (manifests: Manifest[]): IDeployment => one<IDeployment>(manifests, "Deployment");
const podOf = (manifests: Manifest[]): IPodSpec => deploymentOf(manifests).spec!.template.spec!;
const selectorOf = (manifests: Manifest[]): Record<string, string> => deploymentOf(manifests).spec!.selector.matchLabels!;

function container(manifests: Manifest[]): IContainer {
  const pod = podOf(manifests);
  expect(pod.containers).toHaveLength(1);
  return pod.containers[0]!;
}

function volume(manifests: Manifest[], name: string): IVolume {
  const found = podOf(manifests).volumes?.find((v) => v.name === name);
  if (found === undefined) throw new Error(`no volume ${name}`);
  return found;
}

function mountAt(c: IContainer, mountPath: string): { name: string; mountPath: string; readOnly?: boolean } {
  const found = c.volumeMounts?.find((m) => m.mountPath === mountPath);
  if (found === undefined) throw new Error(`nothing mounted at ${mountPath}`);
  return found;
}

/** The value following a flag in the container's args. */
function flag(args: string[] | undefined, name: string): string | undefined {
  const at = args?.indexOf(name) ?? -1;
  return at === -1 ? undefined : args?.[at + 1];
}

const allowList = [
  { identity: "cn:velero", plugins: ["stowage.io/aws"] },
  { identity: "uri:spiffe://cluster.local/ns/backup/sa/host", plugins: ["stowage.io/aws", "stowage.io/gcp"] },
];
const digest = `sha256:${"0123456789abcdef".repeat(4)}`;

describe("helm lint --strict", () => {
  it.each([
    ["default values", undefined],
    ["an allow list", { allowList }],
    ["a client certificate", { clientCertificate: { enabled: true } }],
    ["a pinned digest", { image: { digest } }],
  ])("passes with %s", async (_name, values) => {
    const result = await helm.lint(values);
    expect(result.stdout + result.stderr).toContain("1 chart(s) linted, 0 chart(s) failed");
    expect(result.code).toBe(0);
  });
});

describe("default values", () => {
  let manifests: Manifest[];
  beforeAll(async () => {
    manifests = await render();
  });

  it("renders exactly the objects of a plugin service, each valid against its API schema", () => {
    expect(manifests.map((m) => `${m.kind}/${m.metadata.name}`).sort()).toEqual(
      [
        `Certificate/${fullname}`,
        `Deployment/${fullname}`,
        `NetworkPolicy/${fullname}`,
        `PodDisruptionBudget/${fullname}`,
        `Service/${fullname}`,
        `ServiceAccount/${fullname}`,
      ].sort(),
    );
    for (const m of manifests) expect(m.metadata.namespace).toBe(release.namespace);
  });

  it("labels every object with Kubernetes' recommended labels", () => {
    for (const m of manifests) {
      expect(m.metadata.labels).toMatchObject({
        "app.kubernetes.io/name": "stowage-plugin-service",
        "app.kubernetes.io/instance": release.name,
        "app.kubernetes.io/component": "plugin-service",
        "app.kubernetes.io/part-of": "stowage",
        "app.kubernetes.io/managed-by": "Helm",
        "app.kubernetes.io/version": "0.1.0",
        "helm.sh/chart": "stowage-plugin-service-0.1.0",
      });
    }
  });

  it("runs three replicas, rolling one at a time with no loss of capacity, spread across nodes", () => {
    const spec = deploymentOf(manifests).spec!;
    expect(spec.replicas).toBe(3);
    expect(spec.strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    const pod = podOf(manifests);
    const matchLabels = selectorOf(manifests);
    expect(pod.topologySpreadConstraints).toEqual([
      expect.objectContaining({ topologyKey: "kubernetes.io/hostname", maxSkew: 1, labelSelector: { matchLabels } }),
    ]);
    const anti = pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution;
    expect(anti?.[0]?.podAffinityTerm).toEqual({ topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels } });
    expect(spec.template.metadata?.labels).toMatchObject(matchLabels);
  });

  it("runs the plugin non-root, read-only, with no capability, no privilege escalation, no token", () => {
    const pod = podOf(manifests);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.serviceAccountName).toBe(fullname);
    expect(one<IServiceAccount>(manifests, "ServiceAccount").automountServiceAccountToken).toBe(false);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: "RuntimeDefault" } });
    expect(container(manifests).securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    // The only writable place: an emptyDir at /tmp.
    const tmp = mountAt(container(manifests), "/tmp");
    expect(volume(manifests, tmp.name).emptyDir).toBeDefined();
  });

  it("starts /plugins/<bin>/<bin> with mTLS on 7443, health on 7444, and a drain shorter than the grace period", () => {
    const c = container(manifests);
    expect(c.image).toBe("registry.example.com/stowage/stowage-plugin-aws:0.1.0");
    expect(c.command).toEqual(["/plugins/stowage-plugin-aws/stowage-plugin-aws"]);
    const args = c.args;
    expect(flag(args, "--listen")).toBe("0.0.0.0:7443");
    expect(flag(args, "--health-listen")).toBe("0.0.0.0:7444");
    expect(flag(args, "--tls-cert")).toBe("/tls/tls.crt");
    expect(flag(args, "--tls-key")).toBe("/tls/tls.key");
    expect(flag(args, "--tls-client-ca")).toBe("/tls/ca.crt");
    expect(args).not.toContain("--allow");
    const drainMs = Number(flag(args, "--drain-ms"));
    expect(drainMs).toBe(20_000);
    expect(podOf(manifests).terminationGracePeriodSeconds! * 1000).toBeGreaterThan(drainMs);
    // The TLS Secret is mounted whole (a subPath mount would never see cert-manager's renewals).
    expect(mountAt(c, "/tls")).toEqual({ name: "tls", mountPath: "/tls", readOnly: true });
    expect(volume(manifests, "tls").secret).toEqual({ secretName: `${fullname}-tls`, defaultMode: 0o440 });
  });

  it("probes readiness and liveness with the kubelet's native gRPC probes on the health port", () => {
    const c = container(manifests);
    expect(c.readinessProbe?.grpc).toEqual({ port: 7444, service: "plugin" });
    expect(c.livenessProbe?.grpc).toEqual({ port: 7444, service: "" });
  });

  it("exposes no plaintext port but the health port, and keeps that one out of the Service", () => {
    expect(container(manifests).ports).toEqual([
      { name: "grpc-tls", containerPort: 7443, protocol: "TCP" },
      { name: "health", containerPort: 7444, protocol: "TCP" },
    ]);
    const service = one<IService>(manifests, "Service").spec!;
    expect(service.clusterIP).toBe("None");
    expect(service.publishNotReadyAddresses).toBe(false);
    expect(service.ports).toEqual([{ name: "grpc-tls", port: 7443, targetPort: "grpc-tls", protocol: "TCP" }]);
    expect(service.selector).toEqual(selectorOf(manifests));
  });

  it("requests resources from the benchmark figures", () => {
    expect(container(manifests).resources).toEqual({
      requests: { cpu: "500m", memory: "256Mi" },
      limits: { cpu: "1500m", memory: "768Mi" },
    });
  });

  it("issues a server certificate covering the Service's DNS names", () => {
    const spec = one<ICertificate>(manifests, "Certificate").spec!;
    expect(spec.secretName).toBe(`${fullname}-tls`);
    expect(spec.issuerRef).toEqual({ name: "stowage-ca", kind: "Issuer", group: "cert-manager.io" });
    expect(spec.dnsNames).toEqual([
      fullname,
      `${fullname}.${release.namespace}`,
      serviceDns,
      `${serviceDns}.cluster.local`,
      `*.${serviceDns}`,
      `*.${serviceDns}.cluster.local`,
    ]);
    expect(spec.usages).toContain("server auth");
    expect(spec.usages).not.toContain("client auth");
    expect(spec).toMatchObject({ duration: "2160h", renewBefore: "360h", privateKey: { rotationPolicy: "Always" } });
  });

  it("admits the gRPC port only from the configured clients, and the health port from the pod network", () => {
    const np = one<INetworkPolicy>(manifests, "NetworkPolicy").spec!;
    expect(np.podSelector?.matchLabels).toEqual(selectorOf(manifests));
    expect(np.policyTypes).toEqual(["Ingress"]);
    expect(np.ingress).toEqual([
      {
        ports: [{ port: 7443, protocol: "TCP" }],
        from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "velero" } } }],
      },
      { ports: [{ port: 7444, protocol: "TCP" }] },
    ]);
  });

  it("lets node drains take one replica at a time", () => {
    expect(one<IPodDisruptionBudget>(manifests, "PodDisruptionBudget").spec).toEqual({
      maxUnavailable: 1,
      selector: { matchLabels: selectorOf(manifests) },
    });
  });
});

describe("other value sets", () => {
  it("an allow list becomes a ConfigMap, the --allow flag and a checksum that rolls the pods", async () => {
    const manifests = await render({ allowList });
    const configMap = one<IConfigMap>(manifests, "ConfigMap", `${fullname}-allow`);
    expect(JSON.parse(configMap.data!["allow.json"]!)).toEqual({ allow: allowList });
    const c = container(manifests);
    expect(flag(c.args, "--allow")).toBe("/etc/stowage/allow.json");
    expect(volume(manifests, mountAt(c, "/etc/stowage").name).configMap?.name).toBe(`${fullname}-allow`);

    const checksum = (ms: Manifest[]): string | undefined =>
      deploymentOf(ms).spec!.template.metadata?.annotations?.["stowage.io/allow-list-checksum"];
    expect(checksum(manifests)).toMatch(/^[0-9a-f]{64}$/);
    const other = await render({ allowList: [allowList[0]] });
    expect(checksum(other)).not.toBe(checksum(manifests));
    expect(checksum(await render({ allowList }))).toBe(checksum(manifests));
  });

  it("a client certificate is issued for the caller's identity, in the caller's namespace", async () => {
    const manifests = await render({
      clientCertificate: { enabled: true, namespace: "velero", issuerRef: { name: "stowage-ca", kind: "ClusterIssuer" } },
    });
    const name = `${fullname}-client-velero`;
    const cert = one<ICertificate>(manifests, "Certificate", name);
    expect(cert.metadata?.namespace).toBe("velero");
    expect(cert.spec).toMatchObject({
      secretName: name,
      commonName: "velero",
      issuerRef: { name: "stowage-ca", kind: "ClusterIssuer", group: "cert-manager.io" },
    });
    expect(cert.spec?.usages).toContain("client auth");
    expect(cert.spec?.usages).not.toContain("server auth");
    // The server's certificate is still there.
    expect(one<ICertificate>(manifests, "Certificate").spec?.usages).toContain("server auth");
  });

  it("a digest pins the image; extra environment, volumes and a client CA ConfigMap are passed through", async () => {
    const manifests = await render({
      image: { digest, tag: "ignored" },
      env: [{ name: "AWS_REGION", value: "eu-west-1" }],
      envFrom: [{ secretRef: { name: "aws-credentials" } }],
      extraVolumes: [{ name: "aws-token", projected: { sources: [{ serviceAccountToken: { path: "token", audience: "sts.amazonaws.com" } }] } }],
      extraVolumeMounts: [{ name: "aws-token", mountPath: "/var/run/secrets/aws", readOnly: true }],
      serviceAccount: { annotations: { "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/stowage" } },
      tls: { clientCA: { configMapName: "client-ca-bundle", key: "bundle.pem" } },
      bin: "stowage-plugin-gcp",
      podDisruptionBudget: { maxUnavailable: null, minAvailable: 2 },
    });
    const c = container(manifests);
    expect(c.image).toBe(`registry.example.com/stowage/stowage-plugin-aws@${digest}`);
    expect(c.command).toEqual(["/plugins/stowage-plugin-gcp/stowage-plugin-gcp"]);
    expect(c.env).toEqual([{ name: "AWS_REGION", value: "eu-west-1" }]);
    expect(c.envFrom).toEqual([{ secretRef: { name: "aws-credentials" } }]);
    expect(c.volumeMounts).toContainEqual({ name: "aws-token", mountPath: "/var/run/secrets/aws", readOnly: true });
    expect(flag(c.args, "--tls-client-ca")).toBe("/tls-client-ca/bundle.pem");
    expect(volume(manifests, "tls-client-ca").configMap).toEqual({
      name: "client-ca-bundle",
      items: [{ key: "bundle.pem", path: "bundle.pem" }],
    });
    expect(one<IServiceAccount>(manifests, "ServiceAccount").metadata?.annotations).toEqual({
      "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/stowage",
    });
    const pdb = one<IPodDisruptionBudget>(manifests, "PodDisruptionBudget").spec!;
    expect(pdb.minAvailable).toBe(2);
    expect(pdb.maxUnavailable).toBeUndefined();
  });

  it("without cert-manager, an existing Secret is mounted and no Certificate is rendered", async () => {
    const manifests = await render({ tls: { secretName: "my-tls", certManager: { enabled: false } }, networkPolicy: { enabled: false } });
    expect(manifests.filter((m) => m.kind === "Certificate" || m.kind === "NetworkPolicy")).toEqual([]);
    expect(volume(manifests, "tls").secret?.secretName).toBe("my-tls");
  });
});

describe("NOTES.txt", () => {
  it("tells how to connect, which client certificate to mount and what the allow list says", async () => {
    const values = path.join(await mkdtemp(path.join(os.tmpdir(), "stowage-notes-")), "values.json");
    await writeFile(values, JSON.stringify({ allowList, clientCertificate: { enabled: true } }));
    const result = await helm.run(["install", release.name, chartDir, "--namespace", release.namespace, "--dry-run=client", "-f", values]);
    await rm(path.dirname(values), { recursive: true, force: true });
    expect(result.code).toBe(0);
    const notes = result.stdout.slice(result.stdout.indexOf("NOTES:"));
    expect(notes).toContain(`dns:///${serviceDns}:7443`);
    expect(notes).toContain(`${fullname}-client-velero in namespace ${release.namespace}`);
    expect(notes).toContain("cn:velero: stowage.io/aws");
  });
});

describe("refused values", () => {
  it.each([
    ["replicas as a word", { replicas: "three" }, "replicas"],
    ["an unknown key", { replica: 3 }, "replica"],
    ["a malformed digest", { image: { digest: "sha256:abc" } }, "digest"],
    ["an identity with no scheme", { allowList: [{ identity: "velero", plugins: ["stowage.io/aws"] }] }, "identity"],
    ["a log level helm cannot pass on", { logLevel: "verbose" }, "logLevel"],
    ["a grace period no longer than the drain", { drainMs: 30_000, terminationGracePeriodSeconds: 30 }, "terminationGracePeriodSeconds (30) must exceed drainMs"],
    ["no Secret when cert-manager is off", { tls: { certManager: { enabled: false } } }, "set tls.secretName"],
    ["both PDB bounds", { podDisruptionBudget: { minAvailable: 1 } }, "either minAvailable or maxUnavailable"],
    ["a client certificate in another namespace from a namespaced Issuer", { clientCertificate: { enabled: true, namespace: "velero" } }, "set clientCertificate.issuerRef to a ClusterIssuer"],
  ])("refuses %s", async (_name, values, message) => {
    const result = await helm.template(values);
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain(message);
  });
});

describe("the schema validator", () => {
  it("rejects an object that breaks its API schema (so a pass above means something)", async () => {
    const manifests = await render();
    const broken = structuredClone(manifests);
    Object.assign(container(broken), { imagePullPolicy: "Sometimes" });
    expect(() => validateManifest(one<Manifest>(broken, "Deployment"))).toThrow(/does not match its API schema/);
    const noSelector = structuredClone(manifests);
    Object.assign(deploymentOf(noSelector).spec!, { selector: undefined });
    expect(() => validateManifest(JSON.parse(JSON.stringify(one<Manifest>(noSelector, "Deployment"))) as Manifest)).toThrow(/selector/);
    const certificate = one<ICertificate>(structuredClone(manifests), "Certificate");
    Object.assign(certificate.spec!.privateKey!, { algorithm: "DSA" });
    expect(() => validateManifest(certificate as unknown as Manifest)).toThrow(/does not match its API schema/);
  });
});

describe("field names", () => {
  it("every field of every rendered object, in four value sets, is one its API knows", async () => {
    const manifests = [
      ...(await render()),
      ...(await render({ allowList })),
      ...(await render({ clientCertificate: { enabled: true }, image: { digest } })),
      ...(await render({ tls: { clientCA: { configMapName: "client-ca-bundle" } }, tmp: { medium: "Memory" }, priorityClassName: "high" })),
    ];
    expect(fieldNameErrors(manifests)).toEqual([]);
  });

  it("a misspelt field is caught (the schemas alone would let it through)", async () => {
    const manifests = structuredClone(await render());
    const c = container(manifests);
    const { readOnlyRootFilesystem, ...rest } = c.securityContext!;
    c.securityContext = { ...rest, readOnlyRootFileSystem: readOnlyRootFilesystem } as NonNullable<IContainer["securityContext"]>;
    const misspelt = one<Manifest>(manifests, "Deployment");
    expect(() => validateManifest(misspelt)).not.toThrow();
    const errors = fieldNameErrors([misspelt]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(`apps/v1 Deployment ${fullname}`);
    expect(errors[0]).toContain("readOnlyRootFileSystem");
  });
});
