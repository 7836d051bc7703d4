import net from "node:net";
import { expect } from "vitest";

/** Asserts that no process with this pid exists any more. */
export function expectProcessGone(pid: number): void {
  expect(pid).toBeGreaterThan(0);
  expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: "ESRCH" }));
}

/** Asserts that nothing accepts connections at this URL's host and port. */
export async function expectPortClosed(url: string): Promise<void> {
  const { hostname, port } = new URL(url);
  const outcome = await new Promise<string>((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    socket.setTimeout(2_000);
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve("timeout");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => {
      resolve(error.code ?? error.message);
    });
  });
  expect(outcome).toBe("ECONNREFUSED");
}
