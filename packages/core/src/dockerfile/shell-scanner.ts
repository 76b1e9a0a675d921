/**
 * A one-rune look-ahead reader with Go text/scanner's Peek/Next contract, which BuildKit's lexer
 * is written against: EOF is -1 and a byte-order mark at the very start is skipped.
 */
import { EOF, codePoints } from "./shell-chars.js";

export class RuneScanner {
  private readonly runes: number[];
  private pos: number;

  constructor(text: string) {
    this.runes = codePoints(text);
    this.pos = this.runes[0] === 0xfeff ? 1 : 0;
  }

  peek(): number {
    return this.pos < this.runes.length ? (this.runes[this.pos] as number) : EOF;
  }

  next(): number {
    const cp = this.peek();
    if (cp !== EOF) this.pos++;
    return cp;
  }
}
