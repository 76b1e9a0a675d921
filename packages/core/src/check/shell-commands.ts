// Just enough POSIX shell to see which simple commands a RUN line runs: it splits on `&&`,
// `||`, `;`, `|`, `&`, newlines and parentheses, joins `\`-newline continuations, removes quotes
// (an operator inside quotes is text), drops redirections and comments, and keeps `$(...)`,
// backquotes and `${...}` as opaque text. It does not evaluate anything.

/** One simple command: its words, quotes removed. */
export type SimpleCommand = string[];

const RESERVED_PREFIXES = new Set(["!", "{", "}", "then", "do", "else", "elif", "if", "while", "until", "time"]);

class Splitter {
  private i = 0;
  private readonly commands: SimpleCommand[] = [];
  private words: string[] = [];
  /** The word being built, or undefined between words (an empty quoted word is ""). */
  private word: string | undefined;

  constructor(private readonly src: string) {}

  run(): SimpleCommand[] {
    const s = this.src;
    while (this.i < s.length) {
      const c = s.charAt(this.i);
      if (c === "\\") {
        const next = s.charAt(this.i + 1);
        if (next === "\n") this.i += 2;
        else if (next === "\r" && s.charAt(this.i + 2) === "\n") this.i += 3;
        else {
          this.append(next);
          this.i += 2;
        }
      } else if (c === " " || c === "\t" || c === "\r") {
        this.endWord();
        this.i++;
      } else if (c === "\n" || c === ";" || c === "(" || c === ")") {
        this.endCommand();
        this.i++;
      } else if (c === "&" || c === "|") {
        this.endCommand();
        this.i++;
        if (s.charAt(this.i) === c || (c === "|" && s.charAt(this.i) === "&")) this.i++;
      } else if (c === "'") {
        const end = s.indexOf("'", this.i + 1);
        const stop = end < 0 ? s.length : end;
        this.append(s.slice(this.i + 1, stop));
        this.i = stop + 1;
      } else if (c === '"') {
        this.doubleQuoted();
      } else if (c === "`") {
        const end = s.indexOf("`", this.i + 1);
        const stop = end < 0 ? s.length : end + 1;
        this.append(s.slice(this.i, stop));
        this.i = stop;
      } else if (c === "$" && (s.charAt(this.i + 1) === "(" || s.charAt(this.i + 1) === "{")) {
        this.append(this.balanced());
      } else if (c === "#" && this.word === undefined) {
        while (this.i < s.length && s.charAt(this.i) !== "\n") this.i++;
      } else if (c === ">" || c === "<") {
        this.redirection();
      } else {
        this.append(c);
        this.i++;
      }
    }
    this.endCommand();
    return this.commands;
  }

  private append(text: string): void {
    this.word = (this.word ?? "") + text;
  }

  private endWord(): void {
    if (this.word !== undefined) this.words.push(this.word);
    this.word = undefined;
  }

  private endCommand(): void {
    this.endWord();
    let words = this.words;
    while (words.length > 0 && RESERVED_PREFIXES.has(words[0] as string)) words = words.slice(1);
    if (words.length > 0) this.commands.push(words);
    this.words = [];
  }

  private doubleQuoted(): void {
    const s = this.src;
    let out = "";
    this.i++;
    while (this.i < s.length && s.charAt(this.i) !== '"') {
      const c = s.charAt(this.i);
      if (c === "\\" && this.i + 1 < s.length) {
        const next = s.charAt(this.i + 1);
        if (next === "\n") {
          this.i += 2;
          continue;
        }
        out += '"\\$`'.includes(next) ? next : c + next;
        this.i += 2;
      } else if (c === "$" && (s.charAt(this.i + 1) === "(" || s.charAt(this.i + 1) === "{")) {
        out += this.balanced();
      } else {
        out += c;
        this.i++;
      }
    }
    this.i++;
    this.append(out);
  }

  /** `$(...)` or `${...}` taken verbatim, nesting and quotes respected. */
  private balanced(): string {
    const s = this.src;
    const start = this.i;
    const open = s.charAt(this.i + 1);
    const close = open === "(" ? ")" : "}";
    let depth = 0;
    this.i += 1;
    while (this.i < s.length) {
      const c = s.charAt(this.i);
      if (c === "\\") {
        this.i += 2;
        continue;
      }
      if (c === "'" || c === '"') {
        const end = s.indexOf(c, this.i + 1);
        this.i = end < 0 ? s.length : end + 1;
        continue;
      }
      if (c === open) depth++;
      else if (c === close && --depth === 0) {
        this.i++;
        break;
      }
      this.i++;
    }
    return s.slice(start, this.i);
  }

  /** Drops `[n]>file`, `2>&1`, `<in`, `<<EOF`, operator and target alike. */
  private redirection(): void {
    const s = this.src;
    if (this.word !== undefined && /^[0-9]+$/.test(this.word)) this.word = undefined;
    else this.endWord();
    while (this.i < s.length && "<>&|-".includes(s.charAt(this.i))) this.i++;
    while (this.i < s.length && (s.charAt(this.i) === " " || s.charAt(this.i) === "\t")) this.i++;
    // The target word, quotes included; the next real word starts after it.
    const saved = { words: this.words, word: this.word };
    this.words = [];
    this.word = undefined;
    while (this.i < s.length && !" \t\r\n;&|()<>".includes(s.charAt(this.i))) {
      const c = s.charAt(this.i);
      if (c === "'" || c === '"') {
        const end = s.indexOf(c, this.i + 1);
        this.i = end < 0 ? s.length : end + 1;
      } else if (c === "$" && (s.charAt(this.i + 1) === "(" || s.charAt(this.i + 1) === "{")) {
        this.balanced();
      } else if (c === "\\") this.i += 2;
      else this.i++;
    }
    this.words = saved.words;
    this.word = saved.word;
  }
}

/** The simple commands of a shell script, in order. */
export function splitShellCommands(script: string): SimpleCommand[] {
  return new Splitter(script).run();
}

const WRAPPERS = new Set(["sudo", "command", "exec", "nohup", "nice", "time", "doas", "eatmydata"]);
const SHELLS = new Set(["sh", "bash", "ash", "dash", "zsh", "ksh"]);

export function basename(word: string): string {
  const slash = word.lastIndexOf("/");
  return slash < 0 ? word : word.slice(slash + 1);
}

/**
 * The argv a simple command really runs: leading `NAME=value` assignments and wrappers such as
 * `sudo`/`env` removed, the program reduced to its basename. `sh -c '...'` is looked into: its
 * script's commands are returned instead.
 */
export function effectiveCommands(words: SimpleCommand): SimpleCommand[] {
  let w = words;
  for (;;) {
    while (w.length > 0 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(w[0] as string)) w = w.slice(1);
    const head = w[0];
    if (head === undefined) return [];
    const name = basename(head);
    if (WRAPPERS.has(name) || name === "env") {
      w = w.slice(1);
      while (w.length > 0 && (w[0] as string).startsWith("-")) w = w.slice(1);
      continue;
    }
    if (SHELLS.has(name)) {
      const c = w.findIndex((a, i) => i > 0 && /^-[a-zA-Z]*c[a-zA-Z]*$/.test(a));
      const script = c > 0 ? w[c + 1] : undefined;
      if (script !== undefined) return splitShellCommands(script).flatMap(effectiveCommands);
    }
    return [[name, ...w.slice(1)]];
  }
}

/** Every command a script runs, each normalised by effectiveCommands. */
export function commandsOfScript(script: string): SimpleCommand[] {
  return splitShellCommands(script).flatMap(effectiveCommands);
}
