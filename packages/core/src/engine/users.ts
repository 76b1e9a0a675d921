// Resolving `user[:group]` strings (COPY --chown, USER) against an image's /etc/passwd and /etc/group.

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export class UserLookupError extends Error {
  override readonly name = "UserLookupError";
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const f = line.split(":");
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (f[0] === undefined || !Number.isInteger(uid) || !Number.isInteger(gid)) continue;
    out.push({ name: f[0], uid, gid, home: f[5] ?? "/" });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const f = line.split(":");
    const gid = Number(f[2]);
    if (f[0] === undefined || !Number.isInteger(gid)) continue;
    out.push({ name: f[0], gid, members: (f[3] ?? "").split(",").filter((m) => m !== "") });
  }
  return out;
}

const isId = (s: string): boolean => /^[0-9]+$/.test(s);

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary groups (for processes; empty for file ownership). */
  additionalGids: number[];
  home?: string;
}

/**
 * Ownership for COPY/ADD --chown, as BuildKit's file op: a numeric user without a group uses the same
 * number as gid; a name takes its passwd gid; a group name is looked up in /etc/group.
 */
export function resolveChown(spec: string, passwd: PasswdEntry[] | undefined, groups: GroupEntry[] | undefined): { uid: number; gid: number } {
  const [userPart, groupPart] = splitUserGroup(spec);
  let uid: number;
  let gid: number;
  if (isId(userPart)) {
    uid = Number(userPart);
    gid = uid;
  } else {
    const entry = passwd?.find((p) => p.name === userPart);
    if (!entry) throw new UserLookupError(`unable to find user ${userPart}: no matching entries in passwd file`);
    uid = entry.uid;
    gid = entry.gid;
  }
  if (groupPart !== undefined) gid = resolveGroupId(groupPart, groups);
  return { uid, gid };
}

/**
 * The identity a RUN step runs as (USER): like runc/BuildKit's user lookup — names from passwd, the
 * primary gid from passwd unless a group is given, supplementary groups from /etc/group membership.
 */
export function resolveRunUser(spec: string, passwd: PasswdEntry[] | undefined, groups: GroupEntry[] | undefined): ResolvedUser {
  const [userPart, groupPart] = splitUserGroup(spec === "" ? "0" : spec);
  let uid: number;
  let gid = 0;
  let name: string | undefined;
  let home: string | undefined;
  const byName = passwd?.find((p) => p.name === userPart);
  if (byName) {
    uid = byName.uid;
    gid = byName.gid;
    name = byName.name;
    home = byName.home;
  } else if (isId(userPart)) {
    uid = Number(userPart);
    const byUid = passwd?.find((p) => p.uid === uid);
    if (byUid) {
      gid = byUid.gid;
      name = byUid.name;
      home = byUid.home;
    }
  } else {
    throw new UserLookupError(`unable to find user ${userPart}: no matching entries in passwd file`);
  }
  let additionalGids: number[] = [];
  if (groupPart !== undefined) gid = resolveGroupId(groupPart, groups);
  else if (name !== undefined && groups) {
    additionalGids = groups.filter((g) => g.members.includes(name!) && g.gid !== gid).map((g) => g.gid);
  }
  const out: ResolvedUser = { uid, gid, additionalGids };
  if (home !== undefined) out.home = home;
  return out;
}

function resolveGroupId(group: string, groups: GroupEntry[] | undefined): number {
  if (isId(group)) return Number(group);
  const entry = groups?.find((g) => g.name === group);
  if (!entry) throw new UserLookupError(`unable to find group ${group}: no matching entries in group file`);
  return entry.gid;
}

function splitUserGroup(spec: string): [string, string | undefined] {
  const colon = spec.indexOf(":");
  return colon < 0 ? [spec, undefined] : [spec.slice(0, colon), spec.slice(colon + 1)];
}
