import { Certificate } from "@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import type { Manifest } from "./helm.js";

/**
 * The kinds the chart renders, each with the generated model of its API schema (the Kubernetes
 * OpenAPI schemas of `kubernetes-models`, cert-manager's CRD schemas of
 * `@kubernetes-models/cert-manager`), whose `validate()` checks types, enums, formats and required
 * fields offline. A kind the chart starts rendering must be added here, or validation fails.
 */
const models: Record<string, (data: Manifest) => { validate(): void }> = {
  "apps/v1 Deployment": (data) => new Deployment(data),
  "v1 Service": (data) => new Service(data),
  "v1 ConfigMap": (data) => new ConfigMap(data),
  "v1 ServiceAccount": (data) => new ServiceAccount(data),
  "policy/v1 PodDisruptionBudget": (data) => new PodDisruptionBudget(data),
  "networking.k8s.io/v1 NetworkPolicy": (data) => new NetworkPolicy(data),
  "cert-manager.io/v1 Certificate": (data) => new Certificate(data),
};

/**
 * Validates one rendered object against its API schema.
 *
 * @param manifest - The object.
 * @throws Error naming the object and every schema violation.
 */
export function validateManifest(manifest: Manifest): void {
  const key = `${manifest.apiVersion} ${manifest.kind}`;
  const make = models[key];
  if (make === undefined) throw new Error(`no schema for ${key} (${manifest.metadata.name}): add its model to test/schemas.ts`);
  try {
    make(manifest).validate();
  } catch (error) {
    throw new Error(`${key} ${manifest.metadata.name} does not match its API schema: ${String(error)}`, { cause: error });
  }
}
