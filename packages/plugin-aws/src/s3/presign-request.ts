/**
 * SigV4 pre-signing of one S3 command into the exact request a host sends (direct transfer,
 * contract 5.8): URL and headers. `getSignedUrl` returns only the URL, but a part's request also
 * needs the headers the signature covers (content length, checksum, SSE-C, metadata), which must
 * then be sent verbatim.
 */
import type { S3Client } from "@aws-sdk/client-s3";
import { S3RequestPresigner } from "@aws-sdk/s3-request-presigner";
import type { HttpRequestSpec } from "@stowage/sdk";

/** One pre-signer per client (it holds the client's credentials provider and signing settings). */
const presigners = new WeakMap<S3Client, S3RequestPresigner>();

/** Headers the SDK adds for its own bookkeeping; they are neither signed nor sent. */
const SDK_HEADERS = new Set(["amz-sdk-invocation-id", "amz-sdk-request", "x-amz-user-agent", "user-agent"]);
/** Headers the signature itself travels in (as query parameters) when pre-signing. */
const SIGNATURE_HEADERS = new Set(["x-amz-content-sha256", "x-amz-date", "x-amz-security-token"]);

interface SerializedRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number | undefined;
  path: string;
  query: Record<string, string | string[] | null>;
  headers: Record<string, string>;
}

/** A command of the S3 client (GetObject, PutObject, UploadPart, ...). */
interface Command {
  readonly input: object;
  resolveMiddleware(...args: never[]): unknown;
}

type Resolve = (stack: unknown, config: unknown, options: object) => (args: { input: object }) => Promise<{ output: unknown }>;

function formatUrl(request: SerializedRequest): string {
  const url = new URL(`${request.protocol}//${request.hostname}${request.port === undefined ? "" : `:${String(request.port)}`}`);
  url.pathname = request.path;
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(request.query)) {
    if (value === null) search.append(name, "");
    else for (const item of Array.isArray(value) ? value : [value]) search.append(name, item);
  }
  // S3 wants %20, not "+", for spaces; URLSearchParams writes "+".
  url.search = search.toString().replaceAll("+", "%20");
  return url.toString();
}

/**
 * Pre-signs `command` as `client` would send it, for `expiresIn` seconds from `signingDate`. Every
 * `x-amz-*` header of the request stays a header (signed), so that checksums, SSE-C keys and
 * metadata are enforced by the store; the result names every header to send except `host`.
 * `checksumHeader` names the one `x-amz-checksum-*` header the request may carry (the part's).
 */
export async function presignRequest(client: S3Client, command: Command, expiresIn: number, signingDate: Date, checksumHeader?: string): Promise<HttpRequestSpec> {
  let presigner = presigners.get(client);
  if (presigner === undefined) {
    presigner = new S3RequestPresigner({ ...client.config });
    presigners.set(client, presigner);
  }
  const signer = presigner;
  const stack = client.middlewareStack.clone();
  stack.addRelativeTo(
    ((_next: unknown, context: Record<string, unknown>) => async (args: { request: SerializedRequest }) => {
      const request = args.request;
      // The SDK's flexible-checksum step may add a checksum of the (absent) body; only the part's own
      // checksum, computed by the host over its bytes, may be signed.
      const unwanted = (name: string): boolean =>
        SDK_HEADERS.has(name) || (name.startsWith("x-amz-checksum-") && name !== checksumHeader) || (name === "x-amz-sdk-checksum-algorithm" && checksumHeader === undefined);
      request.headers = Object.fromEntries(Object.entries(request.headers).filter(([name]) => !unwanted(name.toLowerCase())));
      const keep = new Set(Object.keys(request.headers).filter((name) => name.toLowerCase().startsWith("x-amz-") && !SIGNATURE_HEADERS.has(name.toLowerCase())));
      const presigned = (await signer.presign(request as never, {
        expiresIn,
        signingDate,
        unhoistableHeaders: keep,
        ...(typeof context.signing_region === "string" ? { signingRegion: context.signing_region } : {}),
      })) as unknown as SerializedRequest;
      return { output: { $metadata: {}, presigned }, response: {} };
    }) as never,
    { name: "stowageDirectTransferPresign", relation: "before", toMiddleware: "awsAuthMiddleware", override: true },
  );
  const handler = (command.resolveMiddleware as Resolve).call(command, stack, client.config, {});
  const { output } = await handler({ input: command.input });
  const presigned = (output as { presigned: SerializedRequest }).presigned;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(presigned.headers)) {
    if (name.toLowerCase() !== "host") headers[name.toLowerCase()] = value;
  }
  return { method: presigned.method as HttpRequestSpec["method"], url: formatUrl(presigned), headers };
}
