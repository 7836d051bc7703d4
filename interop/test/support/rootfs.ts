/**
 * Running Stowage's Velero plugin images the way a Kubernetes node and the Velero server do, without
 * a container engine: unpack an image, run its entrypoint chrooted into it with Velero's plugin volume
 * bind-mounted at /target, then run a "server" chrooted into a root file system like Velero's. Each
 * run is one `unshare` process: its mounts live in its own mount namespace (and its processes, for the
 * server, in their own PID namespace), so they all end when it ends.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:fs";
import { access, lstat, readdir, readFile, realpath } from "node:fs/promises";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { toolsDir } from "@stowage/test-servers";

/** The repository's root. */
export const REPO = fileURLToPath(new URL("../../../", import.meta.url));
/** Build outputs (`STOWAGE_BUILD_DIR`, default `.build/`, as the scripts use). */
export const BUILD = process.env.STOWAGE_BUILD_DIR !== undefined && process.env.STOWAGE_BUILD_DIR !== "" ? process.env.STOWAGE_BUILD_DIR : join(REPO, ".build");
/** `pnpm run package`'s output: one directory per plugin, `<bin>/<bin>` and `<bin>/lib/`. */
export const SEA = join(BUILD, "sea");
/** `scripts/build-images`' output: `<bin>/layout`, `<bin>/image.tar`, `<bin>/image.json`. */
export const IMAGES = join(BUILD, "images");
/** `scripts/velero-rootfs`' output. */
export const ROOTFS = join(BUILD, "velero-rootfs", "root");
/** The image tool and the copier `scripts/build-images` builds from deploy/. */
export const STOWAGE_IMAGE = join(toolsDir(), "bin", "stowage-image");
export const CP_PLUGIN = join(toolsDir(), "bin", "cp-plugin");

/** What a process left behind. */
export interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

const running = new Set<ChildProcess>();

/** Runs a command to its end, collecting its output. The process is tracked until it exits. */
export async function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (exitCode, exitSignal) => resolve([exitCode, exitSignal]));
    });
    return { code, signal, stdout, stderr };
  } finally {
    running.delete(child);
  }
}

