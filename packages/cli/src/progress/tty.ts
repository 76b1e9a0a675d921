// `--progress=tty`: a live view redrawn in place, BuildKit style. Events only update state; a 100 ms timer
// draws, so a chatty RUN costs at most ten redraws a second. A redraw moves the cursor to the top of the
// last frame and rewrites only the lines that changed (no full-screen clear, unchanged lines do not flicker).
import type { BuildEvent } from "@kiln/core";
import { composeFrame } from "./tty-frame.js";
import { BuildView } from "./tty-state.js";

export interface TtyProgressOptions {
  write: (s: string) => void;
  /** Terminal size; default process.stderr's (read at every frame, so a resize is picked up), else 80x24. */
  columns?: number;
  rows?: number;
  /** Say why each rebuilt step missed the cache. */
  explain?: boolean;
  /** Clock in ms (for tests); default Date.now. */
  now?: () => number;
}

export interface TtyProgress {
  onEvent(event: BuildEvent): void;
  /** Draw the final frame and stop the timer; the cursor is left at the start of a fresh line. Idempotent. */
  stop(): void;
}

const REFRESH_MS = 100;

/** What `--progress=auto` should pick tty by: a terminal on stderr that can move its cursor. */
export function supportsTtyProgress(stream: { isTTY?: boolean } = process.stderr, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && env["TERM"] !== "dumb";
}
const ESC = "\x1b[";

export function ttyProgress(options: TtyProgressOptions): TtyProgress {
  const now = options.now ?? Date.now;
  const view = new BuildView();
  let previous: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const size = () => ({
    columns: options.columns ?? (process.stderr.columns || 80),
    rows: options.rows ?? (process.stderr.rows || 24),
  });

  const draw = (final: boolean): void => {
    const lines = composeFrame(view, { ...size(), now: now(), final, explain: options.explain ?? false });
    const out = redraw(previous, lines);
    previous = lines;
    if (out) options.write(out);
  };

  return {
    onEvent(event) {
      if (stopped) return;
      view.apply(event, now());
      if (!timer) {
        draw(false);
        // unref: a forgotten stop() must not keep the process alive.
        timer = setInterval(() => draw(false), REFRESH_MS).unref();
      }
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (timer) clearInterval(timer);
      // Nothing was shown (the build failed before its first event): leave the terminal alone.
      if (previous.length > 0) draw(true);
    },
  };
}

/**
 * The bytes that turn the screen showing `before` (cursor on the line below it) into `after` (cursor on
 * the line below it). Lines are assumed never to wrap (the frame clips them).
 */
export function redraw(before: string[], after: string[]): string {
  let out = before.length > 0 ? `${ESC}${before.length}A\r` : "";
  let skip = 0;
  for (let i = 0; i < after.length; i++) {
    if (i < before.length && before[i] === after[i]) {
      skip++;
      continue;
    }
    if (skip > 0) out += `${ESC}${skip}B`;
    skip = 0;
    // Text first, then erase what is left of the old line: the line never shows blank in between.
    out += `${after[i]}${ESC}K\r\n`;
  }
  if (skip > 0) out += `${ESC}${skip}B`;
  // A shorter frame: erase the old frame's leftover lines below.
  if (after.length < before.length) out += `${ESC}J`;
  if (skip === after.length && after.length === before.length) return "";
  return out;
}
