import { describe, expect, it } from "vitest";
import { compareUtf8 } from "../src/key-order.js";

const bytewise = (a: string, b: string): number => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));

describe("compareUtf8", () => {
  it("orders astral characters after U+E000–U+FFFF, unlike UTF-16 comparison", () => {
    const astral = "\u{1F600}"; // surrogate pair D83D DE00
    const privateUse = "\uFFFD";
    expect(astral < privateUse).toBe(true); // what JavaScript says
    expect(compareUtf8(astral, privateUse)).toBeGreaterThan(0); // what the bytes say
    expect(bytewise(astral, privateUse)).toBeGreaterThan(0);
  });

  it("agrees with Buffer.compare of the UTF-8 encodings on random strings", () => {
    const alphabet = ["a", "b", "/", "!", "\u00e9", "\u0800", "\uE000", "\uFFFF", "\u{10000}", "\u{1F600}", "\u{10FFFF}", ""];
    let seed = 42;
    const random = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const randomString = (): string => Array.from({ length: random(5) }, () => alphabet[random(alphabet.length)]).join("");
    for (let i = 0; i < 5000; i++) {
      const a = randomString();
      const b = randomString();
      expect(Math.sign(compareUtf8(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(Math.sign(bytewise(a, b)));
    }
  });
});