/** Runs a command and fails with its output unless it exits 0. */
export async function runOk(command: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<Run> {
  const result = await run(command, args, env);
  if (result.code !== 0) throw new Error(`${command} ${args.join(" ")} exited ${String(result.code ?? result.signal)}: ${result.stderr.slice(-4000)}`);
  return result;
}

/**
 * SIGKILLs every process {@link run} started that is still running (a hook that timed out). Each is
 * an `unshare --kill-child`, so its namespace's processes die with it, and its mounts with them.
 */
export function killAll(): void {
  for (const child of running) child.kill("SIGKILL");
}

/** Fails with the command that fixes it when a file is missing or not executable. */
export async function requireExecutable(file: string, fix: string): Promise<void> {
  try {
    await access(file, constants.X_OK);
  } catch {
    throw new Error(`${file} is missing or not executable: ${fix}`);
  }
}

/** Fails, naming the fix, when a file or directory is missing. */
export async function requirePath(file: string, fix: string): Promise<void> {
  try {
    await access(file);
  } catch {
    throw new Error(`${file} is missing: ${fix}`);
  }
}

/** The config of an image, as its OCI config blob holds it. */
export interface ImageConfig {
  readonly architecture: string;
  readonly os: string;
  readonly created: string;
  readonly config: { readonly User?: string; readonly Entrypoint?: string[]; readonly Cmd?: string[]; readonly Labels?: Record<string, string>; readonly Env?: string[] };
  readonly rootfs: { readonly type: string; readonly diff_ids: string[] };
}

/** The parts of an OCI image layout the test reads, with no tool in between. */
export interface LayoutImage {
  readonly index: { mediaType: string; manifests: { mediaType: string; digest: string; annotations?: Record<string, string>; platform?: { os: string; architecture: string } }[] };
  readonly manifest: { mediaType: string; config: { mediaType: string; digest: string }; layers: { mediaType: string; digest: string; size: number }[] };
  readonly config: ImageConfig;
}

function blobPath(layout: string, digest: string): string {
  const [algorithm, hex] = digest.split(":");
  if (algorithm !== "sha256" || hex === undefined || !/^[0-9a-f]{64}$/.test(hex)) throw new Error(`unexpected digest ${digest}`);
  return join(layout, "blobs", algorithm, hex);
}

/** Reads index.json, the (only) manifest and its config from an OCI image layout. */
export async function readLayout(layout: string): Promise<LayoutImage> {
  const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as LayoutImage["index"];
  const [descriptor] = index.manifests;
  if (descriptor === undefined || index.manifests.length !== 1) throw new Error(`${layout} holds ${String(index.manifests.length)} manifests, want 1`);
  const manifest = JSON.parse(await readFile(blobPath(layout, descriptor.digest), "utf8")) as LayoutImage["manifest"];
  const config = JSON.parse(await readFile(blobPath(layout, manifest.config.digest), "utf8")) as ImageConfig;
  return { index, manifest, config };
}

/** One entry of a directory tree, with its path inside the tree ("/plugins/…"). */
export interface TreeEntry {
  readonly path: string;
  readonly type: "file" | "dir" | "symlink" | "other";
  readonly mode: number;
  readonly uid: number;
  readonly size: number;
}

/** Every entry under root (root itself excluded), depth first, names sorted. */
export async function walk(root: string, inside = ""): Promise<TreeEntry[]> {
  const entries: TreeEntry[] = [];
  for (const name of (await readdir(join(root, inside))).sort()) {
    const path = `${inside}/${name}`;
    const info = await lstat(join(root, path));
    const type = info.isFile() ? "file" : info.isDirectory() ? "dir" : info.isSymbolicLink() ? "symlink" : "other";
    entries.push({ path, type, mode: info.mode & 0o7777, uid: info.uid, size: info.size });
    if (type === "dir") entries.push(...(await walk(root, path)));
  }
  return entries;
}

/**
 * What Velero's server would start as a plugin: every entry under /plugins (recursively) that is not
 * a directory and has an execute bit (a symbolic link's bits are all set) or a `.exe` name.
 */
export function veleroWouldStart(entries: readonly TreeEntry[]): string[] {
  return entries
    .filter((e) => e.path.startsWith("/plugins/") && e.type !== "dir" && (e.type === "symlink" || (e.mode & 0o111) !== 0 || e.path.toLowerCase().endsWith(".exe")))
    .map((e) => e.path);
}

/** Names Velero's server image lacks: shells, env, node, the C++ runtime. */
const FORBIDDEN = /^(?:sh|bash|dash|ash|busybox|env|node|libstdc\+\+\.so.*|libgcc_s\.so.*)$/;

/** Entries outside /plugins named like a shell, env, node, libstdc++ or libgcc_s. */
export function forbiddenOutsidePlugins(entries: readonly TreeEntry[]): string[] {
  return entries.filter((e) => !e.path.startsWith("/plugins/") && FORBIDDEN.test(basename(e.path))).map((e) => e.path);
}

/** Mount points at or under dir in this process's mount namespace. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const real = await realpath(dir);
  const unescape = (field: string) => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
  return (await readFile("/proc/self/mountinfo", "utf8"))
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((point): point is string => point !== undefined)
    .map(unescape)
    .filter((point) => point === real || point.startsWith(`${real}/`));
}

/**
 * The image's entrypoint, run as a Kubernetes node runs an init container: chrooted into the unpacked
 * image, as the image's user, with no environment, and the plugin volume bind-mounted at /target. The
 * mount is made in a new mount namespace, which ends with the process.
 */
export async function runEntrypoint(imageRoot: string, volume: string, config: ImageConfig): Promise<Run> {
  const argv = [...(config.config.Entrypoint ?? []), ...(config.config.Cmd ?? [])];
  const user = config.config.User ?? "0:0";
  const [uid = "", gid = uid] = user.split(":");
  if (argv.length === 0 || !/^\d+$/.test(uid) || !/^\d+$/.test(gid)) throw new Error(`unexpected image config: ${JSON.stringify(config.config)}`);
  const script = 'set -e; root=$1; volume=$2; user=$3; group=$4; shift 4; mount --bind "$volume" "$root/target"; exec env -i "$(command -v chroot)" --userspec="$user:$group" --groups="$group" "$root" "$@"';
  return run("unshare", ["--mount", "--propagation=private", "--fork", "--kill-child", "--", "/bin/sh", "-c", script, "sh", imageRoot, volume, uid, gid, ...argv]);
}

/** Devices a container runtime gives every container, bound from this machine's /dev. */
const DEVICES = ["null", "zero", "full", "random", "urandom"];

/**
 * Runs `command args` chrooted into root as uid:gid, the way the Velero server container runs: new
 * mount and PID namespaces (a fresh /proc for that PID namespace, a small tmpfs /dev with the usual
 * devices), this machine's network (so servers on 127.0.0.1 are reachable), only the environment
 * given. Every process it starts dies when the command exits (the PID namespace ends with its first
 * process) or when the `unshare` process is killed.
 */
export async function runInRootfs(root: string, user: { uid: number; gid: number }, env: Record<string, string>, command: string, args: readonly string[]): Promise<Run> {
  const script = [
    "set -e",
    "root=$1; shift",
    'mount -t tmpfs -o mode=0755,nosuid,size=1m devices "$root/dev"',
    `for device in ${DEVICES.join(" ")}; do : > "$root/dev/$device"; mount --bind "/dev/$device" "$root/dev/$device"; done`,
    'ln -s /proc/self/fd "$root/dev/fd"; ln -s /proc/self/fd/0 "$root/dev/stdin"; ln -s /proc/self/fd/1 "$root/dev/stdout"; ln -s /proc/self/fd/2 "$root/dev/stderr"',
    'exec env -i "$@"',
  ].join("\n");
  const chroot = ["chroot", `--userspec=${String(user.uid)}:${String(user.gid)}`, `--groups=${String(user.gid)}`, root, command, ...args];
  return run("unshare", [
    "--mount",
    "--propagation=private",
    "--pid",
    "--fork",
    "--kill-child",
    `--mount-proc=${join(root, "proc")}`,
    "--",
    "/bin/sh",
    "-c",
    script,
    "sh",
    root,
    ...Object.entries(env).map(([key, value]) => `${key}=${value}`),
    ...(await absoluteChroot(chroot)),
  ]);
}

/** `chroot …` with the chroot program's absolute path (env -i leaves no PATH to find it). */
async function absoluteChroot(argv: string[]): Promise<string[]> {
  for (const dir of ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]) {
    try {
      await access(join(dir, "chroot"), constants.X_OK);
      return [join(dir, "chroot"), ...argv.slice(1)];
    } catch {
      // try the next
    }
  }
  throw new Error("chroot (GNU coreutils) is missing");
}
