/**
 * IBM Cloud Object Storage endpoints: a location (regional `us-south`, cross-region `us-geo`,
 * single-site `ams03`) and an endpoint type give the S3 endpoint.
 *
 * @packageDocumentation
 */

/** How the endpoint is reached. */
export type IbmEndpointType = "public" | "private" | "direct";

/** The endpoint types. */
export const IBM_ENDPOINT_TYPES: readonly IbmEndpointType[] = ["public", "private", "direct"];

/** Cross-region locations and the host label of their endpoints. */
export const IBM_CROSS_REGION: Readonly<Record<string, string>> = { "us-geo": "us", "eu-geo": "eu", "ap-geo": "ap" };

/** The domain of IBM COS endpoints. */
export const IBM_COS_DOMAIN = "cloud-object-storage.appdomain.cloud";

/**
 * The HTTPS endpoint of a location: `https://s3[.private|.direct].<label>.cloud-object-storage.appdomain.cloud`,
 * where the label is the region (`us-south`), the cross-region short name (`us-geo` → `us`) or the
 * single-site location (`ams03`).
 *
 * @example
 * ```ts
 * ibmCosEndpoint("us-geo", "direct"); // "https://s3.direct.us.cloud-object-storage.appdomain.cloud"
 * ```
 */
export function ibmCosEndpoint(location: string, type: IbmEndpointType = "public"): string {
  const label = IBM_CROSS_REGION[location] ?? location;
  const infix = type === "public" ? "" : `${type}.`;
  return `https://s3.${infix}${label}.${IBM_COS_DOMAIN}`;
}
