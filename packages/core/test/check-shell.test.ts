// The RUN command splitter behind kiln's cache rules: operators split commands, quotes and
// substitutions do not.
import { describe, expect, it } from "vitest";
import { commandsOfScript, splitShellCommands } from "../src/check/shell-commands.js";

describe("splitShellCommands", () => {
  it("splits on &&, ||, ;, |, & and newlines", () => {
    expect(splitShellCommands("a 1 && b 2 || c; d | e & f\ng")).toEqual([["a", "1"], ["b", "2"], ["c"], ["d"], ["e"], ["f"], ["g"]]);
  });

  it("joins backslash-newline continuations into one command", () => {
    expect(splitShellCommands("apt-get install -y \\\n    curl \\\r\n    git")).toEqual([["apt-get", "install", "-y", "curl", "git"]]);
  });

  it("keeps operators inside quotes as text and removes the quotes", () => {
    expect(splitShellCommands(`echo "a && b; c" 'd | e' f\\;g`)).toEqual([["echo", "a && b; c", "d | e", "f;g"]]);
    expect(splitShellCommands(`echo "say \\"hi\\" && go"`)).toEqual([["echo", 'say "hi" && go']]);
  });

  it("keeps $(...), backquotes and ${...} opaque", () => {
    expect(splitShellCommands("pip install $(cat reqs | grep -v x; true) `a;b` ${X:-a;b} && ok")).toEqual([
      ["pip", "install", "$(cat reqs | grep -v x; true)", "`a;b`", "${X:-a;b}"],
      ["ok"],
    ]);
  });

  it("drops redirections, comments, subshell parentheses and reserved words", () => {
    expect(splitShellCommands("echo hi > /tmp/x 2>&1 && (cd /a && make) # done; not a command")).toEqual([
      ["echo", "hi"],
      ["cd", "/a"],
      ["make"],
    ]);
    expect(splitShellCommands("if [ -f x ]; then npm ci; else yarn; fi")).toEqual([["[", "-f", "x", "]"], ["npm", "ci"], ["yarn"], ["fi"]]);
  });
});

describe("commandsOfScript", () => {
  it("removes assignments and wrappers and reduces the program to its basename", () => {
    expect(commandsOfScript("DEBIAN_FRONTEND=noninteractive sudo -E /usr/bin/apt-get install -y x")).toEqual([
      ["apt-get", "install", "-y", "x"],
    ]);
    expect(commandsOfScript("env A=1 npm ci")).toEqual([["npm", "ci"]]);
  });

  it("looks into sh -c scripts", () => {
    expect(commandsOfScript(`/bin/sh -c "apt-get update && apt-get clean"`)).toEqual([
      ["apt-get", "update"],
      ["apt-get", "clean"],
    ]);
  });
});
